// SqliteStore::GetStats answers from aggregates that the write path keeps per project and record
// date (migration 4: stats_cells, stats_spend, stats_schools), so its cost follows the number of
// (project, day) cells rather than the number of records. Every additive quantity in a cell is
// computed with the same SQL expressions as GetStatsByScan, the original form: one GROUP BY over
// the typed projection tables per indicator, which an auditor can check by hand
// (docs/INDICATORS.md) and which stays the reference the aggregates are tested against.

#include <algorithm>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/model/visual_acuity.h"
#include "server/enum_names.h"
#include "server/sqlite_store.h"

namespace fieldsync::server {

using Database = db::Connection;
using Statement = db::Statement;

namespace {

// WHO guideline values for drinking water, in the units of the water_quality_tests columns.
constexpr double kEcoliMaxCfu = 0;
constexpr double kTurbidityMaxNtu = 5;
constexpr double kArsenicMaxUgPerL = 10;
constexpr double kFluorideMaxMgPerL = 1.5;

// "CASE WHEN <cond> THEN 1 ELSE 0 END": a condition counted as a number (a boolean is no number
// on PostgreSQL).
std::string Count(absl::string_view cond) {
  return absl::StrCat("CASE WHEN ", cond, " THEN 1 ELSE 0 END");
}

// The one definition of each indicator, as SQL over the typed tables' aliases: w well_records,
// t water_quality_tests, c cataract_surgeries, f cataract_follow_ups, d classroom_donations,
// i donation_items. The scan sums them over a group's records; the aggregates sum them over one
// record (the write path) or over a cell's records (the backfill).
struct Indicators {
  std::string functional = Count("w.functional_status = 'FUNCTIONAL'");
  std::string partly_functional = Count("w.functional_status = 'PARTLY_FUNCTIONAL'");
  std::string not_functional = Count("w.functional_status = 'NOT_FUNCTIONAL'");
  std::string people_served =
      "CASE WHEN w.functional_status IN ('FUNCTIONAL', 'PARTLY_FUNCTIONAL') "
      "THEN w.population_served ELSE 0 END";
  // Conditions; a value not measured (NULL) fails none.
  std::string ecoli = absl::StrCat("t.ecoli_cfu_per_100ml > ", kEcoliMaxCfu);
  std::string turbidity = absl::StrCat("t.turbidity_ntu > ", kTurbidityMaxNtu);
  std::string arsenic = absl::StrCat("t.arsenic_ug_per_l > ", kArsenicMaxUgPerL);
  std::string fluoride = absl::StrCat("t.fluoride_mg_per_l > ", kFluorideMaxMgPerL);
  std::string failing_any =
      absl::StrCat(ecoli, " OR ", turbidity, " OR ", arsenic, " OR ", fluoride);
  std::string female = Count("c.sex = 'FEMALE'");
  std::string with_iol = "c.iol_implanted";
  std::string with_complications = Count("c.complications > 0");
  // Conditions on a follow-up's acuity, with the same tolerance as model::OutcomeOf so that a
  // record's outcome and the indicators agree. %.17g: every bit of the double, so no acuity
  // falls between the record and the SQL.
  std::string good, borderline, poor;

