// Recursive-descent implementation of the Gemma 4 output grammar (spec §3.5.1) with llama.cpp's
// matching semantics (§3.5.2): every matcher answers Ok, Fail, or End — "the input ran out while
// this could still match", which stops the whole parse and keeps what was recognised so far.
#include "text/output_parser.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>

namespace hearth::text {
namespace {

enum class St { kOk, kFail, kEnd };

constexpr std::string_view kQ = "<|\"|>";
constexpr std::string_view kTurnModel = "<|turn>model\n";
constexpr std::string_view kChannelOpen = "<|channel>";
constexpr std::string_view kChannelClose = "<channel|>";
constexpr std::string_view kToolCallOpen = "<|tool_call>";
constexpr std::string_view kToolCallClose = "<tool_call|>";

bool IsWs(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// JSON string escaping as nlohmann::json writes it (non-ASCII bytes pass through unchanged).
void AppendEscaped(std::string_view s, std::string& out) {
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
}

class Parser {
 public:
  Parser(std::string_view text, const ParserConfig& config) : s_(text), config_(config) {}

  ParsedOutput Run() {
    St start = Lit(kTurnModel);
    if (start == St::kEnd) return std::move(out_);
    const bool tools = !config_.tool_names.empty() && config_.tool_choice != ToolChoice::kNone;
    if (!tools) {
      RunChat();
    } else if (config_.tool_choice == ToolChoice::kRequired) {
      RunRequired();
    } else {
      RunTools();
    }
    return std::move(out_);
  }

 private:
  // ---- primitives ----
  std::string_view Rest() const { return s_.substr(pos_); }

  // Ok (consumed) / End (the rest is a proper prefix of `lit`, including empty) / Fail.
  St Lit(std::string_view lit) {
    std::string_view rest = Rest();
    if (rest.size() >= lit.size()) {
      if (rest.substr(0, lit.size()) == lit) {
        pos_ += lit.size();
        return St::kOk;
      }
      return St::kFail;
    }
    return lit.substr(0, rest.size()) == rest ? St::kEnd : St::kFail;
  }
  St Peek(std::string_view lit) {
    size_t save = pos_;
    St r = Lit(lit);
    pos_ = save;
    return r;
  }
  void Ws() {
    while (pos_ < s_.size() && IsWs(s_[pos_])) ++pos_;
  }
  // UNTIL(delims): the text up to the first delimiter (not consumed). Returns Ok when a whole
  // delimiter follows, End when the input ran out or its rest is a proper delimiter prefix.
  St Until(std::initializer_list<std::string_view> delims, std::string_view* text) {
    size_t i = pos_;
    for (; i < s_.size(); ++i) {
      bool candidate = false;
      for (std::string_view d : delims) candidate |= s_[i] == d[0];
      if (!candidate) continue;
      std::string_view rest = s_.substr(i);
      for (std::string_view d : delims) {
        if (rest.substr(0, d.size()) == d) {
          *text = s_.substr(pos_, i - pos_);
          pos_ = i;
          return St::kOk;
        }
        if (rest.size() < d.size() && d.substr(0, rest.size()) == rest) {
          *text = s_.substr(pos_, i - pos_);
          pos_ = i;
          return St::kEnd;
        }
      }
    }
    *text = s_.substr(pos_, i - pos_);
    pos_ = i;
    return St::kEnd;
  }

  // ---- messages ----
  // THOUGHT := &"<|channel>" ("<|channel>" !"thought")* "<|channel>thought" WS REASONING
  //            "<channel|>"  /  !"<|channel>"
  St Thought() {
    size_t start = pos_;
    St p = Peek(kChannelOpen);
    if (p == St::kFail) return St::kOk;  // no thought block here
    if (p == St::kEnd) return St::kEnd;
    while (true) {
      size_t save = pos_;
      St a = Lit(kChannelOpen);
      if (a != St::kOk) {
        pos_ = save;
        if (a == St::kEnd) return St::kEnd;
        break;
      }
      St t = Peek("thought");
      if (t == St::kOk) {
        pos_ = save;
        break;
      }
      if (t == St::kEnd) return St::kEnd;
    }
    St h = Lit("<|channel>thought");
    if (h != St::kOk) {
      if (h == St::kFail) pos_ = start;
      return h;
    }
    Ws();
    std::string_view reasoning;
    St r = Until({kChannelClose}, &reasoning);
    if (r == St::kOk) pos_ += kChannelClose.size();
    if (config_.extract_reasoning) {
      out_.reasoning.append(reasoning);
    } else {
      out_.content.append(s_.substr(start, pos_ - start));
    }
    return r;
  }

  // MESSAGE := THOUGHT CONTENT
  St Message(bool tools) {
    St t = Thought();
    if (t != St::kOk) return t;
    std::string_view content;
    St c = tools ? Until({kChannelOpen, kChannelClose, kToolCallOpen}, &content)
                 : Until({kChannelOpen, kChannelClose}, &content);
    out_.content.append(content);
    return c == St::kOk ? St::kOk : St::kEnd;
  }

  // MESSAGE*; returns End when the input ran out, else the number of messages via `count`.
  St Messages(bool tools, int* count) {
    *count = 0;
    while (true) {
      size_t before = pos_;
      St m = Message(tools);
      if (m == St::kEnd) return St::kEnd;
      if (m == St::kFail || pos_ == before) {
        pos_ = before;
        return St::kOk;
      }
      ++*count;
    }
  }

  void RunChat() {
    int count = 0;
    if (Messages(false, &count) == St::kEnd) return;
    if (count == 0 && pos_ < s_.size()) out_.error = true;
  }

  void RunTools() {
    int count = 0;
    if (Messages(true, &count) == St::kEnd) return;
    std::string_view skipped;
    if (Until({kToolCallOpen}, &skipped) == St::kEnd) return;
    Calls();
  }

  void RunRequired() {
    St t = Thought();
    if (t == St::kEnd) return;
    if (t == St::kFail) {
      out_.error = pos_ < s_.size();
      return;
    }
    int calls = 0;
    if (Calls(&calls) == St::kEnd) return;
    if (calls == 0 && pos_ < s_.size()) out_.error = true;
  }

  // ---- tool calls ----
  St Calls(int* parsed = nullptr) {
    const int max = config_.parallel_tool_calls ? -1 : 1;
    int count = 0;
    while (max < 0 || count < max) {
      St c = Call();
      if (c == St::kEnd) {
        if (parsed) *parsed = count + 1;
        return St::kEnd;
      }
      if (c == St::kFail) break;
      ++count;
    }
    if (parsed) *parsed = count;
    return St::kOk;
  }

  // CALL := "<|tool_call>call:" NAME &"{" DICT "<tool_call|>"
  St Call() {
    size_t start = pos_;
    St open = Lit(kToolCallOpen);
    if (open == St::kOk) open = Lit("call:");
    if (open != St::kOk) {
      pos_ = start;
      return open;
    }
    const std::string* name = nullptr;
    bool ran_out = false;
    for (const std::string& candidate : config_.tool_names) {
      size_t save = pos_;
      St n = Lit(candidate);
      if (n == St::kEnd) ran_out = true;
      if (n != St::kOk) continue;
      St brace = Peek("{");
      if (brace == St::kOk) {
        name = &candidate;
        break;
      }
      if (brace == St::kEnd) ran_out = true;
      pos_ = save;
    }
    if (name == nullptr) {
      pos_ = start;
      return ran_out ? St::kEnd : St::kFail;
    }
    out_.tool_calls.push_back({*name, "", false});
    St d = Dict(out_.tool_calls.back().arguments);
    if (d == St::kEnd) return St::kEnd;
    if (d == St::kFail) {
      out_.tool_calls.pop_back();
      pos_ = start;
      return St::kFail;
    }
    out_.tool_calls.back().complete = true;
    St close = Lit(kToolCallClose);
    if (close == St::kFail) {
      out_.tool_calls.pop_back();
      pos_ = start;
    }
    return close;
  }

  // DICT := "{" WS ( "}" / PAIR ( "," WS PAIR )* WS "}" )
  St Dict(std::string& j) {
    St o = Lit("{");
    if (o != St::kOk) return o;
    j += '{';
    Ws();
    St c = Lit("}");
    if (c == St::kOk) {
      j += '}';
      return St::kOk;
    }
    if (c == St::kEnd) return St::kEnd;
    while (true) {
      St p = Pair(j);
      if (p != St::kOk) return p;
      St comma = Lit(",");
      if (comma == St::kEnd) return St::kEnd;
      if (comma == St::kFail) break;
      j += ',';
      Ws();
    }
    Ws();
    St close = Lit("}");
    if (close == St::kOk) j += '}';
    return close;
  }

  // PAIR := KEY ":" WS VALUE, KEY = one or more characters other than ':' and '}'.
  St Pair(std::string& j) {
    size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != ':' && s_[pos_] != '}') ++pos_;
    std::string_view key = s_.substr(start, pos_ - start);
    if (pos_ == s_.size()) {
      if (!key.empty()) {
        j += '"';
        AppendEscaped(key, j);
      }
      return St::kEnd;
    }
    if (key.empty() || s_[pos_] != ':') return St::kFail;
    ++pos_;
    j += '"';
    AppendEscaped(key, j);
    j += "\":";
    Ws();
    return Value(j);
  }

  // ARRAY := "[" WS ( "]" / VALUE ( "," WS VALUE )* WS "]" )
  St Array(std::string& j) {
    St o = Lit("[");
    if (o != St::kOk) return o;
    j += '[';
    Ws();
    St c = Lit("]");
    if (c == St::kOk) {
      j += ']';
      return St::kOk;
    }
    if (c == St::kEnd) return St::kEnd;
    while (true) {
      St v = Value(j);
      if (v != St::kOk) return v;
      St comma = Lit(",");
      if (comma == St::kEnd) return St::kEnd;
      if (comma == St::kFail) break;
      j += ',';
      Ws();
    }
    Ws();
    St close = Lit("]");
    if (close == St::kOk) j += ']';
    return close;
  }

  St Value(std::string& j) {
    if (pos_ >= s_.size()) return St::kEnd;
    // Nesting is bounded so hostile output cannot exhaust the stack; no real call nests this
    // deep, and such a call is treated as malformed.
    if (depth_ >= kMaxDepth) return St::kFail;
    ++depth_;
    St r = ValueAt(j);
    --depth_;
    return r;
  }

  St ValueAt(std::string& j) {
    char c = s_[pos_];
    if (c == '<') return String(j);
    if (c == '{') return Dict(j);
    if (c == '[') return Array(j);
    if (c == '-' || IsDigit(c)) return Number(j);
    if (c == 't') return Word("true", j);
    if (c == 'f') return Word("false", j);
    if (c == 'n') return Word("null", j);
    return St::kFail;
  }

  // STRING := Q UNTIL(Q) Q; shows '"' as soon as the opening Q starts.
  St String(std::string& j) {
    St o = Lit(kQ);
    if (o == St::kFail) return St::kFail;
    j += '"';
    if (o == St::kEnd) return St::kEnd;
    std::string_view text;
    St u = Until({kQ}, &text);
    AppendEscaped(text, j);
    if (u != St::kOk) return St::kEnd;
    pos_ += kQ.size();
    j += '"';
    return St::kOk;
  }

  St Word(std::string_view word, std::string& j) {
    std::string_view rest = Rest();
    St w = Lit(word);
    if (w == St::kOk) j += word;
    if (w == St::kEnd) j += rest;
    return w;
  }

  // NUMBER := "-"? ("0" / [1-9][0-9]*) ("." [0-9]+)? ([eE] [+-]? [0-9]+)?
  //           !([0-9] / "." / [eE+-]); copied verbatim.
  St Number(std::string& j) {
    size_t start = pos_;
    auto partial = [&] {
      j.append(s_.substr(start, pos_ - start));
      return St::kEnd;
    };
    auto at_end = [&] { return pos_ >= s_.size(); };
    if (s_[pos_] == '-') ++pos_;
    if (at_end()) return partial();
    if (s_[pos_] == '0') {
      ++pos_;
    } else if (IsDigit(s_[pos_])) {
      while (!at_end() && IsDigit(s_[pos_])) ++pos_;
    } else {
      return St::kFail;
    }
    if (at_end()) return partial();
    if (s_[pos_] == '.') {
      ++pos_;
      if (at_end()) return partial();
      if (!IsDigit(s_[pos_])) return St::kFail;
      while (!at_end() && IsDigit(s_[pos_])) ++pos_;
      if (at_end()) return partial();
    }
    if (s_[pos_] == 'e' || s_[pos_] == 'E') {
      ++pos_;
      if (at_end()) return partial();
      if (s_[pos_] == '+' || s_[pos_] == '-') ++pos_;
      if (at_end()) return partial();
      if (!IsDigit(s_[pos_])) return St::kFail;
      while (!at_end() && IsDigit(s_[pos_])) ++pos_;
      if (at_end()) return partial();
    }
    char next = s_[pos_];
    if (IsDigit(next) || next == '.' || next == 'e' || next == 'E' || next == '+' ||
        next == '-') {
      return St::kFail;
    }
    // JSON's grammar allows any magnitude, but a number beyond double's range ("1e400") cannot
    // be read back by nlohmann::json, the agent or most clients: the call is malformed rather
    // than passed on with arguments nobody can parse. (Underflow to 0 is fine: it reads back.)
    // strtod, not from_chars, because from_chars also refuses underflow; hearth never changes
    // the C locale, so '.' is the decimal point.
    const std::string literal(s_.substr(start, pos_ - start));
    if (std::isinf(std::strtod(literal.c_str(), nullptr))) return St::kFail;
    j.append(literal);
    return St::kOk;
  }

  static constexpr int kMaxDepth = 256;
  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
  const ParserConfig& config_;
  ParsedOutput out_;
};

// `next` grew from `prev`: the suffix, or nothing when it did not (then nothing is emitted).
std::string Grown(const std::string& prev, const std::string& next) {
  if (next.size() > prev.size() && next.compare(0, prev.size(), prev) == 0) {
    return next.substr(prev.size());
  }
  return {};
}

}  // namespace

ParsedOutput ParseOutput(std::string_view output, const ParserConfig& config, bool is_partial) {
  std::string text = config.generation_prompt;
  text.append(output);
  ParsedOutput result = Parser(text, config).Run();
  if (result.error && is_partial) return ParsedOutput{};
  return result;
}

OutputParser::OutputParser(ParserConfig config) : config_(std::move(config)) {}

ParseDelta OutputParser::Update(const ParsedOutput& next) {
  ParseDelta delta;
  delta.content = Grown(current_.content, next.content);
  delta.reasoning = Grown(current_.reasoning, next.reasoning);
  for (size_t i = 0; i < next.tool_calls.size(); ++i) {
    const ParsedToolCall& call = next.tool_calls[i];
    if (i >= current_.tool_calls.size()) {
      delta.tool_calls.push_back({i, call.name, call.arguments});
    } else if (std::string grown = Grown(current_.tool_calls[i].arguments, call.arguments);
               !grown.empty()) {
      delta.tool_calls.push_back({i, "", std::move(grown)});
    }
  }
  // Keep what was already streamed when a snapshot shrinks (a call llama.cpp's rules dropped
  // after it was announced); the final result still reports the truth.
  if (next.content.size() >= current_.content.size()) current_.content = next.content;
  if (next.reasoning.size() >= current_.reasoning.size()) current_.reasoning = next.reasoning;
  for (size_t i = 0; i < next.tool_calls.size(); ++i) {
    if (i >= current_.tool_calls.size()) {
      current_.tool_calls.push_back(next.tool_calls[i]);
    } else if (next.tool_calls[i].arguments.size() >= current_.tool_calls[i].arguments.size()) {
      current_.tool_calls[i] = next.tool_calls[i];
    }
  }
  current_.error = next.error;
  return delta;
}

ParseDelta OutputParser::Push(std::string_view piece) {
  text_.append(piece);
  ParsedOutput next = ParseOutput(text_, config_, true);
  return Update(next);
}

ParsedOutput OutputParser::Finish(ParseDelta* delta) {
  ParsedOutput final_result = ParseOutput(text_, config_, false);
  ParseDelta d = Update(final_result);
  if (delta != nullptr) *delta = std::move(d);
  current_ = final_result;
  return final_result;
}

}  // namespace hearth::text
