// The gemma4a conformer encoder (spec §5.3-5.5): two stride-2 convolutions ("SSCP"), conformer
// blocks (half-step FFN, chunked local attention with relative positions, light conv, half-step
// FFN) and the output projections into the text model's width. Activations are [rows][width]
// F32; every linear runs through tensor::MatMul, batched over all rows of the piece.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "audio/audio.h"
#include "base/error.h"

namespace hearth::audio {
namespace {

constexpr float kEps = 1e-6F;
constexpr int kChunk = 12;         // attention: each row sees itself and the 11 rows before it
constexpr float kSoftCap = 50.0F;  // attention logit soft-cap
constexpr int kDwKernel = 5;       // causal depthwise conv of the light-conv module

// A linear layer with llama.cpp's optional clamps (spec §1.4) and an optional bias.
struct Linear {
  tensor::Matrix m;
  float in_min = -std::numeric_limits<float>::max();
  float in_max = std::numeric_limits<float>::max();
  float out_min = -std::numeric_limits<float>::max();
  float out_max = std::numeric_limits<float>::max();
  std::vector<float> bias;
};

struct Block {
  std::vector<float> ffn_norm, ffn_post_norm, attn_pre_norm, attn_post_norm, per_dim_scale,
      per_dim_k_scale, conv_norm, norm_conv, ffn_norm_1, ffn_post_norm_1, ln2, conv_dw,
      conv_dw_bias;
  Linear ffn_up, ffn_down, q, k, v, out, k_rel, pw1, pw2, ffn_up_1, ffn_down_1;
};

}  // namespace

struct Encoder::Weights {
  std::shared_ptr<const gguf::File> file;
  int n_mel = 0, width = 0, heads = 0, head_dim = 0, c0 = 0, c1 = 0, out_width = 0, n_text = 0;
  // SSCP kernels as [c_out][c_in*9] matrices of fp16-rounded values (ggml's conv_2d multiplies
  // fp16-rounded inputs by fp16-rounded kernels, spec §1.5), and their norms.
  std::vector<float> conv0, conv0_bias, norm0, conv1, conv1_bias, norm1;
  Linear input_proj;
  std::vector<Block> blocks;
  Linear out_proj, mm_proj;
  std::vector<float> soft_emb_norm;
};

namespace {

[[noreturn]] void BadFile(const gguf::File& f, const std::string& what) {
  ThrowInvalidInput("audio projector '" + f.path() + "': " + what,
                    "use the mmproj file made for this model by llama.cpp's converter");
}

const gguf::TensorInfo* Find(const gguf::File& f, const std::string& name, bool required) {
  const gguf::TensorInfo* t = f.FindTensor(name);
  if (t == nullptr && required) {
    BadFile(f, "tensor '" + name + "' is missing");
  }
  return t;
}

// A whole tensor as floats; its element count must be `n` when n >= 0.
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
  const gguf::TensorInfo* t = f.FindTensor(name);
  if (t == nullptr) {
    return fallback;
  }
  const std::vector<float> v = Floats(f, name, 1);
  return v[0];
}

// `name`.weight of shape [in, out] (ggml order) with its clamps and optional bias.
Linear LoadLinear(const gguf::File& f, const std::string& name, int64_t in, int64_t out,
                  bool clampable = true) {
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
  if (clampable) {
    l.in_min = Scalar(f, name + ".input_min", l.in_min);
    l.in_max = Scalar(f, name + ".input_max", l.in_max);
    l.out_min = Scalar(f, name + ".output_min", l.out_min);
    l.out_max = Scalar(f, name + ".output_max", l.out_max);
  }
  l.bias = Floats(f, name + ".bias", out, false);
  return l;
}

int Meta(const gguf::File& f, const std::string& key) {
  const int64_t v = f.RequireInt(key);
  if (v < 1 || v > 1 << 20) {
    BadFile(f, "'" + key + "' out of range");
  }
  return static_cast<int>(v);
}

// A conv kernel [3, 3, c_in, c_out] as fp16-rounded [c_out][c_in*9].
std::vector<float> LoadConv(const gguf::File& f, const std::string& name, int c_in, int* c_out) {
  const gguf::TensorInfo* t = Find(f, name, true);
  if (t->shape.size() != 4 || t->shape[0] != 3 || t->shape[1] != 3 || t->shape[2] != c_in ||
      t->shape[3] < 1 || t->shape[3] > 4096) {
    BadFile(f, "tensor '" + name + "' should be [3, 3, " + std::to_string(c_in) + ", C]");
  }
  *c_out = static_cast<int>(t->shape[3]);
  std::vector<float> k = Floats(f, name, -1);
  for (float& x : k) {
    x = tensor::Fp16ToFp32(tensor::Fp32ToFp16(x));
  }
  return k;
}

Block LoadBlock(const gguf::File& f, int i, int e, int d) {
  const std::string p = "a.blk." + std::to_string(i) + ".";
  Block b;
  b.ffn_norm = Floats(f, p + "ffn_norm.weight", e);
  b.ffn_post_norm = Floats(f, p + "ffn_post_norm.weight", e);
  const int64_t ff = Find(f, p + "ffn_up.weight", true)->shape.back();
  b.ffn_up = LoadLinear(f, p + "ffn_up", e, ff);
  b.ffn_down = LoadLinear(f, p + "ffn_down", ff, e);
  b.attn_pre_norm = Floats(f, p + "attn_pre_norm.weight", e, false);
  if (b.attn_pre_norm.empty()) {
    b.attn_pre_norm = Floats(f, p + "ln1.weight", e);
  }
  b.q = LoadLinear(f, p + "attn_q", e, e);
  b.k = LoadLinear(f, p + "attn_k", e, e);
  b.v = LoadLinear(f, p + "attn_v", e, e);
  b.out = LoadLinear(f, p + "attn_out", e, e);
  b.k_rel = LoadLinear(f, p + "attn_k_rel", e, e, /*clampable=*/false);
  b.per_dim_scale = Floats(f, p + "per_dim_scale.weight", d);
  b.per_dim_k_scale = Floats(f, p + "per_dim_k_scale.weight", d);
  b.attn_post_norm = Floats(f, p + "attn_post_norm.weight", e);
  b.conv_norm = Floats(f, p + "conv_norm.weight", e);
  b.pw1 = LoadLinear(f, p + "conv_pw1", e, 2 * int64_t{e});
  b.conv_dw = Floats(f, p + "conv_dw.weight", int64_t{e} * kDwKernel);
  b.conv_dw_bias = Floats(f, p + "conv_dw.bias", e, false);
  b.norm_conv = Floats(f, p + "norm_conv.weight", e);
  b.pw2 = LoadLinear(f, p + "conv_pw2", e, e);
  b.ffn_norm_1 = Floats(f, p + "ffn_norm_1.weight", e);
  const int64_t ff1 = Find(f, p + "ffn_up_1.weight", true)->shape.back();
  b.ffn_up_1 = LoadLinear(f, p + "ffn_up_1", e, ff1);
  b.ffn_down_1 = LoadLinear(f, p + "ffn_down_1", ff1, e);
  b.ffn_post_norm_1 = Floats(f, p + "ffn_post_norm_1.weight", e);
  b.ln2 = Floats(f, p + "ln2.weight", e);
  return b;
}

// ---- computation helpers ([rows][width] row-major activations) ----

void Apply(const Linear& l, const float* x, int64_t rows, float* y, tensor::ThreadPool* pool) {
  const int64_t in = l.m.cols;
  const bool clamp_in =
      l.in_min > -std::numeric_limits<float>::max() || l.in_max < std::numeric_limits<float>::max();
  std::vector<float> clamped;
  if (clamp_in) {
    clamped.assign(x, x + rows * in);
    for (float& v : clamped) {
      v = std::clamp(v, l.in_min, l.in_max);
    }
    x = clamped.data();
  }
  tensor::MatMulEncoder(l.m, x, rows, y, pool);
  const int64_t out = l.m.rows;
  for (int64_t r = 0; r < rows; ++r) {
    float* row = y + r * out;
    for (int64_t o = 0; o < out; ++o) {
      float v = std::clamp(row[o], l.out_min, l.out_max);
      if (!l.bias.empty()) {
        v += l.bias[o];
      }
      row[o] = v;
    }
  }
}

std::vector<float> Apply(const Linear& l, const std::vector<float>& x, int64_t rows,
                         tensor::ThreadPool* pool) {
  std::vector<float> y(static_cast<size_t>(rows * l.m.rows));
  Apply(l, x.data(), rows, y.data(), pool);
  return y;
}

// x / sqrt(mean(x^2) + eps) (* w when given), per row of `width`.
std::vector<float> RmsNorm(const std::vector<float>& x, int64_t width,
                           const std::vector<float>& w) {
  std::vector<float> y(x.size());
  const int64_t rows = static_cast<int64_t>(x.size()) / width;
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x.data() + r * width;
    float* out = y.data() + r * width;
    double ss = 0;
    for (int64_t i = 0; i < width; ++i) {
      ss += double{in[i]} * in[i];
    }
    const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(width) + kEps));
    for (int64_t i = 0; i < width; ++i) {
      out[i] = in[i] * scale * (w.empty() ? 1.0F : w[i]);
    }
  }
  return y;
}

