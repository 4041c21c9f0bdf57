// The state machine of framing.h. Every length is checked before it is used, and nothing beyond
// the limits is ever buffered: a body's size is counted against max_body before its bytes arrive.
#include "server/framing.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>
#include <utility>

namespace hearth::server {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

bool IsTokenChar(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", ch) != nullptr;
}

Reject TooLarge(size_t max_body) {
  return Reject{413,
                "the request body is too large (the server's limit is " + std::to_string(max_body) +
                    " bytes; see --max-body)",
                "body_too_large"};
}

// A Content-Length value: digits, or a list of the same digits ("5, 5"). Sets *too_big instead
// of overflowing.
bool ParseContentLength(std::string_view v, uint64_t* out, bool* too_big) {
  std::optional<uint64_t> value;
  while (true) {
    const size_t comma = v.find(',');
    const std::string_view item = Trim(v.substr(0, comma));
    if (item.empty()) {
      return false;
    }
    uint64_t n = 0;
    for (const char ch : item) {
      if (ch < '0' || ch > '9') {
        return false;
      }
      if (n > (UINT64_MAX - 9) / 10) {
        *too_big = true;
        n = UINT64_MAX;
        break;
      }
      n = n * 10 + static_cast<uint64_t>(ch - '0');
    }
    if (value && *value != n) {
      return false;
    }
    value = n;
    if (comma == std::string_view::npos) {
      break;
    }
    v.remove_prefix(comma + 1);
  }
  *out = *value;
  return true;
}

}  // namespace

// Parses the head (request line and headers, without the blank line). The request line and the
// header syntax are checked again by httplib; this reads the framing (Content-Length,
// Transfer-Encoding, Expect) and refuses what would make the framing ambiguous.
bool RequestFramer::ParseHead(std::string_view head, size_t max_body, Head* out, Reject* error) {
  const auto bad = [&](std::string what) {
    *error = Reject{400, std::move(what), "bad_request"};
    return false;
  };
  // httplib splits lines at a bare LF where this reads CRLF: a head where the two could disagree
  // (a header hidden inside another's value) is refused.
  for (size_t i = 0; i < head.size(); ++i) {
    const char ch = head[i];
    if (ch == '\0' || (ch == '\r' && (i + 1 == head.size() || head[i + 1] != '\n')) ||
        (ch == '\n' && (i == 0 || head[i - 1] != '\r'))) {
      return bad("malformed HTTP request: a stray CR, LF or NUL in the headers");
    }
  }
  size_t eol = head.find("\r\n");
  const std::string_view request_line = head.substr(0, eol);
  if (std::count(request_line.begin(), request_line.end(), ' ') != 2) {
    return bad("malformed HTTP request line");
  }
  out->rewritten.assign(request_line);
  out->rewritten += "\r\n";
  std::optional<uint64_t> length;
  bool length_too_big = false;
  std::string transfer_encoding;
  while (eol != std::string_view::npos) {
    head.remove_prefix(eol + 2);
    eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    if (line.empty()) {
      return bad("malformed HTTP header: an empty line inside the headers");
    }
    if (line.front() == ' ' || line.front() == '\t') {
      return bad("malformed HTTP header: folded header lines are not accepted");
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 ||
        !std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon),
                     IsTokenChar)) {
      return bad("malformed HTTP header line");
    }
    const std::string name = Lower(line.substr(0, colon));
    const std::string_view value = Trim(line.substr(colon + 1));
    if (name == "content-length") {
      uint64_t n = 0;
      if (!ParseContentLength(value, &n, &length_too_big) || (length && *length != n)) {
        return bad("malformed or conflicting Content-Length");
      }
      length = n;
      continue;
    }
    if (name == "transfer-encoding") {
      if (!transfer_encoding.empty()) {
        transfer_encoding += ",";
      }
      transfer_encoding += Lower(value);
      continue;
    }
    if (name == "expect") {
      // The listener answers "100 Continue" itself once the head has passed its checks.
      out->expect_continue = Lower(value) == "100-continue";
      continue;
    }
    out->rewritten.append(line);
    out->rewritten += "\r\n";
  }
  if (!transfer_encoding.empty()) {
    // Both framings at once is how requests get smuggled past proxies: refused (RFC 9112 §6.1).
    if (length) {
      return bad("a request may not carry both Transfer-Encoding and Content-Length");
    }
    if (Trim(transfer_encoding) != "chunked") {
      *error =
          Reject{501, "unsupported Transfer-Encoding '" + transfer_encoding + "' (only chunked)",
                 "unsupported_transfer_encoding"};
      return false;
    }
    out->chunked = true;
  } else if (length) {
    out->has_length = true;
    out->length = *length;
  }
  if (length_too_big || (length && *length > max_body)) {
    *error = TooLarge(max_body);
    return false;
  }
  return true;
}

