// Parsing Gemma 4 model output into visible content, reasoning (the thought channel) and tool
// calls, with llama.cpp's semantics (spec ../shared/spec/gemma4-chat.md §3.5): the grammar of
// §3.5.1, anchored at the start, lenient at the end of input (partial text is reported, a
// possible delimiter prefix is held back), malformed calls dropped together with what follows.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hearth::text {

enum class ToolChoice { kNone, kAuto, kRequired };

struct ParserConfig {
  // The generation prompt exactly as rendered ("<|turn>model\n" with thinking on,
  // "<|turn>model\n<|channel>thought\n<channel|>" with thinking off). The parser reads
  // generation_prompt + model output.
  std::string generation_prompt = "<|turn>model\n";
  // Declared tool names, in declaration order. Empty: no tools, calls are plain content.
  std::vector<std::string> tool_names;
  ToolChoice tool_choice = ToolChoice::kAuto;
  bool parallel_tool_calls = true;
  // false: the thought block stays in content, markers included (llama.cpp reasoning_format
  // none).
  bool extract_reasoning = true;
};

struct ParsedToolCall {
  std::string name;
  // Compact JSON object text, keys in the order the model wrote them. While `complete` is false
  // it is a prefix of the final text (not valid JSON yet).
  std::string arguments;
  bool complete = false;
};

struct ParsedOutput {
  // The output does not match the format (only on a final parse; a partial parse that does not
  // match returns an empty result instead).
  bool error = false;
  std::string content;
  std::string reasoning;
  std::vector<ParsedToolCall> tool_calls;
};

// Parses generation_prompt + output in one go. `is_partial` marks a streaming snapshot.
ParsedOutput ParseOutput(std::string_view output, const ParserConfig& config,
                         bool is_partial = false);

// What a Push added: new content and reasoning text, and per tool call its index, its name
// (set when the call first appears) and the new suffix of its argument text.
struct ToolCallDelta {
  size_t index = 0;
  std::string name;
  std::string arguments;
};
struct ParseDelta {
  std::string content;
  std::string reasoning;
  std::vector<ToolCallDelta> tool_calls;
  bool empty() const { return content.empty() && reasoning.empty() && tool_calls.empty(); }
};

// Incremental parser fed the decoded text of each generated token. Every Push re-derives the
// result from the whole text so far (the grammar is anchored and lenient at the end, so each
// snapshot is exact), then reports only what grew. The deltas of all Pushes plus Finish
// concatenate to the final result, except where llama.cpp's rules drop a malformed call that
// was already partly streamed (then the final result has fewer calls than were announced).
class OutputParser {
 public:
  explicit OutputParser(ParserConfig config);

  ParseDelta Push(std::string_view piece);
  // The final parse (errors are reported here); also returns the last delta through `delta`
  // when it is not null.
  ParsedOutput Finish(ParseDelta* delta = nullptr);

  const ParsedOutput& current() const { return current_; }
  const std::string& text() const { return text_; }

 private:
  ParseDelta Update(const ParsedOutput& next);

  ParserConfig config_;
  std::string text_;
  ParsedOutput current_;
};

}  // namespace hearth::text
