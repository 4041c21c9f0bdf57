// `hearth make-model`: a Gemma 4 GGUF with random weights and the real dimensions of a released
// variant (../shared/spec/gemma4-variants.json), for benchmarks without downloads. Weight
// magnitudes follow the recipe of the fixture models (../shared/fixtures/refs/README.md §1), so
// activations stay finite and the logits are not degenerate.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>

#include "base/error.h"
#include "convert/convert.h"
#include "convert/internal.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"

namespace hearth::convert {
namespace {

struct Variant {
  const char* name;
  int n_layer;
  int n_embd;
  int n_head;
  int n_kv_sliding;
  int n_kv_full;
  int head_dim_sliding;
  int head_dim_full;
  int sliding_window;
  int context_length;
  int n_ff;
  bool double_wide_shared_mlp;  // E2B: the KV-shared layers have a 2× wide MLP
  bool k_eq_v;                  // full layers have no attn_v (V = K projection)
  int shared_kv_layers;
  int per_layer_input;  // PLE width P (0: none)
  int full_every;       // layer i is full attention when i % full_every == full_every - 1
  int n_expert;
  int n_expert_used;
  int expert_ff;
};

// From gemma4-variants.json.
constexpr Variant kVariants[] = {
    {"e2b", 35, 1536, 8, 1, 1, 256, 512, 512, 131072, 6144, true, false, 20, 256, 5, 0, 0, 0},
    {"e4b", 42, 2560, 8, 2, 2, 256, 512, 512, 131072, 10240, false, false, 18, 256, 6, 0, 0, 0},
    {"26b-a4b", 30, 2816, 16, 8, 2, 256, 512, 1024, 262144, 2112, false, true, 0, 0, 6, 128, 8,
     704},
    {"31b", 60, 5376, 32, 16, 4, 256, 512, 1024, 262144, 21504, false, true, 0, 0, 6, 0, 0, 0},
};
constexpr int kVocab = 262144;

uint64_t SplitMix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// How the values of one tensor are drawn: uniform in [center − spread, center + spread].
struct Init {
  float center = 0.0f;
  float spread = 0.0f;
  // Exact values instead (rope_freqs).
  std::vector<float> fixed;
};

// A zero-mean uniform with standard deviation `std`.
Init Gaussianish(double std) { return {0.0f, static_cast<float>(std * std::sqrt(3.0)), {}}; }
Init Around(double center, double relative) {
  return {static_cast<float>(center), static_cast<float>(center * relative), {}};
}

struct PlannedTensor {
  std::string name;
  std::vector<int64_t> shape;
  Init init;
  int layer = -1;
};

class Planner {
 public:
  explicit Planner(const Variant& v) : v_(v) {}

  std::vector<PlannedTensor> Plan() {
    const int64_t h = v_.n_embd;
    const int p = v_.per_layer_input;
    // The fixtures use N(0, 0.2) at H = 256, which gives logits of std ~4.8; scaling by
    // sqrt(256 / H) keeps that at every width (the tied LM head sums H products).
    Add("token_embd.weight", {h, kVocab}, Gaussianish(3.2 / std::sqrt(double(h))));
    Add("output_norm.weight", {h}, Around(1.5, 0.15));
    Init rope;
    const int pairs = v_.head_dim_full / 2;
    const int rotated = static_cast<int>(v_.head_dim_full * 0.25 / 2);  // partial rotary 0.25
    for (int i = 0; i < pairs; ++i) rope.fixed.push_back(i < rotated ? 1.0f : 1e30f);
    Add("rope_freqs.weight", {pairs}, rope);
    if (p > 0) {
      const int64_t lp = static_cast<int64_t>(v_.n_layer) * p;
      Add("per_layer_token_embd.weight", {lp, kVocab}, Gaussianish(0.2));
      Add("per_layer_model_proj.weight", {h, lp}, Gaussianish(1.0 / std::sqrt(double(h))));
      Add("per_layer_proj_norm.weight", {p}, Around(1.0, 0.15));
    }
    for (int l = 0; l < v_.n_layer; ++l) PlanLayer(l);
    return std::move(tensors_);
  }

