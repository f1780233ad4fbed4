#pragma once

#include <cstddef>
#include <cstring>
#include <type_traits>

namespace mambacpp {

// Scratch memory for the intermediate activations of a forward pass, taken from an arena
// that belongs to the calling thread. Everything taken through a frame is released when
// the frame ends; the arena keeps its blocks for the next frame. So once a pass of some
// shape has run on a thread, passes of that shape or smaller allocate nothing, which
// keeps the decode loop free of heap allocation. Frames on one thread must end in the
// reverse order of their creation, as scopes do.
class ScratchFrame {
 public:
  ScratchFrame();
  ~ScratchFrame();
  ScratchFrame(const ScratchFrame&) = delete;
  ScratchFrame& operator=(const ScratchFrame&) = delete;

  // n values of a trivially copyable type, uninitialized, 64-byte aligned, valid until
  // this frame ends.
  template <typename T>
  T* take(size_t n) {
    static_assert(std::is_trivially_copyable_v<T>);
    return static_cast<T*>(take_bytes(n * sizeof(T)));
  }

  // The same, set to zero bits.
  template <typename T>
  T* take_zeroed(size_t n) {
    T* p = take<T>(n);
    std::memset(static_cast<void*>(p), 0, n * sizeof(T));
    return p;
  }

 private:
  void* take_bytes(size_t n_bytes);

  size_t saved_block_;
  size_t saved_offset_;
};

}  // namespace mambacpp
