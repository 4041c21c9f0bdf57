// The media flags of the commands that run a model (`--mmproj`, `--audio`; images join here),
// and opening the projector: the one given, or the `mmproj*.gguf` next to the model.
// Header-only because src/cli builds only main.cpp, commands.cpp and *_command.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "engine/media.h"
#include "model/config.h"

namespace hearth::cli {

struct MediaFlags {
  std::string mmproj;
  std::vector<std::string> audio;  // --audio FILE, repeatable, in order
};

inline void AddMmprojFlag(CLI::App* cmd, MediaFlags* flags) {
  cmd->add_option("--mmproj", flags->mmproj,
                  "The multimodal projector (mmproj .gguf) for --audio; default: an mmproj*.gguf "
                  "next to the model");
}

inline void AddMediaFlags(CLI::App* cmd, MediaFlags* flags) {
  AddMmprojFlag(cmd, flags);
  cmd->add_option("--audio", flags->audio,
                  "An audio file (WAV, FLAC, Ogg/Opus, MP3) to put before the prompt; repeatable. "
                  "Needs Gemma 4 E2B or E4B and its projector");
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
               "give --mmproj mmproj-….gguf (audio: Gemma 4 E2B or E4B with its mmproj file)");
  }
  return engine::Projector::Open(path, config, threads);
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
