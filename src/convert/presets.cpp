// llama-quantize's per-tensor type choices (llama.cpp src/llama-quant.cpp, as summarised in
// ../shared/spec/gemma4-model.md §5.2 and checked against the fixture files in
// ../shared/fixtures/models, which llama-quantize wrote).
#include <algorithm>
#include <cctype>

#include "convert/convert.h"
#include "tensor/tensor.h"

namespace hearth::convert {
namespace {

using namespace hearth::tensor;  // NOLINT(google-build-using-namespace): type ids

constexpr Preset kPresets[] = {
    {"F32", 0, kF32},      {"F16", 1, kF16},      {"Q4_0", 2, kQ4_0},   {"Q4_1", 3, kQ4_1},
    {"Q8_0", 7, kQ8_0},    {"Q5_0", 8, kQ5_0},    {"Q5_1", 9, kQ5_1},   {"Q4_K_M", 15, kQ4_K},
    {"Q5_K_M", 17, kQ5_K}, {"Q6_K", 18, kQ6_K},   {"BF16", 32, kBF16},
};

bool Contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third in between.
bool UseMoreBits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

bool IsKQuant(uint32_t type) {
  return type == kQ2_K || type == kQ3_K || type == kQ4_K || type == kQ5_K || type == kQ6_K ||
         type == kIQ4_XS;
}

}  // namespace

const Preset* FindPreset(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  for (const Preset& p : kPresets) {
    if (upper == p.name) return &p;
  }
  return nullptr;
}

std::string PresetNames() {
  std::string names;
  for (const Preset& p : kPresets) names += (names.empty() ? "" : ", ") + std::string(p.name);
  return names;
}

bool IsQuantizable(const TensorRole& role) {
  const std::string& n = role.name;
  if (!EndsWith(n, "weight")) return false;  // .scale tensors stay F32
  if (role.shape.size() < 2) return false;   // norms, rope_freqs, layer_output_scale
  if (Contains(n, "_norm.weight")) return false;
  if (Contains(n, "ffn_gate_inp.weight")) return false;  // the MoE router stays F32
  if (Contains(n, "per_layer_model_proj")) return false;  // llama-quantize excludes it
  return true;
}

uint32_t ChooseType(const Preset& preset, const TensorRole& role) {
  uint32_t type = preset.default_type;
  const std::string& n = role.name;
  const bool quantized_preset = !(type == kF32 || type == kF16 || type == kBF16);
  if (quantized_preset) {
    const bool q4km_or_q5km = preset.ftype == 15 || preset.ftype == 17;
    if (Contains(n, "token_embd.weight")) {
      // Tied LM head (and the PLE table, which llama-quantize puts in the same class).
      if (role.shape[0] % 256 != 0) {
        type = kQ8_0;
      } else if (type != kQ8_0) {
        type = kQ6_K;
      }
    } else if (Contains(n, "attn_v.weight")) {
      if (q4km_or_q5km && UseMoreBits(role.attn_v_index, role.attn_v_count)) type = kQ6_K;
      if (role.n_experts == 8) type = kQ8_0;
    } else if (Contains(n, "attn_k.weight")) {
      if (role.n_experts == 8) type = kQ8_0;
    } else if (Contains(n, "ffn_down")) {
      if (q4km_or_q5km && UseMoreBits(role.layer, role.n_layers)) type = kQ6_K;
    } else if (Contains(n, "attn_output.weight")) {
      if (role.n_experts == 8 && preset.ftype == 15) type = kQ5_K;
    }
  }
  // Rows that do not split into 256-element super-blocks cannot use K-quants.
  if (IsKQuant(type) && role.shape[0] % 256 != 0) {
    switch (type) {
      case kQ4_K: type = kQ5_0; break;
      case kQ5_K: type = kQ5_1; break;
      case kQ6_K: type = kQ8_0; break;
      default: type = kIQ4_NL; break;
    }
  }
  if (BlockSize(type) > 1 && role.shape[0] % BlockSize(type) != 0) type = kF16;
  return type;
}

}  // namespace hearth::convert
