// The gemma4v vision encoder (spec §4): patch convolution + learned column/row position tables,
// ViT layers (RMSNorm, per-head q/k norms, 2-D NEOX RoPE, unscaled full attention over all
// patches, gated MLP, layer scalar), k×k average pooling, optional standardisation and the
// projection into the text model. Activations are [rows][width] F32; every linear and both
// attention products run through tensor::MatMul, batched over all patches.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

#include "base/error.h"
#include "vision/vision.h"

namespace hearth::vision {
namespace {

constexpr float kRopeBase = 100.0F;  // fixed in llama.cpp for gemma4v
constexpr int kDefaultPool = 3;      // clip.vision.projector.scale_factor absent

enum class Act { kGeluQuick, kGelu, kSilu };

// A linear layer with llama.cpp's optional clamps (spec §1.4).
struct Linear {
  tensor::Matrix m;
  float in_min = -std::numeric_limits<float>::max();
  float in_max = std::numeric_limits<float>::max();
  float out_min = -std::numeric_limits<float>::max();
  float out_max = std::numeric_limits<float>::max();
  std::vector<float> bias;
};

struct Layer {
  std::vector<float> ln1, q_norm, k_norm, attn_post_norm, ln2, ffn_post_norm;
  Linear q, k, v, out, gate, up, down;
  float out_scale = 1.0F;
};

// The layer hyper-parameters.
struct Shape {
  int width = 0, heads = 0, head_dim = 0;
  float eps = 1e-6F;
  Act act = Act::kGeluQuick;
};

}  // namespace

struct Encoder::Weights : Shape {
  std::shared_ptr<const gguf::File> file;
  int patch = 0, pool = kDefaultPool, n_pos = 0, n_text = 0;
  std::array<float, 3> mean{}, std{};
  // Patch kernel as fp16-rounded [E][3·p·p] (ggml's conv_2d multiplies fp16-rounded inputs by an
  // fp16-rounded kernel, spec §1.5), and the position tables [2][n_pos][E].
  std::vector<float> patch_kernel, pos_table;
  std::vector<Layer> layers;
  std::vector<float> std_bias, std_scale;
  Linear proj;
};

namespace {

[[noreturn]] void BadFile(const gguf::File& f, const std::string& what) {
  ThrowInvalidInput("vision projector '" + f.path() + "': " + what,
                    "use the mmproj file made for this model by llama.cpp's converter");
}

const gguf::TensorInfo* Find(const gguf::File& f, const std::string& name, bool required) {
  const gguf::TensorInfo* t = f.FindTensor(name);
  if (t == nullptr && required) {
    BadFile(f, "tensor '" + name + "' is missing");
  }
  return t;
}

std::vector<float> Floats(const gguf::File& f, const std::string& name, int64_t n,
                          bool required = true) {
  const gguf::TensorInfo* t = Find(f, name, required);
  if (t == nullptr) {
    return {};
  }
  if (n >= 0 && t->n_elements() != n) {
    BadFile(f, "tensor '" + name + "' has " + std::to_string(t->n_elements()) +
                   " elements, expected " + std::to_string(n));
  }
  if (!tensor::IsSupportedType(t->type_id) || t->n_elements() % tensor::BlockSize(t->type_id)) {
    BadFile(f, "tensor '" + name + "' has unsupported type " + gguf::TensorTypeName(t->type_id));
  }
  std::vector<float> out(static_cast<size_t>(t->n_elements()));
  tensor::DequantizeRow(t->type_id, t->data, out.data(), t->n_elements());
  return out;
}

float Scalar(const gguf::File& f, const std::string& name, float fallback) {
  if (f.FindTensor(name) == nullptr) {
    return fallback;
  }
  return Floats(f, name, 1)[0];
}

Linear LoadLinear(const gguf::File& f, const std::string& name, int64_t in, int64_t out) {
  const gguf::TensorInfo* t = Find(f, name + ".weight", true);
  if (t->shape.size() != 2 || t->shape[0] != in || t->shape[1] != out) {
    BadFile(f, "tensor '" + name + ".weight' should be [" + std::to_string(in) + ", " +
                   std::to_string(out) + "]");
  }
  if (!tensor::IsSupportedType(t->type_id) || in % tensor::BlockSize(t->type_id) != 0) {
    BadFile(
        f, "tensor '" + name + ".weight' has unsupported type " + gguf::TensorTypeName(t->type_id));
  }
  Linear l;
  l.m = {t->type_id, out, in, t->data, tensor::Layout::kRows};
  l.in_min = Scalar(f, name + ".input_min", l.in_min);
  l.in_max = Scalar(f, name + ".input_max", l.in_max);
  l.out_min = Scalar(f, name + ".output_min", l.out_min);
  l.out_max = Scalar(f, name + ".output_max", l.out_max);
  l.bias = Floats(f, name + ".bias", out, false);
  return l;
}

int Meta(const gguf::File& f, const std::string& key, int max = 1 << 20) {
  const int64_t v = f.RequireInt(key);
  if (v < 1 || v > max) {
    BadFile(f, "'" + key + "' out of range");
  }
  return static_cast<int>(v);
}

float RoundFp16(float x) { return tensor::Fp16ToFp32(tensor::Fp32ToFp16(x)); }

// ---- computation helpers ([rows][width] row-major activations) ----

std::vector<float> Apply(const Linear& l, const std::vector<float>& x, int64_t rows,
                         tensor::ThreadPool* pool) {
  const int64_t in = l.m.cols;
  const float* src = x.data();
  std::vector<float> clamped;
  if (l.in_min > -std::numeric_limits<float>::max() ||
      l.in_max < std::numeric_limits<float>::max()) {
    clamped.assign(x.begin(), x.begin() + rows * in);
    for (float& v : clamped) {
      v = std::clamp(v, l.in_min, l.in_max);
    }
    src = clamped.data();
  }
  std::vector<float> y(static_cast<size_t>(rows * l.m.rows));
  tensor::MatMulEncoder(l.m, src, rows, y.data(), pool);
  const int64_t out = l.m.rows;
  for (int64_t r = 0; r < rows; ++r) {
    float* row = y.data() + r * out;
    for (int64_t o = 0; o < out; ++o) {
      float v = std::clamp(row[o], l.out_min, l.out_max);
      if (!l.bias.empty()) {
        v += l.bias[static_cast<size_t>(o)];
      }
      row[o] = v;
    }
  }
  return y;
}

// In place, per group of `width` values: x / sqrt(mean(x²) + eps) (· w when given).
void RmsNormInPlace(std::vector<float>& x, int64_t width, const std::vector<float>& w, float eps) {
  const int64_t groups = static_cast<int64_t>(x.size()) / width;
  for (int64_t g = 0; g < groups; ++g) {
    float* v = x.data() + g * width;
    double ss = 0;
    for (int64_t i = 0; i < width; ++i) {
      ss += double{v[i]} * v[i];
    }
    const auto scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(width) + eps));
    for (int64_t i = 0; i < width; ++i) {
      v[i] = v[i] * scale * (w.empty() ? 1.0F : w[static_cast<size_t>(i)]);
    }
  }
}

