// Media in prompts: images and audio enter the text model as embedding rows that take the place
// of token embeddings (../shared/spec/gemma4-multimodal.md §2). This header is the one shape every
// kind of media takes between its encoder and the text model, so a new kind (images, video
// frames) plugs in by adding a MediaKind and an encode function to Projector, not new plumbing:
//
//   encoder (audio/, vision/) ─► MediaEmbedding ─► TurnRequest::media ─► PrepareTurn
//       ─► PreparedTurn{tokens with kMediaRow, media spans} ─► Session::Generate / Prefill
//       ─► model::Context::DecodeEmbeddings (one call per chunk, non-causal where the kind says)
//
// How a prompt with media is laid out (what llama.cpp's mtmd_tokenize does, spec §2.1–§2.5):
// the chat template renders each media content part as its placeholder (`<|image|>`,
// `<|audio|>`); the rendered text is cut at the placeholders, each text piece is tokenized on
// its own (special tokens parsed, so BPE never merges across media), and each placeholder
// becomes the begin marker piece (`<|image>` / `<|audio>`, tokenized as its own piece: a
// vocabulary without the control token gets its text pieces), the item's rows (one position
// each, consecutive 1-D positions like tokens), and the end marker piece (`<image|>` /
// `<audio|>`). In the token list a media row is kMediaRow; MediaSpan says whose rows they are.
//
// Attention: text is causal. An item's chunks are decoded one at a time (audio: one chunk per
// 30 s piece; image: one chunk); a chunk with `non_causal` is decoded in one forward step with
// the causal rule lifted in the sliding-window layers (images of every model except E2B/E4B,
// spec §2.4); audio is always causal.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::model {
struct ModelConfig;
class Context;
}  // namespace hearth::model
namespace hearth::text {
class Tokenizer;
}
namespace hearth::gguf {
class File;
}
namespace hearth::audio {
class Encoder;
}
namespace hearth::vision {
class Encoder;
struct Image;
}  // namespace hearth::vision

namespace hearth::engine {

enum class MediaKind { kImage, kAudio, kVideo };
// "image", "audio", "video".
const char* MediaKindName(MediaKind kind);
// The placeholder the official template renders for a content part of this kind ("<|image|>",
// "<|audio|>", "<|video|>"), and the marker pieces that surround the rows in the token stream
// ("<|image>" … "<image|>", "<|audio>" … "<audio|>"; spec §2.2). A video has no markers of its
// own: each of its frames is an image (see VideoTimestamp).
std::string_view MediaPlaceholder(MediaKind kind);
std::string_view MediaBegin(MediaKind kind);
std::string_view MediaEnd(MediaKind kind);

// A media row's entry in a token list (never a vocabulary id; Session and the model refuse it as
// a token).
inline constexpr int32_t kMediaRow = -1;

struct MediaEmbedding;
using MediaPtr = std::shared_ptr<const MediaEmbedding>;

// One encoded media item: the rows fed to the text model, in order.
struct MediaEmbedding {
  MediaKind kind = MediaKind::kAudio;
  int n_embd = 0;           // the text model's width
  std::vector<float> rows;  // [n_rows()][n_embd]
  // Rows of each chunk, in order, summing to n_rows(): audio one chunk per 30 s piece of the
  // clip (spec §5.1), an image one. Chunks are encoded and decoded independently.
  std::vector<int> chunks;
  // Decode each chunk bidirectionally in the sliding-window layers (spec §2.4).
  bool non_causal = false;
  // Content hash of the source bytes and the encoder settings: equal hashes mean equal rows, so
  // the KV cache of a prompt prefix holding this item can be reused and the item re-used from
  // Projector's cache instead of encoded again.
  uint64_t hash = 0;
  // A video (kind kVideo) holds no rows itself: its sampled frames, each an image item, and each
  // frame's time in seconds. `clipped`: the video was longer than 60 s and cut there.
  std::vector<MediaPtr> frames;
  std::vector<double> frame_times;
  bool clipped = false;

