// `hearth info -m MODEL.gguf`: what a model file contains, without loading weights.
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "audio/audio.h"
#include "base/error.h"
#include "cli/cache_type_flags.h"
#include "cli/commands.h"
#include "cli/model_flag.h"
#include "engine/loaded_model.h"
#include "gguf/gguf.h"
#include "model/adapters.h"
#include "model/model.h"
#include "vision/vision.h"

namespace hearth::cli {
namespace {

struct InfoOptions {
  std::string model_path;
  std::string positional;  // `hearth show NAME`
  bool show_metadata = false;
  bool show_tensors = false;
  int n_ctx = 0;              // -c: the context the memory line is for (0: the default)
  CacheTypeFlags cache_type;  // --cache-type: the KV cache type it is for
};

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream out;
  out << std::fixed << std::setprecision(u == 0 ? 0 : 1) << v << ' ' << units[u];
  return out.str();
}

// The Gemma 4 section: variant, dimensions, layer pattern and memory needs. Binding the weights
// only records pointers into the mapping, so this still reads no weight data.
void PrintGemma4(const std::string& path, uint64_t weight_bytes, const InfoOptions& opt) {
  auto model = model::Model::Load(path);
  const model::ModelConfig& c = model->config();
  int n_full = 0, kv_s = 0, kv_g = 0, ff_min = 1 << 30, ff_max = 0;
  for (const auto& l : c.layers) {
    n_full += l.sliding ? 0 : 1;
    (l.sliding ? kv_s : kv_g) = l.n_head_kv;
    ff_min = std::min(ff_min, l.n_ff);
    ff_max = std::max(ff_max, l.n_ff);
  }
  std::cout << "variant:       Gemma 4 " << c.VariantName() << "\n";
  std::cout << "layers:        " << c.n_layer << " (" << c.n_sliding_layers() << " sliding S, "
            << n_full << " full G";
  if (c.n_kv_shared > 0) std::cout << ", last " << c.n_kv_shared << " KV-shared in lower case";
  std::cout << "): " << c.LayerPattern() << "\n";
  std::cout << "dimensions:    n_embd " << c.n_embd << ", vocab " << c.n_vocab << ", heads "
            << c.n_head << ", KV heads " << kv_s << " sliding / " << kv_g << " full, head dim "
            << c.head_dim_swa << " sliding / " << c.head_dim_full << " full, ffn " << ff_min;
  if (ff_max != ff_min) std::cout << ".." << ff_max;
  std::cout << "\n";
  std::cout << "attention:     sliding window " << c.sliding_window << ", rope base "
            << c.rope_base_swa << " sliding / " << c.rope_base_full << " full, final softcap "
            << c.final_logit_softcap << "\n";
  if (c.has_ple()) std::cout << "per-layer emb: " << c.n_embd_per_layer << " per layer\n";
  if (c.is_moe()) {
    std::cout << "experts:       " << c.n_expert << ", " << c.n_expert_used
              << " used per token, expert ffn " << c.n_ff_exp << "\n";
  }
  const model::ContextOptions defaults;
  const int n_ctx = opt.n_ctx > 0 ? opt.n_ctx : std::min(engine::kDefaultContext, c.n_ctx_train);
  if (n_ctx > c.n_ctx_train) {
    ThrowUsage("-c " + std::to_string(n_ctx) + " is out of range",
               "this model supports contexts of 1 to " + std::to_string(c.n_ctx_train) + " tokens");
  }
  const model::KvType k = opt.cache_type.k, v = opt.cache_type.v;
  model::CheckKvType(c, k);
  model::CheckKvType(c, v);
  const uint64_t kv = model::KvCacheBytes(c, n_ctx, defaults.n_ubatch, k, v);
  const uint64_t kv_max = model::KvCacheBytes(c, c.n_ctx_train, defaults.n_ubatch, k, v);
  std::cout << "context:       up to " << c.n_ctx_train << " positions\n";
  std::cout << "memory:        " << HumanBytes(weight_bytes) << " weights (memory-mapped) + "
            << HumanBytes(kv) << " " << opt.cache_type.Describe() << " KV cache at " << n_ctx
            << " positions = " << HumanBytes(weight_bytes + kv) << " (KV cache at " << c.n_ctx_train
            << " positions: " << HumanBytes(kv_max) << ")\n";
}

// A projector ("mmproj") file: its encoders, loaded (they are small) so that a malformed file is
// reported here rather than when the first image or clip arrives.
void PrintProjector(const std::string& path) {
  auto file = std::make_shared<const gguf::File>(gguf::File::Open(path));
  if (vision::Encoder::HasVision(*file)) {
    const auto v = vision::Encoder::Load(file);
    std::cout << "vision:        " << v->Describe() << ", " << v->TextWidth()
              << "-wide rows for the text model, 70.." << vision::kDefaultTokens
              << " tokens per image\n";
  }
  if (audio::Encoder::HasAudio(*file)) {
    const auto a = audio::Encoder::Load(file);
    std::cout << "audio:         " << a->Describe() << ", " << a->TextWidth()
              << "-wide rows for the text model\n";
  }
}

void RunInfo(const InfoOptions& opt) {
  gguf::File file = gguf::File::Open(opt.model_path);
  std::cout << "file:          " << file.path() << "\n";
  std::cout << "format:        GGUF v" << file.version() << ", " << HumanBytes(file.size_bytes())
            << ", " << file.metadata().size() << " metadata keys, " << file.tensors().size()
            << " tensors\n";
  auto arch = file.GetString("general.architecture");
  std::cout << "architecture:  " << (arch ? std::string(*arch) : "(not set)") << "\n";
  if (auto name = file.GetString("general.name")) std::cout << "name:          " << *name << "\n";
  if (auto tok = file.GetString("tokenizer.ggml.model")) {
    const auto* tokens = file.GetStringArray("tokenizer.ggml.tokens");
    std::cout << "tokenizer:     " << *tok << ", " << (tokens ? tokens->size() : 0) << " tokens\n";
  }
  std::map<std::string, std::pair<int, uint64_t>> by_type;
  uint64_t weight_bytes = 0;
  for (const auto& t : file.tensors()) {
    auto& [count, bytes] = by_type[gguf::TensorTypeName(t.type_id)];
    ++count;
    bytes += t.n_bytes;
    weight_bytes += t.n_bytes;
  }
  if (!by_type.empty()) {
    std::cout << "weights:       " << HumanBytes(weight_bytes) << " (";
    bool first = true;
    for (const auto& [type, cb] : by_type) {
      std::cout << (first ? "" : ", ") << type << " x" << cb.first;
      first = false;
    }
    std::cout << ")\n";
  }
  // An adapter or control vector: what it adapts (it has no model configuration of its own).
  const std::vector<std::string> adapter = model::DescribeAdapterFile(file);
  for (size_t i = 0; i < adapter.size(); ++i) {
    std::cout << (i == 0 ? "adapter:       " : "  ") << adapter[i] << "\n";
  }
  if (adapter.empty() && arch && *arch == "gemma4") PrintGemma4(file.path(), weight_bytes, opt);
  if (arch && *arch == "clip") PrintProjector(file.path());
  if (opt.show_metadata) {
    std::cout << "\nmetadata:\n";
    for (const auto& [key, value] : file.metadata()) {
      std::cout << "  " << key << " = " << value.Describe() << "\n";
    }
  }
  if (opt.show_tensors) {
    std::cout << "\ntensors:\n";
    for (const auto& t : file.tensors()) {
      std::cout << "  " << std::left << std::setw(40) << t.name << " " << std::setw(7)
                << gguf::TensorTypeName(t.type_id) << " [";
      for (size_t i = 0; i < t.shape.size(); ++i) std::cout << (i ? ", " : "") << t.shape[i];
      std::cout << "] " << HumanBytes(t.n_bytes) << "\n";
    }
  }
}

}  // namespace

