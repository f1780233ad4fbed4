// parse_model_config and load_model_config on both config.json schemas and on malformed
// files. Each error must name the file and the field.
#include <gtest/gtest.h>

#include <string>

#include "mambacpp/config.h"
#include "support/golden_file.h"
#include "unit/checkpoint_fixtures.h"

namespace mambacpp::testing {
namespace {

const std::string kPath = "model/config.json";

ModelConfig parse(const std::string& text) { return parse_model_config(text, kPath); }

TEST(ModelConfig, StateSpacesSchema) {
  ModelConfig c = load_model_config(test_data("golden/mamba1_tiny"));
  EXPECT_EQ(c.schema, "state-spaces");
  EXPECT_EQ(c.mixer, MixerKind::Mamba1);
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.vocab_size, 256);
  EXPECT_EQ(c.padded_vocab_size, 256);
  EXPECT_EQ(c.d_state, 16);
  EXPECT_EQ(c.d_conv, 4);
  EXPECT_EQ(c.d_inner, 128);
  EXPECT_EQ(c.dt_rank, 4);  // "auto": ceil(64 / 16)
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_FALSE(c.bias);
  EXPECT_TRUE(c.conv_bias);
}

TEST(ModelConfig, HuggingFaceSchema) {
  ModelConfig c = load_model_config(test_data("golden/mamba1_tiny/hf"));
  EXPECT_EQ(c.schema, "huggingface");
  EXPECT_EQ(c.mixer, MixerKind::Mamba1);
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.vocab_size, 256);
  EXPECT_EQ(c.padded_vocab_size, 256);
  EXPECT_EQ(c.d_state, 16);
  EXPECT_EQ(c.d_conv, 4);
  EXPECT_EQ(c.d_inner, 128);
  EXPECT_EQ(c.dt_rank, 4);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_FALSE(c.bias);
  EXPECT_TRUE(c.conv_bias);
}

TEST(ModelConfig, PadsVocabulary) {
  // 50277 rounded up to a multiple of 8 is 50280, as in state-spaces/mamba-130m.
  ModelConfig c = parse(R"({"d_model": 768, "n_layer": 24, "vocab_size": 50277,
                            "pad_vocab_size_multiple": 8})");
  EXPECT_EQ(c.vocab_size, 50277);
  EXPECT_EQ(c.padded_vocab_size, 50280);
  EXPECT_EQ(c.dt_rank, 48);  // ceil(768 / 16)
}

TEST(ModelConfig, MissingConfigJson) {
  TempDir dir;
  expect_error_naming([&] { load_model_config(dir.path().string()); },
                      {dir.file("config.json"), "not found"});
}

TEST(ModelConfig, MalformedJson) {
  expect_error_naming([] { parse(R"({"d_model": 64, "n_layer": )"); }, {kPath, "invalid JSON"});
  expect_error_naming([] { parse(""); }, {kPath, "invalid JSON"});

  TempDir dir;
  write_bytes(dir.file("config.json"), "{\"d_model\": 64,, }");
  expect_error_naming([&] { load_model_config(dir.path().string()); },
                      {dir.file("config.json"), "invalid JSON"});
}

TEST(ModelConfig, NotAnObject) {
  expect_error_naming([] { parse("[64, 2]"); }, {kPath, "JSON object"});
}

TEST(ModelConfig, UnknownSchema) {
  expect_error_naming([] { parse(R"({"hidden": 64})"); }, {kPath, "d_model", "model_type"});
  expect_error_naming([] { parse(R"({"model_type": "llama", "hidden_size": 64})"); },
                      {kPath, "model_type", "llama"});
}

TEST(ModelConfig, FieldOfWrongType) {
  expect_error_naming([] { parse(R"({"d_model": "64", "n_layer": 2})"); },
                      {kPath, "'d_model'", "integer", "\"64\""});
  expect_error_naming([] { parse(R"({"d_model": 64.5, "n_layer": 2})"); },
                      {kPath, "'d_model'", "integer", "64.5"});
  expect_error_naming([] { parse(R"({"d_model": 64, "tie_embeddings": "yes"})"); },
                      {kPath, "'tie_embeddings'", "true or false"});
  expect_error_naming([] { parse(R"({"d_model": 64, "ssm_cfg": [16]})"); },
                      {kPath, "'ssm_cfg'", "JSON object"});
  expect_error_naming([] { parse(R"({"d_model": 64, "ssm_cfg": {"d_state": true}})"); },
                      {kPath, "'ssm_cfg.d_state'", "integer"});
  expect_error_naming([] { parse(R"({"d_model": 64, "ssm_cfg": {"dt_rank": "half"}})"); },
                      {kPath, "'ssm_cfg.dt_rank'", "\"auto\""});
  expect_error_naming([] { parse(R"({"model_type": "mamba", "hidden_size": [64]})"); },
                      {kPath, "'hidden_size'", "integer"});
  expect_error_naming([] { parse(R"({"model_type": "mamba", "layer_norm_epsilon": "1e-5"})"); },
                      {kPath, "'layer_norm_epsilon'", "number"});
  expect_error_naming([] { parse(R"({"model_type": 7})"); }, {kPath, "'model_type'", "string"});
}

