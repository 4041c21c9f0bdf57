// Building, updating, searching and mapping a small hand-made repository; crash safety.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "base/error.h"
#include "index/index.h"
#include "index/ranking.h"
#include "test_util.h"

namespace hearth::index {
namespace {

using testing::TempDir;
using testing::WriteFile;
namespace fs = std::filesystem;

// A small repository where the right answer to each query is known by construction.
void MakeRepo(const fs::path& root) {
  WriteFile(root / "net/socks.c",
            "/* SOCKS5 proxy handshake. */\n"
            "int socks5_connect(int fd, const char *hostname) {\n"
            "  size_t len = strlen(hostname);\n"
            "  if (len > 255) return SOCKS_ERR_HOSTNAME_TOO_LONG;\n"
            "  send_greeting(fd);\n"
            "  return resolve_remote(fd, hostname, len);\n"
            "}\n");
  WriteFile(root / "net/http.c",
            "int http_parse_header(const char *line, struct header *out) {\n"
            "  const char *colon = strchr(line, ':');\n"
            "  if (!colon) return -1;\n"
            "  out->name = strndup(line, colon - line);\n"
            "  out->value = strdup(colon + 1);\n"
            "  return 0;\n"
            "}\n");
  WriteFile(root / "util/strings.py",
            "def camel_to_snake(name):\n"
            "    out = []\n"
            "    for ch in name:\n"
            "        if ch.isupper():\n"
            "            out.append('_')\n"
            "        out.append(ch.lower())\n"
            "    return ''.join(out)\n");
  WriteFile(root / "app/main.py",
            "from util.strings import camel_to_snake\n"
            "\n"
            "def run(args):\n"
            "    name = camel_to_snake(args[0])\n"
            "    print(name)\n"
            "    print(len(name))\n"
            "    return 0\n");
  WriteFile(root / "app/cli.py",
            "from util.strings import camel_to_snake\n"
            "\n"
            "def main():\n"
            "    value = camel_to_snake('HelloWorld')\n"
            "    print(value)\n"
            "    print(value.upper())\n"
            "    return value\n");
  WriteFile(root / "README.md", "# demo\n\nA demo repository for hearth's index tests.\n");
}

BuildStats Index(const fs::path& root, bool rebuild = false) {
  BuildOptions o;
  o.root = root;
  o.rebuild = rebuild;
  return BuildIndex(o);
}

std::vector<std::string> TopPaths(const fs::path& root, const std::string& q, int n = 5) {
  SearchOptions so;
  so.query = q;
  so.limit = n;
  std::vector<std::string> out;
  for (const auto& h : Search(root, so)) out.push_back(h.path);
  return out;
}

TEST(Index, BuildsAndSearchesAHandMadeRepo) {
  TempDir t;
  MakeRepo(t.path());
  BuildStats s = Index(t.path());
  EXPECT_EQ(s.files_indexed, 6u);
  EXPECT_GT(s.chunks, 5u);
  EXPECT_GT(s.symbols, 5u);
  EXPECT_TRUE(fs::exists(t.path() / ".hearth/index.db"));

  auto top = TopPaths(t.path(), "socks: return error if hostname too long for remote resolve");
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top[0], "net/socks.c");
  top = TopPaths(t.path(), "parse HTTP header line without colon");
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top[0], "net/http.c");
  // An identifier in camelCase finds its snake_case definition through the split tokens.
  top = TopPaths(t.path(), "camelToSnake conversion");
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top[0], "util/strings.py");
}

TEST(Index, SearchReportsChunksSignalsAndFilters) {
  TempDir t;
  MakeRepo(t.path());
  Index(t.path());
  SearchOptions so;
  so.query = "camel_to_snake";
  so.limit = 10;
  auto hits = Search(t.path(), so);
  ASSERT_GE(hits.size(), 3u);
  EXPECT_EQ(hits[0].path, "util/strings.py");  // defines it: the symbol column weighs double
  ASSERT_FALSE(hits[0].chunks.empty());
  EXPECT_EQ(hits[0].chunks[0].symbol, "camel_to_snake");
  EXPECT_EQ(hits[0].chunks[0].start_line, 1);
  EXPECT_EQ(hits[0].chunks[0].end_line, 7);
  ASSERT_FALSE(hits[0].chunks[0].signals.empty());
  EXPECT_EQ(hits[0].chunks[0].signals[0].signal, "bm25");
  EXPECT_EQ(hits[0].chunks[0].signals[0].rank, 1);
  // --explain's file-level view: the fused lexical list ranks it first.
  ASSERT_FALSE(hits[0].file_signals.empty());
  EXPECT_EQ(hits[0].file_signals[0].signal, "bm25");
  EXPECT_EQ(hits[0].file_signals[0].rank, 1);
  EXPECT_GT(hits[0].file_signals[0].contribution, 0);

  so.language = "c";
  for (const auto& h : Search(t.path(), so)) EXPECT_EQ(h.language, "c");
  so.language.clear();
  so.path_glob = "app/*";
  auto app = Search(t.path(), so);
  ASSERT_EQ(app.size(), 2u);
  for (const auto& h : app) EXPECT_EQ(h.path.rfind("app/", 0), 0u);
}

