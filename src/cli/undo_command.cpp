// `hearth undo`: restores the files of the assistant's last change set from the edit journal.
#include <iostream>
#include <memory>
#include <string>

#include "agent/workspace.h"
#include "cli/assistant.h"
#include "cli/commands.h"

namespace hearth::cli {
namespace {

void RunUndo(const std::string& root) {
  agent::Workspace ws = root.empty() ? agent::Workspace::Open(std::filesystem::current_path())
                                     : agent::Workspace::AtRoot(root);
  PrintUndo(std::cout, agent::UndoLast(ws), ws.root());
}

}  // namespace

void RegisterUndoCommand(CLI::App& app) {
  auto root = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "undo",
      "Restore the files the assistant changed in its last change set (one `hearth ask`),\n"
      "from the journal in .hearth/journal/. Works without git and after a crash; run it again\n"
      "to undo the change set before. Changes made by `run` commands are not journaled.");
  cmd->add_option("--root", *root,
                  "Workspace root (default: nearest directory upwards with .git or .hearth)");
  cmd->callback([root] { RunUndo(*root); });
}
HEARTH_COMMAND(undo, RegisterUndoCommand);

}  // namespace hearth::cli