  Indicators() {
    const model::OutcomeThresholds thresholds;
    const std::string g =
        absl::StrFormat("%.17g", thresholds.good_at_least / model::kOutcomeTolerance);
    const std::string b =
        absl::StrFormat("%.17g", thresholds.borderline_at_least / model::kOutcomeTolerance);
    good = absl::StrCat("f.presenting_va_decimal >= ", g);
    borderline =
        absl::StrCat("f.presenting_va_decimal < ", g, " AND f.presenting_va_decimal >= ", b);
    poor = absl::StrCat("f.presenting_va_decimal < ", b);
  }
};

const Indicators& Ind() {
  static const Indicators* const kIndicators = new Indicators();
  return *kIndicators;
}

constexpr v1::FollowUpStage kStages[] = {v1::FOLLOW_UP_STAGE_DAY_1, v1::FOLLOW_UP_STAGE_WEEKS_1_3,
                                         v1::FOLLOW_UP_STAGE_WEEKS_4_12};

// SQL pieces for one GetStats request. Record queries join `alias` (records r for the scan,
// an aggregate table for GetStats) with projects p.
struct StatsQuery {
  std::string record_key;   // group key over the record alias and p
  std::string project_key;  // group key over p alone (unused for MONTH)
  std::string record_where;
  std::string project_where;
  std::vector<std::string> record_params;
  std::vector<std::string> project_params;
};

StatsQuery BuildQuery(const v1::GetStatsRequest& f, const Scope& scope,
                      absl::string_view alias = "r") {
  StatsQuery q;
  switch (f.group_by()) {
    case v1::STATS_GROUPING_COUNTRY:
      q.record_key = q.project_key = "p.country";
      break;
    case v1::STATS_GROUPING_PARTNER:
      q.record_key = q.project_key = "p.partner_id";
      break;
    case v1::STATS_GROUPING_KIND:
      q.record_key = q.project_key = "p.kind";
      break;
    case v1::STATS_GROUPING_MONTH:
      q.record_key = absl::StrCat("substr(", alias, ".record_date, 1, 7)");
      break;
    default:
      q.record_key = q.project_key = "'all'";
  }
  std::vector<std::string> pw = {"1 = 1"};
  auto add = [&](bool cond, const char* fragment, const std::string& value) {
    if (!cond) return;
    pw.push_back(fragment);
    q.project_params.push_back(value);
  };
  add(!scope.partner_id.empty(), "p.partner_id = ?", scope.partner_id);
  add(!f.partner_id().empty(), "p.partner_id = ?", f.partner_id());
  add(!f.country().empty(), "p.country = ?", f.country());
  add(f.kind() != v1::PROJECT_KIND_UNSPECIFIED, "p.kind = ?", ShortName(f.kind()));
  q.project_where = absl::StrJoin(pw, " AND ");
  std::vector<std::string> rw = pw;
  q.record_params = q.project_params;
  if (!f.from_date().empty()) {
    rw.push_back(absl::StrCat(alias, ".record_date >= ?"));
    q.record_params.push_back(f.from_date());
  }
  if (!f.to_date().empty()) {
    rw.push_back(absl::StrCat(alias, ".record_date <= ?"));
    q.record_params.push_back(f.to_date());
  }
  q.record_where = absl::StrJoin(rw, " AND ");
  return q;
}

// Runs `sql` with `params` and hands each row to `row`.
absl::Status ForEachRow(Database& db, const std::string& sql,
                        const std::vector<std::string>& params,
                        const std::function<void(const Statement&)>& row) {
  FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(sql));
  for (size_t i = 0; i < params.size(); ++i) st->Bind(static_cast<int>(i + 1), params[i]);
  while (true) {
    FS_ASSIGN_OR_RETURN(bool has, st->Step());
    if (!has) break;
    row(*st);
  }
  return absl::OkStatus();
}

// "SELECT <key>, <columns> FROM records r JOIN projects p ON p.id = r.project_id <joins>
// WHERE <filters> GROUP BY <group>".
std::string RecordSql(const StatsQuery& q, absl::string_view columns, absl::string_view joins,
                      absl::string_view group = "1") {
  return absl::StrCat("SELECT ", q.record_key, ", ", columns,
                      " FROM records r JOIN projects p ON p.id = r.project_id ", joins, " WHERE ",
                      q.record_where, " GROUP BY ", group);
}

double Share(int64_t part, int64_t whole) {
  return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

// What both forms of GetStats build: the groups by key, and per group and currency the budget
// and the amount spent.
struct StatsResult {
  std::map<std::string, v1::StatsGroup> groups;
  std::map<std::string, std::map<std::string, std::pair<int64_t, int64_t>>> spend;

  v1::StatsGroup& Group(const Statement& st) {
    std::string key = st.ColumnText(0);
    v1::StatsGroup& g = groups[key];
    g.set_key(key);
    return g;
  }
};

// Projects and budgets per group from the projects table (every grouping but MONTH, whose
// groups are the months that have records).
absl::Status ProjectsAndBudgets(Database& db, const StatsQuery& q, StatsResult& out) {
  FS_RETURN_IF_ERROR(ForEachRow(
      db,
      absl::StrCat("SELECT ", q.project_key, ", COUNT(*) FROM projects p WHERE ", q.project_where,
                   " GROUP BY 1"),
      q.project_params, [&](const Statement& st) { out.Group(st).set_projects(st.ColumnInt(1)); }));
  return ForEachRow(
      db,
      absl::StrCat("SELECT ", q.project_key,
                   ", p.currency, SUM(p.budget_minor) FROM projects p WHERE ", q.project_where,
                   " AND p.currency IS NOT NULL GROUP BY 1, 2"),
      q.project_params, [&](const Statement& st) {
        out.Group(st);
        out.spend[st.ColumnText(0)][st.ColumnText(1)].first += st.ColumnInt(2);
      });
}

// Partner names as labels, then the response in key order with spend per currency.
absl::StatusOr<v1::GetStatsResponse> Finish(Database& db, const v1::GetStatsRequest& f,
                                            StatsResult& r) {
  for (auto& [key, g] : r.groups) {
    g.set_label(key);
    if (f.group_by() != v1::STATS_GROUPING_PARTNER) continue;
    FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare("SELECT name FROM partners WHERE id = ?"));
    st->Bind(1, key);
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) g.set_label(st->ColumnText(0));
    st->Reset();
  }
  v1::GetStatsResponse out;
  out.set_good_outcome_cutoff("6/18");
  for (auto& [key, g] : r.groups) {
    for (const auto& [currency, amounts] : r.spend[key]) {
      v1::SpendIndicators* s = g.add_spend();
      s->set_currency(currency);
      s->set_budget_minor(amounts.first);
      s->set_spent_minor(amounts.second);
      s->set_spent_share(Share(amounts.second, amounts.first));
    }
    *out.add_groups() = std::move(g);
  }
  return out;
}