// Issue texts are mostly prose around a few identifiers; the identifier written as code must
// decide, not the prose words that a chatty file repeats.
TEST(Index, IdentifierInIssueTextOutweighsProse) {
  TempDir t;
  WriteFile(t.path() / "docs_gen.c",
            "/* The queue may be empty when the worker wakes up; an empty queue is fine. Data\n"
            " * is lost only when the worker crashes. Lost data, empty queue, worker crashes. */\n"
            "int worker_wake(int q) {\n  /* empty queue: worker sleeps, no data lost */\n"
            "  return q;\n}\n");
  WriteFile(t.path() / "ring.c",
            "static int ring_pop_locked(int *r) {\n  return r[0];\n}\n"
            "int tail(int x) {\n  return x + 1;\n}\n");
  Index(t.path());
  auto top = TopPaths(t.path(),
                      "Data is lost when the worker wakes up on an empty queue: "
                      "ring_pop_locked() returns a stale slot");
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top[0], "ring.c");
}

// A function whose name is the query identifier beats one that merely calls it several times.
TEST(Index, DefinitionByNameBeatsRepeatedCalls) {
  TempDir t;
  WriteFile(t.path() / "caller.py",
            "def run_all(jobs):\n    flush_pending(jobs)\n    flush_pending(jobs)\n"
            "    flush_pending(jobs)\n    return jobs\n");
  WriteFile(t.path() / "store.py",
            "def flush_pending(jobs):\n    for j in jobs:\n        j.write()\n"
            "    jobs.clear()\n");
  Index(t.path());
  auto top = TopPaths(t.path(), "flush_pending drops jobs");
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top[0], "store.py");
}

// The def and graph signals (ranking.h): a file that defines an identifier the query writes as
// code, and a file that defines what the best-matching code calls, though neither shares a word
// with the query, are found only with those signals on, and say why in their file signals.
TEST(Index, DefinitionAndCallGraphSignalsFindFilesWithoutTheQuerysWords) {
  TempDir t;
  WriteFile(t.path() / "server.c",
            "int handle_request(int timeout) {\n  /* request timeout handling */\n"
            "  return zz_backoff_impl(timeout);\n}\n");
  WriteFile(t.path() / "backoff.c", "int zz_backoff_impl(int t) {\n  return t * 2;\n}\n");
  WriteFile(t.path() / "other.c", "int unrelated_thing(void) {\n  return 0;\n}\n");
  WriteFile(t.path() / "lib.c", "int qq_reset_state(void) {\n  return 1;\n}\n");
  Index(t.path());
  SearchOptions so;
  so.query = "request timeout handling is wrong, see qq_reset_state()";
  so.limit = 10;
  auto paths = [&](const RankParams& p) {
    std::vector<std::string> out;
    for (const auto& h : SearchWith(t.path(), so, p)) out.push_back(h.path);
    return out;
  };
  RankParams off;
  off.path_weight = 0;
  const auto plain = paths(off);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), "backoff.c"), 0);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), "other.c"), 0);
  RankParams on = off;
  on.def_weight = 1;
  on.graph_weight = 1;
  const auto hits = SearchWith(t.path(), so, on);
  std::map<std::string, std::vector<std::string>> signals;
  for (const auto& h : hits) {
    for (const auto& s : h.file_signals) signals[h.path].push_back(s.signal);
  }
  ASSERT_TRUE(signals.count("backoff.c"));
  EXPECT_EQ(signals["backoff.c"][0], "graph");  // no word of the query: found by the call only
  ASSERT_TRUE(signals.count("lib.c"));
  EXPECT_NE(std::find(signals["lib.c"].begin(), signals["lib.c"].end(), "def"),
            signals["lib.c"].end());
  EXPECT_EQ(signals.count("other.c"), 0u);  // neither defines nor is called
  EXPECT_EQ(signals["server.c"][0], "bm25");
}

