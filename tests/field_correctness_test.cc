// Field correctness and hostile input, over raw gRPC against the real fieldsyncd (issue 13): no
// device can crash the server or write past its rights on any route, a refused change never
// blocks the ones after it and is kept whole, concurrent valid edits that break a rule together
// are kept and flagged, every store of a device lands in full, wrong clocks are bounded and
// logged as claimed, future event dates are refused, and the audit rows exports show follow
// from the chain.

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/sync/hlc.h"
#include "fieldsync/v1/admin.grpc.pb.h"
#include "fieldsync/v1/report.grpc.pb.h"
#include "fieldsync/v1/sync.grpc.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_db.h"

namespace fieldsync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = ::fieldsync::v1;

constexpr int64_t kYearMs = 365LL * 24 * 3600 * 1000;

v1::Record Well(const std::string& project, double depth = 60, double level = 12) {
  v1::Record r;
  r.set_project_id(project);
  v1::WellRecord* w = r.mutable_well();
  w->set_drilled_depth_m(depth);
  w->set_static_water_level_m(level);
  w->set_yield_lph(900);
  w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
  w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
  w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
  w->set_population_served(300);
  w->set_visit_date("2026-05-02");
  return r;
}

// A device of one partner speaking raw SyncService.
struct Device {
  std::string id;
  std::string token;
  std::string stream = NewUuidV7();
  int64_t seq = 0;
};

class FieldCorrectnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start(dir_.path()).ok()) << server_.Log();
    channel_ = server_.Channel();
    hq_ = std::make_unique<testing::Hq>(channel_, server_.admin_token());
    tracker_ = v1::TrackerService::NewStub(channel_);
    sync_ = v1::SyncService::NewStub(channel_);
    reports_ = v1::ReportService::NewStub(channel_);
    mine_ = hq_->CreatePartner("Borehole Trust Kenya", {"KE"}).id();
    theirs_ = hq_->CreatePartner("Mekong Water", {"VN"}).id();
    my_project_ = hq_->CreateProject(mine_, v1::PROJECT_KIND_WELL, "KE", "Wells").id();
    their_project_ = hq_->CreateProject(theirs_, v1::PROJECT_KIND_WELL, "VN", "Wells").id();
    a_ = Enroll(mine_);
    b_ = Enroll(mine_);
    them_ = Enroll(theirs_);
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "fieldsyncd log:\n" << server_.Log();
  }

  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    testing::AddBearer(*ctx, token);
    return ctx;
  }

  Device Enroll(const std::string& partner) {
    Device d;
    std::string code = hq_->EnrollmentCode(partner, "Tablet", &d.id);
    v1::EnrollRequest req;
    req.set_code(code);
    v1::EnrollResponse enrolled;
    grpc::ClientContext ctx;
    grpc::Status s = sync_->Enroll(&ctx, req, &enrolled);
    EXPECT_TRUE(s.ok()) << s.error_message();
    d.token = enrolled.token();
    return d;
  }

  // A change of `doc_id` in `collection` setting `fields`, numbered next for `d`.
  static v1::Change Change(Device& d, const std::string& collection, const std::string& doc_id,
                           const sync::FieldValues& fields, int64_t wall_ms = 0) {
    v1::Change c;
    c.set_device_seq(++d.seq);
    c.set_collection(collection);
    c.set_doc_id(doc_id);
    c.set_hlc(sync::Hlc{wall_ms ? wall_ms : sync::SystemClockMs(), 0, d.id}.Encode());
    for (const auto& [path, value] : fields) {
      v1::FieldChange* f = c.add_fields();
      f->set_path(path);
      f->set_value(value);
    }
    return c;
  }
  static v1::Change Create(Device& d, v1::Record record) {
    if (record.id().empty()) record.set_id(NewUuidV7());
    return Change(d, "record", record.id(), sync::Flatten(record));
  }
  // The value bytes of one field of a well record.
  static std::string WellField(const std::string& path, double v) {
    v1::Record r;
    if (path == "well.drilled_depth_m") r.mutable_well()->set_drilled_depth_m(v);
    if (path == "well.static_water_level_m") r.mutable_well()->set_static_water_level_m(v);
    return sync::Flatten(r).at(path);
  }

  grpc::Status Push(Device& d, const std::vector<v1::Change>& changes, v1::PushResponse* out) {
    v1::PushRequest req;
    req.set_stream_id(d.stream);
    for (const auto& c : changes) *req.add_changes() = c;
    return sync_->Push(Ctx(d.token).get(), req, out);
  }
  v1::PushResponse MustPush(Device& d, const std::vector<v1::Change>& changes) {
    v1::PushResponse out;
    grpc::Status s = Push(d, changes, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }
  // Pulls the device's whole scope and records how far it got (what the device has seen).
  void PullAll(Device& d) {
    v1::PullRequest req;
    auto ctx = Ctx(d.token);
    auto reader = sync_->Pull(ctx.get(), req);
    v1::PullPage page;
    while (reader->Read(&page)) {
    }
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
  }

  int64_t Count(const std::string& sql) { return testing::QueryInt(server_.db_path(), sql); }
  bool Alive() {
    v1::HandshakeRequest req;
    req.set_protocol_version(v1::PROTOCOL_VERSION_1);
    v1::HandshakeResponse resp;
    return sync_->Handshake(Ctx(a_.token).get(), req, &resp).ok();
  }
  v1::VerifyAuditChainResponse Verify() {
    v1::VerifyAuditChainResponse out;
    grpc::Status s =
        reports_->VerifyAuditChain(Ctx(server_.admin_token()).get(), {}, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }
  absl::StatusOr<v1::Record> GetRecord(const std::string& id) {
    v1::GetRecordRequest req;
    req.set_id(id);
    v1::Record out;
    grpc::Status s = tracker_->GetRecord(Ctx(server_.admin_token()).get(), req, &out);
    if (!s.ok()) return absl::NotFoundError(s.error_message());
    return out;
  }

  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<testing::Hq> hq_;
  std::unique_ptr<v1::TrackerService::Stub> tracker_;
  std::unique_ptr<v1::SyncService::Stub> sync_;
  std::unique_ptr<v1::ReportService::Stub> reports_;
  std::string mine_, theirs_, my_project_, their_project_;
  Device a_, b_, them_;
};

// Issue 13.1: a change of collection "partner" passed validation and was cast to a record.
TEST_F(FieldCorrectnessTest, APushOfAnyCollectionNeverCrashesTheServer) {
  v1::Partner p;
  p.set_id(mine_);
  p.set_name("Renamed by a device");
  p.add_countries("KE");
  for (const std::string collection : {"partner", "user", "device", "token", "", "records"}) {
    v1::PushResponse out = MustPush(a_, {Change(a_, collection, mine_, sync::Flatten(p))});
    ASSERT_EQ(out.rejections_size(), 1) << collection;
    EXPECT_EQ(out.rejections(0).code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    EXPECT_THAT(out.rejections(0).reason(), HasSubstr("collection"));
    EXPECT_EQ(out.acked_device_seq(), a_.seq);
    ASSERT_TRUE(Alive()) << "after collection \"" << collection << "\"";
  }
  EXPECT_EQ(hq_->GetPartner(mine_).name(), "Borehole Trust Kenya");
}

// Issue 13.2: the write policy holds on every route. Each (route x collection x operation x
// role x own/other partner) is tried; the expectation is written from the contract
// (server/write_policy.h, docs/ARCHITECTURE.md "Auth"), not from the code.
TEST_F(FieldCorrectnessTest, EveryRouteToAWriteFollowsOnePolicy) {
  const std::string my_site = hq_->CreateSite(my_project_, "Kisumu").id();
  const std::string their_site = hq_->CreateSite(their_project_, "Can Tho").id();
  std::string my_record = hq_->CreateRecord(Well(my_project_)).id();
  std::string their_record = hq_->CreateRecord(Well(their_project_)).id();
  const std::string viewer = hq_->TokenFor(v1::ROLE_HQ_VIEWER);
  const std::string auditor = hq_->TokenFor(v1::ROLE_AUDITOR);

  struct Case {
    std::string route, collection, op, role;
    bool own;
    bool allowed;
  };
  auto expected = [](const std::string& collection, const std::string& op,
                     const std::string& role, bool own) {
    if (role == "admin") return !(op == "delete" && collection != "record");
    if (role != "device" || !own) return false;
    if (collection == "record") return true;
    if (collection == "site") return op != "delete";
    return false;
  };
  std::vector<Case> cases;
  for (const std::string collection : {"project", "site", "record", "partner"}) {
    for (const std::string op : {"create", "update", "delete"}) {
      for (const bool own : {true, false}) {
        cases.push_back({"push", collection, op, "device", own,
                         expected(collection, op, "device", own)});
        for (const std::string role : {"admin", "hq", "auditor", "device"}) {
          if (collection == "partner") continue;  // AdminService: covered by the authz matrix
          cases.push_back({"rpc", collection, op, role, own, expected(collection, op, role, own)});
        }
      }
    }
  }
  int checked = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.route, " ", c.op, " ", c.collection, " as ", c.role, " on ",
                              c.own ? "own" : "other", " partner's data"));
    const std::string partner = c.own ? mine_ : theirs_;
    const std::string project = c.own ? my_project_ : their_project_;
    const std::string site = c.own ? my_site : their_site;
    std::string record = c.own ? my_record : their_record;
    // The document the write targets, and what it looks like after the write if it happened.
    std::string doc_id;
    v1::Project project_msg;
    v1::Site site_msg;
    v1::Record record_msg;
    if (c.collection == "project") {
      project_msg = hq_->GetProject(project);
      if (c.op == "create") {
        project_msg.clear_audit();
        project_msg.set_id(NewUuidV7());
      }
      project_msg.set_title("Changed by the matrix");
      doc_id = project_msg.id();
    } else if (c.collection == "site") {
      site_msg = hq_->GetSite(site);
      if (c.op == "create") {
        site_msg.clear_audit();
        site_msg.set_id(NewUuidV7());
      }
      site_msg.set_name("Changed by the matrix");
      doc_id = site_msg.id();
    } else if (c.collection == "record") {
      record_msg = c.op == "create" ? Well(project) : *GetRecord(record);
      if (c.op == "create") record_msg.set_id(NewUuidV7());
      record_msg.mutable_well()->set_population_served(777);
      doc_id = record_msg.id();
    } else {
      doc_id = c.op == "create" ? NewUuidV7() : partner;
    }

    bool ok = false;
    if (c.route == "push") {
      sync::FieldValues fields;
      if (c.collection == "project") {
        v1::Project clean = project_msg;
        sync::ClearOutputOnly(&clean);
        fields = sync::Flatten(clean);
      } else if (c.collection == "site") {
        v1::Site clean = site_msg;
        sync::ClearOutputOnly(&clean);
        fields = sync::Flatten(clean);
      } else if (c.collection == "record") {
        v1::Record clean = record_msg;
        sync::ClearOutputOnly(&clean);
        fields = sync::Flatten(clean);
      } else {
        v1::Partner p;
        p.set_id(doc_id);
        p.set_name("Changed by the matrix");
        p.add_countries("KE");
        fields = sync::Flatten(p);
      }
      if (c.op == "delete") fields = {{sync::kDeletedPath, "\x01"}};
      v1::PushResponse out = MustPush(a_, {Change(a_, c.collection, doc_id, fields)});
      ok = out.rejections_size() == 0;
      EXPECT_EQ(out.acked_device_seq(), a_.seq) << "a refusal must not block the device";
    } else {
      const std::string token = c.role == "admin"     ? server_.admin_token()
                                : c.role == "hq"      ? viewer
                                : c.role == "auditor" ? auditor
                                                      : a_.token;
      grpc::Status s;
      if (c.collection == "project") {
        if (c.op == "create") {
          v1::CreateProjectRequest req;
          *req.mutable_project() = project_msg;
          v1::Project out;
          s = tracker_->CreateProject(Ctx(token).get(), req, &out);
        } else if (c.op == "update") {
          v1::UpdateProjectRequest req;
          *req.mutable_project() = project_msg;
          v1::Project out;
          s = tracker_->UpdateProject(Ctx(token).get(), req, &out);
        } else {
          continue;  // no RPC deletes a project
        }
      } else if (c.collection == "site") {
        if (c.op == "create") {
          v1::CreateSiteRequest req;
          *req.mutable_site() = site_msg;
          v1::Site out;
          s = tracker_->CreateSite(Ctx(token).get(), req, &out);
        } else {
          continue;  // no RPC updates or deletes a site
        }
      } else {
        v1::Record out;
        if (c.op == "create") {
          v1::CreateRecordRequest req;
          *req.mutable_record() = record_msg;
          s = tracker_->CreateRecord(Ctx(token).get(), req, &out);
        } else if (c.op == "update") {
          v1::UpdateRecordRequest req;
          *req.mutable_record() = record_msg;
          s = tracker_->UpdateRecord(Ctx(token).get(), req, &out);
        } else {
          v1::DeleteRecordRequest req;
          req.set_id(record);
          s = tracker_->DeleteRecord(Ctx(token).get(), req, &out);
        }
      }
      ok = s.ok();
    }
    EXPECT_EQ(ok, c.allowed);
    // What the database holds agrees with the answer.
    if (c.collection == "project" && c.op != "delete") {
      absl::StatusOr<v1::Project> now = hq_->FindProject(doc_id);
      EXPECT_EQ(now.ok() && now->title() == "Changed by the matrix", c.allowed);
      if (now.ok() && c.op == "update" && c.allowed) {
        // Put it back for the next case.
        now->set_title("Wells");
        hq_->UpdateProject(*now);
      }
    }
    if (c.collection == "record" && c.op == "delete" && c.allowed) {
      EXPECT_FALSE(GetRecord(record).ok());
      // A fresh record for the following cases.
      (c.own ? my_record : their_record) = hq_->CreateRecord(Well(project)).id();
    }
    if (c.collection == "partner") {
      EXPECT_NE(hq_->GetPartner(partner).name(), "Changed by the matrix");
    }
    ++checked;
  }
  EXPECT_GE(checked, 60);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM projects WHERE title = 'Changed by the matrix'"), 2)
      << "only the admin's project creations (one per partner)";
  EXPECT_TRUE(Verify().ok());
}

