// Reports for auditors end to end: the fieldsync CLI against a real fieldsyncd exports every
// format, the files are read back by independent readers (a CSV parser of our own, Python's
// openpyxl and csv, xmllint with the IATI 2.03 schema), 'report verify' and 'audit verify' say
// OK for untouched data and FAILED with the place after one byte of a file or one row of the
// server's change log is edited, and roles are enforced (a device cannot export, an auditor
// cannot write).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/export_verify.h"
#include "fieldsync/report/writer.h"
#include "fieldsync/v1/admin.pb.h"
#include "fieldsync/v1/domain.pb.h"
#include "fieldsync/v1/report.pb.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/sync/hlc.h"
#include "fieldsync/v1/sync.grpc.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/temp_dir.h"

#ifndef FIELDSYNC_SOURCE_DIR
#error "FIELDSYNC_SOURCE_DIR must be defined"
#endif

namespace fieldsync {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = ::fieldsync::v1;

// Free text that a spreadsheet, a CSV parser or an encoder could get wrong.
const std::vector<std::string>& NastyNotes() {
  static const auto* const kNotes = new std::vector<std::string>{
      "=HYPERLINK(\"http://evil\",\"x\")",
      "pump head replaced, \"new\" seal,\nchecked again\n\tnext day",
      "水井运行正常 ውሃው ንጹህ ነው บ่อน้ำใช้งานได้",
      "-3 m below the 2024 level",
      "@SUM(A1:A3)+1",
      "'quoted already",
  };
  return *kNotes;
}

std::string Describe(const CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout: ", r.out, "\nstderr: ", r.err);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Runs SQL statements on the server's database behind its back, as someone with access to the
// file (or the PostgreSQL database) would. Returns "" or the engine's error.
std::string Tamper(const std::string& db_path, const std::string& sql) {
  absl::Status s = testing::ExecSql(db_path, sql);
  return s.ok() ? "" : std::string(s.message());
}

class CliReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start(dir_.path()).ok()) << server_.Log();
    testing::Hq hq(server_.Channel(), server_.admin_token());
    partner_ = hq.CreatePartner("Maji Safi", {"KE", "ET"});
    project_ = hq.CreateProject(partner_.id(), v1::PROJECT_KIND_WELL, "KE", "Boreholes, Kisumu");
    v1::CreateSiteRequest site_request;
    site_request.mutable_site()->set_project_id(project_.id());
    site_request.mutable_site()->set_name("Nyalenda");
    site_request.mutable_site()->set_latitude_deg(-0.1022);
    site_request.mutable_site()->set_longitude_deg(34.7617);
    v1::Site site;
    ASSERT_TRUE(hq.tracker().CreateSite(hq.Ctx().get(), site_request, &site).ok());
    for (size_t i = 0; i < NastyNotes().size(); ++i) {
      v1::CreateRecordRequest request;
      v1::Record* r = request.mutable_record();
      r->set_project_id(project_.id());
      r->set_site_id(site.id());
      v1::WellRecord* w = r->mutable_well();
      w->set_drilled_depth_m(80.5);
      w->set_yield_lph(1200 + static_cast<double>(i));
      w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
      w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
      w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
      w->set_population_served(300 + static_cast<int>(i));
      w->set_visit_date(absl::StrCat("2025-03-1", i));
      w->set_notes(NastyNotes()[i]);
      v1::Record created;
      grpc::Status s = hq.tracker().CreateRecord(hq.Ctx().get(), request, &created);
      ASSERT_TRUE(s.ok()) << s.error_message();
      records_.push_back(created);
    }
    // An update, so that the audit trail has old values.
    v1::UpdateRecordRequest update;
    *update.mutable_record() = records_[0];
    update.mutable_record()->mutable_well()->set_yield_lph(950);
    update.mutable_record()->mutable_well()->set_notes("after the repair, 水井");
    v1::Record updated;
    grpc::Status s = hq.tracker().UpdateRecord(hq.Ctx().get(), update, &updated);
    ASSERT_TRUE(s.ok()) << s.error_message();
    records_[0] = updated;
    // An expenditure.
    v1::CreateRecordRequest spend;
    spend.mutable_record()->set_project_id(project_.id());
    v1::Expenditure* e = spend.mutable_record()->mutable_expenditure();
    e->mutable_amount()->set_amount_minor(125050);
    e->mutable_amount()->set_currency("USD");
    e->set_category(v1::EXPENDITURE_CATEGORY_CONSTRUCTION);
    e->set_spent_date("2025-02-01");
    e->set_receipt_ref("R-17");
    e->set_description("cement, 40 bags; \"Simba\" brand");
    v1::Record spent;
    s = hq.tracker().CreateRecord(hq.Ctx().get(), spend, &spent);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  CommandResult Cli(std::vector<std::string> args, const std::string& token = "") {
    std::vector<std::string> argv = {testing::FieldsyncCliPath(), "--server", server_.address(),
                                     "--token", token.empty() ? server_.admin_token() : token};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, {"FIELDSYNC_SERVER=", "FIELDSYNC_TOKEN="});
  }

  // The CLI without --server (offline commands).
  CommandResult Offline(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::FieldsyncCliPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, {"FIELDSYNC_SERVER=", "FIELDSYNC_TOKEN="});
  }

  // Exports and expects success; returns the manifest it wrote beside the file.
  v1::ExportManifest Export(const std::string& file, std::vector<std::string> args,
                            const std::string& token = "") {
    std::vector<std::string> argv = {"report", "export", "-o", file};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = Cli(argv, token);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("Wrote ", file)));
    EXPECT_TRUE(Exists(file));
    EXPECT_FALSE(Exists(file + ".part"));
    absl::StatusOr<v1::ExportManifest> manifest =
        cli::ParseManifestJson(ReadFile(file + ".manifest.json"));
    EXPECT_TRUE(manifest.ok()) << manifest.status();
    return manifest.ok() ? *manifest : v1::ExportManifest{};
  }

  // A token of a new user with `role` (auditor, hq, ...).
  std::string UserToken(const std::string& name, const std::string& role) {
    CommandResult user = Cli({"users", "create", "--name", name, "--role", role, "--json"});
    EXPECT_EQ(user.exit_code, 0) << Describe(user);
    v1::User u;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(user.out, &u).ok()) << user.out;
    CommandResult token = Cli({"tokens", "create", "--user", u.id(), "--json"});
    EXPECT_EQ(token.exit_code, 0) << Describe(token);
    v1::CreateTokenResponse t;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(token.out, &t).ok()) << token.out;
    return t.secret();
  }

  testing::TempDir dir_;
  testing::ServerProcess server_;
  v1::Partner partner_;
  v1::Project project_;
  std::vector<v1::Record> records_;
};

