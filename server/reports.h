// What the tables of an export hold: their columns (docs/REPORTS.md lists them), the rows built
// from a ReportSnapshot, the reconciliation of each project, and its IATI activity. No gRPC and
// no SQL here: ReportService (report_service.cc) streams what these functions produce.
//
//   FS_ASSIGN_OR_RETURN(auto snapshot, store.OpenReportSnapshot());
//   FS_RETURN_IF_ERROR(out->BeginTable(TableSchemaOf(v1::REPORT_TABLE_WELLS)));
//   FS_RETURN_IF_ERROR(WriteTableRows(*snapshot, query, v1::REPORT_TABLE_WELLS,
//                                     [&](absl::Span<const report::Cell> row) {
//                                       return out->WriteRow(row); }));
#ifndef FIELDSYNC_SERVER_REPORTS_H_
#define FIELDSYNC_SERVER_REPORTS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "fieldsync/report/writer.h"
#include "fieldsync/v1/report.pb.h"
#include "server/store.h"

namespace fieldsync::server {

// The snake_case name of a table as in the file ("water_quality_tests"); "" for UNSPECIFIED.
std::string ReportTableName(v1::ReportTable table);

// The columns of a table (every table but IATI_ACTIVITIES). The audit trail's columns are a
// contract with offline verifiers: never rename or reorder them.
const report::TableSchema& TableSchemaOf(v1::ReportTable table);

// Rows `table` will hold in `snapshot` under `query`. `counts` is snapshot.Count(query, ...) with
// at least the counts of `table`.
absl::StatusOr<int64_t> TableRowCount(ReportSnapshot& snapshot, const ReportQuery& query,
                                      const ReportCounts& counts, v1::ReportTable table);

// Hands every row of `table` to `write`, in the table's order, one at a time.
absl::Status WriteTableRows(ReportSnapshot& snapshot, const ReportQuery& query,
                            v1::ReportTable table,
                            const std::function<absl::Status(absl::Span<const report::Cell>)>& write);

// How the server names itself in IATI files (fieldsyncd --iati-org-*).
struct IatiReporting {
  // Organisation identifier, also the prefix of generated activity identifiers.
  std::string ref = "XM-DAC-00000";
  std::string name = "fieldsync NGO network";
  // OrganisationType code: 21 international NGO.
  int type = 21;
};

// One IATI activity per project under `query`, to `write`. `today` (YYYY-MM-DD) closes open
// result periods.
absl::Status WriteIatiActivities(ReportSnapshot& snapshot, const ReportQuery& query,
                                 const IatiReporting& reporting, absl::string_view today,
                                 const std::function<absl::Status(const report::IatiActivity&)>& write);

// The text of one document field value (document-path bytes, fieldsync/sync/document.h) as the
// audit trail shows it: scalars as text (enums by short name, doubles in shortest round-trip
// form, bytes as base64), messages and lists as JSON; "" for an unset field.
std::string FieldValueText(absl::string_view collection, absl::string_view path,
                           absl::string_view value);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_REPORTS_H_