std::vector<float> RmsNorm(std::vector<float> x, int64_t width, const std::vector<float>& w,
                           float eps) {
  RmsNormInPlace(x, width, w, eps);
  return x;
}

// ggml's activations go through fp16 tables: input rounded to fp16, output stored as fp16.
float Activate(Act act, float x) {
  switch (act) {
    case Act::kGeluQuick: {
      const float h = RoundFp16(x);
      return RoundFp16(h * (1.0F / (1.0F + std::exp(-1.702F * h))));
    }
    case Act::kGelu: {
      if (x <= -10.0F) {
        return 0.0F;
      }
      if (x >= 10.0F) {
        return x;
      }
      const float h = RoundFp16(x);
      constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876F;
      return RoundFp16(0.5F * h *
                       (1.0F + std::tanh(kSqrt2OverPi * h * (1.0F + 0.044715F * h * h))));
    }
    case Act::kSilu:
      return x / (1.0F + std::exp(-x));
  }
  return x;
}

// Activate over a whole buffer: ggml looks GELU up in a table indexed by the fp16 input, and so
// does this (the table holds Activate's own value for every half, so results are identical to
// calling it per element, at a fraction of the tanh/exp cost: 50 M values per image at 280).
void ActivateInPlace(Act act, float* x, int64_t n) {
  if (act == Act::kSilu) {
    for (int64_t i = 0; i < n; ++i) x[i] = Activate(act, x[i]);
    return;
  }
  static const auto kTables = [] {
    std::array<std::vector<float>, 2> t;
    for (int which = 0; which < 2; ++which) {
      t[which].resize(1 << 16);
      for (uint32_t bits = 0; bits < (1U << 16); ++bits) {
        const float h = tensor::Fp16ToFp32(static_cast<uint16_t>(bits));
        t[which][bits] = Activate(which == 0 ? Act::kGeluQuick : Act::kGelu, h);
      }
    }
    return t;
  }();
  const std::vector<float>& table = kTables[act == Act::kGeluQuick ? 0 : 1];
  constexpr int64_t kChunk = 1024;
  std::array<uint16_t, kChunk> halves;
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t len = std::min(kChunk, n - i0);
    tensor::Fp32ToFp16Row(x + i0, halves.data(), len);
    for (int64_t i = 0; i < len; ++i) {
      const float v = x[i0 + i];
      // Activate's own cut-offs for GELU come before its rounding to fp16.
      if (act == Act::kGelu && (v <= -10.0F || v >= 10.0F)) {
        x[i0 + i] = Activate(act, v);
      } else {
        x[i0 + i] = table[halves[static_cast<size_t>(i)]];
      }
    }
  }
}

