// Snapshot serialization: a small header and length-prefixed parts, little-endian, checked on
// every read so that a short or inconsistent file is refused rather than read past its end.
#include "engine/prefix_store.h"

#include <algorithm>
#include <cstring>

namespace hearth::engine {
namespace {

constexpr char kMagic[8] = {'H', 'K', 'V', 'S', 'N', 'A', 'P', '1'};

template <typename T>
void Put(std::string* out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out->append(bytes, sizeof(T));
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}
  template <typename T>
  bool Get(T* value) {
    if (rest_.size() < sizeof(T)) return false;
    std::memcpy(value, rest_.data(), sizeof(T));
    rest_.remove_prefix(sizeof(T));
    return true;
  }
  bool Bytes(uint64_t n, std::string* out) {
    if (rest_.size() < n) return false;
    out->assign(rest_.data(), n);
    rest_.remove_prefix(n);
    return true;
  }
  bool done() const { return rest_.empty(); }
  size_t left() const { return rest_.size(); }

 private:
  std::string_view rest_;
};

}  // namespace

int KvSnapshot::BestCheckpoint(std::span<const int32_t> prompt, size_t limit) const {
  size_t common = 0;
  const size_t n = std::min({tokens.size(), prompt.size(), limit});
  while (common < n && tokens[common] == prompt[common]) ++common;
  for (auto it = sliding.rbegin(); it != sliding.rend(); ++it) {
    if (it->first > 0 && static_cast<size_t>(it->first) <= common) return it->first;
  }
  return 0;
}

std::string SerializeSnapshot(const KvSnapshot& snapshot) {
  std::string out(kMagic, sizeof(kMagic));
  Put<uint64_t>(&out, snapshot.tokens.size());
  for (int32_t t : snapshot.tokens) Put<int32_t>(&out, t);
  Put<uint64_t>(&out, snapshot.full.size());
  out += snapshot.full;
  Put<uint32_t>(&out, static_cast<uint32_t>(snapshot.sliding.size()));
  for (const auto& [pos, bytes] : snapshot.sliding) {
    Put<int32_t>(&out, pos);
    Put<uint64_t>(&out, bytes.size());
    out += bytes;
  }
  return out;
}

std::optional<KvSnapshot> ParseSnapshot(std::string_view bytes) {
  if (bytes.size() < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return std::nullopt;
  }
  Reader r(bytes.substr(sizeof(kMagic)));
  KvSnapshot s;
  uint64_t n_tokens = 0;
  if (!r.Get(&n_tokens) || n_tokens > r.left() / sizeof(int32_t)) return std::nullopt;
  s.tokens.resize(n_tokens);
  for (auto& t : s.tokens) {
    if (!r.Get(&t) || t < 0) return std::nullopt;
  }
  uint64_t full_size = 0;
  if (!r.Get(&full_size) || !r.Bytes(full_size, &s.full)) return std::nullopt;
  uint32_t n_sliding = 0;
  if (!r.Get(&n_sliding)) return std::nullopt;
  int last = 0;
  for (uint32_t i = 0; i < n_sliding; ++i) {
    int32_t pos = 0;
    uint64_t size = 0;
    std::string part;
    if (!r.Get(&pos) || !r.Get(&size) || !r.Bytes(size, &part)) return std::nullopt;
    // Ascending, inside the token range: the restore logic relies on both.
    if (pos <= last || static_cast<uint64_t>(pos) >= n_tokens) return std::nullopt;
    last = pos;
    s.sliding.emplace_back(pos, std::move(part));
  }
  if (!r.done()) return std::nullopt;
  return s;
}

}  // namespace hearth::engine
