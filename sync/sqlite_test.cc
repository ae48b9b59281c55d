#include "fieldsync/sync/sqlite.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync::sqlite {
namespace {

using ::fieldsync::testing::StatusIs;
using ::testing::HasSubstr;

TEST(Sqlite, CreatesOwnerOnlyFileInWalMode) {
  fieldsync::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), {}));
  struct stat st;
  ASSERT_EQ(stat(dir.File("a.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  ASSERT_OK_AND_ASSIGN(Statement * q, db->Prepare("PRAGMA journal_mode"));
  ASSERT_OK_AND_ASSIGN(bool row, q->Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(q->ColumnText(0), "wal");
}

TEST(Sqlite, TransactionRollsBackUnlessCommitted) {
  fieldsync::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), {}));
  ASSERT_OK(db->Exec("CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT)"));
  {
    ASSERT_OK_AND_ASSIGN(auto tx, Transaction::Begin(*db, Transaction::kImmediate));
    ASSERT_OK_AND_ASSIGN(Statement * ins, db->Prepare("INSERT INTO t(a, b) VALUES(?, ?)"));
    ins->Bind(1, 1);
    ins->Bind(2, "dropped");
    ASSERT_OK(ins->Run());
  }
  {
    ASSERT_OK_AND_ASSIGN(auto tx, Transaction::Begin(*db, Transaction::kImmediate));
    ASSERT_OK_AND_ASSIGN(Statement * ins, db->Prepare("INSERT INTO t(a, b) VALUES(?, ?)"));
    ins->Bind(1, 2);
    ins->Bind(2, "kept");
    ASSERT_OK(ins->Run());
    ASSERT_OK(tx.Commit());
  }
  ASSERT_OK_AND_ASSIGN(Statement * q, db->Prepare("SELECT group_concat(b) FROM t"));
  ASSERT_OK_AND_ASSIGN(bool row, q->Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(q->ColumnText(0), "kept");
}

TEST(Sqlite, ErrorsMapToCanonicalCodes) {
  fieldsync::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), {}));
  ASSERT_OK(db->Exec("CREATE TABLE t(a INTEGER PRIMARY KEY)"));
  ASSERT_OK(db->Exec("INSERT INTO t VALUES(1)"));
  ASSERT_OK_AND_ASSIGN(Statement * ins, db->Prepare("INSERT INTO t VALUES(?)"));
  ins->Bind(1, 1);
  EXPECT_THAT(ins->Run(), StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("UNIQUE")));
  EXPECT_THAT(db->Prepare("SELEC nonsense"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("syntax error")));
  EXPECT_THAT(Database::Open(dir.File("missing/dir/x.db"), {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("missing/dir")));
}

TEST(Sqlite, BlobsRoundTripWithNulBytes) {
  fieldsync::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), {}));
  ASSERT_OK(db->Exec("CREATE TABLE t(b BLOB)"));
  std::string blob("a\0b\xff", 4);
  ASSERT_OK_AND_ASSIGN(Statement * ins, db->Prepare("INSERT INTO t VALUES(?)"));
  ins->BindBlob(1, blob);
  ASSERT_OK(ins->Run());
  ASSERT_OK_AND_ASSIGN(Statement * q, db->Prepare("SELECT b FROM t"));
  ASSERT_OK_AND_ASSIGN(bool row, q->Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(q->ColumnBlob(0), blob);
}

}  // namespace
}  // namespace fieldsync::sqlite