// The cells of a CSV file, header first, read with our own RFC 4180 reader.
std::vector<std::vector<std::string>> ReadCsv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  cli::CsvReader reader(in);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> fields;
  while (true) {
    absl::StatusOr<bool> more = reader.Next(&fields);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    rows.push_back(fields);
  }
  return rows;
}

size_t ColumnIndex(const std::vector<std::string>& header, const std::string& name) {
  auto it = std::find(header.begin(), header.end(), name);
  EXPECT_NE(it, header.end()) << name;
  return static_cast<size_t>(it - header.begin());
}

TEST_F(CliReportTest, CsvAndJsonLinesKeepAwkwardTextIntact) {
  const std::string csv = dir_.File("wells.csv");
  const v1::ExportManifest manifest = Export(csv, {"--table", "wells", "--format", "csv"});
  EXPECT_EQ(manifest.format(), v1::REPORT_FORMAT_CSV);
  ASSERT_EQ(manifest.row_counts_size(), 1);
  EXPECT_EQ(manifest.row_counts(0).rows(), static_cast<int64_t>(records_.size()));
  EXPECT_GT(manifest.chain_head_seq(), 0);

  const std::string bytes = ReadFile(csv);
  EXPECT_EQ(static_cast<int64_t>(bytes.size()), manifest.content_bytes());
  // A formula never starts a cell.
  EXPECT_THAT(bytes, Not(HasSubstr(",=HYPERLINK")));
  EXPECT_THAT(bytes, Not(HasSubstr(",\"=HYPERLINK")));

  const auto rows = ReadCsv(csv);
  ASSERT_EQ(rows.size(), records_.size() + 1);
  const size_t id = ColumnIndex(rows[0], "record_id");
  const size_t notes = ColumnIndex(rows[0], "notes");
  std::map<std::string, std::string> by_id;
  for (size_t i = 1; i < rows.size(); ++i) {
    by_id[rows[i][id]] = report::UnneutraliseText(rows[i][notes]);
  }
  for (const v1::Record& r : records_) EXPECT_EQ(by_id[r.id()], r.well().notes()) << r.id();

  // JSON Lines: one object per line, the same text.
  const std::string jsonl = dir_.File("wells.jsonl");
  Export(jsonl, {"--kind", "wells"});  // --kind is --table; the format from the extension
  std::vector<std::string> lines = absl::StrSplit(ReadFile(jsonl), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), records_.size());
  std::map<std::string, std::string> json_notes;
  for (const std::string& line : lines) {
    google::protobuf::Struct object;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &object).ok()) << line;
    json_notes[object.fields().at("record_id").string_value()] =
        object.fields().at("notes").string_value();
  }
  for (const v1::Record& r : records_) EXPECT_EQ(json_notes[r.id()], r.well().notes());

  // Both verify offline.
  for (const std::string& file : {csv, jsonl}) {
    CommandResult r = Offline({"report", "verify", file});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("OK: ", file, " matches its manifest (",
                                              records_.size(), " rows")));
  }
}

