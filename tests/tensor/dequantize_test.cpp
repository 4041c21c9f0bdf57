// Dequantizers on hand-made blocks: each block is built byte by byte and the expected values are
// computed here from the layout description in ../shared/spec/gemma4-model.md §5.1 (element-index
// formulas, written independently of the library's loop structure). Scales are powers of two so
// every expected value is exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "tensor/tensor.h"

namespace hearth::tensor {
namespace {

constexpr uint16_t kHalfOne = 0x3C00;      // 1.0
constexpr uint16_t kHalfHalf = 0x3800;     // 0.5
constexpr uint16_t kHalfTwo = 0x4000;      // 2.0
constexpr uint16_t kHalfQuarter = 0x3400;  // 0.25
constexpr uint16_t kHalfMinusOne = 0xBC00;

const int kKv[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

void Put16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v & 0xFF);
  b[at + 1] = static_cast<uint8_t>(v >> 8);
}

// Deterministic filler bytes.
std::vector<uint8_t> Bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> b(n);
  uint32_t s = seed;
  for (auto& v : b) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(s >> 24);
  }
  return b;
}

std::vector<float> Deq(uint32_t type, const std::vector<uint8_t>& b, int64_t n) {
  EXPECT_EQ(b.size(), RowBytes(type, n));
  std::vector<float> y(static_cast<size_t>(n), -12345.f);
  DequantizeRow(type, b.data(), y.data(), n);
  return y;
}

TEST(Fp16, KnownValues) {
  EXPECT_EQ(Fp16ToFp32(0x3C00), 1.0f);
  EXPECT_EQ(Fp16ToFp32(0xC000), -2.0f);
  EXPECT_EQ(Fp16ToFp32(0x7BFF), 65504.0f);
  EXPECT_EQ(Fp16ToFp32(0x0001), std::ldexp(1.0f, -24));  // smallest denormal
  EXPECT_EQ(Fp16ToFp32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(Fp16ToFp32(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::isinf(Fp16ToFp32(0x7C00)));
  EXPECT_TRUE(std::isnan(Fp16ToFp32(0x7E00)));
  EXPECT_EQ(Fp32ToFp16(1.0f), 0x3C00);
  EXPECT_EQ(Fp32ToFp16(65504.0f), 0x7BFF);
  EXPECT_EQ(Fp32ToFp16(1e6f), 0x7C00);  // overflow to inf
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -24)), 0x0001);
  // 1 + 2^-11 lies exactly between 1 and the next half (1 + 2^-10): ties to even -> 1.
  EXPECT_EQ(Fp32ToFp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  // 1 + 3*2^-11 is between 1+2^-10 (odd mantissa) and 1+2^-9: ties to even -> 1+2^-9.
  EXPECT_EQ(Fp32ToFp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  // Every half round-trips.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0) continue;  // NaN payloads
    ASSERT_EQ(Fp32ToFp16(Fp16ToFp32(static_cast<uint16_t>(h))), h) << h;
  }
}

TEST(Bf16, KnownValues) {
  EXPECT_EQ(Bf16ToFp32(0x3F80), 1.0f);
  EXPECT_EQ(Bf16ToFp32(0x4049), 3.140625f);
  EXPECT_EQ(Bf16ToFp32(0xC000), -2.0f);
  EXPECT_EQ(Fp32ToBf16(3.14159265f), 0x4049);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even -> 1.
  EXPECT_EQ(Fp32ToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(Fp32ToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_TRUE(std::isnan(Bf16ToFp32(Fp32ToBf16(std::nanf("")))));
}

TEST(Dequantize, F16AndBf16Rows) {
  std::vector<uint8_t> h(6);
  Put16(h, 0, 0x3C00);
  Put16(h, 2, 0xC400);  // -4
  Put16(h, 4, 0x3800);
  EXPECT_EQ(Deq(kF16, h, 3), (std::vector<float>{1.0f, -4.0f, 0.5f}));
  std::vector<uint8_t> b(4);
  Put16(b, 0, 0x3F80);
  Put16(b, 2, 0xBF00);  // -0.5
  EXPECT_EQ(Deq(kBF16, b, 2), (std::vector<float>{1.0f, -0.5f}));
}

TEST(Dequantize, Q8_0) {
  std::vector<uint8_t> b(34);
  Put16(b, 0, kHalfHalf);
  for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j * 8 - 128));
  const auto y = Deq(kQ8_0, b, 32);
  EXPECT_EQ(y[0], -64.0f);
  EXPECT_EQ(y[16], 0.0f);
  EXPECT_EQ(y[31], 60.0f);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * static_cast<float>(j * 8 - 128));
}

