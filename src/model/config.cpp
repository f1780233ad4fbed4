#include "mambacpp/config.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mambacpp/error.h"

namespace mambacpp {

namespace {

using nlohmann::json;

// The largest magnitude any integer size field may have. Released Mamba models stay far
// below it (vocabularies of a few hundred thousand, widths of a few thousand), and it keeps
// the shapes computed from two fields, such as 2 * expand * d_model, far from int64 overflow.
constexpr int64_t kMaxSize = int64_t{1} << 24;

// Returns whether `value` has arrays or objects nested more than `levels` deep. It recurses
// at most `levels` times, whatever the depth of `value`.
bool nested_deeper_than(const json& value, int levels) {
  if (!value.is_structured()) return false;
  if (levels == 0) return true;
  for (const json& element : value)
    if (nested_deeper_than(element, levels - 1)) return true;
  return false;
}

// Returns `value` as ASCII JSON text for an error message, cut to about 80 characters.
// dump() recurses once per nesting level, so a deeply nested value is only named: the
// parser accepts any depth, and dumping a million levels overflowed the stack.
std::string describe(const json& value) {
  constexpr size_t kMaxChars = 80;
  if (nested_deeper_than(value, 16))
    return value.is_array() ? "a deeply nested array" : "a deeply nested object";
  std::string text = value.dump(-1, ' ', /*ensure_ascii=*/true);
  if (text.size() > kMaxChars) text = text.substr(0, kMaxChars - 3) + "...";
  return text;
}

// Reads typed fields out of one JSON object and names the file and field in each error.
class FieldReader {
 public:
  FieldReader(const json& object, std::string path, std::string prefix)
      : object_(object), path_(std::move(path)), prefix_(std::move(prefix)) {}

  bool has(const char* key) const { return object_.contains(key) && !object_[key].is_null(); }

  int64_t integer(const char* key, int64_t fallback) const {
    if (!has(key)) return fallback;
    const json& v = object_[key];
    bool whole_float = v.is_number_float() && std::floor(v.get<double>()) == v.get<double>();
    if (!v.is_number_integer() && !whole_float) fail(key, "must be an integer, got " + describe(v));
    // Compared as a double first, so a value beyond the int64 range is never converted.
    if (std::abs(v.get<double>()) > static_cast<double>(kMaxSize))
      fail(key, "must be at most " + std::to_string(kMaxSize) + " in absolute value, got " +
                    describe(v));
    return v.is_number_float() ? static_cast<int64_t>(v.get<double>()) : v.get<int64_t>();
  }

  int64_t positive(const char* key, int64_t fallback) const {
    int64_t v = integer(key, fallback);
    if (v <= 0) fail(key, "must be positive, got " + std::to_string(v));
    return v;
  }

  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    const json& v = object_[key];
    if (!v.is_number()) fail(key, "must be a number, got " + describe(v));
    return v.get<double>();
  }

  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = object_[key];
    if (!v.is_boolean()) fail(key, "must be true or false, got " + describe(v));
    return v.get<bool>();
  }