TEST_F(CliReportTest, XlsxEqualsCsvCellByCell) {
  for (const std::string table : {"wells", "expenditures", "projects"}) {
    SCOPED_TRACE(table);
    const std::string xlsx = dir_.File(table + ".xlsx");
    const std::string csv = dir_.File(table + ".csv");
    Export(xlsx, {"--table", table, "--format", "xlsx", "--country", "KE"});
    Export(csv, {"--table", table, "--format", "csv", "--country", "KE"});
    // openpyxl and Python's csv module, nothing of ours: every cell of the sheet against the
    // CSV's, allowing for typed cells (numbers, dates, date-times, booleans, empty).
    const std::string script = dir_.File("compare.py");
    std::ofstream(script) << R"PY(
import csv, datetime, sys
import openpyxl
xlsx_path, csv_path, sheet = sys.argv[1], sys.argv[2], sys.argv[3]
wb = openpyxl.load_workbook(xlsx_path, read_only=True)
ws = wb[sheet]
xrows = [list(r) for r in ws.iter_rows(values_only=True)]
with open(csv_path, newline='', encoding='utf-8') as f:
    crows = list(csv.reader(f))
def unneutralise(s):
    if len(s) >= 2 and s[0] == "'" and s[1] in "=+-@\t\r'":
        return s[1:]
    return s
def same(x, c):
    if x is None:
        return c == ''
    if isinstance(x, bool):
        return c == ('true' if x else 'false')
    if isinstance(x, datetime.datetime):
        if x.hour == 0 and x.minute == 0 and x.second == 0 and len(c) == 10:
            return x.strftime('%Y-%m-%d') == c
        return x.strftime('%Y-%m-%d %H:%M:%S') == c[:19]
    if isinstance(x, datetime.date):
        return x.strftime('%Y-%m-%d') == c
    if isinstance(x, (int, float)):
        try:
            return abs(float(c) - float(x)) <= 1e-9 * max(1.0, abs(float(x)))
        except ValueError:
            return False
    return str(x) == unneutralise(c)
if len(xrows) != len(crows):
    print('rows: xlsx %d, csv %d' % (len(xrows), len(crows))); sys.exit(1)
bad = 0
for i, (xr, cr) in enumerate(zip(xrows, crows)):
    while len(xr) < len(cr): xr.append(None)
    if len(xr) != len(cr):
        print('row %d: xlsx %d cells, csv %d' % (i + 1, len(xr), len(cr))); bad += 1; continue
    for j, (x, c) in enumerate(zip(xr, cr)):
        if not same(x, c):
            print('row %d col %d (%s): xlsx %r, csv %r' % (i + 1, j + 1, crows[0][j], x, c)); bad += 1
print('compared %d rows' % len(crows))
sys.exit(1 if bad else 0)
)PY";
    CommandResult r =
        testing::RunCommand({"/usr/bin/python3", script, xlsx, csv, table});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, HasSubstr("compared"));
    // The workbook verifies against its manifest like any file.
    CommandResult verify = Offline({"report", "verify", xlsx});
    EXPECT_EQ(verify.exit_code, 0) << Describe(verify);
  }
}

