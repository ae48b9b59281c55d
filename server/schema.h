// The SQLite schema of fieldsyncd and its versioned migrations.
#ifndef FIELDSYNC_SERVER_SCHEMA_H_
#define FIELDSYNC_SERVER_SCHEMA_H_

#include "absl/status/status.h"
#include "fieldsync/sync/sqlite.h"

namespace fieldsync::server {

// The version a fully migrated database has.
int LatestSchemaVersion();

// Brings `db` to LatestSchemaVersion(), one transaction per migration. FAILED_PRECONDITION if
// the database was written by a newer fieldsyncd.
absl::Status Migrate(sqlite::Database& db);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_SCHEMA_H_
