#include "runtime/stop_strings.h"

#include <algorithm>

namespace mambacpp {

namespace {

// Length of the longest suffix of `text` that is a proper prefix of `stop`.
size_t partial_match_length(const std::string& text, const std::string& stop) {
  size_t longest = std::min(text.size(), stop.size() - 1);
  for (size_t n = longest; n > 0; --n)
    if (text.compare(text.size() - n, n, stop, 0, n) == 0) return n;
  return 0;
}

}  // namespace

StopStringFilter::StopStringFilter(std::vector<std::string> stops) {
  for (auto& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

std::string StopStringFilter::push(const std::string& piece) {
  if (stopped_) return {};
  pending_ += piece;

  size_t first_match = std::string::npos;
  for (const auto& stop : stops_) first_match = std::min(first_match, pending_.find(stop));
  if (first_match != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, first_match);
    pending_.clear();
    return out;
  }

  size_t hold = 0;
  for (const auto& stop : stops_) hold = std::max(hold, partial_match_length(pending_, stop));
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopStringFilter::finish() {
  std::string out;
  out.swap(pending_);
  return stopped_ ? std::string() : out;
}

}  // namespace mambacpp
