// db::Connection on PostgreSQL (libpq): several fieldsyncd replicas sharing one database.
//
// - SQL: the store's SQLite-style placeholders become $n once per statement (PostgresSql);
//   cached statements are prepared on the server once per connection (and parameter types).
// - Results are in text format; bytea columns are decoded from hex.
// - A scan (PrepareUncached) run inside a transaction streams through a server-side cursor,
//   kBatch rows per FETCH; everything else buffers its (small or paged) result, which also
//   lets a statement run while another is still being stepped, as SQLite allows.
// - Write transactions take a transaction-scoped advisory lock: the writers of every replica
//   take turns, so change-log sequence numbers commit in the order they are handed out.
#include <libpq-fe.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "fieldsync/base/status_macros.h"
#include "server/db.h"

namespace fieldsync::db {

namespace {

// pg_advisory_xact_lock key of fieldsync's write transactions: "fieldsyn" in ASCII.
constexpr int64_t kWriteLockKey = 0x6669656C6473796E;
// Rows per FETCH of a streaming scan.
constexpr int kBatch = 1000;
// Type OIDs (pg_type.h).
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kByteaOid = 17;
constexpr Oid kFloat8Oid = 701;

bool IsIdentChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

// The URL without its password, for messages.
std::string SafeUrl(absl::string_view url) {
  std::string out(url);
  size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    size_t at = out.find('@', scheme + 3);
    size_t slash = out.find('/', scheme + 3);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      size_t colon = out.find(':', scheme + 3);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  size_t pw = out.find("password=");
  if (pw != std::string::npos) {
    size_t end = out.find('&', pw);
    out.replace(pw + 9, (end == std::string::npos ? out.size() : end) - pw - 9, "***");
  }
  return out;
}

std::string SqlHead(absl::string_view sql) {
  std::string s(sql.substr(0, 120));
  for (char& c : s) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return s;
}

// Maps a failed result (or a connection error when `res` is null) to a status.
absl::Status PgError(PGconn* conn, const PGresult* res, absl::string_view sql) {
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  const char* primary = res != nullptr ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string message = primary != nullptr ? primary : PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  std::string text = absl::StrCat("postgresql: ", message, " in: ", SqlHead(sql));
  std::string code = state != nullptr ? state : "";
  if (PQstatus(conn) == CONNECTION_BAD || absl::StartsWith(code, "08") || code == "57P01" ||
      code == "57P02" || code == "57P03") {
    return absl::UnavailableError(text);
  }
  // No result at all: the server could not be talked to.
  if (res == nullptr) return absl::UnavailableError(text);
  if (code == "23505") return absl::AlreadyExistsError(text);
  if (absl::StartsWith(code, "23")) return absl::FailedPreconditionError(text);
  if (code == "53100" || code == "53200" || code == "54000") {
    return absl::ResourceExhaustedError(text);
  }
  if (code == "40001" || code == "40P01") return absl::AbortedError(text);
  return absl::InternalError(text);
}

// The first keyword of `sql`, upper case.
std::string FirstWord(absl::string_view sql) {
  size_t i = 0;
  while (i < sql.size() &&
         (absl::ascii_isspace(static_cast<unsigned char>(sql[i])) || sql[i] == '(')) {
    ++i;
  }
  size_t j = i;
  while (j < sql.size() && absl::ascii_isalpha(static_cast<unsigned char>(sql[j]))) ++j;
  return absl::AsciiStrToUpper(sql.substr(i, j - i));
}

// The second word (a savepoint name after SAVEPOINT / RELEASE [SAVEPOINT] / ROLLBACK TO
// [SAVEPOINT]).
std::string SavepointName(absl::string_view sql) {
  std::vector<std::string> words;
  std::string cur;
  for (char c : sql) {
    if (IsIdentChar(c)) {
      cur.push_back(c);
    } else if (!cur.empty()) {
      words.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) words.push_back(cur);
  for (size_t i = 1; i < words.size(); ++i) {
    std::string up = absl::AsciiStrToUpper(words[i]);
    if (up == "TO" || up == "SAVEPOINT") continue;
    return words[i];
  }
  return "";
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes bytea's text output (hex format, "\x0a1b...").
std::string DecodeBytea(const char* v, int len) {
  if (len >= 2 && v[0] == '\\' && v[1] == 'x') {
    std::string out;
    out.reserve((len - 2) / 2);
    for (int i = 2; i + 1 < len; i += 2) {
      int hi = HexValue(v[i]), lo = HexValue(v[i + 1]);
      if (hi < 0 || lo < 0) break;
      out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return out;
  }
  // The escape format (bytea_output = 'escape'), should a server be configured so.
  size_t n = 0;
  unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(v), &n);
  if (raw == nullptr) return std::string(v, len);
  std::string out(reinterpret_cast<char*>(raw), n);
  PQfreemem(raw);
  return out;
}

class PgConnection;

// Shared between a connection and its statements, so that a statement destroyed after its
// connection does not touch it.
struct ConnHandle {
  PgConnection* conn = nullptr;
};

class PgStatement : public Statement {
 public:
  PgStatement(std::shared_ptr<ConnHandle> handle, std::string sql, bool scan);
  ~PgStatement() override;

  void Bind(int index, int64_t value) override {
    if (Slot(index)) Set(index, absl::StrCat(value), kInt8Oid, 0);
  }
  void Bind(int index, double value) override {
    if (!Slot(index)) return;
    char buf[64];
    // Shortest text that reads back as the same double.
    snprintf(buf, sizeof(buf), "%.17g", value);
    Set(index, buf, kFloat8Oid, 0);
  }
  void Bind(int index, absl::string_view text) override {
    if (Slot(index)) Set(index, std::string(text), kTextOid, 0);
  }
  void BindBlob(int index, absl::string_view bytes) override {
    if (Slot(index)) Set(index, std::string(bytes), kByteaOid, 1);
  }
  void BindNull(int index) override {
    if (!Slot(index)) return;
    Param& p = params_[index - 1];
    p = Param();
  }

  absl::StatusOr<bool> Step() override;

  int64_t ColumnInt(int col) const override {
    const char* v = Value(col);
    if (v == nullptr) return 0;
    if (v[0] == 't' && v[1] == '\0') return 1;
    if (v[0] == 'f' && v[1] == '\0') return 0;
    int64_t out = 0;
    if (absl::SimpleAtoi(v, &out)) return out;
    double d = std::strtod(v, nullptr);
    return static_cast<int64_t>(d);
  }
  double ColumnDouble(int col) const override {
    const char* v = Value(col);
    if (v == nullptr) return 0;
    if (v[0] == 't' && v[1] == '\0') return 1;
    if (v[0] == 'f' && v[1] == '\0') return 0;
    return std::strtod(v, nullptr);
  }
  std::string ColumnText(int col) const override {
    const char* v = Value(col);
    if (v == nullptr) return "";
    int len = PQgetlength(res_, row_, col);
    if (PQftype(res_, col) == kByteaOid) return DecodeBytea(v, len);
    return std::string(v, len);
  }
  std::string ColumnBlob(int col) const override { return ColumnText(col); }
  bool ColumnIsNull(int col) const override {
    if (!HasRow() || col < 0 || col >= PQnfields(res_)) return true;
    return PQgetisnull(res_, row_, col) != 0;
  }

  void Reset() override;

  int param_count() const { return static_cast<int>(params_.size()); }

 private:
  friend class PgConnection;

  struct Param {
    bool null = true;
    std::string value;
    Oid type = 0;
    int format = 0;
  };

  bool Slot(int index) {
    Finish();  // binding restarts the statement, as sqlite3_bind on a stepped one would fail
    return index >= 1 && index <= static_cast<int>(params_.size());
  }
  void Set(int index, std::string value, Oid type, int format) {
    Param& p = params_[index - 1];
    p.null = false;
    p.value = std::move(value);
    p.type = type;
    p.format = format;
  }
  bool HasRow() const { return res_ != nullptr && row_ >= 0 && row_ < PQntuples(res_); }
  const char* Value(int col) const {
    if (!HasRow() || col < 0 || col >= PQnfields(res_)) return nullptr;
    if (PQgetisnull(res_, row_, col)) return nullptr;
    return PQgetvalue(res_, row_, col);
  }
  // Drops the current result and closes the cursor, keeping the bindings.
  void Finish();
  void ClearResult() {
    if (res_ != nullptr) PQclear(res_);
    res_ = nullptr;
    row_ = -1;
  }
  absl::StatusOr<bool> Fetch();

  std::shared_ptr<ConnHandle> handle_;
  std::string sql_;     // as given (for messages)
  std::string pg_sql_;  // with $n placeholders
  bool scan_;           // streams through a cursor inside a transaction
  bool is_select_;
  std::vector<Param> params_;
  // Server-side prepared statements, by parameter type signature, for one connection
  // generation (a reset connection forgets them).
  std::map<std::string, std::string> prepared_;
  uint64_t prepared_generation_ = 0;

  PGresult* res_ = nullptr;
  int row_ = -1;
  bool started_ = false;
  bool done_ = false;
  int64_t cursor_ = 0;  // 0: none
};

class PgConnection : public Connection {
 public:
  PgConnection(PGconn* conn, std::string url)
      : conn_(conn), url_(std::move(url)), handle_(std::make_shared<ConnHandle>()) {
    handle_->conn = this;
  }
  ~PgConnection() override {
    cache_.clear();
    handle_->conn = nullptr;
    PQfinish(conn_);
  }

  Engine engine() const override { return Engine::kPostgres; }

  absl::Status Exec(absl::string_view sql) override {
    FS_RETURN_IF_ERROR(Ready());
    std::string word = FirstWord(sql);
    std::string text(sql);
    PGresult* res = PQexec(conn_, text.c_str());
    absl::Status s = Check(res, sql);
    PQclear(res);
    if (PQstatus(conn_) == CONNECTION_OK) in_tx_ = PQtransactionStatus(conn_) != PQTRANS_IDLE;
    if (!s.ok()) {
      if (!in_tx_) EndTransaction();
      return s;
    }
    Track(word, sql);
    return absl::OkStatus();
  }

  // BEGIN and what goes with it; a failure leaves no transaction open.
  absl::Status Begin(const std::string& sql) {
    if (in_tx_) {
      return absl::FailedPreconditionError("postgresql: a transaction is already open");
    }
    absl::Status s = Exec(sql);
    if (!s.ok() && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE) {
      Exec("ROLLBACK").IgnoreError();
    }
    return s;
  }

  absl::StatusOr<Statement*> Prepare(absl::string_view sql) override {
    std::string key(sql);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      auto st = std::make_unique<PgStatement>(handle_, key, false);
      it = cache_.emplace(key, std::move(st)).first;
    }
    PgStatement* st = it->second.get();
    st->Reset();
    return st;
  }

  absl::StatusOr<std::unique_ptr<Statement>> PrepareUncached(absl::string_view sql) override {
    return std::unique_ptr<Statement>(new PgStatement(handle_, std::string(sql), true));
  }

  int64_t Changes() const override { return changes_; }

  absl::Status BeginWrite() override {
    return Begin(absl::StrCat("BEGIN; SELECT pg_advisory_xact_lock(", kWriteLockKey, ")"));
  }
  absl::Status BeginRead() override {
    return Begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }
  absl::Status Commit() override {
    if (in_tx_ && PQstatus(conn_) != CONNECTION_OK) {
      in_tx_ = false;
      return absl::UnavailableError(
          absl::StrCat("postgresql: the connection to ", SafeUrl(url_),
                       " was lost during the transaction; it was not committed"));
    }
    if (PQtransactionStatus(conn_) == PQTRANS_INERROR) {
      // COMMIT of a failed transaction is a silent ROLLBACK on PostgreSQL: say so.
      Exec("ROLLBACK").IgnoreError();
      return absl::AbortedError(
          "postgresql: the transaction was aborted by an earlier error and rolled back");
    }
    return Exec("COMMIT");
  }
  absl::Status Rollback() override {
    if (PQstatus(conn_) != CONNECTION_OK) {
      in_tx_ = false;  // the server rolled it back when the connection went
      EndTransaction();
      return absl::OkStatus();
    }
    if (PQtransactionStatus(conn_) == PQTRANS_IDLE) {
      EndTransaction();
      return absl::OkStatus();
    }
    return Exec("ROLLBACK");
  }

  // --- for PgStatement ---

  // UNAVAILABLE while the connection is lost; tries to reconnect first, except inside a
  // transaction: that one is gone, and nothing may run outside it until Commit or Rollback.
  absl::Status Ready() {
    if (PQstatus(conn_) == CONNECTION_OK) return absl::OkStatus();
    if (in_tx_) {
      return absl::UnavailableError(absl::StrCat("postgresql: the connection to ", SafeUrl(url_),
                                                 " was lost during a transaction"));
    }
    PQreset(conn_);
    ++generation_;
    EndTransaction();
    if (PQstatus(conn_) != CONNECTION_OK) {
      return absl::UnavailableError(absl::StrCat("postgresql: cannot reconnect to ", SafeUrl(url_),
                                                 ": ", PQerrorMessage(conn_)));
    }
    return Setup();
  }

  absl::Status Setup() {
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    PGresult* res = PQexec(conn_, "SET TIME ZONE 'UTC'");
    absl::Status s = Check(res, "SET TIME ZONE 'UTC'");
    PQclear(res);
    return s;
  }

  // OK for a command or rows; else the mapped error.
  absl::Status Check(PGresult* res, absl::string_view sql) {
    ExecStatusType st = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
      return absl::OkStatus();
    }
    return PgError(conn_, res, sql);
  }

  void NoteChanges(PGresult* res) {
    const char* status = PQcmdStatus(res);
    if (status == nullptr) return;
    if (absl::StartsWith(status, "INSERT") || absl::StartsWith(status, "UPDATE") ||
        absl::StartsWith(status, "DELETE")) {
      int64_t n = 0;
      if (absl::SimpleAtoi(PQcmdTuples(res), &n)) changes_ = n;
    }
  }

  bool InTransaction() const { return PQtransactionStatus(conn_) != PQTRANS_IDLE; }

  int64_t OpenCursor() {
    int64_t id = ++next_cursor_;
    live_cursors_.insert(id);
    return id;
  }
  // Closes a cursor if it is still open on the server.
  void CloseCursor(int64_t id) {
    if (live_cursors_.erase(id) == 0) return;
    if (PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) != PQTRANS_INTRANS) return;
    PGresult* res = PQexec(conn_, absl::StrCat("CLOSE fs_c", id).c_str());
    PQclear(res);
  }
  bool CursorLive(int64_t id) const { return live_cursors_.count(id) > 0; }