// NEOX rotation of `n` values (pairs (j, j + n/2)) by angles pos · base^(−2j/n), with ggml's
// iterative float angle.
void Rope(float* x, int n, float pos) {
  const float theta_scale = std::pow(kRopeBase, -2.0F / static_cast<float>(n));
  float theta = pos;
  for (int j = 0; j < n / 2; ++j) {
    const float c = std::cos(theta);
    const float s = std::sin(theta);
    const float x0 = x[j];
    const float x1 = x[j + n / 2];
    x[j] = x0 * c - x1 * s;
    x[j + n / 2] = x0 * s + x1 * c;
    theta *= theta_scale;
  }
}

// Full (unmasked, scale 1.0) attention of every patch over every patch, per head. Q·Kᵀ and P·V are
// register-tiled GEMMs (tensor::GemmF32) over blocks of queries; heads × query blocks are spread
// over the pool.
std::vector<float> Attention(const std::vector<float>& q, const std::vector<float>& k,
                             const std::vector<float>& v, int64_t n, int heads, int d,
                             tensor::ThreadPool* pool) {
  const int64_t e = int64_t{heads} * d;
  // Per head: K transposed to [d][n] (so Q·Kᵀ is a plain row-major product), V as [n][d] rows.
  std::vector<float> kt(static_cast<size_t>(n * e));
  std::vector<float> vh(static_cast<size_t>(n * e));
  for (int h = 0; h < heads; ++h) {
    float* kd = kt.data() + h * n * d;
    float* vd = vh.data() + h * n * d;
    for (int64_t i = 0; i < n; ++i) {
      for (int t = 0; t < d; ++t) {
        kd[t * n + i] = k[static_cast<size_t>(i * e + h * d + t)];
        vd[i * d + t] = v[static_cast<size_t>(i * e + h * d + t)];
      }
    }
  }
  constexpr int64_t kBlock = 64;
  constexpr int kLanes = 16;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<float> out(static_cast<size_t>(n * e));
  auto work = [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(kBlock * n));
    std::vector<float> inv_sum(static_cast<size_t>(kBlock));
    for (int64_t job = begin; job < end; ++job) {
      const auto h = static_cast<int>(job / blocks);
      const int64_t q0 = (job % blocks) * kBlock;
      const int64_t nq = std::min(kBlock, n - q0);
      tensor::GemmF32(nq, n, d, q.data() + q0 * e + int64_t{h} * d, e,
                      kt.data() + int64_t{h} * n * d, n, scores.data(), n);
      // Softmax numerators only; each output row is divided by its sum after P·V (d values
      // instead of n). 16 partial maxima and sums so the loops vectorise.
      std::array<float, kLanes> sums{};
      for (int64_t i = 0; i < nq; ++i) {
        float* s = scores.data() + i * n;
        std::array<float, kLanes> mx;
        mx.fill(-std::numeric_limits<float>::infinity());
        int64_t j = 0;
        for (; j + kLanes <= n; j += kLanes) {
          for (int l = 0; l < kLanes; ++l) mx[l] = std::max(mx[l], s[j + l]);
        }
        float m = *std::max_element(mx.begin(), mx.end());
        for (; j < n; ++j) m = std::max(m, s[j]);
        tensor::ExpShifted(s, n, m);
        sums.fill(0.0F);
        for (j = 0; j + kLanes <= n; j += kLanes) {
          for (int l = 0; l < kLanes; ++l) sums[l] += s[j + l];
        }
        float sum = 0;
        for (const float part : sums) sum += part;
        for (; j < n; ++j) sum += s[j];
        inv_sum[static_cast<size_t>(i)] = 1.0F / sum;
      }
      // Straight into this head's columns of the output rows.
      tensor::GemmF32(nq, d, n, scores.data(), n, vh.data() + int64_t{h} * n * d, d,
                      out.data() + q0 * e + int64_t{h} * d, e);
      for (int64_t i = 0; i < nq; ++i) {
        float* o = out.data() + (q0 + i) * e + int64_t{h} * d;
        for (int t = 0; t < d; ++t) o[t] *= inv_sum[static_cast<size_t>(i)];
      }
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(blocks * heads, work);
  } else {
    work(0, blocks * heads);
  }
  return out;
}

