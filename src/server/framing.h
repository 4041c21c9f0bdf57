// HTTP/1.1 request framing for the listener: where one request ends and the next begins, over
// bytes that arrive in any pieces. No sockets and no clocks here, so the rules that decide what a
// hostile client can make the server buffer or smuggle are one pure state machine that the
// listener drives and that a fuzzer can drive too (fuzz/http_framing_fuzz.cpp). Internal to
// src/server.
//
//   RequestFramer f(limits);
//   f.Append(bytes_from_the_socket);
//   for (Frame e = f.Next(); e.kind != Frame::kNeedMore; e = f.Next()) { ...per kind... }
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::server {

// An answer the listener gives itself (the request never reaches a worker).
struct Reject {
  int status = 400;
  std::string message;
  std::string code;
};

struct FramingLimits {
  size_t max_body = 8u << 20;           // decoded body bytes; more gets 413
  size_t max_header_bytes = 64u << 10;  // request line + headers; more gets 431
  size_t max_chunk_line = 4096;         // one chunk-size line (with extensions)
  size_t max_trailer_bytes = 16u << 10;
};

struct Frame {
  enum Kind {
    kNeedMore,  // everything buffered is consumed; Append more
    kHeadDone,  // the head passed its checks; a body (if any) is next. `send_continue`: the
                // client waits for "100 Continue" before sending it
    kRequest,   // `request` is complete: request line and headers (Transfer-Encoding and
                // Expect removed; a Content-Length equal to the decoded body whenever there is a
                // body), blank line, body. Next() returns kNeedMore until StartNext()
    kReject,    // `reject` says why; the framer takes no more requests
  };
  Kind kind = kNeedMore;
  bool send_continue = false;
  std::string request;
  Reject reject;
};

class RequestFramer {
 public:
  explicit RequestFramer(FramingLimits limits) : limits_(limits) {}

  void Append(std::string_view bytes);
  Frame Next();
  // After kRequest has been answered: frame the next request from what is already buffered (a
  // pipelined request) and whatever is appended later.
  void StartNext();
  // After kReject: drop what is buffered (the connection is only drained from now on).
  void Discard();

  bool InHead() const { return phase_ == Phase::kHead; }
  bool ReadingBody() const;
  bool HasInput() const { return !in_.empty(); }
  size_t BodyBytes() const { return body_.size(); }

 private:
  enum class Phase { kHead, kBody, kChunkSize, kChunkData, kChunkEnd, kTrailer, kHeld, kFailed };
  struct Head {
    std::string rewritten;  // request line and the kept header lines, each ending in CRLF
    bool chunked = false;
    bool has_length = false;
    uint64_t length = 0;
    bool expect_continue = false;
  };
  Frame Fail(Reject r);
  Frame Complete();
  Frame HeadStep();
  Frame ChunkSizeStep(size_t eol);
  static bool ParseHead(std::string_view head, size_t max_body, Head* out, Reject* error);

  FramingLimits limits_;
  Phase phase_ = Phase::kHead;
  std::string in_;      // received and not consumed
  size_t scanned_ = 0;  // bytes of `in_` already searched for the end of the head
  Head head_;
  std::string body_;  // decoded
  uint64_t chunk_left_ = 0;
  size_t trailer_bytes_ = 0;
};

}  // namespace hearth::server