TEST_F(CliReportTest, IatiValidatesAgainstTheSchema) {
  const std::string xml = dir_.File("iati.xml");
  const v1::ExportManifest manifest = Export(xml, {"--table", "iati"});
  EXPECT_EQ(manifest.format(), v1::REPORT_FORMAT_IATI_XML);
  CommandResult lint = testing::RunCommand(
      {"/usr/bin/xmllint", "--noout", "--schema",
       absl::StrCat(FIELDSYNC_SOURCE_DIR, "/tests/data/iati/iati-activities-schema.xsd"), xml});
  EXPECT_EQ(lint.exit_code, 0) << Describe(lint);
  EXPECT_THAT(ReadFile(xml), HasSubstr("<iati-activity"));
  CommandResult verify = Offline({"report", "verify", xml});
  EXPECT_EQ(verify.exit_code, 0) << Describe(verify);
}

TEST_F(CliReportTest, ReportVerifyFailsAfterOneByteNamingWhere) {
  const std::string csv = dir_.File("audit.csv");
  const v1::ExportManifest manifest = Export(csv, {"--table", "audit", "--format", "csv"});
  CommandResult ok = Offline({"report", "verify", csv});
  EXPECT_EQ(ok.exit_code, 0) << Describe(ok);
  EXPECT_THAT(ok.out, HasSubstr("OK: audit trail:"));
  EXPECT_THAT(ok.out, HasSubstr(absl::StrCat("up to entry ", manifest.chain_head_seq())));

  // One byte of one old value: the first digit of the update's old yield (1200).
  std::string bytes = ReadFile(csv);
  const std::string old_yield = ",update,well.yield_lph,";
  const size_t at = bytes.find(old_yield);
  ASSERT_NE(at, std::string::npos) << bytes.substr(0, 2000);
  ASSERT_EQ(bytes[at + old_yield.size()], '1');
  bytes[at + old_yield.size()] = '2';
  std::ofstream(csv, std::ios::binary | std::ios::trunc) << bytes;
  CommandResult failed = Offline({"report", "verify", csv});
  EXPECT_EQ(failed.exit_code, 1) << Describe(failed);
  EXPECT_THAT(failed.out, HasSubstr("FAILED: "));
  EXPECT_THAT(failed.out, HasSubstr("starting at line 1)"));  // a small file is one block
  EXPECT_THAT(failed.out, HasSubstr("old_value of well.yield_lph"));
  EXPECT_THAT(failed.err, HasSubstr("failed verification"));

  // --json says the same for scripts.
  CommandResult json = Offline({"report", "verify", csv, "--json"});
  EXPECT_EQ(json.exit_code, 1);
  EXPECT_THAT(json.out, HasSubstr("\"ok\":false"));
}

TEST_F(CliReportTest, EditedChangeLogFailsAuditVerifyAndEarlierExports) {
  const std::string csv = dir_.File("audit.csv");
  const v1::ExportManifest manifest = Export(csv, {"--table", "audit_trail", "--format", "csv"});
  const std::string jsonl = dir_.File("audit.jsonl");
  Export(jsonl, {"--table", "audit", "--format", "jsonl"});
  CommandResult jsonl_ok = Offline({"report", "verify", jsonl});
  EXPECT_EQ(jsonl_ok.exit_code, 0) << Describe(jsonl_ok);

  CommandResult ok = Cli({"audit", "verify"});
  EXPECT_EQ(ok.exit_code, 0) << Describe(ok);
  EXPECT_THAT(ok.out, HasSubstr("OK: audit chain verified"));
  CommandResult online_ok = Cli({"report", "verify", csv});  // --server given: checks online
  EXPECT_EQ(online_ok.exit_code, 0) << Describe(online_ok);
  EXPECT_THAT(online_ok.out, HasSubstr("recorded export"));

  // An attacker with the database file rewrites the project's title in its creating entry.
  const int64_t target = testing::QueryInt(server_.db_path(),
                                  absl::StrCat("SELECT seq FROM change_log WHERE doc_id = '",
                                               project_.id(), "' ORDER BY seq LIMIT 1"));
  ASSERT_GT(target, 0);
  const bool postgres = testing::IsPostgresUrl(server_.db_path());
  ASSERT_EQ(Tamper(server_.db_path(),
                   absl::StrCat(postgres ? "ALTER TABLE change_log DISABLE TRIGGER USER;"
                                         : "DROP TRIGGER change_log_no_update;",
                                "UPDATE change_log SET payload = ",
                                postgres ? "convert_to('forged', 'UTF8')" : "CAST('forged' AS BLOB)",
                                " WHERE seq = ", target, ";")),
            "");

  CommandResult failed = Cli({"audit", "verify"});
  EXPECT_EQ(failed.exit_code, 1) << Describe(failed);
  EXPECT_THAT(failed.out, HasSubstr(absl::StrCat("FAILED: audit chain: entry ", target)));

  // The earlier export's file is still what the server sent...
  CommandResult offline = Offline({"report", "verify", csv});
  EXPECT_EQ(offline.exit_code, 0) << Describe(offline);
  // ...but the server's history up to it no longer verifies.
  CommandResult online = Cli({"report", "verify", csv});
  EXPECT_EQ(online.exit_code, 1) << Describe(online);
  EXPECT_THAT(online.out,
              HasSubstr(absl::StrCat("the server's audit chain fails at entry ", target)));
  (void)manifest;
}

