// LoadDemoData on a real database (a SQLite file; in the PostgreSQL pass a PostgreSQL database),
// checked against the database itself: every GetStats indicator is recomputed here with our own
// SQL over the tables of schema.cc (read through a separate read-only sqlite3 or libpq
// connection, never the store's query code) and, for the totals, once more from the stored
// protobuf payloads.

#include "server/demo_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fieldsync/v1/domain.pb.h"
#include "fieldsync/v1/sync.pb.h"
#include "server/auth.h"
#include "server/sqlite_store.h"
#include "server/tracker.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_db.h"

namespace fieldsync::server {
namespace {

using ::fieldsync::testing::StatusIs;
using ::fieldsync::testing::TempDir;
using ::fieldsync::testing::TestDatabase;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// A read-only sqlite3 connection of the test's own.
// ---------------------------------------------------------------------------------------------

struct Cell {
  bool null = true;
  int64_t i = 0;
  double d = 0;
  std::string s;  // text or blob bytes
};
using Row = std::vector<Cell>;

class RawDb {
 public:
  // A SQLite file (read-only) or a postgresql:// URL.
  explicit RawDb(const std::string& path) {
    if (fieldsync::testing::IsPostgresUrl(path)) {
      pg_ = PQconnectdb(path.c_str());
      rc_ = PQstatus(pg_) == CONNECTION_OK ? SQLITE_OK : SQLITE_ERROR;
      return;
    }
    rc_ = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr);
  }
  ~RawDb() {
    sqlite3_close(db_);
    if (pg_ != nullptr) PQfinish(pg_);
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  bool ok() const { return rc_ == SQLITE_OK; }
  bool postgres() const { return pg_ != nullptr; }

  std::vector<Row> Query(const std::string& sql, const std::vector<std::string>& params = {}) {
    if (pg_ != nullptr) return PgQuery(sql, params);
    std::vector<Row> rows;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sqlite3_errmsg(db_) << "\n  in: " << sql;
      return rows;
    }
    for (size_t i = 0; i < params.size(); ++i) {
      sqlite3_bind_text(st, static_cast<int>(i + 1), params[i].data(),
                        static_cast<int>(params[i].size()), SQLITE_TRANSIENT);
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      Row row(sqlite3_column_count(st));
      for (int c = 0; c < static_cast<int>(row.size()); ++c) {
        Cell& cell = row[c];
        cell.null = sqlite3_column_type(st, c) == SQLITE_NULL;
        cell.i = sqlite3_column_int64(st, c);
        cell.d = sqlite3_column_double(st, c);
        const void* bytes = sqlite3_column_blob(st, c);
        if (bytes != nullptr) {
          cell.s.assign(static_cast<const char*>(bytes), sqlite3_column_bytes(st, c));
        }
      }
      rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) ADD_FAILURE() << sqlite3_errmsg(db_) << "\n  in: " << sql;
    sqlite3_finalize(st);
    return rows;
  }

  // The first column of the first row as an integer (0 if there is none).
  int64_t Int(const std::string& sql, const std::vector<std::string>& params = {}) {
    std::vector<Row> rows = Query(sql, params);
    return rows.empty() || rows[0].empty() ? 0 : rows[0][0].i;
  }
  std::string Text(const std::string& sql) {
    std::vector<Row> rows = Query(sql);
    return rows.empty() || rows[0].empty() ? "" : rows[0][0].s;
  }
  double Double(const std::string& sql) {
    std::vector<Row> rows = Query(sql);
    return rows.empty() || rows[0].empty() ? 0 : rows[0][0].d;
  }

 private:
  // The same on PostgreSQL: `?` placeholders become $1, $2...; values arrive as text and are
  // read as SQLite would give them (bytea as its bytes, booleans as 0/1).
  std::vector<Row> PgQuery(const std::string& sql, const std::vector<std::string>& params) {
    std::string text;
    int n = 0;
    bool quoted = false;
    for (char c : sql) {
      if (c == '\'') quoted = !quoted;
      if (c == '?' && !quoted) {
        absl::StrAppend(&text, "$", ++n);
      } else {
        text += c;
      }
    }
    std::vector<const char*> values;
    for (const std::string& p : params) values.push_back(p.c_str());
    std::vector<Row> rows;
    PGresult* r = PQexecParams(pg_, text.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
      ADD_FAILURE() << PQerrorMessage(pg_) << "\n  in: " << text;
      PQclear(r);
      return rows;
    }
    constexpr Oid kBytea = 17, kBool = 16;
    for (int i = 0; i < PQntuples(r); ++i) {
      Row row(PQnfields(r));
      for (int c = 0; c < PQnfields(r); ++c) {
        Cell& cell = row[c];
        cell.null = PQgetisnull(r, i, c);
        if (cell.null) continue;
        const char* v = PQgetvalue(r, i, c);
        if (PQftype(r, c) == kBytea) {
          size_t len = 0;
          unsigned char* b = PQunescapeBytea(reinterpret_cast<const unsigned char*>(v), &len);
          cell.s.assign(reinterpret_cast<const char*>(b), len);
          PQfreemem(b);
        } else {
          cell.s.assign(v, PQgetlength(r, i, c));
        }
        if (PQftype(r, c) == kBool) {
          cell.i = cell.s == "t" ? 1 : 0;
        } else {
          cell.i = std::strtoll(cell.s.c_str(), nullptr, 10);
        }
        cell.d = PQftype(r, c) == kBool ? static_cast<double>(cell.i)
                                        : std::strtod(cell.s.c_str(), nullptr);
      }
      rows.push_back(std::move(row));
    }
    PQclear(r);
    return rows;
  }

