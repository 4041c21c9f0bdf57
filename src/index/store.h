// The SQLite side of the index (internal): schema, opening with checks, statements.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace hearth::index {

inline constexpr int kSchemaVersion = 1;
// PRAGMA application_id: "HRTH". A database without it is not ours.
inline constexpr int kApplicationId = 0x48525448;

class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, double v);
  Stmt& Bind(int i, std::string_view v);
  Stmt& BindNull(int i);
  bool Step();  // true while a row is available
  void Run();   // step to completion
  void Reset();
  int64_t Int(int col) const;
  double Double(int col) const;
  std::string Text(int col) const;
  bool IsNull(int col) const;
  sqlite3_stmt* get() { return stmt_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class Db {
 public:
  enum class Mode { kRead, kWrite };
  // Opens root/.hearth/index.db. kWrite creates it (and the schema) when missing. Throws
  // hearth::Error for a missing index (read), a corrupt or foreign file, or a newer schema.
  Db(const std::filesystem::path& db_path, Mode mode);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* get() { return db_; }
  void Exec(std::string_view sql);
  const std::filesystem::path& path() const { return path_; }

 private:
  void CheckOrCreateSchema(bool create);
  [[noreturn]] void Fail(const std::string& what);
  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
};

}  // namespace hearth::index
