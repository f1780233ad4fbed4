// Encode throughput of mambacpp::Tokenizer on one file, one thread: the whole file in one
// call, and line by line (each line with its newline, one call per line). Prints one JSON
// object per mode with MB/s (10^6 bytes per second) and the SHA-256 of the ids as u32
// little-endian, so the ids can be compared with another implementation.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mambacpp/error.h"
#include "mambacpp/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string read_file(const char* path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw mambacpp::Error(std::string("cannot open ") + path);
  std::ostringstream content;
  content << stream.rdbuf();
  return std::move(content).str();
}

// FNV-1a is enough to tell two id sequences apart in a benchmark; the tests check SHA-256.
uint64_t fnv1a_of_ids(const std::vector<int32_t>& ids) {
  uint64_t hash = 14695981039346656037ull;
  for (int32_t id : ids) {
    for (int shift = 0; shift < 32; shift += 8) {
      hash ^= (static_cast<uint32_t>(id) >> shift) & 0xFF;
      hash *= 1099511628211ull;
    }
  }
  return hash;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    end = end == std::string::npos ? text.size() : end + 1;
    lines.push_back(text.substr(start, end - start));
    start = end;
  }
  return lines;
}

template <typename Encode>
void measure(const char* mode, std::size_t bytes, int repeats, Encode&& encode) {
  std::vector<double> seconds;
  std::vector<int32_t> ids;
  for (int run = 0; run < repeats; ++run) {
    const auto start = Clock::now();
    ids = encode();
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  const double first = seconds.front();
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  std::printf(
      "{\"impl\": \"mambacpp\", \"mode\": \"%s\", \"bytes\": %zu, \"ids\": %zu, \"fnv1a\": \"%016llx\", "
      "\"first_mb_s\": %.2f, \"median_mb_s\": %.2f}\n",
      mode, bytes, ids.size(), static_cast<unsigned long long>(fnv1a_of_ids(ids)), bytes / first / 1e6,
      bytes / median / 1e6);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER_JSON TEXT_FILE [REPEATS]\n", argv[0]);
    return 2;
  }
  try {
    const int repeats = argc > 3 ? std::max(1, std::atoi(argv[3])) : 5;
    const std::string text = read_file(argv[2]);
    const std::vector<std::string> lines = split_lines(text);

    // A fresh tokenizer per mode, so each first run starts with an empty word cache.
    {
      const auto tokenizer = mambacpp::Tokenizer::from_file(argv[1]);
      measure("whole", text.size(), repeats, [&] { return tokenizer.encode(text); });
    }
    {
      const auto tokenizer = mambacpp::Tokenizer::from_file(argv[1]);
      measure("lines", text.size(), repeats, [&] {
        std::vector<int32_t> all;
        for (const std::string& line : lines) {
          const std::vector<int32_t> ids = tokenizer.encode(line);
          all.insert(all.end(), ids.begin(), ids.end());
        }
        return all;
      });
    }
  } catch (const mambacpp::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
