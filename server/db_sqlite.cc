// db::Connection on SQLite: a thin adapter over sqlite::Database.
#include <unordered_map>

#include "absl/strings/match.h"
#include "server/db.h"

namespace fieldsync::db {

namespace {

class SqliteStatement : public Statement {
 public:
  explicit SqliteStatement(sqlite::Statement* st) : st_(st) {}
  explicit SqliteStatement(std::unique_ptr<sqlite::Statement> owned)
      : owned_(std::move(owned)), st_(owned_.get()) {}

  void Bind(int index, int64_t value) override { st_->Bind(index, value); }
  void Bind(int index, double value) override { st_->Bind(index, value); }
  void Bind(int index, absl::string_view text) override { st_->Bind(index, text); }
  void BindBlob(int index, absl::string_view bytes) override { st_->BindBlob(index, bytes); }
  void BindNull(int index) override { st_->BindNull(index); }
  absl::StatusOr<bool> Step() override { return st_->Step(); }
  int64_t ColumnInt(int col) const override { return st_->ColumnInt(col); }
  double ColumnDouble(int col) const override { return st_->ColumnDouble(col); }
  std::string ColumnText(int col) const override { return st_->ColumnText(col); }
  std::string ColumnBlob(int col) const override { return st_->ColumnBlob(col); }
  bool ColumnIsNull(int col) const override { return st_->ColumnIsNull(col); }
  void Reset() override { st_->Reset(); }

 private:
  std::unique_ptr<sqlite::Statement> owned_;
  sqlite::Statement* st_;
};

class SqliteConnection : public Connection {
 public:
  explicit SqliteConnection(std::unique_ptr<sqlite::Database> db) : db_(std::move(db)) {}
  ~SqliteConnection() override {
    cache_.clear();  // adapters before the statements they point to
  }

  Engine engine() const override { return Engine::kSqlite; }
  absl::Status Exec(absl::string_view sql) override { return db_->Exec(sql); }
  absl::StatusOr<Statement*> Prepare(absl::string_view sql) override {
    absl::StatusOr<sqlite::Statement*> st = db_->Prepare(sql);
    if (!st.ok()) return st.status();
    std::unique_ptr<SqliteStatement>& adapter = cache_[*st];
    if (adapter == nullptr) adapter = std::make_unique<SqliteStatement>(*st);
    return adapter.get();
  }
  absl::StatusOr<std::unique_ptr<Statement>> PrepareUncached(absl::string_view sql) override {
    absl::StatusOr<std::unique_ptr<sqlite::Statement>> st = db_->PrepareUncached(sql);
    if (!st.ok()) return st.status();
    return std::unique_ptr<Statement>(new SqliteStatement(std::move(*st)));
  }
  int64_t Changes() const override { return db_->Changes(); }
  absl::Status BeginWrite() override { return db_->Exec("BEGIN IMMEDIATE"); }
  absl::Status BeginRead() override { return db_->Exec("BEGIN"); }
  absl::Status Commit() override { return db_->Exec("COMMIT"); }
  absl::Status Rollback() override { return db_->Exec("ROLLBACK"); }
  sqlite::Database* sqlite() override { return db_.get(); }

 private:
  std::unique_ptr<sqlite::Database> db_;
  std::unordered_map<sqlite::Statement*, std::unique_ptr<SqliteStatement>> cache_;
};

}  // namespace

absl::StatusOr<Transaction> Transaction::Begin(Connection& c, Mode mode) {
  absl::Status s = mode == kWrite ? c.BeginWrite() : c.BeginRead();
  if (!s.ok()) return s;
  return Transaction(&c);
}

Transaction::~Transaction() {
  if (!done_) c_->Rollback().IgnoreError();
}

absl::Status Transaction::Commit() {
  absl::Status s = c_->Commit();
  if (!s.ok()) c_->Rollback().IgnoreError();
  done_ = true;
  return s;
}

std::unique_ptr<Connection> WrapSqlite(std::unique_ptr<sqlite::Database> db) {
  return std::make_unique<SqliteConnection>(std::move(db));
}

absl::StatusOr<std::unique_ptr<Connection>> OpenSqlite(const std::string& path,
                                                       const sqlite::OpenOptions& options) {
  absl::StatusOr<std::unique_ptr<sqlite::Database>> db = sqlite::Database::Open(path, options);
  if (!db.ok()) return db.status();
  return WrapSqlite(std::move(*db));
}

bool IsPostgresUrl(absl::string_view url) {
  return absl::StartsWith(url, "postgresql://") || absl::StartsWith(url, "postgres://");
}

}  // namespace fieldsync::db
