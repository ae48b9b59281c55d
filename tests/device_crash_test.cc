// A field device killed with SIGKILL while it works: the device is a separate process
// (tests/device_tool.cc, the client library) killed at random moments (a) while it records
// wells in a loop — each one an outbox entry and a view row committed in one transaction — and
// (b) while it applies a pull of hundreds of documents page by page. After each kill the local
// SQLite file must pass PRAGMA integrity_check, its outbox and view must agree (every record is
// there whole, with its outbox entry, or not at all), every record the device reported committed
// must be there, and the next sync must complete without a repair; in the end the server holds
// every record the device committed, exactly once, and the device its scope checksum.
//
// A handful of kills by default; a longer run:
//
//   FIELDSYNC_DEVICE_KILLS=100 ./fieldsync_device_crash_test
//
// FIELDSYNC_DEVICE_SEED=N replays the random choices (the seed is printed).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fieldsync/client.h"
#include "tests/testing/device_checks.h"
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

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Complete lines of `path` that start with `prefix` (a line cut by the kill is ignored).
std::vector<std::vector<std::string>> Lines(const std::string& path, const std::string& prefix) {
  std::vector<std::vector<std::string>> out;
  std::string text = ReadFile(path);
  size_t end = text.rfind('\n');
  if (end == std::string::npos) return out;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text).substr(0, end), '\n')) {
    if (line.substr(0, prefix.size()) != prefix) continue;
    out.push_back(absl::StrSplit(line, ' '));
  }
  return out;
}

// The device tool as a child process with stdout and stderr in files.
class DeviceProcess {
 public:
  DeviceProcess(const std::vector<std::string>& args, const std::string& out,
                const std::string& err) {
    // Everything the child needs is built before fork(): after it, only open/dup2/execv.
    std::vector<std::string> all = {FIELDSYNC_DEVICE_TOOL_PATH};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(o, 1);
      dup2(e, 2);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~DeviceProcess() {
    if (pid_ > 0) Kill();
  }
  // SIGKILL and reap; returns the wait status.
  int Kill() {
    kill(pid_, SIGKILL);
    return Wait();
  }
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  bool Running() {
    int status = 0;
    return pid_ > 0 && waitpid(pid_, &status, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
};

// The device's local file, opened behind the library's back.
class LocalDb {
 public:
  explicit LocalDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path;
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~LocalDb() { sqlite3_close(db_); }
  std::vector<std::string> Column(const std::string& sql) {
    std::vector<std::string> out;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return out;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(st, 0);
      out.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
    }
    if (rc != SQLITE_DONE) ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
    sqlite3_finalize(st);
    return out;
  }
  int64_t Int(const std::string& sql) {
    std::vector<std::string> v = Column(sql);
    return v.empty() ? -1 : std::atoll(v.front().c_str());
  }

 private:
  sqlite3* db_ = nullptr;
};

// The local store after a crash: sound file, outbox and view in agreement. Returns the record
// ids of the view.
std::set<std::string> CheckLocalStore(const std::string& path) {
  LocalDb db(path);
  std::vector<std::string> integrity = db.Column("PRAGMA integrity_check");
  EXPECT_THAT(integrity, ::testing::ElementsAre("ok"));
  // Every outbox entry has its view row, and every pending view row its outbox entry.
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM docs d "
                   "WHERE d.collection = o.collection AND d.doc_id = o.doc_id)"),
            0)
      << "an outbox entry without its view row";
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM docs d WHERE pending = 1 AND NOT EXISTS (SELECT 1 FROM "
                   "outbox o WHERE o.collection = d.collection AND o.doc_id = d.doc_id)"),
            0)
      << "a view row marked pending without an outbox entry";
  // Every view row comes from the server's fields or from the outbox: no half-written document.
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM docs d WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE "
                   "o.collection = d.collection AND o.doc_id = d.doc_id) AND NOT EXISTS (SELECT 1 "
                   "FROM server_fields f WHERE f.collection = d.collection AND f.doc_id = "
                   "d.doc_id)"),
            0)
      << "a view row from nowhere";
  // Every document the server sent has its view row.
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM (SELECT DISTINCT collection, doc_id FROM server_fields) "
                   "f WHERE NOT EXISTS (SELECT 1 FROM docs d WHERE d.collection = f.collection "
                   "AND d.doc_id = f.doc_id)"),
            0)
      << "pulled fields without their view row";
  // The outbox numbering: gapless up to the last number handed out.
  int64_t last = db.Int("SELECT COALESCE((SELECT value FROM sync_state WHERE key = "
                        "'last_device_seq'), 0)");
  int64_t acked = db.Int("SELECT COALESCE((SELECT value FROM sync_state WHERE key = "
                         "'acked_device_seq'), 0)");
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM outbox WHERE device_seq > " + std::to_string(acked)),
            last - acked)
      << "outbox entries after the acknowledged " << acked << " do not run to " << last;
  EXPECT_EQ(db.Int("SELECT COALESCE(MAX(device_seq), " + std::to_string(last) + ") FROM outbox"),
            last);
  std::vector<std::string> ids =
      db.Column("SELECT doc_id FROM docs WHERE collection = 'record' AND deleted = 0");
  return std::set<std::string>(ids.begin(), ids.end());
}

class DeviceCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = static_cast<uint32_t>(
        EnvInt("FIELDSYNC_DEVICE_SEED", static_cast<int>(std::random_device{}() & 0x7fffffff)));
    std::printf("device crash test: seed %u (FIELDSYNC_DEVICE_SEED to replay)\n", seed_);
    rng_.seed(seed_);
    kills_ = std::max(1, EnvInt("FIELDSYNC_DEVICE_KILLS", 3));
    ASSERT_OK(server_.Start(dir_.path(), {"--synchronous", "NORMAL"}));
    hq_ = std::make_unique<testing::Hq>(server_.Channel(), server_.admin_token());
    partner_ = hq_->CreatePartner("Maji Safi", {"KE"}).id();
    project_ = hq_->CreateProject(partner_, v1::PROJECT_KIND_WELL, "KE", "Boreholes").id();
    options_.call_timeout_ms = 10000;
    options_.retry.initial_backoff_ms = 20;
  }

  // A device enrolled and synced once (it knows the project), closed again.
  std::string NewDevice(const std::string& name, bool first_sync = true) {
    std::string path = dir_.File(name + ".db");
    auto c = Client::Enroll(server_.address(), hq_->EnrollmentCode(partner_, name), path,
                            options_);
    EXPECT_OK(c);
    if (c.ok() && first_sync) {
      EXPECT_OK((*c)->Sync());
    }
    return path;
  }

  // Waits until `path` has at least `lines` lines starting with `prefix`, or the process ended.
  static void WaitForLines(DeviceProcess& p, const std::string& path, const std::string& prefix,
                           size_t lines) {
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline && p.Running() && Lines(path, prefix).size() < lines) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  uint32_t seed_ = 0;
  std::mt19937 rng_;
  int kills_ = 3;
  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::unique_ptr<testing::Hq> hq_;
  std::string partner_, project_;
  ClientOptions options_;
};

TEST_F(DeviceCrashTest, KilledWhileRecordingLosesNoCommittedRecordAndSyncsAfter) {
  const std::string path = NewDevice("recorder");
  std::set<std::string> reported;  // every record the tool said was committed
  int kills = 0, synced_between = 0;
  for (int k = 0; k < kills_; ++k) {
    SCOPED_TRACE("kill " + std::to_string(k + 1));
    const std::string out = dir_.File("create" + std::to_string(k) + ".out"),
                      err = dir_.File("create" + std::to_string(k) + ".err");
    {
      DeviceProcess tool({"create", path, project_}, out, err);
      WaitForLines(tool, out, "created", 1 + rng_() % 40);
      std::this_thread::sleep_for(std::chrono::microseconds(rng_() % 3000));
      ASSERT_TRUE(tool.Running()) << "the tool stopped by itself: " << ReadFile(err);
      tool.Kill();
      ++kills;
    }
    for (const auto& l : Lines(out, "created")) reported.insert(l[1]);
    std::set<std::string> local = CheckLocalStore(path);
    for (const std::string& id : reported) {
      EXPECT_EQ(local.count(id), 1u) << "record " << id << " was reported committed but is gone";
    }
    // At most one more per kill than reported: committed, killed before it printed.
    EXPECT_LE(local.size(), reported.size() + kills);
    if (rng_() % 2 == 0) {
      // The app restarts and syncs: everything so far reaches the server.
      ASSERT_OK_AND_ASSIGN(auto device, Client::Open(path, options_));
      ASSERT_OK_AND_ASSIGN(client::SyncProgress done, device->Sync());
      EXPECT_FALSE(done.repaired);
      ++synced_between;
    }
  }
  ASSERT_OK_AND_ASSIGN(auto device, Client::Open(path, options_));
  ASSERT_OK_AND_ASSIGN(client::SyncProgress done, device->Sync());
  EXPECT_FALSE(done.repaired) << "the local copy differed from the server's";
  std::set<std::string> local = CheckLocalStore(path);
  ASSERT_OK_AND_ASSIGN(client::ClientStatus st, device->Status());
  std::vector<std::string> ids(local.begin(), local.end());
  int problems = testing::ExpectExactlyOnce(server_.db_path(), st.device_id, ids, st.last_device_seq);
  EXPECT_EQ(problems, 0);
  EXPECT_EQ(testing::QueryInt(server_.db_path(), "SELECT COUNT(*) FROM records"),
            static_cast<int64_t>(local.size()));
  testing::ExpectConverged(server_.db_path(), partner_, {device.get()});
  std::printf(
      "device crash (recording): %d SIGKILLs, %zu records reported committed, %zu on the device "
      "and on the server, %d syncs between kills; lost: %zu, duplicated: %d\n",
      kills, reported.size(), local.size(), synced_between,
      static_cast<size_t>(std::count_if(reported.begin(), reported.end(),
                                        [&](const std::string& id) { return !local.count(id); })),
      problems);
}

