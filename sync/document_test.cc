#include "fieldsync/sync/document.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fieldsync/v1/domain.pb.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/testing/status_matchers.h"

namespace fieldsync::sync {
namespace {

using ::fieldsync::testing::StatusIs;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Key;

template <typename T>
T Parse(const std::string& text) {
  T message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

v1::Record WellRecord() {
  return Parse<v1::Record>(R"pb(
    id: "018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e6f"
    project_id: "018f3a2c-0000-7c3d-9f00-1a2b3c4d5e6f"
    well {
      yield_lph: 1200
      water_source: WATER_SOURCE_BOREHOLE
      visit_date: "2024-11-02"
      quality_tests { tested_date: "2024-11-01" ecoli_cfu_per_100ml: 0 turbidity_ntu: 2.5 }
      quality_tests { tested_date: "2024-11-02" arsenic_ug_per_l: 3 }
    }
  )pb");
}

TEST(Document, FlattenSplitsTheOneofBodyOneLevel) {
  FieldValues fields = Flatten(WellRecord());
  EXPECT_THAT(fields,
              ElementsAre(Key("id"), Key("project_id"), Key("well.quality_tests"),
                          Key("well.visit_date"), Key("well.water_source"), Key("well.yield_lph")));
  v1::Record only_id;
  only_id.set_id("018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e6f");
  EXPECT_EQ(fields["id"], SerializeDeterministic(only_id));
  v1::WellRecord only_yield;
  only_yield.set_yield_lph(1200);
  EXPECT_EQ(fields["well.yield_lph"], SerializeDeterministic(only_yield));
  // Repeated fields are one atomic value, nested messages included.
  v1::WellRecord only_tests;
  *only_tests.mutable_quality_tests() = WellRecord().well().quality_tests();
  EXPECT_EQ(fields["well.quality_tests"], SerializeDeterministic(only_tests));
}

TEST(Document, FlattenKeepsOtherMessageFieldsAtomicAndOmitsDefaults) {
  auto project = Parse<v1::Project>(R"pb(
    id: "p"
    title: "Wells for Turkana"
    status: PROJECT_STATUS_UNSPECIFIED
    budget { amount_minor: 5000000 currency: "USD" }
  )pb");
  EXPECT_THAT(Flatten(project), ElementsAre(Key("budget"), Key("id"), Key("title")));
  EXPECT_TRUE(Flatten(v1::Project()).empty());
}

TEST(Document, RoundTripsEveryKindOfMessage) {
  std::vector<std::unique_ptr<google::protobuf::Message>> messages;
  messages.push_back(std::make_unique<v1::Record>(WellRecord()));
  messages.push_back(std::make_unique<v1::Record>(Parse<v1::Record>(R"pb(
    id: "r2"
    site_id: "s"
    cataract_surgery {
      patient_ref: "P-17"
      age_years: 71
      sex: SEX_FEMALE
      eye: EYE_LEFT
      iol_implanted: true
      follow_ups { stage: FOLLOW_UP_STAGE_DAY_1 presenting_va: "6/60" }
      follow_ups { stage: FOLLOW_UP_STAGE_WEEKS_4_12 presenting_va: "6/12" }
      complications: "posterior capsule rupture"
    }
  )pb")));
  messages.push_back(std::make_unique<v1::Record>(Parse<v1::Record>(R"pb(
    classroom_donation {
      school_name: "Kibera Primary"
      items {
        item_type: "desk"
        quantity: 40
        unit_value { amount_minor: 3500 currency: "KES" }
      }
      students_reached: 300
    }
  )pb")));
  messages.push_back(std::make_unique<v1::Record>(Parse<v1::Record>(R"pb(
    expenditure {
      amount { amount_minor: 12 currency: "VND" }
      category: EXPENDITURE_CATEGORY_STAFF
    }
  )pb")));
  messages.push_back(std::make_unique<v1::Partner>(Parse<v1::Partner>(R"pb(id: "x"
                                                                           name: "Aqua"
                                                                           countries: "KE"
                                                                           countries: "UG")pb")));
  messages.push_back(std::make_unique<v1::Site>(Parse<v1::Site>(R"pb(name: "Lodwar"
                                                                     latitude_deg: 3.12
                                                                     longitude_deg: -35.6)pb")));
  messages.push_back(
      std::make_unique<v1::Project>(Parse<v1::Project>(R"pb(title: "t"
                                                            kind: PROJECT_KIND_WELL
                                                            budget { currency: "USD" })pb")));
  for (const auto& message : messages) {
    std::unique_ptr<google::protobuf::Message> back(message->New());
    ASSERT_OK(Assemble(Flatten(*message), back.get()));
    EXPECT_TRUE(MessageDifferencer::Equals(*message, *back)) << message->DebugString() << "\nvs\n"
                                                             << back->DebugString();
    EXPECT_EQ(SerializeDeterministic(*message), SerializeDeterministic(*back));
  }
  // A measured 0 keeps its presence (proto3 optional), an unmeasured value stays unset.
  v1::Record back;
  ASSERT_OK(Assemble(Flatten(WellRecord()), &back));
  EXPECT_TRUE(back.well().quality_tests(0).has_ecoli_cfu_per_100ml());
  EXPECT_FALSE(back.well().quality_tests(1).has_ecoli_cfu_per_100ml());
}

TEST(Document, AnAllDefaultOneofMemberStillSetsTheCase) {
  v1::Record record;
  record.mutable_well();
  FieldValues fields = Flatten(record);
  EXPECT_THAT(fields, ElementsAre(Key("well")));
  EXPECT_EQ(fields["well"], std::string("\xa2\x01\x00", 3));  // field 20, length 0
  v1::Record back;
  ASSERT_OK(Assemble(fields, &back));
  EXPECT_TRUE(back.has_well());

  // Unknown fields (here field 99 inside the well, and field 99 of the record) are dropped.
  v1::Record with_unknown;
  ASSERT_TRUE(with_unknown.ParseFromString(std::string("\xa2\x01\x03\x98\x06\x01\x98\x06\x01", 9)));
  EXPECT_EQ(Flatten(with_unknown), fields);
}

TEST(Document, AssembleAcceptsTheMarkerTogetherWithFields) {
  FieldValues fields = Flatten(WellRecord());
  v1::Record empty_well;
  empty_well.mutable_well();
  fields["well"] = SerializeDeterministic(empty_well);
  v1::Record back;
  ASSERT_OK(Assemble(fields, &back));
  EXPECT_TRUE(MessageDifferencer::Equals(back, WellRecord())) << back.DebugString();
}

TEST(Document, AssembleClearsFirstAndIgnoresTheTombstoneAndEmptyValues) {
  FieldValues fields = Flatten(WellRecord());
  fields[kDeletedPath] = "\x01";
  fields["site_id"] = "";  // reset to default
  v1::Record back = Parse<v1::Record>(R"pb(site_id: "stale"
                                           expenditure {})pb");
  ASSERT_OK(Assemble(fields, &back));
  EXPECT_TRUE(MessageDifferencer::Equals(back, WellRecord())) << back.DebugString();
}

TEST(Document, AssembleRejectsPathsThatAreNotFieldsNamingThem) {
  for (const char* path :
       {"bogus", "well.bogus", "audit.version", "id.x", "well.yield_lph.x", ".id", "well.", ""}) {
    v1::Record out;
    EXPECT_THAT(Assemble({{path, ""}}, &out),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(std::string(path) + ": not a field of fieldsync.v1.Record")))
        << path;
  }
}

TEST(Document, AssembleRejectsValuesThatAreNotExactlyThatField) {
  v1::Record wrong_field;
  wrong_field.set_project_id("p");
  v1::Record full_well;
  full_well.mutable_well()->set_yield_lph(3);
  const std::string id_empty("\x0a\x00", 2);  // `id` on the wire but empty: sets nothing
  for (const auto& [path, value] : std::vector<std::pair<std::string, std::string>>{
           {"id", SerializeDeterministic(wrong_field)},  // the bytes of another field
           {"id", "\xff\xff\xff"},                       // not protobuf
           {"id", id_empty},
           {"id", std::string("\x0a\x01x\x98\x06\x01", 6)},  // plus an unknown field 99
           {"well.yield_lph", SerializeDeterministic(wrong_field)},
           {"well", SerializeDeterministic(full_well)},  // the marker carries no fields
       }) {
    v1::Record out;
    EXPECT_THAT(Assemble({{path, value}}, &out),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(path + ": value does not parse as exactly this field")))
        << path;
  }
}

TEST(Document, ResolvePath) {
  const auto& type = *v1::Record::descriptor();
  EXPECT_EQ(ResolvePath(type, "site_id").field, type.FindFieldByName("site_id"));
  EXPECT_EQ(ResolvePath(type, "site_id").member, nullptr);
  DocumentPath sub = ResolvePath(type, "cataract_surgery.follow_ups");
  EXPECT_EQ(sub.member, type.FindFieldByName("cataract_surgery"));
  EXPECT_EQ(sub.field, v1::CataractSurgery::descriptor()->FindFieldByName("follow_ups"));
  EXPECT_EQ(ResolvePath(type, kDeletedPath).field, nullptr);
  EXPECT_EQ(ResolvePath(*v1::Project::descriptor(), "budget.currency").field, nullptr);
}

TEST(Document, Diff) {
  FieldValues before = {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"e", ""}};
  FieldValues after = {{"a", "1"}, {"b", "20"}, {"d", "4"}, {"f", ""}};
  EXPECT_EQ(Diff(before, after), (FieldValues{{"b", "20"}, {"c", ""}, {"d", "4"}}));
  EXPECT_TRUE(Diff(after, after).empty());
}

TEST(Document, ClearOutputOnly) {
  auto record = Parse<v1::Record>(R"pb(
    id: "r"
    kind: RECORD_KIND_CATARACT_SURGERY
    record_date: "2024-01-01"
    audit { version: 7 created_by: "dev-1" }
    cataract_surgery {
      surgery_date: "2024-01-01"
      follow_ups { stage: FOLLOW_UP_STAGE_DAY_1 presenting_va: "6/9" outcome: VISUAL_OUTCOME_GOOD }
      follow_ups { stage: FOLLOW_UP_STAGE_WEEKS_1_3 outcome: VISUAL_OUTCOME_POOR }
    }
  )pb");
  ClearOutputOnly(&record);
  auto want = Parse<v1::Record>(R"pb(
    id: "r"
    cataract_surgery {
      surgery_date: "2024-01-01"
      follow_ups { stage: FOLLOW_UP_STAGE_DAY_1 presenting_va: "6/9" }
      follow_ups { stage: FOLLOW_UP_STAGE_WEEKS_1_3 }
    }
  )pb");
  EXPECT_TRUE(MessageDifferencer::Equals(record, want)) << record.DebugString();

  auto project = Parse<v1::Project>(R"pb(title: "t"
                                         audit { version: 3 })pb");
  ClearOutputOnly(&project);
  EXPECT_FALSE(project.has_audit());
  EXPECT_EQ(project.title(), "t");
  v1::Money money;  // no output-only fields: untouched
  money.set_currency("USD");
  ClearOutputOnly(&money);
  EXPECT_EQ(money.currency(), "USD");
}

TEST(Document, PrototypeFor) {
  EXPECT_EQ(PrototypeFor("partner")->GetDescriptor(), v1::Partner::descriptor());
  EXPECT_EQ(PrototypeFor("project")->GetDescriptor(), v1::Project::descriptor());
  EXPECT_EQ(PrototypeFor("site")->GetDescriptor(), v1::Site::descriptor());
  EXPECT_EQ(PrototypeFor("record")->GetDescriptor(), v1::Record::descriptor());
  EXPECT_EQ(PrototypeFor("records"), nullptr);
  EXPECT_EQ(PrototypeFor(""), nullptr);
}

TEST(Document, DeletedAndValues) {
  Document doc{"record", "r", {}};
  EXPECT_FALSE(doc.deleted());
  doc.fields["id"].value = "x";
  doc.fields["site_id"].value = "";  // reset: not a current value
  doc.fields[kDeletedPath].value = "\x01";
  EXPECT_TRUE(doc.deleted());
  EXPECT_EQ(doc.Values(), (FieldValues{{kDeletedPath, "\x01"}, {"id", "x"}}));
  doc.fields[kDeletedPath].value = "";
  EXPECT_FALSE(doc.deleted());
  EXPECT_EQ(doc.Values(), (FieldValues{{"id", "x"}}));
}

TEST(Document, CanonicalPayloadIsTheAssembledMessageAndIgnoresTheTombstone) {
  Document doc{"record", "r", {}};
  for (const auto& [path, value] : Flatten(WellRecord())) doc.fields[path].value = value;
  ASSERT_OK_AND_ASSIGN(std::string payload, CanonicalPayload(doc));
  EXPECT_EQ(payload, SerializeDeterministic(WellRecord()));
  doc.fields[kDeletedPath].value = "\x01";
  ASSERT_OK_AND_ASSIGN(std::string deleted_payload, CanonicalPayload(doc));
  EXPECT_EQ(deleted_payload, payload);

  doc.collection = "nope";
  EXPECT_THAT(CanonicalPayload(doc),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"nope\"")));
  doc.collection = "project";  // well.* are not project fields
  EXPECT_THAT(CanonicalPayload(doc),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a field of")));
}

}  // namespace
}  // namespace fieldsync::sync
