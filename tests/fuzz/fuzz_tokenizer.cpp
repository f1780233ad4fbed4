// libFuzzer target: the GPT-NeoX tokenizer on arbitrary bytes. The first byte picks a mode:
//   even: encode the rest as text. Invalid UTF-8 must raise mambacpp::Error; valid text must
//         encode to ids in range that decode to valid UTF-8, and the streaming decoder must
//         produce the same text as decode;
//   odd:  read the rest as little-endian 16-bit ids (some out of range) and check that
//         decode returns valid UTF-8 that the streaming decoder reproduces.
// The tokenizer is tests/data/tokenizer/tokenizer.json, or $MAMBACPP_TOKENIZER_JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "mambacpp/error.h"
#include "mambacpp/tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

const mambacpp::Tokenizer& fuzz_tokenizer() {
  static const mambacpp::Tokenizer tokenizer = [] {
    const char* override_path = std::getenv("MAMBACPP_TOKENIZER_JSON");
    const std::filesystem::path path =
        override_path != nullptr
            ? std::filesystem::path(override_path)
            : std::filesystem::path(__FILE__).parent_path().parent_path() / "data" / "tokenizer" /
                  "tokenizer.json";
    return mambacpp::Tokenizer::from_file(path);
  }();
  return tokenizer;
}

std::string stream_decode(const mambacpp::Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  mambacpp::StreamDecoder decoder(tokenizer);
  std::string text;
  for (int32_t id : ids) {
    const std::string piece = decoder.push(id);
    if (mambacpp::tokenizer_detail::find_invalid_utf8(piece)) std::abort();
    text += piece;
  }
  return text + decoder.finish();
}

void check_decode(const mambacpp::Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  const std::string text = tokenizer.decode(ids);
  if (mambacpp::tokenizer_detail::find_invalid_utf8(text)) std::abort();
  if (stream_decode(tokenizer, ids) != text) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const mambacpp::Tokenizer& tokenizer = fuzz_tokenizer();
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

  if (data[0] % 2 == 0) {
    const bool valid = !mambacpp::tokenizer_detail::find_invalid_utf8(rest);
    std::vector<int32_t> ids;
    try {
      ids = tokenizer.encode(rest);
    } catch (const mambacpp::Error&) {
      if (valid) std::abort();  // valid UTF-8 must always encode
      return 0;
    }
    if (!valid) std::abort();
    for (int32_t id : ids) {
      if (id < 0 || static_cast<std::size_t>(id) >= tokenizer.vocab_size()) std::abort();
    }
    check_decode(tokenizer, ids);
    return 0;
  }

  std::vector<int32_t> ids;
  for (std::size_t i = 0; i + 1 < rest.size(); i += 2) {
    ids.push_back(static_cast<uint8_t>(rest[i]) | (static_cast<uint8_t>(rest[i + 1]) << 8));
  }
  check_decode(tokenizer, ids);
  return 0;
}
