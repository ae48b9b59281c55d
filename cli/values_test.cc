#include "cli/values.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/errors.h"
#include "fieldsync/v1/admin.pb.h"
#include "fieldsync/v1/domain.pb.h"
#include "tests/testing/status_matchers.h"

namespace fieldsync::cli {
namespace {

using ::fieldsync::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ValuesTest, Dates) {
  EXPECT_EQ(*ParseDate("start", "2024-02-29"), "2024-02-29");
  EXPECT_EQ(*ParseDate("start", "2000-02-29"), "2000-02-29");
  for (const char* bad : {"2023-02-29", "1900-02-29", "2024-13-01", "2024-04-31", "2024-1-01",
                          "20240101", "2024-01-0x", "+024-01-01"}) {
    absl::StatusOr<std::string> date = ParseDate("start", bad);
    EXPECT_THAT(date, StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr("--start: must be a date YYYY-MM-DD")))
        << bad;
    EXPECT_TRUE(IsUsageError(date.status()));
  }
}

TEST(ValuesTest, Durations) {
  EXPECT_EQ(*ParseDurationSeconds("ttl", "30d"), 30 * 86400);
  EXPECT_EQ(*ParseDurationSeconds("ttl", "12h"), 12 * 3600);
  EXPECT_EQ(*ParseDurationSeconds("ttl", "90m"), 5400);
  EXPECT_EQ(*ParseDurationSeconds("ttl", "3600s"), 3600);
  EXPECT_EQ(*ParseDurationSeconds("ttl", "3600"), 3600);
  EXPECT_EQ(*ParseDurationSeconds("ttl", "never"), 0);
  for (const char* bad : {"", "0d", "-1h", "d", "1w", "5000d", "1.5h"}) {
    EXPECT_THAT(ParseDurationSeconds("ttl", bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                                           HasSubstr("--ttl: must be a duration")))
        << bad;
  }
}

TEST(ValuesTest, Numbers) {
  EXPECT_DOUBLE_EQ(*ParseDouble("lat", "-1.2921"), -1.2921);
  EXPECT_THAT(ParseDouble("lat", "north"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--lat: must be a number, got 'north'")));
  EXPECT_THAT(ParseDouble("lat", "nan"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--lat")));
  EXPECT_EQ(*ParseInt("limit", "20", 1, 100), 20);
  EXPECT_THAT(ParseInt("limit", "0", 1, 100),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--limit: must be a whole number from 1 to 100, got '0'")));
}

TEST(ValuesTest, CodeLists) {
  EXPECT_THAT(*ParseCodeList("countries", "ke, UG,,tz"), ElementsAre("KE", "UG", "TZ"));
  EXPECT_THAT(ParseCodeList("countries", " , "),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--countries")));
}

TEST(ValuesTest, Enums) {
  EXPECT_EQ(*ParseEnum("kind", "well", v1::ProjectKind_descriptor()), v1::PROJECT_KIND_WELL);
  EXPECT_EQ(*ParseEnum("kind", "Cataract", v1::ProjectKind_descriptor()),
            v1::PROJECT_KIND_CATARACT);
  EXPECT_EQ(*ParseEnum("kind", "PROJECT_KIND_CLASSROOM", v1::ProjectKind_descriptor()),
            v1::PROJECT_KIND_CLASSROOM);
  EXPECT_THAT(ParseEnum("kind", "unspecified", v1::ProjectKind_descriptor()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--kind: must be one of well, cataract, classroom, got "
                                 "'unspecified'")));
  EnumAliases roles = {{"hq", v1::ROLE_HQ_VIEWER}, {"field", v1::ROLE_FIELD_DEVICE}};
  EXPECT_EQ(*ParseEnum("role", "hq", v1::Role_descriptor(), roles), v1::ROLE_HQ_VIEWER);
  EXPECT_EQ(*ParseEnum("role", "hq_viewer", v1::Role_descriptor(), roles), v1::ROLE_HQ_VIEWER);
  EXPECT_THAT(ParseEnum("role", "boss", v1::Role_descriptor(), roles),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("one of hq, field")));
}

TEST(ValuesTest, EnumLabels) {
  EXPECT_EQ(EnumLabel(v1::PROJECT_KIND_WELL), "well");
  EXPECT_EQ(EnumLabel(v1::ROLE_HQ_VIEWER), "hq_viewer");
  EXPECT_EQ(EnumLabel(v1::FOLLOW_UP_STAGE_WEEKS_4_12), "weeks_4_12");
  EXPECT_EQ(EnumLabel(v1::PROJECT_STATUS_UNSPECIFIED), "");
  EXPECT_EQ(EnumLabel(static_cast<v1::ProjectKind>(42)), "42");
}

}  // namespace
}  // namespace fieldsync::cli