// Issue 13.3: a refusal about another partner's document reads exactly as one about a document
// that does not exist: no ids, values or existence of theirs.
TEST_F(FieldCorrectnessTest, RefusalsAboutAnotherPartnerRevealNothing) {
  v1::Record theirs = hq_->CreateRecord(Well(their_project_, 137.25, 20));
  const std::string their_site = hq_->CreateSite(their_project_, "Can Tho").id();
  const std::string missing_record = NewUuidV7(), missing_project = NewUuidV7(),
                    missing_site = NewUuidV7();
  // Each probe once against their data and once against ids that exist nowhere.
  struct Probe {
    std::string name;
    std::function<v1::Change(Device&, bool real)> change;
  };
  std::vector<Probe> probes = {
      {"an edit breaking a rule of their record",
       [&](Device& d, bool real) {
         return Change(d, "record", real ? theirs.id() : missing_record,
                       {{"well.static_water_level_m", WellField("well.static_water_level_m", 200)}});
       }},
      {"a record in their project",
       [&](Device& d, bool real) {
         v1::Record r = Well(real ? their_project_ : missing_project);
         return Create(d, r);
       }},
      {"a record at their site",
       [&](Device& d, bool real) {
         v1::Record r = Well(my_project_);
         r.set_site_id(real ? their_site : missing_site);
         return Create(d, r);
       }},
      {"a deletion of their record",
       [&](Device& d, bool real) {
         return Change(d, "record", real ? theirs.id() : missing_record,
                       {{sync::kDeletedPath, "\x01"}});
       }},
      {"their project renamed",
       [&](Device& d, bool real) {
         v1::Project p;
         p.set_title("Mine now");
         return Change(d, "project", real ? their_project_ : missing_project,
                       sync::Flatten(p));
       }},
  };
  for (const Probe& p : probes) {
    SCOPED_TRACE(p.name);
    v1::PushResponse real = MustPush(a_, {p.change(a_, true)});
    v1::PushResponse fake = MustPush(a_, {p.change(a_, false)});
    ASSERT_EQ(real.rejections_size(), 1);
    ASSERT_EQ(fake.rejections_size(), 1);
    std::string said = real.rejections(0).reason();
    std::string would = fake.rejections(0).reason();
    said = absl::StrReplaceAll(said, {{theirs.id(), "ID"}, {their_project_, "PROJECT"},
                                      {their_site, "SITE"}, {"changes[0]", "changes[i]"}});
    would = absl::StrReplaceAll(would, {{missing_record, "ID"}, {missing_project, "PROJECT"},
                                        {missing_site, "SITE"}, {"changes[0]", "changes[i]"}});
    EXPECT_EQ(said, would);
    EXPECT_EQ(real.rejections(0).code(), fake.rejections(0).code());
    EXPECT_THAT(said, Not(HasSubstr("137.25")));
    EXPECT_THAT(said, Not(HasSubstr(theirs_)));
  }
  EXPECT_EQ(GetRecord(theirs.id())->well().static_water_level_m(), 20);
}

