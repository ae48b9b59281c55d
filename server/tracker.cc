#include "server/tracker.h"

#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/model/validate.h"
#include "fieldsync/model/visual_acuity.h"
#include "google/protobuf/util/time_util.h"

namespace fieldsync::server {

namespace {

constexpr absl::string_view kPageTokenPrefix = "fsp1:";

// A reference to a project that does not exist (or that the caller may not see) is bad input,
// exactly as the store reports it.
constexpr absl::StatusCode kReference = absl::StatusCode::kInvalidArgument;

// For a field device, another partner's row answers exactly like a missing one.
bool Hidden(const Principal& who, absl::string_view partner_id) {
  return who.partner_bound() && who.partner_id() != partner_id;
}

absl::Status CheckFilterId(absl::string_view path, absl::string_view id) {
  return model::ValidateId(path, id, /*allow_empty=*/true);
}

absl::Status CheckFilterCountry(absl::string_view path, absl::string_view country) {
  if (country.empty() || model::IsCountryCode(country)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": not an ISO 3166-1 alpha-2 country code, got \"", country, "\""));
}

template <typename E>
absl::Status CheckFilterEnum(absl::string_view path, E value, bool (*valid)(int)) {
  if (valid(static_cast<int>(value))) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(path, ": unknown value ", static_cast<int>(value)));
}

absl::Status CheckDateRange(absl::string_view from, absl::string_view to) {
  FS_RETURN_IF_ERROR(model::ValidateOptionalDate("from_date", from));
  FS_RETURN_IF_ERROR(model::ValidateOptionalDate("to_date", to));
  if (!from.empty() && !to.empty() && from > to) {
    return absl::InvalidArgumentError(
        absl::StrCat("to_date: must not be before from_date (", from, "), got ", to));
  }
  return absl::OkStatus();
}

// Fills what the server derives: kind, record date and the WHO outcome of each follow-up.
absl::Status DeriveRecordFields(v1::Record& r) {
  r.set_kind(model::KindOf(r));
  r.set_record_date(model::RecordDateOf(r));
  if (r.has_cataract_surgery()) {
    for (v1::FollowUpVisit& f : *r.mutable_cataract_surgery()->mutable_follow_ups()) {
      FS_ASSIGN_OR_RETURN(model::VisualAcuity va,
                          model::ParseVisualAcuity(f.presenting_va(), "presenting_va"));
      f.set_outcome(model::OutcomeOf(va));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string EncodePageToken(absl::string_view last_id) {
  std::string out;
  absl::WebSafeBase64Escape(absl::StrCat(kPageTokenPrefix, last_id), &out);
  return out;
}

absl::StatusOr<std::string> DecodePageToken(absl::string_view token) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) || !absl::StartsWith(raw, kPageTokenPrefix) ||
      !IsUuid(raw.substr(kPageTokenPrefix.size()))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_token: not a token from a previous page, got \"", token.substr(0, 60), "\""));
  }
  return raw.substr(kPageTokenPrefix.size());
}

absl::StatusOr<PageRequest> PageFor(int32_t page_size, absl::string_view page_token) {
  if (page_size < 0 || page_size > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be within [0, 1000], got ", page_size));
  }
  PageRequest page;
  page.page_size = (page_size == 0 ? 100 : page_size) + 1;
  if (!page_token.empty()) {
    FS_ASSIGN_OR_RETURN(page.after_id, DecodePageToken(page_token));
  }
  return page;
}

absl::StatusOr<v1::Project> Tracker::VisibleProject(const Principal& who,
                                                    absl::string_view field,
                                                    absl::string_view id,
                                                    absl::StatusCode missing) {
  absl::StatusOr<v1::Project> p = store_.GetProject(id);
  if ((p.ok() && Hidden(who, p->partner_id())) ||
      p.status().code() == absl::StatusCode::kNotFound) {
    return absl::Status(missing, absl::StrCat(field, ": no project with id \"", id, "\""));
  }
  return p;
}

// --- Projects ----------------------------------------------------------------------------------

