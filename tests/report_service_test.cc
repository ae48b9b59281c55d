// ReportService against the real fieldsyncd: exports checked against independent SQL on the
// server's own SQLite file, filters, the manifest and its change-log entry, the audit trail
// recomputed offline (hashes, old and new values, won and lost merges), VerifyAuditChain after
// tampering with the file behind the server's back, permissions, bad requests, IATI validated by
// xmllint, XLSX opened by openpyxl, and the server's memory while it streams a large export.

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/report/writer.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/sync/hlc.h"
#include "fieldsync/sync/sqlite.h"
#include "fieldsync/v1/admin.grpc.pb.h"
#include "fieldsync/v1/report.grpc.pb.h"
#include "fieldsync/v1/sync.grpc.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/change_log.h"
#include "server/sqlite_reports.h"
#include "server/sqlite_store.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::fieldsync::v1;

// --- Helpers -----------------------------------------------------------------------------------

struct ExportResult {
  grpc::Status status;
  std::string bytes;
  v1::ExportManifest manifest;
  bool has_manifest = false;
  int chunks = 0;
  size_t largest_chunk = 0;
  int64_t first_rows_total = -1;
  int64_t last_rows_written = 0;
};

ExportResult RunExport(v1::ReportService::Stub& stub, const std::string& token,
                       const v1::ExportRequest& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  testing::AddBearer(ctx, token);
  auto reader = stub.Export(&ctx, req);
  ExportResult out;
  v1::ExportChunk chunk;
  while (reader->Read(&chunk)) {
    if (out.chunks++ == 0) out.first_rows_total = chunk.rows_total();
    out.bytes += chunk.data();
    out.largest_chunk = std::max(out.largest_chunk, chunk.data().size());
    out.last_rows_written = chunk.rows_written();
    if (chunk.has_manifest()) {
      out.manifest = chunk.manifest();
      out.has_manifest = true;
    }
  }
  out.status = reader->Finish();
  return out;
}

v1::ExportRequest Request(v1::ReportFormat format, std::vector<v1::ReportTable> tables,
                          v1::ReportFilter filter = {}) {
  v1::ExportRequest req;
  req.set_format(format);
  for (v1::ReportTable t : tables) req.add_tables(t);
  *req.mutable_filter() = filter;
  return req;
}

// RFC 4180 with CRLF line ends: rows of fields.
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      any = true;
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      row.push_back(field);
      rows.push_back(row);
      row.clear();
      field.clear();
      any = false;
      ++i;
    } else {
      field += c;
      any = true;
    }
  }
  if (any || !field.empty()) {
    row.push_back(field);
    rows.push_back(row);
  }
  return rows;
}

// A CSV table with its header: column name -> index.
struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  int Col(const std::string& name) const {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) return static_cast<int>(i);
    }
    ADD_FAILURE() << "no column " << name;
    return 0;
  }
};

Csv ToCsv(const std::string& bytes) {
  Csv out;
  auto all = ParseCsv(bytes);
  if (all.empty()) return out;
  out.header = all.front();
  out.rows.assign(all.begin() + 1, all.end());
  return out;
}

std::vector<google::protobuf::Struct> ParseJsonl(const std::string& bytes) {
  std::vector<google::protobuf::Struct> out;
  for (absl::string_view line : absl::StrSplit(bytes, '\n', absl::SkipEmpty())) {
    google::protobuf::Struct s;
    auto st = google::protobuf::util::JsonStringToMessage(std::string(line), &s);
    EXPECT_TRUE(st.ok()) << st.ToString() << " in " << line;
    out.push_back(std::move(s));
  }
  return out;
}

std::string Str(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  if (it == s.fields().end() || it->second.has_null_value()) return "";
  if (it->second.has_number_value()) return absl::StrCat(static_cast<int64_t>(it->second.number_value()));
  return it->second.string_value();
}
int64_t IntOf(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  if (it == s.fields().end() || !it->second.has_number_value()) return -1;
  return static_cast<int64_t>(it->second.number_value());
}

std::string WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

int64_t VmHwmKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      int64_t kb = 0;
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') digits += c;
      }
      if (absl::SimpleAtoi(digits, &kb)) return kb;
    }
  }
  return -1;
}

// Runs `sql` on the server's database with a connection of our own (writes, as an attacker
// would).
void ExecSql(const std::string& db_path, const std::string& sql) {
  EXPECT_OK(testing::ExecSql(db_path, sql));
}

// --- A server with the demo network (shared by the read-only tests) ---------------------------

// ctest runs each test in a process of its own: the demo network (tens of seconds to load on a
// busy machine) is loaded once per fieldsyncd build into a template database next to this test
// binary, under a lock, and copied for each process. In the PostgreSQL pass the template is a
// database of the test cluster (its name returned), and each process gets
// CREATE DATABASE ... TEMPLATE of it.
std::string DemoTemplate() {
  struct stat st {};
  if (stat(testing::FieldsyncdPath().c_str(), &st) != 0) return "";
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "";
  exe[n] = '\0';
  std::string dir = std::string(exe).substr(0, std::string(exe).rfind('/'));
  std::string path = absl::StrCat(dir, "/report-demo-", st.st_mtime, "-", st.st_size, ".db");
  int lock = open((dir + "/report-demo.lock").c_str(), O_CREAT | O_RDWR, 0600);
  if (lock < 0) return "";
  flock(lock, LOCK_EX);
  if (testing::UsingPostgres()) {
    const std::string name = absl::StrCat("fsdemo_tmpl_", st.st_mtime, "_", st.st_size);
    if (testing::QueryInt(testing::PostgresAdminUrl(),
                          "SELECT COUNT(*) FROM pg_database WHERE datname = '" + name + "'") != 1) {
      testing::TempDir tmp;
      testing::ServerProcess loader;
      absl::Status s = loader.Start(tmp.path(), {"--demo-data"});
      EXPECT_TRUE(s.ok()) << s << loader.Log();
      EXPECT_EQ(loader.Stop(), 0);
      std::string loaded = loader.db_path().substr(loader.db_path().rfind('/') + 1);
      EXPECT_OK(testing::ExecSql(testing::PostgresAdminUrl(),
                                 absl::StrCat("CREATE DATABASE ", name, " TEMPLATE ", loaded)));
    }
    flock(lock, LOCK_UN);
    close(lock);
    return name;
  }
  if (access(path.c_str(), R_OK) != 0) {
    // Older templates belong to older builds of fieldsyncd.
    testing::RunCommand({"/bin/sh", "-c", "rm -f \"$0\"/report-demo-*.db", dir});
    testing::TempDir tmp;
    testing::ServerProcess loader;
    absl::Status s = loader.Start(tmp.path(), {"--demo-data", "--synchronous", "NORMAL"});
    EXPECT_TRUE(s.ok()) << s << loader.Log();
    EXPECT_EQ(loader.Stop(), 0);
    // A clean stop checkpoints the WAL into the main file.
    testing::RunCommand({"/bin/cp", loader.db_path(), path + ".tmp"});
    rename((path + ".tmp").c_str(), path.c_str());
  }
  flock(lock, LOCK_UN);
  close(lock);
  return path;
}

class ReportDemoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    server_ = new testing::ServerProcess();
    std::string demo = DemoTemplate();
    ASSERT_FALSE(demo.empty());
    absl::Status s;
    if (testing::UsingPostgres()) {
      ASSERT_OK_AND_ASSIGN(db_url_, testing::CreatePostgresDatabase(demo));
      s = server_->StartOn(dir_->path(), db_url_);
    } else {
      ASSERT_EQ(testing::RunCommand({"/bin/cp", demo, dir_->File("fieldsync.db")}).exit_code, 0);
      s = server_->Start(dir_->path(), {"--synchronous", "NORMAL"});
    }
    ASSERT_TRUE(s.ok()) << s << server_->Log();
    report_ = v1::ReportService::NewStub(server_->Channel()).release();
  }
  static void TearDownTestSuite() {
    delete report_;
    delete server_;
    delete dir_;
    if (!db_url_.empty()) testing::DropPostgresDatabase(db_url_);
  }

  static int64_t Sql(const std::string& sql) { return testing::QueryInt(server_->db_path(), sql); }
  static ExportResult Export(const v1::ExportRequest& req) {
    return RunExport(*report_, server_->admin_token(), req);
  }
  static Csv ExportCsv(v1::ReportTable table, v1::ReportFilter filter = {}) {
    ExportResult r = Export(Request(v1::REPORT_FORMAT_CSV, {table}, filter));
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
    return ToCsv(r.bytes);
  }

  static testing::TempDir* dir_;
  static testing::ServerProcess* server_;
  static v1::ReportService::Stub* report_;
  static std::string db_url_;  // the PostgreSQL pass's copy of the template
};

std::string ReportDemoTest::db_url_;
testing::TempDir* ReportDemoTest::dir_ = nullptr;
testing::ServerProcess* ReportDemoTest::server_ = nullptr;
v1::ReportService::Stub* ReportDemoTest::report_ = nullptr;

