// Limits: push batch and message sizes (and the client library cutting its outbox under them),
// deadlines on every client call against a server that accepts TCP and never answers, the
// per-device rate limit with its retry hint (and the client library waiting for it), logs that
// never hold a token, an enrollment code or a patient reference, and database files only their
// owner can read.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fieldsync/client.h"
#include "fieldsync/v1/admin.grpc.pb.h"
#include "fieldsync/v1/sync.grpc.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "server/rate_limit.h"
#include "server/syncer.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync {
namespace {

using ::fieldsync::client::Client;
using ::fieldsync::client::ClientOptions;
using ::fieldsync::server::DeviceLimits;
using ::fieldsync::server::DeviceRateLimiter;
using ::fieldsync::server::RetryAfterMs;
using ::fieldsync::testing::CommandResult;
using ::fieldsync::testing::FieldsyncCliPath;
using ::fieldsync::testing::Hq;
using ::fieldsync::testing::QueryInt;
using ::fieldsync::testing::RunCommand;
using ::fieldsync::testing::ServerProcess;
using ::fieldsync::testing::StatusIs;
using ::fieldsync::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = ::fieldsync::v1;

const std::vector<std::string> kCleanEnv = {"FIELDSYNC_SERVER=", "FIELDSYNC_TOKEN=",
                                            "FIELDSYNC_DEVICE_DB=", "FIELDSYNC_CA_FILE="};

std::string Describe(const CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout: ", r.out, "\nstderr: ", r.err);
}

// A text value from the device's sync_state (the token, which the library never shows).
std::string DeviceState(const std::string& db_path, const std::string& key) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT value FROM sync_state WHERE key = ?", -1, &st, nullptr) ==
        SQLITE_OK) {
      sqlite3_bind_text(st, 1, key.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) == SQLITE_ROW) {
        out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      }
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

v1::Record Well(const std::string& project_id) {
  v1::Record r;
  r.set_project_id(project_id);
  v1::WellRecord* w = r.mutable_well();
  w->set_drilled_depth_m(80);
  w->set_static_water_level_m(20);
  w->set_yield_lph(1200);
  w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
  w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
  w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
  w->set_population_served(400);
  w->set_visit_date("2026-03-14");
  return r;
}

// A donation with `items` lines of 100-character item types: about 60 KB as a change.
v1::Record LargeDonation(const std::string& project_id, int n, int items = 500) {
  v1::Record r;
  r.set_project_id(project_id);
  v1::ClassroomDonation* d = r.mutable_classroom_donation();
  d->set_school_name(absl::StrCat("School ", n));
  for (int i = 0; i < items; ++i) {
    v1::DonationItem* item = d->add_items();
    std::string type = absl::StrCat("item ", n, "-", i, " ");
    type.resize(100, 'x');
    item->set_item_type(type);
    item->set_quantity(10);
    item->set_quantity_received(10);
  }
  d->set_delivered_date("2026-02-01");
  d->set_condition(v1::ITEM_CONDITION_GOOD);
  d->set_students_reached(120);
  return r;
}

// --- DeviceRateLimiter on its own, with a hand-driven clock ------------------------------------

class RateLimiterTest : public ::testing::Test {
 protected:
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
};

TEST_F(RateLimiterTest, CallsBeyondTheBurstWaitForTheBucketToRefill) {
  DeviceLimits limits;
  limits.calls_per_minute = 60;  // one a second
  limits.call_burst = 3;
  DeviceRateLimiter limiter(limits, [this] { return now_; });
  for (int i = 0; i < 3; ++i) ASSERT_OK(limiter.Admit("a", 0)) << i;
  absl::StatusOr<DeviceRateLimiter::Slot> refused = limiter.Admit("a", 0);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted,
                                AllOf(HasSubstr("at most 60 Push/Pull calls per minute"),
                                      HasSubstr("retry after 1000 ms"))));
  EXPECT_EQ(RetryAfterMs(refused.status()), 1000);
  // Another device has its own bucket.
  EXPECT_OK(limiter.Admit("b", 0));
  now_ += absl::Milliseconds(400);
  EXPECT_EQ(RetryAfterMs(limiter.Admit("a", 0).status()), 600);
  now_ += absl::Milliseconds(600);
  EXPECT_OK(limiter.Admit("a", 0));
  // A long rest refills up to the burst, not beyond.
  now_ += absl::Hours(1);
  for (int i = 0; i < 3; ++i) ASSERT_OK(limiter.Admit("a", 0)) << i;
  EXPECT_THAT(limiter.Admit("a", 0), StatusIs(absl::StatusCode::kResourceExhausted, ::testing::_));
}

