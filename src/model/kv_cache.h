// Internal to src/model/: the KV cache layout, the attention kernel over it and the elementwise
// stages, shared by the forward pass (forward.cpp) and the MTP drafter (drafter.cpp), whose
// attention layers read the target's cache (../shared/spec/gemma4-mtp.md §4.2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/model.h"
#include "tensor/tensor.h"

namespace hearth::model {

struct Context::Pool {
  explicit Pool(int n) : pool(n) {}
  tensor::ThreadPool pool;
};

// One K and one V store per KV-owning layer, each `capacity` cells of n_head_kv * head_dim
// values. Position p lives in cell p % capacity: full layers hold the whole context (capacity =
// n_ctx, no wrap), sliding layers a ring of W - 1 + n_ubatch cells — enough that writing a batch
// never overwrites a key some query of the same batch still sees (§4.4). KV-shared layers have
// no store of their own and read their source layer's.
// Cells are stored as the types say: F16 (default, as llama.cpp), F32 (precise mode), or Q8_0 /
// Q4_0 blocks (--cache-type; each head's hd values are whole blocks, so head g of a cell starts
// at byte g * KvRowBytes(type, hd)).
struct LayerKv {
  int capacity = 0;
  int row = 0;  // values per cell
  KvType k_type = KvType::kF16, v_type = KvType::kF16;
  size_t k_row_bytes = 0, v_row_bytes = 0;  // bytes per cell
  std::vector<uint8_t> k, v;                // capacity cells each

  uint8_t* k_cell(int cell) { return k.data() + static_cast<size_t>(cell) * k_row_bytes; }
  uint8_t* v_cell(int cell) { return v.data() + static_cast<size_t>(cell) * v_row_bytes; }
  const uint8_t* k_cell(int cell) const {
    return k.data() + static_cast<size_t>(cell) * k_row_bytes;
  }
  const uint8_t* v_cell(int cell) const {
    return v.data() + static_cast<size_t>(cell) * v_row_bytes;
  }
};

struct KvCache {
  KvType k_type = KvType::kF16, v_type = KvType::kF16;
  std::vector<LayerKv> layers;  // indexed by layer; empty stores for KV-shared layers
  uint64_t bytes = 0;
};

// Attention (gemma4-model.md §3.6): `nr` query rows at positions pos_row0 .. pos_row0 + nr - 1
// over one layer's cache, written to attn [nr][nh * hd]. Row t sees the cached positions
// max(0, pos - window + 1) .. pos (window 0 = no limit). `partial` is scratch space.
// `non_causal`: every row also sees the later rows of the batch, up to pos_row0 + nr - 1 (media
// spans decoded without the causal rule, gemma4-multimodal.md §2.4); the window still bounds
// how far back a row sees.
// The cache's types decide the arithmetic: F32 exactly, F16 with q rounded to F16 (as
// llama.cpp), Q8_0 / Q4_0 K with q quantized to Q8_0 once per head and integer dot products, and
// Q8_0 / Q4_0 V dequantized per row (as ggml's CPU flash attention).
void Attend(const LayerKv& cache, const float* q, int nr, int pos_row0, int nh, int nkv, int hd,
            int window, tensor::ThreadPool* pool, std::vector<float>& partial, float* attn,
            bool non_causal = false);

// The forward pass's elementwise stages, used by the drafter as well so both compute the same.
// y = x / sqrt(mean(x^2) + eps) * w (w may be null); y may be x.
void RmsNorm(const float* x, const float* w, int n, float eps, float* y);
// g[i] = gelu_tanh(g[i]) * u[i] (u may be null): exact in precise mode, ggml's fp16 table else.
void GeGlu(float* g, const float* u, size_t n, bool precise);
// NEOX rotation of one head of `rot` rotated dims with cos/sin tables of rot/2 entries.
void Rope(float* x, int rot, const float* cs, const float* sn);
// cos/sin tables for positions pos0 .. pos0 + n - 1 ([n][rot/2]); freq_factors may be null.
void RopeTables(int n, int pos0, int rot, float base, const float* freq_factors, float* cs,
                float* sn);

}  // namespace hearth::model
