// Gemma 4 BPE tokenizer (spec: ../shared/spec/gemma4-chat.md §1).
//
// Layout chosen for load speed and encode speed: token texts live in one arena string (views
// into it), ids are found through an open-addressing table, merges are keyed by the pair of
// token ids (every merge part and result is a token, checked at load), and single code points
// map to ids through a flat table so the BPE inner loop never hashes strings.
#include "text/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <functional>

#include "base/error.h"
#include "gguf/gguf.h"

namespace hearth::text {
namespace {

constexpr uint32_t kSpaceMark = 0x2581;  // '▁', how the vocabulary spells a space
constexpr uint32_t kReplacement = 0xFFFD;
constexpr uint32_t kMaxCodePoint = 0x110000;

uint64_t HashPair(uint64_t key);

uint64_t HashBytes(std::string_view s) {
  // 8 bytes at a time, then a strong finaliser: token strings are short, lookups are hot.
  uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  if (i < s.size()) std::memcpy(&tail, s.data() + i, s.size() - i);
  return HashPair(h ^ tail);
}

uint64_t HashPair(uint64_t key) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdull;
  key ^= key >> 33;
  key *= 0xc4ceb9fe1a85ec53ull;
  key ^= key >> 33;
  return key;
}

size_t TableSize(size_t n) {
  size_t size = 16;
  while (size < 2 * n) size <<= 1;
  return size;
}

// Decodes one code point at `text[*pos]`; advances *pos. Invalid or truncated sequences give
// U+FFFD and consume one byte (llama.cpp replaces each invalid byte).
uint32_t NextCodePoint(std::string_view text, size_t* pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = *pos;
  size_t n = text.size();
  unsigned char c = s[i];
  if (c < 0x80) {
    *pos = i + 1;
    return c;
  }
  int len = 0;
  uint32_t cp = 0;
  uint32_t min = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, cp = c & 0x07, min = 0x10000;
  } else {
    *pos = i + 1;
    return kReplacement;
  }
  if (i + len > n) {
    *pos = i + 1;
    return kReplacement;
  }
  for (int k = 1; k < len; ++k) {
    unsigned char cc = s[i + k];
    if ((cc & 0xC0) != 0x80) {
      *pos = i + 1;
      return kReplacement;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp >= kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF)) {
    *pos = i + 1;
    return kReplacement;
  }
  *pos = i + len;
  return cp;
}

int AppendUtf8(uint32_t cp, char* out) {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (cp & 0x3F));
  return 4;
}

// How many bytes a UTF-8 sequence starting with `lead` has (0 for a continuation or invalid
// lead byte).
int SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

[[noreturn]] void Malformed(const std::string& file, const std::string& what) {
  ThrowInvalidInput(file + ": tokenizer metadata: " + what,
                    "the file's tokenizer is damaged or not a Gemma 4 tokenizer; re-download it "
                    "or convert it with a current llama.cpp");
}

struct MergeEntry {
  uint64_t key = ~0ull;  // (left << 32) | right; ~0 = empty slot
  int32_t rank = 0;
  TokenId result = 0;
};

}  // namespace

struct Tokenizer::Impl {
  std::string path;
  std::string text_arena;              // vocabulary strings, back to back
  std::string piece_arena;             // decoded bytes (spaces restored, byte tokens as raw bytes)
  std::vector<uint32_t> text_offset;   // n + 1 entries
  std::vector<uint32_t> piece_offset;  // n + 1 entries
  std::vector<TokenType> type;
  std::vector<uint8_t> is_control;  // effective: control flag as llama.cpp sets it
  // Open addressing over token texts: (hash high 32 bits << 32) | (id + 1), 0 = empty. The tag
  // avoids touching the text arena for most mismatches.
  std::vector<uint64_t> id_table;
  std::vector<MergeEntry> merges;      // open addressing over (left, right)
  std::vector<int32_t> code_point_id;  // single-code-point tokens, -1 = none
  std::array<TokenId, 256> byte_id{};
  TokenId bos = 2;
  TokenId eos = 1;
  std::vector<TokenId> eog;
  // Special strings matched inside text, longest first. `always` ones are user-defined.
  struct Special {
    std::string_view text;
    TokenId id;
    bool always;
  };
  std::vector<Special> specials;
  std::array<bool, 256> special_first_byte{};

