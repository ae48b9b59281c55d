// The offline verifier against files written by the report writers, with manifests computed
// here: untouched files verify; a changed byte, a cut or a longer file, and an audit trail whose
// rows were edited or deleted (even with a manifest recomputed to match) fail and say where.
#include "cli/export_verify.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "fieldsync/report/writer.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/v1/domain.pb.h"
#include "fieldsync/v1/sync.pb.h"
#include "server/change_log.h"
#include "server/reports.h"

namespace fieldsync::cli {
namespace {

using report::Cell;
using report::CellType;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kBlockBytes = 4096;

// The manifest the server would send for `content`.
v1::ExportManifest ManifestFor(const std::string& content, v1::ReportFormat format,
                               v1::ReportTable table, const std::string& table_name,
                               int64_t rows) {
  report::StringSink discard;
  report::HashingSink hashed(&discard, kBlockBytes);
  EXPECT_TRUE(hashed.Write(content).ok());
  v1::ExportManifest manifest;
  manifest.set_manifest_version(1);
  manifest.set_export_id("0190a000-0000-7000-8000-000000000001");
  manifest.set_format(format);
  manifest.add_tables(table);
  manifest.set_content_sha256(hashed.Sha256Hex());
  manifest.set_content_bytes(hashed.bytes());
  manifest.set_block_bytes(kBlockBytes);
  for (const std::string& block : hashed.BlockSha256Hex()) manifest.add_block_sha256(block);
  v1::TableRowCount* count = manifest.add_row_counts();
  count->set_table(table_name);
  count->set_kind(table);
  count->set_rows(rows);
  return manifest;
}

ExportVerification Verify(const std::string& content, const v1::ExportManifest& manifest) {
  std::istringstream in(content);
  absl::StatusOr<ExportVerification> v = VerifyExport(in, manifest);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : ExportVerification{};
}

// 1-based line on which byte `offset` lies.
int64_t LineOf(const std::string& content, int64_t offset) {
  return 1 + std::count(content.begin(), content.begin() + offset, '\n');
}

std::string WriteTable(v1::ReportFormat format, const report::TableSchema& schema,
                       const std::vector<std::vector<Cell>>& rows) {
  report::StringSink sink;
  auto writer = report::NewTableWriter(format, &sink, "/tmp");
  EXPECT_TRUE(writer.ok()) << writer.status();
  EXPECT_TRUE((*writer)->BeginTable(schema).ok());
  for (const auto& row : rows) {
    absl::Status s = (*writer)->WriteRow(row);
    EXPECT_TRUE(s.ok()) << s;
  }
  EXPECT_TRUE((*writer)->EndTable().ok());
  EXPECT_TRUE((*writer)->Finish().ok());
  return sink.data();
}

// A wells table with awkward text: formulas, commas, quotes, newlines, non-Latin scripts.
std::string WellsCsv(int rows) {
  report::TableSchema schema{"wells",
                             {{"record_id", CellType::kText},
                              {"visit_date", CellType::kDate},
                              {"yield_lph", CellType::kNumber},
                              {"population_served", CellType::kInteger},
                              {"notes", CellType::kText}}};
  std::vector<std::vector<Cell>> cells;
  const std::vector<std::string> notes = {"=HYPERLINK(\"http://evil\",\"x\")",
                                          "pump, \"new\" seal\nsecond line", "水井 ውሃ บ่อน้ำ",
                                          "-3 m below", "ordinary"};
  for (int i = 0; i < rows; ++i) {
    cells.push_back({std::string(absl::StrCat("rec-", i)), std::string("2025-03-14"),
                     1200.5 + i, int64_t{350 + i}, notes[static_cast<size_t>(i) % notes.size()]});
  }
  return WriteTable(v1::REPORT_FORMAT_CSV, schema, cells);
}

TEST(CsvReaderTest, ReadsQuotedFieldsAndCountsLines) {
  std::istringstream in(
      "a,b,c\r\n"
      "1,\"x, \"\"y\"\"\r\nz\",\r\n"
      "\"\",'=1+2,last\n"
      "end");
  CsvReader reader(in);
  std::vector<std::string> fields;
  ASSERT_TRUE(*reader.Next(&fields));
  EXPECT_THAT(fields, ElementsAre("a", "b", "c"));
  EXPECT_EQ(reader.record_line(), 1);
  ASSERT_TRUE(*reader.Next(&fields));
  EXPECT_THAT(fields, ElementsAre("1", "x, \"y\"\r\nz", ""));
  EXPECT_EQ(reader.record_line(), 2);
  ASSERT_TRUE(*reader.Next(&fields));
  EXPECT_THAT(fields, ElementsAre("", "'=1+2", "last"));
  EXPECT_EQ(reader.record_line(), 4);
  ASSERT_TRUE(*reader.Next(&fields));
  EXPECT_THAT(fields, ElementsAre("end"));
  EXPECT_EQ(reader.record_line(), 5);
  EXPECT_FALSE(*reader.Next(&fields));
}

TEST(CsvReaderTest, RefusesBrokenQuotingNamingTheLine) {
  std::istringstream unclosed("a\r\n\"open\r\nstill");
  CsvReader reader(unclosed);
  std::vector<std::string> fields;
  ASSERT_TRUE(*reader.Next(&fields));
  absl::StatusOr<bool> next = reader.Next(&fields);
  ASSERT_FALSE(next.ok());
  EXPECT_THAT(std::string(next.status().message()), HasSubstr("line 2"));

  std::istringstream stray("a,b\"c\r\n");
  CsvReader stray_reader(stray);
  EXPECT_FALSE(stray_reader.Next(&fields).ok());
}

TEST(ExportVerifyTest, ManifestJsonRoundTrips) {
  const std::string csv = WellsCsv(3);
  v1::ExportManifest manifest =
      ManifestFor(csv, v1::REPORT_FORMAT_CSV, v1::REPORT_TABLE_WELLS, "wells", 3);
  manifest.set_chain_head_seq(42);
  const std::string json = ManifestToJson(manifest);
  EXPECT_THAT(json, HasSubstr("\"content_sha256\""));  // proto field names
  EXPECT_THAT(json, HasSubstr("\n"));                  // indented
  absl::StatusOr<v1::ExportManifest> back = ParseManifestJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->SerializeAsString(), manifest.SerializeAsString());
  EXPECT_FALSE(ParseManifestJson("{\"export_id\": 3").ok());
  EXPECT_FALSE(ParseManifestJson("{}").ok());
}

TEST(ExportVerifyTest, UntouchedCsvVerifies) {
  const std::string csv = WellsCsv(300);
  ASSERT_GT(csv.size(), 3 * kBlockBytes);
  const v1::ExportManifest manifest =
      ManifestFor(csv, v1::REPORT_FORMAT_CSV, v1::REPORT_TABLE_WELLS, "wells", 300);
  const ExportVerification v = Verify(csv, manifest);
  EXPECT_TRUE(v.ok()) << ::testing::PrintToString(v.problems);
  EXPECT_EQ(v.rows, 300);
  EXPECT_EQ(v.bytes, static_cast<int64_t>(csv.size()));
  EXPECT_EQ(v.sha256, manifest.content_sha256());
  EXPECT_EQ(v.bad_block, -1);
}

TEST(ExportVerifyTest, OneChangedByteAnywhereNamesItsBlockAndLine) {
  const std::string csv = WellsCsv(300);
  const v1::ExportManifest manifest =
      ManifestFor(csv, v1::REPORT_FORMAT_CSV, v1::REPORT_TABLE_WELLS, "wells", 300);
  const int64_t size = static_cast<int64_t>(csv.size());
  for (int64_t offset : {int64_t{0}, int64_t{17}, kBlockBytes - 1, kBlockBytes, size / 2,
                         size - kBlockBytes - 3, size - 1}) {
    SCOPED_TRACE(absl::StrCat("byte ", offset));
    std::string edited = csv;
    // A digit for a digit keeps the CSV parseable: only the hashes can tell.
    edited[static_cast<size_t>(offset)] = edited[static_cast<size_t>(offset)] == '7' ? '8' : '7';
    const ExportVerification v = Verify(edited, manifest);
    ASSERT_FALSE(v.ok());
    const int64_t block = offset / kBlockBytes;
    const int64_t from = block * kBlockBytes;
    const int64_t to = std::min(from + kBlockBytes, size);
    EXPECT_EQ(v.bad_block, block);
    EXPECT_EQ(v.bad_block_from, from);
    EXPECT_EQ(v.bad_block_to, to);
    EXPECT_EQ(v.bad_block_line, LineOf(csv, from));
    EXPECT_THAT(v.problems.front(),
                AllOf(HasSubstr("SHA-256"),
                      HasSubstr(absl::StrCat("starting at line ", LineOf(csv, from)))));
  }
}

TEST(ExportVerifyTest, TruncatedOrLongerFileFails) {
  const std::string csv = WellsCsv(300);
  const v1::ExportManifest manifest =
      ManifestFor(csv, v1::REPORT_FORMAT_CSV, v1::REPORT_TABLE_WELLS, "wells", 300);
  // Cut inside the last block: that block differs.
  const size_t cut_size = csv.size() - 10;
  ASSERT_NE(cut_size % kBlockBytes, 0u) << "pick another cut";
  ExportVerification cut = Verify(csv.substr(0, cut_size), manifest);
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(cut.problems.front(), HasSubstr("manifest says"));
  EXPECT_EQ(cut.bad_block, static_cast<int64_t>(cut_size / kBlockBytes));
  // Cut at a block boundary: every remaining block matches, the rest is missing.
  const size_t boundary = 2 * kBlockBytes;
  ExportVerification cut_at_block = Verify(csv.substr(0, boundary), manifest);
  ASSERT_FALSE(cut_at_block.ok());
  EXPECT_THAT(cut_at_block.problems.front(), HasSubstr("are missing"));
  EXPECT_THAT(cut_at_block.problems, ::testing::Contains(HasSubstr("rows, the manifest says 300")));
  // One more row at the end.
  ExportVerification longer = Verify(csv + "rec-x,2025-03-14,1,1,x\r\n", manifest);
  ASSERT_FALSE(longer.ok());
  EXPECT_THAT(longer.problems, ::testing::Contains(HasSubstr("301 rows, the manifest says 300")));
  // Nothing at all.
  EXPECT_FALSE(Verify("", manifest).ok());
}

TEST(ExportVerifyTest, CountsJsonLinesRowsAndIatiActivities) {
  report::TableSchema schema{"sites", {{"id", CellType::kText}, {"n", CellType::kInteger}}};
  const std::string jsonl =
      WriteTable(v1::REPORT_FORMAT_JSONL, schema,
                 {{std::string("a"), int64_t{1}}, {std::string("b\nc"), std::monostate{}}});
  v1::ExportManifest manifest =
      ManifestFor(jsonl, v1::REPORT_FORMAT_JSONL, v1::REPORT_TABLE_SITES, "sites", 2);
  ExportVerification v = Verify(jsonl, manifest);
  EXPECT_TRUE(v.ok()) << ::testing::PrintToString(v.problems);
  EXPECT_EQ(v.rows, 2);

  // Row counts are checked against the manifest even when the bytes match (a manifest edited
  // by hand, or a server bug).
  manifest.mutable_row_counts(0)->set_rows(3);
  v = Verify(jsonl, manifest);
  EXPECT_THAT(v.problems, ElementsAre(HasSubstr("2 rows, the manifest says 3")));

  std::string iati = "<?xml version=\"1.0\"?>\n<iati-activities version=\"2.03\">";
  for (int i = 0; i < 5000; ++i) {
    absl::StrAppend(&iati, "<iati-activity last-updated-datetime=\"x\"><iati-identifier>", i,
                    "</iati-identifier></iati-activity>");
  }
  iati += "</iati-activities>\n";
  manifest = ManifestFor(iati, v1::REPORT_FORMAT_IATI_XML, v1::REPORT_TABLE_IATI_ACTIVITIES,
                         "iati_activities", 5000);
  v = Verify(iati, manifest);
  EXPECT_TRUE(v.ok()) << ::testing::PrintToString(v.problems);
  EXPECT_EQ(v.rows, 5000);
}

// --- Audit trails ------------------------------------------------------------------------------

const report::TableSchema& AuditSchema() {
  static const auto* const kSchema = new report::TableSchema{
      "audit_trail",
      {{"seq", CellType::kInteger},
       {"server_time_utc", CellType::kTimestamp},
       {"server_time_us", CellType::kInteger},
       {"actor_id", CellType::kText},
       {"actor_name", CellType::kText},
       {"device_id", CellType::kText},
       {"device_name", CellType::kText},
       {"device_seq", CellType::kInteger},
       {"device_time_utc", CellType::kTimestamp},
       {"hlc", CellType::kText},
       {"collection", CellType::kText},
       {"doc_id", CellType::kText},
       {"project_id", CellType::kText},
       {"op", CellType::kText},
       {"field", CellType::kText},
       {"old_value", CellType::kText},
       {"new_value", CellType::kText},
       {"outcome", CellType::kText},
       {"prev_hash", CellType::kText},
       {"hash", CellType::kText},
       {"payload_b64", CellType::kText}}};
  return *kSchema;
}

struct FieldRow {
  std::string path, old_value, new_value, outcome;
};

// The document-path bytes of a record field whose text (as the audit trail shows it) is
// `text`: project_id, well.yield_lph or well.notes.
std::string RecordValue(const std::string& path, const std::string& text) {
  v1::Record record;
  if (path == "project_id") record.set_project_id(text);
  if (path == "well.yield_lph") record.mutable_well()->set_yield_lph(std::stod(text));
  if (path == "well.notes") record.mutable_well()->set_notes(text);
  const sync::FieldValues values = sync::Flatten(record);
  auto it = values.find(path);
  EXPECT_NE(it, values.end()) << path;
  return it == values.end() ? "" : it->second;
}

// How the audit trail shows that value (the server's rendering: an export must match it).
std::string Shown(const std::string& path, const std::string& text) {
  return text.empty() ? "" : server::FieldValueText("record", path, RecordValue(path, text));
}

// A small but real change log: entries hashed with the chain's definition, written one row per
// changed field as the server's audit_trail table is.
class AuditTrail {
 public:
  // Appends one entry. `fields` empty: admin data (one row without a field).
  int64_t Add(const std::string& collection, const std::string& doc_id, const std::string& op,
              const std::string& device_id, std::vector<FieldRow> fields) {
    server::ChangeLogEntry e;
    e.seq = static_cast<int64_t>(entries_.size()) + 1;
    e.collection = collection;
    e.doc_id = doc_id;
    e.op = op;
    e.actor_id = device_id.empty() ? "user-admin" : device_id;
    e.device_id = device_id;
    e.device_seq = device_id.empty() ? 0 : e.seq;
    e.hlc = absl::StrCat("00017330000000", e.seq, ".00000.", device_id);
    e.server_time = absl::FromUnixMicros(1733000000000000 + e.seq * 1000003);
    if (fields.empty()) {
      e.payload = absl::StrCat("{\"name\":\"Partner ", e.seq, "\"}");
    } else {
      v1::Change change;
      change.set_device_seq(e.device_seq);
      change.set_collection(collection);
      change.set_doc_id(doc_id);
      change.set_hlc(e.hlc);
      // Payload order differs from row order (rows go by path).
      for (auto it = fields.rbegin(); it != fields.rend(); ++it) {
        v1::FieldChange* f = change.add_fields();
        f->set_path(it->path);
        f->set_value(RecordValue(it->path, it->new_value));
      }
      e.payload = change.SerializeAsString();
    }
    e.prev_hash = entries_.empty() ? server::kGenesisHash : entries_.back().hash;
    e.hash = server::ChainHash(e.prev_hash, e);
    entries_.push_back(e);
    fields_.push_back(std::move(fields));
    return e.seq;
  }

