// The byte-level tokenizer.json that scripts/make_byte_tokenizer.py writes (the shipped
// model's): every text maps to its UTF-8 bytes, one id per byte, and back.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mambacpp/tokenizer.h"
#include "support/golden_file.h"

namespace mambacpp::testing {
namespace {

Tokenizer byte_tokenizer() {
  return Tokenizer::from_file(test_data("tokenizer/byte_level/tokenizer.json"));
}

std::vector<int32_t> utf8_bytes(const std::string& text) {
  std::vector<int32_t> ids;
  for (unsigned char c : text) ids.push_back(c);
  return ids;
}

TEST(ByteLevelTokenizer, EncodesUtf8Bytes) {
  const Tokenizer tokenizer = byte_tokenizer();
  EXPECT_EQ(tokenizer.vocab_size(), 256);
  const std::vector<std::string> texts = {
      "ROMEO:\nBut soft!", "  two  spaces\t\ttabs", "caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80",
      std::string("nul\0byte", 8), std::string("\x01\x7f", 2)};
  for (const std::string& text : texts) {
    EXPECT_EQ(tokenizer.encode(text, false), utf8_bytes(text)) << text;
  }
}

TEST(ByteLevelTokenizer, DecodesEveryAsciiByte) {
  const Tokenizer tokenizer = byte_tokenizer();
  std::vector<int32_t> ascii(128);
  for (int i = 0; i < 128; ++i) ascii[i] = i;
  const std::string decoded = tokenizer.decode(ascii);
  ASSERT_EQ(decoded.size(), 128u);
  for (int i = 0; i < 128; ++i) EXPECT_EQ(static_cast<unsigned char>(decoded[i]), i) << i;
}

// Bytes that do not form UTF-8 decode to U+FFFD, as in Hugging Face tokenizers: its Rust
// and JavaScript builds (npm tokenizers 0.23.2 and @huggingface/tokenizers 0.2.0) both decode ids 97, 255, 98 to "a\uFFFDb".
TEST(ByteLevelTokenizer, InvalidUtf8DecodesToReplacement) {
  const Tokenizer tokenizer = byte_tokenizer();
  EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{0xc3, 0xa9}), "\xc3\xa9");
  EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{'a', 0xff, 'b'}), "a\xef\xbf\xbd" "b");
}

TEST(ByteLevelTokenizer, ShakespeareRoundTrips) {
  const Tokenizer tokenizer = byte_tokenizer();
  const std::string text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n";
  const std::vector<int32_t> ids = tokenizer.encode(text, false);
  EXPECT_EQ(ids, utf8_bytes(text));
  EXPECT_EQ(tokenizer.decode(ids), text);
}

}  // namespace
}  // namespace mambacpp::testing
