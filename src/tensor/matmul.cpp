// Runtime SIMD dispatch, the persistent thread pool and the blocked matrix multiplication.
#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/cpu_cores.h"
#include "base/error.h"
#include "tensor/blocks.h"
#include "tensor/kernels.h"
#include "tensor/tensor.h"

namespace hearth::tensor {

// ---- dispatch -------------------------------------------------------------------------------

namespace {

bool CpuHasF16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  return (ecx & bit_F16C) != 0;
}

SimdLevel DetectCpuLevel() {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && CpuHasF16c();
  if (!avx2) return SimdLevel::kScalar;
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  return avx512 ? SimdLevel::kAvx512 : SimdLevel::kAvx2;
}

SimdLevel CpuLevel() {
  static const SimdLevel level = DetectCpuLevel();
  return level;
}

SimdLevel ChooseLevel() {
  const SimdLevel cpu = CpuLevel();
  const char* env = std::getenv("HEARTH_SIMD");
  if (env == nullptr || *env == '\0') return cpu;
  SimdLevel wanted;
  if (std::strcmp(env, "scalar") == 0) {
    wanted = SimdLevel::kScalar;
  } else if (std::strcmp(env, "avx2") == 0) {
    wanted = SimdLevel::kAvx2;
  } else if (std::strcmp(env, "avx512") == 0) {
    wanted = SimdLevel::kAvx512;
  } else {
    std::fprintf(stderr,
                 "hearth: warning: HEARTH_SIMD=%s is not scalar, avx2 or avx512; using %s\n", env,
                 SimdLevelName(cpu));
    return cpu;
  }
  // Never above what the CPU supports.
  return static_cast<int>(wanted) <= static_cast<int>(cpu) ? wanted : cpu;
}

const internal::Kernels& KernelsFor(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512:
      return internal::Avx512Kernels();
    case SimdLevel::kAvx2:
      return internal::Avx2Kernels();
    default:
      return internal::ScalarKernels();
  }
}

}  // namespace

SimdLevel ActiveSimdLevel() {
  static const SimdLevel level = ChooseLevel();
  return level;
}

const char* SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return "scalar";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kAvx512:
      return "avx512";
  }
  return "unknown";
}

bool SimdLevelAvailable(SimdLevel level) {
  return static_cast<int>(level) <= static_cast<int>(CpuLevel());
}

uint32_t VecDotType(uint32_t type) {
  switch (type) {
    case kF32:
      return kF32;
    case kF16:
      return kF16;
    case kBF16:
      return kBF16;
    case kQ4_0:
    case kQ5_0:
    case kQ8_0:
    case kIQ4_NL:
      return kQ8_0;
    case kQ4_1:
    case kQ5_1:
      return kQ8_1;
    case kQ2_K:
    case kQ3_K:
    case kQ4_K:
    case kQ5_K:
    case kQ6_K:
    case kIQ4_XS:
      return kQ8_K;
    default:
      return kF32;
  }
}

// ---- thread pool ----------------------------------------------------------------------------

namespace {
// Set on pool workers (and on a caller while it runs its share) so that a nested ParallelFor
// runs inline instead of deadlocking on the busy pool.
thread_local bool t_inside_pool = false;

// Chunks per thread a ParallelFor is cut into. One chunk per thread made every call wait for
// its slowest thread: a thread descheduled for a scheduler tick (another process, or more
// threads than cores) stalled the whole matmul. With several chunks per thread claimed from a
// shared counter, the threads that are running take over the share of one that is not. Each
// chunk is a contiguous range of the caller's work items (weight tiles, token rows, heads), and
// the callers compute every item independently of the range it is in, so results are
// bit-identical for any split. More chunks cost one atomic claim each (~50 ns) and shorter
// streaming runs through the weights; 4 keeps that below 1 % of a decode matmul.
constexpr int kChunksPerThread = 4;
}  // namespace

