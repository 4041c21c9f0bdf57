// AVX-512 (F, BW, VL, DQ, VNNI) kernels (this file is compiled with those -m flags).
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's avx512fintrin.h trips its own -Wuninitialized (the _mm512_undefined_* idiom).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define HEARTH_SIMD_AVX512 1
#define HEARTH_SIMD_TABLE Avx512Kernels
#include "tensor/dot_simd.inc"