  std::vector<std::vector<Cell>> Rows() const {
    std::vector<std::vector<Cell>> rows;
    for (size_t i = 0; i < entries_.size(); ++i) {
      const server::ChangeLogEntry& e = entries_[i];
      std::vector<FieldRow> fields = fields_[i];
      std::sort(fields.begin(), fields.end(),
                [](const FieldRow& a, const FieldRow& b) { return a.path < b.path; });
      if (fields.empty()) fields.push_back({});
      bool first = true;
      for (const FieldRow& f : fields) {
        rows.push_back({e.seq, absl::FormatTime("%Y-%m-%d %H:%M:%S", e.server_time,
                                                absl::UTCTimeZone()),
                        absl::ToUnixMicros(e.server_time), e.actor_id,
                        std::string("Ana \"the auditor\", HQ"), e.device_id,
                        e.device_id.empty() ? "" : "Tablet 3", e.device_seq, std::monostate{},
                        e.hlc, e.collection, e.doc_id, std::string("proj-1"), e.op, f.path,
                        Shown(f.path, f.old_value), Shown(f.path, f.new_value), f.outcome,
                        e.prev_hash, e.hash,
                        first ? absl::Base64Escape(e.payload) : std::string()});
        first = false;
      }
    }
    return rows;
  }

  int64_t RowCount() const { return static_cast<int64_t>(Rows().size()); }
  const std::vector<server::ChangeLogEntry>& entries() const { return entries_; }