// Issue 13.12: a refused change is kept whole, acknowledged as refused, and never blocks the
// changes after it; HQ lists it, auditors see it in the chain.
TEST_F(FieldCorrectnessTest, ARefusedChangeNeverBlocksTheOnesAfterIt) {
  v1::Record bad = Well(my_project_);
  bad.mutable_well()->set_static_water_level_m(-5);  // invalid alone
  v1::Change first = Create(a_, Well(my_project_));
  v1::Change refused = Create(a_, bad);
  v1::Change third = Create(a_, Well(my_project_));
  v1::PushResponse out = MustPush(a_, {first, refused, third});
  EXPECT_EQ(out.acked_device_seq(), 3);
  ASSERT_EQ(out.rejections_size(), 1);
  EXPECT_EQ(out.rejections(0).device_seq(), 2);
  EXPECT_EQ(out.rejections(0).doc_id(), refused.doc_id());
  EXPECT_THAT(out.rejections(0).reason(), HasSubstr("static_water_level_m"));
  EXPECT_TRUE(GetRecord(first.doc_id()).ok());
  EXPECT_TRUE(GetRecord(third.doc_id()).ok());
  EXPECT_FALSE(GetRecord(refused.doc_id()).ok());

  // A replay of the batch (a lost response) applies nothing twice and says the same.
  v1::PushResponse again = MustPush(a_, {first, refused, third});
  EXPECT_EQ(again.acked_device_seq(), 3);
  ASSERT_EQ(again.rejections_size(), 1);
  EXPECT_EQ(again.rejections(0).device_seq(), 2);
  // So does a handshake for a store that missed the answer.
  v1::HandshakeRequest hreq;
  hreq.set_protocol_version(v1::PROTOCOL_VERSION_1);
  hreq.set_stream_id(a_.stream);
  hreq.set_known_acked_device_seq(1);
  v1::HandshakeResponse hello;
  ASSERT_TRUE(sync_->Handshake(Ctx(a_.token).get(), hreq, &hello).ok());
  EXPECT_EQ(hello.acked_device_seq(), 3);
  ASSERT_EQ(hello.rejections_size(), 1);
  EXPECT_EQ(hello.rejections(0).device_seq(), 2);

  // HQ sees it whole; the device sees only its own.
  v1::ListRejectionsRequest lreq;
  v1::ListRejectionsResponse listed;
  ASSERT_TRUE(tracker_->ListRejections(Ctx(server_.admin_token()).get(), lreq, &listed).ok());
  ASSERT_EQ(listed.rejections_size(), 1);
  EXPECT_EQ(listed.rejections(0).device_id(), a_.id);
  EXPECT_EQ(listed.rejections(0).change().SerializeAsString(), refused.SerializeAsString());
  EXPECT_EQ(listed.rejections(0).status(), v1::CONFLICT_STATUS_OPEN);
  ASSERT_TRUE(tracker_->ListRejections(Ctx(b_.token).get(), lreq, &listed).ok());
  EXPECT_EQ(listed.rejections_size(), 0);
  ASSERT_TRUE(tracker_->ListRejections(Ctx(them_.token).get(), lreq, &listed).ok());
  EXPECT_EQ(listed.rejections_size(), 0);
  // In the chain as op "reject", and the chain verifies.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM change_log WHERE op = 'reject'"), 1);
  EXPECT_TRUE(Verify().ok());

  // HQ closes it.
  ASSERT_TRUE(tracker_->ListRejections(Ctx(server_.admin_token()).get(), lreq, &listed).ok());
  v1::ResolveRejectionRequest rreq;
  rreq.set_id(listed.rejections(0).id());
  rreq.set_note("called the officer");
  v1::RejectedChange resolved;
  ASSERT_TRUE(tracker_->ResolveRejection(Ctx(server_.admin_token()).get(), rreq, &resolved).ok());
  EXPECT_EQ(resolved.status(), v1::CONFLICT_STATUS_RESOLVED);
  EXPECT_EQ(tracker_->ResolveRejection(Ctx(server_.admin_token()).get(), rreq, &resolved)
                .error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(tracker_->ResolveRejection(Ctx(a_.token).get(), rreq, &resolved).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

// Issue 13.12: device 1 sets the depth to 20, device 2 (which had not seen that) the water level
// to 30: each valid alone, together they break "level <= depth". Both are kept, the record is
// flagged for review, and a correction closes the flag. A device that had seen the depth and
// still sets a deeper level is refused: that break is its own.
TEST_F(FieldCorrectnessTest, ConcurrentValidEditsThatBreakARuleAreKeptAndFlagged) {
  v1::Change created = Create(a_, Well(my_project_, 60, 12));
  MustPush(a_, {created});
  const std::string id = created.doc_id();
  PullAll(a_);
  PullAll(b_);
  v1::PushResponse one =
      MustPush(a_, {Change(a_, "record", id, {{"well.drilled_depth_m", WellField("well.drilled_depth_m", 20)}})});
  EXPECT_EQ(one.rejections_size(), 0);
  v1::PushResponse two = MustPush(
      b_, {Change(b_, "record", id,
                  {{"well.static_water_level_m", WellField("well.static_water_level_m", 30)}})});
  EXPECT_EQ(two.rejections_size(), 0) << two.rejections(0).reason();
  ASSERT_EQ(two.reviews_size(), 1);
  EXPECT_THAT(two.reviews(0).reason(), HasSubstr("static_water_level_m"));
  v1::Record merged = *GetRecord(id);
  EXPECT_EQ(merged.well().drilled_depth_m(), 20);
  EXPECT_EQ(merged.well().static_water_level_m(), 30);

  // Open RULE conflicts as `token` sees them (the raw changes here carry no base clocks, so
  // FIELD conflicts are listed too).
  auto open_rules = [&](const std::string& token) {
    v1::ListConflictsRequest creq;
    creq.set_status(v1::CONFLICT_STATUS_OPEN);
    v1::ListConflictsResponse conflicts;
    EXPECT_TRUE(tracker_->ListConflicts(Ctx(token).get(), creq, &conflicts).ok());
    std::vector<v1::Conflict> rules;
    for (const v1::Conflict& c : conflicts.conflicts()) {
      if (c.kind() == v1::CONFLICT_KIND_RULE) rules.push_back(c);
    }
    return rules;
  };
  std::vector<v1::Conflict> rules = open_rules(server_.admin_token());
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].doc_id(), id);
  EXPECT_THAT(rules[0].reason(), HasSubstr("static_water_level_m"));
  // The device sees it in its partner's conflicts too; the other partner does not.
  EXPECT_EQ(open_rules(b_.token).size(), 1u);
  EXPECT_EQ(open_rules(them_.token).size(), 0u);

  // Device 2, having now seen the depth, makes the level deeper still: its own doing, refused.
  PullAll(b_);
  v1::PushResponse own = MustPush(
      b_, {Change(b_, "record", id,
                  {{"well.static_water_level_m", WellField("well.static_water_level_m", 35)}})});
  ASSERT_EQ(own.rejections_size(), 1);
  EXPECT_THAT(own.rejections(0).reason(), HasSubstr("static_water_level_m"));
  // Its correction makes the record valid and closes the flag.
  v1::PushResponse fixed = MustPush(
      b_, {Change(b_, "record", id,
                  {{"well.static_water_level_m", WellField("well.static_water_level_m", 15)}})});
  EXPECT_EQ(fixed.rejections_size(), 0);
  EXPECT_EQ(fixed.reviews_size(), 0);
  EXPECT_EQ(open_rules(server_.admin_token()).size(), 0u);
  EXPECT_TRUE(Verify().ok());
}

// Issue 13.13: two stores of one device number their changes alike; both land in full. A copy
// reusing a number for a different change is told to take a new stream, never taken for a
// replay; a batch numbering two changes alike is refused whole.
TEST_F(FieldCorrectnessTest, EveryStoreOfADeviceLandsInFull) {
  Device old_phone = a_;
  Device new_phone = a_;
  new_phone.stream = NewUuidV7();
  v1::Change o1 = Create(old_phone, Well(my_project_));
  v1::Change o2 = Create(old_phone, Well(my_project_));
  v1::Change n1 = Create(new_phone, Well(my_project_));
  v1::Change n2 = Create(new_phone, Well(my_project_));
  EXPECT_EQ(MustPush(old_phone, {o1, o2}).acked_device_seq(), 2);
  EXPECT_EQ(MustPush(new_phone, {n1, n2}).acked_device_seq(), 2);
  for (const v1::Change* c : {&o1, &o2, &n1, &n2}) EXPECT_TRUE(GetRecord(c->doc_id()).ok());

  // A restored copy of the old phone's store: same stream, its own change under number 2.
  Device copy = old_phone;
  copy.seq = 1;
  v1::Change c2 = Create(copy, Well(my_project_));
  v1::PushResponse out;
  grpc::Status s = Push(copy, {c2}, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("new stream_id"));
  EXPECT_FALSE(GetRecord(c2.doc_id()).ok());
  // Under a stream of its own it lands.
  copy.stream = NewUuidV7();
  c2.set_device_seq(1);
  EXPECT_EQ(MustPush(copy, {c2}).acked_device_seq(), 1);
  EXPECT_TRUE(GetRecord(c2.doc_id()).ok());

  Device dup = a_;
  dup.stream = NewUuidV7();
  v1::Change d1 = Create(dup, Well(my_project_));
  v1::Change d2 = Create(dup, Well(my_project_));
  d2.set_device_seq(d1.device_seq());
  s = Push(dup, {d1, d2}, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("changes[1].device_seq"));
  EXPECT_FALSE(GetRecord(d1.doc_id()).ok());
  EXPECT_TRUE(Verify().ok());
}

// Issue 13.14: a clock a year ahead is bounded to the server's time; the log keeps what the
// device claimed and the server says so in its log.
TEST_F(FieldCorrectnessTest, AClockAheadIsBoundedLoggedAndKeptAsClaimed) {
  v1::Record r = Well(my_project_);
  r.set_id(NewUuidV7());
  v1::Change ahead = Change(a_, "record", r.id(), sync::Flatten(r),
                            sync::SystemClockMs() + kYearMs);
  MustPush(a_, {ahead});
  auto rows = testing::QueryRows(server_.db_path(),
                                 "SELECT hlc FROM change_log WHERE doc_id = '" + r.id() + "'");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  absl::StatusOr<sync::Hlc> merged_with = sync::Hlc::Decode(rows->at(0).at(0).value_or(""));
  ASSERT_TRUE(merged_with.ok());
  EXPECT_LT(merged_with->wall_ms, sync::SystemClockMs() + 60'000);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM change_log WHERE doc_id = '" + r.id() + "' AND hlc <> '" +
                  ahead.hlc() + "'"),
            1);
  EXPECT_THAT(server_.Log(), HasSubstr("clock skew device=" + a_.id));
  EXPECT_TRUE(Verify().ok());
}

