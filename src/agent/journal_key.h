// The per-user secret that binds an edit journal to the user who wrote it (internal to
// src/agent). A repository can commit a well-formed `.hearth/journal/`; without a MAC keyed by a
// secret outside every repository, `hearth undo` in a fresh clone would "restore" files to
// contents of the repository's choosing. The key is 32 random bytes in
// $XDG_CONFIG_HOME/hearth/journal.key (else ~/.config/hearth/journal.key), mode 0600.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace hearth::agent {

// Where the key lives; empty when neither XDG_CONFIG_HOME (absolute) nor HOME is set.
std::filesystem::path JournalKeyPath();

// The key's 32 bytes. With `create`, a missing key is created (exclusively, mode 0600, never
// through a symlink); without it, a missing key is nullopt. A key file that is a symlink, not a
// regular file, not owned by the user, readable or writable by group or others, or not 32 bytes
// long is refused with Error(kUsage) naming the file (it could have been planted or read by
// someone else); Error(kUsage) too when there is no config directory (no HOME).
std::optional<std::string> LoadJournalKey(bool create);

// HMAC-SHA256 of `message` under `key`, as 64 lower-case hex digits.
std::string HmacSha256Hex(std::string_view key, std::string_view message);

}  // namespace hearth::agent
