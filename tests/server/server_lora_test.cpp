// `hearth serve` with LoRA adapters: the adapter endpoints (GET/POST /lora-adapters), the
// per-request `lora` field, catalog variants named by `model`, and the slot caches keyed by the
// adapter set. The greedy continuations are checked against llama.cpp's references for the same
// adapter at scales 1 and 0.5 and for the base (../shared/fixtures/lora/README.md): a request
// that switches scale in a slot whose KV cache was computed under another scale must give the
// reference tokens, not stale ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <set>
#include <string>
#include <vector>

#include "../model/ref_check.h"
#include "engine/loaded_model.h"
#include "server/generator.h"
#include "server_test_util.h"

namespace hearth::server::testing {
namespace {

using nlohmann::json;

const std::string kFixtures = std::string(HEARTH_SHARED_DIR) + "/fixtures";
const std::string kModel = kFixtures + "/models/tiny-e.F32.gguf";
const std::string kAdapter = kFixtures + "/lora/adapters/tiny-e.lora-attn-ffn.F32.gguf";
const std::string kCvec = kFixtures + "/lora/adapters/tiny-e.cvec.gguf";

// What llama.cpp's references say a greedy step must produce (README §5, level 2: F32 base,
// fast mode, the same argmax wherever the reference margin is at least 0.5).
struct Expected {
  std::vector<int32_t> prompt;
  std::vector<int32_t> gen;
};

// The argmax after each prefix of sequence `seq` ("batch" rows) and the greedy continuation,
// cut before the first step with a margin below 0.5 or an end-of-generation token.
struct Reference {
  Reference(const std::string& path, const text::Tokenizer& tok, const std::string& seq) {
    model::testing::RefFile ref(path);
    tokens = ref.Ints(seq + ".tokens");
    batch = ref.Rows(seq + ".batch");
    const std::vector<int32_t> gen = ref.Ints(seq + ".gen.tokens");
    const auto rows = ref.Rows(seq + ".gen");
    for (size_t g = 0; g < gen.size(); ++g) {
      if (rows[g].logits[0] - rows[g].logits[1] < 0.5f || tok.IsEndOfGeneration(gen[g])) break;
      continuation.push_back(gen[g]);
    }
  }
  double Margin(size_t t) const { return batch[t].logits[0] - batch[t].logits[1]; }
  // The first token after tokens[0..t].
  Expected Step(size_t t) const {
    return {{tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(t + 1)},
            {batch[t].ids[0]}};
  }
  Expected Continuation() const { return {tokens, continuation}; }

  std::vector<int32_t> tokens;
  std::vector<model::testing::RefRow> batch;
  std::vector<int32_t> continuation;
};

class ServerLora : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::signal(SIGPIPE, SIG_IGN);
    lm_ = engine::LoadedModel::Open(kModel).release();  // for the tokenizer
    EngineOptions eo;
    eo.model_path = kModel;
    eo.n_slots = 1;  // one slot: every request lands on the cache of the one before
    eo.n_ctx = 256;
    eo.n_threads = 1;
    eo.no_spec = true;
    eo.adapters.loras.push_back({kAdapter, 1.0f});
    eo.variants.push_back({"tiny-fix", {{{kAdapter, 0.5f}}, {}}});
    eo.variants.push_back({"broken", {{{kCvec, 1.0f}}, {}}});  // a control vector as a LoRA
    eo.warn = [](const std::string& w) { warnings_.push_back(w); };
    auto gen = MakeEngineGenerator(eo);
    gen_ = gen.get();
    server_ = new TestServer();
    server_->server().SetGenerator(std::move(gen));
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete lm_;
  }
  static json Get(const std::string& path, int want = 200) {
    auto r = server_->Client().Get(path.c_str());
    EXPECT_TRUE(r);
    if (!r) return json();
    EXPECT_EQ(r->status, want) << r->body;
    return json::parse(r->body);
  }
  static json Post(const std::string& path, const std::string& body, int want = 200) {
    auto r = server_->Client().Post(path.c_str(), body, "application/json");
    EXPECT_TRUE(r);
    if (!r) return json();
    EXPECT_EQ(r->status, want) << r->body;
    return json::parse(r->body);
  }

  // Generates greedily from `e.prompt` (reference token ids) in the one slot with the adapters
  // `request` selects, and checks the text against the reference tokens.
  static GenerationResult Check(GenerationRequest request, const Expected& e,
                                bool check_tokens = true) {
    request.raw = true;
    request.prompt = "x";
    request.sampling.temperature = 0;
    request.max_tokens = static_cast<int>(e.gen.size());
    PreparedPrompt p = gen_->Prepare(request);
    p.tokens = e.prompt;
    std::atomic<bool> cancel{false};
    GenerationResult r = gen_->Generate(
        0, request, p, [](const text::ParseDelta&) {}, cancel);
    if (check_tokens) {
      EXPECT_EQ(r.tokens, e.gen) << "after " << e.prompt.size() << " tokens";
    }
    EXPECT_EQ(r.content, lm_->tokenizer().Decode(r.tokens));
    return r;
  }

