// Group commit in the SQLite store: pushes of many devices that arrive together share one
// transaction and one COMMIT, yet each push stays all or nothing — an invalid batch rolls back
// alone, under its own SAVEPOINT, and the valid ones around it are applied exactly once.
//
// The test runs many threads pushing at once and checks outcomes, not timing: it would fail if a
// refused batch left any of its changes behind, if a valid batch lost one, or if the hash chain
// of the shared transaction broke.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/sync/document.h"
#include "server/admin.h"
#include "server/auth.h"
#include "server/change_log.h"
#include "server/sqlite_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_db.h"

namespace fieldsync::server {
namespace {

using ::fieldsync::testing::StatusIs;

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SqliteStore::Options options;
    options.path = db_.path();  // SQLite file, or a PostgreSQL database in that pass
    // FULL, as deployed: the fsync is what makes concurrent pushes queue up and share a commit.
    options.synchronous = "FULL";
    ASSERT_OK_AND_ASSIGN(store_, SqliteStore::Open(options));
    v1::Partner p;
    p.set_name("Maji Safi");
    p.add_countries("KE");
    ASSERT_OK_AND_ASSIGN(partner_, Admin(*store_).CreatePartner(SystemPrincipal(), p));
    v1::Project project;
    project.set_id(NewUuidV7());
    project.set_partner_id(partner_.id());
    project.set_kind(v1::PROJECT_KIND_WELL);
    project.set_title("Boreholes");
    project.set_country("KE");
    project.set_status(v1::PROJECT_STATUS_ACTIVE);
    ASSERT_OK_AND_ASSIGN(project_, store_->CreateProject(project, Actor{"hq"}));
  }

  std::string NewDevice(int i) {
    v1::Device d;
    d.set_partner_id(partner_.id());
    d.set_name("tablet " + std::to_string(i));
    auto out = Admin(*store_).CreateDevice(SystemPrincipal(), d);
    EXPECT_OK(out);
    return out.ok() ? out->id() : "";
  }

  // A change creating one well record; `valid` false makes its yield negative, which the
  // server's validation refuses.
  v1::Change NewRecord(const std::string& device, int64_t seq, bool valid) {
    v1::Record r;
    r.set_id(NewUuidV7());
    r.set_project_id(project_.id());
    v1::WellRecord* w = r.mutable_well();
    w->set_drilled_depth_m(42);
    w->set_yield_lph(valid ? 900 : -5);
    w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
    w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
    w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
    w->set_population_served(300);
    w->set_visit_date("2026-03-14");
    v1::Change c;
    c.set_device_seq(seq);
    c.set_collection("record");
    c.set_doc_id(r.id());
    sync::Hlc hlc{sync::SystemClockMs(), static_cast<uint32_t>(seq), device};
    c.set_hlc(hlc.Encode());
    for (const auto& [path, value] : sync::Flatten(r)) {
      v1::FieldChange* f = c.add_fields();
      f->set_path(path);
      f->set_value(value);
    }
    return c;
  }

  int64_t Query(const std::string& sql) { return fieldsync::testing::QueryInt(db_.path(), sql); }

  fieldsync::testing::TempDir dir_;
  fieldsync::testing::TestDatabase db_{dir_};
  std::unique_ptr<SqliteStore> store_;
  v1::Partner partner_;
  v1::Project project_;
};

