// `hearth tokenize -m MODEL.gguf [--bos] [--no-special] (--file PATH | TEXT)`: the token ids of a
// text, separated by single spaces on one line. Other tools check hearth's tokenizer through
// this exact form.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/input.h"
#include "cli/model_flag.h"
#include "text/tokenizer.h"

namespace hearth::cli {
namespace {

struct TokenizeOptions {
  std::string model_path;
  std::string file;
  std::string text;
  bool bos = false;
  bool no_special = false;
};

void RunTokenize(const TokenizeOptions& opt, bool have_text) {
  if (have_text == !opt.file.empty()) {
    ThrowUsage("give either TEXT or --file PATH (exactly one)",
               "e.g. hearth tokenize -m model.gguf 'Hello world'");
  }
  const std::string text = have_text ? opt.text : ReadInput(opt.file);
  text::Tokenizer tokenizer = text::Tokenizer::Load(opt.model_path);
  std::vector<text::TokenId> ids = tokenizer.Encode(text, opt.bos, !opt.no_special);
  std::string line;
  line.reserve(ids.size() * 7);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) line.push_back(' ');
    line.append(std::to_string(ids[i]));
  }
  line.push_back('\n');
  std::cout << line << std::flush;
}

}  // namespace

void RegisterTokenizeCommand(CLI::App& app);
HEARTH_COMMAND(tokenize, RegisterTokenizeCommand);

void RegisterTokenizeCommand(CLI::App& app) {
  auto opt = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Print the token ids of a text (one line, separated by spaces), using the tokenizer stored "
      "in a Gemma 4 GGUF file");
  AddModelFlag(cmd, opt->model_path, "A Gemma 4 model (a vocab-only file works)");
  cmd->add_flag("--bos", opt->bos, "Prepend the beginning-of-sequence token (<bos>, id 2)");
  cmd->add_flag("--no-special", opt->no_special,
                "Treat control-token strings written in the text (<|turn>, <turn|>, <bos>, ...) "
                "as plain text; user-defined ones (<|channel>, <|tool_call>, <|\"|>, ...) are "
                "always matched");
  cmd->add_option("--file", opt->file,
                  "Read the text from this file (bytes as they are); - for stdin");
  auto* text_opt = cmd->add_option("TEXT", opt->text, "The text to tokenize");
  cmd->callback([opt, text_opt] {
    opt->model_path = ModelPath(opt->model_path);
    RunTokenize(*opt, text_opt->count() > 0);
  });
}

}  // namespace hearth::cli
