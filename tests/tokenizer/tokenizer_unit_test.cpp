#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "mambacpp/error.h"
#include "tokenizer/test_support.h"
#include "tokenizer/utf8.h"

namespace mambacpp::tokenizer_test {
namespace {

using tokenizer_detail::append_utf8_lossy;
using tokenizer_detail::complete_utf8_prefix;
using tokenizer_detail::find_invalid_utf8;

std::string lossy(std::string_view bytes) {
  std::string text;
  append_utf8_lossy(text, bytes);
  return text;
}

// Expects `call` to throw mambacpp::Error whose message contains every one of `parts`.
template <typename Call>
void expect_error(Call&& call, std::initializer_list<std::string_view> parts) {
  try {
    call();
    ADD_FAILURE() << "no mambacpp::Error thrown";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (std::string_view part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "message: " << message << "\nmissing: " << part;
    }
  }
}

TEST(TokenizerSha256, KnownVectors) {
  // FIPS 180-4 examples.
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(TokenizerUtf8, ValidationFindsFirstBadByte) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::nullopt);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 \xF0\x9F\xA6\x99"), std::nullopt);
  EXPECT_EQ(find_invalid_utf8("ab\xFF"), std::optional<std::size_t>(2));
  EXPECT_EQ(find_invalid_utf8("a\xC0\x80"), std::optional<std::size_t>(1));      // overlong
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), std::optional<std::size_t>(0));   // surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), std::optional<std::size_t>(0));  // > U+10FFFF
  EXPECT_EQ(find_invalid_utf8("x\xE2\x82"), std::optional<std::size_t>(1));      // truncated
}

// The example of "U+FFFD substitution of maximal subparts" in the Unicode Standard,
// chapter 3: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
TEST(TokenizerUtf8, LossyDecodeReplacesMaximalSubparts) {
  const std::string replacement = "\xEF\xBF\xBD";
  EXPECT_EQ(lossy("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + replacement + replacement + replacement + "b" + replacement + "c" + replacement +
                replacement + "d");
  EXPECT_EQ(lossy("\xED\xA0\x80"), replacement + replacement + replacement);
  EXPECT_EQ(lossy("\xF0\x9F\xA6"), replacement);
  EXPECT_EQ(lossy("ok \xF0\x9F\xA6\x99"), "ok \xF0\x9F\xA6\x99");
}

TEST(TokenizerUtf8, CompletePrefixHoldsBackUnfinishedCharacter) {
  EXPECT_EQ(complete_utf8_prefix("abc"), 3u);
  EXPECT_EQ(complete_utf8_prefix("ab\xF0\x9F"), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab\xF0\x9F\xA6"), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab\xF0\x9F\xA6\x99"), 6u);
  EXPECT_EQ(complete_utf8_prefix("ab\xE2"), 2u);
  // An invalid sequence can be replaced at once: no later byte changes its U+FFFD.
  EXPECT_EQ(complete_utf8_prefix("ab\xFF"), 3u);
  EXPECT_EQ(complete_utf8_prefix("ab\xE0\x80"), 4u);
}

TEST(TokenizerApi, VocabularyFacts) {
  const Tokenizer& tokenizer = neox_tokenizer();
  EXPECT_EQ(tokenizer.vocab_size(), 50277u);
  EXPECT_EQ(tokenizer.eos_id(), 0);
  EXPECT_EQ(tokenizer.id_to_token(0), std::optional<std::string>("<|endoftext|>"));
  EXPECT_EQ(tokenizer.id_to_token(1533), std::optional<std::string>("\xC4\xA0world"));
  EXPECT_EQ(tokenizer.id_to_token(50276), std::optional<std::string>("  "));
  EXPECT_EQ(tokenizer.id_to_token(50277), std::nullopt);
  EXPECT_EQ(tokenizer.id_to_token(-1), std::nullopt);
  EXPECT_EQ(tokenizer.token_to_id("\xC4\xA0world"), std::optional<int32_t>(1533));
  EXPECT_EQ(tokenizer.token_to_id("no such token"), std::nullopt);
  EXPECT_TRUE(tokenizer.is_special(0));
  EXPECT_TRUE(tokenizer.is_special(1));
  EXPECT_FALSE(tokenizer.is_special(50276));
  EXPECT_FALSE(tokenizer.is_special(1533));
}

TEST(TokenizerApi, InvalidUtf8InputIsRejected) {
  expect_error([] { neox_tokenizer().encode("abc\xFFxyz"); }, {"not valid UTF-8", "0xFF", "offset 3"});
  expect_error([] { neox_tokenizer().encode("\xED\xA0\x80"); }, {"not valid UTF-8", "offset 0"});
}

TEST(TokenizerApi, DecodeSkipsUnknownIds) {
  const std::vector<int32_t> ids = {12092, -5, 50277, 1 << 30, 1533};
  EXPECT_EQ(neox_tokenizer().decode(ids), "Hello world");
}

// "🦙" is several byte-level tokens; no prefix of the stream may hold half of it.
TEST(TokenizerStreamDecoder, HoldsBackPartialCharacters) {
  const Tokenizer& tokenizer = neox_tokenizer();
  const std::vector<int32_t> ids = tokenizer.encode("a 🦙 b");
  ASSERT_GT(ids.size(), 4u);
  StreamDecoder decoder(tokenizer);
  std::string text;
  for (int32_t id : ids) {
    const std::string piece = decoder.push(id);
    EXPECT_EQ(find_invalid_utf8(piece), std::nullopt);
    text += piece;
  }
  text += decoder.finish();
  EXPECT_EQ(text, "a 🦙 b");
}