// Pseudo-relevance feedback (RankParams::prf_weight): table.c shares no word with the query, but
// the chunk that matches it best (server.c) uses zq_frobnicate_table, which table.c is full of,
// so the feedback search finds it and says so ("prf" first in its signals); with feedback off it
// is not found. noise.py shares no word with either.
TEST(Index, PseudoRelevanceFeedbackFindsFilesThroughTheTopChunksWords) {
  TempDir t;
  WriteFile(t.path() / "server.c",
            "int handle_request(int timeout) {\n  /* request timeout handling */\n"
            "  return zq_frobnicate_table(timeout);\n}\n");
  WriteFile(t.path() / "table.c",
            "static int zq_frobnicate_table_size;\n"
            "int zq_frobnicate_table(int n) {\n  zq_frobnicate_table_size = n;\n  return n;\n}\n");
  WriteFile(t.path() / "noise.py", "def unrelated_thing():\n    pass\n");
  Index(t.path());
  SearchOptions so;
  so.query = "request timeout handling is wrong";
  so.limit = 10;
  RankParams off;
  off.path_weight = 0;
  std::vector<std::string> plain;
  for (const auto& h : SearchWith(t.path(), so, off)) plain.push_back(h.path);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), "table.c"), 0);
  RankParams on = off;
  on.prf_weight = 1;
  std::map<std::string, std::vector<std::string>> signals;
  for (const auto& h : SearchWith(t.path(), so, on)) {
    for (const auto& s : h.file_signals) signals[h.path].push_back(s.signal);
  }
  ASSERT_TRUE(signals.count("table.c"));
  EXPECT_EQ(signals["table.c"][0], "prf");
  EXPECT_EQ(signals.count("noise.py"), 0u);
  ASSERT_TRUE(signals.count("server.c"));
  EXPECT_EQ(signals["server.c"][0], "bm25");
  // The same search evaluated exhaustively ranks the same files.
  SearchOptions ex = so;
  ex.evaluation = SearchOptions::Evaluation::kExhaustive;
  std::vector<std::string> a, b;
  for (const auto& h : SearchWith(t.path(), so, on)) a.push_back(h.path);
  for (const auto& h : SearchWith(t.path(), ex, on)) b.push_back(h.path);
  EXPECT_EQ(a, b);
}

