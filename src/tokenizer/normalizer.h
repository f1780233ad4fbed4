#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mambacpp::tokenizer_detail {

enum class NormalizationForm { kNFC, kNFD, kNFKC, kNFKD };

// The normalizer of a tokenizer.json: a sequence of Unicode normalization forms applied in
// order (empty when the file has none), computed with utf8proc.
class Normalizer {
 public:
  Normalizer() = default;
  explicit Normalizer(std::vector<NormalizationForm> forms) : forms_(std::move(forms)) {}

  bool empty() const { return forms_.empty(); }

  // Writes the normalized form of valid UTF-8 `text` to `out` (replacing its content).
  void normalize(std::string_view text, std::string& out) const;

 private:
  std::vector<NormalizationForm> forms_;
};

// Applies one normalization form, appending the result to `out`.
void append_normalized(std::string_view text, NormalizationForm form, std::string& out);

}  // namespace mambacpp::tokenizer_detail
