#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mambacpp {

namespace tokenizer_detail {
struct TokenizerImpl;
}

// A Hugging Face `tokenizers` pipeline read from tokenizer.json: added tokens, normalizer,
// pre-tokenizer, BPE model, post-processor and decoder. Encoding returns the same ids as
// tokenizers 0.23.2 for the supported component types (listed in docs/tokenizer.md). Any
// other component type is rejected at load time with mambacpp::Error.
//
// Methods are safe to call from several threads at once: encode() serializes callers on
// an internal lock because it fills a cache of BPE results per pre-token.
class Tokenizer {
 public:
  // Reads a tokenizer.json file. Throws mambacpp::Error naming the file when it is missing,
  // is not valid JSON, has an invalid field or uses an unsupported component.
  static Tokenizer from_file(const std::filesystem::path& path);

  // Reads DIR/tokenizer.json, and the eos_token of DIR/tokenizer_config.json when present.
  static Tokenizer from_directory(const std::filesystem::path& dir);

  // Parses tokenizer.json content; `source_name` is the file name used in error messages.
  static Tokenizer from_json(std::string_view json, std::string_view source_name);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Encodes UTF-8 text. `add_special_tokens` applies the post-processor's template (a
  // TemplateProcessing post-processor may add ids such as BOS; ByteLevel adds none).
  // Throws mambacpp::Error when `text` is not valid UTF-8, naming the byte offset.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

  // Decodes ids to UTF-8 text. Ids outside the vocabulary are skipped, as Hugging Face does.
  // Byte sequences that are not valid UTF-8 become U+FFFD, one per maximal invalid subpart.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // One more than the largest id, added tokens included (50277 for GPT-NeoX-20B).
  std::size_t vocab_size() const;

  // Id of the end-of-sequence token: eos_token from tokenizer_config.json when loaded with
  // from_directory, else the first of <|endoftext|>, </s>, <|end_of_text|>, <eos> that is a
  // token; -1 when none is.
  int32_t eos_id() const;

  // Token string of an id: the model's token in byte-level form (e.g. "Ġworld"), or an added
  // token's content (after the normalizer when the token is normalized, as Hugging Face
  // decodes it). Returns nullopt for an id outside the vocabulary.
  std::optional<std::string> id_to_token(int32_t id) const;

  // Id of a token string (byte-level form), added tokens first, or nullopt.
  std::optional<int32_t> token_to_id(std::string_view token) const;

  // Whether the id belongs to an added token marked "special".
  bool is_special(int32_t id) const;

  // Token strings of ids (id_to_token, with "" for an unknown id). These equal Hugging Face's
  // Encoding.tokens except for lstrip/rstrip added tokens, which Hugging Face shows with the
  // white space they absorbed.
  std::vector<std::string> ids_to_tokens(std::span<const int32_t> ids) const;

 private:
  friend class StreamDecoder;
  explicit Tokenizer(std::unique_ptr<tokenizer_detail::TokenizerImpl> impl);
  std::unique_ptr<tokenizer_detail::TokenizerImpl> impl_;
};

// Incremental decoding for generation: push() takes one id at a time and returns only
// complete UTF-8 text. Bytes of a character that is still incomplete are held back until a
// later id completes it. After finish(), the concatenation of everything returned equals
// Tokenizer::decode of all pushed ids. The Tokenizer must outlive the decoder.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);

  // Appends one id and returns the text that became complete (possibly empty).
  std::string push(int32_t id);

  // Returns the held-back bytes, with U+FFFD for an incomplete character, and resets.
  std::string finish();

  // Drops held-back bytes and starts a new sequence.
  void reset();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  bool first_token_ = true;
  std::string pending_;
};

}  // namespace mambacpp
