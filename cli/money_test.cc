#include "cli/money.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"

namespace fieldsync::cli {
namespace {

using ::fieldsync::testing::StatusIs;
using ::testing::HasSubstr;

TEST(MoneyTest, MinorUnitDigits) {
  EXPECT_EQ(MinorUnitDigits("USD"), 2);
  EXPECT_EQ(MinorUnitDigits("KES"), 2);
  EXPECT_EQ(MinorUnitDigits("IDR"), 2);
  EXPECT_EQ(MinorUnitDigits("UGX"), 0);
  EXPECT_EQ(MinorUnitDigits("VND"), 0);
  EXPECT_EQ(MinorUnitDigits("XOF"), 0);
  EXPECT_EQ(MinorUnitDigits("BHD"), 3);
}

TEST(MoneyTest, ParsesMajorUnits) {
  EXPECT_EQ(*ParseMajorAmount("12345.67", "USD"), 1234567);
  EXPECT_EQ(*ParseMajorAmount("12345.6", "USD"), 1234560);
  EXPECT_EQ(*ParseMajorAmount("12345", "USD"), 1234500);
  EXPECT_EQ(*ParseMajorAmount("0.05", "USD"), 5);
  EXPECT_EQ(*ParseMajorAmount("150000", "UGX"), 150000);
  EXPECT_EQ(*ParseMajorAmount("1.234", "BHD"), 1234);
}

TEST(MoneyTest, RejectsBadAmounts) {
  EXPECT_THAT(ParseMajorAmount("100.5", "UGX"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("UGX has no minor unit")));
  EXPECT_THAT(ParseMajorAmount("1.234", "USD"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("USD has 2 decimals")));
  for (const char* bad : {"", "-5", "1,000", "1e5", "abc", ".5", "5.", "1.2.3", " 5"}) {
    EXPECT_THAT(ParseMajorAmount(bad, "USD"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("decimal amount")))
        << bad;
  }
  EXPECT_THAT(ParseMajorAmount("92233720368547758.08", "USD"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too large")));
  EXPECT_EQ(*ParseMajorAmount("92233720368547758.07", "USD"), INT64_MAX);
}

TEST(MoneyTest, Formats) {
  EXPECT_EQ(FormatMoney(1234567, "USD"), "12,345.67 USD");
  EXPECT_EQ(FormatMoney(5, "USD"), "0.05 USD");
  EXPECT_EQ(FormatMoney(0, "USD"), "0.00 USD");
  EXPECT_EQ(FormatMoney(-500, "USD"), "-5.00 USD");
  EXPECT_EQ(FormatMoney(150000, "UGX"), "150,000 UGX");
  EXPECT_EQ(FormatMoney(1234, "BHD"), "1.234 BHD");
  EXPECT_EQ(FormatAmount(123456789, "KES"), "1,234,567.89");
  EXPECT_EQ(FormatAmount(INT64_MIN, "VND"), "-9,223,372,036,854,775,808");
}

}  // namespace
}  // namespace fieldsync::cli
