// Weight block formats and the kernels that compute with them: dequantization (scalar reference
// for every type), dot products and matrix multiplication with runtime CPU dispatch, and the
// persistent thread pool. Knows nothing of GGUF files or models: a weight is a pointer, a type id
// (ggml numbering, see gguf::TensorType) and a shape.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace hearth::tensor {

// ggml type ids (same numbering as gguf::TensorType; duplicated as plain ints so this layer does
// not depend on the container).
enum TypeId : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ4_NL = 20,
  kIQ4_XS = 23,
  kBF16 = 30,
};

// True for the weight types this layer can compute with.
bool IsSupportedType(uint32_t type);
// Elements per block and bytes per block; 0 for unsupported types.
int64_t BlockSize(uint32_t type);
size_t BlockBytes(uint32_t type);
// Bytes of one row of `n` elements (n must be a multiple of BlockSize(type)).
size_t RowBytes(uint32_t type, int64_t n);

// IEEE half and bfloat16 conversions (round to nearest even).
float Fp16ToFp32(uint16_t h);
uint16_t Fp32ToFp16(float f);
float Bf16ToFp32(uint16_t b);
uint16_t Fp32ToBf16(float f);

// The scalar reference dequantizer: `n` elements (whole blocks) of `type` at `src` into `dst`.
// Exactly GGML's dequantize_row_* (../shared/spec/gemma4-model.md §5.1).
void DequantizeRow(uint32_t type, const void* src, float* dst, int64_t n);

// Reference quantizers (GGML's quantize_row_*_ref), for the types hearth writes and for the
// activation formats used by the fast dot products.
void QuantizeRow(uint32_t type, const float* src, void* dst, int64_t n);
// True when QuantizeRow supports `type` (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1,
// Q8_K, Q4_K, Q5_K, Q6_K).
bool HasQuantizer(uint32_t type);
// The activation format of the fast dot product for weights of `type` (kQ8_0, kQ8_1, kQ8_K,
// kF16, kBF16 or kF32).
uint32_t VecDotType(uint32_t type);

// Vector helpers for attention over an F16 KV cache, dispatched like MatMul (ActiveSimdLevel).
// Results equal the scalar loops up to float summation order.
float DotF32(const float* a, const float* b, int64_t n);            // sum a[i] * b[i]
float DotF32F16(const float* a, const uint16_t* b, int64_t n);      // sum a[i] * half(b[i])
float DotF16(const uint16_t* a, const uint16_t* b, int64_t n);      // sum half(a[i]) * half(b[i])
void AxpyF16(float alpha, const uint16_t* x, float* y, int64_t n);  // y[i] += alpha * half(x[i])
// Attention with grouped query heads: `heads` rows of q / y ([heads][n]) against one F16 K or V
// row, which is converted once for all of them.
//   DotF32F16Heads: out[h] = sum_i q[h][i] * half(k[i])
//   AxpyF16Heads:   y[h][i] += alpha[h] * half(x[i])
void DotF32F16Heads(const float* q, int heads, const uint16_t* k, int64_t n, float* out);
void AxpyF16Heads(const float* alpha, int heads, const uint16_t* x, float* y, int64_t n);
void Fp32ToFp16Row(const float* src, uint16_t* dst, int64_t n);  // round to nearest even
// Attention over a quantized KV cache (Q8_0 or Q4_0 rows in ggml's block layouts), as ggml's
// CPU flash attention computes it: each query head is quantized once to the K type's vec-dot
// format (Q8_0) and meets every K row in the integer dot product of the weight kernels; V rows are
// dequantized to F32 and accumulated. `n` is a multiple of 32.
//   KvQueryBytes(type, n):                 bytes of one prepared query head of n values
//   PrepareKvQuery(type, q, heads, n, out): [heads][n] F32 into [heads][KvQueryBytes] at out
//   DotKvHeads(type, k, q, heads, n, out):  out[h] = k · q[h], k one row of `type`
//   AxpyKvHeads(type, alpha, heads, x, y, n): y[h][i] += alpha[h] * dequant(x)[i]
size_t KvQueryBytes(uint32_t type, int64_t n);
void PrepareKvQuery(uint32_t type, const float* q, int heads, int64_t n, void* out);
void DotKvHeads(uint32_t type, const void* k, const void* q, int heads, int64_t n, float* out);
void AxpyKvHeads(uint32_t type, const float* alpha, int heads, const void* x, float* y, int64_t n);
void Fp16ToFp32Row(const uint16_t* src, float* dst, int64_t n);
// x[i] = cap * tanh(x[i] / cap) (Gemma's logit soft-cap), within a few ulp of std::tanh and
// vectorised.
void SoftCap(float* x, int64_t n, float cap);
// x[i] = exp(x[i] - shift) for x[i] <= shift (softmax after subtracting the maximum), within a
// few ulp of std::exp and vectorised; results below exp(-87) are not flushed to zero.
void ExpShifted(float* x, int64_t n, float shift);
// C = A · B for row-major F32 matrices: A is m × k (row stride lda), B is k × n (ldb), C is m × n
// (ldc, overwritten). Single-threaded; for the media encoders' attention (Q·Kᵀ with K stored
// transposed, P·V), where a dot product per output would spend as much on horizontal sums as on
// multiplies. The summation runs over k in order for every output at every SIMD level.
void GemmF32(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
             int64_t ldb, float* c, int64_t ldc);

