// Constrained decoding to JSON: a compiled JSON schema (a useful subset) and an incremental
// acceptor — a pushdown automaton over output bytes — that says whether a piece of text can
// continue a valid output. ConstrainedDecoder uses it to mask tokens (sampler.h TokenFilter) so
// that the generated text is always a prefix of a valid value; the session stops right after a
// complete one.
//
//   auto c = std::make_shared<JsonConstraint>(JsonConstraint::ForSchema(schema_json));
//   engine::GenerateOptions opt;
//   opt.constraint = c;   // the output is now a JSON value that validates against the schema
//
// Two dialects: standard JSON, and Gemma 4's tool-call argument notation (spec §3.1.3/§3.2:
// unquoted keys, strings between <|"|> markers, no spaces), used to force a tool call.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampler.h"

namespace hearth::text {
class Tokenizer;
}

namespace hearth::engine {

enum class JsonDialect { kJson, kGemmaToolArgs };

// What the output must be. Immutable once built; shared by every acceptor that uses it.
class JsonConstraint {
 public:
  // Bits of SchemaNode::types.
  enum : uint8_t {
    kObject = 1,
    kArray = 2,
    kString = 4,
    kNumber = 8,
    kInteger = 16,
    kBoolean = 32,
    kNull = 64,
    kAnyType = 127,
  };
  struct Property {
    std::string name;
    std::string key;  // as it appears between the quotes (JSON-escaped) or unquoted (Gemma)
    int node = -1;
  };
  struct SchemaNode {
    uint8_t types = kAnyType;
    std::vector<std::string> literals;  // enum/const: the allowed values, serialised; empty: none
    bool has_enum = false;
    std::vector<Property> properties;  // at most 64
    uint64_t required = 0;             // bit i: properties[i] is required
    bool additional = true;            // keys other than `properties` allowed
    int additional_node = -1;          // their schema (-1: any value)
    int items = -1;                    // array items' schema (-1: any value)
  };
  // One way the output may start: `prefix` literally, then a value for `root` (-1: any value
  // of the root types).
  struct Alternative {
    std::string prefix;
    int root = -1;
  };

  // Any JSON object ({"type":"json_object"}, Ollama "json").
  static JsonConstraint AnyObject(JsonDialect dialect = JsonDialect::kJson);
  // A value valid against `schema`. Supported: type (one or a list), properties, required,
  // additionalProperties (bool or schema), items, enum, const; annotations (description, title,
  // default, examples, $schema, $id, $comment) are ignored. Anything else throws
  // Error(kInvalidInput) naming the keyword and its path — it is never silently ignored.
  static JsonConstraint ForSchema(const nlohmann::json& schema,
                                  JsonDialect dialect = JsonDialect::kJson);
  // Gemma tool-call arguments for one of `tools` (name, parameters schema or null): the output is
  // NAME followed by the arguments object (after a "<|tool_call>call:" the caller wrote). A tool
  // whose schema uses unsupported keywords gets "any object" arguments.
  static JsonConstraint ForToolCall(
      const std::vector<std::pair<std::string, nlohmann::json>>& tools);

  JsonDialect dialect() const { return dialect_; }
  const std::vector<SchemaNode>& nodes() const { return nodes_; }
  const std::vector<Alternative>& alternatives() const { return alternatives_; }
  const SchemaNode& node(int index) const;

 private:
  int Compile(const nlohmann::json& schema, const std::string& path);
  JsonDialect dialect_ = JsonDialect::kJson;
  std::vector<SchemaNode> nodes_;
  std::vector<Alternative> alternatives_;
};

// The incremental acceptor. Cheap to copy (a small stack), so candidates are tried on a copy.
class JsonAcceptor {
 public:
  // Limits that keep a model from looping where JSON allows repetition of nothing useful.
  static constexpr int kMaxWhitespaceRun = 24;  // consecutive whitespace bytes
  static constexpr int kMaxDepth = 64;          // nested objects/arrays
  static constexpr int kMaxNumberLength = 40;   // bytes of one number

  explicit JsonAcceptor(std::shared_ptr<const JsonConstraint> constraint);

  // Feeds one byte / a piece of text. On false the text cannot continue a valid output and the
  // acceptor is left in an unspecified state (try on a copy: CanAccept).
  bool Push(uint8_t byte);
  bool Push(std::string_view text);
  // Whether `text` would be accepted, without changing this acceptor.
  bool CanAccept(std::string_view text) const;

