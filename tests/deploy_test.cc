// Deployment: fieldsyncd's --config file and --check-config, the sample deploy/fieldsyncd.conf
// against the flags of the built binary's --help, the health check (`fieldsync health`, no
// token; NOT_SERVING while draining after SIGTERM), and the refusal of a database written by a
// newer fieldsyncd. Every test runs the real binaries.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/schema.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const std::string kSample = std::string(FIELDSYNC_SOURCE_DIR) + "/deploy/fieldsyncd.conf";
const std::string kMakeCerts = std::string(FIELDSYNC_SOURCE_DIR) + "/deploy/make-certs";

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

CommandResult Fieldsyncd(std::vector<std::string> args) {
  args.insert(args.begin(), FieldsyncdPath());
  return RunCommand(args);
}

// `fieldsync --server ADDRESS --timeout 5 ARGS...`, with no token in the environment.
CommandResult Cli(const std::string& address, std::vector<std::string> args) {
  std::vector<std::string> argv = {FieldsyncCliPath(), "--server", address, "--timeout", "5"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, {"FIELDSYNC_TOKEN="});
}

// The flag names (without "--") that `fieldsyncd --help` lists: every "--name" that starts a
// line of the help, after its indentation.
std::set<std::string> HelpFlags() {
  CommandResult help = Fieldsyncd({"--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  std::set<std::string> flags;
  std::regex flag_at_line_start(R"(^\s+--([a-z0-9][a-z0-9-]*))");
  std::istringstream lines(help.out);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, flag_at_line_start)) flags.insert(m[1]);
  }
  return flags;
}

TEST(DeployConfigTest, SampleCoversEveryFlagOfHelp) {
  const std::set<std::string> flags = HelpFlags();
  // The help this test parses: if it found almost nothing, the parsing broke, not the sample.
  ASSERT_GE(flags.size(), 20u);
  for (const char* known : {"listen", "db", "tls-cert", "config", "check-config", "help"}) {
    ASSERT_TRUE(flags.count(known)) << "--" << known << " not found in --help";
  }
  const std::string sample = ReadText(kSample);
  ASSERT_FALSE(sample.empty()) << kSample;
  for (const std::string& flag : flags) {
    // A setting appears as a line "name = ..." (perhaps commented out: "# name = ..."); a
    // command-line-only flag is named as "--name" in the sample's comments.
    std::regex key_line("(^|\\n)#? *" + flag + " *=");
    EXPECT_TRUE(std::regex_search(sample, key_line) ||
                absl::StrContains(sample, absl::StrCat("--", flag, " ")) ||
                absl::StrContains(sample, absl::StrCat("--", flag, ",")) ||
                absl::StrContains(sample, absl::StrCat("--", flag, "\n")))
        << "deploy/fieldsyncd.conf does not cover --" << flag
        << " of fieldsyncd --help: add a commented \"# " << flag
        << " = DEFAULT\" line with its explanation (or name it under \"Command line only\")";
  }
}