// Which SIMD implementation the dispatcher picked. HEARTH_SIMD=scalar|avx2|avx512 in the
// environment forces a level (never above what the CPU supports), so tests cover every path.
enum class SimdLevel { kScalar, kAvx2, kAvx512 };
SimdLevel ActiveSimdLevel();
const char* SimdLevelName(SimdLevel level);
// Whether this CPU (and build) can run `level`; kScalar always can.
bool SimdLevelAvailable(SimdLevel level);

// How activations meet weights in a dot product:
//  kPrecise — activations stay F32, weights dequantized exactly (the reference mode);
//  kFast    — as llama.cpp's CPU backend: activations are converted to the weight type's
//             "vec_dot type" (Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1 for Q4_1/Q5_1, Q8_K for the
//             K-quants and IQ4_XS, F16 for F16, BF16 for BF16, F32 for F32) and integer dot
//             products are used.
enum class Precision { kFast, kPrecise };

// For the media encoders, whose layers allocate and free activation buffers of megabytes (100 MB
// at 1120 image tokens) hundreds of times per input: glibc by default returns such blocks to the
// kernel on free, so each new one page-faults its memory in again (a fifth of the image encode
// time on a 2-core VM). This keeps blocks up to 256 MiB in the heap and trims it only beyond
// 512 MiB, for the rest of the process. Idempotent and thread-safe.
void RetainLargeAllocations();

// A persistent pool of worker threads (the caller's thread takes part too). With more threads
// than CPUs, waiting threads yield their CPU instead of spinning on it.
class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const;
  // Calls fn(begin, end) over [0, n) split into contiguous chunks, a few per thread, which the
  // threads claim as they become free (so one descheduled thread does not hold up the rest);
  // returns when all are done. Which thread runs which chunk, and where the chunks split, vary
  // from call to call: fn must give each index the same result whatever range it comes in. The
  // first chunk's exception is rethrown on the calling thread.
  void ParallelFor(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// How a Matrix's rows lie in memory.
//  kRows    — row after row, each RowBytes(type, cols) bytes: the GGUF layout.
//  kQ4_0x16 — Q4_0 rows interleaved 16 at a time, so that one load holds 16 rows' scales and the
//             AVX-512 kernel computes 16 rows per pass (llama.cpp repacks Q4_0 the same way, 8
//             rows at a time). Built once at load by Repack; the same size as kRows.
enum class Layout : uint8_t { kRows, kQ4_0x16 };

// A weight matrix: `rows` rows of `cols` elements of `type`, laid out as `layout` says.
struct Matrix {
  uint32_t type = kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  Layout layout = Layout::kRows;
};

// The layout MatMul runs the row-major `w` fastest in at the active SIMD level: kRows (keep it
// as it is) or an interleaved one worth building once at load. HEARTH_REPACK=0 in the
// environment always answers kRows (for comparisons).
Layout PreferredLayout(const Matrix& w);
// Whether `layout` can hold `w` (its type and shape fit).
bool LayoutFits(const Matrix& w, Layout layout);
// Bytes of `w` in its layout.
size_t MatrixBytes(const Matrix& w);
// Copies the row-major `w` into `dst` (MatrixBytes(w) bytes; 64-byte aligned reads fastest) in
// `layout` and returns the matrix that reads it there. Throws Error(kInvalidInput) when the
// layout does not fit. Rows [row_begin, row_end) only, when given (to split the work); they must
// be multiples of 16.
Matrix Repack(const Matrix& w, Layout layout, void* dst);
Matrix Repack(const Matrix& w, Layout layout, void* dst, int64_t row_begin, int64_t row_end);
// Row `row` of `w` (any layout) dequantized to F32 (cols values).
void DequantizeMatrixRow(const Matrix& w, int64_t row, float* dst);

// y[t][r] = sum_c w[r][c] * x[t][c] for t < n_tokens; x is [n_tokens][w.cols] F32 and y is
// [n_tokens][w.rows] F32. Batched prefill (n_tokens > 1) uses a blocked kernel that reads each
// weight row once per block of tokens. `pool` may be null (single-threaded).
void MatMul(const Matrix& w, const float* x, int64_t n_tokens, float* y, Precision precision,
            ThreadPool* pool);
// MatMul for a large batch with activations kept in F32 (Precision::kPrecise's arithmetic, in a
// different summation order): each block of 64 weight rows is dequantized to F32 once and
// multiplied with all n_tokens rows through GemmF32. For the media encoders (thousands of patches
// or frames per input), where it beats the dot-product kernels by amortising the weight
// conversion; the text model keeps MatMul, whose batched and single-token results agree bit for
// bit.
void MatMulBatchedF32(const Matrix& w, const float* x, int64_t n_tokens, float* y,
                      ThreadPool* pool);
// The media encoders' linears, over all patches or frames of one input: MatMulBatchedF32 for
// float weights (F32, F16, BF16; F32 activations, where llama.cpp rounds them to F16 for an F16
// tower: a difference well inside the multimodal README's tolerances) and at least 16 rows;
// otherwise MatMul's fast path (quantized towers keep llama.cpp's 8-bit activations, which match
// its references about 4× more closely than F32 ones).
void MatMulEncoder(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool);
// MatMul at an explicit SIMD level (tests and benchmarks compare the levels); throws
// Error(kInvalidInput) when `level` is not available on this CPU.
void MatMulAt(SimdLevel level, const Matrix& w, const float* x, int64_t n_tokens, float* y,
              Precision precision, ThreadPool* pool);

}  // namespace hearth::tensor