TEST(TokenizerStreamDecoder, MatchesDecodeOnBrokenSequences) {
  const Tokenizer& tokenizer = neox_tokenizer();
  const std::vector<int32_t> emoji = tokenizer.encode("🦙");
  ASSERT_GE(emoji.size(), 2u);
  // The emoji cut short, an unknown id in the middle, and the emoji again.
  std::vector<int32_t> ids = {emoji[0], 99999999, 0};
  ids.insert(ids.end(), emoji.begin(), emoji.end());
  ids.push_back(emoji[0]);
  EXPECT_EQ(stream_decode(tokenizer, ids), tokenizer.decode(ids));
  EXPECT_EQ(stream_decode(tokenizer, ids, true), tokenizer.decode(ids, true));
  for (std::size_t n = 0; n <= ids.size(); ++n) {
    const std::span<const int32_t> prefix(ids.data(), n);
    EXPECT_EQ(stream_decode(tokenizer, prefix), tokenizer.decode(prefix)) << "prefix " << n;
  }
}

TEST(TokenizerStreamDecoder, ResetStartsOver) {
  const Tokenizer& tokenizer = neox_tokenizer();
  const std::vector<int32_t> emoji = tokenizer.encode("🦙");
  StreamDecoder decoder(tokenizer);
  EXPECT_EQ(decoder.push(emoji[0]), "");
  decoder.reset();
  EXPECT_EQ(decoder.push(12092), "Hello");
  EXPECT_EQ(decoder.finish(), "");
}

TEST(TokenizerLoad, MissingFileIsNamed) {
  expect_error([] { Tokenizer::from_file("/nonexistent/dir/tokenizer.json"); },
               {"not found", "/nonexistent/dir/tokenizer.json"});
  expect_error([] { Tokenizer::from_directory("/nonexistent/dir"); },
               {"not found", "/nonexistent/dir/tokenizer.json"});
}

TEST(TokenizerLoad, MalformedJsonIsNamed) {
  expect_error([] { Tokenizer::from_json("{\"model\": ", "broken.json"); }, {"broken.json", "invalid JSON"});
  expect_error([] { Tokenizer::from_json("[1, 2]", "array.json"); }, {"array.json", "object"});
  expect_error([] { Tokenizer::from_json("{}", "empty.json"); }, {"empty.json", "\"model\""});
  expect_error([] { Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": [], "merges": []}})", "v.json"); },
               {"v.json", "model.vocab"});
  expect_error([] { Tokenizer::from_json(R"({"model": {"vocab": {"a": -1}, "merges": []}})", "neg.json"); },
               {"neg.json", "model.vocab[\"a\"]", "-1"});
  expect_error([] { Tokenizer::from_json(R"({"model": {"vocab": {"a": 0}, "merges": ["a b"]}})", "m.json"); },
               {"m.json", "\"b\"", "not in model.vocab"});
  expect_error([] { Tokenizer::from_json(R"({"model": {"vocab": {"a": 0}, "merges": ["ab"]}})", "s.json"); },
               {"s.json", "model.merges[0]"});
  expect_error([] { Tokenizer::from_json(R"({"model": {"vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 1}]})", "t.json"); },
               {"t.json", "added_tokens[0]", "\"content\""});
  expect_error([] { Tokenizer::from_json(R"({"model": {"vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 1, "content": "x", "special": false, "lstrip": false, "rstrip": false, "normalized": true}]})", "f.json"); },
               {"f.json", "added_tokens[0]", "\"single_word\""});
}

TEST(TokenizerLoad, UnsupportedComponentIsNamed) {
  const std::string model = R"("model": {"type": "BPE", "vocab": {"a": 0}, "merges": []})";
  expect_error([&] { Tokenizer::from_json("{" + model + R"(, "normalizer": {"type": "Lowercase"}})", "n.json"); },
               {"unsupported tokenizer component normalizer \"Lowercase\" in n.json"});
  expect_error([&] { Tokenizer::from_json("{" + model + R"(, "pre_tokenizer": {"type": "Whitespace"}})", "p.json"); },
               {"unsupported tokenizer component pre_tokenizer \"Whitespace\" in p.json"});
  expect_error([&] { Tokenizer::from_json("{" + model + R"(, "decoder": {"type": "WordPiece"}})", "d.json"); },
               {"unsupported tokenizer component decoder \"WordPiece\" in d.json"});
  expect_error([&] { Tokenizer::from_json("{" + model + R"(, "post_processor": {"type": "Foo"}})", "q.json"); },
               {"unsupported tokenizer component post_processor \"Foo\" in q.json"});
  expect_error([] { Tokenizer::from_json(R"({"model": {"type": "WordPiece", "vocab": {}}})", "w.json"); },
               {"unsupported tokenizer component model \"WordPiece\" in w.json"});
  expect_error([] { Tokenizer::from_json(R"({"model": {"type": "BPE", "dropout": 0.1, "vocab": {}, "merges": []}})", "x.json"); },
               {"unsupported tokenizer component model", "dropout", "x.json"});
}

TEST(TokenizerLoad, DirectoryReadsEosFromConfig) {
  const auto dir = std::filesystem::temp_directory_path() / ("mambacpp_tokenizer_dir_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(data_dir() / "tokenizer" / "variants" / "variant_c.json", dir / "tokenizer.json",
                             std::filesystem::copy_options::overwrite_existing);
  {
    std::ofstream config(dir / "tokenizer_config.json");
    config << R"({"eos_token": {"content": "<x>", "special": true}})";
  }
  const Tokenizer tokenizer = Tokenizer::from_directory(dir);
  EXPECT_EQ(tokenizer.eos_id(), tokenizer.token_to_id("<x>").value_or(-2));
  EXPECT_NE(tokenizer.eos_id(), -1);
  EXPECT_EQ(Tokenizer::from_file(dir / "tokenizer.json").eos_id(), -1);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mambacpp::tokenizer_test