  sqlite3* db_ = nullptr;
  PGconn* pg_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

absl::StatusOr<std::unique_ptr<SqliteStore>> OpenStore(const std::string& path) {
  SqliteStore::Options options;
  options.path = path;
  options.synchronous = "NORMAL";
  return SqliteStore::Open(options);
}

DemoOptions SmallOptions() {
  DemoOptions o;
  o.partners = 4;
  o.projects = 40;
  o.records_per_kind = 300;
  return o;
}

// ---------------------------------------------------------------------------------------------
// The WHO category of a presenting acuity, by the rule of DESIGN.md and visual_acuity.h,
// written independently of model::OutcomeOf: good is 6/18 or better, borderline down to 6/60,
// poor below; CF, HM, PL and NPL are below any chart value. Acuities are recorded to 0.01 logMAR,
// so half a step (0.005 logMAR) of tolerance applies at each threshold (logMAR 0.48 is 6/18).
// ---------------------------------------------------------------------------------------------

v1::VisualOutcome ExpectedOutcome(const std::string& va) {
  double logmar = 0;
  if (va == "CF" || va == "HM" || va == "PL" || va == "NPL") return v1::VISUAL_OUTCOME_POOR;
  if (va.rfind("logMAR ", 0) == 0) {
    logmar = std::stod(va.substr(7));
  } else {
    const size_t slash = va.find('/');
    if (slash == std::string::npos) {
      ADD_FAILURE() << "unexpected acuity notation in demo data: " << va;
      return v1::VISUAL_OUTCOME_UNSPECIFIED;
    }
    logmar = std::log10(std::stod(va.substr(slash + 1)) / std::stod(va.substr(0, slash)));
  }
  if (logmar <= std::log10(18.0 / 6.0) + 0.005) return v1::VISUAL_OUTCOME_GOOD;
  if (logmar <= std::log10(60.0 / 6.0) + 0.005) return v1::VISUAL_OUTCOME_BORDERLINE;
  return v1::VISUAL_OUTCOME_POOR;
}

// ---------------------------------------------------------------------------------------------
// Indicators recomputed with our own SQL.
// ---------------------------------------------------------------------------------------------

struct StatsFilter {
  std::string partner_id;
  std::string country;
  std::string kind;  // WELL, CATARACT, CLASSROOM or empty
  std::string from_date;
  std::string to_date;
};

double Share(int64_t part, int64_t whole) {
  return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

constexpr v1::FollowUpStage kStages[] = {v1::FOLLOW_UP_STAGE_DAY_1, v1::FOLLOW_UP_STAGE_WEEKS_1_3,
                                         v1::FOLLOW_UP_STAGE_WEEKS_4_12};

int StageIndex(const std::string& short_name) {
  if (short_name == "DAY_1") return 0;
  if (short_name == "WEEKS_1_3") return 1;
  if (short_name == "WEEKS_4_12") return 2;
  ADD_FAILURE() << "unknown stage " << short_name;
  return 0;
}

class ExpectedStats {
 public:
  ExpectedStats(RawDb& db, v1::StatsGrouping grouping, const StatsFilter& filter)
      : db_(db), grouping_(grouping), filter_(filter) {}

  std::map<std::string, v1::StatsGroup> Compute() {
    Projects();
    Wells();
    Surgeries();
    Donations();
    Spend();
    Finish();
    return groups_;
  }

 private:
  // The group key of a row; `date_column` is the record's own date column.
  std::string Key(const std::string& date_column) const {
    switch (grouping_) {
      case v1::STATS_GROUPING_COUNTRY:
        return "p.country";
      case v1::STATS_GROUPING_PARTNER:
        return "p.partner_id";
      case v1::STATS_GROUPING_KIND:
        return "p.kind";
      case v1::STATS_GROUPING_MONTH:
        return absl::StrCat("substr(", date_column, ", 1, 7)");
      default:
        return "'all'";
    }
  }

  // WHERE conditions over projects p (and, given a date column, the record's date).
  std::string Where(const std::string& date_column, std::vector<std::string>& params) const {
    std::vector<std::string> conds = {"1 = 1"};
    auto add = [&](const std::string& value, const std::string& cond) {
      if (value.empty()) return;
      conds.push_back(cond);
      params.push_back(value);
    };
    add(filter_.partner_id, "p.partner_id = ?");
    add(filter_.country, "p.country = ?");
    add(filter_.kind, "p.kind = ?");
    if (!date_column.empty()) {
      add(filter_.from_date, date_column + " >= ?");
      add(filter_.to_date, date_column + " <= ?");
    }
    return absl::StrJoin(conds, " AND ");
  }

  // Rows of "SELECT <key>, <columns> FROM <from> WHERE <filters> [GROUP BY ...]".
  std::vector<Row> Select(const std::string& columns, const std::string& from,
                          const std::string& date_column, const std::string& group_by = "") {
    std::vector<std::string> params;
    std::string sql = absl::StrCat("SELECT ", Key(date_column), ", ", columns, " FROM ", from,
                                   " WHERE ", Where(date_column, params));
    if (!group_by.empty()) absl::StrAppend(&sql, " GROUP BY ", group_by);
    return db_.Query(sql, params);
  }

  v1::StatsGroup& Group(const std::string& key) {
    v1::StatsGroup& g = groups_[key];
    g.set_key(key);
    return g;
  }

  void Projects() {
    if (grouping_ == v1::STATS_GROUPING_MONTH) {
      // A month's projects: those with a record dated in it.
      std::map<std::string, std::set<std::string>> projects;
      const std::pair<const char*, const char*> kinds[] = {
          {"well_records x", "x.visit_date"},
          {"cataract_surgeries x", "x.surgery_date"},
          {"classroom_donations x", "x.delivered_date"},
          {"expenditures x", "x.spent_date"}};
      for (const auto& [table, date] : kinds) {
        for (const Row& row : Select("r.project_id",
                                     absl::StrCat(table,
                                                  " JOIN records r ON r.id = x.record_id "
                                                  "JOIN projects p ON p.id = r.project_id"),
                                     date)) {
          projects[row[0].s].insert(row[1].s);
        }
      }
      for (const auto& [key, ids] : projects) Group(key).set_projects(ids.size());
      return;
    }
    for (const Row& row : Select("COUNT(*)", "projects p", "", "1")) {
      Group(row[0].s).set_projects(row[1].i);
    }
    for (const Row& row : Select("p.currency, SUM(p.budget_minor)", "projects p", "",
                                 "1, 2 HAVING p.currency IS NOT NULL")) {
      spend_[row[0].s][row[1].s].first += row[2].i;
    }
  }

  void Wells() {
    const std::string from =
        "well_records w JOIN records r ON r.id = w.record_id JOIN projects p ON p.id = "
        "r.project_id";
    for (const Row& row :
         Select("COUNT(*), "
                "SUM(CASE WHEN w.functional_status = 'FUNCTIONAL' THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN w.functional_status = 'PARTLY_FUNCTIONAL' THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN w.functional_status = 'NOT_FUNCTIONAL' THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN w.functional_status <> 'NOT_FUNCTIONAL' THEN w.population_served "
                "ELSE 0 END)",
                from, "w.visit_date", "1")) {
      v1::WellIndicators* w = Group(row[0].s).mutable_wells();
      w->set_water_points(row[1].i);
      w->set_functional(row[2].i);
      w->set_partly_functional(row[3].i);
      w->set_not_functional(row[4].i);
      w->set_people_served(row[5].i);
    }
    // NULL is "not measured" and fails nothing.
    for (const Row& row :
         Select("COUNT(*), "
                "SUM(CASE WHEN t.ecoli_cfu_per_100ml > 0 THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN t.turbidity_ntu > 5 THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN t.arsenic_ug_per_l > 10 THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN t.fluoride_mg_per_l > 1.5 THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN t.ecoli_cfu_per_100ml > 0 OR t.turbidity_ntu > 5 OR "
                "t.arsenic_ug_per_l > 10 OR t.fluoride_mg_per_l > 1.5 THEN 1 ELSE 0 END)",
                from + " JOIN water_quality_tests t ON t.record_id = w.record_id", "w.visit_date",
                "1")) {
      v1::WellIndicators* w = Group(row[0].s).mutable_wells();
      w->set_quality_tests(row[1].i);
      w->set_ecoli_failures(row[2].i);
      w->set_turbidity_failures(row[3].i);
      w->set_arsenic_failures(row[4].i);
      w->set_fluoride_failures(row[5].i);
      w->set_tests_failing_any(row[6].i);
    }
  }

  void Surgeries() {
    const std::string from =
        "cataract_surgeries c JOIN records r ON r.id = c.record_id JOIN projects p ON p.id = "
        "r.project_id";
    for (const Row& row : Select("COUNT(*), SUM(CASE WHEN c.sex = 'FEMALE' THEN 1 ELSE 0 END), "
                                 "SUM(CASE WHEN c.iol_implanted <> 0 THEN 1 ELSE 0 END), "
                                 "SUM(CASE WHEN c.complications > 0 THEN 1 ELSE 0 END)",
                                 from, "c.surgery_date", "1")) {
      v1::CataractIndicators* c = Group(row[0].s).mutable_cataract();
      c->set_surgeries(row[1].i);
      c->set_female(row[2].i);
      c->set_with_iol(row[3].i);
      c->set_with_complications(row[4].i);
    }
    // The category of each visit is computed here from the acuity as written.
    for (const Row& row : Select("f.stage, f.presenting_va, f.record_id",
                                 from + " JOIN cataract_follow_ups f ON f.record_id = c.record_id",
                                 "c.surgery_date")) {
      Group(row[0].s);
      Counts& counts = outcomes_[row[0].s][StageIndex(row[1].s)];
      ++counts.examined;
      switch (ExpectedOutcome(row[2].s)) {
        case v1::VISUAL_OUTCOME_GOOD:
          ++counts.good;
          break;
        case v1::VISUAL_OUTCOME_BORDERLINE:
          ++counts.borderline;
          break;
        default:
          ++counts.poor;
      }
      followed_up_[row[0].s].insert(row[3].s);
    }
  }

  void Donations() {
    const std::string from =
        "classroom_donations d JOIN records r ON r.id = d.record_id JOIN projects p ON p.id = "
        "r.project_id";
    std::map<std::string, std::set<std::pair<std::string, std::string>>> schools;
    for (const Row& row : Select("r.project_id, d.school_name, d.students_reached, "
                                 "d.teachers_trained",
                                 from, "d.delivered_date")) {
      v1::ClassroomIndicators* c = Group(row[0].s).mutable_classrooms();
      c->set_donations(c->donations() + 1);
      c->set_students_reached(c->students_reached() + row[3].i);
      c->set_teachers_trained(c->teachers_trained() + row[4].i);
      schools[row[0].s].insert({row[1].s, row[2].s});
    }
    for (const auto& [key, set] : schools) Group(key).mutable_classrooms()->set_schools(set.size());
    for (const Row& row : Select("SUM(i.quantity), SUM(i.quantity_received)",
                                 from + " JOIN donation_items i ON i.record_id = d.record_id",
                                 "d.delivered_date", "1")) {
      v1::ClassroomIndicators* c = Group(row[0].s).mutable_classrooms();
      c->set_items_dispatched(row[1].i);
      c->set_items_received(row[2].i);
    }
  }

  void Spend() {
    for (const Row& row : Select("e.currency, SUM(e.amount_minor)",
                                 "expenditures e JOIN records r ON r.id = e.record_id "
                                 "JOIN projects p ON p.id = r.project_id",
                                 "e.spent_date", "1, 2")) {
      Group(row[0].s);
      spend_[row[0].s][row[1].s].second += row[2].i;
    }
  }

  void Finish() {
    std::map<std::string, std::string> partner_names;
    for (const Row& row : db_.Query("SELECT id, name FROM partners")) {
      partner_names[row[0].s] = row[1].s;
    }
    for (auto& [key, g] : groups_) {
      g.set_label(grouping_ == v1::STATS_GROUPING_PARTNER ? partner_names[key] : key);
      v1::WellIndicators* w = g.mutable_wells();
      w->set_functional_share(Share(w->functional(), w->water_points()));
      v1::CataractIndicators* c = g.mutable_cataract();
      for (int s = 0; s < 3; ++s) {
        const Counts counts = outcomes_[key][s];
        v1::OutcomeDistribution* d = c->add_outcomes();
        d->set_stage(kStages[s]);
        d->set_examined(counts.examined);
        d->set_good(counts.good);
        d->set_borderline(counts.borderline);
        d->set_poor(counts.poor);
        d->set_coverage(Share(counts.examined, c->surgeries()));
        d->set_good_share(Share(counts.good, counts.examined));
      }
      c->set_follow_up_coverage(Share(followed_up_[key].size(), c->surgeries()));
      for (const auto& [currency, amounts] : spend_[key]) {
        v1::SpendIndicators* s = g.add_spend();
        s->set_currency(currency);
        s->set_budget_minor(amounts.first);
        s->set_spent_minor(amounts.second);
        s->set_spent_share(Share(amounts.second, amounts.first));
      }
    }
  }

  struct Counts {
    int64_t examined = 0, good = 0, borderline = 0, poor = 0;
  };

  RawDb& db_;
  v1::StatsGrouping grouping_;
  StatsFilter filter_;
  std::map<std::string, v1::StatsGroup> groups_;
  std::map<std::string, std::map<int, Counts>> outcomes_;
  std::map<std::string, std::set<std::string>> followed_up_;
  // key -> currency -> (budget, spent)
  std::map<std::string, std::map<std::string, std::pair<int64_t, int64_t>>> spend_;
};

// Every indicator field of `got` against `want`.
void ExpectGroupEq(const v1::StatsGroup& want, const v1::StatsGroup& got) {
  EXPECT_EQ(got.key(), want.key());
  EXPECT_EQ(got.label(), want.label());
  EXPECT_EQ(got.projects(), want.projects()) << "projects";

  const v1::WellIndicators& w = want.wells();
  const v1::WellIndicators& gw = got.wells();
  EXPECT_EQ(gw.water_points(), w.water_points()) << "wells.water_points";
  EXPECT_EQ(gw.functional(), w.functional()) << "wells.functional";
  EXPECT_EQ(gw.partly_functional(), w.partly_functional()) << "wells.partly_functional";
  EXPECT_EQ(gw.not_functional(), w.not_functional()) << "wells.not_functional";
  EXPECT_DOUBLE_EQ(gw.functional_share(), w.functional_share()) << "wells.functional_share";
  EXPECT_EQ(gw.people_served(), w.people_served()) << "wells.people_served";
  EXPECT_EQ(gw.quality_tests(), w.quality_tests()) << "wells.quality_tests";
  EXPECT_EQ(gw.ecoli_failures(), w.ecoli_failures()) << "wells.ecoli_failures";
  EXPECT_EQ(gw.turbidity_failures(), w.turbidity_failures()) << "wells.turbidity_failures";
  EXPECT_EQ(gw.arsenic_failures(), w.arsenic_failures()) << "wells.arsenic_failures";
  EXPECT_EQ(gw.fluoride_failures(), w.fluoride_failures()) << "wells.fluoride_failures";
  EXPECT_EQ(gw.tests_failing_any(), w.tests_failing_any()) << "wells.tests_failing_any";

  const v1::CataractIndicators& c = want.cataract();
  const v1::CataractIndicators& gc = got.cataract();
  EXPECT_EQ(gc.surgeries(), c.surgeries()) << "cataract.surgeries";
  EXPECT_EQ(gc.female(), c.female()) << "cataract.female";
  EXPECT_EQ(gc.with_iol(), c.with_iol()) << "cataract.with_iol";
  EXPECT_EQ(gc.with_complications(), c.with_complications()) << "cataract.with_complications";
  EXPECT_DOUBLE_EQ(gc.follow_up_coverage(), c.follow_up_coverage())
      << "cataract.follow_up_coverage";
  EXPECT_EQ(gc.outcomes_size(), 3) << "cataract.outcomes: one per stage";
  for (int s = 0; s < std::min(3, gc.outcomes_size()); ++s) {
    const v1::OutcomeDistribution& d = c.outcomes(s);
    const v1::OutcomeDistribution& gd = gc.outcomes(s);
    SCOPED_TRACE(v1::FollowUpStage_Name(d.stage()));
    EXPECT_EQ(gd.stage(), d.stage()) << "outcomes.stage";
    EXPECT_EQ(gd.examined(), d.examined()) << "outcomes.examined";
    EXPECT_EQ(gd.good(), d.good()) << "outcomes.good";
    EXPECT_EQ(gd.borderline(), d.borderline()) << "outcomes.borderline";
    EXPECT_EQ(gd.poor(), d.poor()) << "outcomes.poor";
    EXPECT_DOUBLE_EQ(gd.coverage(), d.coverage()) << "outcomes.coverage";
    EXPECT_DOUBLE_EQ(gd.good_share(), d.good_share()) << "outcomes.good_share";
  }

  const v1::ClassroomIndicators& k = want.classrooms();
  const v1::ClassroomIndicators& gk = got.classrooms();
  EXPECT_EQ(gk.donations(), k.donations()) << "classrooms.donations";
  EXPECT_EQ(gk.items_dispatched(), k.items_dispatched()) << "classrooms.items_dispatched";
  EXPECT_EQ(gk.items_received(), k.items_received()) << "classrooms.items_received";
  EXPECT_EQ(gk.students_reached(), k.students_reached()) << "classrooms.students_reached";
  EXPECT_EQ(gk.teachers_trained(), k.teachers_trained()) << "classrooms.teachers_trained";
  EXPECT_EQ(gk.schools(), k.schools()) << "classrooms.schools";

  ASSERT_EQ(got.spend_size(), want.spend_size()) << "spend: one per currency";
  for (int i = 0; i < want.spend_size(); ++i) {
    const v1::SpendIndicators& s = want.spend(i);
    const v1::SpendIndicators& gs = got.spend(i);
    SCOPED_TRACE(s.currency());
    EXPECT_EQ(gs.currency(), s.currency()) << "spend.currency (sorted by code)";
    EXPECT_EQ(gs.budget_minor(), s.budget_minor()) << "spend.budget_minor";
    EXPECT_EQ(gs.spent_minor(), s.spent_minor()) << "spend.spent_minor";
    EXPECT_DOUBLE_EQ(gs.spent_share(), s.spent_share()) << "spend.spent_share";
  }
}

void ExpectStatsMatch(Store& store, RawDb& db, v1::StatsGrouping grouping,
                      const StatsFilter& filter = {}) {
  SCOPED_TRACE(absl::StrCat("group_by ", v1::StatsGrouping_Name(grouping)));
  v1::GetStatsRequest request;
  request.set_group_by(grouping);
  request.set_partner_id(filter.partner_id);
  request.set_country(filter.country);
  if (!filter.kind.empty()) {
    v1::ProjectKind kind = v1::PROJECT_KIND_UNSPECIFIED;
    ASSERT_TRUE(v1::ProjectKind_Parse("PROJECT_KIND_" + filter.kind, &kind));
    request.set_kind(kind);
  }
  request.set_from_date(filter.from_date);
  request.set_to_date(filter.to_date);
  Tracker tracker(store);
  ASSERT_OK_AND_ASSIGN(v1::GetStatsResponse got, tracker.GetStats(SystemPrincipal(), request));
  EXPECT_EQ(got.good_outcome_cutoff(), "6/18");

  std::map<std::string, v1::StatsGroup> want = ExpectedStats(db, grouping, filter).Compute();
  std::vector<std::string> got_keys, want_keys;
  for (const v1::StatsGroup& g : got.groups()) got_keys.push_back(g.key());
  for (const auto& [key, g] : want) want_keys.push_back(key);
  EXPECT_EQ(got_keys, want_keys) << "group keys, sorted";
  for (const v1::StatsGroup& g : got.groups()) {
    auto it = want.find(g.key());
    if (it == want.end()) continue;
    SCOPED_TRACE(absl::StrCat("group ", g.key()));
    ExpectGroupEq(it->second, g);
  }
}

// The NONE group computed a third way: from the stored protobuf payloads alone, which also
// checks that the typed tables the SQL reads agree with the documents.
v1::StatsGroup TotalsFromPayloads(RawDb& db) {
  v1::StatsGroup g;
  g.set_key("all");
  g.set_label("all");
  std::map<std::string, std::pair<int64_t, int64_t>> spend;
  for (const Row& row : db.Query("SELECT payload FROM projects")) {
    v1::Project p;
    EXPECT_TRUE(p.ParseFromString(row[0].s));
    g.set_projects(g.projects() + 1);
    if (p.has_budget()) spend[p.budget().currency()].first += p.budget().amount_minor();
  }
  v1::WellIndicators* w = g.mutable_wells();
  v1::CataractIndicators* c = g.mutable_cataract();
  v1::ClassroomIndicators* k = g.mutable_classrooms();
  int64_t examined[3] = {}, good[3] = {}, borderline[3] = {}, poor[3] = {}, followed = 0;
  std::set<std::pair<std::string, std::string>> schools;
  for (const Row& row : db.Query("SELECT payload FROM records")) {
    v1::Record r;
    EXPECT_TRUE(r.ParseFromString(row[0].s));
    if (r.has_well()) {
      w->set_water_points(w->water_points() + 1);
      switch (r.well().functional_status()) {
        case v1::FUNCTIONAL_STATUS_FUNCTIONAL:
          w->set_functional(w->functional() + 1);
          w->set_people_served(w->people_served() + r.well().population_served());
          break;
        case v1::FUNCTIONAL_STATUS_PARTLY_FUNCTIONAL:
          w->set_partly_functional(w->partly_functional() + 1);
          w->set_people_served(w->people_served() + r.well().population_served());
          break;
        default:
          w->set_not_functional(w->not_functional() + 1);
      }
      for (const v1::WaterQualityTest& t : r.well().quality_tests()) {
        w->set_quality_tests(w->quality_tests() + 1);
        // A parameter not measured (unset) fails nothing.
        const bool e = t.has_ecoli_cfu_per_100ml() && t.ecoli_cfu_per_100ml() > 0;
        const bool tu = t.has_turbidity_ntu() && t.turbidity_ntu() > 5;
        const bool a = t.has_arsenic_ug_per_l() && t.arsenic_ug_per_l() > 10;
        const bool f = t.has_fluoride_mg_per_l() && t.fluoride_mg_per_l() > 1.5;
        w->set_ecoli_failures(w->ecoli_failures() + e);
        w->set_turbidity_failures(w->turbidity_failures() + tu);
        w->set_arsenic_failures(w->arsenic_failures() + a);
        w->set_fluoride_failures(w->fluoride_failures() + f);
        w->set_tests_failing_any(w->tests_failing_any() + (e || tu || a || f));
      }
    } else if (r.has_cataract_surgery()) {
      const v1::CataractSurgery& s = r.cataract_surgery();
      c->set_surgeries(c->surgeries() + 1);
      c->set_female(c->female() + (s.sex() == v1::SEX_FEMALE));
      c->set_with_iol(c->with_iol() + s.iol_implanted());
      c->set_with_complications(c->with_complications() + (s.complications_size() > 0));
      followed += s.follow_ups_size() > 0;
      for (const v1::FollowUpVisit& f : s.follow_ups()) {
        const int i = f.stage() - 1;
        ++examined[i];
        // The outcome the Tracker derived, which must agree with the rule.
        EXPECT_EQ(f.outcome(), ExpectedOutcome(f.presenting_va()))
            << "record " << r.id() << " presenting_va " << f.presenting_va();
        good[i] += f.outcome() == v1::VISUAL_OUTCOME_GOOD;
        borderline[i] += f.outcome() == v1::VISUAL_OUTCOME_BORDERLINE;
        poor[i] += f.outcome() == v1::VISUAL_OUTCOME_POOR;
      }
    } else if (r.has_classroom_donation()) {
      const v1::ClassroomDonation& d = r.classroom_donation();
      k->set_donations(k->donations() + 1);
      k->set_students_reached(k->students_reached() + d.students_reached());
      k->set_teachers_trained(k->teachers_trained() + d.teachers_trained());
      schools.insert({r.project_id(), d.school_name()});
      for (const v1::DonationItem& item : d.items()) {
        k->set_items_dispatched(k->items_dispatched() + item.quantity());
        k->set_items_received(k->items_received() + item.quantity_received());
      }
    } else if (r.has_expenditure()) {
      spend[r.expenditure().amount().currency()].second += r.expenditure().amount().amount_minor();
    }
  }
  w->set_functional_share(Share(w->functional(), w->water_points()));
  for (int i = 0; i < 3; ++i) {
    v1::OutcomeDistribution* d = c->add_outcomes();
    d->set_stage(kStages[i]);
    d->set_examined(examined[i]);
    d->set_good(good[i]);
    d->set_borderline(borderline[i]);
    d->set_poor(poor[i]);
    d->set_coverage(Share(examined[i], c->surgeries()));
    d->set_good_share(Share(good[i], examined[i]));
  }
  c->set_follow_up_coverage(Share(followed, c->surgeries()));
  k->set_schools(schools.size());
  for (const auto& [currency, amounts] : spend) {
    v1::SpendIndicators* s = g.add_spend();
    s->set_currency(currency);
    s->set_budget_minor(amounts.first);
    s->set_spent_minor(amounts.second);
    s->set_spent_share(Share(amounts.second, amounts.first));
  }
  return g;
}

// ---------------------------------------------------------------------------------------------
// Whole-database checks shared by the small and the default network.
// ---------------------------------------------------------------------------------------------

// Row counts of every table the loader writes, plus the head of the change log.
std::string Snapshot(RawDb& db) {
  std::vector<std::string> parts;
  for (const char* table :
       {"partners", "projects", "sites", "records", "well_records", "water_quality_tests",
        "cataract_surgeries", "cataract_follow_ups", "classroom_donations", "donation_items",
        "expenditures", "change_log"}) {
    parts.push_back(absl::StrCat(table, "=", db.Int(absl::StrCat("SELECT COUNT(*) FROM ", table))));
  }
  parts.push_back(
      absl::StrCat("head=", db.Text("SELECT hash FROM change_log ORDER BY seq DESC LIMIT 1")));
  return absl::StrJoin(parts, " ");
}

void ExpectCountsMatchSummary(RawDb& db, const DemoSummary& s) {
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM partners"), s.partners);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM projects"), s.projects);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM sites"), s.sites);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM well_records"), s.wells);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM cataract_surgeries"), s.surgeries);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM classroom_donations"), s.donations);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM expenditures"), s.expenditures);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records"),
            s.wells + s.surgeries + s.donations + s.expenditures);
  // Each record's kind has its one typed row.
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records WHERE kind = 'WELL'"), s.wells);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records WHERE kind = 'CATARACT_SURGERY'"), s.surgeries);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records WHERE kind = 'CLASSROOM_DONATION'"), s.donations);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records WHERE kind = 'EXPENDITURE'"), s.expenditures);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records r JOIN well_records w ON w.record_id = r.id "
                   "WHERE r.kind = 'WELL'"),
            s.wells);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records r JOIN cataract_surgeries c "
                   "ON c.record_id = r.id WHERE r.kind = 'CATARACT_SURGERY'"),
            s.surgeries);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records r JOIN classroom_donations d "
                   "ON d.record_id = r.id WHERE r.kind = 'CLASSROOM_DONATION'"),
            s.donations);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records r JOIN expenditures e ON e.record_id = r.id "
                   "WHERE r.kind = 'EXPENDITURE'"),
            s.expenditures);
}

