// Portable reference kernels of the fast path: integer dot products per block in the order of
// llama.cpp's ggml_vec_dot_*_generic (integer sums are exact, so the SIMD kernels differ from
// these only by the order of float additions).
#include <cmath>
#include <cstring>
#include <type_traits>

#include "tensor/blocks.h"
#include "tensor/kernels.h"
#include "tensor/tensor.h"

namespace hearth::tensor::internal {

using namespace blocks;  // NOLINT: internal block layouts

namespace {

float DotF32(int64_t n, const float* a, const float* b) {
  double sum = 0;  // ggml's generic path accumulates in ggml_float (double)
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(a[i] * b[i]);
  return static_cast<float>(sum);
}

float VecDotF32(int64_t n, const void* w, const void* x) {
  return DotF32(n, static_cast<const float*>(w), static_cast<const float*>(x));
}

float VecDotF16(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const uint16_t*>(x);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(H2F(a[i]) * H2F(b[i]));
  return static_cast<float>(sum);
}

float VecDotBF16(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const uint16_t*>(x);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(B2F(a[i]) * B2F(b[i]));
  return static_cast<float>(sum);
}

float VecDotQ4_0(int64_t n, const void* w, const void* xv) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(xv);
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK; ++ib) {
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int v0 = (x[ib].qs[j] & 0x0F) - 8;
      const int v1 = (x[ib].qs[j] >> 4) - 8;
      sumi0 += v0 * y[ib].qs[j];
      sumi1 += v1 * y[ib].qs[j + kQK / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += static_cast<float>(sumi) * H2F(x[ib].d) * H2F(y[ib].d);
  }
  return sumf;
}

float VecDotQ4_1(int64_t n, const void* w, const void* xv) {
  const auto* x = static_cast<const BlockQ4_1*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(xv);
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK; ++ib) {
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int v0 = x[ib].qs[j] & 0x0F;
      const int v1 = x[ib].qs[j] >> 4;
      sumi0 += v0 * y[ib].qs[j];
      sumi1 += v1 * y[ib].qs[j + kQK / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (H2F(x[ib].d) * H2F(y[ib].d)) * static_cast<float>(sumi) + H2F(x[ib].m) * H2F(y[ib].s);
  }
  return sumf;
}

float VecDotQ5_0(int64_t n, const void* w, const void* xv) {
  const auto* x = static_cast<const BlockQ5_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(xv);
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK; ++ib) {
    uint32_t qh;
    std::memcpy(&qh, x[ib].qh, sizeof(qh));
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t xh_0 = static_cast<uint8_t>(((qh & (1u << (j + 0))) >> (j + 0)) << 4);
      const uint8_t xh_1 = static_cast<uint8_t>((qh & (1u << (j + 16))) >> (j + 12));
      const int x0 = static_cast<int8_t>(((x[ib].qs[j] & 0x0F) | xh_0) - 16);
      const int x1 = static_cast<int8_t>(((x[ib].qs[j] >> 4) | xh_1) - 16);
      sumi0 += x0 * y[ib].qs[j];
      sumi1 += x1 * y[ib].qs[j + kQK / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (H2F(x[ib].d) * H2F(y[ib].d)) * static_cast<float>(sumi);
  }
  return sumf;
}

float VecDotQ5_1(int64_t n, const void* w, const void* xv) {
  const auto* x = static_cast<const BlockQ5_1*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(xv);
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK; ++ib) {
    uint32_t qh;
    std::memcpy(&qh, x[ib].qh, sizeof(qh));
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t xh_0 = static_cast<uint8_t>(((qh >> (j + 0)) << 4) & 0x10);
      const uint8_t xh_1 = static_cast<uint8_t>(((qh >> (j + 12))) & 0x10);
      const int x0 = (x[ib].qs[j] & 0xF) | xh_0;
      const int x1 = (x[ib].qs[j] >> 4) | xh_1;
      sumi0 += x0 * y[ib].qs[j];
      sumi1 += x1 * y[ib].qs[j + kQK / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (H2F(x[ib].d) * H2F(y[ib].d)) * static_cast<float>(sumi) + H2F(x[ib].m) * H2F(y[ib].s);
  }
  return sumf;
}

float VecDotQ8_0(int64_t n, const void* w, const void* xv) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(xv);
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK; ++ib) {
    int sumi = 0;
    for (int j = 0; j < kQK; ++j) sumi += x[ib].qs[j] * y[ib].qs[j];
    sumf += static_cast<float>(sumi) * (H2F(x[ib].d) * H2F(y[ib].d));
  }
  return sumf;
}

float VecDotIQ4NL(int64_t n, const void* w, const void* xv) {
  const auto* x = static_cast<const BlockIQ4NL*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(xv);
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK; ++ib) {
    const float d = H2F(y[ib].d) * H2F(x[ib].d);
    int sumi1 = 0, sumi2 = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      sumi1 += y[ib].qs[j + 0] * kIq4nlValues[x[ib].qs[j] & 0xf];
      sumi2 += y[ib].qs[j + kQK / 2] * kIq4nlValues[x[ib].qs[j] >> 4];
    }
    sumf += d * static_cast<float>(sumi1 + sumi2);
  }
  return sumf;
}

