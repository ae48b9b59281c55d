// The fieldsync CLI as a field device and as HQ around it, against a real fieldsyncd: enrolling
// with a one-time code, recording offline, syncing (also against a dead server, and stopped with
// Ctrl-C), HQ edits reaching the device, a conflict HQ resolves, and the live change feed. Every
// step runs the built `fieldsync` executable and checks its exit code and output.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "fieldsync/v1/admin.pb.h"
#include "fieldsync/v1/domain.pb.h"
#include "fieldsync/v1/tracker.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/testing/server_process.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;
namespace v1 = ::fieldsync::v1;

// The caller's FIELDSYNC_* variables must not leak into a test.
const std::vector<std::string> kCleanEnv = {
    "FIELDSYNC_SERVER=", "FIELDSYNC_TOKEN=", "FIELDSYNC_DEVICE_DB="};

std::string Describe(const CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout: ", r.out, "\nstderr: ", r.err);
}

template <typename T>
T ParseJson(const std::string& json) {
  T message;
  auto status = google::protobuf::util::JsonStringToMessage(json, &message);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return message;
}

// A field of a JSON object printed by the CLI (device status, sync summary).
google::protobuf::Value Field(const std::string& json, const std::string& key) {
  auto object = ParseJson<google::protobuf::Struct>(json);
  auto it = object.fields().find(key);
  EXPECT_NE(it, object.fields().end()) << key << " not in " << json;
  return it == object.fields().end() ? google::protobuf::Value() : it->second;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The CLI started in the background (to stop it with a signal), its output going to files.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::string& dir)
      : out_path_(dir + "/bg.out"), err_path_(dir + "/bg.err") {
    pid_ = fork();
    if (pid_ != 0) return;
    int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    for (const std::string& kv : kCleanEnv) putenv(strdup(kv.c_str()));
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  ~Background() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Waits up to 30 s until `done(stdout, stderr)` holds.
  bool WaitFor(const std::function<bool(const std::string&, const std::string&)>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done(ReadFile(out_path_), ReadFile(err_path_))) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // Sends `signal` and waits for the exit.
  CommandResult Stop(int signal) {
    kill(pid_, signal);
    return Wait();
  }

  // Waits for the exit.
  CommandResult Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    CommandResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    r.out = ReadFile(out_path_);
    r.err = ReadFile(err_path_);
    return r;
  }

 private:
  std::string out_path_;
  std::string err_path_;
  pid_t pid_ = -1;
};

class CliFieldTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start(dir_.path()).ok()) << server_.Log();
    address_ = server_.address();
    db_ = dir_.File("device.db");
    partner_ = HqJson<v1::Partner>(
        {"partners", "create", "--name", "Kisumu Water Trust", "--countries", "KE"});
    project_ = HqJson<v1::Project>({"projects", "create", "--partner", partner_.id(), "--kind",
                                    "well", "--title", "Boreholes for Kisumu", "--country", "KE",
                                    "--status", "active"});
    site_ = HqJson<v1::Site>({"sites", "create", "--project", project_.id(), "--name",
                              "Nyalenda borehole", "--lat", "-0.1022", "--lon", "34.7617"});
    device_ = HqJson<v1::Device>(
        {"devices", "create", "--partner", partner_.id(), "--name", "Tablet 3, Kisumu team"});
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "fieldsyncd log:\n" << server_.Log();
  }

  // The CLI as HQ: the test server and the admin's token.
  CommandResult Hq(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::FieldsyncCliPath(), "--server", address_, "--token",
                                     server_.admin_token()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, kCleanEnv);
  }

  // HQ with --json: expects success and one line of JSON, parsed as a `T`.
  template <typename T>
  T HqJson(std::vector<std::string> args) {
    args.push_back("--json");
    CommandResult r = Hq(args);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_EQ(r.err, "");
    return ParseJson<T>(r.out);
  }

  // The CLI as the field device: its database, no server or token unless given.
  CommandResult Device(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::FieldsyncCliPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--device-db", db_});
    return testing::RunCommand(argv, kCleanEnv);
  }

  std::string EnrollmentCode() {
    return HqJson<v1::CreateEnrollmentResponse>({"devices", "enroll-code", device_.id()}).code();
  }

  // Enrolls the device and syncs once, so that it holds the project and the site.
  void EnrollAndSync() {
    CommandResult r =
        Device({"device", "enroll", "--code", EnrollmentCode(), "--server", address_});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    r = Device({"sync", "--quiet"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
  }

  std::string WellJson(int population) const {
    return absl::StrCat(R"({"project_id":")", project_.id(), R"(","site_id":")", site_.id(),
                        R"(","well":{"drilled_depth_m":80,"static_water_level_m":20,)",
                        R"("yield_lph":1200,"water_source":"WATER_SOURCE_BOREHOLE",)",
                        R"("extraction":"EXTRACTION_TECHNOLOGY_HAND_PUMP",)",
                        R"("functional_status":"FUNCTIONAL_STATUS_FUNCTIONAL",)",
                        R"("population_served":)", population, R"(,"visit_date":"2025-03-14"}})");
  }

  // Records a well on the device; returns it as the device answered.
  v1::Record AddWell(int population) {
    CommandResult r =
        Device({"device", "records", "add", "--data", WellJson(population), "--json"});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return ParseJson<v1::Record>(r.out);
  }

  v1::Record DeviceRecord(const std::string& id) {
    CommandResult r = Device({"device", "records", "get", id, "--json"});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return ParseJson<v1::Record>(r.out);
  }

  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::string address_;
  std::string db_;
  v1::Partner partner_;
  v1::Project project_;
  v1::Site site_;
  v1::Device device_;
};

