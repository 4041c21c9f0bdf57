// Audio input for Gemma 4 E2B/E4B: decoding (WAV, FLAC, Ogg/Opus, MP3 through libsndfile),
// resampling to 16 kHz mono (libsoxr), splitting into pieces of at most 30 s, the log-mel
// features and the `gemma4a` conformer encoder of the projector ("mmproj") file, which turns one
// piece into the embedding rows fed to the text model. What llama.cpp's libmtmd computes:
// ../shared/spec/gemma4-multimodal.md §1.3, §5.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "tensor/tensor.h"

namespace hearth::audio {

inline constexpr int kSampleRate = 16000;
// The longest piece the encoder takes (spec §5.1): 30 s.
inline constexpr int64_t kMaxPieceSamples = int64_t{30} * kSampleRate;

// Decodes an audio file held in memory to mono float samples at 16 kHz (channels averaged,
// other rates resampled). `name` names the input in error messages. Throws Error(kInvalidInput)
// for anything that is not a readable, non-empty audio stream.
std::vector<float> DecodeBytes(std::span<const uint8_t> bytes, std::string_view name);
// Same for a file (Error(kIo) when it cannot be read).
std::vector<float> DecodeFile(const std::string& path);

// A 16 kHz mono float32 WAV file holding `samples` (DecodeBytes gives them back exactly): how a
// piece of a clip travels as a media item of its own.
std::string EncodeWav(std::span<const float> samples);

// Resamples mono `samples` from `rate` Hz to 16 kHz (libsoxr, high quality); a copy at 16 kHz.
std::vector<float> Resample(std::span<const float> samples, double rate);

// One piece of a clip: samples [begin, end) of the whole clip.
struct Piece {
  int64_t begin = 0;
  int64_t end = 0;
};
// Splits a clip into pieces of at most `max_samples`. A clip that fits is one piece. A longer one
// is cut at the quietest 20 ms of the last 5 s before each limit when that stretch is silent
// (RMS below -50 dBFS), otherwise exactly at the limit, as llama.cpp does, so nothing is dropped.
std::vector<Piece> SplitAtSilence(std::span<const float> samples,
                                  int64_t max_samples = kMaxPieceSamples);
// How a long clip is cut into pieces: kFixed cuts every 30 s exactly, as llama.cpp does (the
// layout the model's prompts and the references use); kAtSilence as SplitAtSilence.
enum class Split { kFixed, kAtSilence };
std::vector<Piece> SplitClip(std::span<const float> samples, Split split);

// Log-mel features of one piece ([n_mel][frames] row-major, time fastest; spec §5.2).
struct Mel {
  int n_mel = 0;
  int frames = 0;
  std::vector<float> data;
};
Mel LogMel(std::span<const float> samples, int n_mel);

// The number of embedding rows the encoder makes of `frames` mel frames (two stride-2 halvings).
int TokensForFrames(int frames);

// Encoder outputs of interest to tests (spec fixtures' `inter.*`), each [rows][width].
struct Intermediates {
  std::vector<float> sscp_proj;
  std::vector<std::vector<float>> block_out;
  std::vector<float> out_proj;
};

// The `gemma4a` audio encoder of a projector file. Keeps the file open (weights stay mapped).
class Encoder {
 public:
  // Reads the `a.` and `mm.a.` tensors of `file`. Throws Error(kInvalidInput) naming the file when
  // it has no audio encoder (with a hint naming the Gemma 4 models that have one) or a tensor is
  // missing or has the wrong shape.
  static std::unique_ptr<Encoder> Load(std::shared_ptr<const gguf::File> file);
  static std::unique_ptr<Encoder> Open(const std::string& path);
  // Whether `file` declares an audio encoder (clip.has_audio_encoder).
  static bool HasAudio(const gguf::File& file);

  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  int MelBins() const;
  int TextWidth() const;  // width of the rows fed to the text model
  // One line, e.g. "gemma4a, 12 blocks, width 1024, 8 heads, 128 mel bins, Q8_0".
  std::string Describe() const;

  // Encodes one piece's features: TokensForFrames(mel.frames) rows of TextWidth() floats.
  std::vector<float> Encode(const Mel& mel, tensor::ThreadPool* pool,
                            Intermediates* inter = nullptr) const;
  // A whole clip (16 kHz mono): every piece of SplitClip(samples, split), in order;
  // `rows_per_piece` gets each piece's row count when not null.
  std::vector<float> EncodeClip(std::span<const float> samples, tensor::ThreadPool* pool,
                                std::vector<int>* rows_per_piece = nullptr,
                                Split split = Split::kFixed) const;

 private:
  struct Weights;
  explicit Encoder(std::unique_ptr<Weights> weights);
  std::unique_ptr<Weights> w_;
};

}  // namespace hearth::audio