  int32_t n() const { return static_cast<int32_t>(type.size()); }
  std::string_view Text(TokenId id) const {
    return std::string_view(text_arena)
        .substr(text_offset[id], text_offset[id + 1] - text_offset[id]);
  }
  std::string_view PieceOf(TokenId id) const {
    return std::string_view(piece_arena)
        .substr(piece_offset[id], piece_offset[id + 1] - piece_offset[id]);
  }
  std::optional<TokenId> Lookup(std::string_view s) const { return Lookup(s, HashBytes(s)); }
  void Prefetch(uint64_t hash) const {
    __builtin_prefetch(&id_table[hash & (id_table.size() - 1)]);
  }
  std::optional<TokenId> Lookup(std::string_view s, uint64_t h) const {
    size_t mask = id_table.size() - 1;
    uint64_t tag = h >> 32;
    for (size_t slot = h & mask;; slot = (slot + 1) & mask) {
      uint64_t e = id_table[slot];
      if (e == 0) return std::nullopt;
      if ((e >> 32) != tag) continue;
      auto id = static_cast<TokenId>((e & 0xFFFFFFFFu) - 1);
      if (Text(id) == s) return id;
    }
  }
  const MergeEntry* FindMerge(TokenId left, TokenId right) const {
    uint64_t key =
        (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
    size_t mask = merges.size() - 1;
    for (size_t slot = HashPair(key) & mask;; slot = (slot + 1) & mask) {
      const MergeEntry& e = merges[slot];
      if (e.key == key) return &e;
      if (e.key == ~0ull) return nullptr;
    }
  }
  void CheckId(TokenId id) const {
    if (id < 0 || id >= n()) {
      ThrowInvalidInput("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                            std::to_string(n() - 1) + ")",
                        "pass ids produced by this model's tokenizer");
    }
  }

