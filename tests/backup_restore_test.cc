// Backups and restores (issue 7): an online backup of a running fieldsyncd through
// AdminService.Backup while devices write, `fieldsyncd --restore-from`, and the devices'
// recovery of what the backup lacks (docs/SYNC.md, "Restores"): after the restore and a few
// syncs, every record any device had acknowledged is on the server with its latest values,
// exactly once, the hash chain verifies and the devices converge. Plus the Backup RPC's errors
// and a restore refusing damaged backups without touching the database.
//
// Everything here is SQLite: Backup is SQLite's online backup API (PostgreSQL uses pg_dump),
// so each server calls UseSqlite(). The load test makes 4 syncs per device before the backup and
// 4 after (about 6 s); a longer run:
//
//   FIELDSYNC_BACKUP_LOAD_SYNCS=50 ./fieldsync_backup_restore_test --gtest_filter='*Resend*'

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fieldsync/client.h"
#include "fieldsync/sync/sqlite.h"
#include "fieldsync/v1/admin.grpc.pb.h"
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
using client::SyncProgress;
using ::testing::HasSubstr;

constexpr int kDevices = 3;

// Syncs each device makes under load before the backup, and again after it.
int LoadSyncs() {
  const char* v = std::getenv("FIELDSYNC_BACKUP_LOAD_SYNCS");
  return v != nullptr && std::atoi(v) > 0 ? std::atoi(v) : 4;
}

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
  w->set_population_served(100 + i);
  w->set_visit_date("2026-03-14");
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// File names in `dir` containing `part`.
std::vector<std::string> FilesWith(const std::string& dir, const std::string& part) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.find(part) != std::string::npos) out.push_back(name);
  }
  return out;
}

std::string QueryText(const std::string& db, const std::string& sql) {
  absl::StatusOr<std::vector<testing::SqlRow>> rows = testing::QueryRows(db, sql);
  if (!rows.ok() || rows->empty() || rows->front().empty()) return "";
  return rows->front()[0].value_or("");
}

// The record as compared across servers and devices: without its audit block (versions are
// server sequence numbers, which a restore renumbers).
std::string Content(v1::Record r) {
  r.clear_audit();
  return r.SerializeAsString();
}

class BackupRestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.UseSqlite();  // the backup API is SQLite's
    ASSERT_OK(server_.Start(dir_.path(), {"--synchronous", "NORMAL"}));
    hq_ = std::make_unique<testing::Hq>(server_.Channel(), server_.admin_token());
    partner_ = hq_->CreatePartner("Maji Safi", {"KE"});
    project_ = hq_->CreateProject(partner_.id(), v1::PROJECT_KIND_WELL, "KE", "Boreholes");
    options_.retry.initial_backoff_ms = 20;
    options_.retry.max_backoff_ms = 200;
    options_.retry.max_attempts = 5;
    options_.call_timeout_ms = 10000;
  }

  absl::StatusOr<v1::BackupResponse> Backup(const std::string& path,
                                            const std::string& token = "") {
    v1::BackupRequest request;
    request.set_path(path);
    v1::BackupResponse response;
    grpc::Status s = hq_->admin().Backup(hq_->Ctx(token).get(), request, &response);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    return response;
  }

  // Every record on the server, by id, as Content().
  std::map<std::string, std::string> ServerRecords() {
    std::map<std::string, std::string> out;
    v1::ListRecordsRequest request;
    request.set_page_size(1000);
    for (;;) {
      v1::ListRecordsResponse page;
      grpc::Status s = hq_->tracker().ListRecords(hq_->Ctx().get(), request, &page);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      for (const v1::Record& r : page.records()) out[r.id()] = Content(r);
      if (page.next_page_token().empty()) break;
      request.set_page_token(page.next_page_token());
    }
    return out;
  }

  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::unique_ptr<testing::Hq> hq_;
  v1::Partner partner_;
  v1::Project project_;
  ClientOptions options_;
};

struct Device {
  std::string path;
  std::string device_id;
  std::unique_ptr<Client> client;
  std::vector<std::string> created;
  std::atomic<int> syncs{0};
  std::string error;
};

