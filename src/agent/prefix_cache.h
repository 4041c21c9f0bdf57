// The assistant's persisted prefix cache: ROOT/.hearth/kv/NAME.kv, one file per model and
// setting (engine/prefix_store.h says what a snapshot holds). The second `hearth ask` in a fresh
// process starts from the first one's KV state for the prompt they share (system prompt, tools,
// repo map) instead of decoding it again.
//
// Trust: the directory is inside a repository a stranger may have written. A snapshot is only
// used when it carries an HMAC-SHA256, under the user's journal key (journal_key.h), over the
// model's identity (canonical path, size, modification time, inode), the settings that shape
// the KV values (cache type, adapters and their scales), the workspace root and the SHA-256 of
// the snapshot's bytes. So a planted or copied file, a changed model or another setting is never
// restored from. Files are read and written through the confined layer (never through a
// symlink), written atomically with mode 0600; only the three newest files are kept.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "engine/prefix_store.h"
#include "model/config.h"

namespace hearth::model {
class AdapterSet;
}

namespace hearth::agent {

class Workspace;

// Snapshots smaller than this many tokens are not worth a file.
inline constexpr size_t kMinPrefixCacheTokens = 512;

// A store for one process: the first Load gives the file's snapshot (when it verifies), the
// first prompt of at least kMinPrefixCacheTokens is saved; later prompts in the same process
// reuse the session's own cache instead. `settings` names what else shapes the KV values.
// `warn` receives one-line notes (a file refused, a write that failed); never throws for a
// missing, foreign or broken file.
// The `settings` of a local engine's store: the engine's snapshot layout, the KV cache types
// ("kv=f16", "kv=q8_0", "kv=q8_0/f16" for keys/values that differ) and the adapters' key, so a
// snapshot of one cache type is never restored into a context of another.
std::string PrefixCacheSettings(model::KvType k, model::KvType v,
                                const model::AdapterSet* adapters);

std::unique_ptr<engine::PrefixStore> OpenPrefixCache(const Workspace& workspace,
                                                     const std::string& model_path,
                                                     std::string settings,
                                                     std::function<void(std::string_view)> warn);

}  // namespace hearth::agent
