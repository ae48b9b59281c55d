#include "cli/records.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "fieldsync/v1/domain.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"

namespace fieldsync::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

RecordInput Input(const std::string& json) {
  RecordInput input;
  input.json = json;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &input.record).ok()) << json;
  return input;
}

v1::Record StoredWell() {
  return Input(R"({"id":"r1","project_id":"p1","site_id":"s1","kind":"RECORD_KIND_WELL",
                   "well":{"drilled_depth_m":80,"yield_lph":1200,
                           "water_source":"WATER_SOURCE_BOREHOLE",
                           "functional_status":"FUNCTIONAL_STATUS_FUNCTIONAL",
                           "population_served":350,"visit_date":"2025-03-14",
                           "notes":"pump replaced",
                           "quality_tests":[{"tested_date":"2025-03-14","turbidity_ntu":2},
                                            {"tested_date":"2025-04-01","turbidity_ntu":3}]}})")
      .record;
}

TEST(RecordPatchTest, ChangesOnlyTheFieldsGiven) {
  v1::Record record = StoredWell();
  ASSERT_TRUE(ApplyRecordPatch(Input(R"({"well":{"yield_lph":500}})"), &record).ok());
  v1::Record expected = StoredWell();
  expected.mutable_well()->set_yield_lph(500);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(record, expected))
      << record.DebugString();
}

TEST(RecordPatchTest, AcceptsJsonNamesAndTopLevelFields) {
  v1::Record record = StoredWell();
  ASSERT_TRUE(
      ApplyRecordPatch(Input(R"({"siteId":"s2","well":{"populationServed":400}})"), &record).ok());
  EXPECT_EQ(record.site_id(), "s2");
  EXPECT_EQ(record.project_id(), "p1");
  EXPECT_EQ(record.well().population_served(), 400);
  EXPECT_EQ(record.well().yield_lph(), 1200);
}

TEST(RecordPatchTest, DefaultValuesGivenClearTheField) {
  v1::Record record = StoredWell();
  ASSERT_TRUE(
      ApplyRecordPatch(Input(R"({"well":{"notes":"","population_served":0}})"), &record).ok());
  EXPECT_EQ(record.well().notes(), "");
  EXPECT_EQ(record.well().population_served(), 0);
  EXPECT_EQ(record.well().visit_date(), "2025-03-14");
}

TEST(RecordPatchTest, ListsAreReplacedWhole) {
  v1::Record record = StoredWell();
  ASSERT_TRUE(ApplyRecordPatch(
                  Input(R"({"well":{"quality_tests":[{"tested_date":"2025-05-01","ecoli_cfu_per_100ml":0}]}})"),
                  &record)
                  .ok());
  ASSERT_THAT(record.well().quality_tests(), SizeIs(1));
  EXPECT_EQ(record.well().quality_tests(0).tested_date(), "2025-05-01");
  EXPECT_TRUE(record.well().quality_tests(0).has_ecoli_cfu_per_100ml());
  EXPECT_FALSE(record.well().quality_tests(0).has_turbidity_ntu());
}

TEST(RecordPatchTest, EmptyObjectChangesNothing) {
  v1::Record record = StoredWell();
  ASSERT_TRUE(ApplyRecordPatch(Input(R"({"well":{}})"), &record).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(record, StoredWell()));
}

TEST(RecordPatchTest, BodyOfAnotherKindReplacesTheBody) {
  v1::Record record = StoredWell();
  ASSERT_TRUE(ApplyRecordPatch(
                  Input(R"({"expenditure":{"category":"EXPENDITURE_CATEGORY_OTHER"}})"), &record)
                  .ok());
  EXPECT_EQ(record.body_case(), v1::Record::kExpenditure);
  EXPECT_EQ(record.expenditure().category(), v1::EXPENDITURE_CATEGORY_OTHER);
  EXPECT_EQ(record.site_id(), "s1");
}

TEST(RecordSummaryTest, DescribesTheBody) {
  EXPECT_EQ(RecordSummary(StoredWell()), "functional, 350 people, borehole");
  EXPECT_EQ(RecordKindLabel(v1::RECORD_KIND_CATARACT_SURGERY), "cataract");
}

}  // namespace
}  // namespace fieldsync::cli
