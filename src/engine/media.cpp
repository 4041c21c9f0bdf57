#include "engine/media.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "audio/audio.h"
#include "base/base64.h"
#include "base/error.h"
#include "base/read_file.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "model/model.h"
#include "tensor/tensor.h"
#include "text/tokenizer.h"
#include "vision/vision.h"

namespace hearth::engine {

using Json = nlohmann::ordered_json;

namespace {

// Items kept for reuse: enough for a conversation's clips and images, bounded so that a server
// fed many different clips does not grow without end (a 30 s E4B clip is 750 × 2560 floats).
constexpr size_t kCacheItems = 32;

std::string_view TypeOf(const Json& part) {
  if (!part.is_object()) return {};
  auto it = part.find("type");
  if (it == part.end() || !it->is_string()) return {};
  return it->get_ref<const std::string&>();
}

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

uint64_t HashValue(uint64_t seed, uint64_t v) {
  uint8_t b[8];
  std::memcpy(b, &v, sizeof b);
  return HashBytes(b, seed);
}

}  // namespace

const char* MediaKindName(MediaKind kind) {
  switch (kind) {
    case MediaKind::kImage:
      return "image";
    case MediaKind::kVideo:
      return "video";
    case MediaKind::kAudio:
      break;
  }
  return "audio";
}

std::string_view MediaPlaceholder(MediaKind kind) {
  switch (kind) {
    case MediaKind::kImage:
      return "<|image|>";
    case MediaKind::kVideo:
      return "<|video|>";
    case MediaKind::kAudio:
      break;
  }
  return "<|audio|>";
}
// A video's frames are images: their markers are the image markers.
std::string_view MediaBegin(MediaKind kind) {
  return kind == MediaKind::kAudio ? "<|audio>" : "<|image>";
}
std::string_view MediaEnd(MediaKind kind) {
  return kind == MediaKind::kAudio ? "<audio|>" : "<image|>";
}

std::string VideoTimestamp(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld", static_cast<long long>(s / 60),
                static_cast<long long>(s % 60));
  return buf;
}

int PromptPositions(const MediaEmbedding& item) {
  if (item.kind != MediaKind::kVideo) return item.n_rows() + 2;
  int n = 0;
  for (const MediaPtr& f : item.frames) n += f->n_rows() + 2 + 4;  // markers, "mm:ss " ≈ 4
  return n;
}

uint64_t HashBytes(std::span<const uint8_t> bytes, uint64_t seed) {
  uint64_t h = seed;
  for (uint8_t b : bytes) {
    h ^= b;
    h *= 1099511628211ull;
  }
  return h;
}

bool IsMediaPart(const Json& part, MediaKind* kind) {
  const std::string_view type = TypeOf(part);
  MediaKind k;
  if (type == "image" || type == "image_url") {
    k = MediaKind::kImage;
  } else if (type == "audio" || type == "input_audio") {
    k = MediaKind::kAudio;
  } else if (type == "video" || type == "video_url") {
    k = MediaKind::kVideo;
  } else {
    return false;
  }
  if (kind) *kind = k;
  return true;
}

std::vector<const Json*> MediaParts(const Json& messages) {
  std::vector<const Json*> out;
  if (!messages.is_array()) return out;
  for (const Json& m : messages) {
    if (!m.is_object()) continue;
    auto role = m.find("role");
    // System (and developer) content renders its text parts only; tool results are text.
    if (role == m.end() || !role->is_string() || (*role != "user" && *role != "assistant")) {
      continue;
    }
    auto content = m.find("content");
    if (content == m.end() || !content->is_array()) continue;
    for (const Json& part : *content) {
      if (IsMediaPart(part)) out.push_back(&part);
    }
  }
  return out;
}

