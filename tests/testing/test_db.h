// The server database a test uses, on either engine. scripts/test runs the suite twice: on SQLite
// files, then under scripts/with-postgres, which starts a throwaway PostgreSQL cluster and sets
// FIELDSYNC_TEST_POSTGRES to its admin URL. With it set, every test database is a fresh
// PostgreSQL database on that cluster (created here through libpq, dropped at the end).
//
//   testing::TempDir dir;
//   testing::TestDatabase db(dir);           // dir/fieldsync.db, or a fresh postgresql:// URL
//   ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open({.path = db.path()}));
//   EXPECT_EQ(testing::QueryInt(db.path(), "SELECT COUNT(*) FROM records"), 3);
//
// Checks behind the server's back use SQL both engines understand (no PRAGMA, hex(),
// datetime(); compare text, count rows). A test of something only SQLite has (a file's mode,
// --max-db-mb, WAL, backup files) asks for SQLite explicitly and says why
// (TestDatabase::kSqliteOnly, ServerProcess::UseSqlite).
#ifndef FIELDSYNC_TESTS_TESTING_TEST_DB_H_
#define FIELDSYNC_TESTS_TESTING_TEST_DB_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync::testing {

// The admin URL of the test PostgreSQL cluster (FIELDSYNC_TEST_POSTGRES), or "" if unset.
std::string PostgresAdminUrl();
// True when this run's servers use PostgreSQL.
bool UsingPostgres();
// "postgresql://…" or "postgres://…".
bool IsPostgresUrl(const std::string& db);

// Creates a fresh, empty database fs_t<pid>_<n>_<random> on the test cluster (a copy of the
// database `template_name` if given) and returns its URL. FAILED_PRECONDITION if
// FIELDSYNC_TEST_POSTGRES is unset.
absl::StatusOr<std::string> CreatePostgresDatabase(const std::string& template_name = "");
// Drops the database of `url` (best effort, even while a killed server's connections linger).
void DropPostgresDatabase(const std::string& url);

// A test's server database: a fresh PostgreSQL database in the PostgreSQL pass, else the SQLite
// file dir/fieldsync.db (not created here). The PostgreSQL database is dropped on destruction.
class TestDatabase {
 public:
  enum Engine { kAsConfigured, kSqliteOnly };
  // kSqliteOnly: always the SQLite file, for tests of what only SQLite has; say why where you
  // use it. A PostgreSQL database that cannot be created fails the test (ADD_FAILURE) and
  // path() is then "".
  explicit TestDatabase(const TempDir& dir, Engine engine = kAsConfigured);
  explicit TestDatabase(const std::string& dir, Engine engine = kAsConfigured);
  // The same with the SQLite file dir/`file` (several databases in one folder).
  TestDatabase(const TempDir& dir, const std::string& file, Engine engine = kAsConfigured);
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  // The SQLite file path or the postgresql:// URL: what --db and SqliteStore::Options::path take.
  const std::string& path() const { return path_; }
  bool postgres() const { return IsPostgresUrl(path_); }

 private:
  std::string path_;
};

// Runs `sql` on `db` (a SQLite file, opened read-only, or a postgresql:// URL) and returns the
// first column of the first row as an integer; -1 if the query fails or returns no row.
int64_t QueryInt(const std::string& db, const std::string& sql);
// All rows of `sql` on `db`, each column as text (NULL as std::nullopt). An error names the
// engine's message.
using SqlRow = std::vector<std::optional<std::string>>;
absl::StatusOr<std::vector<SqlRow>> QueryRows(const std::string& db, const std::string& sql);
// Runs statements that change `db` (SQLite: read-write; tests that tamper with a database).
absl::Status ExecSql(const std::string& db, const std::string& sql);

}  // namespace fieldsync::testing

#endif  // FIELDSYNC_TESTS_TESTING_TEST_DB_H_
