// Reference quantizers: round trips within each format's error bound, and byte-for-byte agreement
// with llama-quantize's output in the fixture files (every quantized fixture was made by
// `llama-quantize NAME.F32.gguf NAME.TYPE.gguf TYPE`, without an importance matrix, so GGML's
// quantize_row_*_ref produced those bytes).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"

namespace hearth::tensor {
namespace {

std::vector<float> Gaussian(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<float> RoundTrip(uint32_t type, const std::vector<float>& x) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(RowBytes(type, n));
  QuantizeRow(type, x.data(), q.data(), n);
  std::vector<float> y(x.size());
  DequantizeRow(type, q.data(), y.data(), n);
  return y;
}

double RelRms(const std::vector<float>& x, const std::vector<float>& y) {
  double e = 0, s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    e += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    s += double(x[i]) * x[i];
  }
  return std::sqrt(e / std::max(s, 1e-30));
}

// Per-block absolute bound for the 32-element formats: half a quantization step (a full step
// where the format clamps the extreme on one side), plus fp16 rounding of the scale/min.
TEST(QuantizeRoundTrip, BlockFormatsWithinOneStep) {
  const int64_t n = 32 * 64;
  const auto x = Gaussian(n, 1, 3.0f);
  for (uint32_t type : {kQ8_0, kQ8_1, kQ4_0, kQ4_1, kQ5_0, kQ5_1}) {
    const auto y = RoundTrip(type, x);
    for (int64_t b = 0; b < n / 32; ++b) {
      float amax = 0, mn = 1e30f, mx = -1e30f;
      for (int j = 0; j < 32; ++j) {
        const float v = x[b * 32 + j];
        amax = std::max(amax, std::fabs(v));
        mn = std::min(mn, v);
        mx = std::max(mx, v);
      }
      float bound;
      switch (type) {
        case kQ8_0: case kQ8_1: bound = 0.5f * amax / 127 + amax * 1e-3f; break;
        case kQ4_0: bound = amax / 8 * 1.01f; break;
        case kQ5_0: bound = amax / 16 * 1.01f; break;
        case kQ4_1: bound = 0.51f * (mx - mn) / 15 + std::fabs(mn) * 1e-3f; break;
        default: bound = 0.51f * (mx - mn) / 31 + std::fabs(mn) * 1e-3f; break;
      }
      for (int j = 0; j < 32; ++j) {
        ASSERT_LE(std::fabs(y[b * 32 + j] - x[b * 32 + j]), bound)
            << "type " << type << " block " << b << " element " << j;
      }
    }
  }
}

TEST(QuantizeRoundTrip, Q8_KWithinHalfStep) {
  const auto x = Gaussian(256 * 8, 2);
  const auto y = RoundTrip(kQ8_K, x);
  for (int64_t b = 0; b < 8; ++b) {
    float amax = 0;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[b * 256 + j]));
    for (int j = 0; j < 256; ++j) {
      ASSERT_LE(std::fabs(y[b * 256 + j] - x[b * 256 + j]), 0.5f * amax / 127 * 1.0001f);
    }
  }
}

TEST(QuantizeRoundTrip, KQuantsRelativeError) {
  // For Gaussian data the uniform-rounding error is about step/sqrt(12): Q4_K's step is ~range/15
  // of a 32-element sub-block (~0.3 sigma -> 0.09), Q5_K ~half that, Q6_K's ~1/32 of 16 values'
  // amax (~0.07 sigma -> 0.02).
  const auto x = Gaussian(256 * 32, 3, 0.02f);
  EXPECT_LT(RelRms(x, RoundTrip(kQ4_K, x)), 0.10);
  EXPECT_LT(RelRms(x, RoundTrip(kQ5_K, x)), 0.05);
  EXPECT_LT(RelRms(x, RoundTrip(kQ6_K, x)), 0.03);
}

TEST(QuantizeRoundTrip, HalfFormats) {
  const auto x = Gaussian(1000, 4, 100.0f);
  const auto h = RoundTrip(kF16, x);
  const auto b = RoundTrip(kBF16, x);
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_LE(std::fabs(h[i] - x[i]), std::fabs(x[i]) * std::ldexp(1.0f, -11) + 1e-7f);
    ASSERT_LE(std::fabs(b[i] - x[i]), std::fabs(x[i]) * std::ldexp(1.0f, -8));
  }
}

TEST(QuantizeRoundTrip, ZerosAndConstants) {
  for (uint32_t type : {kQ8_0, kQ8_1, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_K, kQ4_K, kQ5_K, kQ6_K}) {
    const std::vector<float> zeros(256, 0.0f);
    for (float v : RoundTrip(type, zeros)) ASSERT_EQ(v, 0.0f) << type;
    const std::vector<float> ones(256, 1.5f);
    for (float v : RoundTrip(type, ones)) ASSERT_NEAR(v, 1.5f, 0.02f) << type;
  }
}

