// RequestFramer (src/server/framing.h): the framing rules, each with a hand-written request and
// the exact request or refusal a worker must (not) see, fed whole and one byte at a time.
#include "server/framing.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hearth::server {
namespace {

constexpr FramingLimits kLimits{100, 200, 16, 64};

// One line per event: "H" head done, "C" head done + 100 Continue, "R<request>", "X<status>".
std::vector<std::string> Events(const std::string& data, bool byte_by_byte) {
  RequestFramer f(kLimits);
  std::vector<std::string> out;
  const auto drain = [&] {
    for (Frame e = f.Next(); e.kind != Frame::kNeedMore; e = f.Next()) {
      if (e.kind == Frame::kRequest) {
        out.push_back("R");
        out.back() += e.request;  // ("R" + request trips GCC 12's -Wrestrict)
        f.StartNext();
      } else if (e.kind == Frame::kReject) {
        out.push_back("X");
        out.back() += std::to_string(e.reject.status);
      } else {
        out.push_back(e.send_continue ? "C" : "H");
      }
    }
  };
  if (byte_by_byte) {
    for (char c : data) {
      f.Append(std::string(1, c));
      drain();
    }
  } else {
    f.Append(data);
    drain();
  }
  return out;
}

void ExpectFrames(const std::string& data, const std::vector<std::string>& want) {
  EXPECT_EQ(Events(data, false), want) << "whole: " << data;
  EXPECT_EQ(Events(data, true), want) << "byte by byte: " << data;
}

TEST(RequestFramer, GetWithoutBodyGetsNoContentLength) {
  ExpectFrames("GET /health HTTP/1.1\r\nHost: a\r\n\r\n",
               {"H", "RGET /health HTTP/1.1\r\nHost: a\r\n\r\n"});
}

TEST(RequestFramer, ContentLengthBodyIsPassedWithItsLength) {
  ExpectFrames("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET",
               {"H", "RPOST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"});
}

TEST(RequestFramer, ChunkedBodyIsDecodedAndRelabelled) {
  ExpectFrames(
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
      "3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
      {"C", "RPOST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde"});
}

TEST(RequestFramer, PipelinedRequestsAndLeadingEmptyLines) {
  ExpectFrames("\r\n\r\nGET /a HTTP/1.1\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
               {"H", "RGET /a HTTP/1.1\r\n\r\n", "H", "RGET /b HTTP/1.1\r\n\r\n"});
}

TEST(RequestFramer, SmugglingShapesAreRefused) {
  ExpectFrames("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
               {"X400"});
  ExpectFrames("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", {"X400"});
  ExpectFrames("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", {"X501"});
  ExpectFrames("GET / HTTP/1.1\r\nA: b\nB: c\r\n\r\n", {"X400"});  // bare LF
  ExpectFrames("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", {"X400"});  // folded line
  ExpectFrames("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", {"H", "X400"});
}

TEST(RequestFramer, LimitsAreEnforcedBeforeBuffering) {
  ExpectFrames("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", {"X413"});
  ExpectFrames("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", {"X413"});
  ExpectFrames("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", {"H", "X413"});
  ExpectFrames("GET / HTTP/1.1\r\nA: " + std::string(200, 'a'), {"X431"});
  ExpectFrames("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + std::string(20, 'e'),
               {"H", "X400"});
}

TEST(RequestFramer, NothingIsFramedAfterARefusal) {
  RequestFramer f(kLimits);
  f.Append("BAD\r\n\r\n");
  EXPECT_EQ(f.Next().kind, Frame::kReject);
  f.Append("GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(f.Next().kind, Frame::kNeedMore);
  EXPECT_FALSE(f.HasInput());
}

}  // namespace
}  // namespace hearth::server
