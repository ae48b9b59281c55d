// Disk full, on the server and on a device. Two ways to run out of space, each test runs in both:
//
//   real  a small tmpfs mounted for the test (needs root or CAP_SYS_ADMIN, as in the dev
//         container; skipped with a note where mounting is not permitted, e.g. on CI) and
//         filled with a filler file, so SQLite gets ENOSPC from the kernel;
//   cap   a hard size cap — fieldsyncd --max-db-mb, ClientOptions::max_store_bytes, both PRAGMA
//         max_page_count — which makes SQLite fail with the very same SQLITE_FULL; runs
//         everywhere.
//
// Server: devices push until fieldsyncd answers RESOURCE_EXHAUSTED ("database or disk is
// full"); the failing batch is not half-applied (the device's acknowledged sequence and the
// server's rows, counted with independent SQL, stop exactly at the last whole batch), reads,
// pulls and health (SERVING: see docs/RELIABILITY.md) go on; once space returns (the filler
// removed with the server running, or a restart with a larger cap) the next sync succeeds with
// nothing lost or doubled. Device: a local write on a full disk fails with RESOURCE_EXHAUSTED
// saying the storage is full, loses nothing written before, and writing and syncing work again
// once space returns.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
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
using ::testing::HasSubstr;

enum class Mode { kReal, kCap };

std::string ModeName(Mode m) { return m == Mode::kReal ? "RealDisk" : "SizeCap"; }

