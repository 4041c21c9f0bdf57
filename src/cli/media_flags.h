// The media flags of the commands that run a model (`--mmproj`, `--image`, `--image-tokens`,
// `--audio`, `--video`, `--video-fps`, `--video-tokens`), and opening the projector: the one given,
// or the `mmproj*.gguf` next to the model. Header-only because src/cli builds only main.cpp,
// commands.cpp and *_command.cpp.
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
  std::vector<std::string> video;  // --video FILE, repeatable, in order
  double video_fps = 0;            // --video-fps R (0: 1 frame per second)
  int video_tokens = 0;            // --video-tokens N per frame (0: 70)

  bool any() const { return !audio.empty() || !image.empty() || !video.empty(); }
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

// --video, --video-fps, --video-tokens.
inline void AddVideoFlags(CLI::App* cmd, MediaFlags* flags) {
  cmd->add_option("--video", flags->video,
                  "A video file (MP4, WebM, MKV, MOV, …) to put before the prompt; repeatable. "
                  "The first 60 s are read, frames sampled at --video-fps. Needs the projector")
      ->allow_extra_args(false);
  cmd->add_option("--video-fps", flags->video_fps,
                  "Video frames sampled per second, more than 0 and at most 4 (default 1)")
      ->check(CLI::Range(0.01, 4.0));
  cmd->add_option("--video-tokens", flags->video_tokens,
                  "Visual token budget per video frame: 70, 140, 280, 560 or 1120 (default 70)")
      ->check(CLI::IsMember({70, 140, 280, 560, 1120}));
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
  AddVideoFlags(cmd, flags);
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

// Encodes one file for the prompt: an image, an audio clip or a video (`flags` gives the
// budgets and the frame rate). A video longer than 60 s is cut there, with a note on stderr.
inline engine::MediaPtr EncodeMediaFile(engine::Projector& projector, engine::MediaKind kind,
                                        const std::string& path, const MediaFlags& flags) {
  const std::string bytes = ReadInput(path);
  const std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  switch (kind) {
    case engine::MediaKind::kImage:
      return projector.EncodeImage(span, path, flags.image_tokens);
    case engine::MediaKind::kVideo: {
      engine::MediaPtr item =
          projector.EncodeVideo(span, path, flags.video_fps, flags.video_tokens);
      if (item->clipped) {
        std::fprintf(stderr,
                     "hearth: note: '%s' is longer than 60 s; only the first 60 s are read\n",
                     path.c_str());
      }
      return item;
    }
    case engine::MediaKind::kAudio:
      break;
  }
  return projector.EncodeAudio(span, path);
}

inline engine::MediaPtr EncodeMediaFile(engine::Projector& projector, engine::MediaKind kind,
                                        const std::string& path, int image_tokens) {
  MediaFlags flags;
  flags.image_tokens = image_tokens;
  return EncodeMediaFile(projector, kind, path, flags);
}

// The media items of `flags` for a prompt: in the order of the placeholders (<|image|>,
// <|audio|>, <|video|>) when the prompt has any, else images, then audio, then videos, with their
// placeholders put in front of `*prompt`.
inline std::vector<engine::MediaPtr> EncodeMediaFlags(engine::Projector& projector,
                                                      const MediaFlags& flags,
                                                      std::string* prompt) {
  using engine::MediaKind;
  constexpr MediaKind kKinds[] = {MediaKind::kImage, MediaKind::kAudio, MediaKind::kVideo};
  auto files_of = [&](MediaKind kind) -> const std::vector<std::string>& {
    return kind == MediaKind::kImage   ? flags.image
           : kind == MediaKind::kAudio ? flags.audio
                                       : flags.video;
  };
  std::vector<MediaKind> order;
  for (size_t at = 0;;) {
    size_t first = std::string::npos;
    MediaKind found = MediaKind::kImage;
    for (MediaKind k : kKinds) {
      const size_t p = prompt->find(engine::MediaPlaceholder(k), at);
      if (p < first) {
        first = p;
        found = k;
      }
    }
    if (first == std::string::npos) break;
    order.push_back(found);
    at = first + 1;
  }
  if (order.empty()) {
    std::string marks;
    for (MediaKind k : kKinds) {
      for (size_t i = 0; i < files_of(k).size(); ++i) {
        marks += engine::MediaPlaceholder(k);
        order.push_back(k);
      }
    }
    *prompt = marks + *prompt;
  }
  std::vector<engine::MediaPtr> items;
  size_t next[3] = {0, 0, 0};
  for (MediaKind kind : order) {
    const std::vector<std::string>& files = files_of(kind);
    size_t& n = next[static_cast<int>(kind)];
    if (n >= files.size()) {
      ThrowUsage(std::string("the prompt has more ") + std::string(engine::MediaPlaceholder(kind)) +
                 " placeholders than --" + engine::MediaKindName(kind) + " files");
    }
    items.push_back(EncodeMediaFile(projector, kind, files[n++], flags));
  }
  for (MediaKind k : kKinds) {
    if (next[static_cast<int>(k)] != files_of(k).size()) {
      ThrowUsage(
          "the prompt has fewer media placeholders than --image / --audio / --video files",
          "put one <|image|>, <|audio|> or <|video|> per file in the prompt, or none at all");
    }
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