TEST_F(BackupRestoreTest, DevicesResendWhatTheBackupLacksAndNothingAcknowledgedIsLost) {
  std::vector<std::unique_ptr<Device>> devices;
  for (int i = 0; i < kDevices; ++i) {
    auto d = std::make_unique<Device>();
    d->path = dir_.File("device" + std::to_string(i) + ".db");
    auto c = Client::Enroll(server_.address(),
                            hq_->EnrollmentCode(partner_.id(), "tablet " + std::to_string(i)),
                            d->path, options_);
    ASSERT_OK(c);
    d->client = *std::move(c);
    d->device_id = d->client->Status()->device_id;
    ASSERT_OK(d->client->Sync());
    devices.push_back(std::move(d));
  }

  // Load: each device creates a record, now and then edits one it sees (its own or another's),
  // and syncs, in a loop on its own thread. The backup is taken in the middle of it.
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kDevices; ++i) {
    threads.emplace_back([&, i] {
      Device& d = *devices[i];
      std::mt19937 rng(1234 + i);
      for (int n = 0; !stop.load(); ++n) {
        absl::StatusOr<v1::Record> r = d.client->CreateRecord(Well(project_.id(), i * 1000 + n));
        if (!r.ok()) {
          d.error = r.status().ToString();
          return;
        }
        d.created.push_back(r->id());
        if (rng() % 2 == 0) {
          v1::ListRecordsRequest list;
          list.set_page_size(200);
          absl::StatusOr<v1::ListRecordsResponse> seen = d.client->ListRecords(list);
          if (seen.ok() && seen->records_size() > 0) {
            v1::Record edit = seen->records(static_cast<int>(rng() % seen->records_size()));
            edit.mutable_well()->set_yield_lph(static_cast<double>(rng() % 5000));
            absl::StatusOr<v1::Record> updated = d.client->UpdateRecord(edit);
            if (!updated.ok()) {
              d.error = updated.status().ToString();
              return;
            }
          }
        }
        absl::StatusOr<SyncProgress> synced = d.client->Sync();
        if (!synced.ok()) {
          d.error = synced.status().ToString();
          return;
        }
        ++d.syncs;
      }
    });
  }
  auto wait_for = [&](int syncs) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(60 + 2 * LoadSyncs());
    for (;;) {
      bool all = true;
      for (const auto& d : devices) all = all && (d->syncs.load() >= syncs || !d->error.empty());
      if (all || std::chrono::steady_clock::now() > deadline) return all;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  bool loaded = wait_for(LoadSyncs());
  const std::string backup = dir_.File("backup.db");
  absl::StatusOr<v1::BackupResponse> taken = Backup(backup);
  int syncs_at_backup = 0;
  for (const auto& d : devices) syncs_at_backup = std::max(syncs_at_backup, d->syncs.load());
  bool continued = loaded && wait_for(syncs_at_backup + LoadSyncs());
  stop = true;
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(loaded && continued) << "the load did not make progress";
  for (const auto& d : devices) ASSERT_EQ(d->error, "") << d->path;
  ASSERT_OK(taken);
  EXPECT_EQ(taken->path(), backup);
  EXPECT_GT(taken->head_seq(), 0);

  // Everything acknowledged: two rounds so every device has every other's last push.
  for (int round = 0; round < 2; ++round) {
    for (const auto& d : devices) ASSERT_OK(d->client->Sync());
  }
  const std::map<std::string, std::string> acknowledged = ServerRecords();
  const int64_t head_before = testing::QueryInt(server_.db_path(), "SELECT MAX(seq) FROM change_log");
  ASSERT_EQ(server_.Stop(), 0);

  // The backup lacks part of what the server acknowledged: records created after it.
  std::set<std::string> in_backup;
  {
    auto rows = testing::QueryRows(backup, "SELECT id FROM records");
    ASSERT_OK(rows);
    for (const testing::SqlRow& row : *rows) in_backup.insert(row[0].value_or(""));
  }
  int missing = 0;
  for (const auto& [id, content] : acknowledged) missing += in_backup.count(id) == 0 ? 1 : 0;
  std::printf("backup at change-log seq %lld of %lld; %d of %zu acknowledged records are not in "
              "it\n",
              static_cast<long long>(taken->head_seq()), static_cast<long long>(head_before),
              missing, acknowledged.size());
  ASSERT_GT(missing, 0) << "the scenario must lose acknowledged records to the restore";
  ASSERT_LT(taken->head_seq(), head_before);

  // Offline while the server is down: each device creates a record and edits its own last one.
  std::map<std::string, std::string> offline;  // id -> the device's content
  for (int i = 0; i < kDevices; ++i) {
    Device& d = *devices[i];
    absl::StatusOr<v1::Record> r = d.client->CreateRecord(Well(project_.id(), 90000 + i));
    ASSERT_OK(r);
    d.created.push_back(r->id());
    absl::StatusOr<v1::Record> last = d.client->GetRecord(d.created[d.created.size() - 2]);
    ASSERT_OK(last);
    last->mutable_well()->set_population_served(7777 + i);
    ASSERT_OK(d.client->UpdateRecord(*last));
    for (const std::string& id : {r->id(), last->id()}) {
      absl::StatusOr<v1::Record> now = d.client->GetRecord(id);
      ASSERT_OK(now);
      offline[id] = Content(*now);
    }
  }

  // The restore, then the server starts normally on the restored database.
  testing::CommandResult restored = testing::RunCommand(
      {testing::FieldsyncdPath(), "--db", server_.db_path(), "--restore-from", backup});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  EXPECT_THAT(restored.err, HasSubstr(absl::StrCat("head seq ", taken->head_seq())));
  EXPECT_THAT(restored.err, HasSubstr(taken->head_hash()));
  EXPECT_EQ(FilesWith(dir_.path(), "fieldsync.db.before-restore-").size(), 1u);
  const std::string new_epoch =
      QueryText(server_.db_path(), "SELECT value FROM server_meta WHERE key = 'epoch'");
  EXPECT_NE(new_epoch, taken->epoch());
  EXPECT_EQ(new_epoch.size(), 36u);
  ASSERT_OK(server_.Restart());

  // Every device syncs until a round changes nothing. A device whose re-sent edit touches a
  // record another device created after the backup is refused (INVALID_ARGUMENT: the record is
  // not there yet) until that device has re-sent it: a later round then goes through.
  std::vector<SyncProgress> first(kDevices);
  std::vector<bool> seen_first(kDevices, false);
  int rounds = 0, refused = 0;
  for (bool quiet = false; !quiet && rounds < kDevices + 3; ++rounds) {
    quiet = true;
    for (int i = 0; i < kDevices; ++i) {
      SyncProgress last;
      absl::StatusOr<SyncProgress> synced =
          devices[i]->client->Sync([&](const SyncProgress& p) { last = p; });
      if (!seen_first[i]) {
        first[i] = last;
        seen_first[i] = true;
      }
      if (!synced.ok()) {
        EXPECT_EQ(synced.status().code(), absl::StatusCode::kInvalidArgument) << synced.status();
        ++refused;
        quiet = false;
        continue;
      }
      if (synced->changes_pushed > 0) quiet = false;
    }
  }
  std::printf("recovered in %d sync rounds (%d syncs refused on the way)\n", rounds, refused);
  ASSERT_LE(rounds, kDevices + 2) << "devices did not recover";
  for (int i = 0; i < kDevices; ++i) {
    EXPECT_TRUE(first[i].rebased) << "device " << i;
    EXPECT_GT(first[i].resent_documents, 0) << "device " << i;
    std::printf("device %d: resent %lld documents\n", i,
                static_cast<long long>(first[i].resent_documents));
  }

  // Every acknowledged record is back with its latest values, the offline edits too, and
  // nothing else.
  const std::map<std::string, std::string> after = ServerRecords();
  EXPECT_EQ(after.size(), acknowledged.size() + kDevices);
  int lost = 0, stale = 0;
  for (const auto& [id, content] : acknowledged) {
    auto it = after.find(id);
    if (it == after.end()) {
      ++lost;
    } else if (offline.count(id) == 0 && it->second != content) {
      ++stale;
    }
  }
  EXPECT_EQ(lost, 0) << "acknowledged records lost for good";
  EXPECT_EQ(stale, 0) << "acknowledged records back with older values";
  for (const auto& [id, content] : offline) {
    auto it = after.find(id);
    ASSERT_NE(it, after.end()) << id;
    EXPECT_EQ(it->second, content) << id;
  }
  for (const auto& d : devices) {
    absl::StatusOr<client::ClientStatus> st = d->client->Status();
    ASSERT_OK(st);
    EXPECT_EQ(testing::ExpectExactlyOnce(server_.db_path(), d->device_id, d->created,
                                         st->last_device_seq),
              0);
  }

  // Re-sent values the restored server still had changed nothing: a document whose payload is
  // as in the backup kept its version (no bump, so no pull traffic), and no re-sent change
  // raised a conflict.
  {
    auto docs = [](const std::string& db) {
      std::map<std::string, std::pair<std::string, std::string>> out;  // id -> (payload, seq)
      auto rows = testing::QueryRows(db, "SELECT doc_id, payload, seq FROM docs");
      EXPECT_OK(rows);
      if (rows.ok()) {
        for (const testing::SqlRow& r : *rows) {
          out[r[0].value_or("")] = {r[1].value_or(""), r[2].value_or("")};
        }
      }
      return out;
    };
    const auto in_backup_docs = docs(backup), now_docs = docs(server_.db_path());
    int unchanged = 0, bumped = 0;
    for (const auto& [id, was] : in_backup_docs) {
      auto it = now_docs.find(id);
      if (it == now_docs.end() || it->second.first != was.first) continue;
      ++unchanged;
      if (it->second.second != was.second) ++bumped;
    }
    std::printf("%d documents unchanged since the backup, %d of them with a new version\n",
                unchanged, bumped);
    EXPECT_GT(unchanged, 0);
    EXPECT_EQ(bumped, 0);
    EXPECT_EQ(testing::QueryInt(server_.db_path(),
                                absl::StrCat("SELECT COUNT(*) FROM conflicts WHERE seq > ",
                                             taken->head_seq())),
              0);
  }

  // The restored server's hash chain verifies from its first entry to its last.
  auto reports = v1::ReportService::NewStub(server_.Channel());
  v1::VerifyAuditChainResponse chain;
  grpc::Status verified =
      reports->VerifyAuditChain(hq_->Ctx().get(), v1::VerifyAuditChainRequest(), &chain);
  ASSERT_TRUE(verified.ok()) << verified.error_message();
  EXPECT_TRUE(chain.ok()) << chain.problem();
  EXPECT_EQ(chain.head_seq(),
            testing::QueryInt(server_.db_path(), "SELECT MAX(seq) FROM change_log"));
  EXPECT_EQ(testing::IntegrityCheck(server_.db_path()), "ok");

  std::vector<Client*> clients;
  for (const auto& d : devices) clients.push_back(d->client.get());
  testing::ExpectConverged(server_.db_path(), partner_.id(), clients);
}

