// Internal: the low-rank update the forward pass adds after an adapted projection.
#pragma once

#include <cstdint>
#include <vector>

#include "model/adapters.h"
#include "tensor/tensor.h"

namespace hearth::model {

// Work buffers of ApplyLora, owned by a Context (grown on first use, then reused).
struct LoraScratch {
  std::vector<float> ax, bx;
};

// y[rows][n_out] += term.scale * B (A x) for every term; `expert` selects one matrix of an
// expert stack (-1 for a plain projection). Activations follow `precision` as the base
// projections do (fast: converted to the adapter tensor's dot format, as llama.cpp does).
void ApplyLora(const std::vector<LoraTerm>& terms, int expert, const float* x, int64_t rows,
               float* y, tensor::Precision precision, tensor::ThreadPool* pool,
               LoraScratch& scratch);

}  // namespace hearth::model
