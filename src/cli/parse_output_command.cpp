// `hearth parse-output --input RAW.txt [--thinking] [--tools TOOLS.json]`: split raw Gemma 4
// output into content, reasoning and tool calls, printed as one JSON object.
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/input.h"
#include "engine/chat.h"
#include "text/output_parser.h"

namespace hearth::cli {
namespace {

struct ParseOutputOptions {
  std::string input;
  std::string tools;
  bool thinking = false;
};

// Tool names from an OpenAI-style tools list ([{type, function:{name}}] or [{name}]), or an
// object holding one under "tools".
std::vector<std::string> ToolNames(const std::string& path) {
  const nlohmann::json parsed = nlohmann::json::parse(ReadInput(path), nullptr, false);
  // Referenced, not copied: copying a hostile, deeply nested value would recurse.
  const nlohmann::json& doc =
      parsed.is_object() && parsed.contains("tools") ? parsed["tools"] : parsed;
  if (!doc.is_array()) {
    ThrowInvalidInput("'" + path + "' is not a JSON list of tools",
                      "give [{\"type\":\"function\",\"function\":{\"name\":...}}, ...]");
  }
  std::vector<std::string> names;
  for (size_t i = 0; i < doc.size(); ++i) {
    const nlohmann::json& t = doc[i];
    const nlohmann::json* name = nullptr;
    if (t.is_object() && t.contains("function") && t["function"].is_object() &&
        t["function"].contains("name")) {
      name = &t["function"]["name"];
    } else if (t.is_object() && t.contains("name")) {
      name = &t["name"];
    }
    if (name == nullptr || !name->is_string()) {
      ThrowInvalidInput("'" + path + "': tool " + std::to_string(i) + " has no function.name",
                        "give [{\"type\":\"function\",\"function\":{\"name\":...}}, ...]");
    }
    names.push_back(name->get<std::string>());
  }
  return names;
}

void RunParseOutput(const ParseOutputOptions& opt) {
  text::ParserConfig config;
  config.generation_prompt = engine::GenerationPrompt(opt.thinking);
  if (!opt.tools.empty()) config.tool_names = ToolNames(opt.tools);
  std::string raw = ReadInput(opt.input);
  text::ParsedOutput out = text::ParseOutput(raw, config);
  if (out.error) {
    ThrowInvalidInput("'" + opt.input + "' does not match the Gemma 4 output format",
                      "with --thinking the output may start with a <|channel>thought block; "
                      "check that --thinking matches how the prompt was rendered");
  }
  nlohmann::ordered_json result;
  result["content"] = out.content;
  result["reasoning"] = out.reasoning;
  result["tool_calls"] = nlohmann::ordered_json::array();
  for (const auto& call : out.tool_calls) {
    nlohmann::ordered_json c;
    c["name"] = call.name;
    nlohmann::ordered_json args =
        call.complete ? nlohmann::ordered_json::parse(call.arguments, nullptr, false)
                      : nlohmann::ordered_json();
    c["arguments"] = args.is_discarded() ? nlohmann::ordered_json() : args;
    if (!call.complete) c["arguments_text"] = call.arguments;
    result["tool_calls"].push_back(std::move(c));
  }
  std::cout << result.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
            << "\n";
}

}  // namespace

void RegisterParseOutputCommand(CLI::App& app);
HEARTH_COMMAND(parse_output, RegisterParseOutputCommand);

void RegisterParseOutputCommand(CLI::App& app) {
  auto opt = std::make_shared<ParseOutputOptions>();
  CLI::App* cmd = app.add_subcommand(
      "parse-output",
      "Split raw Gemma 4 output (the text after the generation prompt, stop token excluded) "
      "into content, reasoning and tool calls; prints {\"content\",\"reasoning\",\"tool_calls\"}. "
      "A truncated call is printed with \"arguments\": null and its \"arguments_text\"");
  cmd->add_option("--input", opt->input, "The raw model output (a file; - for stdin)")->required();
  cmd->add_flag("--thinking", opt->thinking,
                "The prompt was rendered with thinking on (generation prompt '<|turn>model\\n'); "
                "without it the empty thought block of the thinking-off prompt is assumed");
  cmd->add_option("--tools", opt->tools,
                  "The declared tools (JSON list); only their names are accepted as calls");
  cmd->callback([opt] { RunParseOutput(*opt); });
}

}  // namespace hearth::cli
