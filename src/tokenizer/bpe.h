#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mambacpp::tokenizer_detail {

// Hash for std::string keys that also accepts std::string_view, so lookups need no copy.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct BpeConfig {
  StringIdMap vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::optional<std::string> unk_token;
  std::optional<std::string> continuing_subword_prefix;
  std::optional<std::string> end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

// Byte-pair encoding as Hugging Face tokenizers' BPE model does it (without dropout): split
// a word into characters, then repeatedly merge the adjacent pair with the lowest merge
// rank, the leftmost one on ties.
class BpeModel {
 public:
  // Throws mambacpp::Error when a merge names a token missing from the vocabulary; the
  // message is prefixed with `source_name`.
  BpeModel(BpeConfig config, std::string_view source_name);

  // Appends the ids of one pre-token word, given in the model's alphabet (byte-level
  // characters for GPT-2 style tokenizers).
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  const StringIdMap& vocab() const { return vocab_; }

 private:
  struct Merge {
    uint32_t rank;
    int32_t new_id;
  };
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    uint32_t byte_length;
  };

  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }

  // Open-addressing hash table from a pair of ids to its merge. Its lookups were the largest
  // single cost of encoding words that are not cached yet with std::unordered_map.
  class MergeTable {
   public:
    void reserve(std::size_t count);
    void insert_or_assign(uint64_t key, Merge merge);
    const Merge* find(uint64_t key) const;

   private:
    static constexpr uint64_t kEmpty = ~uint64_t{0};  // no id pair has this key
    std::size_t slot_of(uint64_t key) const {
      return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
    }
    std::vector<uint64_t> keys_;
    std::vector<Merge> merges_;
    int shift_ = 64;
    std::size_t size_ = 0;
  };

  void split_into_symbols(std::string_view word, std::vector<Symbol>& symbols) const;
  void merge_symbols(std::vector<Symbol>& symbols) const;
  // Id of the one-character token `text`, which starts with code point `cp`, or -1.
  int32_t single_character_id(std::string_view text, char32_t cp) const;

  StringIdMap vocab_;
  MergeTable merges_;
  // Ids of one-character tokens for code points below kDirectCharacters (-1: not a token),
  // which covers the byte-level alphabet, so its lookups need no hashing.
  static constexpr char32_t kDirectCharacters = 0x800;
  std::vector<int32_t> direct_character_ids_;
  std::optional<int32_t> unk_id_;
  std::optional<std::string> unk_token_;
  std::optional<std::string> continuing_subword_prefix_;
  std::optional<std::string> end_of_word_suffix_;
  bool fuse_unk_;
  bool byte_fallback_;
  bool ignore_merges_;
};

}  // namespace mambacpp::tokenizer_detail