void ExpectConsistentReferences(RawDb& db) {
  // Every record's project kind matches its body.
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records r JOIN projects p ON p.id = r.project_id "
                   "WHERE (r.kind = 'WELL' AND p.kind <> 'WELL') "
                   "OR (r.kind = 'CATARACT_SURGERY' AND p.kind <> 'CATARACT') "
                   "OR (r.kind = 'CLASSROOM_DONATION' AND p.kind <> 'CLASSROOM')"),
            0);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records r LEFT JOIN projects p ON p.id = r.project_id "
                   "WHERE p.id IS NULL OR r.partner_id <> p.partner_id OR r.country <> p.country"),
            0);
  // Sites of a record belong to its project.
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records r JOIN sites s ON s.id = r.site_id "
                   "WHERE s.project_id <> r.project_id"),
            0);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records WHERE site_id IS NOT NULL AND site_id NOT IN "
                   "(SELECT id FROM sites)"),
            0);
  // A project's country is one of its partner's.
  for (const Row& row : db.Query("SELECT p.country, pa.countries FROM projects p "
                                 "JOIN partners pa ON pa.id = p.partner_id")) {
    EXPECT_THAT(row[1].s, HasSubstr(row[0].s));
  }
  // The record's date is its body's date.
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records r "
                   "LEFT JOIN well_records w ON w.record_id = r.id "
                   "LEFT JOIN cataract_surgeries c ON c.record_id = r.id "
                   "LEFT JOIN classroom_donations d ON d.record_id = r.id "
                   "LEFT JOIN expenditures e ON e.record_id = r.id "
                   "WHERE r.record_date <> COALESCE(w.visit_date, c.surgery_date, "
                   "d.delivered_date, e.spent_date)"),
            0);
}

