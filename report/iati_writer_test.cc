#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fieldsync/report/writer.h"
#include "report_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync::report {
namespace {

using ::fieldsync::testing::StatusIs;
using ::testing::HasSubstr;

const IatiOrganisation kReporter = {"GB-CHC-1234567", "Wells & Sight Network", 21, 0};

IatiActivity FullActivity() {
  IatiActivity a;
  a.identifier = "GB-CHC-1234567-P-0001";
  a.default_currency = "USD";
  a.title = "Boreholes <phase 1> & \"more\" — 北京水井 / የውሃ ጉድጓድ / บ่อน้ำ";
  a.description = std::string("Drilling & handover of 10 boreholes; 'quoted' > 5\x01\x0b ok\t\n");
  a.participating_orgs = {{"XM-DAC-11111", "Funder & Co", 10, 1},
                          {"", "Local partner <ngo>", 22, 4}};
  a.status = 2;
  a.planned_start = "2025-01-01";
  a.actual_start = "2025-01-15";
  a.planned_end = "2025-12-31";
  a.recipient_country = "MW";
  a.locations = {{"S-1", "Village BH-001", -13.9626, 33.7741},
                 {"S-2", "Lilongwe \"north\"", -13.98, 33.78}};
  a.dac_sector = 14031;
  a.budget_minor = 12000000;
  a.budget_minor_units = 2;
  a.budget_period_start = "2025-01-01";
  a.budget_period_end = "2025-12-31";
  a.budget_value_date = "2025-01-01";
  a.transactions = {{"T-1", 4, "2025-03-10", 1234567, "USD", 2, "Drilling invoice BH-001"},
                    {"T-2", 4, "2025-03-11", 1234567, "JPY", 0, "Pump parts (円)"},
                    {"T-3", 4, "2025-03-12", -5, "EUR", 2, ""}};
  IatiIndicator boreholes{
      "Functional water points",
      1,
      true,
      "Boreholes working at handover",
      {{"2025-01-01", "2025-06-30", 10, true, 4}, {"2025-07-01", "2025-12-31", 0, false, 2.5}}};
  IatiIndicator share{
      "Share of tests passing", 2, true, "", {{"2025-01-01", "2025-12-31", 95, true, 87.5}}};
  a.results = {{1, "Access to drinking water", {boreholes, share}},
               {2, "A result without indicators is left out", {}}};
  a.last_updated = "2025-04-01T10:00:00Z";
  return a;
}

IatiActivity MinimalActivity() {
  IatiActivity a;
  a.identifier = "GB-CHC-1234567-P-0002";
  a.title = "Cataract surgeries";
  a.participating_orgs = {{"", "Eye hospital", 0, 4}};
  a.planned_start = "2025-02-01";
  return a;
}

testing::CommandResult Validate(const std::string& path) {
  return testing::RunCommand(absl::StrCat(FIELDSYNC_XMLLINT, " --noout --schema ",
                                          FIELDSYNC_IATI_SCHEMA_DIR,
                                          "/iati-activities-schema.xsd '", path, "'"));
}

std::string XPath(const std::string& path, const std::string& expression) {
  testing::CommandResult r = testing::RunCommand(
      absl::StrCat(FIELDSYNC_XMLLINT, " --xpath '", expression, "' '", path, "'"));
  EXPECT_EQ(r.exit_code, 0) << expression << ": " << r.output;
  // xmllint ends its answer with a newline of its own.
  if (!r.output.empty() && r.output.back() == '\n') r.output.pop_back();
  return r.output;
}

TEST(IatiWriterTest, FullAndMinimalActivitiesValidateAgainstTheSchema) {
  StringSink sink;
  IatiWriter writer(&sink, kReporter, "2025-04-02T08:00:00Z");
  ASSERT_OK(writer.Begin());
  ASSERT_OK(writer.WriteActivity(FullActivity()));
  ASSERT_OK(writer.WriteActivity(MinimalActivity()));
  ASSERT_OK(writer.End());
  EXPECT_EQ(writer.activities(), 2);

  fieldsync::testing::TempDir dir;
  const std::string path = dir.File("iati.xml");
  testing::WriteFile(path, sink.data());
  testing::CommandResult r = Validate(path);
  EXPECT_EQ(r.exit_code, 0) << r.output << "\n" << sink.data();

  // Values read back by libxml2, not by us.
  const IatiActivity full = FullActivity();
  EXPECT_EQ(XPath(path, "string(//iati-activity[1]/title/narrative)"), full.title);
  EXPECT_EQ(XPath(path, "string(//iati-activity[1]/description/narrative)"),
            "Drilling & handover of 10 boreholes; 'quoted' > 5 ok\t\n");
  EXPECT_EQ(XPath(path, "string(//participating-org[2]/narrative)"), "Local partner <ngo>");
  EXPECT_EQ(XPath(path, "string(//location[2]/name/narrative)"), "Lilongwe \"north\"");
  EXPECT_EQ(XPath(path, "string(//location[1]/point/pos)"), "-13.9626 33.7741");
  EXPECT_EQ(XPath(path, "string(//budget/value)"), "120000.00");
  EXPECT_EQ(XPath(path, "string(//transaction[@ref=\"T-1\"]/value)"), "12345.67");
  EXPECT_EQ(XPath(path, "string(//transaction[@ref=\"T-2\"]/value)"), "1234567");
  EXPECT_EQ(XPath(path, "string(//transaction[@ref=\"T-2\"]/value/@currency)"), "JPY");
  EXPECT_EQ(XPath(path, "string(//transaction[@ref=\"T-3\"]/value)"), "-0.05");
  EXPECT_EQ(XPath(path, "count(//transaction[@ref=\"T-3\"]/description)"), "0");
  EXPECT_EQ(XPath(path, "count(//iati-activity[1]/result)"), "1");
  EXPECT_EQ(XPath(path, "count(//iati-activity[1]/result/indicator)"), "2");
  EXPECT_EQ(XPath(path, "string(//indicator[1]/period[1]/target/@value)"), "10");
  EXPECT_EQ(XPath(path, "count(//indicator[1]/period[2]/target)"), "0");
  EXPECT_EQ(XPath(path, "string(//indicator[1]/period[2]/actual/@value)"), "2.5");
  EXPECT_EQ(XPath(path, "string(//indicator[2]/@measure)"), "2");
  EXPECT_EQ(XPath(path, "string(//reporting-org[1]/narrative)"), "Wells & Sight Network");
  // The minimal activity: no optional elements without data.
  EXPECT_EQ(XPath(path, "count(//iati-activity[2]/activity-date)"), "1");
  EXPECT_EQ(XPath(path,
                  "count(//iati-activity[2]/budget | //iati-activity[2]/sector | "
                  "//iati-activity[2]/recipient-country | //iati-activity[2]/location)"),
            "0");
  EXPECT_EQ(XPath(path, "count(//iati-activity[2]/@default-currency)"), "0");
}

TEST(IatiWriterTest, MinimalDocumentAloneValidates) {
  StringSink sink;
  IatiWriter writer(&sink, kReporter, "2025-04-02T08:00:00Z");
  ASSERT_OK(writer.Begin());
  ASSERT_OK(writer.WriteActivity(MinimalActivity()));
  ASSERT_OK(writer.End());
  fieldsync::testing::TempDir dir;
  testing::WriteFile(dir.File("min.xml"), sink.data());
  testing::CommandResult r = Validate(dir.File("min.xml"));
  EXPECT_EQ(r.exit_code, 0) << r.output << "\n" << sink.data();
}

// The validator does reject what the schema forbids, so the checks above can fail.
TEST(IatiWriterTest, ValidatorRejectsBrokenDocuments) {
  StringSink sink;
  IatiWriter writer(&sink, kReporter, "2025-04-02T08:00:00Z");
  ASSERT_OK(writer.Begin());
  ASSERT_OK(writer.WriteActivity(FullActivity()));
  ASSERT_OK(writer.End());
  fieldsync::testing::TempDir dir;
  // Sector moved before recipient-country: the schema's order is broken.
  std::string reordered = sink.data();
  const std::string sector = "    <sector vocabulary=\"1\" code=\"14031\" percentage=\"100\"/>\n";
  const size_t at = reordered.find(sector);
  ASSERT_NE(at, std::string::npos);
  reordered.erase(at, sector.size());
  reordered.insert(reordered.find("    <recipient-country"), sector);
  testing::WriteFile(dir.File("reordered.xml"), reordered);
  testing::CommandResult r = Validate(dir.File("reordered.xml"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("sector"));
  // A hand-written activity without participating-org and activity-date.
  testing::WriteFile(
      dir.File("missing.xml"),
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<iati-activities version=\"2.03\" generated-datetime=\"2025-01-01T00:00:00Z\">"
      "<iati-activity><iati-identifier>X-1</iati-identifier>"
      "<reporting-org ref=\"X\" type=\"21\"><narrative>X</narrative></reporting-org>"
      "<title><narrative>t</narrative></title>"
      "<description><narrative>d</narrative></description>"
      "<activity-status code=\"2\"/></iati-activity></iati-activities>\n");
  r = Validate(dir.File("missing.xml"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  // An unescaped ampersand is not even XML.
  testing::WriteFile(dir.File("amp.xml"), absl::StrCat(sink.data().substr(0, 60), " & "));
  EXPECT_NE(Validate(dir.File("amp.xml")).exit_code, 0);
}

TEST(IatiWriterTest, RejectsWhatTheSchemaRequiresAndCallsOutOfOrder) {
  StringSink sink;
  IatiWriter early(&sink, kReporter, "2025-04-02T08:00:00Z");
  EXPECT_THAT(early.WriteActivity(MinimalActivity()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("Begin")));

  IatiWriter no_ref(&sink, {"", "Anonymous", 21, 0}, "2025-04-02T08:00:00Z");
  EXPECT_THAT(no_ref.Begin(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reporting_org.ref")));
  IatiWriter bad_time(&sink, kReporter, "2025-04-02 08:00");
  EXPECT_THAT(bad_time.Begin(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("generated_datetime")));

  IatiWriter writer(&sink, kReporter, "2025-04-02T08:00:00Z");
  ASSERT_OK(writer.Begin());
  IatiActivity a = MinimalActivity();
  a.participating_orgs.clear();
  EXPECT_THAT(writer.WriteActivity(a),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("participating_orgs")));
  a = MinimalActivity();
  a.planned_start.clear();
  EXPECT_THAT(writer.WriteActivity(a),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("activity date")));
  a = MinimalActivity();
  a.planned_start = "2025-13-01";
  EXPECT_THAT(writer.WriteActivity(a), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr("planned_start: must be YYYY-MM-DD")));
  a = FullActivity();
  a.transactions[1].date = "";
  EXPECT_THAT(writer.WriteActivity(a),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("transactions[1].date")));
  a = FullActivity();
  a.identifier.clear();
  EXPECT_THAT(writer.WriteActivity(a),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("identifier")));
  EXPECT_EQ(writer.activities(), 0);
  ASSERT_OK(writer.End());
  EXPECT_THAT(writer.End(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("End")));
}

TEST(IatiWriterTest, ManyActivitiesStreamInBoundedWrites) {
  testing::CountingSink sink;
  IatiWriter writer(&sink, kReporter, "2025-04-02T08:00:00Z");
  ASSERT_OK(writer.Begin());
  IatiActivity a = FullActivity();
  for (int i = 0; i < 300; ++i) {
    a.identifier = absl::StrCat("GB-CHC-1234567-P-", i);
    ASSERT_OK(writer.WriteActivity(a));
  }
  EXPECT_GT(sink.writes(), 0);  // written before End
  ASSERT_OK(writer.End());
  EXPECT_LE(sink.max_write(), 64 * 1024);
  EXPECT_GT(sink.bytes(), 300 * 3000);
}

}  // namespace
}  // namespace fieldsync::report
