#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "fieldsync/report/writer.h"
#include "report_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync::report {
namespace {

using ::fieldsync::testing::StatusIs;
using testing::Bool;
using testing::DateTime;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Int;
using testing::Null;
using testing::Str;
using testing::Value;

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

// A number as openpyxl returns it (int or float), compared by value.
MATCHER_P(NumberIs, expected, "") {
  const Value& v = arg;
  *result_listener << "got " << v;
  return (v.kind == 'i' || v.kind == 'f') && std::strtod(v.text.c_str(), nullptr) == testing::Written(expected);
}

const TableSchema kWells = {"wells",
                            {{"name", CellType::kText},
                             {"depth_m", CellType::kNumber},
                             {"pumps", CellType::kInteger},
                             {"functional", CellType::kBool},
                             {"drilled_on", CellType::kDate},
                             {"updated_at", CellType::kTimestamp}}};

const std::vector<std::string> kTricky = {"=HYPERLINK(\"http://x\",\"y\")",
                                          "+1",
                                          "-2",
                                          "@SUM(A1)",
                                          "'quoted",
                                          "a,b \"c\"",
                                          "line1\nline2",
                                          "cr\rlf\r\n",
                                          "tab\there",
                                          "_x0041_",
                                          "北京水井",
                                          "የውሃ ጉድጓድ",
                                          "บ่อน้ำ",
                                          "💧 & <b>é</b>"};

TEST(XlsxWriterTest, TwoTablesWithEveryCellTypeReadBackByOpenpyxl) {
  fieldsync::testing::TempDir tmp;
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer, NewTableWriter(v1::REPORT_FORMAT_XLSX, &sink, tmp.path()));
  // While the workbook is being written its file sits in temp_dir.
  ASSERT_OK(writer->BeginTable(kWells));
  ASSERT_THAT(Entries(tmp.path()), ElementsAre(::testing::StartsWith("fieldsync-export-")));
  for (size_t i = 0; i < kTricky.size(); ++i) {
    ASSERT_OK(writer->WriteRow({Cell{kTricky[i]}, Cell{12.5 + static_cast<double>(i)},
                                Cell{int64_t(i)}, Cell{i % 2 == 0}, Cell{std::string("2025-03-10")},
                                Cell{std::string("2025-03-10 08:30:15")}}));
  }
  const std::string long_text(40000, 'x');
  const std::string long_emoji = [] {
    std::string s;
    for (int i = 0; i < 20000; ++i) s += "💧";  // two UTF-16 units each
    return s;
  }();
  ASSERT_OK(writer->WriteRow({Cell{long_text}, Cell{0.1}, Cell{std::numeric_limits<int64_t>::min()},
                              Cell{false}, Cell{std::string("2024-02-29")},
                              Cell{std::string("1999-12-31T23:59:59Z")}}));
  ASSERT_OK(writer->WriteRow({Cell{long_emoji}, Cell{1e-7},
                              Cell{std::numeric_limits<int64_t>::max()}, Cell{true},
                              Cell{std::string("2025-02-30")}, Cell{std::string("yesterday")}}));
  ASSERT_OK(writer->WriteRow({Cell{std::string("bad \xff utf8")}, Cell{std::nan("")},
                              Cell{int64_t{9007199254740992}}, Cell{}, Cell{}, Cell{}}));
  ASSERT_OK(
      writer->WriteRow({Cell{}, Cell{int64_t{-3}}, Cell{}, Cell{}, Cell{std::string()}, Cell{}}));
  ASSERT_OK(writer->EndTable());
  const std::string long_name = "reconciliation_gaps_by_project_and_measure";
  ASSERT_OK(
      writer->BeginTable({long_name, {{"project", CellType::kText}, {"gap", CellType::kNumber}}}));
  ASSERT_OK(writer->WriteRow({Cell{std::string("P-1")}, Cell{-4.25}}));
  ASSERT_OK(writer->EndTable());
  ASSERT_OK(writer->Finish());
  EXPECT_THAT(Entries(tmp.path()), ElementsAre()) << "temporary files left behind";

  fieldsync::testing::TempDir out;
  testing::WriteFile(out.File("t.xlsx"), sink.data());
  testing::ReadBack back = testing::ReadWithPython("xlsx", out.File("t.xlsx"));
  ASSERT_EQ(back.exit_code, 0) << back.raw;
  ASSERT_EQ(back.sheets.size(), 2u);

