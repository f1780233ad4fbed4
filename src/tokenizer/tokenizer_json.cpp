// Reads tokenizer.json (the Hugging Face tokenizers serialization) into a TokenizerImpl.
#include <nlohmann/json.hpp>

#include <limits>

#include "mambacpp/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace mambacpp::tokenizer_detail {

namespace {

using nlohmann::json;

// Ids are stored in dense tables, so a bound keeps a corrupt id from exhausting memory.
// NOTE: 2^24 is an arbitrary bound, far above the vocabulary sizes of current models.
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

class Loader {
 public:
  explicit Loader(std::string_view source_name) : source_(source_name) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw Error(source_ + ": " + message);
  }

  [[noreturn]] void unsupported(const std::string& component, const std::string& type,
                                const std::string& supported) const {
    throw Error("unsupported tokenizer component " + component + " \"" + type + "\" in " +
                source_ + " (supported: " + supported + ")");
  }

  const json& require(const json& object, const char* key, const std::string& where) const {
    const auto it = object.find(key);
    if (it == object.end()) fail(where + " has no \"" + key + "\" field");
    return *it;
  }

  std::string string_field(const json& object, const char* key, const std::string& where) const {
    const json& value = require(object, key, where);
    if (!value.is_string()) fail(where + "." + key + " must be a string");
    return checked_utf8(value.get<std::string>(), where + "." + key);
  }

  std::optional<std::string> optional_string(const json& object, const char* key,
                                             const std::string& where) const {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) fail(where + "." + key + " must be a string or null");
    return checked_utf8(it->get<std::string>(), where + "." + key);
  }

  bool bool_field(const json& object, const char* key, bool fallback,
                  const std::string& where) const {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(where + "." + key + " must be true or false");
    return it->get<bool>();
  }

  bool required_bool(const json& object, const char* key, const std::string& where) const {
    const json& value = require(object, key, where);
    if (!value.is_boolean()) fail(where + "." + key + " must be true or false");
    return value.get<bool>();
  }

  int32_t id_value(const json& value, const std::string& where) const {
    if (!value.is_number_integer()) fail(where + " must be an integer token id");
    const auto id = value.get<int64_t>();
    if (id < 0 || id > kMaxTokenId) {
      fail(where + " = " + std::to_string(id) + " is outside [0, " + std::to_string(kMaxTokenId) +
           "]");
    }
    return static_cast<int32_t>(id);
  }

  std::string type_of(const json& component, const std::string& where) const {
    if (!component.is_object()) fail(where + " must be an object or null");
    return string_field(component, "type", where);
  }

  std::string checked_utf8(std::string text, const std::string& where) const {
    if (find_invalid_utf8(text)) fail(where + " is not valid UTF-8");
    return text;
  }

  void load_normalizer(const json& component, const std::string& where,
                       std::vector<NormalizationForm>& forms) const;
  PreTokenizerConfig load_pre_tokenizer(const json& component) const;
  BpeConfig load_model(const json& component) const;
  void load_post_processor(const json& component, const std::string& where,
                           const TokenizerImpl& impl,
                           std::vector<PostProcessorStep>& steps) const;
  DecoderKind load_decoder(const json& component) const;
  void load_added_tokens(const json& list, TokenizerImpl& impl) const;

 private:
  std::string source_;
};

void Loader::load_normalizer(const json& component, const std::string& where,
                             std::vector<NormalizationForm>& forms) const {
  if (component.is_null()) return;
  const std::string type = type_of(component, where);
  if (type == "NFC") {
    forms.push_back(NormalizationForm::kNFC);
  } else if (type == "NFD") {
    forms.push_back(NormalizationForm::kNFD);
  } else if (type == "NFKC") {
    forms.push_back(NormalizationForm::kNFKC);
  } else if (type == "NFKD") {
    forms.push_back(NormalizationForm::kNFKD);
  } else if (type == "Sequence") {
    const json& list = require(component, "normalizers", where);
    if (!list.is_array()) fail(where + ".normalizers must be an array");
    for (std::size_t i = 0; i < list.size(); ++i) {
      load_normalizer(list[i], where + ".normalizers[" + std::to_string(i) + "]", forms);
    }
  } else {
    unsupported("normalizer", type, "NFC, NFD, NFKC, NFKD, Sequence");
  }
}