// Polls `ready` for up to kSpinMicros, then gives up (the caller then sleeps on a condition
// variable). With no more threads than CPUs it waits with the CPU's pause hint. Why not
// sched_yield there: decode issues hundreds of ParallelFor calls per token, and on a machine with
// any other runnable process — even one at nice 19 — a yield hands the core over for a whole
// scheduler tick (~4 ms), which made 2-thread decode 12x slower than llama.cpp's under a
// background compile. Pausing keeps the core; the time bound keeps an oversubscribed machine
// from wasting more than that per wait. With more threads than CPUs (`yield`), a spinning thread
// holds a CPU that a thread with work needs, so it yields instead.
constexpr int kSpinMicros = 200;

template <typename Ready>
bool SpinUntil(bool yield, Ready ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      if (yield) {
        std::this_thread::yield();
      } else {
        _mm_pause();
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) return ready();
  }
}

// The job word packs the job's generation, its chunk count and the next unclaimed chunk, so
// that a claim (one compare-exchange) can only succeed on the job it was meant for: a worker
// that wakes late, after the caller has moved on, finds another generation and claims nothing.
struct ThreadPool::Impl {
  static constexpr uint64_t kIndexBits = 16;
  static constexpr uint64_t kIndexMask = (uint64_t{1} << kIndexBits) - 1;
  static constexpr int kMaxChunks = static_cast<int>(kIndexMask);

  static uint64_t Generation(uint64_t word) { return word >> (2 * kIndexBits); }
  static int Chunks(uint64_t word) { return static_cast<int>((word >> kIndexBits) & kIndexMask); }
  static int Next(uint64_t word) { return static_cast<int>(word & kIndexMask); }

  std::vector<std::thread> workers;
  bool yield = false;  // more threads than CPUs: spin with sched_yield
  std::mutex call_mu;  // one ParallelFor at a time per pool
  std::mutex mu;
  std::condition_variable cv_work;
  std::condition_variable cv_done;
  std::atomic<uint64_t> job{0};
  std::atomic<int> done{0};  // chunks finished in the current job
  std::atomic<bool> stop{false};
  // Written by the caller before the release store of `job`, read only by a thread holding a
  // claimed chunk of that job (the caller waits for every chunk before writing them again).
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  std::mutex error_mu;
  std::exception_ptr error;
  int error_chunk = 0;

  // Claims and runs chunks of the job of generation `gen` until none is left.
  void RunChunks(uint64_t gen) {
    uint64_t word = job.load(std::memory_order_acquire);
    for (;;) {
      if (Generation(word) != gen || Next(word) >= Chunks(word)) return;
      if (!job.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
        continue;  // `word` was reloaded
      }
      const int chunk = Next(word), chunks = Chunks(word);
      const int64_t begin = n * chunk / chunks;
      const int64_t end = n * (chunk + 1) / chunks;
      if (begin < end) {
        try {
          (*fn)(begin, end);
        } catch (...) {
          // The first chunk's error, as a serial loop would have thrown it.
          std::lock_guard<std::mutex> lock(error_mu);
          if (!error || chunk < error_chunk) {
            error = std::current_exception();
            error_chunk = chunk;
          }
        }
      }
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) {
        std::lock_guard<std::mutex> lock(mu);
        cv_done.notify_one();
      }
      word = job.load(std::memory_order_acquire);
    }
  }

  void WorkerLoop() {
    t_inside_pool = true;
    uint64_t seen = 0;
    auto has_work = [&] {
      return Generation(job.load(std::memory_order_acquire)) != seen ||
             stop.load(std::memory_order_acquire);
    };
    for (;;) {
      if (!SpinUntil(yield, has_work)) {
        std::unique_lock<std::mutex> lock(mu);
        cv_work.wait(lock, has_work);
      }
      if (stop.load(std::memory_order_acquire)) return;
      seen = Generation(job.load(std::memory_order_acquire));
      RunChunks(seen);
    }
  }

  void Shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop.store(true, std::memory_order_release);
    }
    cv_work.notify_all();
    for (auto& t : workers) {
      if (t.joinable()) t.join();
    }
    workers.clear();
  }
};