  void EncodeWord(std::string_view word, std::vector<TokenId>* out) const;
  // Stages of FromGguf, after the texts, types and special ids are read.
  void DecodePieces(size_t total);
  void LoadMerges(const std::vector<std::string_view>& merge_list);
  void EncodeFragment(std::string_view fragment, std::vector<TokenId>* out) const;
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::Load(const std::string& path) { return FromGguf(gguf::File::Open(path)); }

// Decoded pieces (spaces restored, byte tokens as raw bytes) and the single-code-point index.
void Tokenizer::Impl::DecodePieces(size_t total) {
  Impl& t = *this;
  const size_t n = type.size();
  // Decoded pieces.
  t.piece_arena.reserve(total);
  t.piece_offset.resize(n + 1);
  for (size_t i = 0; i < n; ++i) {
    t.piece_offset[i] = static_cast<uint32_t>(t.piece_arena.size());
    std::string_view s = t.Text(static_cast<TokenId>(i));
    if (t.type[i] == TokenType::kByte) {
      unsigned value = 0;
      if (s.size() == 6 && s.substr(0, 3) == "<0x" && s[5] == '>' &&
          std::sscanf(std::string(s.substr(3, 2)).c_str(), "%2x", &value) == 1) {
        t.piece_arena.push_back(static_cast<char>(value));
      } else {
        Malformed(path, "byte token " + std::to_string(i) + " is '" + std::string(s) +
                            "', expected <0xXX>");
      }
      continue;
    }
    for (size_t k = 0; k < s.size();) {
      if (k + 3 <= s.size() && s.compare(k, 3, "\xE2\x96\x81") == 0) {
        t.piece_arena.push_back(' ');
        k += 3;
      } else {
        t.piece_arena.push_back(s[k++]);
      }
    }
  }
  t.piece_offset[n] = static_cast<uint32_t>(t.piece_arena.size());

  // Single code points → ids.
  t.code_point_id.assign(kMaxCodePoint, -1);
  for (size_t i = 0; i < n; ++i) {
    if (t.type[i] == TokenType::kByte) continue;
    std::string_view s = t.Text(static_cast<TokenId>(i));
    if (s.empty() || s.size() > 4) continue;
    size_t pos = 0;
    uint32_t cp = NextCodePoint(s, &pos);
    if (pos != s.size()) continue;
    if (cp == kReplacement && s != "\xEF\xBF\xBD") continue;
    if (t.code_point_id[cp] < 0 && t.Lookup(s) == static_cast<TokenId>(i)) {
      t.code_point_id[cp] = static_cast<int32_t>(i);
    }
  }
}

// The merge table, keyed by (left id, right id), rank = index in the file.
void Tokenizer::Impl::LoadMerges(const std::vector<std::string_view>& merge_list) {
  Impl& t = *this;
  // Merges: rank = index. Every part and every result must be a token, so the BPE can work on
  // ids; a file where that does not hold is not a Gemma 4 vocabulary.
  // Two passes: resolve every merge to ids, then insert with the slot of a later entry
  // prefetched — the table is far larger than the caches and the inserts are random.
  std::vector<MergeEntry> resolved(merge_list.size());
  {
    // In blocks: hash and prefetch first, look up second, so the table misses overlap.
    constexpr size_t kBlock = 32;
    std::array<std::string, kBlock> joined;
    std::array<std::string_view, 3 * kBlock> parts;
    std::array<uint64_t, 3 * kBlock> hashes;
    for (size_t base = 0; base < merge_list.size(); base += kBlock) {
      const size_t count = std::min(kBlock, merge_list.size() - base);
      for (size_t k = 0; k < count; ++k) {
        const size_t r = base + k;
        std::string_view m = merge_list[r];
        size_t space = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
        if (space == std::string_view::npos) {
          Malformed(path, "merge " + std::to_string(r) + " ('" + std::string(m.substr(0, 40)) +
                              "') in 'tokenizer.ggml.merges' has no space separating two tokens");
        }
        joined[k].assign(m.substr(0, space));
        joined[k].append(m.substr(space + 1));
        parts[3 * k] = m.substr(0, space);
        parts[3 * k + 1] = m.substr(space + 1);
        parts[3 * k + 2] = joined[k];
        for (int p = 0; p < 3; ++p) {
          hashes[3 * k + p] = HashBytes(parts[3 * k + p]);
          t.Prefetch(hashes[3 * k + p]);
        }
      }
      for (size_t k = 0; k < count; ++k) {
        const size_t r = base + k;
        auto l = t.Lookup(parts[3 * k], hashes[3 * k]);
        auto rt = t.Lookup(parts[3 * k + 1], hashes[3 * k + 1]);
        auto res = t.Lookup(parts[3 * k + 2], hashes[3 * k + 2]);
        if (!l || !rt || !res) {
          std::string_view m = merge_list[r];
          Malformed(path, "merge " + std::to_string(r) + " ('" + std::string(m.substr(0, 40)) +
                              "') in 'tokenizer.ggml.merges' names a token that is not in the "
                              "vocabulary");
        }
        resolved[r] = MergeEntry{
            (static_cast<uint64_t>(static_cast<uint32_t>(*l)) << 32) | static_cast<uint32_t>(*rt),
            static_cast<int32_t>(r), *res};
      }
    }
  }
  t.merges.assign(TableSize(merge_list.size()), MergeEntry{});
  {
    const size_t mask = t.merges.size() - 1;
    constexpr size_t kAhead = 16;
    for (size_t r = 0; r < resolved.size(); ++r) {
      if (r + kAhead < resolved.size()) {
        __builtin_prefetch(&t.merges[HashPair(resolved[r + kAhead].key) & mask], 1);
      }
      const MergeEntry& e = resolved[r];
      size_t slot = HashPair(e.key) & mask;
      while (t.merges[slot].key != ~0ull && t.merges[slot].key != e.key) slot = (slot + 1) & mask;
      if (t.merges[slot].key == e.key) continue;  // the first (lowest) rank wins
      t.merges[slot] = e;
    }
  }
}

Tokenizer Tokenizer::FromGguf(const gguf::File& file) {
  auto impl = std::make_unique<Impl>();
  Impl& t = *impl;
  const std::string& path = file.path();
  t.path = path;

  auto model = file.GetString("tokenizer.ggml.model");
  if (!model) Malformed(path, "key 'tokenizer.ggml.model' is missing");
  if (*model != "gemma4") {
    ThrowInvalidInput(path + ": tokenizer 'tokenizer.ggml.model' is '" + std::string(*model) +
                          "', hearth implements only Gemma 4's ('gemma4')",
                      "use a Gemma 4 GGUF file");
  }
  const auto* tokens = file.GetStringArray("tokenizer.ggml.tokens");
  if (tokens == nullptr) Malformed(path, "key 'tokenizer.ggml.tokens' is missing");
  if (tokens->empty() || tokens->size() > (1u << 30)) {
    Malformed(path, "'tokenizer.ggml.tokens' has " + std::to_string(tokens->size()) + " entries");
  }
  const size_t n = tokens->size();
  auto types = file.GetIntArray("tokenizer.ggml.token_type");
  if (!types) Malformed(path, "key 'tokenizer.ggml.token_type' is missing");
  if (types->size() != n) {
    Malformed(path, "'tokenizer.ggml.token_type' has " + std::to_string(types->size()) +
                        " entries but 'tokenizer.ggml.tokens' has " + std::to_string(n));
  }
  if (const gguf::Value* scores = file.Find("tokenizer.ggml.scores")) {
    if (!scores->is_array() || scores->count != n) {
      Malformed(path,
                "'tokenizer.ggml.scores' should be an array of " + std::to_string(n) + " numbers");
    }
  }
  const auto* merges = file.GetStringArray("tokenizer.ggml.merges");
  if (merges == nullptr) Malformed(path, "key 'tokenizer.ggml.merges' is missing");

  // Texts and types.
  size_t total = 0;
  for (std::string_view s : *tokens) total += s.size();
  if (total >= (1ull << 31)) Malformed(path, "token texts are too large");
  t.text_arena.reserve(total);
  t.text_offset.resize(n + 1);
  t.type.resize(n);
  for (size_t i = 0; i < n; ++i) {
    t.text_offset[i] = static_cast<uint32_t>(t.text_arena.size());
    t.text_arena.append((*tokens)[i]);
    int64_t ty = (*types)[i];
    if (ty < 0 || ty > 6) {
      Malformed(path, "token " + std::to_string(i) + " has type " + std::to_string(ty) +
                          " in 'tokenizer.ggml.token_type' (valid: 0..6)");
    }
    t.type[i] = static_cast<TokenType>(ty);
  }
  t.text_offset[n] = static_cast<uint32_t>(t.text_arena.size());

  // Text → id (first occurrence wins, as in llama.cpp).
  t.id_table.assign(TableSize(n), 0);
  {
    size_t mask = t.id_table.size() - 1;
    for (size_t i = 0; i < n; ++i) {
      std::string_view s = t.Text(static_cast<TokenId>(i));
      uint64_t h = HashBytes(s);
      uint64_t tag = h >> 32;
      size_t slot = h & mask;
      bool duplicate = false;
      while (t.id_table[slot] != 0) {
        uint64_t e = t.id_table[slot];
        if ((e >> 32) == tag && t.Text(static_cast<TokenId>((e & 0xFFFFFFFFu) - 1)) == s) {
          duplicate = true;
          break;
        }
        slot = (slot + 1) & mask;
      }
      if (!duplicate) t.id_table[slot] = (tag << 32) | (i + 1);
    }
  }

  // Special ids.
  auto special_id = [&](const char* key, const char* fallback_text) -> TokenId {
    auto v = file.GetInt(key);
    if (v) {
      if (*v < 0 || *v >= static_cast<int64_t>(n)) {
        Malformed(path, "'" + std::string(key) + "' = " + std::to_string(*v) +
                            " is outside the vocabulary of " + std::to_string(n) + " tokens");
      }
      return static_cast<TokenId>(*v);
    }
    auto found = t.Lookup(fallback_text);
    if (!found) Malformed(path, "key '" + std::string(key) + "' is missing");
    return *found;
  };
  t.bos = special_id("tokenizer.ggml.bos_token_id", "<bos>");
  t.eos = special_id("tokenizer.ggml.eos_token_id", "<eos>");
  for (const char* key : {"tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                          "tokenizer.ggml.mask_token_id", "tokenizer.ggml.eot_token_id"}) {
    if (auto v = file.GetInt(key); v && (*v < 0 || *v >= static_cast<int64_t>(n))) {
      Malformed(path, "'" + std::string(key) + "' = " + std::to_string(*v) +
                          " is outside the vocabulary of " + std::to_string(n) + " tokens");
    }
  }
  // End of generation: EOS plus the turn and tool-response markers (llama.cpp's Gemma 4 set).
  t.eog.push_back(t.eos);
  for (const char* s : {"<turn|>", "<|tool_response>"}) {
    if (auto id = t.Lookup(s)) t.eog.push_back(*id);
  }

  // Effective control flag: llama.cpp marks end-of-generation tokens as control even when the
  // file says user-defined, so they are neither matched without parse_special nor rendered.
  t.is_control.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    TokenType ty = t.type[i];
    t.is_control[i] = ty == TokenType::kControl || ty == TokenType::kUnknown;
  }
  for (TokenId id : t.eog) t.is_control[id] = 1;

  // Byte tokens "<0xXX>".
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto id = t.Lookup(name);
    if (!id) Malformed(path, std::string("byte token '") + name + "' is missing");
    t.byte_id[b] = *id;
  }

