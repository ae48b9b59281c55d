// GetStats answers from aggregates the write path keeps (migration 4, server/sqlite_stats.cc);
// GetStatsByScan computes the same answer by scanning the typed tables and is the reference.
// Here randomised records of every kind go through the real write path (HQ CreateRecord,
// UpdateRecord, DeleteRecord over gRPC against a real fieldsyncd), including updates that move a
// record to another date, change its quality tests, follow-up stages, item quantities, school
// and currency, and deletes; then every grouping under several filters and a partner scope must
// equal the scan field by field. A second test checks the upgrade: a database at migration 3
// with data gets its aggregates back-filled by migration 4.
//
// FIELDSYNC_STATS_SEED=N replays another sequence, FIELDSYNC_STATS_OPS=N runs more operations.

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/auth.h"
#include "server/demo_data.h"
#include "server/schema.h"
#include "server/sqlite_store.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_db.h"

namespace fieldsync::server {
namespace {

using ::fieldsync::testing::Hq;
using ::fieldsync::testing::QueryInt;
using ::fieldsync::testing::ServerProcess;
using ::fieldsync::testing::TempDir;
using ::fieldsync::testing::TestDatabase;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

struct StatsCase {
  std::string name;
  v1::GetStatsRequest request;
  Scope scope;
};

// Every grouping, unfiltered and with date ranges, one partner, one country, one kind, and a
// device's partner scope with a date range.
std::vector<StatsCase> Cases(const std::vector<std::string>& partners, const std::string& country) {
  std::vector<StatsCase> cases;
  for (v1::StatsGrouping g :
       {v1::STATS_GROUPING_NONE, v1::STATS_GROUPING_COUNTRY, v1::STATS_GROUPING_PARTNER,
        v1::STATS_GROUPING_KIND, v1::STATS_GROUPING_MONTH}) {
    const std::string by = v1::StatsGrouping_Name(g);
    StatsCase all{by, {}, {}};
    all.request.set_group_by(g);
    cases.push_back(all);
    StatsCase range = all;
    range.name = by + " 2024-03-10..2025-02-20";
    range.request.set_from_date("2024-03-10");
    range.request.set_to_date("2025-02-20");
    cases.push_back(range);
    StatsCase from = all;
    from.name = by + " from 2025-01-01";
    from.request.set_from_date("2025-01-01");
    cases.push_back(from);
    StatsCase until = all;
    until.name = by + " until 2024-06-30";
    until.request.set_to_date("2024-06-30");
    cases.push_back(until);
    StatsCase partner = all;
    partner.name = by + " partner";
    partner.request.set_partner_id(partners.front());
    cases.push_back(partner);
    StatsCase in_country = all;
    in_country.name = by + " country " + country;
    in_country.request.set_country(country);
    cases.push_back(in_country);
    StatsCase kind = all;
    kind.name = by + " kind CATARACT";
    kind.request.set_kind(v1::PROJECT_KIND_CATARACT);
    cases.push_back(kind);
    StatsCase scoped = range;
    scoped.name = by + " scope " + partners.back() + " with range";
    scoped.scope.partner_id = partners.back();
    cases.push_back(scoped);
  }
  return cases;
}

// Field by field, doubles exactly, a kind's message present in both or neither; the report
// names each differing field.
void ExpectSameStats(const v1::GetStatsResponse& got, const v1::GetStatsResponse& want) {
  google::protobuf::util::MessageDifferencer differ;
  std::string report;
  differ.ReportDifferencesToString(&report);
  EXPECT_TRUE(differ.Compare(want, got)) << "GetStats differs from the scan (want → got):\n"
                                         << report;
}

// GetStats (aggregates) equals GetStatsByScan for every case.
void ExpectAggregatesMatchScan(SqliteStore& store, const std::vector<StatsCase>& cases,
                               int* nonempty_groups = nullptr) {
  for (const StatsCase& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_OK_AND_ASSIGN(v1::GetStatsResponse scan, store.GetStatsByScan(c.request, c.scope));
    ASSERT_OK_AND_ASSIGN(v1::GetStatsResponse got, store.GetStats(c.request, c.scope));
    ExpectSameStats(got, scan);
    if (nonempty_groups != nullptr) *nonempty_groups += scan.groups_size();
  }
}

// No cell or side row stays behind at zero.
void ExpectNoEmptyAggregates(const std::string& db) {
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM stats_cells WHERE records <= 0"), 0);
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM stats_spend WHERE expenditures <= 0"), 0);
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM stats_schools WHERE donations <= 0"), 0);
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM stats_cells"),
            QueryInt(db, "SELECT COUNT(*) FROM (SELECT DISTINCT project_id, record_date "
                         "FROM records) x"));
}

// Randomised records and their edits.
class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  // Few distinct dates over two years, so that cells hold several records and months several
  // cells.
  std::string Date() {
    static const char* const kDates[] = {"2024-01-15", "2024-01-31", "2024-03-09", "2024-03-10",
                                         "2024-06-30", "2024-07-01", "2024-11-02", "2025-01-01",
                                         "2025-02-20", "2025-02-21", "2025-06-15", "2025-12-28"};
    return kDates[Int(0, static_cast<int>(std::size(kDates)) - 1)];
  }
  std::string Currency() {
    static const char* const kCurrencies[] = {"USD", "EUR", "KES", "UGX"};
    return kCurrencies[Int(0, 3)];
  }
  // Acuities on both sides of the 6/18 and 6/60 cut-offs, exactly at them, and worse.
  std::string Acuity() {
    static const char* const kAcuities[] = {"6/6",  "6/12", "6/18", "logMAR 0.48", "6/24",
                                            "6/60", "6/95", "CF",   "HM",          "NPL"};
    return kAcuities[Int(0, 9)];
  }
  // A quality test value: not measured, at the WHO limit, or above it.
  void Measure(v1::WaterQualityTest& t) {
    auto pick = [&](double limit, void (v1::WaterQualityTest::*set)(double),
                    void (v1::WaterQualityTest::*clear)()) {
      switch (Int(0, 3)) {
        case 0:
          (t.*clear)();
          break;
        case 1:
          (t.*set)(limit);
          break;
        case 2:
          (t.*set)(limit + 0.5 + Int(0, 20));
          break;
        default:
          (t.*set)(limit / 2);
      }
    };
    pick(0, &v1::WaterQualityTest::set_ecoli_cfu_per_100ml,
         &v1::WaterQualityTest::clear_ecoli_cfu_per_100ml);
    pick(5, &v1::WaterQualityTest::set_turbidity_ntu, &v1::WaterQualityTest::clear_turbidity_ntu);
    pick(10, &v1::WaterQualityTest::set_arsenic_ug_per_l,
         &v1::WaterQualityTest::clear_arsenic_ug_per_l);
    pick(1.5, &v1::WaterQualityTest::set_fluoride_mg_per_l,
         &v1::WaterQualityTest::clear_fluoride_mg_per_l);
  }