  static engine::LoadedModel* lm_;
  static Generator* gen_;
  static TestServer* server_;
  static std::vector<std::string> warnings_;
};
engine::LoadedModel* ServerLora::lm_ = nullptr;
Generator* ServerLora::gen_ = nullptr;
TestServer* ServerLora::server_ = nullptr;
std::vector<std::string> ServerLora::warnings_;

GenerationRequest WithLora(std::vector<std::pair<int, float>> scales) {
  GenerationRequest r;
  r.raw = true;
  r.prompt.push_back('x');  // (= "x" trips GCC 12's -Wrestrict false positive here)
  r.lora = std::move(scales);
  return r;
}

TEST_F(ServerLora, ScaleChangesNeverReuseStaleCache) {
  const std::string refs = kFixtures + "/lora/refs/";
  const text::Tokenizer& tok = lm_->tokenizer();
  // `long`: 200 tokens, several sliding windows.
  const Reference s1(refs + "tiny-e.F32.attn-ffn-s1.ref.gguf", tok, "long");
  const Reference s05(refs + "tiny-e.F32.attn-ffn-s0.5.ref.gguf", tok, "long");
  const Reference base(kFixtures + "/refs/tiny-e.F32.ref.gguf", tok, "long");
  ASSERT_EQ(s1.tokens, s05.tokens);
  ASSERT_EQ(s1.tokens, base.tokens);

  // Prefixes where at least two references are decisive and disagree, in order, so that each
  // request's prompt extends what the slot holds, computed under another scale: reusing it would
  // mix the two. Each request's token is checked where its own reference is decisive.
  const Reference* refs_by_set[3] = {&s1, &s05, &base};
  const std::vector<std::pair<int, float>> sets[3] = {{{0, 1.0f}}, {{0, 0.5f}}, {}};
  int checked = 0;
  for (size_t t = 1; t < s1.tokens.size() && checked < 24; ++t) {
    std::set<int32_t> decisive;
    int n_decisive = 0;
    for (const Reference* r : refs_by_set) {
      if (r->Margin(t) >= 0.5) decisive.insert(r->batch[t].ids[0]), ++n_decisive;
    }
    if (n_decisive < 2 || decisive.size() < 2) continue;
    for (int i = 0; i < 3; ++i) {
      const bool check = refs_by_set[i]->Margin(t) >= 0.5;
      checked += check;
      // An empty list is every adapter at 0: the base model.
      EXPECT_EQ(Check(WithLora(sets[i]), refs_by_set[i]->Step(t), check).cached_tokens, 0);
    }
  }
  EXPECT_GE(checked, 12);

  // Whole greedy continuations, as far as the references are decisive; the same scale twice
  // reuses the prompt, another scale does not.
  const Reference m1(refs + "tiny-e.F32.attn-ffn-s1.ref.gguf", tok, "medium");
  const Reference m05(refs + "tiny-e.F32.attn-ffn-s0.5.ref.gguf", tok, "medium");
  const int n = static_cast<int>(m1.tokens.size());
  ASSERT_GE(m1.continuation.size(), 2u);
  ASSERT_GE(m05.continuation.size(), 2u);
  EXPECT_EQ(Check(WithLora({{0, 1.0f}}), m1.Continuation()).cached_tokens, 0);
  EXPECT_EQ(Check(WithLora({{0, 1.0f}}), m1.Continuation()).cached_tokens, n - 1);
  EXPECT_EQ(Check(WithLora({{0, 0.5f}}), m05.Continuation()).cached_tokens, 0);
  EXPECT_EQ(Check(WithLora({{0, 0.5f}}), m05.Continuation()).cached_tokens, n - 1);
  // No `lora` field: the server's scales (1, from --lora).
  EXPECT_EQ(Check(GenerationRequest{}, m1.Continuation()).cached_tokens, 0);
  // The catalog variant at 0.5 computes what the `lora` field at 0.5 does: same key, reused.
  GenerationRequest variant;
  variant.model = "tiny-fix";
  EXPECT_EQ(Check(variant, m05.Continuation()).cached_tokens, 0);
  EXPECT_EQ(Check(WithLora({{0, 0.5f}}), m05.Continuation()).cached_tokens, n - 1);
  // The slot picker's view agrees: a prompt under another adapter set has no cached prefix.
  PreparedPrompt p = gen_->Prepare(WithLora({{0, 1.0f}}));
  p.tokens = m1.tokens;
  EXPECT_EQ(gen_->CachedPrefix(0, p), 0);
  p = gen_->Prepare(WithLora({{0, 0.5f}}));
  p.tokens = m1.tokens;
  EXPECT_EQ(gen_->CachedPrefix(0, p), n);
}

