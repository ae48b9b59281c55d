// Field links, simulated: devices sync real records with the real fieldsyncd through a TCP proxy
// that adds latency, throttles to EDGE rates (50 kbit/s up, 100 kbit/s down), cuts connections at
// random bytes and black-holes traffic for a while (tests/testing/tcp_proxy.h). Afterwards every
// record is on the server exactly once (independent SQL on its file), every device holds the
// server's documents and scope checksum, and while the link is a black hole the app stays
// responsive: a Sync() gives up within its deadlines, Cancel() stops it at once, local writes
// never wait for it.
//
// Random choices come from one seed (printed; FIELDSYNC_FAULT_SEED=N replays them, though thread
// timing does not replay). The mixed test runs FIELDSYNC_FAULT_ROUNDS rounds (default 5, a few
// seconds); a long local run:
//
//   FIELDSYNC_FAULT_ROUNDS=200 ./fieldsync_network_fault_test --gtest_filter='*Mixed*'

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fieldsync/client.h"
#include "tests/testing/device_checks.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync {
namespace {

namespace v1 = ::fieldsync::v1;
using client::Client;
using client::ClientOptions;
using Clock = std::chrono::steady_clock;

constexpr int64_t kEdgeUpBytesPerS = 50'000 / 8;
constexpr int64_t kEdgeDownBytesPerS = 100'000 / 8;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::atoi(v);
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

bool LinkFailure(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}

struct Device {
  std::string name;
  std::string path;
  std::string device_id;
  std::unique_ptr<Client> client;
  std::vector<std::string> created;
  int64_t updates = 0;
  int64_t syncs_ok = 0, syncs_failed = 0;
  std::string unexpected;  // first error that is not a link failure
};

class NetworkFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = static_cast<uint32_t>(
        EnvInt("FIELDSYNC_FAULT_SEED", static_cast<int>(std::random_device{}() & 0x7fffffff)));
    std::printf("network fault test: seed %u (FIELDSYNC_FAULT_SEED to replay)\n", seed_);
    rng_.seed(seed_);
    ASSERT_OK(server_.Start(dir_.path(), {"--synchronous", "NORMAL"}));
    hq_ = std::make_unique<testing::Hq>(server_.Channel(), server_.admin_token());
    partner_ = hq_->CreatePartner("Maji Safi", {"KE"});
    project_ = hq_->CreateProject(partner_.id(), v1::PROJECT_KIND_WELL, "KE", "Boreholes");
    proxy_ = std::make_unique<testing::TcpProxy>(server_.address());
    proxy_->SetSeed(seed_);
    ASSERT_OK(proxy_->Start());
    options_.call_timeout_ms = 8000;
    options_.retry.initial_backoff_ms = 20;
    options_.retry.max_backoff_ms = 500;
    options_.retry.max_attempts = 12;
    options_.pull_page_size = 20;
  }

  // Enrolled through the proxy (while it injects nothing), and synced once to learn the
  // project: the device's store remembers the proxy as its server.
  std::unique_ptr<Device> NewDevice(const std::string& name, const ClientOptions& options) {
    auto d = std::make_unique<Device>();
    d->name = name;
    d->path = dir_.File(name + ".db");
    auto c = Client::Enroll(proxy_->address(), hq_->EnrollmentCode(partner_.id(), name), d->path,
                            options);
    EXPECT_OK(c);
    if (!c.ok()) return d;
    d->client = *std::move(c);
    d->device_id = d->client->Status()->device_id;
    EXPECT_OK(d->client->Sync()) << name << ": learn the project";
    return d;
  }
  std::unique_ptr<Device> NewDevice(const std::string& name) { return NewDevice(name, options_); }

  v1::Record Well(int i) {
    v1::Record r;
    r.set_project_id(project_.id());
    v1::WellRecord* w = r.mutable_well();
    w->set_drilled_depth_m(50 + i % 40);
    w->set_static_water_level_m(10);
    w->set_yield_lph(1000 + i);
    w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
    w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
    w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
    w->set_population_served(100 + i);
    w->set_visit_date("2026-06-01");
    w->set_notes("Borehole " + std::to_string(i) + ", recorded offline, synced over a poor link.");
    return r;
  }

  void Create(Device& d, int n) {
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<v1::Record> r = d.client->CreateRecord(Well(next_record_++));
      ASSERT_OK(r);
      d.created.push_back(r->id());
    }
  }

  void HqCreates(int n) {
    for (int i = 0; i < n; ++i) {
      v1::CreateRecordRequest req;
      *req.mutable_record() = Well(next_record_++);
      v1::Record out;
      grpc::Status s = hq_->tracker().CreateRecord(hq_->Ctx().get(), req, &out);
      ASSERT_TRUE(s.ok()) << s.error_message();
      ++hq_created_;
    }
  }

  static void NoteSync(Device& d, const absl::StatusOr<client::SyncProgress>& done) {
    if (done.ok()) {
      ++d.syncs_ok;
      return;
    }
    ++d.syncs_failed;
    if (!LinkFailure(done.status()) && d.unexpected.empty()) {
      d.unexpected = done.status().ToString();
    }
  }

  void ClearFaults() {
    proxy_->BlackHole(false);
    proxy_->SetLatency(absl::ZeroDuration());
    proxy_->SetBandwidth(0, 0);
    proxy_->CutRandomly(0, 0, 0);
    proxy_->CutAfter(0);
  }

  // Faults off; every device syncs until it succeeds, twice round (the second pass pulls what
  // the others pushed in the first); then nothing is lost or doubled and all converge.
  void SettleAndVerify(const std::vector<Device*>& devices) {
    ClearFaults();
    for (int pass = 0; pass < 2; ++pass) {
      for (Device* d : devices) {
        absl::Status last;
        bool ok = false;
        for (int attempt = 0; attempt < 20 && !ok; ++attempt) {
          absl::StatusOr<client::SyncProgress> done = d->client->Sync();
          ok = done.ok();
          if (!ok) last = done.status();
        }
        EXPECT_TRUE(ok) << d->name << " could not sync on a clean link: " << last;
      }
    }
    int64_t total = hq_created_;
    std::vector<client::Client*> clients;
    for (Device* d : devices) {
      SCOPED_TRACE(d->name);
      EXPECT_EQ(d->unexpected, "") << "an error that is not a link failure";
      ASSERT_OK_AND_ASSIGN(client::ClientStatus st, d->client->Status());
      lost_or_doubled_ +=
          testing::ExpectExactlyOnce(server_.db_path(), d->device_id, d->created,
                                     st.last_device_seq);
      total += static_cast<int64_t>(d->created.size());
      clients.push_back(d->client.get());
    }
    EXPECT_EQ(testing::QueryInt(server_.db_path(), "SELECT COUNT(*) FROM records"), total)
        << "the server holds records nobody created, or lost some";
    testing::ExpectConverged(server_.db_path(), partner_.id(), clients);
  }

  uint32_t seed_ = 0;
  std::mt19937 rng_;
  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::unique_ptr<testing::Hq> hq_;
  std::unique_ptr<testing::TcpProxy> proxy_;
  v1::Partner partner_;
  v1::Project project_;
  ClientOptions options_;
  int next_record_ = 0;
  int64_t hq_created_ = 0;
  int lost_or_doubled_ = 0;
};