PreTokenizerConfig Loader::load_pre_tokenizer(const json& component) const {
  PreTokenizerConfig config;
  if (component.is_null()) return config;
  const std::string where = "pre_tokenizer";
  const std::string type = type_of(component, where);
  const json* byte_level = nullptr;
  if (type == "ByteLevel") {
    byte_level = &component;
  } else if (type == "Sequence") {
    const json& list = require(component, "pretokenizers", where);
    if (!list.is_array()) fail(where + ".pretokenizers must be an array");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string item_where = where + ".pretokenizers[" + std::to_string(i) + "]";
      const std::string item_type = type_of(list[i], item_where);
      if (item_type != "ByteLevel") {
        unsupported("pre_tokenizer", item_type, "ByteLevel, Sequence of one ByteLevel");
      }
      if (byte_level != nullptr) {
        unsupported("pre_tokenizer", "Sequence of several ByteLevel",
                    "ByteLevel, Sequence of one ByteLevel");
      }
      byte_level = &list[i];
    }
  } else {
    unsupported("pre_tokenizer", type, "ByteLevel, Sequence of one ByteLevel");
  }
  if (byte_level != nullptr) {
    config.byte_level = true;
    // Hugging Face requires add_prefix_space and defaults use_regex to true.
    config.add_prefix_space = required_bool(*byte_level, "add_prefix_space", where);
    config.use_regex = bool_field(*byte_level, "use_regex", true, where);
  }
  return config;
}

BpeConfig Loader::load_model(const json& component) const {
  const std::string where = "model";
  if (!component.is_object()) fail("model must be an object");
  // Files written by old versions may leave out the type of a BPE model.
  std::string type = "BPE";
  if (component.contains("type")) type = string_field(component, "type", where);
  if (type != "BPE") unsupported("model", type, "BPE");

  const auto dropout = component.find("dropout");
  if (dropout != component.end() && !dropout->is_null()) {
    if (!dropout->is_number()) fail("model.dropout must be a number or null");
    if (dropout->get<double>() != 0.0) {
      unsupported("model", "BPE with dropout", "BPE without dropout");
    }
  }

  BpeConfig config;
  const json& vocab = require(component, "vocab", where);
  if (!vocab.is_object()) fail("model.vocab must be an object of token: id");
  config.vocab.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const std::string token = checked_utf8(it.key(), "model.vocab key");
    config.vocab.emplace(token, id_value(it.value(), "model.vocab[\"" + token + "\"]"));
  }

  const json& merges = require(component, "merges", where);
  if (!merges.is_array()) fail("model.merges must be an array");
  config.merges.reserve(merges.size());
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const json& merge = merges[i];
    const std::string merge_where = "model.merges[" + std::to_string(i) + "]";
    if (merge.is_string()) {
      // The "left right" form splits at the first space.
      const std::string text = checked_utf8(merge.get<std::string>(), merge_where);
      const std::size_t space = text.find(' ');
      if (space == std::string::npos) fail(merge_where + " \"" + text + "\" has no space");
      config.merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      config.merges.emplace_back(checked_utf8(merge[0].get<std::string>(), merge_where),
                                 checked_utf8(merge[1].get<std::string>(), merge_where));
    } else {
      fail(merge_where + " must be a \"left right\" string or a [left, right] pair");
    }
  }

  config.unk_token = optional_string(component, "unk_token", where);
  config.continuing_subword_prefix = optional_string(component, "continuing_subword_prefix", where);
  config.end_of_word_suffix = optional_string(component, "end_of_word_suffix", where);
  config.fuse_unk = bool_field(component, "fuse_unk", false, where);
  config.byte_fallback = bool_field(component, "byte_fallback", false, where);
  config.ignore_merges = bool_field(component, "ignore_merges", false, where);
  return config;
}

