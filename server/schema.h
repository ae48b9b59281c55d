// The schema of fieldsyncd (SQLite and PostgreSQL) and its versioned migrations.
#ifndef FIELDSYNC_SERVER_SCHEMA_H_
#define FIELDSYNC_SERVER_SCHEMA_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/db.h"

namespace fieldsync::server {

// The version a fully migrated database has.
int LatestSchemaVersion();

// Brings `db` to LatestSchemaVersion(), one transaction per migration. FAILED_PRECONDITION if
// the database was written by a newer fieldsyncd.
absl::Status Migrate(db::Connection& db);

// server_meta: facts about the database ("epoch"). GetMeta is NOT_FOUND for a missing key.
absl::Status SetMeta(db::Connection& db, absl::string_view key, absl::string_view value);
absl::StatusOr<std::string> GetMeta(db::Connection& db, absl::string_view key);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_SCHEMA_H_
