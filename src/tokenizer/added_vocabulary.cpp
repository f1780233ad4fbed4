#include "tokenizer/added_vocabulary.h"

#include <utf8proc.h>

#include <algorithm>

#include "tokenizer/utf8.h"

namespace mambacpp::tokenizer_detail {

namespace {

// Unicode White_Space, which Rust's regex crate matches with \s.
bool is_white_space(char32_t cp) {
  return (cp >= 0x9 && cp <= 0xD) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

// Rust's regex \w: Alphabetic, marks, decimal digits, connector punctuation and the join
// controls. Alphabetic is letters, letter numbers and Other_Alphabetic; the general
// categories cover it except for the circled and squared Latin letters listed here.
// NOTE: utf8proc's Unicode version may differ from the one the regex crate was built with.
bool is_word_character(char32_t cp) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      break;
  }
  return cp == 0x200C || cp == 0x200D || (cp >= 0x24B6 && cp <= 0x24E9) ||
         (cp >= 0x1F130 && cp <= 0x1F149) || (cp >= 0x1F150 && cp <= 0x1F169) ||
         (cp >= 0x1F170 && cp <= 0x1F189);
}

// Offset of the code point that ends at `end` (which must be > 0).
std::size_t previous_code_point(std::string_view text, std::size_t end) {
  std::size_t pos = end - 1;
  while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) --pos;
  return pos;
}

bool ends_with_word(std::string_view text, std::size_t end) {
  if (end == 0) return false;
  return is_word_character(decode_code_point(text, previous_code_point(text, end)));
}

bool starts_with_word(std::string_view text, std::size_t begin) {
  if (begin >= text.size()) return false;
  return is_word_character(decode_code_point(text, begin));
}

// Start of the run of white space that ends at `end`.
std::size_t skip_white_space_backward(std::string_view text, std::size_t end) {
  while (end > 0) {
    const std::size_t start = previous_code_point(text, end);
    if (!is_white_space(decode_code_point(text, start))) break;
    end = start;
  }
  return end;
}

// End of the run of white space that starts at `begin`.
std::size_t skip_white_space_forward(std::string_view text, std::size_t begin) {
  while (begin < text.size()) {
    if (!is_white_space(decode_code_point(text, begin))) break;
    begin += utf8_sequence_length(static_cast<unsigned char>(text[begin]));
  }
  return begin;
}

}  // namespace

void AddedTokenMatcher::add(std::string_view pattern, const AddedToken* token) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (char c : pattern) {
    const auto byte = static_cast<unsigned char>(c);
    int32_t next = child(node, byte);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_.emplace_back();
      auto& children = nodes_[node].children;
      const auto at = std::lower_bound(children.begin(), children.end(), std::make_pair(byte, 0));
      children.insert(at, {byte, next});
    }
    node = next;
  }
  // A later token with the same pattern replaces the earlier one.
  nodes_[node].token = token;
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
}

int32_t AddedTokenMatcher::child(int32_t node, unsigned char byte) const {
  for (const auto& [key, next] : nodes_[node].children) {
    if (key == byte) return next;
    if (key > byte) break;
  }
  return -1;
}

const AddedToken* AddedTokenMatcher::longest_match(std::string_view text, std::size_t pos,
                                                   std::size_t& length) const {
  const AddedToken* best = nullptr;
  int32_t node = 0;
  for (std::size_t i = pos; i < text.size(); ++i) {
    node = child(node, static_cast<unsigned char>(text[i]));
    if (node < 0) break;
    if (nodes_[node].token != nullptr) {
      best = nodes_[node].token;
      length = i + 1 - pos;
    }
  }
  return best;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Split>& splits) const {
  splits.clear();
  std::size_t piece_start = 0;  // end of the last token taken
  std::size_t pos = 0;          // where the next match search starts
  while (pos < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    std::size_t length = 0;
    const AddedToken* token = longest_match(text, pos, length);
    if (token == nullptr) {
      ++pos;
      continue;
    }
    std::size_t begin = pos;
    std::size_t end = pos + length;
    // The search resumes after this match even when the token is rejected or grows by
    // rstrip, because Hugging Face iterates over non-overlapping matches of the raw text.
    pos = end;

    if (token->single_word) {
      const bool space_before = begin == 0 || !ends_with_word(text, begin);
      const bool space_after = end == text.size() || !starts_with_word(text, end);
      if (!space_before || !space_after) continue;
    }
    if (token->lstrip) begin = std::max(skip_white_space_backward(text, begin), piece_start);
    if (token->rstrip) end = skip_white_space_forward(text, end);

    if (piece_start < begin) splits.push_back(Split{piece_start, begin, -1});
    splits.push_back(Split{begin, end, token->id});
    piece_start = end;
  }
  if (piece_start < text.size()) splits.push_back(Split{piece_start, text.size(), -1});
}

}  // namespace mambacpp::tokenizer_detail