 private:
  std::vector<server::ChangeLogEntry> entries_;
  std::vector<std::vector<FieldRow>> fields_;
};

// Partners, records created, updated from HQ and from devices (won and lost), and text that
// needs quoting and neutralising; the seqs of interesting entries are kept.
struct AuditFixture {
  AuditTrail trail;
  int64_t update_seq = 0;    // an update whose old_value is the create's new value
  int64_t multi_seq = 0;     // an entry of three fields
  int64_t single_seq = 0;    // a one-row entry in the middle
};

AuditFixture MakeAuditFixture() {
  AuditFixture f;
  f.trail.Add("partner", "p-1", "create", "", {});
  for (int i = 0; i < 40; ++i) {
    const std::string doc = absl::StrCat("rec-", i);
    const int64_t seq = f.trail.Add(
        "record", doc, "create", i % 2 == 0 ? "dev-1" : "",
        {{"project_id", "", "proj-1", "applied"},
         {"well.yield_lph", "", "1200", "applied"},
         {"well.notes", "", i % 3 == 0 ? "=HYPERLINK(\"http://evil\",\"x\")" : "-5, \"deep\"\nwell",
          "applied"}});
    if (i == 7) f.multi_seq = seq;
  }
  f.update_seq = f.trail.Add("record", "rec-3", "update", "",
                             {{"well.yield_lph", "1200", "900", "won"}});
  f.trail.Add("record", "rec-3", "update", "dev-2", {{"well.yield_lph", "900", "700", "lost"}});
  f.single_seq =
      f.trail.Add("record", "rec-3", "update", "", {{"well.yield_lph", "900", "650", "applied"}});
  f.trail.Add("record", "rec-4", "update", "dev-1",
              {{"well.notes", "-5, \"deep\"\nwell", "水井 ውሃ บ่อน้ำ", "applied"}});
  f.trail.Add("token", "t-1", "create", "", {});
  return f;
}

v1::ExportManifest AuditManifest(const std::string& content, v1::ReportFormat format,
                                 const AuditTrail& trail, int64_t rows) {
  v1::ExportManifest manifest =
      ManifestFor(content, format, v1::REPORT_TABLE_AUDIT_TRAIL, "audit_trail", rows);
  manifest.set_chain_head_seq(trail.entries().back().seq);
  manifest.set_chain_head_hash(trail.entries().back().hash);
  return manifest;
}

// Splits a CSV or JSON Lines file into its physical lines (CRLF or LF kept off).
std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n');
}

