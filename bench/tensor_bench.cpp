// Kernel benchmarks of the tensor layer: matvec (decode) and 64-token matmul (prefill) for each
// weight type at each SIMD level this CPU has, single-threaded. bytes_per_second is the weight
// bytes read per multiplication (the decode roofline compares it with bandwidth_bench).
//   Shapes: 2048x2048 (fits in cache: kernel speed), 2048-wide rows adding up to 256 MiB of weights
//   (far beyond the L3: memory-bound decode, compare with bandwidth_bench), and 2048x2048 with 64
//   tokens (prefill).
// threads/...: one 8192x2048 matrix (an E2B-size FFN projection) through the ThreadPool at 1, 2,
//   4 and 8 threads, decode (1 token) and prefill (64 tokens), alone and beside a busy neighbour
//   (one extra thread spinning for the whole run, as another process would): more threads than
//   cores must not collapse (docs/BENCHMARKS.md, "Threads and cores").
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace ht = hearth::tensor;

namespace {

struct Type {
  uint32_t id;
  const char* name;
};
const Type kTypes[] = {{ht::kF32, "F32"},   {ht::kF16, "F16"},       {ht::kBF16, "BF16"},
                       {ht::kQ8_0, "Q8_0"}, {ht::kQ4_0, "Q4_0"},     {ht::kQ4_1, "Q4_1"},
                       {ht::kQ5_0, "Q5_0"}, {ht::kQ5_1, "Q5_1"},     {ht::kQ2_K, "Q2_K"},
                       {ht::kQ3_K, "Q3_K"}, {ht::kQ4_K, "Q4_K"},     {ht::kQ5_K, "Q5_K"},
                       {ht::kQ6_K, "Q6_K"}, {ht::kIQ4_NL, "IQ4_NL"}, {ht::kIQ4_XS, "IQ4_XS"}};

// Random bytes make valid blocks for the benchmark's purpose except for the float fields, which
// only change values, not speed; NaNs do not slow FMA down on x86.
std::vector<uint8_t> Weights(uint32_t type, int64_t rows, int64_t cols) {
  std::vector<uint8_t> w(ht::RowBytes(type, cols) * static_cast<size_t>(rows));
  uint32_t s = 1;
  for (auto& b : w) {
    s = s * 1664525u + 1013904223u;
    b = static_cast<uint8_t>((s >> 24) & 0x3F);  // small, finite halves/floats
  }
  return w;
}

void BM_MatMul(benchmark::State& state, uint32_t type, ht::SimdLevel level, int64_t rows,
               int64_t cols, int64_t n_tokens, ht::Precision precision, ht::Layout layout) {
  if (rows == 0)
    rows = static_cast<int64_t>((size_t{256} << 20) / ht::RowBytes(type, cols)) / 16 * 16;
  auto w = Weights(type, rows, cols);
  std::vector<float> x(static_cast<size_t>(cols * n_tokens), 0.5f);
  std::vector<float> y(static_cast<size_t>(rows * n_tokens));
  ht::Matrix m{type, rows, cols, w.data()};
  std::vector<uint8_t> packed;
  if (layout != ht::Layout::kRows) {  // as the model loader does
    packed.resize(w.size());
    m = ht::Repack(m, layout, packed.data());
    w = std::vector<uint8_t>(packed.size());  // only the size is used below
  }
  for (auto _ : state) {
    ht::MatMulAt(level, m, x.data(), n_tokens, y.data(), precision, nullptr);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(w.size()));
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(n_tokens) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

void BM_Threads(benchmark::State& state, uint32_t type, ht::Layout layout, int64_t n_tokens,
                bool busy_neighbour) {
  const int threads = static_cast<int>(state.range(0));
  const int64_t rows = 8192, cols = 2048;
  auto w = Weights(type, rows, cols);
  ht::Matrix m{type, rows, cols, w.data()};
  std::vector<uint8_t> packed;
  if (layout != ht::Layout::kRows) {
    packed.resize(w.size());
    m = ht::Repack(m, layout, packed.data());
  }
  std::vector<float> x(static_cast<size_t>(cols * n_tokens), 0.5f);
  std::vector<float> y(static_cast<size_t>(rows * n_tokens));
  ht::ThreadPool pool(threads);
  std::atomic<bool> stop{false};
  std::thread neighbour;
  if (busy_neighbour) {
    neighbour = std::thread([&] {
      volatile uint64_t spin = 0;
      while (!stop.load(std::memory_order_relaxed)) spin = spin + 1;
    });
  }
  for (auto _ : state) {
    ht::MatMul(m, x.data(), n_tokens, y.data(), ht::Precision::kFast, &pool);
    benchmark::DoNotOptimize(y.data());
  }
  stop = true;
  if (neighbour.joinable()) neighbour.join();
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(n_tokens) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

int Register() {
  for (ht::SimdLevel level :
       {ht::SimdLevel::kScalar, ht::SimdLevel::kAvx2, ht::SimdLevel::kAvx512}) {
    if (!ht::SimdLevelAvailable(level)) continue;
    for (const Type& t : kTypes) {
      struct Case {
        const char* what;
        int64_t rows, cols, tokens;
      };
      // Q4_0 also in the interleaved layout the model loader builds for the SIMD levels.
      std::vector<std::pair<ht::Layout, std::string>> layouts = {{ht::Layout::kRows, t.name}};
      if (t.id == ht::kQ4_0 && level != ht::SimdLevel::kScalar) {
        layouts.emplace_back(ht::Layout::kQ4_0x16, "Q4_0x16");
      }
      for (const auto& [layout, type_name] : layouts) {
        for (const Case& c : {Case{"matvec", 2048, 2048, 1}, Case{"matvec_mem", 0, 2048, 1},
                              Case{"matmul64", 2048, 2048, 64}}) {
          const std::string name =
              std::string(c.what) + "/" + type_name + "/" + ht::SimdLevelName(level);
          benchmark::RegisterBenchmark(name.c_str(), BM_MatMul, t.id, level, c.rows, c.cols,
                                       c.tokens, ht::Precision::kFast, layout)
              ->Unit(benchmark::kMicrosecond)
              ->UseRealTime();
        }
      }
    }
  }
  for (const bool busy : {false, true}) {
    for (const auto& [type, layout, type_name] :
         {std::tuple{ht::kQ4_K, ht::Layout::kRows, "Q4_K"},
          std::tuple{ht::kQ4_0, ht::PreferredLayout({ht::kQ4_0, 8192, 2048, nullptr}), "Q4_0"}}) {
      for (const int64_t tokens : {int64_t{1}, int64_t{64}}) {
        const std::string name = std::string("threads/") + (tokens == 1 ? "decode" : "prefill64") +
                                 "/" + type_name + (busy ? "/busy_neighbour" : "/alone");
        benchmark::RegisterBenchmark(name.c_str(), BM_Threads, type, layout, tokens, busy)
            ->ArgName("t")
            ->Arg(1)
            ->Arg(2)
            ->Arg(4)
            ->Arg(8)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
      }
    }
  }
  return 0;
}

const int registered = Register();

}  // namespace