// A change a device pushed and the server refused is in the audit trail (op "reject", outcome
// "refused", no old value), and the export still verifies offline: a refused value is not
// taken for the field's value after it.
TEST_F(CliReportTest, RefusedChangesAppearInTheAuditTrailAndVerify) {
  testing::Hq hq(server_.Channel(), server_.admin_token());
  std::string device_id;
  v1::EnrollRequest ereq;
  ereq.set_code(hq.EnrollmentCode(partner_.id(), "Tab", &device_id));
  auto sync = v1::SyncService::NewStub(server_.Channel());
  v1::EnrollResponse enrolled;
  grpc::ClientContext ectx;
  ASSERT_TRUE(sync->Enroll(&ectx, ereq, &enrolled).ok());
  v1::Record r;
  r.set_id(NewUuidV7());
  r.set_project_id(project_.id());
  v1::WellRecord* w = r.mutable_well();
  w->set_drilled_depth_m(60);
  w->set_static_water_level_m(12);
  w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
  w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
  w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
  w->set_visit_date("2026-05-02");
  v1::PushRequest push;
  push.set_stream_id(NewUuidV7());
  int64_t seq = 0;
  auto add = [&](const sync::FieldValues& fields) {
    v1::Change* c = push.add_changes();
    c->set_device_seq(++seq);
    c->set_collection("record");
    c->set_doc_id(r.id());
    c->set_hlc(sync::Hlc{sync::SystemClockMs(), static_cast<uint32_t>(seq), device_id}.Encode());
    for (const auto& [path, value] : fields) {
      v1::FieldChange* f = c->add_fields();
      f->set_path(path);
      f->set_value(value);
    }
  };
  add(sync::Flatten(r));
  v1::Record deeper;
  deeper.mutable_well()->set_static_water_level_m(90);  // below the bottom of the well
  add(sync::Flatten(deeper));
  v1::Record yield;
  yield.mutable_well()->set_yield_lph(700);
  add(sync::Flatten(yield));
  grpc::ClientContext pctx;
  testing::AddBearer(pctx, enrolled.token());
  v1::PushResponse pushed;
  ASSERT_TRUE(sync->Push(&pctx, push, &pushed).ok());
  ASSERT_EQ(pushed.rejections_size(), 1);

  for (const std::string format : {"csv", "jsonl"}) {
    const std::string file = dir_.File("audit." + format);
    Export(file, {"--table", "audit_trail", "--format", format});
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_THAT(text.str(), HasSubstr("reject")) << format;
    EXPECT_THAT(text.str(), HasSubstr("refused")) << format;
    CommandResult verified = Offline({"report", "verify", file});
    EXPECT_EQ(verified.exit_code, 0) << Describe(verified);
  }
  CommandResult chain = Cli({"audit", "verify"});
  EXPECT_EQ(chain.exit_code, 0) << Describe(chain);
}