TEST_F(RateLimiterTest, ChangesHaveTheirOwnBudgetAndARefusalTakesNothing) {
  DeviceLimits limits;
  limits.calls_per_minute = 60;
  limits.call_burst = 2;
  limits.changes_per_minute = 6000;  // 100 a second
  limits.change_burst = 1000;
  DeviceRateLimiter limiter(limits, [this] { return now_; });
  ASSERT_OK(limiter.Admit("a", 1000));
  absl::StatusOr<DeviceRateLimiter::Slot> refused = limiter.Admit("a", 50);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted,
                                AllOf(HasSubstr("changes: "), HasSubstr("retry after 500 ms"))));
  // The refused push took no call: one is left.
  EXPECT_OK(limiter.Admit("a", 0));
  EXPECT_THAT(limiter.Admit("a", 0), StatusIs(absl::StatusCode::kResourceExhausted, ::testing::_));
}

TEST_F(RateLimiterTest, ConcurrentCallsOfADeviceAreCappedUntilOneEnds) {
  DeviceLimits limits;
  limits.max_concurrent_calls = 2;
  DeviceRateLimiter limiter(limits, [this] { return now_; });
  ASSERT_OK_AND_ASSIGN(DeviceRateLimiter::Slot first, limiter.Admit("a", 0));
  {
    ASSERT_OK_AND_ASSIGN(DeviceRateLimiter::Slot second, limiter.Admit("a", 0));
    absl::StatusOr<DeviceRateLimiter::Slot> third = limiter.Admit("a", 0);
    EXPECT_THAT(third, StatusIs(absl::StatusCode::kResourceExhausted,
                                HasSubstr("already running (at most 2 at once)")));
    EXPECT_GT(RetryAfterMs(third.status()), 0);
    EXPECT_OK(limiter.Admit("b", 0));
  }
  EXPECT_OK(limiter.Admit("a", 0));
}