ThreadPool::ThreadPool(int n_threads) : impl_(std::make_unique<Impl>()) {
  const int n = std::max(1, n_threads);
  impl_->yield = n > AvailableCpus();
  try {
    for (int i = 1; i < n; ++i) impl_->workers.emplace_back([this] { impl_->WorkerLoop(); });
  } catch (...) {
    impl_->Shutdown();
    throw;
  }
}

ThreadPool::~ThreadPool() { impl_->Shutdown(); }

int ThreadPool::size() const { return static_cast<int>(impl_->workers.size()) + 1; }

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (impl_->workers.empty() || n == 1 || t_inside_pool) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call_lock(impl_->call_mu);
  Impl& p = *impl_;
  const int chunks = static_cast<int>(
      std::min<int64_t>({n, int64_t{size()} * kChunksPerThread, int64_t{Impl::kMaxChunks}}));
  p.fn = &fn;
  p.n = n;
  p.error = nullptr;
  p.error_chunk = 0;
  p.done.store(0, std::memory_order_relaxed);
  const uint64_t gen = Impl::Generation(p.job.load(std::memory_order_relaxed)) + 1;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    p.job.store((gen << (2 * Impl::kIndexBits)) | (uint64_t(chunks) << Impl::kIndexBits),
                std::memory_order_release);
  }
  p.cv_work.notify_all();
  t_inside_pool = true;
  p.RunChunks(gen);
  t_inside_pool = false;
  auto finished = [&] { return p.done.load(std::memory_order_acquire) == chunks; };
  if (!SpinUntil(p.yield, finished)) {
    std::unique_lock<std::mutex> lock(p.mu);
    p.cv_done.wait(lock, finished);
  }
  p.fn = nullptr;
  if (p.error) std::rethrow_exception(std::exchange(p.error, nullptr));
}

// ---- matrix multiplication ------------------------------------------------------------------

namespace {

constexpr int64_t kRowTile = 16;        // weight rows per work item (kept hot in L1/L2)
constexpr int64_t kPreciseRowTile = 4;  // rows dequantized to F32 at a time in precise mode

void Validate(const Matrix& w, const float* x, int64_t n_tokens, const float* y) {
  if (!IsSupportedType(w.type)) {
    throw Error(ErrorClass::kInvalidInput,
                "MatMul: weight type id " + std::to_string(w.type) + " is not supported",
                "use a file with supported tensor types");
  }
  if (w.rows < 0 || w.cols < 0 || n_tokens < 0 || w.cols % BlockSize(w.type) != 0) {
    throw Error(ErrorClass::kInvalidInput,
                "MatMul: bad shape rows=" + std::to_string(w.rows) +
                    " cols=" + std::to_string(w.cols) + " n_tokens=" + std::to_string(n_tokens),
                "the row length must be a multiple of the weight type's block size");
  }
  if (w.rows > 0 && n_tokens > 0 && (w.data == nullptr || x == nullptr || y == nullptr)) {
    throw Error(ErrorClass::kInternal, "MatMul: null weight, input or output pointer");
  }
  if (!LayoutFits(w, w.layout)) {
    throw Error(ErrorClass::kInvalidInput,
                "MatMul: the matrix's layout does not fit its type or shape",
                "build interleaved layouts with Repack");
  }
}

void Run(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool != nullptr) {
    pool->ParallelFor(n, fn);
  } else if (n > 0) {
    fn(0, n);
  }
}

constexpr int64_t kQ4x16Rows = blocks::kQ4x16Rows;
// Tokens whose prepared activations one pass over a thread's weight groups reuses: 32 tokens of
// a 10240-wide row are 410 KB, which stays in L2 beside the group being computed, while the
// weights are re-read from memory once per 32 tokens.
constexpr int64_t kQ4x16TokenChunk = 32;

