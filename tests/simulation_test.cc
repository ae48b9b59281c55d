// A deterministic simulation of the whole system (issue 13, "Test the protocol as the field does"):
// field devices of several partners (the client library, each with its own SQLite store, some
// sharing one device identity after a re-enrollment or as a byte copy of another's store), HQ
// writing through TrackerService, a real fieldsyncd that is SIGKILLed, restarted, restored from a
// backup and runs out of disk, links that cut, delay, black-hole, duplicate (a lost Push response,
// re-sent) and reorder (a request held in the network and delivered after its retry), device clocks
// a year off and jumping, concurrent edits that together break a cross-field rule (a well's static
// water level must not exceed its drilled depth), revoked tokens and devices whose storage is full.
//
// Every decision is drawn from one std::mt19937_64 seeded from FIELDSYNC_SIM_SEED (or at random;
// printed at the start and in every failure), and actions run one at a time, so a seed replays
// the same run (thread timing inside gRPC and the proxies aside). A reference model records every
// edit that succeeded locally (writer, document, field path, value). After the run the links heal,
// the server gets its disk back, and every store syncs until its outbox is empty or a bounded
// number of rounds passed; then these invariants are checked (docs/RELIABILITY.md, "Simulation"):
//
//   lost       every edit ever made is on the server (a change-log entry holds its value: it won,
//              or it lost a merge and is kept as a loser) or in the server's rejection log;
//              edits a restore legitimately forgot (HQ writes after the backup; a device's
//              value it overwrote itself before the restore) are counted, not failed;
//   blocked    every store's outbox is empty after the final syncs;
//   converged  every store of a partner holds the server's scope checksum and the same documents;
//   scope      no store holds a project or record of another partner;
//   chain      ReportService.VerifyAuditChain says ok.
//
// Findings are collected, not asserted one by one: the test fails once at the end with the seed
// and every finding named by its invariant.
//
//   FIELDSYNC_SIM_SEED=N      replay one run
//   FIELDSYNC_SIM_ROUNDS=N    actions per run (default 600; 300 under FIELDSYNC_SANITIZER_BUILD)
//   FIELDSYNC_SIM_SECONDS=S   stop the action loop after S seconds (default 90)
//   FIELDSYNC_SIM_RUNS=N      independent runs, seeds seed, seed+1, ... (default 1)
//
// A long local run: FIELDSYNC_SIM_ROUNDS=100000 FIELDSYNC_SIM_SECONDS=0 (0: no time bound).
//
// Some invariants depend on server and client behaviour planned in issue 13 (a rejection log,
// rules broken by a merge flagged instead of refused, one sequence space per store, a revoked
// store re-enrolling with its outbox). The few places that touch those are the helpers
// ServerRejections, DeviceRejections and ReEnrollKeepingOutbox below.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fieldsync/client.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/sync/hlc.h"
#include "fieldsync/v1/report.grpc.pb.h"
#include "fieldsync/v1/sync.pb.h"
#include "tests/testing/device_checks.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_db.h"

