// The CLI run in-process where no server is needed: help, usage errors, missing token,
// unreachable server. Scenarios against a real fieldsyncd are in tests/cli_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/cli.h"
#include "cli/errors.h"

namespace fieldsync::cli {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct RunResult {
  int code;
  std::string out;
  std::string err;
};

RunResult RunFieldsync(const std::vector<std::string>& args, Environment env = {},
                       std::string stdin_text = "") {
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  int code = RunCli(args, env, {in, out, err});
  return {code, out.str(), err.str()};
}

// A loopback port nobody listens on: bound by the kernel's choice, then closed.
int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(CliOfflineTest, TopHelpListsCommandsAndExitCodes) {
  RunResult r = RunFieldsync({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "");
  EXPECT_THAT(r.out, HasSubstr("projects list|get|create|update"));
  EXPECT_THAT(r.out, HasSubstr("tokens list|create|revoke"));
  EXPECT_THAT(r.out, HasSubstr("--server HOST:PORT"));
  EXPECT_THAT(r.out, HasSubstr("Exit codes:"));
  EXPECT_THAT(r.out, HasSubstr("  3   fieldsyncd unreachable"));
  EXPECT_THAT(r.out, HasSubstr("FIELDSYNC_TOKEN"));
}

TEST(CliOfflineTest, GroupAndCommandHelp) {
  RunResult group = RunFieldsync({"projects", "-h"});
  EXPECT_EQ(group.code, 0);
  EXPECT_THAT(group.out, HasSubstr("Usage: fieldsync projects <subcommand>"));
  EXPECT_THAT(group.out, HasSubstr("update ID"));

  RunResult command = RunFieldsync({"projects", "create", "--help"});
  EXPECT_EQ(command.code, 0);
  EXPECT_THAT(command.out,
              StartsWith("Usage: fieldsync projects create --partner ID --kind KIND --title TEXT "
                         "--country CC [options]\n"));
  EXPECT_THAT(command.out, HasSubstr("--budget AMOUNT"));
  EXPECT_THAT(command.out, HasSubstr("--iati-id ID"));
}

TEST(CliOfflineTest, Version) {
  RunResult r = RunFieldsync({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, StartsWith("fieldsync "));
}

TEST(CliOfflineTest, UnknownCommandIsUsageError) {
  RunResult r = RunFieldsync({"projcts", "list"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "fieldsync: unknown command 'projcts'\n"
            "usage: fieldsync [global options] <command> [<subcommand>] [options] [arguments]\n"
            "Run 'fieldsync --help' for the list of commands.\n");
}

TEST(CliOfflineTest, UnknownOptionShowsCommandUsage) {
  RunResult r = RunFieldsync({"sites", "list", "--projet", "x"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "fieldsync: unknown option '--projet' for 'sites list'\n"
            "usage: fieldsync sites list [options]\n"
            "Run 'fieldsync sites list --help' for details.\n");
}

TEST(CliOfflineTest, BadOptionValuesAreUsageErrors) {
  Environment env{"127.0.0.1:1", "fs_token"};
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"projects", "list", "--kind", "school"},
       "fieldsync: --kind: must be one of well, cataract, classroom, got 'school'\n"},
      {{"projects", "list", "--limit", "0"}, "fieldsync: --limit: must be a whole number"},
      {{"sites", "create", "--project", "p", "--name", "n", "--lat", "north", "--lon", "1"},
       "fieldsync: --lat: must be a number, got 'north'\n"},
      {{"projects", "create", "--partner", "p", "--kind", "well", "--title", "t", "--country", "KE",
        "--budget", "100.5", "--currency", "UGX"},
       "fieldsync: --budget: UGX has no minor unit; give a whole amount, got '100.5'\n"},
      {{"projects", "create", "--partner", "p", "--kind", "well", "--title", "t", "--country", "KE",
        "--budget", "100"},
       "fieldsync: --budget needs --currency"},
      {{"records", "create", "--file", "a.json", "--data", "{}"},
       "fieldsync: give exactly one of --file FILE.json and --data JSON\n"},
      {{"records", "create", "--data", "{\"wel\":{}}"},
       "fieldsync: --data: not a fieldsync.v1.Record in protobuf JSON"},
      {{"tokens", "create", "--ttl", "30d"},
       "fieldsync: give exactly one of --user ID and --device ID\n"},
      {{"tokens", "create", "--user", "u", "--ttl", "1w"}, "fieldsync: --ttl: must be a duration"},
      {{"stats", "--by", "year"},
       "fieldsync: --by: must be one of none, country, partner, kind, month"},
      {{"partners", "update", "p1"}, "fieldsync: nothing to change: give --name or --countries\n"},
      {{"whoami", "--timeout", "0"}, "fieldsync: --timeout: must be more than 0"},
  };
  for (const Case& c : cases) {
    RunResult r = RunFieldsync(c.args, env);
    EXPECT_EQ(r.code, 2) << c.args[0] << " " << c.args[1] << ": " << r.err;
    EXPECT_THAT(r.err, StartsWith(c.message)) << c.args[0] << " " << c.args[1];
    EXPECT_THAT(r.err, HasSubstr("\nusage: fieldsync ")) << r.err;
  }
}

TEST(CliOfflineTest, MissingTokenExits4BeforeCalling) {
  // The server address is unreachable: exit 4 (not 3) proves no call was attempted.
  RunResult r = RunFieldsync({"projects", "list"}, {absl::StrCat("127.0.0.1:", UnusedPort()), ""});
  EXPECT_EQ(r.code, 4);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith("fieldsync: list projects: no token given\nhint: pass a valid "
                                "token with --token TOKEN or set FIELDSYNC_TOKEN"));
}

// RESOURCE_EXHAUSTED has two causes a user must act on differently: the per-device rate limit
// (wait as asked) and a server that cannot store anything (a full disk: HQ must act).
TEST(CliOfflineTest, RateLimitIsToldApartFromAFullServer) {
  EXPECT_TRUE(IsRateLimited(absl::ResourceExhaustedError(
      "Push: device sync calls per minute exceeded (60); retry after 850 ms (gave up after 8 "
      "attempts without progress)")));
  EXPECT_FALSE(IsRateLimited(
      absl::ResourceExhaustedError("Enroll: database or disk is full (in: INSERT INTO tokens)")));
  EXPECT_FALSE(IsRateLimited(absl::ResourceExhaustedError("postgresql: could not extend file")));
  EXPECT_FALSE(IsRateLimited(absl::UnavailableError("retry after 5 ms")));
}

// A server address is HOST:PORT with a port from 1 to 65535 (gRPC would silently take 70000 as
// 70000 - 65536), an IPv6 address in brackets; the message names the option it came from.
TEST(CliOfflineTest, ServerAddressIsCheckedNamingTheOption) {
  struct Case {
    std::string server;
    std::string message;
  };
  const std::vector<Case> bad = {
      {"hq.example.org",
       "fieldsync: --server: must be HOST:PORT (an IPv6 address in brackets: "
       "[::1]:50051), got 'hq.example.org': no port (e.g. hq.example.org:50051)"},
      {"127.0.0.1:70000", "the port must be a number from 1 to 65535, not '70000'"},
      {"127.0.0.1:65536", "the port must be a number from 1 to 65535, not '65536'"},
      {"127.0.0.1:0", "the port must be a number from 1 to 65535, not '0'"},
      {"127.0.0.1:", "the port must be a number from 1 to 65535, not ''"},
      {"127.0.0.1:5o051", "the port must be a number from 1 to 65535, not '5o051'"},
      {":50051", "no host"},
      {"::1:50051", "an IPv6 address goes in brackets, e.g. [::1]:50051"},
      {"[::1]", "no ':PORT' after the ']'"},
      {"[::1:50051", "no ']' after the IPv6 address"},
      {"hq example:50051", "' ' cannot be part of a host name"},
  };
  for (const Case& c : bad) {
    RunResult r = RunFieldsync({"whoami", "--server", c.server, "--token", "fs_x"});
    EXPECT_EQ(r.code, 2) << c.server << ": " << r.err;
    EXPECT_THAT(r.err, StartsWith("fieldsync: --server: ")) << c.server;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.server;
  }
  // From the environment: named as such.
  RunResult r = RunFieldsync({"whoami", "--token", "fs_x"}, {"localhost", ""});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, StartsWith("fieldsync: FIELDSYNC_SERVER: must be HOST:PORT")) << r.err;
  // Good addresses pass the check and get as far as the missing token (exit 4, no call made).
  for (const std::string good : {"127.0.0.1:1", "localhost:65535", "[::1]:50051",
                                 "hq-1.example.org:443", "[fe80::1%eth0]:50051"}) {
    r = RunFieldsync({"projects", "list", "--server", good});
    EXPECT_EQ(r.code, 4) << good << ": " << r.err;
    EXPECT_THAT(r.err, StartsWith("fieldsync: list projects: no token given")) << good;
  }
}

