// `hearth bench`: prompt-processing and decode speed, time to first token, load time and peak
// memory of a model on this machine, in the terms llama-bench uses (pp512 / tg128), so the two
// engines can be compared on the same file.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <vector>

#include "audio/audio.h"
#include "base/error.h"
#include "base/version.h"
#include "cli/adapter_flags.h"
#include "cli/cache_type_flags.h"
#include "cli/commands.h"
#include "cli/compat_flags.h"
#include "cli/model_flag.h"
#include "engine/loaded_model.h"
#include "engine/session.h"
#include "engine/speculative.h"
#include "model/adapters.h"
#include "model/model.h"
#include "tensor/tensor.h"
#include "vision/vision.h"

namespace hearth::cli {
namespace {

struct BenchArgs {
  std::string model_path;
  int n_prompt = 512;
  int n_gen = 128;
  int threads = 0;
  int depth = 0;
  int reps = 3;
  bool json = false;
  CacheTypeFlags cache_type;  // --cache-type
  AdapterFlags adapters;
  bool vs_base = false;  // with adapters: also the base model, interleaved in the same run
  std::string audio;  // --audio: benchmark the audio encoder of --mmproj on this clip instead
  std::string mmproj;
  std::string image;     // --image: benchmark the vision encoder of --mmproj on this image instead
  int image_tokens = 0;  // --image-tokens: one budget (0: every budget)
  // --spec: speculative decoding (RunSpecBench).
  std::string spec;
  std::vector<int> spec_k = {2, 4, 8};
  std::string edit_from, edit_to;  // --edit-from / --edit-to: the lookup workload
};

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

struct Stats {
  double median = 0, min = 0, max = 0, stddev = 0;
};
Stats Summarise(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.min = v.front();
  s.max = v.back();
  double mean = 0;
  for (double x : v) mean += x / static_cast<double>(n);
  for (double x : v) s.stddev += (x - mean) * (x - mean) / static_cast<double>(n);
  s.stddev = std::sqrt(s.stddev);
  return s;
}

// User + system CPU seconds of the whole process (every thread) so far. On a loaded machine the
// wall time of a test depends on what else runs; its CPU time much less.
double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

uint64_t PeakRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

// Random token ids, as llama-bench uses (the speed of a dense forward pass does not depend on
// which tokens are fed).
std::vector<int32_t> RandomTokens(int n, int n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> pick(0, n_vocab - 1);
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (auto& t : tokens) t = pick(rng);
  return tokens;
}

// "a.gguf:1, b.gguf:0.5 + control vector c.gguf:1", or "" without adapters.
std::string AdaptersText(const engine::AdapterRequest& r) {
  std::string out;
  for (const auto& s : r.loras) {
    out += (out.empty() ? "" : ", ") + s.path + ":" + std::to_string(s.scale);
  }
  for (const auto& s : r.cvecs) {
    out += (out.empty() ? "" : ", ") + std::string("control vector ") + s.path + ":" +
           std::to_string(s.scale);
  }
  return out;
}

// `--audio FILE --mmproj PROJ`: decode the clip once, then encode it (mel features and the
// conformer, every 30 s piece) `reps` times; reports seconds of encoding per second of audio.
void RunAudioBench(const BenchArgs& args) {
  if (args.mmproj.empty()) ThrowUsage("--audio needs --mmproj (the projector with the encoder)");
  if (args.reps < 1) ThrowUsage("repetitions must be ≥ 1", "see 'hearth bench --help'");
  const int threads = args.threads > 0 ? args.threads : engine::DefaultThreads();
  const auto load_start = Clock::now();
  const std::unique_ptr<audio::Encoder> enc = audio::Encoder::Open(args.mmproj);
  const double load_s = Seconds(load_start);
  const std::vector<float> pcm = audio::DecodeFile(args.audio);
  const double audio_s = static_cast<double>(pcm.size()) / audio::kSampleRate;
  tensor::ThreadPool pool(threads);
  std::vector<double> per_second;
  int rows = 0;
  for (int r = 0; r < args.reps; ++r) {
    const auto start = Clock::now();
    std::vector<int> pieces;
    const std::vector<float> out = enc->EncodeClip(pcm, &pool, &pieces);
    per_second.push_back(Seconds(start) / audio_s);
    rows = static_cast<int>(out.size() / static_cast<size_t>(enc->TextWidth()));
  }
  const Stats s = Summarise(per_second);
  if (args.json) {
    const nlohmann::ordered_json out = {
        {"engine", std::string("hearth ") + HEARTH_VERSION + " (" + HEARTH_GIT_COMMIT + ")"},
        {"mmproj", args.mmproj},
        {"audio_encoder", enc->Describe()},
        {"threads", threads},
        {"audio_s", audio_s},
        {"rows", rows},
        {"encode_s_per_audio_s", s.median},
        {"encode_s_per_audio_s_min", s.min},
        {"encode_s_per_audio_s_max", s.max},
        {"load_s", load_s},
        {"peak_rss_bytes", PeakRssBytes()},
    };
    std::cout << out.dump() << "\n";
    return;
  }
  std::printf("audio encoder: %s (%s), %d threads, %s kernels\n", args.mmproj.c_str(),
              enc->Describe().c_str(), threads, tensor::SimdLevelName(tensor::ActiveSimdLevel()));
  std::printf("clip    %9.2f s -> %d rows\n", audio_s, rows);
  std::printf("encode  %9.4f s per s of audio (min %.4f, max %.4f over %d runs; %.1fx real time)\n",
              s.median, s.min, s.max, args.reps, s.median > 0 ? 1.0 / s.median : 0.0);
}

// `--image FILE --mmproj PROJ`: decode the image once, then per visual token budget encode it
// (preprocessing: size, resize, pad, normalise; the vision tower; pooling and the projection)
// `reps` times, the budgets interleaved within each repetition.
void RunImageBench(const BenchArgs& args) {
  if (args.mmproj.empty()) ThrowUsage("--image needs --mmproj (the projector with the encoder)");
  if (args.reps < 1) ThrowUsage("repetitions must be ≥ 1", "see 'hearth bench --help'");
  std::vector<int> budgets(vision::kTokenBudgets.begin(), vision::kTokenBudgets.end());
  if (args.image_tokens != 0) {
    if (!vision::IsTokenBudget(args.image_tokens)) {
      ThrowUsage("--image-tokens " + std::to_string(args.image_tokens) + " is not a budget",
                 "use 70, 140, 280, 560 or 1120");
    }
    budgets = {args.image_tokens};
  }
  const int threads = args.threads > 0 ? args.threads : engine::DefaultThreads();
  const auto load_start = Clock::now();
  const std::unique_ptr<vision::Encoder> enc = vision::Encoder::Open(args.mmproj);
  const double load_s = Seconds(load_start);
  const vision::Image image = vision::DecodeFile(args.image);
  tensor::ThreadPool pool(threads);
  std::vector<std::vector<double>> times(budgets.size());
  std::vector<int> rows(budgets.size(), 0);
  for (int r = 0; r < args.reps; ++r) {
    for (size_t b = 0; b < budgets.size(); ++b) {
      const auto start = Clock::now();
      const std::vector<float> out = enc->EncodeImage(image, budgets[b], &pool);
      times[b].push_back(Seconds(start));
      rows[b] = static_cast<int>(out.size() / static_cast<size_t>(enc->TextWidth()));
    }
  }
  if (args.json) {
    nlohmann::ordered_json results = nlohmann::ordered_json::array();
    for (size_t b = 0; b < budgets.size(); ++b) {
      const Stats s = Summarise(times[b]);
      const vision::Canvas c = enc->CanvasOf(image, budgets[b]);
      results.push_back({{"image_tokens", budgets[b]},
                         {"canvas", std::to_string(c.width) + "x" + std::to_string(c.height)},
                         {"rows", rows[b]},
                         {"encode_s", s.median},
                         {"encode_s_min", s.min},
                         {"encode_s_max", s.max}});
    }
    const nlohmann::ordered_json out = {
        {"engine", std::string("hearth ") + HEARTH_VERSION + " (" + HEARTH_GIT_COMMIT + ")"},
        {"mmproj", args.mmproj},
        {"vision_encoder", enc->Describe()},
        {"image", args.image},
        {"image_size", std::to_string(image.width) + "x" + std::to_string(image.height)},
        {"threads", threads},
        {"reps", args.reps},
        {"budgets", results},
        {"load_s", load_s},
        {"peak_rss_bytes", PeakRssBytes()},
    };
    std::cout << out.dump() << "\n";
    return;
  }
  std::printf("vision encoder: %s (%s), %d threads, %s kernels\n", args.mmproj.c_str(),
              enc->Describe().c_str(), threads, tensor::SimdLevelName(tensor::ActiveSimdLevel()));
  std::printf("image %s: %dx%d\n", args.image.c_str(), image.width, image.height);
  std::printf("budget  canvas        rows   encode s (median)      min      max\n");
  for (size_t b = 0; b < budgets.size(); ++b) {
    const Stats s = Summarise(times[b]);
    const vision::Canvas c = enc->CanvasOf(image, budgets[b]);
    const std::string canvas = std::to_string(c.width) + "x" + std::to_string(c.height);
    std::printf("%6d  %-12s %5d  %17.4f  %7.4f  %7.4f\n", budgets[b], canvas.c_str(), rows[b],
                s.median, s.min, s.max);
  }
  std::printf("(%d runs each, budgets interleaved)\n", args.reps);
}

void RunBench(const BenchArgs& args) {
  if (args.n_prompt < 0 || args.n_gen < 0 || args.depth < 0 || args.reps < 1) {
    ThrowUsage("token counts must be ≥ 0 and repetitions ≥ 1", "see 'hearth bench --help'");
  }
  const int threads = args.threads > 0 ? args.threads : engine::DefaultThreads();
  const engine::AdapterRequest adapter_request = args.adapters.Request();
  auto load_start = Clock::now();
  // The weights alone (no tokenizer: random token ids are fed), so the load time is the
  // weights' as llama-bench reports it.
  auto model = model::Model::Load(args.model_path);
  model::ContextOptions options;
  // bench has no -c: the context is what the test needs, so too much is said in its own flags.
  if (const int need = args.depth + std::max(args.n_prompt, args.n_gen) + 1;
      need > model->config().n_ctx_train) {
    throw Error(ErrorClass::kResource,
                "--depth + max(-p, -n) + 1 = " + std::to_string(need) +
                    " positions, more than this model's maximum context of " +
                    std::to_string(model->config().n_ctx_train),
                "lower -p, -n or --depth");
  }
  options.n_ctx = std::max(args.depth + std::max(args.n_prompt, args.n_gen) + 1, 16);
  options.n_ctx = std::min(options.n_ctx, model->config().n_ctx_train);
  options.n_threads = threads;
  options.cache_type_k = args.cache_type.k;
  options.cache_type_v = args.cache_type.v;
  // The depth is filled in batches too (as llama-bench does), even when -p 0 skips the pp test.
  options.n_ubatch = std::max(1, std::min(std::max(args.n_prompt, args.depth), 512));
  options.adapters = model::AdapterSet::Load(*model, adapter_request.loras, adapter_request.cvecs);
  const std::string adapters_text = AdaptersText(adapter_request);
  model::Context ctx(*model, options);
  const double load_s = Seconds(load_start);
  const int n_vocab = model->config().n_vocab;

  // One warm-up pass pages the weights in, as llama-bench's warm-up run does.
  {
    std::vector<int32_t> warm = RandomTokens(std::min(args.n_prompt, 8) + 1, n_vocab, 7);
    ctx.Decode(warm, nullptr, false);
    ctx.Reset();
  }

  // --vs-base: every repetition runs the tests once with the adapters and once without, the
  // order alternating, so that both see the same machine (other load, clocks, page cache) and
  // their ratio is the adapters' cost.
  const std::shared_ptr<const model::AdapterSet> adapters = options.adapters;
  if (args.vs_base && !adapters) {
    ThrowUsage("--vs-base compares adapters with the base model", "add --lora FILE");
  }
  std::vector<double> pp_rates, tg_rates, ttft, base_pp, base_tg, tg_cpu, base_tg_cpu;
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  for (int pass = 0; pass < args.reps * (args.vs_base ? 2 : 1); ++pass) {
    const int rep = args.vs_base ? pass / 2 : pass;
    const bool base = args.vs_base && (pass % 2 == rep % 2);
    ctx.SetAdapters(base ? nullptr : adapters);
    auto& pp_out = base ? base_pp : pp_rates;
    auto& tg_out = base ? base_tg : tg_rates;
    auto& tg_cpu_out = base ? base_tg_cpu : tg_cpu;
    if (args.n_prompt > 0) {
      ctx.Reset();
      auto prompt = RandomTokens(args.n_prompt, n_vocab, 100 + static_cast<uint32_t>(rep));
      auto start = Clock::now();
      ctx.Decode(prompt, logits.data(), false);
      double pp = Seconds(start);
      std::vector<int32_t> next = {
          static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())};
      ctx.Decode(next, logits.data(), false);
      if (!base) ttft.push_back(Seconds(start));
      pp_out.push_back(args.n_prompt / pp);
    }
    if (args.n_gen > 0) {
      ctx.Reset();
      if (args.depth > 0) {
        ctx.Decode(RandomTokens(args.depth, n_vocab, 200 + static_cast<uint32_t>(rep)), nullptr,
                   false);
      }
      auto gen = RandomTokens(args.n_gen, n_vocab, 300 + static_cast<uint32_t>(rep));
      auto start = Clock::now();
      const double cpu_start = ProcessCpuSeconds();
      for (int i = 0; i < args.n_gen; ++i)
        ctx.Decode({&gen[static_cast<size_t>(i)], 1}, logits.data(), false);
      tg_out.push_back(args.n_gen / Seconds(start));
      tg_cpu_out.push_back(args.n_gen / (ProcessCpuSeconds() - cpu_start));
    }
  }
  const Stats pp = Summarise(pp_rates), tg = Summarise(tg_rates), first = Summarise(ttft);
  const Stats bpp = Summarise(base_pp), btg = Summarise(base_tg);
  // Time per token with adapters over time per token without, per repetition (the pairs ran
  // back to back), minus 1: the median of those, in percent.
  auto overhead = [](const std::vector<double>& with, const std::vector<double>& without) {
    std::vector<double> r;
    for (size_t i = 0; i < with.size() && i < without.size(); ++i) {
      r.push_back(100.0 * (without[i] / with[i] - 1.0));
    }
    return Summarise(r);
  };
  const Stats pp_over = overhead(pp_rates, base_pp), tg_over = overhead(tg_rates, base_tg);
  // The same with CPU seconds (all threads) per token instead of wall seconds.
  const Stats tg_cpu_over = overhead(tg_cpu, base_tg_cpu);
  const uint64_t rss = PeakRssBytes();