TEST_F(CliFieldTest, EnrollRecordOfflineThenSyncToHq) {
  // HQ makes a code and shows it prominently, with the command to run on the device.
  CommandResult r = Hq({"devices", "enroll-code", device_.id(), "--ttl", "2d"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
  ASSERT_THAT(lines, SizeIs(7)) << r.out;
  EXPECT_THAT(lines[0], StartsWith(absl::StrCat("Enrollment code for device ", device_.id(),
                                                " (single use, valid until ")));
  EXPECT_THAT(lines[2], MatchesRegex("    [A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-"
                                     "[A-Z0-9]{4}"));
  const std::string code = lines[2].substr(4);
  EXPECT_EQ(lines[5],
            absl::StrCat("  fieldsync device enroll --code ", code, " --server ", address_));

  r = Device({"device", "enroll", "--code", code, "--server", address_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out,
            absl::StrCat("Enrolled this device as ", device_.id(), " (partner ", partner_.id(),
                         ") with fieldsyncd at ", address_, ".\nIts data is kept in ", db_,
                         "; run 'fieldsync sync' to receive its partner's projects.\n"));
  EXPECT_EQ(r.err, "");

  // Before the first sync the device knows no project: a record cannot refer to one.
  r = Device({"device", "records", "add", "--data", WellJson(350)});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("fieldsync: add record: record.project_id: no project "
                                             "with id \"",
                                             project_.id(), "\" on this device")));

  // The first sync brings the project and the site; progress goes to stderr, line by line.
  r = Device({"sync"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out,
            absl::StrCat("Synced with ", address_,
                         ": pushed 0 changes, pulled 2 documents in 1 page, 0 conflicts.\n"));
  EXPECT_THAT(r.err, StartsWith("sync: handshake: pushed 0/0, pulled 0 documents, 0 pages\n"));
  EXPECT_THAT(r.err, HasSubstr("sync: pull: pushed 0/0, pulled 2 documents, 1 page\n"));

  // Offline: the server is down, the device records anyway.
  server_.Stop();
  r = Device({"device", "records", "add", "--data", WellJson(350)});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("well.population_served:"));
  EXPECT_EQ(r.err, "(saved on this device; 1 change waiting for 'fieldsync sync')\n");
  r = Device({"device", "records", "list"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, StartsWith("ID "));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("  well  2025-03-14  ", project_.id(),
                                            "  functional, 350 people, borehole\n")));
  auto listed = ParseJson<v1::ListRecordsResponse>(
      Device({"device", "records", "list", "--kind", "well", "--json"}).out);
  ASSERT_THAT(listed.records(), SizeIs(1));
  const std::string id = listed.records(0).id();
  EXPECT_THAT(ParseJson<v1::ListRecordsResponse>(
                  Device({"device", "records", "list", "--kind", "expenditure", "--json"}).out)
                  .records(),
              IsEmpty());

  r = Device({"device", "status"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, StartsWith(absl::StrCat("device:          ", device_.id(), "\n")));
  EXPECT_THAT(r.out, HasSubstr("\npending changes: 1\n"));
  EXPECT_THAT(r.out, HasSubstr("\ndevice_seq:      last 1, acked 0\n"));
  EXPECT_THAT(r.out, HasSubstr("\nlocal documents: 1 project, 1 site, 1 record\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("last sync:       never")));
  r = Device({"device", "status", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(Field(r.out, "pending_changes").number_value(), 1);
  EXPECT_EQ(Field(r.out, "last_device_seq").number_value(), 1);
  EXPECT_EQ(Field(r.out, "acked_device_seq").number_value(), 0);
  EXPECT_EQ(Field(r.out, "partner_id").string_value(), partner_.id());
  EXPECT_EQ(Field(r.out, "server_address").string_value(), address_);
  EXPECT_THAT(Field(r.out, "cursor").string_value(), Not(IsEmpty()));

  // Syncing with the server down fails clearly, after the retries asked for, and keeps the record.
  r = Device({"sync", "--attempts", "2"});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("fieldsync: sync: cannot reach fieldsyncd at ",
                                            address_, " (is it running?): ")));
  EXPECT_THAT(r.err, HasSubstr("(gave up after 2 attempts without progress)\n"));
  EXPECT_THAT(r.err, HasSubstr("\nhint: what this device recorded stays in its database"));
  EXPECT_THAT(r.err, HasSubstr("sync: handshake: pushed 0/0, pulled 0 documents, 0 pages, "
                               "1 retry\n"));
  EXPECT_EQ(Field(Device({"device", "status", "--json"}).out, "pending_changes").number_value(), 1);

  // Back online: the sync pushes the record.
  ASSERT_TRUE(server_.Restart().ok()) << server_.Log();
  r = Device({"sync", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(Field(r.out, "changes_pushed").number_value(), 1);
  EXPECT_EQ(Field(r.out, "changes_total").number_value(), 1);
  EXPECT_EQ(Field(r.out, "conflicts").number_value(), 0);
  EXPECT_EQ(Field(r.out, "retries").number_value(), 0);
  EXPECT_EQ(Field(r.out, "repaired").bool_value(), false);
  EXPECT_THAT(r.err, HasSubstr("sync: push: pushed 1/1, pulled 0 documents, 0 pages\n"));
  r = Device({"device", "status", "--json"});
  EXPECT_EQ(Field(r.out, "pending_changes").number_value(), 0);
  EXPECT_EQ(Field(r.out, "acked_device_seq").number_value(), 1);
  EXPECT_THAT(Field(r.out, "last_sync_at").string_value(), MatchesRegex("20[0-9-]+T[0-9:]+Z"));

  // HQ sees the record, made by the device.
  auto at_hq = HqJson<v1::ListRecordsResponse>({"records", "list", "--project", project_.id()});
  ASSERT_THAT(at_hq.records(), SizeIs(1));
  EXPECT_EQ(at_hq.records(0).id(), id);
  EXPECT_EQ(at_hq.records(0).well().population_served(), 350);
  EXPECT_EQ(at_hq.records(0).audit().created_by(), device_.id());

  // ... and when the device last synced, and how far.
  r = Hq({"devices", "list"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, StartsWith("ID "));
  EXPECT_THAT(r.out, HasSubstr("ACKED SEQ  OPEN CONFLICTS  LAST SYNC "));
  EXPECT_THAT(r.out, HasSubstr("  STATE\n"));
  EXPECT_THAT(r.out, MatchesRegex(absl::StrCat(".*\n", device_.id(),
                                               "  Tablet 3, Kisumu team .*  1  +0  "
                                               "20[0-9-]+T[0-9:]+Z  enabled\n")));
  auto devices = HqJson<v1::ListDevicesResponse>({"devices", "list"});
  ASSERT_THAT(devices.devices(), SizeIs(1));
  EXPECT_TRUE(devices.devices(0).has_last_sync_at());
  EXPECT_EQ(devices.devices(0).acked_device_seq(), 1);
  EXPECT_EQ(devices.devices(0).open_conflicts(), 0);
}

TEST_F(CliFieldTest, EditsTravelBothWays) {
  EnrollAndSync();
  const v1::Record added = AddWell(350);
  ASSERT_EQ(Device({"sync", "--quiet"}).exit_code, 0);

  // HQ changes the population; the device receives it.
  std::string body = WellJson(500);
  body = body.substr(body.find(R"("well":)"));
  const v1::Record at_hq =
      HqJson<v1::Record>({"records", "update", added.id(), "--data", absl::StrCat("{", body)});
  EXPECT_EQ(at_hq.well().population_served(), 500);
  CommandResult r = Device({"sync", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, absl::StrCat("Synced with ", address_,
                                ": pushed 0 changes, pulled 1 document in 1 page, 0 conflicts.\n"));
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(DeviceRecord(added.id()).well().population_served(), 500);
  r = Device({"device", "records", "get", added.id()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("well.population_served:    500\n"));

  // The device changes only the fields it names; HQ receives exactly that.
  r = Device({"device", "records", "edit", added.id(), "--data",
              R"({"well":{"yield_lph":900,"notes":"pump greased"}})"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("well.yield_lph:            900\n"));
  EXPECT_EQ(r.err, "(saved on this device; 1 change waiting for 'fieldsync sync')\n");
  const v1::Record edited = DeviceRecord(added.id());
  EXPECT_EQ(edited.well().yield_lph(), 900);
  EXPECT_EQ(edited.well().notes(), "pump greased");
  EXPECT_EQ(edited.well().population_served(), 500);
  EXPECT_EQ(edited.site_id(), site_.id());
  ASSERT_EQ(Device({"sync", "--quiet"}).exit_code, 0);
  const v1::Record hq_after = HqJson<v1::Record>({"records", "get", added.id()});
  EXPECT_EQ(hq_after.well().yield_lph(), 900);
  EXPECT_EQ(hq_after.well().notes(), "pump greased");
  EXPECT_EQ(hq_after.well().population_served(), 500);

  // A change the device's own checks refuse: exit 5, naming the field.
  r = Device({"device", "records", "edit", added.id(), "--data", R"({"well":{"yield_lph":-5}})"});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("fieldsync: edit record ", added.id(), ": ")));
  EXPECT_THAT(r.err, HasSubstr("yield_lph"));

  // HQ deletes the record; the device drops it at its next sync.
  r = Hq({"records", "delete", added.id()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, absl::StrCat("Deleted record ", added.id(), " (well, 2025-03-14, project ",
                                project_.id(), "); devices remove it at their next sync.\n"));
  r = Hq({"records", "delete", added.id()});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("fieldsync: delete record ", added.id(), ": ")));
  ASSERT_EQ(Device({"sync", "--quiet"}).exit_code, 0);
  r = Device({"device", "records", "get", added.id()});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("fieldsync: get record ", added.id(), ": ")));

  // The device deletes one of its own; HQ no longer has it after the sync.
  const v1::Record second = AddWell(120);
  r = Device({"device", "records", "delete", second.id()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, absl::StrCat("Deleted record ", second.id(), " (well, 2025-03-14, project ",
                                project_.id(), ") on this device.\n"));
  EXPECT_EQ(r.err, "(saved on this device; 2 changes waiting for 'fieldsync sync')\n");
  EXPECT_EQ(Device({"device", "records", "delete", second.id()}).exit_code, 5);
  ASSERT_EQ(Device({"sync", "--quiet"}).exit_code, 0);
  r = Hq({"records", "get", second.id()});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_EQ(Hq({"records", "list", "--json"}).out, "{\"records\":[],\"next_page_token\":\"\"}\n");
}

TEST_F(CliFieldTest, ConcurrentEditIsAConflictHqResolves) {
  EnrollAndSync();
  const v1::Record added = AddWell(350);
  ASSERT_EQ(Device({"sync", "--quiet"}).exit_code, 0);

  // Offline, the device sets the yield; a moment later HQ sets it too.
  CommandResult r =
      Device({"device", "records", "edit", added.id(), "--data", R"({"well":{"yield_lph":500}})"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string body = WellJson(350);
  body = body.substr(body.find(R"("well":)"));
  absl::StrReplaceAll({{R"("yield_lph":1200)", R"("yield_lph":700)"}}, &body);
  EXPECT_EQ(HqJson<v1::Record>({"records", "update", added.id(), "--data", absl::StrCat("{", body)})
                .well()
                .yield_lph(),
            700);

  r = Device({"sync"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, absl::StrCat("Synced with ", address_,
                                ": pushed 1 change, pulled 1 document in 1 page, 1 conflict.\n"));
  // The later edit (HQ's) wins everywhere.
  EXPECT_EQ(DeviceRecord(added.id()).well().yield_lph(), 700);

  auto open = HqJson<v1::ListConflictsResponse>({"conflicts", "list", "--open"});
  ASSERT_THAT(open.conflicts(), SizeIs(1));
  const v1::Conflict& conflict = open.conflicts(0);
  EXPECT_EQ(conflict.collection(), "record");
  EXPECT_EQ(conflict.doc_id(), added.id());
  EXPECT_EQ(conflict.path(), "well.yield_lph");
  EXPECT_EQ(conflict.status(), v1::CONFLICT_STATUS_OPEN);
  EXPECT_EQ(conflict.losing_writer(), device_.id());
  EXPECT_THAT(conflict.losing_value_json(), HasSubstr("500"));
  EXPECT_THAT(conflict.winning_value_json(), HasSubstr("700"));
  EXPECT_EQ(conflict.partner_id(), partner_.id());
  EXPECT_THAT(
      HqJson<v1::ListConflictsResponse>({"conflicts", "list", "--doc", site_.id()}).conflicts(),
      IsEmpty());

  r = Hq({"conflicts", "list", "--open"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, StartsWith("ID "));
  EXPECT_THAT(r.out, HasSubstr("  KEPT  LOST  LOST BY\n"));
  EXPECT_THAT(r.out, MatchesRegex(absl::StrCat(".*\n", conflict.id(),
                                               "  open  +20[0-9-]+T[0-9:]+Z  "
                                               "record ",
                                               added.id(), "  well.yield_lph  700 +500 +",
                                               device_.id(), "\n")));
  EXPECT_EQ(HqJson<v1::ListDevicesResponse>({"devices", "list"}).devices(0).open_conflicts(), 1);

  // HQ takes the device's value after all; the device receives it at its next sync.
  r = Hq({"conflicts", "resolve", conflict.id(), "--take-loser"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, absl::StrCat("Resolved conflict ", conflict.id(), " (record ", added.id(),
                                ", well.yield_lph): took 500; it reaches every device as a new "
                                "edit at its next sync.\n"));
  EXPECT_THAT(HqJson<v1::ListConflictsResponse>({"conflicts", "list", "--open"}).conflicts(),
              IsEmpty());
  auto all = HqJson<v1::ListConflictsResponse>({"conflicts", "list"});
  ASSERT_THAT(all.conflicts(), SizeIs(1));
  EXPECT_EQ(all.conflicts(0).status(), v1::CONFLICT_STATUS_RESOLVED);
  EXPECT_EQ(all.conflicts(0).resolution(), v1::CONFLICT_RESOLUTION_TAKE_LOSER);
  EXPECT_EQ(HqJson<v1::Record>({"records", "get", added.id()}).well().yield_lph(), 500);
  ASSERT_EQ(Device({"sync", "--quiet"}).exit_code, 0);
  EXPECT_EQ(DeviceRecord(added.id()).well().yield_lph(), 500);
  EXPECT_EQ(HqJson<v1::ListDevicesResponse>({"devices", "list"}).devices(0).open_conflicts(), 0);

  // A conflict is resolved once.
  r = Hq({"conflicts", "resolve", conflict.id(), "--keep-winner"});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("fieldsync: resolve conflict ", conflict.id(), ": ")));
}

TEST_F(CliFieldTest, WatchStreamsChangesMadeByOtherCommands) {
  EnrollAndSync();
  // The history so far: the project and the site of SetUp.
  CommandResult r = Hq({"watch", "--json", "--max-events", "2", "--partner", partner_.id()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_THAT(lines, SizeIs(2)) << r.out;
  const auto project_event = ParseJson<v1::ChangeEvent>(lines[0]);
  const auto site_event = ParseJson<v1::ChangeEvent>(lines[1]);
  EXPECT_EQ(project_event.collection(), "project");
  EXPECT_EQ(project_event.op(), "create");
  EXPECT_EQ(project_event.doc_id(), project_.id());
  EXPECT_EQ(project_event.country(), "KE");
  EXPECT_EQ(site_event.collection(), "site");
  EXPECT_EQ(site_event.doc_id(), site_.id());
  EXPECT_GT(site_event.seq(), project_event.seq());
  const std::string after = absl::StrCat(site_event.seq());

  // A watch that waits for what two other commands do: HQ creates, the device syncs.
  CommandResult watched;
  std::thread watcher([&] {
    watched = Hq({"watch", "--json", "--after", after, "--kind", "well", "--max-events", "2",
                  "--timeout", "60"});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const v1::Record by_hq = HqJson<v1::Record>({"records", "create", "--data", WellJson(80)});
  const v1::Record by_device = AddWell(90);
  ASSERT_EQ(Device({"sync", "--quiet"}).exit_code, 0);
  watcher.join();
  ASSERT_EQ(watched.exit_code, 0) << Describe(watched);
  EXPECT_EQ(watched.err, "");
  lines = absl::StrSplit(watched.out, '\n', absl::SkipEmpty());
  ASSERT_THAT(lines, SizeIs(2)) << watched.out;
  const auto first = ParseJson<v1::ChangeEvent>(lines[0]);
  const auto second = ParseJson<v1::ChangeEvent>(lines[1]);
  EXPECT_EQ(first.op(), "create");
  EXPECT_EQ(first.collection(), "record");
  EXPECT_EQ(first.doc_id(), by_hq.id());
  EXPECT_EQ(first.partner_id(), partner_.id());
  EXPECT_EQ(first.record().well().population_served(), 80);
  EXPECT_EQ(second.op(), "create");
  EXPECT_EQ(second.doc_id(), by_device.id());
  EXPECT_EQ(second.actor(), device_.id());
  EXPECT_GT(second.seq(), first.seq());

  // The human form: a header, then one aligned line per event.
  r = Hq({"watch", "--after", after, "--max-events", "1", "--country", "ke"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_THAT(lines, SizeIs(2)) << r.out;
  EXPECT_THAT(lines[0], MatchesRegex(" +SEQ  COMMITTED +OP +COLLECTION  DOCUMENT +PARTNER +"
                                     "COUNTRY  ACTOR"));
  EXPECT_THAT(lines[1], MatchesRegex(absl::StrCat(
                            " +", first.seq(), "  20[0-9-]+T[0-9:]+Z  create  record +", by_hq.id(),
                            "  ", partner_.id(), "  KE +", "[0-9a-f-]{36}")));

  // Other filters leave these out; a --timeout ends the wait, and --max-events unmet exits 3.
  r = Hq({"watch", "--after", after, "--country", "UG", "--max-events", "1", "--timeout", "1.5"});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_EQ(r.err, absl::StrCat("fieldsync: watch changes: 0 of the 1 events asked for arrived "
                                "within 1.5s; resume with --after ",
                                after, "\n"));
  r = Hq({"watch", "--json", "--after", after, "--kind", "cataract", "--timeout", "1"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, absl::StrCat("(watched for 1s: 0 events; resume with --after ", after, ")\n"));

  // Until Ctrl-C, which ends it cleanly and says where to resume.
  Background watch({testing::FieldsyncCliPath(), "--server", address_, "--token",
                    server_.admin_token(), "watch", "--after", after, "--kind", "well"},
                   dir_.path());
  ASSERT_TRUE(watch.WaitFor([](const std::string& out, const std::string&) {
    return std::count(out.begin(), out.end(), '\n') == 3;
  }));
  r = watch.Stop(SIGINT);
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.err,
            absl::StrCat("(stopped after 2 events; resume with --after ", second.seq(), ")\n"));

  // Or until the server goes away: exit 3, saying where to resume.
  Background orphan({testing::FieldsyncCliPath(), "--server", address_, "--token",
                     server_.admin_token(), "watch", "--after", after, "--json"},
                    dir_.path());
  ASSERT_TRUE(orphan.WaitFor([](const std::string& out, const std::string&) {
    return std::count(out.begin(), out.end(), '\n') == 2;
  }));
  server_.Stop();
  r = orphan.Wait();
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("fieldsync: watch changes: ")));
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("; resume with --after ", second.seq(), "\n")));
}

TEST_F(CliFieldTest, CtrlCStopsASyncCleanly) {
  EnrollAndSync();
  AddWell(350);
  server_.Stop();
  // The server is down: the sync retries until told to stop.
  Background sync({testing::FieldsyncCliPath(), "sync", "--device-db", db_, "--attempts", "1000"},
                  dir_.path());
  ASSERT_TRUE(sync.WaitFor([](const std::string&, const std::string& err) {
    return err.find(", 2 retries\n") != std::string::npos;
  }));
  CommandResult r = sync.Stop(SIGINT);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("\nfieldsync: sync: cancelled\nhint: nothing is lost"));
  // The record is still waiting, and the next sync delivers it.
  EXPECT_EQ(Field(Device({"device", "status", "--json"}).out, "pending_changes").number_value(), 1);
  ASSERT_TRUE(server_.Restart().ok()) << server_.Log();
  r = Device({"sync", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(": pushed 1 change, "));
  EXPECT_THAT(HqJson<v1::ListRecordsResponse>({"records", "list"}).records(), SizeIs(1));
}

TEST_F(CliFieldTest, EnrollmentAndCredentialErrors) {
  // An unknown code, a malformed one: exit 5, and no database is left behind.
  CommandResult r =
      Device({"device", "enroll", "--code", "ABCD-EFGH-JKLM-NPQR-STUV", "--server", address_});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith("fieldsync: enroll: the server refused the code: "));
  EXPECT_THAT(r.err, HasSubstr("unknown, already used or expired"));
  EXPECT_THAT(r.err, HasSubstr("\nhint: codes are single-use and expire; HQ makes a new one with "
                               "'fieldsync devices enroll-code DEVICE_ID'\n"));
  EXPECT_NE(access(db_.c_str(), F_OK), 0);
  r = Device({"device", "enroll", "--code", "XYZ", "--server", address_});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("expected 20 characters"));
  EXPECT_NE(access(db_.c_str(), F_OK), 0);

  // Without a database, the device commands say how to get one.
  r = Device({"device", "status"});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("fieldsync: no device database at ", db_,
                                             "\nhint: enroll this device first")));

  // A code works once; a database enrolls once.
  const std::string code = EnrollmentCode();
  r = Device({"device", "enroll", "--code", code, "--server", address_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(Field(r.out, "device_id").string_value(), device_.id());
  EXPECT_EQ(Field(r.out, "partner_id").string_value(), partner_.id());
  EXPECT_EQ(Field(r.out, "device_db").string_value(), db_);
  const std::string other_db = dir_.File("other.db");
  r = testing::RunCommand({testing::FieldsyncCliPath(), "device", "enroll", "--code", code,
                           "--server", address_, "--device-db", other_db},
                          kCleanEnv);
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, StartsWith("fieldsync: enroll: the server refused the code: "));
  r = Device({"device", "enroll", "--code", EnrollmentCode(), "--server", address_});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("fieldsync: enroll: ", db_,
                                             " is already enrolled as device ", device_.id())));

  // HQ-side refusals: an unknown device, too long a code lifetime.
  r = Hq({"devices", "enroll-code", "01900000-0000-7000-8000-000000000000"});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, StartsWith("fieldsync: create an enrollment code for device "
                                "01900000-0000-7000-8000-000000000000: "));
  r = Hq({"devices", "enroll-code", device_.id(), "--ttl", "31d"});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("ttl_seconds"));

  // The device syncs only with its own server.
  r = Device({"sync", "--server", "127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_THAT(r.err,
              StartsWith(absl::StrCat("fieldsync: --server: this device syncs with ", address_,
                                      ", where it enrolled, not with "
                                      "127.0.0.1:1\n")));

  // HQ revokes the device's token: its next sync exits 4 and says what to do.
  auto tokens = HqJson<v1::ListTokensResponse>({"tokens", "list", "--device", device_.id()});
  ASSERT_THAT(tokens.tokens(), SizeIs(1));
  ASSERT_EQ(Hq({"tokens", "revoke", tokens.tokens(0).id()}).exit_code, 0);
  r = Device({"sync"});
  EXPECT_EQ(r.exit_code, 4) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("fieldsync: sync: the server refused this device's token: "));
  EXPECT_THAT(r.err, HasSubstr("\nhint: HQ may have revoked it: ask HQ for a new code"));

  // ... and the same database enrolls again with a new code for its device, then syncs.
  r = Device({"device", "enroll", "--code", EnrollmentCode(), "--server", address_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Device({"sync", "--quiet"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);

  // The server moves: the database follows; a port out of range is refused before anything.
  r = Device({"device", "set-server", "127.0.0.1:70000"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("the port must be a number from 1 to 65535"));
  r = Device({"device", "set-server", "127.0.0.1:1"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("now syncs with fieldsyncd at 127.0.0.1:1"));
  EXPECT_EQ(Field(Device({"device", "status", "--json"}).out, "server_address").string_value(),
            "127.0.0.1:1");
  r = Device({"device", "set-server", address_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(Device({"sync", "--quiet"}).exit_code, 0);
}

TEST(CliFieldTlsTest, EnrollAndSyncOverTls) {
  testing::TempDir dir;
  const std::string cert = dir.File("cert.pem"), key = dir.File("key.pem");
  // RunCommand does not search PATH.
  if (access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/openssl";
  CommandResult made = testing::RunCommand(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
       "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=fieldsync-test",
       "-addext", "subjectAltName=IP:127.0.0.1"});
  if (made.exit_code != 0) GTEST_SKIP() << "openssl cannot make a certificate: " << made.err;
  testing::ServerProcess server;
  ASSERT_TRUE(server.Start(dir.path(), {"--tls-cert", cert, "--tls-key", key}).ok())
      << server.Log();
  auto hq = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::FieldsyncCliPath(),
                                     "--server",
                                     server.address(),
                                     "--token",
                                     server.admin_token(),
                                     "--ca-file",
                                     cert,
                                     "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = testing::RunCommand(argv, kCleanEnv);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return r.out;
  };
  const auto partner = ParseJson<v1::Partner>(
      hq({"partners", "create", "--name", "Lake Basin Water", "--countries", "KE"}));
  hq({"projects", "create", "--partner", partner.id(), "--kind", "well", "--title", "Wells",
      "--country", "KE"});
  const auto device = ParseJson<v1::Device>(
      hq({"devices", "create", "--partner", partner.id(), "--name", "Phone 1"}));
  const auto code =
      ParseJson<v1::CreateEnrollmentResponse>(hq({"devices", "enroll-code", device.id()}));

  const std::string db = dir.File("device.db");
  CommandResult r =
      testing::RunCommand({testing::FieldsyncCliPath(), "device", "enroll", "--code", code.code(),
                           "--server", server.address(), "--ca-file", cert, "--device-db", db},
                          kCleanEnv);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = testing::RunCommand(
      {testing::FieldsyncCliPath(), "sync", "--quiet", "--ca-file", cert, "--device-db", db},
      kCleanEnv);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(": pushed 0 changes, pulled 1 document in 1 page, 0 conflicts.\n"));
  // A device enrolled over TLS does not try plain text (which would send its token in clear).
  r = testing::RunCommand(
      {testing::FieldsyncCliPath(), "sync", "--attempts", "1", "--device-db", db}, kCleanEnv);
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("over TLS"));
}

}  // namespace
}  // namespace fieldsync
