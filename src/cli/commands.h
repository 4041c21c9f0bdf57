// Each layer that offers commands registers them here; main.cpp wires them into one `hearth` app.
// A command exists only when it is implemented: no placeholders.
#pragma once

#include <CLI/CLI.hpp>

namespace hearth::cli {

void RegisterInfoCommand(CLI::App& app);

}  // namespace hearth::cli
