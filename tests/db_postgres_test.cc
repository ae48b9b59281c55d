// The PostgreSQL engine of db::Connection (server/db_postgres.cc).
//
// The placeholder rewriting is checked without a server, against SQLite's own numbering. The
// rest runs on the test cluster of scripts/with-postgres (FIELDSYNC_TEST_POSTGRES, its admin
// URL) and is skipped without it: types both ways, streaming scans interleaved with other
// statements, cursors and savepoints, error codes, the write lock across connections, a lost
// connection. Only temporary tables: nothing is left behind on the cluster.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/db.h"

namespace fieldsync::db {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

struct Case {
  const char* sql;
  const char* want;
  int params;
};

// SQLite's count of parameters for `sql` (the highest number), -1 if it does not parse.
int SqliteParamCount(const std::string& sql) {
  sqlite3* h = nullptr;
  sqlite3_open(":memory:", &h);
  sqlite3_exec(h, "CREATE TABLE t(a, b, c, title, donor)", nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  int n = -1;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
    n = sqlite3_bind_parameter_count(st);
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return n;
}

int SqliteParamIndex(const std::string& sql, const char* name) {
  sqlite3* h = nullptr;
  sqlite3_open(":memory:", &h);
  sqlite3_exec(h, "CREATE TABLE t(a, b, c, title, donor)", nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  int n = -1;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
    n = sqlite3_bind_parameter_index(st, name);
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return n;
}

TEST(PostgresSqlTest, NumbersPlaceholdersAsSqliteDoes) {
  const Case cases[] = {
      {"SELECT a FROM t WHERE a = ? AND b = ?", "SELECT a FROM t WHERE a = $1 AND b = $2", 2},
      {"SELECT a FROM t WHERE a = ?1 AND (?2 = '' OR b >= ?2) AND (?3 = '' OR b <= ?3)",
       "SELECT a FROM t WHERE a = $1 AND ($2 = '' OR b >= $2) AND ($3 = '' OR b <= $3)", 3},
      // After ?3, a bare ? is 4; after it, ?2 is still 2.
      {"SELECT a FROM t WHERE a = ?3 AND b = ? AND c = ?2",
       "SELECT a FROM t WHERE a = $3 AND b = $4 AND c = $2", 4},
      // A named parameter takes the next number at first use and keeps it (ListProjects).
      {"SELECT a FROM t WHERE a = ? AND (instr(title, $text) > 0 OR instr(donor, $text) > 0) "
       "AND b > ?",
       "SELECT a FROM t WHERE a = $1 AND (instr(title, $2) > 0 OR instr(donor, $2) > 0) "
       "AND b > $3",
       3},
      {"SELECT a FROM t WHERE a = :x AND b = @y AND c = :x AND a = ?",
       "SELECT a FROM t WHERE a = $1 AND b = $2 AND c = $1 AND a = $3", 3},
      // Literals, quoted identifiers and comments keep their question marks and colons.
      {"SELECT 'a?b', 'it''s ?:x', \"a\" FROM t -- what? :y\nWHERE /* ?, $z */ a = ?",
       "SELECT 'a?b', 'it''s ?:x', \"a\" FROM t -- what? :y\nWHERE /* ?, $z */ a = $1", 1},
  };
  for (const Case& c : cases) {
    int n = -1;
    EXPECT_EQ(PostgresSql(c.sql, &n), c.want) << c.sql;
    EXPECT_EQ(n, c.params) << c.sql;
    EXPECT_EQ(SqliteParamCount(c.sql), c.params) << "SQLite disagrees on " << c.sql;
  }
  EXPECT_EQ(SqliteParamIndex(cases[3].sql, "$text"), 2);
  EXPECT_EQ(SqliteParamIndex(cases[4].sql, ":x"), 1);
  EXPECT_EQ(SqliteParamIndex(cases[4].sql, "@y"), 2);
}

TEST(PostgresSqlTest, LeavesPostgresCastsAndDollarQuotesOfNoParameterAlone) {
  int n = -1;
  EXPECT_EQ(PostgresSql("SELECT a::text, ?::bigint FROM t", &n),
            "SELECT a::text, $1::bigint FROM t");
  EXPECT_EQ(n, 1);
  EXPECT_EQ(PostgresSql("SELECT 1", &n), "SELECT 1");
  EXPECT_EQ(n, 0);
}

TEST(RedactUrlTest, HidesPasswordsOnly) {
  EXPECT_EQ(RedactUrl("postgresql://fs:pw@db.example:5432/fieldsync?sslmode=require"),
            "postgresql://fs:***@db.example:5432/fieldsync?sslmode=require");
  EXPECT_EQ(RedactUrl("postgresql:///fieldsync?host=/run/pg&password=pw&port=5433"),
            "postgresql:///fieldsync?host=/run/pg&password=***&port=5433");
  EXPECT_EQ(RedactUrl("postgres://fs@db.example/fieldsync"), "postgres://fs@db.example/fieldsync");
  EXPECT_EQ(RedactUrl("./data/fieldsync.db"), "./data/fieldsync.db");
}

TEST(OpenPostgresTest, UnreachableServerIsUnavailableAndHidesThePassword) {
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  absl::StatusOr<std::unique_ptr<Connection>> c =
      OpenPostgres("postgresql://fs:s3cret-pw@127.0.0.1:1/fieldsync?connect_timeout=5");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable) << c.status();
  EXPECT_THAT(std::string(c.status().message()),
              StartsWith("postgresql: cannot connect to postgresql://fs:"));
  EXPECT_THAT(std::string(c.status().message()), Not(HasSubstr("s3cret-pw")));
}

// --- On a live server ------------------------------------------------------------------------

class PostgresConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("FIELDSYNC_TEST_POSTGRES");
    if (url == nullptr || *url == '\0') {
      GTEST_SKIP() << "FIELDSYNC_TEST_POSTGRES is not set: run under scripts/with-postgres";
    }
    url_ = url;
    absl::StatusOr<std::unique_ptr<Connection>> c = OpenPostgres(url_);
    ASSERT_TRUE(c.ok()) << c.status();
    c_ = std::move(*c);
  }

