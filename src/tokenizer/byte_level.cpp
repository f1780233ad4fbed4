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

// Oniguruma, which Hugging Face tokenizers uses, matches \s against the Unicode White_Space
// property. PCRE2's \s with UCP also matches U+180E, so the class is spelled out instead.
constexpr char kWhiteSpace[] =
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";

std::string gpt2_pattern() {
  const std::string ws = kWhiteSpace;
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" + ws + "\\p{L}\\p{N}]+|[" + ws +
         "]+(?![^" + ws + "])|[" + ws + "]+";
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