class AuditVerifyTest : public ::testing::TestWithParam<v1::ReportFormat> {
 protected:
  void SetUp() override {
    fixture_ = MakeAuditFixture();
    content_ = WriteTable(GetParam(), AuditSchema(), fixture_.trail.Rows());
    rows_ = fixture_.trail.RowCount();
  }

  // Verifies `edited` against a manifest recomputed for it, as someone who edits a file and its
  // manifest together would: only the audit checks can notice.
  ExportVerification VerifyWithForgedManifest(const std::string& edited, int64_t rows) {
    return Verify(edited, AuditManifest(edited, GetParam(), fixture_.trail, rows));
  }

  // The file with the first occurrence of `from` after `after` replaced by `to`.
  std::string Edited(absl::string_view after, absl::string_view from, absl::string_view to) {
    size_t start = content_.find(std::string(after));
    EXPECT_NE(start, std::string::npos) << after;
    size_t at = content_.find(std::string(from), start);
    EXPECT_NE(at, std::string::npos) << from;
    std::string edited = content_;
    edited.replace(at, from.size(), std::string(to));
    EXPECT_NE(edited, content_);
    return edited;
  }

  // The line (1-based) holding the first row of entry `seq`.
  int64_t LineOfSeq(int64_t seq) {
    const std::string hash = fixture_.trail.entries()[static_cast<size_t>(seq - 1)].hash;
    return LineOf(content_, static_cast<int64_t>(content_.find(hash)));
  }