std::vector<int32_t> EncodeWithMedia(std::string_view prompt, std::span<const MediaPtr> media,
                                     const text::Tokenizer& tokenizer,
                                     std::vector<MediaSpan>* spans) {
  std::vector<int32_t> tokens;
  auto append = [&](std::string_view piece) {
    const std::vector<int32_t> ids = tokenizer.Encode(piece, false, true);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
  };
  if (spans) spans->clear();
  size_t at = 0;
  for (size_t i = 0; i <= media.size(); ++i) {
    // The next placeholder of either kind.
    size_t next = std::string_view::npos;
    MediaKind found = MediaKind::kAudio;
    for (MediaKind k : {MediaKind::kImage, MediaKind::kAudio, MediaKind::kVideo}) {
      const size_t p = prompt.find(MediaPlaceholder(k), at);
      if (p < next) {
        next = p;
        found = k;
      }
    }
    if (i == media.size()) {
      if (next != std::string_view::npos) {
        ThrowInvalidInput("the prompt holds more media placeholders (" +
                              std::string(MediaPlaceholder(found)) + ") than media items (" +
                              std::to_string(media.size()) + ")",
                          "a text part must not spell a media placeholder");
      }
      append(prompt.substr(at));
      break;
    }
    const MediaEmbedding& item = *media[i];
    if (next == std::string_view::npos || found != item.kind) {
      ThrowInvalidInput("media item " + std::to_string(i + 1) + " (" + MediaKindName(item.kind) +
                            ") has no matching placeholder in the rendered prompt",
                        "media parts go in user or assistant content lists");
    }
    if (item.kind == MediaKind::kVideo) {
      // Hugging Face's layout (see VideoTimestamp): "mm:ss <|image>rows<image|>" per frame,
      // separated by a space; the first timestamp is tokenized with the text before it.
      std::string text(prompt.substr(at, next - at));
      for (size_t f = 0; f < item.frames.size(); ++f) {
        if (f > 0) text.push_back(' ');
        text.append(VideoTimestamp(item.frame_times[f]));
        text.push_back(' ');
        append(text);
        append(MediaBegin(MediaKind::kImage));
        if (spans) spans->push_back({static_cast<int>(tokens.size()), item.frames[f]});
        tokens.insert(tokens.end(), static_cast<size_t>(item.frames[f]->n_rows()), kMediaRow);
        append(MediaEnd(MediaKind::kImage));
        text.clear();
      }
      at = next + MediaPlaceholder(item.kind).size();
      continue;
    }
    append(prompt.substr(at, next - at));
    append(MediaBegin(item.kind));
    if (spans) spans->push_back({static_cast<int>(tokens.size()), media[i]});
    tokens.insert(tokens.end(), static_cast<size_t>(item.n_rows()), kMediaRow);
    append(MediaEnd(item.kind));
    at = next + MediaPlaceholder(item.kind).size();
  }
  if (tokens.empty() || tokens.front() != tokenizer.bos_id()) {
    tokens.insert(tokens.begin(), tokenizer.bos_id());
    if (spans) {
      for (MediaSpan& s : *spans) ++s.pos;
    }
  }
  return tokens;
}

void DecodePromptLogits(model::Context& ctx, std::span<const int32_t> tokens,
                        std::span<const MediaSpan> media, float* logits) {
  const size_t V = static_cast<size_t>(ctx.model().config().n_vocab);
  const size_t step = static_cast<size_t>(std::max(1, ctx.options().n_ubatch));
  size_t next_span = 0;
  for (size_t pos = 0; pos < tokens.size();) {
    if (next_span < media.size() && static_cast<size_t>(media[next_span].pos) == pos) {
      const MediaEmbedding& item = *media[next_span].media;
      const size_t w = static_cast<size_t>(item.n_embd);
      std::vector<int> chunks = item.chunks;
      if (chunks.empty()) chunks.push_back(item.n_rows());
      size_t row = 0;
      for (int n : chunks) {
        const size_t rows = static_cast<size_t>(n);
        ctx.DecodeEmbeddings(std::span<const float>(item.rows).subspan(row * w, rows * w),
                             logits + (pos + row) * V, true, item.non_causal);
        row += rows;
      }
      pos += row;
      ++next_span;
      continue;
    }
    size_t end = std::min(pos + step, tokens.size());
    if (next_span < media.size()) end = std::min(end, static_cast<size_t>(media[next_span].pos));
    ctx.Decode(tokens.subspan(pos, end - pos), logits + pos * V, true);
    pos = end;
  }
}

// ---------------------------------------------------------------------------------------------
// Projector.

struct Projector::Pool {
  explicit Pool(int n) : pool(n) {}
  tensor::ThreadPool pool;
};

Projector::~Projector() = default;

