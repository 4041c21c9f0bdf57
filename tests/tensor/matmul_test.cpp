// MatMul at every SIMD level against an independent double-precision reference built from the
// scalar dequantizer: the precise path must match it to float rounding, the fast path within the
// activation-quantization error, and every SIMD level's fast path must equal the scalar fast path
// up to float summation order.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "tensor/tensor.h"

namespace hearth::tensor {
namespace {

const uint32_t kWeightTypes[] = {kF32,  kF16,  kBF16, kQ4_0, kQ4_1, kQ5_0,   kQ5_1,  kQ8_0,
                                 kQ2_K, kQ3_K, kQ4_K, kQ5_K, kQ6_K, kIQ4_NL, kIQ4_XS};

std::vector<float> Gaussian(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// Weights of `type`: quantized Gaussian values where a quantizer exists, otherwise random bytes
// with the scale fields overwritten by small finite halves.
std::vector<uint8_t> MakeWeights(uint32_t type, int64_t rows, int64_t cols, uint32_t seed) {
  const size_t row_bytes = RowBytes(type, cols);
  std::vector<uint8_t> w(row_bytes * static_cast<size_t>(rows));
  if (HasQuantizer(type)) {
    const auto f = Gaussian(rows * cols, seed, 0.05f);
    for (int64_t r = 0; r < rows; ++r) {
      QuantizeRow(type, f.data() + r * cols, w.data() + static_cast<size_t>(r) * row_bytes, cols);
    }
    return w;
  }
  std::mt19937 rng(seed);
  for (auto& b : w) b = static_cast<uint8_t>(rng());
  const size_t bb = BlockBytes(type);
  std::uniform_int_distribution<int> mant(0, 1023);
  auto half = [&](uint8_t* p) {  // a positive half in [2^-10, 2^-9)
    const uint16_t h = static_cast<uint16_t>((5 << 10) | mant(rng));
    p[0] = static_cast<uint8_t>(h);
    p[1] = static_cast<uint8_t>(h >> 8);
  };
  for (size_t off = 0; off < w.size(); off += bb) {
    uint8_t* blk = w.data() + off;
    switch (type) {
      case kQ2_K:
        half(blk + 80);
        half(blk + 82);
        break;
      case kQ3_K:
        half(blk + 108);
        break;
      case kIQ4_NL:
      case kIQ4_XS:
        half(blk);
        break;
      default:
        ADD_FAILURE() << "no generator for type " << type;
        return w;
    }
  }
  return w;
}

struct Reference {
  std::vector<double> y;
  std::vector<double> abs;   // sum |w||x| per output, the natural error scale
  std::vector<double> qerr;  // bound on the activation-quantization error of the fast path
};

Reference Compute(uint32_t type, const std::vector<uint8_t>& w, int64_t rows, int64_t cols,
                  const std::vector<float>& x, int64_t n_tokens) {
  Reference ref;
  const size_t row_bytes = RowBytes(type, cols);
  std::vector<float> wf(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeRow(type, w.data() + static_cast<size_t>(r) * row_bytes, wf.data() + r * cols, cols);
  }
  const uint32_t vt = VecDotType(type);
  const int64_t blk = vt == kQ8_K ? 256 : 32;
  std::vector<double> step(static_cast<size_t>(n_tokens * cols), 0.0);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t c = 0; c < cols; ++c) {
      const float v = x[t * cols + c];
      if (vt == kF16) {
        step[t * cols + c] = std::fabs(v) * std::ldexp(1.0, -11);
      } else if (vt == kBF16) {
        step[t * cols + c] = std::fabs(v) * std::ldexp(1.0, -8);
      } else if (vt != kF32) {
        const int64_t b0 = c / blk * blk;
        double amax = 0;
        for (int64_t j = b0; j < b0 + blk; ++j)
          amax = std::max(amax, double(std::fabs(x[t * cols + j])));
        step[t * cols + c] = 0.5 * amax / 127 * 1.01 + amax * 1e-3;  // + fp16 rounding of d
      }
    }
  }
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0, a = 0, q = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double wv = wf[r * cols + c], xv = x[t * cols + c];
        s += wv * xv;
        a += std::fabs(wv * xv);
        q += std::fabs(wv) * step[t * cols + c];
      }
      ref.y.push_back(s);
      ref.abs.push_back(a);
      ref.qerr.push_back(q);
    }
  }
  return ref;
}