  if (args.json) {
    nlohmann::json out = {
        {"model", args.model_path},
        {"variant", model->config().VariantName()},
        {"engine", std::string("hearth ") + HEARTH_VERSION + " (" + HEARTH_GIT_COMMIT + ")"},
        {"simd", tensor::SimdLevelName(tensor::ActiveSimdLevel())},
        {"threads", threads},
        {"n_prompt", args.n_prompt},
        {"n_gen", args.n_gen},
        {"depth", args.depth},
        {"reps", args.reps},
        {"pp_tokens_per_s", pp.median},
        {"pp_tokens_per_s_min", pp.min},
        {"pp_tokens_per_s_max", pp.max},
        {"pp_tokens_per_s_stddev", pp.stddev},
        {"tg_tokens_per_s", tg.median},
        {"tg_tokens_per_s_min", tg.min},
        {"tg_tokens_per_s_max", tg.max},
        {"tg_tokens_per_s_stddev", tg.stddev},
        {"ttft_s", first.median},
        {"load_s", load_s},
        {"peak_rss_bytes", rss},
        {"weight_bytes", model->weight_bytes()},
        {"kv_bytes", ctx.kv_bytes()},
        {"cache_type", args.cache_type.Describe()},
        {"adapters", adapters_text},
    };
    if (args.vs_base) {
      out["base_pp_tokens_per_s"] = bpp.median;
      out["base_tg_tokens_per_s"] = btg.median;
      out["pp_overhead_pct"] = pp_over.median;
      out["tg_overhead_pct"] = tg_over.median;
      out["tg_overhead_pct_min"] = tg_over.min;
      out["tg_overhead_pct_max"] = tg_over.max;
      out["tg_cpu_overhead_pct"] = tg_cpu_over.median;
    }
    std::cout << out.dump() << "\n";
    return;
  }
  std::printf("model:   %s (%s), %d threads, %s kernels\n", args.model_path.c_str(),
              model->config().VariantName().c_str(), threads,
              tensor::SimdLevelName(tensor::ActiveSimdLevel()));
  if (!adapters_text.empty()) std::printf("adapters: %s\n", adapters_text.c_str());
  if (args.n_prompt > 0) {
    std::printf("pp%-5d %9.2f tok/s  (min %.2f, max %.2f, ±%.2f over %d runs)\n", args.n_prompt,
                pp.median, pp.min, pp.max, pp.stddev, args.reps);
    std::printf("ttft    %9.3f s\n", first.median);
  }
  if (args.n_gen > 0) {
    std::printf("tg%-5d %9.2f tok/s  (min %.2f, max %.2f, ±%.2f over %d runs)%s\n", args.n_gen,
                tg.median, tg.min, tg.max, tg.stddev, args.reps,
                args.depth > 0 ? (" at depth " + std::to_string(args.depth)).c_str() : "");
  }
  if (args.vs_base) {
    if (args.n_prompt > 0) {
      std::printf("base pp%-5d %5.2f tok/s: adapters cost %+.1f%% time per token (median)\n",
                  args.n_prompt, bpp.median, pp_over.median);
    }
    if (args.n_gen > 0) {
      std::printf(
          "base tg%-5d %5.2f tok/s: adapters cost %+.1f%% time per token (median; min %+.1f, "
          "max %+.1f over %d pairs)\n",
          args.n_gen, btg.median, tg_over.median, tg_over.min, tg_over.max, args.reps);
      std::printf(
          "             in CPU time (all threads) per token: %+.1f%% (median; min %+.1f, "
          "max %+.1f)\n",
          tg_cpu_over.median, tg_cpu_over.min, tg_cpu_over.max);
    }
  }
  std::printf(
      "load    %9.3f s\npeak RSS %8.1f MiB (weights %.1f MiB mapped, KV cache %.1f MiB %s)\n",
      load_s, rss / 1048576.0, model->weight_bytes() / 1048576.0, ctx.kv_bytes() / 1048576.0,
      args.cache_type.Describe().c_str());
}

// ---- Speculative decoding (`--spec verify|self|lookup`) ----------------------------------------
//
// Random-weight models accept almost nothing of a real drafter, so the two sides are measured
// apart, each against plain decoding in the same run:
//   verify  the cost: a target pass over 1 + k tokens (all rows' logits and hidden rows, then the
//           cache cut back, as Session verifies) against one decode step, at --depth;
//   self    a known acceptance: the model drafts for itself (greedy: every draft is right), real
//           generation through engine::Session, -n tokens after a -p token random prompt;
//   lookup  prompt lookup on an edit: the prompt is --edit-from, the output --edit-to (the file
//           with a few changes). A random model would not write it, so its picks are replaced by
//           that text (what a real model that makes the edit would pick): the drafts, the
//           acceptance and every target pass are real, only the choice of token is given.

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ThrowIo("cannot read '" + path + "'", "check the path");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double LoadAverage() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? load[0] : -1.0;
}

