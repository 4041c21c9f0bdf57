// Ctrl-C while a command writes a model file. gguf::Writer writes FILE.tmp and renames it to FILE
// when done, so SIGINT's default action (end the process, exit status 130 in a shell) would leave
// FILE.tmp behind. While a RemoveTmpOnSigint is alive, SIGINT removes those temporary files
// (unlink is async-signal-safe) and then ends the process as SIGINT does.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace hearth::cli {

class RemoveTmpOnSigint {
 public:
  // `outputs`: the files being written (their ".tmp" siblings are removed); empty ones skipped.
  explicit RemoveTmpOnSigint(const std::string& output, const std::string& other = {},
                             const std::string& third = {}) {
    int n = 0;
    for (const std::string* p : {&output, &other, &third}) {
      const std::string tmp = p->empty() ? std::string() : *p + ".tmp";
      if (tmp.size() < sizeof paths_[0])
        std::snprintf(paths_[n++], sizeof paths_[0], "%s", tmp.c_str());
    }
    struct sigaction sa = {};
    sa.sa_handler = [](int sig) {
      for (const char* p : paths_) {
        if (p[0] != '\0') ::unlink(p);
      }
      ::signal(sig, SIG_DFL);
      ::raise(sig);
    };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~RemoveTmpOnSigint() {
    sigaction(SIGINT, &old_, nullptr);
    for (char* p : paths_) p[0] = '\0';
  }
  RemoveTmpOnSigint(const RemoveTmpOnSigint&) = delete;
  RemoveTmpOnSigint& operator=(const RemoveTmpOnSigint&) = delete;

 private:
  static inline char paths_[3][4096] = {};
  struct sigaction old_ = {};
};

}  // namespace hearth::cli