// --- The aggregates ----------------------------------------------------------------------------

// What records add to their cells comes from one SELECT per typed table (a branch): the records
// joined to that table, each row giving the branch's columns. The write path sums each branch
// over one record (BranchOfRecordSql) and only the branches of the record's kind, which alone can
// have rows; the backfill sums a UNION ALL of every branch (0 for other branches' columns) per
// cell (CellBackfillSql).
struct CellBranch {
  int kinds;
  const char* joins;  // after "FROM records r"
  const char* where;  // after the filter
};
enum : int {
  kRecordsBranch,
  kWellsBranch,
  kTestsBranch,
  kSurgeriesBranch,
  kFollowUpsBranch,
  kFollowedUpBranch,
  kDonationsBranch,
  kItemsBranch,
};
constexpr CellBranch kCellBranches[] = {
    {kStatsAllKinds, "", ""},
    {kStatsWell, "JOIN well_records w ON w.record_id = r.id", ""},
    {kStatsWell, "JOIN water_quality_tests t ON t.record_id = r.id", ""},
    {kStatsCataract, "JOIN cataract_surgeries c ON c.record_id = r.id", ""},
    {kStatsCataract, "JOIN cataract_follow_ups f ON f.record_id = r.id", ""},
    // Records with any follow-up: COUNT(DISTINCT f.record_id) of the scan, one per record.
    {kStatsCataract, "",
     " AND EXISTS (SELECT 1 FROM cataract_follow_ups f WHERE f.record_id = r.id)"},
    {kStatsClassroom, "JOIN classroom_donations d ON d.record_id = r.id", ""},
    {kStatsClassroom, "JOIN donation_items i ON i.record_id = r.id", ""},
};

// A column of stats_cells: its branch and its value per row of that branch.
struct CellColumn {
  std::string name;
  int branch;
  std::string value;
};

// Lower-case stage prefix of the per-stage columns: "day_1", "weeks_1_3", "weeks_4_12".
std::string StagePrefix(v1::FollowUpStage stage) { return absl::AsciiStrToLower(ShortName(stage)); }

const std::vector<CellColumn>& CellColumns() {
  static const std::vector<CellColumn>* const kColumns = [] {
    const Indicators& ind = Ind();
    auto* c = new std::vector<CellColumn>{
        {"records", kRecordsBranch, "1"},
        {"water_points", kWellsBranch, "1"},
        {"functional", kWellsBranch, ind.functional},
        {"partly_functional", kWellsBranch, ind.partly_functional},
        {"not_functional", kWellsBranch, ind.not_functional},
        {"people_served", kWellsBranch, ind.people_served},
        {"quality_tests", kTestsBranch, "1"},
        {"ecoli_failures", kTestsBranch, Count(ind.ecoli)},
        {"turbidity_failures", kTestsBranch, Count(ind.turbidity)},
        {"arsenic_failures", kTestsBranch, Count(ind.arsenic)},
        {"fluoride_failures", kTestsBranch, Count(ind.fluoride)},
        {"tests_failing_any", kTestsBranch, Count(ind.failing_any)},
        {"surgeries", kSurgeriesBranch, "1"},
        {"female", kSurgeriesBranch, ind.female},
        {"with_iol", kSurgeriesBranch, ind.with_iol},
        {"with_complications", kSurgeriesBranch, ind.with_complications},
        {"followed_up", kFollowedUpBranch, "1"},
    };
    for (v1::FollowUpStage stage : kStages) {
      const std::string prefix = StagePrefix(stage);
      const std::string at = absl::StrCat("f.stage = '", ShortName(stage), "'");
      c->push_back({absl::StrCat(prefix, "_examined"), kFollowUpsBranch, Count(at)});
      c->push_back({absl::StrCat(prefix, "_good"), kFollowUpsBranch,
                    Count(absl::StrCat(at, " AND ", ind.good))});
      c->push_back({absl::StrCat(prefix, "_borderline"), kFollowUpsBranch,
                    Count(absl::StrCat(at, " AND ", ind.borderline))});
      c->push_back({absl::StrCat(prefix, "_poor"), kFollowUpsBranch,
                    Count(absl::StrCat(at, " AND ", ind.poor))});
    }
    c->push_back({"donations", kDonationsBranch, "1"});
    c->push_back({"students_reached", kDonationsBranch, "d.students_reached"});
    c->push_back({"teachers_trained", kDonationsBranch, "d.teachers_trained"});
    c->push_back({"item_rows", kItemsBranch, "1"});
    c->push_back({"items_dispatched", kItemsBranch, "i.quantity"});
    c->push_back({"items_received", kItemsBranch, "i.quantity_received"});
    return c;
  }();
  return *kColumns;
}

