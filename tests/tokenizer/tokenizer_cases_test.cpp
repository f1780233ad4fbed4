// Exact-match tests against ids produced by Hugging Face tokenizers 0.23.2 (the Rust
// library, run offline through tests/data/tokenizer/generate) and by llama.cpp's fixtures.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tokenizer/test_support.h"

namespace mambacpp::tokenizer_test {
namespace {

using nlohmann::json;

std::vector<int32_t> ids_of(const json& array) { return array.get<std::vector<int32_t>>(); }

// Checks ids, token strings, decoded text and streaming decode of one oracle record.
void check_record(const Tokenizer& tokenizer, const json& record) {
  const std::string text = record.at("text").get<std::string>();
  SCOPED_TRACE("text: " + json(text).dump());
  const std::vector<int32_t> expected = ids_of(record.at("ids"));
  const std::vector<int32_t> ids = tokenizer.encode(text, false);
  EXPECT_EQ(ids, expected);
  if (record.contains("tokens")) {
    // Hugging Face shows an lstrip/rstrip added token with the white space it absorbed;
    // ids_to_tokens gives the token's content.
    const auto hf_tokens = record.at("tokens").get<std::vector<std::string>>();
    const auto tokens = tokenizer.ids_to_tokens(expected);
    ASSERT_EQ(tokens.size(), hf_tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::size_t first = hf_tokens[i].find_first_not_of(" \t\n");
      const std::size_t last = hf_tokens[i].find_last_not_of(" \t\n");
      const std::string trimmed =
          first == std::string::npos ? hf_tokens[i] : hf_tokens[i].substr(first, last - first + 1);
      EXPECT_TRUE(tokens[i] == hf_tokens[i] || tokens[i] == trimmed)
          << "token " << i << ": " << json(tokens[i]).dump() << " vs " << json(hf_tokens[i]).dump();
    }
  }
  const std::string expected_text = record.at("decoded").get<std::string>();
  EXPECT_EQ(tokenizer.decode(expected), expected_text);
  EXPECT_EQ(stream_decode(tokenizer, expected), expected_text);
  if (record.contains("decoded_skip_special")) {
    const std::string skipped = record.at("decoded_skip_special").get<std::string>();
    EXPECT_EQ(tokenizer.decode(expected, true), skipped);
    EXPECT_EQ(stream_decode(tokenizer, expected, true), skipped);
  }
  if (record.contains("ids_with_special")) {
    EXPECT_EQ(tokenizer.encode(text, true), ids_of(record.at("ids_with_special")));
  }
}

int count_exact(const Tokenizer& tokenizer, const std::vector<json>& records) {
  int exact = 0;
  for (const json& record : records) {
    if (tokenizer.encode(record.at("text").get<std::string>(), false) == ids_of(record.at("ids"))) {
      ++exact;
    }
  }
  return exact;
}

TEST(TokenizerGolden, AllCasesMatchHuggingFace) {
  const auto records = read_jsonl(data_dir() / "tokenizer" / "golden_tokenization.jsonl");
  ASSERT_EQ(records.size(), 54u);
  for (const json& record : records) check_record(neox_tokenizer(), record);
  EXPECT_EQ(count_exact(neox_tokenizer(), records), 54);
}

TEST(TokenizerOracle, ExtraCasesMatchHuggingFace) {
  const auto records = read_jsonl(data_dir() / "tokenizer" / "oracle_cases.jsonl");
  ASSERT_GE(records.size(), 190u);
  for (const json& record : records) {
    ASSERT_TRUE(record.at("backends_agree").get<bool>());
    check_record(neox_tokenizer(), record);
  }
  EXPECT_EQ(count_exact(neox_tokenizer(), records), static_cast<int>(records.size()));
}

// Letters and numbers from recent Unicode versions and combining marks that the normalizer
// of tokenizers 0.23.2 does not know, plus random strings over all planes.
TEST(TokenizerOracle, UnicodeVersionCases) {
  const auto records = read_jsonl(data_dir() / "tokenizer" / "unicode_cases.jsonl");
  ASSERT_GE(records.size(), 1700u);
  for (const json& record : records) check_record(neox_tokenizer(), record);
  EXPECT_EQ(count_exact(neox_tokenizer(), records), static_cast<int>(records.size()));
}

// Random id sequences, many of which cut characters apart, decoded by tokenizers 0.23.2.
TEST(TokenizerOracle, DecodeRandomIds) {
  const auto records = read_jsonl(data_dir() / "tokenizer" / "decode_cases.jsonl");
  ASSERT_EQ(records.size(), 500u);
  for (const json& record : records) {
    const std::vector<int32_t> ids = ids_of(record.at("ids"));
    SCOPED_TRACE("ids: " + record.at("ids").dump());
    EXPECT_EQ(neox_tokenizer().decode(ids), record.at("decoded").get<std::string>());
    EXPECT_EQ(neox_tokenizer().decode(ids, true), record.at("decoded_skip_special").get<std::string>());
    EXPECT_EQ(stream_decode(neox_tokenizer(), ids), record.at("decoded").get<std::string>());
  }
}

// The llama.cpp fixture: test strings separated by a marker line, and one line of
// space-separated ids per string.
TEST(TokenizerLlamaCppFixture, MptStringsMatch) {
  const auto dir = data_dir() / "tokenizer" / "llama.cpp-fixtures";
  const std::string inputs = read_file(dir / "ggml-vocab-mpt.gguf.inp");
  const std::string marker = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  std::size_t start = 0;
  for (std::size_t at = inputs.find(marker); at != std::string::npos; at = inputs.find(marker, start)) {
    texts.push_back(inputs.substr(start, at - start));
    start = at + marker.size();
  }
  std::istringstream outputs(read_file(dir / "ggml-vocab-mpt.gguf.out"));
  std::vector<std::vector<int32_t>> expected;
  std::string line;
  while (std::getline(outputs, line)) {
    std::istringstream numbers(line);
    std::vector<int32_t> ids;
    for (int32_t id = 0; numbers >> id;) ids.push_back(id);
    expected.push_back(std::move(ids));
  }
  ASSERT_EQ(texts.size(), 46u);
  ASSERT_GE(expected.size(), texts.size());

  int exact = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i) + ": " + json(texts[i]).dump());
    const std::vector<int32_t> ids = neox_tokenizer().encode(texts[i]);
    EXPECT_EQ(ids, expected[i]);
    if (ids == expected[i]) ++exact;
    EXPECT_EQ(neox_tokenizer().decode(ids), nfc(texts[i]));
  }
  EXPECT_EQ(exact, 46);
}