TEST(DeviceLimitsTest, ImpossibleSettingsAreRefusedNamingTheFlag) {
  DeviceLimits limits;
  EXPECT_OK(limits.Validate());
  limits.change_burst = 999;
  EXPECT_THAT(limits.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--device-change-burst")));
  limits.changes_per_minute = 0;  // off: the burst no longer matters
  EXPECT_OK(limits.Validate());
  limits.call_burst = 0;
  EXPECT_THAT(limits.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--device-call-burst")));
  limits.call_burst = 1;
  limits.max_concurrent_calls = -1;
  EXPECT_THAT(limits.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--device-max-concurrent")));
  EXPECT_EQ(RetryAfterMs(absl::ResourceExhaustedError("x")), -1);
}

// --- Against the real fieldsyncd ---------------------------------------------------------------

class LimitsTest : public ::testing::Test {
 protected:
  void StartServer(const std::vector<std::string>& args = {}) {
    ASSERT_OK(server_.Start(dir_.path(), args));
    hq_ = std::make_unique<Hq>(server_.Channel(), server_.admin_token());
    partner_ = hq_->CreatePartner("Maji Safi", {"KE"});
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "fieldsyncd log:\n" << server_.Log();
  }

  // A device enrolled over the wire protocol; returns its token.
  std::string RawDeviceToken(const std::string& name, std::string* device_id = nullptr) {
    auto sync = v1::SyncService::NewStub(server_.Channel());
    v1::EnrollRequest request;
    request.set_code(hq_->EnrollmentCode(partner_.id(), name));
    v1::EnrollResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status s = sync->Enroll(&ctx, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (device_id != nullptr) *device_id = response.device_id();
    return response.token();
  }

  std::unique_ptr<Client> Enroll(const std::string& name, ClientOptions options = {}) {
    auto client = Client::Enroll(server_.address(), hq_->EnrollmentCode(partner_.id(), name),
                                 dir_.File(name + ".db"), options);
    EXPECT_OK(client);
    return client.ok() ? *std::move(client) : nullptr;
  }

  // A Push of `request` with `token`; the trailing retry hint (or -1) in *retry_after_ms.
  grpc::Status Push(const std::string& token, const v1::PushRequest& request,
                    int64_t* retry_after_ms = nullptr) {
    auto sync = v1::SyncService::NewStub(server_.Channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    testing::AddBearer(ctx, token);
    v1::PushResponse response;
    grpc::Status s = sync->Push(&ctx, request, &response);
    if (retry_after_ms != nullptr) {
      *retry_after_ms = -1;
      auto hint = ctx.GetServerTrailingMetadata().find("retry-after-ms");
      if (hint != ctx.GetServerTrailingMetadata().end()) {
        EXPECT_TRUE(absl::SimpleAtoi(std::string(hint->second.data(), hint->second.size()),
                                     retry_after_ms));
      }
    }
    return s;
  }

  TempDir dir_;
  ServerProcess server_;
  std::unique_ptr<Hq> hq_;
  v1::Partner partner_;
};

TEST_F(LimitsTest, PushOverTheBatchOrMessageLimitIsRefusedNamingIt) {
  StartServer();
  const std::string token = RawDeviceToken("t");
  v1::PushRequest too_many;
  for (int i = 0; i <= server::Syncer::kMaxPushChanges; ++i) too_many.add_changes();
  grpc::Status s = Push(token, too_many);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), AllOf(HasSubstr("changes"), HasSubstr("at most 1000"),
                                       HasSubstr("got 1001")));

  v1::PushRequest too_big;
  too_big.add_changes()->add_fields()->set_value(std::string(5 << 20, 'x'));
  s = Push(token, too_big);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_EQ(QueryInt(server_.db_path(), "SELECT COUNT(*) FROM change_log WHERE device_id IS NOT "
                                        "NULL"),
            0);
}

TEST_F(LimitsTest, LargeRecordsAreCutIntoPushBatchesAndPullPagesUnderTheMessageLimit) {
  StartServer();
  v1::Project project = hq_->CreateProject(partner_.id(), v1::PROJECT_KIND_CLASSROOM, "KE");
  std::unique_ptr<Client> a = Enroll("a");
  std::unique_ptr<Client> b = Enroll("b");
  ASSERT_TRUE(a && b);
  ASSERT_OK(a->Sync());  // the project
  // 80 records of ~60 KB: far fewer than 1000 changes, but more than 4 MiB in one request.
  constexpr int kRecords = 80;
  size_t bytes = 0;
  for (int i = 0; i < kRecords; ++i) {
    v1::Record r = LargeDonation(project.id(), i);
    bytes += r.ByteSizeLong();
    ASSERT_OK(a->CreateRecord(std::move(r))) << i;
  }
  ASSERT_GT(bytes, 4u << 20);
  ASSERT_OK_AND_ASSIGN(client::SyncProgress pushed, a->Sync());
  EXPECT_EQ(pushed.changes_pushed, kRecords);
  EXPECT_EQ(QueryInt(server_.db_path(), "SELECT COUNT(*) FROM classroom_donations"), kRecords);

  ASSERT_OK_AND_ASSIGN(client::SyncProgress pulled, b->Sync());
  EXPECT_EQ(pulled.documents_pulled, kRecords + 1);
  EXPECT_GE(pulled.pages, 2) << "pages are cut at 3 MiB";
  ASSERT_OK_AND_ASSIGN(std::string checksum_a, a->ServerStateChecksum());
  ASSERT_OK_AND_ASSIGN(std::string checksum_b, b->ServerStateChecksum());
  EXPECT_EQ(checksum_a, checksum_b);
}

// DEADLINE_EXCEEDED or UNAVAILABLE, with a message matching `message_matcher`.
MATCHER_P(Unreachable, message_matcher, "is DEADLINE_EXCEEDED or UNAVAILABLE") {
  const absl::Status& s = ::fieldsync::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return (s.code() == absl::StatusCode::kDeadlineExceeded ||
          s.code() == absl::StatusCode::kUnavailable) &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

// A TCP listener that never accepts: connections complete in the kernel's backlog and then
// nothing ever answers, not even the HTTP/2 preface.
class SilentServer {
 public:
  SilentServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 64);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    address_ = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  }
  ~SilentServer() { close(fd_); }
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
};

TEST_F(LimitsTest, ServerThatNeverAnswersFailsSyncAndCliWithinTheirDeadlines) {
  StartServer();
  SilentServer silent;
  hq_->CreateProject(partner_.id(), v1::PROJECT_KIND_WELL, "KE");
  const std::string db = dir_.File("d.db");
  {
    std::unique_ptr<Client> device = Enroll("d");
    ASSERT_TRUE(device);
  }
  // The device's server moves to the silent one (as if a proxy there had hung).
  {
    sqlite3* handle = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
    const std::string sql = absl::StrCat("UPDATE sync_state SET value = '", silent.address(),
                                         "' WHERE key = 'server_address'");
    EXPECT_EQ(sqlite3_exec(handle, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(handle);
  }

  ClientOptions options;
  options.call_timeout_ms = 500;
  options.retry.max_attempts = 3;
  options.retry.initial_backoff_ms = 10;
  ASSERT_OK_AND_ASSIGN(auto device, Client::Open(db, options));
  auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(device->Sync(), Unreachable(::testing::_));
  // Three attempts of 0.5 s and two short backoffs; a hang would be stopped by ctest's timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));

  // An overall deadline bounds a sync however many attempts it may make.
  options.retry.max_attempts = 1000;
  options.sync_timeout_ms = 1500;
  ASSERT_OK_AND_ASSIGN(auto bounded, Client::Open(db, options));
  start = std::chrono::steady_clock::now();
  EXPECT_THAT(bounded->Sync(), Unreachable(HasSubstr("sync_timeout_ms of 1500 ms reached")));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));

  // Enrollment against it fails by its deadline too.
  EXPECT_THAT(Client::Enroll(silent.address(), "ABCD-EFGH-JKMN-PQRS-TUVW", dir_.File("e.db"),
                             options),
              Unreachable(::testing::_));

  // The CLI: an HQ command and a device sync, each with --timeout 1.
  start = std::chrono::steady_clock::now();
  CommandResult hq = RunCommand({FieldsyncCliPath(), "--server", silent.address(), "--token",
                                 server_.admin_token(), "--timeout", "1", "partners", "list"},
                                kCleanEnv);
  EXPECT_EQ(hq.exit_code, 3) << Describe(hq);
  EXPECT_THAT(hq.err, HasSubstr(silent.address()));
  CommandResult sync = RunCommand({FieldsyncCliPath(), "--timeout", "1", "sync", "--attempts",
                                   "2", "--device-db", db},
                                  kCleanEnv);
  EXPECT_EQ(sync.exit_code, 3) << Describe(sync);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST_F(LimitsTest, HammeringDeviceGetsRetryHintAndItsNextSyncWaitsAndLosesNothing) {
  // One Push/Pull a second, bursts of 3.
  StartServer({"--device-calls-per-minute", "60", "--device-call-burst", "3"});
  v1::Project project = hq_->CreateProject(partner_.id(), v1::PROJECT_KIND_WELL, "KE");
  ClientOptions impatient;
  // Without the hint, 4 attempts would be over within 1+2+4 ms of backoff: far too soon.
  impatient.retry.initial_backoff_ms = 1;
  impatient.retry.max_backoff_ms = 4;
  impatient.retry.max_attempts = 4;
  std::unique_ptr<Client> a = Enroll("a", impatient);
  std::unique_ptr<Client> b = Enroll("b", impatient);
  ASSERT_TRUE(a && b);
  ASSERT_OK(a->Sync());
  ASSERT_OK_AND_ASSIGN(client::ClientStatus status_a, a->Status());
  constexpr int kRecords = 5;
  for (int i = 0; i < kRecords; ++i) ASSERT_OK(a->CreateRecord(Well(project.id())));

  // Device a hammers Push (empty batches) with its own token.
  const std::string token = DeviceState(dir_.File("a.db"), "token");
  ASSERT_FALSE(token.empty());
  grpc::Status refused;
  int64_t hint = -1;
  for (int i = 0; i < 10 && refused.ok(); ++i) refused = Push(token, v1::PushRequest(), &hint);
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_GT(hint, 0);
  EXPECT_LE(hint, 1000);
  EXPECT_THAT(refused.error_message(),
              AllOf(HasSubstr("device rate limit"), HasSubstr(absl::StrCat("retry after ", hint,
                                                                           " ms"))));
  // Another device of the same partner is not affected.
  EXPECT_OK(b->Sync());

  // An overall deadline shorter than the wait: the sync says so at once instead of waiting.
  {
    ClientOptions hurried = impatient;
    hurried.sync_timeout_ms = 100;
    ASSERT_OK_AND_ASSIGN(auto a2, Client::Open(dir_.File("a.db"), hurried));
    EXPECT_THAT(a2->Sync(), StatusIs(absl::StatusCode::kResourceExhausted,
                                     HasSubstr("retry after")));
  }
  // The CLI, allowed a single attempt, explains.
  CommandResult cli = RunCommand(
      {FieldsyncCliPath(), "sync", "--attempts", "1", "--device-db", dir_.File("a.db")},
      kCleanEnv);
  EXPECT_EQ(cli.exit_code, 1) << Describe(cli);
  EXPECT_THAT(cli.err, AllOf(HasSubstr("limiting how often this device syncs"),
                             HasSubstr("retry after")));

  // The library waits as the server asks: the sync goes through, every record once.
  ASSERT_OK_AND_ASSIGN(client::SyncProgress done, a->Sync());
  EXPECT_GE(done.retries, 1);
  EXPECT_EQ(done.changes_pushed, kRecords);
  const std::string by_a = absl::StrCat("FROM change_log WHERE device_id = '",
                                        status_a.device_id, "'");
  EXPECT_EQ(QueryInt(server_.db_path(), "SELECT COUNT(*) " + by_a), kRecords);
  EXPECT_EQ(QueryInt(server_.db_path(), "SELECT COUNT(DISTINCT device_seq) " + by_a), kRecords);
  EXPECT_EQ(QueryInt(server_.db_path(), "SELECT COUNT(*) FROM well_records"), kRecords);
  ASSERT_OK_AND_ASSIGN(client::ClientStatus after, a->Status());
  EXPECT_EQ(after.pending_changes, 0);
  EXPECT_THAT(server_.Log(), HasSubstr("rate limited device=" + status_a.device_id));
}

// --- What the logs never hold ------------------------------------------------------------------

std::string JsonField(const std::string& json, const std::string& key) {
  google::protobuf::Struct object;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &object).ok()) << json;
  auto it = object.fields().find(key);
  EXPECT_NE(it, object.fields().end()) << key << " not in " << json;
  return it == object.fields().end() ? "" : it->second.string_value();
}

std::string SurgeryJson(const std::string& project_id, const std::string& patient_ref) {
  return absl::StrCat(R"({"project_id":")", project_id, R"(","cataract_surgery":{"patient_ref":")",
                      patient_ref, R"(","age_years":67,"sex":"SEX_FEMALE","eye":"EYE_LEFT",)",
                      R"("surgery_date":"2026-02-01","surgeon_ref":"S-12",)",
                      R"("technique":"SURGICAL_TECHNIQUE_SICS","iol_implanted":true,)",
                      R"("preop_va":"CF","follow_ups":[{"stage":"FOLLOW_UP_STAGE_DAY_1",)",
                      R"("visit_date":"2026-02-02","presenting_va":"6/18"}]}})");
}

