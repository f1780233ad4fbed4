// libFuzzer target: parse_train_state on arbitrary text, as `mambacpp train --resume`
// reads train_state.json. The parser must either return a state or throw
// mambacpp::Error; any other exception or a sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "mambacpp/error.h"
#include "train/train_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    mambacpp::train::SavedTrainState state =
        mambacpp::train::parse_train_state(text, "fuzz/train_state.json");
    mambacpp::train::validate_train_options(state.options);
  } catch (const mambacpp::Error&) {
  }
  return 0;
}