void ExpectChangeLogOneRowPerDocument(RawDb& db, const DemoSummary& s) {
  std::map<std::string, int64_t> per_collection;
  for (const Row& row : db.Query("SELECT collection, op, actor_id, COUNT(*), "
                                 "COUNT(DISTINCT doc_id) FROM change_log GROUP BY 1, 2, 3")) {
    EXPECT_EQ(row[1].s, "create") << row[0].s;
    EXPECT_EQ(row[2].s, "system") << row[0].s;
    EXPECT_EQ(row[3].i, row[4].i) << row[0].s << ": one change per document";
    per_collection[row[0].s] += row[3].i;
  }
  const std::map<std::string, int64_t> expected = {
      {"partner", s.partners},
      {"project", s.projects},
      {"site", s.sites},
      {"record", s.wells + s.surgeries + s.donations + s.expenditures}};
  EXPECT_EQ(per_collection, expected);
  // Each document's version is the sequence of its one change.
  for (const auto& [table, collection] :
       std::vector<std::pair<std::string, std::string>>{{"partners", "partner"},
                                                        {"projects", "project"},
                                                        {"sites", "site"},
                                                        {"records", "record"}}) {
    EXPECT_EQ(db.Int(absl::StrCat("SELECT COUNT(*) FROM ", table,
                                  " d LEFT JOIN change_log c ON c.collection = ? AND "
                                  "c.doc_id = d.id WHERE c.seq IS NULL OR c.seq <> d.version"),
                     {collection}),
              0)
        << table;
  }
  // A partner's change carries the partner; a synced document's change (project, site, record)
  // carries the fields written, as a sync Change.
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM partners d JOIN change_log c ON c.collection = "
                   "'partner' AND c.doc_id = d.id WHERE c.payload <> d.payload"),
            0);
  for (const Row& row : db.Query("SELECT collection, doc_id, payload FROM change_log "
                                 "WHERE collection IN ('project', 'site', 'record')")) {
    v1::Change change;
    ASSERT_TRUE(change.ParseFromString(row[2].s)) << row[0].s << " " << row[1].s;
    EXPECT_EQ(change.collection(), row[0].s);
    EXPECT_EQ(change.doc_id(), row[1].s);
    EXPECT_GT(change.fields_size(), 0) << row[0].s << " " << row[1].s;
  }
  // One unbroken hash chain.
  EXPECT_EQ(db.Int("SELECT MAX(seq) - MIN(seq) + 1 - COUNT(*) FROM change_log"), 0);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM change_log a JOIN change_log b ON b.seq = a.seq + 1 "
                   "WHERE b.prev_hash <> a.hash"),
            0);
}

