#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/normalizer.h"

namespace mambacpp::tokenizer_detail {

struct PreTokenizerConfig {
  bool byte_level = false;  // false: the whole normalized piece is one word
  bool add_prefix_space = false;
  bool use_regex = true;
};

// One step of the post-processor: ids before and after the encoded sequence.
struct PostProcessorStep {
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
};

enum class DecoderKind { kJoinWithSpaces, kByteLevel };

// BPE results per pre-token word, keyed by the word's bytes before byte-level mapping. An
// open-addressing table over one byte arena and one id vector, so a hit costs no allocation.
class WordCache {
 public:
  // Appends the cached ids of `word` to `out`; returns false when `word` is not cached.
  bool append(std::string_view word, std::vector<int32_t>& out) const;
  void insert(std::string_view word, const int32_t* ids, std::size_t count);

 private:
  struct Slot {
    uint64_t hash;
    uint32_t word_offset;
    uint32_t word_length;  // 0 marks an empty slot, because cached words are never empty
    uint32_t ids_offset;
    uint32_t ids_count;
  };

  // Bounds on memory: longer words are not cached, and the cache is emptied when it would
  // exceed either total, which caps it at about 40 MB plus the slot table.
  static constexpr std::size_t kMaxWordBytes = 256;
  static constexpr std::size_t kMaxTotalWordBytes = std::size_t{1} << 24;
  static constexpr std::size_t kMaxTotalIds = std::size_t{1} << 22;

  static uint64_t hash_of(std::string_view word) { return std::hash<std::string_view>{}(word); }
  void clear();
  void grow();

  std::vector<Slot> slots_;  // size is zero or a power of two
  std::size_t entries_ = 0;
  std::string words_;
  std::vector<int32_t> ids_;
};

struct TokenizerImpl {
  std::string source_name;

  // Stable addresses: the matchers point into these.
  std::vector<std::unique_ptr<AddedToken>> added_tokens;
  AddedTokenMatcher raw_token_matcher;         // tokens with normalized = false
  AddedTokenMatcher normalized_token_matcher;  // tokens with normalized = true

  Normalizer normalizer;
  PreTokenizerConfig pre_tokenizer;
  std::unique_ptr<Gpt2Splitter> splitter;
  std::unique_ptr<BpeModel> model;
  std::vector<PostProcessorStep> post_processor;
  DecoderKind decoder = DecoderKind::kJoinWithSpaces;

  // Indexed by id; an empty optional marks an id that no token has.
  std::vector<std::optional<std::string>> id_to_token;
  std::vector<std::string> id_to_decoded;  // bytes the decoder produces for the id alone
  std::vector<bool> id_is_special;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> added_token_ids;
  int32_t eos_id = -1;

  // Encode state, guarded by `mutex`.
  mutable std::mutex mutex;
  mutable WordCache cache;
  mutable std::vector<Split> raw_splits;
  mutable std::vector<Split> normalized_splits;
  mutable std::string normalized_text;
  mutable std::string prefixed_text;
  mutable std::string model_word;

  // Fills the id tables once the model and added tokens are known.
  void build_id_tables();

  std::optional<int32_t> token_to_id(std::string_view token) const;

  void encode(std::string_view text, bool add_special_tokens, std::vector<int32_t>& out) const;

  // Appends the ids of one normalized piece that contains no added token.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  // Appends the decoder's output bytes for one id, before UTF-8 repair; returns false for
  // an id that is skipped.
  bool append_decoded_bytes(int32_t id, bool skip_special_tokens, bool first,
                            std::string& out) const;
};

// Parses tokenizer.json content; errors name `source_name`.
std::unique_ptr<TokenizerImpl> load_tokenizer_json(std::string_view json,
                                                   std::string_view source_name);

}  // namespace mambacpp::tokenizer_detail
