// Terminal helpers for interactive commands (chat, and the assistant's chat later): a Ctrl-C flag
// set by a SIGINT handler, a line reader (GNU readline with line editing and history on a
// terminal, getline otherwise) and a printer that shows streamed thoughts dimmed. Header-only
// because src/cli builds only main.cpp, commands.cpp and *_command.cpp.
#pragma once

#include <readline/history.h>
#include <readline/readline.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include "base/display.h"

namespace hearth::cli {

// ---- Untrusted text on the terminal. Everything the model, the repository or a server wrote
// (answers, thoughts, tool calls and results, file names, diffs, commands) is printed through
// DisplaySafe (base/display.h): control characters, escape sequences, bidi overrides and invalid
// UTF-8 are shown as visible escapes, so they cannot hide or fake what the user reads.

// Columns of the terminal on `fd`, or 80 when it is no terminal.
inline size_t TerminalWidth(int fd = STDERR_FILENO) {
  struct winsize ws = {};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

constexpr std::string_view kWrapEnd = "\u21a9";    // ↩ ends a segment of a wrapped line
constexpr std::string_view kWrapStart = "\u21aa";  // ↪ starts its continuation

// `text` (already escaped) with every line longer than `width` columns cut into segments that
// fit, each but the last ending in ↩ and each but the first starting with ↪. Nothing is dropped:
// removing the markers and line breaks between segments gives the line back. Columns are counted
// as code points (a wide character may make a segment wrap early on the terminal; it is never
// hidden).
inline std::string WrapLines(std::string_view text, size_t width) {
  width = width < 8 ? 8 : width;
  std::string out;
  size_t col = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      out += c;
      col = 0;
      continue;
    }
    const bool starts_char = (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    if (starts_char && col == width - 1) {
      // One column left: is the rest of the line more than one character?
      size_t j = i + 1;
      while (j < text.size() && (static_cast<unsigned char>(text[j]) & 0xC0) == 0x80) ++j;
      if (j < text.size() && text[j] != '\n') {
        out += kWrapEnd;
        out += '\n';
        out += kWrapStart;
        col = 1;
      }
    }
    out += c;
    if (starts_char) ++col;
  }
  return out;
}

// How an approval question shows what it asks about: escaped, wrapped to the terminal, ending in
// a newline.
inline std::string ApprovalDetails(std::string_view details, size_t width) {
  std::string shown = WrapLines(DisplaySafe(details), width);
  if (!shown.ends_with('\n')) shown += '\n';
  return shown;
}
inline std::string ApprovalQuestion(std::string_view summary, size_t width) {
  return WrapLines("Allow " + DisplaySafe(summary, kOneLine) + "? [y/N] ", width);
}

// Set by SIGINT while a ScopedSigint is alive. During generation it is the cancel flag; at the
// prompt LineReader sees it.
inline std::atomic<bool> g_interrupted{false};

// Installs the SIGINT handler (without SA_RESTART, so that a Ctrl-C interrupts a blocking read or
// select) and restores the previous one on destruction.
class ScopedSigint {
 public:
  ScopedSigint() {
    struct sigaction sa = {};
    sa.sa_handler = [](int) { g_interrupted.store(true); };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~ScopedSigint() { sigaction(SIGINT, &old_, nullptr); }
  ScopedSigint(const ScopedSigint&) = delete;
  ScopedSigint& operator=(const ScopedSigint&) = delete;

 private:
  struct sigaction old_ = {};
};

constexpr const char* kDim = "\x1b[2m";
constexpr const char* kReset = "\x1b[0m";

// Reads one line: GNU readline (line editing, history) on a terminal, getline otherwise.
// nullopt at end of input or when the user asked to quit (Ctrl-C twice at the prompt).
class LineReader {
 public:
  explicit LineReader(bool tty) : tty_(tty) {
    if (tty_) {
      // Readline's own signal handlers would fight ours; its callback interface lets a Ctrl-C
      // interrupt select() so the prompt can react to it.
      rl_catch_signals = 0;
      rl_catch_sigwinch = 1;
    }
  }

