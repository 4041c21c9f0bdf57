#include "agent/tools.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <re2/re2.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "agent/confined_fs.h"
#include "base/base64.h"
#include "base/display.h"
#include "base/error.h"
#include "index/index.h"

namespace hearth::agent {
namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Dice coefficient over character bigrams: 1 for equal strings, near 0 for unrelated ones.
double Similarity(std::string_view a, std::string_view b) {
  a = Trim(a);
  b = Trim(b);
  if (a == b) return 1.0;
  if (a.size() < 2 || b.size() < 2) return 0.0;
  std::vector<uint16_t> ba, bb;
  for (size_t i = 0; i + 1 < a.size(); ++i)
    ba.push_back(uint16_t(uint8_t(a[i]) << 8 | uint8_t(a[i + 1])));
  for (size_t i = 0; i + 1 < b.size(); ++i)
    bb.push_back(uint16_t(uint8_t(b[i]) << 8 | uint8_t(b[i + 1])));
  std::sort(ba.begin(), ba.end());
  std::sort(bb.begin(), bb.end());
  size_t common = 0, i = 0, j = 0;
  while (i < ba.size() && j < bb.size()) {
    if (ba[i] == bb[j]) {
      ++common, ++i, ++j;
    } else if (ba[i] < bb[j]) {
      ++i;
    } else {
      ++j;
    }
  }
  return 2.0 * double(common) / double(ba.size() + bb.size());
}

bool LooksBinary(std::string_view s) {
  return s.substr(0, 8192).find('\0') != std::string_view::npos;
}

std::string GetString(const json& args, const char* key, bool required = true) {
  if (!args.contains(key) || args[key].is_null()) {
    if (required) throw std::invalid_argument(std::string("missing argument '") + key + "'");
    return {};
  }
  if (!args[key].is_string()) {
    throw std::invalid_argument(std::string("argument '") + key + "' must be a string");
  }
  return args[key].get<std::string>();
}

std::optional<int> GetInt(const json& args, const char* key) {
  if (!args.contains(key) || args[key].is_null()) return std::nullopt;
  if (args[key].is_number()) return static_cast<int>(args[key].get<double>());
  if (args[key].is_string()) {
    try {
      return std::stoi(args[key].get<std::string>());
    } catch (const std::exception&) {
    }
  }
  throw std::invalid_argument(std::string("argument '") + key + "' must be an integer");
}

ordered_json Tool(const char* name, const char* description, ordered_json properties,
                  std::vector<std::string> required) {
  ordered_json params = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) params["required"] = required;
  return {{"type", "function"},
          {"function", {{"name", name}, {"description", description}, {"parameters", params}}}};
}

ordered_json Prop(const char* type, const char* description) {
  return {{"type", type}, {"description", description}};
}

}  // namespace

// ---------------------------------------------------------------- config and permissions

PermissionMode ParsePermissionMode(std::string_view name) {
  if (name == "read-only") return PermissionMode::kReadOnly;
  if (name == "ask") return PermissionMode::kAsk;
  if (name == "auto") return PermissionMode::kAuto;
  ThrowUsage("unknown permission mode '" + std::string(name) + "'", "use read-only, ask or auto");
}

const char* PermissionModeName(PermissionMode mode) {
  switch (mode) {
    case PermissionMode::kReadOnly:
      return "read-only";
    case PermissionMode::kAsk:
      return "ask";
    case PermissionMode::kAuto:
      return "auto";
  }
  return "?";
}

Confirmer TerminalConfirmer() {
  return [](const std::string& summary, const std::string& details) {
    if (!::isatty(STDIN_FILENO)) {
      std::cerr << "hearth: not allowed: " << DisplaySafe(summary, kOneLine)
                << " (stdin is not a terminal, so the answer is no; use --permissions auto to "
                   "allow changes)\n";
      return false;
    }
    // Escaped: model text must not act on the terminal (the CLI also wraps: cli/terminal.h).
    const std::string shown = DisplaySafe(details);
    std::cerr << "\n" << shown << (shown.ends_with('\n') ? "" : "\n");
    std::cerr << "Allow " << DisplaySafe(summary, kOneLine) << "? [y/N] " << std::flush;
    std::string line;
    if (!std::getline(std::cin, line)) return false;
    std::string_view a = Trim(line);
    return a == "y" || a == "Y" || a == "yes" || a == "YES" || a == "Yes";
  };
}

