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
struct LayerKv {
  int capacity = 0;
  int row = 0;                     // values per cell
  std::vector<float> k32, v32;     // precise mode
  std::vector<uint16_t> k16, v16;  // default: F16, as llama.cpp
};

struct KvCache {
  bool f32 = false;
  std::vector<LayerKv> layers;  // indexed by layer; empty stores for KV-shared layers
  uint64_t bytes = 0;
};

// Attention (gemma4-model.md §3.6): `nr` query rows at positions pos_row0 .. pos_row0 + nr - 1
// over one layer's cache, written to attn [nr][nh * hd]. Row t sees the cached positions
// max(0, pos - window + 1) .. pos (window 0 = no limit). `partial` is scratch space.
// `non_causal`: every row also sees the later rows of the batch, up to pos_row0 + nr - 1 (media
// spans decoded without the causal rule, gemma4-multimodal.md §2.4); the window still bounds
// how far back a row sees.
void Attend(const LayerKv& cache, bool f32_cache, const float* q, int nr, int pos_row0, int nh,
            int nkv, int hd, int window, tensor::ThreadPool* pool, std::vector<float>& partial,
            float* attn, bool non_causal = false);

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