  std::string url_;
  std::unique_ptr<Connection> c_;
};

TEST_F(PostgresConnectionTest, TypesRoundTrip) {
  ASSERT_TRUE(c_->Exec("CREATE TEMP TABLE v(i BIGINT, d DOUBLE PRECISION, t TEXT, b BYTEA, "
                       "n BIGINT)")
                  .ok());
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  absl::StatusOr<Statement*> ins =
      c_->Prepare("INSERT INTO v(i, d, t, b, n) VALUES(?, ?, ?, ?, ?)");
  ASSERT_TRUE(ins.ok()) << ins.status();
  (*ins)->Bind(1, int64_t{-9007199254740993});
  (*ins)->Bind(2, 0.1 + 0.2);
  (*ins)->Bind(3, "näive 'quoted' ?");
  (*ins)->BindBlob(4, bytes);
  (*ins)->BindNull(5);
  ASSERT_TRUE((*ins)->Run().ok());
  EXPECT_EQ(c_->Changes(), 1);

  absl::StatusOr<Statement*> sel =
      c_->Prepare("SELECT i, d, t, b, n, i > 0, i < 0 FROM v WHERE t = ?");
  ASSERT_TRUE(sel.ok()) << sel.status();
  (*sel)->Bind(1, "näive 'quoted' ?");
  absl::StatusOr<bool> row = (*sel)->Step();
  ASSERT_TRUE(row.ok()) << row.status();
  ASSERT_TRUE(*row);
  EXPECT_EQ((*sel)->ColumnInt(0), -9007199254740993);
  EXPECT_EQ((*sel)->ColumnDouble(1), 0.1 + 0.2);  // every bit of the double
  EXPECT_EQ((*sel)->ColumnText(2), "näive 'quoted' ?");
  EXPECT_EQ((*sel)->ColumnBlob(3), bytes);
  EXPECT_TRUE((*sel)->ColumnIsNull(4));
  EXPECT_FALSE((*sel)->ColumnIsNull(0));
  EXPECT_EQ((*sel)->ColumnInt(4), 0);
  EXPECT_EQ((*sel)->ColumnInt(5), 0);  // booleans read as 0 and 1
  EXPECT_EQ((*sel)->ColumnInt(6), 1);
  row = (*sel)->Step();
  ASSERT_TRUE(row.ok());
  EXPECT_FALSE(*row);
}