void Loader::load_post_processor(const json& component, const std::string& where,
                                 const TokenizerImpl& impl,
                                 std::vector<PostProcessorStep>& steps) const {
  if (component.is_null()) return;
  const std::string type = type_of(component, where);
  const std::string supported =
      "ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing, Sequence";
  if (type == "ByteLevel") return;  // changes offsets only

  if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto special_id = [&](const char* key) {
      const json& pair = require(component, key, where);
      if (!pair.is_array() || pair.size() != 2) fail(where + "." + key + " must be [token, id]");
      return id_value(pair[1], where + "." + key + "[1]");
    };
    steps.push_back(PostProcessorStep{{special_id("cls")}, {special_id("sep")}});
    return;
  }

  if (type == "TemplateProcessing") {
    const json& special_tokens = require(component, "special_tokens", where);
    if (!special_tokens.is_object()) fail(where + ".special_tokens must be an object");
    const json& single = require(component, "single", where);
    if (!single.is_array()) fail(where + ".single must be an array");
    PostProcessorStep step;
    bool seen_sequence = false;
    for (std::size_t i = 0; i < single.size(); ++i) {
      const std::string item_where = where + ".single[" + std::to_string(i) + "]";
      const json& item = single[i];
      if (item.is_object() && item.contains("Sequence")) {
        const json& sequence = item["Sequence"];
        if (!sequence.is_object() || sequence.value("id", "") != "A") {
          fail(item_where + " must be the sequence \"A\" in a single-sequence template");
        }
        if (seen_sequence) fail(item_where + " repeats the sequence \"A\"");
        seen_sequence = true;
      } else if (item.is_object() && item.contains("SpecialToken")) {
        const json& special = item["SpecialToken"];
        if (!special.is_object()) fail(item_where + ".SpecialToken must be an object");
        const std::string name = string_field(special, "id", item_where + ".SpecialToken");
        const auto found = special_tokens.find(name);
        if (found == special_tokens.end()) {
          fail(item_where + " names \"" + name + "\", which is not in " + where +
               ".special_tokens");
        }
        const json& ids = require(*found, "ids", where + ".special_tokens[\"" + name + "\"]");
        if (!ids.is_array()) fail(where + ".special_tokens[\"" + name + "\"].ids must be an array");
        auto& target = seen_sequence ? step.suffix : step.prefix;
        for (const json& id : ids) target.push_back(id_value(id, where + ".special_tokens ids"));
      } else {
        fail(item_where + " must be {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      }
    }
    if (!seen_sequence) fail(where + ".single has no sequence \"A\"");
    steps.push_back(std::move(step));
    return;
  }

  if (type == "Sequence") {
    const json& list = require(component, "processors", where);
    if (!list.is_array()) fail(where + ".processors must be an array");
    for (std::size_t i = 0; i < list.size(); ++i) {
      load_post_processor(list[i], where + ".processors[" + std::to_string(i) + "]", impl, steps);
    }
    return;
  }
  unsupported("post_processor", type, supported);
}

DecoderKind Loader::load_decoder(const json& component) const {
  if (component.is_null()) return DecoderKind::kJoinWithSpaces;
  const std::string type = type_of(component, "decoder");
  if (type == "ByteLevel") return DecoderKind::kByteLevel;
  unsupported("decoder", type, "ByteLevel");
}

void Loader::load_added_tokens(const json& list, TokenizerImpl& impl) const {
  if (list.is_null()) return;
  if (!list.is_array()) fail("added_tokens must be an array");
  // The next free id starts at the number of model tokens, as in Hugging Face.
  const std::size_t model_size = impl.model->vocab().size();
  int64_t max_added_id = -1;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string where = "added_tokens[" + std::to_string(i) + "]";
    const json& item = list[i];
    if (!item.is_object()) fail(where + " must be an object");
    auto token = std::make_unique<AddedToken>();
    token->content = string_field(item, "content", where);
    if (token->content.empty()) continue;  // Hugging Face ignores empty tokens
    id_value(require(item, "id", where), where + ".id");
    // Hugging Face rejects an added token without any of these fields.
    token->special = required_bool(item, "special", where);
    token->single_word = required_bool(item, "single_word", where);
    token->lstrip = required_bool(item, "lstrip", where);
    token->rstrip = required_bool(item, "rstrip", where);
    token->normalized = required_bool(item, "normalized", where);

    // Hugging Face re-adds the tokens in file order and ignores the stored id: a content
    // already known keeps its id, otherwise the token gets the next free id after the model.
    const auto added = impl.added_token_ids.find(token->content);
    const auto in_model = impl.model->vocab().find(token->content);
    if (added != impl.added_token_ids.end()) {
      token->id = added->second;
    } else if (in_model != impl.model->vocab().end()) {
      token->id = in_model->second;
    } else {
      const int64_t next = max_added_id >= static_cast<int64_t>(model_size) || model_size == 0
                               ? max_added_id + 1
                               : static_cast<int64_t>(model_size);
      if (next > kMaxTokenId) fail(where + " would get an id above " + std::to_string(kMaxTokenId));
      token->id = static_cast<int32_t>(next);
    }
    max_added_id = std::max<int64_t>(max_added_id, token->id);
    impl.added_token_ids.insert_or_assign(token->content, token->id);
    impl.added_tokens.push_back(std::move(token));
  }
}

}  // namespace

