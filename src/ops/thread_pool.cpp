#include "mambacpp/thread_pool.h"

#include <algorithm>

namespace mambacpp {

namespace {

// The share of thread `index` out of `n_threads`, in whole grains.
std::pair<int64_t, int64_t> share_of(int index, int n_threads, int64_t n, int64_t grain) {
  int64_t n_grains = (n + grain - 1) / grain;
  int64_t per_thread = n_grains / n_threads;
  int64_t extra = n_grains % n_threads;
  int64_t first = index * per_thread + std::min<int64_t>(index, extra);
  int64_t count = per_thread + (index < extra ? 1 : 0);
  int64_t begin = std::min(n, first * grain);
  int64_t end = std::min(n, (first + count) * grain);
  return {begin, end};
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  start_cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (n_threads_ == 1 || n <= grain) {
    fn(0, n);
    return;
  }

  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &fn;
    task_n_ = n;
    task_grain_ = grain;
    pending_ = n_threads_ - 1;
    ++generation_;
  }
  start_cv_.notify_all();

  auto [begin, end] = share_of(0, n_threads_, n, grain);
  if (begin < end) fn(begin, end);

  std::unique_lock<std::mutex> lock(mutex_);
  done_cv_.wait(lock, [this] { return pending_ == 0; });
  task_ = nullptr;
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t, int64_t)>* task;
    int64_t n, grain;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      task = task_;
      n = task_n_;
      grain = task_grain_;
    }

    auto [begin, end] = share_of(index, n_threads_, n, grain);
    if (begin < end) (*task)(begin, end);

    {
      std::lock_guard<std::mutex> lock(mutex_);
      --pending_;
    }
    done_cv_.notify_one();
  }
}

}  // namespace mambacpp
