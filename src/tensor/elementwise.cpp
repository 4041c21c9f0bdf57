// Elementwise kernels that the forward pass runs over whole rows.
#include <malloc.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <mutex>

#include "tensor/kernels.h"
#include "tensor/tensor.h"

namespace hearth::tensor {
namespace {

// exp(x) for x in [-87, 0], Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2, a degree-6
// polynomial for exp(r), and 2^n put into the exponent bits. Written without calls or branches
// so that the compiler vectorises the loops that use it.
inline float ExpNonPositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  const float fx = x * 1.44269504088896341f + 0.5f;
  int n = static_cast<int>(fx);             // truncates toward zero ...
  n -= static_cast<float>(n) > fx ? 1 : 0;  // ... so step down to the floor
  const float fn = static_cast<float>(n);
  const float r = (x - fn * 0.693359375f) - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * std::bit_cast<float>(static_cast<uint32_t>(n + 127) << 23);
}

// Cephes' tanhf: an odd polynomial below |x| = 0.625, (1 - e) / (1 + e) with e = exp(-2|x|)
// above. Both sides are computed and one is selected, which keeps the loop vectorisable.
inline float Tanh(float x) {
  const float ax = std::fabs(x);
  const float z = x * x;
  float small = -5.70498872745e-3f;
  small = small * z + 2.06390887954e-2f;
  small = small * z - 5.37397155531e-2f;
  small = small * z + 1.33314422036e-1f;
  small = small * z - 3.33332819422e-1f;
  small = small * z * ax + ax;
  const float e = ExpNonPositive(-2.0f * ax);
  const float large = (1.0f - e) / (1.0f + e);
  return std::copysign(ax < 0.625f ? small : large, x);  // odd function; keeps -0
}

}  // namespace

void SoftCap(float* x, int64_t n, float cap) {
  // std::tanh is a libm call per element: 262,144 per decoded token (the LM head's rows), about
  // 4 % of E2B's decode time on one thread.
  const float inv = 1.0f / cap;
  for (int64_t i = 0; i < n; ++i) x[i] = cap * Tanh(x[i] * inv);
}

void ExpShifted(float* x, int64_t n, float shift) {
  // The portable loop below is built for baseline x86-64 (4-wide SSE2); attention over thousands
  // of image patches spends a quarter of its time here, so the SIMD level's version is used.
  static const internal::ExpShiftedFn wide = internal::ActiveExpShifted();
  if (wide != nullptr) return wide(n, x, shift);
  for (int64_t i = 0; i < n; ++i) x[i] = ExpNonPositive(x[i] - shift);
}

void RetainLargeAllocations() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
  });
}

}  // namespace hearth::tensor
