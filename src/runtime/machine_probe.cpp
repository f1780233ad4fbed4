#include "runtime/machine_probe.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mambacpp {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kBufferBytes = size_t{512} << 20;
constexpr int kRuns = 5;
constexpr int64_t kFmaIterations = 20'000'000;

double seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Lines read ahead of the sum, as the matrix-vector kernels prefetch 8 KB ahead. On 2
// vCPUs of a Xeon (family 6 model 207) a plain loop read 20-21 GB/s and those kernels
// 26-27, so without it the decode bound was below what decode reached.
constexpr size_t kPrefetchWords = 8192 / sizeof(uint64_t);

// Sums 64-byte lines with eight independent accumulators so the loop is bound by memory,
// not by an add chain.
uint64_t sum_words(const uint64_t* words, size_t n) {
  uint64_t s[8] = {};
  for (size_t i = 0; i + 8 <= n; i += 8) {
    __builtin_prefetch(words + i + kPrefetchWords);
    for (int k = 0; k < 8; ++k) s[k] += words[i + k];
  }
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

double measure_read_bandwidth(ThreadPool& pool) {
  const size_t n_words = kBufferBytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t[]> buffer(new uint64_t[n_words]);
  pool.parallel_for(static_cast<int64_t>(n_words), 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) buffer[i] = static_cast<uint64_t>(i);
  });

  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int run = 0; run < kRuns; ++run) {
    auto start = Clock::now();
    pool.parallel_for(pool.size(), 1, [&](int64_t begin, int64_t end) {
      for (int64_t part = begin; part < end; ++part) {
        size_t first = n_words * part / pool.size(), last = n_words * (part + 1) / pool.size();
        sink += sum_words(buffer.get() + first, last - first);
      }
    });
    best = std::max(best, kBufferBytes / seconds(start) / 1e9);
  }
  return best;
}

#if defined(__x86_64__)
// Twelve independent multiply-add chains of 16 floats hide the FMA latency.
__attribute__((target("avx512f"))) float fma_loop_avx512(int64_t iterations) {
  __m512 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm512_set1_ps(static_cast<float>(k));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iterations; ++i)
    for (int k = 0; k < 12; ++k) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
  float out[16];
  __m512 total = acc[0];
  for (int k = 1; k < 12; ++k) total = _mm512_add_ps(total, acc[k]);
  _mm512_storeu_ps(out, total);
  return out[0];
}

__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t iterations) {
  __m256 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm256_set1_ps(static_cast<float>(k));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iterations; ++i)
    for (int k = 0; k < 12; ++k) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  float out[8];
  __m256 total = acc[0];
  for (int k = 1; k < 12; ++k) total = _mm256_add_ps(total, acc[k]);
  _mm256_storeu_ps(out, total);
  return out[0];
}
#endif

// Returns the FLOPs one call of the widest available loop performs, and runs it.
double run_fma_loop(int64_t iterations, float& sink) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) {
    sink += fma_loop_avx512(iterations);
    return 2.0 * 12 * 16 * iterations;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    sink += fma_loop_avx2(iterations);
    return 2.0 * 12 * 8 * iterations;
  }
#endif
  float acc[4] = {1, 2, 3, 4};
  for (int64_t i = 0; i < iterations; ++i)
    for (float& a : acc) a = a * 0.999999f + 1e-7f;
  sink += acc[0] + acc[1] + acc[2] + acc[3];
  return 2.0 * 4 * iterations;
}

double measure_fma_peak(ThreadPool& pool) {
  double best = 0;
  for (int run = 0; run < kRuns; ++run) {
    std::vector<double> flops(pool.size());
    std::vector<float> sinks(pool.size());
    auto start = Clock::now();
    pool.parallel_for(pool.size(), 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) flops[t] = run_fma_loop(kFmaIterations, sinks[t]);
    });
    double total = 0;
    for (double f : flops) total += f;
    best = std::max(best, total / seconds(start) / 1e9);
  }
  return best;
}

}  // namespace

MachineFloors measure_machine_floors(ThreadPool& pool) {
  MachineFloors floors;
  floors.read_gb_per_s = measure_read_bandwidth(pool);
  floors.fp32_gflop_per_s = measure_fma_peak(pool);
  return floors;
}

}  // namespace mambacpp