std::vector<SimdLevel> Levels() {
  std::vector<SimdLevel> v;
  for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (SimdLevelAvailable(l)) v.push_back(l);
  }
  return v;
}

struct Shape {
  int64_t rows, cols, n_tokens;
};

class MatMulTypeTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(MatMulTypeTest, AllLevelsAgreeWithReference) {
  const uint32_t type = GetParam();
  const int64_t bs = BlockSize(type) == 1 ? 32 : BlockSize(type);
  ThreadPool pool(3);
  const Shape shapes[] = {{1, bs, 1}, {7, 2 * bs, 3}, {33, 256, 17}, {40, 512, 1}, {17, 768, 9}};
  uint32_t seed = 100 + type;
  for (const Shape& s : shapes) {
    if (s.cols % bs != 0) continue;
    const auto w = MakeWeights(type, s.rows, s.cols, seed++);
    const auto x = Gaussian(s.n_tokens * s.cols, seed++, 1.0f);
    const Matrix m{type, s.rows, s.cols, w.data()};
    const Reference ref = Compute(type, w, s.rows, s.cols, x, s.n_tokens);
    const size_t ny = static_cast<size_t>(s.rows * s.n_tokens);
    std::vector<float> scalar_fast(ny);
    MatMulAt(SimdLevel::kScalar, m, x.data(), s.n_tokens, scalar_fast.data(), Precision::kFast,
             nullptr);
    for (SimdLevel level : Levels()) {
      SCOPED_TRACE(std::string(SimdLevelName(level)) + " rows=" + std::to_string(s.rows) +
                   " cols=" + std::to_string(s.cols) + " tokens=" + std::to_string(s.n_tokens));
      std::vector<float> precise(ny), fast(ny), fast_pool(ny);
      MatMulAt(level, m, x.data(), s.n_tokens, precise.data(), Precision::kPrecise, &pool);
      MatMulAt(level, m, x.data(), s.n_tokens, fast.data(), Precision::kFast, nullptr);
      MatMulAt(level, m, x.data(), s.n_tokens, fast_pool.data(), Precision::kFast, &pool);
      for (size_t i = 0; i < ny; ++i) {
        const double tol = 1e-5 * ref.abs[i] + 1e-30;
        ASSERT_NEAR(precise[i], ref.y[i], tol) << "precise, output " << i;
        ASSERT_NEAR(fast[i], ref.y[i], ref.qerr[i] + tol) << "fast vs reference, output " << i;
        ASSERT_NEAR(fast[i], scalar_fast[i], 2e-5 * ref.abs[i] + 1e-30)
            << "fast vs scalar fast, output " << i;
        // Each output is one dot product by one thread: threading never changes the result.
        ASSERT_EQ(fast[i], fast_pool[i]) << "output " << i;
      }
    }
  }
}

// The media encoders' batched path keeps activations in F32: it must match the exact-math
// reference as tightly as kPrecise does, for any row count (blocks of 64 and a tail), with and
// without threads.
TEST_P(MatMulTypeTest, BatchedF32MatchesThePreciseReference) {
  const uint32_t type = GetParam();
  const int64_t bs = BlockSize(type) == 1 ? 32 : BlockSize(type);
  ThreadPool pool(3);
  const Shape shapes[] = {{1, bs, 1}, {130, 256, 37}, {64, 2 * bs, 5}, {200, 768, 6}};
  uint32_t seed = 300 + type;
  for (const Shape& s : shapes) {
    if (s.cols % bs != 0) continue;
    const auto w = MakeWeights(type, s.rows, s.cols, seed++);
    const auto x = Gaussian(s.n_tokens * s.cols, seed++, 1.0f);
    const Matrix m{type, s.rows, s.cols, w.data()};
    const Reference ref = Compute(type, w, s.rows, s.cols, x, s.n_tokens);
    const size_t ny = static_cast<size_t>(s.rows * s.n_tokens);
    std::vector<float> alone(ny), threaded(ny);
    MatMulBatchedF32(m, x.data(), s.n_tokens, alone.data(), nullptr);
    MatMulBatchedF32(m, x.data(), s.n_tokens, threaded.data(), &pool);
    for (size_t i = 0; i < ny; ++i) {
      SCOPED_TRACE("rows=" + std::to_string(s.rows) + " cols=" + std::to_string(s.cols) +
                   " tokens=" + std::to_string(s.n_tokens) + " output " + std::to_string(i));
      ASSERT_NEAR(alone[i], ref.y[i], 1e-5 * ref.abs[i] + 1e-30);
      ASSERT_EQ(alone[i], threaded[i]);
    }
  }
}

