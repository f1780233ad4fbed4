#include <cstdio>
#include <cstdlib>

#include "mambacpp/error.h"

namespace mambacpp::detail {

void check_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "internal error: check failed: %s at %s:%d\n", expr, file, line);
  std::abort();
}

}  // namespace mambacpp::detail
