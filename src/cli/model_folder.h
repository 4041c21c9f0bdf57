// Deleting from the model folder, shared by `hearth rm` and `hearth serve`'s /api/delete.
#pragma once

#include <string>

namespace hearth::cli {

// Deletes the model NAME (as `hearth models` shows it: a short name or a file name) from the
// model folder `dir` and returns the path deleted; never anything outside that folder.
// Error(kUsage) when there is no such model (or it is in Ollama's store). In models_command.cpp.
std::string DeleteModel(const std::string& name, const std::string& dir);

}  // namespace hearth::cli