TEST_F(LimitsTest, LogsNeverHoldTokensEnrollmentCodesOrPatientReferences) {
  StartServer();
  std::string cli_stderr;
  const std::string admin = server_.admin_token();
  auto cli = [&](std::vector<std::string> args, const std::string& token) {
    std::vector<std::string> argv = {FieldsyncCliPath(), "--server", server_.address(),
                                     "--timeout", "20"};
    if (!token.empty()) argv.insert(argv.end(), {"--token", token});
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = RunCommand(argv, kCleanEnv);
    cli_stderr += r.err;
    return r;
  };
  auto ok = [&](std::vector<std::string> args, const std::string& token = "") {
    CommandResult r = cli(std::move(args), token);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return r.out;
  };

  const std::string partner = JsonField(
      ok({"--json", "partners", "create", "--name", "Sight First", "--countries", "KH"}, admin),
      "id");
  const std::string project =
      JsonField(ok({"--json", "projects", "create", "--partner", partner, "--kind", "cataract",
                    "--title", "Eyes", "--country", "KH", "--status", "active"},
                   admin),
                "id");
  // A user token, used, then revoked and used again.
  const std::string user =
      JsonField(ok({"--json", "users", "create", "--name", "ana", "--role", "hq"}, admin), "id");
  const std::string created = ok({"--json", "tokens", "create", "--user", user}, admin);
  const std::string user_token = JsonField(created, "secret");
  ASSERT_FALSE(user_token.empty()) << created;
  ok({"whoami"}, user_token);
  google::protobuf::Struct created_json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(created, &created_json).ok());
  const std::string token_id =
      created_json.fields().at("token").struct_value().fields().at("id").string_value();
  ok({"tokens", "revoke", token_id}, admin);
  EXPECT_EQ(cli({"whoami"}, user_token).exit_code, 4);
  // Tokens that were never issued, well-formed and not.
  std::string unknown_token = "fs_Q7Z3K9unknownTOKENsecret";
  unknown_token.resize(46, 'A');
  EXPECT_EQ(cli({"whoami"}, unknown_token).exit_code, 4);
  const std::string malformed_token = "Q7Z3K9-malformed-secret";
  EXPECT_EQ(cli({"whoami"}, malformed_token).exit_code, 4);

  // A device enrolled with a code, recording surgeries and syncing; the code used again fails.
  const std::string device = JsonField(
      ok({"--json", "devices", "create", "--partner", partner, "--name", "tab"}, admin), "id");
  const std::string code =
      JsonField(ok({"--json", "devices", "enroll-code", device}, admin), "code");
  ASSERT_FALSE(code.empty());
  const std::string db = dir_.File("device.db");
  ok({"device", "enroll", "--code", code, "--device-db", db});
  EXPECT_NE(cli({"device", "enroll", "--code", code, "--device-db", dir_.File("again.db")}, "")
                .exit_code,
            0);
  EXPECT_NE(cli({"device", "enroll", "--code", "Q7Z3-K9WR-ONGC-ODEX-XXXX", "--device-db",
                 dir_.File("wrong.db")},
                "")
                .exit_code,
            0);
  ok({"sync", "--device-db", db});
  const std::string device_ref = "PTREF-Q7Z3K9-DEVICE1";
  ok({"device", "records", "add", "--data", SurgeryJson(project, device_ref), "--device-db", db});
  ok({"sync", "--device-db", db});
  const std::string device_token = DeviceState(db, "token");
  ASSERT_FALSE(device_token.empty());

  // HQ records a surgery, then sends two that are refused: a malformed patient reference (the
  // message must not repeat it), and one with a bad field beside a good reference.
  const std::string hq_ref = "PTREF-Q7Z3K9-HQ0002";
  ok({"records", "create", "--data", SurgeryJson(project, hq_ref)}, admin);
  const std::string bad_ref = "PTREF Q7Z3K9 Sok Dara";
  CommandResult refused =
      cli({"records", "create", "--data", SurgeryJson(project, bad_ref)}, admin);
  EXPECT_EQ(refused.exit_code, 5) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("patient_ref"));
  const std::string other_ref = "PTREF-Q7Z3K9-HQ0003";
  std::string bad_date = SurgeryJson(project, other_ref);
  bad_date = absl::StrReplaceAll(bad_date, {{"2026-02-01", "2026-13-45"}});
  EXPECT_EQ(cli({"records", "create", "--data", bad_date}, admin).exit_code, 5);
  // The device: a malformed reference refused locally.
  EXPECT_NE(cli({"device", "records", "add", "--data", SurgeryJson(project, bad_ref),
                 "--device-db", db},
                "")
                .exit_code,
            0);
  // Raw calls with the device token that the server refuses.
  {
    v1::PushRequest push;
    v1::Change* change = push.add_changes();
    change->set_collection("records");
    change->set_doc_id("not-an-id");
    change->set_device_seq(99);
    change->add_fields()->set_path("cataract_surgery.patient_ref");
    change->mutable_fields(0)->set_value(other_ref);
    EXPECT_FALSE(Push(device_token, push).ok());
  }
  EXPECT_EQ(QueryInt(server_.db_path(), "SELECT COUNT(*) FROM cataract_surgeries"), 2);

  const std::string log = server_.Log();
  ASSERT_THAT(log, HasSubstr("push device="));  // the log is the one we think it is
  struct Secret {
    const char* what;
    std::string value;
  };
  const std::vector<Secret> secrets = {
      {"admin token", admin},
      {"admin token without its prefix", admin.substr(8)},
      {"user token", user_token},
      {"user token without its prefix", user_token.substr(8)},
      {"device token", device_token},
      {"device token without its prefix", device_token.substr(8)},
      {"unknown token", unknown_token},
      {"malformed token", malformed_token},
      {"enrollment code", code},
      {"enrollment code without dashes", absl::StrReplaceAll(code, {{"-", ""}})},
      {"wrong enrollment code", "Q7Z3-K9WR"},
      {"patient reference (device)", device_ref},
      {"patient reference (HQ)", hq_ref},
      {"malformed patient reference", bad_ref},
      {"patient reference of a refused record", other_ref},
      {"any patient reference", "Q7Z3K9"},
  };
  for (const Secret& s : secrets) {
    EXPECT_THAT(log, Not(HasSubstr(s.value))) << "fieldsyncd's log holds the " << s.what;
    EXPECT_THAT(cli_stderr, Not(HasSubstr(s.value))) << "the CLI's stderr holds the " << s.what;
  }
}

