// Starts the real fieldsyncd binary on 127.0.0.1 with a port the kernel picks and a fresh
// database, for tests that talk real gRPC: the SQLite file dir/fieldsync.db, or in the
// PostgreSQL pass (FIELDSYNC_TEST_POSTGRES set: scripts/with-postgres) a fresh PostgreSQL
// database (tests/testing/test_db.h), dropped when the object goes away. The process is killed
// (SIGTERM, then SIGKILL) when the object goes away.
//
//   TempDir dir;
//   ServerProcess server;
//   ASSERT_OK(server.Start(dir.path()));
//   auto channel = server.Channel();
//   std::string admin = server.admin_token();
#ifndef FIELDSYNC_TESTS_TESTING_SERVER_PROCESS_H_
#define FIELDSYNC_TESTS_TESTING_SERVER_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "tests/testing/test_db.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace fieldsync::testing {

// Path of the fieldsyncd binary under test (set by CMake through FIELDSYNCD_PATH; the
// environment variable FIELDSYNC_FIELDSYNCD overrides it).
std::string FieldsyncdPath();
// Path of the fieldsync CLI binary under test (set by CMake through FIELDSYNC_CLI_PATH).
std::string FieldsyncCliPath();

class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Creates an admin token for the database (fieldsyncd --create-admin-token) — `dir`/fieldsync.db,
  // or in the PostgreSQL pass a fresh PostgreSQL database (the same one again if Start is called
  // again with the same `dir`) — then starts fieldsyncd on 127.0.0.1:0 with `extra_args` and
  // waits until it listens.
  absl::Status Start(const std::string& dir, const std::vector<std::string>& extra_args = {});
  // Starts on a database that already exists: `db` (a SQLite file or a postgresql:// URL, e.g.
  // another server's db_path(), for a second replica), with `dir` for the log and port file.
  absl::Status StartOn(const std::string& dir, const std::string& db,
                       const std::vector<std::string>& extra_args = {});
  // Makes Start use the SQLite file `dir`/fieldsync.db even in the PostgreSQL pass. Only for a
  // test of what SQLite alone has (a file's mode, --max-db-mb, WAL, backup files, a prepared
  // SQLite file); say why at the call. Call before Start.
  void UseSqlite() { sqlite_only_ = true; }
  // Environment entries ("K=V") added for fieldsyncd from the next Start or Restart on.
  void SetEnv(std::vector<std::string> env) { env_ = std::move(env); }
  // Sends SIGTERM and waits; returns the exit status as seen by waitpid (0 for a clean stop).
  int Stop();
  // Restarts on the same database and port.
  absl::Status Restart();
  // The same, with these extra flags from now on instead of Start()'s.
  absl::Status Restart(const std::vector<std::string>& extra_args);

  // "127.0.0.1:<port>".
  const std::string& address() const { return address_; }
  // The SQLite file or the postgresql:// URL fieldsyncd runs on (--db).
  const std::string& db_path() const { return db_path_; }
  const std::string& admin_token() const { return admin_token_; }
  // Everything fieldsyncd wrote to stderr so far.
  std::string Log() const;
  pid_t pid() const { return pid_; }

  // An insecure channel to the server.
  std::shared_ptr<grpc::Channel> Channel() const;

 private:
  absl::Status Launch();

  std::string dir_;
  std::string db_path_;
  std::string log_path_;
  std::string address_;
  std::string admin_token_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
  bool sqlite_only_ = false;
  std::vector<std::string> env_;
  // The PostgreSQL database Start created for dir_ (dropped in the destructor), or "".
  std::string own_postgres_db_;
  std::string own_postgres_dir_;
};

// QueryInt(db_path, sql) (tests/testing/test_db.h): the first column of the first row of `sql`
// on a server's database, checked behind its back; -1 if the query fails.

// Adds "authorization: Bearer <token>" to a call.
void AddBearer(grpc::ClientContext& ctx, const std::string& token);

// Runs a command (argv[0] is the program), with `env` entries ("K=V") added to the
// environment; captures stdout and stderr separately. Returns the exit code (or -signal).
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env = {});

}  // namespace fieldsync::testing

#endif  // FIELDSYNC_TESTS_TESTING_SERVER_PROCESS_H_
