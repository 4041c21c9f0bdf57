// STREAM-like read bandwidth: the roofline for decode, which must read every weight once per
// token. Reports bytes/s for a buffer far larger than the last-level cache.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <numeric>
#include <thread>
#include <vector>

namespace {

// Sums 64-bit words; the sum is consumed so the loads cannot be removed.
uint64_t SumWords(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  for (; i < n; ++i) a += p[i];
  return a + b + c + d;
}

void BM_ReadBandwidth(benchmark::State& state) {
  const size_t bytes = size_t{1} << 30;  // 1 GiB: well beyond any cache
  const int threads = static_cast<int>(state.range(0));
  std::vector<uint64_t> buffer(bytes / 8);
  std::iota(buffer.begin(), buffer.end(), 1);
  for (auto _ : state) {
    std::vector<std::thread> pool;
    std::vector<uint64_t> sums(threads);
    const size_t per = buffer.size() / threads;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] { sums[t] = SumWords(buffer.data() + t * per, per); });
    }
    for (auto& th : pool) th.join();
    benchmark::DoNotOptimize(sums);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
}
BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