// Issue 13.15: event dates in the future are refused, on every route.
TEST_F(FieldCorrectnessTest, EventDatesInTheFutureAreRefused) {
  v1::Record r = Well(my_project_);
  r.mutable_well()->set_visit_date("2099-01-01");
  v1::PushResponse out = MustPush(a_, {Create(a_, r)});
  ASSERT_EQ(out.rejections_size(), 1);
  EXPECT_THAT(out.rejections(0).reason(), HasSubstr("record.well.visit_date: must not be after"));
  v1::CreateRecordRequest req;
  *req.mutable_record() = r;
  v1::Record created;
  grpc::Status s = tracker_->CreateRecord(Ctx(server_.admin_token()).get(), req, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("visit_date"));
  // Today is fine.
  r.mutable_well()->set_visit_date(
      absl::FormatTime("%Y-%m-%d", absl::Now(), absl::UTCTimeZone()));
  *req.mutable_record() = r;
  EXPECT_TRUE(tracker_->CreateRecord(Ctx(server_.admin_token()).get(), req, &created).ok());
}

// Issue 13.20: the won/lost outcomes and old values an audit export shows are outside the
// hash; verification recomputes them from the chain, so editing them is caught.
TEST_F(FieldCorrectnessTest, EditedAuditRowsFailVerification) {
  v1::Change created = Create(a_, Well(my_project_));
  MustPush(a_, {created});
  PullAll(a_);
  PullAll(b_);
  MustPush(a_, {Change(a_, "record", created.doc_id(),
                       {{"well.drilled_depth_m", WellField("well.drilled_depth_m", 70)}})});
  MustPush(b_, {Change(b_, "record", created.doc_id(),
                       {{"well.drilled_depth_m", WellField("well.drilled_depth_m", 75)}})});
  ASSERT_TRUE(Verify().ok());
  const int64_t seq = Count("SELECT MAX(seq) FROM change_fields WHERE outcome = 'WON'");
  ASSERT_GT(seq, 0);
  ASSERT_TRUE(testing::ExecSql(server_.db_path(),
                               "UPDATE change_fields SET outcome = 'LOST' WHERE seq = " +
                                   std::to_string(seq))
                  .ok());
  v1::VerifyAuditChainResponse bad = Verify();
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.first_bad_seq(), seq);
  EXPECT_THAT(bad.problem(), HasSubstr("replay"));
}

}  // namespace
}  // namespace fieldsync