namespace fieldsync {
namespace {

namespace v1 = ::fieldsync::v1;
using client::Client;
using client::ClientOptions;
using SteadyClock = std::chrono::steady_clock;

constexpr int64_t kYearMs = 365LL * 24 * 3600 * 1000;
constexpr int kPartners = 3;
constexpr int kDevicesPerPartner[kPartners] = {3, 2, 1};
// Stores that may be added by re-enrolling an existing device identity.
constexpr int kMaxExtraStores = 4;

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoll(v, nullptr, 10);
}

// --- Behaviour planned in issue 13, behind small helpers ----------------------------------------

// One change the server refused and kept (table `rejections`, planned): who sent it and the
// change as received.
struct ServerRejection {
  std::string device_id;
  std::string collection;
  std::string doc_id;
  v1::Change change;
};

// The server's rejection log, read behind its back; empty while the table does not exist.
std::vector<ServerRejection> ServerRejections(const std::string& db) {
  std::vector<ServerRejection> out;
  if (testing::QueryInt(db,
                        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'rejections'") != 1) {
    return out;
  }
  absl::StatusOr<std::vector<testing::SqlRow>> rows =
      testing::QueryRows(db, "SELECT device_id, collection, doc_id, change FROM rejections");
  if (!rows.ok()) {
    ADD_FAILURE() << "reading the rejection log: " << rows.status();
    return out;
  }
  for (const testing::SqlRow& row : *rows) {
    ServerRejection r;
    r.device_id = row[0].value_or("");
    r.collection = row[1].value_or("");
    r.doc_id = row[2].value_or("");
    r.change.ParseFromString(row[3].value_or(""));
    out.push_back(std::move(r));
  }
  return out;
}

// Changes the device moved out of its outbox into its local rejection list
// (Client::Rejections()); empty if it cannot be read.
std::vector<client::Rejection> DeviceRejections(Client& c) {
  absl::StatusOr<std::vector<client::Rejection>> r = c.Rejections();
  return r.ok() ? *std::move(r) : std::vector<client::Rejection>();
}

// A store whose token was revoked re-enrolls with a new code and keeps its outbox (planned:
// Client::Enroll on the path of an enrolled store whose token no longer works). Replaces
// `*client` with the re-enrolled store; on failure reopens the old one and returns the error
// (today: FAILED_PRECONDITION, the path already holds an enrolled device).
absl::Status ReEnrollKeepingOutbox(std::unique_ptr<Client>* client, const std::string& path,
                                   const ClientOptions& options, const std::string& code) {
  absl::StatusOr<client::ClientStatus> st = (*client)->Status();
  if (!st.ok()) return st.status();
  client->reset();
  absl::StatusOr<std::unique_ptr<Client>> again =
      Client::Enroll(st->server_address, code, path, options);
  if (again.ok()) {
    *client = *std::move(again);
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<Client>> old = Client::Open(path, options);
  if (!old.ok()) return old.status();
  *client = *std::move(old);
  return again.status();
}

// --- The simulated world -----------------------------------------------------------------------

// One local store (a phone or a restored copy of one): its own file, link and clock.
struct Store {
  std::string name;
  int partner = 0;
  std::string device_id;
  std::string path;
  std::unique_ptr<testing::TcpProxy> link;
  std::unique_ptr<Client> client;
  ClientOptions options;
  // The device's clock error, milliseconds; read by its physical_clock_ms.
  std::atomic<int64_t> skew_ms{0};
  // Push responses the "network" loses next (the push is applied; the device re-sends it).
  std::atomic<int> lose_push_responses{0};
  bool revoked = false;
  bool capped = false;  // its storage is (nearly) full
  int64_t capped_until = 0;
  bool held = false;  // requests held in the link, released after the next sync
  int64_t syncs_ok = 0, syncs_failed = 0;
  std::map<std::string, int64_t> sync_errors;  // code name -> count
};

// One edit the model knows was made (a local write that succeeded, or an HQ call that did).
struct Edit {
  std::string writer;     // store name, or "hq"
  std::string writer_id;  // device id, or "" for HQ
  std::string doc_id;
  std::string path;
  std::string value;
  int64_t round = 0;
  int restores_before = 0;  // restores that happened before the edit
  // Written on the server after the backup a later restore went back to (HQ's writes: no
  // device holds them to re-send).
  bool after_restored_backup = false;
};

std::string Hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

// An error message without its ids and numbers, to count refusals by kind.
std::string Reason(absl::string_view message) {
  size_t at = message.rfind("changes[");
  if (at != absl::string_view::npos) message = message.substr(at);
  std::string out;
  for (char c : message.substr(0, 200)) {
    if (c < '0' || c > '9') {
      out.push_back(c);
    } else if (out.empty() || out.back() != '#') {
      out.push_back('#');
    }
  }
  return out;
}

// fieldsyncd's flags in every run. Every caller here shares 127.0.0.1, so the per-address limit
// on failed authentications (a revoked store retrying) would throttle HQ too: it is raised out of
// the way (its own test is tests/hostile_input_test.cc).
std::vector<std::string> BaseServerArgs() {
  return {"--synchronous",        "NORMAL", "--auth-failures-per-minute", "1000000",
          "--auth-failure-burst", "1000000"};
}

// HQ's call context; waits for the channel to reconnect after a server restart rather than fail
// at once.
std::unique_ptr<grpc::ClientContext> HqCtx(testing::Hq& hq) {
  std::unique_ptr<grpc::ClientContext> ctx = hq.Ctx();
  ctx->set_wait_for_ready(true);
  return ctx;
}

class Simulation {
 public:
  explicit Simulation(uint64_t seed) : seed_(seed), rng_(seed) {}

  void Run(int64_t rounds, int64_t seconds);
  // What the run found, by invariant; empty when every invariant held.
  const std::vector<std::string>& findings() const { return findings_; }
  std::string Summary() const;

 private:
  // Draws.
  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <typename T>
  T& Pick(std::vector<T>& v) {
    return v[static_cast<size_t>(Uniform(0, static_cast<int64_t>(v.size()) - 1))];
  }

  std::unique_ptr<grpc::ClientContext> HqCtx() { return fieldsync::HqCtx(*hq_); }

  void Finding(const std::string& invariant, const std::string& detail) {
    ++finding_counts_[invariant];
    if (finding_counts_[invariant] <= 8) findings_.push_back(invariant + ": " + detail);
  }

  void Setup();
  // Enrolls a new store with `code`; the enrollment's error if it fails.
  absl::StatusOr<Store*> NewStore(int partner, const std::string& code,
                                  const std::string& device_id);
  ClientOptions OptionsFor(Store* s);
  absl::Status Reopen(Store& s, int64_t max_store_bytes);

  // Actions.
  void Step();
  void DeviceCreates(Store& s);
  void DeviceUpdates(Store& s);
  void DeviceDeletes(Store& s);
  void DeviceSyncs(Store& s);
  void HqUpdates();
  void ConcurrentRuleBreak();
  void HqCreates();
  void LinkFault(Store& s);
  void ClockFault(Store& s);
  void KillServer();
  void TakeBackup();
  void RestoreBackup();
  void ServerDiskFull(bool full);
  void DeviceDiskFull(Store& s);
  void Revoke(Store& s);
  void ReEnrollIdentity(Store& s);
  void CopyStore(Store& s);

  // Quiescence and the checks.
  void Quiesce();
  void CheckNothingLost();
  void CheckOutboxes();
  void CheckConvergence();
  void CheckScope();
  void CheckChain();

  absl::Status RestartServer(const std::vector<std::string>& args);
  void RecordEdits(const std::string& writer, const std::string& writer_id,
                   const std::string& doc_id, const sync::FieldValues& before,
                   const sync::FieldValues& after);
  static sync::FieldValues FieldsOf(v1::Record r) {
    sync::ClearOutputOnly(&r);
    r.clear_id();
    return sync::Flatten(r);
  }
  v1::Record Well(int partner);

  uint64_t seed_;
  std::mt19937_64 rng_;
  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::unique_ptr<testing::Hq> hq_;
  std::vector<std::string> partner_ids_;
  std::vector<std::string> project_ids_;  // one WELL project per partner
  std::vector<std::unique_ptr<Store>> stores_;
  std::vector<Edit> edits_;
  // Records HQ knows of (created anywhere), by partner.
  std::vector<std::vector<std::string>> records_;
  int64_t round_ = 0;
  int next_well_ = 0;
  int restores_ = 0;
  int extra_stores_ = 0;
  int next_store_ = 0;  // numbers store names (and files)
  bool server_full_ = false;
  int64_t server_full_until_ = 0;
  std::vector<std::string> server_args_ = BaseServerArgs();
  std::string backup_path_;
  size_t edits_at_backup_ = 0;
  std::vector<std::string> findings_;
  std::map<std::string, int64_t> finding_counts_;
  std::map<std::string, int64_t> stats_;
  // FIELDSYNC_SIM_VERBOSE: print every action, edit and sync.
  const bool verbose_ = std::getenv("FIELDSYNC_SIM_VERBOSE") != nullptr;
};

ClientOptions Simulation::OptionsFor(Store* s) {
  ClientOptions o;
  o.call_timeout_ms = 2500;
  o.sync_timeout_ms = 12000;
  o.retry.initial_backoff_ms = 10;
  o.retry.max_backoff_ms = 200;
  o.retry.max_attempts = 4;
  o.pull_page_size = 25;
  o.physical_clock_ms = [s] { return sync::SystemClockMs() + s->skew_ms.load(); };
  o.fault_injector_for_testing = [s](absl::string_view rpc) -> absl::Status {
    if (rpc == "Push" && s->lose_push_responses.load() > 0) {
      --s->lose_push_responses;
      return absl::UnavailableError("simulation: the Push response was lost");
    }
    return absl::OkStatus();
  };
  return o;
}

absl::StatusOr<Store*> Simulation::NewStore(int partner, const std::string& code,
                                            const std::string& device_id) {
  auto s = std::make_unique<Store>();
  s->partner = partner;
  s->device_id = device_id;
  s->name = absl::StrCat("p", partner, "-s", next_store_++);
  s->path = dir_.File(s->name + ".db");
  s->link = std::make_unique<testing::TcpProxy>(server_.address());
  s->link->SetSeed(static_cast<uint32_t>(Uniform(0, 1 << 30)));
  EXPECT_OK(s->link->Start());
  s->options = OptionsFor(s.get());
  absl::StatusOr<std::unique_ptr<Client>> c =
      Client::Enroll(s->link->address(), code, s->path, s->options);
  if (!c.ok()) return c.status();
  s->client = *std::move(c);
  stores_.push_back(std::move(s));
  return stores_.back().get();
}

absl::Status Simulation::Reopen(Store& s, int64_t max_store_bytes) {
  s.client.reset();
  s.options.max_store_bytes = max_store_bytes;
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Open(s.path, s.options);
  if (!c.ok()) return c.status();
  s.client = *std::move(c);
  return absl::OkStatus();
}

void Simulation::Setup() {
  server_.UseSqlite();  // backups and --max-db-mb are SQLite's
  ASSERT_OK(server_.Start(dir_.path(), server_args_));
  hq_ = std::make_unique<testing::Hq>(server_.Channel(), server_.admin_token());
  const char* countries[kPartners] = {"KE", "UG", "TZ"};
  records_.resize(kPartners);
  for (int p = 0; p < kPartners; ++p) {
    partner_ids_.push_back(hq_->CreatePartner(absl::StrCat("Partner ", p), {countries[p]}).id());
    project_ids_.push_back(
        hq_->CreateProject(partner_ids_[p], v1::PROJECT_KIND_WELL, countries[p], "Wells").id());
    for (int d = 0; d < kDevicesPerPartner[p]; ++d) {
      std::string device_id;
      std::string code =
          hq_->EnrollmentCode(partner_ids_[p], absl::StrCat("tablet ", p, d), &device_id);
      absl::StatusOr<Store*> enrolled = NewStore(p, code, device_id);
      ASSERT_OK(enrolled);
      Store* s = *enrolled;
      ASSERT_OK(s->client->Sync()) << s->name << ": first sync";
    }
  }
}

v1::Record Simulation::Well(int partner) {
  int i = next_well_++;
  v1::Record r;
  r.set_project_id(project_ids_[partner]);
  v1::WellRecord* w = r.mutable_well();
  w->set_drilled_depth_m(static_cast<double>(Uniform(40, 90)));
  w->set_static_water_level_m(static_cast<double>(Uniform(5, 15)));
  w->set_yield_lph(static_cast<double>(Uniform(500, 3000)));
  w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
  w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
  w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
  w->set_population_served(static_cast<int32_t>(Uniform(50, 900)));
  w->set_visit_date("2026-06-01");
  w->set_notes(absl::StrCat("well ", i));
  return r;
}

void Simulation::RecordEdits(const std::string& writer, const std::string& writer_id,
                             const std::string& doc_id, const sync::FieldValues& before,
                             const sync::FieldValues& after) {
  for (const auto& [path, value] : sync::Diff(before, after)) {
    if (verbose_) {
      std::printf("  edit #%zu by %s: %s %s = %s\n", edits_.size(), writer.c_str(), doc_id.c_str(),
                  path.c_str(), Hex(value).c_str());
    }
    edits_.push_back(Edit{writer, writer_id, doc_id, path, value, round_, restores_, false});
  }
}

absl::Status Simulation::RestartServer(const std::vector<std::string>& args) {
  server_args_ = args;
  if (server_.pid() > 0) kill(server_.pid(), SIGKILL);
  return server_.Restart(args);
}

// --- Actions -----------------------------------------------------------------------------------

void Simulation::DeviceCreates(Store& s) {
  absl::StatusOr<v1::Record> r = s.client->CreateRecord(Well(s.partner));
  if (!r.ok()) {
    ++stats_[absl::StrCat("local create refused: ", absl::StatusCodeToString(r.status().code()))];
    return;
  }
  RecordEdits(s.name, s.device_id, r->id(), {}, FieldsOf(*r));
  records_[s.partner].push_back(r->id());
  ++stats_["device creates"];
}

// A record this store shows, at random; false if it shows none.
bool PickLocalRecord(Client& c, std::mt19937_64& rng, v1::Record* out) {
  v1::ListRecordsRequest req;
  req.set_page_size(1000);
  absl::StatusOr<v1::ListRecordsResponse> list = c.ListRecords(req);
  if (!list.ok() || list->records_size() == 0) return false;
  *out = list->records(
      static_cast<int>(std::uniform_int_distribution<int>(0, list->records_size() - 1)(rng)));
  return true;
}

// Changes one field of a well the way a field officer would. Depth and level are drawn so that
// two writers' valid edits often break "static_water_level_m <= drilled_depth_m" together.
void MutateWell(std::mt19937_64& rng, int64_t round, v1::Record* r) {
  static const double kDepths[] = {15, 20, 25, 35, 60, 80};
  static const double kLevels[] = {5, 10, 18, 30, 45};
  auto pick = [&rng](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  v1::WellRecord* w = r->mutable_well();
  switch (pick(7)) {
    case 0:
    case 1:
      w->set_drilled_depth_m(kDepths[pick(6)]);
      break;
    case 2:
    case 3:
      w->set_static_water_level_m(kLevels[pick(5)]);
      break;
    case 4:
      w->set_yield_lph(100 + pick(4000));
      break;
    case 5:
      w->set_population_served(10 + pick(2000));
      break;
    default:
      w->set_notes(absl::StrCat("visited in round ", round));
  }
}

void Simulation::DeviceUpdates(Store& s) {
  v1::Record r;
  if (!PickLocalRecord(*s.client, rng_, &r)) return;
  const sync::FieldValues before = FieldsOf(r);
  MutateWell(rng_, round_, &r);
  absl::StatusOr<v1::Record> done = s.client->UpdateRecord(r);
  if (!done.ok()) {
    ++stats_[absl::StrCat("local update refused: ",
                          absl::StatusCodeToString(done.status().code()))];
    return;
  }
  RecordEdits(s.name, s.device_id, r.id(), before, FieldsOf(*done));
  ++stats_["device updates"];
}

void Simulation::DeviceDeletes(Store& s) {
  v1::Record r;
  if (!PickLocalRecord(*s.client, rng_, &r)) return;
  absl::Status done = s.client->DeleteRecord(r.id());
  if (!done.ok()) {
    ++stats_[absl::StrCat("local delete refused: ", absl::StatusCodeToString(done.code()))];
    return;
  }
  edits_.push_back(
      Edit{s.name, s.device_id, r.id(), sync::kDeletedPath, "\x01", round_, restores_, false});
  ++stats_["device deletes"];
}

void Simulation::DeviceSyncs(Store& s) {
  absl::StatusOr<client::SyncProgress> done = s.client->Sync();
  if (verbose_) {
    std::printf("  sync of %s: %s\n", s.name.c_str(),
                done.ok()
                    ? absl::StrCat("pushed ", done->changes_pushed, done->rebased ? " rebased" : "",
                                   " refused ", done->changes_refused)
                          .c_str()
                    : done.status().ToString().c_str());
  }
  if (done.ok() || done.status().code() == absl::StatusCode::kInternal ||
      done.status().code() == absl::StatusCode::kUnknown) {
    if (!done.ok()) {
      Finding("server", absl::StrCat(s.name, ": a sync answered ", done.status().ToString()));
    }
  }
  if (s.held) {
    s.link->ReleaseHeld();  // the held request arrives now, after its retry: reordered
    s.held = false;
  }
  if (done.ok()) {
    ++s.syncs_ok;
    return;
  }
  ++s.syncs_failed;
  ++s.sync_errors[absl::StatusCodeToString(done.status().code())];
  if (done.status().code() == absl::StatusCode::kInvalidArgument ||
      done.status().code() == absl::StatusCode::kFailedPrecondition) {
    ++stats_[absl::StrCat("sync refused: ", Reason(done.status().message()))];
  }
  if (done.status().code() == absl::StatusCode::kInvalidArgument) {
    ++stats_["syncs stopped by a refused change"];
    if (stats_["syncs stopped by a refused change"] == 1) {
      std::printf("  round %lld: %s: first refused change: %s\n", static_cast<long long>(round_),
                  s.name.c_str(), std::string(done.status().message()).c_str());
    }
  }
}

void Simulation::HqUpdates() {
  std::vector<std::string>& ids = records_[Uniform(0, kPartners - 1)];
  if (ids.empty()) return;
  v1::GetRecordRequest get;
  get.set_id(Pick(ids));
  v1::Record r;
  grpc::Status s = hq_->tracker().GetRecord(HqCtx().get(), get, &r);
  if (!s.ok()) {
    ++stats_[absl::StrCat("hq get failed: ", s.error_code())];
    return;
  }
  const sync::FieldValues before = FieldsOf(r);
  MutateWell(rng_, round_, &r);
  v1::UpdateRecordRequest update;
  *update.mutable_record() = r;
  v1::Record out;
  s = hq_->tracker().UpdateRecord(HqCtx().get(), update, &out);
  if (!s.ok()) {
    // Refused to HQ's face: HQ knows; not an edit that could be silently lost.
    ++stats_[absl::StrCat("hq update refused: code ", s.error_code())];
    return;
  }
  RecordEdits("hq", "", r.id(), before, FieldsOf(out));
  ++stats_["hq updates"];
}

// The issue's case, on purpose: one writer (a device or HQ) lowers a well's depth to just above
// its level, another device raises the level to just below the depth it sees. Each edit is valid
// alone; merged, "static_water_level_m <= drilled_depth_m" is broken. Then both sync.
void Simulation::ConcurrentRuleBreak() {
  const int p = static_cast<int>(Uniform(0, kPartners - 1));
  std::vector<Store*> live;
  for (auto& st : stores_) {
    if (st->partner == p && !st->revoked && st->client != nullptr) live.push_back(st.get());
  }
  const bool hq_first = Chance(0.3);
  if (live.size() < (hq_first ? 1u : 2u)) return;
  Store* b = Pick(live);
  v1::Record rb;
  if (!PickLocalRecord(*b->client, rng_, &rb)) return;
  // Writer A.
  Store* a = nullptr;
  if (!hq_first) {
    do {
      a = Pick(live);
    } while (a == b);
    absl::StatusOr<v1::Record> ra = a->client->GetRecord(rb.id());
    if (!ra.ok()) return;
    const sync::FieldValues before = FieldsOf(*ra);
    ra->mutable_well()->set_drilled_depth_m(ra->well().static_water_level_m() + 1);
    absl::StatusOr<v1::Record> done = a->client->UpdateRecord(*ra);
    if (!done.ok()) return;
    RecordEdits(a->name, a->device_id, ra->id(), before, FieldsOf(*done));
  } else {
    v1::GetRecordRequest get;
    get.set_id(rb.id());
    v1::Record ra;
    if (!hq_->tracker().GetRecord(HqCtx().get(), get, &ra).ok()) return;
    const sync::FieldValues before = FieldsOf(ra);
    ra.mutable_well()->set_drilled_depth_m(ra.well().static_water_level_m() + 1);
    v1::UpdateRecordRequest update;
    *update.mutable_record() = ra;
    v1::Record out;
    if (!hq_->tracker().UpdateRecord(HqCtx().get(), update, &out).ok()) return;
    RecordEdits("hq", "", ra.id(), before, FieldsOf(out));
  }
  // Writer B, who has not seen A's edit.
  const sync::FieldValues before = FieldsOf(rb);
  rb.mutable_well()->set_static_water_level_m(rb.well().drilled_depth_m() - 1);
  absl::StatusOr<v1::Record> done = b->client->UpdateRecord(rb);
  if (!done.ok()) return;
  RecordEdits(b->name, b->device_id, rb.id(), before, FieldsOf(*done));
  ++stats_[hq_first ? "rule broken by a merge (HQ and a device)"
                    : "rule broken by a merge (two devices)"];
  if (a != nullptr) DeviceSyncs(*a);
  DeviceSyncs(*b);
}

void Simulation::HqCreates() {
  const int p = static_cast<int>(Uniform(0, kPartners - 1));
  v1::CreateRecordRequest req;
  *req.mutable_record() = Well(p);
  v1::Record out;
  grpc::Status s = hq_->tracker().CreateRecord(HqCtx().get(), req, &out);
  if (!s.ok()) {
    ++stats_[absl::StrCat("hq create refused: code ", s.error_code())];
    return;
  }
  RecordEdits("hq", "", out.id(), {}, FieldsOf(out));
  records_[p].push_back(out.id());
  ++stats_["hq creates"];
}

void Simulation::LinkFault(Store& s) {
  testing::TcpProxy& link = *s.link;
  switch (Uniform(0, 7)) {
    case 0:  // the next connection dies at a byte
      link.CutNextAfter(Uniform(40, 6000));
      ++stats_["link: cut at a byte"];
      break;
    case 1:  // a flaky stretch
      link.CutRandomly(0.4, 1, 20000);
      ++stats_["link: random cuts on"];
      break;
    case 2:
      link.SetLatency(absl::Milliseconds(Uniform(5, 150)));
      ++stats_["link: latency"];
      break;
    case 3:
      link.BlackHoleFor(absl::Milliseconds(Uniform(200, 1500)));
      ++stats_["link: black hole"];
      break;
    case 4:  // duplicate: the push is applied, its answer lost, the device sends it again
      s.lose_push_responses = static_cast<int>(Uniform(1, 2));
      ++stats_["link: push responses lost"];
      break;
    case 5:  // reorder: what is sent now arrives after the retry that replaces it
      if (!s.held) {
        link.HoldOpenConnectionsUpstream();
        s.held = true;
        ++stats_["link: requests held"];
      }
      break;
    default:  // healed
      link.CutRandomly(0, 0, 0);
      link.CutNextAfter(0);
      link.SetLatency(absl::ZeroDuration());
      link.BlackHole(false);
      ++stats_["link: healed"];
  }
}

void Simulation::ClockFault(Store& s) {
  switch (Uniform(0, 3)) {
    case 0:
      s.skew_ms = kYearMs + Uniform(-3600000, 3600000);
      break;
    case 1:
      s.skew_ms = -kYearMs + Uniform(-3600000, 3600000);
      break;
    case 2:  // a jump, either way
      s.skew_ms += Uniform(-3 * 86400000LL, 3 * 86400000LL);
      break;
    default:
      s.skew_ms = 0;
  }
  ++stats_["clock changes"];
}

void Simulation::KillServer() {
  absl::Status s = RestartServer(server_args_);
  if (!s.ok()) Finding("server", absl::StrCat("restart after SIGKILL failed: ", s.ToString()));
  ++stats_["server SIGKILLs"];
}

void Simulation::TakeBackup() {
  std::string path = dir_.File(absl::StrCat("backup-", round_, ".db"));
  v1::BackupRequest req;
  req.set_path(path);
  v1::BackupResponse out;
  grpc::Status s = hq_->admin().Backup(HqCtx().get(), req, &out);
  if (!s.ok()) {
    ++stats_[absl::StrCat("backup failed: code ", s.error_code())];
    return;
  }
  backup_path_ = path;
  edits_at_backup_ = edits_.size();
  if (verbose_) std::printf("  backup taken after edit #%zu\n", edits_.size());
  ++stats_["backups"];
}

void Simulation::RestoreBackup() {
  if (backup_path_.empty()) return;
  if (server_.pid() > 0) kill(server_.pid(), SIGKILL);
  server_.Stop();  // reaps it
  testing::CommandResult restored = testing::RunCommand(
      {testing::FieldsyncdPath(), "--db", server_.db_path(), "--restore-from", backup_path_});
  if (restored.exit_code != 0) {
    Finding("server", absl::StrCat("--restore-from failed: ", restored.err));
  } else {
    ++restores_;
    if (verbose_) std::printf("  restored the backup taken after edit #%zu\n", edits_at_backup_);
    // HQ wrote these directly on the server after the backup: a restore forgets them.
    for (size_t i = edits_at_backup_; i < edits_.size(); ++i) {
      if (edits_[i].writer == "hq") edits_[i].after_restored_backup = true;
    }
    ++stats_["restores"];
  }
  server_full_ = false;
  server_args_ = BaseServerArgs();
  absl::Status s = server_.Restart(server_args_);
  if (!s.ok()) Finding("server", absl::StrCat("start after restore failed: ", s.ToString()));
  backup_path_.clear();
}

void Simulation::ServerDiskFull(bool full) {
  if (full == server_full_) return;
  std::vector<std::string> args = BaseServerArgs();
  if (full) {
    struct stat st;
    double mib = (stat(server_.db_path().c_str(), &st) == 0 ? st.st_size : 0) / 1048576.0;
    args.push_back("--max-db-mb");
    args.push_back(absl::StrCat(mib + 0.05));
  }
  absl::Status s = RestartServer(args);
  if (!s.ok()) Finding("server", absl::StrCat("restart with a disk cap failed: ", s.ToString()));
  server_full_ = full;
  server_full_until_ = round_ + Uniform(5, 40);
  ++stats_[full ? "server disk full" : "server disk freed"];
}

void Simulation::DeviceDiskFull(Store& s) {
  int64_t cap = 0;
  if (!s.capped) {
    struct stat st;
    cap = (stat(s.path.c_str(), &st) == 0 ? st.st_size : 0) + Uniform(0, 64 * 1024);
  }
  absl::Status reopened = Reopen(s, cap);
  if (!reopened.ok()) {
    Finding("device", absl::StrCat(s.name, ": reopening the store failed: ", reopened.ToString()));
    reopened = Reopen(s, 0);
    ASSERT_OK(reopened) << s.name << ": the store cannot be opened at all";
    cap = 0;
  }
  s.capped = cap != 0;
  s.capped_until = round_ + Uniform(5, 40);
  ++stats_[s.capped ? "device disk full" : "device disk freed"];
}

void Simulation::Revoke(Store& s) {
  v1::ListTokensRequest list;
  list.set_device_id(s.device_id);
  list.set_page_size(100);
  v1::ListTokensResponse tokens;
  grpc::Status st = hq_->admin().ListTokens(HqCtx().get(), list, &tokens);
  if (!st.ok()) {
    ++stats_[absl::StrCat("list tokens failed: code ", st.error_code())];
    return;
  }
  for (const v1::Token& t : tokens.tokens()) {
    if (t.has_revoked_at()) continue;
    v1::RevokeTokenRequest revoke;
    revoke.set_id(t.id());
    v1::Token out;
    st = hq_->admin().RevokeToken(HqCtx().get(), revoke, &out);
    if (!st.ok()) ++stats_[absl::StrCat("revoke failed: code ", st.error_code())];
  }
  // Every store of this identity has lost its credential.
  for (auto& other : stores_) {
    if (other->device_id == s.device_id) other->revoked = true;
  }
  ++stats_["revocations"];
}

std::string NewCodeFor(testing::Hq& hq, const std::string& device_id) {
  v1::CreateEnrollmentRequest req;
  req.set_device_id(device_id);
  v1::CreateEnrollmentResponse out;
  grpc::Status s;
  // The first call after a server restart may meet the old connection ("Socket closed").
  for (int attempt = 0; attempt < 5; ++attempt) {
    s = hq.admin().CreateEnrollment(HqCtx(hq).get(), req, &out);
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE) break;
  }
  EXPECT_TRUE(s.ok()) << s.error_message();
  return out.code();
}

void Simulation::ReEnrollIdentity(Store& s) {
  if (extra_stores_ >= kMaxExtraStores) return;
  // A new phone for the same device: a new store enrolled with a new code for the same
  // identity, while the old one keeps working.
  absl::StatusOr<Store*> enrolled = NewStore(s.partner, NewCodeFor(*hq_, s.device_id), s.device_id);
  if (!enrolled.ok()) {
    // A full disk refuses an enrollment whole (and says so): not a finding.
    if (enrolled.status().code() == absl::StatusCode::kResourceExhausted && server_full_) {
      ++stats_["enrollments refused on a full disk"];
    } else {
      Finding("device", absl::StrCat("re-enrolling the identity of ", s.name, ": ",
                                     enrolled.status().ToString()));
    }
    return;
  }
  Store* fresh = *enrolled;
  ++extra_stores_;
  // A fresh enrollment may carry a token the revocation did not reach.
  fresh->revoked = false;
  ++stats_["re-enrollments of an identity"];
}

// A phone restored from a backup of another's storage: a byte copy of the store (closed for the
// copy), opened beside the original. Both hold the same identity, sequence and server address
// (so the copy shares the original's link); both go on writing and syncing.
void Simulation::CopyStore(Store& s) {
  if (extra_stores_ >= kMaxExtraStores) return;
  auto copy = std::make_unique<Store>();
  copy->partner = s.partner;
  copy->device_id = s.device_id;
  copy->name = absl::StrCat("p", s.partner, "-s", next_store_++, "-copy-of-", s.name);
  copy->path = dir_.File(copy->name + ".db");
  copy->link = std::make_unique<testing::TcpProxy>(server_.address());  // unused: see above
  EXPECT_OK(copy->link->Start());
  copy->options = OptionsFor(copy.get());
  copy->revoked = s.revoked;
  const int64_t cap = s.options.max_store_bytes;
  s.client.reset();
  std::error_code error;
  std::filesystem::copy_file(s.path, copy->path, error);
  if (!error && std::filesystem::exists(s.path + "-wal")) {
    std::filesystem::copy_file(s.path + "-wal", copy->path + "-wal", error);
  }
  absl::Status reopened = Reopen(s, cap);
  ASSERT_OK(reopened) << s.name;
  if (error) {
    Finding("device", absl::StrCat("copying ", s.name, ": ", error.message()));
    return;
  }
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Open(copy->path, copy->options);
  if (!c.ok()) {
    Finding("device", absl::StrCat("opening a copy of ", s.name, ": ", c.status().ToString()));
    return;
  }
  copy->client = *std::move(c);
  stores_.push_back(std::move(copy));
  ++extra_stores_;
  ++stats_["stores copied (a phone restored from a backup)"];
}

void Simulation::Step() {
  ++round_;
  // A full disk lasts a few dozen rounds, then space returns.
  if (server_full_ && round_ >= server_full_until_) ServerDiskFull(false);
  for (auto& st : stores_) {
    if (st->capped && round_ >= st->capped_until) DeviceDiskFull(*st);
  }
  Store& s = *Pick(stores_);
  const int64_t r = Uniform(0, 999);
  if (s.client == nullptr) return;
  if (verbose_)
    std::printf("round %lld: %s draws %lld\n", static_cast<long long>(round_), s.name.c_str(),
                static_cast<long long>(r));
  if (r < 200) {
    DeviceCreates(s);
  } else if (r < 430) {
    DeviceUpdates(s);
  } else if (r < 460) {
    DeviceDeletes(s);
  } else if (r < 700) {
    DeviceSyncs(s);
  } else if (r < 760) {
    HqUpdates();
  } else if (r < 780) {
    HqCreates();
  } else if (r < 790) {
    ConcurrentRuleBreak();
  } else if (r < 880) {
    LinkFault(s);
  } else if (r < 920) {
    ClockFault(s);
  } else if (r < 935) {
    KillServer();
  } else if (r < 950) {
    TakeBackup();
  } else if (r < 955) {
    RestoreBackup();
  } else if (r < 960) {
    ServerDiskFull(true);
  } else if (r < 970) {
    DeviceSyncs(s);
  } else if (r < 985) {
    if (!s.capped) DeviceDiskFull(s);
  } else if (r < 988) {
    Revoke(s);
  } else if (r < 995) {
    ReEnrollIdentity(s);
  } else {
    CopyStore(s);
  }
}

// --- Quiescence and the checks ------------------------------------------------------------------

void Simulation::Quiesce() {
  for (auto& s : stores_) {
    s->link->CutRandomly(0, 0, 0);
    s->link->CutNextAfter(0);
    s->link->CutAfter(0);
    s->link->SetLatency(absl::ZeroDuration());
    s->link->BlackHole(false);
    s->link->ReleaseHeld();
    s->held = false;
    s->lose_push_responses = 0;
    if (s->capped) DeviceDiskFull(*s);
  }
  ServerDiskFull(false);
  // Every store syncs until its outbox is empty, several passes so each sees the others' last
  // changes. A store whose token was revoked (by HQ, or by a re-enrollment of its identity) gets
  // a new code and re-enrolls keeping its outbox (planned; ReEnrollKeepingOutbox).
  for (int pass = 0; pass < 4; ++pass) {
    for (auto& s : stores_) {
      for (int attempt = 0; attempt < 3; ++attempt) {
        absl::StatusOr<client::SyncProgress> done = s->client->Sync();
        if (done.ok()) {
          s->revoked = false;
          break;
        }
        const absl::StatusCode code = done.status().code();
        if (code == absl::StatusCode::kUnauthenticated ||
            code == absl::StatusCode::kPermissionDenied) {
          s->revoked = true;
          absl::Status again = ReEnrollKeepingOutbox(&s->client, s->path, s->options,
                                                     NewCodeFor(*hq_, s->device_id));
          if (!again.ok()) {
            if (pass == 0) ++stats_[absl::StrCat("stores stranded: ", again.ToString())];
            break;
          }
          continue;
        }
        if (pass == 3 && attempt == 2) {
          Finding("blocked",
                  absl::StrCat(s->name, ": last sync failed: ", done.status().ToString()));
        }
      }
    }
  }
}

// Every (collection, doc_id, path, value) the server holds in a change-log entry or a rejection,
// with who wrote it: the device id, or "" for a writer that is not a device.
using EditKey = std::tuple<std::string, std::string, std::string>;  // doc_id, path, value

void Simulation::CheckNothingLost() {
  std::map<EditKey, std::set<std::string>> on_server;
  absl::StatusOr<std::vector<testing::SqlRow>> rows = testing::QueryRows(
      server_.db_path(),
      "SELECT doc_id, device_id, payload FROM change_log WHERE collection = 'record'");
  if (!rows.ok()) {
    Finding("lost", absl::StrCat("cannot read the change log: ", rows.status().ToString()));
    return;
  }
  for (const testing::SqlRow& row : *rows) {
    v1::Change change;
    if (!change.ParseFromString(row[2].value_or(""))) continue;
    for (const v1::FieldChange& f : change.fields()) {
      on_server[{row[0].value_or(""), f.path(), f.value()}].insert(row[1].value_or(""));
    }
  }
  int64_t rejected = 0;
  for (const ServerRejection& r : ServerRejections(server_.db_path())) {
    for (const v1::FieldChange& f : r.change.fields()) {
      on_server[{r.doc_id, f.path(), f.value()}].insert(r.device_id);
      ++rejected;
    }
  }
  stats_["rejected fields on the server"] = rejected;
  // What devices show as refused: after a restore, the server's rejection log may have
  // forgotten a refusal the device still shows with its reason.
  std::map<EditKey, std::set<std::string>> on_devices;
  for (const auto& st : stores_) {
    for (const client::Rejection& r : DeviceRejections(*st->client)) {
      for (const v1::FieldChange& f : r.change.fields()) {
        on_devices[{r.doc_id, f.path(), f.value()}].insert(st->device_id);
      }
    }
  }
  // A restore keeps of each field only its value at that time (devices re-send the fields they
  // wrote last): an edit overwritten by a later one before the next restore may be forgotten.
  std::map<std::pair<std::string, std::string>, std::vector<size_t>> by_field;
  for (size_t i = 0; i < edits_.size(); ++i) {
    by_field[{edits_[i].doc_id, edits_[i].path}].push_back(i);
  }
  // Overwritten before the restore by anyone, or later by its own writer (a device re-sends,
  // when it learns of the restore, the value it holds then).
  std::vector<bool> overwritten_before_restore(edits_.size(), false);
  for (const auto& [field, indices] : by_field) {
    for (size_t k = 0; k + 1 < indices.size(); ++k) {
      const Edit& e = edits_[indices[k]];
      if (e.restores_before == restores_) continue;
      bool overwritten = edits_[indices[k + 1]].restores_before == e.restores_before;
      for (size_t later = k + 1; later < indices.size() && !overwritten; ++later) {
        overwritten = edits_[indices[later]].writer == e.writer;
      }
      overwritten_before_restore[indices[k]] = overwritten;
    }
  }
  for (size_t i = 0; i < edits_.size(); ++i) {
    const Edit& e = edits_[i];
    auto it = on_server.find({e.doc_id, e.path, e.value});
    bool found = it != on_server.end() && it->second.count(e.writer_id) > 0;
    if (found) continue;
    auto shown = on_devices.find({e.doc_id, e.path, e.value});
    if (e.restores_before < restores_ && shown != on_devices.end() &&
        shown->second.count(e.writer_id) > 0) {
      ++stats_["edits only in a device's rejection list (a restore forgot the server's entry)"];
      continue;
    }
    if (e.after_restored_backup) {
      ++stats_["edits forgotten by a restore (HQ's, after the backup)"];
      continue;
    }
    if (overwritten_before_restore[i]) {
      ++stats_["edits forgotten by a restore (overwritten before it, or later by their writer)"];
      continue;
    }
    // Why: still waiting in a blocked outbox, or gone with nothing pending (silently).
    std::string why = e.writer == "hq" ? " (HQ's write)" : "";
    for (const auto& st : stores_) {
      if (st->name != e.writer) continue;
      absl::StatusOr<client::ClientStatus> status = st->client->Status();
      const bool pending = status.ok() && status->pending_changes > 0;
      why = absl::StrCat(pending ? " (its store still holds changes in a blocked outbox"
                                 : " (SILENTLY: its store has nothing pending",
                         st->revoked ? "; its token is revoked)" : ")");
      ++stats_[pending ? "lost edits: still in a blocked outbox" : "lost edits: silently"];
    }
    Finding("lost", absl::StrCat("edit #", i, " (round ", e.round, ") by ", e.writer, " of record ",
                                 e.doc_id, " ", e.path, " = ", Hex(e.value),
                                 " is neither in the change log nor in the rejection log", why));
  }
}

void Simulation::CheckOutboxes() {
  for (auto& s : stores_) {
    absl::StatusOr<client::ClientStatus> st = s->client->Status();
    if (!st.ok()) {
      Finding("blocked", absl::StrCat(s->name, ": Status(): ", st.status().ToString()));
      continue;
    }
    if (st->pending_changes != 0) {
      Finding("blocked", absl::StrCat(s->name, ": ", st->pending_changes,
                                      " changes still in the outbox after the final syncs",
                                      s->revoked ? " (token revoked)" : ""));
    }
    stats_["changes shown as rejected on devices"] +=
        static_cast<int64_t>(DeviceRejections(*s->client).size());
  }
}

void Simulation::CheckConvergence() {
  for (int p = 0; p < kPartners; ++p) {
    const std::string server = testing::ServerScopeChecksum(server_.db_path(), partner_ids_[p]);
    std::vector<std::string> reference;
    std::string reference_name;
    for (auto& s : stores_) {
      if (s->partner != p || s->revoked) continue;
      absl::StatusOr<std::string> checksum = s->client->ServerStateChecksum();
      if (!checksum.ok() || *checksum != server) {
        Finding("converged", absl::StrCat(s->name, ": checksum ",
                                          checksum.ok() ? *checksum : checksum.status().ToString(),
                                          " differs from the server's ", server));
        continue;
      }
      // What its user sees (pending edits included) against the first store at the server's
      // checksum.
      std::vector<std::string> docs = testing::LocalDocuments(*s->client);
      if (reference_name.empty()) {
        reference = std::move(docs);
        reference_name = s->name;
      } else if (docs != reference) {
        Finding("converged",
                absl::StrCat(s->name, " shows ", docs.size(), " documents that differ from what ",
                             reference_name, " shows (", reference.size(), ")"));
      }
    }
  }
}

void Simulation::CheckScope() {
  for (auto& s : stores_) {
    const int p = s->partner;
    absl::StatusOr<v1::ListProjectsResponse> projects = s->client->ListProjects({});
    if (projects.ok()) {
      for (const v1::Project& pr : projects->projects()) {
        if (pr.partner_id() != partner_ids_[p]) {
          Finding("scope", absl::StrCat(s->name, " holds project ", pr.id(), " of partner ",
                                        pr.partner_id()));
        }
      }
    }
    v1::ListRecordsRequest req;
    req.set_page_size(1000);
    for (;;) {
      absl::StatusOr<v1::ListRecordsResponse> page = s->client->ListRecords(req);
      if (!page.ok()) break;
      for (const v1::Record& r : page->records()) {
        if (r.project_id() != project_ids_[p]) {
          Finding("scope",
                  absl::StrCat(s->name, " holds record ", r.id(), " of project ", r.project_id()));
        }
      }
      if (page->next_page_token().empty()) break;
      req.set_page_token(page->next_page_token());
    }
  }
}

void Simulation::CheckChain() {
  auto stub = v1::ReportService::NewStub(server_.Channel());
  v1::VerifyAuditChainRequest req;
  v1::VerifyAuditChainResponse out;
  grpc::Status s = stub->VerifyAuditChain(HqCtx().get(), req, &out);
  if (!s.ok()) {
    Finding("chain", absl::StrCat("VerifyAuditChain: ", s.error_message()));
  } else if (!out.ok()) {
    Finding("chain", absl::StrCat("entry ", out.first_bad_seq(), ": ", out.problem()));
  }
  stats_["change-log entries verified"] = out.entries_checked();
}

void Simulation::Run(int64_t rounds, int64_t seconds) {
  Setup();
  if (::testing::Test::HasFatalFailure()) return;
  const auto start = SteadyClock::now();
  while (round_ < rounds &&
         (seconds <= 0 || SteadyClock::now() - start < std::chrono::seconds(seconds))) {
    Step();
    if (::testing::Test::HasFatalFailure()) return;
  }
  stats_["rounds"] = round_;
  stats_["edits"] = static_cast<int64_t>(edits_.size());
  stats_["stores"] = static_cast<int64_t>(stores_.size());
  Quiesce();
  CheckNothingLost();
  CheckOutboxes();
  CheckConvergence();
  CheckScope();
  CheckChain();
  for (auto& s : stores_) {
    std::string errors;
    for (const auto& [code, n] : s->sync_errors) absl::StrAppend(&errors, " ", code, "x", n);
    std::printf("  %s (device %s, partner %d): %lld syncs ok, %lld failed%s%s\n", s->name.c_str(),
                s->device_id.c_str(), s->partner, static_cast<long long>(s->syncs_ok),
                static_cast<long long>(s->syncs_failed), errors.c_str(),
                s->revoked ? " [revoked]" : "");
  }
}

std::string Simulation::Summary() const {
  std::string out = absl::StrCat("  seed: ", seed_, "\n");
  for (const auto& [what, n] : stats_) absl::StrAppend(&out, "  ", what, ": ", n, "\n");
  for (const auto& [invariant, n] : finding_counts_) {
    absl::StrAppend(&out, "  FINDINGS ", invariant, ": ", n, "\n");
  }
  return out;
}

TEST(Simulation, EveryEditLandsNothingBlocksStoresConvergeScopesHoldChainVerifies) {
  const uint64_t first_seed = static_cast<uint64_t>(
      EnvInt("FIELDSYNC_SIM_SEED", static_cast<int64_t>(std::random_device{}() & 0x7fffffff)));
  // Under ASan (scripts/test-sanitizers) each round costs about twice as much: half as many.
  const int64_t rounds = EnvInt("FIELDSYNC_SIM_ROUNDS",
                                std::getenv("FIELDSYNC_SANITIZER_BUILD") != nullptr ? 300 : 600);
  const int64_t seconds = EnvInt("FIELDSYNC_SIM_SECONDS", 90);
  const int64_t runs = EnvInt("FIELDSYNC_SIM_RUNS", 1);
  for (int64_t run = 0; run < runs; ++run) {
    const uint64_t seed = first_seed + static_cast<uint64_t>(run);
    std::printf("simulation: seed %llu (FIELDSYNC_SIM_SEED=%llu replays it), %lld rounds, %lld s\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed),
                static_cast<long long>(rounds), static_cast<long long>(seconds));
    std::fflush(stdout);
    Simulation sim(seed);
    sim.Run(rounds, seconds);
    std::printf("%s", sim.Summary().c_str());
    if (::testing::Test::HasFatalFailure()) {
      ADD_FAILURE() << "simulation seed " << seed << " stopped on a fatal failure";
      return;
    }
    EXPECT_TRUE(sim.findings().empty())
        << "simulation seed " << seed << " (FIELDSYNC_SIM_SEED=" << seed << " replays it):\n  "
        << absl::StrJoin(sim.findings(), "\n  ");
  }
}

}  // namespace
}  // namespace fieldsync