TEST(Dequantize, Q4_0) {
  std::vector<uint8_t> b(18);
  Put16(b, 0, kHalfTwo);
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = Deq(kQ4_0, b, 32);
  EXPECT_EQ(y[0], -16.0f);   // 2 * (0 - 8)
  EXPECT_EQ(y[15], 14.0f);   // 2 * (15 - 8)
  EXPECT_EQ(y[16], 14.0f);   // high nibble of qs[0] = 15
  EXPECT_EQ(y[31], -16.0f);  // high nibble of qs[15] = 0
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 2.0f * static_cast<float>(j - 8));
    EXPECT_EQ(y[j + 16], 2.0f * static_cast<float>(15 - j - 8));
  }
}

TEST(Dequantize, Q4_1) {
  std::vector<uint8_t> b(20);
  Put16(b, 0, kHalfHalf);
  Put16(b, 2, kHalfMinusOne);
  for (int j = 0; j < 16; ++j) b[4 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = Deq(kQ4_1, b, 32);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[15], 6.5f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * static_cast<float>(j) - 1.0f);
    EXPECT_EQ(y[j + 16], 0.5f * static_cast<float>(15 - j) - 1.0f);
  }
}

TEST(Dequantize, Q5_0AndQ5_1) {
  const uint32_t qh = 0xA5A5F00Fu;
  std::vector<uint8_t> b0(22), b1(24);
  Put16(b0, 0, kHalfOne);
  Put16(b1, 0, kHalfQuarter);
  Put16(b1, 2, kHalfTwo);
  for (int k = 0; k < 4; ++k) {
    b0[2 + k] = static_cast<uint8_t>(qh >> (8 * k));
    b1[4 + k] = static_cast<uint8_t>(qh >> (8 * k));
  }
  for (int j = 0; j < 16; ++j) {
    b0[6 + j] = static_cast<uint8_t>((j * 7) & 0xFF);
    b1[8 + j] = static_cast<uint8_t>((j * 7) & 0xFF);
  }
  const auto y0 = Deq(kQ5_0, b0, 32);
  const auto y1 = Deq(kQ5_1, b1, 32);
  // Element 0: qs[0] = 0 -> low nibble 0, bit 0 of qh = 1 -> q = 16; Q5_0: 16 - 16 = 0.
  EXPECT_EQ(y0[0], 0.0f);
  // Element 4: qs[4] = 28 -> low nibble 12, bit 4 of qh = 0 -> q = 12 -> 12 - 16 = -4.
  EXPECT_EQ(y0[4], -4.0f);
  EXPECT_EQ(y1[4], 0.25f * 12 + 2.0f);
  for (int j = 0; j < 32; ++j) {
    const uint8_t byte = static_cast<uint8_t>((j % 16) * 7);
    const int nib = j < 16 ? (byte & 15) : (byte >> 4);
    const int q = nib | (((qh >> j) & 1) << 4);
    EXPECT_EQ(y0[j], static_cast<float>(q - 16)) << j;
    EXPECT_EQ(y1[j], 0.25f * static_cast<float>(q) + 2.0f) << j;
  }
}

TEST(Dequantize, IQ4_NL) {
  std::vector<uint8_t> b(18);
  Put16(b, 0, kHalfHalf);
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = Deq(kIQ4_NL, b, 32);
  EXPECT_EQ(y[0], -63.5f);   // 0.5 * -127
  EXPECT_EQ(y[16], 56.5f);   // 0.5 * 113
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * static_cast<float>(kKv[j]));
    EXPECT_EQ(y[j + 16], 0.5f * static_cast<float>(kKv[15 - j]));
  }
}

TEST(Dequantize, Q2_K) {
  auto b = Bytes(84, 7);
  Put16(b, 80, kHalfHalf);      // d
  Put16(b, 82, kHalfQuarter);   // dmin
  const auto y = Deq(kQ2_K, b, 256);
  for (int h = 0; h < 2; ++h) {
    for (int j = 0; j < 4; ++j) {
      for (int k = 0; k < 2; ++k) {
        for (int l = 0; l < 16; ++l) {
          const int e = 128 * h + 32 * j + 16 * k + l;
          const int q = (b[16 + 32 * h + 16 * k + l] >> (2 * j)) & 3;
          const int sc = b[8 * h + 2 * j + k];
          EXPECT_EQ(y[e], 0.5f * static_cast<float>((sc & 15) * q) -
                              0.25f * static_cast<float>(sc >> 4))
              << e;
        }
      }
    }
  }
  // One value by hand: a block with scales[0] = 0x37, qs[0] = 0b10 -> element 0:
  // 0.5 * 7 * 2 - 0.25 * 3 = 6.25.
  b[0] = 0x37;
  b[16] = 0x02;
  EXPECT_EQ(Deq(kQ2_K, b, 256)[0], 6.25f);
}