// ---------------------------------------------------------------- helpers

std::string LineDiff(std::string_view before, std::string_view after, const std::string& path,
                     size_t max_lines) {
  auto a = SplitLines(before), b = SplitLines(after);
  size_t pre = 0;
  while (pre < a.size() && pre < b.size() && a[pre] == b[pre]) ++pre;
  size_t suf = 0;
  while (suf < a.size() - pre && suf < b.size() - pre &&
         a[a.size() - 1 - suf] == b[b.size() - 1 - suf]) {
    ++suf;
  }
  const size_t ctx = 3;
  size_t from = pre > ctx ? pre - ctx : 0;
  std::ostringstream out;
  out << "--- " << (before.empty() && after.size() ? "/dev/null" : "a/" + path) << "\n+++ b/"
      << path << "\n";
  // The hunk header as `diff -u` writes it: start,count per side (",1" left out; an empty side
  // starts at the line before it).
  const size_t tail = std::min(ctx, suf);
  auto range = [&](size_t changed) {
    const size_t count = (pre - from) + changed + tail;
    std::string r = std::to_string(count == 0 ? from : from + 1);
    if (count != 1) r += "," + std::to_string(count);
    return r;
  };
  out << "@@ -" << range(a.size() - suf - pre) << " +" << range(b.size() - suf - pre) << " @@\n";
  size_t lines = 0;
  auto emit = [&](char mark, std::string_view line) {
    if (lines++ < max_lines) out << mark << line << "\n";
  };
  for (size_t i = from; i < pre; ++i) emit(' ', a[i]);
  for (size_t i = pre; i < a.size() - suf; ++i) emit('-', a[i]);
  for (size_t i = pre; i < b.size() - suf; ++i) emit('+', b[i]);
  for (size_t i = a.size() - suf; i < a.size() && i < a.size() - suf + ctx; ++i) emit(' ', a[i]);
  if (lines > max_lines) out << "... (" << lines - max_lines << " more diff lines)\n";
  return out.str();
}

bool InsideFileWritingCall(std::string_view text) {
  constexpr std::string_view kOpen = "<|tool_call>";
  const size_t open = text.rfind(kOpen);
  if (open == std::string_view::npos) return false;
  const std::string_view call = text.substr(open + kOpen.size());
  if (call.find("<tool_call|>") != std::string_view::npos) return false;
  return call.starts_with("call:edit_file{") || call.starts_with("call:write_file{");
}

std::string ClosestRegion(std::string_view text, std::string_view needle) {
  auto lines = SplitLines(text);
  auto want = SplitLines(needle);
  if (lines.empty()) return "the file is empty";
  if (want.empty()) want.push_back("");
  const size_t k = std::min(want.size(), lines.size());
  // Per-line similarity is O(line length); past this many comparisons fall back to equality.
  const bool cheap = double(lines.size()) * double(k) > 400000.0;
  double best = -1;
  size_t best_i = 0;
  for (size_t i = 0; i + k <= lines.size(); ++i) {
    double s = 0;
    for (size_t j = 0; j < k; ++j) {
      s += cheap ? (Trim(lines[i + j]) == Trim(want[j]) ? 1.0 : 0.0)
                 : Similarity(lines[i + j], want[j]);
    }
    s /= double(want.size());
    if (s > best) {
      best = s;
      best_i = i;
    }
  }
  std::ostringstream out;
  char sim[32];
  std::snprintf(sim, sizeof sim, "%.2f", best);
  out << "closest region, lines " << best_i + 1 << "-" << best_i + k << " (similarity " << sim
      << "):\n";
  for (size_t i = best_i; i < best_i + k; ++i) out << (i + 1) << "| " << lines[i] << "\n";
  return out.str();
}

