// Unit tests of the client library without a server: local writes, the outbox, the local view
// over pulled server state, and the sync state machine's local half (pages, repair).
// Server state is seeded through LocalStore::ApplyPage, exactly as a pull would.
#include "fieldsync/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "client_lib/local_store.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/sync/checksum.h"
#include "fieldsync/sync/document.h"
#include "google/protobuf/util/time_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync::client {
namespace {

using ::fieldsync::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kDevice[] = "0190a000-0000-7000-8000-00000000d001";
constexpr char kPartner[] = "0190a000-0000-7000-8000-00000000a001";

// "0001700000000000.00005.server"-style clocks for seeded server state.
std::string ServerHlc(int64_t wall_ms, uint32_t counter = 0, const std::string& node = "server") {
  sync::Hlc hlc;
  hlc.wall_ms = wall_ms;
  hlc.counter = counter;
  hlc.node = node;
  return hlc.Encode();
}

// A pull-page document holding every field of `message` with one clock.
v1::DocumentDelta Delta(const std::string& collection, const google::protobuf::Message& message,
                        int64_t version, const std::string& hlc) {
  v1::DocumentDelta d;
  d.set_collection(collection);
  d.set_doc_id(
      message.GetReflection()->GetString(message, message.GetDescriptor()->FindFieldByName("id")));
  d.set_version(version);
  for (const auto& [path, value] : sync::Flatten(message)) {
    v1::DeltaField* f = d.add_fields();
    f->set_path(path);
    f->set_value(value);
    f->set_hlc(hlc);
  }
  return d;
}

v1::Project Project(const std::string& id, v1::ProjectKind kind) {
  v1::Project p;
  p.set_id(id);
  p.set_partner_id(kPartner);
  p.set_kind(kind);
  p.set_title("Wells of Kitui");
  p.set_country("KE");
  p.set_status(v1::PROJECT_STATUS_ACTIVE);
  return p;
}

v1::Record Well(const std::string& project_id, double yield_lph = 1200,
                const std::string& date = "2026-03-14") {
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
  w->set_visit_date(date);
  return r;
}

v1::Record Surgery(const std::string& project_id) {
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
  c->set_preop_va("CF");
  v1::FollowUpVisit* f = c->add_follow_ups();
  f->set_stage(v1::FOLLOW_UP_STAGE_DAY_1);
  f->set_visit_date("2026-02-02");
  f->set_presenting_va("6/24");
  return r;
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("device.db");
    // Enroll by hand (no server here) and pull two projects.
    auto store = LocalStore::Open(path_);
    ASSERT_OK(store);
    ASSERT_OK((*store)->SetState(kDeviceIdKey, kDevice));
    ASSERT_OK((*store)->SetState(kPartnerIdKey, kPartner));
    ASSERT_OK((*store)->SetState(kTokenKey, "fs_test"));
    ASSERT_OK((*store)->SetState(kServerAddressKey, "127.0.0.1:1"));
    well_project_ = NewUuidV7();
    cataract_project_ = NewUuidV7();
    v1::PullPage page;
    *page.add_documents() =
        Delta("project", Project(well_project_, v1::PROJECT_KIND_WELL), 1, ServerHlc(1000));
    *page.add_documents() =
        Delta("project", Project(cataract_project_, v1::PROJECT_KIND_CATARACT), 2, ServerHlc(1001));
    page.set_cursor("c2");
    ASSERT_OK((*store)->ApplyPage(page));
    Reopen();
  }

  void Reopen(ClientOptions options = {}) {
    client_.reset();
    auto c = Client::Open(path_, options);
    ASSERT_OK(c);
    client_ = *std::move(c);
  }

  // The outbox as stored.
  std::vector<v1::Change> Outbox() {
    auto store = LocalStore::Open(path_);
    EXPECT_OK(store);
    auto changes = (*store)->OutboxAfter(0, 100000);
    EXPECT_OK(changes);
    return *changes;
  }

  std::unique_ptr<LocalStore> Store() {
    auto store = LocalStore::Open(path_);
    EXPECT_OK(store);
    return *std::move(store);
  }

  static std::set<std::string> Paths(const v1::Change& c) {
    std::set<std::string> paths;
    for (const auto& f : c.fields()) paths.insert(f.path());
    return paths;
  }