  t.DecodePieces(total);
  t.LoadMerges(*merges);

  // Special strings recognised in text: control (when parsing specials) and user-defined
  // (always). Matched longest first.
  for (size_t i = 0; i < n; ++i) {
    TokenType ty = t.type[i];
    if (ty != TokenType::kControl && ty != TokenType::kUserDefined) continue;
    std::string_view s = t.Text(static_cast<TokenId>(i));
    if (s.empty() || t.Lookup(s) != static_cast<TokenId>(i)) continue;
    t.specials.push_back({s, static_cast<TokenId>(i), t.is_control[i] == 0});
    t.special_first_byte[static_cast<unsigned char>(s[0])] = true;
  }
  std::stable_sort(
      t.specials.begin(), t.specials.end(),
      [](const Impl::Special& a, const Impl::Special& b) { return a.text.size() > b.text.size(); });
  return Tokenizer(std::move(impl));
}

// BPE over one word (a run of '\n' or a run without '\n'), appending ids to `out`.
void Tokenizer::Impl::EncodeWord(std::string_view word, std::vector<TokenId>* out) const {
  struct Symbol {
    TokenId id;   // -1: a code point that is not a token (byte fallback)
    uint32_t cp;  // the code point when id < 0
    int32_t prev;
    int32_t next;
  };
  thread_local std::vector<Symbol> symbols;
  symbols.clear();
  for (size_t pos = 0; pos < word.size();) {
    uint32_t cp = NextCodePoint(word, &pos);
    if (cp == ' ') cp = kSpaceMark;
    int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({code_point_id[cp], cp, index - 1, index + 1});
  }
  const int32_t count = static_cast<int32_t>(symbols.size());
  if (count == 0) return;
  symbols.back().next = -1;

  if (count > 1) {
    struct Candidate {
      int32_t rank;
      int32_t left;
      int32_t right;
      TokenId left_id;
      TokenId right_id;
      TokenId result;
      bool operator>(const Candidate& o) const {
        return rank != o.rank ? rank > o.rank : left > o.left;
      }
    };
    // A binary heap in a reused buffer: (rank, left position) with lazy invalidation.
    thread_local std::vector<Candidate> heap;
    heap.clear();
    auto greater = std::greater<Candidate>();
    auto consider = [&](int32_t left, int32_t right) {
      if (left < 0 || right < 0) return;
      TokenId a = symbols[left].id;
      TokenId b = symbols[right].id;
      if (a < 0 || b < 0) return;
      if (const MergeEntry* m = FindMerge(a, b)) {
        heap.push_back({m->rank, left, right, a, b, m->result});
        std::push_heap(heap.begin(), heap.end(), greater);
      }
    };
    for (int32_t i = 0; i + 1 < count; ++i) consider(i, i + 1);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), greater);
      Candidate c = heap.back();
      heap.pop_back();
      Symbol& l = symbols[c.left];
      // Stale entries: a side was merged away or changed since the pair was queued.
      if (l.id != c.left_id || l.next != c.right || symbols[c.right].id != c.right_id) continue;
      Symbol& r = symbols[c.right];
      l.id = c.result;
      l.next = r.next;
      if (r.next >= 0) symbols[r.next].prev = c.left;
      r.id = -2;  // dead
      consider(l.prev, c.left);
      consider(c.left, l.next);
    }
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    if (s.id >= 0) {
      out->push_back(s.id);
    } else {
      char bytes[4];
      int len = AppendUtf8(s.cp, bytes);
      for (int k = 0; k < len; ++k) out->push_back(byte_id[static_cast<unsigned char>(bytes[k])]);
    }
  }
}