// The pool splits each call into chunks that threads claim as they come, so which thread
// computes which tile changes from call to call and with the thread count; every output must
// still be bit-identical to the single-threaded one, with many more threads than CPUs too.
TEST(MatMulThreads, AnyThreadCountGivesTheSingleThreadedResultExactly) {
  const int64_t rows = 16 * 37, cols = 512;
  ThreadPool p2(2), p7(7), p32(32);
  uint32_t seed = 4242;
  for (const uint32_t type : {kF32, kF16, kQ8_0, kQ4_0, kQ4_K, kQ6_K}) {
    const auto w = MakeWeights(type, rows, cols, seed++);
    const Matrix row_major{type, rows, cols, w.data()};
    Matrix interleaved;
    std::vector<uint8_t> packed;
    const bool has_x16 = LayoutFits(row_major, Layout::kQ4_0x16);
    if (has_x16) {
      packed.resize(w.size());
      interleaved = Repack(row_major, Layout::kQ4_0x16, packed.data());
    }
    for (const int64_t n_tokens : {int64_t{1}, int64_t{9}, int64_t{70}}) {
      const auto x = Gaussian(n_tokens * cols, seed++, 1.0f);
      const size_t ny = static_cast<size_t>(rows * n_tokens);
      for (const Matrix* m :
           {&row_major, has_x16 ? static_cast<const Matrix*>(&interleaved) : nullptr}) {
        if (m == nullptr) continue;
        for (const Precision precision : {Precision::kFast, Precision::kPrecise}) {
          SCOPED_TRACE("type " + std::to_string(type) + " tokens " + std::to_string(n_tokens) +
                       (m == &interleaved ? " Q4_0x16" : " rows") +
                       (precision == Precision::kFast ? " fast" : " precise"));
          std::vector<float> one(ny);
          MatMul(*m, x.data(), n_tokens, one.data(), precision, nullptr);
          for (ThreadPool* pool : {&p2, &p7, &p32}) {
            for (int rep = 0; rep < 3; ++rep) {
              std::vector<float> many(ny, -1.0f);
              MatMul(*m, x.data(), n_tokens, many.data(), precision, pool);
              ASSERT_EQ(0, std::memcmp(one.data(), many.data(), ny * sizeof(float)))
                  << pool->size() << " threads, repetition " << rep;
            }
          }
        }
      }
    }
  }
}

