// LoRA adapters and control vectors in llama.cpp's GGUF formats, applied at inference without
// merging: the base weights stay memory-mapped and shared, and every adapted projection computes
//
//   y = W x + sum over adapters of  scale * (alpha / rank) * B (A x)
//
// (scale alone when the adapter's alpha is 0 or absent), the way llama.cpp's build_lora_mm does
// (../shared/fixtures/lora/README.md §2). Control vectors add `direction.N` to the output of layer
// N. An AdapterSet is the active choice (adapters with scales, control vectors with strengths);
// a Context runs with one (ContextOptions::adapters, Context::SetAdapters).
//
//   auto lora = hearth::model::LoraAdapter::Load("my-fix.gguf", *model);
//   auto set = hearth::model::AdapterSet::Make(*model, {{lora, 1.0f}}, {});
//   hearth::model::Context ctx(*model, {.n_ctx = 4096, .adapters = set});
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace hearth::gguf {
class File;
}

namespace hearth::model {

class Model;

// One A/B pair of an adapter for one base tensor. For an expert stack (3-D base tensor) A and B
// hold one matrix per expert, `a_expert_bytes` / `b_expert_bytes` apart.
struct LoraPair {
  std::string base;  // GGUF name of the base tensor, e.g. "blk.3.attn_q.weight"
  tensor::Matrix a;  // [rank][n_in]  (expert 0 for stacks)
  tensor::Matrix b;  // [n_out][rank]
  size_t a_expert_bytes = 0;
  size_t b_expert_bytes = 0;
  // B transposed to [rank][n_out] for a plain projection (not an expert stack), so that decoding
  // adds B (A x) as `rank` contiguous axpy passes over the output instead of n_out dot products
  // of `rank` values each: F16 when B is F16 (the same values), else B dequantized to F32.
  std::vector<uint16_t> b_t16;
  std::vector<float> b_t32;
  int rank = 0;
  // Whether hearth's forward pass multiplies through this tensor. llama.cpp loads pairs for some
  // tensors it never applies (per_layer_model_proj, dead K/V of KV-shared layers, norms); they
  // are accepted and reported, not applied.
  bool applied = true;
};

// A llama.cpp LoRA adapter file (`general.type = adapter`, `adapter.type = lora`), validated
// against a base model. Keeps the file mapped; the pairs point into it.
class LoraAdapter {
 public:
  // Throws Error(kIo) when unreadable and Error(kInvalidInput) naming the file and the first
  // mismatch (architecture, type, a tensor the model lacks, a shape, a missing half).
  static std::shared_ptr<const LoraAdapter> Load(const std::string& path, const Model& model);
  static std::shared_ptr<const LoraAdapter> FromFile(gguf::File file, const Model& model);
  ~LoraAdapter();

  const std::string& path() const { return path_; }
  float alpha() const { return alpha_; }
  const std::vector<LoraPair>& pairs() const { return pairs_; }
  // alpha / rank, or 1 when alpha is 0 (llama.cpp's rule).
  float AlphaOverRank(int rank) const {
    return alpha_ != 0 ? alpha_ / static_cast<float>(rank) : 1.0f;
  }
  // The model it was validated against.
  const Model* model() const { return model_; }

 private:
  LoraAdapter() = default;
  const Model* model_ = nullptr;
  std::string path_;
  std::unique_ptr<gguf::File> file_;
  float alpha_ = 0;
  std::vector<LoraPair> pairs_;
};

// A llama.cpp control vector file: F32 `direction.N` tensors of n_embd values, N = layer >= 1.
class ControlVector {
 public:
  // Throws like LoraAdapter::Load (wrong width, a layer the model lacks, a tensor that is not a
  // direction).
  static std::shared_ptr<const ControlVector> Load(const std::string& path, const Model& model);
  static std::shared_ptr<const ControlVector> FromFile(gguf::File file, const Model& model);

  const std::string& path() const { return path_; }
  // [n_layer][n_embd], zeros where the file has no direction.
  const std::vector<float>& directions() const { return directions_; }
  int n_directions() const { return n_directions_; }

 private:
  std::string path_;
  std::vector<float> directions_;
  int n_directions_ = 0;
};

// What to load: a path and a scale (`FILE[:SCALE]` on the command line).
struct AdapterSpec {
  std::string path;
  float scale = 1.0f;
};

// Parses `FILE[:SCALE]`: a suffix after the last ':' that is a number is the scale (default 1).
// Throws Error(kUsage) naming `flag` for an empty path or a scale that is not finite.
AdapterSpec ParseAdapterSpec(const std::string& text, const std::string& flag);

// One adapter's pair for one weight with its effective scale (AdapterSet::Find).
struct LoraTerm {
  const LoraPair* pair = nullptr;
  float scale = 0;  // user scale * alpha / rank (or the user scale when alpha is 0)
};

// The active adapters of a Context: LoRA adapters with scales (zero-scale ones dropped, as
// llama.cpp does, so scale 0 is exactly the base model) and the sum of control vectors times
// their strengths.
class AdapterSet {
 public:
  using Loras = std::vector<std::pair<std::shared_ptr<const LoraAdapter>, float>>;
  using Cvecs = std::vector<std::pair<std::shared_ptr<const ControlVector>, float>>;
  // Null when nothing is active (no adapter with a non-zero scale, no control vector).
  static std::shared_ptr<const AdapterSet> Make(const Model& model, Loras loras, Cvecs cvecs);
  // Loads every spec (Load of each file) and makes the set. Null when both lists are empty.
  static std::shared_ptr<const AdapterSet> Load(const Model& model,
                                                const std::vector<AdapterSpec>& loras,
                                                const std::vector<AdapterSpec>& cvecs);

  const Loras& loras() const { return loras_; }
  const Cvecs& cvecs() const { return cvecs_; }
  // Identifies the set (files and scales): KV caches computed under one key are reusable under
  // the same key only.
  const std::string& key() const { return key_; }
  // The model the set was made for.
  const Model* model() const;

  // Terms for the weight at `weight` (the address of a Linear or Experts in the model's
  // Weights), null when none.
  const std::vector<LoraTerm>* Find(const void* weight) const;
  // Control vector of layer `l` ([n_embd]), null when none.
  const float* ControlDirection(int l) const;
  // Largest rank and largest output width over the applied pairs (work buffer sizes).
  int max_rank() const { return max_rank_; }
  int64_t max_out() const { return max_out_; }

 private:
  struct Impl;
  AdapterSet();
  std::shared_ptr<Impl> impl_;
  Loras loras_;
  Cvecs cvecs_;
  std::string key_;
  int max_rank_ = 0;
  int64_t max_out_ = 0;

 public:
  ~AdapterSet();
};

// The key of a possibly-null set ("" for none).
inline std::string AdapterKey(const AdapterSet* set) { return set ? set->key() : std::string(); }

// A short description of an adapter or control-vector file for `hearth info`, without a base
// model: what kind it is, alpha, ranks, which tensor kinds and layers it adapts. Empty when the
// file is neither.
std::vector<std::string> DescribeAdapterFile(const gguf::File& file);

}  // namespace hearth::model