// 300 ms each way and EDGE bandwidth: three devices push and pull at once, every sync completes.
TEST_F(NetworkFaultTest, EdgeLinkWithLatencySyncsEverything) {
  std::vector<std::unique_ptr<Device>> devices;
  for (int i = 0; i < 3; ++i) devices.push_back(NewDevice("edge" + std::to_string(i)));
  for (auto& d : devices) ASSERT_TRUE(d->client);
  HqCreates(30);
  for (auto& d : devices) Create(*d, 15);

  proxy_->SetLatency(absl::Milliseconds(300));
  proxy_->SetBandwidth(kEdgeUpBytesPerS, kEdgeDownBytesPerS);
  proxy_->ResetCounters();
  auto start = Clock::now();
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<std::thread> threads;
    for (auto& d : devices) {
      threads.emplace_back([&d] {
        absl::StatusOr<client::SyncProgress> done = d->client->Sync();
        EXPECT_OK(done) << d->name;
        NoteSync(*d, done);
      });
    }
    for (auto& t : threads) t.join();
  }
  double s = Seconds(Clock::now() - start);
  std::printf("edge link: 2 passes of 3 concurrent syncs in %.1f s, %lld bytes up, %lld down\n",
              s, static_cast<long long>(proxy_->bytes_to_server()),
              static_cast<long long>(proxy_->bytes_to_client()));
  // The throttle really applied: the bytes moved could not have crossed faster.
  EXPECT_GE(s, static_cast<double>(proxy_->bytes_to_client()) / kEdgeDownBytesPerS / 3);
  std::vector<Device*> all;
  for (auto& d : devices) all.push_back(d.get());
  SettleAndVerify(all);
  EXPECT_EQ(lost_or_doubled_, 0);
}

