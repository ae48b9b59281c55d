// SyncService as a hostile or unlucky client sees it: raw gRPC against the real fieldsyncd,
// without the client library, so every rule of the protocol is checked on the server itself.

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "fieldsync/base/ids.h"
#include "fieldsync/sync/checksum.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/sync/hlc.h"
#include "fieldsync/v1/admin.grpc.pb.h"
#include "fieldsync/v1/sync.grpc.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "server/change_log.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = ::fieldsync::v1;

class SyncProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start(dir_.path()).ok()) << server_.Log();
    channel_ = server_.Channel();
    hq_ = std::make_unique<testing::Hq>(channel_, server_.admin_token());
    tracker_ = v1::TrackerService::NewStub(channel_);
    admin_ = v1::AdminService::NewStub(channel_);
    sync_ = v1::SyncService::NewStub(channel_);
    mine_ = CreatePartner("Borehole Trust Kenya", "KE");
    theirs_ = CreatePartner("Mekong Water", "VN");
    my_project_ = CreateProject(mine_, "KE");
    their_project_ = CreateProject(theirs_, "VN");
    device_token_ = Enroll(mine_, &device_id_);
  }

  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!token.empty()) testing::AddBearer(*ctx, token);
    return ctx;
  }
  std::unique_ptr<grpc::ClientContext> Admin() { return Ctx(server_.admin_token()); }

  std::string CreatePartner(const std::string& name, const std::string& country) {
    return hq_->CreatePartner(name, {country}).id();
  }

  std::string CreateProject(const std::string& partner, const std::string& country) {
    return hq_->CreateProject(partner, v1::PROJECT_KIND_WELL, country, "Wells").id();
  }

  // Registers a device of `partner`, enrolls it with a one-time code, returns its token.
  std::string Enroll(const std::string& partner, std::string* device_id) {
    std::string code = hq_->EnrollmentCode(partner, "Tablet", device_id);
    v1::EnrollRequest req;
    req.set_code(code);
    v1::EnrollResponse enrolled;
    grpc::ClientContext ctx;
    grpc::Status s = sync_->Enroll(&ctx, req, &enrolled);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(enrolled.device_id(), *device_id);
    EXPECT_EQ(enrolled.partner_id(), partner);
    return enrolled.token();
  }

  static v1::Record Well(const std::string& project, int population) {
    v1::Record r;
    r.set_project_id(project);
    v1::WellRecord* w = r.mutable_well();
    w->set_drilled_depth_m(60);
    w->set_static_water_level_m(12);
    w->set_yield_lph(900);
    w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
    w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
    w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
    w->set_population_served(population);
    w->set_visit_date("2026-05-02");
    return r;
  }

  // A change creating `record` as device `device_id`, numbered `seq`.
  static v1::Change CreateChange(const std::string& device_id, int64_t seq, v1::Record record,
                                 int64_t wall_ms = 0) {
    if (record.id().empty()) record.set_id(NewUuidV7());
    v1::Change c;
    c.set_device_seq(seq);
    c.set_collection("record");
    c.set_doc_id(record.id());
    sync::Hlc hlc{wall_ms ? wall_ms : sync::SystemClockMs(), 0, device_id};
    c.set_hlc(hlc.Encode());
    for (const auto& [path, value] : sync::Flatten(record)) {
      v1::FieldChange* f = c.add_fields();
      f->set_path(path);
      f->set_value(value);
    }
    return c;
  }

  grpc::Status Push(const std::vector<v1::Change>& changes, v1::PushResponse* out,
                    const std::string& token = "") {
    v1::PushRequest req;
    for (const auto& c : changes) *req.add_changes() = c;
    return sync_->Push(Ctx(token.empty() ? device_token_ : token).get(), req, out);
  }

  // Pulls everything from `cursor`; returns the pages.
  std::vector<v1::PullPage> PullAll(const std::string& token, const std::string& cursor = "",
                                    int page_size = 0) {
    v1::PullRequest req;
    req.set_cursor(cursor);
    req.set_page_size(page_size);
    auto ctx = Ctx(token);
    auto reader = sync_->Pull(ctx.get(), req);
    std::vector<v1::PullPage> pages;
    v1::PullPage page;
    while (reader->Read(&page)) pages.push_back(page);
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return pages;
  }

  int64_t Count(const std::string& sql) { return testing::QueryInt(server_.db_path(), sql); }

  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<testing::Hq> hq_;
  std::unique_ptr<v1::TrackerService::Stub> tracker_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<v1::SyncService::Stub> sync_;
  std::string mine_, theirs_, my_project_, their_project_, device_token_, device_id_;
};

