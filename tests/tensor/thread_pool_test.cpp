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
  for (int threads : {1, 2, 3, 8, 33}) {  // 33: far more threads than this machine's CPUs
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 5, 7, 64, 131, 1001, 100000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.ParallelFor(n, [&](int64_t b, int64_t e) {
        ASSERT_LT(b, e);
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "threads " << threads << " n " << n;
    }
  }
}

// Waits (up to a minute, so a broken pool fails instead of hanging) until `ok` holds.
template <typename Ok>
bool WaitFor(Ok ok) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (!ok()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

TEST(ThreadPool, UsesSeveralThreads) {
  // Each item waits until all 4 are running at once, which only 4 distinct threads can do.
  ThreadPool pool(4);
  std::mutex mu;
  std::vector<std::thread::id> ids;
  std::atomic<int> running{0};
  std::atomic<bool> all_met{true};
  pool.ParallelFor(4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      ++running;
      if (!WaitFor([&] { return running.load() == 4; })) all_met = false;
      std::lock_guard<std::mutex> lock(mu);
      ids.push_back(std::this_thread::get_id());
    }
  });
  EXPECT_TRUE(all_met.load());
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()) - ids.begin(), 4);
}

// A thread stuck in its chunk (descheduled, or here: waiting) does not hold back the rest of the
// call: the other threads claim every other chunk. With one fixed chunk per thread, the stuck
// chunk's item would wait for items of the chunks its own thread never reached.
TEST(ThreadPool, StalledThreadsShareIsTakenOver) {
  for (int threads : {2, 4, 16}) {
    ThreadPool pool(threads);
    const int64_t n = 1000;
    std::atomic<int64_t> others_done{0};
    std::atomic<bool> waited_ok{true};
    std::mutex mu;
    std::vector<std::thread::id> who(static_cast<size_t>(n));
    pool.ParallelFor(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        {
          std::lock_guard<std::mutex> lock(mu);
          who[static_cast<size_t>(i)] = std::this_thread::get_id();
        }
        if (i == 0) {
          if (!WaitFor([&] { return others_done.load() == n - e; })) waited_ok = false;
        } else if (b != 0) {
          ++others_done;
        }
      }
    });
    EXPECT_TRUE(waited_ok.load()) << threads << " threads";
    // The stalled thread ran its own chunk only: it is a small part of the work.
    const auto stalled = std::count(who.begin(), who.end(), who[0]);
    EXPECT_LE(stalled, n / threads) << threads << " threads";
  }
}

// Many more threads than CPUs, called often (decode's pattern): every index once, every call.
TEST(ThreadPool, OversubscribedPoolStaysCorrect) {
  ThreadPool pool(24);
  std::vector<int> hits(4096);
  for (int call = 0; call < 3000; ++call) {
    const int64_t n = 1 + (call * 37) % 4096;
    pool.ParallelFor(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;  // each index one thread
    });
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << "call " << call << " index " << i;
      hits[static_cast<size_t>(i)] = 0;
    }
  }
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