// Variants of the GPT-NeoX file with other options: the base file plus a patch
// ({"set": top-level fields, "set_model": model fields, "merges_as_pairs": bool}).
Tokenizer load_patched_variant(const std::string& name) {
  json base = json::parse(read_file(tokenizer_json_path()));
  const json patch = json::parse(read_file(data_dir() / "tokenizer" / "variants" / (name + ".patch.json")));
  const json top_level = patch.value("set", json::object());
  const json model_fields = patch.value("set_model", json::object());
  for (const auto& [key, value] : top_level.items()) base[key] = value;
  for (const auto& [key, value] : model_fields.items()) base["model"][key] = value;
  if (patch.value("merges_as_pairs", false)) {
    json pairs = json::array();
    for (const json& merge : base["model"]["merges"]) {
      const std::string text = merge.get<std::string>();
      const std::size_t space = text.find(' ');
      pairs.push_back(json::array({text.substr(0, space), text.substr(space + 1)}));
    }
    base["model"]["merges"] = std::move(pairs);
  }
  return Tokenizer::from_json(base.dump(), name);
}

void check_variant(const Tokenizer& tokenizer, const std::string& name) {
  const auto records = read_jsonl(data_dir() / "tokenizer" / "variants" / (name + ".cases.jsonl"));
  ASSERT_EQ(records.size(), 30u);
  for (const json& record : records) check_record(tokenizer, record);
}

// Pair-form merges, NFD then NFKC, add_prefix_space, lstrip/rstrip/single_word tokens,
// a normalized token whose content changes under NFKC, and a TemplateProcessing.
TEST(TokenizerVariant, AddedTokenOptionsAndTemplate) {
  const Tokenizer tokenizer = load_patched_variant("variant_a");
  check_variant(tokenizer, "variant_a");
  // "hello" is in the model vocabulary, so the added token keeps the model's id.
  EXPECT_EQ(tokenizer.token_to_id("hello"), std::optional<int32_t>(25521));
  EXPECT_TRUE(tokenizer.is_special(50277));
}

// ignore_merges, ByteLevel without the split pattern, no normalizer, Sequence post-processor.
TEST(TokenizerVariant, IgnoreMergesWithoutRegex) {
  check_variant(load_patched_variant("variant_b"), "variant_b");
}

// continuing_subword_prefix, fused unk, no decoder (tokens joined with spaces).
TEST(TokenizerVariant, SubwordPrefixAndFusedUnk) {
  const auto path = data_dir() / "tokenizer" / "variants" / "variant_c.json";
  check_variant(Tokenizer::from_file(path), "variant_c");
}

// end_of_word_suffix, byte_fallback, unk without fusing, RobertaProcessing.
TEST(TokenizerVariant, WordSuffixAndByteFallback) {
  const auto path = data_dir() / "tokenizer" / "variants" / "variant_d.json";
  check_variant(Tokenizer::from_file(path), "variant_d");
}

}  // namespace
}  // namespace mambacpp::tokenizer_test
