// The Gemma 4 tokenizer, built from a GGUF file's tokenizer metadata (no weights needed).
//
// Encoding follows ../shared/spec/gemma4-chat.md §1: split at special-token strings (control
// tokens only when `parse_special`, user-defined ones always), replace ' ' by U+2581, cut into
// runs of '\n' and runs of anything else, BPE each run with merge ranks, map symbols to ids with
// byte fallback. Decoding reverses it; StreamDecoder does the same one token at a time without
// ever cutting a UTF-8 sequence in two.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::gguf {
class File;
}

namespace hearth::text {

using TokenId = int32_t;

// GGUF `tokenizer.ggml.token_type` values.
enum class TokenType : uint8_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

class Tokenizer {
 public:
  // Builds the tokenizer from `file`'s metadata; the tokenizer copies what it needs, so `file`
  // may be closed afterwards. Throws Error(kInvalidInput) naming the key when the metadata is
  // missing, inconsistent (array lengths, ids out of range, malformed merges) or not Gemma 4's.
  static Tokenizer FromGguf(const gguf::File& file);
  // Opens `path` (memory-mapped) and calls FromGguf.
  static Tokenizer Load(const std::string& path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Text → ids. `add_bos` prepends BOS; `parse_special` lets control-token strings written in
  // the text (e.g. "<turn|>") become their ids. User-defined tokens ("<|channel>", "<|\"|>", …)
  // are always matched. Invalid UTF-8 bytes are encoded as U+FFFD, as llama.cpp does.
  std::vector<TokenId> Encode(std::string_view text, bool add_bos = false,
                              bool parse_special = true) const;

  // Ids → text. Control tokens are written only with `render_special`; user-defined tokens
  // always. Throws Error(kInvalidInput) for an id outside the vocabulary.
  std::string Decode(std::span<const TokenId> ids, bool render_special = false) const;

  // The bytes Decode writes for one token (a byte token gives one raw byte, which may be part
  // of a multi-byte UTF-8 sequence). Throws for an id outside the vocabulary.
  std::string_view Piece(TokenId id, bool render_special = false) const;
  // The vocabulary string of a token (U+2581 for spaces, "<0x0A>" for byte tokens).
  std::string_view TokenText(TokenId id) const;
  TokenType Type(TokenId id) const;
  std::optional<TokenId> Find(std::string_view token_text) const;

  int32_t size() const;
  TokenId bos_id() const;
  TokenId eos_id() const;
  // End-of-generation set (spec §1.7): <eos>, <turn|>, <|tool_response>.
  bool IsEndOfGeneration(TokenId id) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Decodes a stream of ids into text pieces that are always whole UTF-8 sequences: bytes of a
// code point split across byte tokens are held back until the sequence is complete. The
// concatenation of every Push plus Finish equals Tokenizer::Decode of the same ids.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool render_special = false);
  std::string Push(TokenId id);
  // Whatever is still held back (an incomplete sequence at the end of the stream), raw.
  std::string Finish();

 private:
  const Tokenizer* tokenizer_;
  bool render_special_;
  std::string pending_;
};

}  // namespace hearth::text
