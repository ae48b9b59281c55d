#include "cli/cli.h"

#include <cstdlib>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/help.h"
#include "cli/values.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/client.h"

#ifndef FIELDSYNC_VERSION
#define FIELDSYNC_VERSION "unknown"
#endif

namespace fieldsync::cli {
namespace {

// Longest --timeout accepted: a day.
constexpr double kMaxTimeoutSeconds = 86400;
// The device database when neither --device-db nor $FIELDSYNC_DEVICE_DB names one.
constexpr absl::string_view kDefaultDeviceDb = "./fieldsync-device.db";

absl::StatusOr<GlobalOptions> ResolveGlobalOptions(const FlagValues& flags,
                                                   const Environment& env) {
  GlobalOptions options;
  if (flags.Has("server")) {
    options.server = flags.Get("server");
  } else if (!env.server.empty()) {
    options.server = env.server;
  }
  if (absl::Status address = client::CheckServerAddress(options.server); !address.ok()) {
    return UsageError(absl::StrCat(flags.Has("server") ? "--server" : "FIELDSYNC_SERVER", ": ",
                                   address.message()));
  }

  const bool token_flag = flags.Has("token");
  // A token pasted from a file often ends in a newline; it is never part of the secret.
  options.token =
      std::string(absl::StripAsciiWhitespace(token_flag ? flags.Get("token") : env.token));
  for (char c : options.token) {
    if (c < 0x21 || c > 0x7e) {
      return UsageError(absl::StrCat(token_flag ? "--token" : "FIELDSYNC_TOKEN",
                                     ": contains spaces or control characters"));
    }
  }

  options.json = flags.Has("json");
  if (flags.Has("timeout")) {
    FS_ASSIGN_OR_RETURN(double seconds, ParseDouble("timeout", flags.Get("timeout")));
    if (seconds <= 0 || seconds > kMaxTimeoutSeconds) {
      return UsageError(absl::StrCat("--timeout: must be more than 0 and at most ",
                                     kMaxTimeoutSeconds, " seconds, got '", flags.Get("timeout"),
                                     "'"));
    }
    options.timeout = absl::Seconds(seconds);
  }
  options.ca_file = flags.Has("ca-file") ? flags.Get("ca-file") : env.ca_file;
  options.tls_server_name = flags.Get("tls-server-name");
  options.tls = flags.Has("tls") || !options.ca_file.empty() || !options.tls_server_name.empty();
  options.device_db = env.device_db.empty() ? std::string(kDefaultDeviceDb) : env.device_db;
  return options;
}

void ReportError(const absl::Status& status, const CommandLine& line, std::ostream& err) {
  err << "fieldsync: " << status.message() << "\n";
  if (IsUsageError(status)) {
    err << UsageHint(line, Commands());
    return;
  }
  if (std::string hint = HintFor(status); !hint.empty()) err << "hint: " << hint << "\n";
}

}  // namespace

Environment EnvironmentFromProcess() {
  Environment env;
  if (const char* server = std::getenv("FIELDSYNC_SERVER")) env.server = server;
  if (const char* token = std::getenv("FIELDSYNC_TOKEN")) env.token = token;
  if (const char* device_db = std::getenv("FIELDSYNC_DEVICE_DB")) env.device_db = device_db;
  if (const char* ca_file = std::getenv("FIELDSYNC_CA_FILE")) env.ca_file = ca_file;
  return env;
}

int RunCli(const std::vector<std::string>& args, const Environment& env, Io io) {
  const CommandLine line = ParseCommandLine(args, Commands());
  if (line.help && !line.unknown_command) {
    if (line.command != nullptr) {
      io.out << CommandHelp(*line.command);
    } else if (!line.group.empty()) {
      io.out << GroupHelp(line.group, Commands(), Groups());
    } else {
      io.out << TopHelp(Commands(), Groups());
    }
    return kExitOk;
  }
  if (line.version && line.error.ok()) {
    io.out << "fieldsync " << FIELDSYNC_VERSION << "\n";
    return kExitOk;
  }
  if (!line.error.ok()) {
    ReportError(line.error, line, io.err);
    return kExitUsage;
  }
  absl::StatusOr<GlobalOptions> options = ResolveGlobalOptions(line.globals, env);
  if (!options.ok()) {
    ReportError(options.status(), line, io.err);
    return ExitCodeFor(options.status());
  }
  Invocation invocation(line, *std::move(options), io);
  absl::Status status = line.command->run(invocation);
  if (!status.ok()) ReportError(status, line, io.err);
  io.out.flush();
  return ExitCodeFor(status);
}

}  // namespace fieldsync::cli