  int n_rows() const { return n_embd > 0 ? static_cast<int>(rows.size() / n_embd) : 0; }
};

// Positions the item takes in a prompt: its rows plus marker pieces and, for a video, the
// timestamps (an estimate of a few tokens each; what context budgeting needs before tokenizing).
int PromptPositions(const MediaEmbedding& item);

// How a video's frames are laid out (the Hugging Face Gemma 4 processor's layout; llama.cpp has
// no Gemma video path and the fixtures no video reference, spec §7): the `<|video|>` placeholder
// becomes, for each sampled frame, "mm:ss " + `<|image>` + the frame's rows + `<image|>`, frames
// separated by one space. The timestamp text joins the text before it (as in HF, where the
// expanded string is tokenized whole and only the special markers split it). "mm:ss" is the
// frame's time floored to whole seconds, e.g. 65.5 s → "01:05".
std::string VideoTimestamp(double seconds);

// A media item placed in a token list: its rows are positions [pos, pos + media->n_rows()).
// A video adds one span per frame (kind kImage).
struct MediaSpan {
  int pos = 0;
  MediaPtr media;
};

// Whether `part` (an element of a message's content list) is a media part, and which kind:
// "image", "image_url" → image; "audio", "input_audio" → audio; "video", "video_url" → video.
// Other types: false.
bool IsMediaPart(const nlohmann::ordered_json& part, MediaKind* kind = nullptr);
// The media parts of `messages` in the order the template renders them (user and assistant
// content lists; system text only). What TurnRequest::media must match, item for item.
std::vector<const nlohmann::ordered_json*> MediaParts(const nlohmann::ordered_json& messages);

// Tokenizes a rendered prompt holding one placeholder per item of `media` (in order) into the
// layout above; `spans` gets each item's position. BOS is the template's "<bos>" text (parsed
// as the special token) and is put in front when missing. Throws Error(kInvalidInput) when the
// placeholders and the items do not match in number or kind (e.g. a text part that spells a
// placeholder).
std::vector<int32_t> EncodeWithMedia(std::string_view prompt, std::span<const MediaPtr> media,
                                     const text::Tokenizer& tokenizer,
                                     std::vector<MediaSpan>* spans);

// Decodes a prompt with media into `ctx` from position ctx.n_past(): text runs in n_ubatch
// pieces, each media chunk in one DecodeEmbeddings call (non-causal where its item says), and
// writes the logits of every position, media rows included ([tokens.size()][n_vocab]), to
// `logits`. What `hearth logits --chat` writes; Session::Prefill decodes the same way.
void DecodePromptLogits(model::Context& ctx, std::span<const int32_t> tokens,
                        std::span<const MediaSpan> media, float* logits);

// How Projector may read a content part.
struct PartOptions {
  // {"type":"audio","path":F} (and image paths) read files: the command line only. The server
  // leaves this off: its parts carry their bytes (base64), never a path on this machine.
  bool allow_paths = false;
};

// A projector ("mmproj") file attached to a text model: its encoders, and a cache of encoded
// items by content hash (a follow-up turn about the same clip does not encode it again).
// Thread-safe: the server's slots share one.
class Projector {
 public:
  // Opens `path` and checks it against the text model (the projection's output width must be
  // the model's n_embd). Throws Error(kInvalidInput) naming the file when it is not a projector
  // or was made for another model.
  static std::unique_ptr<Projector> Open(const std::string& path, const model::ModelConfig& text,
                                         int n_threads);
  ~Projector();
  Projector(const Projector&) = delete;
  Projector& operator=(const Projector&) = delete;

  const std::string& path() const { return path_; }
  bool has_audio() const { return audio_ != nullptr; }
  bool has_vision() const;
  // One line per encoder, e.g. "audio: gemma4a, 12 blocks, width 1024, …".
  std::string Describe() const;

