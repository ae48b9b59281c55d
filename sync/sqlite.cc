#include "fieldsync/sync/sqlite.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace fieldsync::sqlite {

namespace {

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_TOOBIG:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY
                 ? absl::StatusCode::kAlreadyExists
                 : absl::StatusCode::kFailedPrecondition;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::Bind(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
void Statement::Bind(int index, double value) { sqlite3_bind_double(stmt_, index, value); }
void Statement::Bind(int index, absl::string_view text) {
  sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}
void Statement::BindBlob(int index, absl::string_view bytes) {
  sqlite3_bind_blob64(stmt_, index, bytes.empty() ? "" : bytes.data(), bytes.size(),
                      SQLITE_TRANSIENT);
}
void Statement::BindNull(int index) { sqlite3_bind_null(stmt_, index); }
void Statement::BindTextOrNull(int index, absl::string_view text) {
  if (text.empty()) {
    BindNull(index);
  } else {
    Bind(index, text);
  }
}

absl::StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  absl::Status s = db_->Error(rc, sqlite3_sql(stmt_));
  sqlite3_reset(stmt_);
  return s;
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

int64_t Statement::ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }
double Statement::ColumnDouble(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Statement::ColumnText(int col) const {
  const unsigned char* t = sqlite3_column_text(stmt_, col);
  return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, col))
           : std::string();
}
std::string Statement::ColumnBlob(int col) const {
  const void* b = sqlite3_column_blob(stmt_, col);
  return b ? std::string(static_cast<const char*>(b), sqlite3_column_bytes(stmt_, col))
           : std::string();
}
bool Statement::ColumnIsNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void Database::Closer::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

Database::Database(std::unique_ptr<sqlite3, Closer> db, std::string path)
    : db_(std::move(db)), path_(std::move(path)) {}

Database::~Database() {
  cache_.clear();  // finalize statements before the connection closes
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                         const OpenOptions& options) {
  if (options.create && !options.read_only && path != ":memory:") {
    // Create the file ourselves so that it is owner-only from its first byte.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create database file ", path, ": ", strerror(errno)));
    }
    ::close(fd);
  }
  int flags = options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (options.create && !options.read_only) flags |= SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_NOMUTEX;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<sqlite3, Closer> handle(raw);
  if (rc != SQLITE_OK) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot open database ", path, ": ", raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  std::unique_ptr<Database> db(new Database(std::move(handle), path));
  if (!options.read_only) {
    if (auto s = db->Exec("PRAGMA journal_mode=WAL"); !s.ok()) return s;
  }
  if (options.synchronous != "FULL" && options.synchronous != "NORMAL" &&
      options.synchronous != "OFF") {
    return absl::InvalidArgumentError(
        absl::StrCat("synchronous: must be FULL, NORMAL or OFF, got ", options.synchronous));
  }
  if (auto s = db->Exec(absl::StrCat("PRAGMA synchronous=", options.synchronous,
                                     "; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY"));
      !s.ok()) {
    return s;
  }
  return db;
}

absl::Status Database::Exec(absl::string_view sql) {
  char* err = nullptr;
  std::string text(sql);
  int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return absl::Status(CodeFor(rc), absl::StrCat("sqlite: ", msg));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Statement>> Database::PrepareUncached(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, sql);
  return std::unique_ptr<Statement>(new Statement(this, stmt));
}

absl::StatusOr<Statement*> Database::Prepare(absl::string_view sql) {
  auto it = cache_.find(std::string(sql));
  if (it != cache_.end()) {
    it->second->Reset();
    return it->second.get();
  }
  auto st = PrepareUncached(sql);
  if (!st.ok()) return st.status();
  Statement* raw = st->get();
  cache_.emplace(std::string(sql), std::move(*st));
  return raw;
}

int64_t Database::Changes() const { return sqlite3_changes64(db_.get()); }