void RunLayer(const Shape& w, const Layer& l, std::vector<float>& x, int64_t n,
              const std::vector<float>& pos_x, const std::vector<float>& pos_y,
              tensor::ThreadPool* pool) {
  const int e = w.width;
  const int d = w.head_dim;
  const int64_t qe = int64_t{w.heads} * d;
  const std::vector<float> h = RmsNorm(x, e, l.ln1, w.eps);
  std::vector<float> q = Apply(l.q, h, n, pool);
  std::vector<float> k = Apply(l.k, h, n, pool);
  std::vector<float> v = Apply(l.v, h, n, pool);
  RmsNormInPlace(q, d, l.q_norm, w.eps);
  RmsNormInPlace(k, d, l.k_norm, w.eps);
  RmsNormInPlace(v, d, {}, w.eps);
  // 2-D RoPE: the first half of each head by the patch column, the second by the row.
  for (int64_t i = 0; i < n; ++i) {
    for (int hd = 0; hd < w.heads; ++hd) {
      float* qh = q.data() + i * qe + int64_t{hd} * d;
      float* kh = k.data() + i * qe + int64_t{hd} * d;
      Rope(qh, d / 2, pos_x[static_cast<size_t>(i)]);
      Rope(qh + d / 2, d / 2, pos_y[static_cast<size_t>(i)]);
      Rope(kh, d / 2, pos_x[static_cast<size_t>(i)]);
      Rope(kh + d / 2, d / 2, pos_y[static_cast<size_t>(i)]);
    }
  }
  const std::vector<float> a = Attention(q, k, v, n, w.heads, d, pool);
  const std::vector<float> o = RmsNorm(Apply(l.out, a, n, pool), e, l.attn_post_norm, w.eps);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] += o[i];
  }
  const std::vector<float> h2 = RmsNorm(x, e, l.ln2, w.eps);
  std::vector<float> g = Apply(l.gate, h2, n, pool);
  const std::vector<float> u = Apply(l.up, h2, n, pool);
  ActivateInPlace(w.act, g.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < g.size(); ++i) {
    g[i] *= u[i];
  }
  const std::vector<float> f = RmsNorm(Apply(l.down, g, n, pool), e, l.ffn_post_norm, w.eps);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = (x[i] + f[i]) * l.out_scale;
  }
}

}  // namespace

Encoder::Encoder(std::unique_ptr<Weights> weights) : w_(std::move(weights)) {}
Encoder::~Encoder() = default;

bool Encoder::HasVision(const gguf::File& file) {
  return file.GetBool("clip.has_vision_encoder").value_or(false) &&
         file.FindTensor("v.patch_embd.weight") != nullptr;
}

std::unique_ptr<Encoder> Encoder::Open(const std::string& path) {
  return Load(std::make_shared<const gguf::File>(gguf::File::Open(path)));
}

