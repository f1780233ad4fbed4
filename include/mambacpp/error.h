#pragma once

#include <stdexcept>
#include <string>

namespace mambacpp {

// The one error type for bad input: a missing or malformed file, a tensor of the wrong
// shape, an invalid flag value. The message names the file, tensor or flag, and what was
// expected. Frontends print it as one line and exit non-zero.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace mambacpp

// Fails loudly on a broken internal invariant (a bug, never bad user input).
#define MAMBACPP_CHECK(cond)                                                            \
  do {                                                                                  \
    if (!(cond)) ::mambacpp::detail::check_failed(#cond, __FILE__, __LINE__);           \
  } while (0)

namespace mambacpp::detail {
[[noreturn]] void check_failed(const char* expr, const char* file, int line);
}
