// LoRA adapters and control vectors: reading and validating llama.cpp's GGUF adapter files
// against a base model, the active set, and the low-rank update the forward pass adds
// (../shared/fixtures/lora/README.md §2 is the behaviour reproduced here).
#include "model/adapters.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/adapters_internal.h"
#include "model/model.h"
#include "model/weights.h"

namespace hearth::model {
namespace {

constexpr std::string_view kLoraA = ".lora_a";
constexpr std::string_view kLoraB = ".lora_b";
// Up to this many tokens, ApplyLora computes the update on the calling thread (decode).
constexpr int64_t kInlineRows = 4;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string ShapeText(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// ne[i] with ggml's convention that missing trailing dimensions are 1.
int64_t Ne(const gguf::TensorInfo& t, size_t i) { return i < t.shape.size() ? t.shape[i] : 1; }

[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  ThrowInvalidInput("adapter '" + path + "': " + what,
                    "use an adapter made for this base model (same architecture and size)");
}

// The base tensors whose products hearth's forward pass computes through Forward's MatMul (and
// therefore takes a LoRA for), by GGUF name, with the address the forward pass looks them up by.
// per_layer_model_proj, the embeddings, norms and scales are absent: llama.cpp loads pairs for
// them and never applies them, and so does hearth. KV-shared layers compute no K/V.
std::unordered_map<std::string, const void*> AppliedTargets(const Model& model) {
  std::unordered_map<std::string, const void*> out;
  const Weights& w = model.weights();
  const ModelConfig& c = model.config();
  if (model.file().FindTensor("output.weight")) out["output.weight"] = &w.output;
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const LayerWeights& lw = w.layers[l];
    auto lin = [&](const char* name, const Linear& x, bool live = true) {
      if (x.present() && live) out[p + name + ".weight"] = &x;
    };
    auto exps = [&](const char* name, const Experts& x) {
      if (x.present()) out[p + name + ".weight"] = &x;
    };
    const bool kv = c.layers[l].owns_kv;
    lin("attn_q", lw.attn_q);
    lin("attn_k", lw.attn_k, kv);
    lin("attn_v", lw.attn_v, kv);
    lin("attn_qkv", lw.attn_qkv);
    lin("attn_output", lw.attn_output);
    lin("ffn_gate", lw.ffn_gate);
    lin("ffn_up", lw.ffn_up);
    lin("ffn_down", lw.ffn_down);
    lin("ffn_gate_inp", lw.ffn_gate_inp);
    lin("inp_gate", lw.inp_gate);
    lin("proj", lw.proj);
    exps("ffn_gate_up_exps", lw.gate_up_exps);
    exps("ffn_gate_exps", lw.gate_exps);
    exps("ffn_up_exps", lw.up_exps);
    exps("ffn_down_exps", lw.down_exps);
  }
  return out;
}

void CheckComputable(const std::string& path, const gguf::TensorInfo& t) {
  if (!tensor::IsSupportedType(t.type_id) || t.type_id == tensor::kQ8_1 ||
      t.type_id == tensor::kQ8_K) {
    Fail(path, "tensor '" + t.name + "' has type " + gguf::TensorTypeName(t.type_id) +
                   ", which hearth cannot compute with");
  }
  if (reinterpret_cast<uintptr_t>(t.data) % 4 != 0) {
    Fail(path, "tensor '" + t.name + "' is not 4-byte aligned in the file");
  }
}

tensor::Matrix MatrixOf(const gguf::TensorInfo& t) {
  return tensor::Matrix{t.type_id, Ne(t, 1), Ne(t, 0), t.data};
}

// Validates one A/B pair against its base tensor (README §2a) and returns it.
LoraPair CheckPair(const std::string& path, const std::string& base, const gguf::TensorInfo& a,
                   const gguf::TensorInfo& b, const gguf::TensorInfo& w) {
  LoraPair pair;
  pair.base = base;
  const auto shapes = [&] {
    return " (base " + ShapeText(w.shape) + ", lora_a " + ShapeText(a.shape) + ", lora_b " +
           ShapeText(b.shape) + ")";
  };
  if (a.shape.size() > 3 || b.shape.size() > 3) Fail(path, "'" + base + "' has a 4-D LoRA half");
  if (base == "token_embd.weight" || base == "per_layer_token_embd.weight") {
    // Embedding tables: A and B are flipped (A holds a row per token).
    if (Ne(w, 0) != Ne(b, 1) || Ne(w, 1) != Ne(a, 1) || Ne(a, 0) != Ne(b, 0)) {
      Fail(path, "'" + base + "' LoRA has incorrect shape" + shapes());
    }
    if (base == "token_embd.weight") {
      // llama.cpp adds it to the embedding and then aborts on the tied LM head of every Gemma 4
      // file; an untied head would need the embedding form hearth does not implement.
      Fail(path,
           "a LoRA on 'token_embd.weight' is not supported (llama.cpp aborts on it with "
           "Gemma 4's tied LM head)");
    }
    pair.rank = static_cast<int>(Ne(b, 0));
    pair.applied = false;  // per_layer_token_embd: a row lookup, loaded and ignored by llama.cpp
    return pair;
  }
  if (Ne(w, 0) != Ne(a, 0) || Ne(w, 1) != Ne(b, 1)) {
    Fail(path, "'" + base + "' LoRA has incorrect shape" + shapes());
  }
  if (Ne(a, 1) != Ne(b, 0)) {
    Fail(path, "'" + base + "' lora_a is not transposed: its rank " + std::to_string(Ne(a, 1)) +
                   " differs from lora_b's " + std::to_string(Ne(b, 0)) + shapes());
  }
  // One A/B pair per expert for a stack. llama.cpp does not check this and crashes in the first
  // decode when it is wrong; here it is an error.
  if (Ne(a, 2) != Ne(w, 2) || Ne(b, 2) != Ne(w, 2)) {
    Fail(path, "'" + base + "' needs one A/B pair per expert (" + std::to_string(Ne(w, 2)) + ")" +
                   shapes());
  }
  if (Ne(b, 0) < 1 || Ne(b, 0) > 65536) {
    Fail(path, "'" + base + "' has rank " + std::to_string(Ne(b, 0)) + ", expected 1 to 65536");
  }
  CheckComputable(path, a);
  CheckComputable(path, b);
  pair.rank = static_cast<int>(Ne(b, 0));
  pair.a = MatrixOf(a);
  pair.b = MatrixOf(b);
  pair.a_expert_bytes = tensor::RowBytes(a.type_id, Ne(a, 0)) * Ne(a, 1);
  pair.b_expert_bytes = tensor::RowBytes(b.type_id, Ne(b, 0)) * Ne(b, 1);
  return pair;
}

// Fills pair.b_t16 or pair.b_t32 (LoraPair): B's rows become its columns.
void TransposeB(LoraPair& pair) {
  const tensor::Matrix& b = pair.b;
  const size_t n_out = static_cast<size_t>(b.rows);
  const size_t rank = static_cast<size_t>(b.cols);
  if (b.type == tensor::kF16) {
    pair.b_t16.resize(rank * n_out);
    const auto* src = static_cast<const uint16_t*>(b.data);
    for (size_t i = 0; i < n_out; ++i) {
      for (size_t k = 0; k < rank; ++k) pair.b_t16[k * n_out + i] = src[i * rank + k];
    }
    return;
  }
  pair.b_t32.resize(rank * n_out);
  std::vector<float> row(rank);
  for (size_t i = 0; i < n_out; ++i) {
    tensor::DequantizeMatrixRow(b, static_cast<int64_t>(i), row.data());
    for (size_t k = 0; k < rank; ++k) pair.b_t32[k * n_out + i] = row[k];
  }
}

std::string FormatScale(float s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(s));
  return buf;
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  auto p = std::filesystem::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// LoRA adapter files.

LoraAdapter::~LoraAdapter() = default;

std::shared_ptr<const LoraAdapter> LoraAdapter::Load(const std::string& path, const Model& model) {
  return FromFile(gguf::File::Open(path), model);
}

std::shared_ptr<const LoraAdapter> LoraAdapter::FromFile(gguf::File file, const Model& model) {
  std::shared_ptr<LoraAdapter> ad(new LoraAdapter());
  ad->path_ = file.path();
  ad->file_ = std::make_unique<gguf::File>(std::move(file));
  const gguf::File& f = *ad->file_;
  const std::string& path = ad->path_;

  const auto model_arch = model.file().GetString("general.architecture");
  const auto arch = f.GetString("general.architecture");
  if (!arch) Fail(path, "'general.architecture' is missing");
  if (!model_arch || *arch != *model_arch) {
    Fail(path, "architecture '" + std::string(*arch) + "' does not match the model's '" +
                   std::string(model_arch ? *model_arch : "") + "'");
  }
  const auto type = f.GetString("general.type");
  if (!type || *type != "adapter") {
    Fail(path, "not an adapter file (general.type is '" + std::string(type ? *type : "") +
                   "', expected 'adapter')");
  }
  const auto adapter_type = f.GetString("adapter.type");
  if (!adapter_type || *adapter_type != "lora") {
    Fail(path, "adapter.type is '" + std::string(adapter_type ? *adapter_type : "") +
                   "', expected 'lora'");
  }
  if (const gguf::Value* alpha = f.Find("adapter.lora.alpha")) {
    if (alpha->type != gguf::ValueType::kFloat32 || !std::isfinite(alpha->as_float)) {
      Fail(path, "adapter.lora.alpha must be a finite FLOAT32, not " + alpha->Describe());
    }
    ad->alpha_ = static_cast<float>(alpha->as_float);
  }

  // Group the halves by base tensor, in file order.
  std::vector<std::string> order;
  std::map<std::string, std::pair<const gguf::TensorInfo*, const gguf::TensorInfo*>> halves;
  for (const gguf::TensorInfo& t : f.tensors()) {
    const bool is_a = EndsWith(t.name, kLoraA), is_b = EndsWith(t.name, kLoraB);
    if (!is_a && !is_b) {
      if (EndsWith(t.name, "_norm.weight")) continue;  // mergekit output: skipped, as llama.cpp
      Fail(path, "tensor '" + t.name + "' has an unexpected suffix (expected .lora_a or .lora_b)");
    }
    const std::string base = t.name.substr(0, t.name.size() - kLoraA.size());
    auto [it, fresh] = halves.try_emplace(base, nullptr, nullptr);
    if (fresh) order.push_back(base);
    (is_a ? it->second.first : it->second.second) = &t;
  }
  if (order.empty()) Fail(path, "the file holds no LoRA tensors");
  const auto targets = AppliedTargets(model);
  for (const std::string& base : order) {
    const auto [a, b] = halves.at(base);
    if (!a || !b) Fail(path, "'" + base + "' is missing one component (lora_a or lora_b)");
    const gguf::TensorInfo* w = model.file().FindTensor(base);
    if (!w) Fail(path, "tensor '" + base + "' does not exist in the base model");
    LoraPair pair = CheckPair(path, base, *a, *b, *w);
    if (pair.applied) pair.applied = targets.count(base) > 0;
    if (pair.applied && Ne(*b, 2) == 1) TransposeB(pair);
    ad->pairs_.push_back(std::move(pair));
  }
  ad->model_ = &model;
  return ad;
}

// ---------------------------------------------------------------------------------------------
// Control vectors.

std::shared_ptr<const ControlVector> ControlVector::Load(const std::string& path,
                                                         const Model& model) {
  return FromFile(gguf::File::Open(path), model);
}

std::shared_ptr<const ControlVector> ControlVector::FromFile(gguf::File file, const Model& model) {
  auto cv = std::make_shared<ControlVector>();
  cv->path_ = file.path();
  const std::string& path = cv->path_;
  const auto fail = [&](const std::string& what) {
    ThrowInvalidInput("control vector '" + path + "': " + what,
                      "use a control vector made for this base model");
  };
  const auto arch = file.GetString("general.architecture");
  const auto model_arch = model.file().GetString("general.architecture");
  if (arch && *arch != "controlvector" && (!model_arch || *arch != *model_arch)) {
    fail("architecture '" + std::string(*arch) + "' is neither 'controlvector' nor the model's");
  }
  if (const auto type = file.GetString("general.type"); type && *type == "adapter") {
    fail("this is a LoRA adapter, not a control vector (load it with --lora)");
  }
  const ModelConfig& c = model.config();
  cv->directions_.assign(static_cast<size_t>(c.n_layer) * c.n_embd, 0.0f);
  std::set<int64_t> seen;
  for (const gguf::TensorInfo& t : file.tensors()) {
    constexpr std::string_view kPrefix = "direction.";
    const std::string_view name = t.name;
    int64_t layer = -1;
    if (name.substr(0, kPrefix.size()) == kPrefix) {
      const std::string_view num = name.substr(kPrefix.size());
      auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), layer);
      if (ec != std::errc() || ptr != num.data() + num.size() || num.empty()) layer = -1;
    }
    if (layer < 0) fail("tensor '" + t.name + "' is not a direction.N tensor");
    if (layer == 0 || layer >= c.n_layer) {
      fail("'" + t.name + "' names layer " + std::to_string(layer) +
           ", the model has layers 1 to " + std::to_string(c.n_layer - 1) +
           " (layer 0 takes none)");
    }
    if (t.type_id != tensor::kF32 || t.shape.size() != 1 || t.shape[0] != c.n_embd) {
      fail("'" + t.name + "' must be F32 [" + std::to_string(c.n_embd) + "], not " +
           gguf::TensorTypeName(t.type_id) + " " + ShapeText(t.shape));
    }
    if (!seen.insert(layer).second) fail("layer " + std::to_string(layer) + " appears twice");
    const auto* src = reinterpret_cast<const uint8_t*>(t.data);
    float* dst = &cv->directions_[static_cast<size_t>(layer) * c.n_embd];
    std::memcpy(dst, src, sizeof(float) * c.n_embd);  // the mapping need not be float-aligned
    for (int i = 0; i < c.n_embd; ++i) {
      if (!std::isfinite(dst[i])) fail("'" + t.name + "' holds a value that is not finite");
    }
  }
  if (seen.empty()) fail("the file holds no direction.N tensors");
  cv->n_directions_ = static_cast<int>(seen.size());
  return cv;
}

