// The Tracker: projects, sites, records and indicators, with the rules a caller must meet
// before the store is touched — validation, defaults, derived fields and the partner scope of
// field devices. TrackerService only translates gRPC to these calls.
//
//   Tracker tracker(store);
//   FS_ASSIGN_OR_RETURN(v1::Record r, tracker.CreateRecord(principal, record));
//
// Scope rule: for a field device, a project, site or record of another partner does not
// exist (NOT_FOUND, exactly as for a missing id), lists and stats cover only its partner, and
// a write that refers to another partner's project is INVALID_ARGUMENT "record.project_id: no
// project with id ...", exactly as for a project that does not exist.
// Errors are those of model::Validate* and Store. Thread-safe.
#ifndef FIELDSYNC_SERVER_TRACKER_H_
#define FIELDSYNC_SERVER_TRACKER_H_

#include "absl/status/statusor.h"
#include "fieldsync/v1/tracker.pb.h"
#include "server/auth.h"
#include "server/store.h"

namespace fieldsync::server {

class Tracker {
 public:
  explicit Tracker(Store& store) : store_(store) {}

  absl::StatusOr<v1::Project> CreateProject(const Principal& who, v1::Project project);
  absl::StatusOr<v1::Project> UpdateProject(const Principal& who, v1::Project project,
                                            int64_t expected_version);
  absl::StatusOr<v1::Project> GetProject(const Principal& who, absl::string_view id);
  absl::StatusOr<v1::ListProjectsResponse> ListProjects(const Principal& who,
                                                        const v1::ListProjectsRequest& request);

  absl::StatusOr<v1::Site> CreateSite(const Principal& who, v1::Site site);
  absl::StatusOr<v1::Site> GetSite(const Principal& who, absl::string_view id);
  absl::StatusOr<v1::ListSitesResponse> ListSites(const Principal& who,
                                                  const v1::ListSitesRequest& request);

  // Derives kind, record_date and each follow-up's outcome before storing.
  absl::StatusOr<v1::Record> CreateRecord(const Principal& who, v1::Record record);
  absl::StatusOr<v1::Record> UpdateRecord(const Principal& who, v1::Record record,
                                          int64_t expected_version);
  absl::StatusOr<v1::Record> GetRecord(const Principal& who, absl::string_view id);
  absl::StatusOr<v1::ListRecordsResponse> ListRecords(const Principal& who,
                                                      const v1::ListRecordsRequest& request);

  absl::StatusOr<v1::GetStatsResponse> GetStats(const Principal& who,
                                                const v1::GetStatsRequest& request);

  absl::StatusOr<v1::Record> DeleteRecord(const Principal& who, absl::string_view id);

  absl::StatusOr<v1::ListConflictsResponse> ListConflicts(const Principal& who,
                                                          const v1::ListConflictsRequest& request);
  absl::StatusOr<v1::Conflict> ResolveConflict(const Principal& who,
                                               const v1::ResolveConflictRequest& request);
  absl::StatusOr<v1::ListRejectionsResponse> ListRejections(const Principal& who,
                                                            v1::ListRejectionsRequest request);
  absl::StatusOr<v1::RejectedChange> ResolveRejection(const Principal& who,
                                                      const v1::ResolveRejectionRequest& request);

  // Sends every change after request.after_seq that the caller may see and that matches the
  // filters, then waits for new ones, until `emit` returns false or `cancelled()` is true.
  // Each event carries the document as it stands when the event is sent (or none, once a
  // record is deleted).
  absl::Status WatchChanges(const Principal& who, const v1::WatchChangesRequest& request,
                            const std::function<bool(const v1::ChangeEvent&)>& emit,
                            const std::function<bool()>& cancelled);

 private:
  // The project, if it exists and the caller may see it; else `missing` naming `field`.
  absl::StatusOr<v1::Project> VisibleProject(const Principal& who, absl::string_view field,
                                             absl::string_view id, absl::StatusCode missing);
  Store& store_;
};

// Page tokens: opaque strings carrying the last id of the previous page.
std::string EncodePageToken(absl::string_view last_id);
// INVALID_ARGUMENT "page_token: ..." for anything not made by EncodePageToken.
absl::StatusOr<std::string> DecodePageToken(absl::string_view token);
// Validates page_size/page_token and returns the store's page request (one extra row, to know
// whether another page follows).
absl::StatusOr<PageRequest> PageFor(int32_t page_size, absl::string_view page_token);

// Trims `rows` to the requested size and returns the token of the next page, or "" if none.
template <typename T>
std::string FinishPage(std::vector<T>& rows, const PageRequest& page,
                       const std::function<std::string(const T&)>& id_of) {
  if (static_cast<int>(rows.size()) < page.page_size) return "";
  rows.resize(page.page_size - 1);
  return rows.empty() ? "" : EncodePageToken(id_of(rows.back()));
}

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_TRACKER_H_
