// The authorization matrix: every RPC of TrackerService, AdminService, SyncService and
// ReportService (walked from the protobuf descriptors, so a new RPC cannot be forgotten) called
// with a realistic valid request under every kind of credential, against the real fieldsyncd.
//
// The expected table below is written from the contract — the comments in
// proto/fieldsync/v1/*.proto and docs/ARCHITECTURE.md ("Auth") — and deliberately not from
// server/auth.cc, so that a wrong entry in the server's policy table shows up here:
//
//   - ADMIN calls everything; HQ_VIEWER and AUDITOR read everything and write nothing;
//     FIELD_DEVICE reads its own partner's projects, sites and records and writes sites and
//     records of its own partner's projects; AdminService is ADMIN only except WhoAmI (any role).
//   - Another partner's object answers a field device exactly as a missing one would
//     (NOT_FOUND or INVALID_ARGUMENT, or an empty list) — never the data. The test checks this by
//     sending the same request once with partner B's ids and once with ids that exist nowhere:
//     the answers must be identical, and no id of partner B may appear in any answer to a device.
//   - SyncService Handshake/Push/Pull need a FIELD_DEVICE token bound to a registered device:
//     other roles get PERMISSION_DENIED, a FIELD_DEVICE *user* (partner staff) gets
//     FAILED_PRECONDITION. Enroll needs no token: the one-time code is the credential.
//   - A missing, malformed, unknown, expired or revoked token is UNAUTHENTICATED everywhere
//     (except Enroll). The expired and revoked tokens belong to an ADMIN user, so the credential
//     is the only reason they can fail.
//
// Adding an RPC to a service without a row in kExpected and a request builder fails the test.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <regex>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fieldsync/base/ids.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/sync/hlc.h"
#include "fieldsync/v1/admin.grpc.pb.h"
#include "fieldsync/v1/report.grpc.pb.h"
#include "fieldsync/v1/sync.grpc.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync {
namespace {

namespace v1 = ::fieldsync::v1;
using google::protobuf::Message;

// A PushResponse with what differs between any two pushes taken out (acknowledged number,
// server clock, the document id and number of each refusal, and ids quoted in reasons), so
// that a refusal about partner B's objects can be compared with one about missing objects.
std::string PushAnswerShape(const std::string& bytes) {
  v1::PushResponse r;
  if (!r.ParseFromString(bytes)) return bytes;
  r.clear_acked_device_seq();
  r.clear_server_hlc();
  static const std::regex kUuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  for (v1::Rejection& x : *r.mutable_rejections()) {
    x.clear_device_seq();
    x.clear_doc_id();
    x.set_reason(std::regex_replace(x.reason(), kUuid, "ID"));
  }
  return r.SerializeAsString();
}

// --- The expected table ------------------------------------------------------------------------

enum class Exp {
  kOk,        // succeeds (a stream delivers its first message)
  kDenied,    // PERMISSION_DENIED: the role may not call it
  kPrecond,   // FAILED_PRECONDITION: a FIELD_DEVICE user (not a device) calling SyncService
  kNotFound,  // NOT_FOUND (ResolveConflict of a conflict that does not exist)
  kHidden,    // partner B's objects answer exactly like missing ones, and never leak
};

const char* ExpName(Exp e) {
  switch (e) {
    case Exp::kOk: return "OK";
    case Exp::kDenied: return "DENIED";
    case Exp::kPrecond: return "PRECOND";
    case Exp::kNotFound: return "NOT_FOUND";
    case Exp::kHidden: return "HIDDEN";
  }
  return "?";
}

// Columns of the authenticated credentials. The five bad credentials are UNAUTHENTICATED on every
// RPC but a public one.
enum Col { kAdmin, kHq, kAuditor, kDevOwn, kDevOther, kFdUser, kCols };

struct Row {
  const char* method;
  Exp cell[kCols];
  bool public_call = false;  // callable with no (or a bad) token
};

constexpr Exp O = Exp::kOk, D = Exp::kDenied, P = Exp::kPrecond, N = Exp::kNotFound,
              H = Exp::kHidden;

//                                                      admin hq auditor dev  dev->B fd_user
const Row kExpected[] = {
    // TrackerService: reads for everyone (scoped for devices), field writes for ADMIN and
    // devices, project writes and conflict resolution for ADMIN only.
    {"/fieldsync.v1.TrackerService/CreateProject",   {O, D, D, D, D, D}},
    {"/fieldsync.v1.TrackerService/UpdateProject",   {O, D, D, D, D, D}},
    {"/fieldsync.v1.TrackerService/GetProject",      {O, O, O, O, H, O}},
    {"/fieldsync.v1.TrackerService/ListProjects",    {O, O, O, O, H, O}},
    {"/fieldsync.v1.TrackerService/CreateSite",      {O, D, D, O, H, O}},
    {"/fieldsync.v1.TrackerService/GetSite",         {O, O, O, O, H, O}},
    {"/fieldsync.v1.TrackerService/ListSites",       {O, O, O, O, H, O}},
    {"/fieldsync.v1.TrackerService/CreateRecord",    {O, D, D, O, H, O}},
    {"/fieldsync.v1.TrackerService/UpdateRecord",    {O, D, D, O, H, O}},
    {"/fieldsync.v1.TrackerService/GetRecord",       {O, O, O, O, H, O}},
    {"/fieldsync.v1.TrackerService/ListRecords",     {O, O, O, O, H, O}},
    {"/fieldsync.v1.TrackerService/GetStats",        {O, O, O, O, H, O}},
    {"/fieldsync.v1.TrackerService/DeleteRecord",    {O, D, D, O, H, O}},
    {"/fieldsync.v1.TrackerService/ListConflicts",   {O, O, O, O, H, O}},
    // No conflict exists in this fixture: ADMIN passes authorization and gets NOT_FOUND.
    {"/fieldsync.v1.TrackerService/ResolveConflict", {N, D, D, D, D, D}},
    {"/fieldsync.v1.TrackerService/ListRejections",  {O, O, O, O, H, O}},
    {"/fieldsync.v1.TrackerService/ResolveRejection", {N, D, D, D, D, D}},
    {"/fieldsync.v1.TrackerService/WatchChanges",    {O, O, O, O, H, O}},
    // AdminService: ADMIN only, except WhoAmI.
    {"/fieldsync.v1.AdminService/CreatePartner",     {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/UpdatePartner",     {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/GetPartner",        {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/ListPartners",      {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/CreateUser",        {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/ListUsers",         {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/CreateDevice",      {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/ListDevices",       {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/CreateEnrollment",  {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/DisableDevice",     {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/EnableDevice",      {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/CreateToken",       {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/ListTokens",        {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/RevokeToken",       {O, D, D, D, D, D}},
    {"/fieldsync.v1.AdminService/WhoAmI",            {O, O, O, O, O, O}},
    // A backup into a folder that does not exist: ADMIN passes authorization and gets
    // FAILED_PRECONDITION (on either engine), writing nothing.
    {"/fieldsync.v1.AdminService/Backup",            {P, D, D, D, D, D}},
    // SyncService: devices only; the scope is the token's partner, so Handshake and Pull have
    // no "other partner" form (they must still never carry partner B's documents).
    {"/fieldsync.v1.SyncService/Handshake",          {D, D, D, O, O, P}},
    {"/fieldsync.v1.SyncService/Push",               {D, D, D, O, H, P}},
    {"/fieldsync.v1.SyncService/Pull",               {D, D, D, O, O, P}},
    {"/fieldsync.v1.SyncService/Enroll",             {O, O, O, O, O, O}, /*public_call=*/true},
    // ReportService: ADMIN, HQ_VIEWER and AUDITOR export and verify; no field credential may.
    // No export with a random id exists: readers pass authorization and get NOT_FOUND.
    {"/fieldsync.v1.ReportService/Export",            {O, O, O, D, D, D}},
    {"/fieldsync.v1.ReportService/GetExportManifest", {N, N, N, D, D, D}},
    {"/fieldsync.v1.ReportService/VerifyAuditChain",  {O, O, O, D, D, D}},
};

// --- What a call returned ----------------------------------------------------------------------

struct Outcome {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string message;
  // The response (a unary call's, or a stream's first message), serialized.
  std::string response;
  // A stream that delivered nothing before the short deadline.
  bool silent = false;

  std::string Describe() const {
    if (silent) return "silent stream (no message before the deadline)";
    return std::to_string(static_cast<int>(code)) + " \"" + message + "\"";
  }
};

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// One call through the generic stub: `auth` is the whole "authorization" metadata value, or
// empty for none. A stream is read up to its first message, then cancelled.
Outcome Call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
             bool streaming, const Message& request, const std::string& auth) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   (streaming ? std::chrono::milliseconds(1500) : std::chrono::seconds(15)));
  if (!auth.empty()) ctx.AddMetadata("authorization", auth);
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&ctx, method, &cq);
  intptr_t next_tag = 1;
  auto step = [&](const std::function<void(void*)>& op) {
    void* want = reinterpret_cast<void*>(next_tag++);
    op(want);
    void* tag = nullptr;
    bool ok = false;
    while (cq.Next(&tag, &ok)) {
      if (tag == want) return ok;
    }
    return false;
  };
  std::string bytes = request.SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer out(&slice, 1), in;
  bool ok = step([&](void* t) { call->StartCall(t); });
  if (ok) ok = step([&](void* t) { call->Write(out, t); });
  if (ok) ok = step([&](void* t) { call->WritesDone(t); });
  bool got = ok && step([&](void* t) { call->Read(&in, t); });
  if (got && streaming) ctx.TryCancel();
  grpc::Status status;
  step([&](void* t) { call->Finish(&status, t); });
  cq.Shutdown();
  void* tag = nullptr;
  bool ignored = false;
  while (cq.Next(&tag, &ignored)) {
  }
  Outcome o;
  if (got) {
    o.response = ToString(in);
    o.code = streaming ? grpc::StatusCode::OK : status.error_code();
    if (!streaming) o.message = status.error_message();
  } else {
    o.code = status.error_code();
    o.message = status.error_message();
    o.silent = streaming && o.code == grpc::StatusCode::DEADLINE_EXCEEDED;
  }
  return o;
}

// --- The fixture: one server, partners A and B, their objects and the credentials -------------

// The objects a request is built from: partner A's, partner B's, or ids that exist nowhere.
struct Objects {
  bool exists = true;
  std::string partner_id;
  std::string country;
  v1::Project project;
  std::string partner_name;
  std::string site_id;
  std::string site_name;
  std::string record_id;
  std::string device_id;
};

struct Credential {
  std::string name;
  std::string auth;  // the whole metadata value; empty: none sent
  int col = -1;      // column in kExpected; -1 for a bad credential
};

class AuthzMatrixTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    server_ = new testing::ServerProcess();
    // Hundreds of bad tokens from one address on purpose: no guessing throttle here
    // (hostile_input_test.cc tests it).
    absl::Status started = server_->Start(dir_->path(), {"--auth-failures-per-minute", "0"});
    ASSERT_TRUE(started.ok()) << started << server_->Log();
    channel_ = new std::shared_ptr<grpc::Channel>(server_->Channel());
    hq_ = new testing::Hq(*channel_, server_->admin_token());
    sync_ = v1::SyncService::NewStub(*channel_).release();

    // The expired token first, so that its second passes while the rest is set up.
    std::string admin2 = CreateUser("second admin", v1::ROLE_ADMIN, "");
    std::string expired = CreateToken(admin2, "", 1, nullptr);
    auto expired_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(1300);
    std::string revoked_id;
    std::string revoked = CreateToken(admin2, "", 0, &revoked_id);
    {
      v1::RevokeTokenRequest req;
      req.set_id(revoked_id);
      v1::Token out;
      grpc::Status s = hq_->admin().RevokeToken(hq_->Ctx().get(), req, &out);
      ASSERT_TRUE(s.ok()) << s.error_message();
    }

    a_ = new Objects(MakeObjects("Maji Safi Kenya", "KE"));
    b_ = new Objects(MakeObjects("Mekong Clean Water", "VN"));
    missing_ = new Objects();
    missing_->exists = false;
    missing_->partner_id = NewUuidV7();
    missing_->country = "KE";
    missing_->project = a_->project;
    missing_->project.set_id(NewUuidV7());
    missing_->project.set_partner_id(missing_->partner_id);
    missing_->site_id = NewUuidV7();
    missing_->record_id = NewUuidV7();
    missing_->device_id = NewUuidV7();

    dev_a_token_ = new std::string(EnrollDevice(a_->partner_id, &a_->device_id));
    std::string dev_b_token = EnrollDevice(b_->partner_id, &b_->device_id);
    (void)dev_b_token;
    throwaway_user_ = new std::string(CreateUser("token holder", v1::ROLE_AUDITOR, ""));

    std::string fd_user = CreateUser("field officer A", v1::ROLE_FIELD_DEVICE, a_->partner_id);
    creds_ = new std::vector<Credential>{
        {"admin", "Bearer " + server_->admin_token(), kAdmin},
        {"hq_viewer", "Bearer " + CreateToken(CreateUser("hq", v1::ROLE_HQ_VIEWER, ""), "", 0,
                                              nullptr),
         kHq},
        {"auditor", "Bearer " + CreateToken(CreateUser("auditor", v1::ROLE_AUDITOR, ""), "", 0,
                                            nullptr),
         kAuditor},
        {"device(A)", "Bearer " + *dev_a_token_, kDevOwn},
        {"device(A)->B", "Bearer " + *dev_a_token_, kDevOther},
        {"fd_user(A)", "Bearer " + CreateToken(fd_user, "", 0, nullptr), kFdUser},
        {"missing token", "", -1},
        {"malformed token", "Bearer not-a-token", -1},
        {"unknown token", "Bearer fs_" + Base64UrlEncode(RandomBytes(32)), -1},
        {"expired token", "Bearer " + expired, -1},
        {"revoked token", "Bearer " + revoked, -1},
    };
    std::this_thread::sleep_until(expired_at);
  }

  static void TearDownTestSuite() {
    delete creds_;
    delete throwaway_user_;
    delete dev_a_token_;
    delete missing_;
    delete b_;
    delete a_;
    delete sync_;
    delete hq_;
    delete channel_;
    delete server_;
    delete dir_;
  }

  static std::string Unique(const std::string& prefix) {
    static std::atomic<int> n{0};
    return prefix + " " + std::to_string(++n);
  }

  static std::string CreateUser(const std::string& name, v1::Role role,
                                const std::string& partner_id) {
    v1::CreateUserRequest req;
    req.mutable_user()->set_name(name);
    req.mutable_user()->set_role(role);
    req.mutable_user()->set_partner_id(partner_id);
    v1::User out;
    grpc::Status s = hq_->admin().CreateUser(hq_->Ctx().get(), req, &out);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
    return out.id();
  }

  static std::string CreateToken(const std::string& user_id, const std::string& device_id,
                                 int64_t ttl_seconds, std::string* token_id) {
    v1::CreateTokenRequest req;
    req.set_user_id(user_id);
    req.set_device_id(device_id);
    req.set_ttl_seconds(ttl_seconds);
    v1::CreateTokenResponse out;
    grpc::Status s = hq_->admin().CreateToken(hq_->Ctx().get(), req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (token_id != nullptr) *token_id = out.token().id();
    return out.secret();
  }

  static std::string EnrollDevice(const std::string& partner_id, std::string* device_id) {
    v1::EnrollRequest req;
    req.set_code(hq_->EnrollmentCode(partner_id, Unique("tablet"), device_id));
    v1::EnrollResponse out;
    grpc::ClientContext ctx;
    grpc::Status s = sync_->Enroll(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out.token();
  }

  // A new device of `o`'s partner, disabled if asked.
  static std::string ThrowawayDevice(const Objects& o, bool disabled) {
    v1::CreateDeviceRequest req;
    req.mutable_device()->set_partner_id(o.partner_id);
    req.mutable_device()->set_name(Unique("spare tablet"));
    v1::Device device;
    grpc::Status s = hq_->admin().CreateDevice(hq_->Ctx().get(), req, &device);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (disabled) {
      v1::DisableDeviceRequest dreq;
      dreq.set_id(device.id());
      v1::Device out;
      s = hq_->admin().DisableDevice(hq_->Ctx().get(), dreq, &out);
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    return device.id();
  }

  static v1::Record Well(const Objects& o, int population) {
    v1::Record r;
    r.set_project_id(o.project.id());
    r.set_site_id(o.site_id);
    v1::WellRecord* w = r.mutable_well();
    w->set_drilled_depth_m(70);
    w->set_static_water_level_m(15);
    w->set_yield_lph(1100);
    w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
    w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
    w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
    w->set_population_served(population);
    w->set_visit_date("2026-04-20");
    return r;
  }

  static v1::Site Site(const Objects& o) {
    v1::Site s;
    s.set_project_id(o.project.id());
    s.set_name(Unique("Water point " + o.country));
    s.set_latitude_deg(o.country == "KE" ? -0.1 : 10.8);
    s.set_longitude_deg(o.country == "KE" ? 34.7 : 106.6);
    s.set_admin_area("District");
    return s;
  }

  // A record of `o`'s project made by HQ, for requests that consume one (DeleteRecord).
  static std::string FreshRecord(const Objects& o) {
    if (!o.exists) return NewUuidV7();
    v1::CreateRecordRequest req;
    *req.mutable_record() = Well(o, 50);
    v1::Record out;
    grpc::Status s = hq_->tracker().CreateRecord(hq_->Ctx().get(), req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out.id();
  }

  static Objects MakeObjects(const std::string& name, const std::string& country) {
    Objects o;
    o.country = country;
    o.partner_name = name;
    o.partner_id = hq_->CreatePartner(name, {country}).id();
    o.project = hq_->CreateProject(o.partner_id, v1::PROJECT_KIND_WELL, country,
                                   name + " boreholes");
    v1::CreateSiteRequest sreq;
    *sreq.mutable_site() = Site(o);
    v1::Site site;
    grpc::Status s = hq_->tracker().CreateSite(hq_->Ctx().get(), sreq, &site);
    EXPECT_TRUE(s.ok()) << s.error_message();
    o.site_id = site.id();
    o.site_name = site.name();
    v1::CreateRecordRequest rreq;
    *rreq.mutable_record() = Well(o, 300);
    v1::Record record;
    s = hq_->tracker().CreateRecord(hq_->Ctx().get(), rreq, &record);
    EXPECT_TRUE(s.ok()) << s.error_message();
    o.record_id = record.id();
    return o;
  }

  // The next change device A may push (seq = what the server applied + 1), creating a record
  // in `o`'s project.
  static v1::Change NextChangeOfDeviceA(const Objects& o) {
    v1::HandshakeRequest hreq;
    hreq.set_protocol_version(v1::PROTOCOL_VERSION_1);
    hreq.set_device_time_ms(sync::SystemClockMs());
    v1::HandshakeResponse hs;
    grpc::Status s = sync_->Handshake(hq_->Ctx(*dev_a_token_).get(), hreq, &hs);
    EXPECT_TRUE(s.ok()) << s.error_message();
    v1::Record r = Well(o, 77);
    r.set_id(NewUuidV7());
    v1::Change c;
    c.set_device_seq(hs.acked_device_seq() + 1);
    c.set_collection("record");
    c.set_doc_id(r.id());
    c.set_hlc(sync::Hlc{sync::SystemClockMs(), 0, a_->device_id}.Encode());
    for (const auto& [path, value] : sync::Flatten(r)) {
      v1::FieldChange* f = c.add_fields();
      f->set_path(path);
      f->set_value(value);
    }
    return c;
  }

  using Builder = std::function<std::unique_ptr<Message>(const Objects&)>;

  // One realistic valid request per RPC, built from a set of objects.
  static std::map<std::string, Builder> Builders() {
    std::map<std::string, Builder> b;
    const std::string t = "/fieldsync.v1.TrackerService/";
    const std::string a = "/fieldsync.v1.AdminService/";
    const std::string s = "/fieldsync.v1.SyncService/";
    b[t + "CreateProject"] = [](const Objects& o) {
      auto r = std::make_unique<v1::CreateProjectRequest>();
      v1::Project* p = r->mutable_project();
      p->set_partner_id(o.partner_id);
      p->set_kind(v1::PROJECT_KIND_WELL);
      p->set_title(Unique("New boreholes"));
      p->set_country(o.country);
      p->set_status(v1::PROJECT_STATUS_PLANNED);
      return r;
    };
    b[t + "UpdateProject"] = [](const Objects& o) {
      auto r = std::make_unique<v1::UpdateProjectRequest>();
      *r->mutable_project() = o.project;
      r->mutable_project()->clear_audit();
      r->mutable_project()->set_donor(Unique("Donor"));
      return r;
    };
    b[t + "GetProject"] = [](const Objects& o) {
      auto r = std::make_unique<v1::GetProjectRequest>();
      r->set_id(o.project.id());
      return r;
    };
    b[t + "ListProjects"] = [](const Objects& o) {
      auto r = std::make_unique<v1::ListProjectsRequest>();
      r->set_partner_id(o.partner_id);
      return r;
    };
    b[t + "CreateSite"] = [](const Objects& o) {
      auto r = std::make_unique<v1::CreateSiteRequest>();
      *r->mutable_site() = Site(o);
      return r;
    };
    b[t + "GetSite"] = [](const Objects& o) {
      auto r = std::make_unique<v1::GetSiteRequest>();
      r->set_id(o.site_id);
      return r;
    };
    b[t + "ListSites"] = [](const Objects& o) {
      auto r = std::make_unique<v1::ListSitesRequest>();
      r->set_project_id(o.project.id());
      return r;
    };
    b[t + "CreateRecord"] = [](const Objects& o) {
      auto r = std::make_unique<v1::CreateRecordRequest>();
      *r->mutable_record() = Well(o, 120);
      return r;
    };
    b[t + "UpdateRecord"] = [](const Objects& o) {
      auto r = std::make_unique<v1::UpdateRecordRequest>();
      *r->mutable_record() = Well(o, 450);
      r->mutable_record()->set_id(o.record_id);
      static std::atomic<int> yield{2000};
      r->mutable_record()->mutable_well()->set_yield_lph(++yield);
      return r;
    };
    b[t + "GetRecord"] = [](const Objects& o) {
      auto r = std::make_unique<v1::GetRecordRequest>();
      r->set_id(o.record_id);
      return r;
    };
    b[t + "ListRecords"] = [](const Objects& o) {
      auto r = std::make_unique<v1::ListRecordsRequest>();
      r->set_project_id(o.project.id());
      return r;
    };
    b[t + "GetStats"] = [](const Objects& o) {
      auto r = std::make_unique<v1::GetStatsRequest>();
      r->set_group_by(v1::STATS_GROUPING_NONE);
      r->set_partner_id(o.partner_id);
      return r;
    };
    b[t + "DeleteRecord"] = [](const Objects& o) {
      auto r = std::make_unique<v1::DeleteRecordRequest>();
      r->set_id(FreshRecord(o));
      return r;
    };
    b[t + "ListConflicts"] = [](const Objects& o) {
      auto r = std::make_unique<v1::ListConflictsRequest>();
      r->set_doc_id(o.record_id);
      return r;
    };
    b[t + "ResolveConflict"] = [](const Objects&) {
      auto r = std::make_unique<v1::ResolveConflictRequest>();
      r->set_id(NewUuidV7());
      r->set_resolution(v1::CONFLICT_RESOLUTION_KEEP_WINNER);
      return r;
    };
    b[t + "ListRejections"] = [](const Objects& o) {
      auto r = std::make_unique<v1::ListRejectionsRequest>();
      r->set_device_id(o.device_id);
      return r;
    };
    b[t + "ResolveRejection"] = [](const Objects&) {
      auto r = std::make_unique<v1::ResolveRejectionRequest>();
      r->set_id(NewUuidV7());
      return r;
    };
    b[t + "WatchChanges"] = [](const Objects& o) {
      auto r = std::make_unique<v1::WatchChangesRequest>();
      r->set_after_seq(0);
      r->set_partner_id(o.partner_id);
      return r;
    };
    b[a + "CreatePartner"] = [](const Objects& o) {
      auto r = std::make_unique<v1::CreatePartnerRequest>();
      r->mutable_partner()->set_name(Unique("Partner"));
      r->mutable_partner()->add_countries(o.country);
      return r;
    };
    b[a + "UpdatePartner"] = [](const Objects& o) {
      auto r = std::make_unique<v1::UpdatePartnerRequest>();
      r->mutable_partner()->set_id(o.partner_id);
      r->mutable_partner()->set_name(o.country == "KE" ? "Maji Safi Kenya" : "Mekong Clean Water");
      r->mutable_partner()->add_countries(o.country);
      return r;
    };
    b[a + "GetPartner"] = [](const Objects& o) {
      auto r = std::make_unique<v1::GetPartnerRequest>();
      r->set_id(o.partner_id);
      return r;
    };
    b[a + "ListPartners"] = [](const Objects&) {
      return std::make_unique<v1::ListPartnersRequest>();
    };
    b[a + "CreateUser"] = [](const Objects&) {
      auto r = std::make_unique<v1::CreateUserRequest>();
      r->mutable_user()->set_name(Unique("analyst"));
      r->mutable_user()->set_role(v1::ROLE_HQ_VIEWER);
      return r;
    };
    b[a + "ListUsers"] = [](const Objects&) { return std::make_unique<v1::ListUsersRequest>(); };
    b[a + "CreateDevice"] = [](const Objects& o) {
      auto r = std::make_unique<v1::CreateDeviceRequest>();
      r->mutable_device()->set_partner_id(o.partner_id);
      r->mutable_device()->set_name(Unique("Tablet"));
      return r;
    };
    b[a + "ListDevices"] = [](const Objects& o) {
      auto r = std::make_unique<v1::ListDevicesRequest>();
      r->set_partner_id(o.partner_id);
      return r;
    };
    b[a + "CreateEnrollment"] = [](const Objects& o) {
      auto r = std::make_unique<v1::CreateEnrollmentRequest>();
      r->set_device_id(o.device_id);
      return r;
    };
    // A device made for the call (never device A, whose token the matrix uses).
    b[a + "DisableDevice"] = [](const Objects& o) {
      auto r = std::make_unique<v1::DisableDeviceRequest>();
      r->set_id(ThrowawayDevice(o, /*disabled=*/false));
      return r;
    };
    b[a + "EnableDevice"] = [](const Objects& o) {
      auto r = std::make_unique<v1::EnableDeviceRequest>();
      r->set_id(ThrowawayDevice(o, /*disabled=*/true));
      return r;
    };
    b[a + "CreateToken"] = [](const Objects&) {
      auto r = std::make_unique<v1::CreateTokenRequest>();
      r->set_user_id(*throwaway_user_);
      r->set_label(Unique("laptop"));
      r->set_ttl_seconds(3600);
      return r;
    };
    b[a + "ListTokens"] = [](const Objects&) {
      auto r = std::make_unique<v1::ListTokensRequest>();
      r->set_user_id(*throwaway_user_);
      return r;
    };
    b[a + "RevokeToken"] = [](const Objects&) {
      auto r = std::make_unique<v1::RevokeTokenRequest>();
      std::string id;
      CreateToken(*throwaway_user_, "", 0, &id);
      r->set_id(id);
      return r;
    };
    b[a + "WhoAmI"] = [](const Objects&) { return std::make_unique<v1::WhoAmIRequest>(); };
    b[a + "Backup"] = [](const Objects&) {
      auto r = std::make_unique<v1::BackupRequest>();
      r->set_path("/nonexistent-fieldsync-authz-folder/backup.db");
      return r;
    };
    b[s + "Handshake"] = [](const Objects&) {
      auto r = std::make_unique<v1::HandshakeRequest>();
      r->set_protocol_version(v1::PROTOCOL_VERSION_1);
      r->set_device_time_ms(sync::SystemClockMs());
      return r;
    };
    b[s + "Push"] = [](const Objects& o) {
      auto r = std::make_unique<v1::PushRequest>();
      *r->add_changes() = NextChangeOfDeviceA(o);
      return r;
    };
    b[s + "Pull"] = [](const Objects&) {
      auto r = std::make_unique<v1::PullRequest>();
      r->set_page_size(1000);
      return r;
    };
    const std::string rp = "/fieldsync.v1.ReportService/";
    b[rp + "Export"] = [](const Objects& o) {
      auto r = std::make_unique<v1::ExportRequest>();
      r->set_format(v1::REPORT_FORMAT_CSV);
      r->add_tables(v1::REPORT_TABLE_PROJECTS);
      r->mutable_filter()->set_partner_id(o.partner_id);
      return r;
    };
    b[rp + "GetExportManifest"] = [](const Objects&) {
      auto r = std::make_unique<v1::GetExportManifestRequest>();
      r->set_export_id(NewUuidV7());
      return r;
    };
    b[rp + "VerifyAuditChain"] = [](const Objects&) {
      return std::make_unique<v1::VerifyAuditChainRequest>();
    };
    b[s + "Enroll"] = [](const Objects& o) {
      auto r = std::make_unique<v1::EnrollRequest>();
      r->set_code(hq_->EnrollmentCode(o.partner_id, Unique("phone")));
      return r;
    };
    return b;
  }

  // Every RPC of the three services, from the descriptors.
  static std::vector<const google::protobuf::MethodDescriptor*> AllMethods() {
    // Referencing a message of each service links its file's descriptors into the pool.
    (void)v1::CreateProjectRequest::descriptor();
    (void)v1::WhoAmIRequest::descriptor();
    (void)v1::HandshakeRequest::descriptor();
    (void)v1::ExportRequest::descriptor();
    std::vector<const google::protobuf::MethodDescriptor*> out;
    for (const char* name : {"fieldsync.v1.TrackerService", "fieldsync.v1.AdminService",
                             "fieldsync.v1.SyncService", "fieldsync.v1.ReportService"}) {
      const google::protobuf::ServiceDescriptor* d =
          google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
      EXPECT_NE(d, nullptr) << name;
      if (d == nullptr) continue;
      for (int i = 0; i < d->method_count(); ++i) out.push_back(d->method(i));
    }
    return out;
  }

  static testing::TempDir* dir_;
  static testing::ServerProcess* server_;
  static std::shared_ptr<grpc::Channel>* channel_;
  static testing::Hq* hq_;
  static v1::SyncService::Stub* sync_;
  static Objects *a_, *b_, *missing_;
  static std::string* dev_a_token_;
  static std::string* throwaway_user_;
  static std::vector<Credential>* creds_;
};

testing::TempDir* AuthzMatrixTest::dir_ = nullptr;
testing::ServerProcess* AuthzMatrixTest::server_ = nullptr;
std::shared_ptr<grpc::Channel>* AuthzMatrixTest::channel_ = nullptr;
testing::Hq* AuthzMatrixTest::hq_ = nullptr;
v1::SyncService::Stub* AuthzMatrixTest::sync_ = nullptr;
Objects* AuthzMatrixTest::a_ = nullptr;
Objects* AuthzMatrixTest::b_ = nullptr;
Objects* AuthzMatrixTest::missing_ = nullptr;
std::string* AuthzMatrixTest::dev_a_token_ = nullptr;
std::string* AuthzMatrixTest::throwaway_user_ = nullptr;
std::vector<Credential>* AuthzMatrixTest::creds_ = nullptr;

const Row* ExpectedRow(const std::string& method) {
  for (const Row& r : kExpected) {
    if (method == r.method) return &r;
  }
  return nullptr;
}

TEST_F(AuthzMatrixTest, TheTableNamesOnlyRealRpcs) {
  std::set<std::string> real;
  for (const auto* m : AllMethods()) {
    real.insert("/" + m->service()->full_name() + "/" + m->name());
  }
  EXPECT_EQ(real.size(), std::size(kExpected)) << "one row per RPC";
  for (const Row& r : kExpected) {
    EXPECT_TRUE(real.count(r.method)) << r.method << " is in the matrix but is no RPC";
  }
  for (const auto& [name, builder] : Builders()) {
    EXPECT_TRUE(real.count(name)) << name << " has a builder but is no RPC";
  }
}

TEST_F(AuthzMatrixTest, EveryRpcUnderEveryCredential) {
  // What partner B's ids and names look like: none may reach a device of partner A.
  const std::vector<std::string> secrets_of_b = {b_->project.id(), b_->site_id,
                                                 b_->record_id,     b_->project.title(),
                                                 b_->site_name,     b_->partner_name};
  // An id the caller sent may be echoed back in an error message ("no project with id X");
  // anything else of partner B may not appear.
  auto leaks = [&](const Outcome& o, const std::string& sent) -> std::string {
    for (const std::string& s : secrets_of_b) {
      if (sent.find(s) != std::string::npos) continue;
      if (o.response.find(s) != std::string::npos || o.message.find(s) != std::string::npos) {
        return s;
      }
    }
    return "";
  };

  std::map<std::string, Builder> builders = Builders();
  std::vector<const google::protobuf::MethodDescriptor*> methods = AllMethods();
  ASSERT_GE(methods.size(), 30u);
  int calls = 0;
  std::printf("%-34s", "rpc");
  for (const Credential& c : *creds_) std::printf(" %-4.4s", c.name.c_str());
  std::printf("\n");
  for (const google::protobuf::MethodDescriptor* m : methods) {
    const std::string method = "/" + m->service()->full_name() + "/" + m->name();
    const Row* row = ExpectedRow(method);
    auto builder = builders.find(method);
    if (row == nullptr || builder == builders.end()) {
      ADD_FAILURE() << method << " has no " << (row == nullptr ? "row in kExpected" : "builder")
                    << ": add it to the matrix (tests/authz_matrix_test.cc)";
      continue;
    }
    const bool streaming = m->server_streaming();
    std::printf("%-34s", (m->service()->name() + "." + m->name()).c_str());
    for (const Credential& cred : *creds_) {
      SCOPED_TRACE(method + " as " + cred.name);
      const Objects& objects = cred.col == kDevOther ? *b_ : *a_;
      std::unique_ptr<Message> request = builder->second(objects);
      ASSERT_EQ(request->GetDescriptor(), m->input_type()) << "builder of " << method;
      Outcome got = Call(*channel_, method, streaming, *request, cred.auth);
      ++calls;
      std::string cell;
      if (cred.col < 0) {
        // A bad credential: refused before anything else, unless the RPC is public.
        if (row->public_call) {
          EXPECT_EQ(got.code, grpc::StatusCode::OK) << got.Describe();
        } else {
          EXPECT_EQ(got.code, grpc::StatusCode::UNAUTHENTICATED) << got.Describe();
          EXPECT_TRUE(got.response.empty());
        }
        cell = got.code == grpc::StatusCode::OK ? "ok" : "UNA";
        std::printf(" %-4s", cell.c_str());
        continue;
      }
      Exp want = row->cell[cred.col];
      SCOPED_TRACE(std::string("expected ") + ExpName(want));
      switch (want) {
        case Exp::kOk:
          EXPECT_EQ(got.code, grpc::StatusCode::OK) << got.Describe();
          EXPECT_FALSE(got.silent) << "the stream sent nothing";
          break;
        case Exp::kDenied:
          EXPECT_EQ(got.code, grpc::StatusCode::PERMISSION_DENIED) << got.Describe();
          break;
        case Exp::kPrecond:
          EXPECT_EQ(got.code, grpc::StatusCode::FAILED_PRECONDITION) << got.Describe();
          break;
        case Exp::kNotFound:
          EXPECT_EQ(got.code, grpc::StatusCode::NOT_FOUND) << got.Describe();
          break;
        case Exp::kHidden: {
          // The same request about objects that exist nowhere must be answered identically.
          std::unique_ptr<Message> missing_request = builder->second(*missing_);
          Outcome missing = Call(*channel_, method, streaming, *missing_request, cred.auth);
          ++calls;
          EXPECT_TRUE(got.silent || got.code == grpc::StatusCode::OK ||
                      got.code == grpc::StatusCode::NOT_FOUND ||
                      got.code == grpc::StatusCode::INVALID_ARGUMENT)
              << "partner B's objects should look missing, got " << got.Describe();
          EXPECT_EQ(got.code, missing.code)
              << "partner B: " << got.Describe() << "; missing objects: " << missing.Describe();
          EXPECT_EQ(got.silent, missing.silent);
          if (got.code == grpc::StatusCode::OK && missing.code == grpc::StatusCode::OK) {
            if (method == "/fieldsync.v1.SyncService/Push") {
              // A refusal: compare what it says, not the ids and numbers each request had.
              got.response = PushAnswerShape(got.response);
              missing.response = PushAnswerShape(missing.response);
            }
            EXPECT_EQ(got.response, missing.response)
                << "an answer about partner B's objects differs from one about missing objects";
          }
          break;
        }
      }
      if (cred.col == kDevOwn || cred.col == kDevOther || cred.col == kFdUser) {
        std::string leaked = leaks(got, request->SerializeAsString());
        EXPECT_EQ(leaked, "") << "partner B's data reached a partner A credential: "
                              << got.Describe();
      }
      cell = got.silent ? "-" : got.code == grpc::StatusCode::OK ? "ok"
             : got.code == grpc::StatusCode::PERMISSION_DENIED   ? "DEN"
             : got.code == grpc::StatusCode::NOT_FOUND           ? "NF"
             : got.code == grpc::StatusCode::INVALID_ARGUMENT    ? "INV"
             : got.code == grpc::StatusCode::FAILED_PRECONDITION ? "PRE"
             : got.code == grpc::StatusCode::UNAUTHENTICATED     ? "UNA"
                                                                 : std::to_string(got.code);
      std::printf(" %-4s", cell.c_str());
    }
    std::printf("\n");
  }
  std::printf("%d calls over %zu RPCs x %zu credentials\n", calls, methods.size(),
              creds_->size());
}

}  // namespace
}  // namespace fieldsync
