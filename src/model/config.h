// The Gemma 4 text-decoder configuration, read from a GGUF file's metadata and tensor shapes
// (../shared/spec/gemma4-model.md §1, §2.2). Plain data: everything the forward pass needs to know
// about the structure, per layer, with nothing derived from layer counts or file names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::gguf {
class File;
}

namespace hearth::model {

struct LayerConfig {
  bool sliding = false;  // sliding-window attention (else full/global attention)
  int n_head_kv = 0;
  int head_dim = 0;      // hd_s for sliding layers, hd_g for full layers
  int n_ff = 0;          // dense (or shared) MLP width
  bool owns_kv = true;   // false for the trailing KV-shared layers
  int kv_source = 0;     // the layer whose KV cache this layer reads (itself unless KV-shared)
};

struct ModelConfig {
  std::string path;         // the file, for messages
  std::string name;         // general.name, may be empty
  int n_layer = 0;
  int n_embd = 0;           // H
  int n_vocab = 0;          // rows of token_embd
  int n_ctx_train = 0;      // gemma4.context_length: the largest usable context
  int n_head = 0;
  int head_dim_full = 0;    // gemma4.attention.key_length
  int head_dim_swa = 0;     // gemma4.attention.key_length_swa
  int rope_dim_full = 0;    // rotated dims of full layers (rope.dimension_count)
  int rope_dim_swa = 0;     // rotated dims of sliding layers (rope.dimension_count_swa)
  float rope_base_full = 1e6f;
  float rope_base_swa = 1e4f;
  float rms_eps = 1e-6f;
  int sliding_window = 0;   // W: a sliding query sees itself and the W-1 previous positions
  int n_kv_shared = 0;      // trailing layers that read another layer's cache
  int n_embd_per_layer = 0; // P, 0 = no per-layer embeddings
  float final_logit_softcap = 30.0f;  // 0 = none
  int n_expert = 0;         // 0 = dense model
  int n_expert_used = 0;
  int n_ff_exp = 0;
  std::vector<LayerConfig> layers;

  int first_shared_layer() const { return n_layer - n_kv_shared; }
  bool is_moe() const { return n_expert > 0; }
  bool has_ple() const { return n_embd_per_layer > 0; }
  int n_sliding_layers() const;
  // "E2B", "E4B", "26B-A4B", "31B" when the dimensions match a released model exactly, else a
  // description of the structure ("PLE + KV-sharing (E2B/E4B-like)", ...).
  std::string VariantName() const;
  // "SSSGSSSG": S = sliding, G = global (full); shared layers in lower case.
  std::string LayerPattern() const;
};

// Reads and validates the configuration. Throws Error(kInvalidInput) naming the file and the key
// for a missing or out-of-range value, and "unsupported architecture X" for non-gemma4 files.
// Tensor-derived facts (n_vocab) come from the tensor table; shapes are checked when binding.
ModelConfig ReadConfig(const gguf::File& file);

// The storage type of the KV cache's keys or values (`--cache-type`, as llama.cpp's -ctk/-ctv):
// F16 by default, Q8_0 or Q4_0 in ggml's block layouts (32 values a block, so every KV-owning
// layer's head_dim must be a multiple of 32), F32 in precise mode only.
enum class KvType : uint8_t { kF16, kQ8_0, kQ4_0, kF32 };
// "f16", "q8_0", "q4_0", "f32".
const char* KvTypeName(KvType type);
// The values --cache-type accepts, for messages: "f16, q8_0, q4_0".
inline constexpr const char* kKvTypeChoices = "f16, q8_0, q4_0";
// Parses a --cache-type value (one of kKvTypeChoices, case-insensitive); false for anything else.
bool ParseKvType(std::string_view name, KvType* type);
// The tensor::TypeId the type stores its cells in.
uint32_t KvTensorType(KvType type);
// Bytes of one cell row of `n` values (n a multiple of 32 for the block types).
uint64_t KvRowBytes(KvType type, int64_t n);
// Throws Error(kUsage) when `type` cannot hold this model's KV rows (a block type and a head_dim
// that is not a multiple of 32), naming the layer and suggesting f16.
void CheckKvType(const ModelConfig& config, KvType type);

// Bytes of KV cache a context of `n_ctx` positions needs with keys of type `k` and values of type
// `v`, with sliding layers keeping `sliding_window - 1 + n_ubatch` positions at most.
uint64_t KvCacheBytes(const ModelConfig& config, int n_ctx, int n_ubatch, KvType k, KvType v);
// The same for the default cache (F16) or precise mode's (`f32`).
uint64_t KvCacheBytes(const ModelConfig& config, int n_ctx, int n_ubatch, bool f32);

}  // namespace hearth::model
