#include "server/reports.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/model/validate.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/sync/hlc.h"
#include "fieldsync/v1/admin.pb.h"
#include "fieldsync/v1/sync.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "server/enum_names.h"

namespace fieldsync::server {

namespace {

using report::Cell;
using report::CellType;
using report::Column;
using report::TableSchema;

constexpr CellType T = CellType::kText, I = CellType::kInteger, N = CellType::kNumber,
                   B = CellType::kBool, D = CellType::kDate, TS = CellType::kTimestamp;

// --- Cells -------------------------------------------------------------------------------------

Cell Text(std::string s) { return Cell(std::move(s)); }
Cell Int(int64_t v) { return Cell(v); }
Cell Num(double v) { return Cell(v); }
Cell Bool(bool v) { return Cell(v); }
// A date cell, or an empty cell for an unset date.
Cell Date(const std::string& d) { return d.empty() ? Cell() : Cell(d); }

std::string TimestampText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", t, absl::UTCTimeZone());
}
Cell Timestamp(const google::protobuf::Timestamp& ts) {
  return Cell(TimestampText(absl::FromUnixMicros(
      google::protobuf::util::TimeUtil::TimestampToMicroseconds(ts))));
}

int MinorUnits(absl::string_view currency) {
  int units = model::CurrencyMinorUnits(currency);
  return units < 0 ? 2 : units;
}
// Money in major units (12.5 for 1250 USD cents); the currency is its own column.
double Major(int64_t minor, absl::string_view currency) {
  return static_cast<double>(minor) / std::pow(10.0, MinorUnits(currency));
}
std::string MoneyText(int64_t minor, absl::string_view currency) {
  int units = MinorUnits(currency);
  return absl::StrCat(currency, " ", absl::StrFormat("%.*f", units, Major(minor, currency)));
}

// Shortest decimal text that reads back as exactly `v`, as CSV cells write it: 1200, 12.5, 0.1.
std::string ShortestDouble(double v) {
  if (std::isfinite(v)) return report::CellText(report::Cell{v});
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

// A JSON string literal: quotes, backslashes and control characters escaped, UTF-8 kept.
std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += "\"";
  return out;
}

// --- Schemas -----------------------------------------------------------------------------------

std::vector<Column> Cols(std::initializer_list<std::vector<Column>> parts) {
  std::vector<Column> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Columns that open every record row (and the rows of its nested lists).
const std::vector<Column> kLead = {{"record_id", T}, {"partner_id", T}, {"partner_name", T},
                                   {"project_id", T}, {"country", T},   {"site_id", T},
                                   {"record_date", D}};
// Columns that close every document row: who created and last changed it, when, from where.
const std::vector<Column> kTrail = {
    {"created_at_utc", TS}, {"created_by", T},       {"created_by_name", T},
    {"created_device_id", T}, {"updated_at_utc", TS}, {"updated_by", T},
    {"updated_by_name", T}, {"version", I}};

std::map<v1::ReportTable, TableSchema> BuildSchemas() {
  std::map<v1::ReportTable, TableSchema> s;
  s[v1::REPORT_TABLE_PROJECTS] = {
      "projects",
      Cols({{{"project_id", T},
             {"partner_id", T},
             {"partner_name", T},
             {"country", T},
             {"kind", T},
             {"title", T},
             {"admin_area", T},
             {"status", T},
             {"start_date", D},
             {"end_date", D},
             {"budget", N},
             {"currency", T},
             {"donor", T},
             {"iati_identifier", T},
             {"sites", I},
             {"expenditures", I},
             {"spend", N},
             {"spend_share", N},
             {"expenditures_other_currency", I},
             {"wells", I},
             {"wells_functional", I},
             {"wells_partly_functional", I},
             {"wells_not_functional", I},
             {"population_served_functional", I},
             {"surgeries", I},
             {"surgeries_with_day1_follow_up", I},
             {"surgeries_with_weeks_4_12_follow_up", I},
             {"good_outcomes_weeks_4_12", I},
             {"good_outcome_share_weeks_4_12", N},
             {"donations", I},
             {"items_dispatched", I},
             {"items_received", I},
             {"students_reached", I}},
            kTrail})};
  s[v1::REPORT_TABLE_SITES] = {
      "sites",
      Cols({{{"site_id", T},
             {"partner_id", T},
             {"partner_name", T},
             {"project_id", T},
             {"country", T},
             {"name", T},
             {"latitude_deg", N},
             {"longitude_deg", N},
             {"admin_area", T}},
            kTrail})};
  s[v1::REPORT_TABLE_WELLS] = {"wells",
                               Cols({kLead,
                                     {{"drilled_depth_m", N},
                                      {"static_water_level_m", N},
                                      {"yield_lph", N},
                                      {"water_source", T},
                                      {"extraction", T},
                                      {"functional_status", T},
                                      {"population_served", I},
                                      {"commissioned_date", D},
                                      {"visit_date", D},
                                      {"quality_tests", I},
                                      {"notes", T}},
                                     kTrail})};
  s[v1::REPORT_TABLE_WATER_QUALITY_TESTS] = {"water_quality_tests",
                                             Cols({kLead,
                                                   {{"test_index", I},
                                                    {"tested_date", D},
                                                    {"ecoli_cfu_per_100ml", N},
                                                    {"turbidity_ntu", N},
                                                    {"arsenic_ug_per_l", N},
                                                    {"fluoride_mg_per_l", N},
                                                    {"above_who_guideline", T}},
                                                   kTrail})};
  s[v1::REPORT_TABLE_SURGERIES] = {"surgeries",
                                   Cols({kLead,
                                         {{"patient_ref", T},
                                          {"age_years", I},
                                          {"sex", T},
                                          {"eye", T},
                                          {"surgery_date", D},
                                          {"surgeon_ref", T},
                                          {"technique", T},
                                          {"iol_implanted", B},
                                          {"preop_va", T},
                                          {"complications", I},
                                          {"complication_notes", T},
                                          {"follow_ups", I},
                                          {"outcome_weeks_4_12", T}},
                                         kTrail})};
  s[v1::REPORT_TABLE_FOLLOW_UPS] = {"follow_ups",
                                    Cols({kLead,
                                          {{"stage", T},
                                           {"visit_date", D},
                                           {"days_after_surgery", I},
                                           {"presenting_va", T},
                                           {"best_corrected_va", T},
                                           {"outcome", T}},
                                          kTrail})};
  s[v1::REPORT_TABLE_DONATIONS] = {"donations",
                                   Cols({kLead,
                                         {{"school_name", T},
                                          {"delivered_date", D},
                                          {"received_by", T},
                                          {"condition", T},
                                          {"students_reached", I},
                                          {"teachers_trained", I},
                                          {"item_lines", I},
                                          {"quantity_dispatched", I},
                                          {"quantity_received", I}},
                                         kTrail})};
  s[v1::REPORT_TABLE_DONATION_ITEMS] = {"donation_items",
                                        Cols({kLead,
                                              {{"item_index", I},
                                               {"item_type", T},
                                               {"quantity", I},
                                               {"quantity_received", I},
                                               {"quantity_missing", I},
                                               {"unit_value", N},
                                               {"currency", T},
                                               {"line_value", N}},
                                              kTrail})};
  s[v1::REPORT_TABLE_EXPENDITURES] = {"expenditures",
                                      Cols({kLead,
                                            {{"amount", N},
                                             {"currency", T},
                                             {"category", T},
                                             {"spent_date", D},
                                             {"receipt_ref", T},
                                             {"description", T}},
                                            kTrail})};
  // Fixed: offline verifiers read these by name (docs/REPORTS.md).
  s[v1::REPORT_TABLE_AUDIT_TRAIL] = {"audit_trail",
                                     {{"seq", I},
                                      {"server_time_utc", TS},
                                      {"server_time_us", I},
                                      {"actor_id", T},
                                      {"actor_name", T},
                                      {"device_id", T},
                                      {"device_name", T},
                                      {"device_seq", I},
                                      {"device_time_utc", TS},
                                      {"hlc", T},
                                      {"collection", T},
                                      {"doc_id", T},
                                      {"project_id", T},
                                      {"op", T},
                                      {"field", T},
                                      {"old_value", T},
                                      {"new_value", T},
                                      {"outcome", T},
                                      {"prev_hash", T},
                                      {"hash", T},
                                      {"payload_b64", T}}};
  s[v1::REPORT_TABLE_RECONCILIATION] = {"reconciliation",
                                        {{"project_id", T},
                                         {"project_title", T},
                                         {"partner_id", T},
                                         {"partner_name", T},
                                         {"country", T},
                                         {"kind", T},
                                         {"measure", T},
                                         {"expected", N},
                                         {"actual", N},
                                         {"gap", N},
                                         {"unit", T},
                                         {"note", T}}};
  s[v1::REPORT_TABLE_RECONCILIATION_GAPS] = {"reconciliation_gaps",
                                             {{"project_id", T},
                                              {"project_title", T},
                                              {"partner_id", T},
                                              {"partner_name", T},
                                              {"country", T},
                                              {"measure", T},
                                              {"record_id", T},
                                              {"record_kind", T},
                                              {"record_date", D},
                                              {"site_id", T},
                                              {"expected", N},
                                              {"actual", N},
                                              {"detail", T}}};
  return s;
}

const std::map<v1::ReportTable, TableSchema>& Schemas() {
  static const auto* schemas = new std::map<v1::ReportTable, TableSchema>(BuildSchemas());
  return *schemas;
}

// --- Rows --------------------------------------------------------------------------------------

void AppendTrail(std::vector<Cell>& row, const v1::AuditInfo& a, const ReportProvenance& who) {
  row.push_back(Timestamp(a.created_at()));
  row.push_back(Text(a.created_by()));
  row.push_back(Text(who.created_by_name));
  row.push_back(Text(who.created_device_id));
  row.push_back(Timestamp(a.updated_at()));
  row.push_back(Text(a.updated_by()));
  row.push_back(Text(who.updated_by_name));
  row.push_back(Int(a.version()));
}

void AppendLead(std::vector<Cell>& row, const ReportRecord& r) {
  row.push_back(Text(r.record.id()));
  row.push_back(Text(r.who.partner_id));
  row.push_back(Text(r.who.partner_name));
  row.push_back(Text(r.record.project_id()));
  row.push_back(Text(r.who.country));
  row.push_back(Text(r.record.site_id()));
  row.push_back(Date(r.record.record_date()));
}

using RowFn = std::function<absl::Status(absl::Span<const Cell>)>;

double Share(int64_t part, int64_t whole) {
  return whole == 0 ? 0 : static_cast<double>(part) / static_cast<double>(whole);
}

absl::Status ProjectRow(const ReportProject& p, const RowFn& write) {
  const v1::Project& pr = p.project;
  const std::string& cur = pr.budget().currency();
  std::vector<Cell> row;
  row.push_back(Text(pr.id()));
  row.push_back(Text(p.who.partner_id));
  row.push_back(Text(p.who.partner_name));
  row.push_back(Text(pr.country()));
  row.push_back(Text(ShortName(pr.kind())));
  row.push_back(Text(pr.title()));
  row.push_back(Text(pr.admin_area()));
  row.push_back(Text(ShortName(pr.status())));
  row.push_back(Date(pr.start_date()));
  row.push_back(Date(pr.end_date()));
  row.push_back(pr.has_budget() ? Num(Major(pr.budget().amount_minor(), cur)) : Cell());
  row.push_back(Text(cur));
  row.push_back(Text(pr.donor()));
  row.push_back(Text(pr.iati_identifier()));
  row.push_back(Int(p.sites));
  row.push_back(Int(p.expenditures));
  row.push_back(Num(Major(p.spend_minor, cur)));
  row.push_back(pr.budget().amount_minor() > 0 ? Num(Share(p.spend_minor, pr.budget().amount_minor()))
                                               : Cell());
  row.push_back(Int(p.expenditures_other_currency));
  row.push_back(Int(p.wells));
  row.push_back(Int(p.wells_functional));
  row.push_back(Int(p.wells_partly_functional));
  row.push_back(Int(p.wells_not_functional));
  row.push_back(Int(p.population_served_functional));
  row.push_back(Int(p.surgeries));
  row.push_back(Int(p.surgeries_with_day1));
  row.push_back(Int(p.surgeries_with_weeks_4_12));
  row.push_back(Int(p.good_outcomes_weeks_4_12));
  row.push_back(p.surgeries_with_weeks_4_12 > 0
                    ? Num(Share(p.good_outcomes_weeks_4_12, p.surgeries_with_weeks_4_12))
                    : Cell());
  row.push_back(Int(p.donations));
  row.push_back(Int(p.items_dispatched));
  row.push_back(Int(p.items_received));
  row.push_back(Int(p.students_reached));
  AppendTrail(row, pr.audit(), p.who);
  return write(row);
}

absl::Status SiteRow(const ReportSite& s, const RowFn& write) {
  std::vector<Cell> row;
  row.push_back(Text(s.site.id()));
  row.push_back(Text(s.who.partner_id));
  row.push_back(Text(s.who.partner_name));
  row.push_back(Text(s.site.project_id()));
  row.push_back(Text(s.who.country));
  row.push_back(Text(s.site.name()));
  row.push_back(Num(s.site.latitude_deg()));
  row.push_back(Num(s.site.longitude_deg()));
  row.push_back(Text(s.site.admin_area()));
  AppendTrail(row, s.site.audit(), s.who);
  return write(row);
}

// WHO guideline values (docs/ARCHITECTURE.md): a parameter above its value fails.
std::string AboveWho(const v1::WaterQualityTest& t) {
  std::vector<std::string> out;
  if (t.has_ecoli_cfu_per_100ml() && t.ecoli_cfu_per_100ml() > 0) out.push_back("ecoli");
  if (t.has_turbidity_ntu() && t.turbidity_ntu() > 5) out.push_back("turbidity");
  if (t.has_arsenic_ug_per_l() && t.arsenic_ug_per_l() > 10) out.push_back("arsenic");
  if (t.has_fluoride_mg_per_l() && t.fluoride_mg_per_l() > 1.5) out.push_back("fluoride");
  return absl::StrJoin(out, ",");
}

int64_t DaysBetween(const std::string& from, const std::string& to) {
  absl::Time a, b;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%d", from, absl::UTCTimeZone(), &a, &err) ||
      !absl::ParseTime("%Y-%m-%d", to, absl::UTCTimeZone(), &b, &err)) {
    return 0;
  }
  return absl::ToInt64Hours(b - a) / 24;
}

absl::Status RecordRows(v1::ReportTable table, const ReportRecord& r, const RowFn& write) {
  const v1::Record& rec = r.record;
  std::vector<Cell> row;
  switch (table) {
    case v1::REPORT_TABLE_WELLS: {
      const v1::WellRecord& w = rec.well();
      AppendLead(row, r);
      row.push_back(Num(w.drilled_depth_m()));
      row.push_back(Num(w.static_water_level_m()));
      row.push_back(Num(w.yield_lph()));
      row.push_back(Text(ShortName(w.water_source())));
      row.push_back(Text(ShortName(w.extraction())));
      row.push_back(Text(ShortName(w.functional_status())));
      row.push_back(Int(w.population_served()));
      row.push_back(Date(w.commissioned_date()));
      row.push_back(Date(w.visit_date()));
      row.push_back(Int(w.quality_tests_size()));
      row.push_back(Text(w.notes()));
      AppendTrail(row, rec.audit(), r.who);
      return write(row);
    }
    case v1::REPORT_TABLE_WATER_QUALITY_TESTS: {
      const v1::WellRecord& w = rec.well();
      for (int i = 0; i < w.quality_tests_size(); ++i) {
        const v1::WaterQualityTest& t = w.quality_tests(i);
        row.clear();
        AppendLead(row, r);
        row.push_back(Int(i));
        row.push_back(Date(t.tested_date()));
        row.push_back(t.has_ecoli_cfu_per_100ml() ? Num(t.ecoli_cfu_per_100ml()) : Cell());
        row.push_back(t.has_turbidity_ntu() ? Num(t.turbidity_ntu()) : Cell());
        row.push_back(t.has_arsenic_ug_per_l() ? Num(t.arsenic_ug_per_l()) : Cell());
        row.push_back(t.has_fluoride_mg_per_l() ? Num(t.fluoride_mg_per_l()) : Cell());
        row.push_back(Text(AboveWho(t)));
        AppendTrail(row, rec.audit(), r.who);
        FS_RETURN_IF_ERROR(write(row));
      }
      return absl::OkStatus();
    }
    case v1::REPORT_TABLE_SURGERIES: {
      const v1::CataractSurgery& c = rec.cataract_surgery();
      std::string final_outcome;
      for (const v1::FollowUpVisit& f : c.follow_ups()) {
        if (f.stage() == v1::FOLLOW_UP_STAGE_WEEKS_4_12) final_outcome = ShortName(f.outcome());
      }
      AppendLead(row, r);
      row.push_back(Text(c.patient_ref()));
      row.push_back(Int(c.age_years()));
      row.push_back(Text(ShortName(c.sex())));
      row.push_back(Text(ShortName(c.eye())));
      row.push_back(Date(c.surgery_date()));
      row.push_back(Text(c.surgeon_ref()));
      row.push_back(Text(ShortName(c.technique())));
      row.push_back(Bool(c.iol_implanted()));
      row.push_back(Text(c.preop_va()));
      row.push_back(Int(c.complications_size()));
      row.push_back(Text(absl::StrJoin(c.complications(), "; ")));
      row.push_back(Int(c.follow_ups_size()));
      row.push_back(Text(final_outcome));
      AppendTrail(row, rec.audit(), r.who);
      return write(row);
    }
    case v1::REPORT_TABLE_FOLLOW_UPS: {
      const v1::CataractSurgery& c = rec.cataract_surgery();
      for (const v1::FollowUpVisit& f : c.follow_ups()) {
        row.clear();
        AppendLead(row, r);
        row.push_back(Text(ShortName(f.stage())));
        row.push_back(Date(f.visit_date()));
        row.push_back(Int(DaysBetween(c.surgery_date(), f.visit_date())));
        row.push_back(Text(f.presenting_va()));
        row.push_back(Text(f.best_corrected_va()));
        row.push_back(Text(ShortName(f.outcome())));
        AppendTrail(row, rec.audit(), r.who);
        FS_RETURN_IF_ERROR(write(row));
      }
      return absl::OkStatus();
    }
    case v1::REPORT_TABLE_DONATIONS: {
      const v1::ClassroomDonation& d = rec.classroom_donation();
      int64_t dispatched = 0, received = 0;
      for (const v1::DonationItem& item : d.items()) {
        dispatched += item.quantity();
        received += item.quantity_received();
      }
      AppendLead(row, r);
      row.push_back(Text(d.school_name()));
      row.push_back(Date(d.delivered_date()));
      row.push_back(Text(d.received_by()));
      row.push_back(Text(ShortName(d.condition())));
      row.push_back(Int(d.students_reached()));
      row.push_back(Int(d.teachers_trained()));
      row.push_back(Int(d.items_size()));
      row.push_back(Int(dispatched));
      row.push_back(Int(received));
      AppendTrail(row, rec.audit(), r.who);
      return write(row);
    }
    case v1::REPORT_TABLE_DONATION_ITEMS: {
      const v1::ClassroomDonation& d = rec.classroom_donation();
      for (int i = 0; i < d.items_size(); ++i) {
        const v1::DonationItem& item = d.items(i);
        const std::string& cur = item.unit_value().currency();
        row.clear();
        AppendLead(row, r);
        row.push_back(Int(i));
        row.push_back(Text(item.item_type()));
        row.push_back(Int(item.quantity()));
        row.push_back(Int(item.quantity_received()));
        row.push_back(Int(item.quantity() - item.quantity_received()));
        row.push_back(Num(Major(item.unit_value().amount_minor(), cur)));
        row.push_back(Text(cur));
        row.push_back(Num(Major(item.unit_value().amount_minor() * item.quantity(), cur)));
        AppendTrail(row, rec.audit(), r.who);
        FS_RETURN_IF_ERROR(write(row));
      }
      return absl::OkStatus();
    }
    case v1::REPORT_TABLE_EXPENDITURES: {
      const v1::Expenditure& e = rec.expenditure();
      AppendLead(row, r);
      row.push_back(Num(Major(e.amount().amount_minor(), e.amount().currency())));
      row.push_back(Text(e.amount().currency()));
      row.push_back(Text(ShortName(e.category())));
      row.push_back(Date(e.spent_date()));
      row.push_back(Text(e.receipt_ref()));
      row.push_back(Text(e.description()));
      AppendTrail(row, rec.audit(), r.who);
      return write(row);
    }
    default:
      return absl::InternalError("not a record table");
  }
}

v1::RecordKind RecordKindOf(v1::ReportTable table) {
  switch (table) {
    case v1::REPORT_TABLE_WELLS:
    case v1::REPORT_TABLE_WATER_QUALITY_TESTS:
      return v1::RECORD_KIND_WELL;
    case v1::REPORT_TABLE_SURGERIES:
    case v1::REPORT_TABLE_FOLLOW_UPS:
      return v1::RECORD_KIND_CATARACT_SURGERY;
    case v1::REPORT_TABLE_DONATIONS:
    case v1::REPORT_TABLE_DONATION_ITEMS:
      return v1::RECORD_KIND_CLASSROOM_DONATION;
    case v1::REPORT_TABLE_EXPENDITURES:
      return v1::RECORD_KIND_EXPENDITURE;
    default:
      return v1::RECORD_KIND_UNSPECIFIED;
  }
}

// --- Audit trail -------------------------------------------------------------------------------

std::string JsonOf(const google::protobuf::Message& m) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(m, &json, options).ok()) return "";
  return json;
}