TEST_F(PostgresConnectionTest, ScanStreamsThroughACursorWhileOtherStatementsRun) {
  ASSERT_TRUE(c_->BeginRead().ok());
  absl::StatusOr<std::unique_ptr<Statement>> scan =
      c_->PrepareUncached("SELECT g, md5(g::text) FROM generate_series(1, ?) g ORDER BY g");
  ASSERT_TRUE(scan.ok()) << scan.status();
  (*scan)->Bind(1, int64_t{2500});
  int64_t seen = 0;
  int64_t open_cursors_max = 0;
  while (true) {
    absl::StatusOr<bool> row = (*scan)->Step();
    ASSERT_TRUE(row.ok()) << row.status();
    if (!*row) break;
    ++seen;
    ASSERT_EQ((*scan)->ColumnInt(0), seen);
    // Another statement between two rows of the scan, as the report scans do.
    absl::StatusOr<Statement*> other =
        c_->Prepare("SELECT COUNT(*) FROM pg_cursors WHERE name LIKE 'fs_c%'");
    ASSERT_TRUE(other.ok()) << other.status();
    absl::StatusOr<bool> r = (*other)->Step();
    ASSERT_TRUE(r.ok() && *r) << r.status();
    open_cursors_max = std::max(open_cursors_max, (*other)->ColumnInt(0));
  }
  EXPECT_EQ(seen, 2500);
  EXPECT_EQ(open_cursors_max, 1);  // the rows came through a cursor, not one big result
  EXPECT_TRUE(c_->Commit().ok());
}

TEST_F(PostgresConnectionTest, ACursorRolledBackWithItsSavepointIsForgotten) {
  ASSERT_TRUE(c_->Exec("CREATE TEMP TABLE s(a BIGINT)").ok());
  ASSERT_TRUE(c_->BeginWrite().ok());
  absl::StatusOr<std::unique_ptr<Statement>> before =
      c_->PrepareUncached("SELECT g FROM generate_series(1, 5000) g");
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(*(*before)->Step());
  ASSERT_TRUE(c_->Exec("SAVEPOINT group_write").ok());
  absl::StatusOr<std::unique_ptr<Statement>> inside =
      c_->PrepareUncached("SELECT g FROM generate_series(1, 5000) g");
  ASSERT_TRUE(inside.ok());
  ASSERT_TRUE(*(*inside)->Step());
  ASSERT_TRUE(c_->Exec("ROLLBACK TO group_write").ok());
  ASSERT_TRUE(c_->Exec("RELEASE group_write").ok());
  (*inside)->Reset();  // its cursor is gone: closing it must not fail the transaction
  // The cursor opened before the savepoint still streams.
  int n = 1;
  while (true) {
    absl::StatusOr<bool> row = (*before)->Step();
    ASSERT_TRUE(row.ok()) << row.status();
    if (!*row) break;
    ++n;
  }
  EXPECT_EQ(n, 5000);
  absl::StatusOr<Statement*> ins = c_->Prepare("INSERT INTO s(a) VALUES(?)");
  ASSERT_TRUE(ins.ok());
  (*ins)->Bind(1, 7);
  ASSERT_TRUE((*ins)->Run().ok());
  EXPECT_TRUE(c_->Commit().ok());
  absl::StatusOr<Statement*> count = c_->Prepare("SELECT COUNT(*) FROM s");
  ASSERT_TRUE(count.ok() && *(*count)->Step());
  EXPECT_EQ((*count)->ColumnInt(0), 1);
}