absl::StatusOr<v1::Project> Tracker::CreateProject(const Principal& who, v1::Project project) {
  if (project.status() == v1::PROJECT_STATUS_UNSPECIFIED) {
    project.set_status(v1::PROJECT_STATUS_PLANNED);
  }
  FS_RETURN_IF_ERROR(model::ValidateProject(project));
  if (project.id().empty()) project.set_id(NewUuidV7());
  if (Hidden(who, project.partner_id())) {
    return absl::PermissionDeniedError("project.partner_id: not your partner");
  }
  return store_.CreateProject(project, who.actor());
}

absl::StatusOr<v1::Project> Tracker::UpdateProject(const Principal& who, v1::Project project,
                                                   int64_t expected_version) {
  FS_RETURN_IF_ERROR(model::ValidateId("project.id", project.id(), /*allow_empty=*/false));
  FS_ASSIGN_OR_RETURN(v1::Project current, VisibleProject(who, "project.id", project.id(), absl::StatusCode::kNotFound));
  // partner_id and kind are fixed at creation; an update may leave them out.
  if (project.partner_id().empty()) project.set_partner_id(current.partner_id());
  if (project.kind() == v1::PROJECT_KIND_UNSPECIFIED) project.set_kind(current.kind());
  if (project.status() == v1::PROJECT_STATUS_UNSPECIFIED) project.set_status(current.status());
  FS_RETURN_IF_ERROR(model::ValidateProject(project));
  return store_.UpdateProject(project, expected_version, who.actor());
}

absl::StatusOr<v1::Project> Tracker::GetProject(const Principal& who, absl::string_view id) {
  FS_RETURN_IF_ERROR(model::ValidateId("id", id, /*allow_empty=*/false));
  return VisibleProject(who, "id", id, absl::StatusCode::kNotFound);
}

absl::StatusOr<v1::ListProjectsResponse> Tracker::ListProjects(
    const Principal& who, const v1::ListProjectsRequest& request) {
  FS_RETURN_IF_ERROR(CheckFilterEnum("kind", request.kind(), v1::ProjectKind_IsValid));
  FS_RETURN_IF_ERROR(CheckFilterEnum("status", request.status(), v1::ProjectStatus_IsValid));
  FS_RETURN_IF_ERROR(CheckFilterCountry("country", request.country()));
  FS_RETURN_IF_ERROR(CheckFilterId("partner_id", request.partner_id()));
  if (request.text().size() > 200) {
    return absl::InvalidArgumentError(
        absl::StrCat("text: must be at most 200 bytes, got ", request.text().size()));
  }
  FS_ASSIGN_OR_RETURN(PageRequest page, PageFor(request.page_size(), request.page_token()));
  FS_ASSIGN_OR_RETURN(std::vector<v1::Project> rows,
                      store_.ListProjects(request, who.scope(), page));
  v1::ListProjectsResponse out;
  out.set_next_page_token(FinishPage<v1::Project>(
      rows, page, [](const v1::Project& p) { return p.id(); }));
  for (v1::Project& p : rows) *out.add_projects() = std::move(p);
  return out;
}

// --- Sites -------------------------------------------------------------------------------------

absl::StatusOr<v1::Site> Tracker::CreateSite(const Principal& who, v1::Site site) {
  FS_RETURN_IF_ERROR(model::ValidateSite(site));
  FS_RETURN_IF_ERROR(VisibleProject(who, "site.project_id", site.project_id(), kReference).status());
  if (site.id().empty()) site.set_id(NewUuidV7());
  return store_.CreateSite(site, who.actor());
}

absl::StatusOr<v1::Site> Tracker::GetSite(const Principal& who, absl::string_view id) {
  FS_RETURN_IF_ERROR(model::ValidateId("id", id, /*allow_empty=*/false));
  FS_ASSIGN_OR_RETURN(v1::Site site, store_.GetSite(id));
  if (who.partner_bound()) {
    absl::StatusOr<v1::Project> p = VisibleProject(who, "id", site.project_id(), absl::StatusCode::kNotFound);
    if (!p.ok()) return absl::NotFoundError(absl::StrCat("site ", id, " not found"));
  }
  return site;
}