std::unique_ptr<TokenizerImpl> load_tokenizer_json(std::string_view text,
                                                   std::string_view source_name) {
  const Loader loader(source_name);
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    loader.fail(std::string("invalid JSON: ") + e.what());
  }
  if (!root.is_object()) loader.fail("top level must be a JSON object");

  auto impl = std::make_unique<TokenizerImpl>();
  impl->source_name = std::string(source_name);
  try {
    const auto truncation = root.find("truncation");
    if (truncation != root.end() && !truncation->is_null()) {
      loader.unsupported("truncation", "enabled", "null");
    }
    const auto padding = root.find("padding");
    if (padding != root.end() && !padding->is_null()) {
      loader.unsupported("padding", "enabled", "null");
    }

    std::vector<NormalizationForm> forms;
    if (root.contains("normalizer")) loader.load_normalizer(root["normalizer"], "normalizer", forms);
    impl->normalizer = Normalizer(std::move(forms));
    impl->pre_tokenizer =
        loader.load_pre_tokenizer(root.contains("pre_tokenizer") ? root["pre_tokenizer"] : json());
    if (impl->pre_tokenizer.byte_level && impl->pre_tokenizer.use_regex) {
      impl->splitter = std::make_unique<Gpt2Splitter>();
    }
    impl->model = std::make_unique<BpeModel>(
        loader.load_model(loader.require(root, "model", "tokenizer.json")), source_name);

    // The model's ids come first; added tokens may extend the range.
    int32_t max_model_id = -1;
    for (const auto& [token, id] : impl->model->vocab()) max_model_id = std::max(max_model_id, id);
    impl->id_to_token.assign(static_cast<std::size_t>(max_model_id + 1), std::nullopt);
    loader.load_added_tokens(root.contains("added_tokens") ? root["added_tokens"] : json(), *impl);

    if (root.contains("post_processor")) {
      loader.load_post_processor(root["post_processor"], "post_processor", *impl,
                                 impl->post_processor);
    }
    impl->decoder = loader.load_decoder(root.contains("decoder") ? root["decoder"] : json());
  } catch (const json::exception& e) {
    loader.fail(std::string("invalid field: ") + e.what());
  }

  for (const auto& token : impl->added_tokens) {
    if (token->normalized) {
      impl->normalizer.normalize(token->content, token->normalized_content);
      impl->normalized_token_matcher.add(token->normalized_content, token.get());
    } else {
      token->normalized_content = token->content;
      impl->raw_token_matcher.add(token->content, token.get());
    }
  }
  impl->build_id_tables();
  return impl;
}

}  // namespace mambacpp::tokenizer_detail