TEST_F(PostgresConnectionTest, ErrorsMapToCodesAndAFailedTransactionDoesNotCommit) {
  ASSERT_TRUE(c_->Exec("CREATE TEMP TABLE u(id TEXT PRIMARY KEY, n BIGINT NOT NULL)").ok());
  absl::StatusOr<Statement*> ins = c_->Prepare("INSERT INTO u(id, n) VALUES(?, ?)");
  ASSERT_TRUE(ins.ok());
  (*ins)->Bind(1, "a");
  (*ins)->Bind(2, 1);
  ASSERT_TRUE((*ins)->Run().ok());

  ASSERT_TRUE(c_->BeginWrite().ok());
  ins = c_->Prepare("INSERT INTO u(id, n) VALUES(?, ?)");
  (*ins)->Bind(1, "b");
  (*ins)->Bind(2, 2);
  ASSERT_TRUE((*ins)->Run().ok());
  ins = c_->Prepare("INSERT INTO u(id, n) VALUES(?, ?)");
  (*ins)->Bind(1, "a");
  (*ins)->Bind(2, 3);
  absl::Status dup = (*ins)->Run();
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_THAT(std::string(dup.message()), StartsWith("postgresql: duplicate key value"));
  EXPECT_THAT(std::string(dup.message()), HasSubstr("in: INSERT INTO u(id, n)"));
  // PostgreSQL aborted the transaction: COMMIT must not report success.
  absl::Status commit = c_->Commit();
  EXPECT_EQ(commit.code(), absl::StatusCode::kAborted) << commit;
  absl::StatusOr<Statement*> count = c_->Prepare("SELECT COUNT(*) FROM u");
  ASSERT_TRUE(count.ok());
  absl::StatusOr<bool> row = (*count)->Step();
  ASSERT_TRUE(row.ok() && *row) << row.status();
  EXPECT_EQ((*count)->ColumnInt(0), 1);  // "b" was rolled back with the transaction

  ins = c_->Prepare("INSERT INTO u(id, n) VALUES(?, ?)");
  (*ins)->Bind(1, "c");
  (*ins)->BindNull(2);
  EXPECT_EQ((*ins)->Run().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<Statement*> bad = c_->Prepare("SELEC 1");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ((*bad)->Step().status().code(), absl::StatusCode::kInternal);

  // UPDATE counts rows; a SELECT afterwards leaves the count alone, as in SQLite.
  absl::StatusOr<Statement*> up = c_->Prepare("UPDATE u SET n = n + 1");
  ASSERT_TRUE(up.ok() && (*up)->Run().ok());
  EXPECT_EQ(c_->Changes(), 1);
  count = c_->Prepare("SELECT COUNT(*) FROM u");
  ASSERT_TRUE((*count)->Step().ok());
  EXPECT_EQ(c_->Changes(), 1);
}

TEST_F(PostgresConnectionTest, WriteTransactionsTakeTurnsAcrossConnections) {
  absl::StatusOr<std::unique_ptr<Connection>> second = OpenPostgres(url_);
  ASSERT_TRUE(second.ok()) << second.status();
  absl::StatusOr<std::unique_ptr<Connection>> watcher = OpenPostgres(url_);
  ASSERT_TRUE(watcher.ok()) << watcher.status();

  ASSERT_TRUE(c_->BeginWrite().ok());
  std::atomic<bool> second_in{false};
  absl::Status second_begin;
  std::thread t([&] {
    second_begin = (*second)->BeginWrite();
    second_in = true;
  });
  // Wait until the second writer is seen waiting for the lock (no timing assumption).
  bool waiting = false;
  for (int i = 0; i < 2000 && !waiting; ++i) {
    absl::StatusOr<Statement*> q = (*watcher)->Prepare(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted");
    ASSERT_TRUE(q.ok());
    absl::StatusOr<bool> row = (*q)->Step();
    ASSERT_TRUE(row.ok() && *row) << row.status();
    waiting = (*q)->ColumnInt(0) > 0;
    if (!waiting) absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(waiting);
  EXPECT_FALSE(second_in.load());
  ASSERT_TRUE(c_->Commit().ok());
  t.join();
  EXPECT_TRUE(second_begin.ok()) << second_begin;
  EXPECT_TRUE(second_in.load());
  EXPECT_TRUE((*second)->Commit().ok());

  // A read transaction takes no lock.
  ASSERT_TRUE(c_->BeginWrite().ok());
  EXPECT_TRUE((*second)->BeginRead().ok());
  EXPECT_TRUE((*second)->Commit().ok());
  EXPECT_TRUE(c_->Commit().ok());
}

TEST_F(PostgresConnectionTest, ALostConnectionIsUnavailableThenReconnects) {
  absl::StatusOr<Statement*> pid = c_->Prepare("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid.ok() && *(*pid)->Step());
  int64_t backend = (*pid)->ColumnInt(0);
  absl::StatusOr<std::unique_ptr<Connection>> admin = OpenPostgres(url_);
  ASSERT_TRUE(admin.ok());
  absl::StatusOr<Statement*> kill =
      (*admin)->Prepare("SELECT pg_terminate_backend(CAST(? AS integer))");
  ASSERT_TRUE(kill.ok());
  (*kill)->Bind(1, backend);
  ASSERT_TRUE((*kill)->Run().ok());

  pid = c_->Prepare("SELECT pg_backend_pid()");
  absl::StatusOr<bool> row = (*pid)->Step();
  EXPECT_EQ(row.status().code(), absl::StatusCode::kUnavailable) << row.status();
  // The next call reconnects (and prepares its statements again).
  pid = c_->Prepare("SELECT pg_backend_pid()");
  row = (*pid)->Step();
  ASSERT_TRUE(row.ok()) << row.status();
  ASSERT_TRUE(*row);
  EXPECT_NE((*pid)->ColumnInt(0), backend);
}

}  // namespace
}  // namespace fieldsync::db