  std::string NextStatementName() { return absl::StrCat("fs_s", ++next_statement_); }

  PGconn* conn() { return conn_; }
  uint64_t generation() const { return generation_; }

 private:
  // Mirrors what a successful transaction-control command did to the cursors.
  void Track(const std::string& word, absl::string_view sql) {
    if (word == "COMMIT" || word == "END" || word == "ABORT" ||
        (word == "ROLLBACK" && !absl::StrContains(absl::AsciiStrToUpper(sql), " TO"))) {
      EndTransaction();
    } else if (word == "BEGIN" && !InTransaction()) {
      EndTransaction();
    } else if (word == "SAVEPOINT") {
      savepoints_.emplace_back(SavepointName(sql), next_cursor_);
    } else if (word == "ROLLBACK") {
      // ROLLBACK TO: cursors opened after the savepoint are gone; the savepoint stays.
      std::string name = SavepointName(sql);
      for (size_t i = savepoints_.size(); i-- > 0;) {
        if (savepoints_[i].first != name) continue;
        int64_t mark = savepoints_[i].second;
        for (auto it = live_cursors_.begin(); it != live_cursors_.end();) {
          it = *it > mark ? live_cursors_.erase(it) : std::next(it);
        }
        savepoints_.resize(i + 1);
        break;
      }
    } else if (word == "RELEASE") {
      std::string name = SavepointName(sql);
      for (size_t i = savepoints_.size(); i-- > 0;) {
        if (savepoints_[i].first != name) continue;
        savepoints_.resize(i);
        break;
      }
    }
    if (!InTransaction()) EndTransaction();
  }

