// SqliteStore::GetStats: every indicator is one GROUP BY over the typed projection tables, so
// each number can be checked by hand with the same SQL (docs/INDICATORS.md lists it).

#include <map>

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

// SQL pieces for one GetStats request. Record queries join records r with projects p.
struct StatsQuery {
  std::string record_key;   // group key over r and p
  std::string project_key;  // group key over p alone (unused for MONTH)
  std::string record_where;
  std::string project_where;
  std::vector<std::string> record_params;
  std::vector<std::string> project_params;
};

StatsQuery BuildQuery(const v1::GetStatsRequest& f, const Scope& scope) {
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
      q.record_key = "substr(r.record_date, 1, 7)";
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
    rw.push_back("r.record_date >= ?");
    q.record_params.push_back(f.from_date());
  }
  if (!f.to_date().empty()) {
    rw.push_back("r.record_date <= ?");
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

}  // namespace

absl::StatusOr<v1::GetStatsResponse> SqliteStore::GetStats(const v1::GetStatsRequest& f,
                                                           const Scope& scope) {
  const model::OutcomeThresholds thresholds;
  StatsQuery q = BuildQuery(f, scope);
  std::map<std::string, v1::StatsGroup> groups;
  auto group = [&](const Statement& st) -> v1::StatsGroup& {
    std::string key = st.ColumnText(0);
    v1::StatsGroup& g = groups[key];
    g.set_key(key);
    return g;
  };
  // Spend: currency -> (budget, spent), per group.
  std::map<std::string, std::map<std::string, std::pair<int64_t, int64_t>>> spend;

  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    // Projects in each group.
    if (f.group_by() == v1::STATS_GROUPING_MONTH) {
      FS_RETURN_IF_ERROR(ForEachRow(db, RecordSql(q, "COUNT(DISTINCT r.project_id)", ""),
                                    q.record_params, [&](const Statement& st) {
                                      group(st).set_projects(st.ColumnInt(1));
                                    }));
    } else {
      FS_RETURN_IF_ERROR(ForEachRow(
          db,
          absl::StrCat("SELECT ", q.project_key, ", COUNT(*) FROM projects p WHERE ",
                       q.project_where, " GROUP BY 1"),
          q.project_params, [&](const Statement& st) { group(st).set_projects(st.ColumnInt(1)); }));
      FS_RETURN_IF_ERROR(ForEachRow(
          db,
          absl::StrCat("SELECT ", q.project_key,
                       ", p.currency, SUM(p.budget_minor) FROM projects p WHERE ", q.project_where,
                       " AND p.currency IS NOT NULL GROUP BY 1, 2"),
          q.project_params, [&](const Statement& st) {
            group(st);
            spend[st.ColumnText(0)][st.ColumnText(1)].first += st.ColumnInt(2);
          }));
    }

    // Wells.
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        RecordSql(q,
                  "COUNT(*), SUM(CASE WHEN w.functional_status = 'FUNCTIONAL' THEN 1 ELSE 0 END), "
                  "SUM(CASE WHEN w.functional_status = 'PARTLY_FUNCTIONAL' THEN 1 ELSE 0 END), "
                  "SUM(CASE WHEN w.functional_status = 'NOT_FUNCTIONAL' THEN 1 ELSE 0 END), "
                  "SUM(CASE WHEN w.functional_status IN ('FUNCTIONAL', 'PARTLY_FUNCTIONAL') "
                  "THEN w.population_served ELSE 0 END)",
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
    // Conditions (a value not measured fails none), counted as CASE WHEN … THEN 1 ELSE 0: a
    // boolean is no number on PostgreSQL.
    std::string ecoli = absl::StrCat("t.ecoli_cfu_per_100ml > ", kEcoliMaxCfu);
    std::string turb = absl::StrCat("t.turbidity_ntu > ", kTurbidityMaxNtu);
    std::string ars = absl::StrCat("t.arsenic_ug_per_l > ", kArsenicMaxUgPerL);
    std::string fl = absl::StrCat("t.fluoride_mg_per_l > ", kFluorideMaxMgPerL);
    auto count = [](const std::string& cond) {
      return absl::StrCat("SUM(CASE WHEN ", cond, " THEN 1 ELSE 0 END)");
    };
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        RecordSql(q,
                  absl::StrCat("COUNT(*), ", count(ecoli), ", ", count(turb), ", ", count(ars),
                               ", ", count(fl), ", ",
                               count(absl::StrCat(ecoli, " OR ", turb, " OR ", ars, " OR ", fl))),
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
                  "COUNT(*), SUM(CASE WHEN c.sex = 'FEMALE' THEN 1 ELSE 0 END), "
                  "SUM(c.iol_implanted), "
                  "SUM(CASE WHEN c.complications > 0 THEN 1 ELSE 0 END)",
                  "JOIN cataract_surgeries c ON c.record_id = r.id"),
        q.record_params, [&](const Statement& st) {
          v1::CataractIndicators* c = group(st).mutable_cataract();
          c->set_surgeries(st.ColumnInt(1));
          c->set_female(st.ColumnInt(2));
          c->set_with_iol(st.ColumnInt(3));
          c->set_with_complications(st.ColumnInt(4));
        }));
    // The same tolerance as model::OutcomeOf, so a record's outcome and the indicators agree.
    // %.17g: every bit of the double, so no acuity falls between the record and the SQL.
    std::string good = absl::StrFormat("%.17g", thresholds.good_at_least / model::kOutcomeTolerance);
    std::string borderline =
        absl::StrFormat("%.17g", thresholds.borderline_at_least / model::kOutcomeTolerance);
    std::map<std::string, std::map<std::string, v1::OutcomeDistribution>> outcomes;
    FS_RETURN_IF_ERROR(ForEachRow(
        db,
        RecordSql(q,
                  absl::StrCat("f.stage, COUNT(*), ",
                               "SUM(CASE WHEN f.presenting_va_decimal >= ", good,
                               " THEN 1 ELSE 0 END), SUM(CASE WHEN f.presenting_va_decimal < ",
                               good, " AND f.presenting_va_decimal >= ", borderline,
                               " THEN 1 ELSE 0 END), SUM(CASE WHEN f.presenting_va_decimal < ",
                               borderline, " THEN 1 ELSE 0 END)"),
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
    for (auto& [key, g] : groups) {
      v1::CataractIndicators* c = g.mutable_cataract();
      for (v1::FollowUpStage stage : {v1::FOLLOW_UP_STAGE_DAY_1, v1::FOLLOW_UP_STAGE_WEEKS_1_3,
                                      v1::FOLLOW_UP_STAGE_WEEKS_4_12}) {
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
          spend[st.ColumnText(0)][st.ColumnText(1)].second += st.ColumnInt(2);
        }));

    // Partner names as labels.
    for (auto& [key, g] : groups) {
      g.set_label(key);
      if (f.group_by() != v1::STATS_GROUPING_PARTNER) continue;
      FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare("SELECT name FROM partners WHERE id = ?"));
      st->Bind(1, key);
      FS_ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) g.set_label(st->ColumnText(0));
      st->Reset();
    }
    return absl::OkStatus();
  }));

  v1::GetStatsResponse out;
  out.set_good_outcome_cutoff("6/18");
  for (auto& [key, g] : groups) {
    for (const auto& [currency, amounts] : spend[key]) {
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

}  // namespace fieldsync::server