TEST_F(ReportDemoTest, CsvOfEveryRecordTableMatchesTheDatabase) {
  struct Case {
    v1::ReportTable table;
    std::string count_sql;
  };
  const std::vector<Case> cases = {
      {v1::REPORT_TABLE_PROJECTS, "SELECT COUNT(*) FROM projects"},
      {v1::REPORT_TABLE_SITES, "SELECT COUNT(*) FROM sites"},
      {v1::REPORT_TABLE_WELLS, "SELECT COUNT(*) FROM well_records"},
      {v1::REPORT_TABLE_WATER_QUALITY_TESTS, "SELECT COUNT(*) FROM water_quality_tests"},
      {v1::REPORT_TABLE_SURGERIES, "SELECT COUNT(*) FROM cataract_surgeries"},
      {v1::REPORT_TABLE_FOLLOW_UPS, "SELECT COUNT(*) FROM cataract_follow_ups"},
      {v1::REPORT_TABLE_DONATIONS, "SELECT COUNT(*) FROM classroom_donations"},
      {v1::REPORT_TABLE_DONATION_ITEMS, "SELECT COUNT(*) FROM donation_items"},
      {v1::REPORT_TABLE_EXPENDITURES, "SELECT COUNT(*) FROM expenditures"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(v1::ReportTable_Name(c.table));
    ExportResult r = Export(Request(v1::REPORT_FORMAT_CSV, {c.table}));
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    Csv csv = ToCsv(r.bytes);
    int64_t want = Sql(c.count_sql);
    EXPECT_GT(want, 0);
    EXPECT_EQ(static_cast<int64_t>(csv.rows.size()), want);
    EXPECT_EQ(r.first_rows_total, want) << "rows_total on the first chunk";
    ASSERT_TRUE(r.has_manifest);
    ASSERT_EQ(r.manifest.row_counts_size(), 1);
    EXPECT_EQ(r.manifest.row_counts(0).rows(), want);
    EXPECT_LE(r.largest_chunk, 64u * 1024);
    for (const auto& row : csv.rows) ASSERT_EQ(row.size(), csv.header.size());
  }

  // Values, each against SQL of its own.
  Csv wells = ExportCsv(v1::REPORT_TABLE_WELLS);
  int64_t population = 0, functional = 0;
  std::set<std::string> devices_or_api;
  for (const auto& row : wells.rows) {
    int64_t n = 0;
    ASSERT_TRUE(absl::SimpleAtoi(row[wells.Col("population_served")], &n));
    population += n;
    functional += row[wells.Col("functional_status")] == "FUNCTIONAL";
    EXPECT_EQ(row[wells.Col("created_by_name")], "system");
    EXPECT_EQ(row[wells.Col("created_device_id")], "");  // demo data came through the API
    EXPECT_EQ(row[wells.Col("created_at_utc")].size(), 19u);
  }
  EXPECT_EQ(population, Sql("SELECT SUM(population_served) FROM well_records"));
  EXPECT_EQ(functional,
            Sql("SELECT COUNT(*) FROM well_records WHERE functional_status = 'FUNCTIONAL'"));

  Csv expenditures = ExportCsv(v1::REPORT_TABLE_EXPENDITURES);
  std::map<std::string, int64_t> per_currency;
  for (const auto& row : expenditures.rows) ++per_currency[row[expenditures.Col("currency")]];
  for (const auto& [currency, n] : per_currency) {
    EXPECT_EQ(n, Sql("SELECT COUNT(*) FROM expenditures WHERE currency = '" + currency + "'"))
        << currency;
  }
  // One amount in major units, read back exactly (minor units from ISO 4217).
  const auto& first = expenditures.rows.front();
  std::string id = first[expenditures.Col("record_id")];
  int64_t minor = Sql("SELECT amount_minor FROM expenditures WHERE record_id = '" + id + "'");
  std::string currency = first[expenditures.Col("currency")];
  double major = 0;
  ASSERT_TRUE(absl::SimpleAtod(first[expenditures.Col("amount")], &major));
  int digits = (currency == "UGX" || currency == "RWF" || currency == "XOF" || currency == "VND")
                   ? 0
                   : 2;
  EXPECT_EQ(static_cast<int64_t>(std::llround(major * std::pow(10, digits))), minor);

  Csv projects = ExportCsv(v1::REPORT_TABLE_PROJECTS);
  for (const auto& row : projects.rows) {
    const std::string pid = row[projects.Col("project_id")];
    int64_t wells_n = 0;
    ASSERT_TRUE(absl::SimpleAtoi(row[projects.Col("wells")], &wells_n));
    EXPECT_EQ(wells_n, Sql("SELECT COUNT(*) FROM records WHERE kind = 'WELL' AND project_id = '" +
                           pid + "'"));
  }
}

TEST_F(ReportDemoTest, FiltersChooseTheRows) {
  const std::string partner =
      ToCsv(Export(Request(v1::REPORT_FORMAT_CSV, {v1::REPORT_TABLE_PROJECTS})).bytes).rows[0][1];
  auto count = [&](v1::ReportTable table, v1::ReportFilter f) {
    return static_cast<int64_t>(ExportCsv(table, f).rows.size());
  };
  v1::ReportFilter f;
  f.set_partner_id(partner);
  EXPECT_EQ(count(v1::REPORT_TABLE_WELLS, f),
            Sql("SELECT COUNT(*) FROM records WHERE kind = 'WELL' AND partner_id = '" + partner + "'"));
  f = {};
  f.set_country("KE");
  EXPECT_EQ(count(v1::REPORT_TABLE_SURGERIES, f),
            Sql("SELECT COUNT(*) FROM records WHERE kind = 'CATARACT_SURGERY' AND country = 'KE'"));
  f = {};
  f.set_from_date("2025-01-01");
  f.set_to_date("2025-06-30");
  int64_t in_period = Sql(
      "SELECT COUNT(*) FROM records WHERE kind = 'EXPENDITURE' AND record_date BETWEEN "
      "'2025-01-01' AND '2025-06-30'");
  EXPECT_GT(in_period, 0);
  EXPECT_LT(in_period, Sql("SELECT COUNT(*) FROM expenditures"));
  EXPECT_EQ(count(v1::REPORT_TABLE_EXPENDITURES, f), in_period);
  f = {};
  f.set_project_kind(v1::PROJECT_KIND_CLASSROOM);
  EXPECT_EQ(count(v1::REPORT_TABLE_EXPENDITURES, f),
            Sql("SELECT COUNT(*) FROM records r JOIN projects p ON p.id = r.project_id "
                "WHERE r.kind = 'EXPENDITURE' AND p.kind = 'CLASSROOM'"));
  EXPECT_EQ(count(v1::REPORT_TABLE_WELLS, f), 0);
  // One project: its sites and nothing else.
  Csv sites = ExportCsv(v1::REPORT_TABLE_SITES);
  const std::string project = sites.rows[0][sites.Col("project_id")];
  f = {};
  f.set_project_id(project);
  Csv mine = ExportCsv(v1::REPORT_TABLE_SITES, f);
  EXPECT_EQ(static_cast<int64_t>(mine.rows.size()),
            Sql("SELECT COUNT(*) FROM sites WHERE project_id = '" + project + "'"));
  for (const auto& row : mine.rows) EXPECT_EQ(row[mine.Col("project_id")], project);
  // Audit trail by period: nothing before the demo was loaded.
  f = {};
  f.set_to_date("2000-01-01");
  EXPECT_EQ(count(v1::REPORT_TABLE_AUDIT_TRAIL, f), 0);
}

TEST_F(ReportDemoTest, ManifestHashesTheBytesAndIsInTheChangeLog) {
  int64_t head_before = Sql("SELECT MAX(seq) FROM change_log");
  ExportResult r = Export(Request(v1::REPORT_FORMAT_JSONL, {v1::REPORT_TABLE_WELLS}));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_TRUE(r.has_manifest);
  const v1::ExportManifest& m = r.manifest;
  EXPECT_EQ(m.manifest_version(), 1);
  EXPECT_TRUE(IsUuid(m.export_id()));
  EXPECT_EQ(m.content_sha256(), Sha256Hex(r.bytes));
  EXPECT_EQ(m.content_bytes(), static_cast<int64_t>(r.bytes.size()));
  ASSERT_GT(r.bytes.size(), 1u << 20) << "want several blocks";
  ASSERT_EQ(m.block_bytes(), 1 << 20);
  ASSERT_EQ(m.block_sha256_size(), static_cast<int>((r.bytes.size() + (1 << 20) - 1) >> 20));
  for (int i = 0; i < m.block_sha256_size(); ++i) {
    EXPECT_EQ(m.block_sha256(i), Sha256Hex(absl::string_view(r.bytes).substr(
                                     static_cast<size_t>(i) << 20, 1 << 20)));
  }
  EXPECT_EQ(m.chain_head_seq(), head_before);
  EXPECT_EQ(m.generated_by_name(), "admin");
  EXPECT_EQ(r.last_rows_written, m.row_counts(0).rows());
  EXPECT_EQ(static_cast<int64_t>(ParseJsonl(r.bytes).size()), m.row_counts(0).rows());

  // Logged: who exported what, when; and GetExportManifest answers with the same manifest.
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM change_log WHERE collection = 'export' AND doc_id = '" +
                m.export_id() + "' AND op = 'create'"),
            1);
  v1::GetExportManifestRequest get;
  get.set_export_id(m.export_id());
  v1::ExportManifest stored;
  grpc::ClientContext ctx;
  testing::AddBearer(ctx, server_->admin_token());
  ASSERT_TRUE(report_->GetExportManifest(&ctx, get, &stored).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(stored, m));
  get.set_export_id(NewUuidV7());
  grpc::ClientContext ctx2;
  testing::AddBearer(ctx2, server_->admin_token());
  EXPECT_EQ(report_->GetExportManifest(&ctx2, get, &stored).error_code(),
            grpc::StatusCode::NOT_FOUND);
  get.set_export_id("not-an-id");
  grpc::ClientContext ctx3;
  testing::AddBearer(ctx3, server_->admin_token());
  grpc::Status bad = report_->GetExportManifest(&ctx3, get, &stored);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("export_id"));
}