TEST(ModelConfig, NonPositiveSizes) {
  expect_error_naming([] { parse(R"({"d_model": 64, "n_layer": 0})"); },
                      {kPath, "'n_layer'", "positive", "0"});
  expect_error_naming([] { parse(R"({"d_model": -64})"); }, {kPath, "'d_model'", "positive"});
  expect_error_naming([] { parse(R"({"model_type": "mamba", "state_size": 0})"); },
                      {kPath, "'state_size'", "positive"});
}

TEST(ModelConfig, UnsupportedValues) {
  expect_error_naming([] { parse(R"({"d_model": 64, "rms_norm": false})"); },
                      {kPath, "'rms_norm'"});
  expect_error_naming([] { parse(R"({"d_model": 64, "ssm_cfg": {"layer": "Mamba3"}})"); },
                      {kPath, "'ssm_cfg.layer'", "Mamba3"});
  expect_error_naming([] { parse(R"({"d_model": 64, "n_layer": 2, "attn_layer_idx": [2]})"); },
                      {kPath, "attn_layer_idx", "2"});
}

TEST(ModelConfig, SizesTooLargeToCompute) {
  // Sizes whose products (padded vocabulary, d_inner = expand * d_model) overflow int64
  // must be rejected with the field named, not wrap around.
  const std::string max = "9223372036854775807";
  expect_error_naming([&] { parse(R"({"d_model": 64, "vocab_size": )" + max + "}"); },
                      {kPath, "'vocab_size'"});
  expect_error_naming([&] { parse(R"({"d_model": )" + max + "}"); }, {kPath, "'d_model'"});
  expect_error_naming([&] { parse(R"({"d_model": 64, "ssm_cfg": {"expand": )" + max + "}}"); },
                      {kPath, "'ssm_cfg.expand'"});
  expect_error_naming([&] { parse(R"({"model_type": "mamba", "hidden_size": )" + max + "}"); },
                      {kPath, "'hidden_size'"});
  expect_error_naming([] { parse(R"({"model_type": "mamba", "expand": 1e300})"); },
                      {kPath, "'expand'"});
  expect_error_naming([] { parse(R"({"d_model": 1e300})"); }, {kPath, "'d_model'"});
  expect_error_naming([] { parse(R"({"d_model": 18446744073709551615})"); }, {kPath, "'d_model'"});
}

TEST(ModelConfig, LargestAcceptedSize) {
  // 2^24 is the largest size accepted; one more is rejected.
  ModelConfig c = parse(R"({"d_model": 64, "vocab_size": 16777216})");
  EXPECT_EQ(c.vocab_size, 16777216);
  expect_error_naming([] { parse(R"({"d_model": 64, "vocab_size": 16777217})"); },
                      {kPath, "'vocab_size'", "16777216"});
}

TEST(ModelConfig, DeeplyNestedValue) {
  // A million nested arrays parse without recursion, so the error message must not
  // recurse over them either (a recursive dump() overflowed the stack here).
  const size_t depth = 1000000;
  std::string text = R"({"d_model": )" + std::string(depth, '[') + std::string(depth, ']') + "}";
  expect_error_naming([&] { parse(text); }, {kPath, "'d_model'", "integer"});

  text = R"({"d_model": 64, "ssm_cfg": {"dt_limit": )" + std::string(depth, '[') +
         std::string(depth, ']') + "}}";
  expect_error_naming([&] { parse(text); }, {kPath, "'ssm_cfg.dt_limit'"});
}

TEST(ModelConfig, LongValueShortenedInMessage) {
  // A wrong value of 100000 elements is quoted only in part, so the message stays one
  // readable line.
  std::string list = "[0";
  for (int i = 1; i < 100000; ++i) list += ",0";
  list += "]";
  try {
    parse(R"({"d_model": )" + list + "}");
    ADD_FAILURE() << "expected mambacpp::Error";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("'d_model'"), std::string::npos) << message;
    EXPECT_NE(message.find("[0,0,0"), std::string::npos) << message;
    EXPECT_LT(message.size(), 300u) << message.substr(0, 300);
  }
}

}  // namespace
}  // namespace mambacpp::testing
