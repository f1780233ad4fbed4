#include "mambacpp/tokenizer.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "mambacpp/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace mambacpp {

namespace tokenizer_detail {

bool WordCache::append(std::string_view word, std::vector<int32_t>& out) const {
  if (slots_.empty()) return false;
  const uint64_t hash = hash_of(word);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t index = hash & mask;; index = (index + 1) & mask) {
    const Slot& slot = slots_[index];
    if (slot.word_length == 0) return false;
    if (slot.hash == hash && slot.word_length == word.size() &&
        std::string_view(words_).substr(slot.word_offset, slot.word_length) == word) {
      const int32_t* first = ids_.data() + slot.ids_offset;
      out.insert(out.end(), first, first + slot.ids_count);
      return true;
    }
  }
}

void WordCache::clear() {
  slots_.clear();
  entries_ = 0;
  words_.clear();
  ids_.clear();
}

void WordCache::grow() {
  std::vector<Slot> old_slots = std::move(slots_);
  slots_.assign(old_slots.empty() ? 1024 : old_slots.size() * 2, Slot{0, 0, 0, 0, 0});
  const std::size_t mask = slots_.size() - 1;
  for (const Slot& slot : old_slots) {
    if (slot.word_length == 0) continue;
    std::size_t index = slot.hash & mask;
    while (slots_[index].word_length != 0) index = (index + 1) & mask;
    slots_[index] = slot;
  }
}

void WordCache::insert(std::string_view word, const int32_t* ids, std::size_t count) {
  if (word.empty() || word.size() > kMaxWordBytes) return;
  if (words_.size() + word.size() > kMaxTotalWordBytes || ids_.size() + count > kMaxTotalIds) {
    clear();
  }
  // A load factor of at most one half keeps probe sequences short.
  if (2 * (entries_ + 1) > slots_.size()) grow();

  const uint64_t hash = hash_of(word);
  const std::size_t mask = slots_.size() - 1;
  std::size_t index = hash & mask;
  while (slots_[index].word_length != 0) index = (index + 1) & mask;
  slots_[index] = Slot{hash, static_cast<uint32_t>(words_.size()), static_cast<uint32_t>(word.size()),
                       static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(count)};
  ++entries_;
  words_.append(word);
  ids_.insert(ids_.end(), ids, ids + count);
}

void TokenizerImpl::build_id_tables() {
  for (const auto& [token, id] : model->vocab()) {
    if (static_cast<std::size_t>(id) >= id_to_token.size()) id_to_token.resize(id + 1);
    // Of two tokens with one id, keep the smaller string so the choice is deterministic.
    auto& slot = id_to_token[id];
    if (!slot || token < *slot) slot = token;
  }
  id_is_special.assign(id_to_token.size(), false);
  for (const auto& token : added_tokens) {
    if (static_cast<std::size_t>(token->id) >= id_to_token.size()) {
      id_to_token.resize(token->id + 1);
      id_is_special.resize(token->id + 1, false);
    }
    id_to_token[token->id] = token->normalized_content;
  }
  // A token string is special when any added token with that content is special.
  for (const auto& token : added_tokens) {
    if (token->special) id_is_special[added_token_ids.at(token->content)] = true;
  }

  const ByteLevelAlphabet& alphabet = byte_level_alphabet();
  id_to_decoded.assign(id_to_token.size(), std::string());
  for (std::size_t id = 0; id < id_to_token.size(); ++id) {
    if (!id_to_token[id]) continue;
    const std::string& token = *id_to_token[id];
    // The ByteLevel decoder maps each character back to its byte; a token with any
    // character outside the byte alphabet passes through unchanged.
    if (decoder != DecoderKind::kByteLevel || !alphabet.append_decoded(token, id_to_decoded[id])) {
      id_to_decoded[id] = token;
    }
  }

  for (const char* name : {"<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>"}) {
    if (const auto id = token_to_id(name)) {
      eos_id = *id;
      break;
    }
  }
}

std::optional<int32_t> TokenizerImpl::token_to_id(std::string_view token) const {
  if (const auto it = added_token_ids.find(token); it != added_token_ids.end()) return it->second;
  if (const auto it = model->vocab().find(token); it != model->vocab().end()) return it->second;
  return std::nullopt;
}

void TokenizerImpl::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (cache.append(word, out)) return;
  const std::size_t first = out.size();
  if (pre_tokenizer.byte_level) {
    model_word.clear();
    byte_level_alphabet().append_encoded(word, model_word);
    model->tokenize(model_word, out);
  } else {
    model->tokenize(word, out);
  }
  cache.insert(word, out.data() + first, out.size() - first);
}

void TokenizerImpl::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (!pre_tokenizer.byte_level) {
    encode_word(piece, out);
    return;
  }
  if (pre_tokenizer.add_prefix_space && piece.front() != ' ') {
    prefixed_text.assign(1, ' ');
    prefixed_text.append(piece);
    piece = prefixed_text;
  }
  if (!splitter) {
    encode_word(piece, out);
    return;
  }
  splitter->split(piece, [&](std::size_t begin, std::size_t end) {
    encode_word(piece.substr(begin, end - begin), out);
  });
}

