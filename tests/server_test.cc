// End-to-end tests of fieldsyncd: the real binary on loopback, a real SQLite file, real gRPC.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <future>
#include <set>
#include <thread>

#include "fieldsync/v1/admin.grpc.pb.h"
#include "fieldsync/v1/sync.grpc.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "tests/testing/server_process.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
namespace v1 = ::fieldsync::v1;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Many bad tokens from one address on purpose: no guessing throttle here
    // (hostile_input_test.cc tests it).
    ASSERT_TRUE(server_.Start(dir_.path(), {"--auth-failures-per-minute", "0"}).ok())
        << server_.Log();
    channel_ = server_.Channel();
    tracker_ = v1::TrackerService::NewStub(channel_);
    admin_ = v1::AdminService::NewStub(channel_);
  }

  // A context carrying `token` (the admin's by default).
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
                            const std::string& country, const std::string& title = "Project") {
    v1::CreateProjectRequest req;
    v1::Project* p = req.mutable_project();
    p->set_partner_id(partner_id);
    p->set_kind(kind);
    p->set_title(title);
    p->set_country(country);
    p->set_status(v1::PROJECT_STATUS_ACTIVE);
    p->mutable_budget()->set_amount_minor(5000000);
    p->mutable_budget()->set_currency("USD");
    v1::Project out;
    grpc::Status s = tracker_->CreateProject(Ctx().get(), req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  static v1::Record WellRecord(const std::string& project_id) {
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

  static v1::Record SurgeryRecord(const std::string& project_id, const std::string& va) {
    v1::Record r;
    r.set_project_id(project_id);
    v1::CataractSurgery* c = r.mutable_cataract_surgery();
    c->set_patient_ref("KE-0001");
    c->set_age_years(67);
    c->set_sex(v1::SEX_FEMALE);
    c->set_eye(v1::EYE_LEFT);
    c->set_surgery_date("2026-02-01");
    c->set_surgeon_ref("S-12");
    c->set_technique(v1::SURGICAL_TECHNIQUE_SICS);
    c->set_iol_implanted(true);
    c->set_preop_va("CF");
    v1::FollowUpVisit* f = c->add_follow_ups();
    f->set_stage(v1::FOLLOW_UP_STAGE_DAY_1);
    f->set_visit_date("2026-02-02");
    f->set_presenting_va(va);
    return r;
  }

  // A FIELD_DEVICE token bound to `partner_id`.
  std::string DeviceToken(const std::string& partner_id) {
    v1::CreateDeviceRequest dreq;
    dreq.mutable_device()->set_partner_id(partner_id);
    dreq.mutable_device()->set_name("Tablet");
    v1::Device device;
    EXPECT_TRUE(admin_->CreateDevice(Ctx().get(), dreq, &device).ok());
    v1::CreateTokenRequest treq;
    treq.set_device_id(device.id());
    v1::CreateTokenResponse issued;
    EXPECT_TRUE(admin_->CreateToken(Ctx().get(), treq, &issued).ok());
    return issued.secret();
  }

  std::string UserToken(v1::Role role, const std::string& name) {
    v1::CreateUserRequest ureq;
    ureq.mutable_user()->set_name(name);
    ureq.mutable_user()->set_role(role);
    v1::User user;
    grpc::Status s = admin_->CreateUser(Ctx().get(), ureq, &user);
    EXPECT_TRUE(s.ok()) << s.error_message();
    v1::CreateTokenRequest treq;
    treq.set_user_id(user.id());
    v1::CreateTokenResponse issued;
    EXPECT_TRUE(admin_->CreateToken(Ctx().get(), treq, &issued).ok());
    return issued.secret();
  }

  // Rows in the server's change log, read straight from the SQLite file.
  int64_t ChangeLogRows() {
    return testing::QueryInt(server_.db_path(), "SELECT COUNT(*) FROM change_log");
  }


  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TrackerService::Stub> tracker_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

// Calls `method` with an empty request through the generic stub, so every RPC of a service
// can be exercised from its descriptor.
grpc::Status CallRaw(grpc::Channel* channel, const std::string& method, const std::string& token) {
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!token.empty()) ctx.AddMetadata("authorization", token);
  grpc::Slice empty("", 0);
  grpc::ByteBuffer request(&empty, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) { done.set_value(s); });
  return done.get_future().get();
}

std::vector<std::string> AllMethods() {
  // Referencing each service's messages links their descriptors into the generated pool.
  (void)v1::HandshakeRequest::descriptor();
  (void)v1::GetStatsRequest::descriptor();
  (void)v1::WhoAmIRequest::descriptor();
  std::vector<std::string> out;
  for (const char* service : {"fieldsync.v1.TrackerService", "fieldsync.v1.AdminService",
                              "fieldsync.v1.SyncService"}) {
    const auto* d =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    for (int i = 0; i < d->method_count(); ++i) {
      out.push_back("/" + d->full_name() + "/" + d->method(i)->name());
    }
  }
  return out;
}

TEST_F(ServerTest, HealthAnswersServingAndReflectionListsServices) {
  // grpc.health.v1.Health/Check with an empty HealthCheckRequest; Debian ships no generated
  // health stubs, so the response is decoded by hand: field 1 (status) = 1 (SERVING).
  grpc::GenericStub health(channel_);
  grpc::ClientContext hctx;
  grpc::Slice empty("", 0);
  grpc::ByteBuffer hreq(&empty, 1), hresp;
  std::promise<grpc::Status> done;
  health.UnaryCall(&hctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &hreq, &hresp,
                   [&](grpc::Status s) { done.set_value(s); });
  ASSERT_TRUE(done.get_future().get().ok());
  std::vector<grpc::Slice> hslices;
  ASSERT_TRUE(hresp.Dump(&hslices).ok());
  std::string hbytes;
  for (auto& s : hslices) hbytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(hbytes, std::string("\x08\x01", 2));

  // Reflection: the standard ServerReflectionInfo stream lists our services.
  grpc::GenericStub stub(channel_);
  grpc::ClientContext rctx;
  grpc::CompletionQueue cq;
  // A minimal reflection request, encoded by hand: field 7 (list_services) = "".
  std::string request_bytes("\x3a\x00", 2);
  auto call = stub.PrepareCall(&rctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer buf(&slice, 1);
  call->Write(buf, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::ByteBuffer reply;
  call->Read(&reply, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(reply.Dump(&slices).ok());
  std::string text;
  for (auto& s : slices) text.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_THAT(text, HasSubstr("fieldsync.v1.TrackerService"));
  EXPECT_THAT(text, HasSubstr("fieldsync.v1.AdminService"));
  EXPECT_THAT(text, HasSubstr("grpc.health.v1.Health"));
  call->WritesDone(reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  grpc::Status fin;
  call->Finish(&fin, reinterpret_cast<void*>(5));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(ServerTest, EveryRpcRefusesMissingMalformedUnknownAndRevokedTokens) {
  std::string revoked = UserToken(v1::ROLE_HQ_VIEWER, "to-revoke");
  v1::ListTokensRequest lreq;
  v1::ListTokensResponse tokens;
  ASSERT_TRUE(admin_->ListTokens(Ctx().get(), lreq, &tokens).ok());
  for (const v1::Token& t : tokens.tokens()) {
    if (t.prefix() == revoked.substr(0, 8)) {
      v1::RevokeTokenRequest r;
      r.set_id(t.id());
      v1::Token out;
      ASSERT_TRUE(admin_->RevokeToken(Ctx().get(), r, &out).ok());
      EXPECT_TRUE(out.has_revoked_at());
    }
  }
  std::string unknown = "fs_" + std::string(43, 'A');
  std::vector<std::string> methods = AllMethods();
  ASSERT_THAT(methods, SizeIs(38));
  for (const std::string& m : methods) {
    if (m == "/fieldsync.v1.SyncService/Enroll") {
      // The one public call: its enrollment code is the credential.
      grpc::Status s = CallRaw(channel_.get(), m, "");
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
      EXPECT_THAT(s.error_message(), HasSubstr("code"));
      continue;
    }
    for (const std::string& auth :
         {std::string(), std::string("Basic abc"), std::string("Bearer short"),
          "Bearer " + unknown, "Bearer " + revoked}) {
      grpc::Status s = CallRaw(channel_.get(), m, auth);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << m << " with '" << auth
                                                                   << "': " << s.error_message();
    }
  }
  EXPECT_THAT(server_.Log(), ::testing::Not(HasSubstr(revoked)));
}

TEST_F(ServerTest, RevocationTakesEffectOnTheNextCall) {
  std::string token = UserToken(v1::ROLE_HQ_VIEWER, "viewer");
  v1::ListProjectsRequest req;
  v1::ListProjectsResponse resp;
  ASSERT_TRUE(tracker_->ListProjects(Ctx(token).get(), req, &resp).ok());
  v1::WhoAmIResponse me;
  ASSERT_TRUE(admin_->WhoAmI(Ctx(token).get(), v1::WhoAmIRequest(), &me).ok());
  EXPECT_EQ(me.name(), "viewer");
  EXPECT_EQ(me.token().role(), v1::ROLE_HQ_VIEWER);
  v1::RevokeTokenRequest r;
  r.set_id(me.token().id());
  v1::Token out;
  ASSERT_TRUE(admin_->RevokeToken(Ctx().get(), r, &out).ok());
  grpc::Status s = tracker_->ListProjects(Ctx(token).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("revoked"));
}

// A device has one live credential and one valid code at a time, and HQ can lock it out.
TEST_F(ServerTest, EnrollmentReplacesCredentialsAndADisabledDeviceIsLockedOut) {
  auto sync = v1::SyncService::NewStub(channel_);
  std::string partner = CreatePartner("Maji Safi", {"KE"}).id();
  v1::CreateDeviceRequest dreq;
  dreq.mutable_device()->set_partner_id(partner);
  dreq.mutable_device()->set_name("Tablet 3");
  v1::Device device;
  ASSERT_TRUE(admin_->CreateDevice(Ctx().get(), dreq, &device).ok());
  auto code = [&]() {
    v1::CreateEnrollmentRequest req;
    req.set_device_id(device.id());
    v1::CreateEnrollmentResponse out;
    grpc::Status s = admin_->CreateEnrollment(Ctx().get(), req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out.code();
  };
  auto enroll = [&](const std::string& c, std::string* token) {
    v1::EnrollRequest req;
    req.set_code(c);
    v1::EnrollResponse out;
    grpc::ClientContext ctx;
    grpc::Status s = sync->Enroll(&ctx, req, &out);
    if (token != nullptr) *token = out.token();
    return s;
  };
  auto handshake = [&](const std::string& token) {
    v1::HandshakeRequest req;
    req.set_protocol_version(v1::PROTOCOL_VERSION_1);
    v1::HandshakeResponse out;
    return sync->Handshake(Ctx(token).get(), req, &out);
  };

  // A second code makes the first one invalid.
  const std::string first_code = code();
  const std::string second_code = code();
  grpc::Status s = enroll(first_code, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  std::string old_token;
  ASSERT_TRUE(enroll(second_code, &old_token).ok());
  ASSERT_TRUE(handshake(old_token).ok());

  // Enrolling again (a new phone) revokes the old phone's token at once.
  std::string new_token;
  ASSERT_TRUE(enroll(code(), &new_token).ok());
  s = handshake(old_token);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("revoked"));
  ASSERT_TRUE(handshake(new_token).ok());

  // Disabled: every call with its token is refused, saying why, and it cannot enroll (the code
  // is not used up by the refusal) nor get a new code.
  const std::string pending_code = code();
  v1::DisableDeviceRequest off;
  off.set_id(device.id());
  v1::Device disabled;
  ASSERT_TRUE(admin_->DisableDevice(Ctx().get(), off, &disabled).ok());
  EXPECT_TRUE(disabled.has_disabled_at());
  s = handshake(new_token);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("disabled"));
  v1::ListProjectsResponse projects;
  s = tracker_->ListProjects(Ctx(new_token).get(), {}, &projects);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  s = enroll(pending_code, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("disabled"));
  v1::CreateEnrollmentRequest creq;
  creq.set_device_id(device.id());
  v1::CreateEnrollmentResponse cout;
  s = admin_->CreateEnrollment(Ctx().get(), creq, &cout);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  v1::ListDevicesRequest lreq;
  lreq.set_partner_id(partner);
  v1::ListDevicesResponse listed;
  ASSERT_TRUE(admin_->ListDevices(Ctx().get(), lreq, &listed).ok());
  ASSERT_THAT(listed.devices(), SizeIs(1));
  EXPECT_TRUE(listed.devices(0).has_disabled_at());

  // Enabled again: the token works, and the code kept while disabled still enrolls.
  v1::EnableDeviceRequest on;
  on.set_id(device.id());
  v1::Device enabled;
  ASSERT_TRUE(admin_->EnableDevice(Ctx().get(), on, &enabled).ok());
  EXPECT_FALSE(enabled.has_disabled_at());
  EXPECT_TRUE(handshake(new_token).ok());
  EXPECT_TRUE(enroll(pending_code, nullptr).ok());
  // Both changes of state are in the audit trail.
  EXPECT_EQ(testing::QueryInt(server_.db_path(),
                              "SELECT COUNT(*) FROM change_log WHERE collection = 'device' AND "
                              "op IN ('disable', 'enable')"),
            2);
}

TEST_F(ServerTest, ExpiredTokenIsRefused) {
  v1::CreateUserRequest ureq;
  ureq.mutable_user()->set_name("short-lived");
  ureq.mutable_user()->set_role(v1::ROLE_AUDITOR);
  v1::User user;
  ASSERT_TRUE(admin_->CreateUser(Ctx().get(), ureq, &user).ok());
  v1::CreateTokenRequest treq;
  treq.set_user_id(user.id());
  treq.set_ttl_seconds(1);
  v1::CreateTokenResponse issued;
  ASSERT_TRUE(admin_->CreateToken(Ctx().get(), treq, &issued).ok());
  ASSERT_TRUE(issued.token().has_expires_at());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  v1::ListProjectsResponse resp;
  grpc::Status s = tracker_->ListProjects(Ctx(issued.secret()).get(), {}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("expired"));
}

TEST_F(ServerTest, RolesAreEnforced) {
  v1::Partner partner = CreatePartner("Water for Turkana", {"KE"});
  std::string viewer = UserToken(v1::ROLE_HQ_VIEWER, "hq");
  std::string auditor = UserToken(v1::ROLE_AUDITOR, "auditor");
  std::string device = DeviceToken(partner.id());
  v1::CreateProjectRequest preq;
  preq.mutable_project()->set_partner_id(partner.id());
  preq.mutable_project()->set_kind(v1::PROJECT_KIND_WELL);
  preq.mutable_project()->set_title("t");
  preq.mutable_project()->set_country("KE");
  for (const std::string& token : {viewer, auditor, device}) {
    v1::Project out;
    EXPECT_EQ(tracker_->CreateProject(Ctx(token).get(), preq, &out).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    v1::ListPartnersResponse partners;
    EXPECT_EQ(admin_->ListPartners(Ctx(token).get(), {}, &partners).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  v1::Project project = CreateProject(partner.id(), v1::PROJECT_KIND_WELL, "KE");
  v1::CreateRecordRequest rreq;
  *rreq.mutable_record() = WellRecord(project.id());
  v1::Record rec;
  EXPECT_EQ(tracker_->CreateRecord(Ctx(auditor).get(), rreq, &rec).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(tracker_->CreateRecord(Ctx(viewer).get(), rreq, &rec).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status s = tracker_->CreateRecord(Ctx(device).get(), rreq, &rec);
  EXPECT_TRUE(s.ok()) << s.error_message();
  v1::GetRecordRequest g;
  g.set_id(rec.id());
  for (const std::string& token : {viewer, auditor, device}) {
    v1::Record got;
    EXPECT_TRUE(tracker_->GetRecord(Ctx(token).get(), g, &got).ok());
    EXPECT_EQ(got.well().population_served(), 400);
  }
}

TEST_F(ServerTest, FieldDeviceSeesAndTouchesOnlyItsPartner) {
  v1::Partner mine = CreatePartner("Sight Uganda", {"UG"});
  v1::Partner other = CreatePartner("Mekong Vision", {"VN", "KH"});
  v1::Project my_project = CreateProject(mine.id(), v1::PROJECT_KIND_CATARACT, "UG");
  v1::Project their_project = CreateProject(other.id(), v1::PROJECT_KIND_CATARACT, "VN");
  v1::CreateRecordRequest theirs_req;
  *theirs_req.mutable_record() = SurgeryRecord(their_project.id(), "6/9");
  v1::Record their_record;
  ASSERT_TRUE(tracker_->CreateRecord(Ctx().get(), theirs_req, &their_record).ok());
  v1::CreateSiteRequest site_req;
  site_req.mutable_site()->set_project_id(their_project.id());
  site_req.mutable_site()->set_name("Hue eye camp");
  site_req.mutable_site()->set_latitude_deg(16.46);
  site_req.mutable_site()->set_longitude_deg(107.59);
  v1::Site their_site;
  ASSERT_TRUE(tracker_->CreateSite(Ctx().get(), site_req, &their_site).ok());

  std::string device = DeviceToken(mine.id());

  v1::GetProjectRequest gp;
  gp.set_id(their_project.id());
  v1::Project p;
  grpc::Status s = tracker_->GetProject(Ctx(device).get(), gp, &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(p.title().empty());

  v1::GetRecordRequest gr;
  gr.set_id(their_record.id());
  v1::Record r;
  EXPECT_EQ(tracker_->GetRecord(Ctx(device).get(), gr, &r).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_FALSE(r.has_cataract_surgery());

  v1::GetSiteRequest gs;
  gs.set_id(their_site.id());
  v1::Site site;
  EXPECT_EQ(tracker_->GetSite(Ctx(device).get(), gs, &site).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Lists, even when asked for the other partner explicitly, hold only its own.
  v1::ListProjectsRequest lp;
  v1::ListProjectsResponse projects;
  ASSERT_TRUE(tracker_->ListProjects(Ctx(device).get(), lp, &projects).ok());
  ASSERT_EQ(projects.projects_size(), 1);
  EXPECT_EQ(projects.projects(0).id(), my_project.id());
  lp.set_partner_id(other.id());
  ASSERT_TRUE(tracker_->ListProjects(Ctx(device).get(), lp, &projects).ok());
  EXPECT_EQ(projects.projects_size(), 0);
  v1::ListRecordsRequest lr;
  lr.set_project_id(their_project.id());
  v1::ListRecordsResponse records;
  ASSERT_TRUE(tracker_->ListRecords(Ctx(device).get(), lr, &records).ok());
  EXPECT_EQ(records.records_size(), 0);
  v1::ListSitesResponse sites;
  ASSERT_TRUE(tracker_->ListSites(Ctx(device).get(), {}, &sites).ok());
  EXPECT_EQ(sites.sites_size(), 0);

  // Writes into the other partner's project are refused and leave nothing behind.
  int64_t before = ChangeLogRows();
  v1::CreateRecordRequest write;
  *write.mutable_record() = SurgeryRecord(their_project.id(), "6/12");
  s = tracker_->CreateRecord(Ctx(device).get(), write, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("record.project_id: no project"));
  v1::UpdateRecordRequest update;
  *update.mutable_record() = SurgeryRecord(their_project.id(), "6/60");
  update.mutable_record()->set_id(their_record.id());
  EXPECT_EQ(tracker_->UpdateRecord(Ctx(device).get(), update, &r).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(tracker_->CreateSite(Ctx(device).get(), site_req, &site).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ChangeLogRows(), before);

  // Stats cover only its partner.
  v1::GetStatsRequest st;
  st.set_group_by(v1::STATS_GROUPING_PARTNER);
  v1::GetStatsResponse stats;
  ASSERT_TRUE(tracker_->GetStats(Ctx(device).get(), st, &stats).ok());
  for (const auto& g : stats.groups()) EXPECT_EQ(g.key(), mine.id());
  ASSERT_TRUE(tracker_->GetStats(Ctx().get(), st, &stats).ok());
  EXPECT_EQ(stats.groups_size(), 2);
}

TEST_F(ServerTest, InvalidInputIsRefusedNamingTheFieldAndNothingIsWritten) {
  v1::Partner partner = CreatePartner("Classrooms Lao", {"LA", "KE"});
  v1::Project wells = CreateProject(partner.id(), v1::PROJECT_KIND_WELL, "KE");
  v1::Project cataract = CreateProject(partner.id(), v1::PROJECT_KIND_CATARACT, "LA");
  int64_t before = ChangeLogRows();

  struct Case {
    std::string name;
    std::function<grpc::Status()> call;
    grpc::StatusCode code;
    std::string fragment;
  };
  std::vector<Case> cases;
  cases.push_back({"latitude 200",
                   [&] {
                     v1::CreateSiteRequest req;
                     req.mutable_site()->set_project_id(wells.id());
                     req.mutable_site()->set_name("x");
                     req.mutable_site()->set_latitude_deg(200);
                     v1::Site out;
                     return tracker_->CreateSite(Ctx().get(), req, &out);
                   },
                   grpc::StatusCode::INVALID_ARGUMENT, "site.latitude_deg"});
  cases.push_back({"negative depth",
                   [&] {
                     v1::CreateRecordRequest req;
                     *req.mutable_record() = WellRecord(wells.id());
                     req.mutable_record()->mutable_well()->set_drilled_depth_m(-5);
                     v1::Record out;
                     return tracker_->CreateRecord(Ctx().get(), req, &out);
                   },
                   grpc::StatusCode::INVALID_ARGUMENT, "record.well.drilled_depth_m"});
  cases.push_back({"unknown kind",
                   [&] {
                     v1::CreateProjectRequest req;
                     req.mutable_project()->set_partner_id(partner.id());
                     req.mutable_project()->set_kind(static_cast<v1::ProjectKind>(99));
                     req.mutable_project()->set_title("t");
                     req.mutable_project()->set_country("KE");
                     v1::Project out;
                     return tracker_->CreateProject(Ctx().get(), req, &out);
                   },
                   grpc::StatusCode::INVALID_ARGUMENT, "project.kind"});
  cases.push_back({"visual acuity 7/3x",
                   [&] {
                     v1::CreateRecordRequest req;
                     *req.mutable_record() = SurgeryRecord(cataract.id(), "7/3x");
                     v1::Record out;
                     return tracker_->CreateRecord(Ctx().get(), req, &out);
                   },
                   grpc::StatusCode::INVALID_ARGUMENT, "7/3x"});
  cases.push_back({"missing project",
                   [&] {
                     v1::CreateRecordRequest req;
                     *req.mutable_record() = WellRecord("01890000-0000-7000-8000-000000000000");
                     v1::Record out;
                     return tracker_->CreateRecord(Ctx().get(), req, &out);
                   },
                   grpc::StatusCode::INVALID_ARGUMENT, "record.project_id"});
  cases.push_back({"record kind does not fit project",
                   [&] {
                     v1::CreateRecordRequest req;
                     *req.mutable_record() = WellRecord(cataract.id());
                     v1::Record out;
                     return tracker_->CreateRecord(Ctx().get(), req, &out);
                   },
                   grpc::StatusCode::INVALID_ARGUMENT, "record.project_id"});
  cases.push_back({"country the partner does not work in",
                   [&] {
                     v1::CreateProjectRequest req;
                     req.mutable_project()->set_partner_id(partner.id());
                     req.mutable_project()->set_kind(v1::PROJECT_KIND_WELL);
                     req.mutable_project()->set_title("t");
                     req.mutable_project()->set_country("VN");
                     v1::Project out;
                     return tracker_->CreateProject(Ctx().get(), req, &out);
                   },
                   grpc::StatusCode::INVALID_ARGUMENT, "project.country"});
  cases.push_back({"bad page token",
                   [&] {
                     v1::ListProjectsRequest req;
                     req.set_page_token("not-a-token");
                     v1::ListProjectsResponse out;
                     return tracker_->ListProjects(Ctx().get(), req, &out);
                   },
                   grpc::StatusCode::INVALID_ARGUMENT, "page_token"});
  cases.push_back({"page size too large",
                   [&] {
                     v1::ListRecordsRequest req;
                     req.set_page_size(5000);
                     v1::ListRecordsResponse out;
                     return tracker_->ListRecords(Ctx().get(), req, &out);
                   },
                   grpc::StatusCode::INVALID_ARGUMENT, "page_size"});
  cases.push_back({"100 MB message",
                   [&] {
                     v1::CreateRecordRequest req;
                     *req.mutable_record() = WellRecord(wells.id());
                     req.mutable_record()->mutable_well()->set_notes(std::string(100 << 20, 'x'));
                     v1::Record out;
                     return tracker_->CreateRecord(Ctx().get(), req, &out);
                   },
                   grpc::StatusCode::RESOURCE_EXHAUSTED, ""});
  for (const Case& c : cases) {
    grpc::Status s = c.call();
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.fragment)) << c.name;
  }
  EXPECT_EQ(ChangeLogRows(), before);

  // The server keeps serving.
  v1::CreateRecordRequest ok;
  *ok.mutable_record() = WellRecord(wells.id());
  v1::Record out;
  grpc::Status s = tracker_->CreateRecord(Ctx().get(), ok, &out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(ChangeLogRows(), before + 1);
}

TEST_F(ServerTest, RecordsRoundTripWithDerivedFieldsAndVersions) {
  v1::Partner partner = CreatePartner("Eyes Cambodia", {"KH"});
  v1::Project project = CreateProject(partner.id(), v1::PROJECT_KIND_CATARACT, "KH");
  v1::CreateRecordRequest req;
  *req.mutable_record() = SurgeryRecord(project.id(), "6/24");
  v1::Record created;
  ASSERT_TRUE(tracker_->CreateRecord(Ctx().get(), req, &created).ok());
  EXPECT_EQ(created.kind(), v1::RECORD_KIND_CATARACT_SURGERY);
  EXPECT_EQ(created.record_date(), "2026-02-01");
  EXPECT_EQ(created.cataract_surgery().follow_ups(0).outcome(), v1::VISUAL_OUTCOME_BORDERLINE);
  EXPECT_GT(created.audit().version(), 0);

  v1::UpdateRecordRequest up;
  *up.mutable_record() = created;
  up.mutable_record()->mutable_cataract_surgery()->mutable_follow_ups(0)->set_presenting_va("6/9");
  up.set_expected_version(created.audit().version());
  v1::Record updated;
  ASSERT_TRUE(tracker_->UpdateRecord(Ctx().get(), up, &updated).ok());
  EXPECT_EQ(updated.cataract_surgery().follow_ups(0).outcome(), v1::VISUAL_OUTCOME_GOOD);
  EXPECT_GT(updated.audit().version(), created.audit().version());
  // A stale version is refused.
  grpc::Status stale = tracker_->UpdateRecord(Ctx().get(), up, &updated);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  v1::GetRecordRequest g;
  g.set_id(created.id());
  v1::Record got;
  ASSERT_TRUE(tracker_->GetRecord(Ctx().get(), g, &got).ok());
  EXPECT_EQ(got.cataract_surgery().follow_ups(0).presenting_va(), "6/9");
  EXPECT_EQ(got.audit().created_by(), created.audit().created_by());
}

TEST_F(ServerTest, PageTokensWalkEveryRowOnceWhileRowsAreAdded) {
  v1::Partner partner = CreatePartner("Wells Malawi", {"MW"});
  std::set<std::string> originals;
  for (int i = 0; i < 23; ++i) {
    originals.insert(CreateProject(partner.id(), v1::PROJECT_KIND_WELL, "MW",
                                   "Borehole " + std::to_string(i))
                         .id());
  }
  std::set<std::string> seen;
  v1::ListProjectsRequest req;
  req.set_page_size(5);
  int pages = 0;
  while (true) {
    v1::ListProjectsResponse resp;
    ASSERT_TRUE(tracker_->ListProjects(Ctx().get(), req, &resp).ok());
    for (const auto& p : resp.projects()) EXPECT_TRUE(seen.insert(p.id()).second) << p.id();
    ++pages;
    // Rows added mid-walk never make a row appear twice.
    CreateProject(partner.id(), v1::PROJECT_KIND_WELL, "MW", "Added later");
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
    ASSERT_LT(pages, 50);
  }
  for (const std::string& id : originals) EXPECT_TRUE(seen.count(id)) << id;

  v1::ListProjectsRequest text;
  text.set_text("BOREHOLE 1");
  v1::ListProjectsResponse found;
  ASSERT_TRUE(tracker_->ListProjects(Ctx().get(), text, &found).ok());
  EXPECT_EQ(found.projects_size(), 11);  // "Borehole 1" and "Borehole 10".."Borehole 19"
}

TEST_F(ServerTest, StopsCleanlyOnSigterm) {
  EXPECT_EQ(server_.Stop(), 0);
  EXPECT_THAT(server_.Log(), HasSubstr("listening on 127.0.0.1:"));
  EXPECT_THAT(server_.Log(), HasSubstr("stopped"));
}

}  // namespace
}  // namespace fieldsync