  // `history`: keep the line in the history (not for answers to y/n questions).
  std::optional<std::string> Read(const std::string& prompt, bool history = true) {
    return tty_ ? ReadTty(prompt, history) : ReadPlain();
  }
  // Whether the last nullopt came from Ctrl-C (the command then exits 130), not end of input.
  bool interrupted() const { return interrupted_; }

 private:
  static void OnLine(char* line) {
    line_done_ = true;
    line_eof_ = line == nullptr;
    line_ = line ? line : "";
    std::free(line);
    rl_callback_handler_remove();
  }

  std::optional<std::string> ReadTty(const std::string& prompt, bool history) {
    line_done_ = false;
    int interrupts = 0;
    rl_callback_handler_install(prompt.c_str(), &LineReader::OnLine);
    while (!line_done_) {
      fd_set fds;
      FD_ZERO(&fds);
      FD_SET(fileno(rl_instream ? rl_instream : stdin), &fds);
      const int r = select(FD_SETSIZE, &fds, nullptr, nullptr, nullptr);
      if (r < 0 && errno == EINTR) {
        if (!g_interrupted.exchange(false)) continue;
        if (++interrupts >= 2) {
          interrupted_ = true;
          rl_callback_handler_remove();
          std::cout << "\n";
          return std::nullopt;
        }
        // First Ctrl-C: drop the line being typed and say how to quit.
        rl_replace_line("", 0);
        std::cout << "^C (Ctrl-C again or /exit to quit)\n";
        rl_on_new_line();
        rl_redisplay();
        continue;
      }
      if (r < 0) {
        rl_callback_handler_remove();
        return std::nullopt;
      }
      interrupts = 0;
      rl_callback_read_char();
    }
    if (line_eof_) {
      std::cout << "\n";
      return std::nullopt;
    }
    if (history && !line_.empty()) add_history(line_.c_str());
    return line_;
  }

  std::optional<std::string> ReadPlain() {
    std::string line;
    // A Ctrl-C while a reply was streaming ends a scripted session at the next line.
    const bool got = !g_interrupted.load() && std::getline(std::cin, line);
    if (!got || g_interrupted.load()) {
      interrupted_ = g_interrupted.load();
      return std::nullopt;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }

  bool tty_;
  bool interrupted_ = false;
  static inline bool line_done_ = false;
  static inline bool line_eof_ = false;
  static inline std::string line_;
};

// Streams one reply, escaped: thoughts dimmed (on a terminal) or between <think> markers, then the
// answer.
class ReplyPrinter {
 public:
  explicit ReplyPrinter(bool tty) : tty_(tty) {}
  void Reasoning(std::string_view text) {
    if (!in_thought_) {
      std::cout << (tty_ ? kDim : "<think>\n");
      in_thought_ = true;
    }
    std::cout << thought_.Push(text) << std::flush;
  }
  void Content(std::string_view text) {
    CloseThought();
    std::cout << answer_.Push(text) << std::flush;
    if (!text.empty()) mid_line_ = !text.ends_with('\n');
  }
  // Before other output (a tool call line) in the middle of a reply: ends the thought or the
  // unfinished line.
  void Break() {
    CloseThought();
    std::cout << answer_.Finish();
    if (mid_line_) std::cout << "\n";
    mid_line_ = false;
    std::cout << std::flush;
  }
  void End() {
    CloseThought();
    std::cout << answer_.Finish() << "\n" << std::flush;
  }

 private:
  void CloseThought() {
    if (!in_thought_) return;
    std::cout << thought_.Finish() << (tty_ ? kReset : "\n</think>") << "\n";
    in_thought_ = false;
  }
  bool tty_;
  bool in_thought_ = false;
  bool mid_line_ = false;
  // The model's text, escaped (a model can write terminal escape sequences too).
  DisplayStream thought_, answer_;
};

}  // namespace hearth::cli