void RunSpecVerify(const BenchArgs& args, int threads) {
  auto model = model::Model::Load(args.model_path);
  const int kmax = *std::max_element(args.spec_k.begin(), args.spec_k.end());
  model::ContextOptions o;
  o.n_ctx = std::min(args.depth + kmax + 2, model->config().n_ctx_train);
  o.n_threads = threads;
  o.cache_type_k = args.cache_type.k;
  o.cache_type_v = args.cache_type.v;
  o.n_ubatch = std::max(kmax + 1, std::min(std::max(args.depth, 1), 512));
  model::Context ctx(*model, o);
  const int V = model->config().n_vocab;
  std::vector<float> logits(static_cast<size_t>(kmax + 1) * V);
  std::vector<float> hidden(static_cast<size_t>(kmax + 1) * model->config().n_embd);
  const int base = args.depth;
  if (base > 0) ctx.Decode(RandomTokens(base, V, 11), nullptr, false);
  std::vector<int32_t> toks = RandomTokens(kmax + 1, V, 12);
  // One pass of n tokens at position `base`, then the cache cut back to `base`; seconds.
  auto pass = [&](int n) {
    const auto start = Clock::now();
    ctx.Decode(std::span<const int32_t>(toks).first(static_cast<size_t>(n)), logits.data(), n > 1,
               hidden.data());
    const double t = Seconds(start);
    if (!ctx.Truncate(base))
      throw Error(ErrorClass::kInternal, "cannot cut the cache back in the benchmark");
    return t;
  };
  pass(1);  // pages the weights in
  const int runs = std::max(3, args.reps);
  auto median_of = [&](int n) {
    std::vector<double> v;
    for (int r = 0; r < runs; ++r) v.push_back(pass(n));
    return Summarise(v);
  };
  std::printf("model:   %s (%s), %d threads, depth %d, load average %.2f\n",
              args.model_path.c_str(), model->config().VariantName().c_str(), threads, args.depth,
              LoadAverage());
  // Interleaved with the k passes so that a change of machine load hits both alike.
  std::printf("%-10s %10s %10s %14s %16s\n", "pass", "ms", "x step", "tok/s if all", "break-even");
  nlohmann::json rows = nlohmann::json::array();
  for (int k : args.spec_k) {
    const Stats one = median_of(1);
    const Stats many = median_of(k + 1);
    const double ratio = many.median / one.median;
    std::printf("%-10s %10.2f %10s %14.1f %16s\n", "1 (step)", one.median * 1e3, "1.00",
                1.0 / one.median, "-");
    char label[32];
    std::snprintf(label, sizeof label, "1+%d", k);
    std::printf("%-10s %10.2f %10.2f %14.1f %13.2f tok\n", label, many.median * 1e3, ratio,
                (k + 1) / many.median, ratio);
    rows.push_back({{"k", k},
                    {"step_ms", one.median * 1e3},
                    {"verify_ms", many.median * 1e3},
                    {"ratio", ratio}});
  }
  std::printf(
      "(break-even: tokens a pass must emit, accepted drafts + 1, to beat plain decoding "
      "before drafting costs; %d runs each, medians; load average %.2f at the end)\n",
      runs, LoadAverage());
  if (args.json) std::cout << rows.dump() << "\n";
}

