// libFuzzer target: parse_safetensors on arbitrary bytes. The parser must either throw
// mambacpp::Error or return entries that lie inside the input. Any other exception, a
// sanitizer report or an entry that points outside the input is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "io/safetensors.h"
#include "mambacpp/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::map<std::string, std::string> metadata;
  std::vector<mambacpp::TensorEntry> entries;
  try {
    entries = mambacpp::parse_safetensors(data, size, "fuzz.safetensors", &metadata);
  } catch (const mambacpp::Error&) {
    return 0;
  }

  for (const auto& entry : entries) {
    // Every accepted entry must lie inside the input and span numel * dtype size bytes.
    if (entry.data < data || entry.n_bytes > size ||
        entry.data + entry.n_bytes > data + size)
      std::abort();
    if (static_cast<uint64_t>(entry.numel()) * mambacpp::dtype_size(entry.dtype) !=
        entry.n_bytes)
      std::abort();
    if (entry.numel() > 0 && entry.n_bytes / mambacpp::dtype_size(entry.dtype) !=
                                 static_cast<uint64_t>(entry.numel()))
      std::abort();

    // Touch the first and last byte so ASan checks the range against the input.
    if (entry.n_bytes > 0) {
      volatile unsigned char first = entry.data[0];
      volatile unsigned char last = entry.data[entry.n_bytes - 1];
      (void)first;
      (void)last;
    }
  }
  return 0;
}
