#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "tensor/tensor.h"

namespace hearth::tensor {
namespace {

// The reference is libm's tanh in double precision, rounded to float.
float Reference(float x, float cap) {
  return static_cast<float>(cap * std::tanh(static_cast<double>(x) / cap));
}

TEST(SoftCap, MatchesTanhWithinFewUlp) {
  for (float cap : {30.0f, 50.0f, 1.0f}) {
    std::vector<float> x;
    for (int i = -40000; i <= 40000; ++i) x.push_back(static_cast<float>(i) * 0.005f * cap);
    for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, 0.62499f * cap, 0.625f * cap,
                    0.62501f * cap, 43.0f * cap, 44.0f * cap, 1e6f, -1e6f, 3e38f, -3e38f}) {
      x.push_back(v);
    }
    std::vector<float> y = x;
    SoftCap(y.data(), static_cast<int64_t>(y.size()), cap);
    double worst_ulp = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const float ref = Reference(x[i], cap);
      const float ulp = std::nextafter(std::fabs(ref), INFINITY) - std::fabs(ref);
      const double err = std::fabs(static_cast<double>(y[i]) - ref) / (ulp > 0 ? ulp : 1e-45f);
      worst_ulp = std::max(worst_ulp, err);
      ASSERT_LE(err, 4.0) << "x " << x[i] << " cap " << cap << ": " << y[i] << " vs " << ref;
      ASSERT_EQ(std::signbit(y[i]), std::signbit(ref)) << x[i];
    }
    EXPECT_GT(worst_ulp, 0.0) << "suspiciously exact: is the reference being compared?";
  }
}

TEST(SoftCap, SaturatesAtTheCap) {
  std::vector<float> y = {1e30f, -1e30f, INFINITY, -INFINITY};
  SoftCap(y.data(), 4, 30.0f);
  EXPECT_EQ(y[0], 30.0f);
  EXPECT_EQ(y[1], -30.0f);
  EXPECT_EQ(y[2], 30.0f);
  EXPECT_EQ(y[3], -30.0f);
}

TEST(ExpShifted, MatchesExpWithinFewUlp) {
  std::vector<float> x;
  for (int i = 0; i <= 100000; ++i) x.push_back(-static_cast<float>(i) * 0.00087f);
  std::vector<float> y = x;
  ExpShifted(y.data(), static_cast<int64_t>(y.size()), 0.0f);
  for (size_t i = 0; i < x.size(); ++i) {
    const float ref = static_cast<float>(std::exp(static_cast<double>(x[i])));
    const float ulp = std::nextafter(ref, INFINITY) - ref;
    ASSERT_LE(std::fabs(y[i] - ref), 3 * ulp) << x[i];
  }
  std::vector<float> shifted = {5.0f, 4.0f, -3.0f};
  ExpShifted(shifted.data(), 3, 5.0f);
  EXPECT_FLOAT_EQ(shifted[0], 1.0f);
  EXPECT_NEAR(shifted[1], std::exp(-1.0f), 1e-7);
  EXPECT_NEAR(shifted[2], std::exp(-8.0f), 1e-10);
}

// Several query heads against one F16 row, at every SIMD level the dispatcher offers, against a
// double-precision reference; head counts that exercise the 4-head and 1-head paths, and
// lengths with a tail after the vector loop.
TEST(GroupedHeads, DotAndAxpyMatchReference) {
  for (int heads : {1, 3, 4, 8}) {
    for (int64_t n : {32, 256, 37}) {
      std::vector<uint16_t> k(static_cast<size_t>(n));
      std::vector<float> kf(static_cast<size_t>(n)), q(static_cast<size_t>(heads * n));
      for (int64_t i = 0; i < n; ++i) {
        Fp32ToFp16Row(std::vector<float>{std::sin(0.37f * i) * 2}.data(), &k[i], 1);
        Fp16ToFp32Row(&k[i], &kf[i], 1);
      }
      for (size_t i = 0; i < q.size(); ++i) q[i] = std::cos(0.11f * static_cast<float>(i));
      std::vector<float> out(static_cast<size_t>(heads));
      DotF32F16Heads(q.data(), heads, k.data(), n, out.data());
      std::vector<float> alpha(static_cast<size_t>(heads));
      std::vector<float> y(q.size(), 0.5f);
      for (int h = 0; h < heads; ++h) alpha[h] = 0.25f * (h + 1);
      AxpyF16Heads(alpha.data(), heads, k.data(), y.data(), n);
      for (int h = 0; h < heads; ++h) {
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
          ref += static_cast<double>(q[h * n + i]) * kf[i];
          mag += std::fabs(static_cast<double>(q[h * n + i]) * kf[i]);
        }
        EXPECT_NEAR(out[h], ref, 1e-6 * mag + 1e-6) << "heads " << heads << " n " << n;
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_NEAR(y[h * n + i], 0.5f + alpha[h] * kf[i], 1e-6) << h << " " << i;
        }
      }
    }
  }
}

// GemmF32 against a double-precision triple loop, on shapes that hit every tile edge of every
// SIMD level (rows mod 4, column tails within and across vectors) and strided operands. The
// sentinel around C's columns catches stores past a masked tail.
TEST(GemmF32, MatchesADoubleProductOnEveryTileShape) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  constexpr float kSentinel = 12345.0f;
  for (int64_t m : {1, 2, 3, 4, 5, 9}) {
    for (int64_t n : {1, 7, 8, 15, 16, 17, 33, 64, 65, 130}) {
      for (int64_t k : {1, 3, 64, 77}) {
        const int64_t lda = k + 3;
        const int64_t ldb = n + 5;
        const int64_t ldc = n + 2;
        std::vector<float> a(static_cast<size_t>(m * lda));
        std::vector<float> b(static_cast<size_t>(k * ldb));
        for (float& x : a) x = dist(rng);
        for (float& x : b) x = dist(rng);
        std::vector<float> c(static_cast<size_t>(m * ldc), kSentinel);
        GemmF32(m, n, k, a.data(), lda, b.data(), ldb, c.data(), ldc);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < ldc; ++j) {
            const float got = c[static_cast<size_t>(i * ldc + j)];
            if (j >= n) {
              ASSERT_EQ(got, kSentinel) << "wrote past column " << n << " at " << i << "," << j;
              continue;
            }
            double ref = 0;
            for (int64_t p = 0; p < k; ++p) {
              ref += static_cast<double>(a[static_cast<size_t>(i * lda + p)]) *
                     b[static_cast<size_t>(p * ldb + j)];
            }
            ASSERT_NEAR(got, ref, 1e-5 * static_cast<double>(k))
                << "m " << m << " n " << n << " k " << k << " at " << i << "," << j;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace hearth::tensor