// The default term-at-a-time evaluation must rank exactly as hearth_rank scoring every matching
// chunk does: same chunks, same scores to the bit, same order, at every depth and with filters.
// The repo mixes chunk lengths (the evaluation bounds a chunk's score by its query-term count
// before it reads the length), repeated terms, symbol/path/body columns, languages and paths.
TEST(Index, TermAtATimeEvaluationEqualsExhaustive) {
  TempDir t;
  MakeRepo(t.path());
  const char* words[] = {"alpha", "beta", "gamma", "delta", "parse_header", "socket", "buffer"};
  for (int i = 0; i < 30; ++i) {
    std::string body;
    for (int j = 0; j <= i % 7; ++j) {
      body += std::string(words[(i * 3 + j) % 7]) + " ";
      if ((i + j) % 4 == 0) body += "filler words that lengthen the chunk ";
    }
    const std::string name = "f" + std::to_string(i);
    if (i % 3 == 0) {
      WriteFile(t.path() / "src" / (name + ".py"), "def " + std::string(words[i % 7]) + "_" + name +
                                                       "(x):\n    # " + body + "\n    return x\n");
    } else {
      WriteFile(t.path() / (i % 2 ? "lib" : "doc") / (name + ".txt"), body + "\n");
    }
  }
  Index(t.path());
  auto expect_same = [&](bool check_pruning) {
    for (const char* query : {"alpha beta gamma", "parse_header() socket buffer delta",
                              "gamma gamma filler", "socket", "nothing matches zzz"}) {
      for (int depth : {1, 2, 3, 5, 10, 1000}) {
        for (const char* lang : {"", "python"}) {
          for (const char* glob : {"", "lib/*"}) {
            SearchOptions so;
            so.query = query;
            so.limit = 50;
            so.chunks_per_file = 100;
            so.chunk_depth = depth;
            so.language = lang;
            so.path_glob = glob;
            so.evaluation = SearchOptions::Evaluation::kExhaustive;
            auto all = Search(t.path(), so);
            so.evaluation = SearchOptions::Evaluation::kTermAtATime;
            SearchOptions::Stats stats;
            so.stats = &stats;
            auto fast = Search(t.path(), so);
            const std::string where = std::string(query) + " depth " + std::to_string(depth) +
                                      " lang '" + lang + "' glob '" + glob + "'";
            ASSERT_EQ(all.size(), fast.size()) << where;
            if (!*lang && !*glob && std::string(query) != "nothing matches zzz") {
              ASSERT_FALSE(all.empty()) << where;
            }
            for (size_t i = 0; i < all.size(); ++i) {
              EXPECT_EQ(all[i].path, fast[i].path) << where << " rank " << i;
              EXPECT_EQ(all[i].score, fast[i].score) << where << " rank " << i;
              ASSERT_EQ(all[i].chunks.size(), fast[i].chunks.size()) << where;
              for (size_t c = 0; c < all[i].chunks.size(); ++c) {
                EXPECT_EQ(all[i].chunks[c].score, fast[i].chunks[c].score) << where;
                EXPECT_EQ(all[i].chunks[c].start_line, fast[i].chunks[c].start_line) << where;
                ASSERT_FALSE(fast[i].chunks[c].signals.empty());
                EXPECT_EQ(all[i].chunks[c].signals[0].rank, fast[i].chunks[c].signals[0].rank);
              }
            }
            if (check_pruning && std::string(query) == "alpha beta gamma" && depth == 1 && !*lang &&
                !*glob) {
              // The bound prunes: far fewer chunks than the ~20 holding a term get a length lookup.
              EXPECT_GE(stats.chunks_scored, 1);
              EXPECT_LT(stats.chunks_scored, 10);
            }
          }
        }
      }
    }
  };
  expect_same(true);
  // Chunk ids far apart (as after many incremental runs): the evaluation's id-indexed arrays
  // give way to hash maps, with the same results.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((t.path() / ".hearth/index.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE chunks SET id = id * 1000003 + 50000000;"
                         "UPDATE chunks_fts SET rowid = rowid * 1000003 + 50000000;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  expect_same(false);
}

TEST(Index, QueriesWithFts5SyntaxNeverFail) {
  TempDir t;
  MakeRepo(t.path());
  Index(t.path());
  for (const char* q : {"\"unterminated", "AND OR NOT", "NEAR(a b", "col:value", "*", "^start",
                        "a - b + c", "{symbol}: x", "()", "''", "\\", "\xff\xfe bad utf8"}) {
    SearchOptions so;
    so.query = q;
    EXPECT_NO_THROW(Search(t.path(), so)) << q;
  }
}

TEST(Index, IncrementalUpdate) {
  TempDir t;
  MakeRepo(t.path());
  Index(t.path());
  BuildStats again = Index(t.path());
  EXPECT_EQ(again.files_indexed, 0u);
  EXPECT_EQ(again.files_unchanged, 6u);

  // Same content, new mtime: the hash says unchanged.
  fs::last_write_time(t.path() / "net/http.c",
                      fs::last_write_time(t.path() / "net/http.c") + std::chrono::seconds(5));
  BuildStats touched = Index(t.path());
  EXPECT_EQ(touched.files_indexed, 0u);
  EXPECT_EQ(touched.files_unchanged, 6u);

  WriteFile(t.path() / "net/http.c", "int http_send_chunked_trailer(int fd) {\n  return 0;\n}\n");
  fs::remove(t.path() / "util/strings.py");
  BuildStats changed = Index(t.path());
  EXPECT_EQ(changed.files_indexed, 1u);
  EXPECT_EQ(changed.files_unchanged, 4u);
  EXPECT_EQ(changed.files_removed, 1u);
  auto top = TopPaths(t.path(), "chunked trailer");
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top[0], "net/http.c");
  EXPECT_TRUE(TopPaths(t.path(), "http_parse_header").empty() ||
              TopPaths(t.path(), "http_parse_header")[0] != "net/http.c" ||
              FindSymbol(t.path(), "http_parse_header").empty());
  EXPECT_TRUE(FindSymbol(t.path(), "http_parse_header").empty());
  EXPECT_TRUE(FindSymbol(t.path(), "camel_to_snake").size() >= 2u);  // refs remain in app/
  for (const auto& u : FindSymbol(t.path(), "camel_to_snake")) EXPECT_FALSE(u.definition);
}