  void EndTransaction() {
    live_cursors_.clear();
    savepoints_.clear();
  }

  PGconn* conn_;
  std::string url_;
  std::shared_ptr<ConnHandle> handle_;
  std::unordered_map<std::string, std::unique_ptr<PgStatement>> cache_;
  int64_t changes_ = 0;
  bool in_tx_ = false;  // as of the last command on a live connection
  uint64_t generation_ = 1;
  int64_t next_cursor_ = 0;
  int64_t next_statement_ = 0;
  std::set<int64_t> live_cursors_;
  std::vector<std::pair<std::string, int64_t>> savepoints_;  // name, last cursor id before it
};

PgStatement::PgStatement(std::shared_ptr<ConnHandle> handle, std::string sql, bool scan)
    : handle_(std::move(handle)), sql_(std::move(sql)), scan_(scan) {
  int n = 0;
  pg_sql_ = PostgresSql(sql_, &n);
  params_.resize(n);
  std::string word = FirstWord(sql_);
  is_select_ = word == "SELECT" || word == "WITH" || word == "VALUES";
}

PgStatement::~PgStatement() { Finish(); }

void PgStatement::Finish() {
  ClearResult();
  if (cursor_ != 0 && handle_->conn != nullptr) handle_->conn->CloseCursor(cursor_);
  cursor_ = 0;
  started_ = false;
  done_ = false;
}

void PgStatement::Reset() {
  Finish();
  for (Param& p : params_) p = Param();
}

absl::StatusOr<bool> PgStatement::Fetch() {
  PgConnection* c = handle_->conn;
  ClearResult();
  std::string fetch = absl::StrCat("FETCH ", kBatch, " FROM fs_c", cursor_);
  res_ = PQexec(c->conn(), fetch.c_str());
  absl::Status s = c->Check(res_, sql_);
  if (!s.ok()) {
    ClearResult();
    done_ = true;
    return s;
  }
  row_ = 0;
  if (PQntuples(res_) < kBatch) {
    // The last batch: the cursor is of no more use.
    int64_t id = cursor_;
    cursor_ = 0;
    c->CloseCursor(id);
  }
  return PQntuples(res_) > 0;
}

absl::StatusOr<bool> PgStatement::Step() {
  PgConnection* c = handle_->conn;
  if (c == nullptr) return absl::FailedPreconditionError("postgresql: the connection is closed");
  if (started_) {
    if (done_ || res_ == nullptr) return false;
    ++row_;
    if (row_ < PQntuples(res_)) return true;
    if (cursor_ == 0) {
      done_ = true;
      return false;
    }
    if (!c->CursorLive(cursor_)) {
      cursor_ = 0;
      done_ = true;
      return absl::FailedPreconditionError(
          absl::StrCat("postgresql: the cursor ended with its transaction in: ", SqlHead(sql_)));
    }
    absl::StatusOr<bool> more = Fetch();
    if (!more.ok() || !*more) done_ = true;
    return more;
  }
  started_ = true;
  FS_RETURN_IF_ERROR(c->Ready());

  std::vector<const char*> values(params_.size());
  std::vector<int> lengths(params_.size());
  std::vector<int> formats(params_.size());
  std::vector<Oid> types(params_.size());
  std::string signature;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Param& p = params_[i];
    values[i] = p.null ? nullptr : p.value.data();
    lengths[i] = static_cast<int>(p.value.size());
    formats[i] = p.format;
    types[i] = p.null ? 0 : p.type;
    absl::StrAppend(&signature, types[i], ",");
  }
  const int n = static_cast<int>(params_.size());