// Coarse boxes around each country (wider than the loader's), written independently.
struct Box {
  double lat_min, lat_max, lon_min, lon_max;
};
const std::map<std::string, Box>& CountryBoxes() {
  static const auto* boxes = new std::map<std::string, Box>{
      {"KE", {-4.8, 5.1, 33.8, 42.0}},    {"UG", {-1.5, 4.3, 29.5, 35.1}},
      {"TZ", {-11.8, -0.9, 29.2, 40.5}},  {"ET", {3.3, 15.0, 32.9, 48.1}},
      {"RW", {-2.9, -1.0, 28.8, 31.0}},   {"MW", {-17.2, -9.3, 32.6, 36.0}},
      {"NG", {4.2, 13.9, 2.6, 14.7}},     {"GH", {4.7, 11.2, -3.3, 1.2}},
      {"SN", {12.3, 16.7, -17.6, -11.3}}, {"KH", {10.4, 14.7, 102.3, 107.7}},
      {"VN", {8.5, 23.4, 102.1, 109.5}},  {"LA", {13.9, 22.5, 100.1, 107.7}},
      {"PH", {4.6, 21.1, 116.9, 126.6}},  {"ID", {-11.0, 6.0, 95.0, 141.0}},
  };
  return *boxes;
}

// Units per USD and minor units, to check that amounts are in the right magnitude.
struct CurrencyInfo {
  double per_usd;
  int minor_units;
};
const std::map<std::string, CurrencyInfo>& Currencies() {
  static const auto* currencies = new std::map<std::string, CurrencyInfo>{
      {"USD", {1, 2}},     {"EUR", {0.92, 2}},  {"GBP", {0.79, 2}},  {"KES", {129, 2}},
      {"UGX", {3700, 0}},  {"TZS", {2550, 2}},  {"ETB", {120, 2}},   {"RWF", {1400, 0}},
      {"MWK", {1750, 2}},  {"NGN", {1550, 2}},  {"GHS", {15, 2}},    {"XOF", {600, 0}},
      {"KHR", {4100, 2}},  {"VND", {25400, 0}}, {"LAK", {21800, 2}}, {"PHP", {58, 2}},
      {"IDR", {16300, 2}},
  };
  return *currencies;
}