TEST(Index, OddFilesAreHandledAndCounted) {
  TempDir t;
  WriteFile(t.path() / "ok.c", "int ok(void) { return 0; }\n");
  WriteFile(t.path() / "empty.py", "");
  WriteFile(t.path() / "crlf.c", "int a(void) {\r\n  return 1;\r\n}\r\n");
  WriteFile(t.path() / "latin1.c", "/* caf\xe9 */\nint latin(void) { return 2; }\n");
  WriteFile(t.path() / "blob.bin", std::string("\x7f"
                                               "ELF\0\0\0binary",
                                               13));
  WriteFile(t.path() / "app.min.js", "var a=1;");
  std::string minified = "var x=" + std::string(9000, '1') + ";";
  WriteFile(t.path() / "bundle.js", minified);
  WriteFile(t.path() / "gen.go", "// Code generated by protoc-gen-go. DO NOT EDIT.\npackage x\n");
  std::string huge;
  for (int i = 0; i < 100000; ++i)
    huge += "int v" + std::to_string(i) + " = " + std::to_string(i) + ";\n";
  WriteFile(t.path() / "huge.c", huge);  // 100k lines, ~1.8 MB: over the default limit
  BuildOptions o;
  o.root = t.path();
  o.max_file_size = 4 << 20;
  BuildStats s = BuildIndex(o);
  EXPECT_EQ(s.skipped["binary"], 1u);
  EXPECT_EQ(s.skipped["minified"], 2u);
  EXPECT_EQ(s.skipped["generated"], 1u);
  EXPECT_EQ(s.notes["empty"], 1u);
  EXPECT_EQ(s.notes["crlf"], 1u);
  EXPECT_EQ(s.notes["invalid_utf8"], 1u);
  EXPECT_EQ(s.files_indexed, 5u);  // ok, empty, crlf, latin1, huge
  auto huge_hits = TopPaths(t.path(), "v99999");
  ASSERT_FALSE(huge_hits.empty());
  EXPECT_EQ(huge_hits[0], "huge.c");
  auto latin = TopPaths(t.path(), "latin");
  ASSERT_FALSE(latin.empty());
  EXPECT_EQ(latin[0], "latin1.c");

  // A re-run does not re-read the skipped files either, and counts them the same.
  BuildStats again = BuildIndex(o);
  EXPECT_EQ(again.files_indexed, 0u);
  EXPECT_EQ(again.skipped["binary"], 1u);
  EXPECT_EQ(again.skipped["minified"], 2u);

  // With the default 1 MB limit the 100k-line file is now too large: it leaves the index.
  o.max_file_size = 1 << 20;
  BuildStats smaller = BuildIndex(o);
  EXPECT_EQ(smaller.skipped["too_large"], 1u);
  EXPECT_EQ(smaller.files_removed, 1u);
}

