#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "fieldsync/report/writer.h"
#include "report_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync::report {
namespace {

using ::fieldsync::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The strings a CSV export must carry unharmed (and defuse where a spreadsheet would run them).
const std::vector<std::string>& TrickyStrings() {
  static const auto* strings = new std::vector<std::string>{
      "=HYPERLINK(\"http://x\",\"y\")",
      "+1",
      "-2",
      "@SUM(A1)",
      "'quoted",
      "'",
      "''",
      "\tTab first",
      "\rCR first",
      "plain",
      "a,b,c",
      "say \"hi\"",
      "\"",
      "line1\rline2",
      "line1\nline2",
      "line1\r\nline2",
      "trailing,",
      " leading space",
      "北京水井",
      "የውሃ ጉድጓድ",
      "บ่อน้ำ",
      "emoji 💧 and é",
      "",
  };
  return *strings;
}

// A strict RFC 4180 reader: records end with CRLF, fields are quoted or hold no quote, CR or LF.
// Returns false on anything else.
bool ParseRfc4180(absl::string_view in, std::vector<std::vector<std::string>>* records) {
  size_t i = 0;
  std::vector<std::string> record;
  std::string field;
  while (i < in.size()) {
    field.clear();
    if (in[i] == '"') {
      ++i;
      for (;;) {
        if (i >= in.size()) return false;  // unterminated quote
        if (in[i] == '"') {
          if (i + 1 < in.size() && in[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(in[i++]);
      }
    } else {
      while (i < in.size() && in[i] != ',' && in[i] != '\r') {
        if (in[i] == '"' || in[i] == '\n') return false;
        field.push_back(in[i++]);
      }
    }
    record.push_back(field);
    if (i < in.size() && in[i] == ',') {
      ++i;
      if (i == in.size()) return false;
      continue;
    }
    if (i + 1 < in.size() && in[i] == '\r' && in[i + 1] == '\n') {
      i += 2;
      records->push_back(std::move(record));
      record.clear();
      continue;
    }
    return false;  // a record must end with CRLF
  }
  return record.empty();
}

const TableSchema& TypedSchema() {
  static const auto* schema = new TableSchema{"tricky",
                                              {{"text", CellType::kText},
                                               {"count", CellType::kInteger},
                                               {"ratio", CellType::kNumber},
                                               {"ok", CellType::kBool},
                                               {"day", CellType::kDate},
                                               {"at", CellType::kTimestamp}}};
  return *schema;
}

TEST(CellTextTest, NumbersBooleansAndEmpty) {
  EXPECT_EQ(CellText(Cell{}), "");
  EXPECT_EQ(CellText(Cell{int64_t{42}}), "42");
  EXPECT_EQ(CellText(Cell{int64_t{-7}}), "-7");
  EXPECT_EQ(CellText(Cell{std::numeric_limits<int64_t>::min()}), "-9223372036854775808");
  EXPECT_EQ(CellText(Cell{std::numeric_limits<int64_t>::max()}), "9223372036854775807");
  EXPECT_EQ(CellText(Cell{12.5}), "12.5");
  EXPECT_EQ(CellText(Cell{0.1}), "0.1");
  EXPECT_EQ(CellText(Cell{1e-7}), "1e-07");
  EXPECT_EQ(CellText(Cell{-0.5}), "-0.5");
  EXPECT_EQ(CellText(Cell{3.0}), "3");
  // Everyday magnitudes stay plain decimals; exponents only for the very small and large.
  EXPECT_EQ(CellText(Cell{1e6}), "1000000");
  EXPECT_EQ(CellText(Cell{1234567.25}), "1234567.25");
  EXPECT_EQ(CellText(Cell{0.00012}), "0.00012");
  EXPECT_EQ(CellText(Cell{1e20}), "1e+20");
  EXPECT_EQ(CellText(Cell{std::nan("")}), "");
  EXPECT_EQ(CellText(Cell{std::numeric_limits<double>::infinity()}), "");
  EXPECT_EQ(CellText(Cell{true}), "true");
  EXPECT_EQ(CellText(Cell{false}), "false");
}

TEST(CellTextTest, NeutralisesFormulaStartsAndRoundTrips) {
  EXPECT_EQ(CellText(Cell{std::string("=1+1")}), "'=1+1");
  EXPECT_EQ(CellText(Cell{std::string("+1")}), "'+1");
  EXPECT_EQ(CellText(Cell{std::string("-2")}), "'-2");
  EXPECT_EQ(CellText(Cell{std::string("@SUM(A1)")}), "'@SUM(A1)");
  EXPECT_EQ(CellText(Cell{std::string("\tx")}), "'\tx");
  EXPECT_EQ(CellText(Cell{std::string("\rx")}), "'\rx");
  EXPECT_EQ(CellText(Cell{std::string("'x")}), "''x");
  EXPECT_EQ(CellText(Cell{std::string("x=1")}), "x=1");
  EXPECT_EQ(CellText(Cell{std::string("2025-01-31")}), "2025-01-31");
  EXPECT_EQ(CellText(Cell{std::string("2025-01-31 12:00:00")}), "2025-01-31 12:00:00");
  for (const std::string& s : TrickyStrings()) {
    EXPECT_EQ(UnneutraliseText(CellText(Cell{s})), s) << s;
  }
}

// Writes the tricky table with `writer` and returns, per row, the cells as CSV should show them.
std::vector<std::vector<Cell>> TrickyRows() {
  std::vector<std::vector<Cell>> rows;
  int64_t n = 0;
  for (const std::string& s : TrickyStrings()) {
    rows.push_back({Cell{s}, Cell{n}, Cell{n + 0.25}, Cell{n % 2 == 0},
                    Cell{std::string("2025-03-10")}, Cell{std::string("2025-03-10 08:30:00")}});
    ++n;
  }
  const double doubles[] = {0.1, 1e-7, 12.5, -3.75, 1e300, 123456789.123, 0.0};
  for (double d : doubles) {
    rows.push_back({Cell{std::string("double")}, Cell{}, Cell{d}, Cell{}, Cell{}, Cell{}});
  }
  rows.push_back({Cell{std::string("int64 min")}, Cell{std::numeric_limits<int64_t>::min()}, Cell{},
                  Cell{false}, Cell{}, Cell{}});
  rows.push_back({Cell{std::string("int64 max")}, Cell{std::numeric_limits<int64_t>::max()}, Cell{},
                  Cell{true}, Cell{}, Cell{}});
  rows.push_back({Cell{}, Cell{}, Cell{}, Cell{}, Cell{}, Cell{}});
  return rows;
}

// The value a reader should recover from a CSV field of `cell`.
std::string Recovered(const Cell& cell, absl::string_view field) {
  if (std::holds_alternative<std::string>(cell)) return UnneutraliseText(field);
  return std::string(field);
}

void ExpectTrickyTable(const std::vector<std::vector<std::string>>& records,
                       const std::vector<std::vector<Cell>>& rows) {
  ASSERT_EQ(records.size(), rows.size() + 1);
  EXPECT_EQ(records[0], (std::vector<std::string>{"text", "count", "ratio", "ok", "day", "at"}));
  for (size_t r = 0; r < rows.size(); ++r) {
    ASSERT_EQ(records[r + 1].size(), rows[r].size()) << "row " << r;
    for (size_t c = 0; c < rows[r].size(); ++c) {
      const Cell& cell = rows[r][c];
      const std::string got = Recovered(cell, records[r + 1][c]);
      if (const auto* s = std::get_if<std::string>(&cell)) {
        EXPECT_EQ(got, *s) << "row " << r << " col " << c;
      } else if (const auto* i = std::get_if<int64_t>(&cell)) {
        EXPECT_EQ(got, absl::StrCat(*i)) << "row " << r << " col " << c;
      } else if (const auto* d = std::get_if<double>(&cell)) {
        EXPECT_EQ(std::strtod(got.c_str(), nullptr), testing::Written(*d)) << "row " << r << " text " << got;
      } else if (const auto* b = std::get_if<bool>(&cell)) {
        EXPECT_EQ(got, *b ? "true" : "false");
      } else {
        EXPECT_EQ(got, "") << "row " << r << " col " << c;
      }
    }
  }
}

std::string WriteTricky(const std::vector<std::vector<Cell>>& rows) {
  StringSink sink;
  auto writer = NewTableWriter(v1::REPORT_FORMAT_CSV, &sink, "");
  EXPECT_OK(writer);
  EXPECT_OK((*writer)->BeginTable(TypedSchema()));
  for (const auto& row : rows) EXPECT_OK((*writer)->WriteRow(row));
  EXPECT_OK((*writer)->EndTable());
  EXPECT_OK((*writer)->Finish());
  return sink.data();
}

TEST(CsvWriterTest, TrickyValuesSurviveOurRfc4180Reader) {
  const auto rows = TrickyRows();
  const std::string csv = WriteTricky(rows);
  std::vector<std::vector<std::string>> records;
  ASSERT_TRUE(ParseRfc4180(csv, &records)) << csv;
  ExpectTrickyTable(records, rows);
  // The raw bytes: formula defused, header first, CRLF ends, UTF-8 untouched, no BOM.
  EXPECT_THAT(csv, StartsWith("text,count,ratio,ok,day,at\r\n"));
  EXPECT_THAT(csv, HasSubstr("\r\n\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",0,"));
  EXPECT_THAT(csv, ::testing::Not(HasSubstr("\r\n=")));
  EXPECT_THAT(csv, HasSubstr("\r\n'+1,1,1.25,false,2025-03-10,2025-03-10 08:30:00\r\n"));
  EXPECT_THAT(csv, HasSubstr("\r\n北京水井,"));
  EXPECT_THAT(csv, HasSubstr("\r\nየውሃ ጉድጓድ,"));
  EXPECT_THAT(csv, HasSubstr("\r\nบ่อน้ำ,"));
  EXPECT_THAT(csv, HasSubstr("\r\ndouble,,1e-07,,,\r\n"));
  EXPECT_THAT(csv, HasSubstr("\r\ndouble,,12.5,,,\r\n"));
  EXPECT_THAT(csv, HasSubstr("\r\nint64 min,-9223372036854775808,,false,,\r\n"));
}

TEST(CsvWriterTest, TrickyValuesSurvivePythonCsvModule) {
  const auto rows = TrickyRows();
  const std::string csv = WriteTricky(rows);
  fieldsync::testing::TempDir dir;
  testing::WriteFile(dir.File("t.csv"), csv);
  testing::ReadBack back = testing::ReadWithPython("csv", dir.File("t.csv"));
  ASSERT_EQ(back.exit_code, 0) << back.raw;
  ASSERT_EQ(back.sheets.size(), 1u);
  std::vector<std::vector<std::string>> records;
  for (const testing::Row& row : back.sheets[0].rows) {
    records.emplace_back();
    for (const testing::Value& v : row.values) {
      ASSERT_EQ(v.kind, 's');
      records.back().push_back(v.text);
    }
  }
  ExpectTrickyTable(records, rows);
}

TEST(CsvWriterTest, RejectsSecondTableWrongCellsAndCallsOutOfOrder) {
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer, NewTableWriter(v1::REPORT_FORMAT_CSV, &sink, ""));
  EXPECT_THAT(writer->WriteRow({Cell{}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("WriteRow")));
  ASSERT_OK(writer->BeginTable({"wells", {{"id", CellType::kText}, {"n", CellType::kInteger}}}));
  EXPECT_THAT(writer->WriteRow({Cell{std::string("a")}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("row has 1 cells")));
  EXPECT_THAT(writer->WriteRow({Cell{std::string("a")}, Cell{1.5}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("column n is integer")));
  EXPECT_THAT(writer->Finish(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("EndTable")));
  ASSERT_OK(writer->EndTable());
  EXPECT_THAT(writer->BeginTable({"sites", {{"id", CellType::kText}}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CSV holds one table")));
  ASSERT_OK(writer->Finish());
  EXPECT_EQ(sink.data(), "id,n\r\n");

  EXPECT_THAT(NewTableWriter(v1::REPORT_FORMAT_IATI_XML, &sink, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("REPORT_FORMAT_IATI_XML")));
  ASSERT_OK_AND_ASSIGN(auto other, NewTableWriter(v1::REPORT_FORMAT_CSV, &sink, ""));
  EXPECT_THAT(other->BeginTable({"t", {{"a", CellType::kText}, {"a", CellType::kText}}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"a\" appears twice")));
}

// A sink whose writes all fail.
class FailingSink final : public ByteSink {
 public:
  absl::Status Write(absl::string_view) override {
    return absl::UnavailableError("client went away");
  }
};

TEST(CsvWriterTest, SinkErrorIsReturnedAndSticks) {
  FailingSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer, NewTableWriter(v1::REPORT_FORMAT_CSV, &sink, ""));
  ASSERT_OK(writer->BeginTable({"t", {{"a", CellType::kText}}}));
  const std::vector<Cell> row = {Cell{std::string(1000, 'x')}};
  absl::Status status;
  for (int i = 0; i < 100 && status.ok(); ++i) status = writer->WriteRow(row);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("went away")));
  EXPECT_THAT(writer->WriteRow(row), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
}

// 200,000 rows stream out in writes of at most 64 KiB while rows are still being written; the
// writer never holds the table.
TEST(CsvWriterTest, StreamsInBoundedWrites) {
  testing::CountingSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer, NewTableWriter(v1::REPORT_FORMAT_CSV, &sink, ""));
  ASSERT_OK(writer->BeginTable(TypedSchema()));
  constexpr int kRows = 200000;
  int64_t bytes_before_finish = 0;
  for (int i = 0; i < kRows; ++i) {
    ASSERT_OK(
        writer->WriteRow({Cell{absl::StrCat("well number ", i, ", \"north\"")}, Cell{int64_t{i}},
                          Cell{i * 0.5}, Cell{i % 3 == 0}, Cell{std::string("2025-01-01")},
                          Cell{std::string("2025-01-01 00:00:00")}}));
    if (i == kRows / 2) {
      EXPECT_GT(sink.bytes(), 0) << "nothing written halfway";
    }
  }
  ASSERT_OK(writer->EndTable());
  bytes_before_finish = sink.bytes();
  ASSERT_OK(writer->Finish());
  EXPECT_GT(sink.bytes(), 8'000'000);
  EXPECT_GT(bytes_before_finish, sink.bytes() - 64 * 1024);
  EXPECT_LE(sink.max_write(), 64 * 1024);
  EXPECT_GT(sink.writes(), sink.bytes() / (64 * 1024) - 1);
  // One huge cell is cut into bounded writes too.
  testing::CountingSink big_sink;
  ASSERT_OK_AND_ASSIGN(auto big, NewTableWriter(v1::REPORT_FORMAT_CSV, &big_sink, ""));
  ASSERT_OK(big->BeginTable({"t", {{"a", CellType::kText}}}));
  ASSERT_OK(big->WriteRow({Cell{std::string(1 << 20, 'x')}}));
  ASSERT_OK(big->EndTable());
  ASSERT_OK(big->Finish());
  EXPECT_EQ(big_sink.bytes(), 3 + (1 << 20) + 2);
  EXPECT_LE(big_sink.max_write(), 64 * 1024);
}

}  // namespace
}  // namespace fieldsync::report
