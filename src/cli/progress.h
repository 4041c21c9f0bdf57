// A one-line progress display on stderr, shown only when stderr is a terminal.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace hearth::cli {

class ProgressLine {
 public:
  ProgressLine() : enabled_(::isatty(STDERR_FILENO) != 0) {}
  ~ProgressLine() { Finish(); }

  void Update(int done, int total, const std::string& what) {
    if (!enabled_) return;
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
  bool shown_ = false;
};

}  // namespace hearth::cli