  AuditFixture fixture_;
  std::string content_;
  int64_t rows_ = 0;
};

TEST_P(AuditVerifyTest, UntouchedTrailVerifiesEveryEntry) {
  const ExportVerification v =
      Verify(content_, AuditManifest(content_, GetParam(), fixture_.trail, rows_));
  EXPECT_TRUE(v.ok()) << ::testing::PrintToString(v.problems);
  EXPECT_EQ(v.audit_entries, static_cast<int64_t>(fixture_.trail.entries().size()));
  EXPECT_EQ(v.audit_last_seq, fixture_.trail.entries().back().seq);
  EXPECT_EQ(v.rows, rows_);
}

TEST_P(AuditVerifyTest, EditedOldValueNamesTheEntry) {
  // The update's row: its old_value 1200 (what the create set) becomes 1100.
  const std::string anchor = GetParam() == v1::REPORT_FORMAT_CSV
                                 ? absl::StrCat("\n", fixture_.update_seq, ",")
                                 : absl::StrCat("{\"seq\":", fixture_.update_seq, ",");
  const std::string edited =
      Edited(anchor, Shown("well.yield_lph", "1200"), Shown("well.yield_lph", "1100"));
  // The untouched manifest says where in bytes; a forged one leaves it to the audit checks.
  ExportVerification plain =
      Verify(edited, AuditManifest(content_, GetParam(), fixture_.trail, rows_));
  EXPECT_FALSE(plain.ok());
  EXPECT_GE(plain.bad_block, 0);
  EXPECT_EQ(plain.bad_seq, fixture_.update_seq);
  ExportVerification v = VerifyWithForgedManifest(edited, rows_);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.bad_seq, fixture_.update_seq) << ::testing::PrintToString(v.problems);
  EXPECT_EQ(v.bad_seq_line, LineOfSeq(fixture_.update_seq));
  EXPECT_THAT(v.problems.front(),
              AllOf(HasSubstr(absl::StrCat("entry ", fixture_.update_seq)),
                    HasSubstr("old_value of well.yield_lph"),
                    HasSubstr(Shown("well.yield_lph", "1100"))));
}

