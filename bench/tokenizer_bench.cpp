// Encoding speed of the Gemma 4 tokenizer on a generated multi-MB mixed source-code corpus
// (C++, Python, JavaScript, JSON, Markdown prose with some non-ASCII, a minified line), plus
// vocabulary load time. Bytes/s is reported as MB/s. The vocabulary comes from
// $HEARTH_BENCH_VOCAB or the shared fixture.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "text/tokenizer.h"

namespace {

std::string VocabPath() {
  const char* env = std::getenv("HEARTH_BENCH_VOCAB");
  return env ? env : std::string(HEARTH_SHARED_DIR) + "/fixtures/tokenizer/gemma-4-vocab.gguf";
}

const hearth::text::Tokenizer& Vocab() {
  static const auto* t = new hearth::text::Tokenizer(hearth::text::Tokenizer::Load(VocabPath()));
  return *t;
}

// Deterministic corpus of about `bytes` bytes; snippets vary by a counter so lines differ.
std::string Corpus(size_t bytes) {
  std::string out;
  out.reserve(bytes + 4096);
  for (unsigned i = 0; out.size() < bytes; ++i) {
    std::string n = std::to_string(i);
    switch (i % 6) {
      case 0:
        out += "#include <vector>\n\nnamespace demo_" + n +
               " {\n\n// Sums the values; returns 0 for an empty input.\nint Sum" + n +
               "(const std::vector<int>& values) {\n  int total = 0;\n  for (int v : values) "
               "total += v;\n  return total;\n}\n\n}  // namespace demo_" + n + "\n\n";
        break;
      case 1:
        out += "def parse_line_" + n + "(line: str) -> dict:\n    \"\"\"Split 'key=value' pairs.\"\"\"\n"
               "    result = {}\n    for part in line.split(';'):\n        if '=' in part:\n"
               "            k, v = part.split('=', 1)\n            result[k.strip()] = v.strip()\n"
               "    return result\n\n";
        break;
      case 2:
        out += "export async function fetchUser" + n + "(id) {\n  const res = await fetch(`/api/users/${id}`);\n"
               "  if (!res.ok) throw new Error(`HTTP ${res.status}`);\n  return res.json();\n}\n\n";
        break;
      case 3:
        out += "{\"id\": " + n + ", \"name\": \"item-" + n +
               "\", \"tags\": [\"a\", \"b\"], \"price\": 12.5, \"active\": true}\n";
        break;
      case 4:
        out += "## Section " + n + "\n\nThe café’s naïve façade — “quoted” text, 日本語の説明, and "
               "emoji 🚀 appear here.\tTabs\tand    spaces    too.\n\n";
        break;
      case 5:
        out += "var a" + n + "=function(b,c){return b.map(function(d){return d*c+" + n +
               "}).filter(Boolean).join(',')};";
        break;
    }
  }
  return out;
}

void BM_Encode(benchmark::State& state) {
  const auto& t = Vocab();
  std::string corpus = Corpus(static_cast<size_t>(state.range(0)) << 20);
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = t.Encode(corpus, false, true);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["bytes_per_token"] = static_cast<double>(corpus.size()) / tokens;
}
BENCHMARK(BM_Encode)->Arg(10)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_Decode(benchmark::State& state) {
  const auto& t = Vocab();
  std::string corpus = Corpus(10u << 20);
  auto ids = t.Encode(corpus, false, true);
  for (auto _ : state) {
    std::string text = t.Decode(ids, true);
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus.size()));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

void BM_LoadVocabulary(benchmark::State& state) {
  for (auto _ : state) {
    auto t = hearth::text::Tokenizer::Load(VocabPath());
    benchmark::DoNotOptimize(&t);
  }
}
BENCHMARK(BM_LoadVocabulary)->Unit(benchmark::kMillisecond);

}  // namespace
