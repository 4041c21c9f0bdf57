// The persisted prefix's two halves in the engine: the snapshot's byte format (every malformed
// shape refused, never read past its end) and Session's use of a store (a later session starts
// from a checkpoint inside the common prefix and generates exactly what a session without the
// store generates, with plain decoding and with speculation).
#include "engine/prefix_store.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/session.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace hearth::engine {
namespace {

KvSnapshot Sample() {
  KvSnapshot s;
  s.tokens = {2, 105, 9, 9, 106, 7, 8};
  s.full = std::string("full-bytes\0x", 12);
  s.sliding = {{2, "at-two"}, {6, std::string("at\0six", 6)}};
  return s;
}

TEST(PrefixSnapshot, RoundTrips) {
  const KvSnapshot s = Sample();
  const std::optional<KvSnapshot> back = ParseSnapshot(SerializeSnapshot(s));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->tokens, s.tokens);
  EXPECT_EQ(back->full, s.full);
  EXPECT_EQ(back->sliding, s.sliding);
}

TEST(PrefixSnapshot, MalformedBytesAreRefused) {
  const std::string bytes = SerializeSnapshot(Sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(ParseSnapshot(bytes.substr(0, n)).has_value()) << "cut at " << n;
  }
  EXPECT_FALSE(ParseSnapshot(bytes + "x").has_value());
  std::string magic = bytes;
  magic[0] = 'X';
  EXPECT_FALSE(ParseSnapshot(magic).has_value());
  KvSnapshot descending = Sample();
  std::swap(descending.sliding[0], descending.sliding[1]);
  EXPECT_FALSE(ParseSnapshot(SerializeSnapshot(descending)).has_value());
  KvSnapshot outside = Sample();
  outside.sliding[1].first = 7;  // == tokens.size(): no such position to resume before
  EXPECT_FALSE(ParseSnapshot(SerializeSnapshot(outside)).has_value());
  // A token count far beyond the bytes present must not allocate or read it.
  std::string huge = bytes;
  huge[8] = '\xff';
  huge[15] = '\x7f';
  EXPECT_FALSE(ParseSnapshot(huge).has_value());
}

TEST(PrefixSnapshot, BestCheckpointStaysInsideTheCommonPrefix) {
  const KvSnapshot s = Sample();
  const std::vector<int32_t> same = s.tokens;
  EXPECT_EQ(s.BestCheckpoint(same, same.size() - 1), 6);
  EXPECT_EQ(s.BestCheckpoint(same, 5), 2);
  const std::vector<int32_t> differs_at_4 = {2, 105, 9, 9, 1, 7, 8};
  EXPECT_EQ(s.BestCheckpoint(differs_at_4, 6), 2);
  const std::vector<int32_t> differs_at_1 = {2, 1, 9};
  EXPECT_EQ(s.BestCheckpoint(differs_at_1, 2), 0);
}

// A store in memory, as the agent's file store behaves within one process: it hands out what
// was saved and wants every snapshot.
class MemoryStore : public PrefixStore {
 public:
  std::shared_ptr<const KvSnapshot> Load() override { return saved; }
  bool WantsSnapshot(size_t) override { return true; }
  void Save(const KvSnapshot& s) override { saved = std::make_shared<KvSnapshot>(s); }
  std::shared_ptr<const KvSnapshot> saved;
};

std::string Fixture(const std::string& name) {
  return std::string(HEARTH_SHARED_DIR) + "/fixtures/models/" + name + ".gguf";
}

struct SessionCase {
  const char* model;
  int lookup;  // 0: plain decoding; else prompt lookup (Generate prefills all but the last token)
};

class SessionPrefixStore : public ::testing::TestWithParam<SessionCase> {};

TEST_P(SessionPrefixStore, ALaterSessionStartsAtACheckpointAndGeneratesTheSame) {
  const auto model = model::Model::Load(Fixture(GetParam().model));
  const text::Tokenizer tok = text::Tokenizer::Load(Fixture(GetParam().model));
  std::string system = "<|turn>system\nYou answer questions about a repository.\n";
  for (int i = 0; i < 10; ++i) system += "file src/module" + std::to_string(i) + ".cc: code\n";
  system += "<turn|>\n";
  const auto prompt = [&](const std::string& question) {
    return tok.Encode(system + "<|turn>user\n" + question + "<turn|>\n<|turn>model\n", true);
  };
  const std::vector<int32_t> first = prompt("Where is the parser?");
  const std::vector<int32_t> second = prompt("Which tests cover the lexer and why?");
  const int system_tokens = static_cast<int>(tok.Encode(system, true).size());
  ASSERT_GT(system_tokens, 200);  // several sliding windows and batches long

  model::ContextOptions o;
  o.n_ctx = 1024;
  o.n_ubatch = 32;
  GenerateOptions g;
  g.max_tokens = 12;
  g.sampling.temperature = 0;
  g.stop_at_eog = false;
  SpeculationOptions spec;
  spec.lookup = GetParam().lookup;
  const auto run = [&](const std::vector<int32_t>& p, PrefixStore* store, int* restored) {
    Session s(*model, tok, o);
    s.SetSpeculation(spec);
    s.SetPrefixStore(store);
    const GenerateResult r = s.Generate(p, g);
    if (restored) *restored = s.n_restored();
    return r.tokens;
  };

  MemoryStore store;
  int restored = -1;
  const std::vector<int32_t> want_first = run(first, nullptr, nullptr);
  EXPECT_EQ(run(first, &store, &restored), want_first);
  EXPECT_EQ(restored, 0);
  ASSERT_NE(store.saved, nullptr);
  // A checkpoint where the question's turn starts (the system turn ends with "<turn|>\n").
  bool at_turn = false;
  for (const auto& [pos, bytes] : store.saved->sliding) at_turn |= pos == system_tokens;
  EXPECT_TRUE(at_turn);

  // Another question: everything up to its turn comes from the store.
  const std::vector<int32_t> want_second = run(second, nullptr, nullptr);
  EXPECT_EQ(run(second, &store, &restored), want_second);
  EXPECT_EQ(restored, system_tokens);
  // The same prompt again: all but its last token (or last two with lookup, whose Generate
  // prefills all but the last) come from the store.
  EXPECT_EQ(run(second, &store, &restored), want_second);
  EXPECT_EQ(restored, static_cast<int>(second.size()) - (GetParam().lookup ? 2 : 1));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SessionPrefixStore,
                         ::testing::Values(SessionCase{"tiny-e.Q4_K_M", 0},
                                           SessionCase{"tiny-moe.Q8_0", 0},
                                           SessionCase{"tiny-dense.Q4_0", 3}),
                         [](const auto& param_info) {
                           std::string name = param_info.param.model;
                           for (char& ch : name) {
                             if (ch == '.' || ch == '-') ch = '_';
                           }
                           return name + (param_info.param.lookup ? "_lookup" : "_plain");
                         });

}  // namespace
}  // namespace hearth::engine
