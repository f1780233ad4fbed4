#pragma once

#include "mambacpp/thread_pool.h"

namespace mambacpp {

// This machine's floors, measured on the spot: the rate at which `pool`'s threads read
// memory (GB/s, 10^9 bytes per second, over a buffer far larger than the caches) and the
// f32 fused multiply-add peak (GFLOP/s, counting a multiply-add as two), each the best of
// a few short runs. Together they bound decode (weights read per step / bandwidth) and
// prefill (FLOPs / peak).
struct MachineFloors {
  double read_gb_per_s = 0;
  double fp32_gflop_per_s = 0;
};

MachineFloors measure_machine_floors(ThreadPool& pool);

}  // namespace mambacpp
