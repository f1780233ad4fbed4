// Mamba-2 and hybrid fields of both config.json schemas.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "mambacpp/config.h"
#include "mambacpp/error.h"

namespace mambacpp {
namespace {

// The fields of state-spaces/mamba2-130m's Hugging Face conversion, as Python's json
// module writes them (a bare Infinity in time_step_limit).
const char* kHfMamba2 = R"({
  "model_type": "mamba2", "hidden_size": 768, "num_hidden_layers": 24,
  "vocab_size": 50288, "state_size": 128, "expand": 2, "conv_kernel": 4,
  "head_dim": 64, "num_heads": 24, "n_groups": 1, "chunk_size": 256,
  "time_step_limit": [0.0, Infinity], "norm_before_gate": true,
  "use_bias": false, "use_conv_bias": true, "tie_word_embeddings": true,
  "layer_norm_epsilon": 1e-05, "residual_in_fp32": true
})";

std::string replace(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(Mamba2Config, HuggingFaceFields) {
  ModelConfig c = parse_model_config(kHfMamba2, "config.json");
  EXPECT_EQ(c.mixer, MixerKind::Mamba2);
  EXPECT_EQ(c.d_model, 768);
  EXPECT_EQ(c.d_inner, 1536);
  EXPECT_EQ(c.d_ssm, 1536);
  EXPECT_EQ(c.headdim, 64);
  EXPECT_EQ(c.n_heads(), 24);
  EXPECT_EQ(c.ngroups, 1);
  EXPECT_EQ(c.d_state, 128);
  EXPECT_EQ(c.chunk_size, 256);
  EXPECT_EQ(c.padded_vocab_size, 50288);
  EXPECT_EQ(c.dt_limit.first, 0.0);
  EXPECT_TRUE(std::isinf(c.dt_limit.second));
  // transformers gates before the norm whatever config.json sets.
  EXPECT_FALSE(c.norm_before_gate);
  EXPECT_TRUE(c.tie_embeddings);
}

TEST(Mamba2Config, HuggingFaceDefaults) {
  std::string text = replace(kHfMamba2, R"("n_groups": 1, )", "");
  text = replace(text, R"("tie_word_embeddings": true,)", "");
  ModelConfig c = parse_model_config(text, "config.json");
  EXPECT_EQ(c.ngroups, 8);
  EXPECT_FALSE(c.tie_embeddings);
}

TEST(Mamba2Config, HuggingFaceInfinityForms) {
  std::string as_object =
      replace(kHfMamba2, "[0.0, Infinity]", R"([0.0, {"__float__": "Infinity"}])");
  EXPECT_TRUE(std::isinf(parse_model_config(as_object, "config.json").dt_limit.second));
  std::string finite = replace(kHfMamba2, "[0.0, Infinity]", "[0.001, 0.1]");
  ModelConfig c = parse_model_config(finite, "config.json");
  EXPECT_DOUBLE_EQ(c.dt_limit.first, 0.001);
  EXPECT_DOUBLE_EQ(c.dt_limit.second, 0.1);
  // The token inside a string is left alone.
  std::string in_string = replace(kHfMamba2, R"("mamba2", )", R"("mamba2", "note": "Infinity", )");
  EXPECT_NO_THROW(parse_model_config(in_string, "config.json"));
}

TEST(Mamba2Config, HuggingFaceHeadCountMustMatch) {
  std::string text = replace(kHfMamba2, R"("num_heads": 24)", R"("num_heads": 20)");
  try {
    parse_model_config(text, "config.json");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_heads"), std::string::npos) << e.what();
  }
}

TEST(Mamba2Config, HuggingFaceMissingHeadCount) {
  std::string text = replace(kHfMamba2, R"("num_heads": 24, )", "");
  try {
    parse_model_config(text, "config.json");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("num_heads' is missing"), std::string::npos) << message;
    EXPECT_NE(message.find("set it to 24"), std::string::npos) << message;
  }
}

TEST(Mamba2Config, StateSpacesHybridFields) {
  const char* text = R"({
    "d_model": 64, "n_layer": 3, "vocab_size": 256, "d_intermediate": 96,
    "ssm_cfg": {"layer": "Mamba2", "d_state": 16, "headdim": 16, "ngroups": 2,
                "chunk_size": 8, "d_ssm": 64, "D_has_hdim": true, "dt_limit": [0.01, 0.5]},
    "attn_layer_idx": [1],
    "attn_cfg": {"num_heads": 4, "num_heads_kv": 2, "head_dim": 16, "causal": true,
                 "d_conv": 4, "rotary_emb_dim": 8}
  })";
  ModelConfig c = parse_model_config(text, "config.json");
  EXPECT_EQ(c.mixer, MixerKind::Mamba2);
  EXPECT_EQ(c.d_inner, 128);
  EXPECT_EQ(c.d_ssm, 64);
  EXPECT_EQ(c.n_heads(), 4);
  EXPECT_EQ(c.ngroups, 2);
  EXPECT_TRUE(c.D_has_hdim);
  EXPECT_DOUBLE_EQ(c.dt_limit.first, 0.01);
  EXPECT_DOUBLE_EQ(c.dt_limit.second, 0.5);
  EXPECT_EQ(c.d_intermediate, 96);
  EXPECT_TRUE(c.is_attention_layer(1));
  EXPECT_FALSE(c.is_attention_layer(0));
  EXPECT_EQ(c.attn.num_heads_kv, 2);
  EXPECT_EQ(c.attn.rotary_emb_dim, 8);
}

TEST(Mamba2Config, RejectsNonCausalAttention) {
  const char* text = R"({
    "d_model": 64, "n_layer": 2, "vocab_size": 256,
    "ssm_cfg": {"layer": "Mamba2", "headdim": 16},
    "attn_layer_idx": [1], "attn_cfg": {"num_heads": 4, "head_dim": 16}
  })";
  EXPECT_THROW(parse_model_config(text, "config.json"), Error);
}

}  // namespace
}  // namespace mambacpp
