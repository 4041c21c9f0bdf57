// `hearth run -m MODEL.gguf -p PROMPT [-n N] [sampling flags] [--stop S]...`: a raw completion of
// PROMPT (no chat template), streamed to stdout; a one-line summary goes to stderr.
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/generation_flags.h"
#include "cli/input.h"
#include "cli/media_flags.h"
#include "cli/model_flag.h"
#include "engine/json_constraint.h"
#include "engine/loaded_model.h"
#include "engine/session.h"

namespace hearth::cli {
namespace {

struct RunOptions {
  std::shared_ptr<GenerationFlags> gen = std::make_shared<GenerationFlags>();
  std::string prompt;
  std::string file;                   // -f: the prompt from a file ("-": stdin)
  CLI::Option* prompt_opt = nullptr;  // to tell `-p ''` from no -p
  std::string token_ids;              // --tokens: the prompt as ids instead of text
  bool print_ids = false;
  int n_predict = 256;
  std::vector<std::string> stop;
  bool no_display_prompt = false;
  bool ignore_eos = false;
  std::string json_schema;       // --json-schema: inline JSON schema text
  std::string json_schema_file;  // --json-schema-file ("-": stdin)
  MediaFlags media;              // --audio FILE..., --mmproj
};

// --json-schema / --json-schema-file: the server's JSON constraint (engine/json_constraint.h), so
// the continuation is one JSON value that validates against the schema; null without either.
std::shared_ptr<const engine::JsonConstraint> SchemaConstraint(const RunOptions& opt) {
  if (!opt.json_schema.empty() && !opt.json_schema_file.empty()) {
    ThrowUsage("give --json-schema or --json-schema-file, not both");
  }
  if (opt.json_schema.empty() && opt.json_schema_file.empty()) return nullptr;
  const bool inline_text = !opt.json_schema.empty();
  const std::string text = inline_text ? opt.json_schema : ReadInput(opt.json_schema_file);
  const nlohmann::json schema = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) {
    ThrowUsage(
        std::string(inline_text ? "--json-schema" : opt.json_schema_file) + " is not valid JSON",
        "give a JSON schema such as '{\"type\":\"object\"}'");
  }
  return std::make_shared<engine::JsonConstraint>(engine::JsonConstraint::ForSchema(schema));
}

std::atomic<bool> g_cancel{false};

// "2,1946,3205" -> ids, each checked against the vocabulary.
std::vector<int32_t> ParseTokenIds(const std::string& text, int n_vocab) {
  std::vector<int32_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    int32_t v = -1;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || v < 0 ||
        v >= n_vocab) {
      ThrowUsage("--tokens: '" + item + "' is not a token id of this model",
                 "give ids from 0 to " + std::to_string(n_vocab - 1) + " separated by commas");
    }
    out.push_back(v);
    start = end + 1;
  }
  return out;
}

void RunOnSigint(int) { g_cancel.store(true); }

void RunRun(RunOptions& opt) {
  GenerationFlags& gen = *opt.gen;
  if (opt.n_predict < 1) ThrowUsage("-n must be at least 1", "give the number of new tokens");
  const engine::SamplingParams sampling = gen.Sampling();

  const auto t0 = std::chrono::steady_clock::now();
  if (opt.prompt.empty() == opt.token_ids.empty()) {
    ThrowUsage("give exactly one of -p/--prompt and --tokens");
  }
  const auto lm = engine::LoadedModel::Open(gen.model_path, gen.adapters.Request());
  gen.ApplySpeculation(*lm);
  const model::ContextOptions copt = lm->Context(gen.Context());
  // BOS as the file says (LoadedModel::add_bos). Control-token text in the prompt ("<|turn>")
  // becomes those tokens, as in llama.cpp. --tokens are taken as they are.
  std::vector<int32_t> prompt;
  std::vector<engine::MediaSpan> media;
  if (opt.media.any()) {
    // Media: each --image / --audio goes where the prompt has its placeholder (<|image|>,
    // <|audio|>), or all of them in front of the prompt when it has none (engine/media.h lays
    // out the markers and rows).
    if (!opt.token_ids.empty()) ThrowUsage("--image / --audio cannot be combined with --tokens");
    const auto projector =
        OpenProjector(opt.media.mmproj, gen.model_path, lm->config(), copt.n_threads);
    std::string text = opt.prompt;
    const std::vector<engine::MediaPtr> items = EncodeMediaFlags(*projector, opt.media, &text);
    prompt = engine::EncodeWithMedia(text, items, lm->tokenizer(), &media);
  } else {
    prompt = opt.token_ids.empty() ? lm->tokenizer().Encode(opt.prompt, lm->add_bos())
                                   : ParseTokenIds(opt.token_ids, lm->config().n_vocab);
  }

  engine::GenerateOptions gopt;
  gopt.max_tokens = opt.n_predict;
  gopt.sampling = sampling;
  gopt.stop = opt.stop;
  gopt.stop_at_eog = !opt.ignore_eos;
  gopt.cancel = &g_cancel;
  gopt.constraint = SchemaConstraint(opt);
  if (!opt.print_ids) {
    gopt.on_text = [](std::string_view piece) {
      std::cout << piece << std::flush;
      return static_cast<bool>(std::cout);
    };
  }
  if (static_cast<int64_t>(prompt.size()) + opt.n_predict > copt.n_ctx) {
    // Same check as Session::Generate, before the KV cache is allocated.
    throw Error(ErrorClass::kResource,
                "the prompt (" + std::to_string(prompt.size()) + " tokens) plus " +
                    std::to_string(opt.n_predict) + " new tokens do not fit in the context of " +
                    std::to_string(copt.n_ctx) + " tokens",
                "raise -c (this model allows " + std::to_string(lm->config().n_ctx_train) +
                    ") or lower -n");
  }
  engine::Session session(lm->model(), lm->tokenizer(), copt);
  session.SetSpeculation(lm->speculation());
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  struct sigaction sa = {};
  sa.sa_handler = RunOnSigint;
  sigemptyset(&sa.sa_mask);
  struct sigaction old = {};
  sigaction(SIGINT, &sa, &old);
  if (!opt.no_display_prompt && !opt.print_ids) std::cout << opt.prompt << std::flush;
  engine::GenerateResult r;
  try {
    r = session.Generate(prompt, media, gopt);
  } catch (...) {
    sigaction(SIGINT, &old, nullptr);
    throw;
  }
  sigaction(SIGINT, &old, nullptr);
  if (opt.print_ids) {
    // The generated ids (an end-of-generation token excluded), comma-separated as --tokens.
    for (size_t i = 0; i < r.tokens.size(); ++i) std::cout << (i ? "," : "") << r.tokens[i];
  }
  std::cout << "\n" << std::flush;
  if (gen.verbose) {
    std::cerr << "hearth run: model " << gen.model_path << ", context " << copt.n_ctx << ", "
              << copt.n_threads << " threads, seed " << sampling.seed << ", draft source "
              << session.speculation_source() << ", loaded in " << static_cast<int>(load_s * 1000)
              << " ms\n";
  }
  std::cerr << "hearth run: " << r.stats.Summary() << "\n";
  if (g_cancel.load()) throw Interrupted{};
}