  // A positive integer, or the string "auto" for `auto_value`.
  int64_t integer_or_auto(const char* key, int64_t auto_value) const {
    if (has(key) && object_[key].is_string()) {
      if (object_[key].get<std::string>() == "auto") return auto_value;
      fail(key, "must be a positive integer or \"auto\", got " + describe(object_[key]));
    }
    return positive(key, auto_value);
  }

  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const json& v = object_[key];
    if (!v.is_string()) fail(key, "must be a string, got " + describe(v));
    return v.get<std::string>();
  }

  const json& object(const char* key) const {
    static const json empty = json::object();
    if (!has(key)) return empty;
    const json& v = object_[key];
    if (!v.is_object()) fail(key, "must be a JSON object, got " + describe(v));
    return v;
  }

  std::vector<int64_t> integer_list(const char* key) const {
    std::vector<int64_t> out;
    if (!has(key)) return out;
    const json& v = object_[key];
    if (!v.is_array()) fail(key, "must be a list of integers, got " + describe(v));
    for (const auto& e : v) {
      if (!e.is_number_integer()) fail(key, "must be a list of integers, got " + describe(v));
      out.push_back(e.get<int64_t>());
    }
    return out;
  }

  // dt_limit / time_step_limit: a pair [min, max]; JSON cannot hold inf, so a missing or
  // null max means no upper limit.
  std::pair<double, double> limit_pair(const char* key) const {
    std::pair<double, double> out{0.0, std::numeric_limits<double>::infinity()};
    if (!has(key)) return out;
    const json& v = object_[key];
    if (!v.is_array() || v.size() != 2) fail(key, "must be a pair [min, max], got " + describe(v));
    out.first = limit_value(key, v[0], out.first);
    out.second = limit_value(key, v[1], out.second);
    if (!(out.first <= out.second))
      fail(key, "must have min <= max, got " + describe(v));
    return out;
  }

  // One end of a limit pair: a number, null (no limit), or an infinity that Python's json
  // module writes as a bare Infinity token (turned into a marker string before parsing)
  // or that transformers 5 writes as {"__float__": "Infinity"}.
  double limit_value(const char* key, const json& v, double fallback) const {
    if (v.is_null()) return fallback;
    if (v.is_number()) return v.get<double>();
    const json* text = &v;
    if (v.is_object() && v.contains("__float__")) text = &v["__float__"];
    if (text->is_string()) {
      std::string s = text->get<std::string>();
      if (s == "Infinity" || s == "inf") return std::numeric_limits<double>::infinity();
      if (s == "-Infinity" || s == "-inf") return -std::numeric_limits<double>::infinity();
    }
    fail(key, "must contain numbers or Infinity, got " + describe(v));
  }

  [[noreturn]] void fail(const char* key, const std::string& what) const {
    throw Error(path_ + ": field '" + prefix_ + key + "' " + what);
  }

  const std::string& path() const { return path_; }

 private:
  const json& object_;
  std::string path_;
  std::string prefix_;
};

MixerKind parse_mixer_kind(const std::string& layer, const FieldReader& ssm) {
  if (layer == "Mamba1") return MixerKind::Mamba1;
  if (layer == "Mamba2") return MixerKind::Mamba2;
  ssm.fail("layer", "must be \"Mamba1\" or \"Mamba2\", got \"" + layer + "\"");
}