// Fast path for Layout::kQ4_0x16: activations to Q8Act blocks once, then each thread runs its
// own 16-row groups, 4 tokens per kernel call.
void MatMulQ4_0x16(const internal::Kernels& k, const Matrix& w, const float* x, int64_t n_tokens,
                   float* y, ThreadPool* pool) {
  const internal::Kernels& scalar = internal::ScalarKernels();
  const internal::GroupQ4_0x16Fn one = k.q4_0x16_1 ? k.q4_0x16_1 : scalar.q4_0x16_1;
  const internal::GroupQ4_0x16Fn four = k.q4_0x16_4 ? k.q4_0x16_4 : scalar.q4_0x16_4;
  const int64_t cols = w.cols, rows = w.rows, nb = cols / blocks::kQK;
  thread_local std::vector<blocks::Q8Act> acts;  // decode calls this hundreds of times a token
  acts.resize(static_cast<size_t>(n_tokens * nb));
  blocks::Q8Act* act = acts.data();
  Run(n_tokens > 1 ? pool : nullptr, n_tokens, [&](int64_t t0, int64_t t1) {
    thread_local std::vector<blocks::BlockQ8_0> q8;
    q8.resize(static_cast<size_t>(nb));
    for (int64_t t = t0; t < t1; ++t) {
      QuantizeRow(kQ8_0, x + t * cols, q8.data(), cols);
      for (int64_t ib = 0; ib < nb; ++ib) {
        blocks::Q8Act& a = act[t * nb + ib];
        const blocks::BlockQ8_0& b = q8[static_cast<size_t>(ib)];
        std::memcpy(a.qs, b.qs, sizeof(a.qs));
        int32_t sum = 0;
        for (int8_t q : b.qs) sum += q;
        a.corr = 8 * sum;
        a.d = Fp16ToFp32(b.d);
      }
    }
  });
  const auto* data = static_cast<const uint8_t*>(w.data);
  const size_t group_bytes = static_cast<size_t>(nb) * blocks::kQ4x16BlockBytes;
  Run(pool, rows / kQ4x16Rows, [&](int64_t g0, int64_t g1) {
    for (int64_t c0 = 0; c0 < n_tokens; c0 += kQ4x16TokenChunk) {
      const int64_t c1 = std::min(n_tokens, c0 + kQ4x16TokenChunk);
      for (int64_t g = g0; g < g1; ++g) {
        const uint8_t* group = data + static_cast<size_t>(g) * group_bytes;
        float* yg = y + g * kQ4x16Rows;
        int64_t t = c0;
        for (; t + 4 <= c1; t += 4) four(nb, group, act + t * nb, nb, yg + t * rows, rows);
        for (; t < c1; ++t) one(nb, group, act + t * nb, nb, yg + t * rows, rows);
      }
    }
  });
}

}  // namespace

// ---- layouts ---------------------------------------------------------------------------------

bool LayoutFits(const Matrix& w, Layout layout) {
  switch (layout) {
    case Layout::kRows:
      return true;
    case Layout::kQ4_0x16:
      return w.type == kQ4_0 && w.rows % kQ4x16Rows == 0 && w.cols % blocks::kQK == 0;
  }
  return false;
}

Layout PreferredLayout(const Matrix& w) {
  static const bool disabled = [] {
    const char* env = std::getenv("HEARTH_REPACK");
    return env != nullptr && std::strcmp(env, "0") == 0;
  }();
  if (disabled || w.layout != Layout::kRows || w.rows == 0) return Layout::kRows;
  // The AVX2 and AVX-512 levels have kernels for the interleaved layout; the portable one is
  // there for correctness, and the row-major scalar kernel is as fast.
  if (ActiveSimdLevel() != SimdLevel::kScalar && LayoutFits(w, Layout::kQ4_0x16)) {
    return Layout::kQ4_0x16;
  }
  return Layout::kRows;
}

size_t MatrixBytes(const Matrix& w) {
  // kQ4_0x16 holds the same blocks, rearranged.
  return RowBytes(w.type, w.cols) * static_cast<size_t>(w.rows);
}

Matrix Repack(const Matrix& w, Layout layout, void* dst) {
  return Repack(w, layout, dst, 0, w.rows);
}

