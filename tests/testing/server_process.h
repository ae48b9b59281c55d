// Starts the real fieldsyncd binary on 127.0.0.1 with a port the kernel picks and a fresh
// SQLite file, for tests that talk real gRPC. The process is killed (SIGTERM, then SIGKILL)
// when the object goes away.
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
#include <vector>

#include "absl/status/status.h"

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

  // Creates an admin token for the database `dir`/fieldsync.db (fieldsyncd --create-admin-token),
  // then starts fieldsyncd on 127.0.0.1:0 with `extra_args` and waits until it listens.
  absl::Status Start(const std::string& dir, const std::vector<std::string>& extra_args = {});
  // Sends SIGTERM and waits; returns the exit status as seen by waitpid (0 for a clean stop).
  int Stop();
  // Restarts on the same database and port.
  absl::Status Restart();
  // The same, with these extra flags from now on instead of Start()'s.
  absl::Status Restart(const std::vector<std::string>& extra_args);

  // "127.0.0.1:<port>".
  const std::string& address() const { return address_; }
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
};

// The first column of the first row of `sql`, run read-only on the SQLite file `db_path` (a
// server's database, checked behind its back); -1 if the query fails.
int64_t QueryInt(const std::string& db_path, const std::string& sql);

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