void RequestFramer::Append(std::string_view bytes) {
  if (phase_ != Phase::kFailed) {
    in_.append(bytes);
  }
}

bool RequestFramer::ReadingBody() const {
  return phase_ == Phase::kBody || phase_ == Phase::kChunkSize || phase_ == Phase::kChunkData ||
         phase_ == Phase::kChunkEnd || phase_ == Phase::kTrailer;
}

void RequestFramer::StartNext() {
  if (phase_ == Phase::kHeld) {
    phase_ = Phase::kHead;
    scanned_ = 0;
  }
}

void RequestFramer::Discard() {
  std::string().swap(in_);
  std::string().swap(body_);
}

Frame RequestFramer::Fail(Reject r) {
  phase_ = Phase::kFailed;
  Discard();
  Frame f;
  f.kind = Frame::kReject;
  f.reject = std::move(r);
  return f;
}

Frame RequestFramer::Complete() {
  Frame f;
  f.kind = Frame::kRequest;
  f.request = std::move(head_.rewritten);
  if (head_.has_length || head_.chunked || !body_.empty()) {
    f.request += "Content-Length: " + std::to_string(body_.size()) + "\r\n";
  }
  f.request += "\r\n";
  f.request += body_;
  std::string().swap(body_);
  head_ = Head();
  phase_ = Phase::kHeld;
  return f;
}

// Looks for the end of the head; when it is there, parses it and moves on to the body.
Frame RequestFramer::HeadStep() {
  // Empty lines before a request line are ignored (RFC 9112 §2.2). Looked for on every call, not
  // only on a request's first bytes: a CRLF split across two reads must frame as one would.
  size_t skip = 0;
  while (skip + 1 < in_.size() && in_[skip] == '\r' && in_[skip + 1] == '\n') {
    skip += 2;
  }
  in_.erase(0, skip);
  scanned_ = scanned_ > skip ? scanned_ - skip : 0;
  const size_t end = in_.find("\r\n\r\n", scanned_ >= 3 ? scanned_ - 3 : 0);
  if (end == std::string::npos || end + 4 > limits_.max_header_bytes) {
    if (in_.size() > limits_.max_header_bytes) {
      return Fail({431,
                   "the request headers are too large (limit " +
                       std::to_string(limits_.max_header_bytes) + " bytes)",
                   "headers_too_large"});
    }
    scanned_ = in_.size();
    return Frame{};
  }
  Head h;
  Reject error;
  const bool ok = ParseHead(std::string_view(in_).substr(0, end), limits_.max_body, &h, &error);
  in_.erase(0, end + 4);
  scanned_ = 0;
  if (!ok) {
    return Fail(std::move(error));
  }
  head_ = std::move(h);
  body_.clear();
  phase_ = head_.chunked ? Phase::kChunkSize : Phase::kBody;
  Frame f;
  f.kind = Frame::kHeadDone;
  f.send_continue = head_.expect_continue && (head_.chunked || head_.length > 0);
  return f;
}