// The contribution of the records matching `where` (over records r) to stats_cells, added:
// migration 4's backfill, with the typed tables of `kinds`.
std::string CellBackfillSql(absl::string_view where, int kinds) {
  const std::vector<CellColumn>& columns = CellColumns();
  std::vector<std::string> branches;
  for (int b = 0; b < static_cast<int>(std::size(kCellBranches)); ++b) {
    if ((kCellBranches[b].kinds & kinds) == 0) continue;
    std::vector<std::string> values;
    for (const CellColumn& c : columns) {
      values.push_back(absl::StrCat(c.branch == b ? c.value : "0", " AS ", c.name));
    }
    branches.push_back(absl::StrCat("SELECT r.project_id, r.record_date, ",
                                    absl::StrJoin(values, ", "), " FROM records r ",
                                    kCellBranches[b].joins, " WHERE ", where,
                                    kCellBranches[b].where));
  }
  std::vector<std::string> names, sums;
  for (const CellColumn& c : columns) {
    names.push_back(c.name);
    sums.push_back(absl::StrCat("SUM(x.", c.name, ")"));
  }
  return absl::StrCat("INSERT INTO stats_cells(project_id, record_date, ",
                      absl::StrJoin(names, ", "), ") SELECT x.project_id, x.record_date, ",
                      absl::StrJoin(sums, ", "), " FROM (", absl::StrJoin(branches, " UNION ALL "),
                      ") x GROUP BY x.project_id, x.record_date");
}

// What one record's typed rows of branch `b` add to its cell: "SELECT SUM(<value>), … FROM
// records r <joins> WHERE r.id = ?1 <where>" over the branch's columns, in CellColumns order.
// The same definitions as the backfill's branch, over one record (one row, zeros if none).
const std::string& BranchOfRecordSql(int b) {
  static const std::vector<std::string>* const kSql = [] {
    auto* v = new std::vector<std::string>;
    for (int i = 0; i < static_cast<int>(std::size(kCellBranches)); ++i) {
      std::vector<std::string> sums;
      for (const CellColumn& c : CellColumns()) {
        if (c.branch == i) sums.push_back(absl::StrCat("COALESCE(SUM(", c.value, "), 0)"));
      }
      v->push_back(absl::StrCat("SELECT ", absl::StrJoin(sums, ", "), " FROM records r ",
                                kCellBranches[i].joins, " WHERE r.id = ?1",
                                kCellBranches[i].where));
    }
    return v;
  }();
  return (*kSql)[b];
}

// The same for stats_spend and stats_schools.
std::string SpendBackfillSql() {
  return "INSERT INTO stats_spend(project_id, record_date, currency, expenditures, spent_minor) "
         "SELECT r.project_id, r.record_date, e.currency, COUNT(*), SUM(e.amount_minor) "
         "FROM records r JOIN expenditures e ON e.record_id = r.id "
         "GROUP BY r.project_id, r.record_date, e.currency";
}
constexpr char kSpendOfRecord[] =
    "SELECT e.currency, e.amount_minor FROM records r JOIN expenditures e ON e.record_id = r.id "
    "WHERE r.id = ?1";

std::string SchoolsBackfillSql() {
  return "INSERT INTO stats_schools(project_id, record_date, school_name, donations) "
         "SELECT r.project_id, r.record_date, d.school_name, COUNT(*) "
         "FROM records r JOIN classroom_donations d ON d.record_id = r.id "
         "GROUP BY r.project_id, r.record_date, d.school_name";
}
constexpr char kSchoolsOfRecord[] =
    "SELECT d.school_name FROM records r JOIN classroom_donations d ON d.record_id = r.id "
    "WHERE r.id = ?1";

// "INSERT INTO stats_cells(project_id, record_date, <columns>) VALUES(?, …) ON CONFLICT(…) DO
// UPDATE SET <column> = stats_cells.<column> + excluded.<column>, …".
const std::string& CellAddSql() {
  static const std::string* const kSql = [] {
    std::vector<std::string> names, marks, sets;
    for (const CellColumn& c : CellColumns()) {
      names.push_back(c.name);
      marks.push_back("?");
      sets.push_back(absl::StrCat(c.name, " = stats_cells.", c.name, " + excluded.", c.name));
    }
    return new std::string(absl::StrCat(
        "INSERT INTO stats_cells(project_id, record_date, ", absl::StrJoin(names, ", "),
        ") VALUES(?, ?, ", absl::StrJoin(marks, ", "),
        ") ON CONFLICT(project_id, record_date) DO UPDATE SET ", absl::StrJoin(sets, ", ")));
  }();
  return *kSql;
}

