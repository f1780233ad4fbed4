// libFuzzer target: parse_model_config on arbitrary text. The parser must either return
// a config or throw mambacpp::Error. Any other exception or a sanitizer report, signed
// overflow included, is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "mambacpp/config.h"
#include "mambacpp/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    mambacpp::ModelConfig config = mambacpp::parse_model_config(text, "fuzz/config.json");
    (void)config.n_heads();
  } catch (const mambacpp::Error&) {
  }
  return 0;
}
