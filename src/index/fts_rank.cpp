#include "index/fts_rank.h"

#include <algorithm>

#include "base/error.h"
#include "index/ranking.h"

namespace hearth::index {
namespace {

// The corpus's average chunk length in tokens (at least 1), BM25's avgdl.
double AverageLength(const Fts5ExtensionApi* api, Fts5Context* fts) {
  sqlite3_int64 rows = 0, total = 0;
  if (api->xRowCount(fts, &rows) == SQLITE_OK &&
      api->xColumnTotalSize(fts, -1, &total) == SQLITE_OK && rows > 0) {
    return std::max(1.0, static_cast<double>(total) / static_cast<double>(rows));
  }
  return 1;
}

// k1, b, one weight per column, then one per phrase: `n_val` must be 2 + columns + phrases.
bool ParseScoring(const Fts5ExtensionApi* api, Fts5Context* fts, int n_val, sqlite3_value** val,
                  TermScoring* s, std::vector<double>* column) {
  const int n_col = api->xColumnCount(fts);
  const int n_phrase = api->xPhraseCount(fts);
  if (n_val != 2 + n_col + n_phrase) {
    return false;
  }
  s->k1 = sqlite3_value_double(val[0]);
  s->b = sqlite3_value_double(val[1]);
  column->clear();
  for (int c = 0; c < n_col; ++c) {
    column->push_back(sqlite3_value_double(val[2 + c]));
  }
  s->weight.clear();
  for (int k = 0; k < n_phrase; ++k) {
    s->weight.push_back(sqlite3_value_double(val[2 + n_col + k]));
  }
  s->avgdl = AverageLength(api, fts);
  return true;
}

// Phrase k's frequency in the current row, each instance weighted by its column. Each phrase's
// own position list (xPhraseFirst), not xInst: xInst merges every phrase's instances into one
// sorted array first, which dominated the cost of 50-term queries. `count` (may be null) gets
// the number of instances.
double WeightedFrequency(const Fts5ExtensionApi* api, Fts5Context* fts, int k,
                         const std::vector<double>& column, int* count) {
  Fts5PhraseIter it;
  int col = 0, off = 0, n = 0;
  double f = 0;
  const int n_col = static_cast<int>(column.size());
  if (api->xPhraseFirst(fts, k, &it, &col, &off) != SQLITE_OK) {
    return 0;
  }
  while (col >= 0) {
    if (col < n_col) {
      f += column[col];
    }
    ++n;
    api->xPhraseNext(fts, &it, &col, &off);
  }
  if (count != nullptr) {
    *count = n;
  }
  return f;
}

struct RankArgs {
  TermScoring scoring;
  std::vector<double> column;
};

void RankFunction(const Fts5ExtensionApi* api, Fts5Context* fts, sqlite3_context* ctx, int n_val,
                  sqlite3_value** val) {
  // The arguments and corpus statistics are the same for every row: decode them once per query.
  auto* args = static_cast<RankArgs*>(api->xGetAuxdata(fts, 0));
  if (args == nullptr) {
    args = new RankArgs;
    if (!ParseScoring(api, fts, n_val, val, &args->scoring, &args->column)) {
      delete args;
      sqlite3_result_error(ctx, "hearth_rank: wrong number of arguments", -1);
      return;
    }
    if (api->xSetAuxdata(fts, args, [](void* p) { delete static_cast<RankArgs*>(p); }) !=
        SQLITE_OK) {
      sqlite3_result_error_nomem(ctx);
      return;
    }
  }
  const TermScoring& s = args->scoring;
  int dl = 0;
  api->xColumnSize(fts, -1, &dl);
  const double norm = Bm25Norm(s.k1, s.b, dl, s.avgdl);
  double score = 0;
  if (auto* scored = static_cast<int64_t*>(api->xUserData(fts))) {
    ++*scored;
  }
  for (size_t k = 0; k < s.weight.size(); ++k) {
    if (s.weight[k] == 0) {
      continue;
    }
    const double f = WeightedFrequency(api, fts, static_cast<int>(k), args->column, nullptr);
    if (f > 0) {
      score += Bm25Term(s.weight[k], f, s.k1, norm);
    }
  }
  sqlite3_result_double(ctx, score);
}

struct CollectState {
  TermCollector* out;
  const std::vector<double>* column;
};

int CollectPhrase(const Fts5ExtensionApi* api, Fts5Context* fts, void* user) {
  auto* st = static_cast<CollectState*>(user);
  int count = 0;
  const double f = WeightedFrequency(api, fts, 0, *st->column, &count);
  if (f > 0) {
    st->out->postings.push_back({api->xRowid(fts), st->out->term, count, f});
  }
  return SQLITE_OK;
}

void CollectFunction(const Fts5ExtensionApi* api, Fts5Context* fts, sqlite3_context* ctx, int n_val,
                     sqlite3_value** val) {
  auto* c = static_cast<TermCollector*>(api->xUserData(fts));
  std::vector<double> column;
  if (c == nullptr || (!c->done && !ParseScoring(api, fts, n_val, val, &c->scoring, &column))) {
    sqlite3_result_error(ctx, "hearth_collect: wrong number of arguments", -1);
    return;
  }
  if (c->done) {  // called once per query: LIMIT 1
    sqlite3_result_null(ctx);
    return;
  }
  c->done = true;
  CollectState st{c, &column};
  for (int k = 0; k < static_cast<int>(c->scoring.weight.size()); ++k) {
    c->term = k;
    if (c->scoring.weight[k] == 0) {
      continue;
    }
    const int rc = api->xQueryPhrase(fts, k, &st, &CollectPhrase);
    if (rc != SQLITE_OK) {
      sqlite3_result_error_code(ctx, rc);
      return;
    }
  }
  sqlite3_result_int(ctx, 1);
}

}  // namespace

void RegisterFtsFunctions(sqlite3* db, int64_t* scored, TermCollector* collector) {
  fts5_api* api = nullptr;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, nullptr) == SQLITE_OK) {
    sqlite3_bind_pointer(st, 1, reinterpret_cast<void*>(&api), "fts5_api_ptr", nullptr);
    sqlite3_step(st);
  }
  sqlite3_finalize(st);
  if (api == nullptr || api->iVersion < 2 ||
      api->xCreateFunction(api, "hearth_rank", scored, &RankFunction, nullptr) != SQLITE_OK ||
      api->xCreateFunction(api, "hearth_collect", collector, &CollectFunction, nullptr) !=
          SQLITE_OK) {
    throw Error(ErrorClass::kInternal, "SQLite's FTS5 API is not available",
                "hearth needs SQLite built with FTS5");
  }
}

int DocsizeLength(const unsigned char* blob, int bytes) {
  int64_t dl = 0;
  int i = 0;
  while (i < bytes) {
    uint64_t v = 0;
    for (int k = 0; i < bytes; ++k) {
      const unsigned char byte = blob[i++];
      if (k == 8) {  // the 9th byte of a varint carries 8 bits
        v = (v << 8) | byte;
        break;
      }
      v = (v << 7) | (byte & 0x7f);
      if (!(byte & 0x80)) {
        break;
      }
    }
    dl += static_cast<int64_t>(v);
  }
  return static_cast<int>(dl);
}

}  // namespace hearth::index