Matrix Repack(const Matrix& w, Layout layout, void* dst, int64_t row_begin, int64_t row_end) {
  if (w.layout != Layout::kRows || !LayoutFits(w, layout) || row_begin < 0 || row_end > w.rows ||
      row_begin > row_end || row_begin % kQ4x16Rows != 0 || row_end % kQ4x16Rows != 0 ||
      w.data == nullptr || dst == nullptr) {
    throw Error(ErrorClass::kInvalidInput, "Repack: the layout does not fit this matrix",
                "repack row-major Q4_0 matrices with a multiple of 16 rows, 16 rows at a time");
  }
  Matrix out = w;
  out.data = dst;
  out.layout = layout;
  if (layout == Layout::kRows) {
    std::memcpy(dst, w.data, MatrixBytes(w));
    return out;
  }
  const int64_t nb = w.cols / blocks::kQK;
  const size_t row_bytes = RowBytes(w.type, w.cols);
  const auto* src = static_cast<const uint8_t*>(w.data);
  for (int64_t g = row_begin / kQ4x16Rows; g < row_end / kQ4x16Rows; ++g) {
    uint8_t* group = static_cast<uint8_t*>(dst) + static_cast<size_t>(g) * kQ4x16Rows * row_bytes;
    for (int r = 0; r < kQ4x16Rows; ++r) {
      const auto* row = reinterpret_cast<const blocks::BlockQ4_0*>(
          src + static_cast<size_t>(g * kQ4x16Rows + r) * row_bytes);
      for (int64_t ib = 0; ib < nb; ++ib) {
        std::memcpy(group + blocks::Q4x16ScalesAt(ib) + 2 * r, &row[ib].d, 2);
        uint8_t* nib = group + blocks::Q4x16NibblesAt(nb, ib);
        for (int c = 0; c < 4; ++c) std::memcpy(nib + c * 64 + r * 4, row[ib].qs + 4 * c, 4);
      }
    }
  }
  return out;
}

void DequantizeMatrixRow(const Matrix& w, int64_t row, float* dst) {
  if (row < 0 || row >= w.rows) {
    throw Error(ErrorClass::kInternal, "DequantizeMatrixRow: row " + std::to_string(row) +
                                           " is outside the matrix's " + std::to_string(w.rows) +
                                           " rows");
  }
  const size_t row_bytes = RowBytes(w.type, w.cols);
  const auto* data = static_cast<const uint8_t*>(w.data);
  if (w.layout == Layout::kRows) {
    DequantizeRow(w.type, data + static_cast<size_t>(row) * row_bytes, dst, w.cols);
    return;
  }
  const int64_t nb = w.cols / blocks::kQK, r = row % kQ4x16Rows;
  const uint8_t* group = data + static_cast<size_t>(row - r) * row_bytes;
  for (int64_t ib = 0; ib < nb; ++ib) {
    uint16_t half;
    std::memcpy(&half, group + blocks::Q4x16ScalesAt(ib) + 2 * r, 2);
    const float d = Fp16ToFp32(half);
    const uint8_t* nib = group + blocks::Q4x16NibblesAt(nb, ib);
    float* out = dst + ib * blocks::kQK;
    for (int c = 0; c < 4; ++c) {
      for (int i = 0; i < 4; ++i) {
        const uint8_t q = nib[c * 64 + r * 4 + i];
        out[4 * c + i] = static_cast<float>((q & 0x0F) - 8) * d;
        out[16 + 4 * c + i] = static_cast<float>((q >> 4) - 8) * d;
      }
    }
  }
}

