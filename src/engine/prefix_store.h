// Prompt prefixes kept across processes. The first `hearth ask` of a process decodes a prompt of
// thousands of tokens (system prompt, tools, repo map, retrieved code) that the next process
// would decode again; a PrefixStore lets a Session save the KV cache's state after such a prompt
// and a later Session start from it, decoding only what differs.
//
// What is kept (KvSnapshot): the prompt's tokens, the full-attention layers' keys and values of
// every position (a prefix of them serves any shorter prefix), and the sliding layers' window at
// a few checkpoint positions (a ring holds only the last window, so the state can be resumed
// exactly only where it was captured). Checkpoints sit where prompts diverge: at every turn start
// (`<|turn>`: the question starts a new turn after the same system turn), every 2048 positions,
// and before the last token. Restoring picks the last checkpoint inside the common prefix, so
// the continuation is bit-for-bit what decoding the whole prompt gives.
//
// The store decides where snapshots live and whether to trust them (agent/prefix_cache.h binds
// them to the model file and the user); this module only says what one holds.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::engine {

struct KvSnapshot {
  std::vector<int32_t> tokens;  // what the cache held
  std::string full;             // model::Context::ExportKv(kFull) after all of them
  // (position, ExportKv(kSliding) at that position), ascending positions, each < tokens.size().
  std::vector<std::pair<int, std::string>> sliding;

  // The largest checkpoint position p <= limit with tokens[0, p) == prompt[0, p), or 0.
  int BestCheckpoint(std::span<const int32_t> prompt, size_t limit) const;
};

// A snapshot as bytes and back. Parse returns nullopt for anything that is not exactly what
// Serialize writes (short, long, counts that do not add up); it never reads out of bounds.
std::string SerializeSnapshot(const KvSnapshot& snapshot);
std::optional<KvSnapshot> ParseSnapshot(std::string_view bytes);

class PrefixStore {
 public:
  virtual ~PrefixStore() = default;
  // A snapshot to start a prompt from (the session checks how much of it matches), or null.
  virtual std::shared_ptr<const KvSnapshot> Load() = 0;
  // Whether a snapshot of a prefill of `n_tokens` from an empty cache is wanted (asked before
  // the prefill, so the session captures checkpoints only when it is).
  virtual bool WantsSnapshot(size_t n_tokens) = 0;
  // Receives it after that prefill.
  virtual void Save(const KvSnapshot& snapshot) = 0;
};

}  // namespace hearth::engine
