// `hearth pull NAME|URL`: downloads a Gemma 4 GGUF into the model folder (resumable, verified).
// Besides a user-configured remote backend, this is the only command that uses the network.
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "agent/pull.h"
#include "base/error.h"
#include "cli/commands.h"
#include "cli/terminal.h"

namespace hearth::cli {
namespace {

struct PullCliOptions {
  std::string target;
  std::string dir;
  std::string sha256;
  uint64_t size = 0;
  long connect_timeout = 10;
  bool quiet = false;
  bool no_draft = false;
};

std::string Human(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

std::string Duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  }
  return buf;
}

// A progress bar on stderr when it is a terminal: bytes, percentage, rate and ETA, redrawn at
// most five times a second. Silent otherwise (logs and pipes get the final line only).
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled && ::isatty(STDERR_FILENO) != 0) {}
  ~ProgressBar() { Finish(); }

  void Update(uint64_t done, uint64_t total) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!started_) {
      started_ = true;
      start_ = now;
      start_bytes_ = done;
    }
    if (shown_ && now - last_ < std::chrono::milliseconds(200) && done != total) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0.2 ? static_cast<double>(done - start_bytes_) / secs : 0;
    std::string line;
    if (total > 0) {
      const double frac = static_cast<double>(done) / static_cast<double>(total);
      const int width = 30;
      const int fill = static_cast<int>(frac * width);
      line = "[" + std::string(fill, '#') + std::string(width - fill, ' ') + "] ";
      char pct[16];
      std::snprintf(pct, sizeof pct, "%5.1f%% ", frac * 100);
      line += pct + Human(static_cast<double>(done)) + " / " + Human(static_cast<double>(total));
    } else {
      line = Human(static_cast<double>(done));
    }
    if (rate > 0) {
      line += "  " + Human(rate) + "/s";
      if (total > done) line += "  ETA " + Duration(static_cast<double>(total - done) / rate);
    }
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void Finish() {
    if (shown_) std::fprintf(stderr, "\n");
    shown_ = false;
  }

 private:
  bool enabled_;
  bool started_ = false;
  bool shown_ = false;
  uint64_t start_bytes_ = 0;
  std::chrono::steady_clock::time_point start_, last_;
};

// Downloads `entry` with a progress bar and messages; `retry` is the command that resumes it.
agent::PullResult PullOne(const agent::CatalogEntry& entry, const PullCliOptions& o,
                          const std::string& retry) {
  agent::PullOptions opt;
  opt.dir = o.dir.empty() ? agent::DefaultModelDir() : o.dir;
  opt.connect_timeout_seconds = o.connect_timeout;
  ProgressBar bar(!o.quiet);
  opt.progress = [&bar](uint64_t done, uint64_t total) { bar.Update(done, total); };
  if (!o.quiet) std::cerr << "hearth: pulling " << entry.url << "\n";
  // Ctrl-C stops the download (the .part file stays for resuming) and exits 130.
  const ScopedSigint sigint;
  opt.cancel = &g_interrupted;
  agent::PullResult r;
  try {
    r = agent::Pull(entry, opt);
  } catch (const Error&) {
    bar.Finish();
    if (!g_interrupted.load()) throw;
    std::cerr << "hearth: interrupted; `" << retry << "` again resumes\n";
    throw Interrupted{};
  }
  bar.Finish();
  if (!o.quiet) {
    if (r.already_present) {
      std::cerr << "hearth: already present, sha256 " << r.sha256 << "\n";
    } else {
      if (r.restarted) std::cerr << "hearth: the server ignored the resume request; restarted\n";
      if (r.resumed_from) std::cerr << "hearth: resumed at byte " << r.resumed_from << "\n";
      std::cerr << "hearth: " << Human(static_cast<double>(r.bytes)) << ", sha256 " << r.sha256
                << (entry.sha256.empty() ? " (no digest to check against; size checked)"
                                         : " (verified)")
                << "\n";
    }
  }
  return r;
}

void RunPull(const PullCliOptions& o) {
  const auto catalog = agent::LoadCatalog(agent::CatalogConfigPath());
  agent::CatalogEntry entry = agent::ResolvePullTarget(o.target, catalog);
  if (o.size) entry.size = o.size;
  if (!o.sha256.empty()) {
    if (o.sha256.size() != 64 ||
        o.sha256.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      ThrowUsage("--sha256 must be 64 hex digits, got '" + o.sha256 + "'");
    }
    entry.sha256 = o.sha256;
    for (char& c : entry.sha256) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  const agent::PullResult r = PullOne(entry, o, "hearth pull " + o.target);
  // The model's MTP drafter (a few hundred MB at most) goes beside it, where every command finds
  // it. The model is usable without it, so a failed drafter download is a warning, not an error.
  if (!entry.draft.empty() && !o.no_draft) {
    try {
      const agent::CatalogEntry draft = agent::ResolvePullTarget(entry.draft, catalog);
      if (!o.quiet)
        std::cerr << "hearth: and its drafter for speculative decoding, " << entry.draft << "\n";
      PullOne(draft, o, "hearth pull " + entry.draft);
    } catch (const Interrupted&) {
      throw;
    } catch (const Error& e) {
      std::cerr << "hearth: warning: the drafter '" << entry.draft
                << "' was not downloaded: " << e.what()
                << "\nhearth: the model works without it (no MTP speculation); "
                << "`hearth pull " << entry.draft << "` retries\n";
    }
  }
  std::cout << r.path << "\n";
}

}  // namespace

void RegisterPullCommand(CLI::App& app) {
  auto o = std::make_shared<PullCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "pull",
      "Download a Gemma 4 GGUF model into the model folder and print its path.\n"
      "NAME is a short name (e2b, e4b, 26b-a4b, 31b; add or change names in\n"
      "$XDG_CONFIG_HOME/hearth/models.toml, default ~/.config/hearth/models.toml) or an http(s)\n"
      "URL. The folder is --dir, else $HEARTH_MODELS, else ~/.cache/hearth/models. An interrupted\n"
      "download stays as FILE.part and the same command resumes it; the file appears only once\n"
      "its size and sha256 are verified. A catalog model's MTP drafter (models.toml key draft;\n"
      "the built-in models name theirs, e.g. e4b-assistant) comes beside it unless --no-draft.\n"
      "This and a configured remote backend are the only\n"
      "network use of hearth; without network, put the .gguf file into the folder by hand.");
  cmd->add_option("target", o->target, "Short model name or http(s) URL of a .gguf file")
      ->required();
  cmd->add_option("--dir", o->dir,
                  "Model folder (default: $HEARTH_MODELS or ~/.cache/hearth/models)");
  cmd->add_option("--sha256", o->sha256,
                  "Expected sha256 (hex) of the file; overrides the catalog");
  cmd->add_option("--size", o->size, "Expected size in bytes; overrides the catalog");
  cmd->add_option("--connect-timeout", o->connect_timeout, "Seconds to wait for a connection")
      ->check(CLI::Range(1L, 600L));
  cmd->add_flag("-q,--quiet", o->quiet, "No progress bar or messages; print only the path");
  cmd->add_flag("--no-draft", o->no_draft,
                "Do not also download the model's MTP drafter (catalog key draft; it speeds up "
                "generation by drafting tokens the model then verifies)");
  cmd->callback([o] { RunPull(*o); });
}
HEARTH_COMMAND(pull, RegisterPullCommand);

}  // namespace hearth::cli
