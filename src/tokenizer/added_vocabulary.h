#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mambacpp::tokenizer_detail {

// One entry of tokenizer.json "added_tokens", with the id Hugging Face assigns it.
struct AddedToken {
  std::string content;
  // The content after the normalizer when `normalized` is set, else the content. Hugging
  // Face matches normalized tokens in this form and also decodes them to it.
  std::string normalized_content;
  int32_t id = -1;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
};

// A piece of the input: either an added token (id >= 0) or text for the normalizer and
// model (id == -1), as byte offsets into the text that was split.
struct Split {
  std::size_t begin;
  std::size_t end;
  int32_t id;
};

// Finds added tokens in text the way Hugging Face's AddedVocabulary does: non-overlapping
// leftmost-longest matches, then the single_word, lstrip and rstrip rules of each token.
class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;

  // Adds a pattern (the token content, or its normalized form) for `token`, which must stay
  // alive as long as the matcher.
  void add(std::string_view pattern, const AddedToken* token);

  bool empty() const { return nodes_.size() <= 1; }

  // Replaces `splits` with the pieces of `text`. Empty non-token pieces are left out.
  void split(std::string_view text, std::vector<Split>& splits) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;  // sorted by byte
    const AddedToken* token = nullptr;                         // a pattern ends here
  };

  int32_t child(int32_t node, unsigned char byte) const;
  // Returns the longest pattern starting at text[pos] and its length, or nullptr.
  const AddedToken* longest_match(std::string_view text, std::size_t pos, std::size_t& length) const;

  std::vector<Node> nodes_{1};
  bool first_byte_[256] = {};
};

}  // namespace mambacpp::tokenizer_detail