// The payload of an admin entry (partner, user, device, token, enrollment, export) as JSON.
std::string AdminPayloadJson(const std::string& collection, const std::string& payload) {
  std::unique_ptr<google::protobuf::Message> m;
  if (collection == "partner") m = std::make_unique<v1::Partner>();
  if (collection == "user") m = std::make_unique<v1::User>();
  if (collection == "device") m = std::make_unique<v1::Device>();
  if (collection == "token") m = std::make_unique<v1::Token>();
  if (collection == "enrollment") m = std::make_unique<v1::CreateEnrollmentRequest>();
  if (collection == "export") m = std::make_unique<v1::ExportManifest>();
  if (m == nullptr || !m->ParseFromString(payload)) return "";
  return JsonOf(*m);
}

bool IsDocumentCollection(const std::string& c) {
  return c == "project" || c == "site" || c == "record";
}

absl::Status AuditRows(const ReportAuditEntry& a, const RowFn& write) {
  const ChangeLogEntry& e = a.entry;
  std::string device_time;
  if (!e.hlc.empty()) {
    absl::StatusOr<sync::Hlc> hlc = sync::Hlc::Decode(e.hlc);
    if (hlc.ok()) device_time = TimestampText(absl::FromUnixMillis(hlc->wall_ms));
  }
  std::vector<Cell> row;
  auto emit = [&](const std::string& field, const std::string& old_value,
                  const std::string& new_value, const std::string& outcome,
                  bool first) -> absl::Status {
    row.clear();
    row.push_back(Int(e.seq));
    row.push_back(Text(TimestampText(e.server_time)));
    row.push_back(Int(absl::ToUnixMicros(e.server_time)));
    row.push_back(Text(e.actor_id));
    row.push_back(Text(a.actor_name));
    row.push_back(Text(e.device_id));
    row.push_back(Text(a.device_name));
    row.push_back(Int(e.device_seq));
    row.push_back(device_time.empty() ? Cell() : Text(device_time));
    row.push_back(Text(e.hlc));
    row.push_back(Text(e.collection));
    row.push_back(Text(e.doc_id));
    row.push_back(Text(a.project_id));
    row.push_back(Text(e.op));
    row.push_back(Text(field));
    row.push_back(Text(old_value));
    row.push_back(Text(new_value));
    row.push_back(Text(outcome));
    row.push_back(Text(e.prev_hash));
    row.push_back(Text(e.hash));
    row.push_back(Text(first ? absl::Base64Escape(e.payload) : std::string()));
    return write(row);
  };
  v1::Change change;
  if (IsDocumentCollection(e.collection) && change.ParseFromString(e.payload) &&
      change.fields_size() > 0) {
    std::map<std::string, const ReportAuditEntry::Field*> by_path;
    for (const ReportAuditEntry::Field& f : a.fields) by_path[f.path] = &f;
    bool first = true;
    for (const v1::FieldChange& f : change.fields()) {
      auto it = by_path.find(f.path());
      std::string old_value, outcome;
      if (it != by_path.end()) {
        old_value = FieldValueText(e.collection, f.path(), it->second->old_value);
        outcome = it->second->outcome;
      }
      if (e.op == "reject") outcome = "refused";  // nothing of it was applied
      FS_RETURN_IF_ERROR(emit(f.path(), old_value,
                              FieldValueText(e.collection, f.path(), f.value()), outcome, first));
      first = false;
    }
    return absl::OkStatus();
  }
  return emit("", "", AdminPayloadJson(e.collection, e.payload), "applied", true);
}

