// The Gemma 4 model: a memory-mapped GGUF file with its configuration and bound weights, and a
// Context that runs the forward pass (batched prefill and single-token decode) over a KV cache.
//
//   auto model = hearth::model::Model::Load("gemma-4-E2B-it-Q4_K_M.gguf");
//   hearth::model::Context ctx(*model, {.n_ctx = 4096});
//   std::vector<float> logits(n * model->config().n_vocab);
//   ctx.Decode(tokens, logits.data(), /*all_logits=*/true);
//
// The forward pass itself is in forward.cpp, readable top to bottom
// (../shared/spec/gemma4-model.md §3).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"

namespace hearth::gguf {
class File;
}

namespace hearth::model {

struct Weights;  // weights.h (internal): tensor views into the mapped file
class RepackedWeights;
struct KvCache;
struct Scratch;
struct LoraScratch;
class AdapterSet;  // adapters.h: LoRA adapters and control vectors

class Model {
 public:
  // Opens, validates and binds `path`. Throws Error naming the file and the key or tensor at fault.
  static std::unique_ptr<Model> Load(const std::string& path);
  // Same, for a file already opened or parsed (tests, fuzzing); the Model keeps it.
  static std::unique_ptr<Model> FromFile(gguf::File file);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  const Weights& weights() const { return *weights_; }
  // The parsed file the weights point into (metadata, tensor list).
  const gguf::File& file() const;
  // Bytes of tensor data in the file (what the mapping pages in while running).
  uint64_t weight_bytes() const;

