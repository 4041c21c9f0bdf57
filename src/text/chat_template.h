// Gemma 4 chat prompt rendering, native (no Jinja engine): the official template
// (`google-gemma-4-31B-it.jinja`) and the interleaved one (`…-it-interleaved.jinja`), exactly as
// Hugging Face's Jinja2 renders them. Spec: ../shared/spec/gemma4-chat.md §2–§4.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace hearth::text {

enum class ChatTemplate {
  kOfficial,     // google-gemma-4-31B-it.jinja (default)
  kInterleaved,  // google-gemma-4-31B-it-interleaved.jinja
};

// "official" / "interleaved" (also the template file names). Throws Error(kUsage) otherwise.
ChatTemplate ParseChatTemplate(std::string_view name);

// Renders `inputs`, an object shaped like what apply_chat_template receives:
//   messages               OpenAI-style list (system/developer, user, assistant with content,
//                          reasoning / reasoning_content, tool_calls, tool_responses; tool with
//                          tool_call_id / name / content); content is a string or a part list
//   tools                  optional list of {type:"function", function:{name, description,
//                          parameters (JSON Schema), response}}
//   add_generation_prompt  bool, default false
//   enable_thinking        bool, default false
//   bos_token              default "<bos>"
// Key order matters for case-insensitive key sorting ties, hence ordered_json. Throws
// Error(kInvalidInput) naming the field for unknown roles and malformed messages or tools.
std::string RenderChat(const nlohmann::ordered_json& inputs,
                       ChatTemplate chat_template = ChatTemplate::kOfficial);

// Python's repr() of a float, as the template prints numbers (shortest round trip, `1e-07`,
// `3.0`). Exposed for tests.
std::string PythonFloatRepr(double value);

}  // namespace hearth::text