// A link that drops every ~6 KB (each connection dies after 5.5 to 6.5 KB, either way): one
// Push of a 100-record outbox is larger than that, so it never got through, however often it
// was retried. The client halves its batch after each cut until batches fit, and grows it again
// after successes; the whole outbox arrives, once.
TEST_F(NetworkFaultTest, PushBatchesShrinkToWhatALinkCutEverySixKilobytesCarries) {
  std::unique_ptr<Device> d = NewDevice("flaky");
  ASSERT_TRUE(d->client);
  // Records with notes that gzip cannot shrink much (as field notes with numbers and names
  // are): 100 of them make a Push of well over 6 KB on the wire.
  for (int i = 0; i < 100; ++i) {
    v1::Record r = Well(next_record_++);
    std::string notes;
    for (int c = 0; c < 240; ++c) notes.push_back("0123456789abcdef"[rng_() % 16]);
    r.mutable_well()->set_notes(notes);
    ASSERT_OK_AND_ASSIGN(v1::Record created, d->client->CreateRecord(r));
    d->created.push_back(created.id());
  }
  proxy_->CutRandomly(1.0, 5500, 6500);
  proxy_->CutAll();  // the device's open connection too: every connection from now on is cut
  int syncs = 0;
  int64_t acked = 0, last = 0;
  for (; syncs < 4; ++syncs) {
    NoteSync(*d, d->client->Sync());
    ASSERT_OK_AND_ASSIGN(client::ClientStatus st, d->client->Status());
    acked = st.acked_device_seq;
    last = st.last_device_seq;
    if (acked == last) break;
  }
  std::printf("cut every ~6 KB: %lld of %lld changes acknowledged after %d sync(s), %d cuts\n",
              static_cast<long long>(acked), static_cast<long long>(last), syncs + 1,
              proxy_->cuts());
  EXPECT_EQ(acked, last) << "the outbox did not get through a link cut every ~6 KB";
  EXPECT_GT(proxy_->cuts(), 0) << "the link was never cut: the test proves nothing";
  SettleAndVerify({d.get()});
  EXPECT_EQ(lost_or_doubled_, 0);
}

// The link dropping inside the very first bytes of a connection — the HTTP/2 client preface (24
// bytes), the first SETTINGS frames, the first request's headers — must be recovered like any
// other cut (this once exhausted the retry budget; docs/RELIABILITY.md).
TEST_F(NetworkFaultTest, CutInsideTheHttp2PrefaceIsRecovered) {
  std::unique_ptr<Device> enrolled = NewDevice("preface");
  ASSERT_TRUE(enrolled->client);
  const std::string path = enrolled->path;
  std::vector<std::string> created;
  std::string device_id = enrolled->device_id;
  enrolled.reset();
  for (int64_t cut : {1, 8, 23, 24, 30, 40, 45, 60, 90}) {
    SCOPED_TRACE("cut at byte " + std::to_string(cut));
    // A fresh Client: a fresh channel, whose first connection is the one cut.
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> device, Client::Open(path, options_));
    for (int i = 0; i < 3; ++i) {
      ASSERT_OK_AND_ASSIGN(v1::Record r, device->CreateRecord(Well(next_record_++)));
      created.push_back(r.id());
    }
    int cuts = proxy_->cuts();
    proxy_->CutNextAfter(cut);
    auto start = Clock::now();
    absl::StatusOr<client::SyncProgress> done = device->Sync();
    EXPECT_OK(done) << "after " << Seconds(Clock::now() - start) << " s";

    EXPECT_GT(proxy_->cuts(), cuts) << "the link was not cut";
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> device, Client::Open(path, options_));
  ASSERT_OK(device->Sync());
  ASSERT_OK_AND_ASSIGN(client::ClientStatus st, device->Status());
  EXPECT_EQ(testing::ExpectExactlyOnce(server_.db_path(), device_id, created, st.last_device_seq),
            0);
}

