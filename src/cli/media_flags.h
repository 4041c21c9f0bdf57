// The media flags of the commands that run a model (`--mmproj`, `--image`, `--image-tokens`,
// `--audio`),
// and opening the projector: the one given, or the `mmproj*.gguf` next to the model.
// Header-only because src/cli builds only main.cpp, commands.cpp and *_command.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "cli/input.h"
#include "engine/media.h"
#include "model/config.h"

namespace hearth::cli {

struct MediaFlags {
  std::string mmproj;
  std::vector<std::string> audio;  // --audio FILE, repeatable, in order
  std::vector<std::string> image;  // --image FILE, repeatable, in order
  int image_tokens = 0;            // --image-tokens N (0: the default budget)

  bool any() const { return !audio.empty() || !image.empty(); }
};

// --image-tokens, checked against Gemma 4's visual token budgets.
inline void AddImageTokensFlag(CLI::App* cmd, int* tokens) {
  cmd->add_option("--image-tokens", *tokens,
                  "Visual token budget per image: 70, 140, 280, 560 or 1120 (default 1120, as "
                  "llama.cpp; low for captions, high for text and diagrams)")
      ->check(CLI::IsMember({70, 140, 280, 560, 1120}));
}

inline void AddMmprojFlag(CLI::App* cmd, MediaFlags* flags) {
  cmd->add_option("--mmproj", flags->mmproj,
                  "The multimodal projector (mmproj .gguf) for --image / --audio; default: an "
                  "mmproj*.gguf next to the model");
}

inline void AddMediaFlags(CLI::App* cmd, MediaFlags* flags) {
  AddMmprojFlag(cmd, flags);
  cmd->add_option("--image", flags->image,
                  "An image file (PNG, JPEG, WebP, GIF, BMP) to put before the prompt; "
                  "repeatable. Needs the model's projector")
      ->allow_extra_args(false);  // one file per --image: a question after it stays the question
  AddImageTokensFlag(cmd, &flags->image_tokens);
  cmd->add_option("--audio", flags->audio,
                  "An audio file (WAV, FLAC, Ogg/Opus, MP3) to put before the prompt; repeatable. "
                  "Needs Gemma 4 E2B or E4B and its projector")
      ->allow_extra_args(false);
}

// The projector for `model_path`: `flag` when given, else the mmproj*.gguf next to the model.
// Error(kUsage) when there is none, naming the models that take audio.
inline std::unique_ptr<engine::Projector> OpenProjector(const std::string& flag,
                                                        const std::string& model_path,
                                                        const model::ModelConfig& config,
                                                        int threads) {
  std::string path = flag;
  if (path.empty()) path = engine::FindProjector(model_path);
  if (path.empty()) {
    ThrowUsage("media input needs the model's projector file and none was found next to '" +
                   model_path + "'",
               "give --mmproj mmproj-….gguf (images: any Gemma 4 model; audio: E2B or E4B)");
  }
  return engine::Projector::Open(path, config, threads);
}

// Encodes one file for the prompt: an image or an audio clip.
inline engine::MediaPtr EncodeMediaFile(engine::Projector& projector, engine::MediaKind kind,
                                        const std::string& path, int image_tokens) {
  const std::string bytes = ReadInput(path);
  const std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return kind == engine::MediaKind::kImage ? projector.EncodeImage(span, path, image_tokens)
                                           : projector.EncodeAudio(span, path);
}

// The media items of `flags` for a prompt: in the order of the placeholders (<|image|>,
// <|audio|>) when the prompt has any, else images then audio, with their placeholders put in
// front of `*prompt`.
inline std::vector<engine::MediaPtr> EncodeMediaFlags(engine::Projector& projector,
                                                      const MediaFlags& flags,
                                                      std::string* prompt) {
  using engine::MediaKind;
  const std::string_view image_mark = engine::MediaPlaceholder(MediaKind::kImage);
  const std::string_view audio_mark = engine::MediaPlaceholder(MediaKind::kAudio);
  std::vector<MediaKind> order;
  for (size_t at = 0;;) {
    const size_t i = prompt->find(image_mark, at);
    const size_t a = prompt->find(audio_mark, at);
    if (i == std::string::npos && a == std::string::npos) break;
    order.push_back(i < a ? MediaKind::kImage : MediaKind::kAudio);
    at = std::min(i, a) + 1;
  }
  if (order.empty()) {
    std::string marks;
    for (size_t i = 0; i < flags.image.size(); ++i) {
      marks += image_mark;
      order.push_back(MediaKind::kImage);
    }
    for (size_t i = 0; i < flags.audio.size(); ++i) {
      marks += audio_mark;
      order.push_back(MediaKind::kAudio);
    }
    *prompt = marks + *prompt;
  }
  std::vector<engine::MediaPtr> items;
  size_t next_image = 0, next_audio = 0;
  for (MediaKind kind : order) {
    const bool image = kind == MediaKind::kImage;
    const std::vector<std::string>& files = image ? flags.image : flags.audio;
    size_t& next = image ? next_image : next_audio;
    if (next >= files.size()) {
      ThrowUsage(std::string("the prompt has more ") + std::string(engine::MediaPlaceholder(kind)) +
                 " placeholders than --" + engine::MediaKindName(kind) + " files");
    }
    items.push_back(EncodeMediaFile(projector, kind, files[next++], flags.image_tokens));
  }
  if (next_image != flags.image.size() || next_audio != flags.audio.size()) {
    ThrowUsage("the prompt has fewer media placeholders than --image / --audio files",
               "put one <|image|> or <|audio|> per file in the prompt, or none at all");
  }
  return items;
}

// Writes `values` as raw little-endian float32 through a temporary file, so a failure never
// leaves a truncated result behind.
inline void WriteFloats(const std::string& path, const std::vector<float>& values) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) ThrowIo("cannot create '" + tmp + "': " + ErrnoText(errno), "check the --out path");
  const size_t written = std::fwrite(values.data(), sizeof(float), values.size(), f);
  const bool ok = written == values.size() && std::fflush(f) == 0;
  const int err = errno;
  std::fclose(f);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    ThrowIo("cannot write '" + path + "': " + ErrnoText(ok ? errno : err),
            "check free disk space and permissions");
  }
}

}  // namespace hearth::cli