TEST(QuantizeRoundTrip, RejectsUnsupported) {
  std::vector<float> x(256);
  std::vector<uint8_t> q(1024);
  EXPECT_THROW(QuantizeRow(kIQ4_XS, x.data(), q.data(), 256), Error);
  EXPECT_THROW(QuantizeRow(kQ4_0, x.data(), q.data(), 31), Error);
  EXPECT_FALSE(HasQuantizer(kQ2_K));
  EXPECT_TRUE(HasQuantizer(kQ6_K));
}

struct FixtureCase {
  const char* model;
  const char* type;
};

class FixtureTest : public ::testing::TestWithParam<FixtureCase> {};

// Dequantized tensors agree with the F32 original within the format's error, and re-quantizing
// the F32 original reproduces llama-quantize's bytes exactly.
TEST_P(FixtureTest, MatchesF32AndLlamaQuantize) {
  const std::string dir = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/";
  const auto f32 = gguf::File::Open(dir + GetParam().model + ".F32.gguf");
  const auto q = gguf::File::Open(dir + GetParam().model + "." + GetParam().type + ".gguf");
  int checked = 0, exact = 0;
  for (const auto& t : q.tensors()) {
    if (t.type_id == kF32) continue;
    const gguf::TensorInfo* ref = f32.FindTensor(t.name);
    ASSERT_NE(ref, nullptr) << t.name;
    ASSERT_EQ(ref->type_id, static_cast<uint32_t>(kF32)) << t.name;
    ASSERT_EQ(ref->shape, t.shape) << t.name;
    ASSERT_TRUE(IsSupportedType(t.type_id)) << t.name;
    const int64_t n = t.n_elements();
    const int64_t ne0 = t.shape[0];
    std::vector<float> x(static_cast<size_t>(n));
    std::memcpy(x.data(), ref->data, static_cast<size_t>(n) * 4);
    std::vector<float> y(static_cast<size_t>(n));
    const size_t row_bytes = RowBytes(t.type_id, ne0);
    ASSERT_EQ(row_bytes * static_cast<size_t>(n / ne0), t.n_bytes) << t.name;
    for (int64_t r = 0; r < n / ne0; ++r) {
      DequantizeRow(t.type_id, t.data + r * row_bytes, y.data() + r * ne0, ne0);
    }
    double bound;
    switch (t.type_id) {
      case kF16: bound = 1e-3; break;
      case kBF16: bound = 4e-3; break;
      case kQ8_0: bound = 0.01; break;
      case kQ6_K: bound = 0.03; break;
      case kQ5_0: case kQ5_1: case kQ5_K: bound = 0.06; break;
      default: bound = 0.12; break;
    }
    EXPECT_LT(RelRms(x, y), bound) << t.name << " " << gguf::TensorTypeName(t.type_id);
    if (HasQuantizer(t.type_id)) {
      std::vector<uint8_t> mine(t.n_bytes);
      for (int64_t r = 0; r < n / ne0; ++r) {
        QuantizeRow(t.type_id, x.data() + r * ne0, mine.data() + r * row_bytes, ne0);
      }
      const bool same = std::memcmp(mine.data(), t.data, t.n_bytes) == 0;
      EXPECT_TRUE(same) << t.name << " " << gguf::TensorTypeName(t.type_id)
                        << ": re-quantized bytes differ from llama-quantize's";
      exact += same;
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
  EXPECT_GT(exact, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Models, FixtureTest,
    ::testing::Values(FixtureCase{"tiny-dense", "F16"}, FixtureCase{"tiny-dense", "BF16"},
                      FixtureCase{"tiny-dense", "Q8_0"}, FixtureCase{"tiny-dense", "Q4_0"},
                      FixtureCase{"tiny-dense", "Q6_K"}, FixtureCase{"tiny-dense", "Q4_K_M"},
                      FixtureCase{"tiny-e", "Q8_0"}, FixtureCase{"tiny-e", "Q4_0"},
                      FixtureCase{"tiny-e", "Q6_K"}, FixtureCase{"tiny-e", "Q4_K_M"},
                      FixtureCase{"tiny-moe", "F16"}, FixtureCase{"tiny-moe", "BF16"},
                      FixtureCase{"tiny-moe", "Q8_0"}, FixtureCase{"tiny-moe", "Q4_0"},
                      FixtureCase{"tiny-moe", "Q6_K"}, FixtureCase{"tiny-moe", "Q4_K_M"}),
    [](const auto& param_info) {
      std::string s = std::string(param_info.param.model) + "_" + param_info.param.type;
      for (auto& c : s) {
        if (c == '-') c = '_';
      }
      return s;
    });

}  // namespace
}  // namespace hearth::tensor