TEST_P(AuditVerifyTest, EditedHashOrContentNamesTheEntry) {
  const server::ChangeLogEntry& target = fixture_.trail.entries()[fixture_.single_seq - 1];
  // The stored hash itself.
  std::string edited = content_;
  const size_t at = edited.find(target.hash);
  ASSERT_NE(at, std::string::npos);
  edited[at + 5] = edited[at + 5] == 'a' ? 'b' : 'a';
  ExportVerification v = VerifyWithForgedManifest(edited, rows_);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.bad_seq, fixture_.single_seq) << ::testing::PrintToString(v.problems);
  EXPECT_THAT(v.problems.front(), HasSubstr("hash does not match its content"));
  // The next entry's link no longer matches either, and is named too.
  EXPECT_THAT(v.problems, ::testing::Contains(HasSubstr(
                              absl::StrCat("prev_hash differs from entry ", fixture_.single_seq))));

  // A hashed column (the device, the document) of an entry's only row.
  std::string other = content_;
  const size_t hlc_at = other.find(target.hlc);
  ASSERT_NE(hlc_at, std::string::npos);
  other.replace(hlc_at, target.hlc.size(), absl::StrCat(target.hlc, "9"));
  v = VerifyWithForgedManifest(other, rows_);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.bad_seq, fixture_.single_seq) << ::testing::PrintToString(v.problems);
}