absl::StatusOr<v1::ListSitesResponse> Tracker::ListSites(const Principal& who,
                                                         const v1::ListSitesRequest& request) {
  FS_RETURN_IF_ERROR(CheckFilterId("project_id", request.project_id()));
  FS_ASSIGN_OR_RETURN(PageRequest page, PageFor(request.page_size(), request.page_token()));
  FS_ASSIGN_OR_RETURN(std::vector<v1::Site> rows,
                      store_.ListSites(request.project_id(), who.scope(), page));
  v1::ListSitesResponse out;
  out.set_next_page_token(
      FinishPage<v1::Site>(rows, page, [](const v1::Site& s) { return s.id(); }));
  for (v1::Site& s : rows) *out.add_sites() = std::move(s);
  return out;
}

// --- Records -----------------------------------------------------------------------------------

absl::StatusOr<v1::Record> Tracker::CreateRecord(const Principal& who, v1::Record record) {
  FS_RETURN_IF_ERROR(model::ValidateRecord(record));
  FS_RETURN_IF_ERROR(DeriveRecordFields(record));
  FS_RETURN_IF_ERROR(VisibleProject(who, "record.project_id", record.project_id(), kReference).status());
  if (record.id().empty()) record.set_id(NewUuidV7());
  return store_.CreateRecord(record, who.actor());
}

absl::StatusOr<v1::Record> Tracker::UpdateRecord(const Principal& who, v1::Record record,
                                                 int64_t expected_version) {
  FS_RETURN_IF_ERROR(model::ValidateId("record.id", record.id(), /*allow_empty=*/false));
  FS_ASSIGN_OR_RETURN(v1::Record current, GetRecord(who, record.id()));
  if (record.project_id().empty()) record.set_project_id(current.project_id());
  FS_RETURN_IF_ERROR(model::ValidateRecord(record));
  FS_RETURN_IF_ERROR(DeriveRecordFields(record));
  return store_.UpdateRecord(record, expected_version, who.actor());
}

absl::StatusOr<v1::Record> Tracker::GetRecord(const Principal& who, absl::string_view id) {
  FS_RETURN_IF_ERROR(model::ValidateId("id", id, /*allow_empty=*/false));
  FS_ASSIGN_OR_RETURN(v1::Record record, store_.GetRecord(id));
  if (who.partner_bound()) {
    absl::StatusOr<v1::Project> p = VisibleProject(who, "id", record.project_id(), absl::StatusCode::kNotFound);
    if (!p.ok()) return absl::NotFoundError(absl::StrCat("record ", id, " not found"));
  }
  return record;
}

absl::StatusOr<v1::ListRecordsResponse> Tracker::ListRecords(
    const Principal& who, const v1::ListRecordsRequest& request) {
  FS_RETURN_IF_ERROR(CheckFilterEnum("kind", request.kind(), v1::RecordKind_IsValid));
  FS_RETURN_IF_ERROR(CheckFilterId("project_id", request.project_id()));
  FS_RETURN_IF_ERROR(CheckFilterId("site_id", request.site_id()));
  FS_RETURN_IF_ERROR(CheckFilterId("partner_id", request.partner_id()));
  FS_RETURN_IF_ERROR(CheckFilterCountry("country", request.country()));
  FS_RETURN_IF_ERROR(CheckDateRange(request.from_date(), request.to_date()));
  FS_ASSIGN_OR_RETURN(PageRequest page, PageFor(request.page_size(), request.page_token()));
  FS_ASSIGN_OR_RETURN(std::vector<v1::Record> rows,
                      store_.ListRecords(request, who.scope(), page));
  v1::ListRecordsResponse out;
  out.set_next_page_token(
      FinishPage<v1::Record>(rows, page, [](const v1::Record& r) { return r.id(); }));
  for (v1::Record& r : rows) *out.add_records() = std::move(r);
  return out;
}

