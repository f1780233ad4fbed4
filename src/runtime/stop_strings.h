#pragma once

#include <string>
#include <vector>

namespace mambacpp {

// Streams generated text while watching for stop strings. Text that could still turn
// out to be the start of a stop string is held back until the next piece decides it, so
// the output never shows any part of a stop string. Only the text before the first match
// is ever released.
class StopStringFilter {
 public:
  explicit StopStringFilter(std::vector<std::string> stops);

  // Adds a piece of generated text; returns the text that is now safe to print.
  std::string push(const std::string& piece);
  // True once a stop string has appeared; later pushes release nothing.
  bool stopped() const { return stopped_; }
  // Returns the held-back text at the end of generation (empty after a stop).
  std::string finish();

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace mambacpp
