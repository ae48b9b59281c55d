#include "cli/help.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace fieldsync::cli {
namespace {

// Two aligned columns, indented by two spaces.
std::string Columns(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [left, right] : rows) width = std::max(width, left.size());
  std::string text;
  for (const auto& [left, right] : rows) {
    absl::StrAppend(&text, "  ", left, std::string(width - left.size() + 3, ' '), right, "\n");
  }
  return text;
}

std::string FlagUsage(const FlagSpec& flag) {
  return flag.value_name.empty() ? absl::StrCat("--", flag.name)
                                 : absl::StrCat("--", flag.name, " ", flag.value_name);
}

std::string FlagRows(const std::vector<FlagSpec>& flags) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const FlagSpec& flag : flags) {
    rows.emplace_back(FlagUsage(flag),
                      flag.required ? absl::StrCat(flag.help, " (required)") : flag.help);
  }
  return Columns(rows);
}

// "fieldsync projects create --partner ID --kind KIND [options] ID".
std::string Synopsis(const CommandSpec& command) {
  std::string text = absl::StrCat("fieldsync ", command.path);
  bool has_optional = false;
  for (const FlagSpec& flag : command.flags) {
    if (flag.required) {
      absl::StrAppend(&text, " ", FlagUsage(flag));
    } else {
      has_optional = true;
    }
  }
  if (has_optional) absl::StrAppend(&text, " [options]");
  for (const std::string& positional : command.positionals) absl::StrAppend(&text, " ", positional);
  return text;
}

std::string GroupSummary(absl::string_view group, const std::vector<GroupSpec>& groups) {
  for (const GroupSpec& spec : groups) {
    if (spec.name == group) return spec.summary;
  }
  return "";
}

std::vector<const CommandSpec*> Subcommands(absl::string_view group,
                                            const std::vector<CommandSpec>& commands) {
  std::vector<const CommandSpec*> result;
  for (const CommandSpec& command : commands) {
    if (absl::StartsWith(command.path, absl::StrCat(group, " "))) result.push_back(&command);
  }
  return result;
}

std::string Word(absl::string_view path, size_t index) {
  std::vector<std::string> words = absl::StrSplit(path, ' ');
  return index < words.size() ? words[index] : "";
}

// The words that may follow `group` ("device" -> enroll, status, records), each once, in table
// order.
std::vector<std::string> NextWords(absl::string_view group,
                                   const std::vector<CommandSpec>& commands) {
  const size_t depth = static_cast<size_t>(std::count(group.begin(), group.end(), ' ')) + 1;
  std::vector<std::string> words;
  for (const CommandSpec* command : Subcommands(group, commands)) {
    std::string word = Word(command->path, depth);
    if (std::find(words.begin(), words.end(), word) == words.end()) words.push_back(word);
  }
  return words;
}

constexpr absl::string_view kExitCodes =
    "  0   success\n"
    "  1   verification failed ('report verify', 'audit verify'), or any other failure\n"
    "      (internal server error, 'sync' stopped with Ctrl-C, ...)\n"
    "  2   usage error: unknown command or option, missing required option, bad option value\n"
    "  3   fieldsyncd unreachable or no answer within --timeout (UNAVAILABLE, DEADLINE_EXCEEDED)\n"
    "  4   no token, bad or revoked token (UNAUTHENTICATED), or role not allowed "
    "(PERMISSION_DENIED)\n"
    "  5   input refused or object not found (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,\n"
    "      FAILED_PRECONDITION, OUT_OF_RANGE)\n";

constexpr absl::string_view kOutput =
    "  Human output is aligned tables; long cells end in \"…\"; dates as stored (YYYY-MM-DD),\n"
    "  instants in UTC, money in major units with its currency (\"12,345.67 USD\").\n"
    "  --json prints exactly one JSON object on one line per command (protobuf JSON with proto\n"
    "  field names, every field present): the message for get/create/update/stats/whoami, and for\n"
    "  lists the list response, e.g. {\"projects\":[...],\"next_page_token\":\"\"}, holding every\n"
    "  item fetched; next_page_token is non-empty when more items exist beyond --limit.\n"
    "  'watch --json' prints JSON Lines instead: one ChangeEvent object per line, as it arrives.\n"
    "  Progress ('sync') and hints go to stderr; errors always go to stderr as\n"
    "  \"fieldsync: <what failed>: <reason>\".\n";

}  // namespace

