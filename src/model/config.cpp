// Reading the gemma4 configuration from GGUF metadata (../shared/spec/gemma4-model.md §2.2).
#include "model/config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <string>

#include "base/error.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"

namespace hearth::model {
namespace {

constexpr const char* kArch = "gemma4";

class Reader {
 public:
  explicit Reader(const gguf::File& file) : file_(file) {}

  [[noreturn]] void Fail(const std::string& what) const {
    ThrowInvalidInput("model file '" + file_.path() + "': " + what,
                      "the file is not a complete Gemma 4 GGUF; re-download or re-convert it");
  }

  std::string Key(const char* suffix) const { return std::string(kArch) + "." + suffix; }

  std::optional<int64_t> Int(const char* suffix) const { return file_.GetInt(Key(suffix)); }

  int64_t RequireInt(const char* suffix, int64_t lo, int64_t hi) const {
    auto v = Int(suffix);
    if (!v) Fail("required key '" + Key(suffix) + "' is missing");
    return CheckRange(suffix, *v, lo, hi);
  }
  int64_t OptionalInt(const char* suffix, int64_t def, int64_t lo, int64_t hi) const {
    auto v = Int(suffix);
    return v ? CheckRange(suffix, *v, lo, hi) : def;
  }
  int64_t CheckRange(const char* suffix, int64_t v, int64_t lo, int64_t hi) const {
    if (v < lo || v > hi) {
      Fail("key '" + Key(suffix) + "' = " + std::to_string(v) + " is out of range [" +
           std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return v;
  }
  float OptionalFloat(const char* suffix, float def) const {
    auto v = file_.GetFloat(Key(suffix));
    if (!v) return def;
    if (!std::isfinite(*v)) Fail("key '" + Key(suffix) + "' is not a finite number");
    return static_cast<float>(*v);
  }
  float RequireFloat(const char* suffix) const {
    auto v = file_.GetFloat(Key(suffix));
    if (!v) Fail("required key '" + Key(suffix) + "' is missing");
    if (!std::isfinite(*v)) Fail("key '" + Key(suffix) + "' is not a finite number");
    return static_cast<float>(*v);
  }

  // A per-layer value written either as a scalar or as an array of n_layer integers.
  std::vector<int> PerLayer(const char* suffix, int n_layer, std::optional<int64_t> def, int64_t lo,
                            int64_t hi) const {
    const std::string key = Key(suffix);
    std::vector<int> out(n_layer);
    if (auto arr = file_.GetIntArray(key)) {
      if (static_cast<int64_t>(arr->size()) != n_layer) {
        Fail("array '" + key + "' has " + std::to_string(arr->size()) + " entries, expected " +
             std::to_string(n_layer) + " (one per layer)");
      }
      for (int l = 0; l < n_layer; ++l) out[l] = static_cast<int>(CheckRange(suffix, (*arr)[l], lo, hi));
      return out;
    }
    std::optional<int64_t> v = Int(suffix);
    if (!v) {
      if (!def) Fail("required key '" + key + "' is missing");
      v = def;
    }
    CheckRange(suffix, *v, lo, hi);
    for (int l = 0; l < n_layer; ++l) out[l] = static_cast<int>(*v);
    return out;
  }

  const gguf::File& file() const { return file_; }

 private:
  const gguf::File& file_;
};

}  // namespace

int ModelConfig::n_sliding_layers() const {
  int n = 0;
  for (const auto& l : layers) n += l.sliding ? 1 : 0;
  return n;
}

std::string ModelConfig::LayerPattern() const {
  std::string s;
  for (int l = 0; l < n_layer; ++l) {
    char c = layers[l].sliding ? 'S' : 'G';
    s += layers[l].owns_kv ? c : static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

std::string ModelConfig::VariantName() const {
  // Released models, matched on every headline dimension (spec §1.1), never on layer count alone.
  struct Known {
    const char* name;
    int n_layer, n_embd, n_head, n_expert, n_kv_shared, ple;
  };
  static const Known kKnown[] = {{"E2B", 35, 1536, 8, 0, 20, 256},
                                 {"E4B", 42, 2560, 8, 0, 18, 256},
                                 {"26B-A4B", 30, 2816, 16, 128, 0, 0},
                                 {"31B", 60, 5376, 32, 0, 0, 0}};
  for (const auto& k : kKnown) {
    if (k.n_layer == n_layer && k.n_embd == n_embd && k.n_head == n_head &&
        k.n_expert == n_expert && k.n_kv_shared == n_kv_shared && k.ple == n_embd_per_layer) {
      return k.name;
    }
  }
  if (is_moe()) return "MoE (26B-A4B-like)";
  if (has_ple() || n_kv_shared > 0) return "PLE + KV sharing (E2B/E4B-like)";
  return "dense (31B-like)";
}

ModelConfig ReadConfig(const gguf::File& file) {
  Reader r(file);
  auto arch = file.GetString("general.architecture");
  if (!arch) r.Fail("required key 'general.architecture' is missing");
  if (*arch != kArch) {
    ThrowInvalidInput("model file '" + file.path() + "': unsupported architecture " +
                          std::string(*arch),
                      "hearth runs Gemma 4 models (general.architecture = gemma4)");
  }
  if (r.OptionalInt("nextn_predict_layers", 0, 0, 1 << 20) != 0) {
    r.Fail("key 'gemma4.nextn_predict_layers' > 0 (multi-token-prediction layers) is not supported");
  }

  ModelConfig c;
  c.path = file.path();
  if (auto name = file.GetString("general.name")) c.name = std::string(*name);
  constexpr int64_t kBig = 1 << 20;
  c.n_layer = static_cast<int>(r.RequireInt("block_count", 1, 4096));
  c.n_embd = static_cast<int>(r.RequireInt("embedding_length", 1, kBig));
  c.n_ctx_train = static_cast<int>(r.RequireInt("context_length", 1, 1 << 24));
  c.head_dim_full = static_cast<int>(r.RequireInt("attention.key_length", 2, 1 << 14));
  c.head_dim_swa = static_cast<int>(r.RequireInt("attention.key_length_swa", 2, 1 << 14));
  if (r.RequireInt("attention.value_length", 2, 1 << 14) != c.head_dim_full) {
    r.Fail("key 'gemma4.attention.value_length' differs from 'gemma4.attention.key_length'");
  }
  if (r.RequireInt("attention.value_length_swa", 2, 1 << 14) != c.head_dim_swa) {
    r.Fail("key 'gemma4.attention.value_length_swa' differs from "
           "'gemma4.attention.key_length_swa'");
  }
  if (c.head_dim_full % 2 || c.head_dim_swa % 2) r.Fail("head dimensions must be even");
  c.rms_eps = r.RequireFloat("attention.layer_norm_rms_epsilon");
  if (!(c.rms_eps > 0 && c.rms_eps < 1)) {
    r.Fail("key 'gemma4.attention.layer_norm_rms_epsilon' must lie in (0, 1)");
  }
  c.sliding_window = static_cast<int>(r.RequireInt("attention.sliding_window", 1, 1 << 24));
  c.n_kv_shared = static_cast<int>(r.OptionalInt("attention.shared_kv_layers", 0, 0, c.n_layer - 1));
  c.n_embd_per_layer = static_cast<int>(r.RequireInt("embedding_length_per_layer_input", 0, kBig));
  c.rope_base_full = r.OptionalFloat("rope.freq_base", 10000.0f);
  c.rope_base_swa = r.OptionalFloat("rope.freq_base_swa", 10000.0f);
  if (!(c.rope_base_full > 1) || !(c.rope_base_swa > 1)) r.Fail("rope.freq_base must be > 1");
  c.rope_dim_full = static_cast<int>(r.OptionalInt("rope.dimension_count", c.head_dim_full, 2, c.head_dim_full));
  // Spec pitfall 19: a missing _swa key means the sliding head dim, not the global value.
  c.rope_dim_swa = static_cast<int>(r.OptionalInt("rope.dimension_count_swa", c.head_dim_swa, 2, c.head_dim_swa));
  if (c.rope_dim_full % 2 || c.rope_dim_swa % 2) r.Fail("rope dimension counts must be even");
  // llama.cpp's default when the key is absent is 30; 0 disables the cap (refs/README.md §4).
  c.final_logit_softcap = r.OptionalFloat("final_logit_softcapping", 30.0f);
  if (c.final_logit_softcap < 0) r.Fail("key 'gemma4.final_logit_softcapping' is negative");

  c.n_expert = static_cast<int>(r.OptionalInt("expert_count", 0, 0, 4096));
  if (c.n_expert > 0) {
    c.n_expert_used = static_cast<int>(r.RequireInt("expert_used_count", 1, c.n_expert));
    c.n_ff_exp = static_cast<int>(r.RequireInt("expert_feed_forward_length", 1, kBig));
  }

  std::vector<int> n_head = r.PerLayer("attention.head_count", c.n_layer, std::nullopt, 1, 4096);
  for (int h : n_head) {
    if (h != n_head[0]) r.Fail("per-layer 'gemma4.attention.head_count' values differ; not supported");
  }
  c.n_head = n_head[0];
  std::vector<int> n_head_kv =
      r.PerLayer("attention.head_count_kv", c.n_layer, c.n_head, 1, c.n_head);
  std::vector<int> n_ff = r.PerLayer("feed_forward_length", c.n_layer, std::nullopt, 1, kBig);

  const std::string pattern_key = "gemma4.attention.sliding_window_pattern";
  auto pattern = file.GetIntArray(pattern_key);
  if (!pattern) r.Fail("required key '" + pattern_key + "' (a bool per layer) is missing");
  if (static_cast<int64_t>(pattern->size()) != c.n_layer) {
    r.Fail("array '" + pattern_key + "' has " + std::to_string(pattern->size()) +
           " entries, expected " + std::to_string(c.n_layer) + " (one per layer)");
  }

  c.layers.resize(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    LayerConfig& lc = c.layers[l];
    lc.sliding = (*pattern)[l] != 0;
    lc.n_head_kv = n_head_kv[l];
    if (c.n_head % lc.n_head_kv != 0) {
      r.Fail("layer " + std::to_string(l) + ": head_count " + std::to_string(c.n_head) +
             " is not a multiple of head_count_kv " + std::to_string(lc.n_head_kv));
    }
    lc.head_dim = lc.sliding ? c.head_dim_swa : c.head_dim_full;
    lc.n_ff = n_ff[l];
    lc.owns_kv = l < c.first_shared_layer();
    lc.kv_source = l;
  }
  // KV-shared layers read the last KV-owning layer of their own type (HF's rule; llama.cpp's
  // hard-coded rule agrees for every released layout, spec §3.7).
  for (int l = c.first_shared_layer(); l < c.n_layer; ++l) {
    LayerConfig& lc = c.layers[l];
    int src = -1;
    for (int s = c.first_shared_layer() - 1; s >= 0; --s) {
      if (c.layers[s].sliding == lc.sliding) {
        src = s;
        break;
      }
    }
    if (src < 0) {
      r.Fail("KV-shared layer " + std::to_string(l) + " has no earlier " +
             (lc.sliding ? "sliding" : "full") + " layer to read its cache from");
    }
    if (c.layers[src].n_head_kv != lc.n_head_kv) {
      r.Fail("KV-shared layer " + std::to_string(l) + " has " + std::to_string(lc.n_head_kv) +
             " KV heads but its source layer " + std::to_string(src) + " has " +
             std::to_string(c.layers[src].n_head_kv));
    }
    lc.kv_source = src;
  }

  const gguf::TensorInfo* embd = file.FindTensor("token_embd.weight");
  if (!embd) r.Fail("required tensor 'token_embd.weight' is missing");
  if (embd->shape.size() != 2 || embd->shape[1] > (int64_t{1} << 24)) {
    r.Fail("tensor 'token_embd.weight' must have shape [n_embd, n_vocab]");
  }
  c.n_vocab = static_cast<int>(embd->shape[1]);
  return c;
}

const char* KvTypeName(KvType type) {
  switch (type) {
    case KvType::kF16:
      return "f16";
    case KvType::kQ8_0:
      return "q8_0";
    case KvType::kQ4_0:
      return "q4_0";
    case KvType::kF32:
      return "f32";
  }
  return "?";
}

bool ParseKvType(std::string_view name, KvType* type) {
  std::string lower(name);
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (KvType t : {KvType::kF16, KvType::kQ8_0, KvType::kQ4_0}) {
    if (lower == KvTypeName(t)) {
      *type = t;
      return true;
    }
  }
  return false;
}

uint32_t KvTensorType(KvType type) {
  switch (type) {
    case KvType::kF16:
      return tensor::kF16;
    case KvType::kQ8_0:
      return tensor::kQ8_0;
    case KvType::kQ4_0:
      return tensor::kQ4_0;
    case KvType::kF32:
      return tensor::kF32;
  }
  return tensor::kF16;
}

uint64_t KvRowBytes(KvType type, int64_t n) { return tensor::RowBytes(KvTensorType(type), n); }

void CheckKvType(const ModelConfig& c, KvType type) {
  const int64_t block = tensor::BlockSize(KvTensorType(type));
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerConfig& lc = c.layers[l];
    if (lc.owns_kv && lc.head_dim % block != 0) {
      throw Error(ErrorClass::kUsage,
                  std::string("KV cache type ") + KvTypeName(type) + " stores blocks of " +
                      std::to_string(block) + " values, but layer " + std::to_string(l) + " of '" +
                      c.path + "' has head_dim " + std::to_string(lc.head_dim) +
                      ", not a multiple of " + std::to_string(block),
                  "use --cache-type f16");
    }
  }
}

uint64_t KvCacheBytes(const ModelConfig& c, int n_ctx, int n_ubatch, KvType k, KvType v) {
  uint64_t total = 0;
  for (const auto& l : c.layers) {
    if (!l.owns_kv) continue;
    uint64_t cells = static_cast<uint64_t>(n_ctx);
    if (l.sliding) cells = std::min<uint64_t>(cells, c.sliding_window - 1 + n_ubatch);
    const int64_t row = static_cast<int64_t>(l.n_head_kv) * l.head_dim;
    // Rows of a block type that do not divide into blocks cannot be made (CheckKvType refuses
    // them); count them as F16 so that the estimate stays defined.
    const auto bytes = [&](KvType t) {
      return row % tensor::BlockSize(KvTensorType(t)) == 0 ? KvRowBytes(t, row)
                                                           : KvRowBytes(KvType::kF16, row);
    };
    total += cells * (bytes(k) + bytes(v));
  }
  return total;
}

uint64_t KvCacheBytes(const ModelConfig& c, int n_ctx, int n_ubatch, bool f32) {
  const KvType t = f32 ? KvType::kF32 : KvType::kF16;
  return KvCacheBytes(c, n_ctx, n_ubatch, t, t);
}

}  // namespace hearth::model
