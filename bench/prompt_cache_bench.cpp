// The assistant's prompt cache, measured: two `hearth ask`-like turns through the agent loop with
// the local engine, on a model given on the command line. The second turn's prompt repeats the
// first conversation (system prompt, tool declarations, repo map, turn 1), which the engine
// Session keeps in its KV cache, so only the new part is decoded. Prints each turn's prompt
// tokens, the tokens reused from the cache, the prefill time and the time to first token (from
// the start of the turn, so context planning — token counting, retrieval — is included).
//
//   prompt_cache_bench MODEL.gguf [-t THREADS] [-c CTX] [--budget TOKENS] [-n TOKENS]
//                      [--root DIR]
//
// Without --root it uses a scratch repository holding a copy of hearth's src/agent sources (so
// the repo map and retrieval have real code to find), removed at the end.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "agent/agent.h"
#include "base/error.h"
#include "index/index.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct TurnNumbers {
  int prompt_tokens = 0, reused_tokens = 0, generated = 0;
  double prefill_s = 0, ttft_s = 0, total_s = 0;
};

int Usage() {
  std::cerr << "usage: prompt_cache_bench MODEL.gguf [-t THREADS] [-c CTX] [--budget TOKENS] "
               "[-n TOKENS] [--root DIR]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, root;
  int threads = 1, n_ctx = 4096, budget = 0, max_tokens = 8;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "-t") {
      threads = std::atoi(next().c_str());
    } else if (a == "-c") {
      n_ctx = std::atoi(next().c_str());
    } else if (a == "--budget") {
      budget = std::atoi(next().c_str());
    } else if (a == "-n") {
      max_tokens = std::atoi(next().c_str());
    } else if (a == "--root") {
      root = next();
    } else if (a.starts_with("-") || !model.empty()) {
      return Usage();
    } else {
      model = a;
    }
  }
  if (model.empty() || threads < 1 || n_ctx < 256 || max_tokens < 1) return Usage();

  fs::path scratch;
  try {
    if (root.empty()) {
      std::string tmpl = (fs::temp_directory_path() / "hearth-cache-bench-XXXXXX").string();
      if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
      scratch = tmpl;
      fs::create_directories(scratch / ".git");
      fs::create_directories(scratch / "src/agent");
      fs::copy(fs::path(HEARTH_SOURCE_DIR) / "src/agent", scratch / "src/agent",
               fs::copy_options::recursive);
      root = scratch.string();
    }
    using namespace hearth;
    agent::Workspace ws = agent::Workspace::AtRoot(root);
    index::BuildOptions bo;
    bo.root = ws.root();
    bo.threads = threads;
    index::BuildIndex(bo);

    auto backend = agent::MakeLocalBackend(model, {.n_ctx = n_ctx, .n_threads = threads});
    agent::Journal journal(ws);
    agent::ToolBox tools(ws, agent::LoadConfig(ws),
                         {.mode = agent::PermissionMode::kReadOnly, .journal = &journal});
    agent::Agent assistant(*backend, tools, journal);
    agent::AskOptions ao;
    ao.max_tokens = max_tokens;
    ao.max_steps = 1;  // one model step a turn: the numbers are about the prompt
    ao.context_budget = budget;

    std::printf("model %s; %d thread(s); context %d; budget %s; root %s\n", model.c_str(), threads,
                backend->context_size(), budget > 0 ? std::to_string(budget).c_str() : "auto",
                root.c_str());
    const char* questions[] = {
        "Where is the edit journal written, and how does undo restore the files?",
        "And which tools may change files in the workspace?"};
    TurnNumbers turns[2];
    for (int t = 0; t < 2; ++t) {
      TurnNumbers& n = turns[t];
      const auto start = Clock::now();
      agent::AgentCallbacks cb;
      cb.on_step = [&](int step, const agent::ChatReply& r) {
        if (step != 1) return;
        const double at = std::chrono::duration<double>(Clock::now() - start).count();
        n.prompt_tokens = r.prompt_tokens;
        n.reused_tokens = r.reused_tokens;
        n.generated = r.completion_tokens;
        n.prefill_s = r.prompt_seconds;
        n.ttft_s = at - r.generate_seconds;  // planning + prefill + the first token
      };
      agent::TurnResult r = assistant.Ask(questions[t], ao, cb);
      n.total_s = std::chrono::duration<double>(Clock::now() - start).count();
      std::printf(
          "turn %d: %5d prompt tokens, %5d reused from the KV cache; prefill %7.3f s; time to "
          "first token %7.3f s; %d generated; turn %7.3f s (context used %d of %d)\n",
          t + 1, n.prompt_tokens, n.reused_tokens, n.prefill_s, n.ttft_s, n.generated, n.total_s,
          r.context.used, r.context.budget);
    }
    std::printf("turn 2 / turn 1 time to first token: %.3f (%.3f s vs %.3f s)\n",
                turns[1].ttft_s / turns[0].ttft_s, turns[1].ttft_s, turns[0].ttft_s);
  } catch (const std::exception& e) {
    std::cerr << "prompt_cache_bench: " << e.what() << "\n";
    if (!scratch.empty()) fs::remove_all(scratch);
    return 1;
  }
  if (!scratch.empty()) fs::remove_all(scratch);
  return 0;
}