// ---------------------------------------------------------------------------------------------
// Command-line specs.

AdapterSpec ParseAdapterSpec(const std::string& text, const std::string& flag) {
  AdapterSpec spec{text, 1.0f};
  const size_t colon = text.rfind(':');
  if (colon != std::string::npos) {
    const std::string tail = text.substr(colon + 1);
    float v = 0;
    auto [ptr, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), v);
    if (!tail.empty() && ec == std::errc() && ptr == tail.data() + tail.size()) {
      if (!std::isfinite(v)) {
        ThrowUsage(flag + " '" + text + "': the scale must be a finite number",
                   "write FILE or FILE:SCALE, e.g. " + flag + " my-adapter.gguf:0.5");
      }
      spec.path = text.substr(0, colon);
      spec.scale = v;
    }
  }
  if (spec.path.empty()) {
    ThrowUsage(flag + " '" + text + "': no file given",
               "write FILE or FILE:SCALE, e.g. " + flag + " my-adapter.gguf:0.5");
  }
  return spec;
}

// ---------------------------------------------------------------------------------------------
// The active set.

struct AdapterSet::Impl {
  const Model* model = nullptr;
  std::unordered_map<const void*, std::vector<LoraTerm>> terms;
  std::vector<float> cvec;      // [n_layer][n_embd] summed directions times strengths
  std::vector<char> cvec_used;  // [n_layer]
  int n_embd = 0;
};

