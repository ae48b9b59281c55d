// fieldsyncd killed with SIGKILL at random moments while field devices sync in a loop.
//
// Five devices (four of partner A, one of partner B), each with its own local SQLite store,
// create and edit records and call Sync() in a loop on background threads. Meanwhile the test
// kills the real fieldsyncd with SIGKILL — in the middle of pushes, pulls, commits, whatever it
// is doing — and restarts it on the same database and port. When the kills are over every device
// syncs until it succeeds, and then:
//
//   1. nothing acknowledged is lost, nothing is doubled: every record a device created is on
//      the server exactly once (in particular those a device saw acknowledged, or whose create
//      was followed by a completed Sync()); per device the change log holds device_seq
//      1..last without a gap or a duplicate, and never less than the highest acked_device_seq the
//      device ever reported;
//   2. devices converge: every device of partner A holds the same documents and the same
//      ServerStateChecksum(), equal to the server's scope checksum (scope_checksums table);
//      the device of partner B holds its own scope's;
//   3. the change log's hash chain verifies from the first row to the last
//      (server::ChainHash, recomputed from the file);
//   4. PRAGMA integrity_check says "ok".
//
// In the PostgreSQL pass (scripts/test) the same runs on a PostgreSQL database: fieldsyncd is
// killed, the database server is not; point 4 is SQLite's alone.
//
// Short by default (4 kills, well under 30 s). A longer campaign:
//
//   FIELDSYNC_CRASH_KILLS=200 ./fieldsync_crash_test
//
// FIELDSYNC_CRASH_SEED=N replays the random choices of a run (the seed is printed), though the
// thread interleaving is not reproducible. The figures (kills, records, changes, syncs) are
// printed with std::printf for docs.

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fieldsync/base/ids.h"
#include "fieldsync/client.h"
#include "fieldsync/sync/checksum.h"
#include "server/change_log.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

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

// Read-only access to the server's database behind its back (the SQLite file, or the
// PostgreSQL database in that pass: tests/testing/test_db.h), not through the store's code.
using DbRow = testing::SqlRow;
class ServerDb {
 public:
  explicit ServerDb(std::string db) : db_(std::move(db)) {}

  // Runs `sql` with the text parameters ?1, ?2... (ids: no quotes in them); calls `row` for
  // each result row.
  template <typename F>
  void Query(std::string sql, const std::vector<std::string>& params, F row) {
    for (size_t i = params.size(); i-- > 0;) {
      const std::string mark = "?" + std::to_string(i + 1);
      for (size_t at; (at = sql.find(mark)) != std::string::npos;) {
        sql.replace(at, mark.size(), "'" + params[i] + "'");
      }
    }
    absl::StatusOr<std::vector<DbRow>> rows = testing::QueryRows(db_, sql);
    if (!rows.ok()) {
      ADD_FAILURE() << rows.status();
      return;
    }
    for (const DbRow& r : *rows) row(r);
  }

  int64_t Int(const std::string& sql, const std::vector<std::string>& params = {}) {
    int64_t out = -1;
    Query(sql, params, [&](const DbRow& r) { out = Int(r, 0); });
    return out;
  }

  static int64_t Int(const DbRow& r, int i) {
    return r[i].has_value() ? std::strtoll(r[i]->c_str(), nullptr, 10) : 0;
  }
  static std::string Text(const DbRow& r, int i) { return r[i].value_or(""); }
  static std::string Blob(const DbRow& r, int i) { return r[i].value_or(""); }

 private:
  std::string db_;
};

// One simulated field device and what it observed.
struct Device {
  std::string name;
  std::string partner_id;
  std::string project_id;
  std::string path;
  std::unique_ptr<Client> client;