// --- Reconciliation ----------------------------------------------------------------------------

struct Measure {
  const char* name;
  double expected;
  double actual;
  std::string unit;
  std::string note;
  // expected - actual where subtracting the doubles would add noise (money: from minor units).
  std::optional<double> gap = std::nullopt;
};

std::vector<Measure> MeasuresOf(const ReportProject& p) {
  std::vector<Measure> out;
  switch (p.project.kind()) {
    case v1::PROJECT_KIND_WELL:
      out.push_back({"functional_vs_recorded_water_points", static_cast<double>(p.wells),
                     static_cast<double>(p.wells_functional), "water points",
                     absl::StrCat(p.wells_partly_functional, " partly functional, ",
                                  p.wells_not_functional, " not functional")});
      break;
    case v1::PROJECT_KIND_CATARACT:
      out.push_back({"day1_follow_ups_vs_surgeries", static_cast<double>(p.surgeries),
                     static_cast<double>(p.surgeries_with_day1), "surgeries", ""});
      out.push_back({"weeks_4_12_follow_ups_vs_surgeries", static_cast<double>(p.surgeries),
                     static_cast<double>(p.surgeries_with_weeks_4_12), "surgeries", ""});
      break;
    case v1::PROJECT_KIND_CLASSROOM:
      out.push_back({"items_received_vs_dispatched", static_cast<double>(p.items_dispatched),
                     static_cast<double>(p.items_received), "items",
                     absl::StrCat(p.donations, " donations")});
      break;
    default:
      break;
  }
  const std::string& cur = p.project.budget().currency();
  std::string note;
  if (p.expenditures_other_currency > 0) {
    note = absl::StrCat(p.expenditures_other_currency, " expenditures in another currency than ",
                        cur.empty() ? "the budget's (none set)" : cur, " not counted");
  }
  out.push_back({"spend_vs_budget", Major(p.project.budget().amount_minor(), cur),
                 Major(p.spend_minor, cur), cur, note,
                 Major(p.project.budget().amount_minor() - p.spend_minor, cur)});
  return out;
}

