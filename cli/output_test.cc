#include "cli/output.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "fieldsync/v1/domain.pb.h"

namespace fieldsync::cli {
namespace {

using ::testing::HasSubstr;

TEST(OutputTest, TruncatesByCodePoints) {
  EXPECT_EQ(Truncate("Kisumu", 10), "Kisumu");
  EXPECT_EQ(Truncate("Kisumu boreholes", 8), "Kisumu …");
  EXPECT_EQ(Truncate("Trường học Đà Nẵng", 6), "Trườn…");
  EXPECT_EQ(DisplayWidth("Trường"), 6u);
  EXPECT_EQ(Truncate("anything", 0), "anything");
}

TEST(OutputTest, TableAlignsAndTruncates) {
  Table table({{"ID"}, {"TITLE", 10}, {"BUDGET", 0, Align::kRight}});
  table.AddRow({"a1", "Wells for Kisumu county", "12,345.67 USD"});
  table.AddRow({"b22", "École\tnord", "5.00 USD"});
  std::ostringstream out;
  table.Print(out);
  EXPECT_EQ(out.str(),
            "ID   TITLE              BUDGET\n"
            "a1   Wells for…  12,345.67 USD\n"
            "b22  École nord       5.00 USD\n");
}

TEST(OutputTest, JsonUsesProtoNamesAndPrintsDefaults) {
  v1::Project project;
  project.set_id("p1");
  project.set_kind(v1::PROJECT_KIND_WELL);
  project.mutable_budget()->set_amount_minor(1234567);
  project.mutable_budget()->set_currency("USD");
  std::string json = ToJson(project);
  EXPECT_THAT(json, HasSubstr("\"partner_id\":\"\""));
  EXPECT_THAT(json, HasSubstr("\"kind\":\"PROJECT_KIND_WELL\""));
  EXPECT_THAT(json, HasSubstr("\"amount_minor\":\"1234567\""));
  EXPECT_EQ(json.find('\n'), std::string::npos);
}

TEST(OutputTest, DetailsFlattenNestedFields) {
  v1::Record record;
  record.set_id("r1");
  record.set_kind(v1::RECORD_KIND_WELL);
  record.mutable_audit()->mutable_created_at()->set_seconds(1714566600);  // 2024-05-01 12:30 UTC
  record.mutable_audit()->set_version(3);
  v1::WellRecord& well = *record.mutable_well();
  well.set_drilled_depth_m(45.5);
  well.set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
  well.add_quality_tests()->set_tested_date("2024-04-01");
  std::ostringstream out;
  PrintDetails(out, record);
  EXPECT_EQ(out.str(),
            "id:                                r1\n"
            "kind:                              well\n"
            "audit.created_at:                  2024-05-01T12:30:00Z\n"
            "audit.version:                     3\n"
            "well.drilled_depth_m:              45.5\n"
            "well.functional_status:            functional\n"
            "well.quality_tests[0].tested_date: 2024-04-01\n");
}

TEST(OutputTest, DetailsShowMoneyInMajorUnits) {
  v1::Project project;
  project.set_title("Wells");
  project.mutable_budget()->set_amount_minor(150000);
  project.mutable_budget()->set_currency("UGX");
  std::ostringstream out;
  PrintDetails(out, project);
  EXPECT_EQ(out.str(), "title:  Wells\nbudget: 150,000 UGX\n");
}

TEST(OutputTest, Numbers) {
  EXPECT_EQ(FormatDouble(-1.2920659), "-1.2920659");
  EXPECT_EQ(FormatDouble(0.1), "0.1");
  EXPECT_EQ(FormatDouble(45), "45");
  EXPECT_EQ(FormatPercent(0.875), "87.5%");
}

TEST(OutputTest, JsonObjectKeepsOrderAndEscapes) {
  v1::Money money;
  money.set_amount_minor(500);
  money.set_currency("USD");
  EXPECT_EQ(JsonObject()
                .AddString("device_id", "d\"1\\\n\x01")
                .AddInt("pending_changes", -3)
                .AddBool("repaired", false)
                .AddMessage("money", money)
                .ToString(),
            "{\"device_id\":\"d\\\"1\\\\\\n\\u0001\",\"pending_changes\":-3,"
            "\"repaired\":false,\"money\":{\"amount_minor\":\"500\",\"currency\":\"USD\"}}");
  EXPECT_EQ(JsonObject().ToString(), "{}");
  EXPECT_EQ(JsonQuote("Trường"), "\"Trường\"");
  EXPECT_EQ(Counted(1, "change"), "1 change");
  EXPECT_EQ(Counted(0, "change"), "0 changes");
  EXPECT_EQ(Counted(2, "retry", "retries"), "2 retries");
  EXPECT_EQ(FormatUnixMillis(0), "");
  EXPECT_EQ(FormatUnixMillis(1714566600123), "2024-05-01T12:30:00Z");
}

}  // namespace
}  // namespace fieldsync::cli
