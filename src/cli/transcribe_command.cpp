// `hearth transcribe FILE [-m MODEL] [--mmproj PROJ] [--translate-to LANG]
//  [--format text|srt|json]`: speech to text with Gemma 4 E2B/E4B, locally. The clip is decoded
// (WAV, FLAC, Ogg/Opus, MP3; any rate and channel count), cut into segments of at most 30 s at
// silence where there is some (audio::Split::kAtSilence, so a word is not cut in two), and each
// segment is one chat turn [audio, instruction] of its own, greedy; its text is the segment's
// text, with the segment's start and end times.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "audio/audio.h"
#include "base/display.h"
#include "base/error.h"
#include "cli/commands.h"
#include "cli/generation_flags.h"
#include "cli/input.h"
#include "cli/media_flags.h"
#include "engine/chat.h"
#include "engine/loaded_model.h"
#include "engine/media.h"
#include "engine/session.h"

namespace hearth::cli {
namespace {

struct TranscribeOptions {
  std::shared_ptr<GenerationFlags> gen = std::make_shared<GenerationFlags>();
  MediaFlags media;
  std::string file;
  std::string translate_to;
  std::string format = "text";
  int n_predict = 448;  // tokens per segment at most (30 s of fast speech is ~ 120 words)
};

struct Segment {
  double start = 0, end = 0;
  std::string text;
};

// "00:01:02,345" (SRT's comma before the milliseconds).
std::string SrtTime(double seconds) {
  const long long ms = static_cast<long long>(seconds * 1000.0 + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld,%03lld", ms / 3600000, ms / 60000 % 60,
                ms / 1000 % 60, ms % 1000);
  return buf;
}

std::string Instruction(const std::string& translate_to) {
  if (translate_to.empty()) return "Transcribe this audio.";
  return "Translate the speech in this audio into " + translate_to +
         ". Write only the translation.";
}

void RunTranscribe(TranscribeOptions& opt) {
  GenerationFlags& gen = *opt.gen;
  if (opt.format != "text" && opt.format != "srt" && opt.format != "json") {
    ThrowUsage("--format must be text, srt or json");
  }
  if (opt.n_predict < 1) ThrowUsage("-n must be at least 1");
  const std::string bytes = ReadInput(opt.file);
  const std::span<const uint8_t> data(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  const std::vector<float> samples = audio::DecodeBytes(data, opt.file);

  const auto lm = engine::LoadedModel::Open(gen.model_path, gen.adapters.Request());
  const model::ContextOptions copt = lm->Context(gen.Context());
  const auto projector =
      OpenProjector(opt.media.mmproj, gen.model_path, lm->config(), copt.n_threads);
  if (!projector->has_audio()) {
    ThrowInvalidInput("'" + projector->path() + "' has no audio encoder",
                      "transcription needs Gemma 4 E2B or E4B and its mmproj file; 26B-A4B and "
                      "31B take no audio");
  }
  engine::Session session(lm->model(), lm->tokenizer(), copt);
  engine::GenerateOptions gopt;
  gopt.max_tokens = opt.n_predict;
  gopt.sampling = gen.Sampling();
  const uint64_t file_hash = engine::HashBytes(data);

  std::vector<Segment> segments;
  for (const audio::Piece& p : audio::SplitClip(samples, audio::Split::kAtSilence)) {
    const std::span<const float> piece(samples.data() + p.begin,
                                       static_cast<size_t>(p.end - p.begin));
    const uint64_t key = engine::HashBytes(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&p), sizeof p), file_hash);
    engine::TurnRequest request;
    request.messages = nlohmann::ordered_json::array(
        {{{"role", "user"},
          {"content", nlohmann::ordered_json::array(
                          {{{"type", "audio"}},
                           {{"type", "text"}, {"text", Instruction(opt.translate_to)}}})}}});
    request.media = {projector->EncodeAudioSamples(piece, key)};
    const engine::PreparedTurn turn = engine::PrepareTurn(request, &lm->tokenizer());
    const engine::ChatReply reply = engine::RunTurn(session, turn, gopt, nullptr);
    std::string text = reply.parsed.content;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    while (!text.empty() && (text.front() == '\n' || text.front() == ' ')) text.erase(0, 1);
    segments.push_back({static_cast<double>(p.begin) / audio::kSampleRate,
                        static_cast<double>(p.end) / audio::kSampleRate, std::move(text)});
  }

  if (opt.format == "json") {
    nlohmann::ordered_json out;
    std::string all;
    nlohmann::ordered_json segs = nlohmann::ordered_json::array();
    for (size_t i = 0; i < segments.size(); ++i) {
      const Segment& s = segments[i];
      if (!all.empty() && !s.text.empty()) all += " ";
      all += s.text;
      segs.push_back({{"id", i}, {"start", s.start}, {"end", s.end}, {"text", s.text}});
    }
    out["text"] = all;
    out["duration"] = static_cast<double>(samples.size()) / audio::kSampleRate;
    if (!opt.translate_to.empty()) out["translated_to"] = opt.translate_to;
    out["segments"] = std::move(segs);
    // dump() escapes control characters; invalid UTF-8 is replaced, not thrown on.
    std::cout << out.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  } else if (opt.format == "srt") {
    for (size_t i = 0; i < segments.size(); ++i) {
      const Segment& s = segments[i];
      std::cout << i + 1 << "\n"
                << SrtTime(s.start) << " --> " << SrtTime(s.end) << "\n"
                << DisplaySafe(s.text, kOneLine) << "\n\n";
    }
  } else {
    for (const Segment& s : segments) std::cout << DisplaySafe(s.text, kOneLine) << "\n";
  }
  std::cout << std::flush;
}

}  // namespace

void RegisterTranscribeCommand(CLI::App& app);
HEARTH_COMMAND(transcribe, RegisterTranscribeCommand);

void RegisterTranscribeCommand(CLI::App& app) {
  auto opt = std::make_shared<TranscribeOptions>();
  opt->gen->sampling.temperature = 0;  // transcripts are greedy unless --temp says otherwise
  CLI::App* cmd = app.add_subcommand(
      "transcribe",
      "Speech to text with Gemma 4 E2B/E4B (locally): the clip is cut into segments of at most\n"
      "30 s at silence, each transcribed (or translated) on its own; text, SRT or JSON with\n"
      "each segment's start and end time");
  cmd->add_option("file", opt->file, "The audio file (WAV, FLAC, Ogg/Opus, MP3; - for stdin)")
      ->required();
  AddGenerationFlags(cmd, opt->gen);
  AddMmprojFlag(cmd, &opt->media);
  cmd->add_option("--translate-to", opt->translate_to,
                  "Translate the speech into this language (e.g. English, French) instead");
  cmd->add_option("--format", opt->format, "text (one line per segment), srt or json")
      ->check(CLI::IsMember({"text", "srt", "json"}));
  cmd->add_option("-n,--n-predict", opt->n_predict, "New tokens per segment at most (448)");
  cmd->callback([opt] {
    opt->gen->model_path = ModelPath(opt->gen->model_path);
    RunTranscribe(*opt);
  });
}

}  // namespace hearth::cli
