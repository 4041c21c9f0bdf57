// A guard for JSON from untrusted sources (model output, server replies, request bodies): how
// deeply it nests, found by one linear scan without building anything, so that a document nested
// 100,000 levels deep is refused before a recursive reader or writer can run out of stack.
//
//   if (JsonDeeperThan(text, kMaxJsonDepth)) refuse();
#pragma once

#include <string_view>

namespace hearth {

// Nesting that hearth accepts in JSON it did not write itself. Tool arguments need a few levels;
// chat requests and replies a dozen.
inline constexpr int kMaxJsonDepth = 64;

// True when `text` opens more than `max_depth` arrays/objects inside each other (brackets inside
// strings do not count). Malformed text is not judged otherwise; the parser still is.
bool JsonDeeperThan(std::string_view text, int max_depth);

}  // namespace hearth