std::unique_ptr<Encoder> Encoder::Load(std::shared_ptr<const gguf::File> file) {
  const gguf::File& f = *file;
  if (!HasVision(f)) {
    ThrowInvalidInput("'" + f.path() + "' has no vision encoder",
                      "image input needs a Gemma 4 model's mmproj file");
  }
  std::optional<std::string_view> type = f.GetString("clip.projector_type");
  if (!type.has_value()) {
    type = f.GetString("clip.vision.projector_type");
  }
  if (type.has_value() && *type != "gemma4v") {
    BadFile(f, "vision projector type '" + std::string(*type) + "' is not supported (gemma4v is)");
  }
  auto w = std::make_unique<Weights>();
  w->width = Meta(f, "clip.vision.embedding_length");
  w->heads = Meta(f, "clip.vision.attention.head_count", 1024);
  w->head_dim = f.GetInt("clip.vision.attention.head_dim").has_value()
                    ? Meta(f, "clip.vision.attention.head_dim", 4096)
                    : w->width / w->heads;
  if (w->head_dim % 4 != 0) {
    BadFile(f, "head dimension " + std::to_string(w->head_dim) + " is not a multiple of 4");
  }
  const int n_layers = Meta(f, "clip.vision.block_count", 1024);
  w->patch = Meta(f, "clip.vision.patch_size", 1024);
  if (f.GetInt("clip.vision.projector.scale_factor").has_value()) {
    w->pool = Meta(f, "clip.vision.projector.scale_factor", 64);
  }
  const double eps = f.RequireFloat("clip.vision.attention.layer_norm_epsilon");
  if (!(eps > 0 && eps < 1)) {
    BadFile(f, "layer_norm_epsilon out of range");
  }
  w->eps = static_cast<float>(eps);
  const bool gelu = f.GetBool("clip.use_gelu").value_or(false);
  const bool silu = f.GetBool("clip.use_silu").value_or(false);
  if (gelu && silu) {
    BadFile(f, "both clip.use_gelu and clip.use_silu are set");
  }
  w->act = gelu ? Act::kGelu : silu ? Act::kSilu : Act::kGeluQuick;
  const std::optional<std::vector<float>> mean = f.GetFloatArray("clip.vision.image_mean");
  const std::optional<std::vector<float>> stdv = f.GetFloatArray("clip.vision.image_std");
  if (!mean || !stdv || mean->size() != 3 || stdv->size() != 3) {
    BadFile(f, "clip.vision.image_mean / image_std must hold 3 values");
  }
  for (size_t c = 0; c < 3; ++c) {
    w->mean[c] = (*mean)[c];
    w->std[c] = (*stdv)[c];
    if (!(std::abs(w->std[c]) > 0)) {
      BadFile(f, "clip.vision.image_std must not be 0");
    }
  }
  const int e = w->width;
  const int p = w->patch;
  const gguf::TensorInfo* pk = Find(f, "v.patch_embd.weight", true);
  if (pk->shape.size() != 4 || pk->shape[0] != p || pk->shape[1] != p || pk->shape[2] != 3 ||
      pk->shape[3] != e) {
    BadFile(f, "tensor 'v.patch_embd.weight' should be [patch, patch, 3, width]");
  }
  w->patch_kernel = Floats(f, "v.patch_embd.weight", -1);
  for (float& x : w->patch_kernel) {
    x = RoundFp16(x);
  }
  const gguf::TensorInfo* pt = Find(f, "v.position_embd.weight", true);
  if (pt->shape.size() != 3 || pt->shape[0] != e || pt->shape[2] != 2 || pt->shape[1] < 1) {
    BadFile(f, "tensor 'v.position_embd.weight' should be [width, rows, 2]");
  }
  w->n_pos = static_cast<int>(pt->shape[1]);
  w->pos_table = Floats(f, "v.position_embd.weight", -1);
  const int64_t qe = int64_t{w->heads} * w->head_dim;
  for (int i = 0; i < n_layers; ++i) {
    const std::string b = "v.blk." + std::to_string(i) + ".";
    Layer l;
    l.ln1 = Floats(f, b + "ln1.weight", e);
    l.q = LoadLinear(f, b + "attn_q", e, qe);
    l.k = LoadLinear(f, b + "attn_k", e, qe);
    l.v = LoadLinear(f, b + "attn_v", e, qe);
    l.out = LoadLinear(f, b + "attn_out", qe, e);
    l.q_norm = Floats(f, b + "attn_q_norm.weight", w->head_dim);
    l.k_norm = Floats(f, b + "attn_k_norm.weight", w->head_dim);
    l.attn_post_norm = Floats(f, b + "attn_post_norm.weight", e);
    l.ln2 = Floats(f, b + "ln2.weight", e);
    const gguf::TensorInfo* up = Find(f, b + "ffn_up.weight", true);
    if (up->shape.size() != 2 || up->shape[1] < 1) {
      BadFile(f, "tensor '" + b + "ffn_up.weight' should be 2-D");
    }
    const int64_t ff = up->shape[1];
    l.gate = LoadLinear(f, b + "ffn_gate", e, ff);
    l.up = LoadLinear(f, b + "ffn_up", e, ff);
    l.down = LoadLinear(f, b + "ffn_down", ff, e);
    l.ffn_post_norm = Floats(f, b + "ffn_post_norm.weight", e);
    l.out_scale = Scalar(f, b + "out_scale.weight", 1.0F);
    w->layers.push_back(std::move(l));
  }
  std::vector<float> sb = Floats(f, "v.std_bias", e, false);
  std::vector<float> ss = Floats(f, "v.std_scale", e, false);
  if (!sb.empty() && !ss.empty()) {  // used only when both exist, as llama.cpp does
    w->std_bias = std::move(sb);
    w->std_scale = std::move(ss);
  }
  const gguf::TensorInfo* mm = Find(f, "mm.input_projection.weight", true);
  if (mm->shape.size() != 2 || mm->shape[1] < 1 || mm->shape[1] > 1 << 20) {
    BadFile(f, "tensor 'mm.input_projection.weight' should be [width, text width]");
  }
  w->n_text = static_cast<int>(mm->shape[1]);
  w->proj = LoadLinear(f, "mm.input_projection", e, w->n_text);
  w->file = std::move(file);
  return std::unique_ptr<Encoder>(new Encoder(std::move(w)));
}

