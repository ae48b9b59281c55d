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
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const TableSchema kSchema = {"wells",
                             {{"name", CellType::kText},
                              {"depth_m", CellType::kNumber},
                              {"count", CellType::kInteger},
                              {"functional", CellType::kBool},
                              {"drilled_on", CellType::kDate},
                              {"updated_at", CellType::kTimestamp}}};

std::string WriteJsonl(const std::vector<std::vector<Cell>>& rows) {
  StringSink sink;
  auto writer = NewTableWriter(v1::REPORT_FORMAT_JSONL, &sink, "");
  EXPECT_OK(writer);
  EXPECT_OK((*writer)->BeginTable(kSchema));
  for (const auto& row : rows) EXPECT_OK((*writer)->WriteRow(row));
  EXPECT_OK((*writer)->EndTable());
  EXPECT_OK((*writer)->Finish());
  return sink.data();
}

testing::ReadBack ReadJsonl(const std::string& bytes) {
  fieldsync::testing::TempDir dir;
  testing::WriteFile(dir.File("t.jsonl"), bytes);
  return testing::ReadWithPython("jsonl", dir.File("t.jsonl"));
}

TEST(JsonLinesWriterTest, TypedValuesReadBackByPythonJson) {
  const std::vector<std::string> texts = {"=HYPERLINK(\"http://x\",\"y\")",
                                          "back\\slash",
                                          "quote \"q\"",
                                          "tab\there",
                                          "cr\rlf\ncrlf\r\n",
                                          "北京水井",
                                          "የውሃ ጉድጓድ",
                                          "บ่อน้ำ",
                                          "💧",
                                          "",
                                          "</script>",
                                          "'+1"};
  std::vector<std::vector<Cell>> rows;
  for (size_t i = 0; i < texts.size(); ++i) {
    rows.push_back({Cell{texts[i]}, Cell{0.1 * static_cast<double>(i)}, Cell{int64_t(i)},
                    Cell{i % 2 == 1}, Cell{std::string("2025-01-31")},
                    Cell{std::string("2025-01-31 23:59:59")}});
  }
  rows.push_back(
      {Cell{}, Cell{1e-7}, Cell{std::numeric_limits<int64_t>::min()}, Cell{}, Cell{}, Cell{}});
  rows.push_back(
      {Cell{}, Cell{12.5}, Cell{std::numeric_limits<int64_t>::max()}, Cell{}, Cell{}, Cell{}});
  rows.push_back({Cell{}, Cell{std::nan("")}, Cell{}, Cell{}, Cell{}, Cell{}});
  rows.push_back(
      {Cell{}, Cell{-std::numeric_limits<double>::infinity()}, Cell{}, Cell{}, Cell{}, Cell{}});
  rows.push_back({Cell{}, Cell{int64_t{7}}, Cell{}, Cell{}, Cell{}, Cell{}});  // int in kNumber

  const std::string jsonl = WriteJsonl(rows);
  testing::ReadBack back = ReadJsonl(jsonl);
  ASSERT_EQ(back.exit_code, 0) << back.raw << "\n" << jsonl;
  ASSERT_EQ(back.sheets[0].rows.size(), rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    const testing::Row& got = back.sheets[0].rows[r];
    EXPECT_THAT(got.keys,
                ElementsAre("name", "depth_m", "count", "functional", "drilled_on", "updated_at"));
    ASSERT_EQ(got.values.size(), 6u);
    for (size_t c = 0; c < 6; ++c) {
      const Cell& cell = rows[r][c];
      const testing::Value& v = got.values[c];
      if (const auto* s = std::get_if<std::string>(&cell)) {
        // Not neutralised in JSON; an empty text is null.
        EXPECT_EQ(v, s->empty() ? testing::Null() : testing::Str(*s)) << "row " << r;
      } else if (const auto* i = std::get_if<int64_t>(&cell)) {
        EXPECT_EQ(v, testing::Int(*i)) << "row " << r;
      } else if (const auto* d = std::get_if<double>(&cell)) {
        if (std::isfinite(*d)) {
          EXPECT_TRUE(v.kind == 'i' || v.kind == 'f') << v;
          EXPECT_EQ(std::strtod(v.text.c_str(), nullptr), testing::Written(*d)) << "row " << r;
        } else {
          EXPECT_EQ(v, testing::Null()) << "row " << r;
        }
      } else if (const auto* b = std::get_if<bool>(&cell)) {
        EXPECT_EQ(v, testing::Bool(*b));
      } else {
        EXPECT_EQ(v, testing::Null()) << "row " << r << " col " << c;
      }
    }
  }
  // Exact bytes of one line: keys in order, numbers bare, shortest doubles.
  EXPECT_THAT(jsonl, HasSubstr("{\"name\":null,\"depth_m\":1e-07,\"count\":-9223372036854775808,"
                               "\"functional\":null,\"drilled_on\":null,\"updated_at\":null}\n"));
  EXPECT_THAT(jsonl, HasSubstr("\"name\":\"cr\\rlf\\ncrlf\\r\\n\""));
  EXPECT_THAT(jsonl, HasSubstr("\"depth_m\":12.5,"));
}

