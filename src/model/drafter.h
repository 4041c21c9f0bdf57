// The Gemma 4 multi-token-prediction drafter ("gemma4-assistant" GGUF files,
// ../shared/spec/gemma4-mtp.md): a small decoder with no K/V projections of its own that maps
// (token t at position p, a hidden row h of the target's width) to (logits, the next h). Its
// attention layers read the target's KV cache, so it runs over a target Context:
//
//   auto drafter = model::Drafter::Load("gemma-4-E2B-it-assistant.gguf");
//   drafter->CheckTarget(target->config(), &target->file());
//   model::DrafterContext dctx(*drafter, target_ctx);   // target_ctx holds positions 0..p-1
//   dctx.Step(token_p, p, h_prev, logits, h_next);       // h_prev: target hidden row p-1
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace hearth::gguf {
class File;
}

namespace hearth::model {

struct DrafterLayerConfig {
  bool sliding = false;
  int n_head_kv = 0;
  int head_dim = 0;
  int n_ff = 0;
};

struct DrafterConfig {
  std::string path;
  int n_layer = 0;
  int n_embd = 0;           // E, the drafter's own width
  int n_embd_backbone = 0;  // B, the target's hidden size (embedding_length_out)
  int n_vocab = 0;
  int n_head = 0;
  int head_dim_full = 0, head_dim_swa = 0;
  int rope_dim_full = 0, rope_dim_swa = 0;
  float rope_base_full = 1e4f, rope_base_swa = 1e4f;
  float rms_eps = 1e-6f;
  int sliding_window = 0;
  std::vector<DrafterLayerConfig> layers;
};

struct DrafterWeights;

class Drafter {
 public:
  // Opens, validates and binds a gemma4-assistant file. Throws Error(kInvalidInput) naming the
  // file and the key or tensor at fault.
  static std::unique_ptr<Drafter> Load(const std::string& path);
  static std::unique_ptr<Drafter> FromFile(gguf::File file);
  // Whether the parsed file is a drafter (general.architecture = gemma4-assistant).
  static bool IsDrafterFile(const gguf::File& file);
  ~Drafter();
  Drafter(const Drafter&) = delete;
  Drafter& operator=(const Drafter&) = delete;

  const DrafterConfig& config() const { return config_; }
  const DrafterWeights& weights() const { return *weights_; }

  // Checks that the drafter belongs to `target`: the same vocabulary (token strings compared
  // when `target_file` is given), the target's hidden size, and for each drafter layer the
  // cache it reads (target layer L-2 for sliding, L-1 for full, through the KV-sharing map)
  // has the drafter's type, head dim and KV-head count. Throws Error(kUsage) naming both files.
  void CheckTarget(const ModelConfig& target, const gguf::File* target_file) const;

 private:
  Drafter();
  struct FileHolder;
  std::unique_ptr<FileHolder> file_;
  DrafterConfig config_;
  std::unique_ptr<DrafterWeights> weights_;
};

// Drafter steps over one target Context (whose KV cache the drafter's attention reads; it has no
// cache of its own, so nothing here changes the target). Work buffers are allocated once.
class DrafterContext {
 public:
  // `drafter` must have passed CheckTarget for the context's model; both must outlive this.
  DrafterContext(const Drafter& drafter, Context& target);
  ~DrafterContext();
  DrafterContext(const DrafterContext&) = delete;
  DrafterContext& operator=(const DrafterContext&) = delete;

  // One drafter step (spec §3) for `token` at position `pos` with the B-wide input row `h` (the
  // target's hidden row pos-1 for the first step, the previous step's h_next after that; the
  // position stays the same for every step of one draft). Attends to the target's cached
  // positions 0..pos-1 (sliding layers the last W-1 of them): 1 <= pos <= target n_past().
  // Writes the V logits (no soft-cap) and, when not null, the next B-wide h.
  void Step(int32_t token, int pos, const float* h, float* logits, float* h_next);

 private:
  const Drafter& d_;
  Context& target_;
  struct Buffers;
  std::unique_ptr<Buffers> b_;
};

}  // namespace hearth::model