void ExpectRealistic(RawDb& db, const DemoOptions& options, bool large) {
  // Dates.
  EXPECT_GE(db.Text("SELECT MIN(record_date) FROM records"), "2022-01-01");
  EXPECT_LE(db.Text("SELECT MAX(record_date) FROM records"), options.as_of);
  EXPECT_LE(db.Text("SELECT MAX(visit_date) FROM cataract_follow_ups"), options.as_of);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM cataract_follow_ups f JOIN cataract_surgeries c "
                   "ON c.record_id = f.record_id WHERE f.visit_date < c.surgery_date"),
            0);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records r JOIN projects p ON p.id = r.project_id "
                   "WHERE r.record_date < p.start_date OR r.record_date > p.end_date"),
            0);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM records r JOIN projects p ON p.id = r.project_id "
                   "WHERE p.status = 'PLANNED'"),
            0)
      << "planned projects have no records yet";
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM projects WHERE status = 'COMPLETED' AND end_date > ?",
                   {options.as_of}),
            0);

  // Sites inside their project's country.
  for (const Row& row : db.Query("SELECT p.country, s.latitude_deg, s.longitude_deg, s.name "
                                 "FROM sites s JOIN projects p ON p.id = s.project_id")) {
    auto it = CountryBoxes().find(row[0].s);
    ASSERT_NE(it, CountryBoxes().end()) << row[0].s;
    const Box& b = it->second;
    EXPECT_TRUE(row[1].d >= b.lat_min && row[1].d <= b.lat_max && row[2].d >= b.lon_min &&
                row[2].d <= b.lon_max)
        << row[3].s << " at " << row[1].d << ", " << row[2].d << " outside " << row[0].s;
  }

  // Budgets of a plausible size in every currency (catches a factor 100 on UGX or VND).
  for (const Row& row : db.Query("SELECT currency, budget_minor, title FROM projects "
                                 "WHERE currency IS NOT NULL")) {
    auto it = Currencies().find(row[0].s);
    ASSERT_NE(it, Currencies().end()) << row[0].s;
    const double usd =
        static_cast<double>(row[1].i) / std::pow(10.0, it->second.minor_units) / it->second.per_usd;
    EXPECT_GT(usd, 5'000) << row[2].s << ": " << row[1].i << " " << row[0].s;
    EXPECT_LT(usd, 3'000'000) << row[2].s << ": " << row[1].i << " " << row[0].s;
  }
  // Spending in the budget's currency, a plausible share of it.
  for (const Row& row : db.Query(
           "SELECT p.title, p.status, p.budget_minor, SUM(e.amount_minor), "
           "SUM(CASE WHEN e.currency <> p.currency THEN 1 ELSE 0 END) "
           "FROM projects p JOIN records r ON r.project_id = p.id "
           "JOIN expenditures e ON e.record_id = r.id "
           "GROUP BY p.id, p.title, p.status, p.budget_minor")) {
    EXPECT_EQ(row[4].i, 0) << row[0].s << ": expenditures in another currency";
    const double share = static_cast<double>(row[3].i) / static_cast<double>(row[2].i);
    EXPECT_LE(share, 1.05) << row[0].s;
    if (row[1].s == "COMPLETED") {
      EXPECT_GE(share, 0.8) << row[0].s;
    }
  }

  // Wells.
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM well_records WHERE water_source = 'BOREHOLE' AND "
                   "(drilled_depth_m < 30 OR drilled_depth_m > 150)"),
            0);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM well_records WHERE static_water_level_m > "
                   "drilled_depth_m OR yield_lph < 300 OR yield_lph > 5000 OR "
                   "population_served < 150 OR population_served > 2500"),
            0);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM water_quality_tests t JOIN well_records w "
                   "ON w.record_id = t.record_id WHERE t.tested_date > w.visit_date"),
            0);
  // Patient references are pseudonymous codes of the record's country.
  EXPECT_EQ(db.Int(absl::StrCat(
                "SELECT COUNT(*) FROM cataract_surgeries c JOIN records r "
                "ON r.id = c.record_id WHERE NOT (c.patient_ref ",
                db.postgres() ? "~ '^[A-Z]{2}-[A-Z]{3}-[0-9]{6}$'"  // GLOB is SQLite's
                              : "GLOB '[A-Z][A-Z]-[A-Z][A-Z][A-Z]-[0-9][0-9][0-9][0-9][0-9][0-9]'",
                ") OR substr(c.patient_ref, 1, 2) <> r.country")),
            0);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM cataract_surgeries WHERE age_years < 40 OR "
                   "age_years > 90"),
            0);
  // A second eye is the other eye of the same patient.
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM (SELECT patient_ref FROM cataract_surgeries "
                   "GROUP BY patient_ref HAVING COUNT(*) > 2 OR COUNT(DISTINCT eye) < COUNT(*)) "
                   "AS x"),
            0);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM classroom_donations WHERE students_reached < 40 OR "
                   "students_reached > 900"),
            0);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM (SELECT record_id FROM donation_items GROUP BY 1 "
                   "HAVING COUNT(*) > 5) AS x"),
            0);
  EXPECT_GT(db.Int("SELECT COUNT(*) FROM donation_items WHERE quantity_received < quantity"), 0);

  if (!large) return;
  // The share of rows where `cond` holds (CASE, not a boolean: PostgreSQL has no AVG(boolean)).
  auto share = [&](const std::string& cond, const std::string& from_where) {
    return db.Double(
        absl::StrCat("SELECT AVG(CASE WHEN ", cond, " THEN 1 ELSE 0 END) FROM ", from_where));
  };
  // Statuses: mostly active or completed.
  EXPECT_GE(share("status IN ('ACTIVE', 'COMPLETED')", "projects"), 0.8);
  // Shares the brief asks for, with room for chance.
  EXPECT_NEAR(share("functional_status = 'FUNCTIONAL'", "well_records"), 0.75,
              0.04);
  EXPECT_NEAR(share("functional_status = 'PARTLY_FUNCTIONAL'", "well_records"),
              0.15, 0.03);
  EXPECT_NEAR(share("sex = 'FEMALE'", "cataract_surgeries"), 0.55, 0.03);
  EXPECT_NEAR(share("technique = 'SICS'", "cataract_surgeries"), 0.78, 0.04);
  EXPECT_NEAR(db.Double("SELECT AVG(iol_implanted) FROM cataract_surgeries"), 0.97, 0.015);
  const double surgeries = db.Double("SELECT COUNT(*) FROM cataract_surgeries");
  auto coverage = [&](const char* stage) {
    return db.Double(absl::StrCat("SELECT COUNT(*) FROM cataract_follow_ups WHERE stage = '", stage,
                                  "'")) /
           surgeries;
  };
  EXPECT_NEAR(coverage("DAY_1"), 0.95, 0.02);
  EXPECT_NEAR(coverage("WEEKS_1_3"), 0.6, 0.03);
  EXPECT_NEAR(coverage("WEEKS_4_12"), 0.4, 0.03);
  // Deliveries: most arrive complete and in good condition.
  EXPECT_NEAR(share("condition = 'GOOD'", "classroom_donations"), 0.8, 0.08);
  EXPECT_NEAR(share("quantity_received < quantity", "donation_items"), 0.055,
              0.02);
  // Final outcomes: about 70 % good, 20 % borderline, 10 % poor.
  int64_t final_counts[4] = {};
  for (const Row& row :
       db.Query("SELECT presenting_va FROM cataract_follow_ups WHERE stage = 'WEEKS_4_12'")) {
    ++final_counts[ExpectedOutcome(row[0].s)];
  }
  const double finals = final_counts[1] + final_counts[2] + final_counts[3];
  EXPECT_NEAR(final_counts[v1::VISUAL_OUTCOME_GOOD] / finals, 0.68, 0.05);
  EXPECT_NEAR(final_counts[v1::VISUAL_OUTCOME_BORDERLINE] / finals, 0.21, 0.05);
  EXPECT_NEAR(final_counts[v1::VISUAL_OUTCOME_POOR] / finals, 0.11, 0.04);
  // Arsenic where the deltas are, fluoride in the Rift Valley.
  auto failure_rate = [&](const char* column, double limit, const char* countries, bool in) {
    return db.Double(absl::StrCat("SELECT AVG(CASE WHEN t.", column, " > ", limit,
                                  " THEN 1 ELSE 0 END) FROM water_quality_tests t JOIN records r "
                                  "ON r.id = t.record_id WHERE t.",
                                  column, " IS NOT NULL AND r.country ", in ? "IN " : "NOT IN ",
                                  countries));
  };
  EXPECT_GT(failure_rate("arsenic_ug_per_l", 10, "('KH', 'VN')", true),
            5 * failure_rate("arsenic_ug_per_l", 10, "('KH', 'VN')", false));
  // (Senegal's groundnut basin is a fluoride belt too.)
  EXPECT_GT(failure_rate("fluoride_mg_per_l", 1.5, "('ET', 'KE', 'TZ', 'SN')", true),
            3 * failure_rate("fluoride_mg_per_l", 1.5, "('ET', 'KE', 'TZ', 'SN')", false));
  EXPECT_NEAR(share("ecoli_cfu_per_100ml = 0", "water_quality_tests "
                        "WHERE ecoli_cfu_per_100ml IS NOT NULL"),
              0.85, 0.06);
  EXPECT_GT(db.Int("SELECT COUNT(*) FROM water_quality_tests WHERE arsenic_ug_per_l IS NULL"), 0);
  // Currencies of every kind, including some without minor units.
  EXPECT_GT(db.Int("SELECT COUNT(DISTINCT currency) FROM projects"), 8);
  EXPECT_GT(db.Int("SELECT COUNT(*) FROM projects WHERE currency IN ('UGX', 'VND', 'RWF', "
                   "'XOF')"),
            0);
  EXPECT_GT(db.Int("SELECT COUNT(*) FROM projects WHERE status = 'PLANNED'"), 0);
  EXPECT_GT(db.Int("SELECT COUNT(*) FROM projects WHERE status = 'CANCELLED'"), 0);
}