TEST_F(ReportDemoTest, BadRequestsNameTheField) {
  struct Case {
    v1::ExportRequest req;
    std::string field;
  };
  v1::ReportFilter bad_date;
  bad_date.set_from_date("2026-02-30");
  v1::ReportFilter reversed;
  reversed.set_from_date("2026-05-01");
  reversed.set_to_date("2026-04-01");
  v1::ReportFilter country;
  country.set_country("XX");
  v1::ReportFilter partner;
  partner.set_partner_id("partner-1");
  v1::ReportFilter project;
  project.set_project_id("1234");
  v1::ReportFilter kind;
  kind.set_project_kind(static_cast<v1::ProjectKind>(42));
  const std::vector<Case> cases = {
      {Request(v1::REPORT_FORMAT_UNSPECIFIED, {}), "format"},
      {Request(static_cast<v1::ReportFormat>(9), {}), "format"},
      {Request(v1::REPORT_FORMAT_CSV, {v1::REPORT_TABLE_WELLS, v1::REPORT_TABLE_SITES}), "tables"},
      {Request(v1::REPORT_FORMAT_JSONL, {v1::REPORT_TABLE_WELLS, v1::REPORT_TABLE_SITES}),
       "tables"},
      {Request(v1::REPORT_FORMAT_IATI_XML, {v1::REPORT_TABLE_WELLS}), "tables[0]"},
      {Request(v1::REPORT_FORMAT_XLSX, {v1::REPORT_TABLE_IATI_ACTIVITIES}), "tables[0]"},
      {Request(v1::REPORT_FORMAT_XLSX, {v1::REPORT_TABLE_WELLS, v1::REPORT_TABLE_WELLS}),
       "tables[1]"},
      {Request(v1::REPORT_FORMAT_CSV, {static_cast<v1::ReportTable>(77)}), "tables[0]"},
      {Request(v1::REPORT_FORMAT_CSV, {}, bad_date), "filter.from_date"},
      {Request(v1::REPORT_FORMAT_CSV, {}, reversed), "filter.to_date"},
      {Request(v1::REPORT_FORMAT_CSV, {}, country), "filter.country"},
      {Request(v1::REPORT_FORMAT_CSV, {}, partner), "filter.partner_id"},
      {Request(v1::REPORT_FORMAT_CSV, {}, project), "filter.project_id"},
      {Request(v1::REPORT_FORMAT_CSV, {}, kind), "filter.project_kind"},
  };
  for (const Case& c : cases) {
    ExportResult r = Export(c.req);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.field << ": " << r.status.error_message();
    EXPECT_THAT(r.status.error_message(), HasSubstr(c.field + ":"));
    EXPECT_TRUE(r.bytes.empty());
  }
  v1::VerifyAuditChainRequest v;
  v.set_from_seq(10);
  v.set_to_seq(5);
  v1::VerifyAuditChainResponse resp;
  grpc::ClientContext ctx;
  testing::AddBearer(ctx, server_->admin_token());
  grpc::Status s = report_->VerifyAuditChain(&ctx, v, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("to_seq"));
}

TEST_F(ReportDemoTest, IatiExportOfTheDemoValidatesAgainstTheSchema) {
  ExportResult r = Export(Request(v1::REPORT_FORMAT_IATI_XML, {}));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.manifest.row_counts(0).rows(), Sql("SELECT COUNT(*) FROM projects"));
  std::string path = WriteFile(dir_->File("iati.xml"), r.bytes);
  testing::CommandResult x = testing::RunCommand(
      {"/usr/bin/xmllint", "--noout", "--schema",
       std::string(FIELDSYNC_SOURCE_DIR) + "/tests/data/iati/iati-activities-schema.xsd", path});
  EXPECT_EQ(x.exit_code, 0) << x.err.substr(0, 4000);
  // (find, not HasSubstr: a failure would print megabytes)
  for (const char* want : {"code=\"14031\"", "code=\"12191\"", "code=\"11220\"",
                           "<transaction-type code=\"4\"/>", "<location ref=", "<budget ",
                           "<result type=\"1\">", "<participating-org role=\"4\""}) {
    EXPECT_NE(r.bytes.find(want), std::string::npos) << want;
  }
}

TEST_F(ReportDemoTest, XlsxIsAWorkbookOpenpyxlOpens) {
  ExportResult r = Export(Request(v1::REPORT_FORMAT_XLSX, {}));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_GE(r.bytes.size(), 4u);
  EXPECT_EQ(r.bytes.substr(0, 2), "PK");
  std::string path = WriteFile(dir_->File("report.xlsx"), r.bytes);
  testing::CommandResult py = testing::RunCommand(
      {"/usr/bin/python3", "-c",
       "import sys, openpyxl\n"
       "wb = openpyxl.load_workbook(sys.argv[1], read_only=True)\n"
       "print(','.join(wb.sheetnames))\n"
       "ws = wb['wells']\n"
       "print(ws.max_row - 1)\n",
       path});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  std::vector<std::string> lines = absl::StrSplit(py.out, '\n');
  EXPECT_EQ(lines[0],
            "projects,sites,wells,water_quality_tests,surgeries,follow_ups,donations,"
            "donation_items,expenditures,reconciliation,reconciliation_gaps");
  EXPECT_EQ(lines[1], absl::StrCat(Sql("SELECT COUNT(*) FROM well_records")));
  // No temporary file left next to the database.
  testing::CommandResult ls = testing::RunCommand({"/bin/ls", "-A", dir_->path()});
  EXPECT_THAT(ls.out, ::testing::Not(HasSubstr("fieldsync-export-")));
}

TEST_F(ReportDemoTest, ReconciliationExplainsEachGap) {
  Csv rec = ExportCsv(v1::REPORT_TABLE_RECONCILIATION);
  Csv gaps = ExportCsv(v1::REPORT_TABLE_RECONCILIATION_GAPS);
  ASSERT_FALSE(rec.rows.empty());
  // Per project and measure (not spend): the gap equals what its gap rows add up to.
  std::map<std::pair<std::string, std::string>, double> explained;
  for (const auto& row : gaps.rows) {
    double e = 0, a = 0;
    ASSERT_TRUE(absl::SimpleAtod(row[gaps.Col("expected")], &e));
    ASSERT_TRUE(absl::SimpleAtod(row[gaps.Col("actual")], &a));
    explained[{row[gaps.Col("project_id")], row[gaps.Col("measure")]}] += e - a;
  }
  int checked = 0;
  for (const auto& row : rec.rows) {
    const std::string measure = row[rec.Col("measure")];
    if (measure == "spend_vs_budget") continue;
    double gap = 0;
    ASSERT_TRUE(absl::SimpleAtod(row[rec.Col("gap")], &gap));
    const double want = explained[std::make_pair(row[rec.Col("project_id")], measure)];
    EXPECT_DOUBLE_EQ(gap, want)
        << row[rec.Col("project_id")] << " " << measure;
    ++checked;
  }
  EXPECT_GT(checked, 0);
  // Wells recorded vs functional, against SQL.
  int64_t not_functional = 0;
  for (const auto& row : gaps.rows) {
    not_functional += row[gaps.Col("measure")] == "functional_vs_recorded_water_points";
  }
  EXPECT_EQ(not_functional,
            Sql("SELECT COUNT(*) FROM well_records WHERE functional_status <> 'FUNCTIONAL'"));
}