  bool IsFull(int l) const { return l % v_.full_every == v_.full_every - 1; }
  int FeedForward(int l) const {
    bool shared = l >= v_.n_layer - v_.shared_kv_layers;
    return v_.double_wide_shared_mlp && shared ? 2 * v_.n_ff : v_.n_ff;
  }

 private:
  void Add(std::string name, std::vector<int64_t> shape, Init init, int layer = -1) {
    tensors_.push_back({std::move(name), std::move(shape), std::move(init), layer});
  }
  static Init Projection(int64_t fan_in) { return Gaussianish(1.0 / std::sqrt(double(fan_in))); }

  void PlanLayer(int l) {
    const int64_t h = v_.n_embd;
    const bool full = IsFull(l);
    const int64_t hd = full ? v_.head_dim_full : v_.head_dim_sliding;
    const int64_t kv = full ? v_.n_kv_full : v_.n_kv_sliding;
    const int64_t q = v_.n_head * hd;
    const int64_t f = FeedForward(l);
    auto n = [l](const char* what) { return "blk." + std::to_string(l) + "." + what; };
    Add(n("attn_norm.weight"), {h}, Around(1.0, 0.15), l);
    Add(n("attn_q.weight"), {h, q}, Projection(h), l);
    Add(n("attn_k.weight"), {h, kv * hd}, Projection(h), l);
    if (!(full && v_.k_eq_v)) Add(n("attn_v.weight"), {h, kv * hd}, Projection(h), l);
    const double qk_norm = std::sqrt(1.0 / std::sqrt(double(hd)));
    Add(n("attn_q_norm.weight"), {hd}, Around(qk_norm, 0.15), l);
    Add(n("attn_k_norm.weight"), {hd}, Around(qk_norm, 0.15), l);
    Add(n("attn_output.weight"), {q, h}, Projection(q), l);
    Add(n("post_attention_norm.weight"), {h}, Around(0.25, 0.15), l);
    Add(n("ffn_norm.weight"), {h}, Around(1.0, 0.15), l);
    Add(n("ffn_gate.weight"), {h, f}, Projection(h), l);
    Add(n("ffn_up.weight"), {h, f}, Projection(h), l);
    Add(n("ffn_down.weight"), {f, h}, Projection(f), l);
    Add(n("post_ffw_norm.weight"), {h}, Around(0.25, 0.15), l);
    Add(n("layer_output_scale.weight"), {1}, Around(0.55, 0.45), l);  // U(0.3, 0.8)
    if (v_.n_expert > 0) {
      const int64_t e = v_.n_expert, fe = v_.expert_ff;
      Add(n("ffn_gate_inp.weight"), {h, e}, Projection(h), l);
      // The router sees rms(x)/sqrt(H)·scale: a scale of 5·sqrt(H) gives it unit-scale inputs ×5.
      Add(n("ffn_gate_inp.scale"), {h}, Around(5.0 * std::sqrt(double(h)), 0.15), l);
      Add(n("pre_ffw_norm_2.weight"), {h}, Around(1.0, 0.15), l);
      Add(n("post_ffw_norm_1.weight"), {h}, Around(0.3, 0.15), l);
      Add(n("post_ffw_norm_2.weight"), {h}, Around(0.3, 0.15), l);
      Add(n("ffn_gate_up_exps.weight"), {h, 2 * fe, e}, Projection(h), l);
      Add(n("ffn_down_exps.weight"), {fe, h, e}, Projection(fe), l);
      Add(n("ffn_down_exps.scale"), {e}, Around(1.0, 0.5), l);  // U(0.5, 1.5)
    }
    if (v_.per_layer_input > 0) {
      const int64_t p = v_.per_layer_input;
      Add(n("inp_gate.weight"), {h, p}, Projection(h), l);
      Add(n("proj.weight"), {p, h}, Projection(p), l);
      Add(n("post_norm.weight"), {h}, Around(1.0, 0.15), l);
    }
  }

