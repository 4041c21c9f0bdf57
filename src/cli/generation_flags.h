// Command-line flags shared by the commands that generate text (run, chat): model, context size,
// threads and the sampling chain. Header-only so each command file stays self-contained.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <random>
#include <string>

#include "base/error.h"
#include "cli/adapter_flags.h"
#include "cli/cache_type_flags.h"
#include "cli/compat_flags.h"
#include "cli/model_flag.h"
#include "engine/loaded_model.h"
#include "engine/sampler.h"

namespace hearth::cli {

struct GenerationFlags {
  std::string model_path;
  int n_ctx = 0;    // 0: engine::kDefaultContext, or the model's maximum if smaller
  int threads = 0;  // 0: engine::DefaultThreads()
  bool seed_given = false;
  uint64_t seed = 0;
  engine::SamplingParams sampling;
  bool verbose = false;
  AdapterFlags adapters;  // --lora, --control-vector
  CacheTypeFlags cache_type;  // --cache-type
  // Speculative decoding (AddSpeculationFlags).
  std::string draft_path;        // --draft: an MTP drafter (else one found next to the model)
  std::string draft_model_path;  // --draft-model: a smaller Gemma 4
  int lookup = 0;                // --lookup N: prompt lookup with N-grams
  int draft_max = 0;             // --draft-max K
  bool no_spec = false;          // --no-spec

  // Attaches the draft sources the flags name to `lm` (after Open, which found any drafter
  // next to the model). Throws Error(kUsage) for a file that does not fit the model.
  void ApplySpeculation(engine::LoadedModel& lm) const {
    if (no_spec) {
      lm.DisableSpeculation();
      return;
    }
    if (!draft_path.empty()) lm.AttachDrafter(draft_path);
    // By name like -m: `--draft-model e2b` is the catalog's E2B wherever `hearth pull` put it.
    if (!draft_model_path.empty()) lm.AttachDraftModel(ModelPath(draft_model_path));
    if (lookup > 0) lm.SetLookup(lookup);
    lm.SetMaxDraft(draft_max);
  }

  // The context the flags ask for; engine::LoadedModel::Context fills in the defaults.
  engine::ContextRequest Context() const {
    return {.n_ctx = n_ctx,
            .n_threads = threads,
            .cache_type_k = cache_type.k,
            .cache_type_v = cache_type.v};
  }
  // The sampling parameters with the seed resolved (random unless --seed), validated.
  engine::SamplingParams Sampling() {
    if (!seed_given) {
      seed = (static_cast<uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
      seed_given = true;
    }
    sampling.seed = seed;
    sampling.Validate();
    return sampling;
  }
};

inline void AddSamplingFlags(CLI::App* cmd, const std::shared_ptr<GenerationFlags>& f);

inline void AddGenerationFlags(CLI::App* cmd, const std::shared_ptr<GenerationFlags>& f) {
  AddModelFlag(cmd, f->model_path, "A Gemma 4 model");
  cmd->add_option("-c,--ctx-size", f->n_ctx,
                  "Context size in tokens (default " + std::to_string(engine::kDefaultContext) +
                      ", or the model's maximum if smaller)");
  cmd->add_option("-t,--threads", f->threads,
                  "Worker threads (default: one per physical core, at most " +
                      std::to_string(engine::kMaxDefaultThreads) + ")")
      ->check(CLI::Range(1, 1024));
  AddSamplingFlags(cmd, f);
  AddAdapterFlags(cmd, &f->adapters);
  AddCacheTypeFlags(cmd, &f->cache_type);
  cmd->add_flag("-v,--verbose", f->verbose, "More statistics on stderr");
  AddLlamaCppFlags(cmd, Conversation::kIsNot);
}

// Speculative decoding: which draft source, how many tokens per target pass, or none. The
// output is the same with any of them (greedy), or follows the same distribution (temperature).
inline void AddSpeculationFlags(CLI::App* cmd, const std::shared_ptr<GenerationFlags>& f) {
  cmd->add_option("--draft", f->draft_path,
                  "MTP drafter (gemma4-assistant .gguf) for speculative decoding (default: one "
                  "named *assistant*.gguf or *-mtp*.gguf next to the model)");
  cmd->add_option("--draft-model", f->draft_model_path,
                  "A smaller Gemma 4 with the same tokenizer as draft model: a path or a name, as "
                  "for -m (e.g. e2b for e4b)");
  cmd->add_option("--lookup", f->lookup,
                  "Prompt lookup: draft what followed the last N tokens earlier in the text")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--draft-max", f->draft_max,
                  "Tokens drafted per target pass (default 4; 8 for --lookup)")
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--no-spec", f->no_spec, "No speculative decoding (one token per target pass)");
}

// The sampling chain and the seed alone (for commands with their own model flags).
inline void AddSamplingFlags(CLI::App* cmd, const std::shared_ptr<GenerationFlags>& f) {
  cmd->add_option("--temp", f->sampling.temperature,
                  "Sampling temperature; 0 = greedy, always the most likely token (default 0.8)");
  cmd->add_option("--top-k", f->sampling.top_k, "Keep the K most likely tokens; 0 = off (40)");
  cmd->add_option("--top-p", f->sampling.top_p,
                  "Keep the most likely tokens up to this probability mass; 1 = off (0.95)");
  cmd->add_option("--min-p", f->sampling.min_p,
                  "Drop tokens below this fraction of the top probability; 0 = off (0.05)");
  cmd->add_option("--repeat-penalty", f->sampling.repeat_penalty,
                  "Penalty for tokens among the last --repeat-last-n; 1 = off (1.0)");
  cmd->add_option("--repeat-last-n", f->sampling.penalty_last_n,
                  "How many recent tokens the penalties look at (64)");
  cmd->add_option("--presence-penalty", f->sampling.presence_penalty,
                  "Subtracted from every token seen recently; 0 = off (0)");
  cmd->add_option("--frequency-penalty", f->sampling.frequency_penalty,
                  "Subtracted per recent occurrence; 0 = off (0)");
  cmd->add_option("--seed", f->seed,
                  "Random seed; the same seed, prompt and flags give the same output "
                  "(default: random)")
      ->each([f](const std::string&) { f->seed_given = true; });
}

}  // namespace hearth::cli