  const testing::Sheet& wells = back.sheets[0];
  EXPECT_EQ(wells.name, "wells");
  EXPECT_EQ(wells.freeze, "A2");
  EXPECT_TRUE(wells.bold_header);
  ASSERT_EQ(wells.rows.size(), 1 + kTricky.size() + 4);
  EXPECT_THAT(wells.rows[0].values,
              ElementsAre(Str("name"), Str("depth_m"), Str("pumps"), Str("functional"),
                          Str("drilled_on"), Str("updated_at")));
  for (size_t i = 0; i < kTricky.size(); ++i) {
    const auto& v = wells.rows[1 + i].values;
    ASSERT_EQ(v.size(), 6u);
    EXPECT_EQ(v[0], Str(kTricky[i]));  // not neutralised: a string cell never runs
    EXPECT_THAT(v[1], NumberIs(12.5 + static_cast<double>(i)));
    EXPECT_EQ(v[2], Int(static_cast<int64_t>(i)));
    EXPECT_EQ(v[3], Bool(i % 2 == 0));
    EXPECT_EQ(v[4], DateTime("2025-03-10T00:00:00"));
    EXPECT_EQ(v[5], DateTime("2025-03-10T08:30:15"));
  }
  const auto& big = wells.rows[1 + kTricky.size()].values;
  ASSERT_EQ(big[0].kind, 's');
  EXPECT_EQ(big[0].text, std::string(32766, 'x') + "…");
  EXPECT_THAT(big[1], NumberIs(0.1));
  EXPECT_EQ(big[2], Str("-9223372036854775808"));  // beyond 2^53: text keeps every digit
  EXPECT_EQ(big[3], Bool(false));
  EXPECT_EQ(big[4], DateTime("2024-02-29T00:00:00"));
  EXPECT_EQ(big[5], DateTime("1999-12-31T23:59:59"));
  const auto& emoji = wells.rows[2 + kTricky.size()].values;
  ASSERT_EQ(emoji[0].kind, 's');
  std::string cut;
  for (int i = 0; i < 16383; ++i) cut += "💧";  // 32,766 units, then the ellipsis
  EXPECT_EQ(emoji[0].text, cut + "…");
  EXPECT_THAT(emoji[1], NumberIs(1e-7));
  EXPECT_EQ(emoji[2], Str("9223372036854775807"));
  EXPECT_EQ(emoji[4], Str("2025-02-30"));  // not a day: kept as text
  EXPECT_EQ(emoji[5], Str("yesterday"));
  const auto& bad = wells.rows[3 + kTricky.size()].values;
  EXPECT_EQ(bad[0], Str("bad \xEF\xBF\xBD utf8"));
  EXPECT_EQ(bad[1], Null());                 // NaN: blank
  EXPECT_EQ(bad[2], Int(9007199254740992));  // 2^53 itself is exact
  EXPECT_EQ(bad[3], Null());
  const auto& blank = wells.rows[4 + kTricky.size()].values;
  EXPECT_THAT(blank, ElementsAre(Null(), NumberIs(-3), Null(), Null(), Null(), Null()));

  const testing::Sheet& gaps = back.sheets[1];
  EXPECT_EQ(gaps.name, long_name.substr(0, 31));
  EXPECT_EQ(gaps.name, XlsxSheetName(long_name));
  EXPECT_EQ(gaps.freeze, "A2");
  EXPECT_TRUE(gaps.bold_header);
  ASSERT_EQ(gaps.rows.size(), 2u);
  EXPECT_THAT(gaps.rows[1].values, ElementsAre(Str("P-1"), NumberIs(-4.25)));
}

TEST(XlsxWriterTest, LongTableContinuesOnNumberedSheetsEachWithHeader) {
  fieldsync::testing::TempDir tmp;
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer,
                       NewXlsxWriter(&sink, tmp.path(), XlsxOptions{/*max_rows_per_sheet=*/4}));
  const std::string name = "expenditures_by_partner_and_month";  // 33 characters
  ASSERT_OK(writer->BeginTable({name, {{"n", CellType::kInteger}}}));
  for (int64_t i = 0; i < 7; ++i) ASSERT_OK(writer->WriteRow({Cell{i}}));
  ASSERT_OK(writer->EndTable());
  ASSERT_OK(writer->Finish());
  fieldsync::testing::TempDir out;
  testing::WriteFile(out.File("t.xlsx"), sink.data());
  testing::ReadBack back = testing::ReadWithPython("xlsx", out.File("t.xlsx"));
  ASSERT_EQ(back.exit_code, 0) << back.raw;
  ASSERT_EQ(back.sheets.size(), 3u);
  EXPECT_EQ(back.sheets[0].name, "expenditures_by_partner_and_mon");
  EXPECT_EQ(back.sheets[1].name, "expenditures_by_partner_and (2)");
  EXPECT_EQ(back.sheets[2].name, "expenditures_by_partner_and (3)");
  int64_t next = 0;
  for (const testing::Sheet& sheet : back.sheets) {
    EXPECT_EQ(sheet.freeze, "A2");
    EXPECT_TRUE(sheet.bold_header);
    ASSERT_GE(sheet.rows.size(), 2u);
    EXPECT_LE(sheet.rows.size(), 4u);
    EXPECT_THAT(sheet.rows[0].values, ElementsAre(Str("n")));
    for (size_t r = 1; r < sheet.rows.size(); ++r) {
      EXPECT_THAT(sheet.rows[r].values, ElementsAre(Int(next++)));
    }
  }
  EXPECT_EQ(next, 7);
  EXPECT_EQ(XlsxSheetName("a[b]:c*d?e/f\\g"), "a_b__c_d_e_f_g");
  EXPECT_EQ(XlsxSheetName("wells", 2), "wells (2)");
}