// The model runs a prompt as one batch or token by token and expects the same logits: each
// output must not depend on how many tokens share the call.
TEST_P(MatMulTypeTest, BatchedEqualsTokenByTokenExactly) {
  const uint32_t type = GetParam();
  const int64_t rows = 21, cols = 512, n_tokens = 11;
  const auto w = MakeWeights(type, rows, cols, 77);
  const auto x = Gaussian(n_tokens * cols, 78, 1.0f);
  const Matrix m{type, rows, cols, w.data()};
  ThreadPool pool(2);
  for (SimdLevel level : Levels()) {
    for (Precision precision : {Precision::kFast, Precision::kPrecise}) {
      std::vector<float> batch(static_cast<size_t>(rows * n_tokens));
      MatMulAt(level, m, x.data(), n_tokens, batch.data(), precision, &pool);
      for (int64_t t = 0; t < n_tokens; ++t) {
        std::vector<float> one(static_cast<size_t>(rows));
        MatMulAt(level, m, x.data() + t * cols, 1, one.data(), precision, nullptr);
        for (int64_t r = 0; r < rows; ++r) {
          ASSERT_EQ(one[r], batch[t * rows + r])
              << SimdLevelName(level) << " token " << t << " row " << r;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, MatMulTypeTest, ::testing::ValuesIn(kWeightTypes),
                         [](const auto& param_info) {
                           return "type" + std::to_string(param_info.param);
                         });

TEST(MatMul, DefaultEntryPointUsesActiveLevel) {
  const auto w = MakeWeights(kQ4_K, 8, 256, 1);
  const auto x = Gaussian(2 * 256, 2, 1.0f);
  const Matrix m{kQ4_K, 8, 256, w.data()};
  std::vector<float> a(16), b(16);
  MatMul(m, x.data(), 2, a.data(), Precision::kFast, nullptr);
  MatMulAt(ActiveSimdLevel(), m, x.data(), 2, b.data(), Precision::kFast, nullptr);
  EXPECT_EQ(a, b);
}

TEST(MatMul, RejectsBadShapes) {
  const auto w = MakeWeights(kQ8_0, 2, 64, 1);
  std::vector<float> x(64), y(4);
  EXPECT_THROW(
      MatMul(Matrix{kQ8_0, 2, 48, w.data()}, x.data(), 1, y.data(), Precision::kFast, nullptr),
      Error);
  EXPECT_THROW(
      MatMul(Matrix{77, 2, 64, w.data()}, x.data(), 1, y.data(), Precision::kFast, nullptr), Error);
  // Empty products are fine and write nothing.
  MatMul(Matrix{kQ8_0, 0, 64, nullptr}, x.data(), 1, y.data(), Precision::kFast, nullptr);
}

// The attention helpers at the active level (ctest reruns this binary at the lower levels).
TEST(VectorHelpers, MatchScalarLoops) {
  for (int64_t n : {0, 1, 7, 8, 17, 33, 256, 1000}) {
    const auto a = Gaussian(n, 5, 1.0f);
    const auto b = Gaussian(n, 6, 1.0f);
    std::vector<uint16_t> bh(static_cast<size_t>(n)), ah(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      bh[i] = Fp32ToFp16(b[i]);
      ah[i] = Fp32ToFp16(a[i]);
    }
    double d32 = 0, d3216 = 0, d16 = 0, scale = 1e-30;
    for (int64_t i = 0; i < n; ++i) {
      d32 += double(a[i]) * b[i];
      d3216 += double(a[i]) * Fp16ToFp32(bh[i]);
      d16 += double(Fp16ToFp32(ah[i])) * Fp16ToFp32(bh[i]);
      scale += std::fabs(double(a[i]) * b[i]);
    }
    EXPECT_NEAR(DotF32(a.data(), b.data(), n), d32, 1e-5 * scale);
    EXPECT_NEAR(DotF32F16(a.data(), bh.data(), n), d3216, 1e-5 * scale);
    EXPECT_NEAR(DotF16(ah.data(), bh.data(), n), d16, 1e-5 * scale);
    std::vector<float> y(a), y_ref(a);
    AxpyF16(0.75f, bh.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) y_ref[i] += 0.75f * Fp16ToFp32(bh[i]);
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], y_ref[i], 1e-6f * (1 + std::fabs(y_ref[i])));
    std::vector<uint16_t> h(static_cast<size_t>(n));
    std::vector<float> back(static_cast<size_t>(n));
    Fp32ToFp16Row(a.data(), h.data(), n);
    Fp16ToFp32Row(h.data(), back.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(h[i], Fp32ToFp16(a[i])) << i;
      ASSERT_EQ(back[i], Fp16ToFp32(h[i])) << i;
    }
  }
  // Rounding edge cases go through the vector path too (8 at a time): ties to even, denormals,
  // overflow to infinity.
  const float edge[8] = {1.0f + std::ldexp(1.0f, -11),
                         1.0f + 3 * std::ldexp(1.0f, -11),
                         std::ldexp(1.0f, -24),
                         std::ldexp(1.5f, -20),
                         65520.0f,
                         -1e6f,
                         -0.0f,
                         std::ldexp(1.0f, -26)};
  uint16_t h[8];
  Fp32ToFp16Row(edge, h, 8);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(h[i], Fp32ToFp16(edge[i])) << i;
}

// ---- Layout::kQ4_0x16 (Q4_0 rows interleaved 16 at a time) --------------------------------------

// The interleaved copy of `w` (row-major Q4_0).
std::vector<uint8_t> Interleave(const Matrix& w, Matrix* packed) {
  std::vector<uint8_t> out(MatrixBytes(w));
  *packed = Repack(w, Layout::kQ4_0x16, out.data());
  return out;
}

TEST(Q4_0x16, RowsDequantizeToTheRowMajorRows) {
  const int64_t rows = 48, cols = 96;
  const auto w = MakeWeights(kQ4_0, rows, cols, 5);
  const Matrix m{kQ4_0, rows, cols, w.data()};
  Matrix packed;
  const auto bytes = Interleave(m, &packed);
  EXPECT_EQ(packed.layout, Layout::kQ4_0x16);
  EXPECT_EQ(bytes.size(), w.size());  // the same blocks, rearranged
  EXPECT_NE(0, std::memcmp(bytes.data(), w.data(), w.size()));
  std::vector<float> a(cols), b(cols);
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeRow(kQ4_0, w.data() + r * RowBytes(kQ4_0, cols), a.data(), cols);
    DequantizeMatrixRow(packed, r, b.data());
    ASSERT_EQ(a, b) << "row " << r;
  }
  // Two halves repacked separately give the whole.
  std::vector<uint8_t> halves(w.size());
  Repack(m, Layout::kQ4_0x16, halves.data(), 0, 16);
  Repack(m, Layout::kQ4_0x16, halves.data(), 16, rows);
  EXPECT_EQ(halves, bytes);
}

// Against the double-precision reference, and bit-identical across SIMD levels, batch sizes and
// threads (every level runs the same per-(row, token) arithmetic).
TEST(Q4_0x16, FastPathMatchesReferenceAndIsIdenticalEverywhere) {
  const Shape shapes[] = {{16, 32, 1}, {48, 96, 7}, {64, 512, 13}, {32, 2560, 5}};
  ThreadPool pool(3);
  uint32_t seed = 900;
  for (const Shape& s : shapes) {
    SCOPED_TRACE("rows=" + std::to_string(s.rows) + " cols=" + std::to_string(s.cols) +
                 " tokens=" + std::to_string(s.n_tokens));
    const auto w = MakeWeights(kQ4_0, s.rows, s.cols, seed++);
    const auto x = Gaussian(s.n_tokens * s.cols, seed++, 1.0f);
    const Matrix m{kQ4_0, s.rows, s.cols, w.data()};
    Matrix packed;
    const auto bytes = Interleave(m, &packed);
    const Reference ref = Compute(kQ4_0, w, s.rows, s.cols, x, s.n_tokens);
    const size_t ny = static_cast<size_t>(s.rows * s.n_tokens);
    std::vector<float> scalar(ny), row_major(ny);
    MatMulAt(SimdLevel::kScalar, packed, x.data(), s.n_tokens, scalar.data(), Precision::kFast,
             nullptr);
    MatMulAt(SimdLevel::kScalar, m, x.data(), s.n_tokens, row_major.data(), Precision::kFast,
             nullptr);
    for (size_t i = 0; i < ny; ++i) {
      const double tol = 1e-5 * ref.abs[i] + 1e-30;
      ASSERT_NEAR(scalar[i], ref.y[i], ref.qerr[i] + tol) << "output " << i;
      // The same quantized activations as the row-major kernels: equal up to summation order.
      ASSERT_NEAR(scalar[i], row_major[i], 2e-5 * ref.abs[i] + 1e-30) << "output " << i;
    }
    for (SimdLevel level : Levels()) {
      SCOPED_TRACE(SimdLevelName(level));
      std::vector<float> fast(ny), fast_pool(ny), precise(ny), precise_rows(ny);
      MatMulAt(level, packed, x.data(), s.n_tokens, fast.data(), Precision::kFast, nullptr);
      MatMulAt(level, packed, x.data(), s.n_tokens, fast_pool.data(), Precision::kFast, &pool);
      ASSERT_EQ(fast, scalar);
      ASSERT_EQ(fast_pool, scalar);
      for (int64_t t = 0; t < s.n_tokens; ++t) {
        std::vector<float> one(static_cast<size_t>(s.rows));
        MatMulAt(level, packed, x.data() + t * s.cols, 1, one.data(), Precision::kFast, nullptr);
        for (int64_t r = 0; r < s.rows; ++r) ASSERT_EQ(one[r], scalar[t * s.rows + r]) << t;
      }
      // The precise path dequantizes the interleaved rows to exactly the row-major values.
      MatMulAt(level, packed, x.data(), s.n_tokens, precise.data(), Precision::kPrecise, &pool);
      MatMulAt(level, m, x.data(), s.n_tokens, precise_rows.data(), Precision::kPrecise, &pool);
      ASSERT_EQ(precise, precise_rows);
    }
  }
}

TEST(Q4_0x16, LayoutChoiceAndBadInput) {
  const auto w = MakeWeights(kQ4_0, 32, 64, 3);
  std::vector<uint8_t> dst(w.size());
  const Matrix ok{kQ4_0, 32, 64, w.data()};
  EXPECT_TRUE(LayoutFits(ok, Layout::kQ4_0x16));
  EXPECT_FALSE(LayoutFits(Matrix{kQ4_0, 24, 64, w.data()}, Layout::kQ4_0x16));
  EXPECT_FALSE(LayoutFits(Matrix{kQ8_0, 32, 64, w.data()}, Layout::kQ4_0x16));
  EXPECT_EQ(PreferredLayout(Matrix{kQ4_K, 32, 256, w.data()}), Layout::kRows);
  EXPECT_EQ(PreferredLayout(Matrix{kQ4_0, 24, 64, w.data()}), Layout::kRows);
  const char* repack_env = std::getenv("HEARTH_REPACK");
  const bool disabled = repack_env != nullptr && std::string(repack_env) == "0";
  EXPECT_EQ(PreferredLayout(ok), ActiveSimdLevel() != SimdLevel::kScalar && !disabled
                                     ? Layout::kQ4_0x16
                                     : Layout::kRows);
  EXPECT_THROW(Repack(Matrix{kQ4_0, 24, 64, w.data()}, Layout::kQ4_0x16, dst.data()), Error);
  EXPECT_THROW(Repack(Matrix{kQ8_0, 32, 64, w.data()}, Layout::kQ4_0x16, dst.data()), Error);
  EXPECT_THROW(Repack(ok, Layout::kQ4_0x16, dst.data(), 0, 8), Error);
  EXPECT_THROW(Repack(ok, Layout::kQ4_0x16, dst.data(), 16, 48), Error);
  Matrix packed = Repack(ok, Layout::kQ4_0x16, dst.data());
  std::vector<uint8_t> again(w.size());
  EXPECT_THROW(Repack(packed, Layout::kQ4_0x16, again.data()), Error);  // already interleaved
  // A matrix claiming a layout its shape cannot have is refused, not read out of bounds.
  std::vector<float> x(64), y(24);
  EXPECT_THROW(MatMul(Matrix{kQ4_0, 24, 64, w.data(), Layout::kQ4_0x16}, x.data(), 1, y.data(),
                      Precision::kFast, nullptr),
               Error);
  EXPECT_THROW(DequantizeMatrixRow(packed, 32, x.data()), Error);
}

// HEARTH_SIMD picks the level (ctest runs this binary again with HEARTH_SIMD=scalar and avx2).
TEST(SimdEnv, MatchesEnvironment) {
  const char* env = std::getenv("HEARTH_SIMD");
  SimdLevel best = SimdLevel::kScalar;
  for (SimdLevel l : Levels()) best = l;
  const std::string e = env ? env : "";
  SimdLevel expected = best;
  if (e == "scalar") expected = SimdLevel::kScalar;
  if (e == "avx2" && SimdLevelAvailable(SimdLevel::kAvx2)) expected = SimdLevel::kAvx2;
  EXPECT_EQ(ActiveSimdLevel(), expected) << "HEARTH_SIMD=" << e;
  EXPECT_TRUE(SimdLevelAvailable(SimdLevel::kScalar));
}

}  // namespace
}  // namespace hearth::tensor