TEST(JsonLinesWriterTest, EmptyTextIsNullAndNumbersCarryNoBinaryNoise) {
  const std::vector<std::vector<Cell>> rows = {
      {Cell{std::string()}, Cell{42.300000000000004}, Cell{}, Cell{}, Cell{}, Cell{}},
      {Cell{std::string("x")}, Cell{0.1 * 3}, Cell{}, Cell{}, Cell{}, Cell{}},
      {Cell{std::string(" ")}, Cell{423 * 0.1}, Cell{}, Cell{}, Cell{}, Cell{}},
      {Cell{std::string()}, Cell{1.0 / 3.0}, Cell{}, Cell{}, Cell{}, Cell{}}};
  const std::string jsonl = WriteJsonl(rows);
  EXPECT_THAT(jsonl, HasSubstr("{\"name\":null,\"depth_m\":42.3,"));
  EXPECT_THAT(jsonl, HasSubstr("{\"name\":\"x\",\"depth_m\":0.3,"));
  EXPECT_THAT(jsonl, HasSubstr("{\"name\":\" \",\"depth_m\":42.3,"));
  EXPECT_THAT(jsonl, HasSubstr("\"depth_m\":0.333333333333333,"));
  testing::ReadBack back = ReadJsonl(jsonl);
  ASSERT_EQ(back.exit_code, 0) << back.raw << "\n" << jsonl;
  ASSERT_EQ(back.sheets[0].rows.size(), rows.size());
  EXPECT_EQ(back.sheets[0].rows[0].values[0], testing::Null());
  EXPECT_EQ(back.sheets[0].rows[1].values[0], testing::Str("x"));
  EXPECT_EQ(back.sheets[0].rows[2].values[0], testing::Str(" "));  // a blank is text
  EXPECT_EQ(back.sheets[0].rows[0].values[1].text, "42.3");
  EXPECT_EQ(back.sheets[0].rows[1].values[1].text, "0.3");
}

TEST(JsonLinesWriterTest, ControlCharactersAndInvalidUtf8StillGiveValidJson) {
  const std::string nasty = std::string("a\x01\x1f\x7f", 4) + std::string(1, '\0') + "b\xff\xfe" +
                            "c\xe5\x8c" /* cut 3-byte char */ + "\xc0\xaf" /* overlong */ +
                            "\xed\xa0\x80" /* surrogate */ + "ok";
  const std::string jsonl =
      WriteJsonl({{Cell{nasty}, Cell{}, Cell{}, Cell{}, Cell{std::string("\xff")}, Cell{}}});
  testing::ReadBack back = ReadJsonl(jsonl);
  ASSERT_EQ(back.exit_code, 0) << back.raw << "\n" << jsonl;
  ASSERT_EQ(back.sheets[0].rows.size(), 1u);
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(back.sheets[0].rows[0].values[0],
            testing::Str(std::string("a\x01\x1f\x7f", 4) + std::string(1, '\0') + "b" + fffd +
                         fffd + "c" + fffd + fffd + fffd + fffd + fffd + fffd + fffd + "ok"));
  EXPECT_EQ(back.sheets[0].rows[0].values[4], testing::Str(fffd));
  EXPECT_THAT(jsonl, HasSubstr("a\\u0001\\u001f\x7f\\u0000b"));
}

TEST(JsonLinesWriterTest, OneTableOnly) {
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer, NewTableWriter(v1::REPORT_FORMAT_JSONL, &sink, ""));
  ASSERT_OK(writer->BeginTable(kSchema));
  ASSERT_OK(writer->EndTable());
  EXPECT_THAT(writer->BeginTable(kSchema),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("JSONL holds one table")));
  ASSERT_OK(writer->Finish());
  EXPECT_EQ(sink.data(), "");
}

}  // namespace
}  // namespace fieldsync::report