TEST_P(AuditVerifyTest, DeletedRowsAreDetected) {
  std::vector<std::string> lines = Lines(content_);
  // Lines of the one-row entry and of the second row of the three-field entry.
  const int64_t single_line = LineOfSeq(fixture_.single_seq);
  const int64_t multi_line = LineOfSeq(fixture_.multi_seq);

  // A whole entry gone: its successor's link points at a missing entry.
  std::vector<std::string> without_entry = lines;
  without_entry.erase(without_entry.begin() + (single_line - 1));
  std::string edited = absl::StrJoin(without_entry, "\n");
  ExportVerification v = VerifyWithForgedManifest(edited, rows_ - 1);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.bad_seq, fixture_.single_seq + 1) << ::testing::PrintToString(v.problems);
  EXPECT_THAT(v.problems.front(),
              HasSubstr(absl::StrCat("entries ", fixture_.single_seq, "..", fixture_.single_seq,
                                     " are missing")));
  // With the untouched manifest the row count says it too.
  v = Verify(edited, AuditManifest(content_, GetParam(), fixture_.trail, rows_));
  EXPECT_THAT(v.problems, ::testing::Contains(HasSubstr(absl::StrCat(
                              rows_ - 1, " rows, the manifest says ", rows_))));

  // One field's row of an entry gone. Rows of one entry are consecutive and each is one line
  // here except for notes with a newline; the second row (field "well.notes") follows the first.
  std::vector<std::string> without_field = lines;
  size_t second = static_cast<size_t>(multi_line);  // 0-based index of the entry's second line
  // Skip over a quoted newline inside the first row if there is one.
  while (second < without_field.size() &&
         without_field[second].find("well.notes") == std::string::npos) {
    ++second;
  }
  ASSERT_LT(second, without_field.size());
  size_t end = second + 1;
  // A notes value with a newline spans two lines.
  if (without_field[second].find("deep") != std::string::npos &&
      GetParam() == v1::REPORT_FORMAT_CSV) {
    ++end;
  }
  without_field.erase(without_field.begin() + static_cast<long>(second),
                      without_field.begin() + static_cast<long>(end));
  v = VerifyWithForgedManifest(absl::StrJoin(without_field, "\n"), rows_ - 1);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.bad_seq, fixture_.multi_seq) << ::testing::PrintToString(v.problems);
  EXPECT_THAT(v.problems.front(), HasSubstr("its payload"));
}

TEST_P(AuditVerifyTest, MissingLastEntriesFailAgainstTheChainHead) {
  // The export claims to be cut at the head, but the last entry is not in the file.
  std::vector<std::string> lines = Lines(content_);
  const int64_t last_line = LineOfSeq(fixture_.trail.entries().back().seq);
  lines.erase(lines.begin() + (last_line - 1));
  const std::string edited = absl::StrJoin(lines, "\n");
  const ExportVerification v = VerifyWithForgedManifest(edited, rows_ - 1);
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.problems.front(), HasSubstr("entries after it are missing"));
}

INSTANTIATE_TEST_SUITE_P(CsvAndJsonLines, AuditVerifyTest,
                         ::testing::Values(v1::REPORT_FORMAT_CSV, v1::REPORT_FORMAT_JSONL),
                         [](const ::testing::TestParamInfo<v1::ReportFormat>& info) {
                           return info.param == v1::REPORT_FORMAT_CSV ? "Csv" : "JsonLines";
                         });

// The audit trail's old/new values (server::FieldValueText, shared by server and verifier): a
// number as CSV cells write it (report::CellText), shortest round-trip: 1200, not 1.2e+03.
TEST(FieldValueTextTest, NumbersAreShortestRoundTripDecimals) {
  EXPECT_EQ(Shown("well.yield_lph", "1200"), "1200");
  EXPECT_EQ(Shown("well.yield_lph", "12.5"), "12.5");
  EXPECT_EQ(Shown("well.yield_lph", "0.1"), "0.1");
}

}  // namespace
}  // namespace fieldsync::cli