void Tokenizer::Impl::EncodeFragment(std::string_view fragment, std::vector<TokenId>* out) const {
  size_t start = 0;
  while (start < fragment.size()) {
    bool newline = fragment[start] == '\n';
    size_t end = start;
    while (end < fragment.size() && (fragment[end] == '\n') == newline) ++end;
    EncodeWord(fragment.substr(start, end - start), out);
    start = end;
  }
}

std::vector<TokenId> Tokenizer::Encode(std::string_view text, bool add_bos,
                                       bool parse_special) const {
  const Impl& t = *impl_;
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos) out.push_back(t.bos);
  size_t fragment_start = 0;
  for (size_t i = 0; i < text.size();) {
    if (t.special_first_byte[static_cast<unsigned char>(text[i])]) {
      const Impl::Special* hit = nullptr;
      for (const Impl::Special& s : t.specials) {
        if (!s.always && !parse_special) continue;
        if (text.compare(i, s.text.size(), s.text) == 0) {
          hit = &s;
          break;
        }
      }
      if (hit != nullptr) {
        t.EncodeFragment(text.substr(fragment_start, i - fragment_start), &out);
        out.push_back(hit->id);
        i += hit->text.size();
        fragment_start = i;
        continue;
      }
    }
    ++i;
  }
  t.EncodeFragment(text.substr(fragment_start), &out);
  return out;
}