std::string TopHelp(const std::vector<CommandSpec>& commands,
                    const std::vector<GroupSpec>& groups) {
  std::vector<std::pair<std::string, std::string>> rows;
  std::vector<std::string> seen;
  for (const CommandSpec& command : commands) {
    std::string first = Word(command.path, 0);
    if (std::find(seen.begin(), seen.end(), first) != seen.end()) continue;
    seen.push_back(first);
    if (first == command.path) {
      rows.emplace_back(first, command.summary);
      continue;
    }
    rows.emplace_back(absl::StrCat(first, " ", absl::StrJoin(NextWords(first, commands), "|")),
                      GroupSummary(first, groups));
  }
  return absl::StrCat(
      "fieldsync: the command-line client of fieldsyncd, for headquarters staff, and with\n"
      "'device ...' and 'sync' for a field device that records offline and syncs later.\n\n"
      "Usage: fieldsync [global options] <command> [<subcommand>] [options] [arguments]\n\n"
      "Commands:\n",
      Columns(rows), "\nGlobal options (accepted anywhere on the line):\n", FlagRows(GlobalFlags()),
      "\nOutput:\n", kOutput, "\nExit codes:\n", kExitCodes,
      "\nEnvironment:\n"
      "  FIELDSYNC_SERVER      default for --server\n"
      "  FIELDSYNC_TOKEN       default for --token\n"
      "  FIELDSYNC_DEVICE_DB   default for --device-db of 'device ...' and 'sync'\n"
      "                        (else ./fieldsync-device.db)\n"
      "  FIELDSYNC_CA_FILE     default for --ca-file (TLS with that CA)\n"
      "\nRun 'fieldsync <command> --help' for the options of a command.\n");
}

std::string GroupHelp(absl::string_view group, const std::vector<CommandSpec>& commands,
                      const std::vector<GroupSpec>& groups) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const CommandSpec* command : Subcommands(group, commands)) {
    std::string args;
    for (const std::string& positional : command->positionals)
      absl::StrAppend(&args, " ", positional);
    rows.emplace_back(absl::StrCat(command->path.substr(group.size() + 1), args), command->summary);
  }
  return absl::StrCat(GroupSummary(group, groups), "\n\nUsage: fieldsync ", group,
                      " <subcommand> [options] [arguments]\n\nSubcommands:\n", Columns(rows),
                      "\nRun 'fieldsync ", group,
                      " <subcommand> --help' for its options, 'fieldsync --help' for the global "
                      "options.\n");
}

std::string CommandHelp(const CommandSpec& command) {
  std::string text = absl::StrCat("Usage: ", Synopsis(command), "\n\n", command.summary, "\n");
  if (!command.flags.empty()) absl::StrAppend(&text, "\nOptions:\n", FlagRows(command.flags));
  if (!command.details.empty()) absl::StrAppend(&text, "\n", command.details, "\n");
  absl::StrAppend(&text,
                  "\nGlobal options: --server HOST:PORT, --token TOKEN, --json, --timeout SECONDS, "
                  "--ca-file PATH, --tls,\n--tls-server-name NAME (see 'fieldsync --help').\n");
  return text;
}

std::string UsageHint(const CommandLine& line, const std::vector<CommandSpec>& commands) {
  if (line.command != nullptr) {
    return absl::StrCat("usage: ", Synopsis(*line.command), "\nRun 'fieldsync ", line.command->path,
                        " --help' for details.\n");
  }
  if (!line.group.empty()) {
    return absl::StrCat("usage: fieldsync ", line.group, " <",
                        absl::StrJoin(NextWords(line.group, commands), "|"),
                        "> [options]\nRun 'fieldsync ", line.group, " --help' for details.\n");
  }
  return "usage: fieldsync [global options] <command> [<subcommand>] [options] [arguments]\n"
         "Run 'fieldsync --help' for the list of commands.\n";
}

}  // namespace fieldsync::cli
