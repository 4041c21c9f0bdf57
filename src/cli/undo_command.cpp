// `hearth undo`: restores the files of the assistant's last change set from the edit journal.
#include <iostream>
#include <memory>
#include <string>

#include "agent/workspace.h"
#include "cli/assistant.h"
#include "cli/commands.h"

namespace hearth::cli {
namespace {

void RunUndo(const std::string& root, bool force) {
  agent::Workspace ws = root.empty() ? agent::Workspace::Open(std::filesystem::current_path())
                                     : agent::Workspace::AtRoot(root);
  PrintUndo(std::cout, agent::UndoLast(ws, {.force = force}), ws.root());
}

}  // namespace

void RegisterUndoCommand(CLI::App& app) {
  auto root = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "undo",
      "Restore the files the assistant changed in its last change set (one `hearth ask`),\n"
      "from the journal in .hearth/journal/. Works without git and after a crash; run it again\n"
      "to undo the change set before. Changes made by `run` commands are not journaled.\n"
      "A file you changed after the assistant wrote it is never overwritten: undo refuses\n"
      "(exit 4) and changes nothing, unless --force.");
  cmd->add_option("--root", *root,
                  "Workspace root (default: nearest directory upwards with .git or .hearth)");
  auto force = std::make_shared<bool>(false);
  cmd->add_flag("--force", *force,
                "Undo also files changed since the assistant wrote them, after saving your version "
                "of each as FILE.hearth-undo-saved");
  cmd->callback([root, force] { RunUndo(*root, *force); });
}
HEARTH_COMMAND(undo, RegisterUndoCommand);

}  // namespace hearth::cli