std::unique_ptr<Projector> Projector::Open(const std::string& path, const model::ModelConfig& text,
                                           int n_threads) {
  auto file = std::make_shared<const gguf::File>(gguf::File::Open(path));
  const std::optional<std::string_view> type = file->GetString("general.type");
  const std::optional<std::string_view> arch = file->GetString("general.architecture");
  if (arch != "clip" || (type.has_value() && *type != "mmproj")) {
    ThrowInvalidInput("'" + path + "' is not a multimodal projector (mmproj) file",
                      "give the mmproj .gguf that belongs to the model (--mmproj)");
  }
  std::unique_ptr<Projector> p(new Projector());
  p->path_ = path;
  p->n_embd_ = text.n_embd;
  p->n_threads_ = std::max(1, n_threads);
  p->file_ = file;
  if (audio::Encoder::HasAudio(*file)) {
    p->audio_ = audio::Encoder::Load(file);
    if (p->audio_->TextWidth() != text.n_embd) {
      ThrowInvalidInput("'" + path + "' projects audio to width " +
                            std::to_string(p->audio_->TextWidth()) + ", but the model '" +
                            text.path + "' has width " + std::to_string(text.n_embd),
                        "use the mmproj file made for this model");
    }
  }
  if (vision::Encoder::HasVision(*file)) {
    p->vision_ = vision::Encoder::Load(file);
    if (p->vision_->TextWidth() != text.n_embd) {
      ThrowInvalidInput("'" + path + "' projects images to width " +
                            std::to_string(p->vision_->TextWidth()) + ", but the model '" +
                            text.path + "' has width " + std::to_string(text.n_embd),
                        "use the mmproj file made for this model");
    }
  }
  if (!p->audio_ && !p->has_vision()) {
    ThrowInvalidInput("'" + path + "' has no encoder hearth can run",
                      "give the mmproj file of a Gemma 4 model");
  }
  p->pool_ = std::make_unique<Pool>(p->n_threads_);
  return p;
}

bool Projector::has_vision() const { return vision_ != nullptr; }

std::string Projector::Describe() const {
  std::string out;
  if (vision_) out += "vision: " + vision_->Describe();
  if (audio_) {
    if (!out.empty()) out += "\n";
    out += "audio: " + audio_->Describe();
  }
  return out;
}

MediaPtr Projector::Cached(uint64_t hash) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(hash);
  return it == cache_.end() ? nullptr : it->second;
}

MediaPtr Projector::Keep(std::shared_ptr<MediaEmbedding> item) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = cache_.emplace(item->hash, item);
  if (inserted) {
    order_.push_back(item->hash);
    if (order_.size() > kCacheItems) {
      cache_.erase(order_.front());
      order_.erase(order_.begin());
    }
  }
  return it->second;
}

size_t Projector::cached() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.size();
}

MediaPtr Projector::EncodeAudio(std::span<const uint8_t> bytes, std::string_view name) {
  // These errors name the projector by its file name only: they reach the server's clients,
  // which have no business learning where the server keeps its files.
  if (!audio_) {
    ThrowInvalidInput(
        "'" + std::filesystem::path(path_).filename().string() + "' has no audio encoder",
        "audio input needs Gemma 4 E2B or E4B and its mmproj file; 26B-A4B and 31B "
        "take no audio");
  }
  const uint64_t key = HashBytes(bytes, HashValue(14695981039346656037ull, 0x617564696fULL));
  if (MediaPtr hit = Cached(key)) return hit;
  const std::vector<float> samples = audio::DecodeBytes(bytes, name);
  return EncodeAudioSamples(samples, key);
}

MediaPtr Projector::EncodeAudioSamples(std::span<const float> samples, uint64_t key) {
  if (!audio_) {
    ThrowInvalidInput(
        "'" + std::filesystem::path(path_).filename().string() + "' has no audio encoder",
        "audio input needs Gemma 4 E2B or E4B and its mmproj file; 26B-A4B and 31B "
        "take no audio");
  }
  std::lock_guard<std::mutex> encoding(encode_mu_);
  if (MediaPtr hit = Cached(key)) return hit;  // encoded by another thread meanwhile
  auto item = std::make_shared<MediaEmbedding>();
  item->kind = MediaKind::kAudio;
  item->n_embd = n_embd_;
  item->non_causal = false;  // audio chunks are always causal (spec §2.4)
  item->hash = key;
  item->rows = audio_->EncodeClip(samples, &pool_->pool, &item->chunks, audio::Split::kFixed);
  return Keep(std::move(item));
}