TEST(CliOfflineTest, TokenFlagOverridesEnvironmentAndIsChecked) {
  RunResult r = RunFieldsync({"whoami", "--token", "fs bad"}, {"127.0.0.1:1", "fs_env"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, StartsWith("fieldsync: --token: contains spaces or control characters\n"));
}

TEST(CliOfflineTest, UnreachableServerExits3) {
  const std::string address = absl::StrCat("127.0.0.1:", UnusedPort());
  RunResult r =
      RunFieldsync({"projects", "list", "--server", address, "--token", "fs_x", "--timeout", "10"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err,
              StartsWith(absl::StrCat("fieldsync: list projects: cannot reach fieldsyncd at ",
                                      address, " (is it running?)")));
}

TEST(CliOfflineTest, SilentServerExits3AfterTheDeadline) {
  // A socket that listens but never speaks: the TCP connection opens, HTTP/2 never starts.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string address = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  RunResult r = RunFieldsync({"whoami", "--timeout", "0.5"}, {address, "fs_x"});
  close(fd);
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err, absl::StrCat("fieldsync: whoami: cannot reach fieldsyncd at ", address,
                                " (is it running?): no answer within 500ms\n"));
}

TEST(CliOfflineTest, ServerFromEnvironment) {
  const std::string address = absl::StrCat("127.0.0.1:", UnusedPort());
  RunResult r = RunFieldsync({"whoami"}, {address, "fs_x"});
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("cannot reach fieldsyncd at ", address)));
}

