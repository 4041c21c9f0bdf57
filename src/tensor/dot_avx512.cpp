// Temporary: the avx512 table reuses the scalar kernels until the intrinsics land.
#include "tensor/kernels.h"

namespace hearth::tensor::internal {
const Kernels& Avx512Kernels() { return ScalarKernels(); }
}  // namespace hearth::tensor::internal