absl::StatusOr<v1::GetStatsResponse> Tracker::GetStats(const Principal& who,
                                                       const v1::GetStatsRequest& request) {
  FS_RETURN_IF_ERROR(CheckFilterEnum("group_by", request.group_by(), v1::StatsGrouping_IsValid));
  FS_RETURN_IF_ERROR(CheckFilterEnum("kind", request.kind(), v1::ProjectKind_IsValid));
  FS_RETURN_IF_ERROR(CheckFilterId("partner_id", request.partner_id()));
  FS_RETURN_IF_ERROR(CheckFilterCountry("country", request.country()));
  FS_RETURN_IF_ERROR(CheckDateRange(request.from_date(), request.to_date()));
  return store_.GetStats(request, who.scope());
}

absl::StatusOr<v1::Record> Tracker::DeleteRecord(const Principal& who, absl::string_view id) {
  FS_RETURN_IF_ERROR(GetRecord(who, id).status());
  return store_.DeleteRecord(id, 0, who.actor());
}

// --- Conflicts ---------------------------------------------------------------------------------

absl::StatusOr<v1::ListConflictsResponse> Tracker::ListConflicts(
    const Principal& who, const v1::ListConflictsRequest& request) {
  FS_RETURN_IF_ERROR(CheckFilterEnum("status", request.status(), v1::ConflictStatus_IsValid));
  FS_RETURN_IF_ERROR(CheckFilterId("doc_id", request.doc_id()));
  FS_ASSIGN_OR_RETURN(PageRequest page, PageFor(request.page_size(), request.page_token()));
  FS_ASSIGN_OR_RETURN(std::vector<v1::Conflict> rows,
                      store_.ListConflicts(request, who.scope(), page));
  v1::ListConflictsResponse out;
  out.set_next_page_token(
      FinishPage<v1::Conflict>(rows, page, [](const v1::Conflict& c) { return c.id(); }));
  for (v1::Conflict& c : rows) *out.add_conflicts() = std::move(c);
  return out;
}

absl::StatusOr<v1::Conflict> Tracker::ResolveConflict(const Principal& who,
                                                      const v1::ResolveConflictRequest& request) {
  FS_RETURN_IF_ERROR(model::ValidateId("id", request.id(), /*allow_empty=*/false));
  if (request.resolution() != v1::CONFLICT_RESOLUTION_KEEP_WINNER &&
      request.resolution() != v1::CONFLICT_RESOLUTION_TAKE_LOSER) {
    return absl::InvalidArgumentError(absl::StrCat(
        "resolution: KEEP_WINNER or TAKE_LOSER is required, got ", request.resolution()));
  }
  return store_.ResolveConflict(request.id(), request.resolution(), who.actor());
}

// --- Rejections --------------------------------------------------------------------------------

absl::StatusOr<v1::ListRejectionsResponse> Tracker::ListRejections(
    const Principal& who, v1::ListRejectionsRequest request) {
  FS_RETURN_IF_ERROR(CheckFilterEnum("status", request.status(), v1::ConflictStatus_IsValid));
  FS_RETURN_IF_ERROR(CheckFilterId("device_id", request.device_id()));
  FS_ASSIGN_OR_RETURN(PageRequest page, PageFor(request.page_size(), request.page_token()));
  if (who.partner_bound() && !who.token.device_id().empty()) {
    // A device sees its own refused changes, whatever device it asks about.
    request.set_device_id(who.token.device_id());
  }
  FS_ASSIGN_OR_RETURN(std::vector<v1::RejectedChange> rows,
                      store_.ListRejections(request, who.scope(), page));
  v1::ListRejectionsResponse out;
  out.set_next_page_token(FinishPage<v1::RejectedChange>(
      rows, page, [](const v1::RejectedChange& r) { return r.id(); }));
  for (v1::RejectedChange& r : rows) *out.add_rejections() = std::move(r);
  return out;
}