namespace {

// "data:[<type>][;base64],<data>" → the bytes; false when `url` is not a base64 data: URL.
bool DecodeDataUrl(std::string_view url, std::vector<uint8_t>& out) {
  if (!url.starts_with("data:")) return false;
  const size_t comma = url.find(',');
  if (comma == std::string_view::npos) return false;
  const std::string_view meta = url.substr(5, comma - 5);
  if (!meta.ends_with(";base64")) return false;
  return DecodeBase64(url.substr(comma + 1), out) && !out.empty();
}

}  // namespace

MediaPtr Projector::EncodeImage(std::span<const uint8_t> bytes, std::string_view name,
                                int image_tokens) {
  if (!vision_) {
    ThrowInvalidInput(
        "'" + std::filesystem::path(path_).filename().string() + "' has no vision encoder",
        "image input needs a Gemma 4 model's mmproj file with a vision encoder");
  }
  const int budget = image_tokens == 0 ? vision::kDefaultTokens : image_tokens;
  if (!vision::IsTokenBudget(budget)) {
    ThrowInvalidInput("an image token budget of " + std::to_string(image_tokens) +
                          " is not one of 70, 140, 280, 560, 1120",
                      "Gemma 4's visual token budgets are 70, 140, 280, 560 and 1120");
  }
  const uint64_t key = HashBytes(
      bytes, HashValue(HashValue(14695981039346656037ull, 0x696d616765ULL), uint64_t(budget)));
  if (MediaPtr hit = Cached(key)) return hit;
  const vision::Image image = vision::DecodeBytes(bytes, name);
  std::lock_guard<std::mutex> encoding(encode_mu_);
  if (MediaPtr hit = Cached(key)) return hit;  // encoded by another thread meanwhile
  auto item = EncodeFrame(image, budget, key);
  return Keep(std::const_pointer_cast<MediaEmbedding>(item));
}

MediaPtr Projector::EncodeFrame(const vision::Image& image, int budget, uint64_t key) {
  auto item = std::make_shared<MediaEmbedding>();
  item->kind = MediaKind::kImage;
  item->n_embd = n_embd_;
  // llama.cpp keeps images causal only for the E2B/E4B widths (spec §2.4).
  item->non_causal = n_embd_ != 1536 && n_embd_ != 2560;
  item->hash = key;
  item->rows = vision_->EncodeImage(image, budget, &pool_->pool);
  item->chunks = {item->n_rows()};
  return item;
}

namespace {

void CheckVision(bool has, const std::string& path) {
  if (!has) {
    ThrowInvalidInput("'" + path + "' has no vision encoder",
                      "image and video input need a Gemma 4 model's mmproj file with a vision "
                      "encoder");
  }
}

int CheckBudget(int tokens, int fallback) {
  const int budget = tokens == 0 ? fallback : tokens;
  if (!vision::IsTokenBudget(budget)) {
    ThrowInvalidInput("an image token budget of " + std::to_string(tokens) +
                          " is not one of 70, 140, 280, 560, 1120",
                      "Gemma 4's visual token budgets are 70, 140, 280, 560 and 1120");
  }
  return budget;
}

}  // namespace

MediaPtr Projector::EncodeImageRgb(const vision::Image& image, int image_tokens, uint64_t key) {
  CheckVision(vision_ != nullptr, path_);
  const int budget = CheckBudget(image_tokens, vision::kDefaultTokens);
  std::lock_guard<std::mutex> encoding(encode_mu_);
  return EncodeFrame(image, budget, key);
}

MediaPtr Projector::EncodeVideo(std::span<const uint8_t> bytes, std::string_view name, double fps,
                                int image_tokens) {
  CheckVision(vision_ != nullptr, path_);
  const int budget = CheckBudget(image_tokens, vision::kDefaultVideoTokens);
  if (fps == 0) fps = vision::kDefaultVideoFps;
  if (!(fps > 0 && fps <= vision::kMaxVideoFps)) {
    ThrowInvalidInput("a video frame rate of " + std::to_string(fps) + " is out of range",
                      "sample between 0 and 4 frames per second (--video-fps)");
  }
  const uint64_t key = HashBytes(
      bytes,
      HashValue(HashValue(HashValue(14695981039346656037ull, 0x766964656fULL), uint64_t(budget)),
                static_cast<uint64_t>(std::llround(fps * 1000))));
  if (MediaPtr hit = Cached(key)) return hit;
  auto item = std::make_shared<MediaEmbedding>();
  item->kind = MediaKind::kVideo;
  item->n_embd = n_embd_;
  item->non_causal = n_embd_ != 1536 && n_embd_ != 2560;
  item->hash = key;
  std::lock_guard<std::mutex> encoding(encode_mu_);
  if (MediaPtr hit = Cached(key)) return hit;
  const vision::VideoInfo info =
      vision::DecodeVideo(bytes, name, fps, [&](const vision::Image& frame, double t) {
        item->frames.push_back(EncodeFrame(frame, budget, HashValue(key, item->frames.size())));
        item->frame_times.push_back(t);
      });
  item->clipped = info.clipped;
  return Keep(std::move(item));
}