TEST_F(ServerLora, AdapterEndpointsListAndSetScales) {
  // The --lora adapter, then the variant's (scale 0 unless a request names it).
  json list = Get("/lora-adapters");
  ASSERT_EQ(list.size(), 2u) << list.dump();
  EXPECT_EQ(list[0]["id"], 0);
  EXPECT_EQ(list[0]["path"], kAdapter);
  EXPECT_EQ(list[0]["scale"], 1.0);
  EXPECT_EQ(list[1]["id"], 1);
  EXPECT_EQ(list[1]["scale"], 0.0);

  EXPECT_EQ(Post("/lora-adapters", R"([{"id": 0, "scale": 0.5}])"), json({{"success", true}}));
  list = Get("/lora-adapters");
  EXPECT_EQ(list[0]["scale"], 0.5);
  EXPECT_EQ(list[1]["scale"], 0.0);
  // Requests without a `lora` field now run at 0.5.
  const Reference s05(kFixtures + "/lora/refs/tiny-e.F32.attn-ffn-s0.5.ref.gguf", lm_->tokenizer(),
                      "medium");
  Check(GenerationRequest{}, s05.Continuation());

  // Adapters not named get 0 (llama-server's rule): an empty list is the base model.
  Post("/lora-adapters", "[]");
  EXPECT_EQ(Get("/lora-adapters")[0]["scale"], 0.0);
  // Malformed bodies and unknown ids are refused, and change nothing.
  Post("/lora-adapters", R"([{"id": 0, "scale": 1}])");
  for (const char* bad :
       {R"([{"id": 2, "scale": 1}])", R"([{"id": -1, "scale": 1}])", R"([{"id": 0}])",
        R"([{"id": 0, "scale": "1"}])", R"([{"id": 0, "scale": 1, "x": 2}])",
        R"({"id": 0, "scale": 1})", R"([{"id": 0, "scale": 1}, {"id": 0, "scale": 2}])", "[", ""}) {
    const json err = Post("/lora-adapters", bad, 400);
    EXPECT_TRUE(err.contains("error")) << bad;
  }
  EXPECT_EQ(Get("/lora-adapters")[0]["scale"], 1.0);
}

TEST_F(ServerLora, LoraFieldOverHttp) {
  auto complete = [](const std::string& lora) {
    return Post(
        "/v1/completions",
        R"({"prompt": "The cat", "max_tokens": 6, "temperature": 0, "lora": )" + lora + "}");
  };
  const json a = complete(R"([{"id": 0, "scale": 1.0}])");
  const json b = complete(R"([{"id": 0, "scale": 0.5}])");
  const json c = complete(R"([{"id": 0, "scale": 1.0}])");
  EXPECT_EQ(a["choices"][0]["text"], c["choices"][0]["text"]);
  EXPECT_NE(a["choices"][0]["text"], b["choices"][0]["text"]);
  EXPECT_EQ(b["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_EQ(c["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  // An id that is not loaded, and a malformed field, are the client's errors.
  auto r = server_->Client().Post(
      "/v1/completions", R"({"prompt": "x", "lora": [{"id": 7, "scale": 1}]})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("adapter id 7"), std::string::npos) << r->body;
  r = server_->Client().Post("/v1/completions", R"({"prompt": "x", "lora": {"id": 0}})",
                             "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
}

TEST_F(ServerLora, CatalogVariantIsAModelOfItsOwn) {
  // The variant that loads is listed next to the model; the one that does not is left out with
  // a warning naming it.
  const json tags = Get("/api/tags");
  ASSERT_EQ(tags["models"].size(), 2u) << tags.dump();
  EXPECT_EQ(tags["models"][1]["name"], "tiny-fix");
  EXPECT_EQ(tags["models"][1]["details"]["parent_model"], tags["models"][0]["name"]);
  const json models = Get("/v1/models");
  ASSERT_EQ(models["data"].size(), 2u);
  EXPECT_EQ(models["data"][1]["id"], "tiny-fix");
  EXPECT_EQ(Get("/v1/models/tiny-fix")["id"], "tiny-fix");
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_NE(warnings_[0].find("broken"), std::string::npos) << warnings_[0];

  // Ollama's API naming the variant runs it with its adapter (scale 0.5), and says its name.
  auto generate = [](const std::string& model) {
    return Post("/api/generate", R"({"model": ")" + model +
                                     R"(", "prompt": "The cat", "raw": true, "stream": false,
                                         "options": {"temperature": 0, "num_predict": 6}})");
  };
  const json v = generate("tiny-fix");
  EXPECT_EQ(v["model"], "tiny-fix");
  const json half = Post("/v1/completions", R"({"prompt": "The cat", "max_tokens": 6,
      "temperature": 0, "lora": [{"id": 0, "scale": 0.5}]})");
  EXPECT_EQ(v["response"], half["choices"][0]["text"]);
  const json full = Post("/v1/completions", R"({"prompt": "The cat", "max_tokens": 6,
      "temperature": 0, "lora": [{"id": 0, "scale": 1}]})");
  EXPECT_NE(v["response"], full["choices"][0]["text"]);
}

}  // namespace
}  // namespace hearth::server::testing
