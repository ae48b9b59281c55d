#include "tests/testing/test_db.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fieldsync::testing {

namespace {

// libpq connection closed on scope exit.
struct PgConn {
  explicit PgConn(const std::string& url) : c(PQconnectdb(url.c_str())) {}
  ~PgConn() { PQfinish(c); }
  bool ok() const { return c != nullptr && PQstatus(c) == CONNECTION_OK; }
  std::string error() const { return c == nullptr ? "out of memory" : PQerrorMessage(c); }
  PGconn* c;
};

struct PgResult {
  explicit PgResult(PGresult* r) : r(r) {}
  ~PgResult() { PQclear(r); }
  bool ok() const {
    ExecStatusType s = PQresultStatus(r);
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
  }
  PGresult* r;
};

// `url` with its database name replaced by `name` (keeps user, password, host, port, options).
std::string WithDatabase(const std::string& url, const std::string& name) {
  size_t scheme = url.find("://");
  size_t slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  size_t query = url.find('?', slash == std::string::npos ? 0 : slash);
  std::string base = slash == std::string::npos ? url.substr(0, query) : url.substr(0, slash);
  std::string tail = query == std::string::npos ? "" : url.substr(query);
  return absl::StrCat(base, "/", name, tail);
}

std::string DatabaseOf(const std::string& url) {
  size_t scheme = url.find("://");
  size_t slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (slash == std::string::npos) return "";
  size_t query = url.find('?', slash);
  return url.substr(slash + 1, query == std::string::npos ? std::string::npos : query - slash - 1);
}

constexpr Oid kByteaOid = 17;  // pg_type.h's BYTEAOID (server headers are not installed)

std::string PgError(const PgConn& c, const char* what) {
  return absl::StrCat(what, ": ", PQerrorMessage(c.c));
}

// Checks behind the server's back run often (a query per record in some tests): one
// connection per database URL is kept open for them (SCRAM authentication costs a few ms per
// connection), used under the lock, reopened when it was lost (e.g. the database was dropped).
std::mutex cached_mu;
std::map<std::string, std::unique_ptr<PgConn>>& Cached() {
  static auto* conns = new std::map<std::string, std::unique_ptr<PgConn>>();
  return *conns;
}

// Runs `sql` on a cached connection to `url`; retries once on a fresh connection if the cached
// one turned out to be dead. Lock cached_mu held.
absl::StatusOr<PgResult*> CachedExec(const std::string& url, const std::string& sql,
                                     std::unique_ptr<PgResult>& out) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<PgConn>& c = Cached()[url];
    if (c == nullptr || PQstatus(c->c) != CONNECTION_OK) c = std::make_unique<PgConn>(url);
    if (!c->ok()) {
      absl::Status s = absl::UnavailableError(absl::StrCat("PostgreSQL: ", c->error()));
      c.reset();
      return s;
    }
    out = std::make_unique<PgResult>(PQexec(c->c, sql.c_str()));
    if (out->ok()) return out.get();
    if (PQstatus(c->c) == CONNECTION_OK) {
      return absl::InternalError(absl::StrCat(PgError(*c, "query"), " in: ", sql));
    }
    c.reset();  // lost: once more on a new connection
  }
  return absl::UnavailableError("PostgreSQL: connection lost twice");
}

}  // namespace

std::string PostgresAdminUrl() {
  const char* url = std::getenv("FIELDSYNC_TEST_POSTGRES");
  return url == nullptr ? "" : url;
}

bool UsingPostgres() { return !PostgresAdminUrl().empty(); }

bool IsPostgresUrl(const std::string& db) {
  return absl::StartsWith(db, "postgresql://") || absl::StartsWith(db, "postgres://");
}

absl::StatusOr<std::string> CreatePostgresDatabase(const std::string& template_name) {
  const std::string admin = PostgresAdminUrl();
  if (admin.empty()) {
    return absl::FailedPreconditionError(
        "FIELDSYNC_TEST_POSTGRES is not set: run under scripts/with-postgres");
  }
  static std::atomic<int> counter{0};
  std::random_device rd;
  std::string name = absl::StrCat("fs_t", getpid(), "_", counter++, "_",
                                  absl::Hex(rd() & 0xffffff, absl::kZeroPad6));
  PgConn c(admin);
  if (!c.ok()) {
    return absl::UnavailableError(absl::StrCat("test PostgreSQL unreachable: ", c.error()));
  }
  std::string sql = absl::StrCat("CREATE DATABASE ", name);
  if (!template_name.empty()) absl::StrAppend(&sql, " TEMPLATE ", template_name);
  PgResult r(PQexec(c.c, sql.c_str()));
  if (!r.ok()) return absl::InternalError(PgError(c, "CREATE DATABASE"));
  return WithDatabase(admin, name);
}

void DropPostgresDatabase(const std::string& url) {
  const std::string admin = PostgresAdminUrl();
  std::string name = DatabaseOf(url);
  // Only databases this harness made: never the admin database.
  if (admin.empty() || !absl::StartsWith(name, "fs_t")) return;
  {
    std::lock_guard<std::mutex> lock(cached_mu);
    Cached().erase(url);
  }
  PgConn c(admin);
  if (!c.ok()) return;
  PgResult r(PQexec(c.c, absl::StrCat("DROP DATABASE IF EXISTS ", name, " WITH (FORCE)").c_str()));
}