MediaPtr Projector::EncodePart(const Json& part, const PartOptions& options) {
  MediaKind kind;
  if (!IsMediaPart(part, &kind)) {
    ThrowInvalidInput("a content part of type '" + std::string(TypeOf(part)) +
                      "' is not an image or audio part");
  }
  const std::string_view type = TypeOf(part);
  if (kind == MediaKind::kImage) return EncodeImagePart(part, options);
  if (kind == MediaKind::kVideo) return EncodeVideoPart(part, options);
  if (type == "audio") {
    auto path = part.find("path");
    if (path == part.end() || !path->is_string() || path->get_ref<const std::string&>().empty()) {
      ThrowInvalidInput("an audio part needs \"path\": the audio file",
                        "write {\"type\":\"audio\",\"path\":\"clip.wav\"}");
    }
    const std::string& file = path->get_ref<const std::string&>();
    if (!options.allow_paths) {
      ThrowUsage("audio parts with a file path are not accepted here",
                 "send the audio itself: {\"type\":\"input_audio\",\"input_audio\":{\"data\":"
                 "BASE64,\"format\":\"wav\"}}");
    }
    const std::string bytes = ReadWholeFile(file, "a media file");
    return EncodeAudio(AsBytes(bytes), file);
  }
  // input_audio (OpenAI): {"input_audio": {"data": BASE64, "format": "wav" | "mp3" | …}}; the
  // format is not needed (the decoder reads the container), the data is.
  auto in = part.find("input_audio");
  if (in == part.end() || !in->is_object() || !in->contains("data") || !(*in)["data"].is_string()) {
    ThrowInvalidInput("an input_audio part needs input_audio.data (base64 audio)");
  }
  std::vector<uint8_t> bytes;
  if (!DecodeBase64((*in)["data"].get_ref<const std::string&>(), bytes) || bytes.empty()) {
    ThrowInvalidInput("input_audio.data is not valid base64 audio");
  }
  return EncodeAudio(bytes, "input_audio");
}

MediaPtr Projector::EncodeImagePart(const Json& part, const PartOptions& options) {
  if (TypeOf(part) == "image") {
    int tokens = 0;
    if (auto t = part.find("image_tokens"); t != part.end()) {
      if (!t->is_number_integer()) {
        ThrowInvalidInput("\"image_tokens\" must be one of 70, 140, 280, 560, 1120");
      }
      tokens = t->get<int>();
    }
    auto path = part.find("path");
    if (path == part.end() || !path->is_string() || path->get_ref<const std::string&>().empty()) {
      ThrowInvalidInput("an image part needs \"path\": the image file",
                        "write {\"type\":\"image\",\"path\":\"shot.png\"}");
    }
    const std::string& file = path->get_ref<const std::string&>();
    if (!options.allow_paths) {
      ThrowUsage("image parts with a file path are not accepted here",
                 "send the image itself: {\"type\":\"image_url\",\"image_url\":{\"url\":"
                 "\"data:image/png;base64,…\"}}");
    }
    const std::string bytes = ReadWholeFile(file, "a media file");
    return EncodeImage(AsBytes(bytes), file, tokens);
  }
  // image_url (OpenAI): {"image_url": {"url": "data:image/png;base64,…", "detail": …}} or
  // {"image_url": "data:…"}.
  auto in = part.find("image_url");
  std::string_view url;
  std::string_view detail = "auto";
  if (in != part.end() && in->is_string()) {
    url = in->get_ref<const std::string&>();
  } else if (in != part.end() && in->is_object() && in->contains("url") &&
             (*in)["url"].is_string()) {
    url = (*in)["url"].get_ref<const std::string&>();
    if (auto d = in->find("detail"); d != in->end() && d->is_string()) {
      detail = d->get_ref<const std::string&>();
    }
  } else {
    ThrowInvalidInput("an image_url part needs image_url.url (a data: URL)");
  }
  if (url.starts_with("http://") || url.starts_with("https://")) {
    ThrowInvalidInput("image URLs are not fetched: hearth makes no network requests",
                      "send the image inline as a data: URL (data:image/png;base64,…)");
  }
  if (detail != "auto" && detail != "low" && detail != "high") {
    ThrowInvalidInput("image_url.detail must be \"low\", \"high\" or \"auto\"");
  }
  std::vector<uint8_t> bytes;
  if (!DecodeDataUrl(url, bytes)) {
    ThrowInvalidInput("image_url.url is not a base64 data: URL",
                      "send data:image/png;base64,… (PNG, JPEG, WebP, GIF or BMP)");
  }
  return EncodeImage(bytes, "image_url", detail == "low" ? 70 : 0);
}

