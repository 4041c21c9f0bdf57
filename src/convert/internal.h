// Helpers shared by quantize.cpp and make_model.cpp (not part of the public API).
#pragma once

#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace hearth::convert {

// The block index N of a "blk.N.*" tensor name, or -1.
int BlockIndex(const std::string& name);
// Re-encodes `rows` rows of `row_length` elements from one type to another, in parallel.
void ConvertRows(uint32_t from_type, const uint8_t* src, uint32_t to_type, uint8_t* dst,
                 int64_t row_length, int64_t rows, tensor::ThreadPool& pool);
// 0 → the number of hardware threads.
int ResolveThreads(int threads);

}  // namespace hearth::convert