  // A whole value has been produced (end of output allowed here).
  bool complete() const;
  // More bytes could still extend the output (false once an object/array/string root is closed;
  // true while a root number could take more digits).
  bool can_continue() const { return !stack_.empty(); }
  // About how many bytes are still needed for a complete value (0 when complete). The session
  // uses it near max_tokens to steer towards closing the value: a byte on a shortest way to
  // completion lowers it by one.
  int MinBytesToComplete() const;

 private:
  enum class Kind : uint8_t { kValue, kObject, kArray, kString, kNumber, kLiteral, kPrefix };
  struct Frame {
    Kind kind = Kind::kValue;
    uint8_t state = 0;
    int node = -1;
    // kObject: which properties were written, and the one whose key/value is being written.
    uint64_t seen = 0;
    int current = -1;
    // String scanning (kString, object keys): escapes, \u digits, UTF-8 continuation bytes.
    uint8_t esc = 0;
    uint8_t utf8_left = 0;
    uint8_t utf8_lo = 0x80, utf8_hi = 0xBF;
    uint16_t code = 0;
    bool want_low = false;  // after a \u high surrogate
    std::string text;       // key, literal or number so far
    bool is_key = false;
  };
  bool Step(uint8_t c);
  bool StepNumber(Frame& f, uint8_t c);
  bool StepObject(Frame& f, uint8_t c, bool ws, bool gemma);
  bool StartValue(uint8_t c, int node);
  bool StringByte(Frame& f, uint8_t c, bool* closed);
  bool Whitespace(uint8_t c);
  bool KeyPrefixOk(const Frame& obj, const std::string& key, bool exact, int* prop) const;
  bool MoreKeysPossible(const Frame& obj) const;
  bool RequiredDone(const Frame& obj) const;
  const std::vector<std::string>& Literals(const Frame& f) const;
  static bool NumberTerminal(uint8_t state);
  int MinValue(int node) const;
  int RequiredCost(int node, uint64_t seen, int* count = nullptr) const;
  int KeyCost(const JsonConstraint::Property& p) const;

  std::shared_ptr<const JsonConstraint> c_;
  std::vector<Frame> stack_;
  int ws_run_ = 0;
  bool done_ = false;  // the root value is closed
};

// Every token's bytes and what it may be in constrained output, built once per tokenizer (the
// pass over 262k tokens is what the constrained sampler's quick test reads, kept small so it
// stays in cache).
class ConstraintVocabulary {
 public:
  enum Kind : uint8_t { kText, kForbidden, kEog, kGemmaQuote };
  explicit ConstraintVocabulary(const text::Tokenizer& tokenizer);

  size_t size() const { return kind_.size(); }
  Kind kind(int id) const { return static_cast<Kind>(kind_[static_cast<size_t>(id)]); }
  std::string_view Text(int id) const {
    const size_t i = static_cast<size_t>(id);
    return std::string_view(bytes_).substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
  }
  // First byte, second byte << 8, and bit 16 when there is a second byte.
  uint32_t lead(int id) const { return lead_[static_cast<size_t>(id)]; }

 private:
  std::string bytes_;              // every token's text, back to back
  std::vector<uint32_t> offsets_;  // token i: bytes_[offsets_[i], offsets_[i + 1])
  std::vector<uint8_t> kind_;
  std::vector<uint32_t> lead_;
};

// Constrained decoding of one output: every sampled token keeps the output a prefix of a value
// the constraint accepts (see GenerateOptions::constraint for the rules).
class ConstrainedDecoder {
 public:
  // `vocabulary` must outlive the decoder; `checks` counts the tokens tested.
  ConstrainedDecoder(std::shared_ptr<const JsonConstraint> constraint,
                     const ConstraintVocabulary& vocabulary, int64_t* checks);
  ~ConstrainedDecoder();
  ConstrainedDecoder(const ConstrainedDecoder&) = delete;  // the filter points at acceptor_
  ConstrainedDecoder& operator=(const ConstrainedDecoder&) = delete;

  // The next token among those the constraint allows, preferring those after which the value can
  // still be finished in `tokens_left` tokens (this one included). -1: no token can continue.
  int Sample(Sampler& sampler, std::span<const float> logits, int tokens_left);
  // Follows a sampled token that is not an end-of-generation token.
  void Accept(int token);
  // The value is whole and nothing may follow it.
  bool done() const { return acceptor_.complete() && !acceptor_.can_continue(); }

 private:
  class Filter;
  const ConstraintVocabulary& vocabulary_;
  JsonAcceptor acceptor_;
  std::unique_ptr<Filter> filter_;
};

}  // namespace hearth::engine
