// Weight binding: every tensor looked up by name, its shape and type checked against the
// configuration, and kept as a pointer into the mapped file.
#include "model/weights.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <thread>

#include "base/cpu_cores.h"
#include "base/error.h"
#include "gguf/gguf.h"

namespace hearth::model {
namespace {

std::string ShapeText(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class Binder {
 public:
  Binder(const gguf::File& file, const ModelConfig& config) : file_(file), c_(config) {}

  [[noreturn]] void Fail(const std::string& what) const {
    ThrowInvalidInput("model file '" + file_.path() + "': " + what,
                      "the file does not match the Gemma 4 layout its metadata describes; "
                      "re-download or re-convert it");
  }

  // The tensor `name` with exactly `shape` (ne order), or null when absent and !required.
  const gguf::TensorInfo* Find(const std::string& name, const std::vector<int64_t>& shape,
                               bool required) const {
    const gguf::TensorInfo* t = file_.FindTensor(name);
    if (!t) {
      if (required) Fail("required tensor '" + name + "' is missing");
      return nullptr;
    }
    if (t->shape != shape) {
      Fail("tensor '" + name + "' has shape " + ShapeText(t->shape) + ", expected " +
           ShapeText(shape));
    }
    // Weights are read in place as floats and halves: a file whose alignment breaks that is
    // refused rather than read misaligned.
    if (reinterpret_cast<uintptr_t>(t->data) % 4 != 0) {
      Fail("tensor '" + name + "' is not 4-byte aligned in the file (general.alignment " +
           std::to_string(file_.alignment()) + ")");
    }
    if (!tensor::IsSupportedType(t->type_id)) {
      Fail("tensor '" + name + "' has type " + gguf::TensorTypeName(t->type_id) +
           ", which hearth cannot compute with yet");
    }
    return t;
  }

  const float* Vector(const std::string& name, int64_t n, bool required = true) const {
    const gguf::TensorInfo* t = Find(name, {n}, required);
    if (!t) return nullptr;
    if (t->type_id != tensor::kF32) {
      Fail("tensor '" + name + "' has type " + gguf::TensorTypeName(t->type_id) +
           ", expected F32 (norms and scales are never quantized)");
    }
    return reinterpret_cast<const float*>(t->data);
  }

  tensor::Matrix Matrix(const std::string& name, int64_t cols, int64_t rows, bool required) const {
    const gguf::TensorInfo* t = Find(name, {cols, rows}, required);
    if (!t) return {};
    return tensor::Matrix{t->type_id, rows, cols, t->data};
  }

  // `<base>.weight` with its optional `<base>.scale` ([1]).
  Linear Lin(const std::string& base, int64_t in, int64_t out, bool required) const {
    Linear lin;
    lin.w = Matrix(base + ".weight", in, out, required);
    if (lin.present()) {
      if (const float* s = Vector(base + ".scale", 1, false)) lin.scale = *s;
    }
    return lin;
  }

  Experts Exps(const std::string& base, int64_t cols, int64_t rows, bool required) const {
    Experts e;
    const gguf::TensorInfo* t = Find(base + ".weight", {cols, rows, c_.n_expert}, required);
    if (!t) return e;
    e.type = t->type_id;
    e.rows = rows;
    e.cols = cols;
    e.data = t->data;
    e.expert_bytes = tensor::RowBytes(t->type_id, cols) * static_cast<size_t>(rows);
    e.scale = Vector(base + ".scale", c_.n_expert, false);
    return e;
  }

 private:
  const gguf::File& file_;
  const ModelConfig& c_;
};

}  // namespace

Weights BindWeights(const gguf::File& file, const ModelConfig& c) {
  Binder b(file, c);
  Weights w;
  const int64_t H = c.n_embd, V = c.n_vocab, L = c.n_layer, P = c.n_embd_per_layer;
  w.token_embd = b.Matrix("token_embd.weight", H, V, true);
  w.output = b.Matrix("output.weight", H, V, false);
  if (!w.output.data) w.output = w.token_embd;  // tied LM head (every released Gemma 4)
  w.output_norm = b.Vector("output_norm.weight", H);
  bool any_full = false;
  for (const auto& l : c.layers) any_full |= !l.sliding;
  w.rope_freqs = b.Vector("rope_freqs.weight", c.rope_dim_full / 2, any_full);
  if (P > 0) {
    w.per_layer_token_embd = b.Matrix("per_layer_token_embd.weight", L * P, V, true);
    w.per_layer_model_proj = b.Lin("per_layer_model_proj", H, L * P, true);
    w.per_layer_proj_norm = b.Vector("per_layer_proj_norm.weight", P);
  }

  w.layers.resize(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerConfig& lc = c.layers[l];
    LayerWeights& lw = w.layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    const int64_t hd = lc.head_dim, nq = c.n_head * hd, nkv = lc.n_head_kv * hd;

    lw.attn_norm = b.Vector(p + "attn_norm.weight", H);
    lw.attn_qkv = b.Lin(p + "attn_qkv", H, nq + 2 * nkv, false);
    if (lw.attn_qkv.present()) {
      for (const char* part : {"attn_q", "attn_k", "attn_v"}) {
        if (file.FindTensor(p + part + ".weight")) {
          b.Fail("layer " + std::to_string(l) + " has both fused 'attn_qkv' and '" + part + "'");
        }
      }
    } else {
      lw.attn_q = b.Lin(p + "attn_q", H, nq, true);
      // KV-shared layers keep unused K/V weights in real files; they are optional there.
      lw.attn_k = b.Lin(p + "attn_k", H, nkv, lc.owns_kv);
      lw.attn_v = b.Lin(p + "attn_v", H, nkv, false);
    }
    lw.attn_q_norm = b.Vector(p + "attn_q_norm.weight", hd);
    lw.attn_k_norm = b.Vector(p + "attn_k_norm.weight", hd, lc.owns_kv);
    lw.attn_output = b.Lin(p + "attn_output", nq, H, true);
    lw.post_attention_norm = b.Vector(p + "post_attention_norm.weight", H);

    lw.ffn_norm = b.Vector(p + "ffn_norm.weight", H);
    lw.ffn_gate = b.Lin(p + "ffn_gate", H, lc.n_ff, true);
    lw.ffn_up = b.Lin(p + "ffn_up", H, lc.n_ff, true);
    lw.ffn_down = b.Lin(p + "ffn_down", lc.n_ff, H, true);
    lw.post_ffw_norm = b.Vector(p + "post_ffw_norm.weight", H);

    if (c.is_moe()) {
      const int64_t E = c.n_expert, Fe = c.n_ff_exp;
      // The router's `.scale` is its input scale ([H]), not a per-tensor output scale.
      lw.ffn_gate_inp.w = b.Matrix(p + "ffn_gate_inp.weight", H, E, true);
      lw.ffn_gate_inp_scale = b.Vector(p + "ffn_gate_inp.scale", H);
      lw.pre_ffw_norm_2 = b.Vector(p + "pre_ffw_norm_2.weight", H);
      lw.post_ffw_norm_1 = b.Vector(p + "post_ffw_norm_1.weight", H);
      lw.post_ffw_norm_2 = b.Vector(p + "post_ffw_norm_2.weight", H);
      lw.gate_up_exps = b.Exps(p + "ffn_gate_up_exps", H, 2 * Fe, false);
      if (!lw.gate_up_exps.present()) {
        if (!file.FindTensor(p + "ffn_gate_exps.weight")) {
          b.Fail("required tensor '" + p + "ffn_gate_up_exps.weight' (or the split '" + p +
                 "ffn_gate_exps.weight' and '" + p + "ffn_up_exps.weight') is missing");
        }
        lw.gate_exps = b.Exps(p + "ffn_gate_exps", H, Fe, true);
        lw.up_exps = b.Exps(p + "ffn_up_exps", H, Fe, true);
      }
      lw.down_exps = b.Exps(p + "ffn_down_exps", Fe, H, true);
      (void)E;
    }

    if (P > 0) {
      lw.inp_gate = b.Lin(p + "inp_gate", H, P, true);
      lw.proj = b.Lin(p + "proj", P, H, true);
      lw.post_norm = b.Vector(p + "post_norm.weight", H);
    }
    if (const float* s = b.Vector(p + "layer_output_scale.weight", 1, false)) {
      std::memcpy(&lw.output_scale, s, sizeof(float));
    }
  }
  return w;
}

RepackedWeights::~RepackedWeights() {
  if (base_ != nullptr) ::munmap(base_, bytes_);
}

std::unique_ptr<RepackedWeights> RepackWeights(Weights& w, const ModelConfig& c,
                                               const gguf::File& file) {
  std::vector<tensor::Matrix*> todo;
  auto consider = [&](Linear& lin) {
    if (lin.present() && tensor::PreferredLayout(lin.w) != tensor::Layout::kRows) {
      todo.push_back(&lin.w);
    }
  };
  for (size_t l = 0; l < w.layers.size(); ++l) {
    LayerWeights& lw = w.layers[l];
    for (Linear* lin : {&lw.attn_q, &lw.attn_qkv, &lw.attn_output, &lw.ffn_gate, &lw.ffn_up,
                        &lw.ffn_down, &lw.ffn_gate_inp, &lw.inp_gate, &lw.proj}) {
      consider(*lin);
    }
    if (c.layers[l].owns_kv) {  // KV-shared layers never read theirs: leave them unmapped
      consider(lw.attn_k);
      consider(lw.attn_v);
    }
  }
  consider(w.per_layer_model_proj);
  if (todo.empty()) return nullptr;

  // Each copy starts on a 64-byte boundary (whole cache lines per 512-bit load).
  std::vector<size_t> offset;
  size_t total = 0;
  for (const tensor::Matrix* m : todo) {
    offset.push_back(total);
    total += (tensor::MatrixBytes(*m) + 63) / 64 * 64;
  }
  void* base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    throw Error(ErrorClass::kResource,
                "cannot allocate " + std::to_string(total >> 20) +
                    " MiB for the repacked weights of '" + file.path() + "'",
                "free some memory, or set HEARTH_REPACK=0 to run from the mapped file as it is");
  }
  auto owner = std::make_unique<RepackedWeights>(base, total);
  // Fewer TLB misses while streaming the weights for every token (a hint; may be refused).
  ::madvise(base, total, MADV_HUGEPAGE);

  // Copying gigabytes is memory-bound work that several threads finish sooner; more than 4 gain
  // nothing. AvailableCpus, not hardware_concurrency: in a container allowed 2 CPUs of a large
  // host the latter says the host's count, and 4 threads would fight over 2 CPUs.
  std::atomic<size_t> next{0};
  std::vector<std::exception_ptr> errors(static_cast<size_t>(std::clamp(AvailableCpus(), 1, 4)));
  auto worker = [&](size_t id) {
    try {
      for (size_t i; (i = next.fetch_add(1)) < todo.size();) {
        tensor::Matrix& m = *todo[i];
        const tensor::Matrix original = m;
        m = tensor::Repack(original, tensor::PreferredLayout(original),
                           static_cast<uint8_t*>(base) + offset[i]);
        file.DropPages(original.data, tensor::MatrixBytes(original));
      }
    } catch (...) {
      errors[id] = std::current_exception();
      next = todo.size();
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < errors.size(); ++t) threads.emplace_back(worker, t);
  worker(0);
  for (auto& t : threads) t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return owner;
}

}  // namespace hearth::model