// --- File permissions --------------------------------------------------------------------------

mode_t Mode(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST(FilePermissionsTest, ServerAndDeviceDatabasesAreOwnerOnly) {
  const mode_t old_umask = umask(022);  // a permissive umask must not matter
  TempDir dir;
  // fieldsyncd creates the database's folder itself.
  const std::string folder = dir.File("data/fieldsync");
  const std::string db = folder + "/fieldsync.db";
  ServerProcess server;
  // SQLite in the PostgreSQL pass too: file modes are a SQLite file's (PostgreSQL keeps its
  // files in its own data folder, with its own modes).
  server.UseSqlite();
  ASSERT_OK(server.Start(dir.path(), {"--db", db}));
  EXPECT_EQ(Mode(dir.File("data")), 0700u);
  EXPECT_EQ(Mode(folder), 0700u);
  // The database and, while fieldsyncd runs, its WAL and shared-memory files.
  for (const char* suffix : {"", "-wal", "-shm"}) {
    EXPECT_EQ(Mode(db + suffix), 0600u) << db << suffix;
  }
  // ServerProcess made its admin token in its own database in `dir`.
  EXPECT_EQ(Mode(dir.File("fieldsync.db")), 0600u);

  // The client library's store.
  ServerProcess plain;
  TempDir plain_dir;
  ASSERT_OK(plain.Start(plain_dir.path()));
  Hq plain_hq(plain.Channel(), plain.admin_token());
  v1::Partner partner = plain_hq.CreatePartner("Maji Safi", {"KE"});
  const std::string device_db = dir.File("device.db");
  ASSERT_OK_AND_ASSIGN(auto device,
                       Client::Enroll(plain.address(),
                                      plain_hq.EnrollmentCode(partner.id(), "t"), device_db));
  ASSERT_OK(device->Sync());
  for (const char* suffix : {"", "-wal", "-shm"}) {
    EXPECT_EQ(Mode(device_db + suffix), 0600u) << device_db << suffix;
  }
  umask(old_umask);
}

}  // namespace
}  // namespace fieldsync