void TokenizerImpl::encode(std::string_view text, bool add_special_tokens,
                           std::vector<int32_t>& out) const {
  if (const auto offset = find_invalid_utf8(text)) {
    throw Error("cannot tokenize text that is not valid UTF-8: invalid byte 0x" +
                [](unsigned char byte) {
                  static constexpr char kHex[] = "0123456789ABCDEF";
                  return std::string{kHex[byte >> 4], kHex[byte & 15]};
                }(static_cast<unsigned char>(text[*offset])) +
                " at offset " + std::to_string(*offset));
  }
  out.clear();
  // GPT-NeoX gives 4.5 bytes per token on wiki.test.raw and 3.3 on tinyshakespeare, so this
  // reserve rarely needs to grow on English text.
  out.reserve(text.size() / 3 + 16);
  std::lock_guard<std::mutex> lock(mutex);

  // Added tokens are found first: those with normalized = false in the raw text, then the
  // others in each normalized piece between them. No normalized piece spans an added
  // token, matching Hugging Face.
  raw_token_matcher.split(text, raw_splits);
  const std::vector<Split> raw = raw_splits;  // the loop below reuses the member buffers
  for (const Split& raw_split : raw) {
    if (raw_split.id >= 0) {
      out.push_back(raw_split.id);
      continue;
    }
    const std::string_view raw_piece = text.substr(raw_split.begin, raw_split.end - raw_split.begin);
    normalizer.normalize(raw_piece, normalized_text);
    const std::string normalized = normalized_text;
    normalized_token_matcher.split(normalized, normalized_splits);
    for (const Split& split : normalized_splits) {
      if (split.id >= 0) {
        out.push_back(split.id);
      } else {
        encode_piece(std::string_view(normalized).substr(split.begin, split.end - split.begin), out);
      }
    }
  }

  if (add_special_tokens && !post_processor.empty()) {
    for (const PostProcessorStep& step : post_processor) {
      out.insert(out.begin(), step.prefix.begin(), step.prefix.end());
      out.insert(out.end(), step.suffix.begin(), step.suffix.end());
    }
  }
}

bool TokenizerImpl::append_decoded_bytes(int32_t id, bool skip_special_tokens, bool first,
                                         std::string& out) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token.size() || !id_to_token[id]) {
    return false;
  }
  if (skip_special_tokens && id_is_special[id]) return false;
  if (decoder == DecoderKind::kJoinWithSpaces && !first) out.push_back(' ');
  out.append(id_to_decoded[id]);
  return true;
}

}  // namespace tokenizer_detail

using tokenizer_detail::TokenizerImpl;

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    throw Error("tokenizer file not found: " + path.string());
  }
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw Error("cannot open tokenizer file " + path.string());
  std::ostringstream content;
  content << stream.rdbuf();
  if (!stream.good() && !stream.eof()) throw Error("failed to read " + path.string());
  return std::move(content).str();
}

}  // namespace

Tokenizer Tokenizer::from_json(std::string_view json, std::string_view source_name) {
  return Tokenizer(tokenizer_detail::load_tokenizer_json(json, source_name));
}

Tokenizer Tokenizer::from_file(const std::filesystem::path& path) {
  return from_json(read_file(path), path.string());
}

Tokenizer Tokenizer::from_directory(const std::filesystem::path& dir) {
  const std::filesystem::path json_path = dir / "tokenizer.json";
  std::error_code error;
  if (!std::filesystem::is_regular_file(json_path, error)) {
    throw Error("tokenizer file not found: " + json_path.string() +
                " (pass --tokenizer FILE when it lives elsewhere)");
  }
  Tokenizer tokenizer = from_file(json_path);

  // tokenizer_config.json, when present, names the EOS token as a string or {"content": ...}.
  const std::filesystem::path config_path = dir / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(config_path, error)) {
    nlohmann::json config;
    try {
      config = nlohmann::json::parse(read_file(config_path));
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(config_path.string() + ": invalid JSON: " + e.what());
    }
    const auto eos = config.is_object() ? config.find("eos_token") : config.end();
    if (config.is_object() && eos != config.end()) {
      std::string name;
      if (eos->is_string()) name = eos->get<std::string>();
      if (eos->is_object() && eos->contains("content") && (*eos)["content"].is_string()) {
        name = (*eos)["content"].get<std::string>();
      }
      if (const auto id = tokenizer.token_to_id(name)) tokenizer.impl_->eos_id = *id;
    }
  }
  return tokenizer;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  impl_->encode(text, add_special_tokens, ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  bool first = true;
  for (int32_t id : ids) {
    if (impl_->append_decoded_bytes(id, skip_special_tokens, first, bytes)) first = false;
  }
  std::string text;
  text.reserve(bytes.size());
  tokenizer_detail::append_utf8_lossy(text, bytes);
  return text;
}

std::size_t Tokenizer::vocab_size() const { return impl_->id_to_token.size(); }

int32_t Tokenizer::eos_id() const { return impl_->eos_id; }

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->id_to_token.size()) return std::nullopt;
  return impl_->id_to_token[id];
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  return impl_->token_to_id(token);
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<std::size_t>(id) < impl_->id_is_special.size() &&
         impl_->id_is_special[id];
}

std::vector<std::string> Tokenizer::ids_to_tokens(std::span<const int32_t> ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    auto token = id_to_token(id);
    tokens.push_back(token ? std::move(*token) : std::string());
  }
  return tokens;
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string StreamDecoder::push(int32_t id) {
  if (tokenizer_->impl_->append_decoded_bytes(id, skip_special_tokens_, first_token_, pending_)) {
    first_token_ = false;
  }
  const std::size_t complete = tokenizer_detail::complete_utf8_prefix(pending_);
  std::string text;
  tokenizer_detail::append_utf8_lossy(text, std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return text;
}

std::string StreamDecoder::finish() {
  std::string text;
  tokenizer_detail::append_utf8_lossy(text, pending_);
  reset();
  return text;
}

void StreamDecoder::reset() {
  pending_.clear();
  first_token_ = true;
}

}  // namespace mambacpp