  // Audio bytes (WAV, FLAC, Ogg/Opus, MP3) → rows: decoded, resampled to 16 kHz mono, cut into
  // 30 s pieces as llama.cpp does, each piece encoded as one chunk. `name` names the input in
  // errors. Throws Error(kInvalidInput) for a projector without an audio encoder (naming the
  // models that have one) and for input that is not audio.
  MediaPtr EncodeAudio(std::span<const uint8_t> bytes, std::string_view name);
  // Audio samples already decoded (16 kHz mono), one chunk per 30 s piece; `key` identifies the
  // source for the cache (e.g. a file's hash plus the piece's range).
  MediaPtr EncodeAudioSamples(std::span<const float> samples, uint64_t key);
  // Image bytes (PNG, JPEG, WebP, GIF, BMP) → rows: decoded, fitted into the canvas for the
  // visual token budget `image_tokens` (70, 140, 280, 560 or 1120; 0 = llama.cpp's default,
  // 1120) and encoded as one chunk, non-causal unless the text model is E2B/E4B (spec §2.4).
  // Throws Error(kInvalidInput) for a projector without a vision encoder, another budget, or
  // input that is not an image.
  MediaPtr EncodeImage(std::span<const uint8_t> bytes, std::string_view name, int image_tokens = 0);
  // An image already decoded to RGB (a video frame), through the same preprocessing and encoder
  // as EncodeImage; `key` identifies the source for the cache. Not kept in the cache itself.
  MediaPtr EncodeImageRgb(const vision::Image& image, int image_tokens, uint64_t key);
  // Video bytes (any container and codec Debian's FFmpeg reads) → a kVideo item: at most the
  // first 60 s (longer: cut, `clipped` set), frames sampled evenly at `fps` (0 = 1 fps; at most
  // 4), each frame an image at `image_tokens` (0 = 70). Throws Error(kInvalidInput) for a
  // projector without a vision encoder, a budget or rate out of range, or input that is not a
  // readable video (vision::DecodeVideo).
  MediaPtr EncodeVideo(std::span<const uint8_t> bytes, std::string_view name, double fps = 0,
                       int image_tokens = 0);

  // A content part: {"type":"audio","path":F}, {"type":"input_audio","input_audio":{"data":
  // BASE64,"format":"wav"|"mp3"|…}}, {"type":"image","path":F,"image_tokens":N},
  // {"type":"image_url","image_url":{"url":"data:image/…;base64,…","detail":"low"|"high"|
  // "auto"}} (low → 70 tokens, high and auto → the default; http(s) URLs are refused: hearth
  // fetches nothing), {"type":"video","path":F,"video_fps":R,"image_tokens":N} and
  // {"type":"video_url","video_url":{"url":"data:video/mp4;base64,…"}} (http(s) refused too).
  // Throws Error(kInvalidInput) for a malformed part, Error(kUsage) for a path where paths are not
  // allowed, Error(kIo) for a file that cannot be read.
  MediaPtr EncodePart(const nlohmann::ordered_json& part, const PartOptions& options);
  // EncodePart for every item of MediaParts(messages), in order (what TurnRequest::media takes).
  std::vector<MediaPtr> EncodeParts(const nlohmann::ordered_json& messages,
                                    const PartOptions& options);

  // Items encoded so far that are kept for reuse (tests).
  size_t cached() const;

 private:
  Projector() = default;
  MediaPtr EncodeImagePart(const nlohmann::ordered_json& part, const PartOptions& options);
  MediaPtr EncodeVideoPart(const nlohmann::ordered_json& part, const PartOptions& options);
  MediaPtr EncodeFrame(const vision::Image& image, int budget, uint64_t key);  // encode_mu_ held
  MediaPtr Cached(uint64_t hash) const;
  MediaPtr Keep(std::shared_ptr<MediaEmbedding> item);

  std::string path_;
  int n_embd_ = 0;
  int n_threads_ = 1;
  std::shared_ptr<const gguf::File> file_;
  std::unique_ptr<audio::Encoder> audio_;
  std::unique_ptr<vision::Encoder> vision_;
  struct Pool;
  std::unique_ptr<Pool> pool_;
  std::mutex encode_mu_;  // one encode at a time: the encoders share pool_
  mutable std::mutex mu_;
  std::map<uint64_t, MediaPtr> cache_;  // most recent items (bounded, see media.cpp)
  std::vector<uint64_t> order_;         // cache_ keys, oldest first
};

// Projector files next to a model: the first `mmproj*.gguf` in the model's folder, or "".
std::string FindProjector(const std::string& model_path);

// A 64-bit FNV-1a hash of `bytes`, continuing from `seed` (the media content hash).
uint64_t HashBytes(std::span<const uint8_t> bytes, uint64_t seed = 14695981039346656037ull);

}  // namespace hearth::engine
