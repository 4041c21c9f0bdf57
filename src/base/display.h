// Showing untrusted text (model output, repository file names and contents, server replies) on a
// terminal or in a line-oriented listing without letting it act on the terminal or fake lines:
// control characters, terminal escape sequences, bidirectional overrides and invalid UTF-8 bytes
// become visible escapes ("\x1b", "\u202e", "\xff"). The one place this is decided; the CLI's
// printers, the repo map and the approval prompts all go through it.
//
//   std::cerr << "[tool] " << DisplaySafe(call.arguments, kOneLine) << "\n";
#pragma once

#include <string>
#include <string_view>

namespace hearth {

enum DisplayLines : bool { kOneLine = false, kKeepNewlines = true };

// `text` with every C0 control except tab (and newline when `lines` is kKeepNewlines), DEL, every
// C1 control (U+0080-U+009F), the bidi embedding/override/isolate characters (U+202A-U+202E,
// U+2066-U+2069) and every byte that is not part of valid UTF-8 replaced by an escape: "\xNN" for
// single bytes, "\uNNNN" for code points. Valid, harmless text is returned unchanged; backslashes
// are not doubled, so an escape cannot be told from the same characters typed literally.
std::string DisplaySafe(std::string_view text, DisplayLines lines = kKeepNewlines);

// DisplaySafe for text that arrives in pieces (a streamed answer): a UTF-8 sequence split between
// two pieces is held back until it is complete, not escaped byte by byte.
class DisplayStream {
 public:
  explicit DisplayStream(DisplayLines lines = kKeepNewlines) : lines_(lines) {}
  std::string Push(std::string_view piece);
  std::string Finish();  // whatever is held back, escaped

 private:
  DisplayLines lines_;
  std::string held_;
};

// `text` with every byte that is not part of valid UTF-8 replaced by U+FFFD, so that it can go
// into JSON (which must be UTF-8). Valid text is returned unchanged.
std::string ValidUtf8(std::string_view text);

// The length of the valid UTF-8 sequence starting at text[i], or 0 when the byte there does not
// start one (a stray continuation byte, an overlong form, a surrogate, beyond U+10FFFF, cut off).
size_t Utf8SequenceLength(std::string_view text, size_t i);

}  // namespace hearth
