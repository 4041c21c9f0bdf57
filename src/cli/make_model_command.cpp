// `hearth make-model`: random weights with a real Gemma 4 variant's dimensions, for benchmarks.
#include <chrono>
#include <iostream>
#include <memory>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/interrupt_cleanup.h"
#include "cli/progress.h"
#include "convert/convert.h"

namespace hearth::cli {
namespace {

struct MakeModelArgs {
  std::string like, vocab, type = "Q4_K_M", output;
  std::string audio_mmproj, audio_type = "F16";
  std::string vision_mmproj, vision_type = "F16";
  int64_t mmproj_text_width = 0;
  std::string lora_for, lora_type = "F16";
  int rank = 16;
  uint64_t seed = 1;
  int threads = 0;
};

// --lora-for BASE: a random adapter for an existing model instead of a model.
void RunMakeLora(const MakeModelArgs& args) {
  if (args.output.empty()) ThrowUsage("-o is required", "name the adapter file to write");
  if (!args.like.empty() || !args.audio_mmproj.empty() || !args.vision_mmproj.empty()) {
    ThrowUsage("--lora-for writes an adapter only",
               "drop --like, --audio-mmproj and --vision-mmproj");
  }
  const convert::Preset* preset = convert::FindPreset(args.lora_type);
  convert::MakeLoraOptions options;
  options.base = args.lora_for;
  options.rank = args.rank;
  options.type = preset != nullptr ? preset->default_type : 0xFFFFFFFFU;
  options.output = args.output;
  options.seed = args.seed;
  convert::MakeLora(options);
  std::cerr << "hearth: wrote " << args.output << " (random rank-" << args.rank << " LoRA for "
            << args.lora_for << ", " << args.lora_type << ")\n";
}

void RunMakeModel(const MakeModelArgs& args) {
  // Ctrl-C: exit 130, no half-written file left.
  const RemoveTmpOnSigint cleanup(args.output, args.audio_mmproj, args.vision_mmproj);
  if (!args.lora_for.empty()) return RunMakeLora(args);
  if (args.like.empty()) ThrowUsage("--like is required", "name a variant, e.g. --like e4b");
  if (!args.audio_mmproj.empty() && args.audio_mmproj == args.vision_mmproj) {
    ThrowUsage("--audio-mmproj and --vision-mmproj name the same file",
               "write the two projectors to different files");
  }
  // The random projectors, each in its own file.
  const auto projector = [&](const std::string& output, const std::string& type_name,
                             void (*make)(const convert::MakeProjectorOptions&), const char* what) {
    const convert::Preset* preset = convert::FindPreset(type_name);
    convert::MakeProjectorOptions options;
    options.like = args.like;
    options.type = preset != nullptr ? preset->default_type : 0xFFFFFFFFU;
    options.output = output;
    options.seed = args.seed;
    options.threads = args.threads;
    options.text_width = args.mmproj_text_width;
    make(options);
    std::cerr << "hearth: wrote " << output << " (random " << args.like << " " << what
              << " projector, " << type_name << ")\n";
  };
  if (!args.vision_mmproj.empty()) {
    projector(args.vision_mmproj, args.vision_type, convert::MakeVisionProjector, "vision");
    if (args.output.empty() && args.audio_mmproj.empty()) return;
  }
  if (!args.audio_mmproj.empty()) {
    projector(args.audio_mmproj, args.audio_type, convert::MakeAudioProjector, "audio");
    if (args.output.empty()) return;
  }
  if (args.output.empty() || args.vocab.empty()) {
    ThrowUsage(
        "-o and --vocab are required (unless only --audio-mmproj / --vision-mmproj is "
        "written)");
  }
  convert::MakeModelOptions options;
  options.like = args.like;
  options.vocab_path = args.vocab;
  options.preset = convert::FindPreset(args.type);
  if (!options.preset) {
    ThrowUsage("unknown type '" + args.type + "'", "use one of " + convert::PresetNames());
  }
  options.output = args.output;
  options.seed = args.seed;
  options.threads = args.threads;
  ProgressLine progress("make-model");
  options.progress = [&](const std::string& name, int done, int total) {
    progress.Update(done, total, name);
  };
  auto start = std::chrono::steady_clock::now();
  convert::MakeModel(options);
  progress.Finish();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "hearth: wrote " << args.output << " (random " << args.like << ", "
            << options.preset->name << ") in " << seconds << " s\n";
}

void RegisterMakeModel(CLI::App& app) {
  auto args = std::make_shared<MakeModelArgs>();
  std::string likes;
  for (const auto& n : convert::VariantNames()) likes += (likes.empty() ? "" : "|") + n;
  CLI::App* cmd = app.add_subcommand(
      "make-model",
      "Write a Gemma 4 GGUF with random weights and a real variant's dimensions (for benchmarks; "
      "not a language model)");
  cmd->add_option("--like", args->like, "Variant whose dimensions to use: " + likes);
  cmd->add_option("--vocab", args->vocab,
                  "GGUF holding the Gemma 4 tokenizer, e.g. "
                  "../shared/fixtures/tokenizer/gemma-4-vocab.gguf");
  cmd->add_option("--type", args->type, "Weight preset: " + convert::PresetNames())
      ->capture_default_str();
  cmd->add_option("-o,--output", args->output, "Destination .gguf");
  cmd->add_option("--audio-mmproj", args->audio_mmproj,
                  "Also (or only) write a random audio projector with the real e2b/e4b audio "
                  "tower's dimensions here (for hearth bench --audio)");
  cmd->add_option("--audio-type", args->audio_type,
                  "Matrix type of --audio-mmproj: F32, F16 or Q8_0")
      ->capture_default_str();
  cmd->add_option("--vision-mmproj", args->vision_mmproj,
                  "Also (or only) write a random vision projector with the real vision tower's "
                  "dimensions of the variant here (for hearth bench --image and llama-mtmd-cli)");
  cmd->add_option("--vision-type", args->vision_type,
                  "Matrix type of --vision-mmproj: F32, F16 or Q8_0")
      ->capture_default_str();
  cmd->add_option("--mmproj-text-width", args->mmproj_text_width,
                  "Project --vision-mmproj / --audio-mmproj to this width instead of the "
                  "variant's (to pair the real-size encoder with a tiny text model, e.g. for "
                  "llama-mtmd-cli, which always runs the text model after the encoder)")
      ->check(CLI::Range(int64_t{1}, int64_t{65536}));
  cmd->add_option("--lora-for", args->lora_for,
                  "Instead of a model, write a random LoRA adapter (llama.cpp format) for this "
                  "base model to -o: attn_q/k/v/output and ffn_gate/up/down of every layer");
  cmd->add_option("--rank", args->rank, "Rank of --lora-for's adapter")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--lora-type", args->lora_type, "Tensor type of --lora-for's adapter: F32 or F16")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Random seed (same seed, same file)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", args->threads, "Threads (default: one per physical core)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([args] { RunMakeModel(*args); });
}

}  // namespace

HEARTH_COMMAND(make_model, RegisterMakeModel);

}  // namespace hearth::cli
