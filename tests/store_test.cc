// The SQLite store and the auth policy, below the gRPC layer: migrations, atomic batches, the
// hash-chained change log, and that every RPC has a policy.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/v1/report.pb.h"
#include "google/protobuf/descriptor.h"
#include "server/admin.h"
#include "server/auth.h"
#include "server/change_log.h"
#include "server/schema.h"
#include "server/sqlite_store.h"
#include "server/tracker.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_db.h"

namespace fieldsync::server {
namespace {

using ::fieldsync::testing::StatusIs;
using ::testing::HasSubstr;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SqliteStore::Options options;
    options.path = db_.path();  // SQLite file, or a PostgreSQL database in that pass
    options.synchronous = "NORMAL";
    auto store = SqliteStore::Open(options);
    ASSERT_OK(store);
    store_ = std::move(*store);
  }

  v1::Partner Partner(const std::string& name) {
    v1::Partner p;
    p.set_name(name);
    p.add_countries("KE");
    auto out = Admin(*store_).CreatePartner(SystemPrincipal(), p);
    EXPECT_OK(out);
    return *out;
  }

  int64_t Count(const std::string& table) {
    return fieldsync::testing::QueryInt(db_.path(), "SELECT COUNT(*) FROM " + table);
  }

  fieldsync::testing::TempDir dir_;
  fieldsync::testing::TestDatabase db_{dir_};
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(StoreTest, ReopeningKeepsDataAndSchemaVersion) {
  Partner("Alpha");
  store_.reset();
  SqliteStore::Options options;
  options.path = db_.path();
  ASSERT_OK_AND_ASSIGN(store_, SqliteStore::Open(options));
  ASSERT_OK_AND_ASSIGN(auto partners, store_->ListPartners(PageRequest{}));
  ASSERT_EQ(partners.size(), 1u);
  EXPECT_EQ(partners[0].name(), "Alpha");
  EXPECT_EQ(Count("schema_migrations"), LatestSchemaVersion());
}

TEST_F(StoreTest, RunInTransactionAppliesAllOrNothing) {
  v1::Partner p;
  p.add_countries("UG");
  absl::Status s = store_->RunInTransaction([&]() -> absl::Status {
    p.set_id(NewUuidV7());
    p.set_name("One");
    if (auto r = store_->CreatePartner(p, Actor{"t"}); !r.ok()) return r.status();
    p.set_id(NewUuidV7());
    p.set_name("One");  // duplicate name: the whole batch must go
    return store_->CreatePartner(p, Actor{"t"}).status();
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("partner.name")));
  EXPECT_EQ(Count("partners"), 0);
  EXPECT_EQ(Count("change_log"), 0);

  // A failed write inside a batch that the batch tolerates leaves no trace of itself.
  ASSERT_OK(store_->RunInTransaction([&]() -> absl::Status {
    p.set_id(NewUuidV7());
    p.set_name("Two");
    if (auto r = store_->CreatePartner(p, Actor{"t"}); !r.ok()) return r.status();
    p.set_id(NewUuidV7());
    EXPECT_FALSE(store_->CreatePartner(p, Actor{"t"}).ok());  // same name
    return absl::OkStatus();
  }));
  EXPECT_EQ(Count("partners"), 1);
  EXPECT_EQ(Count("change_log"), 1);
}

TEST_F(StoreTest, ChangeLogIsHashChainedAndAppendOnly) {
  for (const char* name : {"A", "B", "C"}) Partner(name);
  ASSERT_OK_AND_ASSIGN(auto log, store_->ReadChangeLog(0, 100));
  ASSERT_EQ(log.size(), 3u);
  std::string prev = kGenesisHash;
  for (const ChangeLogEntry& e : log) {
    EXPECT_EQ(e.prev_hash, prev);
    EXPECT_EQ(e.hash, ChainHash(prev, e)) << e.seq;
    prev = e.hash;
  }
  // Changing any byte of an entry changes its hash.
  ChangeLogEntry tampered = log[1];
  tampered.payload[tampered.payload.size() / 2] ^= 1;
  EXPECT_NE(ChainHash(log[0].hash, tampered), log[1].hash);

  // The database itself refuses (triggers, on both engines).
  EXPECT_THAT(fieldsync::testing::ExecSql(db_.path(), "UPDATE change_log SET op = 'x' WHERE seq = 1"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("append-only")));
  EXPECT_THAT(fieldsync::testing::ExecSql(db_.path(), "DELETE FROM change_log"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("append-only")));
  EXPECT_EQ(Count("change_log"), 3);
}

TEST_F(StoreTest, VersionsAreServerSequenceNumbers) {
  v1::Partner a = Partner("A");
  v1::Partner b = Partner("B");
  EXPECT_EQ(a.audit().version(), 1);
  EXPECT_EQ(b.audit().version(), 2);
  b.set_name("B2");
  ASSERT_OK_AND_ASSIGN(v1::Partner b2, store_->UpdatePartner(b, Actor{"x"}));
  EXPECT_EQ(b2.audit().version(), 3);
  EXPECT_EQ(b2.audit().created_by(), "system");
  EXPECT_EQ(b2.audit().updated_by(), "x");
}

TEST_F(StoreTest, TokensAreStoredOnlyAsHashes) {
  ASSERT_OK_AND_ASSIGN(auto issued, Admin(*store_).BootstrapAdminToken("admin"));
  EXPECT_EQ(issued.secret().size(), 46u);
  ASSERT_OK_AND_ASSIGN(TokenRecord found, store_->FindToken(HashTokenSecret(issued.secret())));
  EXPECT_EQ(found.subject_name, "admin");
  EXPECT_EQ(found.token.role(), v1::ROLE_ADMIN);
  store_.reset();
  if (db_.postgres()) {
    // PostgreSQL: in no row of any table, as text or (in bytea columns) as bytes.
    std::string hex;
    for (unsigned char c : issued.secret()) absl::StrAppend(&hex, absl::Hex(c, absl::kZeroPad2));
    ASSERT_OK_AND_ASSIGN(auto tables,
                         fieldsync::testing::QueryRows(
                             db_.path(), "SELECT table_name FROM information_schema.tables "
                                         "WHERE table_schema = current_schema()"));
    ASSERT_GT(tables.size(), 5u);
    for (const auto& t : tables) {
      for (const std::string& needle : {issued.secret(), issued.secret().substr(8), hex}) {
        EXPECT_EQ(fieldsync::testing::QueryInt(
                      db_.path(), absl::StrCat("SELECT COUNT(*) FROM ", *t[0],
                                               " r WHERE position('", needle, "' in r::text) > 0")),
                  0)
            << *t[0];
      }
    }
    return;
  }
  // The secret appears nowhere in the database file.
  FILE* f = fopen(dir_.File("fieldsync.db").c_str(), "rb");
  std::string bytes;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
  fclose(f);
  EXPECT_EQ(bytes.find(issued.secret()), std::string::npos);
  EXPECT_EQ(bytes.find(issued.secret().substr(8)), std::string::npos);
}

TEST(AuthPolicy, EveryRpcHasAPolicyAndEveryPolicyAnRpc) {
  std::set<std::string> rpcs;
  (void)v1::ExportRequest::descriptor();  // links report.proto's descriptors into the pool
  for (const char* service : {"fieldsync.v1.TrackerService", "fieldsync.v1.AdminService",
                              "fieldsync.v1.SyncService", "fieldsync.v1.ReportService"}) {
    const auto* d = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    ASSERT_NE(d, nullptr) << service;
    for (int i = 0; i < d->method_count(); ++i) {
      std::string m = "/" + d->full_name() + "/" + d->method(i)->name();
      rpcs.insert(m);
      EXPECT_FALSE(RolesFor(m).empty()) << m << " has no entry in the policy table";
    }
  }
  for (const std::string& m : PolicyMethods()) EXPECT_TRUE(rpcs.count(m)) << m;
  EXPECT_TRUE(RolesFor("/fieldsync.v1.TrackerService/Nope").empty());
}

TEST(PageTokens, RoundTripAndRejectForgeries) {
  std::string id = NewUuidV7();
  ASSERT_OK_AND_ASSIGN(std::string back, DecodePageToken(EncodePageToken(id)));
  EXPECT_EQ(back, id);
  EXPECT_THAT(DecodePageToken("abc"), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("page_token")));
  EXPECT_THAT(PageFor(-1, ""), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_size")));
  ASSERT_OK_AND_ASSIGN(PageRequest page, PageFor(0, ""));
  EXPECT_EQ(page.page_size, 101);
}

}  // namespace
}  // namespace fieldsync::server
