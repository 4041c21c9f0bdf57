// `hearth serve -m MODEL.gguf [--host H] [--port P] [--api-key KEY] [--cors ORIGIN]...
// [--allow-host NAME]... [--parallel N] [-c CTX] [-t THREADS] [--max-body BYTES]
// [--lora FILE[:SCALE]]... [--control-vector FILE[:STRENGTH]]...`: the OpenAI- and
// Ollama-compatible HTTP API and the web chat page (src/server/).
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "agent/pull.h"
#include "base/error.h"
#include "cli/adapter_flags.h"
#include "cli/cache_type_flags.h"
#include "cli/commands.h"
#include "cli/compat_flags.h"
#include "cli/model_flag.h"
#include "cli/model_folder.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "server/server.h"

namespace hearth::cli {
namespace {

struct ServeOptions {
  std::string model_path;
  server::ServerOptions server;
  int parallel = 1;
  std::string alias;
  int n_ctx = 0;
  int threads = 0;
  int io_timeout = 30;
  std::string draft_path;
  std::string draft_model_path;
  int lookup = 0;
  bool no_spec = false;
  std::string mmproj;
  AdapterFlags adapters;
  CacheTypeFlags cache_type;
  // From the catalog: the adapters of the entry -m named, and the entries of the same base.
  std::vector<std::string> resolved_loras, resolved_cvecs;
  std::vector<agent::AdaptedModel> variants;
};

// `FILE[:SCALE]` specs of a catalog entry, parsed as --lora's are.
std::vector<model::AdapterSpec> Specs(const std::vector<std::string>& specs,
                                      const std::string& what) {
  std::vector<model::AdapterSpec> out;
  for (const auto& s : specs) out.push_back(model::ParseAdapterSpec(s, what));
  return out;
}

server::Server* g_server = nullptr;
volatile std::sig_atomic_t g_stop_signal = 0;  // SIGINT: exit 130 as every command; SIGTERM: 0

void OnSignal(int sig) {
  g_stop_signal = sig;
  // Server::Stop only sets flags and shuts the listening socket down: safe enough here, and the
  // only way to let a Ctrl-C finish running responses cleanly.
  if (g_server != nullptr) g_server->Stop();
}

void RunServe(ServeOptions opt) {
  if (opt.server.api_key.empty()) {
    if (const char* key = std::getenv("HEARTH_API_KEY"); key != nullptr) opt.server.api_key = key;
  }
  if (opt.server.host != "127.0.0.1" && opt.server.host != "localhost" &&
      opt.server.host != "::1" && opt.server.api_key.empty()) {
    std::cerr << "hearth: warning: listening on " << opt.server.host
              << " without --api-key: anyone who can reach this address can use the model\n";
  }
  opt.server.read_timeout_s = opt.server.write_timeout_s = opt.io_timeout;
  // A missing, damaged or non-Gemma file fails here, before the port is taken: a server that
  // cannot load its model must not listen at all (the full load runs in the background below,
  // and a failure there stops the server with the error too).
  model::ReadConfig(gguf::File::Open(opt.model_path));
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the server
  // /api/pull and /api/delete: catalog names only (a URL would let any client make this machine
  // fetch whatever it names), into and out of the model folder only, never the served model.
  opt.server.pull_model = [](const std::string& name,
                             const server::ServerOptions::Progress& progress,
                             const std::atomic<bool>& cancel) {
    if (name.find("://") != std::string::npos) {
      ThrowUsage("/api/pull takes a catalog name (e2b, e4b, 26b-a4b, 31b, or one of models.toml)",
                 "download other files with `hearth pull URL` on the server's machine");
    }
    std::string short_name = name;
    if (short_name.starts_with("gemma4:")) short_name.erase(0, 7);
    const auto catalog = agent::LoadCatalog(agent::CatalogConfigPath());
    if (catalog.find(short_name) == catalog.end()) {
      ThrowUsage("unknown model '" + name + "'", "/api/pull takes a catalog name");
    }
    agent::PullOptions po;
    po.dir = agent::DefaultModelDir();
    po.progress = progress;
    po.cancel = &cancel;
    const agent::PullResult r = agent::Pull(catalog.at(short_name), po);
    std::cerr << "hearth: pulled " << r.path << "\n";
    return r.path;
  };
  opt.server.delete_model = [served = opt.model_path](const std::string& name) {
    const std::string dir = agent::DefaultModelDir();
    std::error_code ec;
    for (const std::string& f : {name, name + ".gguf"}) {
      if (f.find('/') == std::string::npos &&
          std::filesystem::equivalent(std::filesystem::path(dir) / f, served, ec)) {
        ThrowInvalidInput("'" + name + "' is the model this server is serving",
                          "stop the server first");
      }
    }
    const std::string path = DeleteModel(name, dir);
    std::cerr << "hearth: deleted " << path << "\n";
    return path;
  };
  server::Server srv(opt.server);
  const int port = srv.Bind();
  g_server = &srv;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::cerr << "hearth: listening on http://" << opt.server.host << ":" << port << " (loading "
            << opt.model_path << ")\n";

  std::string load_error;
  ErrorClass load_class = ErrorClass::kInternal;
  std::string load_hint;
  std::thread loader([&] {
    try {
      server::EngineOptions eopt;
      eopt.model_path = opt.model_path;
      eopt.n_slots = opt.parallel;
      eopt.alias = opt.alias;
      eopt.n_ctx = opt.n_ctx;
      eopt.n_threads = opt.threads;
      eopt.cache_type_k = opt.cache_type.k;
      eopt.cache_type_v = opt.cache_type.v;
      eopt.draft_path = opt.draft_path;
      eopt.draft_model_path = opt.draft_model_path;
      eopt.lookup = opt.lookup;
      eopt.no_spec = opt.no_spec;
      eopt.mmproj = opt.mmproj;
      eopt.adapters = opt.adapters.Request();
      for (auto& l : Specs(opt.resolved_loras, "lora")) eopt.adapters.loras.push_back(l);
      for (auto& c : Specs(opt.resolved_cvecs, "control_vector")) eopt.adapters.cvecs.push_back(c);
      for (const agent::AdaptedModel& v : opt.variants) {
        try {
          eopt.variants.push_back(
              {v.name, {Specs(v.loras, "lora"), Specs(v.cvecs, "control_vector")}});
        } catch (const Error& e) {
          std::cerr << "hearth: warning: model '" << v.name << "' left out: " << e.Describe()
                    << "\n";
        }
      }
      eopt.warn = [](const std::string& w) { std::cerr << "hearth: warning: " << w << "\n"; };
      srv.SetGenerator(server::MakeEngineGenerator(eopt));
      std::cerr << "hearth: model loaded, " << opt.parallel << " slot(s); ready\n";
    } catch (const Error& e) {
      load_error = e.what();
      load_hint = e.hint();
      load_class = e.error_class();
      srv.SetLoadError(e.Describe());
      srv.Stop();  // a server without its model is of no use: exit with the error
    } catch (const std::exception& e) {
      load_error = e.what();
      srv.SetLoadError(e.what());
      srv.Stop();
    }
  });
  srv.Listen();
  loader.join();
  g_server = nullptr;
  if (!load_error.empty()) throw Error(load_class, load_error, load_hint);
  std::cerr << "hearth: stopped\n";
  if (g_stop_signal == SIGINT) throw Interrupted{};
}

}  // namespace

void RegisterServeCommand(CLI::App& app);
HEARTH_COMMAND(serve, RegisterServeCommand);

void RegisterServeCommand(CLI::App& app) {
  auto opt = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve a model over OpenAI- and Ollama-compatible HTTP APIs, with a web chat page at /");
  cmd->footer(
      "Endpoints: POST /v1/chat/completions, /v1/completions, /api/chat, /api/generate,\n"
      "/api/show, /api/pull (a catalog name into the model folder); DELETE /api/delete; GET\n"
      "/v1/models, /api/tags, /api/ps, /api/version, /health (503 while loading), /metrics\n"
      "(Prometheus), GET/POST /lora-adapters, / (chat page). Binds to loopback unless --host says\n"
      "otherwise; beyond loopback, /api/pull and /api/delete need --api-key. The API key may also\n"
      "come from the HEARTH_API_KEY environment variable. One line per request on stderr (method,\n"
      "path, status, tokens, ms) unless --quiet. Parameters that clients send by habit and that\n"
      "are harmless to ignore (cache_prompt, typical_p, options.mirostat...) are ignored with a\n"
      "\"warnings\" note in the response. Catalog entries with a base (models.toml) of the served\n"
      "model are served as models of their own, with their adapters.");
  AddModelFlag(cmd, opt->model_path, "A Gemma 4 model");
  cmd->add_option("--host", opt->server.host, "Address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", opt->server.port, "Port (default 8080; 0 = any free port)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", opt->server.api_key,
                  "Require 'Authorization: Bearer KEY' on every API request");
  cmd->add_option("--cors", opt->server.cors_origins,
                  "Allow web pages from ORIGIN to use the API (e.g. http://localhost:3000, or *; "
                  "repeatable). Requests from other origins are refused")
      ->allow_extra_args(false);
  cmd->add_option("--allow-host", opt->server.allow_hosts,
                  "Also answer requests whose Host header is NAME (repeatable; * for any). "
                  "Without it, a loopback server answers only localhost, 127.0.0.1 and [::1]")
      ->allow_extra_args(false);
  cmd->add_option("--parallel", opt->parallel,
                  "Requests generated at once, each in its own slot with its own KV cache "
                  "(default 1); others wait in a FIFO queue")
      ->check(CLI::Range(1, 64));
  cmd->add_option("-c,--ctx-size", opt->n_ctx,
                  "Context size per slot in tokens (default 8192, or the model's maximum)");
  cmd->add_option("-t,--threads", opt->threads,
                  "Threads per slot (default: physical cores / --parallel, max 16)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--draft", opt->draft_path,
                  "MTP drafter (gemma4-assistant .gguf) for speculative decoding (default: one "
                  "named *assistant*.gguf or *-mtp*.gguf next to the model)");
  cmd->add_option("--draft-model", opt->draft_model_path,
                  "A smaller Gemma 4 with the same tokenizer as draft model: a path or a name, as "
                  "for -m (e.g. e2b for e4b)");
  cmd->add_option("--lookup", opt->lookup,
                  "Prompt lookup: draft what followed the last N tokens earlier in the text")
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--no-spec", opt->no_spec, "No speculative decoding (one token per model pass)");
  cmd->add_option("--mmproj", opt->mmproj,
                  "The multimodal projector for input_audio content parts (default: an "
                  "mmproj*.gguf next to the model)");
  AddAdapterFlags(cmd, &opt->adapters);
  AddCacheTypeFlags(cmd, &opt->cache_type);
  cmd->add_option("--max-body", opt->server.max_body, "Largest request body in bytes (8 MiB)")
      ->check(CLI::Range(1024, 1 << 30));
  cmd->add_option("--timeout", opt->server.request_timeout_s,
                  "Seconds a generation may run before it is cut (default 600)")
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--io-timeout", opt->io_timeout,
                  "Seconds a client may stay silent while sending or reading (default 30)")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--header-timeout", opt->server.header_timeout_s,
                  "Seconds a client has to send a request's headers (default 10)")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--max-connections", opt->server.max_connections,
                  "Open connections at once; more get 503 (default 512)")
      ->check(CLI::Range(1, 900));
  cmd->add_option("--max-client-connections", opt->server.max_client_connections,
                  "Open connections from one client address; more get 503 (default 128)")
      ->check(CLI::Range(1, 900));
  cmd->add_option("--max-queue", opt->server.max_queue,
                  "Requests that may wait for a slot; more get 503 (default 64)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--alias", opt->alias,
                  "The model's name in /v1/models, /api/tags and responses (default: the name "
                  "given to -m, or the file name)");
  cmd->add_flag("-q,--quiet", opt->server.quiet, "No access log (one line per request on stderr)");
  AddLlamaCppFlags(cmd, Conversation::kIsNot);
  cmd->callback([opt] {
    // A model found by name is served under that name (an Ollama blob's file name means nothing).
    const agent::ResolvedModel resolved = agent::ResolveModel(opt->model_path);
    if (opt->alias.empty() && resolved.source != "path") opt->alias = opt->model_path;
    opt->resolved_loras = resolved.loras;
    opt->resolved_cvecs = resolved.cvecs;
    if (opt->draft_path.empty()) opt->draft_path = resolved.draft;
    // Catalog entries that are this model plus adapters are served too, by name (the entry -m
    // named is the served model itself).
    for (auto& v : agent::AdaptedModelsOf(resolved.path)) {
      if (v.name != opt->model_path && v.name != opt->alias) opt->variants.push_back(std::move(v));
    }
    opt->model_path = resolved.path;
    if (!opt->draft_model_path.empty()) {
      opt->draft_model_path = agent::ResolveModel(opt->draft_model_path).path;
    }
    RunServe(*opt);
  });
}

}  // namespace hearth::cli