TEST_F(BackupRestoreTest, BackupRefusesBadPathsAndCallersOtherThanAdmin) {
  EXPECT_THAT(Backup("backups/fs.db"),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("path")));
  EXPECT_THAT(Backup(""), testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("path")));
  EXPECT_THAT(Backup(dir_.File("no-such-folder/fs.db")),
              testing::StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("folder")));
  const std::string existing = dir_.File("existing.db");
  WriteFile(existing, "keep me");
  EXPECT_THAT(Backup(existing),
              testing::StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("path")));
  EXPECT_EQ(ReadFile(existing), "keep me");

  // An HQ viewer may read everything but not take the database away.
  v1::CreateUserRequest user;
  user.mutable_user()->set_name("viewer");
  user.mutable_user()->set_role(v1::ROLE_HQ_VIEWER);
  v1::User viewer;
  ASSERT_TRUE(hq_->admin().CreateUser(hq_->Ctx().get(), user, &viewer).ok());
  v1::CreateTokenRequest token;
  token.set_user_id(viewer.id());
  v1::CreateTokenResponse issued;
  ASSERT_TRUE(hq_->admin().CreateToken(hq_->Ctx().get(), token, &issued).ok());
  EXPECT_THAT(Backup(dir_.File("viewer.db"), issued.secret()),
              testing::StatusIs(absl::StatusCode::kPermissionDenied, ::testing::_));
  EXPECT_TRUE(FilesWith(dir_.path(), "viewer.db").empty());
}

