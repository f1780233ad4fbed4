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

  void split_into_symbols(std::string_view word, std::vector<Symbol>& symbols) const;
  void merge_symbols(std::vector<Symbol>& symbols) const;

  StringIdMap vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  std::optional<std::string> unk_token_;
  std::optional<std::string> continuing_subword_prefix_;
  std::optional<std::string> end_of_word_suffix_;
  bool fuse_unk_;
  bool byte_fallback_;
  bool ignore_merges_;
};

}  // namespace mambacpp::tokenizer_detail