// Plain decoding against speculative decoding with the model drafting for itself.
void RunSpecSelf(const BenchArgs& args, int threads) {
  auto lm = engine::LoadedModel::Open(args.model_path);
  const int kmax = *std::max_element(args.spec_k.begin(), args.spec_k.end());
  model::ContextOptions o = lm->Context(
      {.n_ctx = std::min(args.n_prompt + args.n_gen + kmax + 2, lm->config().n_ctx_train),
       .n_threads = threads,
       .cache_type_k = args.cache_type.k,
       .cache_type_v = args.cache_type.v});
  o.n_ubatch = std::max(o.n_ubatch, kmax + 1);
  const std::vector<int32_t> prompt =
      RandomTokens(std::max(args.n_prompt, 1), lm->config().n_vocab, 21);
  engine::GenerateOptions g;
  g.max_tokens = args.n_gen;
  g.sampling.temperature = 0;
  g.stop_at_eog = false;
  std::printf(
      "model:   %s (%s), %d threads, prompt %d, %d new tokens, greedy, load average "
      "%.2f\n",
      args.model_path.c_str(), lm->config().VariantName().c_str(), threads,
      static_cast<int>(prompt.size()), args.n_gen, LoadAverage());
  std::printf("%-12s %10s %12s %10s %12s %14s\n", "source", "accepted", "tok/pass", "tok/s",
              "x plain", "tok/s no draft");
  engine::Session plain(lm->model(), lm->tokenizer(), o);
  for (int k : args.spec_k) {
    engine::GenerateOptions off = g;
    off.speculate = false;
    const engine::GenerateResult p = plain.Generate(prompt, off);
    engine::Session s(lm->model(), lm->tokenizer(), o);
    engine::SpeculationOptions spec;
    spec.draft_model = &lm->model();
    spec.max_draft = k;
    s.SetSpeculation(spec);
    const engine::GenerateResult r = s.Generate(prompt, g);
    if (r.tokens != p.tokens)
      throw Error(ErrorClass::kInternal, "speculative output differs from plain decoding");
    const engine::GenerateStats& st = r.stats;
    const double tps = st.generate_tokens_per_second();
    std::printf("%-12s %9.1f%% %12.2f %10.2f %11.2fx %14.2f\n",
                ("self k=" + std::to_string(k)).c_str(),
                100.0 * st.accepted_tokens / std::max(1, st.drafted_tokens),
                static_cast<double>(st.generated_tokens) / std::max(1, st.target_passes), tps,
                tps / p.stats.generate_tokens_per_second(),
                st.generated_tokens / std::max(1e-9, st.generate_seconds - st.draft_seconds));
    std::printf("%-12s %10s %12s %10.2f %12s %14s\n", "  plain", "-", "1.00",
                p.stats.generate_tokens_per_second(), "1.00x", "-");
  }
  std::printf(
      "(tok/s no draft: the target's share alone, i.e. with a drafter that costs nothing; "
      "load average %.2f at the end)\n",
      LoadAverage());
}

