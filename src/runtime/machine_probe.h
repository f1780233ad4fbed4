#pragma once

#include "mambacpp/thread_pool.h"

namespace mambacpp {

// This machine's floors, measured on the spot. The read rate is how fast `pool`'s threads
// read memory (GB/s, 10^9 bytes per second, over a buffer far larger than the caches).
// The peak is the f32 fused multiply-add rate (GFLOP/s, a multiply-add counting as two).
// Each is the best of a few short runs. Together they bound decode (weights read per step / bandwidth) and
// prefill (FLOPs / peak).
struct MachineFloors {
  double read_gb_per_s = 0;
  double fp32_gflop_per_s = 0;
};

MachineFloors measure_machine_floors(ThreadPool& pool);

}  // namespace mambacpp
