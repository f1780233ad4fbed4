#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mambacpp::tokenizer_detail {

// Returns the byte offset of the first byte that does not start or continue a well-formed
// UTF-8 sequence (Unicode Table 3-7), or nullopt when all of `text` is valid.
std::optional<std::size_t> find_invalid_utf8(std::string_view text);

// Appends `bytes` to `out`, replacing each maximal ill-formed subpart with U+FFFD. This is
// the substitution Rust's String::from_utf8_lossy and the WHATWG decoder make.
void append_utf8_lossy(std::string& out, std::string_view bytes);

// Returns the length of the longest prefix of `bytes` that does not end inside a sequence
// that further bytes could still complete. Decoding that prefix lossily gives the same text
// as it does inside any longer byte string that starts with `bytes`.
std::size_t complete_utf8_prefix(std::string_view bytes);

// Length in bytes of the UTF-8 sequence that starts with `lead` (1 for continuation bytes
// and invalid leads, so callers walking valid text always advance).
inline std::size_t utf8_sequence_length(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// Decodes the code point at `text[pos]`; `text` must be valid UTF-8.
char32_t decode_code_point(std::string_view text, std::size_t pos);

// Appends the UTF-8 encoding of a Unicode scalar value.
void append_utf8(std::string& out, char32_t code_point);

}  // namespace mambacpp::tokenizer_detail
