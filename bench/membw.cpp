// Measures memory read bandwidth: the rate at which 1, 2, ... threads can stream a buffer
// much larger than the caches. Decoding one sequence reads every weight once per token, so
// weight bytes divided by this rate is the floor on a decode step's time.
//
// Each thread sums its own contiguous slice of 64-bit words (with several independent sums, so
// the compiler vectorizes the loop and no add chain limits the rate), prefetching 8 KB ahead. One pass is timed from a
// barrier before the first read to a barrier after the last thread finishes. The figure is the
// median over the passes, in GB/s (10^9 bytes per second).
//
// The summing loop must be vectorized to reach the bandwidth from one thread: built with
// GCC 12 at -O2 without -march=native the loop stays scalar and one thread read about 20 GB/s
// where the vectorized build (-O3, or -O2 -march=native) read about 28 GB/s on the same machine.
//
// Build: g++ -std=c++20 -O3 -pthread bench/membw.cpp -o membw
// Usage: membw [--size-mib N] [--passes N] [--threads 1,2]

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  size_t size_mib = 1024;
  int passes = 9;
  std::vector<int> thread_counts = {1, 2};
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "membw: %s\n", message.c_str());
  std::fprintf(stderr, "usage: membw [--size-mib N] [--passes N] [--threads 1,2]\n");
  std::exit(2);
}

long parse_positive(const char* flag, const char* text) {
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value <= 0)
    usage_error(std::string(flag) + " must be a positive integer, got '" + text + "'");
  return value;
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::printf(
          "Measure memory read bandwidth (GB/s) with each thread count.\n"
          "  --size-mib N   buffer size in MiB; keep it far above the last-level cache "
          "(default 1024)\n"
          "  --passes N     timed passes per thread count; the median is reported (default 9)\n"
          "  --threads LIST comma-separated thread counts (default 1,2)\n");
      std::exit(0);
    }
    if (flag != "--size-mib" && flag != "--passes" && flag != "--threads")
      usage_error("unknown option " + flag);
    if (i + 1 >= argc) usage_error("missing value after " + flag);
    const char* value = argv[++i];
    if (flag == "--size-mib") {
      options.size_mib = static_cast<size_t>(parse_positive("--size-mib", value));
    } else if (flag == "--passes") {
      options.passes = static_cast<int>(parse_positive("--passes", value));
    } else {  // --threads
      options.thread_counts.clear();
      std::string list = value;
      size_t start = 0;
      while (start <= list.size()) {
        size_t comma = list.find(',', start);
        if (comma == std::string::npos) comma = list.size();
        std::string item = list.substr(start, comma - start);
        options.thread_counts.push_back(static_cast<int>(parse_positive("--threads", item.c_str())));
        start = comma + 1;
      }
    }
  }
  return options;
}

// Words read ahead of the sum, 8 KB as the engine's matrix-vector kernels and its own
// bandwidth probe prefetch. On a Xeon (family 6 model 207) the engine's probe read 17 GB/s
// without it and 21-22 GB/s with it.
constexpr size_t kPrefetchWords = 8192 / sizeof(uint64_t);

// Sums words [begin, end). Eight independent sums let the loop run at load speed.
uint64_t sum_words(const uint64_t* begin, const uint64_t* end) {
  uint64_t sums[8] = {};
  const uint64_t* p = begin;
  for (; p + 8 <= end; p += 8) {
    __builtin_prefetch(p + kPrefetchWords);
    for (int k = 0; k < 8; ++k) sums[k] += p[k];
  }
  for (; p < end; ++p) sums[0] += *p;
  uint64_t total = 0;
  for (uint64_t s : sums) total += s;
  return total;
}

struct Slice {
  size_t begin;
  size_t end;
};

Slice slice_of(size_t words, int thread, int threads) {
  return {words * thread / threads, words * (thread + 1) / threads};
}

// Returns the seconds of each pass in which `threads` threads read the whole buffer once.
std::vector<double> time_passes(const uint64_t* buffer, size_t words, int threads, int passes,
                                uint64_t& checksum) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> seconds(passes);
  std::vector<uint64_t> sums(threads);
  Clock::time_point start;
  // Pass boundaries: the main thread stamps the clock between two barrier phases.
  std::barrier sync(threads + 1);

  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      Slice slice = slice_of(words, t, threads);
      for (int pass = 0; pass < passes; ++pass) {
        sync.arrive_and_wait();  // start
        sums[t] += sum_words(buffer + slice.begin, buffer + slice.end);
        sync.arrive_and_wait();  // done
      }
    });
  }
  for (int pass = 0; pass < passes; ++pass) {
    start = Clock::now();
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    seconds[pass] = std::chrono::duration<double>(Clock::now() - start).count();
  }
  for (auto& worker : workers) worker.join();
  for (uint64_t s : sums) checksum += s;
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_options(argc, argv);
  size_t bytes = options.size_mib << 20;
  size_t words = bytes / sizeof(uint64_t);

  // Fill with non-zero data so every page is really mapped (the kernel would otherwise back an
  // untouched buffer with one shared zero page, which stays in cache).
  std::unique_ptr<uint64_t[]> buffer(new uint64_t[words]);
  for (size_t i = 0; i < words; ++i) buffer[i] = i * 0x9E3779B97F4A7C15ull;

  std::printf("buffer: %zu MiB, %d timed passes per thread count, after one untimed pass\n",
              options.size_mib, options.passes);
  uint64_t checksum = 0;
  for (int threads : options.thread_counts) {
    time_passes(buffer.get(), words, threads, 1, checksum);  // warm-up
    std::vector<double> seconds = time_passes(buffer.get(), words, threads, options.passes, checksum);
    std::vector<double> rates;
    for (double s : seconds) rates.push_back(bytes / s / 1e9);
    std::sort(rates.begin(), rates.end());
    double median = rates.size() % 2 ? rates[rates.size() / 2]
                                     : (rates[rates.size() / 2 - 1] + rates[rates.size() / 2]) / 2;
    std::printf("threads %d: read %.1f GB/s median (min %.1f, max %.1f)\n", threads, median,
                rates.front(), rates.back());
  }
  // Printing the checksum keeps the compiler from dropping the reads.
  std::printf("checksum %016llx\n", static_cast<unsigned long long>(checksum));
  return 0;
}
