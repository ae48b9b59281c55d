#include "server/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/sync/sqlite.h"
#include "server/report_service.h"
#include "server/schema.h"
#include "server/sqlite_store.h"

namespace fieldsync::server {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

void RemoveWithSidecars(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    ::unlink(absl::StrCat(path, suffix).c_str());
  }
}

absl::Status FsyncPath(const std::string& path, bool folder) {
  int fd = ::open(path.c_str(), (folder ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return absl::InternalError(absl::StrCat("fsync of ", path, ": ", why));
  }
  ::close(fd);
  return absl::OkStatus();
}

std::string FolderOf(const std::string& path) {
  std::string folder = std::filesystem::path(path).parent_path().string();
  return folder.empty() ? "." : folder;
}

// Copies `from` into the new file `to` (mode 0600) and fsyncs it.
absl::Status CopyFile(const std::string& from, const std::string& to) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", from, ": ", std::strerror(errno)));
  }
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    std::string why = std::strerror(errno);
    ::close(in);
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create ", to, ": ", why,
        errno == EEXIST ? " (left by a restore that stopped: remove it)" : ""));
  }
  std::vector<char> buffer(1 << 20);
  absl::Status status;
  for (;;) {
    ssize_t n = ::read(in, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = absl::InternalError(absl::StrCat("reading ", from, ": ", std::strerror(errno)));
      break;
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out, buffer.data() + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        status = absl::Status(errno == ENOSPC ? absl::StatusCode::kResourceExhausted
                                              : absl::StatusCode::kInternal,
                              absl::StrCat("writing ", to, ": ", std::strerror(errno)));
        break;
      }
      done += w;
    }
    if (!status.ok()) break;
  }
  if (status.ok() && ::fsync(out) != 0) {
    status = absl::InternalError(absl::StrCat("fsync of ", to, ": ", std::strerror(errno)));
  }
  ::close(in);
  ::close(out);
  if (!status.ok()) ::unlink(to.c_str());
  return status;
}

// The backup file itself, read-only: SQLite's integrity check and a schema this binary knows.
absl::Status CheckBackupFile(const std::string& backup) {
  sqlite::OpenOptions ro;
  ro.create = false;
  ro.read_only = true;
  auto damaged = [&](absl::string_view why) {
    return absl::FailedPreconditionError(
        absl::StrCat("--restore-from: ", backup, " is not a sound fieldsyncd database: ", why));
  };
  absl::StatusOr<std::unique_ptr<sqlite::Database>> db = sqlite::Database::Open(backup, ro);
  if (!db.ok()) return damaged(db.status().message());
  {
    absl::StatusOr<sqlite::Statement*> q = (*db)->Prepare("PRAGMA integrity_check(20)");
    if (!q.ok()) return damaged(q.status().message());
    std::vector<std::string> problems;
    for (;;) {
      absl::StatusOr<bool> row = (*q)->Step();
      if (!row.ok()) return damaged(row.status().message());
      if (!*row) break;
      std::string line = (*q)->ColumnText(0);
      if (line != "ok") problems.push_back(line);
    }
    (*q)->Reset();
    if (!problems.empty()) {
      return damaged(absl::StrCat("integrity_check: ", absl::StrJoin(problems, "; ")));
    }
  }
  absl::StatusOr<sqlite::Statement*> v =
      (*db)->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!v.ok()) return damaged("it has no schema_migrations table");
  absl::StatusOr<bool> row = (*v)->Step();
  if (!row.ok()) return damaged(row.status().message());
  const int64_t version = *row ? (*v)->ColumnInt(0) : 0;
  (*v)->Reset();
  if (version < 1) return damaged("it has no schema version");
  if (version > LatestSchemaVersion()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--restore-from: ", backup, " has schema version ", version, ", newer than this fieldsyncd (",
        LatestSchemaVersion(), "): restore it with the fieldsyncd that wrote it"));
  }
  return absl::OkStatus();
}