  if (scan_ && is_select_ && c->InTransaction()) {
    cursor_ = c->OpenCursor();
    std::string declare = absl::StrCat("DECLARE fs_c", cursor_, " NO SCROLL CURSOR FOR ", pg_sql_);
    PGresult* res = PQexecParams(c->conn(), declare.c_str(), n, types.data(), values.data(),
                                 lengths.data(), formats.data(), 0);
    absl::Status s = c->Check(res, sql_);
    PQclear(res);
    if (!s.ok()) {
      c->CloseCursor(cursor_);  // forgets it: it never opened
      cursor_ = 0;
      done_ = true;
      return s;
    }
    absl::StatusOr<bool> more = Fetch();
    if (!more.ok() || !*more) done_ = true;
    if (more.ok() && *more) row_ = 0;
    return more;
  }

  if (prepared_generation_ != c->generation()) {
    prepared_.clear();
    prepared_generation_ = c->generation();
  }
  std::string& name = prepared_[signature];
  if (name.empty()) {
    std::string fresh = c->NextStatementName();
    PGresult* res = PQprepare(c->conn(), fresh.c_str(), pg_sql_.c_str(), n, types.data());
    absl::Status s = c->Check(res, sql_);
    PQclear(res);
    if (!s.ok()) {
      prepared_.erase(signature);
      done_ = true;
      return s;
    }
    name = fresh;
  }
  res_ =
      PQexecPrepared(c->conn(), name.c_str(), n, values.data(), lengths.data(), formats.data(), 0);
  absl::Status s = c->Check(res_, sql_);
  if (!s.ok()) {
    ClearResult();
    done_ = true;
    return s;
  }
  c->NoteChanges(res_);
  row_ = 0;
  if (PQresultStatus(res_) != PGRES_TUPLES_OK || PQntuples(res_) == 0) {
    done_ = true;
    return false;
  }
  return true;
}

}  // namespace