  // Written by the device's own thread only; read after it joined.
  std::vector<std::string> created;     // record ids, in creation order
  size_t confirmed = 0;                 // created[0..confirmed) were followed by a completed Sync
  std::set<std::string> acked_records;  // creates whose device_seq the server acknowledged
  std::map<int64_t, std::string> seq_of_create;  // device_seq -> record id
  int64_t max_acked_seen = 0;
  int64_t updates = 0;
  int64_t syncs_ok = 0, syncs_failed = 0;
  std::string first_error;
};

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(server_.Start(dir_.path()));
    hq_ = std::make_unique<testing::Hq>(server_.Channel(), server_.admin_token());
    partner_a_ = hq_->CreatePartner("Maji Safi Kenya", {"KE"}).id();
    partner_b_ = hq_->CreatePartner("Mekong Clean Water", {"VN"}).id();
    project_a_ = hq_->CreateProject(partner_a_, v1::PROJECT_KIND_WELL, "KE", "Boreholes").id();
    project_b_ = hq_->CreateProject(partner_b_, v1::PROJECT_KIND_WELL, "VN", "Wells").id();
    // Short timeouts and retries: a sync caught by a kill fails soon and the loop goes on.
    options_.call_timeout_ms = 4000;
    options_.retry.initial_backoff_ms = 20;
    options_.retry.max_backoff_ms = 400;
    options_.retry.max_attempts = 6;
    options_.pull_page_size = 20;
  }

  std::unique_ptr<Device> NewDevice(const std::string& name, const std::string& partner,
                                    const std::string& project) {
    auto d = std::make_unique<Device>();
    d->name = name;
    d->partner_id = partner;
    d->project_id = project;
    d->path = dir_.File(name + ".db");
    auto c = Client::Enroll(server_.address(), hq_->EnrollmentCode(partner, name), d->path,
                            options_);
    EXPECT_OK(c);
    if (c.ok()) d->client = *std::move(c);
    return d;
  }

  static v1::Record Well(const std::string& project, int i) {
    v1::Record r;
    r.set_project_id(project);
    v1::WellRecord* w = r.mutable_well();
    w->set_drilled_depth_m(40 + i % 60);
    w->set_static_water_level_m(8);
    w->set_yield_lph(600 + i % 1000);
    w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
    w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
    w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
    w->set_population_served(100 + i % 900);
    w->set_visit_date("2026-07-15");
    w->set_notes("crash test record " + std::to_string(i));
    return r;
  }

  // The device's loop: write a few edits, sync, remember what the server acknowledged.
  static void Work(Device* d, uint32_t seed, const std::atomic<bool>* stop) {
    std::mt19937 rng(seed);
    int n = 0;
    while (!stop->load()) {
      int writes = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < writes; ++i) {
        if (!d->created.empty() && rng() % 4 == 0) {
          // Edit one of our own records (a field-level change of an existing document).
          const std::string& id = d->created[rng() % d->created.size()];
          absl::StatusOr<v1::Record> r = d->client->GetRecord(id);
          if (!r.ok()) {
            if (d->first_error.empty()) d->first_error = "GetRecord: " + r.status().ToString();
            continue;
          }
          r->mutable_well()->set_population_served(r->well().population_served() % 5000 + 1);
          absl::StatusOr<v1::Record> u = d->client->UpdateRecord(*r);
          if (!u.ok()) {
            if (d->first_error.empty()) d->first_error = "UpdateRecord: " + u.status().ToString();
          } else {
            ++d->updates;  // the value always differs, so the update is one change
          }
          continue;
        }
        absl::StatusOr<v1::Record> r = d->client->CreateRecord(Well(d->project_id, n++));
        if (!r.ok()) {
          if (d->first_error.empty()) d->first_error = "CreateRecord: " + r.status().ToString();
          continue;
        }
        absl::StatusOr<client::ClientStatus> st = d->client->Status();
        if (st.ok()) d->seq_of_create[st->last_device_seq] = r->id();
        d->created.push_back(r->id());
      }
      size_t before_sync = d->created.size();
      absl::StatusOr<client::SyncProgress> done = d->client->Sync();
      if (done.ok()) {
        ++d->syncs_ok;
        d->confirmed = before_sync;
      } else {
        ++d->syncs_failed;
        // Transient failures are what this test provokes; anything else is worth a look.
        absl::StatusCode c = done.status().code();
        if (c != absl::StatusCode::kUnavailable && c != absl::StatusCode::kDeadlineExceeded &&
            c != absl::StatusCode::kAborted && c != absl::StatusCode::kCancelled &&
            d->first_error.empty()) {
          d->first_error = "Sync: " + done.status().ToString();
        }
      }
      NoteAcked(d);
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 40));
    }
  }

  // Records what the device now believes the server acknowledged.
  static void NoteAcked(Device* d) {
    absl::StatusOr<client::ClientStatus> st = d->client->Status();
    if (!st.ok()) return;
    d->max_acked_seen = std::max(d->max_acked_seen, st->acked_device_seq);
    for (auto it = d->seq_of_create.begin();
         it != d->seq_of_create.end() && it->first <= st->acked_device_seq; ++it) {
      d->acked_records.insert(it->second);
    }
  }

  // Sync until it succeeds (the server is up for good now).
  static absl::Status SyncUntilOk(Device* d) {
    absl::Status last;
    for (int attempt = 0; attempt < 60; ++attempt) {
      absl::StatusOr<client::SyncProgress> done = d->client->Sync();
      if (done.ok()) {
        NoteAcked(d);
        return absl::OkStatus();
      }
      last = done.status();
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return last;
  }

  // Every record of the device's local store, sorted by id, serialized: what it shows its user.
  static std::vector<std::string> LocalDocuments(Client& c) {
    std::vector<std::string> out;
    v1::ListRecordsRequest req;
    req.set_page_size(1000);
    for (;;) {
      absl::StatusOr<v1::ListRecordsResponse> page = c.ListRecords(req);
      EXPECT_OK(page);
      if (!page.ok()) break;
      for (const v1::Record& r : page->records()) out.push_back(r.SerializeAsString());
      if (page->next_page_token().empty()) break;
      req.set_page_token(page->next_page_token());
    }
    absl::StatusOr<v1::ListProjectsResponse> projects = c.ListProjects({});
    EXPECT_OK(projects);
    if (projects.ok()) {
      for (const v1::Project& p : projects->projects()) out.push_back(p.SerializeAsString());
    }
    absl::StatusOr<v1::ListSitesResponse> sites = c.ListSites({});
    EXPECT_OK(sites);
    if (sites.ok()) {
      for (const v1::Site& s : sites->sites()) out.push_back(s.SerializeAsString());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::unique_ptr<testing::Hq> hq_;
  std::string partner_a_, partner_b_, project_a_, project_b_;
  ClientOptions options_;
};

TEST_F(CrashTest, KilledServerLosesNothingAcknowledgedAndDevicesConverge) {
  const int kills = std::max(1, EnvInt("FIELDSYNC_CRASH_KILLS", 4));
  const uint32_t seed = static_cast<uint32_t>(
      EnvInt("FIELDSYNC_CRASH_SEED", static_cast<int>(std::random_device{}() & 0x7fffffff)));
  std::printf("crash test: %d kills, seed %u (FIELDSYNC_CRASH_SEED to replay)\n", kills, seed);
  std::mt19937 rng(seed);
  const auto started = Clock::now();

  std::vector<std::unique_ptr<Device>> devices;
  for (int i = 0; i < 4; ++i) {
    devices.push_back(NewDevice("a" + std::to_string(i), partner_a_, project_a_));
  }
  devices.push_back(NewDevice("b0", partner_b_, project_b_));
  for (auto& d : devices) {
    ASSERT_TRUE(d->client) << d->name;
    ASSERT_OK(d->client->Sync()) << d->name << ": learn the project";
  }

  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (auto& d : devices) threads.emplace_back(Work, d.get(), static_cast<uint32_t>(rng()), &stop);

  // The killer: random moments, random downtimes.
  int done_kills = 0;
  for (int k = 0; k < kills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 2200));
    pid_t pid = server_.pid();
    ASSERT_GT(pid, 0);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    ++done_kills;
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 400));
    absl::Status restarted = server_.Restart();  // reaps the killed process, same db and port
    ASSERT_TRUE(restarted.ok()) << "restart after kill " << done_kills << ": " << restarted
                                << "\n" << server_.Log();
  }
  // Let the devices work against a server that stays up for a moment, then stop them.
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  stop = true;
  for (std::thread& t : threads) t.join();
  const double loop_s = std::chrono::duration<double>(Clock::now() - started).count();

  int64_t acked_in_run = 0, confirmed_in_run = 0;
  for (auto& d : devices) {
    acked_in_run += static_cast<int64_t>(d->acked_records.size());
    confirmed_in_run += static_cast<int64_t>(d->confirmed);
  }

  // Two rounds of final syncs: after the second, every device has pulled what all pushed.
  for (int round = 0; round < 2; ++round) {
    for (auto& d : devices) {
      absl::Status s = SyncUntilOk(d.get());
      // Go on when it fails: the checks below say more about what went wrong.
      EXPECT_OK(s) << d->name << " final sync round " << round;
    }
  }

  ServerDb db(server_.db_path());
  int64_t total_created = 0, total_updates = 0, syncs_ok = 0, syncs_failed = 0;
  for (auto& d : devices) {
    SCOPED_TRACE(d->name);
    EXPECT_EQ(d->first_error, "") << "unexpected error while the server was being killed";
    ASSERT_OK_AND_ASSIGN(client::ClientStatus st, d->client->Status());
    EXPECT_EQ(st.pending_changes, 0);
    EXPECT_EQ(st.acked_device_seq, st.last_device_seq);
    EXPECT_GE(st.acked_device_seq, d->max_acked_seen) << "the acknowledged sequence went back";
    total_created += static_cast<int64_t>(d->created.size());
    total_updates += d->updates;
    syncs_ok += d->syncs_ok;
    syncs_failed += d->syncs_failed;

    // 1. Every record once on the server: the acknowledged ones, the ones a completed Sync()
    // followed, and after the final syncs all the others too.
    int missing_acked = 0, missing_confirmed = 0, missing_other = 0;
    for (size_t i = 0; i < d->created.size(); ++i) {
      const std::string& id = d->created[i];
      int64_t n = db.Int("SELECT COUNT(*) FROM records WHERE id = ?1", {id});
      int64_t creates = db.Int(
          "SELECT COUNT(*) FROM change_log WHERE collection = 'record' AND doc_id = ?1 "
          "AND op = 'create'",
          {id});
      if (n != 1 || creates != 1) {
        bool acked = d->acked_records.count(id) > 0;
        bool confirmed = i < d->confirmed;
        (acked ? missing_acked : confirmed ? missing_confirmed : missing_other)++;
        ADD_FAILURE() << "record " << id << " (#" << i << " of " << d->name << ", "
                      << (acked ? "acknowledged" : confirmed ? "followed by a completed Sync"
                                                             : "not yet acknowledged")
                      << "): " << n << " row(s) in records, " << creates
                      << " create(s) in change_log";
      }
    }
    EXPECT_EQ(missing_acked, 0) << "acknowledged records lost or doubled";
    EXPECT_EQ(missing_confirmed, 0) << "records followed by a completed Sync lost or doubled";
    EXPECT_EQ(missing_other, 0) << "records lost after the final sync";

    // The change log of the device: 1..last, once each, no gap.
    int64_t rows = db.Int("SELECT COUNT(*) FROM change_log WHERE device_id = ?1",
                          {st.device_id});
    int64_t distinct = db.Int(
        "SELECT COUNT(DISTINCT device_seq) FROM change_log WHERE device_id = ?1", {st.device_id});
    int64_t lo = db.Int("SELECT MIN(device_seq) FROM change_log WHERE device_id = ?1",
                        {st.device_id});
    int64_t hi = db.Int("SELECT MAX(device_seq) FROM change_log WHERE device_id = ?1",
                        {st.device_id});
    EXPECT_EQ(rows, distinct) << "a (device_id, device_seq) logged twice";
    EXPECT_EQ(lo, 1);
    EXPECT_EQ(hi, rows) << "a gap in device_seq";
    EXPECT_EQ(hi, st.last_device_seq) << "the server's log and the device disagree";
    EXPECT_GE(hi, d->max_acked_seen) << "the server lost a change it had acknowledged";
  }

  // The server's records are exactly the devices' creates.
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records"), total_created);

  // 2. Convergence: the devices of A agree with each other and with the server's checksum.
  auto scope_hex = [&](const std::string& partner) {
    std::string hex;
    db.Query("SELECT digest FROM scope_checksums WHERE partner_id = ?1", {partner},
             [&](const DbRow& st) { hex = HexEncode(ServerDb::Blob(st, 0)); });
    return hex;
  };
  const std::string server_a = scope_hex(partner_a_), server_b = scope_hex(partner_b_);
  EXPECT_FALSE(server_a.empty());
  // The server's incrementally kept checksum must be the one of its live documents.
  for (const std::string& partner : {partner_a_, partner_b_}) {
    sync::ScopeChecksum truth;
    db.Query("SELECT collection, doc_id, payload FROM docs WHERE partner_id = ?1 AND deleted = 0",
             {partner}, [&](const DbRow& st) {
               truth.Add(ServerDb::Text(st, 0), ServerDb::Text(st, 1), ServerDb::Blob(st, 2));
             });
    EXPECT_EQ(scope_hex(partner), truth.Hex())
        << "scope_checksums of partner " << partner << " differs from its live documents";
    EXPECT_EQ(db.Int("SELECT documents FROM scope_checksums WHERE partner_id = ?1", {partner}),
              truth.count());
  }
  std::vector<std::string> reference;
  int64_t records_a = db.Int(
      "SELECT COUNT(*) FROM records WHERE project_id = ?1", {project_a_});
  for (auto& d : devices) {
    SCOPED_TRACE(d->name);
    ASSERT_OK_AND_ASSIGN(std::string checksum, d->client->ServerStateChecksum());
    ASSERT_OK_AND_ASSIGN(client::ClientStatus st, d->client->Status());
    if (d->partner_id == partner_b_) {
      EXPECT_EQ(checksum, server_b);
      continue;
    }
    EXPECT_EQ(checksum, server_a);
    EXPECT_EQ(st.records, records_a);
    std::vector<std::string> docs = LocalDocuments(*d->client);
    if (reference.empty()) {
      reference = docs;
    } else {
      EXPECT_TRUE(docs == reference) << "documents differ from device a0's (" << docs.size()
                                     << " vs " << reference.size() << ")";
    }
  }

  // 3. The hash chain, recomputed from the file.
  std::string prev = server::kGenesisHash;
  int64_t log_rows = 0, chain_errors = 0;
  db.Query(
      "SELECT seq, collection, doc_id, op, actor_id, COALESCE(device_id, ''), "
      "COALESCE(device_seq, 0), COALESCE(hlc, ''), server_time, payload, prev_hash, hash "
      "FROM change_log ORDER BY seq",
      {}, [&](const DbRow& st) {
        server::ChangeLogEntry e;
        e.seq = ServerDb::Int(st, 0);
        e.collection = ServerDb::Text(st, 1);
        e.doc_id = ServerDb::Text(st, 2);
        e.op = ServerDb::Text(st, 3);
        e.actor_id = ServerDb::Text(st, 4);
        e.device_id = ServerDb::Text(st, 5);
        e.device_seq = ServerDb::Int(st, 6);
        e.hlc = ServerDb::Text(st, 7);
        e.server_time = absl::FromUnixMicros(ServerDb::Int(st, 8));
        e.payload = ServerDb::Blob(st, 9);
        std::string prev_hash = ServerDb::Text(st, 10), hash = ServerDb::Text(st, 11);
        if (prev_hash != prev || hash != server::ChainHash(prev, e)) {
          if (++chain_errors <= 5) ADD_FAILURE() << "hash chain broken at seq " << e.seq;
        }
        prev = hash;
        ++log_rows;
      });
  EXPECT_EQ(chain_errors, 0);
  int64_t device_changes = db.Int("SELECT COUNT(*) FROM change_log WHERE device_id IS NOT NULL");
  EXPECT_EQ(device_changes, total_created + total_updates);

  // 4. The file itself.
  // The SQLite file's own structure (on PostgreSQL the server process was killed, never the
  // database: there is no file of ours to check).
  if (!testing::IsPostgresUrl(server_.db_path())) {
    std::string integrity;
    db.Query("PRAGMA integrity_check", {},
             [&](const DbRow& st) { integrity += ServerDb::Text(st, 0); });
    EXPECT_EQ(integrity, "ok");
  }

  const size_t device_count = devices.size();
  if (HasFailure()) {
    // Keep the evidence: the server's and the devices' databases (the temp dir goes away).
    devices.clear();
    server_.Stop();
    std::string keep = "/tmp/fieldsync-crash-" + std::to_string(getpid());
    std::error_code ec;
    std::filesystem::copy(dir_.path(), keep, std::filesystem::copy_options::recursive, ec);
    std::printf("crash test failed: databases kept in %s\n", keep.c_str());
  }

  const double total_s = std::chrono::duration<double>(Clock::now() - started).count();
  std::printf(
      "crash test: %d SIGKILLs in %.1f s of syncing (%.1f s in all); %zu devices; "
      "%lld records created (%lld seen acknowledged and %lld followed by a completed sync "
      "before the final syncs), %lld updates; %lld device changes and %lld change_log rows on "
      "the server; syncs: %lld completed, %lld failed\n",
      done_kills, loop_s, total_s, device_count, static_cast<long long>(total_created),
      static_cast<long long>(acked_in_run), static_cast<long long>(confirmed_in_run),
      static_cast<long long>(total_updates),
      static_cast<long long>(device_changes), static_cast<long long>(log_rows),
      static_cast<long long>(syncs_ok), static_cast<long long>(syncs_failed));
}