TEST_F(SyncProtocolTest, HandshakeCarriesVersionTimeAndScope) {
  v1::HandshakeRequest req;
  req.set_protocol_version(v1::PROTOCOL_VERSION_1);
  v1::HandshakeResponse resp;
  ASSERT_TRUE(sync_->Handshake(Ctx(device_token_).get(), req, &resp).ok());
  EXPECT_EQ(resp.protocol_version(), v1::PROTOCOL_VERSION_1);
  EXPECT_NEAR(resp.server_time_ms(), sync::SystemClockMs(), 60'000);
  EXPECT_TRUE(sync::Hlc::Decode(resp.server_hlc()).ok());
  EXPECT_EQ(resp.device_id(), device_id_);
  EXPECT_EQ(resp.partner_id(), mine_);
  EXPECT_EQ(resp.acked_device_seq(), 0);

  req.set_protocol_version(static_cast<v1::ProtocolVersion>(7));
  grpc::Status s = sync_->Handshake(Ctx(device_token_).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("protocol_version"));

  // HQ tokens do not sync.
  s = sync_->Handshake(Admin().get(), v1::HandshakeRequest(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(SyncProtocolTest, EnrollmentCodesWorkOnce) {
  v1::CreateDeviceRequest dreq;
  dreq.mutable_device()->set_partner_id(mine_);
  dreq.mutable_device()->set_name("Phone");
  v1::Device device;
  ASSERT_TRUE(admin_->CreateDevice(Admin().get(), dreq, &device).ok());
  v1::CreateEnrollmentRequest ereq;
  ereq.set_device_id(device.id());
  v1::CreateEnrollmentResponse code;
  ASSERT_TRUE(admin_->CreateEnrollment(Admin().get(), ereq, &code).ok());
  EXPECT_EQ(code.code().size(), 24u);  // 20 characters in groups of 4
  v1::EnrollRequest req;
  // Codes are forgiving about case and dashes, as people type them.
  std::string typed = code.code();
  typed.erase(std::remove(typed.begin(), typed.end(), '-'), typed.end());
  std::transform(typed.begin(), typed.end(), typed.begin(), ::tolower);
  req.set_code(typed);
  v1::EnrollResponse first;
  grpc::ClientContext c1;
  ASSERT_TRUE(sync_->Enroll(&c1, req, &first).ok());
  grpc::ClientContext c2;
  v1::EnrollResponse second;
  grpc::Status s = sync_->Enroll(&c2, req, &second);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(second.token().empty());
  EXPECT_EQ(Count(testing::IsPostgresUrl(server_.db_path())
                      ? "SELECT COUNT(*) FROM change_log WHERE position(convert_to('" +
                            code.code() + "', 'UTF8') in payload) > 0"  // bytea on PostgreSQL
                      : "SELECT COUNT(*) FROM change_log WHERE payload LIKE '%" + code.code() +
                            "%'"),
            0);
  EXPECT_THAT(server_.Log(), ::testing::Not(HasSubstr(code.code())));
}

TEST_F(SyncProtocolTest, PushIsIdempotentAndAcknowledgesOnlyContiguousChanges) {
  std::vector<v1::Change> batch = {CreateChange(device_id_, 1, Well(my_project_, 100)),
                                   CreateChange(device_id_, 2, Well(my_project_, 200))};
  v1::PushResponse resp;
  ASSERT_TRUE(Push(batch, &resp).ok());
  EXPECT_EQ(resp.acked_device_seq(), 2);
  int64_t log_rows = Count("SELECT COUNT(*) FROM change_log");
  int64_t records = Count("SELECT COUNT(*) FROM records");
  EXPECT_EQ(records, 2);

  // The response was lost; the device replays the batch: nothing is applied twice.
  ASSERT_TRUE(Push(batch, &resp).ok());
  EXPECT_EQ(resp.acked_device_seq(), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM change_log"), log_rows);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM records"), records);

  // A gap is refused: the server never acknowledges past a change it has not seen.
  grpc::Status s = Push({CreateChange(device_id_, 4, Well(my_project_, 400))}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("changes[0].device_seq: expected 3"));

  v1::HandshakeResponse hs;
  v1::HandshakeRequest hreq;
  hreq.set_protocol_version(v1::PROTOCOL_VERSION_1);
  ASSERT_TRUE(sync_->Handshake(Ctx(device_token_).get(), hreq, &hs).ok());
  EXPECT_EQ(hs.acked_device_seq(), 2);
  // Operators see each push in the log, and never the device's token.
  EXPECT_THAT(server_.Log(), HasSubstr("push device=" + device_id_ + " changes=2 acked=2"));
  EXPECT_THAT(server_.Log(), HasSubstr("push refused device=" + device_id_));
  EXPECT_THAT(server_.Log(), ::testing::Not(HasSubstr(device_token_)));
}

TEST_F(SyncProtocolTest, ABadChangeIsRefusedAloneAndKeptWhole) {
  v1::Record bad = Well(my_project_, 300);
  bad.mutable_well()->set_drilled_depth_m(-3);
  std::vector<v1::Change> batch = {CreateChange(device_id_, 1, Well(my_project_, 100)),
                                   CreateChange(device_id_, 2, bad),
                                   CreateChange(device_id_, 3, Well(my_project_, 200))};
  v1::PushResponse resp;
  grpc::Status s = Push(batch, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.acked_device_seq(), 3);
  ASSERT_EQ(resp.rejections_size(), 1);
  EXPECT_EQ(resp.rejections(0).device_seq(), 2);
  EXPECT_EQ(resp.rejections(0).code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(resp.rejections(0).reason(), HasSubstr("changes[1]"));
  EXPECT_THAT(resp.rejections(0).reason(), HasSubstr("drilled_depth_m"));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM records"), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM doc_fields WHERE doc_id = '" + batch[1].doc_id() + "'"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rejections WHERE doc_id = '" + batch[1].doc_id() + "'"), 1);
}

TEST_F(SyncProtocolTest, APushTouchingAnotherPartnerIsRefusedAndChangesNothingOfTheirs) {
  std::vector<v1::Change> batch = {CreateChange(device_id_, 1, Well(my_project_, 100)),
                                   CreateChange(device_id_, 2, Well(their_project_, 100))};
  v1::PushResponse resp;
  grpc::Status s = Push(batch, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.rejections_size(), 1);
  EXPECT_THAT(resp.rejections(0).reason(), HasSubstr("changes[1]: record.project_id"));
  EXPECT_THAT(resp.rejections(0).reason(), Not(HasSubstr(theirs_)));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM records WHERE partner_id = '" + theirs_ + "'"), 0);

  // Editing a record HQ created in the other partner's project is refused too.
  v1::CreateRecordRequest creq;
  *creq.mutable_record() = Well(their_project_, 50);
  v1::Record theirs;
  ASSERT_TRUE(tracker_->CreateRecord(Admin().get(), creq, &theirs).ok());
  v1::Change edit;
  edit.set_device_seq(3);
  edit.set_collection("record");
  edit.set_doc_id(theirs.id());
  edit.set_hlc(sync::Hlc{sync::SystemClockMs(), 0, device_id_}.Encode());
  v1::Record value;
  value.mutable_well()->set_population_served(9999);
  v1::FieldChange* f = edit.add_fields();
  f->set_path("well.population_served");
  f->set_value(sync::Flatten(value).at("well.population_served"));
  s = Push({edit}, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.rejections_size(), 1);
  v1::GetRecordRequest g;
  g.set_id(theirs.id());
  v1::Record got;
  ASSERT_TRUE(tracker_->GetRecord(Admin().get(), g, &got).ok());
  EXPECT_EQ(got.well().population_served(), 50);
}

TEST_F(SyncProtocolTest, MalformedChangesAreRefusedNamingTheField) {
  struct Case {
    std::string name;
    std::function<void(v1::Change&)> mutate;
    std::string fragment;
  };
  std::vector<Case> cases = {
      {"unknown collection", [](v1::Change& c) { c.set_collection("partner_secrets"); },
       "collection"},
      {"bad doc id", [](v1::Change& c) { c.set_doc_id("../etc"); }, "doc_id"},
      {"bad hlc", [](v1::Change& c) { c.set_hlc("yesterday"); }, "hlc"},
      {"someone else's clock",
       [](v1::Change& c) { c.set_hlc(sync::Hlc{sync::SystemClockMs(), 0, "other"}.Encode()); },
       "hlc"},
      {"unknown path", [](v1::Change& c) { c.mutable_fields(0)->set_path("well.bogus"); },
       "well.bogus"},
      {"garbage value", [](v1::Change& c) { c.mutable_fields(0)->set_value("\xff\xff\xff"); },
       "fields[0]"},
      {"no fields", [](v1::Change& c) { c.clear_fields(); }, "fields"},
  };
  int64_t seq = 0;
  for (const Case& tc : cases) {
    v1::Change c = CreateChange(device_id_, ++seq, Well(my_project_, 10));
    tc.mutate(c);
    v1::PushResponse resp;
    grpc::Status s = Push({c}, &resp);
    ASSERT_TRUE(s.ok()) << tc.name << ": " << s.error_message();
    ASSERT_EQ(resp.rejections_size(), 1) << tc.name;
    EXPECT_EQ(resp.rejections(0).code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT))
        << tc.name;
    EXPECT_THAT(resp.rejections(0).reason(), HasSubstr(tc.fragment))
        << tc.name << ": " << resp.rejections(0).reason();
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM records"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rejections"), seq);
  v1::PullRequest bad_cursor;
  bad_cursor.set_cursor("not-a-cursor");
  auto ctx = Ctx(device_token_);
  auto reader = sync_->Pull(ctx.get(), bad_cursor);
  v1::PullPage page;
  while (reader->Read(&page)) {
  }
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("cursor"));
}

TEST_F(SyncProtocolTest, PullIsScopedPagedResumableAndEndsWithTheChecksum) {
  // HQ writes to both partners; the device pushes to its own.
  for (int i = 0; i < 7; ++i) {
    v1::CreateRecordRequest creq;
    *creq.mutable_record() = Well(i % 2 ? my_project_ : their_project_, 10 + i);
    v1::Record out;
    ASSERT_TRUE(tracker_->CreateRecord(Admin().get(), creq, &out).ok());
  }
  v1::PushResponse resp;
  ASSERT_TRUE(Push({CreateChange(device_id_, 1, Well(my_project_, 5))}, &resp).ok());

  std::vector<v1::PullPage> pages = PullAll(device_token_, "", 2);
  ASSERT_GE(pages.size(), 2u);
  std::set<std::string> docs;
  sync::ScopeChecksum sum;
  std::map<std::string, std::pair<std::string, sync::FieldValues>> by_id;
  for (size_t i = 0; i < pages.size(); ++i) {
    EXPECT_EQ(pages[i].last(), i + 1 == pages.size());
    EXPECT_LE(pages[i].documents_size(), 2);
    for (const v1::DocumentDelta& d : pages[i].documents()) {
      docs.insert(d.doc_id());
      auto& entry = by_id[d.doc_id()];
      entry.first = d.collection();
      for (const auto& f : d.fields()) entry.second[f.path()] = f.value();
    }
  }
  // 1 project + 3 HQ records + 1 pushed record of its own partner; nothing of the other.
  EXPECT_EQ(docs.size(), 5u);
  EXPECT_FALSE(docs.count(their_project_));
  for (const auto& [id, doc] : by_id) {
    if (doc.first == "record") {
      v1::Record r;
      ASSERT_TRUE(sync::Assemble(doc.second, &r).ok());
      EXPECT_EQ(r.project_id(), my_project_);
    }
    sync::Document d;
    d.collection = doc.first;
    d.id = id;
    for (const auto& [path, value] : doc.second) d.fields[path].value = value;
    ASSERT_TRUE(sum.Add(d).ok());
  }
  EXPECT_EQ(pages.back().scope_documents(), 5);
  EXPECT_EQ(pages.back().scope_checksum(), sum.Hex());

  // Resuming from the first page's cursor returns the rest, not the first page again.
  std::vector<v1::PullPage> rest = PullAll(device_token_, pages[0].cursor(), 2);
  size_t rest_docs = 0;
  for (const auto& p : rest) rest_docs += p.documents_size();
  EXPECT_EQ(rest_docs, 5u - pages[0].documents_size());

  // After a full pull, an incremental pull sends only the fields that changed.
  v1::GetRecordRequest g;
  std::string my_record;
  for (const auto& [id, doc] : by_id) {
    if (doc.first == "record") my_record = id;
  }
  g.set_id(my_record);
  v1::Record current;
  ASSERT_TRUE(tracker_->GetRecord(Admin().get(), g, &current).ok());
  v1::UpdateRecordRequest up;
  *up.mutable_record() = current;
  up.mutable_record()->mutable_well()->set_yield_lph(4321);
  v1::Record updated;
  ASSERT_TRUE(tracker_->UpdateRecord(Admin().get(), up, &updated).ok());
  std::vector<v1::PullPage> delta = PullAll(device_token_, pages.back().cursor());
  ASSERT_EQ(delta.size(), 1u);
  ASSERT_EQ(delta[0].documents_size(), 1);
  ASSERT_EQ(delta[0].documents(0).fields_size(), 1);
  EXPECT_EQ(delta[0].documents(0).fields(0).path(), "well.yield_lph");

  // HQ sees the device's last sync.
  v1::ListDevicesRequest lreq;
  lreq.set_partner_id(mine_);
  v1::ListDevicesResponse devices;
  ASSERT_TRUE(admin_->ListDevices(Admin().get(), lreq, &devices).ok());
  ASSERT_EQ(devices.devices_size(), 1);
  EXPECT_TRUE(devices.devices(0).has_last_sync_at());
  EXPECT_EQ(devices.devices(0).acked_device_seq(), 1);
}

TEST_F(SyncProtocolTest, ConcurrentEditsOfOneFieldAreConflictsHqCanResolve) {
  v1::Record created = Well(my_project_, 100);
  created.set_id(NewUuidV7());
  v1::Change create = CreateChange(device_id_, 1, created);
  v1::PushResponse resp;
  ASSERT_TRUE(Push({create}, &resp).ok());
  std::string other_id;
  std::string other_token = Enroll(mine_, &other_id);

  // Both devices edit population_served having seen only the created value.
  auto edit = [&](const std::string& device, int64_t seq, int population, int64_t wall_ms) {
    v1::Change c;
    c.set_device_seq(seq);
    c.set_collection("record");
    c.set_doc_id(created.id());
    c.set_hlc(sync::Hlc{wall_ms, 0, device}.Encode());
    v1::Record value;
    value.mutable_well()->set_population_served(population);
    v1::FieldChange* f = c.add_fields();
    f->set_path("well.population_served");
    f->set_value(sync::Flatten(value).at("well.population_served"));
    f->set_base_hlc(create.hlc());
    return c;
  };
  int64_t now = sync::SystemClockMs();
  ASSERT_TRUE(Push({edit(device_id_, 2, 150, now + 10)}, &resp).ok());
  ASSERT_TRUE(Push({edit(other_id, 1, 175, now + 5)}, &resp, other_token).ok());
  EXPECT_EQ(resp.conflicts(), 1);

  v1::GetRecordRequest g;
  g.set_id(created.id());
  v1::Record got;
  ASSERT_TRUE(tracker_->GetRecord(Admin().get(), g, &got).ok());
  EXPECT_EQ(got.well().population_served(), 150);  // the later clock wins

  v1::ListConflictsRequest lreq;
  lreq.set_status(v1::CONFLICT_STATUS_OPEN);
  v1::ListConflictsResponse conflicts;
  ASSERT_TRUE(tracker_->ListConflicts(Admin().get(), lreq, &conflicts).ok());
  ASSERT_EQ(conflicts.conflicts_size(), 1);
  const v1::Conflict& c = conflicts.conflicts(0);
  EXPECT_EQ(c.path(), "well.population_served");
  EXPECT_EQ(c.winning_writer(), device_id_);
  EXPECT_EQ(c.losing_writer(), other_id);
  EXPECT_THAT(c.losing_value_json(), HasSubstr("175"));
  // The other partner's device sees none of it.
  std::string stranger_id;
  std::string stranger = Enroll(theirs_, &stranger_id);
  v1::ListConflictsResponse none;
  ASSERT_TRUE(tracker_->ListConflicts(Ctx(stranger).get(), lreq, &none).ok());
  EXPECT_EQ(none.conflicts_size(), 0);
  // HQ devices list shows the open conflict on both devices.
  v1::ListDevicesResponse devices;
  ASSERT_TRUE(admin_->ListDevices(Admin().get(), v1::ListDevicesRequest(), &devices).ok());
  for (const auto& d : devices.devices()) {
    if (d.id() == device_id_ || d.id() == other_id) {
      EXPECT_EQ(d.open_conflicts(), 1) << d.id();
    }
  }

  v1::ResolveConflictRequest rreq;
  rreq.set_id(c.id());
  rreq.set_resolution(v1::CONFLICT_RESOLUTION_TAKE_LOSER);
  v1::Conflict resolved;
  ASSERT_TRUE(tracker_->ResolveConflict(Admin().get(), rreq, &resolved).ok());
  EXPECT_EQ(resolved.status(), v1::CONFLICT_STATUS_RESOLVED);
  ASSERT_TRUE(tracker_->GetRecord(Admin().get(), g, &got).ok());
  EXPECT_EQ(got.well().population_served(), 175);
  grpc::Status again = tracker_->ResolveConflict(Admin().get(), rreq, &resolved);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(SyncProtocolTest, AClockFarInTheFutureIsBoundedToServerTime) {
  int64_t year_ms = 366LL * 24 * 3600 * 1000;
  v1::Record r = Well(my_project_, 100);
  r.set_id(NewUuidV7());
  v1::PushResponse resp;
  ASSERT_TRUE(Push({CreateChange(device_id_, 1, r, sync::SystemClockMs() + year_ms)}, &resp).ok());
  // HQ edits the same field a moment later: its edit must win, although the device's clock
  // claimed a time a year ahead.
  v1::GetRecordRequest g;
  g.set_id(r.id());
  v1::Record current;
  ASSERT_TRUE(tracker_->GetRecord(Admin().get(), g, &current).ok());
  v1::UpdateRecordRequest up;
  *up.mutable_record() = current;
  up.mutable_record()->mutable_well()->set_population_served(222);
  v1::Record updated;
  ASSERT_TRUE(tracker_->UpdateRecord(Admin().get(), up, &updated).ok());
  EXPECT_EQ(updated.well().population_served(), 222);
  // The stored clock of the device's fields is near the server's time, not a year ahead.
  std::vector<v1::PullPage> pages = PullAll(device_token_);
  for (const auto& p : pages) {
    for (const auto& d : p.documents()) {
      for (const auto& f : d.fields()) {
        auto hlc = sync::Hlc::Decode(f.hlc());
        ASSERT_TRUE(hlc.ok());
        EXPECT_LT(hlc->wall_ms, sync::SystemClockMs() + 10 * 60 * 1000) << f.path();
      }
    }
  }
}

TEST_F(SyncProtocolTest, ChangeLogKeepsEveryPushedChangeAndItsChainVerifies) {
  v1::Record r = Well(my_project_, 100);
  r.set_id(NewUuidV7());
  v1::PushResponse resp;
  ASSERT_TRUE(Push({CreateChange(device_id_, 1, r)}, &resp).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM change_log WHERE device_id = '" + device_id_ +
                  "' AND device_seq = 1"),
            1);
  // Recompute the whole chain from the database.
  ASSERT_OK_AND_ASSIGN(
      std::vector<testing::SqlRow> log,
      testing::QueryRows(server_.db_path(),
                         "SELECT seq, collection, doc_id, op, actor_id, COALESCE(device_id, ''), "
                         "COALESCE(device_seq, 0), COALESCE(hlc, ''), server_time, payload, "
                         "prev_hash, hash FROM change_log ORDER BY seq"));
  std::string prev = server::kGenesisHash;
  int rows = 0;
  for (const testing::SqlRow& row : log) {
    auto text = [&](int i) { return row[i].value_or(""); };
    auto integer = [&](int i) { return std::strtoll(text(i).c_str(), nullptr, 10); };
    server::ChangeLogEntry e;
    e.seq = integer(0);
    e.collection = text(1);
    e.doc_id = text(2);
    e.op = text(3);
    e.actor_id = text(4);
    e.device_id = text(5);
    e.device_seq = integer(6);
    e.hlc = text(7);
    e.server_time = absl::FromUnixMicros(integer(8));
    e.payload = text(9);
    EXPECT_EQ(text(10), prev) << e.seq;
    EXPECT_EQ(text(11), server::ChainHash(prev, e)) << e.seq;
    prev = text(11);
    ++rows;
  }
  EXPECT_GT(rows, 4);
}

TEST_F(SyncProtocolTest, WatchChangesStreamsCommittedChangesScopedAndResumable) {
  // A field device's watch sees only its partner; HQ's sees both.
  auto watch = [&](const std::string& token, int64_t after, int want) {
    v1::WatchChangesRequest req;
    req.set_after_seq(after);
    auto ctx = Ctx(token);
    auto reader = tracker_->WatchChanges(ctx.get(), req);
    std::vector<v1::ChangeEvent> events;
    v1::ChangeEvent e;
    while (static_cast<int>(events.size()) < want && reader->Read(&e)) events.push_back(e);
    ctx->TryCancel();
    reader->Finish();
    return events;
  };
  // Existing history: 2 projects.
  std::vector<v1::ChangeEvent> hq = watch(server_.admin_token(), 0, 2);
  ASSERT_EQ(hq.size(), 2u);
  EXPECT_EQ(hq[0].collection(), "project");
  EXPECT_TRUE(hq[0].has_project());

  // A change committed while a device watches arrives without polling.
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    v1::CreateRecordRequest other;
    *other.mutable_record() = Well(their_project_, 1);
    v1::Record out;
    tracker_->CreateRecord(Admin().get(), other, &out);
    v1::CreateRecordRequest mine;
    *mine.mutable_record() = Well(my_project_, 2);
    tracker_->CreateRecord(Admin().get(), mine, &out);
  });
  std::vector<v1::ChangeEvent> device_events = watch(device_token_, hq.back().seq(), 1);
  writer.join();
  ASSERT_EQ(device_events.size(), 1u);
  EXPECT_EQ(device_events[0].partner_id(), mine_);
  EXPECT_EQ(device_events[0].record().well().population_served(), 2);

  // A delete is an event too, scoped by the project the record belonged to.
  v1::ListRecordsRequest lreq;
  lreq.set_project_id(my_project_);
  v1::ListRecordsResponse mine_now;
  ASSERT_TRUE(tracker_->ListRecords(Admin().get(), lreq, &mine_now).ok());
  ASSERT_EQ(mine_now.records_size(), 1);
  v1::DeleteRecordRequest del;
  del.set_id(mine_now.records(0).id());
  v1::Record deleted;
  ASSERT_TRUE(tracker_->DeleteRecord(Admin().get(), del, &deleted).ok());
  std::vector<v1::ChangeEvent> after_delete = watch(device_token_, device_events[0].seq(), 1);
  ASSERT_EQ(after_delete.size(), 1u);
  EXPECT_EQ(after_delete[0].op(), "delete");
  EXPECT_EQ(after_delete[0].doc_id(), mine_now.records(0).id());
  EXPECT_EQ(after_delete[0].partner_id(), mine_);
  EXPECT_FALSE(after_delete[0].has_record());

  // Resuming after the first event skips it.
  std::vector<v1::ChangeEvent> resumed = watch(server_.admin_token(), hq[0].seq(), 1);
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].seq(), hq[1].seq());
}

}  // namespace
}  // namespace fieldsync
