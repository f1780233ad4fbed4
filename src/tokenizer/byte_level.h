#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace mambacpp::tokenizer_detail {

// The GPT-2 byte-to-character table: printable Latin-1 bytes map to themselves and the
// other 68 bytes to U+0100 onwards, so every byte string becomes printable text.
class ByteLevelAlphabet {
 public:
  ByteLevelAlphabet();

  // UTF-8 text of the character standing for `byte`.
  std::string_view encoded(unsigned char byte) const { return {encoded_[byte].data(), lengths_[byte]}; }

  // Appends the byte-level form of `bytes`.
  void append_encoded(std::string_view bytes, std::string& out) const;

  // Appends the bytes that a token's characters stand for. Returns false, leaving `out`
  // unchanged, when a character is outside the alphabet.
  bool append_decoded(std::string_view token, std::string& out) const;

 private:
  std::array<std::array<char, 2>, 256> encoded_{};
  std::array<unsigned char, 256> lengths_{};
  std::unordered_map<char32_t, unsigned char> decoded_;
};

const ByteLevelAlphabet& byte_level_alphabet();

// Splits text the way the GPT-2 pattern does in the ByteLevel pre-tokenizer:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// compiled with PCRE2 in UTF mode, JIT-compiled when the platform supports it.
class Gpt2Splitter {
 public:
  Gpt2Splitter();
  ~Gpt2Splitter();
  Gpt2Splitter(const Gpt2Splitter&) = delete;
  Gpt2Splitter& operator=(const Gpt2Splitter&) = delete;

  // Calls on_piece(begin, end) for each consecutive piece of valid UTF-8 `text`; the pieces
  // cover the text.
  template <typename OnPiece>
  void split(std::string_view text, OnPiece&& on_piece) const;

 private:
  // Finds the next match at or after `start`; returns false when there is none.
  bool next_match(std::string_view text, std::size_t start, std::size_t& match_begin,
                  std::size_t& match_end) const;

  pcre2_code* code_ = nullptr;
  pcre2_match_data* match_data_ = nullptr;  // guarded by the tokenizer's encode lock
  bool jit_ = false;
};

template <typename OnPiece>
void Gpt2Splitter::split(std::string_view text, OnPiece&& on_piece) const {
  std::size_t pos = 0;
  std::size_t match_begin = 0;
  std::size_t match_end = 0;
  while (pos < text.size()) {
    if (!next_match(text, pos, match_begin, match_end)) break;
    if (match_begin > pos) on_piece(pos, match_begin);
    on_piece(match_begin, match_end);
    pos = match_end;
  }
  if (pos < text.size()) on_piece(pos, text.size());
}

}  // namespace mambacpp::tokenizer_detail