Frame RequestFramer::ChunkSizeStep(size_t eol) {
  std::string_view line(in_.data(), eol);
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  uint64_t size = 0;
  size_t digits = 0;
  bool too_big = false;
  for (; digits < line.size() && std::isxdigit(static_cast<unsigned char>(line[digits]));
       ++digits) {
    if (size > (UINT64_MAX >> 4)) {
      too_big = true;
    }
    const char ch = static_cast<char>(std::tolower(static_cast<unsigned char>(line[digits])));
    size = (size << 4) | static_cast<uint64_t>(ch <= '9' ? ch - '0' : ch - 'a' + 10);
  }
  const std::string_view rest = line.substr(digits);
  if (digits == 0 ||
      (!rest.empty() && rest.front() != ';' && rest.front() != ' ' && rest.front() != '\t')) {
    return Fail({400, "malformed chunk-size line in a chunked request body", "bad_request"});
  }
  in_.erase(0, eol + 1);
  if (size == 0) {
    phase_ = Phase::kTrailer;
    trailer_bytes_ = 0;
    return Next();
  }
  // Counted against the limit before the data arrives: nothing beyond it is ever buffered.
  if (too_big || size > limits_.max_body - body_.size()) {
    return Fail(TooLarge(limits_.max_body));
  }
  chunk_left_ = size;
  phase_ = Phase::kChunkData;
  return Next();
}

// Consumes `in_` as far as it goes, one event at a time.
Frame RequestFramer::Next() {
  while (true) {
    switch (phase_) {
      case Phase::kHead:
        return HeadStep();
      case Phase::kBody: {
        const size_t n =
            static_cast<size_t>(std::min<uint64_t>(head_.length - body_.size(), in_.size()));
        body_.append(in_, 0, n);
        in_.erase(0, n);
        if (body_.size() < head_.length) {
          return Frame{};
        }
        return Complete();
      }
      case Phase::kChunkSize: {
        const size_t eol = in_.find('\n');
        if ((eol == std::string::npos ? in_.size() : eol) > limits_.max_chunk_line) {
          return Fail({400, "a chunk-size line of the request body is too long", "bad_request"});
        }
        if (eol == std::string::npos) {
          return Frame{};
        }
        return ChunkSizeStep(eol);
      }
      case Phase::kChunkData: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_left_, in_.size()));
        body_.append(in_, 0, n);
        in_.erase(0, n);
        chunk_left_ -= n;
        if (chunk_left_ > 0) {
          return Frame{};
        }
        phase_ = Phase::kChunkEnd;
        break;
      }
      case Phase::kChunkEnd: {
        if (in_.empty() || (in_[0] == '\r' && in_.size() < 2)) {
          return Frame{};
        }
        const size_t n = in_[0] == '\n' ? 1 : in_.compare(0, 2, "\r\n") == 0 ? 2 : 0;
        if (n == 0) {
          return Fail({400, "a chunk of the request body is longer than its size", "bad_request"});
        }
        in_.erase(0, n);
        phase_ = Phase::kChunkSize;
        break;
      }
      case Phase::kTrailer: {
        const size_t eol = in_.find('\n');
        const size_t seen = eol == std::string::npos ? in_.size() : eol + 1;
        if (trailer_bytes_ + seen > limits_.max_trailer_bytes) {
          return Fail(
              {431, "the trailer of the chunked request body is too large", "headers_too_large"});
        }
        if (eol == std::string::npos) {
          return Frame{};
        }
        const bool last = eol == 0 || (eol == 1 && in_[0] == '\r');
        trailer_bytes_ += seen;
        in_.erase(0, seen);  // trailer fields are not passed on
        if (last) {
          return Complete();
        }
        break;
      }
      case Phase::kHeld:
      case Phase::kFailed:
        return Frame{};
    }
  }
}

}  // namespace hearth::server