void MatMulAt(SimdLevel level, const Matrix& w, const float* x, int64_t n_tokens, float* y,
              Precision precision, ThreadPool* pool) {
  if (!SimdLevelAvailable(level)) {
    throw Error(ErrorClass::kInvalidInput,
                std::string("SIMD level ") + SimdLevelName(level) + " is not available on this CPU",
                "choose a level SimdLevelAvailable() accepts");
  }
  Validate(w, x, n_tokens, y);
  if (w.rows == 0 || n_tokens == 0) return;
  const internal::Kernels& k = KernelsFor(level);
  const auto* wdata = static_cast<const uint8_t*>(w.data);
  const size_t row_bytes = RowBytes(w.type, w.cols);
  const int64_t rows = w.rows;
  const int64_t cols = w.cols;

  if (precision == Precision::kFast && w.layout == Layout::kQ4_0x16) {
    MatMulQ4_0x16(k, w, x, n_tokens, y, pool);
    return;
  }
  if (precision == Precision::kFast && w.type < internal::kMaxTypeId &&
      k.vec_dot[w.type] != nullptr) {
    const internal::VecDotFn dot = k.vec_dot[w.type];
    const internal::VecDot4Fn dot4 = k.vec_dot4[w.type];
    const uint32_t vt = VecDotType(w.type);
    const internal::ActPrep prep = k.act_prep[w.type];
    const internal::VecDot4x4Fn dot4x4 = prep.run == nullptr ? k.vec_dot4x4[w.type] : nullptr;
    const size_t q_bytes = RowBytes(vt, cols);
    // Some kernels want the quantized activations in their own layout (prep), made once per
    // row here rather than once per weight row inside the dot product.
    const size_t x_bytes = prep.run != nullptr ? prep.bytes(cols) : q_bytes;
    const void* xq = x;
    std::vector<uint8_t> buffer;
    if (vt != kF32) {
      // The activation rows are converted once per call, as llama.cpp does.
      buffer.resize(x_bytes * static_cast<size_t>(n_tokens));
      Run(n_tokens > 1 ? pool : nullptr, n_tokens, [&](int64_t t0, int64_t t1) {
        thread_local std::vector<uint8_t> row;  // decode calls this hundreds of times a token
        if (prep.run != nullptr && row.size() < q_bytes) row.resize(q_bytes);
        for (int64_t t = t0; t < t1; ++t) {
          uint8_t* dst = buffer.data() + static_cast<size_t>(t) * x_bytes;
          if (prep.run != nullptr) {
            QuantizeRow(vt, x + t * cols, row.data(), cols);
            prep.run(cols, row.data(), dst);
          } else {
            QuantizeRow(vt, x + t * cols, dst, cols);
          }
        }
      });
      xq = buffer.data();
    }
    const auto* xbytes = static_cast<const uint8_t*>(xq);
    const int64_t n_tiles = (rows + kRowTile - 1) / kRowTile;
    Run(pool, n_tiles, [&](int64_t tile0, int64_t tile1) {
      for (int64_t tile = tile0; tile < tile1; ++tile) {
        const int64_t r0 = tile * kRowTile;
        const int64_t r1 = std::min(rows, r0 + kRowTile);
        // Each weight tile is read from memory once and reused from cache for every token;
        // groups of 4 tokens share the decoding of each weight block where a kernel exists.
        int64_t t = 0;
        if (dot4 != nullptr) {
          float out[16];
          for (; t + 4 <= n_tokens; t += 4) {
            const uint8_t* xt = xbytes + static_cast<size_t>(t) * x_bytes;
            int64_t r = r0;
            if (dot4x4 != nullptr) {
              for (; r + 4 <= r1; r += 4) {
                dot4x4(cols, wdata + static_cast<size_t>(r) * row_bytes, row_bytes, xt, x_bytes,
                       out);
                for (int r4 = 0; r4 < 4; ++r4) {
                  for (int k4 = 0; k4 < 4; ++k4) y[(t + k4) * rows + r + r4] = out[r4 * 4 + k4];
                }
              }
            }
            for (; r < r1; ++r) {
              dot4(cols, wdata + static_cast<size_t>(r) * row_bytes, xt, x_bytes, out);
              for (int k4 = 0; k4 < 4; ++k4) y[(t + k4) * rows + r] = out[k4];
            }
          }
        }
        for (; t < n_tokens; ++t) {
          const uint8_t* xt = xbytes + static_cast<size_t>(t) * x_bytes;
          float* yt = y + t * rows;
          for (int64_t r = r0; r < r1; ++r) {
            yt[r] = dot(cols, wdata + static_cast<size_t>(r) * row_bytes, xt);
          }
        }
      }
    });
    return;
  }

  // Precise: F32 activations against exactly dequantized weights.
  const int64_t n_tiles = (rows + kPreciseRowTile - 1) / kPreciseRowTile;
  Run(pool, n_tiles, [&](int64_t tile0, int64_t tile1) {
    std::vector<float> deq;
    if (w.type != kF32) deq.resize(static_cast<size_t>(kPreciseRowTile * cols));
    for (int64_t tile = tile0; tile < tile1; ++tile) {
      const int64_t r0 = tile * kPreciseRowTile;
      const int64_t r1 = std::min(rows, r0 + kPreciseRowTile);
      if (w.type != kF32) {
        for (int64_t r = r0; r < r1; ++r) DequantizeMatrixRow(w, r, deq.data() + (r - r0) * cols);
      }
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * cols;
        for (int64_t r = r0; r < r1; ++r) {
          const float* wr =
              w.type == kF32
                  ? reinterpret_cast<const float*>(wdata + static_cast<size_t>(r) * row_bytes)
                  : deq.data() + (r - r0) * cols;
          y[t * rows + r] = k.dot_f32(cols, wr, xt);
        }
      }
    }
  });
}