int64_t MeasureCount(v1::ProjectKind kind) {
  switch (kind) {
    case v1::PROJECT_KIND_WELL:
      return 2;
    case v1::PROJECT_KIND_CATARACT:
      return 3;
    case v1::PROJECT_KIND_CLASSROOM:
      return 2;
    default:
      return 1;
  }
}

absl::Status ReconciliationRows(const ReportProject& p, const RowFn& write) {
  for (const Measure& m : MeasuresOf(p)) {
    std::vector<Cell> row = {Text(p.project.id()),  Text(p.project.title()),
                             Text(p.who.partner_id), Text(p.who.partner_name),
                             Text(p.who.country),    Text(ShortName(p.project.kind())),
                             Text(m.name),           Num(m.expected),
                             Num(m.actual),          Num(m.gap.value_or(m.expected - m.actual)),
                             Text(m.unit),           Text(m.note)};
    FS_RETURN_IF_ERROR(write(row));
  }
  return absl::OkStatus();
}

// The records behind each gap of one project.
absl::Status GapRows(ReportSnapshot& snapshot, const ReportQuery& query, const ReportProject& p,
                     const RowFn& write) {
  ReportQuery q = query;
  q.project_id = p.project.id();
  auto emit = [&](const char* measure, const ReportRecord& r, double expected, double actual,
                  const std::string& detail) {
    std::vector<Cell> row = {Text(p.project.id()),
                             Text(p.project.title()),
                             Text(p.who.partner_id),
                             Text(p.who.partner_name),
                             Text(p.who.country),
                             Text(measure),
                             Text(r.record.id()),
                             Text(ShortName(r.record.kind())),
                             Date(r.record.record_date()),
                             Text(r.record.site_id()),
                             Num(expected),
                             Num(actual),
                             Text(detail)};
    return write(row);
  };
  switch (p.project.kind()) {
    case v1::PROJECT_KIND_WELL:
      if (p.wells_functional < p.wells) {
        FS_RETURN_IF_ERROR(snapshot.ScanRecords(
            q, v1::RECORD_KIND_WELL, [&](const ReportRecord& r) -> absl::Status {
              const v1::WellRecord& w = r.record.well();
              if (w.functional_status() == v1::FUNCTIONAL_STATUS_FUNCTIONAL) return absl::OkStatus();
              return emit("functional_vs_recorded_water_points", r, 1, 0,
                          absl::StrCat(ShortName(w.functional_status()), " at the visit of ",
                                       w.visit_date(), "; serves ", w.population_served(),
                                       " people"));
            }));
      }
      break;
    case v1::PROJECT_KIND_CATARACT:
      if (p.surgeries_with_day1 < p.surgeries || p.surgeries_with_weeks_4_12 < p.surgeries) {
        FS_RETURN_IF_ERROR(snapshot.ScanRecords(
            q, v1::RECORD_KIND_CATARACT_SURGERY, [&](const ReportRecord& r) -> absl::Status {
              const v1::CataractSurgery& c = r.record.cataract_surgery();
              bool day1 = false, final_visit = false;
              for (const v1::FollowUpVisit& f : c.follow_ups()) {
                day1 |= f.stage() == v1::FOLLOW_UP_STAGE_DAY_1;
                final_visit |= f.stage() == v1::FOLLOW_UP_STAGE_WEEKS_4_12;
              }
              std::string what = absl::StrCat("surgery of ", c.surgery_date(), " (patient ",
                                              c.patient_ref(), ", ", ShortName(c.eye()),
                                              " eye): no ");
              if (!day1) {
                FS_RETURN_IF_ERROR(emit("day1_follow_ups_vs_surgeries", r, 1, 0,
                                        absl::StrCat(what, "DAY_1 follow-up")));
              }
              if (!final_visit) {
                FS_RETURN_IF_ERROR(emit("weeks_4_12_follow_ups_vs_surgeries", r, 1, 0,
                                        absl::StrCat(what, "WEEKS_4_12 follow-up")));
              }
              return absl::OkStatus();
            }));
      }
      break;
    case v1::PROJECT_KIND_CLASSROOM:
      if (p.items_received < p.items_dispatched) {
        FS_RETURN_IF_ERROR(snapshot.ScanRecords(
            q, v1::RECORD_KIND_CLASSROOM_DONATION, [&](const ReportRecord& r) -> absl::Status {
              const v1::ClassroomDonation& d = r.record.classroom_donation();
              int64_t dispatched = 0, received = 0;
              std::vector<std::string> short_lines;
              for (const v1::DonationItem& item : d.items()) {
                dispatched += item.quantity();
                received += item.quantity_received();
                if (item.quantity_received() < item.quantity()) {
                  short_lines.push_back(absl::StrCat(item.item_type(), ": ", item.quantity(),
                                                     " dispatched, ", item.quantity_received(),
                                                     " received"));
                }
              }
              if (received >= dispatched) return absl::OkStatus();
              return emit("items_received_vs_dispatched", r, static_cast<double>(dispatched),
                          static_cast<double>(received),
                          absl::StrCat(d.school_name(), ", delivered ", d.delivered_date(), ": ",
                                       absl::StrJoin(short_lines, "; ")));
            }));
      }
      break;
    default:
      break;
  }
  const std::string& cur = p.project.budget().currency();
  const bool over = p.spend_minor > p.project.budget().amount_minor();
  if (over || p.expenditures_other_currency > 0) {
    FS_RETURN_IF_ERROR(snapshot.ScanRecords(
        q, v1::RECORD_KIND_EXPENDITURE, [&](const ReportRecord& r) -> absl::Status {
          const v1::Expenditure& e = r.record.expenditure();
          const v1::Money& m = e.amount();
          if (m.currency() != cur) {
            return emit("spend_vs_budget", r, 0, Major(m.amount_minor(), m.currency()),
                        absl::StrCat(MoneyText(m.amount_minor(), m.currency()), " ",
                                     ShortName(e.category()), ": in another currency than the "
                                     "budget's (", cur.empty() ? "none" : cur,
                                     "), not counted against it"));
          }
          if (!over) return absl::OkStatus();
          return emit("spend_vs_budget", r, 0, Major(m.amount_minor(), cur),
                      absl::StrCat(MoneyText(m.amount_minor(), cur), " ", ShortName(e.category()),
                                   " on ", e.spent_date(), " (receipt ", e.receipt_ref(),
                                   ") counts toward a spend of ", MoneyText(p.spend_minor, cur),
                                   " over the budget of ",
                                   MoneyText(p.project.budget().amount_minor(), cur)));
        }));
  }
  return absl::OkStatus();
}