float VecDotQ2K(int64_t n, const void* w, const void* xv) {
  const auto* x = static_cast<const BlockQ2K*>(w);
  const auto* y = static_cast<const BlockQ8K*>(xv);
  float sumf = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const uint8_t* q2 = x[i].qs;
    const int8_t* q8 = y[i].qs;
    const uint8_t* sc = x[i].scales;
    int summs = 0;
    for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (sc[j] >> 4);
    const float dall = y[i].d * H2F(x[i].d);
    const float dmin = y[i].d * H2F(x[i].dmin);
    int isum = 0;
    int is = 0;
    for (int k = 0; k < kQKK / 128; ++k) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        int d = sc[is++] & 0xF;
        int isuml = 0;
        for (int l = 0; l < 16; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
        isum += d * isuml;
        d = sc[is++] & 0xF;
        isuml = 0;
        for (int l = 16; l < 32; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
        isum += d * isuml;
        shift += 2;
        q8 += 32;
      }
      q2 += 32;
    }
    sumf += dall * static_cast<float>(isum) - dmin * static_cast<float>(summs);
  }
  return sumf;
}

float VecDotQ3K(int64_t n, const void* w, const void* xv) {
  const auto* x = static_cast<const BlockQ3K*>(w);
  const auto* y = static_cast<const BlockQ8K*>(xv);
  float sumf = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int8_t scales[16];
    Q3KScales(x[i].scales, scales);
    const uint8_t* q3 = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    const int8_t* q8 = y[i].qs;
    int isum = 0;
    int is = 0;
    uint8_t m = 1;
    for (int k = 0; k < kQKK / 128; ++k) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        for (int half = 0; half < 2; ++half) {
          int isuml = 0;
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            const int q = ((q3[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
            isuml += q8[l] * q;
          }
          isum += scales[is++] * isuml;
        }
        shift += 2;
        m = static_cast<uint8_t>(m << 1);
        q8 += 32;
      }
      q3 += 32;
    }
    const float d = H2F(x[i].d) * y[i].d;
    sumf += d * static_cast<float>(isum);
  }
  return sumf;
}

// Q4_K and Q5_K share everything but the 5th bit.
template <bool kFive>
float VecDotQ45K(int64_t n, const void* w, const void* xv) {
  using Block = std::conditional_t<kFive, BlockQ5K, BlockQ4K>;
  const auto* x = static_cast<const Block*>(w);
  const auto* y = static_cast<const BlockQ8K*>(xv);
  float sumf = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) ScaleMinK4(j, x[i].scales, &sc[j], &mn[j]);
    int summs = 0;
    for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * mn[j / 2];
    const uint8_t* q4 = x[i].qs;
    const int8_t* q8 = y[i].qs;
    int isum = 0;
    for (int j = 0; j < 4; ++j) {
      int s_lo = 0, s_hi = 0;
      for (int l = 0; l < 32; ++l) {
        int lo = q4[l] & 0xF;
        int hi = q4[l] >> 4;
        if constexpr (kFive) {
          lo += (x[i].qh[l] & (1u << (2 * j))) ? 16 : 0;
          hi += (x[i].qh[l] & (2u << (2 * j))) ? 16 : 0;
        }
        s_lo += lo * q8[l];
        s_hi += hi * q8[l + 32];
      }
      isum += sc[2 * j] * s_lo + sc[2 * j + 1] * s_hi;
      q4 += 32;
      q8 += 64;
    }
    const float d = H2F(x[i].d) * y[i].d;
    const float dmin = H2F(x[i].dmin) * y[i].d;
    sumf += d * static_cast<float>(isum) - dmin * static_cast<float>(summs);
  }
  return sumf;
}