  const Variant& v_;
  std::vector<PlannedTensor> tensors_;
};

void FillRow(const Init& init, uint64_t stream, int64_t row, float* out, int64_t n) {
  if (!init.fixed.empty()) {
    std::memcpy(out, init.fixed.data(), static_cast<size_t>(n) * sizeof(float));
    return;
  }
  uint64_t state = SplitMix(stream ^ SplitMix(static_cast<uint64_t>(row)));
  for (int64_t i = 0; i < n; ++i) {
    state = SplitMix(state);
    // 24 random bits → uniform in [-1, 1).
    float u = static_cast<float>(state >> 40) * (2.0f / 16777216.0f) - 1.0f;
    out[i] = init.center + init.spread * u;
  }
}

// Writes `rows` rows of random weights in `type`. Quantizing billions of values with the reference
// quantizers would take most of an hour, so quantized tensors are assembled from a pool of
// independently drawn and quantized blocks, picked at random per (row, block): the values have
// the same distribution and every row differs, at the cost of a copy.
void FillTensor(const Init& init, uint32_t type, int64_t row_length, int64_t rows,
                uint64_t stream, tensor::ThreadPool& pool, std::span<uint8_t> out) {
  const size_t row_bytes = tensor::RowBytes(type, row_length);
  const int64_t block = tensor::BlockSize(type);
  const bool small = rows * row_length <= (int64_t{1} << 20);
  if (block == 1 || small || !init.fixed.empty()) {
    pool.ParallelFor(rows, [&](int64_t begin, int64_t end) {
      std::vector<float> row(static_cast<size_t>(row_length));
      for (int64_t r = begin; r < end; ++r) {
        FillRow(init, stream, r, row.data(), row_length);
        tensor::QuantizeRow(type, row.data(), out.data() + static_cast<size_t>(r) * row_bytes,
                            row_length);
      }
    });
    return;
  }
  constexpr int64_t kPoolBlocks = 4096;
  const size_t block_bytes = tensor::BlockBytes(type);
  std::vector<uint8_t> blocks(static_cast<size_t>(kPoolBlocks) * block_bytes);
  {
    std::vector<float> values(static_cast<size_t>(kPoolBlocks * block));
    FillRow(init, stream, -1, values.data(), kPoolBlocks * block);
    tensor::QuantizeRow(type, values.data(), blocks.data(), kPoolBlocks * block);
  }
  const int64_t blocks_per_row = row_length / block;
  pool.ParallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      uint8_t* dst = out.data() + static_cast<size_t>(r) * row_bytes;
      uint64_t state = SplitMix(stream + static_cast<uint64_t>(r) * 0x632BE59BD9B4E019ull);
      for (int64_t b = 0; b < blocks_per_row; ++b) {
        state = SplitMix(state);
        const size_t pick = static_cast<size_t>(state % kPoolBlocks);
        std::memcpy(dst + static_cast<size_t>(b) * block_bytes, blocks.data() + pick * block_bytes,
                    block_bytes);
      }
    }
  });
}

// Adds `t` to `w` as a lazily written tensor of random weights in `type` (drawn from `stream`
// when the file is written, on `pool`); `before`, when set, runs first (progress reporting).
void AddRandomTensor(gguf::Writer& w, std::shared_ptr<PlannedTensor> t, uint32_t type,
                     uint64_t stream, std::shared_ptr<tensor::ThreadPool> pool,
                     std::function<void()> before = {}) {
  const int64_t row_length = t->shape[0];
  int64_t rows = 1;
  for (size_t d = 1; d < t->shape.size(); ++d) rows *= t->shape[d];
  const uint64_t n_bytes = tensor::RowBytes(type, row_length) * static_cast<uint64_t>(rows);
  w.AddLazyTensor(t->name, t->shape, type, n_bytes,
                  [t, type, row_length, rows, stream, pool,
                   before = std::move(before)](std::span<uint8_t> out) {
                    if (before) before();
                    FillTensor(t->init, type, row_length, rows, stream, *pool, out);
                  });
}

const Variant* FindVariant(const std::string& like) {
  for (const Variant& v : kVariants) {
    if (like == v.name) return &v;
  }
  return nullptr;
}

}  // namespace

std::vector<std::string> VariantNames() {
  std::vector<std::string> names;
  for (const Variant& v : kVariants) names.emplace_back(v.name);
  return names;
}