std::string RedactUrl(absl::string_view url) {
  return IsPostgresUrl(url) ? SafeUrl(url) : std::string(url);
}

std::string PostgresSql(absl::string_view sql, int* params) {
  std::string out;
  out.reserve(sql.size() + 8);
  std::map<std::string, int> named;
  int max = 0;
  size_t i = 0;
  const size_t n = sql.size();
  auto copy_until = [&](char close) {
    // Copies sql[i] (the opening quote) through the closing one; a doubled quote is two
    // adjacent literals, copied the same.
    out.push_back(sql[i++]);
    while (i < n) {
      char c = sql[i++];
      out.push_back(c);
      if (c == close) break;
    }
  };
  while (i < n) {
    char c = sql[i];
    if (c == '\'' || c == '"') {
      copy_until(c);
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      while (i < n && sql[i] != '\n') out.push_back(sql[i++]);
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      size_t end = sql.find("*/", i + 2);
      end = end == absl::string_view::npos ? n : end + 2;
      out.append(sql.data() + i, end - i);
      i = end;
    } else if (c == '?') {
      ++i;
      size_t start = i;
      while (i < n && absl::ascii_isdigit(static_cast<unsigned char>(sql[i]))) ++i;
      int index = 0;
      if (i > start && absl::SimpleAtoi(sql.substr(start, i - start), &index) && index > 0) {
        if (index > max) max = index;
      } else {
        index = ++max;
      }
      absl::StrAppend(&out, "$", index);
    } else if (c == ':' && i + 1 < n && sql[i + 1] == ':') {
      out.append("::");  // a PostgreSQL cast, not a parameter
      i += 2;
    } else if ((c == '$' || c == ':' || c == '@') && i + 1 < n && IsIdentChar(sql[i + 1]) &&
               !(i > 0 && IsIdentChar(sql[i - 1]))) {
      size_t start = i;
      ++i;
      while (i < n && IsIdentChar(sql[i])) ++i;
      std::string name(sql.substr(start, i - start));
      auto [it, added] = named.emplace(name, 0);
      if (added) it->second = ++max;
      absl::StrAppend(&out, "$", it->second);
    } else {
      out.push_back(c);
      ++i;
    }
  }
  if (params != nullptr) *params = max;
  return out;
}

absl::StatusOr<std::unique_ptr<Connection>> OpenPostgres(const std::string& url) {
  // Later keywords override earlier ones: a timeout the URL sets wins; the rest is ours.
  const char* keys[] = {"connect_timeout", "dbname", "application_name", "client_encoding",
                        nullptr};
  const char* values[] = {"10", url.c_str(), "fieldsyncd", "UTF8", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) {
    return absl::ResourceExhaustedError("postgresql: out of memory opening a connection");
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    PQfinish(conn);
    return absl::UnavailableError(
        absl::StrCat("postgresql: cannot connect to ", SafeUrl(url), ": ", message));
  }
  auto c = std::make_unique<PgConnection>(conn, url);
  absl::Status s = c->Setup();
  if (!s.ok()) return s;
  return std::unique_ptr<Connection>(std::move(c));
}

}  // namespace fieldsync::db