// A group's summed cell columns, by name (zeros for a group without cells).
struct CellSums {
  std::vector<int64_t> v;
  int64_t operator[](absl::string_view name) const {
    const std::vector<CellColumn>& columns = CellColumns();
    for (size_t i = 0; i < columns.size(); ++i) {
      if (columns[i].name == name) return i < v.size() ? v[i] : 0;
    }
    return 0;
  }
};

}  // namespace

int StatsKindsOf(const v1::Record& r) {
  switch (r.body_case()) {
    case v1::Record::kWell:
      return kStatsWell;
    case v1::Record::kCataractSurgery:
      return kStatsCataract;
    case v1::Record::kClassroomDonation:
      return kStatsClassroom;
    case v1::Record::kExpenditure:
      return kStatsExpenditure;
    case v1::Record::BODY_NOT_SET:
      break;
  }
  return kStatsAllKinds;
}

absl::StatusOr<RecordStats> ReadRecordStats(Database& db, absl::string_view id, int kinds) {
  RecordStats out;
  FS_ASSIGN_OR_RETURN(Statement * rec,
                      db.Prepare("SELECT project_id, record_date FROM records WHERE id = ?"));
  rec->Bind(1, id);
  FS_ASSIGN_OR_RETURN(out.exists, rec->Step());
  if (out.exists) {
    out.project_id = rec->ColumnText(0);
    out.record_date = rec->ColumnText(1);
  }
  rec->Reset();
  if (!out.exists) return out;
  const std::vector<CellColumn>& columns = CellColumns();
  out.cell.assign(columns.size(), 0);
  for (int b = 0; b < static_cast<int>(std::size(kCellBranches)); ++b) {
    if ((kCellBranches[b].kinds & kinds) == 0) continue;
    if (b == kRecordsBranch) {
      out.cell[0] = 1;  // "records": the records row itself
      continue;
    }
    FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(BranchOfRecordSql(b)));
    st->Bind(1, id);
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    int col = 0;
    for (size_t i = 0; row && i < columns.size(); ++i) {
      if (columns[i].branch == b) out.cell[i] = st->ColumnInt(col++);
    }
    st->Reset();
  }
  if (kinds & kStatsExpenditure) {
    FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(kSpendOfRecord));
    st->Bind(1, id);
    while (true) {
      FS_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      std::pair<int64_t, int64_t>& spend = out.spend[st->ColumnText(0)];
      spend.first += 1;
      spend.second += st->ColumnInt(1);
    }
  }
  if (kinds & kStatsClassroom) {
    FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(kSchoolsOfRecord));
    st->Bind(1, id);
    while (true) {
      FS_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      out.schools[st->ColumnText(0)] += 1;
    }
  }
  return out;
}