float Silu(float x) { return x / (1.0F + std::exp(-x)); }

// x += scale * y
void AddScaled(std::vector<float>& x, const std::vector<float>& y, float scale) {
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] += scale * y[i];
  }
}

// A stride-2, padding-1, 3x3 convolution over [t][f][c_in] (channel fastest) into
// [t'][f'][c_out], then LayerNorm over channels (weight only) and ReLU. The inputs are rounded to
// fp16 like ggml's im2col; the multiply is a MatMul over rows of im2col, a few time steps at once.
std::vector<float> ConvNormRelu(const std::vector<float>& x, int t_in, int f_in, int c_in,
                                const std::vector<float>& kernel, const std::vector<float>& bias,
                                const std::vector<float>& norm, int c_out, int* t_out, int* f_out,
                                tensor::ThreadPool* pool) {
  const int to = (t_in - 1) / 2 + 1;
  const int fo = (f_in - 1) / 2 + 1;
  *t_out = to;
  *f_out = fo;
  const int64_t k = int64_t{c_in} * 9;
  const tensor::Matrix w{tensor::kF32, c_out, k, kernel.data(), tensor::Layout::kRows};
  std::vector<float> y(static_cast<size_t>(to) * fo * c_out);
  constexpr int kStepRows = 32;  // output time steps per im2col block (bounds its memory)
  std::vector<float> cols;
  for (int t0 = 0; t0 < to; t0 += kStepRows) {
    const int nt = std::min(kStepRows, to - t0);
    cols.assign(static_cast<size_t>(nt) * fo * k, 0.0F);
    for (int dt = 0; dt < nt; ++dt) {
      for (int f = 0; f < fo; ++f) {
        float* col = cols.data() + (static_cast<size_t>(dt) * fo + f) * k;
        for (int ky = 0; ky < 3; ++ky) {
          const int ti = 2 * (t0 + dt) + ky - 1;
          if (ti < 0 || ti >= t_in) {
            continue;
          }
          for (int kx = 0; kx < 3; ++kx) {
            const int fi = 2 * f + kx - 1;
            if (fi < 0 || fi >= f_in) {
              continue;
            }
            const float* src = x.data() + (static_cast<size_t>(ti) * f_in + fi) * c_in;
            for (int c = 0; c < c_in; ++c) {
              col[c * 9 + ky * 3 + kx] = tensor::Fp16ToFp32(tensor::Fp32ToFp16(src[c]));
            }
          }
        }
      }
    }
    tensor::MatMulEncoder(w, cols.data(), int64_t{nt} * fo,
                          y.data() + static_cast<size_t>(t0) * fo * c_out, pool);
  }
  for (size_t p = 0; p < y.size(); p += c_out) {
    float* v = y.data() + p;
    if (!bias.empty()) {
      for (int c = 0; c < c_out; ++c) {
        v[c] += bias[c];
      }
    }
    double mean = 0;
    for (int c = 0; c < c_out; ++c) {
      mean += v[c];
    }
    mean /= c_out;
    double var = 0;
    for (int c = 0; c < c_out; ++c) {
      var += (v[c] - mean) * (v[c] - mean);
    }
    var /= c_out;
    const double inv = 1.0 / std::sqrt(var + kEps);
    for (int c = 0; c < c_out; ++c) {
      v[c] = std::max(0.0F, static_cast<float>((v[c] - mean) * inv) * norm[c]);
    }
  }
  return y;
}