AdapterSet::AdapterSet() : impl_(std::make_shared<Impl>()) {}
AdapterSet::~AdapterSet() = default;

std::shared_ptr<const AdapterSet> AdapterSet::Make(const Model& model, Loras loras, Cvecs cvecs) {
  std::shared_ptr<AdapterSet> set(new AdapterSet());
  Impl& impl = *set->impl_;
  impl.model = &model;
  const ModelConfig& c = model.config();
  impl.n_embd = c.n_embd;
  const auto targets = AppliedTargets(model);
  for (auto& [lora, scale] : loras) {
    if (!lora || scale == 0.0f) continue;  // scale 0 is the base model exactly (llama.cpp drops it)
    if (lora->model() != &model) {
      throw Error(ErrorClass::kInternal,
                  "adapter '" + lora->path() + "' was loaded for another model");
    }
    for (const LoraPair& pair : lora->pairs()) {
      if (!pair.applied) continue;
      impl.terms[targets.at(pair.base)].push_back({&pair, scale * lora->AlphaOverRank(pair.rank)});
      set->max_rank_ = std::max(set->max_rank_, pair.rank);
      set->max_out_ = std::max(set->max_out_, pair.b.rows);
    }
    set->key_ += "lora:" + AbsolutePath(lora->path()) + "@" + FormatScale(scale) + ";";
    set->loras_.emplace_back(lora, scale);
  }
  for (auto& [cv, strength] : cvecs) {
    if (!cv) continue;
    if (impl.cvec.empty()) {
      impl.cvec.assign(cv->directions().size(), 0.0f);
      impl.cvec_used.assign(static_cast<size_t>(c.n_layer), 0);
    }
    if (cv->directions().size() != impl.cvec.size()) {
      throw Error(ErrorClass::kInternal,
                  "control vector '" + cv->path() + "' is for another model");
    }
    for (size_t i = 0; i < impl.cvec.size(); ++i) impl.cvec[i] += strength * cv->directions()[i];
    for (int l = 0; l < c.n_layer; ++l) {
      const float* d = &cv->directions()[static_cast<size_t>(l) * c.n_embd];
      for (int i = 0; i < c.n_embd; ++i) {
        if (d[i] != 0.0f) impl.cvec_used[l] = 1;
      }
    }
    set->key_ += "cvec:" + AbsolutePath(cv->path()) + "@" + FormatScale(strength) + ";";
    set->cvecs_.emplace_back(cv, strength);
  }
  if (set->loras_.empty() && set->cvecs_.empty()) return nullptr;
  return set;
}