MediaPtr Projector::EncodeVideoPart(const Json& part, const PartOptions& options) {
  int tokens = 0;
  if (auto t = part.find("image_tokens"); t != part.end()) {
    if (!t->is_number_integer()) {
      ThrowInvalidInput("\"image_tokens\" must be one of 70, 140, 280, 560, 1120");
    }
    tokens = t->get<int>();
  }
  double fps = 0;
  if (auto f = part.find("video_fps"); f != part.end()) {
    if (!f->is_number()) ThrowInvalidInput("\"video_fps\" must be a number of frames per second");
    fps = f->get<double>();
    if (!(fps > 0)) ThrowInvalidInput("\"video_fps\" must be more than 0 (at most 4)");
  }
  if (TypeOf(part) == "video") {
    auto path = part.find("path");
    if (path == part.end() || !path->is_string() || path->get_ref<const std::string&>().empty()) {
      ThrowInvalidInput("a video part needs \"path\": the video file",
                        "write {\"type\":\"video\",\"path\":\"clip.mp4\"}");
    }
    const std::string& file = path->get_ref<const std::string&>();
    if (!options.allow_paths) {
      ThrowUsage("video parts with a file path are not accepted here",
                 "send the video itself: {\"type\":\"video_url\",\"video_url\":{\"url\":"
                 "\"data:video/mp4;base64,…\"}}");
    }
    const std::string bytes = ReadWholeFile(file, "a media file");
    return EncodeVideo(AsBytes(bytes), file, fps, tokens);
  }
  // video_url: {"video_url": {"url": "data:video/mp4;base64,…"}} or {"video_url": "data:…"}.
  auto in = part.find("video_url");
  std::string_view url;
  if (in != part.end() && in->is_string()) {
    url = in->get_ref<const std::string&>();
  } else if (in != part.end() && in->is_object() && in->contains("url") &&
             (*in)["url"].is_string()) {
    url = (*in)["url"].get_ref<const std::string&>();
  } else {
    ThrowInvalidInput("a video_url part needs video_url.url (a data: URL)");
  }
  if (url.starts_with("http://") || url.starts_with("https://")) {
    ThrowInvalidInput("video URLs are not fetched: hearth makes no network requests",
                      "send the video inline as a data: URL (data:video/mp4;base64,…)");
  }
  std::vector<uint8_t> bytes;
  if (!DecodeDataUrl(url, bytes)) {
    ThrowInvalidInput("video_url.url is not a base64 data: URL", "send data:video/mp4;base64,…");
  }
  return EncodeVideo(bytes, "video_url", fps, tokens);
}

std::vector<MediaPtr> Projector::EncodeParts(const Json& messages, const PartOptions& options) {
  std::vector<MediaPtr> out;
  for (const Json* part : MediaParts(messages)) out.push_back(EncodePart(*part, options));
  return out;
}

std::string FindProjector(const std::string& model_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::path(model_path).parent_path();
  std::vector<std::string> found;
  for (fs::directory_iterator it(dir.empty() ? fs::path(".") : dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with("mmproj") && name.ends_with(".gguf") && it->is_regular_file(ec)) {
      found.push_back(it->path().string());
    }
  }
  std::sort(found.begin(), found.end());
  return found.empty() ? std::string() : found.front();
}

}  // namespace hearth::engine