// x += 0.5 * rmsw(W_down * silu(W_up * rmsw(x, pre)), post)
void HalfFfn(std::vector<float>& x, int64_t rows, int e, const std::vector<float>& pre,
             const Linear& up, const Linear& down, const std::vector<float>& post,
             tensor::ThreadPool* pool) {
  std::vector<float> h = Apply(up, RmsNorm(x, e, pre), rows, pool);
  for (float& v : h) {
    v = Silu(v);
  }
  AddScaled(x, RmsNorm(Apply(down, h, rows, pool), e, post), 0.5F);
}

// Sinusoidal relative positions 0..kChunk-1 projected by W_rel: [kChunk][e].
std::vector<float> RelativePositions(const Linear& k_rel, int e, tensor::ThreadPool* pool) {
  const int m = e / 2;
  const float inc = std::log(10000.0F) / static_cast<float>(std::max(m - 1, 1));
  std::vector<float> pe(static_cast<size_t>(kChunk) * e, 0.0F);
  for (int delta = 0; delta < kChunk; ++delta) {
    for (int t = 0; t < m; ++t) {
      const float a = static_cast<float>(delta) * std::exp(-static_cast<float>(t) * inc);
      pe[static_cast<size_t>(delta) * e + t] = std::sin(a);
      pe[static_cast<size_t>(delta) * e + m + t] = std::cos(a);
    }
  }
  return Apply(k_rel, pe, kChunk, pool);
}