int64_t round_up(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

void parse_attention(const FieldReader& attn, AttentionConfig& out) {
  out.num_heads = attn.positive("num_heads", 1);
  out.num_heads_kv = attn.positive("num_heads_kv", out.num_heads);
  out.head_dim = attn.positive("head_dim", 64);
  out.d_conv = attn.integer("d_conv", 0);
  out.rotary_emb_dim = attn.integer("rotary_emb_dim", 0);
  out.rotary_base = attn.number("rotary_emb_base", 10000.0);
  out.softmax_scale = attn.number("softmax_scale", 0.0);
  out.causal = attn.boolean("causal", false);
  out.qkv_proj_bias = attn.boolean("qkv_proj_bias", true);
  out.out_proj_bias = attn.boolean("out_proj_bias", true);
  out.mlp_dim = attn.integer("mlp_dim", 0);
}

// The state-spaces MambaConfig schema: d_model, n_layer, ssm_cfg, ...
void parse_state_spaces(const FieldReader& top, ModelConfig& c) {
  c.schema = "state-spaces";
  c.d_model = top.positive("d_model", 2560);
  c.n_layer = top.positive("n_layer", 64);
  c.vocab_size = top.positive("vocab_size", 50277);
  c.pad_vocab_size_multiple = top.positive("pad_vocab_size_multiple", 8);
  c.padded_vocab_size = round_up(c.vocab_size, c.pad_vocab_size_multiple);
  c.tie_embeddings = top.boolean("tie_embeddings", true);
  c.residual_in_fp32 = top.boolean("residual_in_fp32", true);
  c.d_intermediate = top.integer("d_intermediate", 0);
  c.attn_layer_idx = top.integer_list("attn_layer_idx");
  if (!top.boolean("rms_norm", true))
    top.fail("rms_norm", "is false (LayerNorm blocks), which this engine does not support");

  FieldReader ssm(top.object("ssm_cfg"), top.path(), "ssm_cfg.");
  c.mixer = parse_mixer_kind(ssm.string("layer", "Mamba1"), ssm);
  bool mamba2 = c.mixer == MixerKind::Mamba2;
  c.d_state = ssm.positive("d_state", mamba2 ? 128 : 16);
  c.d_conv = ssm.positive("d_conv", 4);
  c.expand = ssm.positive("expand", 2);
  c.d_inner = c.expand * c.d_model;
  c.dt_rank = ssm.integer_or_auto("dt_rank", (c.d_model + 15) / 16);
  c.bias = ssm.boolean("bias", false);
  c.conv_bias = ssm.boolean("conv_bias", true);
  c.headdim = ssm.positive("headdim", 64);
  c.ngroups = ssm.positive("ngroups", 1);
  c.chunk_size = ssm.positive("chunk_size", 256);
  c.d_ssm = ssm.integer("d_ssm", c.d_inner);
  c.D_has_hdim = ssm.boolean("D_has_hdim", false);
  c.rmsnorm = ssm.boolean("rmsnorm", true);
  c.norm_before_gate = ssm.boolean("norm_before_gate", false);
  c.dt_limit = ssm.limit_pair("dt_limit");

  FieldReader attn(top.object("attn_cfg"), top.path(), "attn_cfg.");
  if (!c.attn_layer_idx.empty()) parse_attention(attn, c.attn);
}

// The Hugging Face schema: model_type "mamba" or "mamba2", hidden_size, state_size, ...
// vocab_size there is already the padded size.
void parse_hugging_face(const FieldReader& top, const std::string& model_type, ModelConfig& c) {
  c.schema = "huggingface";
  if (model_type == "mamba") {
    c.mixer = MixerKind::Mamba1;
  } else if (model_type == "mamba2") {
    c.mixer = MixerKind::Mamba2;
  } else {
    top.fail("model_type", "is \"" + model_type + "\"; supported: \"mamba\", \"mamba2\"");
  }
  bool mamba2 = c.mixer == MixerKind::Mamba2;

  // Defaults are those of transformers' MambaConfig / Mamba2Config (v4.44).
  c.d_model = top.positive("hidden_size", mamba2 ? 4096 : 768);
  c.n_layer = top.positive("num_hidden_layers", mamba2 ? 64 : 32);
  c.vocab_size = top.positive("vocab_size", mamba2 ? 32768 : 50280);
  c.pad_vocab_size_multiple = top.positive("pad_vocab_size_multiple", mamba2 ? 16 : 8);
  // HF stores the padded size; keep it as it is rather than padding again.
  c.padded_vocab_size = c.vocab_size;
  c.tie_embeddings = top.boolean("tie_word_embeddings", !mamba2);
  c.residual_in_fp32 = top.boolean("residual_in_fp32", true);
  c.norm_eps = top.number("layer_norm_epsilon", 1e-5);

  c.d_state = top.positive("state_size", mamba2 ? 128 : 16);
  c.d_conv = top.positive("conv_kernel", 4);
  // HF allows a fractional expand (1.5) and takes int(expand * hidden_size).
  double expand = top.number("expand", 2.0);
  if (!(expand > 0 && expand <= static_cast<double>(kMaxSize)))
    top.fail("expand", "must be positive and at most " + std::to_string(kMaxSize) + ", got " +
                           std::to_string(expand));
  c.expand = static_cast<int64_t>(expand);
  c.d_inner = top.positive("intermediate_size", static_cast<int64_t>(expand * c.d_model));
  c.dt_rank = top.integer_or_auto("time_step_rank", (c.d_model + 15) / 16);
  c.bias_from_checkpoint = !top.has("use_bias");
  c.bias = top.boolean("use_bias", false);
  c.conv_bias = top.boolean("use_conv_bias", true);
  if (!mamba2) return;

  c.headdim = top.positive("head_dim", 64);
  // transformers' default is 128 heads; a config that omits num_heads gets it here too.
  int64_t n_heads = top.positive("num_heads", 128);
  if (n_heads * c.headdim != c.d_inner) {
    std::string what = top.has("num_heads") ? "(" + std::to_string(n_heads) + ")"
                                            : "is missing, and its default (128)";
    std::string fix = c.d_inner % c.headdim == 0
                          ? "; set it to " + std::to_string(c.d_inner / c.headdim)
                          : "";
    top.fail("num_heads", what + " times head_dim (" + std::to_string(c.headdim) +
                              ") does not equal the intermediate size " +
                              std::to_string(c.d_inner) + " (expand * hidden_size)" + fix);
  }
  c.ngroups = top.positive("n_groups", 8);
  c.chunk_size = top.positive("chunk_size", 256);
  c.d_ssm = c.d_inner;
  c.rmsnorm = true;
  // transformers' Mamba2Mixer always gates before the norm and ignores a norm_before_gate
  // field in config.json (Mamba-Codestral's sets it to true).
  // NOTE: transformers' slow path normalizes over all d_inner channels, while its fast
  // path and mamba_ssm normalize per group; this engine normalizes per group, so an HF
  // checkpoint with n_groups > 1 matches the fast path.
  c.norm_before_gate = false;
  c.dt_limit = top.limit_pair("time_step_limit");
}

void validate(const ModelConfig& c, const std::string& path) {
  auto fail = [&](const std::string& what) { throw Error(path + ": " + what); };

  if (c.padded_vocab_size < c.vocab_size) fail("padded vocab size is smaller than vocab_size");
  for (int64_t layer : c.attn_layer_idx)
    if (layer < 0 || layer >= c.n_layer)
      fail("attn_layer_idx entry " + std::to_string(layer) + " is outside [0, n_layer = " +
           std::to_string(c.n_layer) + ")");
  if (c.mixer == MixerKind::Mamba2) {
    if (c.d_ssm <= 0 || c.d_ssm > c.d_inner)
      fail("d_ssm = " + std::to_string(c.d_ssm) + " must be in (0, d_inner = " +
           std::to_string(c.d_inner) + "]");
    if (c.d_ssm % c.headdim != 0)
      fail("d_ssm = " + std::to_string(c.d_ssm) + " is not a multiple of headdim = " +
           std::to_string(c.headdim));
    if (c.n_heads() % c.ngroups != 0)
      fail("the number of heads (" + std::to_string(c.n_heads()) +
           ") is not a multiple of ngroups = " + std::to_string(c.ngroups));
  }
  if (!c.attn_layer_idx.empty()) {
    if (c.attn.num_heads % c.attn.num_heads_kv != 0)
      fail("attn_cfg.num_heads is not a multiple of attn_cfg.num_heads_kv");
    if (c.attn.rotary_emb_dim % 2 != 0 || c.attn.rotary_emb_dim > c.attn.head_dim)
      fail("attn_cfg.rotary_emb_dim must be even and at most head_dim");
    if (c.attn.d_conv < 0) fail("attn_cfg.d_conv must be 0 (no conv) or positive");
    // The reference's MHA defaults to causal = false, which a language model cannot decode
    // with; released hybrid configs set it to true.
    if (!c.attn.causal) fail("attn_cfg.causal is false; only causal attention layers are supported");
    if (c.attn.mlp_dim > 0)
      fail("attn_cfg.mlp_dim > 0 (an MLP fused into the attention in_proj) is not supported");
  }
}

// Python's json module writes inf and nan as the bare tokens Infinity, -Infinity and
// NaN, which strict JSON parsers reject (HF configs store time_step_limit [0.0, Infinity]).
// Returns `text` with those tokens, outside strings, turned into strings of the same name.
std::string quote_nonfinite_literals(const std::string& text) {
  static const char* const kTokens[] = {"-Infinity", "Infinity", "NaN"};
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    if (in_string) {
      out += ch;
      if (ch == '\\' && i + 1 < text.size()) {
        out += text[++i];
      } else if (ch == '"') {
        in_string = false;
      }
      continue;
    }
    if (ch == '"') {
      in_string = true;
      out += ch;
      continue;
    }
    bool replaced = false;
    for (const char* token : kTokens) {
      size_t n = std::strlen(token);
      if (text.compare(i, n, token) == 0) {
        out += '"';
        out += token;
        out += '"';
        i += n - 1;
        replaced = true;
        break;
      }
    }
    if (!replaced) out += ch;
  }
  return out;
}

}  // namespace