// A black hole: nothing comes back. The app must stay in control.
TEST_F(NetworkFaultTest, BlackHoleKeepsTheAppResponsive) {
  ClientOptions impatient = options_;
  impatient.call_timeout_ms = 1000;
  impatient.retry.initial_backoff_ms = 50;
  impatient.retry.max_backoff_ms = 200;
  impatient.retry.max_attempts = 3;
  std::unique_ptr<Device> a = NewDevice("a", impatient);
  std::unique_ptr<Device> b = NewDevice("b");
  ASSERT_TRUE(a->client && b->client);
  ASSERT_OK(a->client->Sync());
  ASSERT_OK(b->client->Sync());
  Create(*a, 5);
  Create(*b, 5);

  proxy_->BlackHole(true);
  // 1. Sync() gives up within its own budget: 3 attempts of at most 1 s each, with backoffs of
  // at most 200 ms between them.
  const double budget_s = 3 * 1.0 + 3 * 0.2;
  auto start = Clock::now();
  absl::StatusOr<client::SyncProgress> done = a->client->Sync();
  double took = Seconds(Clock::now() - start);
  ASSERT_FALSE(done.ok());
  EXPECT_TRUE(LinkFailure(done.status())) << done.status();
  EXPECT_LE(took, budget_s + 1.0) << "Sync() overran its deadlines: " << done.status();
  std::printf("black hole: Sync() gave up after %.2f s (budget %.1f s): %s\n", took, budget_s,
              done.status().ToString().c_str());

  // 2. While a patient Sync() hangs on the black hole, local writes and reads go on, and
  // Cancel() from another thread stops the sync at once.
  std::atomic<bool> running{true};
  absl::Status b_result;
  std::thread sync_thread([&] {
    absl::StatusOr<client::SyncProgress> r = b->client->Sync();
    b_result = r.status();
    running = false;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(v1::Record r, b->client->CreateRecord(Well(next_record_++)));
    b->created.push_back(r.id());
    ASSERT_OK(b->client->GetRecord(r.id()));
  }
  EXPECT_TRUE(running) << "the sync ended by itself; the writes above did not overlap it";
  auto cancel_at = Clock::now();
  b->client->Cancel();
  sync_thread.join();
  double cancel_s = Seconds(Clock::now() - cancel_at);
  EXPECT_EQ(b_result.code(), absl::StatusCode::kCancelled) << b_result;
  EXPECT_LE(cancel_s, 1.0) << "Cancel() took " << cancel_s << " s to stop the sync";
  std::printf("black hole: Cancel() stopped a hanging Sync() in %.3f s\n", cancel_s);

  // 3. A hole that closes by itself within the call deadline is ridden out: the sync completes.
  proxy_->BlackHole(false);
  proxy_->BlackHoleFor(absl::Milliseconds(1500));
  start = Clock::now();
  EXPECT_OK(b->client->Sync());
  std::printf("black hole of 1.5 s ridden out: Sync() completed in %.2f s\n",
              Seconds(Clock::now() - start));

  SettleAndVerify({a.get(), b.get()});
  EXPECT_EQ(lost_or_doubled_, 0);
}

// A push stuck in the network: its bytes reach the server only after the device gave up on it
// and pushed the same changes again on a new connection. The late copy must not be applied a
// second time — the server's (device_id, device_seq) check is what stops it.
TEST_F(NetworkFaultTest, ALatePushDeliveredAfterItsRetryIsNotAppliedTwice) {
  ClientOptions quick = options_;
  quick.call_timeout_ms = 1000;
  std::unique_ptr<Device> d = NewDevice("late", quick);
  ASSERT_TRUE(d->client);
  Create(*d, 5);
  bool held = false;
  // Hold the first push's request in the network: the device's open connection forwards
  // nothing more to the server.
  absl::StatusOr<client::SyncProgress> done =
      d->client->Sync([&](const client::SyncProgress& p) {
        if (p.phase == client::SyncPhase::kPush && !held) {
          proxy_->HoldOpenConnectionsUpstream();
          held = true;
        }
      });
  ASSERT_OK(done) << "the retry on a fresh connection should have pushed";
  EXPECT_GE(done->retries, 1) << "the held push did not time out: nothing was held";
  const std::string device = "'" + d->device_id + "'";
  EXPECT_EQ(testing::QueryInt(server_.db_path(),
                              "SELECT COUNT(*) FROM change_log WHERE device_id = " + device),
            5);
  // The held copy arrives now, late.
  proxy_->ReleaseHeld();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(testing::QueryInt(server_.db_path(),
                              "SELECT COUNT(*) FROM change_log WHERE device_id = " + device),
            5)
      << "the late copy of the push was applied again";
  SettleAndVerify({d.get()});
  EXPECT_EQ(lost_or_doubled_, 0);
}

// Rounds of random faults — latency, EDGE bandwidth, random cuts, black holes — while three
// devices write and sync at once and HQ writes too.
TEST_F(NetworkFaultTest, MixedFaultsLoseAndDuplicateNothing) {
  const int rounds = std::max(1, EnvInt("FIELDSYNC_FAULT_ROUNDS", 5));
  ClientOptions options = options_;
  options.call_timeout_ms = 3000;
  options.retry.max_attempts = 6;
  options.retry.max_backoff_ms = 300;
  std::vector<std::unique_ptr<Device>> devices;
  for (int i = 0; i < 3; ++i) devices.push_back(NewDevice("mix" + std::to_string(i), options));
  for (auto& d : devices) ASSERT_TRUE(d->client);

  int latency_rounds = 0, throttled_rounds = 0, cut_rounds = 0, black_holes = 0;
  auto start = Clock::now();
  for (int round = 0; round < rounds; ++round) {
    ClearFaults();
    const bool latency = rng_() % 2 == 0, throttle = rng_() % 3 == 0, cuts = rng_() % 2 == 0,
               hole = rng_() % 4 == 0;
    if (latency) {
      proxy_->SetLatency(absl::Milliseconds(20 + rng_() % 180));
      ++latency_rounds;
    }
    if (throttle) {
      proxy_->SetBandwidth(kEdgeUpBytesPerS, kEdgeDownBytesPerS);
      ++throttled_rounds;
    }
    if (cuts) {
      proxy_->CutRandomly(0.3 + (rng_() % 5) / 10.0, 1, 1 + rng_() % 8000);
      proxy_->CutAll();  // the open connections go too: their replacements may die at any byte
      ++cut_rounds;
    }
    HqCreates(static_cast<int>(rng_() % 4));
    std::vector<uint32_t> seeds;
    for (size_t i = 0; i < devices.size(); ++i) seeds.push_back(rng_());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < devices.size(); ++i) {
      Device* d = devices[i].get();
      int first = next_record_;
      next_record_ += 100;
      threads.emplace_back([this, d, seed = seeds[i], first] {
        std::mt19937 r(seed);
        int writes = 1 + static_cast<int>(r() % 8);
        for (int w = 0; w < writes; ++w) {
          if (!d->created.empty() && r() % 4 == 0) {
            absl::StatusOr<v1::Record> rec = d->client->GetRecord(d->created[r() % d->created.size()]);
            if (!rec.ok()) continue;
            rec->mutable_well()->set_population_served(rec->well().population_served() % 5000 + 1);
            if (d->client->UpdateRecord(*rec).ok()) ++d->updates;
            continue;
          }
          absl::StatusOr<v1::Record> rec = d->client->CreateRecord(Well(first + w));
          if (rec.ok()) d->created.push_back(rec->id());
        }
        NoteSync(*d, d->client->Sync());
      });
    }
    if (hole) {
      std::this_thread::sleep_for(std::chrono::milliseconds(rng_() % 400));
      proxy_->BlackHoleFor(absl::Milliseconds(300 + rng_() % 1500));
      ++black_holes;
    }
    for (auto& t : threads) t.join();
  }
  const double loop_s = Seconds(Clock::now() - start);
  std::vector<Device*> all;
  int64_t records = 0, updates = 0, ok = 0, failed = 0;
  for (auto& d : devices) {
    all.push_back(d.get());
    records += static_cast<int64_t>(d->created.size());
    updates += d->updates;
    ok += d->syncs_ok;
    failed += d->syncs_failed;
  }
  const int cuts = proxy_->cuts(), connections = proxy_->connections();
  SettleAndVerify(all);
  EXPECT_EQ(lost_or_doubled_, 0);
  std::printf(
      "mixed faults: %d rounds in %.1f s (seed %u): latency in %d, EDGE throttle in %d, random "
      "cuts in %d (%d connections cut of %d), %d black holes; %lld records and %lld updates from "
      "%zu devices, %lld by HQ; syncs %lld completed, %lld failed (and retried later); lost or "
      "doubled: %d\n",
      rounds, loop_s, seed_, latency_rounds, throttled_rounds, cut_rounds, cuts, connections,
      black_holes, static_cast<long long>(records), static_cast<long long>(updates),
      devices.size(), static_cast<long long>(hq_created_), static_cast<long long>(ok),
      static_cast<long long>(failed), lost_or_doubled_);
}

}  // namespace
}  // namespace fieldsync