TEST_F(ReportDemoTest, TooManyExportsAtOnceAreRefusedAndCancelledOnesLetGo) {
  // Two audit-trail exports whose client stops reading: the server blocks in Write, holding
  // its two export slots.
  const int64_t logged_before = Sql("SELECT COUNT(*) FROM change_log WHERE collection = 'export'");
  v1::ExportRequest big = Request(v1::REPORT_FORMAT_CSV, {v1::REPORT_TABLE_AUDIT_TRAIL});
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::ExportChunk>>> readers;
  for (int i = 0; i < 2; ++i) {
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    testing::AddBearer(*ctxs.back(), server_->admin_token());
    readers.push_back(report_->Export(ctxs.back().get(), big));
    v1::ExportChunk chunk;
    ASSERT_TRUE(readers.back()->Read(&chunk));
    EXPECT_GT(chunk.rows_total(), 100000);
  }
  ExportResult third = Export(Request(v1::REPORT_FORMAT_CSV, {v1::REPORT_TABLE_PROJECTS}));
  EXPECT_EQ(third.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << third.status.error_message();
  for (auto& c : ctxs) c->TryCancel();
  for (auto& r : readers) r->Finish().IgnoreError();
  // The server notices the cancellations and frees the slots.
  grpc::Status last;
  for (int i = 0; i < 100; ++i) {
    last = Export(Request(v1::REPORT_FORMAT_CSV, {v1::REPORT_TABLE_PROJECTS})).status;
    if (last.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(last.ok()) << last.error_message();
  // Only the export that completed is logged; the cancelled ones are not.
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM change_log WHERE collection = 'export'"), logged_before + 1);
}

// Runs last in this suite: restarts the server for a fresh high-water mark.
TEST_F(ReportDemoTest, ZMemoryStaysFlatWhileStreamingTheAuditTrail) {
  if (std::getenv("FIELDSYNC_SANITIZER_BUILD") != nullptr) {
    GTEST_SKIP() << "under ASan the quarantine and shadow memory make a memory bound meaningless; "
                    "the plain build (scripts/test) checks it";
  }
  ASSERT_TRUE(server_->Restart().ok()) << server_->Log();
  // Warm up: connections, statements, a small export.
  ASSERT_TRUE(Export(Request(v1::REPORT_FORMAT_CSV, {v1::REPORT_TABLE_PROJECTS})).status.ok());
  int64_t before_kb = VmHwmKb(server_->pid());
  grpc::ClientContext ctx;
  testing::AddBearer(ctx, server_->admin_token());
  auto reader =
      report_->Export(&ctx, Request(v1::REPORT_FORMAT_CSV, {v1::REPORT_TABLE_AUDIT_TRAIL}));
  v1::ExportChunk chunk;
  int64_t bytes = 0, rows = 0;
  while (reader->Read(&chunk)) {
    bytes += static_cast<int64_t>(chunk.data().size());
    if (chunk.has_manifest()) rows = chunk.manifest().row_counts(0).rows();
  }
  ASSERT_TRUE(reader->Finish().ok());
  int64_t after_kb = VmHwmKb(server_->pid());
  std::printf("audit trail export: %lld rows, %.1f MiB streamed; server VmHWM %.1f -> %.1f MiB "
              "(+%.1f MiB)\n",
              static_cast<long long>(rows), bytes / 1048576.0, before_kb / 1024.0,
              after_kb / 1024.0, (after_kb - before_kb) / 1024.0);
  ASSERT_GT(before_kb, 0);
  EXPECT_GT(rows, 100000);
  EXPECT_GT(bytes, 50 << 20);
  // Streaming: the server's peak grows by a small fraction of what it sent.
  EXPECT_LT((after_kb - before_kb) * 1024, bytes / 4);
  EXPECT_LT(after_kb - before_kb, 64 * 1024);
}

// Long mode: FIELDSYNC_REPORT_BIG_DB_DIR names a folder whose fieldsync.db holds a large
// database (bench/report_db --db DIR/fieldsync.db --records 1000000). The server's peak RSS
// before and after streaming its biggest tables.
TEST(ReportBigDbTest, MemoryStaysBoundedOnALargeDatabase) {
  const char* dir = std::getenv("FIELDSYNC_REPORT_BIG_DB_DIR");
  if (dir == nullptr || *dir == '\0') GTEST_SKIP() << "set FIELDSYNC_REPORT_BIG_DB_DIR";
  testing::ServerProcess server;
  server.UseSqlite();  // the large database is the SQLite file bench/report_db built
  ASSERT_TRUE(server.Start(dir).ok()) << server.Log();
  auto stub = v1::ReportService::NewStub(server.Channel());
  ASSERT_TRUE(RunExport(*stub, server.admin_token(),
                        Request(v1::REPORT_FORMAT_CSV, {v1::REPORT_TABLE_PROJECTS}))
                  .status.ok());
  std::printf("records: %lld, change-log entries: %lld\n",
              static_cast<long long>(testing::QueryInt(server.db_path(), "SELECT COUNT(*) FROM records")),
              static_cast<long long>(
                  testing::QueryInt(server.db_path(), "SELECT COUNT(*) FROM change_log")));
  const std::vector<std::pair<std::string, v1::ExportRequest>> exports = {
      {"CSV wells", Request(v1::REPORT_FORMAT_CSV, {v1::REPORT_TABLE_WELLS})},
      {"JSONL expenditures", Request(v1::REPORT_FORMAT_JSONL, {v1::REPORT_TABLE_EXPENDITURES})},
      {"CSV audit_trail", Request(v1::REPORT_FORMAT_CSV, {v1::REPORT_TABLE_AUDIT_TRAIL})},
      {"XLSX all but audit", Request(v1::REPORT_FORMAT_XLSX, {})},
      {"IATI", Request(v1::REPORT_FORMAT_IATI_XML, {})},
  };
  for (const auto& [name, req] : exports) {
    int64_t before_kb = VmHwmKb(server.pid());
    grpc::ClientContext ctx;
    testing::AddBearer(ctx, server.admin_token());
    auto start = std::chrono::steady_clock::now();
    auto reader = stub->Export(&ctx, req);
    v1::ExportChunk chunk;
    int64_t bytes = 0, rows = 0;
    while (reader->Read(&chunk)) {
      bytes += static_cast<int64_t>(chunk.data().size());
      rows = chunk.rows_written();
    }
    grpc::Status st = reader->Finish();
    ASSERT_TRUE(st.ok()) << name << ": " << st.error_message();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    int64_t after_kb = VmHwmKb(server.pid());
    std::printf("%-20s %9lld rows %8.1f MiB in %6.1f s; server VmHWM %.1f -> %.1f MiB\n",
                name.c_str(), static_cast<long long>(rows), bytes / 1048576.0, secs,
                before_kb / 1024.0, after_kb / 1024.0);
    // IATI holds one activity at a time, and an activity holds all of its project's
    // transactions (report::IatiActivity): its peak follows the largest project, so it is
    // reported, not bounded here.
    if (name != "IATI") {
      EXPECT_LT(after_kb - before_kb, 64 * 1024) << name;
    }
  }
}

// --- A fresh server with devices (tests that write) -------------------------------------------

class ReportWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start(dir_.path()).ok()) << server_.Log();
    channel_ = server_.Channel();
    hq_ = std::make_unique<testing::Hq>(channel_, server_.admin_token());
    sync_ = v1::SyncService::NewStub(channel_);
    report_ = v1::ReportService::NewStub(channel_);
    partner_ = hq_->CreatePartner("Maji Safi Kenya", {"KE"}).id();
    project_ = hq_->CreateProject(partner_, v1::PROJECT_KIND_WELL, "KE", "Boreholes").id();
    token_a_ = Enroll(&device_a_);
    token_b_ = Enroll(&device_b_);
  }

  std::string Enroll(std::string* device_id) {
    v1::EnrollRequest req;
    req.set_code(hq_->EnrollmentCode(partner_, "Tablet " + std::to_string(++devices_), device_id));
    v1::EnrollResponse out;
    grpc::ClientContext ctx;
    EXPECT_TRUE(sync_->Enroll(&ctx, req, &out).ok());
    return out.token();
  }

  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    testing::AddBearer(*ctx, token);
    return ctx;
  }

  v1::Record Well(int population) {
    v1::Record r;
    r.set_id(NewUuidV7());
    r.set_project_id(project_);
    v1::WellRecord* w = r.mutable_well();
    w->set_drilled_depth_m(60);
    w->set_static_water_level_m(12);
    w->set_yield_lph(900);
    w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
    w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
    w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
    w->set_population_served(population);
    w->set_visit_date("2026-05-02");
    return r;
  }

  v1::Change Create(const std::string& device, int64_t seq, const v1::Record& r) {
    v1::Change c;
    c.set_device_seq(seq);
    c.set_collection("record");
    c.set_doc_id(r.id());
    c.set_hlc(sync::Hlc{sync::SystemClockMs(), 0, device}.Encode());
    for (const auto& [path, value] : sync::Flatten(r)) {
      v1::FieldChange* f = c.add_fields();
      f->set_path(path);
      f->set_value(value);
    }
    return c;
  }

  v1::Change EditPopulation(const std::string& device, int64_t seq, const std::string& doc,
                            const std::string& base_hlc, int population, int64_t wall_ms) {
    v1::Change c;
    c.set_device_seq(seq);
    c.set_collection("record");
    c.set_doc_id(doc);
    c.set_hlc(sync::Hlc{wall_ms, 0, device}.Encode());
    v1::Record value;
    value.mutable_well()->set_population_served(population);
    v1::FieldChange* f = c.add_fields();
    f->set_path("well.population_served");
    f->set_value(sync::Flatten(value).at("well.population_served"));
    f->set_base_hlc(base_hlc);
    return c;
  }

  void Push(const std::string& token, const v1::Change& c) {
    v1::PushRequest req;
    *req.add_changes() = c;
    v1::PushResponse resp;
    grpc::Status s = sync_->Push(Ctx(token).get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  v1::VerifyAuditChainResponse Verify(int64_t from = 0, int64_t to = 0) {
    v1::VerifyAuditChainRequest req;
    req.set_from_seq(from);
    req.set_to_seq(to);
    v1::VerifyAuditChainResponse resp;
    grpc::Status s = report_->VerifyAuditChain(Ctx(server_.admin_token()).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  int64_t Sql(const std::string& sql) { return testing::QueryInt(server_.db_path(), sql); }

  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<testing::Hq> hq_;
  std::unique_ptr<v1::SyncService::Stub> sync_;
  std::unique_ptr<v1::ReportService::Stub> report_;
  std::string partner_, project_, device_a_, device_b_, token_a_, token_b_;
  int devices_ = 0;
};

TEST_F(ReportWriteTest, JsonlHasNullForAnUnsetBudgetAndEmptyTexts) {
  // The fixture's project was created with no budget, donor or admin area.
  ExportResult r = RunExport(*report_, server_.admin_token(),
                             Request(v1::REPORT_FORMAT_JSONL, {v1::REPORT_TABLE_PROJECTS}));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  std::vector<google::protobuf::Struct> rows = ParseJsonl(r.bytes);
  ASSERT_EQ(rows.size(), 1u) << r.bytes;
  const auto& fields = rows[0].fields();
  for (const char* key : {"budget", "currency", "donor", "admin_area", "iati_identifier"}) {
    ASSERT_TRUE(fields.count(key)) << key;
    EXPECT_TRUE(fields.at(key).has_null_value()) << key << " in " << r.bytes;
  }
  EXPECT_EQ(fields.at("title").string_value(), "Boreholes");
}

TEST_F(ReportWriteTest, AuditTrailReproducesEveryHashAndShowsWonAndLostMerges) {
  // Two records; on each, devices A and B edit population_served concurrently.
  v1::Record r1 = Well(100), r2 = Well(200);
  v1::Change c1 = Create(device_a_, 1, r1), c2 = Create(device_a_, 2, r2);
  Push(token_a_, c1);
  Push(token_a_, c2);
  int64_t now = sync::SystemClockMs();
  Push(token_a_, EditPopulation(device_a_, 3, r1.id(), c1.hlc(), 150, now + 10));  // applied
  Push(token_b_, EditPopulation(device_b_, 1, r1.id(), c1.hlc(), 175, now + 5));   // lost
  Push(token_a_, EditPopulation(device_a_, 4, r2.id(), c2.hlc(), 250, now + 5));   // applied
  Push(token_b_, EditPopulation(device_b_, 2, r2.id(), c2.hlc(), 275, now + 10));  // won
  ASSERT_EQ(Sql("SELECT COUNT(*) FROM conflicts"), 2);

  ExportResult r = RunExport(*report_, server_.admin_token(),
                             Request(v1::REPORT_FORMAT_JSONL, {v1::REPORT_TABLE_AUDIT_TRAIL}));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  std::vector<google::protobuf::Struct> rows = ParseJsonl(r.bytes);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(static_cast<int64_t>(rows.size()), r.manifest.row_counts(0).rows());

  // Offline: rebuild each entry from its first row and recompute the chain.
  std::string prev = server::kGenesisHash;
  int64_t entries = 0, expected_seq = 1;
  for (const auto& row : rows) {
    if (Str(row, "payload_b64").empty()) {
      EXPECT_EQ(IntOf(row, "seq"), expected_seq - 1) << "a following row of the same entry";
      continue;
    }
    server::ChangeLogEntry e;
    e.seq = IntOf(row, "seq");
    e.collection = Str(row, "collection");
    e.doc_id = Str(row, "doc_id");
    e.op = Str(row, "op");
    e.actor_id = Str(row, "actor_id");
    e.device_id = Str(row, "device_id");
    e.device_seq = IntOf(row, "device_seq");
    e.hlc = Str(row, "hlc");
    e.server_time = absl::FromUnixMicros(IntOf(row, "server_time_us"));
    ASSERT_TRUE(absl::Base64Unescape(Str(row, "payload_b64"), &e.payload));
    EXPECT_EQ(e.seq, expected_seq++);
    EXPECT_EQ(Str(row, "prev_hash"), prev) << e.seq;
    EXPECT_EQ(server::ChainHash(prev, e), Str(row, "hash")) << "entry " << e.seq;
    prev = Str(row, "hash");
    ++entries;
  }
  EXPECT_EQ(entries, Sql("SELECT COUNT(*) FROM change_log") - 1)
      << "every entry but the export's own";

  // The four edits: who, old value, new value, won or lost.
  struct Want {
    std::string doc, device, old_value, new_value, outcome;
  };
  const std::vector<Want> wants = {{r1.id(), device_a_, "100", "150", "applied"},
                                   {r1.id(), device_b_, "150", "175", "lost"},
                                   {r2.id(), device_a_, "200", "250", "applied"},
                                   {r2.id(), device_b_, "250", "275", "won"}};
  for (const Want& w : wants) {
    int found = 0;
    for (const auto& row : rows) {
      if (Str(row, "doc_id") != w.doc || Str(row, "device_id") != w.device ||
          Str(row, "field") != "well.population_served" || Str(row, "op") != "update") {
        continue;
      }
      if (Str(row, "new_value") != w.new_value) continue;
      ++found;
      EXPECT_EQ(Str(row, "old_value"), w.old_value);
      EXPECT_EQ(Str(row, "outcome"), w.outcome) << w.new_value;
      EXPECT_EQ(Str(row, "project_id"), project_);
      EXPECT_THAT(Str(row, "device_name"), HasSubstr("Tablet"));
      EXPECT_EQ(Str(row, "device_time_utc").size(), 19u);
    }
    EXPECT_EQ(found, 1) << w.new_value;
  }
  // The creation: one row per field, old values empty, the payload on the first row only.
  int create_rows = 0;
  for (const auto& row : rows) {
    if (Str(row, "doc_id") == r1.id() && Str(row, "op") == "create") {
      ++create_rows;
      EXPECT_EQ(Str(row, "old_value"), "");
      EXPECT_EQ(Str(row, "outcome"), "applied");
    }
  }
  EXPECT_EQ(create_rows, c1.fields_size());
}

TEST_F(ReportWriteTest, ExportsLeaveSyncAndTheLiveFeedAlone) {
  Push(token_a_, Create(device_a_, 1, Well(300)));
  auto pull = [&](const std::string& cursor) {
    v1::PullRequest req;
    req.set_cursor(cursor);
    auto ctx = Ctx(token_a_);
    auto reader = sync_->Pull(ctx.get(), req);
    std::vector<v1::PullPage> pages;
    v1::PullPage page;
    while (reader->Read(&page)) pages.push_back(page);
    EXPECT_TRUE(reader->Finish().ok());
    return pages;
  };
  std::vector<v1::PullPage> first = pull("");
  ASSERT_FALSE(first.empty());
  const v1::PullPage& end1 = first.back();
  int64_t seq_before = Sql("SELECT MAX(seq) FROM change_log");

  ExportResult r = RunExport(*report_, server_.admin_token(),
                             Request(v1::REPORT_FORMAT_CSV, {v1::REPORT_TABLE_WELLS}));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_EQ(Sql("SELECT MAX(seq) FROM change_log"), seq_before + 1);

  // A pull from the old cursor brings nothing new and the same checksum.
  std::vector<v1::PullPage> second = pull(end1.cursor());
  ASSERT_FALSE(second.empty());
  int docs = 0;
  for (const auto& p : second) docs += p.documents_size();
  EXPECT_EQ(docs, 0);
  EXPECT_EQ(second.back().scope_checksum(), end1.scope_checksum());
  EXPECT_EQ(second.back().scope_documents(), end1.scope_documents());
  v1::HandshakeRequest hs;
  hs.set_protocol_version(v1::PROTOCOL_VERSION_1);
  v1::HandshakeResponse hsr;
  EXPECT_TRUE(sync_->Handshake(Ctx(token_a_).get(), hs, &hsr).ok());
  EXPECT_EQ(hsr.acked_device_seq(), 1);

  // The live feed from before the export: a change made after it arrives first, the export
  // entry never.
  Push(token_a_, Create(device_a_, 2, Well(400)));
  v1::WatchChangesRequest w;
  w.set_after_seq(seq_before);
  auto ctx = Ctx(server_.admin_token());
  auto reader = hq_->tracker().WatchChanges(ctx.get(), w);
  v1::ChangeEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.seq(), seq_before + 2);
  EXPECT_EQ(event.collection(), "record");
  ctx->TryCancel();
  reader->Finish().IgnoreError();
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM docs WHERE collection = 'export'"), 0);
}

TEST_F(ReportWriteTest, VerifyAuditChainFindsAnEditedAndADeletedRow) {
  for (int i = 1; i <= 5; ++i) Push(token_a_, Create(device_a_, i, Well(100 * i)));
  const int64_t n = Sql("SELECT COUNT(*) FROM change_log");
  v1::VerifyAuditChainResponse ok = Verify();
  EXPECT_TRUE(ok.ok()) << ok.problem();
  EXPECT_EQ(ok.entries_checked(), n);
  EXPECT_EQ(ok.head_seq(), n);
  v1::VerifyAuditChainResponse part = Verify(3, 6);
  EXPECT_TRUE(part.ok()) << part.problem();
  EXPECT_EQ(part.entries_checked(), 4);

  // An attacker with the file drops the append-only triggers and edits one entry.
  const int64_t victim = n - 2;
  std::string db = server_.db_path();
  ExecSql(db, testing::IsPostgresUrl(db)
                  ? "ALTER TABLE change_log DISABLE TRIGGER USER;"
                  : "DROP TRIGGER change_log_no_update; DROP TRIGGER change_log_no_delete;");
  ExecSql(db, "UPDATE change_log SET actor_id = 'someone-else' WHERE seq = " +
                  std::to_string(victim));
  v1::VerifyAuditChainResponse edited = Verify();
  EXPECT_FALSE(edited.ok());
  EXPECT_EQ(edited.first_bad_seq(), victim);
  EXPECT_THAT(edited.problem(), HasSubstr("hash does not match"));
  EXPECT_EQ(edited.entries_checked(), victim - 1);
  // Up to the entry before, the chain still verifies.
  EXPECT_TRUE(Verify(0, victim - 1).ok());

  // Put it back, then delete another.
  ExecSql(db, "UPDATE change_log SET actor_id = '" + device_a_ + "' WHERE seq = " +
                  std::to_string(victim));
  EXPECT_TRUE(Verify().ok());
  ExecSql(db, "DELETE FROM change_log WHERE seq = 4");
  v1::VerifyAuditChainResponse deleted = Verify();
  EXPECT_FALSE(deleted.ok());
  EXPECT_EQ(deleted.first_bad_seq(), 4);
  EXPECT_THAT(deleted.problem(), HasSubstr("entry 4 is missing"));
}

TEST_F(ReportWriteTest, OnlyAuditorsHqAndAdminsExport) {
  v1::ExportRequest req = Request(v1::REPORT_FORMAT_CSV, {v1::REPORT_TABLE_PROJECTS});
  ExportResult device = RunExport(*report_, token_a_, req);
  EXPECT_EQ(device.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(device.bytes.empty());

  v1::CreateUserRequest ureq;
  ureq.mutable_user()->set_name("auditor");
  ureq.mutable_user()->set_role(v1::ROLE_AUDITOR);
  v1::User auditor;
  ASSERT_TRUE(hq_->admin().CreateUser(hq_->Ctx().get(), ureq, &auditor).ok());
  v1::CreateTokenRequest treq;
  treq.set_user_id(auditor.id());
  v1::CreateTokenResponse token;
  ASSERT_TRUE(hq_->admin().CreateToken(hq_->Ctx().get(), treq, &token).ok());
  ExportResult ok = RunExport(*report_, token.secret(), req);
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.manifest.generated_by(), auditor.id());
  EXPECT_EQ(ok.manifest.generated_by_name(), "auditor");
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM change_log WHERE collection = 'export' AND actor_id = '" +
                auditor.id() + "'"),
            1);
  // ...and the auditor still writes nothing.
  v1::CreateRecordRequest creq;
  *creq.mutable_record() = Well(10);
  v1::Record rec;
  EXPECT_EQ(hq_->tracker().CreateRecord(Ctx(token.secret()).get(), creq, &rec).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

// --- Migration 2 --------------------------------------------------------------------------------

// The back-fill of an older database, replaying the log, gives exactly the rows the write path
// wrote. On a SQLite file in the PostgreSQL pass too: it reads and rewrites the file through
// sqlite::Database (the back-fill ran for SQLite databases made before migration 2; a
// PostgreSQL database is created with every migration at once).
TEST(ReportMigrationTest, BackfillReproducesWhatTheWritePathWrote) {
  testing::TempDir dir;
  std::string path = dir.File("store.db");
  {
    ASSERT_OK_AND_ASSIGN(auto store, server::SqliteStore::Open({.path = path, .synchronous = "NORMAL"}));
    server::Actor hq{"hq-user"};
    v1::Partner partner;
    partner.set_id(NewUuidV7());
    partner.set_name("Partner");
    partner.add_countries("KE");
    ASSERT_OK(store->CreatePartner(partner, hq).status());
    v1::Project project;
    project.set_id(NewUuidV7());
    project.set_partner_id(partner.id());
    project.set_kind(v1::PROJECT_KIND_WELL);
    project.set_title("Wells");
    project.set_country("KE");
    project.set_status(v1::PROJECT_STATUS_ACTIVE);
    ASSERT_OK(store->CreateProject(project, hq).status());
    v1::Record r;
    r.set_id(NewUuidV7());
    r.set_project_id(project.id());
    r.set_kind(v1::RECORD_KIND_WELL);
    r.set_record_date("2026-01-02");
    v1::WellRecord* w = r.mutable_well();
    w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
    w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
    w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
    w->set_population_served(10);
    w->set_visit_date("2026-01-02");
    ASSERT_OK(store->CreateRecord(r, hq).status());
    w->set_population_served(20);
    ASSERT_OK(store->UpdateRecord(r, 0, hq).status());
    ASSERT_OK(store->DeleteRecord(r.id(), 0, hq).status());
  }
  auto dump = [&](sqlite::Database& db) {
    std::string out;
    auto st = db.PrepareUncached(
        "SELECT seq || '|' || path || '|' || COALESCE(hex(old_value), 'NULL') || '|' || outcome "
        "FROM change_fields UNION ALL SELECT seq || '|project|' || project_id FROM "
        "change_projects ORDER BY 1");
    EXPECT_TRUE(st.ok());
    while (true) {
      absl::StatusOr<bool> row = (*st)->Step();
      if (!row.ok() || !*row) break;
      out += (*st)->ColumnText(0) + "\n";
    }
    return out;
  };
  ASSERT_OK_AND_ASSIGN(auto db, sqlite::Database::Open(path, {}));
  std::string written = dump(*db);
  EXPECT_GT(std::count(written.begin(), written.end(), '\n'), 10);
  ASSERT_OK(db->Exec("DELETE FROM change_fields; DELETE FROM change_projects;"));
  std::unique_ptr<db::Connection> conn = db::WrapSqlite(std::move(db));
  ASSERT_OK(server::BackfillChangeFields(*conn));
  EXPECT_EQ(dump(*conn->sqlite()), written);
}

}  // namespace
}  // namespace fieldsync