namespace {
const internal::Kernels& Active() {
  static const internal::Kernels& k = KernelsFor(ActiveSimdLevel());
  return k;
}
}  // namespace

float DotF32(const float* a, const float* b, int64_t n) { return Active().dot_f32(n, a, b); }
float DotF32F16(const float* a, const uint16_t* b, int64_t n) {
  return Active().dot_f32_f16(n, a, b);
}
float DotF16(const uint16_t* a, const uint16_t* b, int64_t n) {
  return Active().vec_dot[kF16](n, a, b);
}
void DotF32F16Heads(const float* q, int heads, const uint16_t* k, int64_t n, float* out) {
  Active().dot_f32_f16_heads(n, q, heads, k, out);
}
void AxpyF16Heads(const float* alpha, int heads, const uint16_t* x, float* y, int64_t n) {
  Active().axpy_f16_heads(n, alpha, heads, x, y);
}
void AxpyF16(float alpha, const uint16_t* x, float* y, int64_t n) {
  Active().axpy_f16(n, alpha, x, y);
}
void Fp32ToFp16Row(const float* src, uint16_t* dst, int64_t n) { Active().f32_to_f16(n, src, dst); }

// Quantized KV cache rows (tensor.h). The query heads take the form MatMul gives activations
// (the vec-dot type, then the kernel's own layout where it has one), so the K rows meet them in
// the same kernels as weight rows.
size_t KvQueryBytes(uint32_t type, int64_t n) {
  const internal::ActPrep prep = Active().act_prep[type];
  return prep.run != nullptr ? prep.bytes(n) : RowBytes(VecDotType(type), n);
}

void PrepareKvQuery(uint32_t type, const float* q, int heads, int64_t n, void* out) {
  const internal::ActPrep prep = Active().act_prep[type];
  const uint32_t vt = VecDotType(type);
  const size_t stride = KvQueryBytes(type, n);
  auto* dst = static_cast<uint8_t*>(out);
  thread_local std::vector<uint8_t> row;
  if (prep.run != nullptr && row.size() < RowBytes(vt, n)) row.resize(RowBytes(vt, n));
  for (int h = 0; h < heads; ++h) {
    if (prep.run != nullptr) {
      QuantizeRow(vt, q + static_cast<size_t>(h) * n, row.data(), n);
      prep.run(n, row.data(), dst + static_cast<size_t>(h) * stride);
    } else {
      QuantizeRow(vt, q + static_cast<size_t>(h) * n, dst + static_cast<size_t>(h) * stride, n);
    }
  }
}

void DotKvHeads(uint32_t type, const void* k, const void* q, int heads, int64_t n, float* out) {
  const internal::Kernels& kern = Active();
  const size_t stride = KvQueryBytes(type, n);
  const auto* qb = static_cast<const uint8_t*>(q);
  int h = 0;
  if (const internal::VecDot4Fn dot4 = kern.vec_dot4[type]; dot4 != nullptr) {
    for (; h + 4 <= heads; h += 4)
      dot4(n, k, qb + static_cast<size_t>(h) * stride, stride, out + h);
  }
  for (; h < heads; ++h) out[h] = kern.vec_dot[type](n, k, qb + static_cast<size_t>(h) * stride);
}