// Found by the test above (roughly one short run in six failed with DATA_LOSS on one device): a
// pull in several pages omits the fields of a document that changed after the pull's starting cursor
// but no later than the end of an earlier page, when the document's last change falls in a
// later page. The server filters a page's fields by the previous page's cursor
// (server/sqlite_store.cc, SqliteStore::Pull: "doc_fields ... seq > ?" bound to after_seq,
// which server/syncer.cc advances page by page), but that document was not in the earlier page.
// A device catching up in several pages then holds a record without those fields; its checksum
// differs, and the full re-pull of the repair (paged the same way) cannot fix it: DATA_LOSS.
// Deterministic here: a fresh device pulls in pages of two documents.
TEST_F(CrashTest, APagedPullDeliversEveryFieldOfADocumentEditedAfterItsCreation) {
  auto create = [&](int i) {
    v1::CreateRecordRequest req;
    *req.mutable_record() = Well(project_a_, i);
    v1::Record out;
    grpc::Status s = hq_->tracker().CreateRecord(hq_->Ctx().get(), req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  };
  v1::Record edited = create(0);  // created early: seq 3 (partner, project before it)
  for (int i = 1; i <= 4; ++i) create(i);
  v1::UpdateRecordRequest upd;
  *upd.mutable_record() = edited;
  upd.mutable_record()->mutable_well()->set_yield_lph(4321);  // its last change: the newest seq
  v1::Record updated;
  grpc::Status s = hq_->tracker().UpdateRecord(hq_->Ctx().get(), upd, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();

  options_.pull_page_size = 2;
  std::unique_ptr<Device> device = NewDevice("fresh", partner_a_, project_a_);
  ASSERT_TRUE(device->client);
  EXPECT_OK(device->client->Sync().status());
  absl::StatusOr<v1::Record> local = device->client->GetRecord(edited.id());
  ASSERT_OK(local);
  EXPECT_EQ(local->well().yield_lph(), 4321);
  EXPECT_EQ(local->well().visit_date(), "2026-07-15") << "a field from the record's creation";
  EXPECT_EQ(local->well().population_served(), updated.well().population_served());
  ASSERT_OK_AND_ASSIGN(std::string checksum, device->client->ServerStateChecksum());
  ServerDb db(server_.db_path());
  std::string server_hex;
  db.Query("SELECT digest FROM scope_checksums WHERE partner_id = ?1", {partner_a_},
           [&](const DbRow& st) { server_hex = HexEncode(ServerDb::Blob(st, 0)); });
  EXPECT_EQ(checksum, server_hex);
}

}  // namespace
}  // namespace fieldsync
