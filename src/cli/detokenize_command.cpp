// `hearth detokenize -m MODEL.gguf IDS...`: the text of a list of token ids.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/model_flag.h"
#include "text/tokenizer.h"

namespace hearth::cli {
namespace {

struct DetokenizeOptions {
  std::string model_path;
  std::vector<std::string> ids;
  bool hide_special = false;
};

// Accepts "1 2 3", "1,2,3" or separate arguments.
std::vector<text::TokenId> ParseIds(const std::vector<std::string>& args) {
  std::vector<text::TokenId> ids;
  for (const std::string& arg : args) {
    size_t i = 0;
    while (i < arg.size()) {
      if (arg[i] == ' ' || arg[i] == ',' || arg[i] == '\t' || arg[i] == '\n') {
        ++i;
        continue;
      }
      size_t end = i;
      while (end < arg.size() && arg[end] != ' ' && arg[end] != ',' && arg[end] != '\t' &&
             arg[end] != '\n') {
        ++end;
      }
      std::string word = arg.substr(i, end - i);
      bool digits = !word.empty() && word.size() <= 10 &&
                    word.find_first_not_of("0123456789") == std::string::npos;
      long long value = digits ? std::stoll(word) : -1;
      if (!digits || value > 0x7fffffff) {
        ThrowUsage("'" + word + "' is not a token id", "give non-negative integers, e.g. 2 9259");
      }
      ids.push_back(static_cast<text::TokenId>(value));
      i = end;
    }
  }
  return ids;
}

void RunDetokenize(const DetokenizeOptions& opt) {
  std::vector<text::TokenId> ids = ParseIds(opt.ids);
  text::Tokenizer tokenizer = text::Tokenizer::Load(opt.model_path);
  std::cout << tokenizer.Decode(ids, !opt.hide_special) << std::flush;
}

}  // namespace

void RegisterDetokenizeCommand(CLI::App& app);
HEARTH_COMMAND(detokenize, RegisterDetokenizeCommand);

void RegisterDetokenizeCommand(CLI::App& app) {
  auto opt = std::make_shared<DetokenizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "detokenize",
      "Print the text of token ids exactly (no newline is added); control tokens such as "
      "<|turn> are written out unless --hide-special");
  AddModelFlag(cmd, opt->model_path, "A Gemma 4 model (a vocab-only file works)");
  cmd->add_flag("--hide-special", opt->hide_special,
                "Leave out control tokens (<bos>, <|turn>, <turn|>, ...) as a chat display would");
  cmd->add_option("IDS", opt->ids, "Token ids (separate arguments, or one space/comma list)")
      ->required();
  cmd->callback([opt] {
    opt->model_path = ModelPath(opt->model_path);
    RunDetokenize(*opt);
  });
}

}  // namespace hearth::cli