void AxpyKvHeads(uint32_t type, const float* alpha, int heads, const void* x, float* y, int64_t n) {
  if (const auto axpy = Active().axpy_kv_heads[type]; axpy != nullptr) {
    axpy(n, alpha, heads, x, y);
    return;
  }
  // A chunk at a time on the stack: V rows are up to 512 values (Gemma 4's global heads).
  constexpr int64_t kChunk = 256;
  float v[kChunk];
  const size_t chunk_bytes = RowBytes(type, kChunk);
  const auto* xb = static_cast<const uint8_t*>(x);
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t len = std::min(kChunk, n - i0);
    DequantizeRow(type, xb + static_cast<size_t>(i0 / kChunk) * chunk_bytes, v, len);
    for (int h = 0; h < heads; ++h) {
      const float a = alpha[h];
      float* yh = y + static_cast<size_t>(h) * n + i0;
      for (int64_t i = 0; i < len; ++i) yh[i] += a * v[i];
    }
  }
}
namespace internal {
// For ExpShifted (elementwise.cpp): the active level's wide version, or null.
ExpShiftedFn ActiveExpShifted() { return Active().exp_shifted; }
}  // namespace internal
void Fp16ToFp32Row(const uint16_t* src, float* dst, int64_t n) { Active().f16_to_f32(n, src, dst); }

void GemmF32(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
             int64_t ldb, float* c, int64_t ldc) {
  if (auto* const gemm = Active().gemm_f32; gemm != nullptr) {
    return gemm(m, n, k, a, lda, b, ldb, c, ldc);
  }
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    std::fill(ci, ci + n, 0.0f);
    for (int64_t p = 0; p < k; ++p) {
      const float aip = a[i * lda + p];
      const float* bp = b + p * ldb;
      for (int64_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
    }
  }
}

void MatMulBatchedF32(const Matrix& w, const float* x, int64_t n_tokens, float* y,
                      ThreadPool* pool) {
  constexpr int64_t kRowBlock = 64;
  const int64_t k = w.cols;
  const int64_t blocks = (w.rows + kRowBlock - 1) / kRowBlock;
  auto work = [&](int64_t begin, int64_t end) {
    std::vector<float> rows(static_cast<size_t>(kRowBlock * k));
    std::vector<float> transposed(static_cast<size_t>(kRowBlock * k));  // [k][kRowBlock]
    for (int64_t b = begin; b < end; ++b) {
      const int64_t r0 = b * kRowBlock;
      const int64_t nr = std::min(kRowBlock, w.rows - r0);
      for (int64_t r = 0; r < nr; ++r) DequantizeMatrixRow(w, r0 + r, rows.data() + r * k);
      for (int64_t r = 0; r < nr; ++r) {
        for (int64_t c = 0; c < k; ++c) transposed[c * nr + r] = rows[r * k + c];
      }
      GemmF32(n_tokens, nr, k, x, k, transposed.data(), nr, y + r0, w.rows);
    }
  };
  if (pool != nullptr && blocks > 1) {
    pool->ParallelFor(blocks, work);
  } else {
    work(0, blocks);
  }
}

void MatMulEncoder(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  constexpr int64_t kMinBatchedRows = 16;
  const bool float_weights = w.type == kF32 || w.type == kF16 || w.type == kBF16;
  if (float_weights && n_tokens >= kMinBatchedRows) {
    MatMulBatchedF32(w, x, n_tokens, y, pool);
  } else {
    MatMul(w, x, n_tokens, y, Precision::kFast, pool);
  }
}

void MatMul(const Matrix& w, const float* x, int64_t n_tokens, float* y, Precision precision,
            ThreadPool* pool) {
  MatMulAt(ActiveSimdLevel(), w, x, n_tokens, y, precision, pool);
}

}  // namespace hearth::tensor