TEST_F(DeviceCrashTest, KilledWhileApplyingAPullRestartsConsistentAndConverges) {
  // HQ records 400 wells; each kill hits a device part-way through pulling them in pages of 10.
  constexpr int kRecords = 400, kPage = 10;
  for (int i = 0; i < kRecords; ++i) {
    v1::CreateRecordRequest req;
    v1::Record* r = req.mutable_record();
    r->set_project_id(project_);
    v1::WellRecord* w = r->mutable_well();
    w->set_drilled_depth_m(40 + i % 50);
    w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
    w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
    w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
    w->set_visit_date("2026-05-0" + std::to_string(1 + i % 9));
    w->set_notes("HQ record " + std::to_string(i));
    v1::Record saved;
    grpc::Status s = hq_->tracker().CreateRecord(hq_->Ctx().get(), req, &saved);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  const int devices = std::max(1, (kills_ + 1) / 2);
  int kills = 0, pages_before_kills = 0, edits = 0;
  for (int n = 0; n < devices; ++n) {
    SCOPED_TRACE("device " + std::to_string(n));
    const std::string path = NewDevice("puller" + std::to_string(n), /*first_sync=*/false);
    // Two kills per device: the second resumes from what the first left.
    for (int k = 0; k < 2 && kills < kills_; ++k) {
      const std::string out = dir_.File(absl::StrCat("pull", n, "-", k, ".out")),
                        err = dir_.File(absl::StrCat("pull", n, "-", k, ".err"));
      {
        DeviceProcess tool({"sync", path, std::to_string(kPage)}, out, err);
        WaitForLines(tool, out, "page", 1 + rng_() % (kRecords / kPage / 3));
        std::this_thread::sleep_for(std::chrono::microseconds(rng_() % 5000));
        if (!tool.Running()) {
          ADD_FAILURE() << "the pull ended before the kill: " << ReadFile(out) << ReadFile(err);
          continue;
        }
        tool.Kill();
        ++kills;
        pages_before_kills += static_cast<int>(Lines(out, "page").size());
      }
      CheckLocalStore(path);
      // Meanwhile HQ edits a record the device may or may not have pulled yet.
      v1::ListRecordsRequest list;
      list.set_page_size(1 + rng_() % 50);
      v1::ListRecordsResponse page;
      ASSERT_TRUE(hq_->tracker().ListRecords(hq_->Ctx().get(), list, &page).ok());
      v1::UpdateRecordRequest upd;
      *upd.mutable_record() = page.records(page.records_size() - 1);
      upd.mutable_record()->mutable_well()->set_yield_lph(7000 + edits);
      v1::Record updated;
      ASSERT_TRUE(hq_->tracker().UpdateRecord(hq_->Ctx().get(), upd, &updated).ok());
      ++edits;
    }
    ASSERT_OK_AND_ASSIGN(auto device, Client::Open(path, options_));
    ASSERT_OK_AND_ASSIGN(client::SyncProgress done, device->Sync());
    EXPECT_FALSE(done.repaired) << "a page was half-applied: the checksum needed a repair";
    CheckLocalStore(path);
    testing::ExpectConverged(server_.db_path(), partner_, {device.get()});
    ASSERT_OK_AND_ASSIGN(client::ClientStatus st, device->Status());
    EXPECT_EQ(st.records, kRecords);
  }
  std::printf(
      "device crash (pulling): %d SIGKILLs during pulls of %d documents in pages of %d (%d pages "
      "applied before the kills), %d HQ edits between; every device converged without repair\n",
      kills, kRecords + 2, kPage, pages_before_kills, edits);
}

}  // namespace
}  // namespace fieldsync
