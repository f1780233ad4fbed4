// Whole-corpus checks: id counts and SHA-256 of the ids as u32 little-endian, computed with
// Hugging Face tokenizers on the same files.
#include <gtest/gtest.h>

#include "tokenizer/test_support.h"

namespace mambacpp::tokenizer_test {
namespace {

void check_corpus(const std::filesystem::path& path, std::size_t expected_count,
                  const std::string& expected_sha256) {
  const std::string text = read_file(path);
  const std::vector<int32_t> ids = neox_tokenizer().encode(text);
  EXPECT_EQ(ids.size(), expected_count);
  EXPECT_EQ(sha256_of_ids(ids), expected_sha256);

  const std::string decoded = neox_tokenizer().decode(ids);
  EXPECT_TRUE(decoded == nfc(text)) << "decode(encode(text)) differs from NFC(text)";
  EXPECT_TRUE(stream_decode(neox_tokenizer(), ids) == decoded) << "streaming decode differs";
}

TEST(TokenizerCorpus, WikiText2Test) {
  check_corpus(data_dir() / "text" / "wikitext-2" / "wiki.test.raw", 287159,
               "973595d9c7c580360a39eedde7297ec050f362a521940f7527eca4a00ea85278");
}

TEST(TokenizerCorpus, TinyShakespeare) {
  check_corpus(data_dir() / "text" / "tinyshakespeare" / "input.txt", 340240,
               "92b5b17c39a63edb202b1193393f21e82af084694b28a4d5d34041d2825dcd3b");
}

// Encoding with a warm word cache must give the same ids as a cold tokenizer.
TEST(TokenizerCorpus, WarmCacheGivesSameIds) {
  const std::string text = read_file(data_dir() / "text" / "tinyshakespeare" / "input.txt");
  const Tokenizer cold = Tokenizer::from_file(tokenizer_json_path());
  const std::string part = text.substr(0, 20000);
  const std::vector<int32_t> first = cold.encode(part);
  EXPECT_EQ(cold.encode(part), first);
  EXPECT_EQ(neox_tokenizer().encode(part), first);
}

}  // namespace
}  // namespace mambacpp::tokenizer_test
