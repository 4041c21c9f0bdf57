// Internal: the per-SIMD-level kernel tables the dispatcher chooses from.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hearth::tensor::blocks {
struct Q8Act;  // blocks.h
}  // namespace hearth::tensor::blocks

namespace hearth::tensor::internal {

// Dot product of one weight row (n elements of the weight type) with one activation row already
// converted to the weight type's vec-dot type (VecDotType).
using VecDotFn = float (*)(int64_t n, const void* w, const void* x);
// Plain F32 dot product (the precise path after dequantization).
using DotF32Fn = float (*)(int64_t n, const float* a, const float* b);

// The same dot product for 4 activation rows at x, x + x_stride, ... (out[0..3]). Each result is
// bit-identical to VecDotFn's for that row, so batched and token-by-token runs agree exactly;
// the weight blocks are decoded once for the 4 rows.
using VecDot4Fn = void (*)(int64_t n, const void* w, const void* x, size_t x_stride, float* out);

// 4 weight rows (w, w + w_stride, ...) against 4 activation rows: out[r * 4 + t], each
// bit-identical to VecDotFn's (r, t) result. A register-blocked tile for batched float weights.
using VecDot4x4Fn = void (*)(int64_t n, const void* w, size_t w_stride, const void* x,
                             size_t x_stride, float* out);

// Optional: a kernel's own layout of one activation row, made from the row in the vec-dot type
// (bytes(n) long). When set, MatMul hands vec_dot / vec_dot4 the prepared rows instead.
struct ActPrep {
  size_t (*bytes)(int64_t n);
  void (*run)(int64_t n, const void* xq, void* out);
};

// Q4_0 in Layout::kQ4_0x16 (blocks.h): one group of 16 rows (nb blocks) against T activation
// rows of Q8Act blocks (`acts`, row t at acts + t * act_stride); writes y[t * y_stride + r] for
// r < 16. The 1- and 4-row kernels compute each (row, token) identically, and the scalar kernel
// does the same arithmetic, so every level and batch size gives bit-identical results.
using GroupQ4_0x16Fn = void (*)(int64_t nb, const uint8_t* group, const blocks::Q8Act* acts,
                                int64_t act_stride, float* y, int64_t y_stride);

constexpr int kMaxTypeId = 32;

// A plain aggregate (value-initialise it with {}): no constructor that the SIMD files could emit.
struct Kernels {
  VecDotFn vec_dot[kMaxTypeId];
  VecDot4Fn vec_dot4[kMaxTypeId];       // optional (null: MatMul calls vec_dot per row)
  VecDot4x4Fn vec_dot4x4[kMaxTypeId];   // optional (null: vec_dot4 per weight row)
  ActPrep act_prep[kMaxTypeId];         // optional (null run: the plain vec-dot type)
  GroupQ4_0x16Fn q4_0x16_1, q4_0x16_4;  // T = 1 and T = 4
  DotF32Fn dot_f32;
  float (*dot_f32_f16)(int64_t n, const float* a, const uint16_t* b);
  void (*axpy_f16)(int64_t n, float alpha, const uint16_t* x, float* y);
  void (*dot_f32_f16_heads)(int64_t n, const float* q, int heads, const uint16_t* k, float* out);
  void (*axpy_f16_heads)(int64_t n, const float* alpha, int heads, const uint16_t* x, float* y);
  // Optional: AxpyKvHeads (tensor.h) for a Q8_0 / Q4_0 row (null: the portable loop).
  void (*axpy_kv_heads[kMaxTypeId])(int64_t n, const float* alpha, int heads, const void* x,
                                    float* y);
  void (*f32_to_f16)(int64_t n, const float* src, uint16_t* dst);
  void (*f16_to_f32)(int64_t n, const uint16_t* src, float* dst);
  // Optional: ExpShifted (tensor.h) in wide registers, the same operations as the portable loop.
  void (*exp_shifted)(int64_t n, float* x, float shift);
  // Optional: GemmF32 (tensor.h) with a register-tiled micro-kernel (null: the portable loop).
  void (*gemm_f32)(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                   int64_t ldb, float* c, int64_t ldc);
};

const Kernels& ScalarKernels();
using ExpShiftedFn = void (*)(int64_t n, float* x, float shift);
ExpShiftedFn ActiveExpShifted();
// Defined in the files compiled for those instruction sets; call only when the CPU has them.
const Kernels& Avx2Kernels();
const Kernels& Avx512Kernels();

}  // namespace hearth::tensor::internal