// Everything above, and GetStats for every grouping.
void CheckLoadedDatabase(Store& store, const std::string& path, const DemoOptions& options,
                         const DemoSummary& summary, bool large) {
  RawDb db(path);
  ASSERT_TRUE(db.ok());
  ExpectCountsMatchSummary(db, summary);
  ExpectConsistentReferences(db);
  ExpectChangeLogOneRowPerDocument(db, summary);
  ExpectRealistic(db, options, large);
  for (v1::StatsGrouping g :
       {v1::STATS_GROUPING_NONE, v1::STATS_GROUPING_COUNTRY, v1::STATS_GROUPING_PARTNER,
        v1::STATS_GROUPING_KIND, v1::STATS_GROUPING_MONTH}) {
    ExpectStatsMatch(store, db, g);
  }
  // The SQL totals agree with the documents themselves.
  std::map<std::string, v1::StatsGroup> totals =
      ExpectedStats(db, v1::STATS_GROUPING_NONE, {}).Compute();
  ASSERT_EQ(totals.count("all"), 1u);
  {
    SCOPED_TRACE("typed tables vs payloads");
    ExpectGroupEq(TotalsFromPayloads(db), totals["all"]);
  }
  // Filters: one country, one partner, one kind, a date window.
  const std::string country = db.Text("SELECT country FROM projects ORDER BY id LIMIT 1");
  const std::string partner = db.Text("SELECT id FROM partners ORDER BY id LIMIT 1");
  StatsFilter by_country;
  by_country.country = country;
  by_country.from_date = "2024-01-01";
  by_country.to_date = "2025-06-30";
  ExpectStatsMatch(store, db, v1::STATS_GROUPING_KIND, by_country);
  StatsFilter by_partner;
  by_partner.partner_id = partner;
  by_partner.kind = "CATARACT";
  by_partner.from_date = "2023-07-01";
  ExpectStatsMatch(store, db, v1::STATS_GROUPING_MONTH, by_partner);
  StatsFilter until;
  until.to_date = "2023-12-31";
  ExpectStatsMatch(store, db, v1::STATS_GROUPING_COUNTRY, until);
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

TEST(DemoDataTest, SmallNetworkMatchesItsIndicators) {
  TempDir dir;
  TestDatabase test_db(dir, "demo.db");
  const std::string path = test_db.path();
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(path));
  const DemoOptions options = SmallOptions();
  ASSERT_OK_AND_ASSIGN(DemoSummary summary, LoadDemoData(*store, options));
  EXPECT_EQ(summary.partners, 4);
  EXPECT_EQ(summary.projects, 40);
  EXPECT_EQ(summary.wells, 300);
  EXPECT_EQ(summary.surgeries, 300);
  EXPECT_EQ(summary.donations, 300);
  EXPECT_EQ(summary.expenditures, 300);
  EXPECT_GT(summary.sites, summary.wells);  // one per water point, plus clinics and schools
  CheckLoadedDatabase(*store, path, options, summary, /*large=*/false);
}