 private:
  Model();
  struct FileHolder;
  std::unique_ptr<FileHolder> file_;
  ModelConfig config_;
  std::unique_ptr<Weights> weights_;
  std::unique_ptr<RepackedWeights> repacked_;  // interleaved copies some weights point into
};

struct ContextOptions {
  int n_ctx = 4096;    // positions the KV cache holds; clamped to nothing: must be <= n_ctx_train
  int n_ubatch = 256;  // tokens per forward step; longer batches are split
  int n_threads = 1;
  // Precise: F32 activations in every dot product, exact tanh GELU, F32 KV cache (the reference
  // mode). Fast (default): activations in the weight type's dot format, GELU through the fp16
  // table, F16 KV cache — what llama.cpp's CPU backend computes.
  bool precise = false;
  // Storage of the cached keys and values (`--cache-type`): F16 as llama.cpp by default, or Q8_0 /
  // Q4_0 blocks (a quarter / a little over a quarter of F32's bytes), written quantized and read
  // as ggml's flash attention does. Precise mode ignores both: its cache is F32.
  KvType cache_type_k = KvType::kF16;
  KvType cache_type_v = KvType::kF16;
  // LoRA adapters and control vectors applied on top of the weights (adapters.h); null = none.
  std::shared_ptr<const AdapterSet> adapters;
};

class Context {
 public:
  // Allocates the KV cache and the work buffers once. Throws Error(kUsage) when n_ctx is out of
  // range and Error(kResource) when the memory cannot be had.
  Context(const Model& model, ContextOptions options);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Feeds `tokens` at positions n_past().. and advances. Writes the logits (after the final
  // soft-cap) of every token to `logits` ([tokens.size()][n_vocab]) when `all_logits`, else only
  // those of the last token ([n_vocab]); `logits` may be null. Throws Error(kResource) before any
  // work when the tokens do not fit in the context, Error(kInvalidInput) for an id >= n_vocab.
  // `hidden`, when not null, receives the final hidden state after the output norm (what the LM
  // head multiplies, before the soft-cap) of the same rows as the logits ([rows][n_embd]): the
  // MTP drafter's input (gemma4-mtp.md §4.1).
  void Decode(std::span<const int32_t> tokens, float* logits, bool all_logits,
              float* hidden = nullptr);
  // Feeds embedding rows instead of token ids: `rows` is [n][n_embd] (a multimodal encoder's
  // output, e.g. one image or one 30 s audio piece), one position per row from n_past(), logits
  // and `hidden` as Decode. The rows enter the model as they are (no sqrt(n_embd) scaling) and
  // their per-layer token embedding is token 0's (gemma4-multimodal.md §2.3). `non_causal`: in
  // the sliding-window layers every row also sees the later rows of the span (§2.4; images of
  // models other than E2B/E4B); full-attention layers stay causal. Throws Error(kInvalidInput)
  // when rows.size() is not a multiple of n_embd, Error(kResource) when the rows do not fit, and
  // Error(kUsage) for a non-causal span longer than options().n_ubatch (it must be one step).
  void DecodeEmbeddings(std::span<const float> rows, float* logits, bool all_logits,
                        bool non_causal = false, float* hidden = nullptr);

  int n_past() const { return n_past_; }
  int n_ctx() const { return options_.n_ctx; }
  const Model& model() const { return model_; }
  const ContextOptions& options() const { return options_; }
  // Forgets everything (positions restart at 0); keeps the memory.
  void Reset() {
    n_past_ = 0;
    sliding_floor_ = 0;
  }
  // Forgets positions >= n (0 <= n <= n_past()), so decoding continues at position n and the
  // prefix stays reusable. Returns false and changes nothing when a sliding layer's ring has
  // already overwritten a position that position n still sees; then Reset() and re-feed.
  bool Truncate(int n);
  // Bytes of the KV cache.
  uint64_t kv_bytes() const;
  // The types the cache stores keys and values in (F32 for both in precise mode).
  KvType k_type() const;
  KvType v_type() const;

  // The cache's state as bytes, so that another process can continue from it
  // (engine/prefix_store.h). kFull: the keys and values of positions [0, n_past()) of every
  // full-attention layer, layer by layer, keys then values, position-major: the first n
  // positions' bytes serve any n <= n_past(). kSliding: those of the sliding layers for the
  // positions that position n_past() still sees (the last sliding_window - 1): valid for exactly
  // n_past(), which it starts with (int32). Cells in the cache's storage types (k_type(),
  // v_type(): F16, Q8_0 or Q4_0 blocks, or F32 in precise mode); the blobs do not name them, so
  // whoever keeps them keys them by the types.
  enum class KvPart { kFull, kSliding };
  std::string ExportKv(KvPart part) const;
  // Bytes per position of ExportKv(kFull); a blob of m positions is m times as long.
  size_t FullKvBytesPerPosition() const;
  // Makes the cache hold positions [0, n) from ExportKv(kFull) of a context of the same model
  // and cache type that held at least n positions (its first n are read) and ExportKv(kSliding)
  // of one at exactly n. Returns false and changes nothing when a blob's size does not fit that
  // (another model, cache type or position). Afterwards Truncate below n fails when n is past
  // the sliding window: the rings hold nothing older than what position n sees.
  bool ImportKv(int n, std::string_view full, std::string_view sliding);
  // Replaces the active adapters (null = none). A set with another key() than the current one
  // makes the cached positions stale, so they are forgotten (Reset). Throws Error(kUsage) for a
  // set made for another model.
  void SetAdapters(std::shared_ptr<const AdapterSet> adapters);
  const AdapterSet* adapters() const { return options_.adapters.get(); }

 private:
  // `rows` non-null: embedding rows instead of `tokens` (DecodeEmbeddings).
  void Step(const int32_t* tokens, int n, float* logits, bool all_logits, float* hidden,
            const float* rows, bool non_causal);
  friend class DrafterContext;  // drafter.h: its attention reads this context's KV cache

  const Model& model_;
  ContextOptions options_;
  int n_past_ = 0;
  int sliding_floor_ = 0;  // Truncate refuses 0 < n < this (set by ImportKv)
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<Scratch> scratch_;
  struct Pool;
  std::unique_ptr<Pool> pool_;
  std::unique_ptr<LoraScratch> lora_scratch_;
};

}  // namespace hearth::model