// A tmpfs of `bytes` mounted at `dir` for the life of the object, if the kernel lets us.
class SmallDisk {
 public:
  SmallDisk(const std::string& dir, int64_t bytes) : dir_(dir) {
    mkdir(dir.c_str(), 0700);
    std::string opts = absl::StrCat("size=", bytes, ",mode=0700");
    if (mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~SmallDisk() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

  // Fills the disk with a filler file until the kernel says ENOSPC, then gives back `slack`
  // bytes. Returns the bytes written.
  int64_t Fill(int64_t slack) {
    filler_ = dir_ + "/filler";
    int fd = open(filler_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<char> block(64 << 10, 'x');
    int64_t written = 0;
    for (;;) {
      ssize_t n = write(fd, block.data(), block.size());
      if (n <= 0) break;
      written += n;
    }
    EXPECT_EQ(errno, ENOSPC);
    EXPECT_EQ(ftruncate(fd, std::max<int64_t>(0, written - slack)), 0);
    close(fd);
    return written;
  }
  // Space returns.
  void Free() { unlink(filler_.c_str()); }

 private:
  std::string dir_;
  std::string filler_;
  bool mounted_ = false;
  std::string error_;
};

// grpc.health.v1.Health/Check for the whole server, decoded by hand (no generated stubs in
// Debian): 1 SERVING, 2 NOT_SERVING, -1 if the call failed.
int HealthStatus(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub health(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Slice empty("", 0);
  grpc::ByteBuffer req(&empty, 1), resp;
  std::promise<grpc::Status> done;
  health.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &req, &resp,
                   [&](grpc::Status s) { done.set_value(s); });
  if (!done.get_future().get().ok()) return -1;
  std::vector<grpc::Slice> slices;
  if (!resp.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : -1;
}

class DiskFullTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    options_.call_timeout_ms = 10000;
    options_.retry.initial_backoff_ms = 10;
    options_.retry.max_backoff_ms = 50;
    options_.retry.max_attempts = 2;
  }

  // Real mode: a tmpfs at dir_/disk, or a skip. Cap mode: nothing to do.
  void MaybeMount(int64_t bytes) {
    if (GetParam() != Mode::kReal) {
      std::printf("disk full mode: size cap (PRAGMA max_page_count), SQLITE_FULL as on a full disk\n");
      return;
    }
    disk_ = std::make_unique<SmallDisk>(dir_.File("disk"), bytes);
    if (!disk_->mounted()) {
      GTEST_SKIP() << "cannot mount a tmpfs here (" << disk_->error()
                   << "); the SizeCap variant covers the same SQLITE_FULL path";
    }
    std::printf("disk full mode: real (a %lld KiB tmpfs, filled)\n",
                static_cast<long long>(bytes >> 10));
  }

  v1::Record Well(const std::string& project_id, int i) {
    v1::Record r;
    r.set_project_id(project_id);
    v1::WellRecord* w = r.mutable_well();
    w->set_drilled_depth_m(40 + i % 50);
    w->set_static_water_level_m(7);
    w->set_yield_lph(800 + i);
    w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
    w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
    w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
    w->set_population_served(100 + i % 900);
    w->set_visit_date("2026-09-14");
    w->set_notes(absl::StrCat("Well ", i, ": hand pump repaired, apron cracked, committee of ",
                              3 + i % 9, " members, fee collection irregular since the rains."));
    return r;
  }

  static int64_t FileBytes(const std::string& db) {
    return testing::QueryInt(db, "PRAGMA page_count") * testing::QueryInt(db, "PRAGMA page_size");
  }

  testing::TempDir dir_;
  std::unique_ptr<SmallDisk> disk_;
  ClientOptions options_;
};

TEST_P(DiskFullTest, ServerRefusesWholeBatchesKeepsServingAndResumesWhenSpaceReturns) {
  MaybeMount(16 << 20);
  if (IsSkipped()) return;
  const bool real = GetParam() == Mode::kReal;
  testing::ServerProcess server;
  const std::string server_dir = real ? dir_.File("disk") : dir_.File("server");
  mkdir(server_dir.c_str(), 0700);
  // SQLite in the PostgreSQL pass too: a full disk under the server's own file and --max-db-mb
  // are SQLite's (PostgreSQL's disk is its administrator's; the store refuses a size cap there).
  server.UseSqlite();
  ASSERT_OK(server.Start(server_dir));
  testing::Hq hq(server.Channel(), server.admin_token());
  const std::string partner = hq.CreatePartner("Maji Safi", {"KE"}).id();
  const std::string project = hq.CreateProject(partner, v1::PROJECT_KIND_WELL, "KE").id();
  auto enroll = [&](const std::string& name) {
    auto c = Client::Enroll(server.address(), hq.EnrollmentCode(partner, name),
                            dir_.File(name + ".db"), options_);
    EXPECT_OK(c);
    return c.ok() ? *std::move(c) : nullptr;
  };
  std::unique_ptr<Client> writer = enroll("writer"), reader = enroll("reader");
  ASSERT_TRUE(writer && reader);
  ASSERT_OK(writer->Sync());
  ASSERT_OK(reader->Sync());

  // Out of space about 1 MiB from now (some 5 KiB of rows, log and indexes per well): a batch
  // or two of 100 wells fit, then one fails.
  const int64_t room = 1 << 20;
  if (real) {
    disk_->Fill(room);
  } else {
    double mib = static_cast<double>(FileBytes(server.db_path()) + room) / (1 << 20);
    // Restarts here are SIGKILLs (a graceful stop waits out its grace period with the devices'
    // channels open; durability across a kill is the crash test's subject).
    kill(server.pid(), SIGKILL);
    ASSERT_OK(server.Restart({"--max-db-mb", absl::StrCat(mib)}));
  }

  std::vector<std::string> created;
  absl::Status refused;
  for (int round = 0; round < 40 && refused.ok(); ++round) {
    for (int i = 0; i < 100; ++i) {
      ASSERT_OK_AND_ASSIGN(v1::Record r, writer->CreateRecord(Well(project, static_cast<int>(created.size()))));
      created.push_back(r.id());
    }
    refused = writer->Sync().status();
  }
  ASSERT_OK_AND_ASSIGN(client::ClientStatus st, writer->Status());
  const std::string db = server.db_path();
  const std::string device = "'" + st.device_id + "'";
  // Whatever happened, what the server acknowledged is what it holds.
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM records"), st.acked_device_seq)
      << "the server acknowledged " << st.acked_device_seq << " wells; it holds the number above";
  ASSERT_FALSE(refused.ok()) << "the server never ran out of space: it acknowledged "
                             << st.acked_device_seq << " wells";
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_THAT(std::string(refused.message()), HasSubstr("full")) << refused;
  std::printf("server full after %zu wells: %s\n", created.size(), refused.ToString().c_str());

  // Nothing half-applied: the server stopped exactly at a whole batch, and agrees with the
  // device about where.
  int64_t acked = testing::QueryInt(
      db, "SELECT COALESCE(SUM(acked_device_seq), 0) FROM device_streams WHERE device_id = " +
              device);
  EXPECT_EQ(acked, st.acked_device_seq);
  EXPECT_GT(acked, 0) << "not even the first batch fitted: nothing to tell a whole batch by";
  EXPECT_LT(acked, st.last_device_seq) << "the failing batch was acknowledged";
  EXPECT_EQ(acked % 100, 0) << "a batch was applied in part";
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM change_log WHERE device_id = " + device),
            acked);
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM records"), acked);
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM docs WHERE collection = 'record'"), acked);
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(DISTINCT doc_id) FROM doc_fields WHERE "
                                  "collection = 'record'"),
            acked);
  EXPECT_EQ(testing::IntegrityCheck(db), "ok");

  // Reads, pulls and health go on.
  v1::ListRecordsRequest list;
  list.set_page_size(1000);
  v1::ListRecordsResponse page;
  grpc::Status read = hq.tracker().ListRecords(hq.Ctx().get(), list, &page);
  EXPECT_TRUE(read.ok()) << read.error_message();
  EXPECT_EQ(page.records_size(), std::min<int64_t>(acked, 1000));
  absl::StatusOr<client::SyncProgress> pulled = reader->Sync();
  EXPECT_OK(pulled) << "a pull while the disk is full";
  ASSERT_OK_AND_ASSIGN(client::ClientStatus rs, reader->Status());
  EXPECT_EQ(rs.records, acked);
  EXPECT_EQ(HealthStatus(server.Channel()), 1) << "health: SERVING while writes are refused";

  // Space returns; the next sync sends the rest, once.
  if (real) {
    disk_->Free();
  } else {
    kill(server.pid(), SIGKILL);
    ASSERT_OK(server.Restart({"--max-db-mb", "1024"}));
  }
  ASSERT_OK(writer->Sync());
  ASSERT_OK(reader->Sync());
  ASSERT_OK(writer->Sync());
  ASSERT_OK_AND_ASSIGN(st, writer->Status());
  EXPECT_EQ(testing::ExpectExactlyOnce(db, st.device_id, created, st.last_device_seq), 0);
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM records"),
            static_cast<int64_t>(created.size()));
  testing::ExpectConverged(db, partner, {writer.get(), reader.get()});
}