TEST_F(CliReportTest, DevicesCannotExportAuditorsCannotWrite) {
  // A field device's token.
  CommandResult device = Cli({"devices", "create", "--partner", partner_.id(), "--name", "Tab",
                              "--json"});
  ASSERT_EQ(device.exit_code, 0) << Describe(device);
  v1::Device d;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(device.out, &d).ok());
  CommandResult token = Cli({"tokens", "create", "--device", d.id(), "--json"});
  ASSERT_EQ(token.exit_code, 0) << Describe(token);
  v1::CreateTokenResponse device_token;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(token.out, &device_token).ok());

  const std::string file = dir_.File("denied.csv");
  CommandResult denied =
      Cli({"report", "export", "--table", "wells", "-o", file}, device_token.secret());
  EXPECT_EQ(denied.exit_code, 4) << Describe(denied);
  EXPECT_THAT(denied.err, HasSubstr("export"));
  EXPECT_FALSE(Exists(file));
  EXPECT_FALSE(Exists(file + ".part"));
  CommandResult audit_denied = Cli({"audit", "verify"}, device_token.secret());
  EXPECT_EQ(audit_denied.exit_code, 4) << Describe(audit_denied);

  // An auditor exports and verifies, but cannot write.
  const std::string auditor = UserToken("ines.auditor", "auditor");
  Export(dir_.File("auditor.csv"), {"--table", "expenditures"}, auditor);
  CommandResult verify = Cli({"audit", "verify"}, auditor);
  EXPECT_EQ(verify.exit_code, 0) << Describe(verify);
  CommandResult create = Cli({"projects", "create", "--partner", partner_.id(), "--kind", "well",
                              "--title", "Not allowed", "--country", "KE"},
                             auditor);
  EXPECT_EQ(create.exit_code, 4) << Describe(create);
  CommandResult update =
      Cli({"projects", "update", project_.id(), "--title", "Renamed by an auditor"}, auditor);
  EXPECT_EQ(update.exit_code, 4) << Describe(update);
  CommandResult record = Cli({"records", "delete", records_[1].id()}, auditor);
  EXPECT_EQ(record.exit_code, 4) << Describe(record);
}

TEST_F(CliReportTest, UsageErrorsNameTheFlagAndLeaveNoFile) {
  const std::string file = dir_.File("x.csv");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--table", "wellz", "-o", file}, "--table: unknown table 'wellz'"},
      {{"--table", "wells,sites", "--format", "csv", "-o", file}, "--table: csv holds one table"},
      {{"--table", "wells", "--format", "pdf", "-o", file}, "--format: must be csv"},
      {{"--table", "wells", "-o", dir_.File("x.bin")}, "--format:"},
      {{"--table", "wells", "--from", "2025-02-30", "-o", file}, "--from"},
      {{"--table", "wells", "--project-kind", "rocket", "-o", file}, "--project-kind"},
      {{"--table", "wells", "--bogus", "1", "-o", file}, "'--bogus'"},
      {{"--table", "wells"}, "--output"},
      {{"--table", "wells", "-o", dir_.File("missing/dir/x.csv")}, "--output: cannot create"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"report", "export"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    CommandResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr(c.message));
  }
  EXPECT_FALSE(Exists(file));
  EXPECT_FALSE(Exists(file + ".part"));
  CommandResult verify_usage = Offline({"report", "verify"});
  EXPECT_EQ(verify_usage.exit_code, 2) << Describe(verify_usage);
  CommandResult no_manifest = Offline({"report", "verify", dir_.File("nothing.csv")});
  EXPECT_EQ(no_manifest.exit_code, 5) << Describe(no_manifest);
  CommandResult audit_usage = Cli({"audit", "verify", "--from", "x"});
  EXPECT_EQ(audit_usage.exit_code, 2) << Describe(audit_usage);
  EXPECT_THAT(audit_usage.err, HasSubstr("--from"));
  CommandResult help = Offline({"report", "export", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("--project-kind KIND"));
}

TEST_F(CliReportTest, UnreachableServerLeavesNoFile) {
  const std::string file = dir_.File("wells.csv");
  server_.Stop();
  CommandResult r = Cli({"report", "export", "--table", "wells", "-o", file});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("nothing was written to"));
  EXPECT_FALSE(Exists(file));
  EXPECT_FALSE(Exists(file + ".part"));
  EXPECT_FALSE(Exists(file + ".manifest.json"));
}

}  // namespace
}  // namespace fieldsync