std::shared_ptr<const AdapterSet> AdapterSet::Load(const Model& model,
                                                   const std::vector<AdapterSpec>& loras,
                                                   const std::vector<AdapterSpec>& cvecs) {
  Loras l;
  Cvecs cv;
  for (const AdapterSpec& s : loras) l.emplace_back(LoraAdapter::Load(s.path, model), s.scale);
  for (const AdapterSpec& s : cvecs) cv.emplace_back(ControlVector::Load(s.path, model), s.scale);
  return Make(model, std::move(l), std::move(cv));
}

const Model* AdapterSet::model() const { return impl_->model; }

const std::vector<LoraTerm>* AdapterSet::Find(const void* weight) const {
  auto it = impl_->terms.find(weight);
  return it == impl_->terms.end() ? nullptr : &it->second;
}

const float* AdapterSet::ControlDirection(int l) const {
  if (impl_->cvec.empty() || l < 0 || l >= static_cast<int>(impl_->cvec_used.size()) ||
      !impl_->cvec_used[l]) {
    return nullptr;
  }
  return &impl_->cvec[static_cast<size_t>(l) * impl_->n_embd];
}

// ---------------------------------------------------------------------------------------------
// The low-rank update, y += s * B (A x), for every term (expert `expert` of a stack, or -1).