void MakeModel(const MakeModelOptions& options) {
  const Variant* v = FindVariant(options.like);
  if (!v) {
    std::string names;
    for (const auto& n : VariantNames()) names += (names.empty() ? "" : ", ") + n;
    ThrowUsage("unknown model shape '" + options.like + "'", "use --like with one of " + names);
  }
  if (!options.preset) ThrowUsage("no weight type given", "use --type with one of " + PresetNames());
  gguf::File vocab = gguf::File::Open(options.vocab_path);
  const auto* tokens = vocab.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens || tokens->size() != static_cast<size_t>(kVocab)) {
    ThrowInvalidInput("'" + options.vocab_path + "' does not hold the Gemma 4 vocabulary (" +
                          std::to_string(kVocab) + " tokens in tokenizer.ggml.tokens)",
                      "pass ../shared/fixtures/tokenizer/gemma-4-vocab.gguf or a Gemma 4 model");
  }

  Planner planner(*v);
  std::vector<PlannedTensor> plan = planner.Plan();

  gguf::Writer w;
  const std::string a = "gemma4.";
  w.SetString("general.architecture", "gemma4");
  w.SetString("general.type", "model");
  w.SetString("general.name", std::string("hearth-random-") + v->name);
  w.SetString("general.description",
              std::string("random weights with the dimensions of Gemma 4 ") + v->name +
                  ", made by hearth make-model (seed " + std::to_string(options.seed) +
                  "); not a language model");
  w.SetUint32(a + "block_count", static_cast<uint32_t>(v->n_layer));
  w.SetUint32(a + "context_length", static_cast<uint32_t>(v->context_length));
  w.SetUint32(a + "embedding_length", static_cast<uint32_t>(v->n_embd));
  if (v->double_wide_shared_mlp) {
    std::vector<int32_t> ff;
    for (int l = 0; l < v->n_layer; ++l) ff.push_back(planner.FeedForward(l));
    w.SetInt32Array(a + "feed_forward_length", ff);
  } else {
    w.SetUint32(a + "feed_forward_length", static_cast<uint32_t>(v->n_ff));
  }
  w.SetUint32(a + "attention.head_count", static_cast<uint32_t>(v->n_head));
  if (v->n_kv_full != v->n_kv_sliding) {
    std::vector<int32_t> kv;
    for (int l = 0; l < v->n_layer; ++l) kv.push_back(planner.IsFull(l) ? v->n_kv_full : v->n_kv_sliding);
    w.SetInt32Array(a + "attention.head_count_kv", kv);
  } else {
    w.SetUint32(a + "attention.head_count_kv", static_cast<uint32_t>(v->n_kv_sliding));
  }
  w.SetFloat32(a + "rope.freq_base", 1e6f);
  w.SetFloat32(a + "rope.freq_base_swa", 1e4f);
  w.SetFloat32(a + "attention.layer_norm_rms_epsilon", 1e-6f);
  if (v->n_expert > 0) {
    w.SetUint32(a + "expert_count", static_cast<uint32_t>(v->n_expert));
    w.SetUint32(a + "expert_used_count", static_cast<uint32_t>(v->n_expert_used));
    w.SetUint32(a + "expert_feed_forward_length", static_cast<uint32_t>(v->expert_ff));
  }
  w.SetUint32(a + "attention.key_length", static_cast<uint32_t>(v->head_dim_full));
  w.SetUint32(a + "attention.value_length", static_cast<uint32_t>(v->head_dim_full));
  w.SetUint32(a + "attention.key_length_swa", static_cast<uint32_t>(v->head_dim_sliding));
  w.SetUint32(a + "attention.value_length_swa", static_cast<uint32_t>(v->head_dim_sliding));
  w.SetFloat32(a + "final_logit_softcapping", 30.0f);
  w.SetUint32(a + "attention.sliding_window", static_cast<uint32_t>(v->sliding_window));
  w.SetUint32(a + "attention.shared_kv_layers", static_cast<uint32_t>(v->shared_kv_layers));
  w.SetUint32(a + "embedding_length_per_layer_input", static_cast<uint32_t>(v->per_layer_input));
  {
    // std::vector<bool> has no contiguous storage to hand out as a span.
    const auto n = static_cast<size_t>(v->n_layer);
    std::unique_ptr<bool[]> sliding(new bool[n]);
    for (size_t l = 0; l < n; ++l) sliding[l] = !planner.IsFull(static_cast<int>(l));
    w.SetBoolArray(a + "attention.sliding_window_pattern", {sliding.get(), n});
  }
  w.SetUint32(a + "rope.dimension_count", static_cast<uint32_t>(v->head_dim_full));
  w.SetUint32(a + "rope.dimension_count_swa", static_cast<uint32_t>(v->head_dim_sliding));
  for (const auto& [key, value] : vocab.metadata()) {
    if (key.rfind("tokenizer.", 0) == 0) w.CopyValue(vocab, key);
  }
  w.SetUint32("general.file_type", options.preset->ftype);
  w.SetUint32("general.quantization_version", 2);

  int attn_v_count = 0;
  for (const auto& t : plan) attn_v_count += t.name.find("attn_v.weight") != std::string::npos;
  auto pool = std::make_shared<tensor::ThreadPool>(ResolveThreads(options.threads));
  int attn_v_index = 0;
  const int total = static_cast<int>(plan.size());
  for (int i = 0; i < total; ++i) {
    auto t = std::make_shared<PlannedTensor>(std::move(plan[static_cast<size_t>(i)]));
    TensorRole role{t->name, t->shape, t->layer, v->n_layer, 0, attn_v_count, v->n_expert};
    if (t->name.find("attn_v.weight") != std::string::npos) role.attn_v_index = attn_v_index++;
    uint32_t type = tensor::kF32;
    if (IsQuantizable(role)) {
      type = ChooseType(*options.preset, role);
    } else if (t->name.find("per_layer_model_proj") != std::string::npos) {
      // Never quantized by llama-quantize: it keeps the float type (BF16 in quantized files).
      const uint32_t d = options.preset->default_type;
      type = d == tensor::kF32 || d == tensor::kF16 ? d : tensor::kBF16;
    }
    const uint64_t stream = SplitMix(options.seed * 1000003ull + static_cast<uint64_t>(i));
    std::function<void()> report;
    if (options.progress) {
      report = [progress = options.progress, name = t->name, i, total] {
        progress(name, i + 1, total);
      };
    }
    AddRandomTensor(w, t, type, stream, pool, std::move(report));
  }
  w.WriteFile(options.output);
}

