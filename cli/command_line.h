// The fieldsync command line: the table that declares commands and their options, and the
// parser that matches argv against it. No gRPC in here.
//
//   CommandLine line = ParseCommandLine({"projects", "get", "--json", "0190..."}, Commands());
//   if (!line.error.ok()) ...            // a usage error; line.command says how far it got
//   line.command->path                   // "projects get"
//   line.positionals[0]                  // "0190..."
//   line.globals.Has("json")             // true
//
// Grammar: fieldsync [GLOBAL...] COMMAND [SUBCOMMAND...] [OPTION | GLOBAL | ARG]...
// Global options may appear anywhere; a command's own options only after the command words.
// Options are "--name VALUE", "--name=VALUE" or, for switches, "--name". A value may start with
// '-' ("--lat -1.28"). "--" ends the options. "-h" is "--help", "-o" is "--output".
#ifndef FIELDSYNC_CLI_COMMAND_LINE_H_
#define FIELDSYNC_CLI_COMMAND_LINE_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fieldsync::cli {

class Invocation;

// One option of a command (or a global option).
struct FlagSpec {
  FlagSpec(std::string name, std::string value_name, std::string help, bool required = false)
      : name(std::move(name)),
        value_name(std::move(value_name)),
        help(std::move(help)),
        required(required) {}

  // Without the leading dashes: "partner".
  std::string name;
  // Placeholder shown in help, e.g. "ID"; empty for a switch, which takes no value.
  std::string value_name;
  // One line of help.
  std::string help;
  // A required option is checked by the parser (a usage error when missing).
  bool required = false;
};

// Runs one command. Returns OK, or the failure to report (see errors.h for exit codes).
using CommandFn = absl::Status (*)(Invocation&);

// One command, as "fieldsync <path> [options] <positionals>".
struct CommandSpec {
  CommandSpec(std::string path, std::vector<std::string> positionals, std::string summary,
              std::vector<FlagSpec> flags, CommandFn run, std::string details = "")
      : path(std::move(path)),
        positionals(std::move(positionals)),
        summary(std::move(summary)),
        flags(std::move(flags)),
        run(run),
        details(std::move(details)) {}

  // One to three words: "stats", "projects list", "device records add". The words before the
  // last form its group ("projects", "device records"); a group may hold groups.
  std::string path;
  // Names of the required positional arguments, in order: {"ID"}.
  std::vector<std::string> positionals;
  // One line for listings.
  std::string summary;
  std::vector<FlagSpec> flags;
  CommandFn run = nullptr;
  // Further help text printed after the options; may be empty.
  std::string details;
};

// A command group ("projects", "device records"), for help listings.
struct GroupSpec {
  std::string name;
  std::string summary;
};

// Values of the options given, by name. A repeated option keeps its last value; a switch has the
// value "true".
class FlagValues {
 public:
  bool Has(absl::string_view name) const;
  // The value given, or `fallback` when the option was not given.
  std::string Get(absl::string_view name, absl::string_view fallback = "") const;
  void Set(absl::string_view name, absl::string_view value);

 private:
  std::map<std::string, std::string> values_;
};

// The options every command accepts: --server, --token, --json, --timeout, --ca-file, --help,
// --version.
const std::vector<FlagSpec>& GlobalFlags();

// The result of parsing. Always filled as far as parsing got, so that help and usage hints can
// name the command even when `error` is set.
struct CommandLine {
  FlagValues globals;
  // The command named, or null when none (or only a group) was named.
  const CommandSpec* command = nullptr;
  // The group named ("projects", "device records"), also set when `command` is.
  std::string group;
  std::vector<std::string> positionals;
  // The command's own options.
  FlagValues flags;
  bool help = false;
  bool version = false;
  // A command word was not recognised (then --help cannot show what was meant).
  bool unknown_command = false;
  // The first usage error found (made by UsageError()), or OK.
  absl::Status error;
};

// Parses `args` (argv without the program name) against `commands`. Required options and the
// number of positional arguments are checked here; option values are checked by the commands.
CommandLine ParseCommandLine(const std::vector<std::string>& args,
                             const std::vector<CommandSpec>& commands);

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_COMMAND_LINE_H_