TEST(CliOfflineTest, UnreadableCaFileIsUsageError) {
  RunResult r =
      RunFieldsync({"whoami", "--ca-file", "/nonexistent/ca.pem"}, {"127.0.0.1:1", "fs_x"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, StartsWith("fieldsync: --ca-file: cannot read '/nonexistent/ca.pem': No such "
                                "file or directory\n"));
}

TEST(CliOfflineTest, RecordFromStdinIsParsedBeforeCalling) {
  // Valid JSON from stdin gets as far as the (unreachable) server.
  const std::string address = absl::StrCat("127.0.0.1:", UnusedPort());
  RunResult r =
      RunFieldsync({"records", "create", "--data", "-"}, {address, "fs_x"},
                   R"({"project_id":"p","expenditure":{"category":"EXPENDITURE_CATEGORY_OTHER"}})");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_THAT(r.err, StartsWith("fieldsync: create record: cannot reach fieldsyncd"));
}

TEST(CliOfflineTest, HelpListsFieldAndHqCommands) {
  RunResult top = RunFieldsync({"--help"});
  EXPECT_EQ(top.code, 0);
  EXPECT_THAT(top.out, HasSubstr("device enroll|set-server|status|rejections|records "));
  EXPECT_THAT(top.out, HasSubstr("devices list|create|enroll-code|disable|enable "));
  EXPECT_THAT(top.out, HasSubstr("records list|get|create|update|delete "));
  EXPECT_THAT(top.out, HasSubstr("conflicts list|resolve "));
  EXPECT_THAT(top.out, HasSubstr("\n  sync "));
  EXPECT_THAT(top.out, HasSubstr("\n  watch "));
  EXPECT_THAT(top.out, HasSubstr("FIELDSYNC_DEVICE_DB"));

  RunResult device = RunFieldsync({"device", "--help"});
  EXPECT_EQ(device.code, 0);
  EXPECT_THAT(device.out, HasSubstr("Usage: fieldsync device <subcommand>"));
  EXPECT_THAT(device.out, HasSubstr("  records edit ID "));
  RunResult records = RunFieldsync({"device", "records", "-h"});
  EXPECT_EQ(records.code, 0);
  EXPECT_THAT(records.out, HasSubstr("Usage: fieldsync device records <subcommand>"));
  EXPECT_THAT(records.out, HasSubstr("  delete ID "));
  RunResult add = RunFieldsync({"device", "records", "add", "--help"});
  EXPECT_EQ(add.code, 0);
  EXPECT_THAT(add.out, StartsWith("Usage: fieldsync device records add [options]\n"));
  EXPECT_THAT(add.out, HasSubstr("--device-db PATH"));
  RunResult sync = RunFieldsync({"sync", "--help"});
  EXPECT_EQ(sync.code, 0);
  EXPECT_THAT(sync.out, HasSubstr("--attempts N"));
  EXPECT_THAT(sync.out, HasSubstr("Ctrl-C"));
}

TEST(CliOfflineTest, ThreeWordCommandsParseAndHintByGroup) {
  RunResult r = RunFieldsync({"device", "records"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "fieldsync: 'device records' needs a subcommand\n"
            "usage: fieldsync device records <list|get|add|edit|delete> [options]\n"
            "Run 'fieldsync device records --help' for details.\n");
  r = RunFieldsync({"device", "recrods", "list"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "fieldsync: unknown command 'device recrods'\n"
            "usage: fieldsync device <enroll|set-server|status|rejections|records> [options]\n"
            "Run 'fieldsync device --help' for details.\n");
  r = RunFieldsync({"device", "records", "get"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, StartsWith("fieldsync: 'device records get' needs ID\n"
                                "usage: fieldsync device records get [options] ID\n"));
  r = RunFieldsync({"device", "enroll"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, StartsWith("fieldsync: 'device enroll' needs --code CODE\n"));
}

TEST(CliOfflineTest, DeviceCommandsNeedAnEnrolledDatabase) {
  char dir_template[] = "/tmp/fieldsync-cli-offline-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string missing = dir + "/none.db";
  Environment env;
  env.device_db = missing;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"device", "status"},
           {"device", "records", "list"},
           {"device", "records", "get", "01900000-0000-7000-8000-000000000000"},
           {"sync"}}) {
    RunResult r = RunFieldsync(args, env);
    EXPECT_EQ(r.code, 5) << args[0];
    EXPECT_EQ(r.out, "");
    EXPECT_THAT(r.err, StartsWith(absl::StrCat("fieldsync: no device database at ", missing,
                                               "\nhint: enroll this device first with "
                                               "'fieldsync device enroll --code CODE'")));
  }
  // --device-db overrides the environment; nothing is created by looking.
  const std::string other = dir + "/other.db";
  RunResult r = RunFieldsync({"device", "status", "--device-db", other}, env);
  EXPECT_EQ(r.code, 5);
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("fieldsync: no device database at ", other, "\n")));
  EXPECT_NE(access(other.c_str(), F_OK), 0);
  EXPECT_NE(access(missing.c_str(), F_OK), 0);

  // A failed enrollment leaves no database behind.
  const std::string address = absl::StrCat("127.0.0.1:", UnusedPort());
  r = RunFieldsync({"device", "enroll", "--code", "ABCD-EFGH-JKLM-NPQR-STUV", "--server", address,
                    "--timeout", "5"},
                   env);
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("fieldsync: enroll: cannot reach fieldsyncd at ",
                                             address, " (is it running?): ")));
  EXPECT_NE(access(missing.c_str(), F_OK), 0);
  rmdir(dir.c_str());
}

