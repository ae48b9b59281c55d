// RAII over SQLite: Database owns a connection, Statement a prepared statement, Transaction a
// BEGIN..COMMIT that rolls back unless committed. A raw sqlite3* never leaves sqlite.cc.
//
//   FS_ASSIGN_OR_RETURN(auto db, Database::Open(path, {}));
//   FS_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db, Transaction::kImmediate));
//   FS_ASSIGN_OR_RETURN(Statement* st, db->Prepare("INSERT INTO t(a) VALUES(?)"));
//   st->Bind(1, 42);
//   FS_RETURN_IF_ERROR(st->Run());
//   FS_RETURN_IF_ERROR(tx.Commit());
//
// Thread rule: a Database and its Statements are used by one thread at a time; give each
// thread its own connection (WAL lets readers run beside the one writer).
//
// Error codes: SQLITE_FULL and SQLITE_NOMEM become RESOURCE_EXHAUSTED, SQLITE_BUSY/LOCKED
// UNAVAILABLE, constraint violations ALREADY_EXISTS (unique) or FAILED_PRECONDITION, the rest
// INTERNAL; the message carries SQLite's text.
#ifndef FIELDSYNC_SYNC_SQLITE_H_
#define FIELDSYNC_SYNC_SQLITE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace fieldsync::sqlite {

class Database;

// A prepared statement. Owned by the Database's cache (see Database::Prepare) or by the caller
// (Database::PrepareUncached). Reset before each use by Prepare.
class Statement {
 public:
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binds are 1-based, as in SQLite. Text and blobs are copied.
  void Bind(int index, int64_t value);
  void Bind(int index, int value) { Bind(index, static_cast<int64_t>(value)); }
  void Bind(int index, double value);
  void Bind(int index, absl::string_view text);
  void Bind(int index, const char* text) { Bind(index, absl::string_view(text)); }
  void BindBlob(int index, absl::string_view bytes);
  void BindNull(int index);
  // Binds NULL for an empty string, else the text.
  void BindTextOrNull(int index, absl::string_view text);

  // Steps once. Returns true if a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Steps to completion, for statements that return no rows.
  absl::Status Run();

  // Column readers for the current row; 0-based, as in SQLite.
  int64_t ColumnInt(int col) const;
  double ColumnDouble(int col) const;
  std::string ColumnText(int col) const;
  std::string ColumnBlob(int col) const;
  bool ColumnIsNull(int col) const;

  // Clears bindings and resets to run again.
  void Reset();

 private:
  friend class Database;
  Statement(Database* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Database* db_;
  sqlite3_stmt* stmt_;
};

struct OpenOptions {
  // Create the file if missing. Default true.
  bool create = true;
  // Open read-only. Default false.
  bool read_only = false;
  // PRAGMA synchronous: "FULL" (survives power loss; the server's default) or "NORMAL".
  std::string synchronous = "FULL";
  // Milliseconds to wait for a lock held by another connection. Default 5000.
  int busy_timeout_ms = 5000;
};

// One SQLite connection in WAL mode with foreign keys on.
class Database {
 public:
  // Opens (and creates, unless told not to) the database at `path`. A new file is created with
  // mode 0600: field records are sensitive.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path,
                                                       const OpenOptions& options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements with no parameters (schema, pragmas). Never with input.
  absl::Status Exec(absl::string_view sql);

  // Returns a cached prepared statement for `sql`, reset and with bindings cleared. The
  // pointer stays valid until the Database is destroyed; do not hold two uses of the same
  // SQL text at once (use PrepareUncached for that).
  absl::StatusOr<Statement*> Prepare(absl::string_view sql);
  absl::StatusOr<std::unique_ptr<Statement>> PrepareUncached(absl::string_view sql);

  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;

  // Copies the whole database into the new file `path` with SQLite's online backup API, from
  // one read transaction: a consistent snapshot of the last commit, while writers on other
  // connections go on (WAL). Written to `path` + ".part" (mode 0600), fsynced, renamed to
  // `path`, and the folder fsynced, so `path` either does not exist or is complete. Returns
  // the size in bytes. ALREADY_EXISTS if `path` (or the .part file) exists; FAILED_PRECONDITION
  // if it cannot be created; the rest as for any SQLite error (RESOURCE_EXHAUSTED on a full
  // disk). Nothing is left behind on failure. Call it on a connection with no open
  // transaction (it opens its own); `before_copy`, if given, runs inside that read transaction
  // before the copy, so it reads exactly the state the copy holds (the head of a change log).
  absl::StatusOr<int64_t> BackupTo(const std::string& path,
                                   const std::function<absl::Status()>& before_copy = nullptr);

  // Maps the connection's last error `rc` to an absl::Status with `what` as context.
  absl::Status Error(int rc, absl::string_view what) const;

  const std::string& path() const { return path_; }

 private:
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  Database(std::unique_ptr<sqlite3, Closer> db, std::string path);

  std::unique_ptr<sqlite3, Closer> db_;
  std::string path_;
  std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
  friend class Statement;
};

// A transaction that rolls back in its destructor unless Commit() succeeded.
class Transaction {
 public:
  enum Mode { kDeferred, kImmediate };
  static absl::StatusOr<Transaction> Begin(Database& db, Mode mode);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  absl::Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
  bool done_ = false;
};

}  // namespace fieldsync::sqlite

#endif  // FIELDSYNC_SYNC_SQLITE_H_