absl::Status ApplyRecordStats(Database& db, const RecordStats& before, const RecordStats& after) {
  // Per cell (project, date): the change of its columns and of its currencies and schools.
  struct Delta {
    std::vector<int64_t> cell;
    std::map<std::string, std::pair<int64_t, int64_t>> spend;
    std::map<std::string, int64_t> schools;
  };
  std::map<std::pair<std::string, std::string>, Delta> deltas;
  auto add = [&](const RecordStats& s, int64_t sign) {
    if (!s.exists) return;
    Delta& d = deltas[{s.project_id, s.record_date}];
    d.cell.resize(s.cell.size(), 0);
    for (size_t i = 0; i < s.cell.size(); ++i) d.cell[i] += sign * s.cell[i];
    for (const auto& [currency, v] : s.spend) {
      d.spend[currency].first += sign * v.first;
      d.spend[currency].second += sign * v.second;
    }
    for (const auto& [school, n] : s.schools) d.schools[school] += sign * n;
  };
  add(before, -1);
  add(after, 1);
  for (const auto& [key, d] : deltas) {
    const std::string& project_id = key.first;
    const std::string& date = key.second;
    if (std::any_of(d.cell.begin(), d.cell.end(), [](int64_t v) { return v != 0; })) {
      FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(CellAddSql()));
      st->Bind(1, project_id);
      st->Bind(2, date);
      for (size_t i = 0; i < d.cell.size(); ++i) st->Bind(static_cast<int>(i) + 3, d.cell[i]);
      FS_RETURN_IF_ERROR(st->Run());
      if (d.cell[0] < 0) {
        // A cell is there only while it has records (MONTH groups and their project counts).
        FS_ASSIGN_OR_RETURN(Statement * del,
                            db.Prepare("DELETE FROM stats_cells WHERE project_id = ? AND "
                                       "record_date = ? AND records = 0"));
        del->Bind(1, project_id);
        del->Bind(2, date);
        FS_RETURN_IF_ERROR(del->Run());
      }
    }
    for (const auto& [currency, v] : d.spend) {
      if (v.first == 0 && v.second == 0) continue;
      FS_ASSIGN_OR_RETURN(
          Statement * st,
          db.Prepare("INSERT INTO stats_spend(project_id, record_date, currency, expenditures, "
                     "spent_minor) VALUES(?, ?, ?, ?, ?) "
                     "ON CONFLICT(project_id, record_date, currency) DO UPDATE SET "
                     "expenditures = stats_spend.expenditures + excluded.expenditures, "
                     "spent_minor = stats_spend.spent_minor + excluded.spent_minor"));
      st->Bind(1, project_id);
      st->Bind(2, date);
      st->Bind(3, currency);
      st->Bind(4, v.first);
      st->Bind(5, v.second);
      FS_RETURN_IF_ERROR(st->Run());
      if (v.first < 0) {
        FS_ASSIGN_OR_RETURN(Statement * del,
                            db.Prepare("DELETE FROM stats_spend WHERE project_id = ? AND "
                                       "record_date = ? AND currency = ? AND expenditures = 0"));
        del->Bind(1, project_id);
        del->Bind(2, date);
        del->Bind(3, currency);
        FS_RETURN_IF_ERROR(del->Run());
      }
    }
    for (const auto& [school, n] : d.schools) {
      if (n == 0) continue;
      FS_ASSIGN_OR_RETURN(
          Statement * st,
          db.Prepare("INSERT INTO stats_schools(project_id, record_date, school_name, donations) "
                     "VALUES(?, ?, ?, ?) "
                     "ON CONFLICT(project_id, record_date, school_name) DO UPDATE SET "
                     "donations = stats_schools.donations + excluded.donations"));
      st->Bind(1, project_id);
      st->Bind(2, date);
      st->Bind(3, school);
      st->Bind(4, n);
      FS_RETURN_IF_ERROR(st->Run());
      if (n < 0) {
        FS_ASSIGN_OR_RETURN(Statement * del,
                            db.Prepare("DELETE FROM stats_schools WHERE project_id = ? AND "
                                       "record_date = ? AND school_name = ? AND donations = 0"));
        del->Bind(1, project_id);
        del->Bind(2, date);
        del->Bind(3, school);
        FS_RETURN_IF_ERROR(del->Run());
      }
    }
  }
  return absl::OkStatus();
}

absl::Status BackfillStats(Database& db) {
  FS_RETURN_IF_ERROR(db.Exec(CellBackfillSql("1 = 1", kStatsAllKinds)));
  FS_RETURN_IF_ERROR(db.Exec(SpendBackfillSql()));
  return db.Exec(SchoolsBackfillSql());
}

