// SQLite side of the audit trail and reports, shared by sqlite_store.cc (the write path),
// schema.cc (migration 2) and sqlite_reports.cc (the report snapshot).
#ifndef FIELDSYNC_SERVER_SQLITE_REPORTS_H_
#define FIELDSYNC_SERVER_SQLITE_REPORTS_H_

#include <cstdint>

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

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_SQLITE_REPORTS_H_
