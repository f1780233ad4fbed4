#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <new>

#include "mambacpp/error.h"
#include "tokenizer/utf8.h"

namespace mambacpp::tokenizer_detail {

namespace {

utf8proc_option_t options_for(NormalizationForm form) {
  switch (form) {
    case NormalizationForm::kNFC:
      return static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    case NormalizationForm::kNFD:
      return static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
    case NormalizationForm::kNFKC:
      return static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    case NormalizationForm::kNFKD:
      return static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE |
                                            UTF8PROC_COMPAT);
  }
  return UTF8PROC_STABLE;
}

void append_utf8proc_normalized(std::string_view chunk, NormalizationForm form,
                                std::string& out) {
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t length =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(chunk.data()),
                   static_cast<utf8proc_ssize_t>(chunk.size()), &result, options_for(form));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(result, &std::free);
  if (length == UTF8PROC_ERROR_NOMEM) throw std::bad_alloc();
  if (length < 0) {
    // Input was validated as UTF-8 before normalization, so this is a bug.
    throw Error(std::string("Unicode normalization failed: ") + utf8proc_errmsg(length));
  }
  out.append(reinterpret_cast<const char*>(result), static_cast<std::size_t>(length));
}

struct CodePointRange {
  char32_t first;
  char32_t last;
};

// Characters that tokenizers 0.23.2 leaves as they are in NFC, because its normalization
// tables predate them: it neither reorders nor composes them, while utf8proc 2.8 (Unicode 15.0)
// or a later utf8proc would. Found by running through tokenizers 0.23.2 every character that
// has a combining class or a canonical decomposition in utf8proc 2.8 or in Unicode 17.0 (ICU
// 78), and adding the Unicode 16.0 and 17.0 starters that those decompositions start with.
// NOTE: characters added after Unicode 17.0 are not listed.
constexpr CodePointRange kUnknownToTokenizers[] = {
    {0x7FD, 0x7FD}, {0x897, 0x89F}, {0x8CA, 0x8D3}, {0x9FE, 0x9FE}, {0xC3C, 0xC3C},
    {0xD3B, 0xD3C}, {0xEBA, 0xEBA}, {0x1715, 0x1715}, {0x1ABF, 0x1ADD}, {0x1AE0, 0x1AEB},
    {0x1DF6, 0x1DFA}, {0xA82C, 0xA82C}, {0x105C9, 0x105C9}, {0x105D2, 0x105D2},
    {0x105DA, 0x105DA}, {0x105E4, 0x105E4}, {0x10D24, 0x10D27}, {0x10D69, 0x10D6D},
    {0x10EAB, 0x10EAC}, {0x10EFA, 0x10EFB}, {0x10EFD, 0x10EFF}, {0x10F46, 0x10F50},
    {0x10F82, 0x10F85}, {0x11070, 0x11070}, {0x1133B, 0x1133B}, {0x11382, 0x11385},
    {0x1138B, 0x1138B}, {0x1138E, 0x1138E}, {0x11390, 0x11391}, {0x113B8, 0x113B8},
    {0x113BB, 0x113BB}, {0x113C2, 0x113C2}, {0x113C5, 0x113C5}, {0x113C7, 0x113C9},
    {0x113CE, 0x113D0}, {0x1145E, 0x1145E}, {0x11839, 0x1183A}, {0x11930, 0x11930},
    {0x11938, 0x11938}, {0x1193D, 0x1193E}, {0x11943, 0x11943}, {0x119E0, 0x119E0},
    {0x11A34, 0x11A34}, {0x11A47, 0x11A47}, {0x11A99, 0x11A99}, {0x11D42, 0x11D42},
    {0x11D44, 0x11D45}, {0x11D97, 0x11D97}, {0x11F41, 0x11F42}, {0x1611E, 0x16129},
    {0x1612F, 0x1612F}, {0x16D63, 0x16D63}, {0x16D67, 0x16D6A}, {0x16FF0, 0x16FF1},
    {0x1E08F, 0x1E08F}, {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE}, {0x1E2EC, 0x1E2EF},
    {0x1E4EC, 0x1E4EF}, {0x1E5EE, 0x1E5EF}, {0x1E6E3, 0x1E6E3}, {0x1E6E6, 0x1E6E6},
    {0x1E6EE, 0x1E6EF}, {0x1E6F5, 0x1E6F5},
};

bool unknown_to_tokenizers(char32_t cp) {
  const auto it = std::upper_bound(std::begin(kUnknownToTokenizers), std::end(kUnknownToTokenizers), cp,
                                   [](char32_t value, const CodePointRange& range) { return value < range.first; });
  return it != std::begin(kUnknownToTokenizers) && cp <= std::prev(it)->last;
}

// Normalizes a chunk, treating the characters of kUnknownToTokenizers as tokenizers does:
// as unassigned starters, which nothing reorders across or composes with. Each one is
// copied as is and the text between them is normalized on its own.
void append_chunk_normalized(std::string_view chunk, NormalizationForm form, std::string& out) {
  std::size_t start = 0;
  std::size_t pos = 0;
  while (pos < chunk.size()) {
    const std::size_t length = utf8_sequence_length(static_cast<unsigned char>(chunk[pos]));
    if (length >= 2 && unknown_to_tokenizers(decode_code_point(chunk, pos))) {
      if (pos > start) append_utf8proc_normalized(chunk.substr(start, pos - start), form, out);
      out.append(chunk.substr(pos, length));
      start = pos + length;
    }
    pos += length;
  }
  if (start < chunk.size()) append_utf8proc_normalized(chunk.substr(start), form, out);
}

}  // namespace

// ASCII characters are unchanged by every normalization form, and a character is only
// affected by the combining marks that follow it up to the next starter. So the text is
// copied ASCII run by ASCII run, and utf8proc only gets each non-ASCII run together with
// the ASCII character just before it (which a following mark may compose with).
void append_normalized(std::string_view text, NormalizationForm form, std::string& out) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t run_start = pos;
    while (run_start < text.size() && static_cast<unsigned char>(text[run_start]) < 0x80) {
      ++run_start;
    }
    if (run_start == text.size()) {
      out.append(text.substr(pos));
      return;
    }
    std::size_t chunk_start = run_start > pos ? run_start - 1 : run_start;
    out.append(text.substr(pos, chunk_start - pos));
    std::size_t run_end = run_start;
    while (run_end < text.size() && static_cast<unsigned char>(text[run_end]) >= 0x80) {
      ++run_end;
    }
    append_chunk_normalized(text.substr(chunk_start, run_end - chunk_start), form, out);
    pos = run_end;
  }
}

void Normalizer::normalize(std::string_view text, std::string& out) const {
  out.clear();
  if (forms_.empty()) {
    out.append(text);
    return;
  }
  append_normalized(text, forms_[0], out);
  std::string next;
  for (std::size_t i = 1; i < forms_.size(); ++i) {
    next.clear();
    append_normalized(out, forms_[i], next);
    out.swap(next);
  }
}

}  // namespace mambacpp::tokenizer_detail