void MakeAudioProjector(const MakeProjectorOptions& options) {
  const Variant* v = FindVariant(options.like);
  if (v == nullptr || v->per_layer_input == 0) {
    ThrowUsage("only e2b and e4b have an audio encoder", "use --like e2b or --like e4b");
  }
  if (options.type != tensor::kF32 && options.type != tensor::kF16 &&
      options.type != tensor::kQ8_0) {
    ThrowUsage("the audio projector is written in F32, F16 or Q8_0", "use --type F16 or Q8_0");
  }
  constexpr int64_t kE = 1024, kFf = 4096, kHeads = 8, kMel = 128, kC0 = 128, kC1 = 32, kOut = 1536,
                    kBlocks = 12;
  const int64_t d = kE / kHeads;
  gguf::Writer w;
  w.SetString("general.architecture", "clip");
  w.SetString("general.type", "mmproj");
  w.SetString("general.name", std::string("hearth-random-") + v->name + "-audio");
  w.SetBool("clip.has_audio_encoder", true);
  w.SetString("clip.audio.projector_type", "gemma4a");
  w.SetUint32("clip.audio.embedding_length", kE);
  w.SetUint32("clip.audio.feed_forward_length", kFf);
  w.SetUint32("clip.audio.block_count", kBlocks);
  w.SetUint32("clip.audio.attention.head_count", kHeads);
  w.SetUint32("clip.audio.num_mel_bins", kMel);
  w.SetFloat32("clip.audio.attention.layer_norm_epsilon", 1e-6F);
  const int64_t text_width = options.text_width > 0 ? options.text_width : v->n_embd;
  w.SetUint32("clip.audio.projection_dim", static_cast<uint32_t>(text_width));

  std::vector<PlannedTensor> plan;
  auto add = [&](std::string name, std::vector<int64_t> shape, Init init) {
    plan.push_back({std::move(name), std::move(shape), std::move(init), -1});
  };
  auto proj = [](int64_t fan_in) { return Gaussianish(1.0 / std::sqrt(double(fan_in))); };
  add("a.conv1d.0.weight", {3, 3, 1, kC0}, proj(9));
  add("a.conv1d.0.norm.weight", {kC0}, Around(1.0, 0.15));
  add("a.conv1d.1.weight", {3, 3, kC0, kC1}, proj(9 * kC0));
  add("a.conv1d.1.norm.weight", {kC1}, Around(1.0, 0.15));
  const int64_t f2 = kMel / 4;
  add("a.input_projection.weight", {kC1 * f2, kE}, proj(kC1 * f2));
  for (int64_t l = 0; l < kBlocks; ++l) {
    const std::string p = "a.blk." + std::to_string(l) + ".";
    for (const char* suffix : {"", "_1"}) {
      const std::string sfx = suffix;
      add(p + "ffn_norm" + sfx + ".weight", {kE}, Around(1.0, 0.15));
      add(p + "ffn_up" + sfx + ".weight", {kE, kFf}, proj(kE));
      add(p + "ffn_down" + sfx + ".weight", {kFf, kE}, proj(kFf));
      add(p + "ffn_post_norm" + sfx + ".weight", {kE}, Around(1.0, 0.15));
    }
    add(p + "attn_pre_norm.weight", {kE}, Around(1.0, 0.15));
    for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_out", "attn_k_rel"}) {
      add(p + m + ".weight", {kE, kE}, proj(kE));
    }
    add(p + "per_dim_scale.weight", {d}, Around(std::log(2.0), 0.2));
    add(p + "per_dim_k_scale.weight", {d}, Around(std::log(2.0), 0.2));
    add(p + "attn_post_norm.weight", {kE}, Around(1.0, 0.15));
    add(p + "conv_norm.weight", {kE}, Around(1.0, 0.15));
    add(p + "conv_pw1.weight", {kE, 2 * kE}, proj(kE));
    add(p + "conv_dw.weight", {5, kE}, proj(5));
    add(p + "norm_conv.weight", {kE}, Around(1.0, 0.15));
    add(p + "conv_pw2.weight", {kE, kE}, proj(kE));
    add(p + "ln2.weight", {kE}, Around(1.0, 0.15));
  }
  add("a.pre_encode.out.weight", {kE, kOut}, proj(kE));
  add("a.pre_encode.out.bias", {kOut}, Gaussianish(0.02));
  add("mm.a.input_projection.weight", {kOut, text_width}, proj(kOut));

  auto pool = std::make_shared<tensor::ThreadPool>(ResolveThreads(options.threads));
  for (size_t i = 0; i < plan.size(); ++i) {
    auto t = std::make_shared<PlannedTensor>(std::move(plan[i]));
    // As llama.cpp's converter: 1-D tensors and the convolutions (SSCP, input projection,
    // depthwise) stay F32 (multimodal spec §1.5).
    const bool keep_f32 = t->shape.size() == 1 || t->name.find("conv1d") != std::string::npos ||
                          t->name.find("conv_dw") != std::string::npos ||
                          t->name == "a.input_projection.weight";
    const uint32_t type = keep_f32 ? tensor::kF32 : options.type;
    AddRandomTensor(w, t, type, SplitMix(options.seed * 1000033ULL + i), pool);
  }
  w.WriteFile(options.output);
}