  void FillWell(v1::WellRecord& w) {
    static const v1::FunctionalStatus kStatus[] = {v1::FUNCTIONAL_STATUS_FUNCTIONAL,
                                                   v1::FUNCTIONAL_STATUS_PARTLY_FUNCTIONAL,
                                                   v1::FUNCTIONAL_STATUS_NOT_FUNCTIONAL};
    w.set_drilled_depth_m(60 + Int(0, 40));
    w.set_static_water_level_m(10 + Int(0, 20));
    w.set_yield_lph(800 + Int(0, 800));
    w.set_water_source(v1::WATER_SOURCE_BOREHOLE);
    w.set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
    w.set_functional_status(kStatus[Int(0, 2)]);
    w.set_population_served(Int(0, 900));
    w.set_visit_date(Date());
    w.clear_quality_tests();
    for (int i = Int(0, 3); i > 0; --i) {
      v1::WaterQualityTest* t = w.add_quality_tests();
      t->set_tested_date(w.visit_date());
      Measure(*t);
    }
  }

  void FillSurgery(v1::CataractSurgery& c) {
    c.set_patient_ref(absl::StrCat("P-", Int(1, 9999)));
    c.set_age_years(Int(40, 90));
    c.set_sex(Chance(0.55) ? v1::SEX_FEMALE : v1::SEX_MALE);
    c.set_eye(Chance(0.5) ? v1::EYE_LEFT : v1::EYE_RIGHT);
    c.set_surgery_date(Date());
    c.set_surgeon_ref("S-1");
    c.set_technique(v1::SURGICAL_TECHNIQUE_SICS);
    c.set_iol_implanted(Chance(0.9));
    c.set_preop_va("CF");
    c.clear_complications();
    if (Chance(0.2)) c.add_complications("posterior capsule rupture");
    FillFollowUps(c);
  }
  // Any subset of the three stages, visited on the surgery date (never before it).
  void FillFollowUps(v1::CataractSurgery& c) {
    c.clear_follow_ups();
    for (v1::FollowUpStage stage : {v1::FOLLOW_UP_STAGE_DAY_1, v1::FOLLOW_UP_STAGE_WEEKS_1_3,
                                    v1::FOLLOW_UP_STAGE_WEEKS_4_12}) {
      if (!Chance(0.6)) continue;
      v1::FollowUpVisit* f = c.add_follow_ups();
      f->set_stage(stage);
      f->set_visit_date(c.surgery_date());
      f->set_presenting_va(Acuity());
    }
  }

