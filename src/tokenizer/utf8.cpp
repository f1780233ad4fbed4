#include "tokenizer/utf8.h"

namespace mambacpp::tokenizer_detail {

namespace {

struct SequenceShape {
  int length;  // 0 for a byte that cannot start a sequence
  unsigned char second_min;
  unsigned char second_max;
};

// Allowed lead bytes and second-byte ranges of well-formed sequences (Unicode Table 3-7).
SequenceShape shape_of(unsigned char lead) {
  if (lead < 0x80) return {1, 0, 0};
  if (lead < 0xC2) return {0, 0, 0};
  if (lead < 0xE0) return {2, 0x80, 0xBF};
  if (lead == 0xE0) return {3, 0xA0, 0xBF};
  if (lead == 0xED) return {3, 0x80, 0x9F};
  if (lead < 0xF0) return {3, 0x80, 0xBF};
  if (lead == 0xF0) return {4, 0x90, 0xBF};
  if (lead < 0xF4) return {4, 0x80, 0xBF};
  if (lead == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

enum class Step { kValid, kInvalid, kTruncated };

// Examines the sequence at bytes[pos]. Sets `consumed` to the sequence length when valid,
// to the length of the maximal ill-formed subpart when invalid, or to the bytes left when
// the input ends inside a sequence that could still be completed.
Step examine(std::string_view bytes, std::size_t pos, std::size_t& consumed) {
  const auto lead = static_cast<unsigned char>(bytes[pos]);
  const SequenceShape shape = shape_of(lead);
  if (shape.length == 0) {
    consumed = 1;
    return Step::kInvalid;
  }
  for (int k = 1; k < shape.length; ++k) {
    if (pos + k >= bytes.size()) {
      consumed = bytes.size() - pos;
      return Step::kTruncated;
    }
    const auto byte = static_cast<unsigned char>(bytes[pos + k]);
    const unsigned char min = k == 1 ? shape.second_min : 0x80;
    const unsigned char max = k == 1 ? shape.second_max : 0xBF;
    if (byte < min || byte > max) {
      consumed = k;
      return Step::kInvalid;
    }
  }
  consumed = shape.length;
  return Step::kValid;
}

}  // namespace

std::optional<std::size_t> find_invalid_utf8(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    std::size_t consumed = 0;
    if (examine(text, pos, consumed) != Step::kValid) return pos;
    pos += consumed;
  }
  return std::nullopt;
}

void append_utf8_lossy(std::string& out, std::string_view bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::size_t pos = 0;
  std::size_t valid_start = 0;
  while (pos < bytes.size()) {
    if (static_cast<unsigned char>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    std::size_t consumed = 0;
    if (examine(bytes, pos, consumed) == Step::kValid) {
      pos += consumed;
      continue;
    }
    out.append(bytes.substr(valid_start, pos - valid_start));
    out.append(kReplacement);
    pos += consumed;
    valid_start = pos;
  }
  out.append(bytes.substr(valid_start));
}

std::size_t complete_utf8_prefix(std::string_view bytes) {
  // Only the last three bytes can belong to an unfinished sequence.
  const std::size_t tail_start = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (std::size_t pos = tail_start; pos < bytes.size(); ++pos) {
    const auto byte = static_cast<unsigned char>(bytes[pos]);
    if (shape_of(byte).length < 2) continue;
    std::size_t consumed = 0;
    if (examine(bytes, pos, consumed) == Step::kTruncated) return pos;
  }
  return bytes.size();
}

char32_t decode_code_point(std::string_view text, std::size_t pos) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  if (b0 < 0x80) return b0;
  const std::size_t length = utf8_sequence_length(b0);
  char32_t cp = b0 & (0x7F >> length);
  for (std::size_t k = 1; k < length; ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(text[pos + k]) & 0x3F);
  }
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace mambacpp::tokenizer_detail
