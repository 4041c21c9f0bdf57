// Internal: GGML block layouts (ggml-common.h) and small helpers shared by the kernel files.
// Everything here has internal linkage (static / constexpr) on purpose: the SIMD files are
// compiled with -mavx2 / -mavx512*, and an inline function with external linkage compiled there
// could be picked by the linker for the portable files too (and crash on an older CPU).
#pragma once

#include <cstdint>
#include <cstring>

namespace hearth::tensor::blocks {

constexpr int kQK = 32;    // elements per block of the 32-element formats
constexpr int kQKK = 256;  // elements per super-block of the K-quants and IQ4_XS

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
struct BlockQ8_1 {
  uint16_t d;  // delta
  uint16_t s;  // d * sum(qs)
  int8_t qs[kQK];
};
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockIQ4NL {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
struct BlockQ2K {
  uint8_t scales[kQKK / 16];
  uint8_t qs[kQKK / 4];
  uint16_t d;
  uint16_t dmin;
};
struct BlockQ3K {
  uint8_t hmask[kQKK / 8];
  uint8_t qs[kQKK / 4];
  uint8_t scales[12];
  uint16_t d;
};
struct BlockQ4K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQKK / 2];
};
struct BlockQ5K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};
struct BlockQ6K {
  uint8_t ql[kQKK / 2];
  uint8_t qh[kQKK / 4];
  int8_t scales[kQKK / 16];
  uint16_t d;
};
struct BlockQ8K {
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];
};
struct BlockIQ4XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQKK / 64];
  uint8_t qs[kQKK / 2];
};

// Layout::kQ4_0x16: Q4_0 rows interleaved 16 at a time. A group of 16 rows holds, for each block
// index ib, the 16 rows' fp16 scales (32 bytes) and nibbles (256 bytes). The nibbles are 4 chunks
// of 64 bytes; chunk c holds, for row r at bytes 4r..4r+3, that row's qs[4c..4c+3] unchanged (low
// nibbles: weights 4c..4c+3, high nibbles: weights 16+4c..16+4c+3). One 512-bit load then feeds
// 16 rows at once: a dpbusd against 4 activation bytes broadcast to every lane. Blocks go in
// pairs, [scales of ib][scales of ib + 1][nibbles of ib][nibbles of ib + 1] (576 bytes, 9 whole
// cache lines), so a group is one sequential stream; an odd last block is [scales][nibbles].
constexpr int kQ4x16Rows = 16;
constexpr int kQ4x16NibbleBytes = kQ4x16Rows * kQK / 2;                 // 256 per block
constexpr int kQ4x16ScaleBytes = kQ4x16Rows * 2;                        // 32 per block
constexpr int kQ4x16BlockBytes = kQ4x16NibbleBytes + kQ4x16ScaleBytes;  // 288 = 16 x 18

static inline int64_t Q4x16PairBase(int64_t ib) { return ib / 2 * 2 * kQ4x16BlockBytes; }
static inline int64_t Q4x16InPair(int64_t nb, int64_t ib) { return ib / 2 * 2 + 1 < nb ? 2 : 1; }
// Byte offsets of block ib's 16 scales and 256 nibble bytes inside its group of nb blocks.
static inline int64_t Q4x16ScalesAt(int64_t ib) {
  return Q4x16PairBase(ib) + (ib & 1) * kQ4x16ScaleBytes;
}
static inline int64_t Q4x16NibblesAt(int64_t nb, int64_t ib) {
  return Q4x16PairBase(ib) + Q4x16InPair(nb, ib) * kQ4x16ScaleBytes + (ib & 1) * kQ4x16NibbleBytes;
}

// An activation block for the kQ4_0x16 kernels: a Q8_0 block with its scale in F32 and the
// offset the unsigned nibbles need (8 x the sum of qs) precomputed once per token.
struct Q8Act {
  int8_t qs[kQK];
  int32_t corr;
  float d;
};
static_assert(sizeof(Q8Act) == 40);

static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockIQ4NL) == 18);
static_assert(sizeof(BlockQ2K) == 84);
static_assert(sizeof(BlockQ3K) == 110);
static_assert(sizeof(BlockQ4K) == 144);
static_assert(sizeof(BlockQ5K) == 176);
static_assert(sizeof(BlockQ6K) == 210);
static_assert(sizeof(BlockQ8K) == 292);
static_assert(sizeof(BlockIQ4XS) == 136);

// The IQ4_NL / IQ4_XS non-linear code book.
alignas(16) static constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                        1,    13,   25,  38,  53,  69,  89,  113};

static inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static inline float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// fp16 -> fp32, exact for every input (GGML's portable ggml_compute_fp16_to_fp32).
static inline float H2F(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const uint32_t exp_offset = 0xE0u << 23;
  const float exp_scale = 0x1.0p-112f;
  const float normalized = BitsFloat((two_w >> 4) + exp_offset) * exp_scale;
  const uint32_t magic_mask = 126u << 23;
  const float denormalized = BitsFloat((two_w >> 17) | magic_mask) - 0.5f;
  const uint32_t cutoff = 1u << 27;
  return BitsFloat(sign | (two_w < cutoff ? FloatBits(denormalized) : FloatBits(normalized)));
}

// fp32 -> fp16 with round to nearest even, denormals and NaN handled
// (GGML's ggml_compute_fp32_to_fp16).
static inline uint16_t F2H(float f) {
  const float scale_to_inf = 0x1.0p+112f;
  const float scale_to_zero = 0x1.0p-110f;
  float base = ((f < 0 ? -f : f) * scale_to_inf) * scale_to_zero;
  const uint32_t w = FloatBits(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = BitsFloat((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = FloatBits(base);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline float B2F(uint16_t b) { return BitsFloat(static_cast<uint32_t>(b) << 16); }

// fp32 -> bf16, round to nearest even; NaN stays a (quiet) NaN (GGML's ggml_compute_fp32_to_bf16).
static inline uint16_t F2B(float f) {
  const uint32_t u = FloatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64);
  return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

// Round to nearest, ties to even, for |v| < 2^22 (GGML's nearest_int).
static inline int NearestInt(float fval) {
  const float val = fval + 12582912.f;
  int i;
  std::memcpy(&i, &val, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// The 6-bit scale and min of sub-block j of a Q4_K / Q5_K super-block.
static inline void ScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

// The 16 signed 6-bit scales of a Q3_K super-block (already minus 32).
static inline void Q3KScales(const uint8_t* scales, int8_t* out) {
  for (int s = 0; s < 16; ++s) {
    const int b = s % 4;
    int lo4, hi2;
    if (s < 4) {
      lo4 = scales[b] & 15;
      hi2 = scales[8 + b] & 3;
    } else if (s < 8) {
      lo4 = scales[4 + b] & 15;
      hi2 = (scales[8 + b] >> 2) & 3;
    } else if (s < 12) {
      lo4 = scales[b] >> 4;
      hi2 = (scales[8 + b] >> 4) & 3;
    } else {
      lo4 = scales[4 + b] >> 4;
      hi2 = (scales[8 + b] >> 6) & 3;
    }
    out[s] = static_cast<int8_t>((lo4 | (hi2 << 4)) - 32);
  }
}

}  // namespace hearth::tensor::blocks