  void FillDonation(v1::ClassroomDonation& d) {
    static const char* const kSchools[] = {"Kanel Primary", "Lake View", "St. Mary's"};
    d.set_school_name(kSchools[Int(0, 2)]);
    d.set_delivered_date(Date());
    d.set_received_by("Head teacher");
    d.set_condition(v1::ITEM_CONDITION_GOOD);
    d.set_students_reached(Int(0, 400));
    d.set_teachers_trained(Int(0, 8));
    FillItems(d);
  }
  void FillItems(v1::ClassroomDonation& d) {
    d.clear_items();
    for (int i = Int(1, 3); i > 0; --i) {
      v1::DonationItem* item = d.add_items();
      item->set_item_type(Chance(0.5) ? "desk" : "solar lamp");
      item->set_quantity(Int(1, 120));
      item->set_quantity_received(Int(0, item->quantity()));
    }
  }

  void FillExpenditure(v1::Expenditure& e) {
    e.mutable_amount()->set_amount_minor(Int(1, 5'000'000));
    e.mutable_amount()->set_currency(Currency());
    e.set_category(v1::EXPENDITURE_CATEGORY_TRANSPORT);
    e.set_spent_date(Date());
    e.set_receipt_ref(absl::StrCat("R-", Int(1, 99999)));
  }

  // A new record of the project's kind (or an expenditure, which fits any project).
  v1::Record NewRecord(const v1::Project& p) {
    v1::Record r;
    r.set_project_id(p.id());
    if (Chance(0.3)) {
      FillExpenditure(*r.mutable_expenditure());
    } else if (p.kind() == v1::PROJECT_KIND_WELL) {
      FillWell(*r.mutable_well());
    } else if (p.kind() == v1::PROJECT_KIND_CATARACT) {
      FillSurgery(*r.mutable_cataract_surgery());
    } else {
      FillDonation(*r.mutable_classroom_donation());
    }
    return r;
  }

  // One edit of `r`: its date alone, or one of its kind's counted values.
  void Edit(v1::Record& r) {
    const bool move = Chance(0.4);
    if (r.has_well()) {
      v1::WellRecord& w = *r.mutable_well();
      if (move) {
        w.set_visit_date(Date());
      } else if (Chance(0.5)) {
        for (v1::WaterQualityTest& t : *w.mutable_quality_tests()) Measure(t);
        if (Chance(0.5)) {
          v1::WaterQualityTest* t = w.add_quality_tests();
          t->set_tested_date(w.visit_date());
          Measure(*t);
        } else if (w.quality_tests_size() > 0) {
          w.mutable_quality_tests()->RemoveLast();
        }
      } else {
        FillWell(w);
      }
    } else if (r.has_cataract_surgery()) {
      v1::CataractSurgery& c = *r.mutable_cataract_surgery();
      if (move) {
        c.set_surgery_date(Date());
        for (v1::FollowUpVisit& f : *c.mutable_follow_ups()) f.set_visit_date(c.surgery_date());
      } else {
        FillFollowUps(c);
        c.set_sex(Chance(0.5) ? v1::SEX_FEMALE : v1::SEX_MALE);
      }
    } else if (r.has_classroom_donation()) {
      v1::ClassroomDonation& d = *r.mutable_classroom_donation();
      if (move) {
        d.set_delivered_date(Date());
      } else if (Chance(0.5)) {
        FillItems(d);
      } else {
        FillDonation(d);
      }
    } else {
      v1::Expenditure& e = *r.mutable_expenditure();
      if (move) {
        e.set_spent_date(Date());
      } else {
        e.mutable_amount()->set_currency(Currency());
        e.mutable_amount()->set_amount_minor(Int(1, 5'000'000));
      }
    }
  }

 private:
  std::mt19937 rng_;
};

