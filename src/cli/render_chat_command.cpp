// `hearth render-chat -m MODEL.gguf --input INPUTS.json [--template official|interleaved]`: the
// Gemma 4 prompt for a conversation, byte-exact, with nothing added.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/input.h"
#include "cli/model_flag.h"
#include "gguf/gguf.h"
#include "text/chat_template.h"

namespace hearth::cli {
namespace {

struct RenderChatOptions {
  std::string model_path;
  std::string input;
  std::string template_name = "official";
};

void RunRenderChat(const RenderChatOptions& opt) {
  text::ChatTemplate tmpl = text::ParseChatTemplate(opt.template_name);
  nlohmann::ordered_json inputs =
      nlohmann::ordered_json::parse(ReadInput(opt.input), nullptr, false);
  if (inputs.is_discarded()) {
    ThrowInvalidInput("'" + opt.input + "' is not valid JSON",
                      "give an object with messages, tools, add_generation_prompt, "
                      "enable_thinking, bos_token");
  }
  // A whole fixture file ({name, template, inputs, ...}) is accepted too. (Referenced, not
  // copied: copying a hostile, deeply nested value would recurse.)
  const nlohmann::ordered_json* chat = &inputs;
  if (inputs.is_object() && !inputs.contains("messages") && inputs.contains("inputs")) {
    chat = &inputs["inputs"];
  }
  // The model file must be a Gemma 4 GGUF: the prompt format is Gemma 4's.
  gguf::File model = gguf::File::Open(opt.model_path);
  auto tokenizer_model = model.GetString("tokenizer.ggml.model");
  if (!tokenizer_model || *tokenizer_model != "gemma4") {
    ThrowInvalidInput("'" + opt.model_path + "' is not a Gemma 4 model (tokenizer.ggml.model is '" +
                          std::string(tokenizer_model.value_or("")) + "')",
                      "use a Gemma 4 GGUF file");
  }
  std::string prompt = text::RenderChat(*chat, tmpl);
  std::cout.write(prompt.data(), static_cast<std::streamsize>(prompt.size()));
  std::cout.flush();
}

}  // namespace

void RegisterRenderChatCommand(CLI::App& app);
HEARTH_COMMAND(render_chat, RegisterRenderChatCommand);

void RegisterRenderChatCommand(CLI::App& app) {
  auto opt = std::make_shared<RenderChatOptions>();
  CLI::App* cmd = app.add_subcommand(
      "render-chat",
      "Write the Gemma 4 prompt for a conversation to stdout, byte-exact (nothing added). "
      "INPUTS.json holds {messages, tools, add_generation_prompt, enable_thinking, bos_token} "
      "with OpenAI-style messages");
  AddModelFlag(cmd, opt->model_path, "A Gemma 4 model (a vocab-only file works)");
  cmd->add_option("--input", opt->input, "The conversation as JSON (a file; - for stdin)")
      ->required();
  cmd->add_option("--template", opt->template_name,
                  "official (google-gemma-4-31B-it.jinja, default) or interleaved "
                  "(google-gemma-4-31B-it-interleaved.jinja)");
  cmd->callback([opt] {
    opt->model_path = ModelPath(opt->model_path);
    RunRenderChat(*opt);
  });
}

}  // namespace hearth::cli
