// The SQL connection the server's store runs on: one interface, two engines. SQLite (the
// embedded default, one file) and PostgreSQL (several fieldsyncd replicas sharing one
// database). The store writes its SQL once, in the subset both engines understand, with `?`
// placeholders (`?NNN` and `$name` too); the PostgreSQL connection rewrites them to `$n`.
//
//   FS_ASSIGN_OR_RETURN(std::unique_ptr<db::Connection> c, db::OpenSqlite(path, {}));
//   FS_ASSIGN_OR_RETURN(auto tx, db::Transaction::Begin(*c, db::Transaction::kWrite));
//   FS_ASSIGN_OR_RETURN(db::Statement* st, c->Prepare("INSERT INTO t(a) VALUES(?)"));
//   st->Bind(1, 42);
//   FS_RETURN_IF_ERROR(st->Run());
//   FS_RETURN_IF_ERROR(tx.Commit());
//
// Thread rule: a Connection and its Statements are used by one thread at a time.
//
// Error codes, on both engines: unique violations ALREADY_EXISTS, other constraint violations
// FAILED_PRECONDITION, a full disk (or the SQLite size cap) RESOURCE_EXHAUSTED, a busy or
// unreachable database UNAVAILABLE, the rest INTERNAL; the message carries the engine's text.
#ifndef FIELDSYNC_SERVER_DB_H_
#define FIELDSYNC_SERVER_DB_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fieldsync/sync/sqlite.h"

namespace fieldsync::db {

enum class Engine { kSqlite, kPostgres };

// A prepared statement, owned by its Connection's cache (Prepare) or by the caller
// (PrepareUncached). Binds are 1-based, columns 0-based, as in SQLite.
class Statement {
 public:
  virtual ~Statement() = default;

  virtual void Bind(int index, int64_t value) = 0;
  void Bind(int index, int value) { Bind(index, static_cast<int64_t>(value)); }
  virtual void Bind(int index, double value) = 0;
  virtual void Bind(int index, absl::string_view text) = 0;
  void Bind(int index, const char* text) { Bind(index, absl::string_view(text)); }
  void Bind(int index, const std::string& text) { Bind(index, absl::string_view(text)); }
  virtual void BindBlob(int index, absl::string_view bytes) = 0;
  virtual void BindNull(int index) = 0;
  // Binds NULL for an empty string, else the text.
  void BindTextOrNull(int index, absl::string_view text) {
    if (text.empty()) {
      BindNull(index);
    } else {
      Bind(index, text);
    }
  }

  // Steps once. Returns true if a row is available, false when done.
  virtual absl::StatusOr<bool> Step() = 0;
  // Steps to completion, for statements that return no rows.
  absl::Status Run() {
    while (true) {
      absl::StatusOr<bool> row = Step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::OkStatus();
    }
  }

  // Readers of the current row. A boolean column reads as 0 or 1.
  virtual int64_t ColumnInt(int col) const = 0;
  virtual double ColumnDouble(int col) const = 0;
  virtual std::string ColumnText(int col) const = 0;
  virtual std::string ColumnBlob(int col) const = 0;
  virtual bool ColumnIsNull(int col) const = 0;

  // Clears bindings and resets to run again.
  virtual void Reset() = 0;
};

class Connection {
 public:
  virtual ~Connection() = default;

  virtual Engine engine() const = 0;

  // Runs one or more statements with no parameters (schema). Never with input.
  virtual absl::Status Exec(absl::string_view sql) = 0;
  // A cached prepared statement for `sql`, reset and with bindings cleared; valid until the
  // Connection is destroyed. Do not hold two uses of the same SQL text at once.
  virtual absl::StatusOr<Statement*> Prepare(absl::string_view sql) = 0;
  // A statement of the caller's, for scans: on PostgreSQL, a SELECT run inside a transaction
  // streams its rows in batches through a cursor; other statements hold their whole result, so
  // use Prepare for lookups and bounded pages only.
  virtual absl::StatusOr<std::unique_ptr<Statement>> PrepareUncached(absl::string_view sql) = 0;
  // Rows changed by the last INSERT/UPDATE/DELETE.
  virtual int64_t Changes() const = 0;

  // Transactions (see Transaction). A write transaction is exclusive among all writers of the
  // database, in this process and in every other fieldsyncd sharing it: SQLite's BEGIN
  // IMMEDIATE; on PostgreSQL an advisory lock held until COMMIT. Change-log sequence numbers are
  // therefore committed in the order they are handed out, which is what keeps a device's pull
  // cursor from skipping a change (docs/ARCHITECTURE.md, "Several replicas").
  virtual absl::Status BeginWrite() = 0;
  // A read transaction: every statement until Commit sees one snapshot.
  virtual absl::Status BeginRead() = 0;
  virtual absl::Status Commit() = 0;
  virtual absl::Status Rollback() = 0;

  // The SQLite connection underneath (backup, page counts), or null on PostgreSQL.
  virtual sqlite::Database* sqlite() { return nullptr; }
};

// A transaction that rolls back in its destructor unless Commit() succeeded.
class Transaction {
 public:
  enum Mode { kRead, kWrite };
  static absl::StatusOr<Transaction> Begin(Connection& c, Mode mode);
  Transaction(Transaction&& other) noexcept : c_(other.c_), done_(other.done_) {
    other.done_ = true;
  }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  // A failed COMMIT rolls back, so the connection is usable again and nothing is half-applied.
  absl::Status Commit();

 private:
  explicit Transaction(Connection* c) : c_(c) {}
  Connection* c_;
  bool done_ = false;
};

// Opens a SQLite connection (WAL, foreign keys on; see sqlite::Database::Open).
absl::StatusOr<std::unique_ptr<Connection>> OpenSqlite(const std::string& path,
                                                       const sqlite::OpenOptions& options);
// Wraps an open SQLite connection.
std::unique_ptr<Connection> WrapSqlite(std::unique_ptr<sqlite::Database> db);

// True for "postgresql://…" and "postgres://…" (libpq connection URIs).
bool IsPostgresUrl(absl::string_view url);
// `url` with its password (user:PASSWORD@ or password=…) as ***, for logs and messages; a
// SQLite path unchanged.
std::string RedactUrl(absl::string_view url);
// Opens a PostgreSQL connection (libpq URI). UNAVAILABLE if the server cannot be reached.
absl::StatusOr<std::unique_ptr<Connection>> OpenPostgres(const std::string& url);
// The SQL the PostgreSQL connection runs for `sql`: SQLite's placeholders as $n, numbered as
// SQLite numbers them (`?` the next number, `?NNN` that one, `$name`/`:name`/`@name` the next
// number at first use and the same one again after); string literals, quoted identifiers and
// comments are left alone. `*params` gets the highest number.
std::string PostgresSql(absl::string_view sql, int* params);

}  // namespace fieldsync::db

#endif  // FIELDSYNC_SERVER_DB_H_
