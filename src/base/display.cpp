#include "base/display.h"

#include <cstdint>
#include <cstdio>

namespace hearth {

size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF) return 0;  // overlong
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;  // surrogates are not characters
  return n;
}

namespace {

// The code point of the valid sequence of `n` bytes at s[i].
uint32_t CodePoint(std::string_view s, size_t i, size_t n) {
  const auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(s[i + k])); };
  if (n == 1) return b(0);
  if (n == 2) return (b(0) & 0x1F) << 6 | (b(1) & 0x3F);
  if (n == 3) return (b(0) & 0x0F) << 12 | (b(1) & 0x3F) << 6 | (b(2) & 0x3F);
  return (b(0) & 0x07) << 18 | (b(1) & 0x3F) << 12 | (b(2) & 0x3F) << 6 | (b(3) & 0x3F);
}

bool Dangerous(uint32_t cp, DisplayLines lines) {
  if (cp == '\t') return false;
  if (cp == '\n') return lines == kOneLine;
  if (cp < 0x20 || cp == 0x7F) return true;       // C0 (ESC, CR, BS, BEL, ...) and DEL
  if (cp >= 0x80 && cp <= 0x9F) return true;      // C1 (CSI, OSC, ... as single characters)
  if (cp >= 0x202A && cp <= 0x202E) return true;  // bidi embeddings and overrides
  return cp >= 0x2066 && cp <= 0x2069;            // bidi isolates
}

void AppendHex(std::string& out, const char* format, uint32_t value) {
  char buf[12];
  std::snprintf(buf, sizeof buf, format, value);
  out += buf;
}

}  // namespace

std::string DisplaySafe(std::string_view text, DisplayLines lines) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      AppendHex(out, "\\x%02x", static_cast<uint8_t>(text[i]));
      ++i;
      continue;
    }
    const uint32_t cp = CodePoint(text, i, n);
    if (!Dangerous(cp, lines)) {
      out.append(text.substr(i, n));
    } else if (cp < 0x80) {
      AppendHex(out, "\\x%02x", cp);
    } else {
      AppendHex(out, "\\u%04x", cp);
    }
    i += n;
  }
  return out;
}

std::string DisplayStream::Push(std::string_view piece) {
  held_.append(piece);
  // Hold back a tail that is the start of a multi-byte sequence still missing bytes.
  size_t cut = held_.size();
  for (size_t back = 1; back <= 3 && back <= held_.size(); ++back) {
    const auto c = static_cast<uint8_t>(held_[held_.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (need > back) cut = held_.size() - back;
    break;
  }
  std::string out = DisplaySafe(std::string_view(held_).substr(0, cut), lines_);
  held_.erase(0, cut);
  return out;
}

std::string DisplayStream::Finish() {
  std::string out = DisplaySafe(held_, lines_);
  held_.clear();
  return out;
}

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace hearth