void RegisterInfoCommand(CLI::App& app);
HEARTH_COMMAND(info, RegisterInfoCommand);

void RegisterInfoCommand(CLI::App& app) {
  auto opt = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "info", "Describe a GGUF model file (no weights are loaded); `hearth show NAME` is the same");
  cmd->alias("show");  // as `ollama show`
  AddModelFlag(cmd, opt->model_path, "A .gguf file");
  cmd->add_option("MODEL", opt->positional, "The model, as for -m (`hearth show e4b`)");
  cmd->add_flag("--metadata", opt->show_metadata, "List every metadata key and value");
  cmd->add_flag("--tensors", opt->show_tensors, "List every tensor with its type and shape");
  cmd->add_option("-c,--ctx-size", opt->n_ctx,
                  "The context the memory line is for (default " +
                      std::to_string(engine::kDefaultContext) + ", or the model's maximum)")
      ->check(CLI::Range(1, 1 << 30));
  AddCacheTypeFlags(cmd, &opt->cache_type);
  cmd->callback([opt] {
    if (!opt->positional.empty() && !opt->model_path.empty()) {
      ThrowUsage("two models given (-m and MODEL)", "name one");
    }
    opt->model_path = ModelPath(opt->model_path.empty() ? opt->positional : opt->model_path);
    RunInfo(*opt);
  });
}

}  // namespace hearth::cli
