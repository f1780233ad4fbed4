#include "tokenizer/byte_level.h"

#include "mambacpp/error.h"
#include "tokenizer/utf8.h"

namespace mambacpp::tokenizer_detail {

ByteLevelAlphabet::ByteLevelAlphabet() {
  char32_t next_extra = 0x100;
  for (int byte = 0; byte < 256; ++byte) {
    const bool printable = (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) ||
                           (byte >= 0xAE && byte <= 0xFF);
    const char32_t cp = printable ? static_cast<char32_t>(byte) : next_extra++;
    std::string text;
    append_utf8(text, cp);
    lengths_[byte] = static_cast<unsigned char>(text.size());
    for (std::size_t k = 0; k < text.size(); ++k) encoded_[byte][k] = text[k];
    decoded_[cp] = static_cast<unsigned char>(byte);
  }
}

void ByteLevelAlphabet::append_encoded(std::string_view bytes, std::string& out) const {
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out.append(encoded_[byte].data(), lengths_[byte]);
  }
}

bool ByteLevelAlphabet::append_decoded(std::string_view token, std::string& out) const {
  const std::size_t original_size = out.size();
  std::size_t pos = 0;
  while (pos < token.size()) {
    const char32_t cp = decode_code_point(token, pos);
    pos += utf8_sequence_length(static_cast<unsigned char>(token[pos]));
    const auto it = decoded_.find(cp);
    if (it == decoded_.end()) {
      out.resize(original_size);
      return false;
    }
    out.push_back(static_cast<char>(it->second));
  }
  return true;
}

const ByteLevelAlphabet& byte_level_alphabet() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

namespace {

// Tokenizers 0.23.2 (Oniguruma) matches \s against the Unicode White_Space property. PCRE2's
// \s is ASCII-only without PCRE2_UCP and also matches U+180E with it, so the class is
// spelled out instead.
constexpr char kWhiteSpace[] =
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";

// Letters and numbers that Unicode 15.0 and 16.0 added. Tokenizers 0.23.2 classifies text
// with Unicode 16.0 data, but PCRE2 10.42 (Debian 12) has Unicode 14.0 tables, where these
// are unassigned. Adding them to \p{L} and \p{N} is harmless with a newer PCRE2.
// NOTE: characters that Unicode 17.0 added are not letters or numbers to tokenizers 0.23.2;
// a PCRE2 built with Unicode 17.0 data would class them differently.
constexpr char kLettersSinceUnicode15[] =
    "\\x{1C89}-\\x{1C8A}\\x{A7CB}-\\x{A7CD}\\x{A7DA}-\\x{A7DC}\\x{105C0}-\\x{105F3}"
    "\\x{10D4A}-\\x{10D65}\\x{10D6F}-\\x{10D85}\\x{10EC2}-\\x{10EC4}"
    "\\x{1123F}-\\x{11240}\\x{11380}-\\x{11389}\\x{1138B}\\x{1138E}"
    "\\x{11390}-\\x{113B5}\\x{113B7}\\x{113D1}\\x{113D3}\\x{11BC0}-\\x{11BE0}"
    "\\x{11F02}\\x{11F04}-\\x{11F10}\\x{11F12}-\\x{11F33}\\x{1342F}"
    "\\x{13441}-\\x{13446}\\x{13460}-\\x{143FA}\\x{16100}-\\x{1611D}"
    "\\x{16D40}-\\x{16D6C}\\x{18CFF}\\x{1B132}\\x{1B155}\\x{1DF25}-\\x{1DF2A}"
    "\\x{1E030}-\\x{1E06D}\\x{1E4D0}-\\x{1E4EB}\\x{1E5D0}-\\x{1E5ED}\\x{1E5F0}"
    "\\x{2B739}\\x{2EBF0}-\\x{2EE5D}\\x{31350}-\\x{323AF}";
constexpr char kNumbersSinceUnicode15[] =
    "\\x{10D40}-\\x{10D49}\\x{116D0}-\\x{116E3}\\x{11BF0}-\\x{11BF9}"
    "\\x{11F50}-\\x{11F59}\\x{16130}-\\x{16139}\\x{16D70}-\\x{16D79}"
    "\\x{1CCF0}-\\x{1CCF9}\\x{1D2C0}-\\x{1D2D3}\\x{1E4F0}-\\x{1E4F9}"
    "\\x{1E5F1}-\\x{1E5FA}";

std::string gpt2_pattern() {
  const std::string space = kWhiteSpace;
  const std::string letter = std::string("\\p{L}") + kLettersSinceUnicode15;
  const std::string number = std::string("\\p{N}") + kNumbersSinceUnicode15;
  return "'s|'t|'re|'ve|'m|'ll|'d| ?[" + letter + "]+| ?[" + number + "]+| ?[^" + space + letter +
         number + "]+|[" + space + "]+(?![^" + space + "])|[" + space + "]+";
}

}  // namespace

Gpt2Splitter::Gpt2Splitter() {
  const std::string pattern = gpt2_pattern();
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                        PCRE2_UTF | PCRE2_NO_UTF_CHECK, &error_code, &error_offset, nullptr);
  if (code_ == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    throw Error(std::string("PCRE2 rejected the GPT-2 split pattern: ") +
                reinterpret_cast<const char*>(message));
  }
  jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  match_data_ = pcre2_match_data_create_from_pattern(code_, nullptr);
  if (match_data_ == nullptr) {
    pcre2_code_free(code_);
    throw std::bad_alloc();
  }
}

Gpt2Splitter::~Gpt2Splitter() {
  pcre2_match_data_free(match_data_);
  pcre2_code_free(code_);
}

bool Gpt2Splitter::next_match(std::string_view text, std::size_t start, std::size_t& match_begin,
                              std::size_t& match_end) const {
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), start, PCRE2_NO_UTF_CHECK,
                                        match_data_, nullptr)
                      : pcre2_match(code_, subject, text.size(), start, PCRE2_NO_UTF_CHECK,
                                    match_data_, nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(rc, message, sizeof(message));
    throw Error(std::string("GPT-2 split pattern match failed: ") +
                reinterpret_cast<const char*>(message));
  }
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data_);
  match_begin = ovector[0];
  match_end = ovector[1];
  if (match_begin >= text.size()) return false;
  if (match_end <= match_begin) {
    // The pattern cannot match empty text; stepping one character keeps the loop finite.
    match_end = match_begin + utf8_sequence_length(static_cast<unsigned char>(text[match_begin]));
  }
  return true;
}

}  // namespace mambacpp::tokenizer_detail