  testing::TempDir dir_;
  std::string path_;
  std::string well_project_, cataract_project_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientTest, OpenRefusesAStoreThatIsNotEnrolled) {
  EXPECT_THAT(Client::Open(dir_.File("other.db")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not enrolled")));
}

TEST_F(ClientTest, OfflineWriteIsVisibleAtOnceWithDerivedFields) {
  auto created = client_->CreateRecord(Surgery(cataract_project_));
  ASSERT_OK(created);
  EXPECT_TRUE(IsUuid(created->id()));
  EXPECT_EQ(created->kind(), v1::RECORD_KIND_CATARACT_SURGERY);
  EXPECT_EQ(created->record_date(), "2026-02-01");
  EXPECT_EQ(created->cataract_surgery().follow_ups(0).outcome(), v1::VISUAL_OUTCOME_BORDERLINE);

  auto got = client_->GetRecord(created->id());
  ASSERT_OK(got);
  EXPECT_EQ(got->SerializeAsString(), created->SerializeAsString());
  v1::ListRecordsRequest all;
  auto listed = client_->ListRecords(all);
  ASSERT_OK(listed);
  ASSERT_THAT(listed->records(), SizeIs(1));
  EXPECT_EQ(listed->records(0).id(), created->id());

  auto status = client_->Status();
  ASSERT_OK(status);
  EXPECT_EQ(status->device_id, kDevice);
  EXPECT_EQ(status->pending_changes, 1);
  EXPECT_EQ(status->records, 1);
  EXPECT_EQ(status->projects, 2);
  EXPECT_EQ(status->cursor, "c2");
}

TEST_F(ClientTest, OutboxHoldsExactlyOneChangePerWriteInOrder) {
  auto a = client_->CreateRecord(Well(well_project_));
  ASSERT_OK(a);
  v1::Record edited = *a;
  edited.mutable_well()->set_yield_lph(900);
  ASSERT_OK(client_->UpdateRecord(edited));
  ASSERT_OK(client_->UpdateRecord(edited));  // changes nothing: writes nothing
  ASSERT_OK(client_->DeleteRecord(a->id()));

  std::vector<v1::Change> outbox = Outbox();
  ASSERT_THAT(outbox, SizeIs(3));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(outbox[i].device_seq(), i + 1);
    EXPECT_EQ(outbox[i].collection(), "record");
    EXPECT_EQ(outbox[i].doc_id(), a->id());
    auto hlc = sync::Hlc::Decode(outbox[i].hlc());
    ASSERT_OK(hlc);
    EXPECT_EQ(hlc->node, kDevice);
    if (i > 0) {
      EXPECT_LT(outbox[i - 1].hlc(), outbox[i].hlc());
    }
  }
  EXPECT_TRUE(Paths(outbox[0]).count("well.yield_lph"));
  EXPECT_TRUE(Paths(outbox[0]).count("project_id"));
  for (const auto& f : outbox[0].fields()) EXPECT_EQ(f.base_hlc(), "") << f.path();
  // The update sends only the field that changed, based on the clock of the value it replaced.
  EXPECT_THAT(Paths(outbox[1]), ElementsAre("well.yield_lph"));
  EXPECT_EQ(outbox[1].fields(0).base_hlc(), outbox[0].hlc());
  EXPECT_THAT(Paths(outbox[2]), ElementsAre(sync::kDeletedPath));
  EXPECT_EQ(outbox[2].fields(0).value(), "\x01");

  EXPECT_THAT(client_->GetRecord(a->id()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(a->id())));
  EXPECT_THAT(client_->DeleteRecord(a->id()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no record")));
}

TEST_F(ClientTest, ValidationErrorsNameTheFieldAndWriteNothing) {
  v1::Record bad = Well(well_project_);
  bad.mutable_well()->set_drilled_depth_m(-5);
  EXPECT_THAT(client_->CreateRecord(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                                   HasSubstr("record.well.drilled_depth_m")));
  EXPECT_THAT(
      client_->CreateRecord(Well(NewUuidV7())),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record.project_id: no project")));
  EXPECT_THAT(client_->CreateRecord(Surgery(well_project_)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs a CATARACT project")));
  v1::Record no_site = Well(well_project_);
  no_site.set_site_id(NewUuidV7());
  EXPECT_THAT(client_->CreateRecord(no_site),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record.site_id")));
  v1::Record bad_id = Well(well_project_);
  bad_id.set_id("not-a-uuid");
  EXPECT_THAT(client_->CreateRecord(bad_id),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record.id")));
  v1::Site site;
  site.set_project_id(well_project_);
  site.set_name("Kyuso borehole");
  site.set_latitude_deg(200);
  EXPECT_THAT(client_->CreateSite(site),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("site.latitude_deg")));
  EXPECT_THAT(Outbox(), SizeIs(0));
}

TEST_F(ClientTest, UpdatesKeepProjectAndKindAndHonourVersions) {
  auto a = client_->CreateRecord(Well(well_project_));
  ASSERT_OK(a);
  v1::Record moved = *a;
  moved.set_project_id(cataract_project_);
  EXPECT_THAT(
      client_->UpdateRecord(moved),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record.project_id: cannot change")));
  v1::Record other_kind = Surgery(well_project_);
  other_kind.set_id(a->id());
  EXPECT_THAT(client_->UpdateRecord(other_kind),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kind cannot change")));
  v1::Record edited = *a;
  edited.mutable_well()->set_notes("pump handle replaced");
  EXPECT_THAT(client_->UpdateRecord(edited, /*expected_version=*/7),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("version")));
  v1::Record missing = Well(well_project_);
  missing.set_id(NewUuidV7());
  EXPECT_THAT(client_->UpdateRecord(missing),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no record")));
  EXPECT_THAT(client_->CreateRecord(*a),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr(a->id())));
  EXPECT_THAT(Outbox(), SizeIs(1));
}

TEST_F(ClientTest, SitesAndRecordsAtThem) {
  v1::Site site;
  site.set_project_id(well_project_);
  site.set_name("Kyuso borehole");
  site.set_latitude_deg(-1.1);
  site.set_longitude_deg(38.2);
  auto created = client_->CreateSite(site);
  ASSERT_OK(created);
  v1::Record at_site = Well(well_project_);
  at_site.set_site_id(created->id());
  ASSERT_OK(client_->CreateRecord(at_site));
  ASSERT_OK(client_->CreateRecord(Well(well_project_)));
  v1::ListRecordsRequest by_site;
  by_site.set_site_id(created->id());
  auto listed = client_->ListRecords(by_site);
  ASSERT_OK(listed);
  EXPECT_THAT(listed->records(), SizeIs(1));
  v1::ListSitesRequest sites;
  sites.set_project_id(well_project_);
  auto site_list = client_->ListSites(sites);
  ASSERT_OK(site_list);
  EXPECT_THAT(site_list->sites(), SizeIs(1));
  v1::Site renamed = *created;
  renamed.set_name("Kyuso borehole 2");
  auto updated = client_->UpdateSite(renamed);
  ASSERT_OK(updated);
  EXPECT_EQ(updated->name(), "Kyuso borehole 2");
}

TEST_F(ClientTest, ListFiltersAndPages) {
  for (int day = 1; day <= 9; ++day) {
    ASSERT_OK(
        client_->CreateRecord(Well(well_project_, 1000 + day, absl::StrCat("2026-03-0", day))));
  }
  ASSERT_OK(client_->CreateRecord(Surgery(cataract_project_)));
  v1::ListRecordsRequest q;
  q.set_kind(v1::RECORD_KIND_WELL);
  q.set_from_date("2026-03-03");
  q.set_to_date("2026-03-07");
  q.set_page_size(2);
  std::set<std::string> seen;
  int pages = 0;
  for (;;) {
    auto page = client_->ListRecords(q);
    ASSERT_OK(page);
    ++pages;
    for (const auto& r : page->records()) {
      EXPECT_TRUE(seen.insert(r.id()).second);
      EXPECT_GE(r.record_date(), "2026-03-03");
      EXPECT_LE(r.record_date(), "2026-03-07");
    }
    if (page->next_page_token().empty()) break;
    q.set_page_token(page->next_page_token());
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(pages, 3);
  v1::ListRecordsRequest by_country;
  by_country.set_country("KE");
  by_country.set_partner_id(kPartner);
  auto all = client_->ListRecords(by_country);
  ASSERT_OK(all);
  EXPECT_THAT(all->records(), SizeIs(10));
  v1::ListRecordsRequest bad;
  bad.set_from_date("2026-02-30");
  EXPECT_THAT(client_->ListRecords(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("from_date")));
  v1::ListProjectsRequest text;
  text.set_text("KITUI");
  auto projects = client_->ListProjects(text);
  ASSERT_OK(projects);
  EXPECT_THAT(projects->projects(), SizeIs(2));
}

TEST_F(ClientTest, OutboxSurvivesReopenAndSequenceContinues) {
  auto a = client_->CreateRecord(Well(well_project_));
  ASSERT_OK(a);
  ASSERT_OK(client_->CreateRecord(Well(well_project_)));
  Reopen();
  EXPECT_OK(client_->GetRecord(a->id()));
  auto status = client_->Status();
  ASSERT_OK(status);
  EXPECT_EQ(status->pending_changes, 2);
  EXPECT_EQ(status->last_device_seq, 2);
  ASSERT_OK(client_->CreateRecord(Well(well_project_)));
  std::vector<v1::Change> outbox = Outbox();
  ASSERT_THAT(outbox, SizeIs(3));
  EXPECT_EQ(outbox[2].device_seq(), 3);
  // The clock never goes back across a restart.
  EXPECT_LT(outbox[1].hlc(), outbox[2].hlc());
}

TEST_F(ClientTest, AcknowledgedChangesLeaveTheOutboxOnlyAfterAPullAndSeqIsNeverReused) {
  auto a = client_->CreateRecord(Well(well_project_));
  ASSERT_OK(a);
  std::vector<v1::Change> outbox = Outbox();
  ASSERT_THAT(outbox, SizeIs(1));
  auto store = Store();
  ASSERT_OK(store->SetStateInt(kAckedSeqKey, 1));  // as after a Push
  auto status = client_->Status();
  ASSERT_OK(status);
  EXPECT_EQ(status->pending_changes, 0);
  EXPECT_THAT(Outbox(), SizeIs(1));  // kept until the pull brings it back

  // The pull brings the server's copy (our change, now with a server sequence).
  v1::PullPage page;
  v1::Record server_copy = *a;
  sync::ClearOutputOnly(&server_copy);
  *page.add_documents() = Delta("record", server_copy, 3, outbox[0].hlc());
  page.set_cursor("c3");
  page.set_last(true);
  ASSERT_OK(store->ApplyPage(page));
  EXPECT_THAT(Outbox(), SizeIs(0));
  auto got = client_->GetRecord(a->id());
  ASSERT_OK(got);
  EXPECT_EQ(got->audit().version(), 3);
  EXPECT_EQ(got->well().yield_lph(), 1200);

  ASSERT_OK(client_->CreateRecord(Well(well_project_)));
  outbox = Outbox();
  ASSERT_THAT(outbox, SizeIs(1));
  EXPECT_EQ(outbox[0].device_seq(), 2);
}

TEST_F(ClientTest, ViewMergesPendingEditsWithPulledOnesFieldByField) {
  // A record another device created, pulled at version 5.
  v1::Record r = Well(well_project_);
  r.set_id(NewUuidV7());
  const int64_t now = sync::SystemClockMs();
  v1::PullPage page;
  *page.add_documents() = Delta("record", r, 5, ServerHlc(now - 60000, 0, "other-device"));
  page.set_cursor("c5");
  auto store = Store();
  ASSERT_OK(store->ApplyPage(page));

  // Offline here: the functional status changes.
  auto mine = client_->GetRecord(r.id());
  ASSERT_OK(mine);
  EXPECT_EQ(mine->audit().version(), 5);
  mine->mutable_well()->set_functional_status(v1::FUNCTIONAL_STATUS_NOT_FUNCTIONAL);
  ASSERT_OK(client_->UpdateRecord(*mine, /*expected_version=*/5));
  std::vector<v1::Change> outbox = Outbox();
  ASSERT_THAT(outbox, SizeIs(1));
  EXPECT_EQ(outbox[0].fields(0).base_hlc(), ServerHlc(now - 60000, 0, "other-device"));

  // Meanwhile the other device changed the yield: the pull brings it, our edit stays.
  v1::PullPage next;
  v1::DocumentDelta* d = next.add_documents();
  d->set_collection("record");
  d->set_doc_id(r.id());
  d->set_version(6);
  v1::Record only_yield;
  only_yield.mutable_well()->set_yield_lph(300);
  v1::DeltaField* f = d->add_fields();
  f->set_path("well.yield_lph");
  f->set_value(sync::Flatten(only_yield).at("well.yield_lph"));
  f->set_hlc(ServerHlc(now - 30000, 0, "other-device"));
  next.set_cursor("c6");
  ASSERT_OK(store->ApplyPage(next));
  auto merged = client_->GetRecord(r.id());
  ASSERT_OK(merged);
  EXPECT_EQ(merged->well().yield_lph(), 300);
  EXPECT_EQ(merged->well().functional_status(), v1::FUNCTIONAL_STATUS_NOT_FUNCTIONAL);
  EXPECT_EQ(merged->audit().version(), 6);

  // The server checksum covers the pulled state only, not the pending edit.
  sync::Document server_doc;
  server_doc.collection = "record";
  server_doc.id = r.id();
  v1::Record server_view = r;
  server_view.mutable_well()->set_yield_lph(300);
  for (const auto& [path, value] : sync::Flatten(server_view))
    server_doc.fields[path].value = value;
  sync::ScopeChecksum expected;
  ASSERT_OK(expected.Add(server_doc));
  for (const std::string& id : {well_project_, cataract_project_}) {
    auto p = client_->GetProject(id);
    ASSERT_OK(p);
    sync::ClearOutputOnly(&*p);
    expected.Add("project", id, sync::SerializeDeterministic(*p));
  }
  auto checksum = client_->ServerStateChecksum();
  ASSERT_OK(checksum);
  EXPECT_EQ(*checksum, expected.Hex());
}

// The app can show who changed what: the audit block of a local document comes from the clocks
// of its fields (node = writer, wall time = when), not from the server's empty fields.
TEST_F(ClientTest, AuditBlockNamesWhoCreatedAndLastChangedEachDocument) {
  const int64_t t1 = 1780000000000, t2 = t1 + 3600000;
  const std::string creator = "0190a000-0000-7000-8000-00000000c0de";
  const std::string hq_user = "0190a000-0000-7000-8000-0000000000aa";
  v1::Record r = Well(well_project_);
  r.set_id(NewUuidV7());
  v1::PullPage page;
  *page.add_documents() = Delta("record", r, 5, ServerHlc(t1, 0, creator));
  page.set_cursor("c5");
  auto store = Store();
  ASSERT_OK(store->ApplyPage(page));
  ASSERT_OK_AND_ASSIGN(v1::Record pulled, client_->GetRecord(r.id()));
  EXPECT_EQ(pulled.audit().created_by(), creator);
  EXPECT_EQ(pulled.audit().updated_by(), creator);
  EXPECT_EQ(google::protobuf::util::TimeUtil::TimestampToMilliseconds(pulled.audit().created_at()),
            t1);
  EXPECT_EQ(pulled.audit().version(), 5);

  // HQ changed one field later.
  v1::PullPage next;
  v1::DocumentDelta* d = next.add_documents();
  d->set_collection("record");
  d->set_doc_id(r.id());
  d->set_version(6);
  v1::Record only_yield;
  only_yield.mutable_well()->set_yield_lph(300);
  v1::DeltaField* f = d->add_fields();
  f->set_path("well.yield_lph");
  f->set_value(sync::Flatten(only_yield).at("well.yield_lph"));
  f->set_hlc(ServerHlc(t2, 0, hq_user));
  next.set_cursor("c6");
  ASSERT_OK(store->ApplyPage(next));
  ASSERT_OK_AND_ASSIGN(v1::Record edited, client_->GetRecord(r.id()));
  EXPECT_EQ(edited.audit().created_by(), creator);
  EXPECT_EQ(edited.audit().updated_by(), hq_user);
  EXPECT_EQ(google::protobuf::util::TimeUtil::TimestampToMilliseconds(edited.audit().updated_at()),
            t2);
  // Lists show the same.
  ASSERT_OK_AND_ASSIGN(v1::ListRecordsResponse listed, client_->ListRecords({}));
  ASSERT_THAT(listed.records(), SizeIs(1));
  EXPECT_EQ(listed.records(0).audit().updated_by(), hq_user);

  // This device edits it offline: the last change is its own, now.
  const int64_t before = sync::SystemClockMs();
  edited.mutable_well()->set_population_served(999);
  ASSERT_OK_AND_ASSIGN(v1::Record mine, client_->UpdateRecord(edited));
  EXPECT_EQ(mine.audit().created_by(), creator);
  EXPECT_EQ(mine.audit().updated_by(), kDevice);
  EXPECT_GE(google::protobuf::util::TimeUtil::TimestampToMilliseconds(mine.audit().updated_at()),
            before);
  // A record made here names this device as its creator.
  ASSERT_OK_AND_ASSIGN(v1::Record made, client_->CreateRecord(Well(well_project_)));
  EXPECT_EQ(made.audit().created_by(), kDevice);
  EXPECT_EQ(made.audit().updated_by(), kDevice);
}

// Every docs row as stored, one line each.
std::string DocsRows(const std::string& path) {
  auto db = sqlite::Database::Open(path, {});
  EXPECT_OK(db);
  auto q = (*db)->Prepare(
      "SELECT collection || ' ' || doc_id || ' ' || hex(payload) || ' ' || deleted || ' ' || "
      "version || ' ' || pending || ' ' || project_id || ' ' || site_id || ' ' || partner_id || "
      "' ' || kind || ' ' || record_date || ' ' || country || ' ' || status "
      "FROM docs ORDER BY collection, doc_id");
  EXPECT_OK(q);
  std::string rows;
  while (*(*q)->Step()) rows += (*q)->ColumnText(0) + "\n";
  (*q)->Reset();
  return rows;
}

// ApplyPage and local writes build views (and the running checksum) from what they hold in
// memory; this is what reading everything back gives.
void ExpectViewsAndChecksumAsIfReadBack(LocalStore& store, const std::string& path,
                                        const std::string& step) {
  SCOPED_TRACE(step);
  const std::string rows = DocsRows(path);
  std::vector<std::pair<std::string, std::string>> ids;
  {
    auto db = sqlite::Database::Open(path, {});
    ASSERT_OK(db);
    auto q = (*db)->Prepare("SELECT collection, doc_id FROM docs UNION "
                            "SELECT collection, doc_id FROM server_fields");
    ASSERT_OK(q);
    while (*(*q)->Step()) ids.emplace_back((*q)->ColumnText(0), (*q)->ColumnText(1));
    (*q)->Reset();
  }
  for (const auto& [collection, id] : ids) ASSERT_OK(store.RefreshView(collection, id));
  EXPECT_EQ(DocsRows(path), rows);
  // The running checksum kept in sync_state ("<hex>:<documents>:<pages since a full one>").
  auto running = store.GetState("server_digest");
  ASSERT_OK(running);
  int64_t count = 0;
  auto full = store.ServerChecksum(&count);
  ASSERT_OK(full);
  EXPECT_THAT(*running, ::testing::StartsWith(absl::StrCat(*full, ":", count, ":")));
}

TEST_F(ClientTest, ViewsAndRunningChecksumAreThoseOfTheStoredState) {
  auto store = Store();
  // A last page: the running checksum is computed in full once, then kept page by page.
  v1::PullPage first;
  first.set_cursor("c2");
  first.set_last(true);
  ASSERT_OK(store->ApplyPage(first));
  ASSERT_OK(store->GetState("server_digest"));
  ASSERT_NE(*store->GetState("server_digest"), "");

  // Local writes: X created and edited (both pending), Y created then deleted.
  auto x = client_->CreateRecord(Well(well_project_));
  ASSERT_OK(x);
  ExpectViewsAndChecksumAsIfReadBack(*store, path_, "create");
  v1::Record x_edited = *x;
  x_edited.mutable_well()->set_yield_lph(700);
  ASSERT_OK(client_->UpdateRecord(x_edited));
  ExpectViewsAndChecksumAsIfReadBack(*store, path_, "update");
  auto y = client_->CreateRecord(Surgery(cataract_project_));
  ASSERT_OK(y);
  ASSERT_OK(client_->DeleteRecord(y->id()));
  ExpectViewsAndChecksumAsIfReadBack(*store, path_, "delete");
  const std::vector<v1::Change> outbox = Outbox();
  ASSERT_THAT(outbox, SizeIs(4));

  // A page with X as first created (the server has the create only: its view, with the pending
  // edit, differs from its server state), and two records of another device.
  v1::Record x_server = *x;
  sync::ClearOutputOnly(&x_server);
  v1::Record r1 = Well(well_project_, 50);
  r1.set_id(NewUuidV7());
  v1::Record r2 = Surgery(cataract_project_);
  r2.set_id(NewUuidV7());
  v1::PullPage page;
  *page.add_documents() = Delta("record", x_server, 3, outbox[0].hlc());
  *page.add_documents() = Delta("record", r1, 4, ServerHlc(5000, 0, "other-device"));
  *page.add_documents() = Delta("record", r2, 5, ServerHlc(5001, 0, "other-device"));
  page.set_cursor("c5");
  ASSERT_OK(store->ApplyPage(page));
  ExpectViewsAndChecksumAsIfReadBack(*store, path_, "page of new documents");
  EXPECT_EQ(client_->GetRecord(x->id())->well().yield_lph(), 700);

  // One field of r1 changes, r2 is deleted, r3 comes twice in one page (the later wins).
  auto field = [](v1::DocumentDelta* d, const std::string& path, const std::string& value,
                  const std::string& hlc) {
    v1::DeltaField* f = d->add_fields();
    f->set_path(path);
    f->set_value(value);
    f->set_hlc(hlc);
  };
  v1::PullPage edits;
  v1::DocumentDelta* d1 = edits.add_documents();
  d1->set_collection("record");
  d1->set_doc_id(r1.id());
  d1->set_version(6);
  v1::Record only_yield;
  only_yield.mutable_well()->set_yield_lph(75);
  field(d1, "well.yield_lph", sync::Flatten(only_yield).at("well.yield_lph"),
        ServerHlc(6000, 0, "other-device"));
  v1::DocumentDelta* d2 = edits.add_documents();
  d2->set_collection("record");
  d2->set_doc_id(r2.id());
  d2->set_version(7);
  field(d2, sync::kDeletedPath, "\x01", ServerHlc(6001, 0, "other-device"));
  v1::Record r3 = Well(well_project_, 10);
  r3.set_id(NewUuidV7());
  *edits.add_documents() = Delta("record", r3, 8, ServerHlc(6002, 0, "other-device"));
  r3.mutable_well()->set_yield_lph(20);
  *edits.add_documents() = Delta("record", r3, 9, ServerHlc(6003, 0, "other-device"));
  edits.set_cursor("c9");
  ASSERT_OK(store->ApplyPage(edits));
  ExpectViewsAndChecksumAsIfReadBack(*store, path_, "page of edits");
  EXPECT_EQ(client_->GetRecord(r1.id())->well().yield_lph(), 75);
  EXPECT_THAT(client_->GetRecord(r2.id()), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_EQ(client_->GetRecord(r3.id())->well().yield_lph(), 20);
  EXPECT_EQ(client_->GetRecord(r3.id())->audit().version(), 9);

  // r2 comes back; the last page drops the acknowledged create of X.
  ASSERT_OK(store->SetStateInt(kAckedSeqKey, 1));
  v1::PullPage last;
  v1::DocumentDelta* back = last.add_documents();
  back->set_collection("record");
  back->set_doc_id(r2.id());
  back->set_version(10);
  field(back, sync::kDeletedPath, "", ServerHlc(7000, 0, "other-device"));
  last.set_cursor("c10");
  last.set_last(true);
  ASSERT_OK(store->ApplyPage(last));
  ExpectViewsAndChecksumAsIfReadBack(*store, path_, "last page");
  EXPECT_EQ(client_->GetRecord(r2.id())->audit().version(), 10);
  EXPECT_THAT(Outbox(), SizeIs(3));
}

TEST_F(ClientTest, ChecksumMismatchStartsOneRepairThatDropsStaleDocuments) {
  auto store = Store();
  // A record the server no longer has (say, its page was lost in an old bug).
  v1::Record ghost = Well(well_project_);
  ghost.set_id(NewUuidV7());
  v1::PullPage stale;
  *stale.add_documents() = Delta("record", ghost, 3, ServerHlc(2000));
  stale.set_cursor("c3");
  ASSERT_OK(store->ApplyPage(stale));
  ASSERT_OK(client_->GetRecord(ghost.id()));

  // The server's checksum covers only the two projects.
  sync::ScopeChecksum truth;
  for (const std::string& id : {well_project_, cataract_project_}) {
    auto p = client_->GetProject(id);
    ASSERT_OK(p);
    sync::ClearOutputOnly(&*p);
    truth.Add("project", id, sync::SerializeDeterministic(*p));
  }
  v1::PullPage last;
  last.set_cursor("c9");
  last.set_last(true);
  last.set_scope_checksum(truth.Hex());
  last.set_scope_documents(2);
  auto outcome = store->ApplyPage(last);
  ASSERT_OK(outcome);
  EXPECT_TRUE(outcome->repair_started);
  EXPECT_EQ(*store->GetState(kCursorKey), "");

  // The full re-pull.
  v1::PullPage full;
  *full.add_documents() =
      Delta("project", Project(well_project_, v1::PROJECT_KIND_WELL), 1, ServerHlc(1000));
  *full.add_documents() =
      Delta("project", Project(cataract_project_, v1::PROJECT_KIND_CATARACT), 2, ServerHlc(1001));
  full.set_cursor("c9");
  full.set_last(true);
  full.set_scope_checksum(truth.Hex());
  full.set_scope_documents(2);
  outcome = store->ApplyPage(full);
  ASSERT_OK(outcome);
  EXPECT_FALSE(outcome->repair_started);
  EXPECT_TRUE(outcome->checksum_matched);
  EXPECT_THAT(client_->GetRecord(ghost.id()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no record")));
  EXPECT_EQ(*client_->ServerStateChecksum(), truth.Hex());
}

// The device's side of a server restored from a backup (docs/SYNC.md, "Restores"): a state
// with acknowledged changes both pulled back and not yet pulled, another writer's edit, and
// pending changes; the server now acknowledges only device_seq 1.
class RebaseTest : public ClientTest {
 protected:
  void SetUp() override {
    ClientTest::SetUp();
    if (HasFatalFailure()) return;
    auto a = client_->CreateRecord(Well(well_project_));  // seq 1
    ASSERT_OK(a);
    a_ = a->id();
    auto b = client_->CreateRecord(Well(well_project_, 800));  // seq 2
    ASSERT_OK(b);
    b_ = b->id();
    std::vector<v1::Change> outbox = Outbox();
    ASSERT_THAT(outbox, SizeIs(2));
    a_hlc_ = outbox[0].hlc();
    b_hlc_ = outbox[1].hlc();
    auto store = Store();
    ASSERT_OK(store->SetStateInt(kAckedSeqKey, 2));  // both acknowledged
    // A pull (not finished: the outbox keeps both) brings A back, with a later edit of its
    // yield by another device, and a record of that other device.
    v1::Record server_a = *a;
    sync::ClearOutputOnly(&server_a);
    v1::PullPage page;
    *page.add_documents() = Delta("record", server_a, 3, a_hlc_);
    v1::DocumentDelta* d = page.mutable_documents(0);
    for (v1::DeltaField& f : *d->mutable_fields()) {
      if (f.path() == "well.yield_lph") {
        v1::Record only;
        only.mutable_well()->set_yield_lph(300);
        f.set_value(sync::Flatten(only).at("well.yield_lph"));
        f.set_hlc(ServerHlc(sync::SystemClockMs() + 1000, 0, "other-device"));
      }
    }
    c_ = NewUuidV7();
    v1::Record c = Well(well_project_, 50);
    c.set_id(c_);
    *page.add_documents() = Delta("record", c, 4, ServerHlc(1500, 0, "other-device"));
    page.set_cursor("c4");
    ASSERT_OK(store->ApplyPage(page));
    // Pending: an edit of A, a new record D.
    auto mine = client_->GetRecord(a_);
    ASSERT_OK(mine);
    mine->mutable_well()->set_functional_status(v1::FUNCTIONAL_STATUS_NOT_FUNCTIONAL);
    ASSERT_OK(client_->UpdateRecord(*mine, mine->audit().version()));  // seq 3
    auto d_rec = client_->CreateRecord(Well(well_project_, 999));       // seq 4
    ASSERT_OK(d_rec);
    d_ = d_rec->id();
    ASSERT_THAT(Outbox(), SizeIs(4));
  }

  // What the app sees, as comparable text.
  std::string View() {
    auto list = client_->ListRecords(v1::ListRecordsRequest());
    EXPECT_OK(list);
    std::string text;
    for (v1::Record r : list->records()) {
      r.mutable_audit()->Clear();
      text += r.ShortDebugString() + "\n";
    }
    return text;
  }

  sync::Hlc Now() {
    sync::Hlc h;
    h.wall_ms = sync::SystemClockMs() + 5000;
    h.node = kDevice;
    return h;
  }

  std::string a_, b_, c_, d_, a_hlc_, b_hlc_;
};

TEST_F(RebaseTest, ResendsOwnFieldsWithTheirClocksThenRenumbersPendingChanges) {
  const std::string view_before = View();
  const std::vector<v1::Change> before = Outbox();
  auto store = Store();
  const sync::Hlc base = Now();
  {
    auto tx = store->Begin();
    ASSERT_OK(tx);
    auto rebased = store->Rebase(kDevice, /*server_acked=*/1, base);
    ASSERT_OK(rebased);
    EXPECT_EQ(rebased->documents, 2);  // A and B; C is the other device's, D is pending
    EXPECT_EQ(rebased->changes, 2);
    EXPECT_EQ(rebased->folded, 2);
    EXPECT_EQ(rebased->renumbered, 2);
    EXPECT_EQ(rebased->last_seq, 5);
    ASSERT_OK(tx->Commit());
  }
  std::vector<v1::Change> outbox = Outbox();
  ASSERT_THAT(outbox, SizeIs(4));
  // Numbered from the server's acknowledgement + 1, oldest clock first.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(outbox[i].device_seq(), 2 + i);
  EXPECT_EQ(outbox[0].doc_id(), a_);
  EXPECT_EQ(outbox[0].hlc(), a_hlc_);
  // A is this device's: every field, the yield another device wrote since included, at A's
  // clock (older than the other device's, so its own re-send would win).
  EXPECT_EQ(Paths(outbox[0]), Paths(before[0]));
  for (const auto& f : outbox[0].fields()) {
    EXPECT_EQ(f.base_hlc(), base.Encode());
    if (f.path() == "well.yield_lph") {
      v1::Record only;
      only.mutable_well()->set_yield_lph(300);
      EXPECT_EQ(f.value(), sync::Flatten(only).at("well.yield_lph"));
    }
  }
  EXPECT_EQ(outbox[1].doc_id(), b_);
  EXPECT_EQ(outbox[1].hlc(), b_hlc_);
  EXPECT_EQ(Paths(outbox[1]), Paths(before[1]));
  // The pending changes follow unchanged but for their number.
  for (int i = 2; i < 4; ++i) {
    v1::Change expected = before[i];
    expected.set_device_seq(2 + i);
    EXPECT_EQ(outbox[i].SerializeAsString(), expected.SerializeAsString()) << i;
  }
  EXPECT_EQ(outbox[3].doc_id(), d_);
  EXPECT_EQ(*store->GetStateInt(kAckedSeqKey), 1);
  EXPECT_EQ(*store->GetStateInt(kLastSeqKey), 5);
  EXPECT_EQ(*store->GetState(kCursorKey), "");  // a full pull next
  EXPECT_EQ(*store->GetStateInt(kRepairingKey), 1);
  // The app sees exactly what it saw.
  EXPECT_EQ(View(), view_before);
  auto next = client_->CreateRecord(Well(well_project_));
  ASSERT_OK(next);
  EXPECT_EQ(Outbox().back().device_seq(), 6);
}

TEST_F(RebaseTest, AFailureHalfwayRollsBackEverything) {
  const std::vector<v1::Change> before = Outbox();
  const std::string view_before = View();
  auto store = Store();
  // The third insert into the outbox fails, after the old entries were deleted and two new
  // ones written.
  {
    auto raw = sqlite::Database::Open(path_, {});
    ASSERT_OK(raw);
    ASSERT_OK((*raw)->Exec("CREATE TRIGGER fail_rebase BEFORE INSERT ON outbox "
                           "WHEN NEW.device_seq = 4 BEGIN SELECT RAISE(ABORT, 'injected'); END"));
  }
  {
    auto tx = store->Begin();
    ASSERT_OK(tx);
    EXPECT_THAT(store->Rebase(kDevice, 1, Now()), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                           HasSubstr("injected")));
  }  // not committed: rolled back
  std::vector<v1::Change> after = Outbox();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].SerializeAsString(), before[i].SerializeAsString()) << i;
  }
  EXPECT_EQ(*store->GetStateInt(kAckedSeqKey), 2);
  EXPECT_EQ(*store->GetStateInt(kLastSeqKey), 4);
  EXPECT_EQ(*store->GetState(kCursorKey), "c4");
  EXPECT_EQ(*store->GetStateInt(kRepairingKey), 0);
  EXPECT_EQ(View(), view_before);
}

TEST_F(ClientTest, WritesOnOneThreadWhileOthersReadAndApplyPages) {
  constexpr int kWrites = 150;
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::thread writer([&] {
    for (int i = 0; i < kWrites; ++i) ASSERT_OK(client_->CreateRecord(Well(well_project_, i)));
    done = true;
  });
  std::thread reader([&] {
    while (!done) {
      auto listed = client_->ListRecords(v1::ListRecordsRequest());
      ASSERT_OK(listed);
      ASSERT_OK(client_->Status());
      ++reads;
    }
  });
  // A "sync thread" on its own connection applying pages of other devices' records.
  std::thread puller([&] {
    auto store = Store();
    for (int i = 0; i < 30; ++i) {
      v1::Record r = Well(well_project_, 5);
      r.set_id(NewUuidV7());
      v1::PullPage page;
      *page.add_documents() = Delta("record", r, 10 + i, ServerHlc(3000 + i));
      page.set_cursor(absl::StrCat("p", i));
      ASSERT_OK(store->ApplyPage(page));
    }
  });
  writer.join();
  reader.join();
  puller.join();
  EXPECT_GT(reads.load(), 0);
  std::vector<v1::Change> outbox = Outbox();
  ASSERT_THAT(outbox, SizeIs(kWrites));
  for (int i = 0; i < kWrites; ++i) EXPECT_EQ(outbox[i].device_seq(), i + 1);
  v1::ListRecordsRequest all;
  all.set_page_size(1000);
  auto listed = client_->ListRecords(all);
  ASSERT_OK(listed);
  EXPECT_THAT(listed->records(), SizeIs(kWrites + 30));
}

TEST_F(ClientTest, SyncWithNoServerGivesUpAsUnavailableAndKeepsTheOutbox) {
  ClientOptions options;
  options.call_timeout_ms = 500;
  options.retry.initial_backoff_ms = 10;
  options.retry.max_attempts = 3;
  Reopen(options);
  ASSERT_OK(client_->CreateRecord(Well(well_project_)));
  std::vector<SyncPhase> phases;
  auto result = client_->Sync([&](const SyncProgress& p) { phases.push_back(p.phase); });
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("3 attempts")));
  EXPECT_FALSE(phases.empty());
  EXPECT_THAT(Outbox(), SizeIs(1));
}

TEST_F(ClientTest, CancelStopsASyncThatIsWaitingToRetry) {
  ClientOptions options;
  options.call_timeout_ms = 200;
  options.retry.initial_backoff_ms = 60000;
  options.retry.max_backoff_ms = 60000;
  options.retry.max_attempts = 100;
  // Make the first backoff long for sure: fail fast and always.
  options.fault_injector_for_testing = [](absl::string_view) { return absl::OkStatus(); };
  Reopen(options);
  absl::StatusOr<SyncProgress> result;
  auto start = std::chrono::steady_clock::now();
  std::thread syncing([&] { result = client_->Sync(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  client_->Cancel();
  syncing.join();
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  // A later sync is not affected by the old cancel (it fails on the network instead).
  ClientOptions quick;
  quick.call_timeout_ms = 200;
  quick.retry.max_attempts = 1;
  Reopen(quick);
  EXPECT_THAT(client_->Sync(), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
}

}  // namespace
}  // namespace fieldsync::client
