#include "fieldsync/sync/sqlite.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "fieldsync/base/status_macros.h"
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

TEST(Sqlite, BackupToCopiesOneCommittedSnapshotWhileAWriterGoesOn) {
  fieldsync::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), {}));
  ASSERT_OK(db->Exec("CREATE TABLE t(a INTEGER PRIMARY KEY); INSERT INTO t VALUES(1), (2)"));
  ASSERT_OK_AND_ASSIGN(auto writer, Database::Open(dir.File("a.db"), {}));
  // A write in flight on another connection during the copy: not in the backup.
  ASSERT_OK_AND_ASSIGN(auto tx, Transaction::Begin(*writer, Transaction::kImmediate));
  ASSERT_OK(writer->Exec("INSERT INTO t VALUES(3)"));
  int64_t seen_in_snapshot = -1;
  ASSERT_OK_AND_ASSIGN(int64_t bytes, db->BackupTo(dir.File("b.db"), [&]() -> absl::Status {
    FS_ASSIGN_OR_RETURN(Statement * q, db->Prepare("SELECT COUNT(*) FROM t"));
    FS_ASSIGN_OR_RETURN(bool row, q->Step());
    seen_in_snapshot = row ? q->ColumnInt(0) : -1;
    q->Reset();
    return absl::OkStatus();
  }));
  ASSERT_OK(tx.Commit());
  EXPECT_EQ(seen_in_snapshot, 2);
  struct stat st;
  ASSERT_EQ(stat(dir.File("b.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(bytes, st.st_size);
  EXPECT_NE(stat(dir.File("b.db.part").c_str(), &st), 0);
  EXPECT_NE(stat(dir.File("b.db-wal").c_str(), &st), 0);
  {
    OpenOptions ro;
    ro.create = false;
    ro.read_only = true;
    ASSERT_OK_AND_ASSIGN(auto copy, Database::Open(dir.File("b.db"), ro));
    ASSERT_OK_AND_ASSIGN(Statement * q, copy->Prepare("SELECT COUNT(*) FROM t"));
    ASSERT_OK_AND_ASSIGN(bool row, q->Step());
    ASSERT_TRUE(row);
    EXPECT_EQ(q->ColumnInt(0), 2);
    q->Reset();
  }
  // Never over an existing file; a failing before_copy leaves nothing behind.
  EXPECT_THAT(db->BackupTo(dir.File("b.db")),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("b.db")));
  EXPECT_THAT(db->BackupTo(dir.File("c.db"), [] { return absl::DataLossError("no"); }),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("no")));
  EXPECT_NE(stat(dir.File("c.db").c_str(), &st), 0);
  EXPECT_NE(stat(dir.File("c.db.part").c_str(), &st), 0);
  // The connection is usable afterwards (its read transaction ended).
  ASSERT_OK(db->Exec("INSERT INTO t VALUES(4)"));
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