TEST_P(DiskFullTest, DeviceStorageFullRefusesTheWriteKeepsEverythingAndRecovers) {
  MaybeMount(4 << 20);
  if (IsSkipped()) return;
  const bool real = GetParam() == Mode::kReal;
  testing::ServerProcess server;
  ASSERT_OK(server.Start(dir_.path()));
  testing::Hq hq(server.Channel(), server.admin_token());
  const std::string partner = hq.CreatePartner("Maji Safi", {"KE"}).id();
  const std::string project = hq.CreateProject(partner, v1::PROJECT_KIND_WELL, "KE").id();
  const std::string path = real ? dir_.File("disk/device.db") : dir_.File("device.db");
  {
    auto c = Client::Enroll(server.address(), hq.EnrollmentCode(partner, "tablet"), path,
                            options_);
    ASSERT_OK(c);
    ASSERT_OK((*c)->Sync());
  }
  const int64_t room = 256 << 10;
  ClientOptions capped = options_;
  if (real) {
    disk_->Fill(room);
  } else {
    capped.max_store_bytes = FileBytes(path) + room;
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> device, Client::Open(path, capped));

  std::vector<std::string> created;
  absl::Status full;
  for (int i = 0; i < 20000 && full.ok(); ++i) {
    absl::StatusOr<v1::Record> r = device->CreateRecord(Well(project, i));
    if (r.ok()) {
      created.push_back(r->id());
    } else {
      full = r.status();
    }
  }
  ASSERT_FALSE(full.ok()) << "the device's storage never filled";
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_THAT(std::string(full.message()), HasSubstr("storage is full")) << full;
  std::printf("device full after %zu wells: %s\n", created.size(), full.ToString().c_str());
  ASSERT_GT(created.size(), 0u);

  // Nothing recorded before is lost, the refused write left nothing behind.
  ASSERT_OK_AND_ASSIGN(client::ClientStatus st, device->Status());
  EXPECT_EQ(st.records, static_cast<int64_t>(created.size()));
  EXPECT_EQ(st.last_device_seq, static_cast<int64_t>(created.size()));
  EXPECT_EQ(st.pending_changes, static_cast<int64_t>(created.size()));
  for (const std::string& id : created) ASSERT_OK(device->GetRecord(id));

  // Space returns (the app frees space, or is given a larger allowance): writing and syncing
  // work again, and everything reaches the server once.
  if (real) {
    disk_->Free();
  } else {
    device.reset();
    ASSERT_OK_AND_ASSIGN(device, Client::Open(path, options_));
  }
  ASSERT_OK_AND_ASSIGN(v1::Record more, device->CreateRecord(Well(project, 99999)));
  created.push_back(more.id());
  ASSERT_OK(device->Sync());
  ASSERT_OK_AND_ASSIGN(st, device->Status());
  EXPECT_EQ(testing::ExpectExactlyOnce(server.db_path(), st.device_id, created,
                                       st.last_device_seq),
            0);
  testing::ExpectConverged(server.db_path(), partner, {device.get()});
}

