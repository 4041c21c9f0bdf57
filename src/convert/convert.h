// Writing model files: `hearth quantize` (re-encode a GGUF's weights with llama-quantize's
// per-tensor type choices) and `hearth make-model` (random weights with the real dimensions of a
// Gemma 4 variant, for benchmarks without downloads). Output is ordinary GGUF that llama.cpp loads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::convert {

// A file-type preset, named and numbered as llama.cpp's llama_ftype.
struct Preset {
  const char* name;       // "Q4_K_M"
  uint32_t ftype;         // general.file_type value
  uint32_t default_type;  // ggml type of most weights
};
// nullptr when `name` is not a supported preset; names are case-insensitive.
const Preset* FindPreset(std::string_view name);
// "F32, F16, BF16, Q8_0, …" for help texts and errors.
std::string PresetNames();

// What the type choice needs to know about one tensor.
struct TensorRole {
  std::string name;             // GGUF tensor name, e.g. "blk.3.attn_v.weight"
  std::vector<int64_t> shape;   // ne order
  int layer = -1;               // block index, -1 for global tensors
  int n_layers = 0;             // block_count
  int attn_v_index = 0;         // index of this tensor among the file's attn_v tensors
  int attn_v_count = 0;         // number of attn_v tensors in the file
  int n_experts = 0;            // gemma4.expert_count
};

// True when llama-quantize would re-encode this tensor (2-D+ weights other than norms, the
// router and the PLE projection; see gemma4-model.md §5.2).
bool IsQuantizable(const TensorRole& role);
// The ggml type llama-quantize picks for a quantizable tensor under `preset`, including the
// "more bits" rules for attn_v / ffn_down, the tied-output rule for token embeddings, the
// 8-expert bumps, and the fallbacks for rows that are not a multiple of 256.
uint32_t ChooseType(const Preset& preset, const TensorRole& role);

using Progress = std::function<void(const std::string& tensor, int done, int total)>;

struct QuantizeOptions {
  std::string input;
  std::string output;
  const Preset* preset = nullptr;
  int threads = 0;  // 0: the physical cores this process may use
  Progress progress;
};
void QuantizeModel(const QuantizeOptions& options);

struct MakeModelOptions {
  std::string like;        // e2b | e4b | 26b-a4b | 31b
  std::string vocab_path;  // a GGUF holding the Gemma 4 tokenizer (tokenizer.* keys)
  const Preset* preset = nullptr;
  std::string output;
  uint64_t seed = 1;
  int threads = 0;
  Progress progress;
};
// The supported `like` names.
std::vector<std::string> VariantNames();
void MakeModel(const MakeModelOptions& options);

// A projector file (general.type mmproj) holding only a `gemma4a` audio encoder with the real
// E2B/E4B audio tower's dimensions (width 1024, 12 blocks, 8 heads, FFN 4096, SSCP 128/32
// channels, 128 mel bins, output 1536) projecting to the variant's text width, random weights:
// for `hearth bench --audio`. Matrices in `type` (F32, F16 or Q8_0); convolutions and norms F32.
// Options of both random projectors (MakeAudioProjector, MakeVisionProjector).
struct MakeProjectorOptions {
  std::string like;   // audio: e2b | e4b; vision: e2b | e4b | 26b-a4b | 31b
  uint32_t type = 1;  // tensor::kF16
  std::string output;
  uint64_t seed = 1;
  int threads = 0;
  // > 0: project to this width instead of the variant's, to pair the real-size encoder with a
  // tiny text model when only the encoder is measured (llama-mtmd-cli always runs the text model).
  int64_t text_width = 0;
};
void MakeAudioProjector(const MakeProjectorOptions& options);

// A projector file holding only a `gemma4v` vision encoder with the real tower's dimensions
// (multimodal spec §4: e2b/e4b width 768, 16 layers, 12 heads of 64, MLP 3072; 26b-a4b/31b width
// 1152, 27 layers, 16 heads of 72, MLP 4304 with std_bias/std_scale and clamped linears; patch 16,
// pooling 3, 10240-row position tables) projecting to the variant's text width, random weights,
// the metadata keys llama.cpp's converter writes: for `hearth bench --image` and llama-mtmd-cli.
// Matrices in `type` (F32, F16 or Q8_0; a Q8_0 matrix whose rows are not a multiple of 32 falls
// back to F16 as in the converter); norms, scalars and position tables F32; the patch kernel F32
// (F16 in an F16 file).
void MakeVisionProjector(const MakeProjectorOptions& options);

// A LoRA adapter in llama.cpp's GGUF format (general.type adapter, adapter.lora.alpha, `.lora_a`
// / `.lora_b` pairs) for an existing base model, random: a pair of rank `rank` for every
// attn_q/k/v/output and ffn_gate/up/down weight of every layer (PEFT's usual target modules),
// A [rank][n_in] with unit-variance rows over sqrt(n_in), B small, so that the adapter moves the
// logits without wrecking them. For measuring what adapters cost (`hearth bench --lora`).
struct MakeLoraOptions {
  std::string base;  // the base model GGUF
  int rank = 16;
  float alpha = 0;    // 0: the rank (alpha / rank = 1)
  uint32_t type = 1;  // tensor::kF16 (convert_lora_to_gguf.py's default) or tensor::kF32
  std::string output;
  uint64_t seed = 1;
};
void MakeLora(const MakeLoraOptions& options);

}  // namespace hearth::convert