void ApplyLora(const std::vector<LoraTerm>& terms, int expert, const float* x, int64_t rows,
               float* y, tensor::Precision precision, tensor::ThreadPool* pool,
               LoraScratch& scratch) {
  for (const LoraTerm& term : terms) {
    const LoraPair& p = *term.pair;
    tensor::Matrix a = p.a, b = p.b;
    if (expert >= 0) {
      a.data = static_cast<const uint8_t*>(a.data) + static_cast<size_t>(expert) * p.a_expert_bytes;
      b.data = static_cast<const uint8_t*>(b.data) + static_cast<size_t>(expert) * p.b_expert_bytes;
    }
    const size_t n_ax = static_cast<size_t>(rows) * a.rows;
    const size_t n_bx = static_cast<size_t>(rows) * b.rows;
    if (scratch.ax.size() < n_ax) scratch.ax.resize(n_ax);
    if (scratch.bx.size() < n_bx) scratch.bx.resize(n_bx);
    // For a few tokens (decode, short verification batches) the whole update is a few hundred
    // kilobytes of adapter read once: computed here, without handing off to the pool, since a
    // synchronisation point per adapted weight (hundreds per token) costs more than the work.
    // A x has `rank` outputs; B (A x) is added as `rank` axpy passes of B's transposed rows
    // over y (B as stored would be n_out dot products of only `rank` values each).
    const bool few = rows <= kInlineRows;
    tensor::MatMul(a, x, rows, scratch.ax.data(), precision, few ? nullptr : pool);
    if (few && precision == tensor::Precision::kFast && expert < 0 &&
        (!p.b_t16.empty() || !p.b_t32.empty())) {
      const int64_t n_out = b.rows;
      for (int64_t t = 0; t < rows; ++t) {
        const float* ax = scratch.ax.data() + t * a.rows;
        float* yt = y + t * n_out;
        for (int k = 0; k < p.rank; ++k) {
          const float alpha = term.scale * ax[k];
          if (!p.b_t16.empty()) {
            tensor::AxpyF16(alpha, p.b_t16.data() + k * n_out, yt, n_out);
          } else {
            const float* bk = p.b_t32.data() + k * n_out;
            for (int64_t i = 0; i < n_out; ++i) yt[i] += alpha * bk[i];
          }
        }
      }
      continue;
    }
    tensor::MatMul(b, scratch.ax.data(), rows, scratch.bx.data(), precision, pool);
    const float s = term.scale;
    const float* bx = scratch.bx.data();
    for (size_t i = 0; i < n_bx; ++i) y[i] += s * bx[i];
  }
}

