// Writes small test videos with FFmpeg's own encoders (libavformat/libavcodec), so the video tests
// check the decoder against frames whose colours are known, not against a captured output. Each
// second of the video is one solid colour.
#pragma once

#include <array>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}

namespace hearth::testing {

using Rgb = std::array<uint8_t, 3>;

// `format`: the container ("matroska", "mp4", …); `codec`: AV_CODEC_ID_PNG (lossless RGB: exact
// colours) or AV_CODEC_ID_MPEG4 (YUV 4:2:0, lossy: colours within a few levels). Frame i shows
// colours[i / fps]; the video lasts colours.size() seconds. Returns the file's bytes.
inline std::vector<uint8_t> WriteTestVideo(const std::string& path, const char* format,
                                           AVCodecID codec_id, int width, int height, int fps,
                                           const std::vector<Rgb>& colours) {
  auto check = [](bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("test video: ") + what);
  };
  AVFormatContext* oc = nullptr;
  check(avformat_alloc_output_context2(&oc, nullptr, format, path.c_str()) >= 0, "container");
  const AVCodec* codec = avcodec_find_encoder(codec_id);
  check(codec != nullptr, "encoder");
  AVStream* st = avformat_new_stream(oc, nullptr);
  AVCodecContext* c = avcodec_alloc_context3(codec);
  c->width = width;
  c->height = height;
  c->time_base = {1, fps};
  c->framerate = {fps, 1};
  c->gop_size = fps;
  c->pix_fmt = codec_id == AV_CODEC_ID_PNG ? AV_PIX_FMT_RGB24 : AV_PIX_FMT_YUV420P;
  if (codec_id == AV_CODEC_ID_MPEG4) c->bit_rate = 400000;
  if (oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  check(avcodec_open2(c, codec, nullptr) >= 0, "open encoder");
  check(avcodec_parameters_from_context(st->codecpar, c) >= 0, "parameters");
  st->time_base = c->time_base;
  check(avio_open(&oc->pb, path.c_str(), AVIO_FLAG_WRITE) >= 0, "open file");
  check(avformat_write_header(oc, nullptr) >= 0, "header");

  AVFrame* rgb = av_frame_alloc();
  rgb->format = AV_PIX_FMT_RGB24;
  rgb->width = width;
  rgb->height = height;
  check(av_frame_get_buffer(rgb, 0) >= 0, "rgb frame");
  AVFrame* frame = av_frame_alloc();
  frame->format = c->pix_fmt;
  frame->width = width;
  frame->height = height;
  check(av_frame_get_buffer(frame, 0) >= 0, "frame");
  SwsContext* sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, c->pix_fmt,
                                   SWS_BILINEAR | SWS_ACCURATE_RND, nullptr, nullptr, nullptr);
  AVPacket* pkt = av_packet_alloc();
  auto drain = [&]() {
    while (avcodec_receive_packet(c, pkt) >= 0) {
      av_packet_rescale_ts(pkt, c->time_base, st->time_base);
      pkt->stream_index = st->index;
      check(av_interleaved_write_frame(oc, pkt) >= 0, "write");
    }
  };
  const int n = static_cast<int>(colours.size()) * fps;
  for (int i = 0; i < n; ++i) {
    const Rgb& col = colours[static_cast<size_t>(i / fps)];
    check(av_frame_make_writable(rgb) >= 0 && av_frame_make_writable(frame) >= 0, "writable");
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        for (int k = 0; k < 3; ++k) rgb->data[0][y * rgb->linesize[0] + x * 3 + k] = col[k];
      }
    }
    sws_scale(sws, rgb->data, rgb->linesize, 0, height, frame->data, frame->linesize);
    frame->pts = i;
    check(avcodec_send_frame(c, frame) >= 0, "encode");
    drain();
  }
  avcodec_send_frame(c, nullptr);
  drain();
  check(av_write_trailer(oc) >= 0, "trailer");
  av_packet_free(&pkt);
  sws_freeContext(sws);
  av_frame_free(&frame);
  av_frame_free(&rgb);
  avcodec_free_context(&c);
  avio_closep(&oc->pb);
  avformat_free_context(oc);
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace hearth::testing
