// `hearth index [PATH]`: build or update PATH/.hearth/index.db.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "base/display.h"
#include "cli/commands.h"
#include "index/index.h"

namespace hearth::cli {
namespace {

struct IndexCmdOptions {
  std::string path = ".";
  uint64_t max_file_size = 1 << 20;
  bool rebuild = false;
  bool json_progress = false;
  bool quiet = false;
  int threads = 0;
};

void RunIndex(const IndexCmdOptions& opt) {
  index::BuildOptions b;
  b.root = opt.path;
  b.max_file_size = opt.max_file_size;
  b.rebuild = opt.rebuild;
  b.threads = opt.threads;
  const bool tty = isatty(STDERR_FILENO) && !opt.quiet && !opt.json_progress;
  auto start = std::chrono::steady_clock::now();
  auto last_draw = start - std::chrono::seconds(1);
  if (opt.json_progress) {
    b.on_progress = [](size_t done, size_t total, const std::string& path) {
      nlohmann::json e = {{"event", "file"}, {"done", done}, {"total", total}, {"path", path}};
      // A file name that is not UTF-8 becomes U+FFFD rather than failing the dump.
      std::cout << e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    };
  } else if (tty) {
    b.on_progress = [&](size_t done, size_t total, const std::string& path) {
      auto now = std::chrono::steady_clock::now();
      if (done != total && now - last_draw < std::chrono::milliseconds(100)) return;
      last_draw = now;
      double secs = std::chrono::duration<double>(now - start).count();
      double rate = secs > 0 ? done / secs : 0;
      double eta = rate > 0 ? (total - done) / rate : 0;
      const int width = 24;
      int filled = total ? static_cast<int>(width * done / total) : width;
      std::string shown = DisplaySafe(path, kOneLine);
      if (shown.size() > 40) shown = "..." + shown.substr(shown.size() - 37);
      std::fprintf(stderr, "\r\033[K[%s%s] %zu/%zu %.0f files/s ETA %.0fs %s",
                   std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                   done, total, rate, eta, shown.c_str());
      if (done == total) std::fprintf(stderr, "\r\033[K");
    };
  }
  index::BuildStats s = index::BuildIndex(b);
  if (opt.json_progress) {
    nlohmann::json e = {{"event", "done"},
                        {"files_indexed", s.files_indexed},
                        {"files_unchanged", s.files_unchanged},
                        {"files_removed", s.files_removed},
                        {"skipped", s.skipped},
                        {"notes", s.notes},
                        {"chunks", s.chunks},
                        {"symbols", s.symbols},
                        {"seconds", s.seconds},
                        {"db_bytes", s.db_bytes}};
    std::cout << e.dump() << "\n";
    return;
  }
  if (opt.quiet) return;
  std::ostringstream out;
  out << "indexed " << s.files_indexed << " files, " << s.files_unchanged << " unchanged, "
      << s.files_removed << " removed; " << s.chunks << " chunks, " << s.symbols
      << " symbols in the index; " << std::fixed << std::setprecision(2) << s.seconds << " s, "
      << std::setprecision(1) << s.db_bytes / 1048576.0 << " MiB\n";
  if (!s.skipped.empty()) {
    out << "skipped:";
    for (const auto& [reason, n] : s.skipped) out << " " << reason << " " << n;
    out << "\n";
  }
  if (!s.notes.empty()) {
    out << "handled:";
    for (const auto& [note, n] : s.notes) out << " " << note << " " << n;
    out << "\n";
  }
  std::cout << out.str();
}

}  // namespace

void RegisterIndexCommand(CLI::App& app);
HEARTH_COMMAND(index, RegisterIndexCommand);

void RegisterIndexCommand(CLI::App& app) {
  auto opt = std::make_shared<IndexCmdOptions>();
  CLI::App* cmd = app.add_subcommand(
      "index",
      "Build or update the codebase index PATH/.hearth/index.db (default: the current directory).\n"
      "Honours .gitignore (nested), .git/info/exclude, the global excludes file and "
      ".hearthignore;\nskips binary, minified, generated and over-size files. Incremental: "
      "unchanged files are not re-parsed,\ndeleted ones are dropped. Safe to interrupt: an "
      "update is one transaction and a new\nindex appears only when complete.");
  cmd->add_option("path", opt->path, "The tree to index")->capture_default_str();
  cmd->add_option("--max-file-size", opt->max_file_size, "Skip files larger than this (bytes)")
      ->capture_default_str();
  cmd->add_flag("--rebuild", opt->rebuild,
                "Build a new index beside the old one and replace it when complete (recovers a "
                "corrupt or foreign index.db; killed midway, the old one stays)");
  cmd->add_flag("--json-progress", opt->json_progress,
                "Print one JSON event per file and a final summary event on stdout");
  cmd->add_flag("-q,--quiet", opt->quiet, "Print nothing on success");
  cmd->add_option("--threads", opt->threads,
                  "Parser threads (default: the CPUs this process may use, at most 32)");
  cmd->callback([opt] { RunIndex(*opt); });
}

}  // namespace hearth::cli
