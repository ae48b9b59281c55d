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
// `block_bytes`-long block (the manifest's content_sha256 and block_sha256). Blocks start at
// absolute offsets 0, block_bytes, 2*block_bytes, ... however the writes are cut; the last block
// may be shorter; no bytes, no blocks. block_bytes <= 0: no block digests. `next` may be null
// (hash only). Bytes are hashed only once `next` accepted them; its error is returned as is.
class HashingSink final : public ByteSink {
 public:
  HashingSink(ByteSink* next, int64_t block_bytes);
  ~HashingSink() override;
  absl::Status Write(absl::string_view bytes) override;
  int64_t bytes() const { return bytes_; }
  // Final digests (lower-case hex); call after the last Write. Taking them ends hashing: a later
  // Write is FAILED_PRECONDITION; calling them again returns the same digests.
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
// std::string; a kText cell holds a std::string; numbers hold int64_t or double (a kInteger
// column takes int64_t only, a kNumber column either).
using Cell = std::variant<std::monostate, std::string, int64_t, double, bool>;

// Per format:
//  - CSV: see CellText. Column names form the header row. Bytes of text pass through as they are.
//  - JSONL: strings escaped per RFC 8259 (control characters as \u00XX); invalid UTF-8 bytes
//    become U+FFFD; NaN and infinities become null. Keys in column order.
//  - XLSX: one sheet per table (XlsxSheetName), a bold header row, panes frozen below it, column
//    widths from the header and the column type. kInteger and kNumber cells are numbers, except
//    integers beyond +-2^53 (which a double cannot hold exactly): text. libxlsxwriter writes
//    numbers with 16 significant digits, so a double needing 17 (0.1 + 0.2) comes back rounded
//    in its last bit (CSV and JSONL keep the shortest exact form). kBool cells are booleans.
//    kDate "YYYY-MM-DD" and kTimestamp "YYYY-MM-DD HH:MM:SS" (also "T" and a trailing "Z")
//    become date cells formatted yyyy-mm-dd / yyyy-mm-dd hh:mm:ss when they parse as a real day
//    in 1900-9999, else text. Empty cells, empty strings and NaN/infinities are blank. Text is
//    not neutralised (a string cell is never a formula in XLSX); invalid UTF-8 bytes become
//    U+FFFD; control characters are stored as Excel's "_xHHHH_" escapes (by libxlsxwriter), and
//    text that holds "_xHHHH_" literally gets its "_" escaped as "_x005F_", so Excel and
//    LibreOffice show the original; text longer than Excel's 32,767 characters (UTF-16 units)
//    is cut to end with "…" at 32,767 (CSV and JSONL keep the full text). A table longer than
//    max_rows_per_sheet rows (header included; Excel's 1,048,576) continues on "<name> (2)",
//    "<name> (3)", ..., each with its header. Errors from libxlsxwriter carry its message
//    (lxw_strerror).
// Calls out of order (a row before BeginTable, Finish before EndTable, anything after Finish) are
// FAILED_PRECONDITION. A schema without a name or columns, or with a repeated column name, is
// INVALID_ARGUMENT. A sink error is returned as is and repeated by every later call.
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

// XLSX limits.
inline constexpr int64_t kXlsxMaxRowsPerSheet = 1048576;
inline constexpr int kXlsxMaxCellChars = 32767;

struct XlsxOptions {
  // Rows per sheet, header included, in [2, kXlsxMaxRowsPerSheet]. Default: Excel's limit.
  // Smaller values exist so tests can reach continuation sheets cheaply.
  int64_t max_rows_per_sheet = kXlsxMaxRowsPerSheet;
};

// An XLSX writer with options. The workbook is assembled in a file made with mkstemps under
// `temp_dir` (empty: the system temp directory), together with libxlsxwriter's own per-sheet
// temporary files; Finish streams it to `sink` in 64 KiB writes and deletes it, and so does
// destroying the writer without Finish. An unwritable temp_dir is an error here (code from errno).
absl::StatusOr<std::unique_ptr<TableWriter>> NewXlsxWriter(ByteSink* sink,
                                                           absl::string_view temp_dir,
                                                           XlsxOptions options = {});

// The sheet name a table gets in XLSX (the manifest's TableRowCount.table): the table name with
// []:*?/\ replaced by "_", cut to Excel's 31 characters; part 2, 3, ... (continuation sheets)
// end with " (2)", " (3)", ... within the 31.
std::string XlsxSheetName(absl::string_view table_name, int part = 1);

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
//
// Output is buffered up to 64 KiB and written in pieces of at most 64 KiB; End flushes. Text is
// escaped (& < > " '), characters XML 1.0 forbids (control characters but tab, LF, CR; U+FFFE,
// U+FFFF) are dropped, invalid UTF-8 bytes become U+FFFD. Amounts are written as decimals with
// the currency's minor units (1234567 with 2 -> 12345.67; with 0 -> 1234567).
//
// Optional parts with no data are left out: dates that are empty, recipient-country when empty,
// a location's ref/name when empty, its point when the coordinates are not finite, out of range
// or exactly (0, 0), the location itself when nothing is left, the sector when dac_sector is 0,
// the budget unless both budget_period_* are set (value-date: budget_value_date, else the period
// start), an indicator period unless both its dates are set, a target unless has_target, a
// result with no indicators, a transaction's description when empty, org types when 0.
// A transaction's value-date is its date.
//
// INVALID_ARGUMENT (message names the activity and the field) for what the schema requires and
// the activity lacks: an identifier, at least one participating org with role 1-4, at least one
// of the four activity dates, a transaction date; for dates not "YYYY-MM-DD", last_updated not
// "YYYY-MM-DDTHH:MM:SS[Z|+hh:mm|-hh:mm]", minor units outside 0-18. Begin: INVALID_ARGUMENT for
// a reporting org without ref or type, or a bad generated_datetime. Calls out of order (Begin
// twice, WriteActivity outside Begin/End, End twice) are FAILED_PRECONDITION.
class IatiWriter {
 public:
  IatiWriter(ByteSink* sink, IatiOrganisation reporting_org, absl::string_view generated_datetime);
  absl::Status Begin();
  absl::Status WriteActivity(const IatiActivity& activity);
  absl::Status End();
  int64_t activities() const { return activities_; }

 private:
  absl::Status Emit(absl::string_view xml, bool flush);

  ByteSink* sink_;
  IatiOrganisation reporting_org_;
  std::string generated_datetime_;
  int64_t activities_ = 0;
  bool begun_ = false;
  bool ended_ = false;
  std::string pending_;  // not yet written, < 64 KiB
};

}  // namespace fieldsync::report

#endif  // FIELDSYNC_REPORT_WRITER_H_
