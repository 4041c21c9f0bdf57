// A hostile repository built by the test: a scratch git-like root beside an "outside" folder that
// stands for everything the repository must never reach (the user's home, other projects). Tests
// plant symlinks, odd file names and configs in it, point hearth at it, then check the outside.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace hearth::security::testing {

class HostileRepo {
 public:
  HostileRepo() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hearth-hostile-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    base_ = p ? std::filesystem::canonical(p) : std::filesystem::path();
    std::filesystem::create_directories(root() / ".git" / "hooks");
    std::filesystem::create_directories(outside());
  }
  ~HostileRepo() {
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }
  HostileRepo(const HostileRepo&) = delete;
  HostileRepo& operator=(const HostileRepo&) = delete;

  // The repository hearth is pointed at, and a sibling folder it must never touch.
  std::filesystem::path root() const { return base_ / "repo"; }
  std::filesystem::path outside() const { return base_ / "outside"; }

  void Write(const std::string& rel, const std::string& content) const {
    WriteFile(root() / rel, content);
  }
  // A symlink inside the repository at `rel` pointing at `target` (absolute or relative).
  void Symlink(const std::string& rel, const std::filesystem::path& target) const {
    std::filesystem::create_directories((root() / rel).parent_path());
    std::filesystem::create_symlink(target, root() / rel);
  }

  static void WriteFile(const std::filesystem::path& p, const std::string& content) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << content;
  }
  static std::string ReadFile(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::filesystem::path base_;
};

}  // namespace hearth::security::testing