// ---------------------------------------------------------------------------------------------
// `hearth info` on an adapter file.

std::vector<std::string> DescribeAdapterFile(const gguf::File& file) {
  std::vector<std::string> out;
  const auto type = file.GetString("general.type");
  const auto adapter_type = file.GetString("adapter.type");
  bool is_cvec = false;
  for (const auto& t : file.tensors()) is_cvec = is_cvec || t.name.rfind("direction.", 0) == 0;
  if (type && *type == "adapter" && adapter_type && *adapter_type == "lora") {
    std::optional<double> alpha;
    if (const gguf::Value* v = file.Find("adapter.lora.alpha")) alpha = v->as_float;
    // kind (the tensor name without "blk.N." and ".weight") -> ranks, layers.
    std::map<std::string, std::pair<std::set<int64_t>, std::set<int>>> kinds;
    for (const auto& t : file.tensors()) {
      if (!EndsWith(t.name, kLoraB)) continue;
      std::string base = t.name.substr(0, t.name.size() - kLoraB.size());
      int layer = -1;
      if (base.rfind("blk.", 0) == 0) {
        const size_t dot = base.find('.', 4);
        if (dot != std::string::npos) {
          std::from_chars(base.data() + 4, base.data() + dot, layer);
          base = base.substr(dot + 1);
        }
      }
      if (EndsWith(base, ".weight")) base.resize(base.size() - 7);
      auto& [ranks, layers] = kinds[base];
      ranks.insert(t.shape.empty() ? 0 : t.shape[0]);
      if (layer >= 0) layers.insert(layer);
    }
    out.push_back("LoRA adapter (llama.cpp format), alpha " +
                  (alpha ? FormatScale(static_cast<float>(*alpha)) : std::string("absent (0)")) +
                  ": scale * alpha / rank per tensor");
    for (const auto& [kind, rl] : kinds) {
      std::string ranks;
      for (int64_t r : rl.first) ranks += (ranks.empty() ? "" : "/") + std::to_string(r);
      std::string line = kind + ": rank " + ranks;
      if (!rl.second.empty()) {
        line += ", " + std::to_string(rl.second.size()) + " layer" +
                (rl.second.size() == 1 ? "" : "s") + " (" + std::to_string(*rl.second.begin()) +
                ".." + std::to_string(*rl.second.rbegin()) + ")";
      }
      out.push_back(line);
    }
    if (const gguf::Value* inv = file.Find("adapter.alora.invocation_tokens")) {
      out.push_back("activated LoRA invocation tokens: " + inv->Describe() +
                    " (hearth applies it as a plain LoRA)");
    }
  } else if (is_cvec) {
    std::vector<int> layers;
    for (const auto& t : file.tensors()) {
      int l = -1;
      if (t.name.rfind("direction.", 0) == 0 &&
          std::from_chars(t.name.data() + 10, t.name.data() + t.name.size(), l).ec == std::errc())
        layers.push_back(l);
    }
    std::sort(layers.begin(), layers.end());
    std::string line = "control vector: " + std::to_string(layers.size()) + " directions";
    if (!layers.empty()) {
      line +=
          " (layers " + std::to_string(layers.front()) + ".." + std::to_string(layers.back()) + ")";
    }
    out.push_back(line + ", added to those layers' outputs (--control-vector FILE[:STRENGTH])");
  }
  return out;
}

}  // namespace hearth::model
