// Report writers: tables of typed cells to CSV, XLSX and JSON Lines, and IATI activities to XML,
// written to a ByteSink as they come so a large export never sits whole in memory.
//
//   HashingSink hashed(&grpc_chunk_sink, /*block_bytes=*/1 << 20);
//   FS_ASSIGN_OR_RETURN(auto out, NewTableWriter(v1::REPORT_FORMAT_CSV, &hashed, tmp_dir));
//   FS_RETURN_IF_ERROR(out->BeginTable(kWellsSchema));
//   for (...) FS_RETURN_IF_ERROR(out->WriteRow(cells));
//   FS_RETURN_IF_ERROR(out->EndTable());
//   FS_RETURN_IF_ERROR(out->Finish());
//   hashed.Sha256Hex(), hashed.BlockSha256Hex(), hashed.bytes()
//
// Nothing here knows about the database or gRPC. Writers are not thread-safe.
#ifndef FIELDSYNC_REPORT_WRITER_H_
#define FIELDSYNC_REPORT_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "fieldsync/v1/report.pb.h"

namespace fieldsync::report {

// Where bytes go: a gRPC stream, a file, a string.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual absl::Status Write(absl::string_view bytes) = 0;
};

// Appends to a string (tests).
class StringSink final : public ByteSink {
 public:
  absl::Status Write(absl::string_view bytes) override;
  const std::string& data() const { return data_; }

 private:
  std::string data_;
};

// Passes bytes on to `next` while computing the SHA-256 of everything and of each consecutive
// `block_bytes`-long block (the manifest's content_sha256 and block_sha256).
class HashingSink final : public ByteSink {
 public:
  HashingSink(ByteSink* next, int64_t block_bytes);
  ~HashingSink() override;
  absl::Status Write(absl::string_view bytes) override;
  int64_t bytes() const { return bytes_; }
  // Final digests; call once, after the last Write.
  std::string Sha256Hex();
  std::vector<std::string> BlockSha256Hex();

 private:
  struct State;
  ByteSink* next_;
  int64_t block_bytes_;
  int64_t bytes_ = 0;
  std::unique_ptr<State> state_;
};

// How a column's cells are typed in XLSX and JSON.
enum class CellType {
  kText,       // string
  kInteger,    // int64
  kNumber,     // double
  kBool,       // bool
  kDate,       // string "YYYY-MM-DD"; a date cell (format yyyy-mm-dd) in XLSX
  kTimestamp,  // string "YYYY-MM-DD HH:MM:SS" (UTC); a date-time cell in XLSX
};

struct Column {
  std::string name;  // snake_case, unique in its table
  CellType type = CellType::kText;
};

struct TableSchema {
  std::string name;  // snake_case: the sheet name in XLSX
  std::vector<Column> columns;
};

// One cell. std::monostate is an empty cell (JSON null). A kDate or kTimestamp cell holds a
// std::string; a kText cell holds a std::string; numbers hold int64_t or double.
using Cell = std::variant<std::monostate, std::string, int64_t, double, bool>;

class TableWriter {
 public:
  virtual ~TableWriter() = default;
  // Starts a table. INVALID_ARGUMENT for a second table in a single-table format (CSV, JSONL).
  virtual absl::Status BeginTable(const TableSchema& schema) = 0;
  // One row, one cell per column. INVALID_ARGUMENT if the count or a cell's type is wrong.
  virtual absl::Status WriteRow(absl::Span<const Cell> cells) = 0;
  virtual absl::Status EndTable() = 0;
  // Writes whatever is left to the sink (for XLSX: the whole workbook, assembled in a temporary
  // file under the directory given at creation, removed afterwards).
  virtual absl::Status Finish() = 0;
};

// CSV, XLSX or JSONL. `temp_dir` is used by XLSX only. INVALID_ARGUMENT for another format.
absl::StatusOr<std::unique_ptr<TableWriter>> NewTableWriter(v1::ReportFormat format,
                                                            ByteSink* sink,
                                                            absl::string_view temp_dir);