TEST(StatsAggregatesTest, RandomWritesOverGrpcMatchTheScan) {
  const uint32_t seed = static_cast<uint32_t>(EnvInt("FIELDSYNC_STATS_SEED", 20261128));
  const int ops = EnvInt("FIELDSYNC_STATS_OPS", 240);
  SCOPED_TRACE(absl::StrCat("FIELDSYNC_STATS_SEED=", seed));
  TempDir dir;
  ServerProcess server;
  ASSERT_OK(server.Start(dir.path()));
  Hq hq(server.Channel(), server.admin_token());

  // Two partners, projects of every kind in two countries, budgets in several currencies (one
  // project without a budget currency).
  std::vector<std::string> partners;
  std::vector<v1::Project> projects;
  const v1::ProjectKind kinds[] = {v1::PROJECT_KIND_WELL, v1::PROJECT_KIND_CATARACT,
                                   v1::PROJECT_KIND_CLASSROOM};
  for (int pi = 0; pi < 2; ++pi) {
    v1::Partner partner = hq.CreatePartner(absl::StrCat("Partner ", pi), {"KE", "UG"});
    ASSERT_FALSE(partner.id().empty());
    partners.push_back(partner.id());
    for (int k = 0; k < 3; ++k) {
      for (const char* country : {"KE", "UG"}) {
        if (pi == 1 && std::string(country) == "UG" && k == 2) continue;
        v1::CreateProjectRequest req;
        v1::Project* p = req.mutable_project();
        p->set_partner_id(partner.id());
        p->set_kind(kinds[k]);
        p->set_title(absl::StrCat("Project ", pi, k, country));
        p->set_country(country);
        p->set_status(v1::PROJECT_STATUS_ACTIVE);
        if (projects.size() % 4 != 3) {
          const int64_t n = static_cast<int64_t>(projects.size());
          p->mutable_budget()->set_amount_minor(1'000'000 * (1 + n));
          p->mutable_budget()->set_currency(projects.size() % 2 == 0 ? "USD" : "KES");
        }
        v1::Project out;
        grpc::Status s = hq.tracker().CreateProject(hq.Ctx().get(), req, &out);
        ASSERT_TRUE(s.ok()) << s.error_message();
        projects.push_back(out);
      }
    }
  }

  Generator gen(seed);
  std::vector<v1::Record> live;
  int created = 0, updated = 0, moved = 0, deleted = 0;
  for (int op = 0; op < ops; ++op) {
    const int dice = gen.Int(0, 99);
    if (live.size() < 12 || dice < 50) {
      v1::CreateRecordRequest req;
      const int project = gen.Int(0, static_cast<int>(projects.size()) - 1);
      *req.mutable_record() = gen.NewRecord(projects[project]);
      v1::Record out;
      grpc::Status s = hq.tracker().CreateRecord(hq.Ctx().get(), req, &out);
      ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << req.DebugString();
      live.push_back(out);
      ++created;
    } else if (dice < 85) {
      const size_t i = static_cast<size_t>(gen.Int(0, static_cast<int>(live.size()) - 1));
      v1::UpdateRecordRequest req;
      *req.mutable_record() = live[i];
      gen.Edit(*req.mutable_record());
      req.set_expected_version(live[i].audit().version());
      v1::Record out;
      grpc::Status s = hq.tracker().UpdateRecord(hq.Ctx().get(), req, &out);
      ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << req.DebugString();
      if (out.record_date() != live[i].record_date()) ++moved;
      live[i] = out;
      ++updated;
    } else {
      const size_t i = static_cast<size_t>(gen.Int(0, static_cast<int>(live.size()) - 1));
      v1::DeleteRecordRequest req;
      req.set_id(live[i].id());
      v1::Record out;
      grpc::Status s = hq.tracker().DeleteRecord(hq.Ctx().get(), req, &out);
      ASSERT_TRUE(s.ok()) << s.error_message();
      live.erase(live.begin() + i);
      ++deleted;
    }
  }
  EXPECT_GT(moved, 5) << "updates that change record_date";
  EXPECT_GT(deleted, 5);
  std::cout << "created " << created << ", updated " << updated << " (" << moved
            << " to another date), deleted " << deleted << "\n";

  // What the server answers over gRPC, for the admin and for a device of the last partner.
  std::vector<StatsCase> cases = Cases(partners, "UG");
  std::map<std::string, v1::GetStatsResponse> over_grpc;
  for (const StatsCase& c : cases) {
    if (!c.scope.partner_id.empty()) continue;
    v1::GetStatsResponse resp;
    grpc::Status s = hq.tracker().GetStats(hq.Ctx().get(), c.request, &resp);
    ASSERT_TRUE(s.ok()) << c.name << ": " << s.error_message();
    over_grpc[c.name] = resp;
  }
  ASSERT_EQ(server.Stop(), 0) << server.Log();

  ExpectNoEmptyAggregates(server.db_path());
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open({.path = server.db_path(), .readers = 1}));
  int groups = 0;
  ExpectAggregatesMatchScan(*store, cases, &groups);
  EXPECT_GT(groups, 50) << "the cases compare real groups";
  for (const StatsCase& c : cases) {
    auto it = over_grpc.find(c.name);
    if (it == over_grpc.end()) continue;
    SCOPED_TRACE(absl::StrCat(c.name, " over gRPC"));
    ASSERT_OK_AND_ASSIGN(v1::GetStatsResponse scan, store->GetStatsByScan(c.request, c.scope));
    ExpectSameStats(it->second, scan);
  }

  // The data is what the test means it to be: every kind counted, outcomes at every stage.
  v1::GetStatsRequest none;
  ASSERT_OK_AND_ASSIGN(v1::GetStatsResponse all, store->GetStats(none, {}));
  ASSERT_EQ(all.groups_size(), 1);
  const v1::StatsGroup& g = all.groups(0);
  EXPECT_GT(g.wells().water_points(), 0);
  EXPECT_GT(g.wells().tests_failing_any(), 0);
  EXPECT_GT(g.cataract().surgeries(), 0);
  for (const v1::OutcomeDistribution& d : g.cataract().outcomes()) {
    EXPECT_GT(d.good(), 0) << v1::FollowUpStage_Name(d.stage());
    EXPECT_GT(d.poor(), 0) << v1::FollowUpStage_Name(d.stage());
  }
  EXPECT_GT(g.classrooms().schools(), 1);
  EXPECT_GT(g.classrooms().items_received(), 0);
  EXPECT_GE(g.spend_size(), 3);
}

