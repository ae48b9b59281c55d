// Help texts of the fieldsync CLI, generated from the command table so that they never drift
// from what the parser accepts.
#ifndef FIELDSYNC_CLI_HELP_H_
#define FIELDSYNC_CLI_HELP_H_

#include <string>
#include <vector>

#include "cli/command_line.h"

namespace fieldsync::cli {

// `fieldsync --help`: commands, global options, output formats, exit codes, environment.
std::string TopHelp(const std::vector<CommandSpec>& commands, const std::vector<GroupSpec>& groups);

// `fieldsync projects --help`: the subcommands of one group.
std::string GroupHelp(absl::string_view group, const std::vector<CommandSpec>& commands,
                      const std::vector<GroupSpec>& groups);

// `fieldsync projects create --help`: usage, options and details of one command.
std::string CommandHelp(const CommandSpec& command);

// Two lines to print after a usage error: the usage of the command (or group, or of fieldsync)
// the parser got to, and where to find more.
std::string UsageHint(const CommandLine& line, const std::vector<CommandSpec>& commands);

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_HELP_H_
