// The client library against the real fieldsyncd: several enrolled devices of two partners
// editing offline and syncing in different orders, concurrent edits, lost responses, cut pulls,
// wrong clocks, and the C API from a real C program.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client_lib/local_store.h"
#include "fieldsync/client.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/v1/admin.grpc.pb.h"
#include "fieldsync/v1/sync.grpc.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_db.h"

namespace fieldsync {
namespace {

using ::fieldsync::client::Client;
using ::fieldsync::client::ClientOptions;
using ::fieldsync::client::SyncProgress;
using ::fieldsync::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;
namespace v1 = ::fieldsync::v1;

constexpr int64_t kYearMs = 365LL * 24 * 3600 * 1000;

v1::Record Well(const std::string& project_id, double yield_lph = 1200) {
  v1::Record r;
  r.set_project_id(project_id);
  v1::WellRecord* w = r.mutable_well();
  w->set_drilled_depth_m(80);
  w->set_static_water_level_m(20);
  w->set_yield_lph(yield_lph);
  w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
  w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
  w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
  w->set_population_served(400);
  w->set_visit_date("2026-03-14");
  return r;
}

class ClientSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start(dir_.path()).ok()) << server_.Log();
    channel_ = server_.Channel();
    tracker_ = v1::TrackerService::NewStub(channel_);
    admin_ = v1::AdminService::NewStub(channel_);
    partner_ = CreatePartner("Maji Safi", {"KE"});
    other_partner_ = CreatePartner("Mat Sang", {"VN"});
    project_ = CreateProject(partner_.id(), v1::PROJECT_KIND_WELL, "KE");
    other_project_ = CreateProject(other_partner_.id(), v1::PROJECT_KIND_WELL, "VN");
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "fieldsyncd log:\n" << server_.Log();
  }

  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token = "") {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    testing::AddBearer(*ctx, token.empty() ? server_.admin_token() : token);
    return ctx;
  }

  v1::Partner CreatePartner(const std::string& name, std::vector<std::string> countries) {
    v1::CreatePartnerRequest req;
    req.mutable_partner()->set_name(name);
    for (auto& c : countries) req.mutable_partner()->add_countries(c);
    v1::Partner out;
    grpc::Status s = admin_->CreatePartner(Ctx().get(), req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  v1::Project CreateProject(const std::string& partner_id, v1::ProjectKind kind,
                            const std::string& country) {
    v1::CreateProjectRequest req;
    v1::Project* p = req.mutable_project();
    p->set_partner_id(partner_id);
    p->set_kind(kind);
    p->set_title("Boreholes");
    p->set_country(country);
    p->set_status(v1::PROJECT_STATUS_ACTIVE);
    v1::Project out;
    grpc::Status s = tracker_->CreateProject(Ctx().get(), req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  // A one-time enrollment code for a new device of `partner_id`.
  std::string EnrollmentCode(const std::string& partner_id, const std::string& name) {
    v1::CreateDeviceRequest dreq;
    dreq.mutable_device()->set_partner_id(partner_id);
    dreq.mutable_device()->set_name(name);
    v1::Device device;
    grpc::Status s = admin_->CreateDevice(Ctx().get(), dreq, &device);
    EXPECT_TRUE(s.ok()) << s.error_message();
    v1::CreateEnrollmentRequest ereq;
    ereq.set_device_id(device.id());
    v1::CreateEnrollmentResponse code;
    s = admin_->CreateEnrollment(Ctx().get(), ereq, &code);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return code.code();
  }

  std::unique_ptr<Client> Enroll(const std::string& partner_id, const std::string& name,
                                 ClientOptions options = {}) {
    if (options.retry.initial_backoff_ms == 200) options.retry.initial_backoff_ms = 20;
    auto client = Client::Enroll(server_.address(), EnrollmentCode(partner_id, name),
                                 dir_.File(name + ".db"), options);
    EXPECT_OK(client);
    return client.ok() ? *std::move(client) : nullptr;
  }

  static SyncProgress MustSync(Client& c) {
    auto done = c.Sync();
    EXPECT_OK(done);
    return done.ok() ? *done : SyncProgress();
  }

  // Every live record a device holds, by id, without output-only fields.
  static std::map<std::string, std::string> Records(Client& c) {
    std::map<std::string, std::string> out;
    v1::ListRecordsRequest q;
    q.set_page_size(1000);
    auto listed = c.ListRecords(q);
    EXPECT_OK(listed);
    if (!listed.ok()) return out;
    for (v1::Record r : listed->records()) {
      sync::ClearOutputOnly(&r);
      out[r.id()] = sync::SerializeDeterministic(r);
    }
    return out;
  }

  // The record as the server holds it.
  v1::Record ServerRecord(const std::string& id) {
    v1::GetRecordRequest req;
    req.set_id(id);
    v1::Record out;
    grpc::Status s = tracker_->GetRecord(Ctx().get(), req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  int64_t ServerRecordCount() {
    v1::ListRecordsRequest req;
    req.set_page_size(1000);
    v1::ListRecordsResponse out;
    grpc::Status s = tracker_->ListRecords(Ctx().get(), req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out.records_size();
  }

  static void ExpectSame(Client& a, Client& b) {
    EXPECT_EQ(Records(a), Records(b));
    auto ca = a.ServerStateChecksum();
    auto cb = b.ServerStateChecksum();
    ASSERT_OK(ca);
    ASSERT_OK(cb);
    EXPECT_EQ(*ca, *cb);
  }

  static int64_t Pending(Client& c) {
    auto s = c.Status();
    EXPECT_OK(s);
    return s.ok() ? s->pending_changes : -1;
  }

  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TrackerService::Stub> tracker_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  v1::Partner partner_, other_partner_;
  v1::Project project_, other_project_;
};

TEST_F(ClientSyncTest, EnrollStoresTheDeviceAndACodeWorksOnce) {
  std::string code = EnrollmentCode(partner_.id(), "tablet-1");
  auto a = Client::Enroll(server_.address(), code, dir_.File("a.db"));
  ASSERT_OK(a);
  auto status = (*a)->Status();
  ASSERT_OK(status);
  EXPECT_EQ(status->partner_id, partner_.id());
  EXPECT_EQ(status->server_address, server_.address());
  EXPECT_FALSE(Client::Enroll(server_.address(), code, dir_.File("b.db")).ok());
  EXPECT_THAT(
      Client::Enroll(server_.address(), EnrollmentCode(partner_.id(), "t2"), dir_.File("a.db")),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already enrolled")));
}

TEST_F(ClientSyncTest, OfflineEditsOnEveryDeviceConvergeWhateverTheSyncOrder) {
  auto a = Enroll(partner_.id(), "a");
  auto b = Enroll(partner_.id(), "b");
  auto c = Enroll(partner_.id(), "c");
  auto d = Enroll(other_partner_.id(), "d");
  ASSERT_TRUE(a && b && c && d);
  for (Client* x : {a.get(), b.get(), c.get(), d.get()}) MustSync(*x);
  ASSERT_OK(a->GetProject(project_.id()));
  // Scope: never another partner's project.
  EXPECT_THAT(a->GetProject(other_project_.id()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no project")));
  EXPECT_THAT(d->GetProject(project_.id()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no project")));
  EXPECT_THAT(d->CreateRecord(Well(project_.id())),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record.project_id")));

  // Offline on every device.
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto r = a->CreateRecord(Well(project_.id(), 1000 + i));
    ASSERT_OK(r);
    ids.push_back(r->id());
  }
  for (int i = 0; i < 2; ++i) ASSERT_OK(b->CreateRecord(Well(project_.id(), 2000 + i)));
  v1::Site site;
  site.set_project_id(project_.id());
  site.set_name("Kyuso");
  site.set_latitude_deg(-1.1);
  site.set_longitude_deg(38.2);
  ASSERT_OK(c->CreateSite(site));
  ASSERT_OK(d->CreateRecord(Well(other_project_.id(), 3000)));
  ASSERT_OK(a->DeleteRecord(ids[2]));

  // Sync in one order, then another.
  for (Client* x : {c.get(), a.get(), d.get(), b.get()}) {
    SyncProgress p = MustSync(*x);
    EXPECT_FALSE(p.repaired);
  }
  for (Client* x : {b.get(), c.get(), a.get()}) MustSync(*x);

  EXPECT_THAT(Records(*a), SizeIs(4));
  ExpectSame(*a, *b);
  ExpectSame(*a, *c);
  for (Client* x : {a.get(), b.get(), c.get(), d.get()}) EXPECT_EQ(Pending(*x), 0);
  // The other partner's device holds its own record only.
  auto d_records = Records(*d);
  EXPECT_THAT(d_records, SizeIs(1));
  for (const auto& [id, payload] : Records(*a)) EXPECT_EQ(d_records.count(id), 0u);
  EXPECT_EQ(ServerRecordCount(), 5);
  auto sites = c->Status();
  ASSERT_OK(sites);
  EXPECT_EQ(sites->sites, 1);
  EXPECT_GT(sites->last_sync_at_ms, 0);
}

TEST_F(ClientSyncTest, ConcurrentEditsOfOneFieldConvergeAndAreListedAsConflicts) {
  auto a = Enroll(partner_.id(), "a");
  auto b = Enroll(partner_.id(), "b");
  auto c = Enroll(partner_.id(), "c");
  ASSERT_TRUE(a && b && c);
  MustSync(*a);
  auto r = a->CreateRecord(Well(project_.id()));
  ASSERT_OK(r);
  MustSync(*a);
  MustSync(*b);
  MustSync(*c);

  // Offline: b and c change the yield, a the functional status.
  auto rb = b->GetRecord(r->id());
  ASSERT_OK(rb);
  rb->mutable_well()->set_yield_lph(500);
  ASSERT_OK(b->UpdateRecord(*rb));
  // c's edit is clearly later than b's, whatever small error each clock correction has.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto rc = c->GetRecord(r->id());
  ASSERT_OK(rc);
  rc->mutable_well()->set_yield_lph(700);
  ASSERT_OK(c->UpdateRecord(*rc));
  auto ra = a->GetRecord(r->id());
  ASSERT_OK(ra);
  ra->mutable_well()->set_functional_status(v1::FUNCTIONAL_STATUS_PARTLY_FUNCTIONAL);
  ASSERT_OK(a->UpdateRecord(*ra));

  SyncProgress pb = MustSync(*b);
  SyncProgress pc = MustSync(*c);
  MustSync(*a);
  MustSync(*b);
  MustSync(*c);
  EXPECT_EQ(pb.conflicts, 0);
  EXPECT_EQ(pc.conflicts, 1);
  ExpectSame(*a, *b);
  ExpectSame(*a, *c);
  auto final_a = a->GetRecord(r->id());
  ASSERT_OK(final_a);
  // c edited last (later clock): its value wins; a's edit of another field survives.
  EXPECT_EQ(final_a->well().yield_lph(), 700);
  EXPECT_EQ(final_a->well().functional_status(), v1::FUNCTIONAL_STATUS_PARTLY_FUNCTIONAL);
  v1::Record on_server = ServerRecord(r->id());
  EXPECT_EQ(on_server.well().yield_lph(), 700);
  EXPECT_EQ(on_server.well().functional_status(), v1::FUNCTIONAL_STATUS_PARTLY_FUNCTIONAL);

  v1::ListConflictsRequest lreq;
  lreq.set_doc_id(r->id());
  v1::ListConflictsResponse conflicts;
  grpc::Status s = tracker_->ListConflicts(Ctx().get(), lreq, &conflicts);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_THAT(conflicts.conflicts(), SizeIs(1));
  EXPECT_EQ(conflicts.conflicts(0).path(), "well.yield_lph");
  EXPECT_EQ(conflicts.conflicts(0).collection(), "record");
}

TEST_F(ClientSyncTest, LostPushResponsesAreRetriedAndAppliedOnce) {
  // The first two Push responses are lost after the server committed them.
  auto lost = std::make_shared<std::atomic<int>>(2);
  ClientOptions options;
  options.fault_injector_for_testing = [lost](absl::string_view rpc) {
    if (rpc == "Push" && lost->fetch_sub(1) > 0) return absl::UnavailableError("response lost");
    return absl::OkStatus();
  };
  auto a = Enroll(partner_.id(), "a", options);
  auto b = Enroll(partner_.id(), "b");
  ASSERT_TRUE(a && b);
  MustSync(*a);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto r = a->CreateRecord(Well(project_.id(), 100 + i));
    ASSERT_OK(r);
    ids.push_back(r->id());
  }
  EXPECT_EQ(Pending(*a), 3);
  SyncProgress p = MustSync(*a);
  EXPECT_GE(p.retries, 1);
  EXPECT_EQ(Pending(*a), 0);
  EXPECT_EQ(ServerRecordCount(), 3);
  MustSync(*b);
  ExpectSame(*a, *b);
}

TEST_F(ClientSyncTest, OutboxIsKeptUntilAcknowledgedAndAReplayChangesNothing) {
  // Every Push response is lost and the sync gives up at once: the outbox keeps everything.
  // (With retries, the next handshake would report the acknowledgement.)
  auto drop = std::make_shared<std::atomic<bool>>(true);
  ClientOptions options;
  options.retry.max_attempts = 1;
  options.fault_injector_for_testing = [drop](absl::string_view rpc) {
    if (rpc == "Push" && drop->load()) return absl::UnavailableError("response lost");
    return absl::OkStatus();
  };
  auto a = Enroll(partner_.id(), "a", options);
  ASSERT_TRUE(a);
  MustSync(*a);
  auto r = a->CreateRecord(Well(project_.id()));
  ASSERT_OK(r);
  ASSERT_OK(a->CreateRecord(Well(project_.id(), 99)));
  EXPECT_THAT(a->Sync(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("response lost")));
  EXPECT_EQ(Pending(*a), 2);

  // Keep a copy of the changes and the token to replay them by hand later.
  auto store = client::LocalStore::Open(dir_.File("a.db"));
  ASSERT_OK(store);
  auto changes = (*store)->OutboxAfter(0, 100);
  ASSERT_OK(changes);
  ASSERT_THAT(*changes, SizeIs(2));
  auto token = (*store)->GetState(client::kTokenKey);
  ASSERT_OK(token);
  auto stream = (*store)->GetState(client::kStreamIdKey);
  ASSERT_OK(stream);

  // The server had applied them. The next handshake says so; the store does not take that on
  // trust (another copy of it could have used the numbers): it pushes them again, and the
  // server answers the replays without applying anything twice.
  drop->store(false);
  SyncProgress p = MustSync(*a);
  EXPECT_EQ(p.changes_pushed, 2);
  EXPECT_EQ(Pending(*a), 0);
  EXPECT_EQ(ServerRecordCount(), 2);
  int64_t version = ServerRecord(r->id()).audit().version();

  // A replay of the same batch is acknowledged and applies nothing.
  auto sync_stub = v1::SyncService::NewStub(channel_);
  v1::PushRequest replay;
  replay.set_stream_id(*stream);
  for (const auto& ch : *changes) *replay.add_changes() = ch;
  v1::PushResponse response;
  grpc::Status s = sync_stub->Push(Ctx(*token).get(), replay, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.acked_device_seq(), 2);
  EXPECT_EQ(response.conflicts(), 0);
  EXPECT_EQ(ServerRecord(r->id()).audit().version(), version);
  EXPECT_EQ(ServerRecordCount(), 2);
  SyncProgress again = MustSync(*a);
  EXPECT_EQ(again.changes_pushed, 0);
}

TEST_F(ClientSyncTest, APullCutMidwayResumesFromTheLastAppliedPage) {
  auto a = Enroll(partner_.id(), "a");
  ASSERT_TRUE(a);
  MustSync(*a);
  for (int i = 0; i < 12; ++i) ASSERT_OK(a->CreateRecord(Well(project_.id(), i)));
  MustSync(*a);

  auto pages = std::make_shared<std::atomic<int>>(0);
  ClientOptions options;
  options.pull_page_size = 2;
  options.fault_injector_for_testing = [pages](absl::string_view rpc) {
    if (rpc == "Pull" && pages->fetch_add(1) == 3) return absl::UnavailableError("link dropped");
    return absl::OkStatus();
  };
  auto b = Enroll(partner_.id(), "b", options);
  ASSERT_TRUE(b);
  SyncProgress p = MustSync(*b);
  EXPECT_EQ(p.retries, 1);
  // 13 documents (project + 12 records) in pages of 2; the cut page is pulled again, the three
  // before it are not.
  EXPECT_GE(p.documents_pulled, 13);
  EXPECT_LE(p.documents_pulled, 15);  // the scope may also hold the partner document
  ExpectSame(*a, *b);
}

TEST_F(ClientSyncTest, ClocksAYearAheadAndBehindStillConverge) {
  ClientOptions ahead, behind;
  ahead.physical_clock_ms = [] { return sync::SystemClockMs() + kYearMs; };
  behind.physical_clock_ms = [] { return sync::SystemClockMs() - kYearMs; };
  auto a = Enroll(partner_.id(), "ahead", ahead);
  auto b = Enroll(partner_.id(), "behind", behind);
  ASSERT_TRUE(a && b);
  // Enrollment already learned the correction, so edits made before the first sync are
  // stamped with about the right time.
  auto enrolled = a->Status();
  ASSERT_OK(enrolled);
  EXPECT_LT(enrolled->clock_offset_ms, -kYearMs + 60000);
  MustSync(*a);
  MustSync(*b);
  auto status = b->Status();
  ASSERT_OK(status);
  EXPECT_GT(status->clock_offset_ms, kYearMs - 60000);

  auto r = a->CreateRecord(Well(project_.id()));
  ASSERT_OK(r);
  MustSync(*a);
  MustSync(*b);
  // The device a year behind edits after the one a year ahead: with corrected clocks the later
  // edit wins, as it should.
  auto rb = b->GetRecord(r->id());
  ASSERT_OK(rb);
  rb->mutable_well()->set_yield_lph(42);
  ASSERT_OK(b->UpdateRecord(*rb));
  MustSync(*b);
  MustSync(*a);
  ExpectSame(*a, *b);
  auto ra = a->GetRecord(r->id());
  ASSERT_OK(ra);
  EXPECT_EQ(ra->well().yield_lph(), 42);
  EXPECT_EQ(ServerRecord(r->id()).well().yield_lph(), 42);
}

TEST_F(ClientSyncTest, CancelLeavesEverythingConsistent) {
  auto a = Enroll(partner_.id(), "a");
  ASSERT_TRUE(a);
  MustSync(*a);
  for (int i = 0; i < 5; ++i) ASSERT_OK(a->CreateRecord(Well(project_.id(), i)));
  // Cancel from the progress callback as soon as the push starts.
  auto cancelled = a->Sync([&](const SyncProgress& p) {
    if (p.phase == client::SyncPhase::kPush) a->Cancel();
  });
  EXPECT_THAT(cancelled, StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  SyncProgress p = MustSync(*a);
  EXPECT_EQ(Pending(*a), 0);
  EXPECT_EQ(ServerRecordCount(), 5);
  EXPECT_EQ(p.changes_pushed, 5);
}

TEST_F(ClientSyncTest, ARefusedChangeMovesToTheRejectionLogAndBlocksNothing) {
  auto a = Enroll(partner_.id(), "a");
  ASSERT_TRUE(a);
  MustSync(*a);
  ASSERT_OK(a->CreateRecord(Well(project_.id())));
  {
    // A change the server must refuse (as a buggy older app version might have written).
    auto store = client::LocalStore::Open(dir_.File("a.db"));
    ASSERT_OK(store);
    v1::Change bad;
    bad.set_collection("record");
    bad.set_doc_id("0190a000-0000-7000-8000-0000000000ff");
    bad.set_hlc(sync::Hlc{sync::SystemClockMs(), 0, a->Status()->device_id}.Encode());
    v1::FieldChange* f = bad.add_fields();
    f->set_path("no_such_field");
    f->set_value("x");
    ASSERT_OK((*store)->AppendChange(bad));
  }
  ASSERT_OK(a->CreateRecord(Well(project_.id())));  // after the bad one
  SyncProgress p = MustSync(*a);
  EXPECT_EQ(p.changes_refused, 1);
  EXPECT_EQ(Pending(*a), 0) << "a refused change must not stay in the outbox";
  EXPECT_EQ(ServerRecordCount(), 2) << "the change after the refused one must land";
  ASSERT_OK_AND_ASSIGN(std::vector<client::Rejection> refused, a->Rejections());
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].device_seq, 2);
  EXPECT_EQ(refused[0].status, "OPEN");
  EXPECT_EQ(refused[0].doc_id, "0190a000-0000-7000-8000-0000000000ff");
  EXPECT_THAT(refused[0].reason, HasSubstr("no_such_field"));
  // Nothing to resubmit that a device could write; the user gives it up.
  EXPECT_THAT(a->ResubmitRejection(refused[0].id),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no_such_field")));
  ASSERT_OK(a->DismissRejection(refused[0].id));
  ASSERT_OK_AND_ASSIGN(refused, a->Rejections());
  EXPECT_EQ(refused[0].status, "DISMISSED");
  // HQ has it whole.
  v1::ListRejectionsResponse listed;
  ASSERT_TRUE(tracker_->ListRejections(Ctx().get(), {}, &listed).ok());
  ASSERT_EQ(listed.rejections_size(), 1);
  EXPECT_EQ(listed.rejections(0).change().fields(0).path(), "no_such_field");
  MustSync(*a);  // and the next sync is clean
  EXPECT_EQ(Pending(*a), 0);
}

// A device whose clock is two days fast records a visit "today" by its clock: the server
// refuses the future date; the user sees why, corrects the record, and resubmits.
TEST_F(ClientSyncTest, ARefusedRecordCanBeAmendedAndResubmitted) {
  auto clock_ms = std::make_shared<std::atomic<int64_t>>(0);
  ClientOptions options;
  options.physical_clock_ms = [clock_ms] { return sync::SystemClockMs() + clock_ms->load(); };
  auto a = Enroll(partner_.id(), "a", options);
  ASSERT_TRUE(a);
  MustSync(*a);
  // The clock jumps after the last handshake: the device does not know yet.
  clock_ms->store(3 * 24 * 3600 * 1000LL);
  v1::Record visit = Well(project_.id());
  const std::string future = absl::FormatTime(
      "%Y-%m-%d", absl::Now() + absl::Hours(72), absl::UTCTimeZone());
  visit.mutable_well()->set_visit_date(future);
  ASSERT_OK_AND_ASSIGN(v1::Record created, a->CreateRecord(visit));
  SyncProgress p = MustSync(*a);
  EXPECT_EQ(p.changes_refused, 1);
  EXPECT_THAT(a->GetRecord(created.id()), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  ASSERT_OK_AND_ASSIGN(std::vector<client::Rejection> refused, a->Rejections());
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_THAT(refused[0].reason, HasSubstr("visit_date"));
  // The device now knows the right time: resubmitting as it was is refused locally.
  EXPECT_THAT(a->ResubmitRejection(refused[0].id),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("visit_date")));
  // Amended: resubmit the record with today's date through a normal create of the same id.
  visit.set_id(created.id());
  visit.mutable_well()->set_visit_date(
      absl::FormatTime("%Y-%m-%d", absl::Now(), absl::UTCTimeZone()));
  ASSERT_OK(a->CreateRecord(visit));
  p = MustSync(*a);
  EXPECT_EQ(p.changes_refused, 0);
  EXPECT_EQ(ServerRecord(created.id()).well().visit_date(), visit.well().visit_date());
}

// A restored copy of a device's store (or one store on two phones) numbers its changes like
// the original: the server tells them apart, the copy continues in a sequence space of its
// own, and every record of both lands.
TEST_F(ClientSyncTest, ARestoredCopyOfAStoreLosesNothing) {
  auto a = Enroll(partner_.id(), "a");
  ASSERT_TRUE(a);
  MustSync(*a);
  ASSERT_OK(a->CreateRecord(Well(project_.id(), 1)));
  MustSync(*a);
  a.reset();
  // Two copies of the same file, as a backup restored onto another phone would be.
  std::filesystem::copy_file(dir_.File("a.db"), dir_.File("copy1.db"));
  std::filesystem::copy_file(dir_.File("a.db"), dir_.File("copy2.db"));
  ASSERT_OK_AND_ASSIGN(auto original, Client::Open(dir_.File("a.db")));
  ASSERT_OK_AND_ASSIGN(auto fewer, Client::Open(dir_.File("copy1.db")));
  ASSERT_OK_AND_ASSIGN(auto more, Client::Open(dir_.File("copy2.db")));
  for (int i = 0; i < 2; ++i) ASSERT_OK(original->CreateRecord(Well(project_.id(), 10 + i)));
  ASSERT_OK(fewer->CreateRecord(Well(project_.id(), 20)));
  for (int i = 0; i < 3; ++i) ASSERT_OK(more->CreateRecord(Well(project_.id(), 30 + i)));
  MustSync(*original);
  MustSync(*fewer);  // wrote fewer than the server acknowledges: a new stream at the handshake
  MustSync(*more);   // wrote more: its numbers collide, the server says so at the push
  MustSync(*original);
  MustSync(*fewer);
  EXPECT_EQ(ServerRecordCount(), 1 + 2 + 1 + 3);
  for (Client* c : {original.get(), fewer.get(), more.get()}) {
    EXPECT_EQ(Pending(*c), 0);
    EXPECT_EQ(Records(*c).size(), 7u);
  }
  ExpectSame(*original, *more);
}

// A device whose date is set a year ahead syncs once and learns the offset. Its clock must
// come back down: an edit it makes after that, followed by an HQ edit of the same field, must
// lose to HQ's — the later one — when the device next syncs. (Before, the device's clock stayed
// a year ahead, the server restamped each of its edits at arrival, and they beat HQ's.)
TEST_F(ClientSyncTest, AClockThatRanAheadComesBackDownAfterOneSync) {
  auto jump = std::make_shared<std::atomic<int64_t>>(0);
  ClientOptions options;
  options.physical_clock_ms = [jump] { return sync::SystemClockMs() + jump->load(); };
  auto a = Enroll(partner_.id(), "a", options);
  ASSERT_TRUE(a);
  MustSync(*a);
  ASSERT_OK_AND_ASSIGN(v1::Record r, a->CreateRecord(Well(project_.id())));
  MustSync(*a);
  jump->store(kYearMs);  // the date is set a year ahead, after the last handshake
  r.mutable_well()->set_yield_lph(1);
  ASSERT_OK_AND_ASSIGN(r, a->UpdateRecord(r));  // stamped a year ahead: it cannot know
  MustSync(*a);                                  // restamped by the server; offset learned
  r.mutable_well()->set_yield_lph(5);
  ASSERT_OK(a->UpdateRecord(r));  // an edit after the sync, offline
  // HQ edits the same field later.
  v1::Record at_hq = ServerRecord(r.id());
  at_hq.mutable_well()->set_yield_lph(2);
  v1::UpdateRecordRequest ureq;
  *ureq.mutable_record() = at_hq;
  v1::Record updated;
  ASSERT_TRUE(tracker_->UpdateRecord(Ctx().get(), ureq, &updated).ok());
  MustSync(*a);
  EXPECT_EQ(ServerRecord(r.id()).well().yield_lph(), 2) << "the later edit (HQ's) must win";
  ASSERT_OK_AND_ASSIGN(v1::Record local, a->GetRecord(r.id()));
  EXPECT_EQ(local.well().yield_lph(), 2);
  // The device's edit was logged with the time it was made, not restamped at arrival.
  auto rows = testing::QueryRows(
      server_.db_path(), "SELECT hlc FROM change_log WHERE doc_id = '" + r.id() +
                             "' AND device_id IS NOT NULL ORDER BY seq DESC LIMIT 1");
  ASSERT_OK(rows);
  ASSERT_OK_AND_ASSIGN(sync::Hlc last, sync::Hlc::Decode(rows->at(0).at(0).value_or("")));
  EXPECT_LT(last.wall_ms, sync::SystemClockMs() + 60'000);
  EXPECT_LT(last.wall_ms, updated.audit().updated_at().seconds() * 1000 + 1000);
}

TEST_F(ClientSyncTest, SyncSurvivesAServerRestart) {
  ClientOptions options;
  options.retry.max_attempts = 2;
  auto a = Enroll(partner_.id(), "a", options);
  ASSERT_TRUE(a);
  MustSync(*a);
  ASSERT_OK(a->CreateRecord(Well(project_.id())));
  server_.Stop();
  EXPECT_THAT(a->Sync(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("attempts")));
  EXPECT_EQ(Pending(*a), 1);
  ASSERT_OK(server_.Restart());
  ClientOptions patient;
  patient.retry.initial_backoff_ms = 100;
  a.reset();
  auto reopened = Client::Open(dir_.File("a.db"), patient);
  ASSERT_OK(reopened);
  MustSync(**reopened);
  EXPECT_EQ(Pending(**reopened), 0);
  EXPECT_EQ(ServerRecordCount(), 1);
}

TEST_F(ClientSyncTest, TheCApiWorksFromC) {
  std::string code = EnrollmentCode(partner_.id(), "c-app");
  testing::CommandResult result = testing::RunCommand(
      {FIELDSYNC_C_API_TEST_PATH, server_.address(), code, dir_.File("c-app.db"), project_.id()});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  // The program created a record, synced, then deleted it and synced again.
  EXPECT_EQ(ServerRecordCount(), 0);
}


TEST_F(ClientSyncTest, ADeviceEnrolledAgainContinuesItsNumberingAndLosesNothing) {
  auto first = Enroll(partner_.id(), "phone");
  ASSERT_TRUE(first);
  MustSync(*first);
  for (int i = 0; i < 3; ++i) ASSERT_OK(first->CreateRecord(Well(project_.id(), 1000 + i)));
  MustSync(*first);
  ASSERT_OK_AND_ASSIGN(auto before, first->Status());
  ASSERT_EQ(before.acked_device_seq, 3);

  // The phone is wiped; HQ issues a new code for the same device and the app enrolls again.
  v1::CreateEnrollmentRequest ereq;
  ereq.set_device_id(before.device_id);
  v1::CreateEnrollmentResponse code;
  ASSERT_TRUE(admin_->CreateEnrollment(Ctx().get(), ereq, &code).ok());
  auto again = Client::Enroll(server_.address(), code.code(), dir_.File("wiped.db"));
  ASSERT_OK(again);
  MustSync(**again);
  ASSERT_OK((*again)->CreateRecord(Well(project_.id(), 4321)));
  ASSERT_OK_AND_ASSIGN(auto pending, (*again)->Status());
  EXPECT_EQ(pending.pending_changes, 1);
  EXPECT_EQ(pending.last_device_seq, 1);  // a new store: a sequence space of its own
  MustSync(**again);

  v1::ListRecordsRequest all;
  all.set_project_id(project_.id());
  v1::ListRecordsResponse on_server;
  ASSERT_TRUE(tracker_->ListRecords(Ctx().get(), all, &on_server).ok());
  EXPECT_EQ(on_server.records_size(), 4);
  ASSERT_OK_AND_ASSIGN(auto local, (*again)->ListRecords(all));
  EXPECT_EQ(local.records_size(), 4);
}

// Stranded work: HQ revoked the device's token while it held unsent records. The same store
// enrolls again with a new code for its device and delivers them; a code for another device is
// refused without being used up. Then the server moves and the store follows it.
TEST_F(ClientSyncTest, ARevokedStoreEnrollsAgainKeepingItsOutboxAndFollowsItsServer) {
  const std::string db = dir_.File("phone.db");
  auto phone = Enroll(partner_.id(), "phone");
  ASSERT_TRUE(phone);
  MustSync(*phone);
  for (int i = 0; i < 3; ++i) ASSERT_OK(phone->CreateRecord(Well(project_.id(), 500 + i)));
  ASSERT_OK_AND_ASSIGN(auto before, phone->Status());
  ASSERT_EQ(before.pending_changes, 3);

  v1::ListTokensRequest lreq;
  lreq.set_device_id(before.device_id);
  v1::ListTokensResponse tokens;
  ASSERT_TRUE(admin_->ListTokens(Ctx().get(), lreq, &tokens).ok());
  ASSERT_EQ(tokens.tokens_size(), 1);
  v1::RevokeTokenRequest rreq;
  rreq.set_id(tokens.tokens(0).id());
  v1::Token revoked;
  ASSERT_TRUE(admin_->RevokeToken(Ctx().get(), rreq, &revoked).ok());
  EXPECT_THAT(phone->Sync(), StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("revoked")));
  phone.reset();

  // A code for another device: refused, and still good for its own device.
  const std::string other_code = EnrollmentCode(partner_.id(), "other");
  EXPECT_THAT(Client::Enroll(server_.address(), other_code, db),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("another device")));
  EXPECT_OK(Client::Enroll(server_.address(), other_code, dir_.File("other.db")));

  // A code for this device: the store is enrolled again with everything in it.
  v1::CreateEnrollmentRequest ereq;
  ereq.set_device_id(before.device_id);
  v1::CreateEnrollmentResponse code;
  ASSERT_TRUE(admin_->CreateEnrollment(Ctx().get(), ereq, &code).ok());
  ASSERT_OK_AND_ASSIGN(phone, Client::Enroll(server_.address(), code.code(), db));
  ASSERT_OK_AND_ASSIGN(auto again, phone->Status());
  EXPECT_EQ(again.device_id, before.device_id);
  EXPECT_EQ(again.pending_changes, 3);
  EXPECT_EQ(again.records, before.records);
  EXPECT_EQ(MustSync(*phone).changes_pushed, 3);
  EXPECT_EQ(ServerRecordCount(), 3);
  // Its token works, so there is nothing to enroll again.
  ereq.set_device_id(before.device_id);
  ASSERT_TRUE(admin_->CreateEnrollment(Ctx().get(), ereq, &code).ok());
  EXPECT_THAT(Client::Enroll(server_.address(), code.code(), db),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("still works")));

  // The server moves (here: behind a proxy at another port): the store follows it.
  EXPECT_THAT(phone->SetServerAddress("127.0.0.1:70000"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("65535")));
  testing::TcpProxy moved(server_.address());
  ASSERT_OK(moved.Start());
  ASSERT_OK(phone->SetServerAddress(moved.address()));
  ASSERT_OK(phone->CreateRecord(Well(project_.id(), 777)));
  EXPECT_EQ(MustSync(*phone).changes_pushed, 1);
  EXPECT_GT(moved.bytes_to_server(), 0);
  EXPECT_EQ(ServerRecordCount(), 4);
  phone.reset();
  ASSERT_OK_AND_ASSIGN(phone, Client::Open(db));
  ASSERT_OK_AND_ASSIGN(auto reopened, phone->Status());
  EXPECT_EQ(reopened.server_address, moved.address());
}

TEST_F(ClientSyncTest, ARefusedEnrollmentLeavesNoStoreBehind) {
  std::string path = dir_.File("never.db");
  auto refused = Client::Enroll(server_.address(), "AAAA-BBBB-CCCC-DDDD-EEEE", path);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kNotFound, HasSubstr("code")));
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "a store was left at " << path;
}

}  // namespace
}  // namespace fieldsync