// --- IATI --------------------------------------------------------------------------------------

int IatiStatus(v1::ProjectStatus s) {
  switch (s) {
    case v1::PROJECT_STATUS_PLANNED:
      return 1;  // Pipeline/identification
    case v1::PROJECT_STATUS_ACTIVE:
      return 2;  // Implementation
    case v1::PROJECT_STATUS_COMPLETED:
      return 4;  // Closed
    case v1::PROJECT_STATUS_CANCELLED:
      return 5;  // Cancelled
    default:
      return 2;
  }
}

int DacSector(v1::ProjectKind k) {
  switch (k) {
    case v1::PROJECT_KIND_WELL:
      return 14031;  // Basic drinking water supply
    case v1::PROJECT_KIND_CATARACT:
      return 12191;  // Medical services
    case v1::PROJECT_KIND_CLASSROOM:
      return 11220;  // Primary education
    default:
      return 0;
  }
}

std::string DateOf(const google::protobuf::Timestamp& ts) {
  return absl::FormatTime("%Y-%m-%d",
                          absl::FromUnixMicros(
                              google::protobuf::util::TimeUtil::TimestampToMicroseconds(ts)),
                          absl::UTCTimeZone());
}

report::IatiIndicator Indicator(std::string title, int measure, std::string description,
                                const std::string& start, const std::string& end, double actual) {
  report::IatiIndicator ind;
  ind.title = std::move(title);
  ind.measure = measure;
  ind.ascending = true;
  ind.description = std::move(description);
  report::IatiIndicatorPeriod period;
  period.start_date = start;
  period.end_date = end;
  period.actual = actual;
  ind.periods.push_back(period);
  return ind;
}