// Enrollment on a full server is all or nothing: the code is used if and only if the token was
// issued, so the device can simply enroll with the same code once space returns (before, the code
// was marked used in one transaction and the token failed in the next: the code was burnt).
TEST_P(DiskFullTest, EnrollmentOnAFullServerLeavesTheCodeValid) {
  if (GetParam() == Mode::kReal) {
    // A filled tmpfs still lets SQLite reuse its WAL file's frames after a checkpoint, so "full"
    // is not exact there; the size cap fails every write that needs a new page.
    GTEST_SKIP() << "the SizeCap variant covers this (a full database, exactly)";
  }
  testing::ServerProcess server;
  server.UseSqlite();
  ASSERT_OK(server.Start(dir_.path()));
  testing::Hq hq(server.Channel(), server.admin_token());
  const std::string partner = hq.CreatePartner("Maji Safi", {"KE"}).id();
  std::string device_id;
  const std::string code = hq.EnrollmentCode(partner, "phone", &device_id);
  v1::CreateUserRequest ureq;
  ureq.mutable_user()->set_name("filler");
  ureq.mutable_user()->set_role(v1::ROLE_AUDITOR);
  v1::User filler;
  ASSERT_TRUE(hq.admin().CreateUser(hq.Ctx().get(), ureq, &filler).ok());

  // Cap the database at its current size, then use up the room left inside its pages with
  // tokens (a token row, its index entries and a change-log entry: what an enrollment writes)
  // until twenty in a row are refused.
  const std::string db = server.db_path();
  kill(server.pid(), SIGKILL);
  ASSERT_OK(server.Restart(
      {"--max-db-mb", absl::StrCat(static_cast<double>(FileBytes(db)) / (1 << 20))}));
  int refused_in_a_row = 0, issued = 0;
  for (int i = 0; i < 5000 && refused_in_a_row < 20; ++i) {
    v1::CreateTokenRequest treq;
    treq.set_user_id(filler.id());
    v1::CreateTokenResponse out;
    grpc::Status s = hq.admin().CreateToken(hq.Ctx().get(), treq, &out);
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      // The channel reconnecting to the restarted server: not an answer.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    if (s.ok()) {
      refused_in_a_row = 0;
      ++issued;
    } else {
      ASSERT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
      ++refused_in_a_row;
    }
  }
  ASSERT_EQ(refused_in_a_row, 20) << "the database never filled (" << issued << " tokens)";

  absl::StatusOr<std::unique_ptr<Client>> refused =
      Client::Enroll(server.address(), code, dir_.File("phone.db"), options_);
  ASSERT_FALSE(refused.ok()) << "an enrollment fitted into a full database";
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("full")) << refused.status();
  // Nothing of it stayed: the code is unused, the device has no token.
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM enrollments WHERE used_at IS NOT NULL"), 0);
  EXPECT_EQ(
      testing::QueryInt(db, "SELECT COUNT(*) FROM tokens WHERE device_id = '" + device_id + "'"),
      0);

  // Space returns: the same code enrolls the device, which then syncs.
  kill(server.pid(), SIGKILL);
  ASSERT_OK(server.Restart({"--max-db-mb", "1024"}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> phone,
                       Client::Enroll(server.address(), code, dir_.File("phone.db"), options_));
  ASSERT_OK(phone->Sync());
  ASSERT_OK_AND_ASSIGN(client::ClientStatus st, phone->Status());
  EXPECT_EQ(st.device_id, device_id);
}

INSTANTIATE_TEST_SUITE_P(Modes, DiskFullTest, ::testing::Values(Mode::kReal, Mode::kCap),
                         [](const ::testing::TestParamInfo<Mode>& p) {
                           return ModeName(p.param);
                         });

}  // namespace
}  // namespace fieldsync