int Encoder::TextWidth() const { return w_->n_text; }
int Encoder::PatchSize() const { return w_->patch; }
int Encoder::PoolKernel() const { return w_->pool; }

std::string Encoder::Describe() const {
  const Weights& w = *w_;
  const std::string type =
      w.layers.empty() ? "F32" : gguf::TensorTypeName(w.layers.front().q.m.type);
  return "gemma4v, " + std::to_string(w.layers.size()) + " layers, width " +
         std::to_string(w.width) + ", " + std::to_string(w.heads) + " heads, patch " +
         std::to_string(w.patch) + ", pool " + std::to_string(w.pool) + ", " + type;
}

Canvas Encoder::CanvasOf(const Image& image, int max_tokens) const {
  return CanvasFor(image.width, image.height, Align(), kMinTokens, max_tokens);
}

Pixels Encoder::Preprocess(const Image& image, int max_tokens) const {
  const Canvas c = CanvasOf(image, max_tokens);
  return Normalize(FitAndPad(image, c.width, c.height), w_->mean, w_->std);
}

std::vector<float> Encoder::Encode(const Pixels& pixels, tensor::ThreadPool* pool,
                                   Intermediates* inter) const {
  tensor::RetainLargeAllocations();
  const Weights& w = *w_;
  const int p = w.patch;
  const int align = p * w.pool;
  if (pixels.width < align || pixels.height < align || pixels.width % align != 0 ||
      pixels.height % align != 0 ||
      pixels.data.size() != size_t(pixels.width) * size_t(pixels.height) * 3) {
    ThrowInvalidInput("image canvas " + std::to_string(pixels.width) + "x" +
                      std::to_string(pixels.height) + " is not a multiple of " +
                      std::to_string(align) + " pixels");
  }
  const int wp = pixels.width / p;
  const int hp = pixels.height / p;
  if (wp > w.n_pos || hp > w.n_pos) {
    ThrowInvalidInput("image of " + std::to_string(wp) + "x" + std::to_string(hp) +
                          " patches is too large for this projector's position table (" +
                          std::to_string(w.n_pos) + ")",
                      "use a smaller --image-tokens budget");
  }
  const int64_t n = int64_t{wp} * hp;
  const int e = w.width;
  // im2col: one row of 3·p·p fp16-rounded inputs (2v − 1) per patch, CHW like the kernel.
  const int64_t kk = int64_t{3} * p * p;
  std::vector<float> cols(static_cast<size_t>(n * kk));
  const size_t plane = size_t(pixels.width) * size_t(pixels.height);
  for (int py = 0; py < hp; ++py) {
    for (int px = 0; px < wp; ++px) {
      float* col = cols.data() + (int64_t{py} * wp + px) * kk;
      for (int c = 0; c < 3; ++c) {
        for (int ky = 0; ky < p; ++ky) {
          const float* src = pixels.data.data() + size_t(c) * plane +
                             size_t(py * p + ky) * size_t(pixels.width) + size_t(px * p);
          for (int kx = 0; kx < p; ++kx) {
            col[(c * p + ky) * p + kx] = RoundFp16(2.0F * src[kx] - 1.0F);
          }
        }
      }
    }
  }
  std::vector<float> x(static_cast<size_t>(n * e));
  const tensor::Matrix kernel{tensor::kF32, e, kk, w.patch_kernel.data(), tensor::Layout::kRows};
  tensor::MatMulEncoder(kernel, cols.data(), n, x.data(), pool);
  cols = {};
  std::vector<float> pos_x(static_cast<size_t>(n));
  std::vector<float> pos_y(static_cast<size_t>(n));
  const float* col_table = w.pos_table.data();
  const float* row_table = w.pos_table.data() + size_t(w.n_pos) * size_t(e);
  for (int py = 0; py < hp; ++py) {
    for (int px = 0; px < wp; ++px) {
      const int64_t i = int64_t{py} * wp + px;
      float* xi = x.data() + i * e;
      for (int t = 0; t < e; ++t) {
        xi[t] += col_table[size_t(px) * size_t(e) + size_t(t)] +
                 row_table[size_t(py) * size_t(e) + size_t(t)];
      }
      pos_x[static_cast<size_t>(i)] = static_cast<float>(px);
      pos_y[static_cast<size_t>(i)] = static_cast<float>(py);
    }
  }
  if (inter != nullptr) {
    inter->pos_embd = x;
  }
  for (const Layer& l : w.layers) {
    RunLayer(w, l, x, n, pos_x, pos_y, pool);
    if (inter != nullptr) {
      inter->layer_out.push_back(x);
    }
  }
  // k×k average pooling, row-major output tokens, then ·sqrt(E).
  const int k = w.pool;
  const int tx = wp / k;
  const int ty = hp / k;
  const int64_t tokens = int64_t{tx} * ty;
  std::vector<float> pooled(static_cast<size_t>(tokens * e), 0.0F);
  const float scale = std::sqrt(static_cast<float>(e));
  const auto area = static_cast<float>(k * k);
  for (int y = 0; y < ty; ++y) {
    for (int xx = 0; xx < tx; ++xx) {
      float* dst = pooled.data() + (int64_t{y} * tx + xx) * e;
      for (int ky = 0; ky < k; ++ky) {
        for (int kx = 0; kx < k; ++kx) {
          const float* src = x.data() + (int64_t{y * k + ky} * wp + (xx * k + kx)) * e;
          for (int t = 0; t < e; ++t) {
            dst[t] += src[t];
          }
        }
      }
      for (int t = 0; t < e; ++t) {
        dst[t] = dst[t] / area * scale;
      }
    }
  }
  if (inter != nullptr) {
    inter->pooled = pooled;
  }
  if (!w.std_bias.empty()) {
    for (int64_t i = 0; i < tokens; ++i) {
      for (int t = 0; t < e; ++t) {
        float& v = pooled[static_cast<size_t>(i * e + t)];
        v = (v - w.std_bias[size_t(t)]) * w.std_scale[size_t(t)];
      }
    }
  }
  return Apply(w.proj, RmsNorm(std::move(pooled), e, {}, w.eps), tokens, pool);
}

std::vector<float> Encoder::EncodeImage(const Image& image, int max_tokens,
                                        tensor::ThreadPool* pool) const {
  return Encode(Preprocess(image, max_tokens), pool);
}

}  // namespace hearth::vision
