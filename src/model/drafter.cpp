// The MTP drafter: configuration (spec §2.1), weights (§2.2) and one drafter step (§3) over the
// target's KV cache (§4). ../shared/spec/gemma4-mtp.md.
#include "model/drafter.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/kv_cache.h"
#include "model/weights.h"
#include "tensor/tensor.h"

namespace hearth::model {

struct DrafterLayerWeights {
  const float* attn_norm = nullptr;
  tensor::Matrix attn_q;
  const float* attn_q_norm = nullptr;
  tensor::Matrix attn_output;
  const float* post_attention_norm = nullptr;
  const float* ffn_norm = nullptr;
  tensor::Matrix ffn_gate, ffn_up, ffn_down;
  const float* post_ffw_norm = nullptr;
  float output_scale = 1.0f;
};

struct DrafterWeights {
  tensor::Matrix lm_head;  // token_embd.weight [V][E]: the drafter's LM head only
  const float* output_norm = nullptr;
  tensor::Matrix pre_projection;   // [E][2B]
  tensor::Matrix post_projection;  // [B][E]
  const float* rope_freqs = nullptr;
  std::vector<DrafterLayerWeights> layers;
};

struct Drafter::FileHolder {
  gguf::File file;
};

namespace {

constexpr const char* kArch = "gemma4-assistant";

class DrafterReader {
 public:
  explicit DrafterReader(const gguf::File& file) : file_(file) {}

