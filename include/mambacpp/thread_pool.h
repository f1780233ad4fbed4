#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace mambacpp {

// A fixed set of worker threads for the whole process. Kernels split their work into
// ranges (of rows, channels or heads) with parallel_for. The calling thread takes a
// share too, so a pool of n threads starts n - 1 workers. Idle threads spin for 30 us
// before they sleep, so back-to-back calls do not pay a wake-up each.
class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end) on disjoint ranges that cover [0, n), one range per thread,
  // each a multiple of `grain` long except the last. Returns when all calls have returned.
  // Not reentrant: fn must not call parallel_for on the same pool. The call allocates no
  // memory: fn is passed by reference, not wrapped in a std::function.
  template <typename Fn>
  void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
    using Callable = std::remove_reference_t<Fn>;
    RangeTask task{const_cast<void*>(static_cast<const void*>(&fn)),
                   [](void* callable, int64_t begin, int64_t end) {
                     (*static_cast<Callable*>(callable))(begin, end);
                   }};
    run(n, grain, task);
  }

 private:
  // A borrowed callable and the function that invokes it on a range.
  struct RangeTask {
    void* callable;
    void (*invoke)(void* callable, int64_t begin, int64_t end);
    void operator()(int64_t begin, int64_t end) const { invoke(callable, begin, end); }
  };

  void run(int64_t n, int64_t grain, const RangeTask& task);
  void worker_loop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  const RangeTask* task_ = nullptr;
  int64_t task_n_ = 0;
  int64_t task_grain_ = 1;
  std::atomic<uint64_t> generation_{0};  // bumped once per task
  std::atomic<int> pending_{0};           // workers still running the current task
  bool stopping_ = false;
};

}  // namespace mambacpp