void MakeVisionProjector(const MakeProjectorOptions& options) {
  const Variant* v = FindVariant(options.like);
  if (v == nullptr) {
    std::string names;
    for (const auto& n : VariantNames()) names += (names.empty() ? "" : ", ") + n;
    ThrowUsage("unknown model shape '" + options.like + "'", "use --like with one of " + names);
  }
  if (options.type != tensor::kF32 && options.type != tensor::kF16 &&
      options.type != tensor::kQ8_0) {
    ThrowUsage("the vision projector is written in F32, F16 or Q8_0", "use --type F16 or Q8_0");
  }
  // The small models (per-layer inputs) share one tower, the two large ones another (spec §4).
  const bool small = v->per_layer_input != 0;
  const int64_t kE = small ? 768 : 1152, kLayers = small ? 16 : 27, kHeads = small ? 12 : 16,
                kFf = small ? 3072 : 4304, kPatch = 16, kPosRows = 10240;
  const int64_t d = kE / kHeads;
  gguf::Writer w;
  w.SetString("general.architecture", "clip");
  w.SetString("general.type", "mmproj");
  w.SetString("general.name", std::string("hearth-random-") + v->name + "-vision");
  w.SetString("general.description",
              std::string("random weights with the dimensions of the Gemma 4 ") + v->name +
                  " vision tower, made by hearth make-model (seed " + std::to_string(options.seed) +
                  "); not a trained model");
  w.SetUint32("general.file_type", options.type == tensor::kF32   ? 0U
                                   : options.type == tensor::kF16 ? 1U
                                                                  : 7U);
  w.SetBool("clip.has_vision_encoder", true);
  const int64_t text_width = options.text_width > 0 ? options.text_width : v->n_embd;
  w.SetUint32("clip.vision.projection_dim", static_cast<uint32_t>(text_width));
  w.SetUint32("clip.vision.image_size", 224);
  w.SetUint32("clip.vision.patch_size", kPatch);
  w.SetUint32("clip.vision.embedding_length", kE);
  w.SetUint32("clip.vision.feed_forward_length", kFf);
  w.SetUint32("clip.vision.block_count", kLayers);
  w.SetUint32("clip.vision.attention.head_count", kHeads);
  w.SetFloat32Array("clip.vision.image_mean", std::vector<float>{0.0F, 0.0F, 0.0F});
  w.SetFloat32Array("clip.vision.image_std", std::vector<float>{1.0F, 1.0F, 1.0F});
  w.SetString("clip.vision.projector_type", "gemma4v");
  w.SetFloat32("clip.vision.attention.layer_norm_epsilon", 1e-6F);

  std::vector<PlannedTensor> plan;
  auto add = [&](std::string name, std::vector<int64_t> shape, Init init) {
    plan.push_back({std::move(name), std::move(shape), std::move(init), -1});
  };
  auto proj = [](int64_t fan_in) { return Gaussianish(1.0 / std::sqrt(double(fan_in))); };
  // A clamped linear (spec §1.4) in the large towers: wide ranges that clip a few activations.
  auto linear = [&](const std::string& name, int64_t n_in, int64_t n_out) {
    add(name + ".weight", {n_in, n_out}, proj(n_in));
    if (small) return;
    add(name + ".input_min", {1}, Init{-6.0F, 2.0F, {}});
    add(name + ".input_max", {1}, Init{6.0F, 2.0F, {}});
    add(name + ".output_min", {1}, Init{-8.0F, 2.0F, {}});
    add(name + ".output_max", {1}, Init{8.0F, 2.0F, {}});
  };
  add("v.patch_embd.weight", {kPatch, kPatch, 3, kE}, proj(kPatch * kPatch * 3));
  add("v.position_embd.weight", {kE, kPosRows, 2}, Gaussianish(0.5));
  for (int64_t l = 0; l < kLayers; ++l) {
    const std::string p = "v.blk." + std::to_string(l) + ".";
    add(p + "ln1.weight", {kE}, Around(1.0, 0.15));
    for (const char* m : {"attn_q", "attn_k", "attn_v"}) linear(p + m, kE, kE);
    // Centred on sqrt(1/sqrt(d)): q·k has std ≈ 1 at attention scale 1 (fixture README §2).
    add(p + "attn_q_norm.weight", {d}, Around(std::sqrt(1.0 / std::sqrt(double(d))), 0.15));
    add(p + "attn_k_norm.weight", {d}, Around(std::sqrt(1.0 / std::sqrt(double(d))), 0.15));
    linear(p + "attn_out", kE, kE);
    add(p + "attn_post_norm.weight", {kE}, Around(0.5, 0.15));
    add(p + "ln2.weight", {kE}, Around(1.0, 0.15));
    linear(p + "ffn_gate", kE, kFf);
    linear(p + "ffn_up", kE, kFf);
    linear(p + "ffn_down", kFf, kE);
    add(p + "ffn_post_norm.weight", {kE}, Around(0.5, 0.15));
    add(p + "out_scale.weight", {1}, Around(0.8, 0.25));
  }
  if (!small) {
    add("v.std_bias", {kE}, Gaussianish(0.1));
    add("v.std_scale", {kE}, Around(1.0, 0.15));
  }
  add("mm.input_projection.weight", {kE, text_width}, proj(kE));

  auto pool = std::make_shared<tensor::ThreadPool>(ResolveThreads(options.threads));
  for (size_t i = 0; i < plan.size(); ++i) {
    auto t = std::make_shared<PlannedTensor>(std::move(plan[i]));
    // The converter's rules (spec §1.5).
    uint32_t type = options.type;
    if (t->shape.size() == 1 || t->name == "v.position_embd.weight") {
      type = tensor::kF32;
    } else if (t->name == "v.patch_embd.weight") {
      type = options.type == tensor::kF16 ? tensor::kF16 : tensor::kF32;
    } else if (type == tensor::kQ8_0 && t->shape[0] % 32 != 0) {
      type = tensor::kF16;
    }
    AddRandomTensor(w, t, type, SplitMix(options.seed * 1000039ULL + i), pool);
  }
  w.WriteFile(options.output);
}

