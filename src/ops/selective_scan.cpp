#include "ops/selective_scan.h"

#include "ops/cpu_kernels.h"

namespace mambacpp {

namespace {
constexpr int64_t kChannelGrain = 8;
}  // namespace

void selective_scan(const SelectiveScanArgs& args, float* ssm_state, float* y, ThreadPool& pool) {
  const CpuKernels& kernels = active_cpu_kernels();
  pool.parallel_for(args.E, kChannelGrain, [&](int64_t c_begin, int64_t c_end) {
    kernels.selective_scan_channels(args, ssm_state, y, c_begin, c_end);
  });
}

}  // namespace mambacpp