TEST(StatsAggregatesTest, MigrationFourBackfillsAnExistingDatabase) {
  TempDir dir;
  TestDatabase db(dir);
  std::vector<std::string> partners;
  std::string country;
  {
    ASSERT_OK_AND_ASSIGN(auto store,
                         SqliteStore::Open({.path = db.path(), .synchronous = "NORMAL"}));
    DemoOptions options;
    options.partners = 3;
    options.projects = 15;
    options.records_per_kind = 200;
    ASSERT_OK(LoadDemoData(*store, options).status());
  }
  ASSERT_OK_AND_ASSIGN(auto rows, testing::QueryRows(db.path(),
                                                     "SELECT id FROM partners ORDER BY id"));
  for (const auto& row : rows) partners.push_back(row[0].value_or(""));
  ASSERT_GE(partners.size(), 2u);
  ASSERT_OK_AND_ASSIGN(auto countries,
                       testing::QueryRows(db.path(), "SELECT MIN(country) FROM projects"));
  country = countries[0][0].value_or("");

  // Back to migration 3: no aggregate tables, no record of migration 4 (nor of the later ones,
  // undone too: 5 added the sequence spaces, rejections and rule conflicts, 6
  // devices.disabled_at).
  const int latest = LatestSchemaVersion();
  ASSERT_EQ(QueryInt(db.path(), "SELECT MAX(version) FROM schema_migrations"), latest);
  ASSERT_GT(QueryInt(db.path(), "SELECT COUNT(*) FROM stats_cells"), 0);
  ASSERT_OK(testing::ExecSql(
      db.path(),
      "DROP TABLE rejections; DROP TABLE device_streams; DROP INDEX change_log_by_stream; "
      "ALTER TABLE change_log DROP COLUMN stream_id; "
      "CREATE UNIQUE INDEX change_log_by_device ON change_log(device_id, device_seq) "
      "WHERE device_id IS NOT NULL; "
      "ALTER TABLE conflicts DROP COLUMN kind; ALTER TABLE conflicts DROP COLUMN reason; "
      "ALTER TABLE devices DROP COLUMN pulled_seq; "
      "DELETE FROM schema_migrations WHERE version = 5"));
  ASSERT_OK(testing::ExecSql(db.path(),
                             "DROP TABLE stats_cells; DROP TABLE stats_spend; "
                             "DROP TABLE stats_schools; "
                             "ALTER TABLE devices DROP COLUMN disabled_at; "
                             "DELETE FROM schema_migrations WHERE version >= 4"));
  ASSERT_EQ(QueryInt(db.path(), "SELECT MAX(version) FROM schema_migrations"), 3);

  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open({.path = db.path(), .readers = 1}));
  EXPECT_EQ(QueryInt(db.path(), "SELECT MAX(version) FROM schema_migrations"), latest);
  ExpectNoEmptyAggregates(db.path());
  int groups = 0;
  ExpectAggregatesMatchScan(*store, Cases(partners, country), &groups);
  EXPECT_GT(groups, 50);
}

}  // namespace
}  // namespace fieldsync::server