TEST(DeployConfigTest, CheckConfigAcceptsTheSample) {
  TempDir dir;
  // The sample points at /etc/fieldsync/tls and /var/lib/fieldsync: override both on the
  // command line with real files in a temporary folder.
  CommandResult certs = RunCommand({kMakeCerts, dir.File("tls")});
  ASSERT_EQ(certs.exit_code, 0) << certs.err;
  CommandResult check = Fieldsyncd(
      {"--config", kSample, "--db", dir.File("state/fieldsync.db"), "--tls-cert",
       dir.File("tls/server.pem"), "--tls-key", dir.File("tls/server.key"), "--check-config"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_THAT(check.out, StartsWith("configuration OK"));
  EXPECT_THAT(check.out, HasSubstr("listen 0.0.0.0:50051"));  // from the sample
  EXPECT_THAT(check.out, HasSubstr("TLS"));
  EXPECT_THAT(check.out, HasSubstr(dir.File("state/fieldsync.db")));
  // --check-config changes nothing: not even the database's folder is created.
  EXPECT_NE(access(dir.File("state").c_str(), F_OK), 0);

  // Without the overrides the sample's TLS files are missing here: exit 2, naming the flag.
  CommandResult missing =
      Fieldsyncd({"--config", kSample, "--db", dir.File("fieldsync.db"), "--check-config"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("--tls-cert"));
}

TEST(DeployConfigTest, PlaintextOffLoopbackIsRefusedUnlessAllowed) {
  TempDir dir;
  const std::string db = dir.File("fieldsync.db");
  for (const char* listen :
       {"0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051", "hq.example.org:50051"}) {
    CommandResult check = Fieldsyncd({"--listen", listen, "--db", db, "--check-config"});
    EXPECT_EQ(check.exit_code, 2) << listen << ": " << check.out;
    EXPECT_THAT(check.out, Not(HasSubstr("configuration OK"))) << listen;
    EXPECT_THAT(check.err, HasSubstr("plain text")) << listen;
    EXPECT_THAT(check.err, HasSubstr("--allow-plaintext")) << listen;
  }
  // Starting is refused the same way, before anything is created.
  CommandResult start = Fieldsyncd({"--listen", "0.0.0.0:0", "--db", db});
  EXPECT_EQ(start.exit_code, 2) << start.err;
  EXPECT_THAT(start.err, HasSubstr("plain text"));
  EXPECT_NE(access(db.c_str(), F_OK), 0);

  // Allowed explicitly: OK, but said loudly.
  CommandResult allowed =
      Fieldsyncd({"--listen", "0.0.0.0:50051", "--allow-plaintext", "--db", db, "--check-config"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
  EXPECT_THAT(allowed.out, HasSubstr("configuration OK"));
  EXPECT_THAT(allowed.out, HasSubstr("--allow-plaintext: not encrypted off this machine"));
  EXPECT_THAT(allowed.err, HasSubstr("warning"));

  // Loopback needs no TLS and gets no warning (scripts/run-demo, the tests).
  for (const char* listen : {"127.0.0.1:50051", "localhost:50051", "[::1]:50051"}) {
    CommandResult local = Fieldsyncd({"--listen", listen, "--db", db, "--check-config"});
    EXPECT_EQ(local.exit_code, 0) << listen << ": " << local.err;
    EXPECT_THAT(local.err, Not(HasSubstr("warning"))) << listen;
  }
}

TEST(DeployConfigTest, CommandLineWinsOverTheFile) {
  TempDir dir;
  const std::string conf = dir.File("f.conf");
  WriteText(conf,
            "# comment\n"
            "\n"
            "   listen = 127.0.0.1:7001   # a trailing comment\n"
            "db = " + dir.File("from-file.db") + "\n"
            "iati-org-name = \"Org # with a hash \"  # quoted\n"
            "demo-data = false\n");
  CommandResult file_only = Fieldsyncd({"--config", conf, "--check-config"});
  EXPECT_EQ(file_only.exit_code, 0) << file_only.err;
  EXPECT_THAT(file_only.out, HasSubstr("listen 127.0.0.1:7001,"));
  EXPECT_THAT(file_only.out, HasSubstr(dir.File("from-file.db")));

  // Given before or after --config, the command line wins.
  CommandResult overridden = Fieldsyncd({"--listen", "127.0.0.1:7002", "--config", conf,
                                         "--db=" + dir.File("cli.db"), "--check-config"});
  EXPECT_EQ(overridden.exit_code, 0) << overridden.err;
  EXPECT_THAT(overridden.out, HasSubstr("listen 127.0.0.1:7002,"));
  EXPECT_THAT(overridden.out, HasSubstr(dir.File("cli.db")));
  EXPECT_THAT(overridden.out, Not(HasSubstr("from-file.db")));

  // A "#" not after a blank belongs to the value: here it makes the port invalid.
  WriteText(conf, "listen = 127.0.0.1:7003#x\n");
  CommandResult hash = Fieldsyncd({"--config", conf, "--check-config"});
  EXPECT_EQ(hash.exit_code, 2);
  EXPECT_THAT(hash.err, HasSubstr("--listen: must be HOST:PORT"));
  EXPECT_THAT(hash.err, HasSubstr("127.0.0.1:7003#x"));
}

TEST(DeployConfigTest, MistakesNameTheFileLineAndKey) {
  TempDir dir;
  const std::string conf = dir.File("bad.conf");
  struct Case {
    std::string text;
    std::string line;  // "FILE:LINE: " expected in the message
    std::string says;
  };
  const std::vector<Case> cases = {
      {"listen = 127.0.0.1:0\nlisen = 1\n", ":2: ", "unknown key 'lisen'"},
      {"# ok\nlisten 127.0.0.1:0\n", ":2: ", "expected \"name = value\""},
      {"--listen = 127.0.0.1:0\n", ":1: ", "without \"--\""},
      {"db = a.db\n\ndb = b.db\n", ":3: ", "'db' is set twice (also on line 1)"},
      {"create-admin-token = true\n", ":1: ", "give --create-admin-token on the command line"},
      {"check-config = true\n", ":1: ", "give --check-config on the command line"},
      {"config = other.conf\n", ":1: ", "give --config on the command line"},
      {"demo-data = yes\n", ":1: ", "demo-data: true or false, got 'yes'"},
      {"iati-org-name = \"unterminated\n", ":1: ", "iati-org-name: a quoted value must end"},
      {"iati-org-name = \"a\" b\n", ":1: ", "iati-org-name: a quoted value must end"},
  };
  for (const Case& c : cases) {
    WriteText(conf, c.text);
    CommandResult r = Fieldsyncd({"--config", conf, "--check-config"});
    EXPECT_EQ(r.exit_code, 2) << c.text;
    EXPECT_THAT(r.err, HasSubstr("fieldsyncd: " + conf + c.line)) << c.text;
    EXPECT_THAT(r.err, HasSubstr(c.says)) << c.text;
  }
  // A missing file stops the server too, before it opens anything.
  CommandResult missing = Fieldsyncd({"--config", dir.File("nope.conf"),
                                      "--db", dir.File("x.db")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr(dir.File("nope.conf") + ": cannot read the --config file"));
  EXPECT_NE(access(dir.File("x.db").c_str(), F_OK), 0);
}

TEST(DeployConfigTest, CheckConfigRefusesBadValuesNamingTheFlag) {
  TempDir dir;
  WriteText(dir.File("not-a-folder"), "x");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--listen", "127.0.0.1:70000"}, "--listen: must be HOST:PORT"},
      {{"--listen", "50051"}, "--listen: must be HOST:PORT"},
      {{"--tls-cert", dir.File("none.pem"), "--tls-key", dir.File("none.key")},
       "--tls-cert: cannot read"},
      {{"--tls-cert", dir.File("none.pem")}, "--tls-cert and --tls-key must be given together"},
      {{"--synchronous", "SOMETIMES"}, "--synchronous"},
      {{"--max-db-mb", "-1"}, "--max-db-mb"},
      {{"--drain-seconds", "x"}, "--drain-seconds"},
      {{"--iati-org-type", "ngo"}, "--iati-org-type"},
      {{"--device-call-burst", "many"}, "--device-call-burst"},
      {{"--db", dir.File("not-a-folder/fieldsync.db")}, "is not a folder"},
      {{"--report-tmp-dir", dir.File("missing")}, "--report-tmp-dir"},
  };
  for (const auto& [args, says] : cases) {
    std::vector<std::string> argv = {"--db", dir.File("ok.db")};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--check-config");
    CommandResult r = Fieldsyncd(argv);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << args.back();
    EXPECT_THAT(r.err, HasSubstr(says)) << args[0];
    EXPECT_EQ(r.out, "") << args[0];
  }
}

// Sets the schema version recorded in a server database (behind the server's back).
void RecordSchemaVersion(const std::string& db_path, int version) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  std::string sql = absl::StrCat("INSERT INTO schema_migrations(version) VALUES(", version, ")");
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

TEST(DeploySchemaTest, DatabaseOfANewerFieldsyncdIsRefusedUntouched) {
  TempDir dir;
  const std::string db = dir.File("fieldsync.db");
  // A current database (the admin token migrates it), then one migration more than we know.
  ASSERT_EQ(Fieldsyncd({"--db", db, "--create-admin-token"}).exit_code, 0);
  const int latest = server::LatestSchemaVersion();
  ASSERT_EQ(QueryInt(db, "SELECT MAX(version) FROM schema_migrations"), latest);

  CommandResult check = Fieldsyncd({"--db", db, "--check-config"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_THAT(check.out, HasSubstr(absl::StrCat("schema ", latest, " of ", latest)));

  RecordSchemaVersion(db, latest + 1);
  const int64_t tables = QueryInt(db, "SELECT COUNT(*) FROM sqlite_master");

  check = Fieldsyncd({"--db", db, "--check-config"});
  EXPECT_EQ(check.exit_code, 2);
  EXPECT_THAT(check.err, HasSubstr(absl::StrCat("schema version ", latest + 1)));
  EXPECT_THAT(check.err, HasSubstr("newer than this fieldsyncd"));

  CommandResult start = Fieldsyncd({"--db", db, "--listen", "127.0.0.1:0"});
  EXPECT_EQ(start.exit_code, 1);
  EXPECT_THAT(start.err, HasSubstr(absl::StrCat("database schema version ", latest + 1)));
  EXPECT_THAT(start.err, HasSubstr("newer than this fieldsyncd"));
  EXPECT_THAT(start.err, Not(HasSubstr("listening")));
  // Nothing was migrated or dropped.
  EXPECT_EQ(QueryInt(db, "SELECT MAX(version) FROM schema_migrations"), latest + 1);
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM sqlite_master"), tables);
}

TEST(DeployHealthTest, ServingWithoutATokenWhileOtherCallsNeedOne) {
  TempDir dir;
  ServerProcess server;
  ASSERT_OK(server.Start(dir.path()));

  CommandResult health = Cli(server.address(), {"health"});
  EXPECT_EQ(health.exit_code, 0) << health.err;
  EXPECT_EQ(health.out, "SERVING\n");
  CommandResult json = Cli(server.address(), {"--json", "health"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(json.out, "{\"status\":\"SERVING\"}\n");

  // The health service is the only one open without a token: a tracker call is refused...
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ListProjectsRequest request;
  v1::ListProjectsResponse response;
  grpc::Status listed =
      v1::TrackerService::NewStub(server.Channel())->ListProjects(&ctx, request, &response);
  EXPECT_EQ(listed.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // ... and so is the CLI's.
  EXPECT_EQ(Cli(server.address(), {"projects", "list"}).exit_code, 4);

  // Every service the server answers has its own health status (`fieldsync health --help` gives
  // fieldsync.v1.SyncService as the example).
  for (const char* service :
       {"fieldsync.v1.SyncService", "fieldsync.v1.TrackerService", "fieldsync.v1.AdminService",
        "fieldsync.v1.ReportService", "grpc.health.v1.Health"}) {
    CommandResult named = Cli(server.address(), {"health", "--service", service});
    EXPECT_EQ(named.exit_code, 0) << service << ": " << named.err;
    EXPECT_EQ(named.out, "SERVING\n") << service;
  }

  // An unknown service: NOT_FOUND from the health service, exit 5.
  CommandResult unknown = Cli(server.address(), {"health", "--service", "no.such.Service"});
  EXPECT_EQ(unknown.exit_code, 5) << unknown.out << unknown.err;

  // Nobody listening: exit 3, as for NOT_SERVING. (A port bound here but not listening refuses
  // connections; stopping `server` instead would wait out its grace for this process's
  // still-open connection.)
  int sock = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  CommandResult down =
      Cli(absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)), {"--timeout", "2", "health"});
  close(sock);
  EXPECT_EQ(down.exit_code, 3) << down.out << down.err;
  EXPECT_THAT(down.err, HasSubstr("cannot reach fieldsyncd"));
}

bool Alive(pid_t pid) { return waitpid(pid, nullptr, WNOHANG) == 0; }

TEST(DeployHealthTest, NotServingWhileDrainingAfterSigtermThenStops) {
  TempDir dir;
  // drain-seconds from a --config file: the running server reads its settings from there.
  const std::string conf = dir.File("fieldsyncd.conf");
  WriteText(conf, "drain-seconds = 120\n");
  ServerProcess server;
  ASSERT_OK(server.Start(dir.path(), {"--config", conf}));
  ASSERT_EQ(Cli(server.address(), {"health"}).out, "SERVING\n");

  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  // Poll until the server says NOT_SERVING (it must, well within its 120 s drain).
  CommandResult health;
  for (int i = 0; i < 100; ++i) {
    health = Cli(server.address(), {"health"});
    if (health.out == "NOT_SERVING\n") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(health.out, "NOT_SERVING\n") << health.err;
  EXPECT_EQ(health.exit_code, 3);
  EXPECT_EQ(Cli(server.address(), {"health", "--service", "fieldsync.v1.SyncService"}).out,
            "NOT_SERVING\n");
  EXPECT_THAT(health.err, HasSubstr("draining"));
  EXPECT_TRUE(Alive(server.pid())) << "the server must keep serving while it drains";
  EXPECT_THAT(server.Log(), HasSubstr("health NOT_SERVING; draining for 120 s"));

  // Still serving calls meanwhile. (Through the CLI: a connection this test process kept open
  // would make the stop below wait for the 5 s grace.)
  CommandResult listed =
      Cli(server.address(), {"--token", server.admin_token(), "projects", "list"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;

  // A second SIGTERM (Stop sends it) ends the drain: the server stops long before 120 s.
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server.Stop(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
  EXPECT_THAT(server.Log(), HasSubstr("stopped"));
}

}  // namespace
}  // namespace fieldsync::testing