TEST(Dequantize, Q3_K) {
  auto b = Bytes(110, 11);
  Put16(b, 108, kHalfQuarter);
  const uint8_t* hmask = &b[0];
  const uint8_t* qs = &b[32];
  const uint8_t* sc = &b[96];
  int S[16];
  for (int s = 0; s < 16; ++s) {
    const int bb = s % 4;
    const int lo4 = s < 4 ? sc[bb] & 15 : s < 8 ? sc[4 + bb] & 15 : s < 12 ? sc[bb] >> 4
                                                                          : sc[4 + bb] >> 4;
    const int hi2 = (sc[8 + bb] >> (2 * (s / 4))) & 3;
    S[s] = (lo4 | (hi2 << 4)) - 32;
  }
  const auto y = Deq(kQ3_K, b, 256);
  for (int h = 0; h < 2; ++h) {
    for (int j = 0; j < 4; ++j) {
      for (int k = 0; k < 2; ++k) {
        for (int l = 0; l < 16; ++l) {
          const int e = 128 * h + 32 * j + 16 * k + l;
          const int q = ((qs[32 * h + 16 * k + l] >> (2 * j)) & 3) -
                        (((hmask[16 * k + l] >> (4 * h + j)) & 1) ? 0 : 4);
          EXPECT_EQ(y[e], 0.25f * static_cast<float>(S[8 * h + 2 * j + k]) * static_cast<float>(q))
              << e;
        }
      }
    }
  }
  // By hand: scales[0] = 0x05, scales[8] = 0x02 -> S[0] = (5 | 2<<4) - 32 = 5;
  // qs[0] = 3, hmask[0] bit 0 clear -> q = 3 - 4 = -1; element 0 = 0.25 * 5 * -1 = -1.25.
  b[96] = 0x05;
  b[104] = 0x02;
  b[32] = 0x03;
  b[0] = 0x00;
  EXPECT_EQ(Deq(kQ3_K, b, 256)[0], -1.25f);
}

void K4ScaleMin(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

TEST(Dequantize, Q4_K) {
  auto b = Bytes(144, 13);
  Put16(b, 0, kHalfHalf);
  Put16(b, 2, kHalfQuarter);
  const uint8_t* scales = &b[4];
  const uint8_t* qs = &b[16];
  const auto y = Deq(kQ4_K, b, 256);
  for (int j = 0; j < 4; ++j) {
    int sc0, m0, sc1, m1;
    K4ScaleMin(scales, 2 * j, &sc0, &m0);
    K4ScaleMin(scales, 2 * j + 1, &sc1, &m1);
    for (int l = 0; l < 32; ++l) {
      EXPECT_EQ(y[64 * j + l],
                0.5f * static_cast<float>(sc0 * (qs[32 * j + l] & 15)) - 0.25f * static_cast<float>(m0));
      EXPECT_EQ(y[64 * j + 32 + l],
                0.5f * static_cast<float>(sc1 * (qs[32 * j + l] >> 4)) - 0.25f * static_cast<float>(m1));
    }
  }
  // By hand, sub-block 5 (j >= 4 branch): scales[9] = 0x21, scales[1] = 0x40, scales[5] = 0x80:
  // sc = (0x21 & 15) | (1 << 4) = 17, m = (0x21 >> 4) | (2 << 4) = 34; qs[32] high nibble = 3 ->
  // element 160 = 0.5 * 17 * 3 - 0.25 * 34 = 17.
  b[4 + 9] = 0x21;
  b[4 + 1] = 0x40;
  b[4 + 5] = 0x80;
  b[16 + 64] = 0x30;
  EXPECT_EQ(Deq(kQ4_K, b, 256)[160], 17.0f);
}

TEST(Dequantize, Q5_K) {
  auto b = Bytes(176, 17);
  Put16(b, 0, kHalfQuarter);
  Put16(b, 2, kHalfHalf);
  const uint8_t* scales = &b[4];
  const uint8_t* qh = &b[16];
  const uint8_t* qs = &b[48];
  const auto y = Deq(kQ5_K, b, 256);
  for (int j = 0; j < 4; ++j) {
    int sc0, m0, sc1, m1;
    K4ScaleMin(scales, 2 * j, &sc0, &m0);
    K4ScaleMin(scales, 2 * j + 1, &sc1, &m1);
    for (int l = 0; l < 32; ++l) {
      const int q0 = (qs[32 * j + l] & 15) + (((qh[l] >> (2 * j)) & 1) ? 16 : 0);
      const int q1 = (qs[32 * j + l] >> 4) + (((qh[l] >> (2 * j + 1)) & 1) ? 16 : 0);
      EXPECT_EQ(y[64 * j + l], 0.25f * static_cast<float>(sc0 * q0) - 0.5f * static_cast<float>(m0));
      EXPECT_EQ(y[64 * j + 32 + l],
                0.25f * static_cast<float>(sc1 * q1) - 0.5f * static_cast<float>(m1));
    }
  }
}

TEST(Dequantize, Q6_K) {
  auto b = Bytes(210, 19);
  Put16(b, 208, kHalfQuarter);
  const uint8_t* ql = &b[0];
  const uint8_t* qh = &b[128];
  const auto* sc = reinterpret_cast<const int8_t*>(&b[192]);
  const auto y = Deq(kQ6_K, b, 256);
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t* L = ql + 64 * h;
      const uint8_t H = qh[32 * h + l];
      const int8_t* S = sc + 8 * h;
      const int i = l / 16;
      const int q[4] = {((L[l] & 15) | ((H & 3) << 4)) - 32,
                        ((L[l + 32] & 15) | (((H >> 2) & 3) << 4)) - 32,
                        ((L[l] >> 4) | (((H >> 4) & 3) << 4)) - 32,
                        ((L[l + 32] >> 4) | (((H >> 6) & 3) << 4)) - 32};
      for (int part = 0; part < 4; ++part) {
        EXPECT_EQ(y[128 * h + 32 * part + l],
                  0.25f * static_cast<float>(S[i + 2 * part]) * static_cast<float>(q[part]));
      }
    }
  }
  // By hand: ql[0] = 0x0F, qh[0] = 0x02, scales[0] = -3 -> q = (15 | 2<<4) - 32 = 15;
  // element 0 = 0.25 * -3 * 15 = -11.25.
  b[0] = 0x0F;
  b[128] = 0x02;
  b[192] = static_cast<uint8_t>(-3);
  EXPECT_EQ(Deq(kQ6_K, b, 256)[0], -11.25f);
}

