// `hearth embed-media -m TEXT --mmproj PROJ (--audio FILE | --image FILE [--image-tokens N])
//  --out OUT`: the rows a media item feeds the text model, as raw little-endian float32
// [rows][n_embd] — every chunk of a long clip, in order. With `hearth logits --chat` this is the
// checkable interface of the multimodal path (issue 16 item 8): other tools compare hearth with
// llama.cpp's encoder output through it.
#include <bit>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/input.h"
#include "cli/media_flags.h"
#include "cli/model_flag.h"
#include "engine/loaded_model.h"
#include "engine/media.h"
#include "model/config.h"
#include "model/model.h"

namespace hearth::cli {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the rows file is little-endian float32; add a byte swap for this platform");

struct EmbedMediaOptions {
  std::string model_path;
  MediaFlags media;
  std::string audio;
  std::string image;
  int image_tokens = 0;
  std::string out_path;
  int threads = 0;
};

void RunEmbedMedia(const EmbedMediaOptions& opt) {
  if (opt.audio.empty() == opt.image.empty()) {
    ThrowUsage("give one of --audio FILE or --image FILE");
  }
  if (opt.image_tokens != 0 && opt.image.empty()) {
    ThrowUsage("--image-tokens is for --image");
  }
  // Only the configuration is needed (the projection width must match the text model).
  const auto model = model::Model::Load(opt.model_path);
  const int threads = opt.threads > 0 ? opt.threads : engine::DefaultThreads();
  const auto projector = OpenProjector(opt.media.mmproj, opt.model_path, model->config(), threads);
  const engine::MediaPtr item =
      opt.image.empty()
          ? EncodeMediaFile(*projector, engine::MediaKind::kAudio, opt.audio, 0)
          : EncodeMediaFile(*projector, engine::MediaKind::kImage, opt.image, opt.image_tokens);
  WriteFloats(opt.out_path, item->rows);
  std::fprintf(stderr, "%d rows of %d (%zu chunks)\n", item->n_rows(), item->n_embd,
               item->chunks.size());
}

}  // namespace

void RegisterEmbedMediaCommand(CLI::App& app);
HEARTH_COMMAND(embed_media, RegisterEmbedMediaCommand);

void RegisterEmbedMediaCommand(CLI::App& app) {
  auto opt = std::make_shared<EmbedMediaOptions>();
  CLI::App* cmd = app.add_subcommand(
      "embed-media",
      "Encode one image or audio file with the model's projector and write the rows fed to the "
      "text model (little-endian float32, row-major [rows][n_embd]; every 30 s piece of a long "
      "clip, in order)");
  AddModelFlag(cmd, opt->model_path, "The Gemma 4 text model the projector belongs to");
  AddMmprojFlag(cmd, &opt->media);
  cmd->add_option("--audio", opt->audio, "The audio file (WAV, FLAC, Ogg/Opus, MP3; - for stdin)");
  cmd->add_option("--image", opt->image, "The image file (PNG, JPEG, WebP, GIF, BMP; - for stdin)");
  AddImageTokensFlag(cmd, &opt->image_tokens);
  cmd->add_option("--out", opt->out_path, "Output file for the rows")->required();
  cmd->add_option("-t,--threads", opt->threads,
                  "Worker threads (default: one per physical core, at most " +
                      std::to_string(engine::kMaxDefaultThreads) + ")")
      ->check(CLI::Range(1, 1024));
  cmd->callback([opt] {
    opt->model_path = ModelPath(opt->model_path);
    RunEmbedMedia(*opt);
  });
}

}  // namespace hearth::cli
