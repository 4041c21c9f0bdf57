// AVX2 + FMA + F16C kernels (this file is compiled with -mavx2 -mfma -mf16c).
#define HEARTH_SIMD_AVX512 0
#define HEARTH_SIMD_TABLE Avx2Kernels
#include "tensor/dot_simd.inc"