CommandResult RunCommand(const std::string& command, const fs::path& cwd, int timeout_seconds,
                         size_t max_output) {
  CommandResult result;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) ThrowIo("cannot create a pipe: " + ErrnoText(errno));
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    ThrowIo("cannot start '" + command + "': " + ErrnoText(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    if (::chdir(cwd.c_str()) != 0) _exit(126);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::setpgid(pid, pid);  // also in the parent, so the kill below cannot race the child's own call
  ::close(fds[1]);
  // Keep the head and the tail (where test summaries are); drop the middle past max_output.
  std::string head, tail;
  size_t dropped = 0;
  const size_t half = max_output / 2;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  char buf[8192];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0 && !result.timed_out) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      continue;
    }
    if (left <= 0) break;  // killed, but something still holds the pipe open
    pollfd p{fds[0], POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long>(left, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::string_view piece(buf, static_cast<size_t>(n));
    if (head.size() < half) {
      size_t take = std::min(piece.size(), half - head.size());
      head.append(piece.substr(0, take));
      piece.remove_prefix(take);
    }
    tail.append(piece);
    if (tail.size() > half) {
      dropped += tail.size() - half;
      tail.erase(0, tail.size() - half);
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.output = head;
  if (dropped) {
    result.output += "\n[... " + std::to_string(dropped) +
                     " bytes of output left out here; the start and the end are shown ...]\n";
  }
  result.output += tail;
  return result;
}

// ---------------------------------------------------------------- ToolBox

ToolBox::ToolBox(const Workspace& workspace, AgentConfig config, ToolOptions options)
    : ws_(workspace), config_(std::move(config)), options_(std::move(options)) {
  if (!options_.confirm) options_.confirm = TerminalConfirmer();
}

ordered_json ToolBox::Declarations() const {
  ordered_json tools = ordered_json::array();
  tools.push_back(Tool("read_file",
                       "Read a text file of the repository. Lines are 1-based; give start_line "
                       "and end_line to read part of a long file.",
                       {{"path", Prop("string", "Path relative to the repository root")},
                        {"start_line", Prop("integer", "First line to read (default 1)")},
                        {"end_line", Prop("integer", "Last line to read (default: the end)")}},
                       {"path"}));
  tools.push_back(Tool("list_dir", "List the files and folders of a directory of the repository.",
                       {{"path", Prop("string", "Directory relative to the root (default: root)")}},
                       {}));
  tools.push_back(Tool("search_code",
                       "Search the repository's code index for chunks relevant to a query "
                       "(identifiers and words); returns files, line ranges and symbols.",
                       {{"query", Prop("string", "What to look for")}}, {"query"}));
  tools.push_back(Tool("find_symbol",
                       "Find where a symbol (function, class, method, variable) is defined and "
                       "used.",
                       {{"name", Prop("string", "The exact symbol name")}}, {"name"}));
  tools.push_back(Tool("grep",
                       "Search file contents with a regular expression (RE2 syntax); "
                       "returns matching lines as path:line: text.",
                       {{"pattern", Prop("string", "Regular expression")},
                        {"path_glob", Prop("string", "Only files whose path matches, e.g. *.py")}},
                       {"pattern"}));
  if (options_.view_images) {
    tools.push_back(Tool("view_image",
                         "Look at an image file of the repository (a UI snapshot, a diagram, a "
                         "screenshot in the docs): PNG, JPEG, WebP, GIF or BMP.",
                         {{"path", Prop("string", "Path relative to the repository root")}},
                         {"path"}));
  }
  if (options_.mode != PermissionMode::kReadOnly) {
    if (!config_.allowed_commands.empty()) {
      std::string desc = "Run one of the commands the user allowed, exactly as written: ";
      for (size_t i = 0; i < config_.allowed_commands.size(); ++i) {
        desc += (i ? ", " : "") + config_.allowed_commands[i];
      }
      desc += ". Returns the exit code and the output.";
      tools.push_back(Tool("run", desc.c_str(),
                           {{"command", Prop("string", "One of the allowed commands")}},
                           {"command"}));
    }
    tools.push_back(
        Tool("edit_file",
             "Replace one exact, unique occurrence of old_text in a file by new_text. "
             "old_text must match the file byte for byte, including indentation.",
             {{"path", Prop("string", "File relative to the root")},
              {"old_text", Prop("string", "Exact text to replace (unique in the file)")},
              {"new_text", Prop("string", "Replacement text")}},
             {"path", "old_text", "new_text"}));
    tools.push_back(Tool("write_file", "Create a file or replace its whole content.",
                         {{"path", Prop("string", "File relative to the root")},
                          {"content", Prop("string", "The complete new content")}},
                         {"path", "content"}));
  }
  return tools;
}

std::vector<std::string> ToolBox::Names() const {
  std::vector<std::string> names;
  for (const auto& t : Declarations()) names.push_back(t["function"]["name"]);
  return names;
}

std::string ToolBox::Bound(std::string text) const {
  if (text.size() <= options_.max_output_chars) return text;
  size_t cut = options_.max_output_chars;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  size_t left = text.size() - cut;
  text.resize(cut);
  text += "\n[output cut: " + std::to_string(left) +
          " more bytes not shown; narrow the request (line range, path_glob)]";
  return text;
}

bool ToolBox::Allow(const std::string& summary, const std::string& details) {
  switch (options_.mode) {
    case PermissionMode::kReadOnly:
      return false;
    case PermissionMode::kAuto:
      return true;
    case PermissionMode::kAsk:
      return options_.confirm(summary, details);
  }
  return false;
}

ToolResult ToolBox::Call(const std::string& name, const std::string& arguments) {
  json args;
  try {
    args = arguments.empty() ? json::object() : json::parse(arguments);
  } catch (const json::exception&) {
    return {false,
            "error: the arguments of " + name + " are not valid JSON: " + arguments.substr(0, 200),
            {}};
  }
  if (!args.is_object())
    return {false, "error: the arguments of " + name + " must be an object", {}};
  ToolResult r;
  try {
    r = Dispatch(name, args);
  } catch (const Error& e) {
    r = {false, "error: " + e.Describe(), {}};
  } catch (const std::invalid_argument& e) {
    r = {false, std::string("error: ") + e.what() + " (tool " + name + ")", {}};
  } catch (const std::exception& e) {
    r = {false, std::string("error: ") + e.what(), {}};
  }
  // File names and contents are bytes: what is not UTF-8 is shown as \xNN, so the result is
  // always valid JSON text for the model (never a fatal encoding error).
  r.text = Bound(confined::EscapeInvalidUtf8(r.text));
  return r;
}

ToolResult ToolBox::Dispatch(const std::string& name, const json& args) {
  if (name == "read_file") return ReadFileTool(args);
  if (name == "list_dir") return ListDir(args);
  if (name == "search_code") return SearchCode(args);
  if (name == "find_symbol") return FindSymbolTool(args);
  if (name == "grep") return Grep(args);
  if (name == "view_image" && options_.view_images) return ViewImage(args);
  const bool writes = name == "run" || name == "edit_file" || name == "write_file";
  if (writes && options_.mode == PermissionMode::kReadOnly) {
    return {false,
            "refused: this session is read-only (" + name +
                " is not available); describe the change instead",
            {}};
  }
  if (name == "run") return Run(args);
  if (name == "edit_file") return EditFile(args);
  if (name == "write_file") return WriteFileTool(args);
  std::string known;
  for (const auto& n : Names()) known += (known.empty() ? "" : ", ") + n;
  return {false, "error: unknown tool '" + name + "'; the tools are: " + known, {}};
}

// The image travels as a data: URL made here from bytes read beneath the root (no symlinks), so
// the backend never opens a path the model chose.
ToolResult ToolBox::ViewImage(const json& args) {
  constexpr size_t kMaxImageBytes = 20u << 20;
  const std::string path = GetString(args, "path");
  const std::string bytes = ws_.ReadFile(path, kMaxImageBytes);
  const std::string_view mime = ImageMimeType(bytes);
  if (mime.empty()) {
    return {false, "error: '" + path + "' is not a PNG, JPEG, WebP, GIF or BMP image", {}};
  }
  ToolResult r{true,
               "the image " + path + " (" + std::to_string(bytes.size()) +
                   " bytes) is shown to you in the next message",
               {}};
  r.media.push_back(
      {{"type", "image_url"},
       {"image_url", {{"url", "data:" + std::string(mime) + ";base64," + EncodeBase64(bytes)}}}});
  return r;
}

ToolResult ToolBox::ReadFileTool(const json& args) {
  std::string path = GetString(args, "path");
  bool truncated = false;
  std::string text = ws_.ReadFile(path, kReadFileMaxBytes, &truncated);
  if (LooksBinary(text)) return {false, "error: '" + path + "' is a binary file", {}};
  if (truncated) {
    // Cut at the last whole line, so that line numbers stay true.
    size_t nl = text.rfind('\n');
    text.resize(nl == std::string::npos ? 0 : nl + 1);
  }
  const std::string cut_note =
      truncated ? "[only the first " + std::to_string(kReadFileMaxBytes >> 20) +
                      " MiB of the file were read; the lines past them are not shown]\n"
                : std::string();
  auto lines = SplitLines(text);
  int n = static_cast<int>(lines.size());
  int from = std::max(1, GetInt(args, "start_line").value_or(1));
  int to = std::min(n, GetInt(args, "end_line").value_or(n));
  if (n == 0) return {true, path + " is empty", {}};
  if (from > n) {
    return {false,
            "error: start_line " + std::to_string(from) + " is past the end of " + path + " (" +
                std::to_string(n) + " lines)",
            {}};
  }
  std::string out;
  if (from != 1 || to != n) {
    out = "[" + path + " lines " + std::to_string(from) + "-" + std::to_string(to) + " of " +
          std::to_string(n) + "]\n";
  }
  // Stop at a line boundary below the output bound (leaving room for the note), so the model
  // learns where to go on instead of getting a line cut in the middle.
  const size_t limit = options_.max_output_chars > 200 ? options_.max_output_chars - 200 : 0;
  for (int i = from; i <= to; ++i) {
    if (i > from && out.size() + lines[i - 1].size() + 1 > limit) {
      out += "[cut before line " + std::to_string(i) + " of " + std::to_string(n) +
             "; read on with start_line=" + std::to_string(i) + "]";
      break;
    }
    out.append(lines[i - 1]);
    out += '\n';
  }
  if (to == n) out += cut_note;
  return {true, out, {}};
}

ToolResult ToolBox::ListDir(const json& args) {
  std::string path = GetString(args, "path", false);
  if (path.empty()) path = ".";
  std::vector<std::string> entries;
  for (const auto& e : ws_.ListDir(path)) {
    if (e.name == ".git") continue;
    using Kind = Workspace::DirEntry::Kind;
    entries.push_back(e.name + (e.kind == Kind::kDir       ? "/"
                                : e.kind == Kind::kSymlink ? " (symlink, not followed)"
                                : e.kind == Kind::kOther   ? " (not a regular file)"
                                                           : ""));
  }
  std::string out;
  const size_t kMax = 500;
  for (size_t i = 0; i < entries.size() && i < kMax; ++i) out += entries[i] + "\n";
  if (entries.size() > kMax)
    out += "[" + std::to_string(entries.size() - kMax) + " more entries]\n";
  if (entries.empty()) out = "(empty directory)\n";
  return {true, out, {}};
}

ToolResult ToolBox::SearchCode(const json& args) {
  index::SearchOptions opt;
  opt.query = GetString(args, "query");
  opt.limit = 8;
  auto hits = index::Search(ws_.root(), opt);
  if (hits.empty()) return {true, "no results for '" + opt.query + "'", {}};
  std::ostringstream out;
  for (const auto& f : hits) {
    out << f.path << "\n";
    for (const auto& c : f.chunks) {
      out << "  lines " << c.start_line << "-" << c.end_line;
      if (!c.symbol.empty()) out << "  " << c.kind << " " << c.symbol;
      out << "\n";
    }
  }
  return {true, out.str(), {}};
}

ToolResult ToolBox::FindSymbolTool(const json& args) {
  std::string name = GetString(args, "name");
  auto uses = index::FindSymbol(ws_.root(), name);
  if (uses.empty()) return {true, "no symbol named '" + name + "' in the index", {}};
  std::ostringstream out;
  size_t shown = 0;
  for (const auto& u : uses) {
    if (++shown > 100) {
      out << "[" << uses.size() - 100 << " more uses]\n";
      break;
    }
    out << u.path << ":" << u.line << ": " << (u.definition ? "definition" : "use") << " ("
        << u.kind << "): " << u.text << "\n";
  }
  return {true, out.str(), {}};
}

ToolResult ToolBox::Grep(const json& args) {
  std::string pattern = GetString(args, "pattern");
  std::string glob = GetString(args, "path_glob", false);
  // RE2: matching time is linear in the text, so no pattern can make grep hang (std::regex
  // backtracks exponentially on patterns like (a+)+$ and recurses per character).
  RE2::Options ro;
  ro.set_log_errors(false);
  ro.set_max_mem(64 << 20);
  RE2 re(pattern, ro);
  if (!re.ok()) {
    return {false,
            "error: invalid regular expression '" + pattern + "' (RE2 syntax): " + re.error(),
            {}};
  }
  index::WalkOptions wo;
  wo.max_file_size = kGrepMaxFileBytes;
  wo.follow_symlinks = false;  // files are opened through the confined layer, which refuses links
  index::WalkResult walk = index::Walk(ws_.root(), wo);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kGrepSeconds);
  std::ostringstream out;
  size_t matches = 0, files = 0;
  std::string stopped;  // why the search ended before the last file, when it did
  for (const index::WalkEntry& file : walk.files) {
    if (cancel_ != nullptr && cancel_->load()) {
      stopped = "interrupted (Ctrl-C)";
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      stopped = "time limit of " + std::to_string(kGrepSeconds) + " s reached";
      break;
    }
    if (files >= kGrepMaxFiles) {
      stopped = "file limit of " + std::to_string(kGrepMaxFiles) + " reached";
      break;
    }
    const std::string& rel = file.rel_path;
    const std::string base = rel.substr(rel.rfind('/') + 1);
    if (!glob.empty() && fnmatch(glob.c_str(), rel.c_str(), 0) != 0 &&
        fnmatch(glob.c_str(), base.c_str(), 0) != 0) {
      continue;
    }
    std::string text;
    try {
      bool more = false;
      text = ws_.ReadFile(rel, kGrepMaxFileBytes, &more);
      if (more) continue;
    } catch (const Error&) {
      continue;  // changed under us (now a link, a FIFO, gone): not searched
    }
    if (LooksBinary(text)) continue;
    ++files;
    auto lines = SplitLines(text);
    for (size_t i = 0; i < lines.size() && matches <= kGrepMaxMatches; ++i) {
      if (!RE2::PartialMatch(re2::StringPiece(lines[i].data(), lines[i].size()), re)) continue;
      if (++matches > kGrepMaxMatches) break;
      out << rel << ":" << i + 1 << ": " << Trim(lines[i]).substr(0, 300) << "\n";
    }
    if (matches > kGrepMaxMatches) {
      stopped = "match limit of " + std::to_string(kGrepMaxMatches) + " reached";
      break;
    }
  }
  std::string text = out.str();
  if (matches == 0 && stopped.empty()) {
    return {true, "no matches in " + std::to_string(files) + " files", {}};
  }
  if (!stopped.empty()) {
    text += "[search stopped early: " + stopped + " after " + std::to_string(files) + " files; " +
            (matches == 0 ? "none found so far; " : "") +
            "files not searched may match. Use a narrower pattern or path_glob]\n";
  }
  return {true, text, {}};
}

ToolResult ToolBox::Run(const json& args) {
  std::string command(Trim(GetString(args, "command")));
  if (std::find(config_.allowed_commands.begin(), config_.allowed_commands.end(), command) ==
      config_.allowed_commands.end()) {
    std::string allowed;
    for (const auto& c : config_.allowed_commands) allowed += (allowed.empty() ? "" : ", ") + c;
    return {false,
            "refused: '" + command + "' is not an allowed command" +
                (allowed.empty() ? std::string(" (none are allowed)") : "; allowed: " + allowed) +
                ". The user can allow commands under [run] allowed in their own config "
                "(~/.config/hearth/config.toml) or in a repository config they trusted with "
                "`hearth trust`.",
            {}};
  }
  if (!Allow("run `" + command + "`", "$ " + command)) {
    return {false, "refused: the user did not allow running `" + command + "`", {}};
  }
  Snapshot before = TakeSnapshot(ws_);
  CommandResult r =
      RunCommand(command, ws_.root(), config_.run_timeout_seconds, options_.max_output_chars);
  SnapshotDiff diff = Compare(before, TakeSnapshot(ws_));
  ToolResult result;
  result.ok = !r.timed_out && r.exit_code == 0;
  std::ostringstream out;
  if (r.timed_out) {
    out << "[timed out after " << config_.run_timeout_seconds << " s; the command was killed]\n";
  } else {
    out << "[exit code " << r.exit_code << "]\n";
  }
  out << r.output;
  if (!r.output.empty() && !r.output.ends_with('\n')) out << "\n";
  out << "[files changed by the command: " << diff.Describe() << "]\n";
  result.text = out.str();
  for (const auto* v : {&diff.modified, &diff.added, &diff.removed}) {
    result.changed_files.insert(result.changed_files.end(), v->begin(), v->end());
  }
  return result;
}

ToolResult ToolBox::EditFile(const json& args) {
  std::string path = GetString(args, "path");
  std::string old_text = GetString(args, "old_text");
  std::string new_text = GetString(args, "new_text");
  if (old_text.empty()) {
    return {
        false, "error: old_text is empty; use write_file to create or replace a whole file", {}};
  }
  std::string content = ws_.ReadFile(path);
  std::vector<size_t> at;
  for (size_t pos = content.find(old_text); pos != std::string::npos;
       pos = content.find(old_text, pos + 1)) {
    at.push_back(pos);
  }
  if (at.empty()) {
    return {false,
            "error: old_text was not found in " + path +
                " (it must match exactly, including whitespace). " +
                ClosestRegion(content, old_text),
            {}};
  }
  if (at.size() > 1) {
    std::string where;
    for (size_t i = 0; i < at.size() && i < 10; ++i) {
      size_t line = 1 + std::count(content.begin(), content.begin() + at[i], '\n');
      where += (i ? ", " : "") + std::to_string(line);
    }
    return {false,
            "error: old_text occurs " + std::to_string(at.size()) + " times in " + path +
                " (at lines " + where + "); include more surrounding lines so that it is unique",
            {}};
  }
  std::string updated =
      content.substr(0, at[0]) + new_text + content.substr(at[0] + old_text.size());
  if (!Allow("edit " + path, LineDiff(content, updated, path))) {
    return {false, "refused: the user did not allow this edit of " + path, {}};
  }
  ws_.WriteFile(path, updated, options_.journal);
  size_t line = 1 + std::count(content.begin(), content.begin() + at[0], '\n');
  return {true, "edited " + path + " at line " + std::to_string(line), {path}, /*journaled=*/true};
}

ToolResult ToolBox::WriteFileTool(const json& args) {
  std::string path = GetString(args, "path");
  std::string content = GetString(args, "content");
  ws_.Parts(path, /*for_write=*/true);  // refused paths are refused before anything is read
  const bool existed = ws_.Exists(path);
  std::string before = existed ? ws_.ReadFile(path) : std::string();
  if (!Allow((existed ? "overwrite " : "create ") + path, LineDiff(before, content, path))) {
    return {false, "refused: the user did not allow writing " + path, {}};
  }
  ws_.WriteFile(path, content, options_.journal);
  return {true,
          (existed ? "replaced " : "created ") + path + " (" + std::to_string(content.size()) +
              " bytes)",
          {path},
          /*journaled=*/true};
}

}  // namespace hearth::agent
