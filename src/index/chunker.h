// Splitting one file into chunks and tags with tree-sitter. Chunks: one per function / method
// (with its leading comments and decorators), a skeleton per class (its text with method bodies
// elided), line windows for the code between definitions and for files without a grammar; long
// bodies are split, tiny neighbours merged. Tags: definitions and references from the grammar's
// tags query.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::index {

struct Chunk {
  int start_line = 0, end_line = 0;  // 1-based, inclusive
  std::string kind;                  // function, method, class, skeleton, block, text
  std::string symbol;                // the defined name(s), "" for blocks and text windows
  std::string content;
};

struct Tag {
  std::string name, kind;  // kind: function, method, class, call, type, ...
  bool definition = false;
  int line = 0;            // 1-based line of the name
  std::string text;        // that source line, trimmed (signature for definitions)
};

struct ParsedFile {
  std::string language;  // "" when unknown (plain text)
  bool parsed = false;   // a tree-sitter grammar was used
  std::vector<Chunk> chunks;
  std::vector<Tag> tags;
};

// Language id from the path's extension, or for extensionless files from a `#!` line in `head`.
// Ids: c cpp python javascript typescript tsx go rust java ruby php c_sharp bash, and grammarless
// ones (kotlin scala perl lua objc markdown ...), or "" for unknown text.
std::string DetectLanguage(std::string_view path, std::string_view head);
bool HasGrammar(std::string_view language);
// The 13 grammar language ids hearth carries.
std::vector<std::string> GrammarLanguages();

// Limits of a chunk, in lines. Chunks longer than kMaxChunkLines are split into windows of
// kSplitLines; neighbours shorter than kTinyLines are merged up to kMergeLines.
inline constexpr int kMaxChunkLines = 150;
inline constexpr int kSplitLines = 100;
inline constexpr int kTinyLines = 6;
inline constexpr int kMergeLines = 40;
inline constexpr int kWindowLines = 50;

// Not thread-safe: one per thread (it owns a tree-sitter parser).
class Chunker {
 public:
  Chunker();
  ~Chunker();
  Chunker(const Chunker&) = delete;
  Chunker& operator=(const Chunker&) = delete;

  // `content` must be valid UTF-8 (the indexer replaces bad bytes first).
  ParsedFile Parse(std::string_view path, std::string_view content);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::index