absl::StatusOr<v1::GetStatsResponse> SqliteStore::GetStats(const v1::GetStatsRequest& f,
                                                           const Scope& scope) {
  const bool by_month = f.group_by() == v1::STATS_GROUPING_MONTH;
  const StatsQuery cells = BuildQuery(f, scope, "c");
  const StatsQuery side = BuildQuery(f, scope, "s");
  const std::vector<CellColumn>& columns = CellColumns();
  StatsResult r;
  std::map<std::string, CellSums> sums;
  absl::StatusOr<v1::GetStatsResponse> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    // One read transaction: every figure of the answer comes from the same snapshot.
    FS_ASSIGN_OR_RETURN(auto tx, db::Transaction::Begin(db, db::Transaction::kRead));
    if (!by_month) FS_RETURN_IF_ERROR(ProjectsAndBudgets(db, cells, r));
    std::vector<std::string> selected;
    for (const CellColumn& c : columns) selected.push_back(absl::StrCat("SUM(c.", c.name, ")"));
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        absl::StrCat("SELECT ", cells.record_key, ", COUNT(DISTINCT c.project_id), ",
                     absl::StrJoin(selected, ", "),
                     " FROM stats_cells c JOIN projects p ON p.id = c.project_id WHERE ",
                     cells.record_where, " GROUP BY 1"),
        cells.record_params, [&](const Statement& st) {
          v1::StatsGroup& g = r.Group(st);
          if (by_month) g.set_projects(st.ColumnInt(1));
          CellSums& s = sums[g.key()];
          for (size_t i = 0; i < columns.size(); ++i) {
            s.v.push_back(st.ColumnInt(static_cast<int>(i) + 2));
          }
        }));
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        absl::StrCat("SELECT ", side.record_key, ", s.currency, SUM(s.spent_minor) "
                     "FROM stats_spend s JOIN projects p ON p.id = s.project_id WHERE ",
                     side.record_where, " GROUP BY 1, 2"),
        side.record_params, [&](const Statement& st) {
          r.Group(st);
          r.spend[st.ColumnText(0)][st.ColumnText(1)].second += st.ColumnInt(2);
        }));
    std::map<std::string, int64_t> schools;
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        absl::StrCat("SELECT ", side.record_key,
                     ", COUNT(DISTINCT s.project_id || '/' || s.school_name) "
                     "FROM stats_schools s JOIN projects p ON p.id = s.project_id WHERE ",
                     side.record_where, " GROUP BY 1"),
        side.record_params,
        [&](const Statement& st) { schools[st.ColumnText(0)] = st.ColumnInt(1); }));

    // The groups as the scan fills them: a kind's message only where the group has its rows
    // (cataract always, with its three stages).
    for (auto& [key, g] : r.groups) {
      const CellSums& s = sums[key];
      if (s["water_points"] > 0 || s["quality_tests"] > 0) {
        v1::WellIndicators* w = g.mutable_wells();
        w->set_water_points(s["water_points"]);
        w->set_functional(s["functional"]);
        w->set_partly_functional(s["partly_functional"]);
        w->set_not_functional(s["not_functional"]);
        w->set_people_served(s["people_served"]);
        w->set_functional_share(Share(w->functional(), w->water_points()));
        w->set_quality_tests(s["quality_tests"]);
        w->set_ecoli_failures(s["ecoli_failures"]);
        w->set_turbidity_failures(s["turbidity_failures"]);
        w->set_arsenic_failures(s["arsenic_failures"]);
        w->set_fluoride_failures(s["fluoride_failures"]);
        w->set_tests_failing_any(s["tests_failing_any"]);
      }
      v1::CataractIndicators* c = g.mutable_cataract();
      c->set_surgeries(s["surgeries"]);
      c->set_female(s["female"]);
      c->set_with_iol(s["with_iol"]);
      c->set_with_complications(s["with_complications"]);
      c->set_follow_up_coverage(Share(s["followed_up"], c->surgeries()));
      for (v1::FollowUpStage stage : kStages) {
        const std::string prefix = StagePrefix(stage);
        v1::OutcomeDistribution* d = c->add_outcomes();
        d->set_examined(s[absl::StrCat(prefix, "_examined")]);
        d->set_good(s[absl::StrCat(prefix, "_good")]);
        d->set_borderline(s[absl::StrCat(prefix, "_borderline")]);
        d->set_poor(s[absl::StrCat(prefix, "_poor")]);
        d->set_stage(stage);
        d->set_coverage(Share(d->examined(), c->surgeries()));
        d->set_good_share(Share(d->good(), d->examined()));
      }
      if (s["donations"] > 0 || s["item_rows"] > 0) {
        v1::ClassroomIndicators* k = g.mutable_classrooms();
        k->set_donations(s["donations"]);
        k->set_students_reached(s["students_reached"]);
        k->set_teachers_trained(s["teachers_trained"]);
        k->set_schools(schools[key]);
        k->set_items_dispatched(s["items_dispatched"]);
        k->set_items_received(s["items_received"]);
      }
    }
    out = Finish(db, f, r);
    return tx.Commit();
  }));
  return out;
}

