#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tensor/tensor.h"

namespace hearth::tensor {
namespace {

TEST(ThreadPool, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 5, 7, 64, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.ParallelFor(n, [&](int64_t b, int64_t e) {
        ASSERT_LT(b, e);
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "threads " << threads << " n " << n;
    }
  }
}

TEST(ThreadPool, UsesSeveralThreads) {
  ThreadPool pool(4);
  std::mutex mu;
  std::vector<std::thread::id> ids;
  pool.ParallelFor(4, [&](int64_t, int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard<std::mutex> lock(mu);
    ids.push_back(std::this_thread::get_id());
  });
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()) - ids.begin(), 4);
}

TEST(ThreadPool, ManyCallsReuseTheWorkers) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  for (int k = 0; k < 20000; ++k) {
    pool.ParallelFor(10, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) sum += i;
    });
  }
  EXPECT_EQ(sum.load(), 20000 * 45);
}

TEST(ThreadPool, ExceptionsReachTheCallerAndThePoolSurvives) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.ParallelFor(30,
                                [&](int64_t b, int64_t) {
                                  if (b >= 10) throw std::runtime_error("worker failed");
                                }),
               std::runtime_error);
  EXPECT_THROW(pool.ParallelFor(30, [&](int64_t b, int64_t) {
    if (b == 0) throw std::logic_error("caller failed");
  }),
               std::logic_error);
  std::atomic<int> count{0};
  pool.ParallelFor(30, [&](int64_t b, int64_t e) { count += static_cast<int>(e - b); });
  EXPECT_EQ(count.load(), 30);
}

TEST(ThreadPool, NestedCallsRunInline) {
  ThreadPool pool(2);
  std::atomic<int> count{0};
  pool.ParallelFor(4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      pool.ParallelFor(3, [&](int64_t b2, int64_t e2) { count += static_cast<int>(e2 - b2); });
    }
  });
  EXPECT_EQ(count.load(), 12);
}

TEST(ThreadPool, ConcurrentCallersAreSerialised) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  auto caller = [&] {
    for (int k = 0; k < 500; ++k) {
      pool.ParallelFor(8, [&](int64_t b, int64_t e) { total += e - b; });
    }
  };
  std::thread a(caller), b(caller);
  a.join();
  b.join();
  EXPECT_EQ(total.load(), 2 * 500 * 8);
}

}  // namespace
}  // namespace hearth::tensor
