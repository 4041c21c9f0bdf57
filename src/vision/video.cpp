// Video frames through Debian's FFmpeg libraries (libavformat demuxes, libavcodec decodes,
// libswscale converts to RGB). The bytes are read from memory through a custom AVIOContext, so a
// data: URL and a file take the same path and FFmpeg never opens a file or a network URL itself.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "base/error.h"
#include "vision/vision.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>
}

namespace hearth::vision {

namespace {

// Frames decoded before giving up on a stream whose timestamps do not advance (a hostile file can
// hold millions of tiny frames all stamped 0): 60 s at 240 fps.
constexpr int64_t kMaxDecodedFrames = 60 * 240;
// Tolerance when comparing sample times with the end of the video (timestamps are rationals
// turned into doubles: 2.9 + 0.1 must not count as past 3.0).
constexpr double kEps = 1e-6;

struct Reader {
  std::span<const uint8_t> bytes;
  size_t pos = 0;
};

int ReadPacket(void* opaque, uint8_t* buf, int size) {
  auto* r = static_cast<Reader*>(opaque);
  const size_t left = r->bytes.size() - r->pos;
  if (left == 0 || size <= 0) return AVERROR_EOF;
  const size_t n = std::min(left, static_cast<size_t>(size));
  std::memcpy(buf, r->bytes.data() + r->pos, n);
  r->pos += n;
  return static_cast<int>(n);
}

int64_t SeekPacket(void* opaque, int64_t offset, int whence) {
  auto* r = static_cast<Reader*>(opaque);
  const auto size = static_cast<int64_t>(r->bytes.size());
  whence &= ~AVSEEK_FORCE;
  if (whence == AVSEEK_SIZE) return size;
  int64_t base = 0;
  if (whence == SEEK_CUR) {
    base = static_cast<int64_t>(r->pos);
  } else if (whence == SEEK_END) {
    base = size;
  } else if (whence != SEEK_SET) {
    return AVERROR(EINVAL);
  }
  const int64_t to = base + offset;
  if (to < 0 || to > size) return AVERROR(EINVAL);
  r->pos = static_cast<size_t>(to);
  return to;
}

std::string AvError(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

struct IoDeleter {
  void operator()(AVIOContext* io) const {
    av_freep(&io->buffer);
    avio_context_free(&io);
  }
};
struct FormatDeleter {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

// Demuxers that may open other files or URLs named inside the data (HLS and DASH playlists,
// concat lists, image sequences, QuickTime external references) must not: every open a demuxer
// asks for is refused, and only ordinary single-file containers are probed.
int RefuseOpen(AVFormatContext*, AVIOContext**, const char*, int, AVDictionary**) {
  return AVERROR(EPERM);
}
constexpr const char* kContainers =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,ogg,asf,gif";

[[noreturn]] void Bad(const std::string& name, const std::string& why) {
  ThrowInvalidInput("'" + name + "' is not a readable video: " + why,
                    "give a video file FFmpeg reads (MP4, WebM, MKV, MOV, AVI, …)");
}

}  // namespace

VideoInfo DecodeVideo(std::span<const uint8_t> bytes, std::string_view name, double fps,
                      const std::function<void(const Image&, double)>& on_frame,
                      int64_t max_pixels) {
  const std::string label(name);
  if (!(fps > 0 && fps <= kMaxVideoFps)) {
    ThrowInvalidInput("a video frame rate of " + std::to_string(fps) + " is out of range",
                      "sample between 0 and 4 frames per second");
  }
  if (bytes.empty()) Bad(label, "the file is empty");
  // Errors become exceptions with their own message; FFmpeg's log lines would only repeat them.
  av_log_set_level(AV_LOG_QUIET);

  Reader reader{bytes, 0};
  constexpr int kBufSize = 1 << 16;
  auto* buf = static_cast<uint8_t*>(av_malloc(kBufSize));
  if (buf == nullptr) throw std::bad_alloc();
  std::unique_ptr<AVIOContext, IoDeleter> io(
      avio_alloc_context(buf, kBufSize, 0, &reader, ReadPacket, nullptr, SeekPacket));
  if (!io) {
    av_free(buf);
    throw std::bad_alloc();
  }
  AVFormatContext* raw_fmt = avformat_alloc_context();
  if (raw_fmt == nullptr) throw std::bad_alloc();
  raw_fmt->pb = io.get();
  raw_fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
  raw_fmt->io_open = RefuseOpen;
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "format_whitelist", kContainers, 0);
  const int opened = avformat_open_input(&raw_fmt, nullptr, nullptr, &opts);
  av_dict_free(&opts);
  if (int err = opened; err < 0) {
    // raw_fmt is freed by FFmpeg. Audio-only and image files end here too (not in the list).
    Bad(label, "not a video container hearth reads, or a damaged one (" + AvError(err) + ")");
  }
  std::unique_ptr<AVFormatContext, FormatDeleter> fmt(raw_fmt);
  if (int err = avformat_find_stream_info(fmt.get(), nullptr); err < 0) {
    Bad(label, "cannot read its streams (" + AvError(err) + ")");
  }
  const AVCodec* codec = nullptr;
  const int si = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (si < 0 || codec == nullptr) Bad(label, "it has no video stream FFmpeg can decode");
  AVStream* st = fmt->streams[si];
  const int64_t w0 = st->codecpar->width, h0 = st->codecpar->height;
  if (w0 <= 0 || h0 <= 0) Bad(label, "its video stream has no frame size");
  if (w0 * h0 > max_pixels) {
    ThrowInvalidInput("'" + label + "' has " + std::to_string(w0) + "x" + std::to_string(h0) +
                          " frames, more than the " + std::to_string(max_pixels) +
                          " pixels hearth accepts",
                      "scale the video down first");
  }
  std::unique_ptr<AVCodecContext, CodecDeleter> cc(avcodec_alloc_context3(codec));
  if (!cc) throw std::bad_alloc();
  if (avcodec_parameters_to_context(cc.get(), st->codecpar) < 0) {
    Bad(label, "its codec parameters are invalid");
  }
  cc->thread_count = 1;  // the encoder's thread pool does the heavy work; keep decoding simple
  if (int err = avcodec_open2(cc.get(), codec, nullptr); err < 0) {
    Bad(label, "cannot open its decoder (" + AvError(err) + ")");
  }

  const double tb = av_q2d(st->time_base);
  const int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
  double frame_step = 0;  // a frame's display time when the frame does not say
  if (st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0) {
    frame_step = 1.0 / av_q2d(st->avg_frame_rate);
  } else if (st->r_frame_rate.num > 0 && st->r_frame_rate.den > 0) {
    frame_step = 1.0 / av_q2d(st->r_frame_rate);
  }

  VideoInfo info;
  std::unique_ptr<AVFrame, FrameDeleter> frame(av_frame_alloc());
  std::unique_ptr<AVFrame, FrameDeleter> prev(av_frame_alloc());
  std::unique_ptr<AVPacket, PacketDeleter> pkt(av_packet_alloc());
  if (!frame || !prev || !pkt) throw std::bad_alloc();
  std::unique_ptr<SwsContext, SwsDeleter> sws;
  bool have_prev = false;
  double prev_t = 0, prev_end = 0;
  int64_t next = 0;  // index of the next sample time, next / fps seconds
  int64_t decoded = 0;
  bool done = false;
  Image image;

  auto emit = [&](const AVFrame* f, double t) {
    const int w = f->width, h = f->height;
    if (w <= 0 || h <= 0 || f->format < 0) Bad(label, "a frame has no size or pixel format");
    if (int64_t{w} * h > max_pixels) {
      ThrowInvalidInput("'" + label + "' has a " + std::to_string(w) + "x" + std::to_string(h) +
                            " frame, more than the " + std::to_string(max_pixels) +
                            " pixels hearth accepts",
                        "scale the video down first");
    }
    sws.reset(sws_getCachedContext(sws.release(), w, h, static_cast<AVPixelFormat>(f->format), w, h,
                                   AV_PIX_FMT_RGB24, SWS_BILINEAR | SWS_ACCURATE_RND, nullptr,
                                   nullptr, nullptr));
    if (!sws) Bad(label, "its pixel format cannot be converted to RGB");
    image.width = w;
    image.height = h;
    image.rgb.assign(static_cast<size_t>(w) * h * 3, 0);
    uint8_t* dst[4] = {image.rgb.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {w * 3, 0, 0, 0};
    if (sws_scale(sws.get(), f->data, f->linesize, 0, h, dst, dst_stride) != h) {
      Bad(label, "a frame could not be converted to RGB");
    }
    ++info.frames;
    on_frame(image, t);
  };

  // The frame shown at sample time T is the last one whose timestamp is ≤ T: a decoded frame at
  // time t flushes the samples before t with the previous frame.
  auto take = [&](AVFrame* f) {
    if (++decoded > kMaxDecodedFrames) {
      done = true;
      return;
    }
    int64_t pts = f->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE) pts = f->pts;
    double t = pts != AV_NOPTS_VALUE ? static_cast<double>(pts - start) * tb
                                     : (have_prev ? prev_t + frame_step : 0.0);
    if (have_prev) t = std::max(t, prev_t);  // timestamps never go back in display order
    t = std::max(t, 0.0);
    for (;;) {
      const double target = static_cast<double>(next) / fps;
      if (target >= kMaxVideoSeconds - kEps || target >= t - kEps) break;
      emit(have_prev ? prev.get() : f, target);
      ++next;
    }
    if (t >= kMaxVideoSeconds - kEps) {
      info.clipped = true;
      done = true;
      return;
    }
#if LIBAVUTIL_VERSION_MAJOR >= 58  // FFmpeg 6 renamed the frame's duration
    const int64_t frame_dur = f->duration;
#else
    const int64_t frame_dur = f->pkt_duration;
#endif
    const double dur = frame_dur > 0 ? static_cast<double>(frame_dur) * tb : frame_step;
    av_frame_unref(prev.get());
    if (av_frame_ref(prev.get(), f) < 0) throw std::bad_alloc();
    have_prev = true;
    prev_t = t;
    prev_end = t + dur;
  };

  auto drain = [&]() {
    for (;;) {
      const int err = avcodec_receive_frame(cc.get(), frame.get());
      if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
      if (err < 0) Bad(label, "corrupt video data (" + AvError(err) + ")");
      take(frame.get());
      av_frame_unref(frame.get());
      if (done) return;
    }
  };

  while (!done) {
    const int err = av_read_frame(fmt.get(), pkt.get());
    if (err == AVERROR_EOF) break;
    if (err < 0) Bad(label, "the file is truncated or corrupt (" + AvError(err) + ")");
    if (pkt->stream_index == si) {
      if (pkt->flags & AV_PKT_FLAG_CORRUPT) {
        av_packet_unref(pkt.get());
        Bad(label, "the file is truncated or corrupt (a damaged packet)");
      }
      const int sent = avcodec_send_packet(cc.get(), pkt.get());
      av_packet_unref(pkt.get());
      if (sent < 0 && sent != AVERROR(EAGAIN)) {
        Bad(label, "corrupt video data (" + AvError(sent) + ")");
      }
      drain();
    } else {
      av_packet_unref(pkt.get());
    }
  }
  if (!done) {
    avcodec_send_packet(cc.get(), nullptr);  // flush the frames the decoder still holds
    drain();
  }
  if (have_prev) {
    // The last frame is shown until its end (or, past 60 s, until the cut).
    const double end = std::min(prev_end, kMaxVideoSeconds);
    if (prev_end > kMaxVideoSeconds + kEps) info.clipped = true;
    for (;;) {
      const double target = static_cast<double>(next) / fps;
      if (target >= end - kEps && !(next == 0)) break;
      emit(prev.get(), target);
      ++next;
      if (target >= end - kEps) break;  // a single still frame: sampled once
    }
    info.seconds = std::max(end, prev_t);
  }
  if (info.frames == 0) Bad(label, "no frame could be decoded");
  return info;
}

}  // namespace hearth::vision
