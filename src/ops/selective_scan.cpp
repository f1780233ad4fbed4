#include "ops/selective_scan.h"

#include <algorithm>

#include "ops/cpu_kernels.h"

namespace mambacpp {

namespace {
// At least 8 channels per thread, and enough state updates that the work outweighs
// handing it to another thread.
constexpr int64_t kChannelGrain = 8;
constexpr int64_t kMinWorkPerThread = 8192;
}  // namespace

void selective_scan(const SelectiveScanArgs& args, float* ssm_state, float* y, ThreadPool& pool) {
  const CpuKernels& kernels = active_cpu_kernels();
  const int64_t grain = std::max(kChannelGrain, kMinWorkPerThread / std::max<int64_t>(1, args.L * args.N));
  pool.parallel_for(args.E, grain, [&](int64_t c_begin, int64_t c_end) {
    kernels.selective_scan_channels(args, ssm_state, y, c_begin, c_end);
  });
}

}  // namespace mambacpp