  [[noreturn]] void Fail(const std::string& what) const {
    ThrowInvalidInput("drafter file '" + file_.path() + "': " + what,
                      "the file is not a complete Gemma 4 assistant (MTP drafter) GGUF; "
                      "re-download or re-convert it");
  }
  std::string Key(const char* suffix) const { return std::string(kArch) + "." + suffix; }
  int64_t Int(const char* suffix, std::optional<int64_t> def, int64_t lo, int64_t hi) const {
    auto v = file_.GetInt(Key(suffix));
    if (!v) {
      if (!def) {
        Fail("required key '" + Key(suffix) + "' is missing");
      }
      v = def;
    }
    if (*v < lo || *v > hi) {
      Fail("key '" + Key(suffix) + "' = " + std::to_string(*v) + " is out of range [" +
           std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return *v;
  }
  float Float(const char* suffix, std::optional<float> def) const {
    auto v = file_.GetFloat(Key(suffix));
    if (!v) {
      if (!def) {
        Fail("required key '" + Key(suffix) + "' is missing");
      }
      return *def;
    }
    if (!std::isfinite(*v)) {
      Fail("key '" + Key(suffix) + "' is not a finite number");
    }
    return static_cast<float>(*v);
  }
  // A scalar or one integer per layer.
  std::vector<int> PerLayer(const char* suffix, int n, std::optional<int64_t> def, int64_t lo,
                            int64_t hi) const {
    std::vector<int> out(n);
    if (auto arr = file_.GetIntArray(Key(suffix))) {
      if (static_cast<int>(arr->size()) != n) {
        Fail("array '" + Key(suffix) + "' has " + std::to_string(arr->size()) +
             " entries, expected " + std::to_string(n) + " (one per layer)");
      }
      for (int l = 0; l < n; ++l) {
        if ((*arr)[l] < lo || (*arr)[l] > hi) {
          Fail("key '" + Key(suffix) + "' is out of range");
        }
        out[l] = static_cast<int>((*arr)[l]);
      }
      return out;
    }
    std::fill(out.begin(), out.end(), static_cast<int>(Int(suffix, def, lo, hi)));
    return out;
  }

  const gguf::TensorInfo* Find(const std::string& name, const std::vector<int64_t>& shape,
                               bool required) const {
    const gguf::TensorInfo* t = file_.FindTensor(name);
    if (!t) {
      if (required) {
        Fail("required tensor '" + name + "' is missing");
      }
      return nullptr;
    }
    if (t->shape != shape) {
      Fail("tensor '" + name + "' does not have the expected shape");
    }
    if (reinterpret_cast<uintptr_t>(t->data) % 4 != 0) {
      Fail("tensor '" + name + "' is not 4-byte aligned in the file");
    }
    if (!tensor::IsSupportedType(t->type_id)) {
      Fail("tensor '" + name + "' has type " + gguf::TensorTypeName(t->type_id) +
           ", which hearth cannot compute with yet");
    }
    return t;
  }
  const float* Vector(const std::string& name, int64_t n) const {
    const gguf::TensorInfo* t = Find(name, {n}, true);
    if (t->type_id != tensor::kF32) {
      Fail("tensor '" + name + "' must be F32");
    }
    return reinterpret_cast<const float*>(t->data);
  }
  tensor::Matrix Matrix(const std::string& name, int64_t cols, int64_t rows) const {
    const gguf::TensorInfo* t = Find(name, {cols, rows}, true);
    return tensor::Matrix{t->type_id, rows, cols, t->data};
  }

 private:
  const gguf::File& file_;
};

DrafterConfig ReadDrafterConfig(const gguf::File& file) {
  DrafterReader r(file);
  auto arch = file.GetString("general.architecture");
  if (!arch || *arch != kArch) {
    ThrowInvalidInput("drafter file '" + file.path() + "': architecture is " +
                          (arch ? std::string(*arch) : std::string("missing")) +
                          ", expected gemma4-assistant",
                      "give the assistant (MTP drafter) GGUF that belongs to the model");
  }
  constexpr int64_t kBig = 1 << 20;
  DrafterConfig c;
  c.path = file.path();
  c.n_layer = static_cast<int>(r.Int("block_count", std::nullopt, 1, 4096));
  if (r.Int("nextn_predict_layers", std::nullopt, 0, 4096) != c.n_layer) {
    r.Fail("key 'gemma4-assistant.nextn_predict_layers' must equal block_count");
  }
  c.n_embd = static_cast<int>(r.Int("embedding_length", std::nullopt, 1, kBig));
  c.n_embd_backbone = static_cast<int>(r.Int("embedding_length_out", std::nullopt, 1, kBig));
  if (c.n_embd_backbone == c.n_embd) {
    r.Fail("key 'gemma4-assistant.embedding_length_out' must carry the target's hidden size");
  }
  std::vector<int> n_head = r.PerLayer("attention.head_count", c.n_layer, std::nullopt, 1, 4096);
  for (int h : n_head) {
    if (h != n_head[0]) {
      r.Fail("per-layer head counts differ; not supported");
    }
  }
  c.n_head = n_head[0];
  c.head_dim_full =
      static_cast<int>(r.Int("attention.key_length", c.n_embd / c.n_head, 2, 1 << 14));
  if (r.Int("attention.value_length", c.head_dim_full, 2, 1 << 14) != c.head_dim_full) {
    r.Fail("attention.value_length differs from attention.key_length");
  }
  c.head_dim_swa = static_cast<int>(r.Int("attention.key_length_swa", std::nullopt, 2, 1 << 14));
  if (r.Int("attention.value_length_swa", std::nullopt, 2, 1 << 14) != c.head_dim_swa) {
    r.Fail("attention.value_length_swa differs from attention.key_length_swa");
  }
  c.rope_dim_full =
      static_cast<int>(r.Int("rope.dimension_count", c.head_dim_full, 2, c.head_dim_full));
  // As llama.cpp: a missing _swa count defaults to the full layers' value (spec §2.1).
  c.rope_dim_swa = static_cast<int>(r.Int(
      "rope.dimension_count_swa", std::min(c.rope_dim_full, c.head_dim_swa), 2, c.head_dim_swa));
  if (c.rope_dim_full % 2 || c.rope_dim_swa % 2) {
    r.Fail("rope dimension counts must be even");
  }
  c.rope_base_full = r.Float("rope.freq_base", 10000.0f);
  c.rope_base_swa = r.Float("rope.freq_base_swa", 10000.0f);
  if (!(c.rope_base_full > 1) || !(c.rope_base_swa > 1)) {
    r.Fail("rope.freq_base must be > 1");
  }
  c.rms_eps = r.Float("attention.layer_norm_rms_epsilon", std::nullopt);
  if (!(c.rms_eps > 0 && c.rms_eps < 1)) {
    r.Fail("layer_norm_rms_epsilon must lie in (0, 1)");
  }
  // W - 1 keys per sliding query (spec §4.3): W must be at least 2.
  c.sliding_window = static_cast<int>(r.Int("attention.sliding_window", std::nullopt, 2, 1 << 24));
  std::vector<int> n_head_kv =
      r.PerLayer("attention.head_count_kv", c.n_layer, c.n_head, 1, c.n_head);
  std::vector<int> n_ff = r.PerLayer("feed_forward_length", c.n_layer, std::nullopt, 1, kBig);
  auto pattern = file.GetIntArray(r.Key("attention.sliding_window_pattern"));
  if (!pattern || static_cast<int>(pattern->size()) != c.n_layer) {
    r.Fail("key 'gemma4-assistant.attention.sliding_window_pattern' must have one bool per layer");
  }
  c.layers.resize(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    DrafterLayerConfig& lc = c.layers[l];
    lc.sliding = (*pattern)[l] != 0;
    lc.n_head_kv = n_head_kv[l];
    if (c.n_head % lc.n_head_kv != 0) {
      r.Fail("head_count is not a multiple of head_count_kv");
    }
    lc.head_dim = lc.sliding ? c.head_dim_swa : c.head_dim_full;
    lc.n_ff = n_ff[l];
  }
  const gguf::TensorInfo* embd = file.FindTensor("token_embd.weight");
  if (!embd || embd->shape.size() != 2 || embd->shape[1] > (int64_t{1} << 24)) {
    r.Fail("tensor 'token_embd.weight' must exist with shape [n_embd, n_vocab]");
  }
  c.n_vocab = static_cast<int>(embd->shape[1]);
  return c;
}

DrafterWeights BindDrafterWeights(const gguf::File& file, const DrafterConfig& c) {
  DrafterReader r(file);
  DrafterWeights w;
  const int64_t E = c.n_embd, B = c.n_embd_backbone;
  w.lm_head = r.Matrix("token_embd.weight", E, c.n_vocab);
  w.output_norm = r.Vector("output_norm.weight", E);
  w.pre_projection = r.Matrix("nextn.pre_projection.weight", 2 * B, E);
  w.post_projection = r.Matrix("nextn.post_projection.weight", E, B);
  const bool any_full =
      std::any_of(c.layers.begin(), c.layers.end(), [](const auto& l) { return !l.sliding; });
  if (any_full) {
    w.rope_freqs = r.Vector("rope_freqs.weight", c.rope_dim_full / 2);
  }
  w.layers.resize(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    const DrafterLayerConfig& lc = c.layers[l];
    DrafterLayerWeights& lw = w.layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    const int64_t nq = static_cast<int64_t>(c.n_head) * lc.head_dim;
    lw.attn_norm = r.Vector(p + "attn_norm.weight", E);
    lw.attn_q = r.Matrix(p + "attn_q.weight", E, nq);
    lw.attn_q_norm = r.Vector(p + "attn_q_norm.weight", lc.head_dim);
    lw.attn_output = r.Matrix(p + "attn_output.weight", nq, E);
    lw.post_attention_norm = r.Vector(p + "post_attention_norm.weight", E);
    lw.ffn_norm = r.Vector(p + "ffn_norm.weight", E);
    lw.ffn_gate = r.Matrix(p + "ffn_gate.weight", E, lc.n_ff);
    lw.ffn_up = r.Matrix(p + "ffn_up.weight", E, lc.n_ff);
    lw.ffn_down = r.Matrix(p + "ffn_down.weight", lc.n_ff, E);
    lw.post_ffw_norm = r.Vector(p + "post_ffw_norm.weight", E);
    lw.output_scale = *r.Vector(p + "layer_output_scale.weight", 1);  // required here (§2.2)
  }
  return w;
}

// The target layer whose cache a drafter layer of this type reads (spec §4.2): L-2 for sliding,
// L-1 for full, resolved through the target's KV-sharing map.
int TargetKvLayer(const ModelConfig& target, bool sliding) {
  const int l = target.n_layer - (sliding ? 2 : 1);
  return l < 0 ? -1 : target.layers[l].kv_source;
}

}  // namespace

Drafter::Drafter() = default;
Drafter::~Drafter() = default;

bool Drafter::IsDrafterFile(const gguf::File& file) {
  auto arch = file.GetString("general.architecture");
  return arch && *arch == kArch;
}

std::unique_ptr<Drafter> Drafter::Load(const std::string& path) {
  return FromFile(gguf::File::Open(path));
}

std::unique_ptr<Drafter> Drafter::FromFile(gguf::File file) {
  std::unique_ptr<Drafter> d(new Drafter());
  d->file_ = std::make_unique<FileHolder>(FileHolder{std::move(file)});
  d->config_ = ReadDrafterConfig(d->file_->file);
  d->weights_ = std::make_unique<DrafterWeights>(BindDrafterWeights(d->file_->file, d->config_));
  return d;
}

void Drafter::CheckTarget(const ModelConfig& t, const gguf::File* target_file) const {
  const DrafterConfig& c = config_;
  auto fail = [&](const std::string& what) {
    ThrowUsage("drafter '" + c.path + "' does not fit the model '" + t.path + "': " + what,
               "use the assistant file released with this model");
  };
  if (c.n_vocab != t.n_vocab) {
    fail("vocabularies differ (" + std::to_string(c.n_vocab) + " vs " + std::to_string(t.n_vocab) +
         " tokens)");
  }
  if (c.n_embd_backbone != t.n_embd) {
    fail("it reads hidden states of width " + std::to_string(c.n_embd_backbone) +
         ", the model's are " + std::to_string(t.n_embd));
  }
  if (t.n_layer < 2) {
    fail("the model has fewer than 2 layers");
  }
  for (int l = 0; l < c.n_layer; ++l) {
    const DrafterLayerConfig& lc = c.layers[l];
    const LayerConfig& src = t.layers[TargetKvLayer(t, lc.sliding)];
    if (src.sliding != lc.sliding || src.head_dim != lc.head_dim || src.n_head_kv != lc.n_head_kv) {
      fail("drafter layer " + std::to_string(l) +
           " does not match the type, head size or KV heads of the model layer whose cache it "
           "reads");
    }
  }
  if (c.sliding_window > t.sliding_window) {
    // The target's sliding ring holds only its own window: a wider drafter window would ask
    // for keys that are gone.
    fail("its sliding window " + std::to_string(c.sliding_window) + " is larger than the model's " +
         std::to_string(t.sliding_window));
  }
  if (target_file) {
    const auto* a = file_->file.GetStringArray("tokenizer.ggml.tokens");
    const auto* b = target_file->GetStringArray("tokenizer.ggml.tokens");
    if (a && b && *a != *b) {
      fail("the tokenizers differ");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One drafter step.

struct DrafterContext::Buffers {
  std::vector<float> x, cur, a, q, attn, o, gate, up, f, hn, cs, sn, partial;
};

DrafterContext::DrafterContext(const Drafter& drafter, Context& target)
    : d_(drafter), target_(target), b_(std::make_unique<Buffers>()) {
  const DrafterConfig& c = d_.config();
  int max_q = 0, max_ff = 0;
  for (const auto& l : c.layers) {
    max_q = std::max(max_q, c.n_head * l.head_dim);
    max_ff = std::max(max_ff, l.n_ff);
  }
  b_->x.resize(2 * static_cast<size_t>(c.n_embd_backbone));
  b_->cur.resize(c.n_embd);
  b_->a.resize(c.n_embd);
  b_->q.resize(max_q);
  b_->attn.resize(max_q);
  b_->o.resize(c.n_embd);
  b_->gate.resize(max_ff);
  b_->up.resize(max_ff);
  b_->f.resize(c.n_embd);
  b_->hn.resize(c.n_embd);
  b_->cs.resize(std::max(c.rope_dim_full, c.rope_dim_swa) / 2);
  b_->sn.resize(b_->cs.size());
}

DrafterContext::~DrafterContext() = default;

void DrafterContext::Step(int32_t token, int pos, const float* h, float* logits, float* h_next) {
  const DrafterConfig& c = d_.config();
  const DrafterWeights& w = d_.weights();
  const ModelConfig& tc = target_.model_.config();
  const Weights& tw = target_.model_.weights();
  if (pos < 1 || pos > target_.n_past()) {
    throw Error(ErrorClass::kInternal, "drafter step at position " + std::to_string(pos) +
                                           " without the target's keys 0.." +
                                           std::to_string(pos - 1));
  }
  if (token < 0 || token >= tc.n_vocab) {
    throw Error(ErrorClass::kInvalidInput,
                "token id " + std::to_string(token) + " is outside the vocabulary");
  }
  const bool precise = target_.options().precise;
  const tensor::Precision prec = precise ? tensor::Precision::kPrecise : tensor::Precision::kFast;
  tensor::ThreadPool* pool = &target_.pool_->pool;
  const KvCache& kv = *target_.kv_;
  Buffers& b = *b_;
  const int B = c.n_embd_backbone, E = c.n_embd;
  const float eps = c.rms_eps;

  // x = [target embedding of the token * sqrt(B), h] (token part first, §3).
  const size_t embd_row = tensor::RowBytes(tw.token_embd.type, B);
  tensor::DequantizeRow(tw.token_embd.type,
                        static_cast<const uint8_t*>(tw.token_embd.data) + token * embd_row,
                        b.x.data(), B);
  const float embd_scale = std::sqrt(static_cast<float>(B));
  for (int i = 0; i < B; ++i) {
    b.x[i] *= embd_scale;
  }
  std::memcpy(&b.x[B], h, sizeof(float) * B);
  tensor::MatMul(w.pre_projection, b.x.data(), 1, b.cur.data(), prec, pool);

  for (int l = 0; l < c.n_layer; ++l) {
    const DrafterLayerConfig& lc = c.layers[l];
    const DrafterLayerWeights& lw = w.layers[l];
    const int hd = lc.head_dim, nh = c.n_head;
    const int rot = lc.sliding ? c.rope_dim_swa : c.rope_dim_full;
    RmsNorm(b.cur.data(), lw.attn_norm, E, eps, b.a.data());
    tensor::MatMul(lw.attn_q, b.a.data(), 1, b.q.data(), prec, pool);
    RopeTables(1, pos, rot, lc.sliding ? c.rope_base_swa : c.rope_base_full,
               lc.sliding ? nullptr : w.rope_freqs, b.cs.data(), b.sn.data());
    for (int hh = 0; hh < nh; ++hh) {
      float* qh = &b.q[static_cast<size_t>(hh) * hd];
      RmsNorm(qh, lw.attn_q_norm, hd, eps, qh);
      Rope(qh, rot, b.cs.data(), b.sn.data());
    }
    // The target's keys 0..pos-1 (the draft position has none yet), sliding layers the last
    // W-1 of them (§4.3): a query "at" pos-1 with window W-1 sees exactly those.
    const int src = TargetKvLayer(tc, lc.sliding);
    Attend(kv.layers[src], b.q.data(), 1, pos - 1, nh, lc.n_head_kv, hd,
           lc.sliding ? c.sliding_window - 1 : 0, pool, b.partial, b.attn.data());
    tensor::MatMul(lw.attn_output, b.attn.data(), 1, b.o.data(), prec, pool);
    RmsNorm(b.o.data(), lw.post_attention_norm, E, eps, b.o.data());
    for (int i = 0; i < E; ++i) {
      b.cur[i] += b.o[i];
    }

    RmsNorm(b.cur.data(), lw.ffn_norm, E, eps, b.a.data());
    tensor::MatMul(lw.ffn_gate, b.a.data(), 1, b.gate.data(), prec, pool);
    tensor::MatMul(lw.ffn_up, b.a.data(), 1, b.up.data(), prec, pool);
    GeGlu(b.gate.data(), b.up.data(), static_cast<size_t>(lc.n_ff), precise);
    tensor::MatMul(lw.ffn_down, b.gate.data(), 1, b.f.data(), prec, pool);
    RmsNorm(b.f.data(), lw.post_ffw_norm, E, eps, b.f.data());
    // The layer scale multiplies the whole residual (§3).
    for (int i = 0; i < E; ++i) {
      b.cur[i] = (b.cur[i] + b.f[i]) * lw.output_scale;
    }
  }
  RmsNorm(b.cur.data(), w.output_norm, E, eps, b.hn.data());
  tensor::MatMul(w.lm_head, b.hn.data(), 1, logits, prec, pool);  // no soft-cap (§2.1)
  if (h_next) {
    tensor::MatMul(w.post_projection, b.hn.data(), 1, h_next, prec, pool);
  }
}

}  // namespace hearth::model