TEST(XlsxWriterTest, TempFileRemovedWhenDestroyedWithoutFinish) {
  fieldsync::testing::TempDir tmp;
  StringSink sink;
  {
    ASSERT_OK_AND_ASSIGN(auto writer, NewTableWriter(v1::REPORT_FORMAT_XLSX, &sink, tmp.path()));
    ASSERT_OK(writer->BeginTable(kWells));
    ASSERT_OK(writer->WriteRow(
        {Cell{std::string("a")}, Cell{1.0}, Cell{int64_t{1}}, Cell{true}, Cell{}, Cell{}}));
    EXPECT_EQ(Entries(tmp.path()).size(), 1u);
  }
  EXPECT_THAT(Entries(tmp.path()), ElementsAre());
  EXPECT_EQ(sink.data(), "");
}

TEST(XlsxWriterTest, ErrorsNameTheProblem) {
  StringSink sink;
  EXPECT_THAT(NewTableWriter(v1::REPORT_FORMAT_XLSX, &sink, "/nonexistent/dir"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/dir")));
  fieldsync::testing::TempDir tmp;
  EXPECT_THAT(NewXlsxWriter(&sink, tmp.path(), XlsxOptions{1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_rows_per_sheet")));
  ASSERT_OK_AND_ASSIGN(auto writer, NewTableWriter(v1::REPORT_FORMAT_XLSX, &sink, tmp.path()));
  ASSERT_OK(writer->BeginTable({"Wells", {{"a", CellType::kText}}}));
  EXPECT_THAT(writer->WriteRow({Cell{int64_t{1}}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("column a is text")));
  ASSERT_OK(writer->EndTable());
  EXPECT_THAT(writer->BeginTable({"wells", {{"a", CellType::kText}}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("already used")));
  EXPECT_THAT(writer->EndTable(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("XLSX")));
}

TEST(XlsxWriterTest, FinishStreamsInBoundedWrites) {
  fieldsync::testing::TempDir tmp;
  testing::CountingSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer, NewTableWriter(v1::REPORT_FORMAT_XLSX, &sink, tmp.path()));
  ASSERT_OK(writer->BeginTable({"t", {{"a", CellType::kText}, {"n", CellType::kInteger}}}));
  for (int64_t i = 0; i < 50000; ++i) {
    ASSERT_OK(writer->WriteRow({Cell{absl::StrCat("row ", i, " of some text")}, Cell{i}}));
  }
  ASSERT_OK(writer->EndTable());
  ASSERT_OK(writer->Finish());
  EXPECT_GT(sink.bytes(), 64 * 1024);
  EXPECT_LE(sink.max_write(), 64 * 1024);
  EXPECT_THAT(Entries(tmp.path()), ElementsAre());
}

// Excel's real limit: 1,048,575 data rows fill the first sheet, the next goes to "t (2)".
// Slow (seconds); run with FIELDSYNC_REPORT_LONG=1.
TEST(XlsxWriterTest, RealSheetLimitLong) {
  if (std::getenv("FIELDSYNC_REPORT_LONG") == nullptr)
    GTEST_SKIP() << "FIELDSYNC_REPORT_LONG unset";
  fieldsync::testing::TempDir tmp;
  fieldsync::testing::TempDir out;
  class FileSink final : public ByteSink {
   public:
    explicit FileSink(const std::string& path) : out_(path, std::ios::binary) {}
    absl::Status Write(absl::string_view b) override {
      out_.write(b.data(), static_cast<std::streamsize>(b.size()));
      return absl::OkStatus();
    }
    std::ofstream out_;
  } sink(out.File("t.xlsx"));
  ASSERT_OK_AND_ASSIGN(auto writer, NewTableWriter(v1::REPORT_FORMAT_XLSX, &sink, tmp.path()));
  ASSERT_OK(writer->BeginTable({"t", {{"n", CellType::kInteger}}}));
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < kXlsxMaxRowsPerSheet; ++i) ASSERT_OK(writer->WriteRow({Cell{i}}));
  ASSERT_OK(writer->EndTable());
  ASSERT_OK(writer->Finish());
  sink.out_.close();
  std::cerr << "wrote " << kXlsxMaxRowsPerSheet << " rows in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
            << " s\n";
  testing::CommandResult r = testing::RunCommand(
      absl::StrCat(FIELDSYNC_PYTHON,
                   " -c \"import openpyxl,sys; wb=openpyxl.load_workbook(sys.argv[1], "
                   "read_only=True); print([(ws.title, ws.max_row) for ws in wb.worksheets])\" '",
                   out.File("t.xlsx"), "'"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[('t', 1048576), ('t (2)', 2)]"));
}

}  // namespace
}  // namespace fieldsync::report