TEST(Dequantize, IQ4_XS) {
  auto b = Bytes(136, 23);
  Put16(b, 0, kHalfQuarter);
  const uint16_t scales_h = static_cast<uint16_t>(b[2] | (b[3] << 8));
  const uint8_t* scales_l = &b[4];
  const uint8_t* qs = &b[8];
  const auto y = Deq(kIQ4_XS, b, 256);
  for (int ib = 0; ib < 8; ++ib) {
    const int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | (((scales_h >> (2 * ib)) & 3) << 4);
    for (int j = 0; j < 16; ++j) {
      EXPECT_EQ(y[32 * ib + j], 0.25f * static_cast<float>(ls - 32) *
                                    static_cast<float>(kKv[qs[16 * ib + j] & 15]));
      EXPECT_EQ(y[32 * ib + 16 + j], 0.25f * static_cast<float>(ls - 32) *
                                         static_cast<float>(kKv[qs[16 * ib + j] >> 4]));
    }
  }
}

TEST(Dequantize, Q8_K) {
  std::vector<uint8_t> b(292, 0);
  const float d = 0.125f;
  std::memcpy(b.data(), &d, 4);
  for (int j = 0; j < 256; ++j) b[4 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 128));
  const auto y = Deq(kQ8_K, b, 256);
  for (int j = 0; j < 256; ++j) EXPECT_EQ(y[j], 0.125f * static_cast<float>(j - 128));
}

TEST(Dequantize, MultipleBlocksAndErrors) {
  // Two Q4_0 blocks: the second must not reuse the first block's scale.
  std::vector<uint8_t> b(36, 0x88);  // all nibbles 8 -> value 0
  Put16(b, 0, kHalfOne);
  Put16(b, 18, kHalfTwo);
  b[20] = 0x89;  // element 32: nibble 9 -> 2 * 1 = 2
  const auto y = Deq(kQ4_0, b, 64);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[32], 2.0f);
  std::vector<float> out(33);
  EXPECT_THROW(DequantizeRow(kQ4_0, b.data(), out.data(), 33), Error);
  EXPECT_THROW(DequantizeRow(99, b.data(), out.data(), 32), Error);
}

TEST(Types, Geometry) {
  EXPECT_EQ(BlockSize(kQ4_K), 256);
  EXPECT_EQ(BlockBytes(kQ4_K), 144u);
  EXPECT_EQ(BlockBytes(kQ8_1), 36u);
  EXPECT_EQ(BlockBytes(kQ8_K), 292u);
  EXPECT_EQ(RowBytes(kQ6_K, 512), 420u);
  EXPECT_EQ(RowBytes(kBF16, 3), 6u);
  EXPECT_FALSE(IsSupportedType(4));
  EXPECT_FALSE(IsSupportedType(39));
  EXPECT_EQ(BlockSize(39), 0);
}

}  // namespace
}  // namespace hearth::tensor