void MakeLora(const MakeLoraOptions& options) {
  if (options.rank < 1 || options.rank > 1024) {
    ThrowUsage("--rank " + std::to_string(options.rank) + " is out of range", "use 1 to 1024");
  }
  if (options.type != tensor::kF32 && options.type != tensor::kF16) {
    ThrowUsage("the adapter type must be F32 or F16");
  }
  const gguf::File base = gguf::File::Open(options.base);
  const std::string arch(base.GetString("general.architecture").value_or(""));
  if (arch != "gemma4") {
    ThrowInvalidInput(options.base + " is not a gemma4 model (general.architecture '" + arch + "')",
                      "give the base model the adapter is for");
  }
  gguf::Writer w;
  w.SetString("general.architecture", arch);
  w.SetString("general.type", "adapter");
  w.SetString("adapter.type", "lora");
  w.SetString("general.name", "hearth-random-lora-r" + std::to_string(options.rank));
  w.SetFloat32("adapter.lora.alpha",
               options.alpha != 0 ? options.alpha : static_cast<float>(options.rank));
  static const char* kTargets[] = {".attn_q.weight",      ".attn_k.weight",   ".attn_v.weight",
                                   ".attn_output.weight", ".ffn_gate.weight", ".ffn_up.weight",
                                   ".ffn_down.weight"};
  const int64_t r = options.rank;
  int index = 0;
  for (const auto& t : base.tensors()) {
    const bool target = t.name.rfind("blk.", 0) == 0 && t.shape.size() == 2 &&
                        std::any_of(std::begin(kTargets), std::end(kTargets),
                                    [&](const char* s) { return t.name.ends_with(s); });
    if (!target) continue;
    const int64_t n_in = t.shape[0], n_out = t.shape[1];
    // A's rows have unit variance over sqrt(n_in) (so A x is O(|x| / sqrt(n_in))), B's values
    // are small: the delta is a few percent of W x for unit-variance weights.
    const Init a_init = Gaussianish(1.0 / std::sqrt(static_cast<double>(n_in)));
    const Init b_init = Gaussianish(0.02 / std::sqrt(static_cast<double>(r)));
    for (int half = 0; half < 2; ++half) {
      const int64_t row_length = half == 0 ? n_in : r;
      const int64_t rows = half == 0 ? r : n_out;
      const Init init = half == 0 ? a_init : b_init;
      const uint32_t type = options.type;
      const uint64_t stream = SplitMix(options.seed * 7919ull + static_cast<uint64_t>(index++));
      const uint64_t n_bytes = tensor::RowBytes(type, row_length) * static_cast<uint64_t>(rows);
      w.AddLazyTensor(t.name + (half == 0 ? ".lora_a" : ".lora_b"), {row_length, rows}, type,
                      n_bytes, [=](std::span<uint8_t> out) {
                        tensor::ThreadPool pool(1);
                        FillTensor(init, type, row_length, rows, stream, pool, out);
                      });
    }
  }
  if (index == 0) {
    ThrowInvalidInput(options.base + " has no attention or MLP weights to adapt",
                      "give a Gemma 4 model (hearth make-model --like e4b writes one)");
  }
  w.WriteFile(options.output);
}

}  // namespace hearth::convert
