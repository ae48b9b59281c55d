// SQLite side of the audit trail and reports, shared by sqlite_store.cc (the write path),
// schema.cc (migration 2) and sqlite_reports.cc (the report snapshot).
#ifndef FIELDSYNC_SERVER_SQLITE_REPORTS_H_
#define FIELDSYNC_SERVER_SQLITE_REPORTS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/sync/merge.h"
#include "server/db.h"

namespace fieldsync::server {

// Writes the audit rows of change-log entry `seq`: one change_fields row per field of `merged`
// (old value from `before`, the document as stored before the change; outcome WON, LOST or
// APPLIED) and its change_projects row (skipped when `project_id` is empty). Inside the
// caller's write transaction; statements are cached on `db`.
absl::Status WriteChangeFields(db::Connection& db, int64_t seq, absl::string_view project_id,
                               const sync::Document& before, const sync::MergeResult& merged);

// Migration 2: fills change_fields and change_projects for every project, site and record
// entry already in the log, by replaying the log document by document (ordered by collection,
// doc_id, seq) through the same merge, holding one document's state at a time.
absl::Status BackfillChangeFields(db::Connection& db);

// The first change-log entry (lowest seq) within [from_seq, to_seq] (0: to the end) whose
// audit rows (change_fields: old values and WON/LOST/APPLIED; change_projects) differ from
// what a replay of the chain's entries through the same merge gives; seq 0 if none. The audit
// export shows these rows; they are outside the hash, so verification recomputes them.
struct AuditRowsProblem {
  int64_t seq = 0;
  std::string problem;
};
absl::StatusOr<AuditRowsProblem> CheckChangeFields(db::Connection& db, int64_t from_seq,
                                                   int64_t to_seq);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_SQLITE_REPORTS_H_
