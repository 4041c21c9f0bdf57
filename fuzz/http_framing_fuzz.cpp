// Fuzzes the HTTP/1.1 request framing of `hearth serve` (src/server/framing.h): any bytes, cut
// into any pieces, must frame to the same requests and refusals as the same bytes in one piece,
// never crash, never hand on a body over the limit, and never pass on a Transfer-Encoding or a
// Content-Length that disagrees with the body (the ways requests get smuggled).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "server/framing.h"

namespace {

using hearth::server::Frame;
using hearth::server::FramingLimits;
using hearth::server::RequestFramer;

// Small limits, so that fuzzing reaches every limit's edge.
constexpr FramingLimits kLimits{4096, 1024, 64, 256};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

void CheckRequest(const std::string& r) {
  const size_t end = r.find("\r\n\r\n");
  if (end == std::string::npos) std::abort();
  const std::string head = Lower(std::string_view(r).substr(0, end + 2));
  const size_t body = r.size() - end - 4;
  if (body > kLimits.max_body) std::abort();
  if (head.find("\r\ntransfer-encoding:") != std::string::npos) std::abort();
  if (head.find("\r\nexpect:") != std::string::npos) std::abort();
  const size_t cl = head.find("\r\ncontent-length:");
  if (cl == std::string::npos) {
    if (body != 0) std::abort();
  } else {
    if (head.find("\r\ncontent-length:", cl + 1) != std::string::npos) std::abort();
    const size_t eol = head.find("\r\n", cl + 2);
    if (std::stoull(head.substr(cl + 17, eol - cl - 17)) != body) std::abort();
  }
}

// Feeds `data` in pieces whose sizes come from `cuts` (cycled; 0 = everything at once) and
// returns what came out, one string per event.
std::vector<std::string> FrameAll(std::string_view data, std::string_view cuts) {
  RequestFramer framer(kLimits);
  std::vector<std::string> events;
  size_t at = 0;
  size_t turn = 0;
  bool failed = false;
  while (at < data.size()) {
    size_t n = cuts.empty() ? data.size() : static_cast<uint8_t>(cuts[turn++ % cuts.size()]) + 1;
    n = std::min(n, data.size() - at);
    framer.Append(data.substr(at, n));
    at += n;
    for (Frame f = framer.Next(); f.kind != Frame::kNeedMore; f = framer.Next()) {
      if (failed) std::abort();  // nothing after a refusal
      if (f.kind == Frame::kRequest) {
        CheckRequest(f.request);
        events.push_back("R" + f.request);
        framer.StartNext();
      } else if (f.kind == Frame::kReject) {
        if (f.reject.status < 400 || f.reject.status > 599 || f.reject.message.empty()) {
          std::abort();
        }
        events.push_back("X" + std::to_string(f.reject.status));
        failed = true;
      } else if (f.kind == Frame::kHeadDone) {
        events.push_back(f.send_continue ? "C" : "H");
      }
    }
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // The first byte says how many of the following bytes are piece sizes.
  const size_t n_cuts = std::min<size_t>(data[0] % 8, size - 1);
  const std::string_view cuts(reinterpret_cast<const char*>(data + 1), n_cuts);
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1 + n_cuts), size - 1 - n_cuts);
  if (FrameAll(bytes, "") != FrameAll(bytes, cuts)) std::abort();
  return 0;
}
