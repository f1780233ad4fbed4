// Times ssd_scan_forward and ssd_scan_backward at one training shape: batch 8, L 256, H 8,
// P 32, G 1, N 64, chunk 64 by default. Prints the median over the repetitions in ms of
// wall time, and of the process CPU time of forward plus backward (all threads together),
// which is the steadier figure on a machine shared with other jobs.
//
// Usage: ssd_scan_grad_bench [--threads N] [--reps N] [--batch N] [--seq-len N] [--chunk N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "mambacpp/thread_pool.h"
#include "train/ssd_scan_grad.h"

namespace {

using Clock = std::chrono::steady_clock;

double elapsed_ms(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

std::vector<float> random_vector(int64_t n, float low, float high, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& value : v) value = dist(rng);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 20;
  mambacpp::train::SsdShape s{8, 256, 8, 32, 1, 64, 64};
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 == argc) {
      std::fprintf(stderr, "missing value for %s\n", flag.c_str());
      return 2;
    }
    const long value = std::strtol(argv[i + 1], nullptr, 10);
    if (flag == "--threads") {
      threads = static_cast<int>(value);
    } else if (flag == "--reps") {
      reps = static_cast<int>(value);
    } else if (flag == "--batch") {
      s.batch = value;
    } else if (flag == "--seq-len") {
      s.seq_len = value;
    } else if (flag == "--chunk") {
      s.chunk_size = value;
    } else {
      std::fprintf(stderr,
                   "unknown flag %s. Expected --threads, --reps, --batch, --seq-len or --chunk\n",
                   flag.c_str());
      return 2;
    }
  }

  const int64_t n_x = s.batch * s.seq_len * s.n_heads * s.head_dim;
  const int64_t n_dt = s.batch * s.seq_len * s.n_heads;
  const int64_t n_bc = s.batch * s.seq_len * s.n_groups * s.d_state;
  std::mt19937 rng(1);
  const std::vector<float> x = random_vector(n_x, -1, 1, rng), dy = random_vector(n_x, -1, 1, rng);
  const std::vector<float> dt = random_vector(n_dt, -4, 0, rng);
  const std::vector<float> B = random_vector(n_bc, -1, 1, rng), C = random_vector(n_bc, -1, 1, rng);
  const std::vector<float> dt_bias = random_vector(s.n_heads, -1, 0, rng);
  const std::vector<float> A_log = random_vector(s.n_heads, 0, 2.7f, rng);
  const std::vector<float> D = random_vector(s.n_heads, -1, 1, rng);
  std::vector<float> y(x.size()), dx(x.size()), d_dt(dt.size()), dB(B.size()), dC(C.size());
  std::vector<float> d_dt_bias(s.n_heads), d_A_log(s.n_heads), d_D(s.n_heads);

  mambacpp::ThreadPool pool(threads);
  mambacpp::train::SsdSaved saved;
  std::vector<double> forward_ms, backward_ms, cpu_ms;
  for (int r = 0; r < reps + 1; ++r) {
    const double cpu_start = process_cpu_ms();
    auto start = Clock::now();
    mambacpp::train::ssd_scan_forward(s, x.data(), dt.data(), dt_bias.data(), A_log.data(),
                                      B.data(), C.data(), D.data(), y.data(), &saved, pool);
    const double forward = elapsed_ms(start);
    start = Clock::now();
    mambacpp::train::ssd_scan_backward(s, x.data(), dt.data(), dt_bias.data(), A_log.data(),
                                       B.data(), C.data(), D.data(), saved, dy.data(), dx.data(),
                                       d_dt.data(), dB.data(), dC.data(), d_dt_bias.data(),
                                       d_A_log.data(), d_D.data(), pool);
    const double backward = elapsed_ms(start);
    const double cpu = process_cpu_ms() - cpu_start;
    if (r == 0) continue;  // the first pass warms caches and the pool
    forward_ms.push_back(forward);
    backward_ms.push_back(backward);
    cpu_ms.push_back(cpu);
  }

  std::vector<double> sum_ms(forward_ms.size());
  for (size_t i = 0; i < sum_ms.size(); ++i) sum_ms[i] = forward_ms[i] + backward_ms[i];
  std::printf("batch %lld L %lld H %lld P %lld G %lld N %lld chunk %lld, %d threads, %d reps\n",
              static_cast<long long>(s.batch), static_cast<long long>(s.seq_len),
              static_cast<long long>(s.n_heads), static_cast<long long>(s.head_dim),
              static_cast<long long>(s.n_groups), static_cast<long long>(s.d_state),
              static_cast<long long>(s.chunk_size), threads, reps);
  std::printf("median wall: forward %.2f ms, backward %.2f ms, sum %.2f ms\n",
              median(forward_ms), median(backward_ms), median(sum_ms));
  std::printf("median CPU time of forward + backward: %.2f ms\n", median(cpu_ms));
  return 0;
}
