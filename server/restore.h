// Restores: bringing fieldsyncd's SQLite database back from a backup (AdminService.Backup), and
// giving a database a new epoch. `fieldsyncd --restore-from BACKUP --db PATH` and `--new-epoch`
// call these; the server must be stopped while they run.
//
//   FS_ASSIGN_OR_RETURN(RestoreResult r, RestoreFromBackup("/backups/fs-0300.db", "data/fs.db"));
//   // r.moved_aside: the database that was there before, kept beside it
//
// A restored database gets a new epoch, which devices see at their next handshake: they send
// their own edits again (those the backup lacks) and pull from the start (docs/SYNC.md,
// "Restores").
#ifndef FIELDSYNC_SERVER_RESTORE_H_
#define FIELDSYNC_SERVER_RESTORE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fieldsync::server {

struct RestoreResult {
  // The database file now holding the backup.
  std::string db_path;
  // Where the database that was at db_path went ("" if there was none):
  // db_path + ".before-restore-<UTC yyyymmddThhmmssZ>", with its -wal and -shm files.
  std::string moved_aside;
  // The backup's change log: entries checked (all of them), the last one's seq and hash.
  int64_t entries_checked = 0;
  int64_t head_seq = 0;
  std::string head_hash;
  // The epoch the backup had, and the new one the restored database has.
  std::string backup_epoch;
  std::string epoch;
};

// Checks the backup at `backup` — SQLite's integrity_check, a fieldsyncd schema this binary
// knows, and the change log's hash chain recomputed from the first entry to the last — then
// moves the database at `db_path` (if any, with its -wal and -shm) aside, puts a copy of the
// backup in its place (mode 0600, fsynced, migrated to this binary's schema) with a new epoch.
// Everything is checked on a copy beside `db_path` before anything is moved: on any error
// nothing at `db_path` has changed. NOT_FOUND: no backup file; FAILED_PRECONDITION: not a
// fieldsyncd database, damaged, newer schema, a broken chain, or `db_path` is a PostgreSQL URL
// (use pg_restore, then --new-epoch); DATA_LOSS: the chain does not verify.
absl::StatusOr<RestoreResult> RestoreFromBackup(const std::string& backup,
                                                const std::string& db_path,
                                                absl::Time now = absl::Now());

// Gives the database at `db` (a SQLite path or a PostgreSQL URL) a new epoch and returns it.
absl::StatusOr<std::string> SetNewEpoch(const std::string& db);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_RESTORE_H_
