// The fieldsync command-line tool as a library function, so that tests can run it in-process.
//
//   int code = RunCli({"projects", "list", "--country", "KE"}, EnvironmentFromProcess(),
//                     {std::cin, std::cout, std::cerr});
//
// Prints results to `io.out`, errors ("fieldsync: <what failed>: <reason>") and hints to
// `io.err`, and returns the exit code (see errors.h and `fieldsync --help`).
#ifndef FIELDSYNC_CLI_CLI_H_
#define FIELDSYNC_CLI_CLI_H_

#include <string>
#include <vector>

#include "cli/invocation.h"

namespace fieldsync::cli {

// Defaults taken from the environment.
struct Environment {
  // $FIELDSYNC_SERVER: default of --server; empty for 127.0.0.1:50051.
  std::string server;
  // $FIELDSYNC_TOKEN: default of --token.
  std::string token;
  // $FIELDSYNC_DEVICE_DB: default of --device-db; empty for ./fieldsync-device.db.
  std::string device_db{};
  // $FIELDSYNC_CA_FILE: default of --ca-file.
  std::string ca_file{};
};

// Reads FIELDSYNC_SERVER, FIELDSYNC_TOKEN and FIELDSYNC_DEVICE_DB.
Environment EnvironmentFromProcess();

// Runs the command line `args` (without the program name). Thread-compatible; touches no global
// state besides gRPC's, except that 'sync' and 'watch' handle SIGINT and SIGTERM while they run
// (see interrupt.h), so run at most one of those at a time per process.
int RunCli(const std::vector<std::string>& args, const Environment& env, Io io);

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_CLI_H_