// Chunked local self-attention with relative positions and soft-capped logits.
std::vector<float> Attention(const Block& b, const std::vector<float>& h, int64_t rows, int e,
                             int heads, int d, tensor::ThreadPool* pool) {
  std::vector<float> q = Apply(b.q, h, rows, pool);
  std::vector<float> k = Apply(b.k, h, rows, pool);
  const std::vector<float> v = Apply(b.v, h, rows, pool);
  const std::vector<float> rel = RelativePositions(b.k_rel, e, pool);
  const float q_scale = (1.0F / std::sqrt(static_cast<float>(d))) / std::numbers::ln2_v<float>;
  const float k_scale = std::log1p(std::numbers::e_v<float>) / std::numbers::ln2_v<float>;
  for (int64_t r = 0; r < rows; ++r) {
    for (int i = 0; i < e; ++i) {
      q[r * e + i] *= q_scale * b.per_dim_scale[i % d];
      k[r * e + i] *= k_scale * b.per_dim_k_scale[i % d];
    }
  }
  std::vector<float> out(static_cast<size_t>(rows) * e, 0.0F);
  auto work = [&](int64_t begin, int64_t end) {
    float s[kChunk];
    for (int64_t i = begin; i < end; ++i) {
      const int64_t j0 = std::max<int64_t>(0, i - (kChunk - 1));
      for (int hd = 0; hd < heads; ++hd) {
        const float* qi = q.data() + i * e + int64_t{hd} * d;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = j0; j <= i; ++j) {
          const float* kj = k.data() + j * e + int64_t{hd} * d;
          const float* rj = rel.data() + (i - j) * e + int64_t{hd} * d;
          float acc = 0;
          for (int t = 0; t < d; ++t) {
            acc += qi[t] * (kj[t] + rj[t]);
          }
          acc = kSoftCap * std::tanh(acc / kSoftCap);
          s[j - j0] = acc;
          mx = std::max(mx, acc);
        }
        double sum = 0;
        for (int64_t j = j0; j <= i; ++j) {
          s[j - j0] = std::exp(s[j - j0] - mx);
          sum += s[j - j0];
        }
        float* oi = out.data() + i * e + int64_t{hd} * d;
        for (int64_t j = j0; j <= i; ++j) {
          const float p = static_cast<float>(s[j - j0] / sum);
          const float* vj = v.data() + j * e + int64_t{hd} * d;
          for (int t = 0; t < d; ++t) {
            oi[t] += p * vj[t];
          }
        }
      }
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(rows, work);
  } else {
    work(0, rows);
  }
  return Apply(b.out, out, rows, pool);
}

