// Image input for Gemma 4: decoding (PNG, JPEG, WebP, GIF, BMP through Debian's libraries), EXIF
// orientation, llama.cpp's preprocessing (size for the visual token budget, Pillow-style bicubic
// fit with black padding, normalisation) and the `gemma4v` vision encoder of the projector
// ("mmproj") file, which turns one image into the embedding rows fed to the text model. What
// llama.cpp's libmtmd computes: ../shared/spec/gemma4-multimodal.md §1.2, §3, §4.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "tensor/tensor.h"

namespace hearth::vision {

// 8-bit RGB pixels, row-major, channels interleaved ([height][width][3]).
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
};

// Decompression-bomb guard: a file whose header announces more pixels than this is refused
// before anything is allocated (64 Mpx = 192 MiB of RGB; a 4032×3024 photo is 12 Mpx).
inline constexpr int64_t kMaxPixels = int64_t{1} << 26;

// Decodes an image held in memory: PNG (libpng; 16-bit reduced to 8, alpha dropped without
// compositing, as llama.cpp's stb_image does), JPEG (libjpeg-turbo), WebP (libwebp; animated: the
// first frame), GIF (giflib; the first frame on a black canvas) or BMP (stb_image from Debian's
// libstb), then applies the EXIF orientation when the file has one. `name` names the input in
// error messages. Throws Error(kInvalidInput) for an unknown format, a corrupt or truncated
// file, or more than `max_pixels` pixels.
Image DecodeBytes(std::span<const uint8_t> bytes, std::string_view name,
                  int64_t max_pixels = kMaxPixels);
// Same for a file (Error(kIo) when it cannot be read).
Image DecodeFile(const std::string& path, int64_t max_pixels = kMaxPixels);

// Rotates/flips `image` as EXIF orientation `orientation` (1..8) says to display it.
Image Orient(const Image& image, int orientation);

// Video (FFmpeg's libavformat/libavcodec/libswscale from Debian). At most the first
// kMaxVideoSeconds of a video are read (a longer one is cut there and VideoInfo::clipped says
// so); frames are sampled evenly at `fps` (at most kMaxVideoFps): sample k is the frame shown at
// k / fps seconds, i.e. the last frame whose timestamp is not later.
inline constexpr double kMaxVideoSeconds = 60;
inline constexpr double kMaxVideoFps = 4;
inline constexpr double kDefaultVideoFps = 1;
// Frames of a video are images at a low budget (the seed: "low budgets for … many video frames").
inline constexpr int kDefaultVideoTokens = 70;

struct VideoInfo {
  int frames = 0;        // frames passed to the callback
  double seconds = 0;    // length read (≤ kMaxVideoSeconds)
  bool clipped = false;  // the video is longer than kMaxVideoSeconds and was cut
};

// Decodes a video held in memory (any container and codec Debian's FFmpeg reads; never a URL or
// a file: FFmpeg reads these bytes only) and calls `on_frame(frame, seconds)` for each sampled
// frame in order, so only one RGB frame is held at a time. Throws Error(kInvalidInput) naming
// `name` for data that is not a video, a truncated or corrupt file, frames of more than
// `max_pixels` pixels (checked on the header and on every frame), an fps out of (0, 4], or a
// video without any decodable frame.
VideoInfo DecodeVideo(std::span<const uint8_t> bytes, std::string_view name, double fps,
                      const std::function<void(const Image&, double)>& on_frame,
                      int64_t max_pixels = kMaxPixels);

// The Gemma 4 visual token budgets; llama.cpp's default is the largest (spec §3.2).
inline constexpr std::array<int, 5> kTokenBudgets = {70, 140, 280, 560, 1120};
inline constexpr int kDefaultTokens = 1120;
inline constexpr int kMinTokens = 70;
// Whether `tokens` is one of kTokenBudgets.
bool IsTokenBudget(int tokens);

// The canvas an image is fitted into (spec §3.2): width and height are multiples of `align`
// (= patch size × pooling kernel) and tokens = (width / align) · (height / align).
struct Canvas {
  int width = 0;
  int height = 0;
  int tokens = 0;
};
Canvas CanvasFor(int width, int height, int align, int min_tokens, int max_tokens);

// Pillow's BICUBIC resize (8-bit fixed point, antialiased when shrinking; spec §3.4).
Image Resize(const Image& image, int width, int height);
// Fits `image` into a width×height canvas keeping its aspect ratio, centred on black (§3.3).
Image FitAndPad(const Image& image, int width, int height);

// Encoder input: planar float [3][height][width], (u8 / 255 − mean) / std.
struct Pixels {
  int width = 0;
  int height = 0;
  std::vector<float> data;
};
Pixels Normalize(const Image& image, const std::array<float, 3>& mean,
                 const std::array<float, 3>& std);

// Encoder outputs of interest to tests (the fixtures' `inter.*`), each [rows][width].
struct Intermediates {
  std::vector<float> pos_embd;
  std::vector<std::vector<float>> layer_out;
  std::vector<float> pooled;
};

// The `gemma4v` vision encoder of a projector file. Keeps the file open (weights stay mapped).
class Encoder {
 public:
  // Reads the `v.` and `mm.input_projection` tensors of `file`. Throws Error(kInvalidInput)
  // naming the file when it has no vision encoder or a tensor is missing or malformed.
  static std::unique_ptr<Encoder> Load(std::shared_ptr<const gguf::File> file);
  static std::unique_ptr<Encoder> Open(const std::string& path);
  // Whether `file` declares a vision encoder (clip.has_vision_encoder).
  static bool HasVision(const gguf::File& file);

  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  int TextWidth() const;  // width of the rows fed to the text model
  int PatchSize() const;
  int PoolKernel() const;
  int Align() const { return PatchSize() * PoolKernel(); }
  // One line, e.g. "gemma4v, 16 layers, width 768, 12 heads, patch 16, pool 3, F16".
  std::string Describe() const;

  // The canvas and the encoder input for `image` at budget `max_tokens` (llama.cpp's
  // image_max_tokens; the minimum stays kMinTokens).
  Canvas CanvasOf(const Image& image, int max_tokens) const;
  Pixels Preprocess(const Image& image, int max_tokens) const;
  // Encodes preprocessed pixels (a canvas from CanvasOf): tokens rows of TextWidth() floats.
  std::vector<float> Encode(const Pixels& pixels, tensor::ThreadPool* pool,
                            Intermediates* inter = nullptr) const;
  // Preprocess + Encode.
  std::vector<float> EncodeImage(const Image& image, int max_tokens,
                                 tensor::ThreadPool* pool) const;

 private:
  struct Weights;
  explicit Encoder(std::unique_ptr<Weights> weights);
  std::unique_ptr<Weights> w_;
};

}  // namespace hearth::vision
