// The code-aware tokenizer shared by indexing and querying: identifiers are kept whole
// (lower-cased) and also split on '_', camelCase and letter/digit boundaries, so `parseHTTPHeader`
// matches "parse", "http", "header" and itself. Tokens are [a-z0-9_]+ only, which is what makes
// them safe to quote into FTS5 queries.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hearth::index {

// Appends the tokens of `text` to `out` (duplicates kept, in order).
void CodeTokens(std::string_view text, std::vector<std::string>& out);
std::vector<std::string> CodeTokens(std::string_view text);
// Space-joined tokens, the form stored in the FTS5 columns.
std::string TokenText(std::string_view text);
bool IsStopWord(std::string_view token);

}  // namespace hearth::index
