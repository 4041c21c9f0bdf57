// Internal: the model's tensors as typed views into the memory-mapped file (no copies), bound and
// shape-checked against the configuration (../shared/spec/gemma4-model.md §2.3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "model/config.h"
#include "tensor/tensor.h"

namespace hearth::gguf {
class File;
}

namespace hearth::model {

// A linear layer y = W x, W stored row-major [out][in], with the optional per-tensor scale that
// some conversions carry (`<name>.scale`, one value, multiplies the result).
struct Linear {
  tensor::Matrix w;
  float scale = 1.0f;
  bool present() const { return w.data != nullptr; }
};

// A stack of expert matrices, GGUF ne [cols, rows, n_expert]: expert e is a [rows][cols] matrix.
struct Experts {
  uint32_t type = tensor::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const uint8_t* data = nullptr;
  size_t expert_bytes = 0;
  const float* scale = nullptr;  // `<name>.scale`, [n_expert], optional
  bool present() const { return data != nullptr; }
  tensor::Matrix Expert(int e) const {
    return tensor::Matrix{type, rows, cols, data + static_cast<size_t>(e) * expert_bytes};
  }
};

struct LayerWeights {
  const float* attn_norm = nullptr;
  Linear attn_q, attn_k, attn_v;  // attn_v absent on k=v layers: V is the raw K projection
  Linear attn_qkv;                // fused form (replaces q/k/v when present)
  const float* attn_q_norm = nullptr;
  const float* attn_k_norm = nullptr;
  Linear attn_output;
  const float* post_attention_norm = nullptr;

  const float* ffn_norm = nullptr;
  Linear ffn_gate, ffn_up, ffn_down;  // dense MLP (the shared MLP in MoE layers)
  const float* post_ffw_norm = nullptr;

  // MoE (every layer of a MoE model).
  Linear ffn_gate_inp;                     // router [n_expert][H]
  const float* ffn_gate_inp_scale = nullptr;  // [H]
  const float* pre_ffw_norm_2 = nullptr;
  const float* post_ffw_norm_1 = nullptr;
  const float* post_ffw_norm_2 = nullptr;
  Experts gate_up_exps;  // fused: rows 0..Fe-1 gate, Fe..2Fe-1 up
  Experts gate_exps, up_exps;  // split form
  Experts down_exps;     // its scale is the per-expert output scale

  // Per-layer embeddings.
  Linear inp_gate;  // [P][H]
  Linear proj;      // [H][P]
  const float* post_norm = nullptr;

  float output_scale = 1.0f;  // layer_output_scale
};

struct Weights {
  tensor::Matrix token_embd;  // [V][H]
  tensor::Matrix output;      // LM head: output.weight, or token_embd (tied)
  const float* output_norm = nullptr;
  const float* rope_freqs = nullptr;  // [rope_dim_full / 2], full layers only; null = none
  tensor::Matrix per_layer_token_embd;  // [V][L*P]
  Linear per_layer_model_proj;          // [L*P][H]
  const float* per_layer_proj_norm = nullptr;  // [P]
  std::vector<LayerWeights> layers;
};

// Interleaved copies of the matrices that MatMul runs faster in another layout than the file's
// (tensor::PreferredLayout: Q4_0 on AVX-512), made once at load in one anonymous mapping that
// this owns. The file's pages of those matrices are dropped from the resident set afterwards, so
// the copy costs no more memory than the mapped original would.
class RepackedWeights {
 public:
  RepackedWeights(void* base, size_t bytes) : base_(base), bytes_(bytes) {}
  ~RepackedWeights();
  RepackedWeights(const RepackedWeights&) = delete;
  RepackedWeights& operator=(const RepackedWeights&) = delete;
  size_t bytes() const { return bytes_; }

 private:
  void* base_;
  size_t bytes_;
};

// Repacks the layer matrices of `w` that have a faster layout and points them at the copies.
// Matrices read row by row (embeddings, the tied LM head) and the unused K/V projections of
// KV-shared layers stay as they are. Returns null when nothing needs repacking. Throws
// Error(kResource) when the memory cannot be had.
std::unique_ptr<RepackedWeights> RepackWeights(Weights& w, const ModelConfig& config,
                                               const gguf::File& file);

// Binds every tensor the configuration needs. Throws Error(kInvalidInput) naming the file and the
// tensor for a missing tensor, a wrong shape (expected and actual) or an unsupported type.
Weights BindWeights(const gguf::File& file, const ModelConfig& config);

}  // namespace hearth::model
