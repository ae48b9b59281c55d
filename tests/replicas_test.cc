// Several fieldsyncd replicas sharing one PostgreSQL database (issue 7): devices may sync with
// any replica, in any order, and converge with nothing lost or doubled; and the classic trap —
// a change that commits later with a LOWER sequence number than one a device already pulled —
// never makes a pull cursor skip it.
//
// PostgreSQL only: it needs a database two servers share. Run by the second pass of scripts/test
// (ctest -L postgres under scripts/with-postgres); without FIELDSYNC_TEST_POSTGRES every test
// here FAILS (it never passes without running):
//
//   scripts/with-postgres build/tests/fieldsync_replicas_test
//   FIELDSYNC_REPLICA_SECONDS=60 scripts/with-postgres build/tests/fieldsync_replicas_test
//
// A device's store remembers one server address (from its enrollment); to send its next Sync()
// to the other replica the test closes the Client, points the store at the other replica
// (sync_state.server_address) and opens it again, as an app would after a DNS change.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fieldsync/client.h"
#include "fieldsync/v1/report.grpc.pb.h"
#include "tests/testing/device_checks.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_db.h"

namespace fieldsync {
namespace {

namespace v1 = ::fieldsync::v1;
using client::Client;
using client::ClientOptions;
using Clock = std::chrono::steady_clock;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::atoi(v);
}

constexpr char kNeedsPostgres[] =
    "this test needs a PostgreSQL database that two fieldsyncd replicas share: run it under "
    "scripts/with-postgres (FIELDSYNC_TEST_POSTGRES unset). scripts/test does, in its second "
    "pass.";

ClientOptions Options() {
  ClientOptions o;
  o.call_timeout_ms = 20000;
  o.retry.initial_backoff_ms = 20;
  o.retry.max_backoff_ms = 500;
  o.retry.max_attempts = 12;
  o.pull_page_size = 50;
  return o;
}

// A field device whose Sync() can go to either replica.
struct Device {
  std::string name;
  std::string path;
  std::string device_id;
  std::unique_ptr<Client> client;
  std::vector<std::string> created;
  int replica = 0;  // where the next Sync() goes
  int syncs = 0;
  std::string error;  // first unexpected error
};

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::UsingPostgres()) << kNeedsPostgres;
  }

  // Replica 0 makes a fresh PostgreSQL database; replica 1 runs on the same one.
  void StartReplicas(const std::vector<std::string>& env0 = {},
                     const std::vector<std::string>& env1 = {}) {
    servers_[0].SetEnv(env0);
    servers_[1].SetEnv(env1);
    ASSERT_OK(servers_[0].Start(dirs_[0].path()));
    ASSERT_TRUE(testing::IsPostgresUrl(servers_[0].db_path())) << servers_[0].db_path();
    ASSERT_OK(servers_[1].StartOn(dirs_[1].path(), servers_[0].db_path()));
    for (int i = 0; i < 2; ++i) {
      hq_[i] = std::make_unique<testing::Hq>(servers_[i].Channel(), servers_[i].admin_token());
    }
  }

  const std::string& db() const { return servers_[0].db_path(); }

  v1::Record Well(const std::string& project_id, int i) {
    v1::Record r;
    r.set_project_id(project_id);
    v1::WellRecord* w = r.mutable_well();
    w->set_drilled_depth_m(50 + i % 40);
    w->set_static_water_level_m(10);
    w->set_yield_lph(1000 + i);
    w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
    w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
    w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
    w->set_population_served(100 + i % 10000);
    w->set_visit_date("2026-06-01");
    w->set_notes("Borehole " + std::to_string(i));
    return r;
  }

  // Enrolls a device of `partner_id` through replica `via` (its code made on the other one).
  std::unique_ptr<Device> Enroll(const std::string& partner_id, const std::string& name,
                                 int via) {
    auto d = std::make_unique<Device>();
    d->name = name;
    d->path = dirs_[0].File(name + ".db");
    d->replica = via;
    std::string code = hq_[1 - via]->EnrollmentCode(partner_id, name);
    auto c = Client::Enroll(servers_[via].address(), code, d->path, Options());
    EXPECT_OK(c);
    if (!c.ok()) return d;
    d->client = *std::move(c);
    d->device_id = d->client->Status()->device_id;
    return d;
  }

  // Points the device's store at replica `r` (closing and reopening the Client).
  void SwitchTo(Device& d, int r) {
    if (d.replica == r && d.client != nullptr) return;
    d.client.reset();
    absl::Status s = testing::ExecSql(
        d.path, absl::StrCat("UPDATE sync_state SET value = '", servers_[r].address(),
                             "' WHERE key = 'server_address'"));
    ASSERT_OK(s);
    ASSERT_OK_AND_ASSIGN(d.client, Client::Open(d.path, Options()));
    ASSERT_OK_AND_ASSIGN(client::ClientStatus st, d.client->Status());
    ASSERT_EQ(st.server_address, servers_[r].address()) << "the store did not take the address";
    d.replica = r;
  }

  absl::Status SyncWith(Device& d, int r) {
    SwitchTo(d, r);
    if (d.client == nullptr) return absl::InternalError("could not reopen the device");
    absl::StatusOr<client::SyncProgress> done = d.client->Sync();
    ++d.syncs;
    return done.status();
  }

  // Every record id a replica lists, in order (TrackerService.ListRecords, all pages).
  std::vector<std::string> ListedRecords(int r) {
    std::vector<std::string> ids;
    v1::ListRecordsRequest req;
    req.set_page_size(500);
    for (;;) {
      v1::ListRecordsResponse resp;
      grpc::Status s = hq_[r]->tracker().ListRecords(hq_[r]->Ctx().get(), req, &resp);
      EXPECT_TRUE(s.ok()) << "replica " << r << ": " << s.error_message();
      if (!s.ok()) break;
      for (const v1::Record& rec : resp.records()) ids.push_back(rec.id());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return ids;
  }

  std::vector<v1::Conflict> Conflicts(int r) {
    std::vector<v1::Conflict> out;
    v1::ListConflictsRequest req;
    req.set_page_size(1000);
    for (;;) {
      v1::ListConflictsResponse resp;
      grpc::Status s = hq_[r]->tracker().ListConflicts(hq_[r]->Ctx().get(), req, &resp);
      EXPECT_TRUE(s.ok()) << "replica " << r << ": " << s.error_message();
      if (!s.ok()) break;
      out.insert(out.end(), resp.conflicts().begin(), resp.conflicts().end());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return out;
  }

  // ReportService.VerifyAuditChain on replica `r`, as admin.
  void ExpectChainVerifies(int r) {
    auto stub = v1::ReportService::NewStub(servers_[r].Channel());
    v1::VerifyAuditChainResponse resp;
    grpc::Status s = stub->VerifyAuditChain(hq_[r]->Ctx().get(), {}, &resp);
    ASSERT_TRUE(s.ok()) << "replica " << r << ": " << s.error_message();
    EXPECT_TRUE(resp.ok()) << "replica " << r << ": entry " << resp.first_bad_seq() << ": "
                           << resp.problem();
    EXPECT_GT(resp.entries_checked(), 0);
  }

  // The change log's seqs are 1..N without a gap or a duplicate.
  void ExpectSeqsDense() {
    int64_t n = testing::QueryInt(db(), "SELECT COUNT(*) FROM change_log");
    EXPECT_GT(n, 0);
    EXPECT_EQ(testing::QueryInt(db(), "SELECT COUNT(DISTINCT seq) FROM change_log"), n);
    EXPECT_EQ(testing::QueryInt(db(), "SELECT MIN(seq) FROM change_log"), 1);
    EXPECT_EQ(testing::QueryInt(db(), "SELECT MAX(seq) FROM change_log"), n)
        << "the change log has gaps";
  }

  testing::TempDir dirs_[2];
  testing::ServerProcess servers_[2];
  std::unique_ptr<testing::Hq> hq_[2];
};

// Devices of two partners record and edit wells, each Sync() going to the other replica than its
// last, all at once, for FIELDSYNC_REPLICA_SECONDS (default 4); HQ writes through both replicas
// meanwhile. Then every device syncs with each replica, and: every record is on both replicas
// exactly once, devices and the database agree, the one deliberate conflict is listed once, the
// chain verifies on both replicas and its seqs are dense.
TEST_F(ReplicasTest, DevicesAlternatingBetweenReplicasUnderLoadConverge) {
  ASSERT_NO_FATAL_FAILURE(StartReplicas());
  const int seconds = EnvInt("FIELDSYNC_REPLICA_SECONDS", 4);
  constexpr int kDevicesPerPartner = 3;

  struct Partner {
    v1::Partner partner;
    v1::Project project;
    std::vector<std::unique_ptr<Device>> devices;
  };
  std::vector<Partner> partners(2);
  for (int p = 0; p < 2; ++p) {
    partners[p].partner = hq_[p]->CreatePartner(absl::StrCat("Partner ", p), {"KE"});
    partners[p].project =
        hq_[1 - p]->CreateProject(partners[p].partner.id(), v1::PROJECT_KIND_WELL, "KE");
    for (int i = 0; i < kDevicesPerPartner; ++i) {
      partners[p].devices.push_back(
          Enroll(partners[p].partner.id(), absl::StrCat("p", p, "d", i), i % 2));
      ASSERT_NE(partners[p].devices.back()->client, nullptr);
      // Learn the project, through the replica it enrolled with.
      Device& d = *partners[p].devices.back();
      ASSERT_OK(SyncWith(d, d.replica));
    }
  }

  // A deliberate conflict first: two devices of partner 0 edit the same field of one record
  // while apart, and sync through different replicas.
  Device& a = *partners[0].devices[0];
  Device& b = *partners[0].devices[1];
  ASSERT_OK(SyncWith(a, 0));
  ASSERT_OK_AND_ASSIGN(v1::Record shared, a.client->CreateRecord(Well(partners[0].project.id(), 0)));
  a.created.push_back(shared.id());
  ASSERT_OK(SyncWith(a, 0));
  ASSERT_OK(SyncWith(b, 1));
  ASSERT_OK_AND_ASSIGN(v1::Record on_a, a.client->GetRecord(shared.id()));
  ASSERT_OK_AND_ASSIGN(v1::Record on_b, b.client->GetRecord(shared.id()));
  on_a.mutable_well()->set_yield_lph(1111);
  on_b.mutable_well()->set_yield_lph(2222);
  ASSERT_OK(a.client->UpdateRecord(on_a).status());
  ASSERT_OK(b.client->UpdateRecord(on_b).status());
  ASSERT_OK(SyncWith(a, 0));
  ASSERT_OK(SyncWith(b, 1));

  // The load: each device in its own thread creates and edits its own records (edits of its
  // own records never conflict), syncing with the replicas in turn; HQ creates records through
  // both replicas.
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::atomic<int> next_well{1};
  for (Partner& p : partners) {
    for (auto& dp : p.devices) {
      Device* d = dp.get();
      const std::string project = p.project.id();
      threads.emplace_back([&, d, project] {
        std::mt19937 rng(std::hash<std::string>()(d->name));
        while (!stop.load()) {
          for (int k = 0; k < 3; ++k) {
            absl::StatusOr<v1::Record> r = d->client->CreateRecord(Well(project, next_well++));
            if (!r.ok()) {
              if (d->error.empty()) d->error = "create: " + r.status().ToString();
              return;
            }
            d->created.push_back(r->id());
          }
          // Edit one of its own earlier records (not the shared one).
          if (d->created.size() > 4) {
            const std::string& id = d->created[1 + rng() % (d->created.size() - 1)];
            absl::StatusOr<v1::Record> r = d->client->GetRecord(id);
            if (r.ok()) {
              r->mutable_well()->set_population_served(500 + static_cast<int>(rng() % 1000));
              absl::StatusOr<v1::Record> u = d->client->UpdateRecord(*r);
              if (!u.ok() && d->error.empty()) d->error = "update: " + u.status().ToString();
            }
          }
          absl::Status s = SyncWith(*d, 1 - d->replica);
          if (!s.ok() && d->error.empty()) d->error = absl::StrCat("sync #", d->syncs, ": ", s.ToString());
        }
      });
    }
  }
  std::atomic<int> hq_created{0};
  std::string hq_error;
  std::thread hq_thread([&] {
    for (int i = 0; !stop.load(); ++i) {
      int r = i % 2;
      v1::CreateRecordRequest req;
      *req.mutable_record() = Well(partners[i % 2].project.id(), 50000 + i);
      v1::Record out;
      grpc::Status s = hq_[r]->tracker().CreateRecord(hq_[r]->Ctx().get(), req, &out);
      if (!s.ok()) {
        if (hq_error.empty()) hq_error = s.error_message();
        return;
      }
      ++hq_created;
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(seconds));  // the length of the load, not a check
  stop = true;
  for (std::thread& t : threads) t.join();
  hq_thread.join();
  EXPECT_EQ(hq_error, "");

  // Settle: every device syncs with replica 0, then 1, twice round (the second pass brings what
  // the others pushed in the first).
  int64_t device_records = 0, syncs = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (Partner& p : partners) {
      for (auto& d : p.devices) {
        for (int r = 0; r < 2; ++r) EXPECT_OK(SyncWith(*d, r)) << d->name << " with replica " << r;
      }
    }
  }
  std::set<std::string> all_created;
  for (Partner& p : partners) {
    std::vector<client::Client*> clients;
    for (auto& d : p.devices) {
      SCOPED_TRACE(d->name);
      EXPECT_EQ(d->error, "") << "an error during the load";
      ASSERT_OK_AND_ASSIGN(client::ClientStatus st, d->client->Status());
      EXPECT_EQ(testing::ExpectExactlyOnce(db(), d->device_id, d->created, st.last_device_seq), 0);
      device_records += static_cast<int64_t>(d->created.size());
      syncs += d->syncs;
      all_created.insert(d->created.begin(), d->created.end());
      clients.push_back(d->client.get());
    }
    testing::ExpectConverged(db(), p.partner.id(), clients);
  }
  const int64_t total = device_records + hq_created.load();
  std::printf("replicas: %d devices, %lld records from devices and %d from HQ in %d s, %lld "
              "syncs alternating between two replicas\n",
              2 * kDevicesPerPartner, static_cast<long long>(device_records), hq_created.load(),
              seconds, static_cast<long long>(syncs));
  EXPECT_GT(device_records, 2 * kDevicesPerPartner * 3) << "the load did too little to tell";
  EXPECT_EQ(static_cast<int64_t>(all_created.size()), device_records) << "a device id twice";
  for (int r = 0; r < 2; ++r) {
    SCOPED_TRACE(absl::StrCat("replica ", r));
    std::vector<std::string> listed = ListedRecords(r);
    std::set<std::string> unique(listed.begin(), listed.end());
    EXPECT_EQ(static_cast<int64_t>(listed.size()), total) << "records lost or listed twice";
    EXPECT_EQ(unique.size(), listed.size()) << "a record listed twice";
    for (const std::string& id : all_created) {
      EXPECT_TRUE(unique.count(id)) << "record " << id << " is missing";
    }
    // Exactly the deliberate conflict, on both replicas.
    std::vector<v1::Conflict> conflicts = Conflicts(r);
    ASSERT_EQ(conflicts.size(), 1u);
    EXPECT_EQ(conflicts[0].doc_id(), shared.id());
    EXPECT_EQ(conflicts[0].path(), "well.yield_lph");
    ExpectChainVerifies(r);
  }
  // Both devices show the winner the server chose.
  ASSERT_OK_AND_ASSIGN(v1::Record final_a, a.client->GetRecord(shared.id()));
  ASSERT_OK_AND_ASSIGN(v1::Record final_b, b.client->GetRecord(shared.id()));
  EXPECT_EQ(final_a.well().yield_lph(), final_b.well().yield_lph());
  EXPECT_THAT(final_a.well().yield_lph(), ::testing::AnyOf(1111, 2222));
  EXPECT_EQ(testing::QueryInt(db(), "SELECT COUNT(*) FROM records"), total);
  ExpectSeqsDense();
}

// The late-commit trap, made deterministic: replica 0 holds each write transaction that
// appended to the change log open for kHoldMs before its COMMIT
// (FIELDSYNC_TEST_DELAY_BEFORE_COMMIT_MS, a test-only hook in server/sqlite_store.cc). Device X
// pushes record rX to replica 0, and while that transaction is open device Y pushes rY to
// replica 1 and the observer O pulls from replica 1 again and again. If rY could commit with a
// higher seq before rX commits with a lower one, O's cursor would pass rX's seq and never bring
// rX. The write lock of PostgreSQL transactions (db::Connection::BeginWrite) makes Y's write wait
// for X's, so seqs commit in order: O ends with both, and never sees rY without rX.
//
// It fails without the lock (checked 2026-11-28 with a fieldsyncd whose BeginWrite was a plain
// BEGIN, run through FIELDSYNC_FIELDSYNCD): Y's push then reads the same MAX(seq) as X's open
// transaction, waits on change_log's primary key and fails when X commits (the store answers
// ALREADY_EXISTS), so Y's Sync() and the observer's copy of rY fail. (With seqs drawn from a
// sequence instead of MAX(seq) + 1 the failure would be the silent skip of rX itself.)
TEST_F(ReplicasTest, ChangeCommittedLateWithLowerSeqIsNotSkippedByCursor) {
  constexpr int kHoldMs = 2000;
  ASSERT_NO_FATAL_FAILURE(
      StartReplicas({absl::StrCat("FIELDSYNC_TEST_DELAY_BEFORE_COMMIT_MS=", kHoldMs)}, {}));
  // Set up through replica 1 (replica 0 is slow to commit by design).
  v1::Partner partner = hq_[1]->CreatePartner("Maji Safi", {"KE"});
  v1::Project project = hq_[1]->CreateProject(partner.id(), v1::PROJECT_KIND_WELL, "KE");
  auto x = Enroll(partner.id(), "x", 1);
  auto y = Enroll(partner.id(), "y", 1);
  auto o = Enroll(partner.id(), "observer", 1);
  ASSERT_TRUE(x->client && y->client && o->client);
  ASSERT_OK(SyncWith(*x, 1));
  ASSERT_OK(SyncWith(*y, 1));
  ASSERT_OK(SyncWith(*o, 1));
  ASSERT_OK_AND_ASSIGN(v1::Record rx, x->client->CreateRecord(Well(project.id(), 1)));
  ASSERT_OK_AND_ASSIGN(v1::Record ry, y->client->CreateRecord(Well(project.id(), 2)));
  SwitchTo(*x, 0);

  // No write is held open now. A held write: a transaction idle for a while (every
  // transaction is "idle in transaction" for an instant between two statements; the hold
  // lasts seconds). Only X's push on replica 0 is delayed.
  const std::string open_tx =
      "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
      "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%' "
      "AND state_change < clock_timestamp() - interval '300 milliseconds'";
  ASSERT_EQ(testing::QueryInt(db(), open_tx), 0);

  absl::Status x_sync, y_sync;
  std::atomic<bool> x_done{false}, y_done{false};
  std::thread tx([&] {
    x_sync = x->client->Sync().status();
    x_done = true;
  });
  // Wait until replica 0 holds X's push open (written, not committed).
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (testing::QueryInt(db(), open_tx) < 1 && !x_done && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_FALSE(x_done.load()) << "X's sync ended before its push was seen held open: "
                              << x_sync << " (is the delay hook working?)";
  ASSERT_GE(testing::QueryInt(db(), open_tx), 1) << "replica 0 never held a write open";
  const auto held_at = Clock::now();

  std::thread ty([&] {
    y_sync = y->client->Sync().status();  // through replica 1
    y_done = true;
  });
  // The observer pulls from replica 1 while both pushes are under way, then once more.
  int pulls = 0;
  bool saw_y_without_x = false;
  auto has = [&](const std::string& id) { return o->client->GetRecord(id).ok(); };
  while (!(x_done && y_done)) {
    EXPECT_OK(o->client->Sync().status()) << "observer pull #" << pulls;
    ++pulls;
    if (has(ry.id()) && !has(rx.id())) saw_y_without_x = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  tx.join();
  ty.join();
  const double held_s = std::chrono::duration<double>(Clock::now() - held_at).count();
  // EXPECT, not ASSERT: with the write lock removed, Y's push computes the seq X holds and
  // fails on the change log's key (seen: ALREADY_EXISTS) — the checks below still say what the
  // observer got.
  EXPECT_OK(x_sync);
  EXPECT_OK(y_sync);
  EXPECT_OK(o->client->Sync().status());
  EXPECT_OK(o->client->Sync().status());
  EXPECT_OK(SyncWith(*x, 0));
  EXPECT_OK(SyncWith(*y, 1));

  int64_t seq_x = testing::QueryInt(
      db(), "SELECT seq FROM change_log WHERE op = 'create' AND doc_id = '" + rx.id() + "'");
  int64_t seq_y = testing::QueryInt(
      db(), "SELECT seq FROM change_log WHERE op = 'create' AND doc_id = '" + ry.id() + "'");
  std::printf("late commit: X's push held open %d ms on replica 0; %d observer pulls from "
              "replica 1 in %.1f s; seq(rX)=%lld seq(rY)=%lld\n",
              kHoldMs, pulls, held_s, static_cast<long long>(seq_x), static_cast<long long>(seq_y));
  // With the write lock the observer's own Sync() (its "last synced" stamp is a write) waits
  // behind Y's push, so it may pull only once or twice before both are done.
  EXPECT_GE(pulls, 1) << "the observer did not pull while the pushes were under way";
  EXPECT_TRUE(has(rx.id())) << "the observer's cursor skipped rX, committed late (seq " << seq_x
                            << ") after rY (seq " << seq_y << ")";
  EXPECT_TRUE(has(ry.id()));
  EXPECT_FALSE(saw_y_without_x) << "rY was visible before rX although X wrote first";
  EXPECT_LT(seq_x, seq_y) << "X's write began first and holds the write lock: it must get the "
                             "lower seq";
  testing::ExpectConverged(db(), partner.id(), {x->client.get(), y->client.get(), o->client.get()});
  ExpectChainVerifies(1);
  ExpectSeqsDense();
}

}  // namespace
}  // namespace fieldsync
