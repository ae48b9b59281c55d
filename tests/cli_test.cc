// The fieldsync CLI binary against a real fieldsyncd on loopback: every scenario runs the
// built `fieldsync` executable as a user would and checks its exit code and output.
// (Parsing, formatting and offline errors are unit-tested in cli/*_test.cc.)

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fieldsync/v1/admin.pb.h"
#include "fieldsync/v1/domain.pb.h"
#include "fieldsync/v1/tracker.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/testing/server_process.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync {
namespace {

using testing::CommandResult;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Property;
using ::testing::SizeIs;
using ::testing::StartsWith;
namespace v1 = ::fieldsync::v1;

// A loopback port nobody listens on: bound by the kernel's choice, then closed.
int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string Describe(const CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout: ", r.out, "\nstderr: ", r.err);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start(dir_.path()).ok()) << server_.Log(); }

  // Runs the CLI against the test server with `token` (the admin's by default). The caller's
  // FIELDSYNC_* variables are blanked so that they cannot leak into the test.
  CommandResult Cli(std::vector<std::string> args, const std::string& token = "") {
    std::vector<std::string> argv = {testing::FieldsyncCliPath(), "--server", server_.address(),
                                     "--token", token.empty() ? server_.admin_token() : token};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, {"FIELDSYNC_SERVER=", "FIELDSYNC_TOKEN="});
  }

  // Runs the CLI with --json, expects success and parses the output as a `T`.
  template <typename T>
  T CliJson(std::vector<std::string> args, const std::string& token = "") {
    args.push_back("--json");
    CommandResult r = Cli(args, token);
    T message;
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_EQ(r.err, "");
    EXPECT_THAT(r.out, Not(HasSubstr("\n}")));  // One line per result.
    auto status = google::protobuf::util::JsonStringToMessage(r.out, &message);
    EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << r.out;
    return message;
  }

  v1::Partner CreatePartner(const std::string& name = "Kisumu Water Trust") {
    return CliJson<v1::Partner>({"partners", "create", "--name", name, "--countries", "KE,ug"});
  }

  v1::Project CreateWellProject(const std::string& partner_id) {
    return CliJson<v1::Project>({"projects",   "create",     "--partner", partner_id,
                                 "--kind",     "well",       "--title",   "Boreholes for Kisumu",
                                 "--country",  "ke",         "--status",  "active",
                                 "--start",    "2025-01-15", "--budget",  "12345.67",
                                 "--currency", "USD",        "--donor",   "Rotary Club"});
  }

  v1::Site CreateSite(const std::string& project_id) {
    return CliJson<v1::Site>({"sites", "create", "--project", project_id, "--name",
                              "Nyalenda borehole", "--lat", "-0.1022", "--lon", "34.7617",
                              "--admin-area", "Kisumu Central"});
  }

  static std::string WellJson(const std::string& project_id, const std::string& site_id,
                              int population) {
    return absl::StrCat(R"({"project_id":")", project_id, R"(","site_id":")", site_id,
                        R"(","well":{"drilled_depth_m":80,"static_water_level_m":20,)",
                        R"("yield_lph":1200,"water_source":"WATER_SOURCE_BOREHOLE",)",
                        R"("extraction":"EXTRACTION_TECHNOLOGY_HAND_PUMP",)",
                        R"("functional_status":"FUNCTIONAL_STATUS_FUNCTIONAL",)",
                        R"("population_served":)", population, R"(,"visit_date":"2025-03-14"}})");
  }

  testing::TempDir dir_;
  testing::ServerProcess server_;
};

