// `fieldsync stats`: TrackerService.GetStats, printed as one table per indicator family.
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/invocation.h"
#include "cli/money.h"
#include "cli/output.h"
#include "cli/values.h"
#include "fieldsync/base/status_macros.h"

namespace fieldsync::cli {
namespace {

const EnumAliases& GroupingAliases() {
  static const auto* const kAliases = new EnumAliases{
      {"none", v1::STATS_GROUPING_NONE},       {"country", v1::STATS_GROUPING_COUNTRY},
      {"partner", v1::STATS_GROUPING_PARTNER}, {"kind", v1::STATS_GROUPING_KIND},
      {"month", v1::STATS_GROUPING_MONTH},
  };
  return *kAliases;
}

std::string GroupHeader(v1::StatsGrouping grouping) {
  switch (grouping) {
    case v1::STATS_GROUPING_COUNTRY:
      return "COUNTRY";
    case v1::STATS_GROUPING_PARTNER:
      return "PARTNER";
    case v1::STATS_GROUPING_KIND:
      return "KIND";
    case v1::STATS_GROUPING_MONTH:
      return "MONTH";
    default:
      return "GROUP";
  }
}

std::string StageLabel(v1::FollowUpStage stage) {
  switch (stage) {
    case v1::FOLLOW_UP_STAGE_DAY_1:
      return "day 1";
    case v1::FOLLOW_UP_STAGE_WEEKS_1_3:
      return "weeks 1-3";
    case v1::FOLLOW_UP_STAGE_WEEKS_4_12:
      return "weeks 4-12";
    default:
      return EnumLabel(stage);
  }
}

std::string Share(int64_t part, int64_t whole) {
  return whole == 0 ? "-" : FormatPercent(static_cast<double>(part) / static_cast<double>(whole));
}

// One indicator family: a title, its columns after the group column, and the rows each group
// contributes (none when the family has no data in that group).
struct Section {
  std::string title;
  std::vector<std::string> headers;
  std::function<std::vector<std::vector<std::string>>(const v1::StatsGroup&)> rows;
};

std::vector<Section> Sections(const v1::GetStatsResponse& response) {
  std::vector<Section> sections;
  sections.push_back({"Projects", {"PROJECTS"}, [](const v1::StatsGroup& g) {
                        return std::vector<std::vector<std::string>>{{absl::StrCat(g.projects())}};
                      }});
  sections.push_back(
      {"Water points",
       {"POINTS", "FUNCTIONAL", "FUNCTIONAL %", "PARTLY", "NOT FUNCTIONAL", "PEOPLE SERVED"},
       [](const v1::StatsGroup& g) {
         const v1::WellIndicators& w = g.wells();
         std::vector<std::vector<std::string>> rows;
         if (w.water_points() == 0) return rows;
         rows.push_back({absl::StrCat(w.water_points()), absl::StrCat(w.functional()),
                         FormatPercent(w.functional_share()), absl::StrCat(w.partly_functional()),
                         absl::StrCat(w.not_functional()), absl::StrCat(w.people_served())});
         return rows;
       }});
  sections.push_back(
      {"Water quality tests failing WHO guideline values",
       {"TESTS", "FAILING ANY", "FAILING %", "E. COLI >0", "TURBIDITY >5 NTU", "ARSENIC >10 ug/l",
        "FLUORIDE >1.5 mg/l"},
       [](const v1::StatsGroup& g) {
         const v1::WellIndicators& w = g.wells();
         std::vector<std::vector<std::string>> rows;
         if (w.quality_tests() == 0) return rows;
         rows.push_back({absl::StrCat(w.quality_tests()), absl::StrCat(w.tests_failing_any()),
                         Share(w.tests_failing_any(), w.quality_tests()),
                         absl::StrCat(w.ecoli_failures()), absl::StrCat(w.turbidity_failures()),
                         absl::StrCat(w.arsenic_failures()), absl::StrCat(w.fluoride_failures())});
         return rows;
       }});
  const std::string cutoff =
      response.good_outcome_cutoff().empty() ? "6/18" : response.good_outcome_cutoff();
  sections.push_back({"Cataract surgery",
                      {"SURGERIES", "FEMALE", "WITH IOL", "COMPLICATIONS", "FOLLOW-UP COVERAGE"},
                      [](const v1::StatsGroup& g) {
                        const v1::CataractIndicators& c = g.cataract();
                        std::vector<std::vector<std::string>> rows;
                        if (c.surgeries() == 0) return rows;
                        rows.push_back({absl::StrCat(c.surgeries()), absl::StrCat(c.female()),
                                        absl::StrCat(c.with_iol()),
                                        absl::StrCat(c.with_complications()),
                                        FormatPercent(c.follow_up_coverage())});
                        return rows;
                      }});
  sections.push_back(
      {absl::StrCat("Cataract outcomes by follow-up stage (presenting VA; good: ", cutoff,
                    " or better, borderline: down to 6/60, poor: worse)"),
       {"STAGE", "EXAMINED", "COVERAGE", "GOOD", "GOOD %", "BORDERLINE %", "POOR %"},
       [](const v1::StatsGroup& g) {
         std::vector<std::vector<std::string>> rows;
         if (g.cataract().surgeries() == 0) return rows;
         for (const v1::OutcomeDistribution& o : g.cataract().outcomes()) {
           rows.push_back({StageLabel(o.stage()), absl::StrCat(o.examined()),
                           FormatPercent(o.coverage()), absl::StrCat(o.good()),
                           Share(o.good(), o.examined()), Share(o.borderline(), o.examined()),
                           Share(o.poor(), o.examined())});
         }
         return rows;
       }});
  sections.push_back(
      {"Classroom donations",
       {"DONATIONS", "SCHOOLS", "ITEMS SENT", "ITEMS RECEIVED", "RECEIVED %", "STUDENTS",
        "TEACHERS TRAINED"},
       [](const v1::StatsGroup& g) {
         const v1::ClassroomIndicators& c = g.classrooms();
         std::vector<std::vector<std::string>> rows;
         if (c.donations() == 0) return rows;
         rows.push_back({absl::StrCat(c.donations()), absl::StrCat(c.schools()),
                         absl::StrCat(c.items_dispatched()), absl::StrCat(c.items_received()),
                         Share(c.items_received(), c.items_dispatched()),
                         absl::StrCat(c.students_reached()), absl::StrCat(c.teachers_trained())});
         return rows;
       }});
  sections.push_back(
      {"Spend vs budget", {"CURRENCY", "BUDGET", "SPENT", "SPENT %"}, [](const v1::StatsGroup& g) {
         std::vector<std::vector<std::string>> rows;
         for (const v1::SpendIndicators& s : g.spend()) {
           rows.push_back(
               {s.currency(),
                s.budget_minor() == 0 ? "-" : FormatAmount(s.budget_minor(), s.currency()),
                FormatAmount(s.spent_minor(), s.currency()),
                s.budget_minor() == 0 ? "-" : FormatPercent(s.spent_share())});
         }
         return rows;
       }});
  return sections;
}

void PrintStats(std::ostream& out, const v1::GetStatsResponse& response,
                v1::StatsGrouping grouping) {
  if (response.groups().empty()) {
    out << "(no projects match)\n";
    return;
  }
  bool first = true;
  for (const Section& section : Sections(response)) {
    if (!first) out << "\n";
    first = false;
    out << section.title << "\n";
    std::vector<TableColumn> columns = {{GroupHeader(grouping), 30}};
    for (const std::string& header : section.headers) {
      // Numbers read best right-aligned; the text columns (stage, currency) stay left.
      const bool text = header == "STAGE" || header == "CURRENCY";
      columns.push_back({header, 0, text ? Align::kLeft : Align::kRight});
    }
    Table table(std::move(columns));
    for (const v1::StatsGroup& group : response.groups()) {
      for (std::vector<std::string>& row : section.rows(group)) {
        row.insert(row.begin(), group.label().empty() ? group.key() : group.label());
        table.AddRow(std::move(row));
      }
    }
    if (table.rows() == 0) {
      out << "  (none recorded)\n";
    } else {
      table.Print(out);
    }
  }
}

}  // namespace

absl::Status RunStats(Invocation& inv) {
  const FlagValues& flags = inv.flags();
  v1::GetStatsRequest request;
  if (flags.Has("by")) {
    FS_ASSIGN_OR_RETURN(int grouping, ParseEnum("by", flags.Get("by"),
                                                v1::StatsGrouping_descriptor(), GroupingAliases()));
    request.set_group_by(static_cast<v1::StatsGrouping>(grouping));
  }
  if (flags.Has("kind")) {
    FS_ASSIGN_OR_RETURN(int kind,
                        ParseEnum("kind", flags.Get("kind"), v1::ProjectKind_descriptor()));
    request.set_kind(static_cast<v1::ProjectKind>(kind));
  }
  if (flags.Has("from")) {
    FS_ASSIGN_OR_RETURN(*request.mutable_from_date(), ParseDate("from", flags.Get("from")));
  }
  if (flags.Has("to")) {
    FS_ASSIGN_OR_RETURN(*request.mutable_to_date(), ParseDate("to", flags.Get("to")));
  }
  request.set_partner_id(flags.Get("partner"));
  request.set_country(absl::AsciiStrToUpper(flags.Get("country")));
  v1::GetStatsResponse response;
  FS_RETURN_IF_ERROR(inv.Call("get stats", &TrackerStub::GetStats, request, &response));
  if (inv.json()) {
    PrintJson(inv.out(), response);
  } else {
    PrintStats(inv.out(), response, request.group_by());
  }
  return absl::OkStatus();
}

}  // namespace fieldsync::cli