absl::StatusOr<v1::RejectedChange> Tracker::ResolveRejection(
    const Principal& who, const v1::ResolveRejectionRequest& request) {
  FS_RETURN_IF_ERROR(model::ValidateId("id", request.id(), /*allow_empty=*/false));
  if (request.note().size() > 4000) {
    return absl::InvalidArgumentError(
        absl::StrCat("note: at most 1000 characters, got ", request.note().size(), " bytes"));
  }
  return store_.ResolveRejection(request.id(), request.note(), who.actor());
}

// --- Live feed ---------------------------------------------------------------------------------

absl::Status Tracker::WatchChanges(const Principal& who, const v1::WatchChangesRequest& request,
                                   const std::function<bool(const v1::ChangeEvent&)>& emit,
                                   const std::function<bool()>& cancelled) {
  if (request.after_seq() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("after_seq: must be >= 0, got ", request.after_seq()));
  }
  FS_RETURN_IF_ERROR(CheckFilterId("partner_id", request.partner_id()));
  FS_RETURN_IF_ERROR(CheckFilterCountry("country", request.country()));
  FS_RETURN_IF_ERROR(CheckFilterEnum("kind", request.kind(), v1::RecordKind_IsValid));
  // Project of each document seen, to filter by partner and country without a lookup per event.
  std::map<std::string, v1::Project> projects;
  auto project_of = [&](const std::string& id) -> const v1::Project* {
    auto it = projects.find(id);
    if (it == projects.end()) {
      absl::StatusOr<v1::Project> p = store_.GetProject(id);
      if (!p.ok()) return nullptr;
      it = projects.emplace(id, *std::move(p)).first;
    }
    return &it->second;
  };
  int64_t seq = request.after_seq();
  while (!cancelled()) {
    FS_ASSIGN_OR_RETURN(std::vector<ChangeLogEntry> entries, store_.ReadChangeLog(seq, 500));
    for (const ChangeLogEntry& e : entries) {
      seq = e.seq;
      if (e.collection != "project" && e.collection != "site" && e.collection != "record") {
        continue;
      }
      if (e.op == "reject") continue;  // refused: nothing changed
      v1::ChangeEvent event;
      event.set_seq(e.seq);
      event.set_collection(e.collection);
      event.set_doc_id(e.doc_id);
      event.set_op(e.op);
      event.set_actor(e.actor_id);
      *event.mutable_committed_at() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
          absl::ToUnixMicros(e.server_time));
      std::string project_id;
      v1::RecordKind kind = v1::RECORD_KIND_UNSPECIFIED;
      if (e.collection == "project") {
        projects.erase(e.doc_id);  // it may have changed country
        project_id = e.doc_id;
        if (const v1::Project* p = project_of(project_id)) *event.mutable_project() = *p;
      } else if (e.collection == "site") {
        absl::StatusOr<v1::Site> site = store_.GetSite(e.doc_id);
        if (site.ok()) {
          project_id = site->project_id();
          *event.mutable_site() = *std::move(site);
        }
      } else {
        absl::StatusOr<v1::Record> record = store_.GetRecord(e.doc_id);
        if (record.ok()) {
          project_id = record->project_id();
          kind = record->kind();
          *event.mutable_record() = *std::move(record);
        } else {
          // Deleted since: its stored fields still name the project.
          project_id = store_.ProjectOfDocument("record", e.doc_id).value_or("");
        }
      }
      const v1::Project* project = project_id.empty() ? nullptr : project_of(project_id);
      if (project == nullptr) continue;  // nothing to scope it by: never send it
      event.set_partner_id(project->partner_id());
      event.set_country(project->country());
      if (Hidden(who, project->partner_id())) continue;
      if (!request.partner_id().empty() && request.partner_id() != project->partner_id()) continue;
      if (!request.country().empty() && request.country() != project->country()) continue;
      if (request.kind() != v1::RECORD_KIND_UNSPECIFIED &&
          (e.collection != "record" || (kind != v1::RECORD_KIND_UNSPECIFIED &&
                                        kind != request.kind()))) {
        continue;
      }
      if (!emit(event)) return absl::OkStatus();
    }
    if (entries.empty()) store_.WaitForChange(seq, absl::Seconds(1));
  }
  return absl::OkStatus();
}

}  // namespace fieldsync::server