TestDatabase::TestDatabase(const TempDir& dir, Engine engine)
    : TestDatabase(dir, "fieldsync.db", engine) {}

TestDatabase::TestDatabase(const std::string& dir, Engine engine) {
  path_ = dir + "/fieldsync.db";
  if (engine == kSqliteOnly || !UsingPostgres()) return;
  path_.clear();
  absl::StatusOr<std::string> url = CreatePostgresDatabase();
  if (!url.ok()) {
    ADD_FAILURE() << "TestDatabase: " << url.status();
    return;
  }
  path_ = *url;
}

TestDatabase::TestDatabase(const TempDir& dir, const std::string& file, Engine engine) {
  if (engine == kSqliteOnly || !UsingPostgres()) {
    path_ = dir.File(file);
    return;
  }
  absl::StatusOr<std::string> url = CreatePostgresDatabase();
  if (!url.ok()) {
    ADD_FAILURE() << "TestDatabase: " << url.status();
    return;
  }
  path_ = *url;
}

TestDatabase::~TestDatabase() {
  if (postgres()) DropPostgresDatabase(path_);
}

absl::StatusOr<std::vector<SqlRow>> QueryRows(const std::string& db, const std::string& sql) {
  std::vector<SqlRow> rows;
  if (IsPostgresUrl(db)) {
    std::lock_guard<std::mutex> lock(cached_mu);
    std::unique_ptr<PgResult> result;
    absl::StatusOr<PgResult*> res = CachedExec(db, sql, result);
    if (!res.ok()) return res.status();
    const PgResult& r = **res;
    for (int i = 0; i < PQntuples(r.r); ++i) {
      SqlRow row;
      for (int j = 0; j < PQnfields(r.r); ++j) {
        if (PQgetisnull(r.r, i, j)) {
          row.push_back(std::nullopt);
        } else if (PQftype(r.r, j) == kByteaOid) {
          // Text format shows bytea as "\x<hex>": the bytes themselves, as SQLite gives a BLOB.
          size_t n = 0;
          unsigned char* b =
              PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r.r, i, j)), &n);
          row.push_back(std::string(reinterpret_cast<const char*>(b), n));
          PQfreemem(b);
        } else {
          row.push_back(std::string(PQgetvalue(r.r, i, j), PQgetlength(r.r, i, j)));
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string e = sqlite3_errmsg(h);
    sqlite3_close(h);
    return absl::UnavailableError(absl::StrCat("SQLite ", db, ": ", e));
  }
  sqlite3_busy_timeout(h, 10000);
  sqlite3_stmt* st = nullptr;
  absl::Status status;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    status = absl::InternalError(absl::StrCat("SQLite: ", sqlite3_errmsg(h), " in: ", sql));
  } else {
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      SqlRow row;
      for (int j = 0; j < sqlite3_column_count(st); ++j) {
        if (sqlite3_column_type(st, j) == SQLITE_NULL) {
          row.push_back(std::nullopt);
        } else {
          const char* p = reinterpret_cast<const char*>(sqlite3_column_blob(st, j));
          row.push_back(std::string(p == nullptr ? "" : p, sqlite3_column_bytes(st, j)));
        }
      }
      rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) {
      status = absl::InternalError(absl::StrCat("SQLite: ", sqlite3_errmsg(h), " in: ", sql));
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  if (!status.ok()) return status;
  return rows;
}

int64_t QueryInt(const std::string& db, const std::string& sql) {
  absl::StatusOr<std::vector<SqlRow>> rows = QueryRows(db, sql);
  if (!rows.ok() || rows->empty() || rows->front().empty() || !rows->front()[0].has_value()) {
    return -1;
  }
  const std::string& text = *rows->front()[0];
  int64_t v = -1;
  if (absl::SimpleAtoi(text, &v)) return v;
  double d = 0;
  if (absl::SimpleAtod(text, &d)) return static_cast<int64_t>(d);  // as sqlite3_column_int64
  if (text == "t" || text == "f") return text == "t" ? 1 : 0;     // PostgreSQL booleans
  return -1;
}

absl::Status ExecSql(const std::string& db, const std::string& sql) {
  if (IsPostgresUrl(db)) {
    PgConn c(db);
    if (!c.ok()) return absl::UnavailableError(absl::StrCat("PostgreSQL: ", c.error()));
    PgResult r(PQexec(c.c, sql.c_str()));
    if (!r.ok()) return absl::InternalError(absl::StrCat(PgError(c, "exec"), " in: ", sql));
    return absl::OkStatus();
  }
  sqlite3* h = nullptr;
  absl::Status status;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    status = absl::UnavailableError(absl::StrCat("SQLite ", db, ": ", sqlite3_errmsg(h)));
  } else {
    sqlite3_busy_timeout(h, 10000);
    char* err = nullptr;
    if (sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      status = absl::InternalError(absl::StrCat("SQLite: ", err ? err : "?", " in: ", sql));
    }
    sqlite3_free(err);
  }
  sqlite3_close(h);
  return status;
}

}  // namespace fieldsync::testing