TEST_F(BackupRestoreTest, ABackupIsOneSoundFileWhoseChainVerifies) {
  const std::string path = dir_.File("fs-backup.db");
  absl::StatusOr<v1::BackupResponse> taken = Backup(path);
  ASSERT_OK(taken);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(taken->bytes(), st.st_size);
  EXPECT_TRUE(FilesWith(dir_.path(), "fs-backup.db-").empty()) << "no -wal or -shm beside it";
  EXPECT_TRUE(FilesWith(dir_.path(), ".part").empty());
  EXPECT_EQ(testing::IntegrityCheck(path), "ok");
  EXPECT_EQ(taken->head_seq(), testing::QueryInt(path, "SELECT MAX(seq) FROM change_log"));
  EXPECT_EQ(taken->head_hash(),
            QueryText(path, "SELECT hash FROM change_log ORDER BY seq DESC LIMIT 1"));
  EXPECT_EQ(taken->epoch(), QueryText(path, "SELECT value FROM server_meta WHERE key = 'epoch'"));
  EXPECT_EQ(taken->epoch(),
            QueryText(server_.db_path(), "SELECT value FROM server_meta WHERE key = 'epoch'"));
  // A second backup to the same path is refused.
  EXPECT_THAT(Backup(path), testing::StatusIs(absl::StatusCode::kAlreadyExists, ::testing::_));

  // The same through the CLI: `fieldsync admin backup PATH`, as text and as JSON.
  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::FieldsyncCliPath(), "--server", server_.address(),
                                     "--token", server_.admin_token(), "admin", "backup"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, {"FIELDSYNC_SERVER=", "FIELDSYNC_TOKEN="});
  };
  testing::CommandResult text = cli({dir_.File("cli.db")});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("head_seq:"));
  EXPECT_THAT(text.out, HasSubstr(taken->epoch()));
  testing::CommandResult json = cli({dir_.File("cli.json.db"), "--json"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"head_seq\""));
  EXPECT_THAT(json.out, HasSubstr(dir_.File("cli.json.db")));
  testing::CommandResult again = cli({dir_.File("cli.db")});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.err, HasSubstr("already exists"));

  // The restore's own check (integrity, schema, the chain recomputed in full) passes on it,
  // into a new database file.
  const std::string restored = dir_.File("restored.db");
  testing::CommandResult r = testing::RunCommand(
      {testing::FieldsyncdPath(), "--db", restored, "--restore-from", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(taken->head_seq(), " change-log entries verified")));
  ASSERT_EQ(::stat(restored.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_NE(QueryText(restored, "SELECT value FROM server_meta WHERE key = 'epoch'"),
            taken->epoch());

  // --new-epoch replaces it again and prints the new one.
  testing::CommandResult epoch =
      testing::RunCommand({testing::FieldsyncdPath(), "--db", restored, "--new-epoch"});
  ASSERT_EQ(epoch.exit_code, 0) << epoch.err;
  EXPECT_EQ(epoch.out, QueryText(restored, "SELECT value FROM server_meta WHERE key = 'epoch'") +
                           "\n");
}

TEST_F(BackupRestoreTest, ADamagedBackupIsRefusedAndTheDatabaseIsLeftAsItWas) {
  const std::string good = dir_.File("good.db");
  ASSERT_OK(Backup(good));
  ASSERT_EQ(server_.Stop(), 0);
  const std::string bytes = ReadFile(good);
  ASSERT_GT(bytes.size(), 8192u);

  std::map<std::string, std::string> bad;
  bad[dir_.File("truncated.db")] = bytes.substr(0, bytes.size() / 2);
  std::string garbage(64 * 1024, '\0');
  std::mt19937 rng(7);
  for (char& c : garbage) c = static_cast<char>(rng());
  bad[dir_.File("garbage.db")] = garbage;
  for (const auto& [path, content] : bad) WriteFile(path, content);
  // A sound SQLite file whose change log was edited behind the chain's back.
  const std::string tampered = dir_.File("tampered.db");
  WriteFile(tampered, bytes);
  {
    auto db = sqlite::Database::Open(tampered, {});
    ASSERT_OK(db);
    ASSERT_OK((*db)->Exec("PRAGMA journal_mode=DELETE; DROP TRIGGER change_log_no_update; "
                          "UPDATE change_log SET actor_id = 'mallory' WHERE seq = 2"));
  }

  auto db_files = [&] {
    std::map<std::string, std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
      std::string name = e.path().filename().string();
      if (name.rfind("fieldsync.db", 0) == 0) out[name] = ReadFile(e.path().string());
    }
    return out;
  };
  const auto before = db_files();
  ASSERT_EQ(before.count("fieldsync.db"), 1u);

  const std::vector<std::pair<std::string, std::string>> cases = {
      {dir_.File("truncated.db"), "not a sound fieldsyncd database"},
      {dir_.File("garbage.db"), "not a sound fieldsyncd database"},
      {tampered, "hash chain"},
      {dir_.File("missing.db"), "No such file"},
  };
  for (const auto& [path, why] : cases) {
    SCOPED_TRACE(path);
    testing::CommandResult r = testing::RunCommand(
        {testing::FieldsyncdPath(), "--db", server_.db_path(), "--restore-from", path});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr(why));
    EXPECT_TRUE(db_files() == before) << "the database was touched";
  }
  EXPECT_TRUE(FilesWith(dir_.path(), "before-restore").empty());
  EXPECT_TRUE(FilesWith(dir_.path(), ".restoring").empty());

  // The server still starts on the untouched database.
  ASSERT_OK(server_.Restart());
  EXPECT_EQ(ServerRecords().size(), 0u);
}

}  // namespace
}  // namespace fieldsync
