// Commands of TrackerService: projects, sites and records (stats is in stats_command.cc).
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/invocation.h"
#include "cli/listing.h"
#include "cli/money.h"
#include "cli/output.h"
#include "cli/records.h"
#include "cli/values.h"
#include "fieldsync/base/status_macros.h"

namespace fieldsync::cli {
namespace {

// The options a project update may change; used to refuse an update that changes nothing.
constexpr const char* kProjectEditFlags[] = {"title", "country", "admin-area", "status", "start",
                                             "end",   "budget",  "currency",   "donor",  "iati-id"};

absl::StatusOr<std::string> ParseCurrency(absl::string_view text) {
  std::string code = absl::AsciiStrToUpper(text);
  bool ok = code.size() == 3;
  for (char c : code) ok = ok && absl::ascii_isupper(static_cast<unsigned char>(c));
  if (!ok) {
    return UsageError(
        absl::StrCat("--currency: must be an ISO 4217 code like USD, got '", text, "'"));
  }
  return code;
}

// Applies the project options given in `flags` to `project`; shared by create and update.
absl::Status ApplyProjectFlags(const FlagValues& flags, v1::Project* project) {
  if (flags.Has("title")) project->set_title(flags.Get("title"));
  if (flags.Has("country")) project->set_country(absl::AsciiStrToUpper(flags.Get("country")));
  if (flags.Has("admin-area")) project->set_admin_area(flags.Get("admin-area"));
  if (flags.Has("donor")) project->set_donor(flags.Get("donor"));
  if (flags.Has("iati-id")) project->set_iati_identifier(flags.Get("iati-id"));
  if (flags.Has("status")) {
    FS_ASSIGN_OR_RETURN(int status,
                        ParseEnum("status", flags.Get("status"), v1::ProjectStatus_descriptor()));
    project->set_status(static_cast<v1::ProjectStatus>(status));
  }
  // An empty value clears an optional date.
  if (flags.Has("start")) {
    std::string start = flags.Get("start");
    if (!start.empty()) {
      FS_ASSIGN_OR_RETURN(start, ParseDate("start", start));
    }
    project->set_start_date(start);
  }
  if (flags.Has("end")) {
    std::string end = flags.Get("end");
    if (!end.empty()) {
      FS_ASSIGN_OR_RETURN(end, ParseDate("end", end));
    }
    project->set_end_date(end);
  }
  if (flags.Has("currency") && !flags.Has("budget")) {
    return UsageError("--currency needs --budget (the amount is in that currency)");
  }
  if (flags.Has("budget")) {
    std::string currency = project->budget().currency();
    if (flags.Has("currency")) {
      FS_ASSIGN_OR_RETURN(currency, ParseCurrency(flags.Get("currency")));
    }
    if (currency.empty()) return UsageError("--budget needs --currency, e.g. --currency USD");
    absl::StatusOr<int64_t> amount = ParseMajorAmount(flags.Get("budget"), currency);
    if (!amount.ok()) return UsageError(absl::StrCat("--budget: ", amount.status().message()));
    project->mutable_budget()->set_amount_minor(*amount);
    project->mutable_budget()->set_currency(currency);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunProjectsList(Invocation& inv) {
  static const auto* const kColumns = new std::vector<Column<v1::Project>>{
      {{"ID"}, [](const v1::Project& p) { return p.id(); }},
      {{"KIND"}, [](const v1::Project& p) { return EnumLabel(p.kind()); }},
      {{"STATUS"}, [](const v1::Project& p) { return EnumLabel(p.status()); }},
      {{"CC"}, [](const v1::Project& p) { return p.country(); }},
      {{"TITLE", 40}, [](const v1::Project& p) { return p.title(); }},
      {{"START"}, [](const v1::Project& p) { return p.start_date(); }},
      {{"END"}, [](const v1::Project& p) { return p.end_date(); }},
      {{"BUDGET", 0, Align::kRight}, [](const v1::Project& p) { return FormatMoney(p.budget()); }},
  };
  const FlagValues& flags = inv.flags();
  v1::ListProjectsRequest request;
  if (flags.Has("kind")) {
    FS_ASSIGN_OR_RETURN(int kind,
                        ParseEnum("kind", flags.Get("kind"), v1::ProjectKind_descriptor()));
    request.set_kind(static_cast<v1::ProjectKind>(kind));
  }
  if (flags.Has("status")) {
    FS_ASSIGN_OR_RETURN(int status,
                        ParseEnum("status", flags.Get("status"), v1::ProjectStatus_descriptor()));
    request.set_status(static_cast<v1::ProjectStatus>(status));
  }
  request.set_country(absl::AsciiStrToUpper(flags.Get("country")));
  request.set_partner_id(flags.Get("partner"));
  request.set_text(flags.Get("text"));
  return ListAndPrint(inv, "projects", &TrackerStub::ListProjects, request,
                      &v1::ListProjectsResponse::projects, *kColumns);
}

absl::Status RunProjectsGet(Invocation& inv) {
  v1::GetProjectRequest request;
  request.set_id(inv.arg(0));
  v1::Project project;
  FS_RETURN_IF_ERROR(inv.Call(absl::StrCat("get project ", inv.arg(0)), &TrackerStub::GetProject,
                              request, &project));
  inv.Print(project);
  return absl::OkStatus();
}

absl::Status RunProjectsCreate(Invocation& inv) {
  v1::CreateProjectRequest request;
  v1::Project& project = *request.mutable_project();
  project.set_partner_id(inv.flags().Get("partner"));
  FS_ASSIGN_OR_RETURN(int kind,
                      ParseEnum("kind", inv.flags().Get("kind"), v1::ProjectKind_descriptor()));
  project.set_kind(static_cast<v1::ProjectKind>(kind));
  FS_RETURN_IF_ERROR(ApplyProjectFlags(inv.flags(), &project));
  v1::Project created;
  FS_RETURN_IF_ERROR(inv.Call("create project", &TrackerStub::CreateProject, request, &created));
  inv.Print(created);
  return absl::OkStatus();
}

absl::Status RunProjectsUpdate(Invocation& inv) {
  bool any = false;
  for (const char* flag : kProjectEditFlags) any = any || inv.flags().Has(flag);
  if (!any) return UsageError("nothing to change: give at least one option to set");
  const std::string what = absl::StrCat("update project ", inv.arg(0));
  v1::GetProjectRequest get;
  get.set_id(inv.arg(0));
  v1::UpdateProjectRequest request;
  FS_RETURN_IF_ERROR(inv.Call(what, &TrackerStub::GetProject, get, request.mutable_project()));
  FS_RETURN_IF_ERROR(ApplyProjectFlags(inv.flags(), request.mutable_project()));
  // Refuse to overwrite a change made by someone else between our read and our write.
  request.set_expected_version(request.project().audit().version());
  v1::Project updated;
  FS_RETURN_IF_ERROR(inv.Call(what, &TrackerStub::UpdateProject, request, &updated));
  inv.Print(updated);
  return absl::OkStatus();
}

absl::Status RunSitesList(Invocation& inv) {
  static const auto* const kColumns = new std::vector<Column<v1::Site>>{
      {{"ID"}, [](const v1::Site& s) { return s.id(); }},
      {{"PROJECT"}, [](const v1::Site& s) { return s.project_id(); }},
      {{"NAME", 30}, [](const v1::Site& s) { return s.name(); }},
      {{"LAT", 0, Align::kRight}, [](const v1::Site& s) { return FormatDouble(s.latitude_deg()); }},
      {{"LON", 0, Align::kRight},
       [](const v1::Site& s) { return FormatDouble(s.longitude_deg()); }},
      {{"ADMIN AREA", 24}, [](const v1::Site& s) { return s.admin_area(); }},
  };
  v1::ListSitesRequest request;
  request.set_project_id(inv.flags().Get("project"));
  return ListAndPrint(inv, "sites", &TrackerStub::ListSites, request, &v1::ListSitesResponse::sites,
                      *kColumns);
}

absl::Status RunSitesGet(Invocation& inv) {
  v1::GetSiteRequest request;
  request.set_id(inv.arg(0));
  v1::Site site;
  FS_RETURN_IF_ERROR(
      inv.Call(absl::StrCat("get site ", inv.arg(0)), &TrackerStub::GetSite, request, &site));
  inv.Print(site);
  return absl::OkStatus();
}

absl::Status RunSitesCreate(Invocation& inv) {
  const FlagValues& flags = inv.flags();
  v1::CreateSiteRequest request;
  v1::Site& site = *request.mutable_site();
  site.set_project_id(flags.Get("project"));
  site.set_name(flags.Get("name"));
  // Only the number format is checked here; the server checks the ranges and names the field.
  FS_ASSIGN_OR_RETURN(double lat, ParseDouble("lat", flags.Get("lat")));
  FS_ASSIGN_OR_RETURN(double lon, ParseDouble("lon", flags.Get("lon")));
  site.set_latitude_deg(lat);
  site.set_longitude_deg(lon);
  site.set_admin_area(flags.Get("admin-area"));
  v1::Site created;
  FS_RETURN_IF_ERROR(inv.Call("create site", &TrackerStub::CreateSite, request, &created));
  inv.Print(created);
  return absl::OkStatus();
}

absl::Status RunRecordsList(Invocation& inv) {
  const FlagValues& flags = inv.flags();
  v1::ListRecordsRequest request;
  FS_RETURN_IF_ERROR(ApplyRecordFilters(flags, &request));
  request.set_partner_id(flags.Get("partner"));
  request.set_country(absl::AsciiStrToUpper(flags.Get("country")));
  return ListAndPrint(inv, "records", &TrackerStub::ListRecords, request,
                      &v1::ListRecordsResponse::records, RecordColumns());
}

absl::Status RunRecordsGet(Invocation& inv) {
  v1::GetRecordRequest request;
  request.set_id(inv.arg(0));
  v1::Record record;
  FS_RETURN_IF_ERROR(
      inv.Call(absl::StrCat("get record ", inv.arg(0)), &TrackerStub::GetRecord, request, &record));
  inv.Print(record);
  return absl::OkStatus();
}

absl::Status RunRecordsCreate(Invocation& inv) {
  v1::CreateRecordRequest request;
  FS_ASSIGN_OR_RETURN(RecordInput input, ReadRecordFlag(inv));
  *request.mutable_record() = std::move(input.record);
  v1::Record created;
  FS_RETURN_IF_ERROR(inv.Call("create record", &TrackerStub::CreateRecord, request, &created));
  inv.Print(created);
  return absl::OkStatus();
}

absl::Status RunRecordsUpdate(Invocation& inv) {
  const std::string& id = inv.arg(0);
  FS_ASSIGN_OR_RETURN(RecordInput input, ReadRecordFlag(inv));
  v1::Record& record = input.record;
  if (!record.id().empty() && record.id() != id) {
    return UsageError(absl::StrCat("the record JSON has id '", record.id(), "', not ", id));
  }
  const std::string what = absl::StrCat("update record ", id);
  v1::GetRecordRequest get;
  get.set_id(id);
  v1::Record current;
  FS_RETURN_IF_ERROR(inv.Call(what, &TrackerStub::GetRecord, get, &current));
  // Whatever the JSON leaves out keeps its current value.
  record.set_id(id);
  if (record.project_id().empty()) record.set_project_id(current.project_id());
  if (record.site_id().empty()) record.set_site_id(current.site_id());
  if (record.body_case() == v1::Record::BODY_NOT_SET &&
      current.body_case() != v1::Record::BODY_NOT_SET) {
    const google::protobuf::FieldDescriptor* body =
        current.GetReflection()->GetOneofFieldDescriptor(
            current, v1::Record::descriptor()->FindOneofByName("body"));
    record.GetReflection()
        ->MutableMessage(&record, body)
        ->CopyFrom(current.GetReflection()->GetMessage(current, body));
  }
  v1::UpdateRecordRequest request;
  *request.mutable_record() = std::move(input.record);
  // Refuse to overwrite a change made by someone else between our read and our write.
  request.set_expected_version(current.audit().version());
  v1::Record updated;
  FS_RETURN_IF_ERROR(inv.Call(what, &TrackerStub::UpdateRecord, request, &updated));
  inv.Print(updated);
  return absl::OkStatus();
}

absl::Status RunRecordsDelete(Invocation& inv) {
  v1::DeleteRecordRequest request;
  request.set_id(inv.arg(0));
  v1::Record deleted;
  FS_RETURN_IF_ERROR(inv.Call(absl::StrCat("delete record ", inv.arg(0)),
                              &TrackerStub::DeleteRecord, request, &deleted));
  if (inv.json()) {
    PrintJson(inv.out(), deleted);
    return absl::OkStatus();
  }
  inv.out() << "Deleted record " << inv.arg(0) << " (" << RecordKindLabel(deleted.kind()) << ", "
            << deleted.record_date() << ", project " << deleted.project_id()
            << "); devices remove it at their next sync.\n";
  return absl::OkStatus();
}

}  // namespace fieldsync::cli
