// The Gemma 4 forward pass over a batch of tokens, readable top to bottom
// (../shared/spec/gemma4-model.md §3), and the KV cache it reads and writes (§4).
//
// Layout of activations: row-major [n_tokens][width] F32 buffers, so every projection is one
// tensor::MatMul over the whole batch (blocked for prefill, a matrix-vector product for decode).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <numeric>
#include <string>
#include <vector>

#include "base/error.h"
#include "model/adapters_internal.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/weights.h"
#include "tensor/tensor.h"

namespace hearth::model {

using tensor::Precision;

// Work buffers for one forward step of up to n_ubatch tokens, allocated once per context.
struct Scratch {
  std::vector<float> x, h, q, k, v, qkv, attn, o, gate, up, f, f2;
  std::vector<float> ple, ple_tok;  // per-layer embeddings [n][L*P]
  std::vector<float> router, moe_in, moe_out, exp_in, exp_gu, exp_act, exp_out;
  std::vector<int> exp_tokens;
  std::vector<float> exp_weights;
  std::vector<int> top_ids;                                                     // [n][K]
  std::vector<float> top_w;                                                     // [n][K]
  std::vector<int> expert_order;                                                // [E]
  std::vector<float> rope_cos_full, rope_sin_full, rope_cos_swa, rope_sin_swa;  // [n][rot/2]
  std::vector<float> logits;        // [V], when the caller wants only the last row
  std::vector<float> attn_partial;  // per-slice softmax partials (see Attend)
  std::vector<int32_t> zero_ids;    // [n] token 0: the per-layer token part of media rows
};

// ---------------------------------------------------------------------------------------------
// Elementwise building blocks (RmsNorm, GeGlu, Rope, RopeTables are shared with the MTP drafter
// through kv_cache.h).

// y = x / sqrt(mean(x^2) + eps) * w (w may be null: weightless norm). Gemma 4 uses w as is, no
// "+1". The sum of squares is accumulated in double, as ggml does.
void RmsNorm(const float* x, const float* w, int n, float eps, float* y) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i] * x[i]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
  if (w) {
    for (int i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
  } else {
    for (int i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

namespace {

// RmsNorm over each of `rows` rows of `n` values, in place.
void RmsNormRows(float* x, const float* w, int rows, int n, float eps) {
  for (int r = 0; r < rows; ++r)
    RmsNorm(x + static_cast<size_t>(r) * n, w, n, eps, x + static_cast<size_t>(r) * n);
}

float GeluTanh(float x) {
  const double xd = x;
  return static_cast<float>(0.5 * xd *
                            (1.0 + std::tanh(0.7978845608028654 * (xd + 0.044715 * xd * xd * xd))));
}

// ggml's CPU GELU: input rounded to fp16, output read from a 65536-entry fp16 table, for
// -10 < x < 10 (refs/README.md §6 point 1). The fast path reproduces it.
const std::vector<uint16_t>& GeluTable() {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(65536);
    for (int i = 0; i < 65536; ++i) {
      const float f = tensor::Fp16ToFp32(static_cast<uint16_t>(i));
      const float g =
          0.5f * f *
          (1.0f + std::tanh(0.79788456080286535587989211986876f * f * (1.0f + 0.044715f * f * f)));
      t[i] = tensor::Fp32ToFp16(g);
    }
    return t;
  }();
  return table;
}

}  // namespace

// y[i] = gelu(g[i]) * u[i] (GeGLU), u may be null.
void GeGlu(float* g, const float* u, size_t n, bool precise) {
  if (precise) {
    for (size_t i = 0; i < n; ++i) g[i] = GeluTanh(g[i]) * (u ? u[i] : 1.0f);
    return;
  }
  const std::vector<uint16_t>& table = GeluTable();
  for (size_t i = 0; i < n; ++i) {
    const float x = g[i];
    float y;
    if (x <= -10.0f) {
      y = 0.0f;
    } else if (x >= 10.0f) {
      y = x;
    } else {
      y = tensor::Fp16ToFp32(table[tensor::Fp32ToFp16(x)]);
    }
    g[i] = y * (u ? u[i] : 1.0f);
  }
}

// NEOX rotation of one head: pairs (i, i + rot/2), angles given by cos/sin tables of rot/2.
void Rope(float* x, int rot, const float* cs, const float* sn) {
  const int half = rot / 2;
  for (int i = 0; i < half; ++i) {
    const float a = x[i], b = x[i + half];
    x[i] = a * cs[i] - b * sn[i];
    x[i + half] = a * sn[i] + b * cs[i];
  }
}

// cos/sin of theta_i = pos * base^(-2i/rot) / freq_factor[i] for every token of the batch.
// Computed in double: it costs n * rot/2 per step and removes one source of drift.
void RopeTables(int n, int pos0, int rot, float base, const float* freq_factors, float* cs,
                float* sn) {
  const int half = rot / 2;
  for (int t = 0; t < n; ++t) {
    for (int i = 0; i < half; ++i) {
      double theta = (pos0 + t) * std::pow(static_cast<double>(base), -2.0 * i / rot);
      if (freq_factors) theta /= freq_factors[i];
      cs[static_cast<size_t>(t) * half + i] = static_cast<float>(std::cos(theta));
      sn[static_cast<size_t>(t) * half + i] = static_cast<float>(std::sin(theta));
    }
  }
}

namespace {

template <typename T>
void Resize(std::vector<T>& v, size_t n) {
  v.assign(n, T{});
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Attention (§3.6): `nr` query rows at positions pos_row0 .. pos_row0 + nr - 1 over one layer's
// cache, written to attn [nr][nh * hd].
//
// Work items are (row, KV head, slice of positions). The query heads that share a KV head (GQA;
// E2B has 8 on 1) are scored together, so each cached K/V row is read from memory once per
// group instead of once per head. When there are fewer (row, KV head) pairs than threads —
// decode — long ranges are split into slices that run on different threads and are merged
// through their softmax maxima afterwards (flash-decoding), so one KV head still keeps every
// thread busy at depth.
namespace {
constexpr int kMinSlicePositions = 256;
}  // namespace

// Declared in kv_cache.h (the MTP drafter attends over the target's cache with it).
void Attend(const LayerKv& cache, const float* q, int nr, int pos_row0, int nh, int nkv, int hd,
            int window, tensor::ThreadPool* pool, std::vector<float>& partial, float* attn,
            bool non_causal) {
  const bool f32_cache = cache.k_type == KvType::kF32;  // precise mode: K and V both F32
  const bool k_blocks = cache.k_type == KvType::kQ8_0 || cache.k_type == KvType::kQ4_0;
  const bool v_blocks = cache.v_type == KvType::kQ8_0 || cache.v_type == KvType::kQ4_0;
  const uint32_t k_tensor = KvTensorType(cache.k_type), v_tensor = KvTensorType(cache.v_type);
  const size_t k_head_bytes = KvRowBytes(cache.k_type, hd);
  const size_t v_head_bytes = KvRowBytes(cache.v_type, hd);
  const size_t q_head_bytes = k_blocks ? tensor::KvQueryBytes(k_tensor, hd) : 0;
  const auto* k32 = reinterpret_cast<const float*>(cache.k.data());
  const auto* v32 = reinterpret_cast<const float*>(cache.v.data());
  const auto* k16 = reinterpret_cast<const uint16_t*>(cache.k.data());
  const auto* v16 = reinterpret_cast<const uint16_t*>(cache.v.data());
  const int group = nh / nkv;
  const int nq_w = nh * hd;
  const int last_pos = pos_row0 + nr - 1;
  const int max_count =
      window > 0 ? std::min(window + (non_causal ? nr - 1 : 0), last_pos + 1) : last_pos + 1;
  const int64_t pairs = static_cast<int64_t>(nr) * nkv;
  const int threads = pool->size();
  int slices = 1;
  if (pairs < 2 * threads) {
    const int wanted = static_cast<int>((2 * threads + pairs - 1) / pairs);
    slices = std::clamp(max_count / kMinSlicePositions, 1, wanted);
  }
  const size_t part_stride = static_cast<size_t>(hd) + 2;  // max, sum, unnormalised output
  const size_t partial_size = static_cast<size_t>(pairs) * slices * group * part_stride;
  if (slices > 1 && partial.size() < partial_size) partial.resize(partial_size);

  pool->ParallelFor(pairs * slices, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores, acc, maxv, sums, qr, row;
    thread_local std::vector<uint16_t> q16;
    thread_local std::vector<uint8_t> qq;  // the group's query heads prepared for a block-type K
    if (maxv.size() < static_cast<size_t>(group)) {
      maxv.resize(static_cast<size_t>(group));
      sums.resize(static_cast<size_t>(group));
      row.resize(static_cast<size_t>(group));
    }
    if (qr.size() < static_cast<size_t>(group) * hd) qr.resize(static_cast<size_t>(group) * hd);
    if (acc.size() < static_cast<size_t>(group) * hd) acc.resize(static_cast<size_t>(group) * hd);
    if (q16.size() < static_cast<size_t>(group) * hd) q16.resize(static_cast<size_t>(group) * hd);
    if (qq.size() < group * q_head_bytes) qq.resize(group * q_head_bytes);
    for (int64_t job = begin; job < end; ++job) {
      const int t = static_cast<int>(job / (static_cast<int64_t>(nkv) * slices));
      const int g = static_cast<int>(job / slices % nkv);
      const int slice = static_cast<int>(job % slices);
      const int pos = pos_row0 + t;
      const int first = window > 0 ? std::max(0, pos - window + 1) : 0;
      // Non-causal rows also see the later rows of their batch (gemma4-multimodal.md §2.4).
      const int count = (non_causal ? last_pos : pos) - first + 1;
      const int j0 = static_cast<int>(static_cast<int64_t>(count) * slice / slices);
      const int j1 = static_cast<int>(static_cast<int64_t>(count) * (slice + 1) / slices);
      const int len = j1 - j0;
      if (scores.size() < static_cast<size_t>(group) * len) {
        scores.resize(static_cast<size_t>(group) * len);
      }
      const float* qg = q + static_cast<size_t>(t) * nq_w + static_cast<size_t>(g) * group * hd;
      const size_t head_off = static_cast<size_t>(g) * hd;
      auto cell = [&](int j) {
        return static_cast<size_t>((first + j) % cache.capacity) * cache.row + head_off;
      };
      // Block types: the byte where head g of position first + j starts.
      auto k_at = [&](int j) {
        return cache.k_cell((first + j) % cache.capacity) + g * k_head_bytes;
      };
      auto v_at = [&](int j) {
        return cache.v_cell((first + j) % cache.capacity) + g * v_head_bytes;
      };
      // Scores: each K row once, against every query head of the group.
      if (f32_cache) {
        for (int j = j0; j < j1; ++j) {
          const float* kj = &k32[cell(j)];
          for (int hh = 0; hh < group; ++hh) {
            scores[static_cast<size_t>(hh) * len + (j - j0)] =
                tensor::DotF32(qg + static_cast<size_t>(hh) * hd, kj, hd);
          }
        }
      } else if (k_blocks) {
        // As ggml's flash attention over a Q8_0 / Q4_0 cache: each query head is quantized to
        // Q8_0 once and meets each K row in the integer dot product, the group's heads together.
        tensor::PrepareKvQuery(k_tensor, qg, group, hd, qq.data());
        for (int j = j0; j < j1; ++j) {
          tensor::DotKvHeads(k_tensor, k_at(j), qq.data(), group, hd, row.data());
          for (int hh = 0; hh < group; ++hh) {
            scores[static_cast<size_t>(hh) * len + (j - j0)] = row[hh];
          }
        }
      } else {
        // As llama.cpp with an F16 cache, Q meets K in F16 precision: q is rounded to F16 once,
        // and each K row is converted once for all heads of the group.
        tensor::Fp32ToFp16Row(qg, q16.data(), static_cast<int64_t>(group) * hd);
        tensor::Fp16ToFp32Row(q16.data(), qr.data(), static_cast<int64_t>(group) * hd);
        for (int j = j0; j < j1; ++j) {
          tensor::DotF32F16Heads(qr.data(), group, &k16[cell(j)], hd, row.data());
          for (int hh = 0; hh < group; ++hh) {
            scores[static_cast<size_t>(hh) * len + (j - j0)] = row[hh];
          }
        }
      }
      for (int hh = 0; hh < group; ++hh) {
        float* sc = &scores[static_cast<size_t>(hh) * len];
        float m = -INFINITY;
        for (int j = 0; j < len; ++j) m = std::max(m, sc[j]);
        if (f32_cache) {
          for (int j = 0; j < len; ++j) sc[j] = std::exp(sc[j] - m);
        } else {
          tensor::ExpShifted(sc, len, m);  // vectorised: 8 heads x 16k positions at depth
        }
        double sum = 0;
        for (int j = 0; j < len; ++j) sum += sc[j];
        maxv[hh] = m;
        sums[hh] = static_cast<float>(sum);
        if (slices == 1) {
          // One slice: normalise the probabilities before they weight V, as the reference
          // (and llama.cpp) do; sliced partials are normalised when they are merged.
          const float inv = static_cast<float>(1.0 / sum);
          for (int j = 0; j < len; ++j) sc[j] *= inv;
        }
      }
      // Values: each V row once, into every head's accumulator.
      std::fill(acc.begin(), acc.begin() + static_cast<size_t>(group) * hd, 0.0f);
      for (int j = j0; j < j1; ++j) {
        for (int hh = 0; hh < group; ++hh)
          row[hh] = scores[static_cast<size_t>(hh) * len + (j - j0)];
        if (cache.v_type == KvType::kF32) {
          const float* vj = &v32[cell(j)];
          for (int hh = 0; hh < group; ++hh) {
            float* out = &acc[static_cast<size_t>(hh) * hd];
            for (int d = 0; d < hd; ++d) out[d] += row[hh] * vj[d];
          }
        } else if (v_blocks) {
          tensor::AxpyKvHeads(v_tensor, row.data(), group, v_at(j), acc.data(), hd);
        } else {
          tensor::AxpyF16Heads(row.data(), group, &v16[cell(j)], acc.data(), hd);
        }
      }
      for (int hh = 0; hh < group; ++hh) {
        const float* a = &acc[static_cast<size_t>(hh) * hd];
        if (slices == 1) {
          float* out =
              attn + static_cast<size_t>(t) * nq_w + static_cast<size_t>(g * group + hh) * hd;
          std::copy(a, a + hd, out);
        } else {
          float* part = &partial[(static_cast<size_t>(job) * group + hh) * part_stride];
          part[0] = len > 0 ? maxv[hh] : -INFINITY;
          part[1] = len > 0 ? sums[hh] : 0.0f;
          std::copy(a, a + hd, part + 2);
        }
      }
    }
  });
  if (slices == 1) return;

  // Merge the slices of each (row, head): rescale each by exp(its max - the overall max).
  pool->ParallelFor(static_cast<int64_t>(nr) * nh, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int t = static_cast<int>(item / nh), h = static_cast<int>(item % nh);
      const int g = h / group, hh = h % group;
      auto part_of = [&](int slice) {
        const int64_t job = (static_cast<int64_t>(t) * nkv + g) * slices + slice;
        return &partial[(static_cast<size_t>(job) * group + hh) * part_stride];
      };
      float m = -INFINITY;
      for (int sl = 0; sl < slices; ++sl) m = std::max(m, part_of(sl)[0]);
      float* out = attn + static_cast<size_t>(t) * nq_w + static_cast<size_t>(h) * hd;
      std::fill(out, out + hd, 0.0f);
      double denom = 0;
      for (int sl = 0; sl < slices; ++sl) {
        const float* part = part_of(sl);
        if (part[1] == 0.0f) continue;
        const float scale = std::exp(part[0] - m);
        denom += static_cast<double>(scale) * part[1];
        for (int d = 0; d < hd; ++d) out[d] += scale * part[2 + d];
      }
      const float inv = static_cast<float>(1.0 / denom);
      for (int d = 0; d < hd; ++d) out[d] *= inv;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Context: allocation.

Context::Context(const Model& model, ContextOptions options) : model_(model), options_(options) {
  const ModelConfig& c = model.config();
  if (options_.n_ctx < 1 || options_.n_ctx > c.n_ctx_train) {
    throw Error(ErrorClass::kUsage,
                "context size " + std::to_string(options_.n_ctx) + " is out of range: '" + c.path +
                    "' supports 1 to " + std::to_string(c.n_ctx_train) + " positions",
                "choose a smaller context size");
  }
  if (options_.n_threads < 1) options_.n_threads = 1;
  options_.n_ubatch = std::clamp(options_.n_ubatch, 1, options_.n_ctx);
  const int nb = options_.n_ubatch;
  // Precise mode's cache is F32 whatever the options say; a block type must divide the heads.
  if (options_.precise) options_.cache_type_k = options_.cache_type_v = KvType::kF32;
  const std::pair<KvType, KvType> kv_types{options_.cache_type_k, options_.cache_type_v};
  CheckKvType(c, kv_types.first);
  CheckKvType(c, kv_types.second);

  try {
    kv_ = std::make_unique<KvCache>();
    kv_->k_type = kv_types.first;
    kv_->v_type = kv_types.second;
    kv_->layers.resize(c.n_layer);
    for (int l = 0; l < c.n_layer; ++l) {
      const LayerConfig& lc = c.layers[l];
      if (!lc.owns_kv) continue;
      LayerKv& s = kv_->layers[l];
      s.capacity =
          lc.sliding ? std::min(options_.n_ctx, c.sliding_window - 1 + nb) : options_.n_ctx;
      s.row = lc.n_head_kv * lc.head_dim;
      s.k_type = kv_->k_type;
      s.v_type = kv_->v_type;
      s.k_row_bytes = KvRowBytes(s.k_type, s.row);
      s.v_row_bytes = KvRowBytes(s.v_type, s.row);
      Resize(s.k, static_cast<size_t>(s.capacity) * s.k_row_bytes);
      Resize(s.v, static_cast<size_t>(s.capacity) * s.v_row_bytes);
      kv_->bytes += s.k.size() + s.v.size();
    }

    int max_q = 0, max_kv = 0, max_ff = c.n_ff_exp * 2;
    for (const auto& lc : c.layers) {
      max_q = std::max(max_q, c.n_head * lc.head_dim);
      max_kv = std::max(max_kv, lc.n_head_kv * lc.head_dim);
      max_ff = std::max(max_ff, lc.n_ff);
    }
    const size_t H = c.n_embd, LP = static_cast<size_t>(c.n_layer) * c.n_embd_per_layer;
    scratch_ = std::make_unique<Scratch>();
    Scratch& s = *scratch_;
    Resize(s.x, nb * H);
    Resize(s.h, nb * H);
    Resize(s.q, nb * static_cast<size_t>(max_q));
    Resize(s.k, nb * static_cast<size_t>(max_kv));
    Resize(s.v, nb * static_cast<size_t>(max_kv));
    Resize(s.qkv, nb * static_cast<size_t>(max_q + 2 * max_kv));
    Resize(s.attn, nb * static_cast<size_t>(max_q));
    Resize(s.o, nb * H);
    Resize(s.gate, nb * static_cast<size_t>(std::max(max_ff, c.n_embd_per_layer)));
    Resize(s.up, nb * static_cast<size_t>(max_ff));
    Resize(s.f, nb * H);
    Resize(s.f2, nb * H);
    if (LP > 0) {
      Resize(s.ple, nb * LP);
      Resize(s.ple_tok, nb * LP);
    }
    if (c.is_moe()) {
      Resize(s.router, nb * static_cast<size_t>(c.n_expert));
      Resize(s.moe_in, nb * H);
      Resize(s.moe_out, nb * H);
      Resize(s.exp_in, nb * H);
      Resize(s.exp_gu, nb * 2 * static_cast<size_t>(c.n_ff_exp));
      Resize(s.exp_act, nb * static_cast<size_t>(c.n_ff_exp));
      Resize(s.exp_out, nb * H);
      Resize(s.exp_tokens, nb);
      Resize(s.exp_weights, nb);
      Resize(s.top_ids, nb * static_cast<size_t>(c.n_expert_used));
      Resize(s.top_w, nb * static_cast<size_t>(c.n_expert_used));
      Resize(s.expert_order, static_cast<size_t>(c.n_expert));
    }
    Resize(s.rope_cos_full, nb * static_cast<size_t>(c.rope_dim_full / 2));
    Resize(s.rope_sin_full, nb * static_cast<size_t>(c.rope_dim_full / 2));
    Resize(s.rope_cos_swa, nb * static_cast<size_t>(c.rope_dim_swa / 2));
    Resize(s.rope_sin_swa, nb * static_cast<size_t>(c.rope_dim_swa / 2));
    Resize(s.logits, static_cast<size_t>(c.n_vocab));
    s.zero_ids.assign(static_cast<size_t>(nb), 0);
  } catch (const std::bad_alloc&) {
    throw Error(
        ErrorClass::kResource,
        "not enough memory for a context of " + std::to_string(options_.n_ctx) +
            " positions (KV cache " +
            std::to_string(KvCacheBytes(c, options_.n_ctx, nb, kv_types.first, kv_types.second) >>
                           20) +
            " MiB)",
        "use a smaller context size");
  }
  pool_ = std::make_unique<Pool>(options_.n_threads);
  lora_scratch_ = std::make_unique<LoraScratch>();
  SetAdapters(std::move(options_.adapters));
}

Context::~Context() = default;

void Context::SetAdapters(std::shared_ptr<const AdapterSet> adapters) {
  if (adapters && adapters->model() != &model_) {
    throw Error(ErrorClass::kUsage,
                "the adapters were loaded for another model than '" + model_.config().path + "'");
  }
  if (AdapterKey(adapters.get()) != AdapterKey(options_.adapters.get())) Reset();
  options_.adapters = std::move(adapters);
  if (const AdapterSet* set = options_.adapters.get()) {
    // Sized once for a full step so that decoding allocates nothing.
    const size_t nb = static_cast<size_t>(options_.n_ubatch);
    lora_scratch_->ax.resize(nb * set->max_rank());
    lora_scratch_->bx.resize(nb * static_cast<size_t>(set->max_out()));
  }
}

uint64_t Context::kv_bytes() const { return kv_->bytes; }
KvType Context::k_type() const { return kv_->k_type; }
KvType Context::v_type() const { return kv_->v_type; }

bool Context::Truncate(int n) {
  if (n < 0 || n > n_past_) return false;
  if (n > 0 && n < sliding_floor_) return false;
  const ModelConfig& c = model_.config();
  for (int l = 0; l < c.n_layer; ++l) {
    if (!c.layers[l].owns_kv || !c.layers[l].sliding) continue;
    // Position n sees n - W + 1 ..; the newest written position n_past - 1 has overwritten
    // every position q with q + capacity <= n_past - 1.
    const int oldest_needed = std::max(0, n - c.sliding_window + 1);
    if (n > 0 && oldest_needed + kv_->layers[l].capacity <= n_past_ - 1) return false;
  }
  n_past_ = n;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Export and import of the cache's state (prefix_store.h persists it across processes).

namespace {

// The bytes of `count` cells starting at position `first` of one store (cells of `row_bytes`),
// in position order (the cells of a ring wrap).
void AppendCells(const std::vector<uint8_t>& store, size_t row_bytes, const LayerKv& layer,
                 int first, int count, std::string* out) {
  for (int p = first; p < first + count; ++p) {
    const size_t cell = static_cast<size_t>(p % layer.capacity) * row_bytes;
    out->append(reinterpret_cast<const char*>(store.data() + cell), row_bytes);
  }
}

// The reverse: `count` cells from `in` (advanced past them) into positions first...
void ReadCells(std::vector<uint8_t>& store, size_t row_bytes, const LayerKv& layer, int first,
               int count, const char*& in) {
  for (int p = first; p < first + count; ++p) {
    const size_t cell = static_cast<size_t>(p % layer.capacity) * row_bytes;
    std::memcpy(store.data() + cell, in, row_bytes);
    in += row_bytes;
  }
}

}  // namespace

size_t Context::FullKvBytesPerPosition() const {
  const ModelConfig& c = model_.config();
  size_t bytes = 0;
  for (int l = 0; l < c.n_layer; ++l) {
    if (c.layers[l].owns_kv && !c.layers[l].sliding) {
      bytes += kv_->layers[l].k_row_bytes + kv_->layers[l].v_row_bytes;
    }
  }
  return bytes;
}

std::string Context::ExportKv(KvPart part) const {
  const ModelConfig& c = model_.config();
  const bool sliding = part == KvPart::kSliding;
  const int first = sliding ? std::max(0, n_past_ - c.sliding_window + 1) : 0;
  std::string out;
  if (sliding) {
    // The position the window belongs to leads, so that it is never restored elsewhere.
    const int32_t at = n_past_;
    out.append(reinterpret_cast<const char*>(&at), sizeof(at));
  }
  for (int l = 0; l < c.n_layer; ++l) {
    if (!c.layers[l].owns_kv || c.layers[l].sliding != sliding) continue;
    const LayerKv& s = kv_->layers[l];
    AppendCells(s.k, s.k_row_bytes, s, first, n_past_ - first, &out);
    AppendCells(s.v, s.v_row_bytes, s, first, n_past_ - first, &out);
  }
  return out;
}

bool Context::ImportKv(int n, std::string_view full, std::string_view sliding) {
  const ModelConfig& c = model_.config();
  if (n < 0 || n > options_.n_ctx) return false;
  const size_t per_full = FullKvBytesPerPosition();
  if (per_full == 0 ? !full.empty()
                    : full.size() % per_full != 0 || full.size() / per_full < size_t(n)) {
    return false;
  }
  int32_t at = -1;
  if (sliding.size() < sizeof(at)) return false;
  std::memcpy(&at, sliding.data(), sizeof(at));
  if (at != n) return false;
  sliding.remove_prefix(sizeof(at));
  const int first = std::max(0, n - c.sliding_window + 1);
  size_t sliding_bytes = 0;
  for (int l = 0; l < c.n_layer; ++l) {
    if (c.layers[l].owns_kv && c.layers[l].sliding) {
      const LayerKv& s = kv_->layers[l];
      sliding_bytes += static_cast<size_t>(n - first) * (s.k_row_bytes + s.v_row_bytes);
    }
  }
  if (sliding.size() != sliding_bytes) return false;
  // The full blob holds `stored` positions per store; only the first n of each are read.
  const int stored = per_full == 0 ? 0 : static_cast<int>(full.size() / per_full);
  const char* in_full = full.data();
  const char* in_sliding = sliding.data();
  for (int l = 0; l < c.n_layer; ++l) {
    if (!c.layers[l].owns_kv) continue;
    LayerKv& s = kv_->layers[l];
    if (c.layers[l].sliding) {
      ReadCells(s.k, s.k_row_bytes, s, first, n - first, in_sliding);
      ReadCells(s.v, s.v_row_bytes, s, first, n - first, in_sliding);
    } else {
      const char* k = in_full;
      const char* v = in_full + static_cast<size_t>(stored) * s.k_row_bytes;
      ReadCells(s.k, s.k_row_bytes, s, 0, n, k);
      ReadCells(s.v, s.v_row_bytes, s, 0, n, v);
      in_full += static_cast<size_t>(stored) * (s.k_row_bytes + s.v_row_bytes);
    }
  }
  n_past_ = n;
  sliding_floor_ = first > 0 ? n : 0;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Decode: validation up front, then forward steps of at most n_ubatch tokens.

void Context::Decode(std::span<const int32_t> tokens, float* logits, bool all_logits,
                     float* hidden) {
  const ModelConfig& c = model_.config();
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return;
  if (n_past_ + n > options_.n_ctx) {
    throw Error(ErrorClass::kResource,
                std::to_string(n) +
                    " tokens do not fit in the context: " + std::to_string(n_past_) + " of " +
                    std::to_string(options_.n_ctx) + " positions are used",
                "use a larger context size (at most " + std::to_string(c.n_ctx_train) +
                    ") or a shorter input");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.n_vocab) {
      throw Error(ErrorClass::kInvalidInput,
                  "token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                      " is outside the vocabulary of " + std::to_string(c.n_vocab),
                  "token ids must come from this model's tokenizer");
    }
  }
  for (int64_t done = 0; done < n;) {
    const int step = static_cast<int>(std::min<int64_t>(options_.n_ubatch, n - done));
    const bool last = done + step == n;
    float* out = nullptr;
    if (logits && all_logits) out = logits + done * c.n_vocab;
    if (logits && !all_logits && last) out = logits;
    float* hid = nullptr;
    if (hidden && all_logits) hid = hidden + done * c.n_embd;
    if (hidden && !all_logits && last) hid = hidden;
    Step(tokens.data() + done, step, out, all_logits, hid, nullptr, false);
    done += step;
  }
}

void Context::DecodeEmbeddings(std::span<const float> rows, float* logits, bool all_logits,
                               bool non_causal, float* hidden) {
  const ModelConfig& c = model_.config();
  const int64_t H = c.n_embd;
  if (rows.size() % static_cast<size_t>(H) != 0) {
    throw Error(ErrorClass::kInvalidInput,
                "media rows of " + std::to_string(rows.size()) +
                    " values are not a whole number "
                    "of rows of the text model's width " +
                    std::to_string(H),
                "the projector must be made for this text model");
  }
  const int64_t n = static_cast<int64_t>(rows.size()) / H;
  if (n == 0) return;
  if (n_past_ + n > options_.n_ctx) {
    throw Error(
        ErrorClass::kResource,
        std::to_string(n) + " media rows do not fit in the context: " + std::to_string(n_past_) +
            " of " + std::to_string(options_.n_ctx) + " positions are used",
        "use a larger context size (at most " + std::to_string(c.n_ctx_train) + ") or less media");
  }
  if (non_causal && n > options_.n_ubatch) {
    // Bidirectional attention spans one forward step (as in llama.cpp, where it spans one
    // ubatch): a span cut in pieces would see less of itself.
    throw Error(ErrorClass::kUsage,
                "a non-causal media span of " + std::to_string(n) +
                    " rows does not fit in one forward step of " +
                    std::to_string(options_.n_ubatch) + " rows",
                "make the context with n_ubatch >= the largest media span");
  }
  for (int64_t done = 0; done < n;) {
    const int step = static_cast<int>(std::min<int64_t>(options_.n_ubatch, n - done));
    const bool last = done + step == n;
    float* out = nullptr;
    if (logits && all_logits) out = logits + done * c.n_vocab;
    if (logits && !all_logits && last) out = logits;
    float* hid = nullptr;
    if (hidden && all_logits) hid = hidden + done * H;
    if (hidden && !all_logits && last) hid = hidden;
    Step(nullptr, step, out, all_logits, hid, rows.data() + done * H, non_causal);
    done += step;
  }
}

// ---------------------------------------------------------------------------------------------
// The stages of one forward step, in the order Step runs them. A Forward holds what every stage
// reads (weights, work buffers, cache, threads) for one step of `n` tokens at positions
// pos0 .. pos0 + n - 1; rows r0 .. r0 + nr - 1 of the batch are live in the layer loop (all of
// them until the KV-shared layers, see SkipToLastRow), and row t of the buffers is token r0 + t.

namespace {

class Forward {
 public:
  Forward(const ModelConfig& c, const Weights& w, Scratch& s, KvCache& kv, tensor::ThreadPool* pool,
          bool precise, int n, int pos0)
      : c_(c),
        w_(w),
        s_(s),
        kv_(kv),
        pool_(pool),
        precise_(precise),
        prec_(precise ? Precision::kPrecise : Precision::kFast),
        h_(c.n_embd),
        p_(c.n_embd_per_layer),
        lp_(static_cast<size_t>(c.n_layer) * c.n_embd_per_layer),
        eps_(c.rms_eps),
        n_(n),
        pos0_(pos0),
        nr_(n) {}

  void Embed(const int32_t* tokens);
  // 1'. Media rows ([n][H]) instead of token embeddings: used as they are, no sqrt(H) scaling
  // (gemma4-multimodal.md §2.3); their per-layer token part is token 0's (Step passes zeros).
  void EmbedRows(const float* rows) {
    std::memcpy(s_.x.data(), rows, sizeof(float) * static_cast<size_t>(n_) * h_);
  }
  // Sliding layers attend without the causal rule inside this batch (§2.4).
  void SetNonCausal(bool on) { non_causal_ = on; }
  void PerLayerEmbeddings(const int32_t* tokens);
  void RopeTablesForBatch();
  // 3a. KV-shared layers write no cache, so their activations of a token reach nothing but that
  // token's logits (§3.7, pitfall 23): run them only for the rows whose logits are wanted — none,
  // or the last one — which makes prefill of E2B/E4B much cheaper.
  void SkipToLastRow();
  void Attention(int l);
  void FeedForward(int l);
  void PerLayerInput(int l);
  void LayerScale(int l);
  // 10b. A control vector's direction for this layer added to every live row (adapters.h).
  void ControlVector(int l);
  // `logits` or `hidden` (the post-norm rows) may be null.
  void Logits(float* logits, bool all_logits, float* hidden);
  void UseAdapters(const AdapterSet* set, LoraScratch* scratch) {
    adapters_ = set;
    lora_scratch_ = scratch;
  }

 private:
  // y += the LoRA updates of the weight at `key` (a Linear or Experts of w_; expert e of a
  // stack, or -1). Returns whether there were any.
  bool Adapt(const void* key, int expert, const float* x, int rows, float* y) {
    if (!adapters_) return false;
    const std::vector<LoraTerm>* terms = adapters_->Find(key);
    if (!terms) return false;
    ApplyLora(*terms, expert, x, rows, y, prec_, pool_, *lora_scratch_);
    return true;
  }
  float* Row(std::vector<float>& v, int t, size_t width) {
    return &v[static_cast<size_t>(t) * width];
  }
  // y = x W^T, times the projection's scalar when it has one.
  void MatMul(const Linear& lin, const float* x, int rows, float* y) {
    tensor::MatMul(lin.w, x, rows, y, prec_, pool_);
    if (lin.scale != 1.0f) {
      const size_t total = static_cast<size_t>(rows) * lin.w.rows;
      for (size_t i = 0; i < total; ++i) y[i] *= lin.scale;
    }
    Adapt(&lin, -1, x, rows, y);
  }
  // x += norm(o) for every live row (the post-norm residual of each block).
  void AddNormed(std::vector<float>& o, const float* norm);
  void DenseMlp(int l);
  void MoeFeedForward(int l);
  void Route(const LayerWeights& lw);

  const ModelConfig& c_;
  const Weights& w_;
  Scratch& s_;
  KvCache& kv_;
  tensor::ThreadPool* pool_;
  const bool precise_;
  const Precision prec_;
  const int h_, p_;
  const size_t lp_;
  const float eps_;
  const int n_, pos0_;
  int r0_ = 0, nr_;
  bool non_causal_ = false;
  const AdapterSet* adapters_ = nullptr;
  LoraScratch* lora_scratch_ = nullptr;
};

// 1. Input embedding, scaled by sqrt(H) (§3.1).
void Forward::Embed(const int32_t* tokens) {
  const float embd_scale = std::sqrt(static_cast<float>(h_));
  const size_t embd_row = tensor::RowBytes(w_.token_embd.type, h_);
  for (int t = 0; t < n_; ++t) {
    float* x = Row(s_.x, t, h_);
    tensor::DequantizeRow(w_.token_embd.type,
                          static_cast<const uint8_t*>(w_.token_embd.data) + tokens[t] * embd_row, x,
                          h_);
    for (int i = 0; i < h_; ++i) x[i] *= embd_scale;
  }
}

// 2. Per-layer embeddings (§3.2): ple[t][l] = (norm(proj(x0)/sqrt(H)) + tok_ple*sqrt(P))/sqrt(2).
void Forward::PerLayerEmbeddings(const int32_t* tokens) {
  if (p_ == 0) return;
  const size_t ple_row = tensor::RowBytes(w_.per_layer_token_embd.type, static_cast<int64_t>(lp_));
  const float tok_scale = std::sqrt(static_cast<float>(p_));
  for (int t = 0; t < n_; ++t) {
    float* pt = &s_.ple_tok[t * lp_];
    tensor::DequantizeRow(
        w_.per_layer_token_embd.type,
        static_cast<const uint8_t*>(w_.per_layer_token_embd.data) + tokens[t] * ple_row, pt,
        static_cast<int64_t>(lp_));
    for (size_t i = 0; i < lp_; ++i) pt[i] *= tok_scale;
  }
  MatMul(w_.per_layer_model_proj, s_.x.data(), n_, s_.ple.data());
  const float proj_scale = 1.0f / std::sqrt(static_cast<float>(h_));
  const float mix_scale = 1.0f / std::sqrt(2.0f);
  for (size_t i = 0; i < n_ * lp_; ++i) s_.ple[i] *= proj_scale;
  RmsNormRows(s_.ple.data(), w_.per_layer_proj_norm, n_ * c_.n_layer, p_, eps_);
  for (size_t i = 0; i < n_ * lp_; ++i) s_.ple[i] = (s_.ple[i] + s_.ple_tok[i]) * mix_scale;
}

// Rotary tables for this batch's positions: sliding layers plain rope, full layers
// "proportional" rope through rope_freqs (1e30 = pair not rotated, §3.5).
void Forward::RopeTablesForBatch() {
  RopeTables(n_, pos0_, c_.rope_dim_swa, c_.rope_base_swa, nullptr, s_.rope_cos_swa.data(),
             s_.rope_sin_swa.data());
  RopeTables(n_, pos0_, c_.rope_dim_full, c_.rope_base_full, w_.rope_freqs, s_.rope_cos_full.data(),
             s_.rope_sin_full.data());
}

void Forward::SkipToLastRow() {
  if (nr_ <= 1) return;
  r0_ = n_ - 1;
  std::memmove(s_.x.data(), &s_.x[static_cast<size_t>(r0_) * h_], sizeof(float) * h_);
  nr_ = 1;
}

void Forward::AddNormed(std::vector<float>& o_buf, const float* norm) {
  for (int t = 0; t < nr_; ++t) {
    float* x = Row(s_.x, t, h_);
    float* o = Row(o_buf, t, h_);
    RmsNorm(o, norm, h_, eps_, o);
    for (int i = 0; i < h_; ++i) x[i] += o[i];
  }
}

// 3-7. Attention block: input norm, Q/K/V projections, per-head norms and rope, the cache
// write, attention over the visible positions, output projection, post-norm, residual.
void Forward::Attention(int l) {
  const LayerConfig& lc = c_.layers[l];
  const LayerWeights& lw = w_.layers[l];
  const int hd = lc.head_dim, nh = c_.n_head, nkv = lc.n_head_kv;
  const int nq_w = nh * hd, nkv_w = nkv * hd;
  const int rot = lc.sliding ? c_.rope_dim_swa : c_.rope_dim_full;
  const float* rcos = lc.sliding ? s_.rope_cos_swa.data() : s_.rope_cos_full.data();
  const float* rsin = lc.sliding ? s_.rope_sin_swa.data() : s_.rope_sin_full.data();
  const int nr = nr_, r0 = r0_;

  // 3. Attention input norm and projections (§3.3).
  for (int t = 0; t < nr; ++t) RmsNorm(Row(s_.x, t, h_), lw.attn_norm, h_, eps_, Row(s_.h, t, h_));
  const bool want_kv = lc.owns_kv;
  if (lw.attn_qkv.present()) {
    const int width = nq_w + 2 * nkv_w;
    MatMul(lw.attn_qkv, s_.h.data(), nr, s_.qkv.data());
    for (int t = 0; t < nr; ++t) {
      const float* row = Row(s_.qkv, t, width);
      std::memcpy(Row(s_.q, t, nq_w), row, sizeof(float) * nq_w);
      std::memcpy(Row(s_.k, t, nkv_w), row + nq_w, sizeof(float) * nkv_w);
      std::memcpy(Row(s_.v, t, nkv_w), row + nq_w + nkv_w, sizeof(float) * nkv_w);
    }
  } else {
    MatMul(lw.attn_q, s_.h.data(), nr, s_.q.data());
    if (want_kv) {
      MatMul(lw.attn_k, s_.h.data(), nr, s_.k.data());
      if (lw.attn_v.present()) {
        MatMul(lw.attn_v, s_.h.data(), nr, s_.v.data());
      } else {
        // k = v attention: V is the raw K projection, before k_norm (pitfall 8).
        std::memcpy(s_.v.data(), s_.k.data(), sizeof(float) * nr * nkv_w);
      }
    }
  }

  // 4. Q: per-head RMSNorm with weight, then rope. K: same with k_norm. V: weightless norm.
  for (int t = 0; t < nr; ++t) {
    const float* cs = rcos + static_cast<size_t>(r0 + t) * (rot / 2);
    const float* sn = rsin + static_cast<size_t>(r0 + t) * (rot / 2);
    for (int h = 0; h < nh; ++h) {
      float* qh = Row(s_.q, t, nq_w) + h * hd;
      RmsNorm(qh, lw.attn_q_norm, hd, eps_, qh);
      Rope(qh, rot, cs, sn);
    }
    if (!want_kv) continue;
    for (int g = 0; g < nkv; ++g) {
      float* kh = Row(s_.k, t, nkv_w) + g * hd;
      RmsNorm(kh, lw.attn_k_norm, hd, eps_, kh);
      Rope(kh, rot, cs, sn);
      float* vh = Row(s_.v, t, nkv_w) + g * hd;
      RmsNorm(vh, nullptr, hd, eps_, vh);
    }
  }

  // 5. Store this batch's K/V (post-norm, post-rope K; post-norm V) in the layer's cache.
  if (want_kv) {
    LayerKv& own = kv_.layers[l];
    // Each row is converted to the cache's type: copied (F32), rounded (F16) or quantized with
    // ggml's reference quantizer (Q8_0, Q4_0; whole blocks per head).
    const auto store = [nkv_w](KvType type, const float* src, uint8_t* dst) {
      switch (type) {
        case KvType::kF32:
          std::memcpy(dst, src, sizeof(float) * nkv_w);
          break;
        case KvType::kF16:
          tensor::Fp32ToFp16Row(src, reinterpret_cast<uint16_t*>(dst), nkv_w);
          break;
        default:
          tensor::QuantizeRow(KvTensorType(type), src, dst, nkv_w);
      }
    };
    for (int t = 0; t < nr; ++t) {
      const int cell = (pos0_ + r0 + t) % own.capacity;
      store(own.k_type, Row(s_.k, t, nkv_w), own.k_cell(cell));
      store(own.v_type, Row(s_.v, t, nkv_w), own.v_cell(cell));
    }
  }

  // 6. Attention over the visible cached positions. Scale 1.0, no softcap; sliding layers see
  // positions p - W + 1 .. p (§3.6). KV-shared layers read their source layer's cache with
  // their own (identical) window.
  Attend(kv_.layers[lc.kv_source], s_.q.data(), nr, pos0_ + r0, nh, nkv, hd,
         lc.sliding ? c_.sliding_window : 0, pool_, s_.attn_partial, s_.attn.data(),
         non_causal_ && lc.sliding);

  // 7. Output projection, post-attention norm, residual.
  MatMul(lw.attn_output, s_.attn.data(), nr, s_.o.data());
  AddNormed(s_.o, lw.post_attention_norm);
}

// 8. Feed-forward: the GeGLU MLP (§3.8); in MoE models plus the routed experts (§3.9), each
// branch post-normed and summed; then the post-FFW norm and the residual.
void Forward::FeedForward(int l) {
  const LayerWeights& lw = w_.layers[l];
  DenseMlp(l);
  if (c_.is_moe()) {
    RmsNormRows(s_.f.data(), lw.post_ffw_norm_1, nr_, h_, eps_);
    MoeFeedForward(l);
    RmsNormRows(s_.moe_out.data(), lw.post_ffw_norm_2, nr_, h_, eps_);
    for (size_t i = 0; i < static_cast<size_t>(nr_) * h_; ++i) s_.f[i] += s_.moe_out[i];
  }
  AddNormed(s_.f, lw.post_ffw_norm);
}

// f = down(gelu(gate(norm(x))) * up(norm(x))).
void Forward::DenseMlp(int l) {
  const LayerWeights& lw = w_.layers[l];
  for (int t = 0; t < nr_; ++t) RmsNorm(Row(s_.x, t, h_), lw.ffn_norm, h_, eps_, Row(s_.h, t, h_));
  MatMul(lw.ffn_gate, s_.h.data(), nr_, s_.gate.data());
  MatMul(lw.ffn_up, s_.h.data(), nr_, s_.up.data());
  GeGlu(s_.gate.data(), s_.up.data(), static_cast<size_t>(nr_) * c_.layers[l].n_ff, precise_);
  MatMul(lw.ffn_down, s_.gate.data(), nr_, s_.f.data());
}

// Router: weightless norm of the residual, times 1/sqrt(H) and the learned input scale; softmax
// over all experts, top-K, weights renormalised to sum 1. Writes top_ids / top_w, and the
// experts' input (pre_ffw_norm_2 of the residual) to moe_in.
void Forward::Route(const LayerWeights& lw) {
  const int E = c_.n_expert, K = c_.n_expert_used;
  const float inv_sqrt_h = 1.0f / std::sqrt(static_cast<float>(h_));
  for (int t = 0; t < nr_; ++t) {
    const float* x = Row(s_.x, t, h_);
    float* r = Row(s_.h, t, h_);
    RmsNorm(x, nullptr, h_, eps_, r);
    for (int i = 0; i < h_; ++i) r[i] = r[i] * inv_sqrt_h * lw.ffn_gate_inp_scale[i];
    RmsNorm(x, lw.pre_ffw_norm_2, h_, eps_, Row(s_.moe_in, t, h_));
  }
  MatMul(lw.ffn_gate_inp, s_.h.data(), nr_, s_.router.data());
  std::vector<int>& order = s_.expert_order;  // [E], allocated with the context
  for (int t = 0; t < nr_; ++t) {
    float* lg = Row(s_.router, t, E);
    const float mx = *std::max_element(lg, lg + E);
    double sum = 0;
    for (int e = 0; e < E; ++e) {
      lg[e] = std::exp(lg[e] - mx);
      sum += lg[e];
    }
    for (int e = 0; e < E; ++e) lg[e] = static_cast<float>(lg[e] / sum);
    int* ids = &s_.top_ids[static_cast<size_t>(t) * K];
    float* wts = &s_.top_w[static_cast<size_t>(t) * K];
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + K, order.end(),
                      [&](int a, int b) { return lg[a] > lg[b] || (lg[a] == lg[b] && a < b); });
    float wsum = 0;
    for (int k = 0; k < K; ++k) {
      ids[k] = order[k];
      wts[k] = lg[order[k]];
      wsum += wts[k];
    }
    wsum = std::max(wsum, 6.103515625e-5f);  // llama.cpp's clamp
    for (int k = 0; k < K; ++k) wts[k] /= wsum;
  }
}

// The routed experts (§3.9) into moe_out: gather the tokens routed to each expert, run its
// GeGLU as one batched matmul, scatter-add the weighted, per-expert-scaled output.
void Forward::MoeFeedForward(int l) {
  const LayerWeights& lw = w_.layers[l];
  const int E = c_.n_expert, K = c_.n_expert_used, Fe = c_.n_ff_exp;
  Route(lw);
  std::fill(s_.moe_out.begin(), s_.moe_out.begin() + static_cast<size_t>(nr_) * h_, 0.0f);
  for (int e = 0; e < E; ++e) {
    int m = 0;
    for (int t = 0; t < nr_; ++t) {
      for (int k = 0; k < K; ++k) {
        if (s_.top_ids[static_cast<size_t>(t) * K + k] == e) {
          s_.exp_tokens[m] = t;
          s_.exp_weights[m] = s_.top_w[static_cast<size_t>(t) * K + k];
          std::memcpy(Row(s_.exp_in, m, h_), Row(s_.moe_in, t, h_), sizeof(float) * h_);
          ++m;
        }
      }
    }
    if (m == 0) continue;
    if (lw.gate_up_exps.present()) {
      tensor::MatMul(lw.gate_up_exps.Expert(e), s_.exp_in.data(), m, s_.exp_gu.data(), prec_,
                     pool_);
      const float gs = lw.gate_up_exps.scale ? lw.gate_up_exps.scale[e] : 1.0f;
      for (size_t j = 0; j < static_cast<size_t>(m) * 2 * Fe; ++j) s_.exp_gu[j] *= gs;
      Adapt(&lw.gate_up_exps, e, s_.exp_in.data(), m, s_.exp_gu.data());
      for (int i = 0; i < m; ++i) {
        float* gu = Row(s_.exp_gu, i, 2 * static_cast<size_t>(Fe));
        std::memcpy(Row(s_.exp_act, i, Fe), gu, sizeof(float) * Fe);
        GeGlu(Row(s_.exp_act, i, Fe), gu + Fe, Fe, precise_);
      }
    } else {
      tensor::MatMul(lw.gate_exps.Expert(e), s_.exp_in.data(), m, s_.exp_act.data(), prec_, pool_);
      tensor::MatMul(lw.up_exps.Expert(e), s_.exp_in.data(), m, s_.exp_gu.data(), prec_, pool_);
      const float gs = lw.gate_exps.scale ? lw.gate_exps.scale[e] : 1.0f;
      const float us = lw.up_exps.scale ? lw.up_exps.scale[e] : 1.0f;
      for (size_t i = 0; i < static_cast<size_t>(m) * Fe; ++i) {
        s_.exp_act[i] *= gs;
        s_.exp_gu[i] *= us;
      }
      Adapt(&lw.gate_exps, e, s_.exp_in.data(), m, s_.exp_act.data());
      Adapt(&lw.up_exps, e, s_.exp_in.data(), m, s_.exp_gu.data());
      GeGlu(s_.exp_act.data(), s_.exp_gu.data(), static_cast<size_t>(m) * Fe, precise_);
    }
    tensor::MatMul(lw.down_exps.Expert(e), s_.exp_act.data(), m, s_.exp_out.data(), prec_, pool_);
    float ds = lw.down_exps.scale ? lw.down_exps.scale[e] : 1.0f;
    if (adapters_ && adapters_->Find(&lw.down_exps)) {
      // The per-expert scale multiplies the base product only, then the LoRA update is added.
      for (size_t j = 0; j < static_cast<size_t>(m) * h_; ++j) s_.exp_out[j] *= ds;
      Adapt(&lw.down_exps, e, s_.exp_act.data(), m, s_.exp_out.data());
      ds = 1.0f;
    }
    for (int i = 0; i < m; ++i) {
      const float wgt = s_.exp_weights[i] * ds;
      const float* y = Row(s_.exp_out, i, h_);
      float* acc = Row(s_.moe_out, s_.exp_tokens[i], h_);
      for (int j = 0; j < h_; ++j) acc[j] += wgt * y[j];
    }
  }
}

// 9. Per-layer embedding injection (§3.3): x += norm(proj(gelu(inp_gate x) * ple[l])).
void Forward::PerLayerInput(int l) {
  if (p_ == 0) return;
  const LayerWeights& lw = w_.layers[l];
  MatMul(lw.inp_gate, s_.x.data(), nr_, s_.gate.data());
  GeGlu(s_.gate.data(), nullptr, static_cast<size_t>(nr_) * p_, precise_);
  for (int t = 0; t < nr_; ++t) {
    float* g = Row(s_.gate, t, p_);
    const float* pl = &s_.ple[(r0_ + t) * lp_ + static_cast<size_t>(l) * p_];
    for (int j = 0; j < p_; ++j) g[j] *= pl[j];
  }
  MatMul(lw.proj, s_.gate.data(), nr_, s_.o.data());
  AddNormed(s_.o, lw.post_norm);
}

// 10. The layer scalar multiplies the whole residual stream.
void Forward::LayerScale(int l) {
  const float scale = w_.layers[l].output_scale;
  if (scale == 1.0f) return;
  for (size_t i = 0; i < static_cast<size_t>(nr_) * h_; ++i) s_.x[i] *= scale;
}

void Forward::ControlVector(int l) {
  const float* d = adapters_ ? adapters_->ControlDirection(l) : nullptr;
  if (!d) return;
  for (int t = 0; t < nr_; ++t) {
    float* x = Row(s_.x, t, h_);
    for (int i = 0; i < h_; ++i) x[i] += d[i];
  }
}

// 11. Final norm, tied LM head, soft-cap (§3.10) — for every row, or only the last.
void Forward::Logits(float* logits, bool all_logits, float* hidden) {
  const int first_row = all_logits ? 0 : nr_ - 1;
  const int rows = nr_ - first_row;
  for (int t = first_row; t < nr_; ++t) {
    RmsNorm(Row(s_.x, t, h_), w_.output_norm, h_, eps_, Row(s_.h, t - first_row, h_));
  }
  if (hidden) std::memcpy(hidden, s_.h.data(), sizeof(float) * rows * h_);
  if (!logits) return;
  tensor::MatMul(w_.output, s_.h.data(), rows, logits, prec_, pool_);
  Adapt(&w_.output, -1, s_.h.data(), rows, logits);
  const float cap = c_.final_logit_softcap;
  if (cap <= 0) return;
  const size_t total = static_cast<size_t>(rows) * c_.n_vocab;
  if (precise_) {
    for (size_t i = 0; i < total; ++i) logits[i] = cap * std::tanh(logits[i] / cap);
  } else {
    // Vectorised and spread over the threads: 262,144 values per decoded token.
    pool_->ParallelFor(static_cast<int64_t>((total + 4095) / 4096), [&](int64_t b, int64_t e) {
      const size_t begin = static_cast<size_t>(b) * 4096;
      const size_t end = std::min(total, static_cast<size_t>(e) * 4096);
      tensor::SoftCap(logits + begin, static_cast<int64_t>(end - begin), cap);
    });
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// One forward step: `n` tokens at positions n_past_ .. n_past_ + n - 1, through the stages of a
// Gemma 4 layer (gemma4-model.md §3).

void Context::Step(const int32_t* tokens, int n, float* logits, bool all_logits, float* hidden,
                   const float* rows, bool non_causal) {
  const ModelConfig& c = model_.config();
  Forward f(c, model_.weights(), *scratch_, *kv_, &pool_->pool, options_.precise, n, n_past_);
  f.UseAdapters(options_.adapters.get(), lora_scratch_.get());
  if (rows) {
    f.EmbedRows(rows);
    f.SetNonCausal(non_causal);
    tokens = scratch_->zero_ids.data();
  } else {
    f.Embed(tokens);
  }
  f.PerLayerEmbeddings(tokens);
  f.RopeTablesForBatch();
  for (int l = 0; l < c.n_layer; ++l) {
    const bool kv_shared = !c.layers[l].owns_kv;
    if (kv_shared && !all_logits) f.SkipToLastRow();
    if (kv_shared && !logits && !hidden) break;
    f.Attention(l);
    f.FeedForward(l);
    f.PerLayerInput(l);
    f.LayerScale(l);
    f.ControlVector(l);
  }
  n_past_ += n;
  if (logits || hidden) f.Logits(logits, all_logits, hidden);
}

}  // namespace hearth::model
