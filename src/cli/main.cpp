// The `hearth` command: parses the command line, runs one subcommand, and turns every error into
// `hearth: error: <what went wrong> (<what to do>)` on stderr with the exit code of its class.
#include <cstdio>
#include <exception>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "base/display.h"
#include "base/error.h"
#include "base/version.h"
#include "cli/commands.h"
#include "cli/compat_flags.h"
#include "cli/exit_code.h"

namespace {

int PrintError(const std::string& text, int code) {
  std::fflush(stdout);
  // Messages can quote file names and text from the repository or a server: shown escaped.
  std::cerr << "hearth: error: " << hearth::DisplaySafe(text, hearth::kOneLine) << "\n";
  return code;
}

bool KnownCommand(const CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (sub->check_name(name)) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "hearth: a local, private coding assistant running Gemma 4 on your own machine.\n"
      "Nothing you give it leaves this computer.",
      "hearth"};
  app.set_version_flag(
      "--version", std::string("hearth ") + HEARTH_VERSION + " (commit " + HEARTH_GIT_COMMIT + ")");
  app.require_subcommand(1);
  app.fallthrough(false);
  app.footer(
      "Exit codes: 0 ok, 2 usage error, 3 invalid input, 4 I/O error, 5 internal error,\n"
      "6 out of resources. Run 'hearth COMMAND --help' for a command's options.");

  hearth::cli::RegisterAllCommands(app);

  // CLI11 would say "A subcommand is required" or "arguments were not expected"; users coming
  // from ollama/llama.cpp type a command name first, so name the word that was not understood.
  if (argc < 2) {
    return PrintError("a command is required (see hearth --help)",
                      static_cast<int>(hearth::ErrorClass::kUsage));
  }
  if (const std::string first = argv[1]; first == "help") {
    std::cout << app.help();
    return 0;
  } else if (!first.starts_with("-") && !KnownCommand(app, first)) {
    return PrintError("unknown command '" + first + "' (see hearth --help)",
                      static_cast<int>(hearth::ErrorClass::kUsage));
  }

  // llama.cpp's multi-letter short flags (-ngl 99) in hearth's spelling (cli/compat_flags.h).
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    if (const auto long_form = hearth::cli::LlamaCppSpelling(args[i]); !long_form.empty()) {
      args[i] = std::string(long_form);
    }
  }
  std::vector<char*> args_c;
  for (auto& a : args) args_c.push_back(a.data());
  argv = args_c.data();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where = "hearth";
    for (const CLI::App* sub : app.get_subcommands()) where += " " + sub->get_name();
    return PrintError(std::string(e.what()) + " (run '" + where + " --help' for usage)",
                      static_cast<int>(hearth::ErrorClass::kUsage));
  } catch (const hearth::cli::Interrupted&) {
    std::fflush(stdout);
    return hearth::cli::kInterruptedExit;
  } catch (const hearth::cli::ExitCode& e) {
    std::fflush(stdout);
    return e.code;
  } catch (const hearth::Error& e) {
    return PrintError(e.Describe(), e.exit_code());
  } catch (const std::bad_alloc&) {
    return PrintError("out of memory (close other programs or use a smaller model or context)",
                      static_cast<int>(hearth::ErrorClass::kResource));
  } catch (const std::exception& e) {
    return PrintError(std::string("internal error: ") + e.what() +
                          " (this is a bug in hearth; please report it with the command you ran)",
                      static_cast<int>(hearth::ErrorClass::kInternal));
  }
  return 0;
}
