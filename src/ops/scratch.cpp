#include "ops/scratch.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

namespace mambacpp {

namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kMinBlockBytes = size_t{1} << 20;

// Blocks are never freed or moved while the thread lives, so pointers handed out stay
// valid until their frame ends. A request that does not fit the current block moves on
// to the next one, allocating it only when there is none.
struct Arena {
  struct Block {
    std::unique_ptr<unsigned char[]> storage;
    unsigned char* begin = nullptr;  // storage aligned to kAlignment
    size_t size = 0;
  };
  std::vector<Block> blocks;
  size_t block = 0;   // the block requests are taken from
  size_t offset = 0;  // bytes used in that block

  void add_block(size_t min_bytes) {
    size_t size = std::max(min_bytes, kMinBlockBytes);
    if (!blocks.empty()) size = std::max(size, 2 * blocks.back().size);
    Block b;
    b.storage.reset(new unsigned char[size + kAlignment]);
    auto address = reinterpret_cast<uintptr_t>(b.storage.get());
    b.begin = b.storage.get() + (kAlignment - address % kAlignment) % kAlignment;
    b.size = size;
    blocks.push_back(std::move(b));
  }
};

Arena& this_thread_arena() {
  thread_local Arena arena;
  return arena;
}

}  // namespace

ScratchFrame::ScratchFrame() {
  Arena& arena = this_thread_arena();
  saved_block_ = arena.block;
  saved_offset_ = arena.offset;
}

ScratchFrame::~ScratchFrame() {
  Arena& arena = this_thread_arena();
  arena.block = saved_block_;
  arena.offset = saved_offset_;
}

void* ScratchFrame::take_bytes(size_t n_bytes) {
  Arena& arena = this_thread_arena();
  n_bytes = std::max<size_t>(kAlignment, (n_bytes + kAlignment - 1) / kAlignment * kAlignment);
  for (;;) {
    if (arena.block == arena.blocks.size()) arena.add_block(n_bytes);
    Arena::Block& b = arena.blocks[arena.block];
    if (arena.offset + n_bytes <= b.size) {
      void* p = b.begin + arena.offset;
      arena.offset += n_bytes;
      return p;
    }
    ++arena.block;
    arena.offset = 0;
  }
}

}  // namespace mambacpp