float VecDotQ6K(int64_t n, const void* w, const void* xv) {
  const auto* x = static_cast<const BlockQ6K*>(w);
  const auto* y = static_cast<const BlockQ8K*>(xv);
  float sumf = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int8_t q[kQKK];
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    for (int h = 0; h < 2; ++h) {
      int8_t* a = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        a[l + 0] = static_cast<int8_t>(((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        a[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        a[l + 64] = static_cast<int8_t>(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        a[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
      ql += 64;
      qh += 32;
    }
    int isum = 0;
    for (int s = 0; s < 16; ++s) {
      int part = 0;
      for (int l = 0; l < 16; ++l) part += q[16 * s + l] * y[i].qs[16 * s + l];
      isum += x[i].scales[s] * part;
    }
    const float d = H2F(x[i].d) * y[i].d;
    sumf += d * static_cast<float>(isum);
  }
  return sumf;
}

float VecDotIQ4XS(int64_t n, const void* w, const void* xv) {
  const auto* x = static_cast<const BlockIQ4XS*>(w);
  const auto* y = static_cast<const BlockQ8K*>(xv);
  float sumf = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const uint8_t* qs = x[i].qs;
    const int8_t* q8 = y[i].qs;
    int isum = 0;
    for (int ib = 0; ib < kQKK / 32; ++ib) {
      const int ls =
          ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((x[i].scales_h >> 2 * ib) & 3) << 4);
      int sumi1 = 0, sumi2 = 0;
      for (int j = 0; j < 16; ++j) {
        sumi1 += q8[j + 0] * kIq4nlValues[qs[j] & 0xf];
        sumi2 += q8[j + 16] * kIq4nlValues[qs[j] >> 4];
      }
      isum += (ls - 32) * (sumi1 + sumi2);
      qs += 16;
      q8 += 32;
    }
    const float d = H2F(x[i].d) * y[i].d;
    sumf += d * static_cast<float>(isum);
  }
  return sumf;
}

float DotF32F16(int64_t n, const float* a, const uint16_t* b) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(a[i] * H2F(b[i]));
  return static_cast<float>(sum);
}

void AxpyF16(int64_t n, float alpha, const uint16_t* x, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * H2F(x[i]);
}

void DotF32F16Heads(int64_t n, const float* q, int heads, const uint16_t* k, float* out) {
  for (int h = 0; h < heads; ++h) {
    float sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += q[h * n + i] * H2F(k[i]);
    out[h] = sum;
  }
}

void AxpyF16Heads(int64_t n, const float* alpha, int heads, const uint16_t* x, float* y) {
  for (int h = 0; h < heads; ++h) AxpyF16(n, alpha[h], x, y + h * n);
}

void F32ToF16(int64_t n, const float* src, uint16_t* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = F2H(src[i]);
}

void F16ToF32(int64_t n, const uint16_t* src, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = H2F(src[i]);
}

// Layout::kQ4_0x16 (blocks.h), any T. Per (row, block): the exact integer dot of the unsigned
// nibbles with the activations, minus the offset, then one fused multiply-add of d_row * d_act;
// the AVX-512 kernel does the same operations in the same order (bit-identical results).
template <int T>
void GroupQ4_0x16(int64_t nb, const uint8_t* group, const Q8Act* acts, int64_t act_stride, float* y,
                  int64_t y_stride) {
  for (int t = 0; t < T; ++t) {
    const Q8Act* a = acts + t * act_stride;
    for (int r = 0; r < kQ4x16Rows; ++r) {
      float acc = 0;
      for (int64_t ib = 0; ib < nb; ++ib) {
        const uint8_t* nib = group + Q4x16NibblesAt(nb, ib);
        const auto* scales = reinterpret_cast<const uint16_t*>(group + Q4x16ScalesAt(ib));
        int32_t sum = 0;
        for (int c = 0; c < 4; ++c) {
          for (int i = 0; i < 4; ++i) {
            const uint8_t q = nib[c * 64 + r * 4 + i];
            sum += (q & 0x0F) * a[ib].qs[4 * c + i] + (q >> 4) * a[ib].qs[16 + 4 * c + i];
          }
        }
        const float scale = H2F(scales[r]) * a[ib].d;
        acc = std::fma(scale, static_cast<float>(sum - a[ib].corr), acc);
      }
      y[t * y_stride + r] = acc;
    }
  }
}

Kernels MakeScalar() {
  Kernels k{};
  k.dot_f32 = DotF32;
  k.dot_f32_f16 = DotF32F16;
  k.axpy_f16 = AxpyF16;
  k.dot_f32_f16_heads = DotF32F16Heads;
  k.axpy_f16_heads = AxpyF16Heads;
  k.f32_to_f16 = F32ToF16;
  k.f16_to_f32 = F16ToF32;
  k.vec_dot[kF32] = VecDotF32;
  k.vec_dot[kF16] = VecDotF16;
  k.vec_dot[kBF16] = VecDotBF16;
  k.vec_dot[kQ4_0] = VecDotQ4_0;
  k.vec_dot[kQ4_1] = VecDotQ4_1;
  k.vec_dot[kQ5_0] = VecDotQ5_0;
  k.vec_dot[kQ5_1] = VecDotQ5_1;
  k.vec_dot[kQ8_0] = VecDotQ8_0;
  k.vec_dot[kIQ4_NL] = VecDotIQ4NL;
  k.vec_dot[kQ2_K] = VecDotQ2K;
  k.vec_dot[kQ3_K] = VecDotQ3K;
  k.vec_dot[kQ4_K] = VecDotQ45K<false>;
  k.vec_dot[kQ5_K] = VecDotQ45K<true>;
  k.vec_dot[kQ6_K] = VecDotQ6K;
  k.vec_dot[kIQ4_XS] = VecDotIQ4XS;
  k.q4_0x16_1 = GroupQ4_0x16<1>;
  k.q4_0x16_4 = GroupQ4_0x16<4>;
  return k;
}

}  // namespace

const Kernels& ScalarKernels() {
  static const Kernels kernels = MakeScalar();
  return kernels;
}

}  // namespace hearth::tensor::internal