absl::StatusOr<report::IatiActivity> ActivityOf(ReportSnapshot& snapshot, const ReportQuery& query,
                                                const ReportProject& p,
                                                const IatiReporting& reporting,
                                                absl::string_view today) {
  const v1::Project& pr = p.project;
  report::IatiActivity a;
  a.identifier = pr.iati_identifier().empty() ? absl::StrCat(reporting.ref, "-", pr.id())
                                              : pr.iati_identifier();
  a.default_currency = pr.budget().currency();
  a.title = pr.title();
  a.description = absl::StrCat(ShortName(pr.kind()) == "WELL"       ? "Water points"
                               : ShortName(pr.kind()) == "CATARACT" ? "Free cataract surgery"
                                                                    : "Classroom equipment",
                               " project run by ", p.who.partner_name, " in ",
                               pr.admin_area().empty() ? pr.country() : pr.admin_area(), ", ",
                               pr.country(), ".");
  if (!pr.donor().empty()) a.participating_orgs.push_back({"", pr.donor(), 0, 1});
  a.participating_orgs.push_back({reporting.ref, reporting.name, reporting.type, 3});
  a.participating_orgs.push_back({"", p.who.partner_name, 22, 4});
  a.status = IatiStatus(pr.status());
  const std::string created = DateOf(pr.audit().created_at());
  const std::string start = pr.start_date().empty() ? created : pr.start_date();
  if (pr.status() == v1::PROJECT_STATUS_PLANNED || pr.status() == v1::PROJECT_STATUS_CANCELLED) {
    a.planned_start = start;
    a.planned_end = pr.end_date();
  } else {
    a.actual_start = start;
    if (pr.status() == v1::PROJECT_STATUS_COMPLETED) {
      a.actual_end = pr.end_date();
    } else {
      a.planned_end = pr.end_date();
    }
  }
  a.recipient_country = pr.country();
  a.dac_sector = DacSector(pr.kind());
  if (!pr.budget().currency().empty() && !pr.start_date().empty() && !pr.end_date().empty()) {
    a.budget_minor = pr.budget().amount_minor();
    a.budget_minor_units = MinorUnits(pr.budget().currency());
    a.budget_period_start = pr.start_date();
    a.budget_period_end = pr.end_date();
    a.budget_value_date = pr.start_date();
  }
  a.last_updated = absl::FormatTime(
      "%Y-%m-%dT%H:%M:%SZ",
      absl::FromUnixMicros(
          google::protobuf::util::TimeUtil::TimestampToMicroseconds(pr.audit().updated_at())),
      absl::UTCTimeZone());

  ReportQuery q = query;
  q.project_id = pr.id();
  FS_RETURN_IF_ERROR(snapshot.ScanSites(q, [&](const ReportSite& s) {
    a.locations.push_back(
        {s.site.id(), s.site.name(), s.site.latitude_deg(), s.site.longitude_deg()});
    return absl::OkStatus();
  }));
  FS_RETURN_IF_ERROR(
      snapshot.ScanRecords(q, v1::RECORD_KIND_EXPENDITURE, [&](const ReportRecord& r) {
        const v1::Expenditure& e = r.record.expenditure();
        report::IatiTransaction t;
        t.ref = r.record.id();
        t.type = 4;
        t.date = e.spent_date();
        t.amount_minor = e.amount().amount_minor();
        t.currency = e.amount().currency();
        t.minor_units = MinorUnits(t.currency);
        t.description = e.description().empty()
                            ? absl::StrCat(ShortName(e.category()), " (receipt ", e.receipt_ref(), ")")
                            : e.description();
        a.transactions.push_back(std::move(t));
        return absl::OkStatus();
      }));

  // Results over the reported period: the filter's, within the project's dates.
  std::string from = query.from_date.empty() ? start : std::max(query.from_date, start);
  std::string to = query.to_date.empty() ? std::string(today) : query.to_date;
  if (!pr.end_date().empty() && pr.end_date() < to) to = pr.end_date();
  if (to < from) to = from;
  report::IatiResult result;
  result.type = 1;  // output
  switch (pr.kind()) {
    case v1::PROJECT_KIND_WELL:
      result.title = "Water points delivering safe water";
      result.indicators.push_back(Indicator("Functional water points", 1,
                                            "Water points recorded as FUNCTIONAL at their last visit",
                                            from, to, static_cast<double>(p.wells_functional)));
      result.indicators.push_back(Indicator("People served by functional water points", 1,
                                            "Population drawing water at functional water points",
                                            from, to,
                                            static_cast<double>(p.population_served_functional)));
      break;
    case v1::PROJECT_KIND_CATARACT:
      result.title = "Sight restored by cataract surgery";
      result.indicators.push_back(Indicator("Cataract surgeries performed", 1,
                                            "Operated eyes recorded", from, to,
                                            static_cast<double>(p.surgeries)));
      result.indicators.push_back(Indicator(
          "Good visual outcome at 4-12 weeks (%)", 2,
          "Share of eyes examined at 4-12 weeks with presenting acuity 6/18 or better (WHO)", from,
          to,
          std::round(1000.0 * Share(p.good_outcomes_weeks_4_12, p.surgeries_with_weeks_4_12)) /
              10.0));
      break;
    case v1::PROJECT_KIND_CLASSROOM:
      result.title = "Schools equipped";
      result.indicators.push_back(Indicator("Items received by schools", 1,
                                            "Donated items the schools confirmed receiving", from,
                                            to, static_cast<double>(p.items_received)));
      result.indicators.push_back(Indicator("Students reached", 1,
                                            "Students using the donated equipment", from, to,
                                            static_cast<double>(p.students_reached)));
      break;
    default:
      break;
  }
  // A project still in the pipeline has no results to report yet.
  if (!result.indicators.empty() && pr.status() != v1::PROJECT_STATUS_PLANNED) {
    a.results.push_back(std::move(result));
  }
  return a;
}

}  // namespace

