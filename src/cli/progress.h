// Progress on stderr: a line redrawn in place when stderr is a terminal; otherwise (a log, a CI
// job) a plain line at every quarter, so that a long run is never silent.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>

namespace hearth::cli {

class ProgressLine {
 public:
  // `label`: what the plain lines say is progressing ("quantize").
  explicit ProgressLine(std::string label = "progress")
      : enabled_(::isatty(STDERR_FILENO) != 0), label_(std::move(label)) {}
  ~ProgressLine() { Finish(); }

  void Update(int done, int total, const std::string& what) {
    if (!enabled_) {
      const int pct = total > 0 ? static_cast<int>(100LL * done / total) : 0;
      if (pct < next_pct_) return;
      std::fprintf(stderr, "hearth: %s: %d/%d tensors (%d%%)\n", label_.c_str(), done, total, pct);
      std::fflush(stderr);
      while (next_pct_ <= pct) next_pct_ += 25;
      return;
    }
    std::fprintf(stderr, "\r\033[K[%d/%d] %s", done, total, what.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void Finish() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }

 private:
  bool enabled_;
  std::string label_;
  int next_pct_ = 25;
  bool shown_ = false;
};

}  // namespace hearth::cli
