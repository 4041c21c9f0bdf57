#include "index/store.h"

#include "base/error.h"

namespace hearth::index {
namespace fs = std::filesystem;

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL UNIQUE,
  language TEXT NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  hash TEXT NOT NULL,
  lines INTEGER NOT NULL,
  skip TEXT NOT NULL DEFAULT '');  -- why the file has no chunks (binary, minified...), or ''
CREATE TABLE IF NOT EXISTS chunks(
  id INTEGER PRIMARY KEY,
  file_id INTEGER NOT NULL ,
  start_line INTEGER NOT NULL,
  end_line INTEGER NOT NULL,
  kind TEXT NOT NULL,
  symbol TEXT NOT NULL,
  hash TEXT NOT NULL,
  content TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
CREATE TABLE IF NOT EXISTS symbols(
  id INTEGER PRIMARY KEY,
  file_id INTEGER NOT NULL ,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  is_def INTEGER NOT NULL,
  line INTEGER NOT NULL,
  text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS symbols_name ON symbols(name);
CREATE INDEX IF NOT EXISTS symbols_file ON symbols(file_id);
-- Pre-tokenized text (src/index/tokenize.h): the code-aware splitting happens in C++, so FTS5's
-- own tokenizer only needs to cut on spaces and keep '_'.
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
  symbol, path, body, tokenize = "unicode61 remove_diacritics 0 tokenchars '_'");
CREATE VIRTUAL TABLE IF NOT EXISTS files_fts USING fts5(
  path, tokenize = "unicode61 remove_diacritics 0 tokenchars '_'");
)sql";

}  // namespace

Stmt::Stmt(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
      SQLITE_OK) {
    throw Error(ErrorClass::kInvalidInput,
                std::string("index database query failed: ") + sqlite3_errmsg(db),
                "run `hearth index --rebuild` to recreate the index");
  }
}
Stmt::~Stmt() { sqlite3_finalize(stmt_); }
Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, double v) {
  sqlite3_bind_double(stmt_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, std::string_view v) {
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}
bool Stmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string msg = sqlite3_errmsg(db_);
  sqlite3_reset(stmt_);
  if (rc == SQLITE_FULL || rc == SQLITE_IOERR || rc == SQLITE_READONLY || rc == SQLITE_CANTOPEN) {
    throw Error(ErrorClass::kIo, "index database write failed: " + msg,
                "check free disk space and permissions of .hearth/");
  }
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    throw Error(ErrorClass::kIo, "index database is busy: " + msg,
                "another `hearth index` may be running; retry when it finishes");
  }
  throw Error(ErrorClass::kInvalidInput, "index database error: " + msg,
              "run `hearth index --rebuild` to recreate the index");
}
void Stmt::Run() {
  while (Step()) {
  }
  Reset();
}
void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}
int64_t Stmt::Int(int col) const { return sqlite3_column_int64(stmt_, col); }
double Stmt::Double(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Stmt::Text(int col) const {
  const unsigned char* t = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(n)) : std::string();
}
bool Stmt::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

Db::Db(const fs::path& db_path, Mode mode) : path_(db_path) {
  std::error_code ec;
  bool exists = fs::exists(db_path, ec);
  if (mode == Mode::kRead && !exists) {
    throw Error(ErrorClass::kUsage, "no index at " + db_path.string(),
                "run `hearth index` in the repository first");
  }
  if (mode == Mode::kWrite) fs::create_directories(db_path.parent_path(), ec);
  int flags = mode == Mode::kWrite ? (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
                                   : SQLITE_OPEN_READONLY;
  flags |= SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(db_path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close_v2(db_);
    db_ = nullptr;
    Fail(msg);
  }
  sqlite3_busy_timeout(db_, 10000);
  sqlite3_extended_result_codes(db_, 0);
  try {
    CheckOrCreateSchema(mode == Mode::kWrite);
  } catch (...) {
    // The destructor does not run for a constructor that throws.
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

Db::~Db() {
  if (db_) sqlite3_close_v2(db_);
}

void Db::Fail(const std::string& what) {
  throw Error(ErrorClass::kInvalidInput,
              "cannot use index " + path_.string() + ": " + what,
              "run `hearth index --rebuild` to recreate it");
}

void Db::Exec(std::string_view sql) {
  char* err = nullptr;
  std::string s(sql);
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    Fail(msg);
  }
}

void Db::CheckOrCreateSchema(bool create) {
  // Reading the header is the first touch of the file: a foreign or corrupt file fails here.
  int app_id = 0;
  int user_version = 0;
  int n_tables = 0;
  {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA application_id", -1, &s, nullptr) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
      std::string msg = sqlite3_errmsg(db_);
      sqlite3_finalize(s);
      Fail(msg);
    }
    app_id = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    Stmt v(db_, "PRAGMA user_version");
    if (v.Step()) user_version = static_cast<int>(v.Int(0));
    Stmt t(db_, "SELECT count(*) FROM sqlite_master");
    if (t.Step()) n_tables = static_cast<int>(t.Int(0));
  }
  if (n_tables == 0 && app_id == 0) {
    if (!create) Fail("the database is empty");
    Exec("PRAGMA journal_mode=WAL");
    Exec("PRAGMA application_id=" + std::to_string(kApplicationId));
    Exec("PRAGMA user_version=" + std::to_string(kSchemaVersion));
    Exec(std::string("BEGIN;") + kSchema + "COMMIT;");
  } else if (app_id != kApplicationId) {
    Fail("not a hearth index (foreign SQLite database)");
  } else if (user_version != kSchemaVersion) {
    Fail("index schema version " + std::to_string(user_version) + ", this hearth reads version " +
         std::to_string(kSchemaVersion));
  }
  if (create) {
    Exec("PRAGMA journal_mode=WAL");
    Exec("PRAGMA synchronous=NORMAL");
  }
  // Catches a damaged file early and cheaply (header and schema pages), not a full check.
  Stmt check(db_, "SELECT count(*) FROM files");
  check.Step();
}

}  // namespace hearth::index