bool ModelConfig::is_attention_layer(int64_t layer) const {
  for (int64_t i : attn_layer_idx)
    if (i == layer) return true;
  return false;
}

ModelConfig parse_model_config(const std::string& json_text, const std::string& path) {
  json root = json::parse(quote_nonfinite_literals(json_text), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) throw Error(path + ": invalid JSON");
  if (!root.is_object()) throw Error(path + ": expected a JSON object at the top level");

  FieldReader top(root, path, "");
  ModelConfig config;
  if (top.has("model_type")) {
    parse_hugging_face(top, top.string("model_type", ""), config);
  } else if (top.has("d_model")) {
    parse_state_spaces(top, config);
  } else {
    throw Error(path + ": neither a state-spaces config (no 'd_model') nor a Hugging Face "
                       "config (no 'model_type')");
  }
  validate(config, path);
  return config;
}

ModelConfig load_model_config(const std::string& dir) {
  std::string path = dir + "/config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": not found (a model directory needs config.json)");
  std::stringstream text;
  text << in.rdbuf();
  return parse_model_config(text.str(), path);
}

std::string model_config_to_state_spaces_json(const ModelConfig& c) {
  if (!c.attn_layer_idx.empty())
    throw Error("cannot write config.json for a model with attention layers");
  if (c.d_inner != c.expand * c.d_model)
    throw Error("cannot write config.json: d_inner " + std::to_string(c.d_inner) +
                " is not expand * d_model (" + std::to_string(c.expand) + " * " +
                std::to_string(c.d_model) + ")");

  json ssm = {{"layer", c.mixer == MixerKind::Mamba1 ? "Mamba1" : "Mamba2"},
              {"d_state", c.d_state},
              {"d_conv", c.d_conv},
              {"expand", c.expand},
              {"bias", c.bias},
              {"conv_bias", c.conv_bias}};
  if (c.mixer == MixerKind::Mamba1) {
    ssm["dt_rank"] = c.dt_rank;
  } else {
    ssm["headdim"] = c.headdim;
    ssm["ngroups"] = c.ngroups;
    ssm["chunk_size"] = c.chunk_size;
    if (c.d_ssm != c.d_inner) ssm["d_ssm"] = c.d_ssm;
    if (c.D_has_hdim) ssm["D_has_hdim"] = true;
    if (!c.rmsnorm) ssm["rmsnorm"] = false;
    if (c.norm_before_gate) ssm["norm_before_gate"] = true;
    if (c.dt_limit.first != 0.0 || c.dt_limit.second < 1e300)
      ssm["dt_limit"] = {c.dt_limit.first, c.dt_limit.second};
  }

  // HF configs store the padded vocabulary; with a multiple of 1 it stays as it is.
  const bool keep_padded = c.schema == "huggingface";
  json root = {{"d_model", c.d_model},
               {"d_intermediate", c.d_intermediate},
               {"n_layer", c.n_layer},
               {"vocab_size", keep_padded ? c.padded_vocab_size : c.vocab_size},
               {"ssm_cfg", ssm},
               {"attn_layer_idx", json::array()},
               {"attn_cfg", json::object()},
               {"rms_norm", true},
               {"residual_in_fp32", c.residual_in_fp32},
               {"fused_add_norm", false},
               {"pad_vocab_size_multiple", keep_padded ? 1 : c.pad_vocab_size_multiple},
               {"tie_embeddings", c.tie_embeddings}};
  return root.dump(2) + "\n";
}

}  // namespace mambacpp