// The prompt from -p TEXT, -p - (stdin), -f FILE, or a piped stdin when none is given.
std::string PromptText(const RunOptions& opt) {
  const bool have_p = opt.prompt_opt->count() > 0;
  if (have_p && !opt.file.empty()) ThrowUsage("give -p or -f, not both", "one prompt per run");
  if (!opt.file.empty()) return ReadInput(opt.file);
  if (have_p) return opt.prompt == "-" ? ReadInput("-") : opt.prompt;
  if (!opt.token_ids.empty()) return {};  // --tokens is the prompt
  if (::isatty(STDIN_FILENO)) {
    ThrowUsage("no prompt", "give -p TEXT, -f FILE, or pipe it: echo hi | hearth run -m MODEL");
  }
  return ReadInput("-");
}

}  // namespace

void RegisterRunCommand(CLI::App& app);
HEARTH_COMMAND(run, RegisterRunCommand);

void RegisterRunCommand(CLI::App& app) {
  auto opt = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Complete a prompt with a Gemma 4 model: raw text in, the continuation streamed to stdout\n"
      "(no chat template; use 'hearth chat' to talk to an instruction-tuned model). A summary\n"
      "(tokens, speed, why it stopped) goes to stderr. Ctrl-C stops generation.");
  AddGenerationFlags(cmd, opt->gen);
  AddSpeculationFlags(cmd, opt->gen);
  opt->prompt_opt = cmd->add_option(
      "-p,--prompt", opt->prompt,
      "The text to continue (BOS is added; control-token text such as <|turn> becomes that "
      "token); - reads it from stdin, as does a piped stdin without -p");
  cmd->add_option("-f,--file", opt->file, "Read the prompt from this file (- for stdin)");
  AddMediaFlags(cmd, &opt->media);
  cmd->add_option("--tokens", opt->token_ids,
                  "The prompt as token ids separated by commas (instead of -p; no BOS added)");
  cmd->add_flag("--print-ids", opt->print_ids,
                "Print the generated token ids (comma-separated) instead of the text");
  cmd->add_option("-n,--n-predict", opt->n_predict, "New tokens at most (default 256)");
  cmd->add_option("--stop", opt->stop,
                  "Stop when this text appears (not printed); repeat for several");
  cmd->add_flag("--no-display-prompt", opt->no_display_prompt,
                "Print only the continuation, not the prompt before it");
  cmd->add_option("--json-schema,-j", opt->json_schema,
                  "Constrain the continuation to one JSON value valid under this schema (as the "
                  "server's response_format; '{}' for any JSON value)");
  cmd->add_option("--json-schema-file", opt->json_schema_file,
                  "The same, the schema read from a file (- for stdin)");
  cmd->add_option_function<std::string>(
      "--grammar,--grammar-file",
      [](const std::string&) {
        ThrowUsage("GBNF grammars are not supported",
                   "constrain the output to JSON with --json-schema SCHEMA ('{}' for any value)");
      },
      "From llama.cpp: hearth constrains output with --json-schema instead");
  cmd->add_flag("--ignore-eos", opt->ignore_eos,
                "Keep going past end-of-generation tokens (<eos>, <turn|>, <|tool_response>)");
  cmd->callback([opt] {
    opt->gen->model_path =
        ModelPath(opt->gen->model_path, &opt->gen->adapters, &opt->gen->draft_path);
    opt->prompt = PromptText(*opt);
    RunRun(*opt);
  });
}

}  // namespace hearth::cli
