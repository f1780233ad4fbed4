// Decoding allocates no heap memory once a sequence is under way: every global operator
// new is counted while a window of decode steps runs.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "mambacpp/model.h"
#include "support/golden_file.h"

namespace {

std::atomic<bool> counting{false};
std::atomic<long> allocations{0};

void* counted_malloc(size_t size) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* counted_aligned_malloc(size_t size, std::align_val_t alignment) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
  const size_t align = static_cast<size_t>(alignment);
  void* p = std::aligned_alloc(align, (size + align - 1) / align * align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(size_t size) { return counted_malloc(size); }
void* operator new[](size_t size) { return counted_malloc(size); }
void* operator new(size_t size, std::align_val_t a) { return counted_aligned_malloc(size, a); }
void* operator new[](size_t size, std::align_val_t a) { return counted_aligned_malloc(size, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { std::free(p); }

namespace mambacpp::testing {
namespace {

class DecodeAllocation : public ::testing::TestWithParam<const char*> {};

TEST_P(DecodeAllocation, NoHeapAllocationAfterWarmUp) {
  std::shared_ptr<const Model> model = Model::load(test_data(std::string("golden/") + GetParam()));
  const int64_t V = model->config().padded_vocab_size;
  ThreadPool pool(2);
  std::vector<float> logits(static_cast<size_t>(3 * V));

  // A prompt, then a few steps of both decode paths to size the scratch arenas.
  State single = model->new_state();
  const std::vector<int32_t> prompt = {5, 17, 42, 8, 99};
  model->forward(prompt, single, LogitsFor::Last, logits.data(), pool);
  std::vector<State> batch(3, single);
  std::vector<State*> batch_ptrs = {&batch[0], &batch[1], &batch[2]};
  const std::vector<int32_t> next = {3, 4, 5};
  auto step_all = [&] {
    model->forward(std::span<const int32_t>(next.data(), 1), single, LogitsFor::Last,
                   logits.data(), pool);
    model->forward_batch(next, batch_ptrs, logits.data(), pool);
  };
  for (int i = 0; i < 3; ++i) step_all();

  allocations = 0;
  counting = true;
  for (int i = 0; i < 20; ++i) step_all();
  counting = false;
  EXPECT_EQ(allocations.load(), 0) << "heap allocations in 20 decode steps of " << GetParam();
}

// Attention layers are left out: their kv cache grows as tokens arrive.
INSTANTIATE_TEST_SUITE_P(Models, DecodeAllocation,
                         ::testing::Values("mamba1_tiny", "mamba1_dtrank_bias", "mamba2_tiny",
                                           "mamba2_groups", "mamba2_mlp"));

// The counter itself works: a vector allocated while counting is seen.
TEST(DecodeAllocationCounter, SeesAnAllocation) {
  allocations = 0;
  counting = true;
  auto* v = new std::vector<int>(100);
  counting = false;
  delete v;
  EXPECT_GE(allocations.load(), 1);
}

}  // namespace
}  // namespace mambacpp::testing
