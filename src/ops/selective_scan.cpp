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

void selective_scan_many(std::span<const SelectiveScanArgs> args, std::span<float* const> ssm_states,
                         std::span<float* const> ys, ThreadPool& pool) {
  if (args.empty()) return;
  const CpuKernels& kernels = active_cpu_kernels();
  const int64_t E = args[0].E;
  const int64_t n_items = static_cast<int64_t>(args.size()) * E;
  const int64_t grain =
      std::max(kChannelGrain, kMinWorkPerThread / std::max<int64_t>(1, args[0].L * args[0].N));

  // Item i is channel i % E of sequence i / E; a range may span several sequences.
  pool.parallel_for(n_items, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end;) {
      int64_t s = i / E, c_begin = i % E;
      int64_t c_end = std::min(E, c_begin + (end - i));
      kernels.selective_scan_channels(args[s], ssm_states[s], ys[s], c_begin, c_end);
      i += c_end - c_begin;
    }
  });
}

}  // namespace mambacpp