// --- Public ------------------------------------------------------------------------------------

std::string ReportTableName(v1::ReportTable table) {
  if (table == v1::REPORT_TABLE_IATI_ACTIVITIES) return "iati_activities";
  auto it = Schemas().find(table);
  return it == Schemas().end() ? "" : it->second.name;
}

const TableSchema& TableSchemaOf(v1::ReportTable table) {
  static const TableSchema* empty = new TableSchema();
  auto it = Schemas().find(table);
  return it == Schemas().end() ? *empty : it->second;
}

absl::StatusOr<int64_t> TableRowCount(ReportSnapshot& snapshot, const ReportQuery& query,
                                      const ReportCounts& c, v1::ReportTable table) {
  switch (table) {
    case v1::REPORT_TABLE_PROJECTS:
    case v1::REPORT_TABLE_IATI_ACTIVITIES:
      return c.projects;
    case v1::REPORT_TABLE_SITES:
      return c.sites;
    case v1::REPORT_TABLE_WELLS:
    case v1::REPORT_TABLE_SURGERIES:
    case v1::REPORT_TABLE_DONATIONS:
    case v1::REPORT_TABLE_EXPENDITURES:
      return c.records[RecordKindOf(table)];
    case v1::REPORT_TABLE_WATER_QUALITY_TESTS:
      return c.water_quality_tests;
    case v1::REPORT_TABLE_FOLLOW_UPS:
      return c.follow_ups;
    case v1::REPORT_TABLE_DONATION_ITEMS:
      return c.donation_items;
    case v1::REPORT_TABLE_AUDIT_TRAIL:
      return c.audit_rows;
    case v1::REPORT_TABLE_RECONCILIATION: {
      int64_t n = 0;
      for (int k = 0; k < 4; ++k) {
        n += c.projects_by_kind[k] * MeasureCount(static_cast<v1::ProjectKind>(k));
      }
      return n;
    }
    case v1::REPORT_TABLE_RECONCILIATION_GAPS: {
      // No SQL count says which records explain a gap: count them by the same code.
      int64_t n = 0;
      FS_RETURN_IF_ERROR(WriteTableRows(snapshot, query, table,
                                        [&](absl::Span<const Cell>) {
                                          ++n;
                                          return absl::OkStatus();
                                        }));
      return n;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("tables: unknown table ", table));
  }
}

