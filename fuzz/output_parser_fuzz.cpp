// The incremental output parser on arbitrary text split at arbitrary points. Byte 0 picks the
// configuration, byte 1 seeds the chunk sizes, the rest is the model output. Checks: no crash;
// the streamed parser's final result equals a one-shot parse; complete call arguments of valid
// UTF-8 input are valid JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "text/output_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  using hearth::text::ParserConfig;
  ParserConfig config;
  const uint8_t flags = data[0];
  config.generation_prompt =
      (flags & 1) ? "<|turn>model\n" : "<|turn>model\n<|channel>thought\n<channel|>";
  if (flags & 2) config.tool_names = {"get_weather", "get", "get_time", "f"};
  config.tool_choice = (flags & 4) ? hearth::text::ToolChoice::kRequired
                                   : ((flags & 8) ? hearth::text::ToolChoice::kNone
                                                  : hearth::text::ToolChoice::kAuto);
  config.parallel_tool_calls = flags & 16;
  config.extract_reasoning = !(flags & 32);
  std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);

  hearth::text::OutputParser parser(config);
  // Chunks of 1..k bytes from a small LCG; long inputs get larger chunks so a run stays fast
  // (every Push re-parses the text so far).
  uint32_t state = data[1] * 2654435761u + 1;
  const size_t max_chunk = 1 + text.size() / 64 + (data[1] & 15);
  for (size_t pos = 0; pos < text.size();) {
    state = state * 1664525u + 1013904223u;
    size_t n = 1 + (state >> 16) % max_chunk;
    n = std::min(n, text.size() - pos);
    (void)parser.Push(text.substr(pos, n));
    pos += n;
  }
  hearth::text::ParsedOutput streamed = parser.Finish();
  hearth::text::ParsedOutput once = hearth::text::ParseOutput(text, config);
  if (streamed.content != once.content || streamed.reasoning != once.reasoning ||
      streamed.error != once.error || streamed.tool_calls.size() != once.tool_calls.size()) {
    std::abort();
  }
  bool valid_utf8 = true;
  try {
    (void)nlohmann::json(std::string(text)).dump();  // throws on invalid UTF-8
  } catch (const nlohmann::json::exception&) {
    valid_utf8 = false;
  }
  for (const auto& call : once.tool_calls) {
    if (call.complete && valid_utf8 && !nlohmann::json::accept(call.arguments)) std::abort();
  }
  return 0;
}