// Prompt lookup replayed on an edit (see above): plain decoding of the same output, one pass a
// token, against the passes speculative decoding makes.
void RunSpecLookup(const BenchArgs& args, int threads) {
  if (args.edit_from.empty() || args.edit_to.empty()) {
    ThrowUsage("--spec lookup needs --edit-from FILE and --edit-to FILE",
               "the file before and after the edit");
  }
  auto lm = engine::LoadedModel::Open(args.model_path);
  const text::Tokenizer& tk = lm->tokenizer();
  const std::string from = ReadWholeFile(args.edit_from);
  std::vector<int32_t> prompt =
      tk.Encode("Apply the change and write the whole file again.\n\n" + from + "\n", true, false);
  std::vector<int32_t> out = tk.Encode(ReadWholeFile(args.edit_to), false, false);
  if (args.n_gen > 0 && static_cast<int>(out.size()) > args.n_gen) {
    out.resize(static_cast<size_t>(args.n_gen));
  }
  const int kmax = *std::max_element(args.spec_k.begin(), args.spec_k.end());
  model::ContextOptions o =
      lm->Context({.n_ctx = std::min(static_cast<int>(prompt.size() + out.size()) + kmax + 2,
                                     lm->config().n_ctx_train),
                   .n_threads = threads,
                   .cache_type_k = args.cache_type.k,
                   .cache_type_v = args.cache_type.v});
  o.n_ubatch = std::max(kmax + 1, 512);
  model::Context ctx(lm->model(), o);
  const int V = lm->config().n_vocab;
  std::vector<float> logits(static_cast<size_t>(kmax + 1) * V);
  std::vector<float> hidden(static_cast<size_t>(kmax + 1) * lm->config().n_embd);
  const std::span<const int32_t> head = std::span<const int32_t>(prompt).first(prompt.size() - 1);
  std::printf(
      "model:   %s (%s), %d threads, edit %s -> %s: prompt %zu tokens, output %zu tokens, "
      "load average %.2f\n",
      args.model_path.c_str(), lm->config().VariantName().c_str(), threads, args.edit_from.c_str(),
      args.edit_to.c_str(), prompt.size(), out.size(), LoadAverage());
  std::printf("%-14s %10s %12s %10s %10s\n", "source", "accepted", "tok/pass", "tok/s", "x plain");
  // Plain: one pass per output token after the prompt.
  ctx.Reset();
  ctx.Decode(head, nullptr, false);
  auto start = Clock::now();
  int32_t pending = prompt.back();
  for (int32_t t : out) {
    ctx.Decode(std::span<const int32_t>(&pending, 1), logits.data(), false);
    pending = t;
  }
  const double plain_s = Seconds(start);
  const double n = static_cast<double>(out.size());
  std::printf("%-14s %10s %12s %10.2f %10s\n", "plain", "-", "1.00", n / plain_s, "1.00x");
  for (int k : args.spec_k) {
    // Speculative: drafts from lookup, kept while they equal the output, one pass each.
    ctx.Reset();
    ctx.Decode(head, nullptr, false);
    start = Clock::now();
    auto lookup = engine::MakeLookupSource(3);
    std::vector<int32_t> cached(head.begin(), head.end()), drafts, batch;
    pending = prompt.back();
    size_t done = 0;
    int passes = 0, drafted = 0, accepted = 0;
    while (done < out.size()) {
      const int left = static_cast<int>(out.size() - done);
      lookup->Draft({cached, pending, nullptr}, std::min(k, left - 1), drafts);
      int a = 0;
      while (a < static_cast<int>(drafts.size()) &&
             drafts[static_cast<size_t>(a)] == out[done + static_cast<size_t>(a)]) {
        ++a;
      }
      batch.assign(1, pending);
      batch.insert(batch.end(), drafts.begin(), drafts.end());
      const int base = static_cast<int>(cached.size());
      ctx.Decode(batch, logits.data(), true, hidden.data());
      if (!ctx.Truncate(base + 1 + a))
        throw Error(ErrorClass::kInternal, "cannot cut the cache back in the benchmark");
      cached.push_back(pending);
      cached.insert(cached.end(), out.begin() + static_cast<std::ptrdiff_t>(done),
                    out.begin() + static_cast<std::ptrdiff_t>(done) + a);
      pending = out[done + static_cast<size_t>(a)];
      done += static_cast<size_t>(a) + 1;
      ++passes;
      drafted += static_cast<int>(drafts.size());
      accepted += a;
    }
    const double spec_s = Seconds(start);
    std::printf("%-14s %9.1f%% %12.2f %10.2f %9.2fx\n", ("lookup k=" + std::to_string(k)).c_str(),
                100.0 * accepted / std::max(1, drafted), n / passes, n / spec_s, plain_s / spec_s);
  }
  std::printf("(load average %.2f at the end)\n", LoadAverage());
}