TEST_F(CliTest, PartnerProjectSiteRecordRoundTrip) {
  const v1::Partner partner = CreatePartner();
  EXPECT_EQ(partner.name(), "Kisumu Water Trust");
  EXPECT_THAT(partner.countries(), ElementsAre("KE", "UG"));
  ASSERT_THAT(partner.id(), SizeIs(36));

  const v1::Project project = CreateWellProject(partner.id());
  EXPECT_EQ(project.partner_id(), partner.id());
  EXPECT_EQ(project.kind(), v1::PROJECT_KIND_WELL);
  EXPECT_EQ(project.status(), v1::PROJECT_STATUS_ACTIVE);
  EXPECT_EQ(project.country(), "KE");
  EXPECT_EQ(project.start_date(), "2025-01-15");
  EXPECT_EQ(project.budget().amount_minor(), 1234567);
  EXPECT_EQ(project.budget().currency(), "USD");

  const v1::Site site = CreateSite(project.id());
  EXPECT_EQ(site.project_id(), project.id());
  EXPECT_DOUBLE_EQ(site.latitude_deg(), -0.1022);
  EXPECT_DOUBLE_EQ(site.longitude_deg(), 34.7617);

  const v1::Record well =
      CliJson<v1::Record>({"records", "create", "--data", WellJson(project.id(), site.id(), 350)});
  EXPECT_EQ(well.kind(), v1::RECORD_KIND_WELL);
  EXPECT_EQ(well.record_date(), "2025-03-14");
  EXPECT_EQ(well.site_id(), site.id());
  EXPECT_EQ(well.well().population_served(), 350);

  // The same kind of record from a file.
  const std::string file = dir_.File("expenditure.json");
  std::ofstream(file) << R"({"project_id":")" << project.id()
                      << R"(","expenditure":{"amount":{"amount_minor":"50000","currency":"USD"},)"
                      << R"("category":"EXPENDITURE_CATEGORY_CONSTRUCTION",)"
                      << R"("spent_date":"2025-02-01","receipt_ref":"R-17"}})";
  const v1::Record spend = CliJson<v1::Record>({"records", "create", "--file", file});
  EXPECT_EQ(spend.kind(), v1::RECORD_KIND_EXPENDITURE);
  EXPECT_EQ(spend.record_date(), "2025-02-01");

  // Lists, machine output.
  auto projects = CliJson<v1::ListProjectsResponse>({"projects", "list", "--kind", "well"});
  ASSERT_THAT(projects.projects(), SizeIs(1));
  EXPECT_EQ(projects.projects(0).id(), project.id());
  EXPECT_EQ(projects.next_page_token(), "");
  EXPECT_THAT(
      CliJson<v1::ListProjectsResponse>({"projects", "list", "--kind", "cataract"}).projects(),
      IsEmpty());
  auto sites = CliJson<v1::ListSitesResponse>({"sites", "list", "--project", project.id()});
  ASSERT_THAT(sites.sites(), SizeIs(1));
  EXPECT_EQ(sites.sites(0).name(), "Nyalenda borehole");
  auto records = CliJson<v1::ListRecordsResponse>({"records", "list", "--project", project.id()});
  ASSERT_THAT(records.records(), SizeIs(2));
  auto wells = CliJson<v1::ListRecordsResponse>({"records", "list", "--kind", "well"});
  ASSERT_THAT(wells.records(), SizeIs(1));
  EXPECT_EQ(wells.records(0).id(), well.id());

  // Lists, human output.
  CommandResult r = Cli({"partners", "list"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, StartsWith("ID "));
  EXPECT_THAT(r.out, HasSubstr("NAME"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(partner.id(), "  Kisumu Water Trust  KE,UG")));

  r = Cli({"projects", "list"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("BUDGET"));
  EXPECT_THAT(r.out,
              HasSubstr(absl::StrCat(project.id(), "  well  active  KE  Boreholes for Kisumu")));
  EXPECT_THAT(r.out, HasSubstr("12,345.67 USD\n"));

  r = Cli({"records", "list", "--kind", "well"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(well.id(), "  well  2025-03-14  ", project.id(),
                                            "  functional, 350 people, borehole")));

  r = Cli({"sites", "list"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("Nyalenda borehole"));
  EXPECT_THAT(r.out, HasSubstr("-0.1022"));

  // Details view.
  r = Cli({"projects", "get", project.id()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("id:", std::string(11, ' '))));
  EXPECT_THAT(r.out, HasSubstr("title:"));
  EXPECT_THAT(r.out, HasSubstr("Boreholes for Kisumu\n"));
  EXPECT_THAT(r.out, HasSubstr("budget:"));
  EXPECT_THAT(r.out, HasSubstr("12,345.67 USD\n"));
  r = Cli({"records", "get", spend.id()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("expenditure.amount:"));
  EXPECT_THAT(r.out, HasSubstr("500.00 USD\n"));
  EXPECT_THAT(r.out, HasSubstr("expenditure.category:"));
  EXPECT_THAT(r.out, HasSubstr("construction\n"));
}

TEST_F(CliTest, UpdatesKeepWhatIsNotGiven) {
  const v1::Partner partner = CreatePartner();
  const v1::Project project = CreateWellProject(partner.id());
  const v1::Site site = CreateSite(project.id());
  const v1::Record well =
      CliJson<v1::Record>({"records", "create", "--data", WellJson(project.id(), site.id(), 350)});

  // --budget alone keeps the currency; untouched fields stay.
  const v1::Project updated = CliJson<v1::Project>(
      {"projects", "update", project.id(), "--title", "Boreholes, phase 2", "--budget", "20000"});
  EXPECT_EQ(updated.title(), "Boreholes, phase 2");
  EXPECT_EQ(updated.budget().amount_minor(), 2000000);
  EXPECT_EQ(updated.budget().currency(), "USD");
  EXPECT_EQ(updated.donor(), "Rotary Club");
  EXPECT_EQ(updated.start_date(), "2025-01-15");
  EXPECT_GT(updated.audit().version(), project.audit().version());

  // A currency without decimals.
  const v1::Project ugx = CliJson<v1::Project>(
      {"projects", "update", project.id(), "--budget", "150000", "--currency", "ugx"});
  EXPECT_EQ(ugx.budget().amount_minor(), 150000);
  EXPECT_EQ(ugx.budget().currency(), "UGX");
  CommandResult r = Cli({"projects", "get", project.id()});
  EXPECT_THAT(r.out, HasSubstr("150,000 UGX\n"));

  const v1::Partner renamed =
      CliJson<v1::Partner>({"partners", "update", partner.id(), "--name", "Lake Basin Water"});
  EXPECT_EQ(renamed.name(), "Lake Basin Water");
  EXPECT_THAT(renamed.countries(), ElementsAre("KE", "UG"));

  // A record update with only a body keeps project and site.
  const v1::Record changed = CliJson<v1::Record>(
      {"records", "update", well.id(), "--data",
       R"({"well":{"drilled_depth_m":80,"water_source":"WATER_SOURCE_BOREHOLE",)"
       R"("extraction":"EXTRACTION_TECHNOLOGY_SOLAR_PUMP",)"
       R"("functional_status":"FUNCTIONAL_STATUS_PARTLY_FUNCTIONAL",)"
       R"("population_served":400,"visit_date":"2025-06-01"}})"});
  EXPECT_EQ(changed.id(), well.id());
  EXPECT_EQ(changed.project_id(), project.id());
  EXPECT_EQ(changed.site_id(), site.id());
  EXPECT_EQ(changed.well().population_served(), 400);
  EXPECT_EQ(changed.well().extraction(), v1::EXTRACTION_TECHNOLOGY_SOLAR_PUMP);
  EXPECT_EQ(changed.record_date(), "2025-06-01");
}

TEST_F(CliTest, StatsJsonAndTables) {
  const v1::Partner partner = CreatePartner();
  const v1::Project project = CreateWellProject(partner.id());
  const v1::Site site = CreateSite(project.id());
  CliJson<v1::Record>({"records", "create", "--data", WellJson(project.id(), site.id(), 350)});
  CliJson<v1::Record>(
      {"records", "create", "--data",
       absl::StrCat(
           R"({"project_id":")", project.id(),
           R"(","expenditure":{"amount":{"amount_minor":"50000","currency":"USD"},)"
           R"("category":"EXPENDITURE_CATEGORY_CONSTRUCTION","spent_date":"2025-02-01"}})")});

  const auto stats = CliJson<v1::GetStatsResponse>({"stats"});
  ASSERT_THAT(stats.groups(), SizeIs(1));
  const v1::StatsGroup& all = stats.groups(0);
  EXPECT_EQ(all.key(), "all");
  EXPECT_EQ(all.projects(), 1);
  EXPECT_EQ(all.wells().water_points(), 1);
  EXPECT_EQ(all.wells().functional(), 1);
  EXPECT_EQ(all.wells().people_served(), 350);
  ASSERT_THAT(all.spend(), SizeIs(1));
  EXPECT_EQ(all.spend(0).currency(), "USD");
  EXPECT_EQ(all.spend(0).budget_minor(), 1234567);
  EXPECT_EQ(all.spend(0).spent_minor(), 50000);

  const auto by_country = CliJson<v1::GetStatsResponse>({"stats", "--by", "country"});
  ASSERT_THAT(by_country.groups(), SizeIs(1));
  EXPECT_EQ(by_country.groups(0).key(), "KE");
  // No project in Uganda: nothing counted.
  const auto uganda = CliJson<v1::GetStatsResponse>({"stats", "--country", "UG"});
  for (const v1::StatsGroup& group : uganda.groups()) {
    EXPECT_EQ(group.projects(), 0);
    EXPECT_EQ(group.wells().water_points(), 0);
  }

  CommandResult r = Cli({"stats", "--by", "country"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, StartsWith("Projects\nCOUNTRY  PROJECTS\nKE              1\n"));
  EXPECT_THAT(r.out, HasSubstr("Water points\nCOUNTRY  POINTS  FUNCTIONAL  FUNCTIONAL %"));
  EXPECT_THAT(r.out, HasSubstr("100.0%"));
  EXPECT_THAT(r.out, HasSubstr("Cataract surgery\n  (none recorded)\n"));
  EXPECT_THAT(r.out, HasSubstr("Spend vs budget\nCOUNTRY  CURRENCY     BUDGET   SPENT  SPENT %\n"
                               "KE       USD       12,345.67  500.00     4.1%\n"));
}

TEST_F(CliTest, ListsFollowPagesUpToTheLimit) {
  for (int i = 0; i < 3; ++i) CreatePartner(absl::StrCat("Partner ", i));

  auto first_two = CliJson<v1::ListPartnersResponse>({"partners", "list", "--limit", "2"});
  EXPECT_THAT(first_two.partners(), SizeIs(2));
  EXPECT_THAT(first_two.next_page_token(), Not(IsEmpty()));
  auto every = CliJson<v1::ListPartnersResponse>({"partners", "list", "--all"});
  ASSERT_THAT(every.partners(), SizeIs(3));
  EXPECT_EQ(every.partners(0).name(), "Partner 0");
  EXPECT_EQ(every.partners(2).name(), "Partner 2");
  EXPECT_EQ(every.next_page_token(), "");

  // The documented --json shape of a list: one object on one line, every key present.
  CommandResult r = Cli({"partners", "list", "--all", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, StartsWith("{\"partners\":[{\"id\":\""));
  EXPECT_THAT(r.out, ::testing::EndsWith("],\"next_page_token\":\"\"}\n"));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);

  r = Cli({"partners", "list", "--limit", "2"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("Partner 1"));
  EXPECT_THAT(r.out, Not(HasSubstr("Partner 2")));
  EXPECT_EQ(r.err, "(showing the first 2 partners; use --limit N or --all for more)\n");

  r = Cli({"projects", "list"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "(no projects)\n");
  r = Cli({"records", "list", "--from", "2025-01-01", "--to", "2025-12-31"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "(no records)\n");
  EXPECT_EQ(CliJson<v1::ListSitesResponse>({"sites", "list"}).sites_size(), 0);
}

TEST_F(CliTest, TokenLifecycle) {
  const v1::User user = CliJson<v1::User>({"users", "create", "--name", "amina", "--role", "hq"});
  EXPECT_EQ(user.role(), v1::ROLE_HQ_VIEWER);
  auto users = CliJson<v1::ListUsersResponse>({"users", "list"});
  EXPECT_THAT(users.users(), Contains(Property(&v1::User::name, "amina")));

  const auto issued = CliJson<v1::CreateTokenResponse>(
      {"tokens", "create", "--user", user.id(), "--label", "laptop", "--ttl", "30d"});
  EXPECT_THAT(issued.secret(), StartsWith("fs_"));
  EXPECT_EQ(issued.token().user_id(), user.id());
  EXPECT_EQ(issued.token().role(), v1::ROLE_HQ_VIEWER);
  EXPECT_EQ(issued.token().label(), "laptop");
  EXPECT_TRUE(issued.token().has_expires_at());
  const std::string secret = issued.secret();

  // The human form shows the secret once, clearly.
  CommandResult r = Cli({"tokens", "create", "--user", user.id()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("expires: never"));
  EXPECT_THAT(r.out, HasSubstr("The secret is shown only this once; store it safely:\n\n  fs_"));

  r = Cli({"whoami"}, secret);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("name:"));
  EXPECT_THAT(r.out, HasSubstr("amina\n"));
  EXPECT_THAT(r.out, HasSubstr("role:"));
  EXPECT_THAT(r.out, HasSubstr("hq\n"));
  const auto me = CliJson<v1::WhoAmIResponse>({"whoami"}, secret);
  EXPECT_EQ(me.name(), "amina");
  EXPECT_EQ(me.token().id(), issued.token().id());

  // An HQ viewer reads but may not administer.
  EXPECT_EQ(Cli({"projects", "list"}, secret).exit_code, 0);
  r = Cli({"partners", "create", "--name", "X", "--countries", "KE"}, secret);
  EXPECT_EQ(r.exit_code, 4) << Describe(r);
  EXPECT_THAT(r.err, StartsWith("fieldsync: create partner: "));
  EXPECT_THAT(r.err, HasSubstr("hint: the token's role may not do this"));

  r = Cli({"tokens", "list", "--user", user.id()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(issued.token().id()));
  EXPECT_THAT(r.out, HasSubstr(issued.token().prefix()));
  EXPECT_THAT(r.out, HasSubstr("laptop"));
  EXPECT_THAT(r.out, Not(HasSubstr(secret)));

  const v1::Token revoked = CliJson<v1::Token>({"tokens", "revoke", issued.token().id()});
  EXPECT_TRUE(revoked.has_revoked_at());
  r = Cli({"tokens", "list", "--user", user.id()});
  EXPECT_THAT(r.out, HasSubstr("revoked"));

  r = Cli({"whoami"}, secret);
  EXPECT_EQ(r.exit_code, 4) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith("fieldsync: whoami: "));
  EXPECT_THAT(r.err,
              HasSubstr("\nhint: pass a valid token with --token TOKEN or set FIELDSYNC_TOKEN"));
}

TEST_F(CliTest, DevicesAndTheirTokens) {
  const v1::Partner partner = CreatePartner();
  const v1::Device device = CliJson<v1::Device>(
      {"devices", "create", "--partner", partner.id(), "--name", "Tablet 3, Kisumu team"});
  EXPECT_EQ(device.partner_id(), partner.id());
  CommandResult r = Cli({"devices", "list", "--partner", partner.id()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("LAST SYNC"));
  EXPECT_THAT(r.out, HasSubstr("Tablet 3, Kisumu team"));
  EXPECT_THAT(r.out, HasSubstr("never      enabled\n"));

  const auto issued =
      CliJson<v1::CreateTokenResponse>({"tokens", "create", "--device", device.id()});
  EXPECT_EQ(issued.token().role(), v1::ROLE_FIELD_DEVICE);
  EXPECT_EQ(issued.token().device_id(), device.id());
  EXPECT_EQ(CliJson<v1::WhoAmIResponse>({"whoami"}, issued.secret()).token().partner_id(),
            partner.id());
}

TEST_F(CliTest, ServerRefusalsExit5AndNameTheField) {
  const v1::Partner partner = CreatePartner();
  const v1::Project project = CreateWellProject(partner.id());

  CommandResult r = Cli({"sites", "create", "--project", project.id(), "--name", "Nowhere", "--lat",
                         "200", "--lon", "34.7"});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith("fieldsync: create site: "));
  EXPECT_THAT(r.err, HasSubstr("latitude_deg"));
  EXPECT_THAT(r.err, HasSubstr("200"));

  const std::string missing = "01900000-0000-7000-8000-000000000000";
  r = Cli({"projects", "get", missing});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("fieldsync: get project ", missing, ": ")));

  // A well record in a cataract project does not fit.
  const v1::Project cataract = CliJson<v1::Project>(
      {"projects", "create", "--partner", partner.id(), "--kind", "cataract", "--title", "Eye camp",
       "--country", "UG", "--budget", "150000", "--currency", "UGX"});
  EXPECT_EQ(cataract.budget().amount_minor(), 150000);
  r = Cli({"records", "create", "--data", WellJson(cataract.id(), "", 10)});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, StartsWith("fieldsync: create record: "));

  // A country the partner does not work in.
  r = Cli({"projects", "create", "--partner", partner.id(), "--kind", "well", "--title", "T",
           "--country", "VN"});
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("country"));
}

TEST_F(CliTest, UsageAndConnectionErrors) {
  // A bad option: exit 2 before any call, with the command's usage.
  CommandResult r = Cli({"projects", "list", "--colour", "red"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "fieldsync: unknown option '--colour' for 'projects list'\n"
            "usage: fieldsync projects list [options]\n"
            "Run 'fieldsync projects list --help' for details.\n");
  r = Cli({"sites", "create", "--project", "p", "--name", "n", "--lat", "-1.5"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_THAT(r.err, StartsWith("fieldsync: 'sites create' needs --lon DEGREES\n"));

  // No token at all (none in the environment either): exit 4 with a hint.
  r = testing::RunCommand({testing::FieldsyncCliPath(), "--server", server_.address(), "whoami"},
                          {"FIELDSYNC_TOKEN=", "FIELDSYNC_SERVER="});
  EXPECT_EQ(r.exit_code, 4) << Describe(r);
  EXPECT_EQ(r.err,
            "fieldsync: whoami: no token given\n"
            "hint: pass a valid token with --token TOKEN or set FIELDSYNC_TOKEN "
            "(an admin issues tokens with 'fieldsync tokens create')\n");

  // Server and token from the environment.
  r = testing::RunCommand({testing::FieldsyncCliPath(), "whoami", "--json"},
                          {absl::StrCat("FIELDSYNC_SERVER=", server_.address()),
                           absl::StrCat("FIELDSYNC_TOKEN=", server_.admin_token())});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  v1::WhoAmIResponse me;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &me).ok()) << r.out;
  EXPECT_EQ(me.token().role(), v1::ROLE_ADMIN);

  // A token the server never issued.
  r = Cli({"projects", "list"}, "fs_notarealtokenatall");
  EXPECT_EQ(r.exit_code, 4) << Describe(r);
  EXPECT_THAT(r.err, StartsWith("fieldsync: list projects: "));

  // Nothing listens on the port: exit 3 and say so.
  const std::string nowhere = absl::StrCat("127.0.0.1:", UnusedPort());
  r = testing::RunCommand({testing::FieldsyncCliPath(), "--server", nowhere, "--token",
                           server_.admin_token(), "projects", "list"},
                          {"FIELDSYNC_TOKEN=", "FIELDSYNC_SERVER="});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err,
              StartsWith(absl::StrCat("fieldsync: list projects: cannot reach fieldsyncd at ",
                                      nowhere, " (is it running?)")));

  // The server stopped: the same.
  server_.Stop();
  r = Cli({"whoami"});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("cannot reach fieldsyncd at ", server_.address())));
}

TEST(CliTlsTest, CaFileTrustsTheServerCertificate) {
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
  const std::vector<std::string> env = {"FIELDSYNC_TOKEN=", "FIELDSYNC_SERVER="};
  CommandResult r =
      testing::RunCommand({testing::FieldsyncCliPath(), "whoami", "--json", "--server",
                           server.address(), "--token", server.admin_token(), "--ca-file", cert},
                          env);
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  v1::WhoAmIResponse me;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &me).ok()) << r.out;
  EXPECT_EQ(me.token().role(), v1::ROLE_ADMIN);

  // Plaintext against a TLS server does not get through, and is told why.
  r = testing::RunCommand({testing::FieldsyncCliPath(), "whoami", "--server", server.address(),
                           "--token", server.admin_token()},
                          env);
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("fieldsync: whoami: the server at ", server.address(),
                                             " speaks TLS; connect with --ca-file FILE")));
}

}  // namespace
}  // namespace fieldsync