absl::StatusOr<int64_t> Database::BackupTo(const std::string& path,
                                           const std::function<absl::Status()>& before_copy) {
  const std::string part = path + ".part";
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(absl::StrCat("backup: ", path, " already exists"));
  }
  // O_EXCL: two backups to the same path never write one file; a stale .part from a crashed
  // backup is the operator's to look at, not ours to delete.
  int fd = ::open(part.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(
          absl::StrCat("backup: ", part, " exists (another backup running, or left by one that "
                                         "crashed: remove it)"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("backup: cannot create ", part, ": ", strerror(errno)));
  }
  ::close(fd);
  bool keep = false;
  struct RemovePart {
    const std::string& part;
    const bool& keep;
    ~RemovePart() {
      if (!keep) ::unlink(part.c_str());
    }
  } remove_part{part, keep};

  sqlite3* dest_raw = nullptr;
  int rc = sqlite3_open_v2(part.c_str(), &dest_raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  std::unique_ptr<sqlite3, Closer> dest(dest_raw);
  if (rc != SQLITE_OK) {
    return absl::FailedPreconditionError(absl::StrCat(
        "backup: cannot open ", part, ": ", dest_raw ? sqlite3_errmsg(dest_raw) : sqlite3_errstr(rc)));
  }
  // One read transaction over the copy (and before_copy): the snapshot of one commit.
  if (absl::Status s = Exec("BEGIN"); !s.ok()) return s;
  struct EndRead {
    Database& db;
    ~EndRead() { db.Exec("COMMIT").IgnoreError(); }
  } end_read{*this};
  // A deferred BEGIN takes its snapshot at the first read: read now, before before_copy.
  if (absl::Status s = Exec("SELECT COUNT(*) FROM sqlite_schema"); !s.ok()) return s;
  if (before_copy) {
    if (absl::Status s = before_copy(); !s.ok()) return s;
  }
  sqlite3_backup* backup = sqlite3_backup_init(dest.get(), "main", db_.get(), "main");
  if (backup == nullptr) {
    return absl::Status(CodeFor(sqlite3_extended_errcode(dest.get())),
                        absl::StrCat("backup: ", sqlite3_errmsg(dest.get())));
  }
  // The source is read inside our own read transaction, so one step of all pages cannot be
  // disturbed by other writers (they append to the WAL; our snapshot stays).
  rc = sqlite3_backup_step(backup, -1);
  int finish_rc = sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    return absl::Status(CodeFor(rc), absl::StrCat("backup: copying into ", part, ": ",
                                                  sqlite3_errstr(rc)));
  }
  if (finish_rc != SQLITE_OK) {
    return absl::Status(CodeFor(finish_rc),
                        absl::StrCat("backup: ", sqlite3_errmsg(dest.get())));
  }
  // A self-contained file: no -wal beside it, so copying the one file is the whole backup.
  char* err = nullptr;
  rc = sqlite3_exec(dest.get(), "PRAGMA journal_mode=DELETE", nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return absl::Status(CodeFor(rc), absl::StrCat("backup: ", msg));
  }
  dest.reset();
  fd = ::open(part.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0 || ::fstat(fd, &st) != 0) {
    std::string why = strerror(errno);
    if (fd >= 0) ::close(fd);
    return absl::InternalError(absl::StrCat("backup: fsync of ", part, ": ", why));
  }
  ::close(fd);
  // link(), not rename(): it fails if `path` appeared meanwhile instead of replacing it.
  if (::link(part.c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat("backup: ", path, " already exists"));
    }
    return absl::InternalError(
        absl::StrCat("backup: cannot move ", part, " to ", path, ": ", strerror(errno)));
  }
  ::unlink(part.c_str());
  keep = true;
  std::string folder = path.substr(0, path.find_last_of('/') + 1);
  if (folder.empty()) folder = ".";
  int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return static_cast<int64_t>(st.st_size);
}

absl::Status Database::Error(int rc, absl::string_view what) const {
  return absl::Status(CodeFor(rc), absl::StrCat("sqlite: ", sqlite3_errmsg(db_.get()), " (",
                                                sqlite3_errstr(rc), ") in: ", what.substr(0, 120)));
}

absl::StatusOr<Transaction> Transaction::Begin(Database& db, Mode mode) {
  absl::Status s = db.Exec(mode == kImmediate ? "BEGIN IMMEDIATE" : "BEGIN");
  if (!s.ok()) return s;
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(other.db_), done_(other.done_) {
  other.done_ = true;
}

Transaction::~Transaction() {
  if (!done_) db_->Exec("ROLLBACK").IgnoreError();
}

absl::Status Transaction::Commit() {
  absl::Status s = db_->Exec("COMMIT");
  if (s.ok()) {
    done_ = true;
  } else {
    // A failed COMMIT (disk full) leaves the transaction open; roll it back so the
    // connection is usable again and nothing is half-applied.
    db_->Exec("ROLLBACK").IgnoreError();
    done_ = true;
  }
  return s;
}

}  // namespace fieldsync::sqlite