// On the copy: open it as the server would (migrating it), recompute the hash chain in full,
// give it a new epoch, and leave it as one self-contained file.
absl::Status PrepareCopy(const std::string& copy, const std::string& backup,
                         RestoreResult& result) {
  {
    SqliteStore::Options options;
    options.path = copy;
    options.readers = 1;
    absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(options);
    if (!store.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--restore-from: ", backup, " does not open as a fieldsyncd database: ",
          store.status().message()));
    }
    Reporter reporter(**store, ReporterOptions());
    FS_ASSIGN_OR_RETURN(v1::VerifyAuditChainResponse chain,
                        reporter.VerifyAuditChain(v1::VerifyAuditChainRequest()));
    if (!chain.ok()) {
      return absl::DataLossError(absl::StrCat("--restore-from: ", backup,
                                              ": the change log's hash chain does not verify: ",
                                              chain.problem()));
    }
    result.entries_checked = chain.entries_checked();
    result.head_seq = chain.head_seq();
    result.head_hash = chain.head_hash();
    FS_ASSIGN_OR_RETURN(result.backup_epoch, (*store)->Epoch());
    FS_ASSIGN_OR_RETURN(result.epoch, (*store)->NewEpoch());
  }
  // Fold the WAL into the file, so that moving one file moves the whole database.
  FS_ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Database> db, sqlite::Database::Open(copy, {}));
  FS_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=DELETE"));
  db.reset();
  for (const char* suffix : {"-wal", "-shm"}) ::unlink(absl::StrCat(copy, suffix).c_str());
  return FsyncPath(copy, false);
}

}  // namespace

absl::StatusOr<RestoreResult> RestoreFromBackup(const std::string& backup,
                                                const std::string& db_path, absl::Time now) {
  if (absl::StrContains(db_path, "://")) {
    return absl::FailedPreconditionError(
        "--restore-from: --db is a PostgreSQL URL: restore with pg_restore, then run "
        "fieldsyncd --db URL --new-epoch (docs/OPERATIONS.md)");
  }
  struct stat st;
  if (::stat(backup.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("--restore-from: ", backup, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--restore-from: ", backup, " is not a file"));
  }
  FS_RETURN_IF_ERROR(CheckBackupFile(backup));

  RestoreResult result;
  result.db_path = db_path;
  const std::string copy = absl::StrCat(db_path, ".restoring");
  const std::string aside =
      absl::StrCat(db_path, ".before-restore-",
                   absl::FormatTime("%Y%m%dT%H%M%SZ", now, absl::UTCTimeZone()));
  const bool had_db = Exists(db_path);
  if (had_db && Exists(aside)) {
    return absl::AlreadyExistsError(
        absl::StrCat("--restore-from: ", aside, " exists already; try again in a second"));
  }
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    if (Exists(absl::StrCat(copy, suffix))) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--restore-from: ", copy, suffix, " is left by a restore that stopped: remove it"));
    }
  }
  FS_RETURN_IF_ERROR(CopyFile(backup, copy));
  if (absl::Status s = PrepareCopy(copy, backup, result); !s.ok()) {
    RemoveWithSidecars(copy);
    return s;
  }

  // Only now does anything at db_path move.
  std::vector<std::pair<std::string, std::string>> moved;
  auto undo = [&] {
    for (auto it = moved.rbegin(); it != moved.rend(); ++it) {
      ::rename(it->second.c_str(), it->first.c_str());
    }
    RemoveWithSidecars(copy);
  };
  if (had_db) {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::string from = absl::StrCat(db_path, suffix), to = absl::StrCat(aside, suffix);
      if (!Exists(from)) continue;
      if (::rename(from.c_str(), to.c_str()) != 0) {
        std::string why = std::strerror(errno);
        undo();
        return absl::InternalError(
            absl::StrCat("--restore-from: cannot move ", from, " aside: ", why));
      }
      moved.emplace_back(from, to);
    }
    result.moved_aside = aside;
  }
  if (::rename(copy.c_str(), db_path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    undo();
    return absl::InternalError(
        absl::StrCat("--restore-from: cannot move ", copy, " to ", db_path, ": ", why));
  }
  FS_RETURN_IF_ERROR(FsyncPath(FolderOf(db_path), true));
  return result;
}

absl::StatusOr<std::string> SetNewEpoch(const std::string& db) {
  if (!absl::StrContains(db, "://") && !Exists(db)) {
    return absl::NotFoundError(absl::StrCat("--new-epoch: no database at ", db));
  }
  SqliteStore::Options options;
  options.path = db;
  options.readers = 1;
  FS_ASSIGN_OR_RETURN(std::unique_ptr<SqliteStore> store, SqliteStore::Open(options));
  return store->NewEpoch();
}

}  // namespace fieldsync::server