// x += W_pw2 * silu(rmsw(causal_dw(glu(W_pw1 * rmsw(x, conv_norm))), norm_conv))
void LightConv(const Block& b, std::vector<float>& x, int64_t rows, int e,
               tensor::ThreadPool* pool) {
  const std::vector<float> h = Apply(b.pw1, RmsNorm(x, e, b.conv_norm), rows, pool);
  std::vector<float> g(static_cast<size_t>(rows) * e);
  for (int64_t r = 0; r < rows; ++r) {
    for (int c = 0; c < e; ++c) {
      const float gate = h[r * 2 * e + e + c];
      g[r * e + c] = h[r * 2 * e + c] / (1.0F + std::exp(-gate));
    }
  }
  std::vector<float> conv(g.size());
  for (int64_t t = 0; t < rows; ++t) {
    for (int c = 0; c < e; ++c) {
      float acc = b.conv_dw_bias.empty() ? 0.0F : b.conv_dw_bias[c];
      for (int m = 0; m < kDwKernel; ++m) {
        const int64_t src = t - (kDwKernel - 1) + m;
        if (src >= 0) {
          acc += b.conv_dw[static_cast<size_t>(c) * kDwKernel + m] * g[src * e + c];
        }
      }
      conv[t * e + c] = acc;
    }
  }
  std::vector<float> n = RmsNorm(conv, e, b.norm_conv);
  for (float& v : n) {
    v = Silu(v);
  }
  AddScaled(x, Apply(b.pw2, n, rows, pool), 1.0F);
}

void ConformerBlock(const Block& b, std::vector<float>& x, int64_t rows, int e, int heads, int d,
                    tensor::ThreadPool* pool) {
  HalfFfn(x, rows, e, b.ffn_norm, b.ffn_up, b.ffn_down, b.ffn_post_norm, pool);
  const std::vector<float> a =
      Attention(b, RmsNorm(x, e, b.attn_pre_norm), rows, e, heads, d, pool);
  AddScaled(x, RmsNorm(a, e, b.attn_post_norm), 1.0F);
  LightConv(b, x, rows, e, pool);
  HalfFfn(x, rows, e, b.ffn_norm_1, b.ffn_up_1, b.ffn_down_1, b.ffn_post_norm_1, pool);
  x = RmsNorm(x, e, b.ln2);
}

}  // namespace

Encoder::Encoder(std::unique_ptr<Weights> weights) : w_(std::move(weights)) {}
Encoder::~Encoder() = default;

bool Encoder::HasAudio(const gguf::File& file) {
  const std::optional<bool> has = file.GetBool("clip.has_audio_encoder");
  return has.value_or(false) && file.FindTensor("a.conv1d.0.weight") != nullptr;
}

std::unique_ptr<Encoder> Encoder::Open(const std::string& path) {
  return Load(std::make_shared<const gguf::File>(gguf::File::Open(path)));
}

std::unique_ptr<Encoder> Encoder::Load(std::shared_ptr<const gguf::File> file) {
  const gguf::File& f = *file;
  if (!HasAudio(f)) {
    ThrowInvalidInput("'" + f.path() + "' has no audio encoder",
                      "audio input needs Gemma 4 E2B or E4B and its mmproj file; 26B-A4B and 31B "
                      "take no audio");
  }
  const std::optional<std::string_view> type = f.GetString("clip.audio.projector_type");
  if (type.has_value() && *type != "gemma4a") {
    BadFile(f, "audio projector type '" + std::string(*type) + "' is not supported (gemma4a is)");
  }
  auto w = std::make_unique<Weights>();
  w->n_mel = Meta(f, "clip.audio.num_mel_bins");
  if (w->n_mel > 256) {
    BadFile(f, "clip.audio.num_mel_bins must be 1..256");
  }
  w->width = Meta(f, "clip.audio.embedding_length");
  w->heads = Meta(f, "clip.audio.attention.head_count");
  if (w->width % w->heads != 0 || w->width % 2 != 0) {
    BadFile(f, "bad audio width / head count");
  }
  w->head_dim = w->width / w->heads;
  const int n_blocks = Meta(f, "clip.audio.block_count");

  w->conv0 = LoadConv(f, "a.conv1d.0.weight", 1, &w->c0);
  w->conv0_bias = Floats(f, "a.conv1d.0.bias", w->c0, false);
  w->norm0 = Floats(f, "a.conv1d.0.norm.weight", w->c0);
  w->conv1 = LoadConv(f, "a.conv1d.1.weight", w->c0, &w->c1);
  w->conv1_bias = Floats(f, "a.conv1d.1.bias", w->c1, false);
  w->norm1 = Floats(f, "a.conv1d.1.norm.weight", w->c1);
  const int f2 = ((w->n_mel - 1) / 2 + 1 - 1) / 2 + 1;
  w->input_proj = LoadLinear(f, "a.input_projection", int64_t{w->c1} * f2, w->width);
  for (int i = 0; i < n_blocks; ++i) {
    w->blocks.push_back(LoadBlock(f, i, w->width, w->head_dim));
  }
  const gguf::TensorInfo* out = Find(f, "a.pre_encode.out.weight", true);
  w->out_width = static_cast<int>(out->shape.back());
  w->out_proj = LoadLinear(f, "a.pre_encode.out", w->width, w->out_width);
  const gguf::TensorInfo* mm = Find(f, "mm.a.input_projection.weight", true);
  w->n_text = static_cast<int>(mm->shape.back());
  w->mm_proj = LoadLinear(f, "mm.a.input_projection", w->out_width, w->n_text);
  w->soft_emb_norm = Floats(f, "mm.a.soft_emb_norm.weight", w->out_width, false);
  w->file = std::move(file);
  return std::unique_ptr<Encoder>(new Encoder(std::move(w)));
}