// The text of a cell as CSV writes it, before quoting: numbers in shortest round-trip form
// (12.5, not 12.500000), booleans as true/false, empty for an empty cell. Text that starts with
// = + - @ tab CR or an apostrophe gets one apostrophe in front, so no spreadsheet runs it as a
// formula and the original is always recoverable (UnneutraliseText).
std::string CellText(const Cell& cell);
// The original text of a CSV text cell read back: drops the apostrophe CellText added.
std::string UnneutraliseText(absl::string_view csv_text);

// --- IATI Activity Standard 2.03 --------------------------------------------------------------
// Codes are from the IATI codelists (see tests/data/iati/README.md).

struct IatiOrganisation {
  std::string ref;    // organisation identifier; may be empty (then no ref attribute)
  std::string name;
  int type = 0;       // OrganisationType code (21 international NGO, 22 national NGO, ...); 0: none
  int role = 0;       // participating-org only: 1 funding, 2 accountable, 3 extending, 4 implementing
};

struct IatiLocation {
  std::string ref;     // our site id
  std::string name;
  double latitude_deg = 0;
  double longitude_deg = 0;
};

struct IatiTransaction {
  std::string ref;          // our record id
  int type = 4;             // TransactionType: 4 expenditure
  std::string date;         // YYYY-MM-DD
  int64_t amount_minor = 0;
  std::string currency;     // ISO 4217
  int minor_units = 2;      // digits after the decimal point for `currency`
  std::string description;
};

struct IatiIndicatorPeriod {
  std::string start_date;  // YYYY-MM-DD
  std::string end_date;
  double target = 0;       // written only when has_target
  bool has_target = false;
  double actual = 0;
};

struct IatiIndicator {
  std::string title;        // "Functional water points"
  int measure = 1;          // IndicatorMeasure: 1 unit, 2 percentage
  bool ascending = true;
  std::string description;
  std::vector<IatiIndicatorPeriod> periods;
};

struct IatiResult {
  int type = 1;             // ResultType: 1 output, 2 outcome
  std::string title;
  std::vector<IatiIndicator> indicators;
};

struct IatiActivity {
  std::string identifier;           // iati-identifier
  std::string default_currency;     // ISO 4217 of the budget
  std::string title;
  std::string description;
  std::vector<IatiOrganisation> participating_orgs;
  int status = 2;                   // ActivityStatus: 1 pipeline, 2 implementation, 3 finalisation,
                                    // 4 closed, 5 cancelled
  std::string planned_start;        // YYYY-MM-DD, empty if unknown
  std::string planned_end;
  std::string actual_start;
  std::string actual_end;
  std::string recipient_country;    // ISO 3166-1 alpha-2
  std::vector<IatiLocation> locations;
  int dac_sector = 0;               // DAC 5-digit purpose code: 14031, 12191, 11220, ...
  // Budget: one entry for the project's whole period; written when budget_period_* are set.
  int64_t budget_minor = 0;
  int budget_minor_units = 2;
  std::string budget_period_start;
  std::string budget_period_end;
  std::string budget_value_date;
  std::vector<IatiTransaction> transactions;
  std::vector<IatiResult> results;
  std::string last_updated;         // "YYYY-MM-DDTHH:MM:SSZ"
};

// Streams <iati-activities version="2.03" generated-datetime=...>, one <iati-activity> per
// WriteActivity, in the element order the 2.03 schema requires, escaping all text.
class IatiWriter {
 public:
  IatiWriter(ByteSink* sink, IatiOrganisation reporting_org, absl::string_view generated_datetime);
  absl::Status Begin();
  absl::Status WriteActivity(const IatiActivity& activity);
  absl::Status End();
  int64_t activities() const { return activities_; }

 private:
  ByteSink* sink_;
  IatiOrganisation reporting_org_;
  std::string generated_datetime_;
  int64_t activities_ = 0;
};

}  // namespace fieldsync::report

#endif  // FIELDSYNC_REPORT_WRITER_H_