absl::Status WriteTableRows(ReportSnapshot& snapshot, const ReportQuery& query,
                            v1::ReportTable table, const RowFn& write) {
  switch (table) {
    case v1::REPORT_TABLE_PROJECTS:
      return snapshot.ScanProjects(query,
                                   [&](const ReportProject& p) { return ProjectRow(p, write); });
    case v1::REPORT_TABLE_SITES:
      return snapshot.ScanSites(query, [&](const ReportSite& s) { return SiteRow(s, write); });
    case v1::REPORT_TABLE_WELLS:
    case v1::REPORT_TABLE_WATER_QUALITY_TESTS:
    case v1::REPORT_TABLE_SURGERIES:
    case v1::REPORT_TABLE_FOLLOW_UPS:
    case v1::REPORT_TABLE_DONATIONS:
    case v1::REPORT_TABLE_DONATION_ITEMS:
    case v1::REPORT_TABLE_EXPENDITURES:
      return snapshot.ScanRecords(query, RecordKindOf(table), [&](const ReportRecord& r) {
        return RecordRows(table, r, write);
      });
    case v1::REPORT_TABLE_AUDIT_TRAIL:
      return snapshot.ScanAuditTrail(query,
                                     [&](const ReportAuditEntry& a) { return AuditRows(a, write); });
    case v1::REPORT_TABLE_RECONCILIATION:
      return snapshot.ScanProjects(
          query, [&](const ReportProject& p) { return ReconciliationRows(p, write); });
    case v1::REPORT_TABLE_RECONCILIATION_GAPS:
      return snapshot.ScanProjects(
          query, [&](const ReportProject& p) { return GapRows(snapshot, query, p, write); });
    default:
      return absl::InvalidArgumentError(absl::StrCat("tables: no rows for table ", table));
  }
}

absl::Status WriteIatiActivities(
    ReportSnapshot& snapshot, const ReportQuery& query, const IatiReporting& reporting,
    absl::string_view today, const std::function<absl::Status(const report::IatiActivity&)>& write) {
  return snapshot.ScanProjects(query, [&](const ReportProject& p) -> absl::Status {
    FS_ASSIGN_OR_RETURN(report::IatiActivity a, ActivityOf(snapshot, query, p, reporting, today));
    return write(a);
  });
}

std::string FieldValueText(absl::string_view collection, absl::string_view path,
                           absl::string_view value) {
  if (path == sync::kDeletedPath) return value.empty() ? "false" : "true";
  if (value.empty()) return "";
  const google::protobuf::Message* proto = sync::PrototypeFor(collection);
  if (proto == nullptr) return absl::Base64Escape(value);
  std::unique_ptr<google::protobuf::Message> m(proto->New());
  if (!sync::Assemble({{std::string(path), std::string(value)}}, m.get()).ok()) {
    return absl::Base64Escape(value);
  }
  sync::DocumentPath where = sync::ResolvePath(*m->GetDescriptor(), path);
  const google::protobuf::Message* holder = m.get();
  if (where.member != nullptr) {
    holder = &m->GetReflection()->GetMessage(*m, where.member);
  }
  const google::protobuf::FieldDescriptor* f = where.field != nullptr ? where.field : where.member;
  if (f == nullptr) return absl::Base64Escape(value);
  if (where.field == nullptr) return JsonOf(*holder);  // a whole (empty) oneof member
  const google::protobuf::Reflection* r = holder->GetReflection();
  using FD = google::protobuf::FieldDescriptor;
  auto scalar = [&](int index, bool quote) -> std::string {
    const bool rep = f->is_repeated();
    std::string s;
    switch (f->cpp_type()) {
      case FD::CPPTYPE_INT32:
        return absl::StrCat(rep ? r->GetRepeatedInt32(*holder, f, index) : r->GetInt32(*holder, f));
      case FD::CPPTYPE_INT64:
        return absl::StrCat(rep ? r->GetRepeatedInt64(*holder, f, index) : r->GetInt64(*holder, f));
      case FD::CPPTYPE_UINT32:
        return absl::StrCat(rep ? r->GetRepeatedUInt32(*holder, f, index) : r->GetUInt32(*holder, f));
      case FD::CPPTYPE_UINT64:
        return absl::StrCat(rep ? r->GetRepeatedUInt64(*holder, f, index) : r->GetUInt64(*holder, f));
      case FD::CPPTYPE_DOUBLE:
        return ShortestDouble(rep ? r->GetRepeatedDouble(*holder, f, index) : r->GetDouble(*holder, f));
      case FD::CPPTYPE_FLOAT:
        return ShortestDouble(rep ? r->GetRepeatedFloat(*holder, f, index) : r->GetFloat(*holder, f));
      case FD::CPPTYPE_BOOL:
        return (rep ? r->GetRepeatedBool(*holder, f, index) : r->GetBool(*holder, f)) ? "true" : "false";
      case FD::CPPTYPE_ENUM:
        s = internal::ShortName(f->enum_type(),
                                rep ? r->GetRepeatedEnumValue(*holder, f, index)
                                    : r->GetEnumValue(*holder, f));
        break;
      case FD::CPPTYPE_STRING:
        s = rep ? r->GetRepeatedString(*holder, f, index) : r->GetString(*holder, f);
        if (f->type() == FD::TYPE_BYTES) s = absl::Base64Escape(s);
        break;
      case FD::CPPTYPE_MESSAGE:
        return JsonOf(rep ? r->GetRepeatedMessage(*holder, f, index) : r->GetMessage(*holder, f));
    }
    if (!quote) return s;
    return JsonQuote(s);
  };
  if (f->is_repeated()) {
    std::vector<std::string> items;
    for (int i = 0; i < r->FieldSize(*holder, f); ++i) items.push_back(scalar(i, true));
    return absl::StrCat("[", absl::StrJoin(items, ","), "]");
  }
  return scalar(0, false);
}

}  // namespace fieldsync::server
