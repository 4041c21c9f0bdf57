// `hearth quantize IN.gguf OUT.gguf TYPE`: re-encode a model's weights, choosing each tensor's
// type as llama-quantize does for the preset.
#include <chrono>
#include <iostream>
#include <memory>

#include "agent/pull.h"
#include "base/error.h"
#include "cli/commands.h"
#include "cli/interrupt_cleanup.h"
#include "cli/progress.h"
#include "convert/convert.h"

namespace hearth::cli {
namespace {

struct QuantizeArgs {
  std::string input, output, type;
  int threads = 0;
};

void RunQuantize(const QuantizeArgs& args) {
  convert::QuantizeOptions options;
  options.input = args.input;
  options.output = args.output;
  options.preset = convert::FindPreset(args.type);
  if (!options.preset) {
    ThrowUsage("unknown type '" + args.type + "'", "use one of " + convert::PresetNames());
  }
  options.threads = args.threads;
  // Quantizing already quantized weights compounds the rounding errors of both steps.
  if (const std::string from = agent::DescribeModelFile(args.input).type;
      !from.empty() && from != "F32" && from != "F16" && from != "BF16") {
    std::cerr << "hearth: warning: " << args.input << " is already quantized (" << from
              << "); re-quantizing it to " << options.preset->name
              << " loses more quality than quantizing the F32, F16 or BF16 original\n";
  }
  ProgressLine progress("quantize");
  options.progress = [&](const std::string& name, int done, int total) {
    progress.Update(done, total, name);
  };
  auto start = std::chrono::steady_clock::now();
  const RemoveTmpOnSigint cleanup(args.output);  // Ctrl-C: exit 130, no half-written file left
  convert::QuantizeModel(options);
  progress.Finish();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "hearth: wrote " << args.output << " (" << options.preset->name << ") in " << seconds
            << " s\n";
}

void RegisterQuantize(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "quantize",
      "Re-encode a GGUF model's weights (llama-quantize's per-tensor choices for each preset)");
  cmd->add_option("input", args->input, "Source .gguf (F32, F16 or BF16 is best)")->required();
  cmd->add_option("output", args->output, "Destination .gguf (written atomically)")->required();
  cmd->add_option("type", args->type, "Preset: " + convert::PresetNames())->required();
  cmd->add_option("-t,--threads", args->threads, "Threads (default: one per physical core)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([args] { RunQuantize(*args); });
}

}  // namespace

HEARTH_COMMAND(quantize, RegisterQuantize);

}  // namespace hearth::cli
