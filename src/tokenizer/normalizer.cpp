#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>
#include <new>

#include "mambacpp/error.h"

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

}  // namespace

// ASCII characters are unchanged by every normalization form, and a character is only
// affected by the combining marks that follow it up to the next starter. So the text is
// copied ASCII run by ASCII run, and utf8proc only sees each non-ASCII run together with
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
    append_utf8proc_normalized(text.substr(chunk_start, run_end - chunk_start), form, out);
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