TEST_F(GroupCommitTest, ConcurrentPushesAreEachAllOrNothing) {
  constexpr int kDevices = 24;
  constexpr int kRounds = 6;
  constexpr int kBatch = 5;
  std::vector<std::string> devices;
  for (int i = 0; i < kDevices; ++i) devices.push_back(NewDevice(i));

  // Every third device sends, in round 2, a batch whose last change is invalid: the first four
  // apply, the last goes to the rejection log, and the device goes on after it.
  std::atomic<int> refused{0}, failures{0};
  std::vector<std::vector<std::string>> refused_ids(kDevices), applied_ids(kDevices);
  std::vector<std::thread> threads;
  for (int d = 0; d < kDevices; ++d) {
    threads.emplace_back([&, d] {
      int64_t next = 1;
      for (int round = 0; round < kRounds; ++round) {
        const bool poisoned = d % 3 == 0 && round == 2;
        std::vector<v1::Change> batch;
        for (int k = 0; k < kBatch; ++k) {
          batch.push_back(NewRecord(devices[d], next + k, !(poisoned && k == kBatch - 1)));
        }
        absl::StatusOr<PushResult> r =
            store_->Push(DeviceWriter{devices[d], partner_.id()}, batch);
        if (!r.ok() || r->acked_device_seq != next + kBatch - 1) {
          ++failures;
          return;
        }
        if (poisoned) {
          if (r->rejections.size() == 1 && r->rejections[0].device_seq() == next + kBatch - 1 &&
              absl::StrContains(r->rejections[0].reason(), "changes[4]")) {
            ++refused;
          } else {
            ++failures;
          }
          refused_ids[d].push_back(batch.back().doc_id());
          batch.pop_back();
        } else if (!r->rejections.empty()) {
          ++failures;
        }
        for (const v1::Change& c : batch) applied_ids[d].push_back(c.doc_id());
        next += kBatch;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ(refused.load(), (kDevices + 2) / 3);

  int64_t applied = 0;
  for (int d = 0; d < kDevices; ++d) {
    for (const std::string& id : applied_ids[d]) {
      EXPECT_OK(store_->GetRecord(id)) << "an acknowledged change is missing";
      ++applied;
    }
    for (const std::string& id : refused_ids[d]) {
      EXPECT_THAT(store_->GetRecord(id), StatusIs(absl::StatusCode::kNotFound, ::testing::_))
          << "a refused change was kept";
      // Logged as refused, whole, and nothing of it applied.
      EXPECT_EQ(Query("SELECT COUNT(*) FROM change_log WHERE doc_id = '" + id +
                      "' AND op = 'reject'"),
                1);
      EXPECT_EQ(Query("SELECT COUNT(*) FROM rejections WHERE doc_id = '" + id + "'"), 1);
      EXPECT_EQ(Query("SELECT COUNT(*) FROM doc_fields WHERE doc_id = '" + id + "'"), 0);
    }
    EXPECT_EQ(Query("SELECT acked_device_seq FROM devices WHERE id = '" + devices[d] + "'"),
              static_cast<int64_t>(applied_ids[d].size() + refused_ids[d].size()));
  }
  EXPECT_EQ(applied, int64_t{kDevices} * kRounds * kBatch - int64_t{(kDevices + 2) / 3});
  EXPECT_EQ(Query("SELECT COUNT(*) FROM records"), applied);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM change_log WHERE device_id IS NOT NULL AND op <> 'reject'"),
            applied);

  // The chain written by shared transactions is whole: every entry follows the one before.
  ASSERT_OK_AND_ASSIGN(std::vector<ChangeLogEntry> log, store_->ReadChangeLog(0, 100000));
  std::string prev = kGenesisHash;
  for (const ChangeLogEntry& e : log) {
    ASSERT_EQ(e.prev_hash, prev) << "seq " << e.seq;
    ASSERT_EQ(ChainHash(prev, e), e.hash) << "seq " << e.seq;
    prev = e.hash;
  }
}

TEST_F(GroupCommitTest, AWriteThatFailsAloneLeavesTheOthersOfItsGroup) {
  // HQ writes go through the same group commit as pushes: a refused one (duplicate name) among
  // many concurrent valid ones changes nothing else.
  constexpr int kThreads = 16;
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      v1::Partner p;
      // Threads 0 and 1 both try the same new name: exactly one of them wins.
      p.set_name(i < 2 ? std::string("Twin") : "Partner " + std::to_string(i));
      p.add_countries("KE");
      auto r = Admin(*store_).CreatePartner(SystemPrincipal(), p);
      if (r.ok()) {
        ++ok;
      } else if (r.status().code() == absl::StatusCode::kAlreadyExists) {
        ++refused;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads - 1);
  EXPECT_EQ(refused.load(), 1);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM partners"), kThreads);  // 15 new + Maji Safi
  EXPECT_EQ(Query("SELECT COUNT(*) FROM partners WHERE name = 'Twin'"), 1);
}

}  // namespace
}  // namespace fieldsync::server