std::string_view Tokenizer::Piece(TokenId id, bool render_special) const {
  impl_->CheckId(id);
  if (impl_->is_control[id] && !render_special) return {};
  return impl_->PieceOf(id);
}

std::string Tokenizer::Decode(std::span<const TokenId> ids, bool render_special) const {
  std::string out;
  for (TokenId id : ids) out.append(Piece(id, render_special));
  return out;
}

std::string_view Tokenizer::TokenText(TokenId id) const {
  impl_->CheckId(id);
  return impl_->Text(id);
}

TokenType Tokenizer::Type(TokenId id) const {
  impl_->CheckId(id);
  return impl_->type[id];
}

std::optional<TokenId> Tokenizer::Find(std::string_view token_text) const {
  return impl_->Lookup(token_text);
}

int32_t Tokenizer::size() const { return impl_->n(); }
TokenId Tokenizer::bos_id() const { return impl_->bos; }
TokenId Tokenizer::eos_id() const { return impl_->eos; }

bool Tokenizer::IsEndOfGeneration(TokenId id) const {
  return std::find(impl_->eog.begin(), impl_->eog.end(), id) != impl_->eog.end();
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool render_special)
    : tokenizer_(&tokenizer), render_special_(render_special) {}

std::string StreamDecoder::Push(TokenId id) {
  pending_.append(tokenizer_->Piece(id, render_special_));
  // Emit everything up to the start of a trailing sequence that could still be completed.
  size_t cut = pending_.size();
  size_t back = 0;
  for (size_t i = pending_.size(); i > 0 && back < 4; --i, ++back) {
    auto c = static_cast<unsigned char>(pending_[i - 1]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    int len = SequenceLength(c);
    if (len > 1 && pending_.size() - (i - 1) < static_cast<size_t>(len)) cut = i - 1;
    break;
  }
  std::string ready = pending_.substr(0, cut);
  pending_.erase(0, cut);
  return ready;
}

std::string StreamDecoder::Finish() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace hearth::text