void RunSpecBench(const BenchArgs& args) {
  if (args.spec_k.empty() || *std::min_element(args.spec_k.begin(), args.spec_k.end()) < 1 ||
      *std::max_element(args.spec_k.begin(), args.spec_k.end()) > 64) {
    ThrowUsage("--spec-k wants draft lengths from 1 to 64", "e.g. --spec-k 2,4,8");
  }
  const int threads = args.threads > 0 ? args.threads : engine::DefaultThreads();
  if (args.spec == "verify") {
    RunSpecVerify(args, threads);
  } else if (args.spec == "self") {
    RunSpecSelf(args, threads);
  } else if (args.spec == "lookup") {
    RunSpecLookup(args, threads);
  } else {
    ThrowUsage("--spec " + args.spec + " is not a speculative benchmark",
               "use verify, self or lookup");
  }
}

void RegisterBench(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure prompt processing and decode speed, load time and peak memory");
  AddModelFlag(cmd, args->model_path, "A Gemma 4 model");
  cmd->add_option("-p,--n-prompt", args->n_prompt, "Prompt tokens per pp run (0: skip)")
      ->capture_default_str();
  cmd->add_option("-n,--n-gen", args->n_gen, "Generated tokens per tg run (0: skip)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", args->threads,
                  "Threads (default: one per physical core, at most " +
                      std::to_string(engine::kMaxDefaultThreads) + ")");
  cmd->add_option("--depth", args->depth, "Tokens already in context before the tg run")
      ->capture_default_str();
  cmd->add_option("-r,--reps", args->reps, "Repetitions (median and spread are reported)")
      ->capture_default_str();
  cmd->add_flag("--json", args->json,
                "Print one JSON object (pp_tokens_per_s, tg_tokens_per_s, peak_rss_bytes, "
                "load_s, …)");
  AddAdapterFlags(cmd, &args->adapters);
  AddCacheTypeFlags(cmd, &args->cache_type);
  cmd->add_flag("--vs-base", args->vs_base,
                "With --lora / --control-vector: also run each test without them, interleaved, "
                "and report what the adapters cost in time per token");
  AddLlamaCppFlags(cmd, Conversation::kIsNot);
  cmd->add_option("--audio", args->audio,
                  "Benchmark the audio encoder of --mmproj on this clip instead (encode time per "
                  "second of audio)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--image", args->image,
                  "Benchmark the vision encoder of --mmproj on this image instead (encode time "
                  "per visual token budget: preprocessing, vision tower and projection)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--image-tokens", args->image_tokens,
                  "With --image: only this budget (70, 140, 280, 560 or 1120; default: all)");
  cmd->add_option("--mmproj", args->mmproj, "The projector .gguf for --audio / --image");
  cmd->add_option("--spec", args->spec,
                  "Speculative decoding against plain decoding in the same run: verify (a target "
                  "pass over 1+k tokens vs one decode step, at --depth), self (the model drafts "
                  "for itself: -p prompt tokens, -n new tokens) or lookup (prompt lookup on "
                  "--edit-from -> --edit-to, at most -n output tokens)");
  cmd->add_option("--spec-k", args->spec_k, "Draft lengths for --spec (default 2,4,8)")
      ->delimiter(',');
  cmd->add_option("--edit-from", args->edit_from, "--spec lookup: the file before the edit");
  cmd->add_option("--edit-to", args->edit_to, "--spec lookup: the file after the edit");
  cmd->callback([args] {
    if (!args->audio.empty() && !args->image.empty()) {
      ThrowUsage("--audio and --image are separate benchmarks", "give one of them");
    }
    if (!args->audio.empty()) {
      RunAudioBench(*args);
      return;
    }
    if (!args->image.empty()) {
      RunImageBench(*args);
      return;
    }
    args->model_path = ModelPath(args->model_path, &args->adapters);
    if (!args->spec.empty()) {
      RunSpecBench(*args);
      return;
    }
    RunBench(*args);
  });
}

}  // namespace

HEARTH_COMMAND(bench, RegisterBench);

}  // namespace hearth::cli