absl::StatusOr<v1::GetStatsResponse> SqliteStore::GetStatsByScan(const v1::GetStatsRequest& f,
                                                                 const Scope& scope) {
  const Indicators& ind = Ind();
  StatsQuery q = BuildQuery(f, scope);
  StatsResult r;
  auto group = [&](const Statement& st) -> v1::StatsGroup& { return r.Group(st); };
  absl::StatusOr<v1::GetStatsResponse> out;

  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    // Projects in each group.
    if (f.group_by() == v1::STATS_GROUPING_MONTH) {
      FS_RETURN_IF_ERROR(ForEachRow(db, RecordSql(q, "COUNT(DISTINCT r.project_id)", ""),
                                    q.record_params, [&](const Statement& st) {
                                      group(st).set_projects(st.ColumnInt(1));
                                    }));
    } else {
      FS_RETURN_IF_ERROR(ProjectsAndBudgets(db, q, r));
    }

    // Wells.
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        RecordSql(q,
                  absl::StrCat("COUNT(*), SUM(", ind.functional, "), SUM(", ind.partly_functional,
                               "), SUM(", ind.not_functional, "), SUM(", ind.people_served, ")"),
                  "JOIN well_records w ON w.record_id = r.id"),
        q.record_params, [&](const Statement& st) {
          v1::WellIndicators* w = group(st).mutable_wells();
          w->set_water_points(st.ColumnInt(1));
          w->set_functional(st.ColumnInt(2));
          w->set_partly_functional(st.ColumnInt(3));
          w->set_not_functional(st.ColumnInt(4));
          w->set_people_served(st.ColumnInt(5));
          w->set_functional_share(Share(w->functional(), w->water_points()));
        }));
    auto count = [](const std::string& cond) { return absl::StrCat("SUM(", Count(cond), ")"); };
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        RecordSql(q,
                  absl::StrCat("COUNT(*), ", count(ind.ecoli), ", ", count(ind.turbidity), ", ",
                               count(ind.arsenic), ", ", count(ind.fluoride), ", ",
                               count(ind.failing_any)),
                  "JOIN water_quality_tests t ON t.record_id = r.id"),
        q.record_params, [&](const Statement& st) {
          v1::WellIndicators* w = group(st).mutable_wells();
          w->set_quality_tests(st.ColumnInt(1));
          w->set_ecoli_failures(st.ColumnInt(2));
          w->set_turbidity_failures(st.ColumnInt(3));
          w->set_arsenic_failures(st.ColumnInt(4));
          w->set_fluoride_failures(st.ColumnInt(5));
          w->set_tests_failing_any(st.ColumnInt(6));
        }));

    // Cataract surgeries and their outcomes.
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        RecordSql(q,
                  absl::StrCat("COUNT(*), SUM(", ind.female, "), SUM(", ind.with_iol, "), SUM(",
                               ind.with_complications, ")"),
                  "JOIN cataract_surgeries c ON c.record_id = r.id"),
        q.record_params, [&](const Statement& st) {
          v1::CataractIndicators* c = group(st).mutable_cataract();
          c->set_surgeries(st.ColumnInt(1));
          c->set_female(st.ColumnInt(2));
          c->set_with_iol(st.ColumnInt(3));
          c->set_with_complications(st.ColumnInt(4));
        }));
    std::map<std::string, std::map<std::string, v1::OutcomeDistribution>> outcomes;
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        RecordSql(q,
                  absl::StrCat("f.stage, COUNT(*), ", count(ind.good), ", ", count(ind.borderline),
                               ", ", count(ind.poor)),
                  "JOIN cataract_follow_ups f ON f.record_id = r.id", "1, 2"),
        q.record_params, [&](const Statement& st) {
          group(st);
          v1::OutcomeDistribution& d = outcomes[st.ColumnText(0)][st.ColumnText(1)];
          d.set_examined(st.ColumnInt(2));
          d.set_good(st.ColumnInt(3));
          d.set_borderline(st.ColumnInt(4));
          d.set_poor(st.ColumnInt(5));
        }));
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        RecordSql(q, "COUNT(DISTINCT f.record_id)",
                  "JOIN cataract_follow_ups f ON f.record_id = r.id"),
        q.record_params, [&](const Statement& st) {
          v1::CataractIndicators* c = group(st).mutable_cataract();
          c->set_follow_up_coverage(Share(st.ColumnInt(1), c->surgeries()));
        }));
    for (auto& [key, g] : r.groups) {
      v1::CataractIndicators* c = g.mutable_cataract();
      for (v1::FollowUpStage stage : kStages) {
        v1::OutcomeDistribution d = outcomes[key][ShortName(stage)];
        d.set_stage(stage);
        d.set_coverage(Share(d.examined(), c->surgeries()));
        d.set_good_share(Share(d.good(), d.examined()));
        *c->add_outcomes() = d;
      }
    }

    // Classroom donations.
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        RecordSql(q,
                  "COUNT(*), SUM(d.students_reached), SUM(d.teachers_trained), "
                  "COUNT(DISTINCT r.project_id || '/' || d.school_name)",
                  "JOIN classroom_donations d ON d.record_id = r.id"),
        q.record_params, [&](const Statement& st) {
          v1::ClassroomIndicators* c = group(st).mutable_classrooms();
          c->set_donations(st.ColumnInt(1));
          c->set_students_reached(st.ColumnInt(2));
          c->set_teachers_trained(st.ColumnInt(3));
          c->set_schools(st.ColumnInt(4));
        }));
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        RecordSql(q, "SUM(i.quantity), SUM(i.quantity_received)",
                  "JOIN donation_items i ON i.record_id = r.id"),
        q.record_params, [&](const Statement& st) {
          v1::ClassroomIndicators* c = group(st).mutable_classrooms();
          c->set_items_dispatched(st.ColumnInt(1));
          c->set_items_received(st.ColumnInt(2));
        }));

    // Spend.
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        RecordSql(q, "e.currency, SUM(e.amount_minor)",
                  "JOIN expenditures e ON e.record_id = r.id", "1, 2"),
        q.record_params, [&](const Statement& st) {
          group(st);
          r.spend[st.ColumnText(0)][st.ColumnText(1)].second += st.ColumnInt(2);
        }));
    out = Finish(db, f, r);
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace fieldsync::server
