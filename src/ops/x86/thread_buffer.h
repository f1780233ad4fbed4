// A per-thread scratch buffer of the x86 kernel files. It has internal linkage, as
// everything these files share in headers does, so each file gets its own copy compiled
// with its own flags.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace mambacpp {
namespace {

// A 64-byte aligned buffer of T grown as needed and kept between calls, one per thread.
template <typename T>
struct ThreadBuffer {
  T* data = nullptr;
  size_t capacity = 0;
  ~ThreadBuffer() { std::free(data); }
  T* reserve(size_t n) {
    if (n > capacity) {
      std::free(data);
      data = static_cast<T*>(std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64));
      if (data == nullptr) throw std::bad_alloc();
      capacity = n;
    }
    return data;
  }
};

}  // namespace
}  // namespace mambacpp