TEST(CliOfflineTest, NewCommandsCheckTheirOptions) {
  Environment env{"127.0.0.1:1", "fs_token"};
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"devices", "enroll-code", "d1", "--ttl", "never"},
       "fieldsync: --ttl: an enrollment code must expire"},
      {{"devices", "enroll-code", "d1", "--ttl", "1w"}, "fieldsync: --ttl: must be a duration"},
      {{"conflicts", "resolve", "c1"},
       "fieldsync: give exactly one of --keep-winner and --take-loser\n"},
      {{"conflicts", "resolve", "c1", "--keep-winner", "--take-loser"},
       "fieldsync: give exactly one of --keep-winner and --take-loser\n"},
      {{"watch", "--max-events", "0"}, "fieldsync: --max-events: must be a whole number"},
      {{"watch", "--after", "-1"}, "fieldsync: --after: must be a whole number"},
      {{"watch", "--kind", "school"}, "fieldsync: --kind: must be one of well, cataract"},
      {{"sync", "--attempts", "0"}, "fieldsync: --attempts: must be a whole number"},
      {{"device", "records", "add"},
       "fieldsync: give exactly one of --file FILE.json and --data JSON\n"},
      {{"device", "records", "edit", "r1", "--data", "{\"id\":\"r2\"}"},
       "fieldsync: the record JSON has id 'r2', not r1\n"},
      {{"device", "records", "list", "--from", "2025-02-30"}, "fieldsync: --from: "},
  };
  for (const Case& c : cases) {
    RunResult r = RunFieldsync(c.args, env);
    EXPECT_EQ(r.code, 2) << c.args[0] << " " << c.args[1] << ": " << r.err;
    EXPECT_THAT(r.err, StartsWith(c.message)) << c.args[0] << " " << c.args[1];
    EXPECT_THAT(r.err, HasSubstr("\nusage: fieldsync ")) << r.err;
  }
}

}  // namespace
}  // namespace fieldsync::cli