int Encoder::MelBins() const { return w_->n_mel; }
int Encoder::TextWidth() const { return w_->n_text; }

std::string Encoder::Describe() const {
  const Weights& w = *w_;
  const std::string type =
      w.blocks.empty() ? "F32" : gguf::TensorTypeName(w.blocks.front().q.m.type);
  return "gemma4a, " + std::to_string(w.blocks.size()) + " blocks, width " +
         std::to_string(w.width) + ", " + std::to_string(w.heads) + " heads, " +
         std::to_string(w.n_mel) + " mel bins, " + type;
}

std::vector<float> Encoder::Encode(const Mel& mel, tensor::ThreadPool* pool,
                                   Intermediates* inter) const {
  const Weights& w = *w_;
  if (mel.n_mel != w.n_mel) {
    ThrowInvalidInput("audio features have " + std::to_string(mel.n_mel) +
                      " mel bins, the encoder takes " + std::to_string(w.n_mel));
  }
  if (mel.frames < 1) {
    ThrowInvalidInput("audio clip too short to encode");
  }
  // [frames][n_mel] with one channel.
  std::vector<float> x(static_cast<size_t>(mel.frames) * mel.n_mel);
  for (int m = 0; m < mel.n_mel; ++m) {
    for (int t = 0; t < mel.frames; ++t) {
      x[static_cast<size_t>(t) * mel.n_mel + m] = mel.data[static_cast<size_t>(m) * mel.frames + t];
    }
  }
  int t1 = 0, f1 = 0, t2 = 0, f2 = 0;
  x = ConvNormRelu(x, mel.frames, mel.n_mel, 1, w.conv0, w.conv0_bias, w.norm0, w.c0, &t1, &f1,
                   pool);
  x = ConvNormRelu(x, t1, f1, w.c0, w.conv1, w.conv1_bias, w.norm1, w.c1, &t2, &f2, pool);
  // [t2][f2][c1] is already "channel fastest": one row of f2*c1 per time step.
  const int e = w.width;
  std::vector<float> h = Apply(w.input_proj, x, t2, pool);
  if (inter != nullptr) {
    inter->sscp_proj = h;
  }
  for (const Block& b : w.blocks) {
    ConformerBlock(b, h, t2, e, w.heads, w.head_dim, pool);
    if (inter != nullptr) {
      inter->block_out.push_back(h);
    }
  }
  std::vector<float> y = Apply(w.out_proj, h, t2, pool);
  if (inter != nullptr) {
    inter->out_proj = y;
  }
  return Apply(w.mm_proj, RmsNorm(y, w.out_width, w.soft_emb_norm), t2, pool);
}

std::vector<float> Encoder::EncodeClip(std::span<const float> samples, tensor::ThreadPool* pool,
                                       std::vector<int>* rows_per_piece, Split split) const {
  tensor::RetainLargeAllocations();
  std::vector<float> rows;
  for (const Piece& p : SplitClip(samples, split)) {
    const Mel mel =
        LogMel(samples.subspan(static_cast<size_t>(p.begin), static_cast<size_t>(p.end - p.begin)),
               w_->n_mel);
    if (mel.frames < 1) {
      continue;  // a sliver too short for one frame carries nothing
    }
    const std::vector<float> piece = Encode(mel, pool);
    rows.insert(rows.end(), piece.begin(), piece.end());
    if (rows_per_piece != nullptr) {
      rows_per_piece->push_back(TokensForFrames(mel.frames));
    }
  }
  if (rows.empty()) {
    ThrowInvalidInput("audio clip too short to encode (under 10 ms)");
  }
  return rows;
}

}  // namespace hearth::audio