TEST(Index, CorruptOrForeignDatabaseGivesClearErrorAndRebuildRecovers) {
  TempDir t;
  MakeRepo(t.path());
  WriteFile(t.path() / ".hearth/index.db", std::string(8192, 'x'));
  try {
    Index(t.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
    EXPECT_NE(e.Describe().find("--rebuild"), std::string::npos) << e.Describe();
  }
  SearchOptions so;
  so.query = "socks";
  EXPECT_THROW(Search(t.path(), so), Error);
  EXPECT_EQ(Index(t.path(), /*rebuild=*/true).files_indexed, 6u);
  EXPECT_FALSE(Search(t.path(), so).empty());

  // A valid SQLite file that is not ours.
  fs::remove_all(t.path() / ".hearth");
  fs::create_directories(t.path() / ".hearth");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((t.path() / ".hearth/index.db").c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE x(y)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  try {
    Index(t.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(e.Describe().find("not a hearth index"), std::string::npos) << e.Describe();
  }
  EXPECT_EQ(Index(t.path(), true).files_indexed, 6u);
}

TEST(Index, SymbolsListDefinitionsAndReferences) {
  TempDir t;
  MakeRepo(t.path());
  Index(t.path());
  auto uses = FindSymbol(t.path(), "camel_to_snake");
  ASSERT_GE(uses.size(), 3u);
  EXPECT_TRUE(uses[0].definition);
  EXPECT_EQ(uses[0].path, "util/strings.py");
  EXPECT_EQ(uses[0].line, 1);
  int refs = 0;
  for (const auto& u : uses) refs += !u.definition;
  EXPECT_EQ(refs, 2);  // the calls in app/main.py and app/cli.py
}

TEST(Index, RepoMapRanksTheSharedDefinitionFirstAndFitsTheBudget) {
  TempDir t;
  MakeRepo(t.path());
  Index(t.path());
  MapOptions mo;
  mo.token_budget = 1000;
  std::string map = RepoMap(t.path(), mo);
  // util/strings.py is referenced by two files: it ranks first.
  EXPECT_EQ(map.rfind("util/strings.py:\n", 0), 0u) << map;
  EXPECT_NE(map.find("│ def camel_to_snake(name):"), std::string::npos) << map;
  mo.token_budget = 10;
  EXPECT_LE(RepoMap(t.path(), mo).size(), 40u);
  // Personalised towards the C files, a C file comes first.
  mo.token_budget = 1000;
  mo.focus = {"net/http.c"};
  map = RepoMap(t.path(), mo);
  EXPECT_EQ(map.rfind("net/http.c:\n", 0), 0u) << map;
  mo.focus = {"socks5_connect"};
  map = RepoMap(t.path(), mo);
  EXPECT_EQ(map.rfind("net/socks.c:\n", 0), 0u) << map;
}

TEST(Index, FindIndexRootWalksUp) {
  TempDir t;
  MakeRepo(t.path());
  EXPECT_THROW(FindIndexRoot(t.path() / "net"), Error);
  Index(t.path());
  EXPECT_EQ(fs::canonical(FindIndexRoot(t.path() / "net")), fs::canonical(t.path()));
}

// SIGKILL at random moments of indexing, searching meanwhile from this process: after every kill
// the index opens and answers, and a final run completes it.
TEST(Index, KillLoopLeavesAUsableIndex) {
  TempDir t;
  const int n_files = 400;
  for (int i = 0; i < n_files; ++i) {
    std::string body;
    for (int f = 0; f < 20; ++f) {
      body += "int func_" + std::to_string(i) + "_" + std::to_string(f) + "(int x) {\n" +
              "  int y = x * " + std::to_string(f) + ";\n  y += helper(y);\n  y -= 3;\n" +
              "  return y + " + std::to_string(i) + ";\n}\n\n";
    }
    WriteFile(t.path() / ("src/file" + std::to_string(i) + ".c"), body);
  }
  MakeRepo(t.path());
  // A first build is atomic (built beside, renamed into place): killed, it leaves no index at all
  // (security_index_atomic_test). Start from a complete one, so that every round kills an
  // incremental update while a reader keeps answering from the last complete index.
  Index(t.path());
  std::mt19937 rng(12345);
  int answered = 0;
  for (int round = 0; round < 8; ++round) {
    // Change some files so every round has work to do.
    for (int k = 0; k < 40; ++k) {
      int i = static_cast<int>(rng() % n_files);
      WriteFile(t.path() / ("src/file" + std::to_string(i) + ".c"),
                "int round_" + std::to_string(round) + "_" + std::to_string(k) +
                    "(void) {\n  return helper(1);\n}\n");
    }
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      try {
        BuildOptions o;
        o.root = t.path();
        o.threads = 1;
        BuildIndex(o);
      } catch (...) {
        _exit(3);
      }
      _exit(0);
    }
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(20 + static_cast<int>(rng() % 400));
    while (std::chrono::steady_clock::now() < deadline) {
      // A second process reading while the first writes.
      if (fs::exists(t.path() / ".hearth/index.db")) {
        SearchOptions so;
        so.query = "helper";
        try {
          Search(t.path(), so);
          ++answered;
        } catch (const Error& e) {
          // The very first transaction may not have created the schema yet.
          EXPECT_NE(round, 7) << e.Describe();
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (fs::exists(t.path() / ".hearth/index.db") && round > 0) {
      SearchOptions so;
      so.query = "socks hostname";
      EXPECT_NO_THROW(Search(t.path(), so)) << "round " << round;
      EXPECT_NO_THROW(FindSymbol(t.path(), "helper"));
    }
  }
  EXPECT_GT(answered, 0);
  BuildStats final_run = Index(t.path());
  EXPECT_EQ(final_run.files_indexed + final_run.files_unchanged, n_files + 6u);
  auto top = TopPaths(t.path(), "socks hostname too long");
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top[0], "net/socks.c");
  // Everything is consistent: a second run has nothing to do.
  EXPECT_EQ(Index(t.path()).files_indexed, 0u);
}

}  // namespace
}  // namespace hearth::index