TEST(DemoDataTest, LoadingTwiceFailsAndChangesNothing) {
  TempDir dir;
  TestDatabase test_db(dir, "demo.db");
  const std::string path = test_db.path();
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(path));
  DemoOptions options = SmallOptions();
  ASSERT_OK(LoadDemoData(*store, options));
  RawDb db(path);
  const std::string before = Snapshot(db);
  EXPECT_THAT(LoadDemoData(*store, options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already has projects")));
  options.seed = 7;  // another network would clash just the same
  EXPECT_THAT(LoadDemoData(*store, options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already has projects")));
  EXPECT_EQ(Snapshot(db), before);
}

TEST(DemoDataTest, RefusesPartnerNameAlreadyTaken) {
  TempDir dir;
  TestDatabase test_db(dir, "demo.db");
  const std::string path = test_db.path();
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(path));
  v1::Partner partner;
  partner.set_id("01890000-0000-7000-8000-000000000001");
  partner.set_name("Maji Safi Community Trust");
  partner.add_countries("KE");
  ASSERT_OK(store->CreatePartner(partner, Actor{"test"}));
  RawDb db(path);
  const std::string before = Snapshot(db);
  EXPECT_THAT(LoadDemoData(*store, SmallOptions()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("Maji Safi")));
  EXPECT_EQ(Snapshot(db), before);
}

// Runs `sql` on a read-write connection of its own: test setup that the store must not see
// coming (a trigger that fails a write half-way through the load).
void ExecOnFile(const std::string& path, const std::string& sql) {
  EXPECT_OK(fieldsync::testing::ExecSql(path, sql));
}

TEST(DemoDataTest, FailureLeavesNothingBehind) {
  TempDir dir;
  TestDatabase test_db(dir, "demo.db");
  const std::string path = test_db.path();
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(path));
  // The 700th record (of 1200) cannot be written.
  if (test_db.postgres()) {
    ExecOnFile(path,
               "CREATE FUNCTION fail_700th_record() RETURNS trigger LANGUAGE plpgsql AS $$ "
               "BEGIN IF (SELECT COUNT(*) FROM records) >= 699 THEN "
               "RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$; "
               "CREATE TRIGGER fail_700th_record BEFORE INSERT ON records "
               "FOR EACH ROW EXECUTE FUNCTION fail_700th_record();");
  } else {
    ExecOnFile(path,
               "CREATE TRIGGER fail_700th_record BEFORE INSERT ON records "
               "WHEN (SELECT COUNT(*) FROM records) >= 699 "
               "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
  }
  absl::StatusOr<DemoSummary> failed = LoadDemoData(*store, SmallOptions());
  EXPECT_FALSE(failed.ok());
  EXPECT_THAT(failed.status().message(), HasSubstr("demo data"));
  EXPECT_THAT(failed.status().message(), HasSubstr("injected failure"));
  {
    RawDb db(path);
    for (const char* table :
         {"partners", "projects", "sites", "records", "well_records", "water_quality_tests",
          "cataract_surgeries", "cataract_follow_ups", "classroom_donations", "donation_items",
          "expenditures", "change_log"}) {
      EXPECT_EQ(db.Int(absl::StrCat("SELECT COUNT(*) FROM ", table)), 0) << table;
    }
  }
  // And nothing is stuck: without the fault the same load succeeds.
  ExecOnFile(path, test_db.postgres() ? "DROP TRIGGER fail_700th_record ON records;"
                                      : "DROP TRIGGER fail_700th_record;");
  ASSERT_OK_AND_ASSIGN(DemoSummary summary, LoadDemoData(*store, SmallOptions()));
  EXPECT_EQ(summary.wells, 300);
}

// Every document of a table, by id, as stored (payloads exclude the audit block).
std::vector<std::pair<std::string, std::string>> Documents(RawDb& db, const char* table) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Row& row : db.Query(absl::StrCat("SELECT id, payload FROM ", table, " ORDER BY id"))) {
    out.push_back({row[0].s, row[1].s});
  }
  return out;
}

TEST(DemoDataTest, SameSeedSameDocuments) {
  TempDir dir;
  DemoOptions options;
  options.partners = 3;
  options.projects = 12;
  options.records_per_kind = 80;
  TestDatabase dbs[] = {TestDatabase(dir, "a.db"), TestDatabase(dir, "b.db"),
                        TestDatabase(dir, "c.db")};
  std::vector<std::string> paths = {dbs[0].path(), dbs[1].path(), dbs[2].path()};
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto store, OpenStore(paths[i]));
    if (i == 2) options.seed = 99;
    ASSERT_OK(LoadDemoData(*store, options));
  }
  RawDb a(paths[0]), b(paths[1]), c(paths[2]);
  for (const char* table : {"partners", "projects", "sites", "records"}) {
    EXPECT_EQ(Documents(a, table), Documents(b, table)) << table;
  }
  EXPECT_NE(Documents(a, "records"), Documents(c, "records"));
}

TEST(DemoDataTest, FewProjectsStillValid) {
  TempDir dir;
  TestDatabase test_db(dir, "demo.db");
  const std::string path = test_db.path();
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(path));
  DemoOptions options;
  options.partners = 12;
  options.projects = 3;
  options.records_per_kind = 10;
  ASSERT_OK_AND_ASSIGN(DemoSummary summary, LoadDemoData(*store, options));
  EXPECT_EQ(summary.partners, 12);
  EXPECT_EQ(summary.projects, 3);
  // Every kind has a project that records data, so the counts are exact.
  EXPECT_EQ(summary.wells, 10);
  EXPECT_EQ(summary.surgeries, 10);
  EXPECT_EQ(summary.donations, 10);
  EXPECT_EQ(summary.expenditures, 10);
  RawDb db(path);
  ExpectCountsMatchSummary(db, summary);
  ExpectChangeLogOneRowPerDocument(db, summary);
}

TEST(DemoDataTest, RejectsBadOptions) {
  TempDir dir;
  TestDatabase test_db(dir, "demo.db");
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(test_db.path()));
  DemoOptions o;
  o.partners = 0;
  EXPECT_THAT(LoadDemoData(*store, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("partners")));
  o = DemoOptions();
  o.partners = 13;
  EXPECT_THAT(LoadDemoData(*store, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("partners")));
  o = DemoOptions();
  o.projects = -1;
  EXPECT_THAT(LoadDemoData(*store, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("projects")));
  o = DemoOptions();
  o.records_per_kind = -5;
  EXPECT_THAT(LoadDemoData(*store, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("records_per_kind")));
  o = DemoOptions();
  o.as_of = "2026-02-30";
  EXPECT_THAT(LoadDemoData(*store, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("as_of")));
  RawDb db(test_db.path());
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM change_log"), 0);
}

TEST(DemoDataTest, DefaultNetwork) {
  TempDir dir;
  TestDatabase test_db(dir, "demo.db");
  const std::string path = test_db.path();
  // The server's own durability setting: the load is one transaction, so one fsync.
  SqliteStore::Options store_options;
  store_options.path = path;
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(store_options));
  const DemoOptions options;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(DemoSummary summary, LoadDemoData(*store, options));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[ demo     ] loaded " << summary.partners << " partners, " << summary.projects
            << " projects, " << summary.sites << " sites, " << summary.wells << " wells, "
            << summary.surgeries << " surgeries, " << summary.donations << " donations, "
            << summary.expenditures << " expenditures in " << seconds << " s\n";
  ::testing::Test::RecordProperty("load_seconds", std::to_string(seconds));
  EXPECT_LT(seconds, 60) << "the brief aims at < 20 s on 2 slow cores";
  EXPECT_EQ(summary.partners, 8);
  EXPECT_EQ(summary.projects, 240);
  EXPECT_EQ(summary.wells, 3000);
  EXPECT_EQ(summary.surgeries, 3000);
  EXPECT_EQ(summary.donations, 3000);
  EXPECT_EQ(summary.expenditures, 3000);
  CheckLoadedDatabase(*store, path, options, summary, /*large=*/true);
}

}  // namespace
}  // namespace fieldsync::server
