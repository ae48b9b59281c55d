#include "fieldsync/model/validate.h"

#include <gmock/gmock.h>
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"

namespace fieldsync::model {
namespace {

using ::fieldsync::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPartnerId[] = "018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e6f";
constexpr char kProjectId[] = "018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e70";
constexpr char kSiteId[] = "018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e71";
constexpr char kRecordId[] = "018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e72";
constexpr char kUserId[] = "018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e73";
constexpr char kDeviceId[] = "018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e74";

template <typename M>
M Parse(const std::string& text) {
  M message;
  if (!google::protobuf::TextFormat::ParseFromString(text, &message)) {
    ADD_FAILURE() << "bad text proto: " << text;
  }
  return message;
}

// "a" repeated `n` times (any string, in fact).
std::string Repeat(absl::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) absl::StrAppend(&out, s);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Valid baselines: each passes, and each mutation below changes one field of one of them.
// ---------------------------------------------------------------------------------------------

v1::Partner ValidPartner() {
  return Parse<v1::Partner>(
      absl::StrCat(R"pb(id: ")pb", kPartnerId, R"pb("
                                                    name: "Amani Water Trust"
                                                    countries: [ "KE", "UG", "TZ" ]
      )pb"));
}

v1::Project ValidProject() {
  return Parse<v1::Project>(absl::StrCat(R"pb(id: ")pb", kProjectId, R"pb("
                                                                          partner_id: ")pb",
                                         kPartnerId,
                                         R"pb("
                                              kind: PROJECT_KIND_WELL
                                              title: "Boreholes for Kisumu county"
                                              country: "KE"
                                              admin_area: "Kisumu"
                                              status: PROJECT_STATUS_ACTIVE
                                              start_date: "2024-01-15"
                                              end_date: "2025-06-30"
                                              budget { amount_minor: 25000000 currency: "KES" }
                                              donor: "Rotary Club of Nairobi"
                                              iati_identifier: "GB-CHC-1234567-KE-2024-01"
                                         )pb"));
}

v1::Site ValidSite() {
  return Parse<v1::Site>(absl::StrCat(R"pb(id: ")pb", kSiteId, R"pb("
                                                                    project_id: ")pb",
                                      kProjectId, R"pb("
                                                       name: "Nyalenda B borehole"
                                                       latitude_deg: -0.1022
                                                       longitude_deg: 34.7617
                                                       admin_area: "Kisumu Central"
  )pb"));
}

std::string Envelope() {
  return absl::StrCat("id: \"", kRecordId, "\" project_id: \"", kProjectId, "\" site_id: \"",
                      kSiteId, "\" ");
}

v1::Record ValidWellRecord() {
  return Parse<v1::Record>(Envelope() + R"pb(
    well {
      drilled_depth_m: 80
      static_water_level_m: 22.5
      yield_lph: 1200
      water_source: WATER_SOURCE_BOREHOLE
      extraction: EXTRACTION_TECHNOLOGY_HAND_PUMP
      functional_status: FUNCTIONAL_STATUS_FUNCTIONAL
      population_served: 450
      commissioned_date: "2023-11-02"
      visit_date: "2024-03-14"
      quality_tests {
        tested_date: "2024-03-14"
        ecoli_cfu_per_100ml: 0
        turbidity_ntu: 1.2
        fluoride_mg_per_l: 0.8
      }
      notes: "Apron cracked.\n\tCommittee informed."
    }
  )pb");
}

v1::Record ValidSurgeryRecord() {
  return Parse<v1::Record>(Envelope() + R"pb(
    cataract_surgery {
      patient_ref: "KH-PP-2024_0117"
      age_years: 67
      sex: SEX_FEMALE
      eye: EYE_RIGHT
      surgery_date: "2024-05-06"
      surgeon_ref: "S014"
      technique: SURGICAL_TECHNIQUE_SICS
      iol_implanted: true
      preop_va: "HM"
      follow_ups {
        stage: FOLLOW_UP_STAGE_DAY_1
        visit_date: "2024-05-06"
        presenting_va: "6/60"
        best_corrected_va: "6/24"
      }
      follow_ups {
        stage: FOLLOW_UP_STAGE_WEEKS_4_12
        visit_date: "2024-06-20"
        presenting_va: "logMAR 0.2"
      }
      complications: "posterior capsule rupture"
    }
  )pb");
}

v1::Record ValidDonationRecord() {
  return Parse<v1::Record>(Envelope() + R"pb(
    classroom_donation {
      school_name: "École primaire de Kanel"
      items {
        item_type: "desk"
        quantity: 40
        quantity_received: 38
        unit_value { amount_minor: 15000 currency: "XOF" }
      }
      items { item_type: "solar lamp" quantity: 120 quantity_received: 120 }
      delivered_date: "2024-02-01"
      received_by: "Head teacher"
      condition: ITEM_CONDITION_GOOD
      students_reached: 320
      teachers_trained: 6
    }
  )pb");
}

v1::Record ValidExpenditureRecord() {
  return Parse<v1::Record>(Envelope() + R"pb(
    expenditure {
      amount { amount_minor: 1250000 currency: "UGX" }
      category: EXPENDITURE_CATEGORY_TRANSPORT
      spent_date: "2024-04-30"
      receipt_ref: "RV-2024-0412"
      description: "Fuel for the outreach camp,\nthree days."
    }
  )pb");
}

v1::User ValidUser() {
  return Parse<v1::User>(
      absl::StrCat("id: \"", kUserId, "\" name: \"jane.auditor\" role: ROLE_AUDITOR"));
}

v1::User ValidFieldUser() {
  return Parse<v1::User>(absl::StrCat("id: \"", kUserId, "\" name: \"kisumu.team\"",
                                      " role: ROLE_FIELD_DEVICE partner_id: \"", kPartnerId, "\""));
}

v1::Device ValidDevice() {
  return Parse<v1::Device>(absl::StrCat("id: \"", kDeviceId, "\" partner_id: \"", kPartnerId,
                                        "\" name: \"Tablet 3, Kisumu team\""));
}

absl::Status Validate(const v1::Partner& m) { return ValidatePartner(m); }
absl::Status Validate(const v1::Project& m) { return ValidateProject(m); }
absl::Status Validate(const v1::Site& m) { return ValidateSite(m); }
absl::Status Validate(const v1::Record& m) { return ValidateRecord(m); }
absl::Status Validate(const v1::User& m) { return ValidateUser(m); }
absl::Status Validate(const v1::Device& m) { return ValidateDevice(m); }

TEST(Baselines, AreValid) {
  EXPECT_OK(ValidatePartner(ValidPartner()));
  EXPECT_OK(ValidateProject(ValidProject()));
  EXPECT_OK(ValidateSite(ValidSite()));
  EXPECT_OK(ValidateRecord(ValidWellRecord()));
  EXPECT_OK(ValidateRecord(ValidSurgeryRecord()));
  EXPECT_OK(ValidateRecord(ValidDonationRecord()));
  EXPECT_OK(ValidateRecord(ValidExpenditureRecord()));
  EXPECT_OK(ValidateUser(ValidUser()));
  EXPECT_OK(ValidateUser(ValidFieldUser()));
  EXPECT_OK(ValidateDevice(ValidDevice()));
}

TEST(Baselines, EmptyMessagesAreInvalid) {
  EXPECT_THAT(ValidatePartner({}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("partner.name: required")));
  EXPECT_THAT(ValidateProject({}), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("project.partner_id: required")));
  EXPECT_THAT(ValidateSite({}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("site.project_id: required")));
  EXPECT_THAT(ValidateRecord({}), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("record.project_id: required")));
  EXPECT_THAT(ValidateUser({}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("user.name: required")));
  EXPECT_THAT(ValidateDevice({}), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("device.partner_id: required")));
}

// ---------------------------------------------------------------------------------------------
// Mutations: one change to a valid baseline; `error` is the expected message (or its start),
// empty when the change must keep the message valid (a boundary that is allowed).
// ---------------------------------------------------------------------------------------------

template <typename M>
struct Case {
  std::string name;
  M (*baseline)();
  std::function<void(M&)> mutate;
  std::string error;
};

template <typename M>
void PrintTo(const Case<M>& c, std::ostream* os) {
  *os << c.name;
}

template <typename M>
std::string CaseName(const ::testing::TestParamInfo<Case<M>>& info) {
  return info.param.name;
}

template <typename M>
void Check(const Case<M>& c) {
  M message = c.baseline();
  ASSERT_OK(Validate(message)) << "the baseline must be valid";
  c.mutate(message);
  if (c.error.empty()) {
    EXPECT_OK(Validate(message)) << message.DebugString();
  } else {
    EXPECT_THAT(Validate(message), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.error)))
        << message.DebugString();
  }
}

// ----- Partner -------------------------------------------------------------------------------

using PartnerCase = Case<v1::Partner>;
class PartnerMutation : public ::testing::TestWithParam<PartnerCase> {};
TEST_P(PartnerMutation, Validates) { Check(GetParam()); }

const PartnerCase kPartnerCases[] = {
    {"EmptyIdIsGenerated", ValidPartner, [](v1::Partner& p) { p.clear_id(); }, ""},
    {"IdNotUuid", ValidPartner, [](v1::Partner& p) { p.set_id("abc"); },
     R"(partner.id: not a lower-case UUID, got "abc")"},
    {"IdUpperCase", ValidPartner,
     [](v1::Partner& p) { p.set_id("018F3A2C-7B1E-7C3D-9F00-1A2B3C4D5E6F"); },
     "partner.id: not a lower-case UUID"},
    {"NameEmpty", ValidPartner, [](v1::Partner& p) { p.clear_name(); }, "partner.name: required"},
    {"NameBlank", ValidPartner, [](v1::Partner& p) { p.set_name("   "); },
     R"(partner.name: must not be blank, got "   ")"},
    {"Name200Chars", ValidPartner, [](v1::Partner& p) { p.set_name(std::string(200, 'a')); }, ""},
    {"Name201Chars", ValidPartner, [](v1::Partner& p) { p.set_name(std::string(201, 'a')); },
     "partner.name: must be at most 200 characters, got 201"},
    // Length counts characters, not bytes: 200 two-byte characters fit.
    {"Name200Utf8Chars", ValidPartner, [](v1::Partner& p) { p.set_name(Repeat("é", 200)); }, ""},
    {"Name201Utf8Chars", ValidPartner, [](v1::Partner& p) { p.set_name(Repeat("é", 201)); },
     "partner.name: must be at most 200 characters, got 201"},
    {"NameControlCharacter", ValidPartner, [](v1::Partner& p) { p.set_name("a\x01z"); },
     R"(partner.name: must not contain control characters, got "a\x01z")"},
    {"NameNewline", ValidPartner, [](v1::Partner& p) { p.set_name("a\nb"); },
     R"(partner.name: must not contain control characters, got "a\nb")"},
    {"NameC1Control", ValidPartner, [](v1::Partner& p) { p.set_name("a\xC2\x85z"); },
     "partner.name: must not contain control characters"},
    {"NameInvalidUtf8", ValidPartner, [](v1::Partner& p) { p.set_name("a\xFFz"); },
     R"(partner.name: not valid UTF-8, got "a\xffz")"},
    {"NameOverlongUtf8", ValidPartner, [](v1::Partner& p) { p.set_name("\xC0\xAF"); },
     "partner.name: not valid UTF-8"},
    {"NameTruncatedUtf8", ValidPartner, [](v1::Partner& p) { p.set_name("ab\xE2\x82"); },
     "partner.name: not valid UTF-8"},
    {"NameSurrogateUtf8", ValidPartner, [](v1::Partner& p) { p.set_name("\xED\xA0\x80"); },
     "partner.name: not valid UTF-8"},
    {"NameKhmer", ValidPartner, [](v1::Partner& p) { p.set_name("មូលនិធិ 🌊"); }, ""},
    {"NoCountries", ValidPartner, [](v1::Partner& p) { p.clear_countries(); },
     "partner.countries: must have 1..60 countries, got 0"},
    {"Countries61", ValidPartner,
     [](v1::Partner& p) {
       p.clear_countries();
       for (char a = 'A'; a <= 'Z' && p.countries_size() < 61; ++a) {
         for (char b = 'A'; b <= 'Z' && p.countries_size() < 61; ++b) {
           if (IsCountryCode(std::string{a, b})) p.add_countries(std::string{a, b});
         }
       }
     },
     "partner.countries: must have at most 60 countries, got 61"},
    {"CountryUnknown", ValidPartner, [](v1::Partner& p) { p.set_countries(1, "XX"); },
     R"(partner.countries[1]: not an ISO 3166-1 alpha-2 country code, got "XX")"},
    {"CountryLowerCase", ValidPartner, [](v1::Partner& p) { p.set_countries(0, "ke"); },
     R"(partner.countries[0]: not an ISO 3166-1 alpha-2 country code, got "ke")"},
    {"CountryEmpty", ValidPartner, [](v1::Partner& p) { p.set_countries(2, ""); },
     "partner.countries[2]: required"},
    {"CountryDuplicate", ValidPartner, [](v1::Partner& p) { p.add_countries("UG"); },
     R"(partner.countries[3]: duplicate of countries[1], got "UG")"},
};
INSTANTIATE_TEST_SUITE_P(Partner, PartnerMutation, ::testing::ValuesIn(kPartnerCases),
                         CaseName<v1::Partner>);

// ----- Project -------------------------------------------------------------------------------

using ProjectCase = Case<v1::Project>;
class ProjectMutation : public ::testing::TestWithParam<ProjectCase> {};
TEST_P(ProjectMutation, Validates) { Check(GetParam()); }

const ProjectCase kProjectCases[] = {
    {"EmptyIdIsGenerated", ValidProject, [](v1::Project& p) { p.clear_id(); }, ""},
    {"IdNotUuid", ValidProject, [](v1::Project& p) { p.set_id("p-1"); },
     R"(project.id: not a lower-case UUID, got "p-1")"},
    {"PartnerIdEmpty", ValidProject, [](v1::Project& p) { p.clear_partner_id(); },
     "project.partner_id: required"},
    {"PartnerIdNotUuid", ValidProject, [](v1::Project& p) { p.set_partner_id("amani"); },
     R"(project.partner_id: not a lower-case UUID, got "amani")"},
    {"KindUnspecified", ValidProject,
     [](v1::Project& p) { p.set_kind(v1::PROJECT_KIND_UNSPECIFIED); }, "project.kind: required"},
    {"KindUnknown", ValidProject,
     [](v1::Project& p) { p.set_kind(static_cast<v1::ProjectKind>(99)); },
     "project.kind: unknown value 99"},
    {"KindNegative", ValidProject,
     [](v1::Project& p) { p.set_kind(static_cast<v1::ProjectKind>(-1)); },
     "project.kind: unknown value -1"},
    {"TitleEmpty", ValidProject, [](v1::Project& p) { p.clear_title(); },
     "project.title: required"},
    {"Title300Chars", ValidProject, [](v1::Project& p) { p.set_title(std::string(300, 't')); }, ""},
    {"Title301Chars", ValidProject, [](v1::Project& p) { p.set_title(std::string(301, 't')); },
     "project.title: must be at most 300 characters, got 301"},
    {"CountryEmpty", ValidProject, [](v1::Project& p) { p.clear_country(); },
     "project.country: required"},
    {"CountryUnknown", ValidProject, [](v1::Project& p) { p.set_country("XX"); },
     R"(project.country: not an ISO 3166-1 alpha-2 country code, got "XX")"},
    {"CountryAlpha3", ValidProject, [](v1::Project& p) { p.set_country("KEN"); },
     R"(project.country: not an ISO 3166-1 alpha-2 country code, got "KEN")"},
    {"AdminAreaEmpty", ValidProject, [](v1::Project& p) { p.clear_admin_area(); }, ""},
    {"AdminArea201Chars", ValidProject,
     [](v1::Project& p) { p.set_admin_area(std::string(201, 'a')); },
     "project.admin_area: must be at most 200 characters, got 201"},
    {"AdminAreaTab", ValidProject, [](v1::Project& p) { p.set_admin_area("Kisumu\tWest"); },
     "project.admin_area: must not contain control characters"},
    {"StatusUnspecifiedDefaultsToPlanned", ValidProject,
     [](v1::Project& p) { p.set_status(v1::PROJECT_STATUS_UNSPECIFIED); }, ""},
    {"StatusUnknown", ValidProject,
     [](v1::Project& p) { p.set_status(static_cast<v1::ProjectStatus>(5)); },
     "project.status: unknown value 5"},
    {"StartDateNotACalendarDay", ValidProject,
     [](v1::Project& p) { p.set_start_date("2024-02-30"); },
     R"(project.start_date: not a YYYY-MM-DD date in 1900..2199, got "2024-02-30")"},
    {"StartDateSlashes", ValidProject, [](v1::Project& p) { p.set_start_date("2024/01/15"); },
     "project.start_date: not a YYYY-MM-DD date"},
    {"EndDateBadFormat", ValidProject, [](v1::Project& p) { p.set_end_date("30.06.2025"); },
     R"(project.end_date: not a YYYY-MM-DD date in 1900..2199, got "30.06.2025")"},
    {"EndDateBeforeStart", ValidProject, [](v1::Project& p) { p.set_end_date("2024-01-14"); },
     R"(project.end_date: must not be before start_date 2024-01-15, got "2024-01-14")"},
    {"EndDateOnStart", ValidProject, [](v1::Project& p) { p.set_end_date("2024-01-15"); }, ""},
    {"DatesOptional", ValidProject,
     [](v1::Project& p) {
       p.clear_start_date();
       p.clear_end_date();
     },
     ""},
    {"EndDateWithoutStart", ValidProject, [](v1::Project& p) { p.clear_start_date(); }, ""},
    {"BudgetOptional", ValidProject, [](v1::Project& p) { p.clear_budget(); }, ""},
    {"BudgetZero", ValidProject, [](v1::Project& p) { p.mutable_budget()->set_amount_minor(0); },
     ""},
    {"BudgetNegative", ValidProject,
     [](v1::Project& p) { p.mutable_budget()->set_amount_minor(-1); },
     "project.budget.amount_minor: must be >= 0, got -1"},
    {"BudgetHuge", ValidProject,
     [](v1::Project& p) { p.mutable_budget()->set_amount_minor(1'000'000'000'000'001); },
     "project.budget.amount_minor: must be at most 1000000000000000, got 1000000000000001"},
    {"BudgetCurrencyEmpty", ValidProject,
     [](v1::Project& p) { p.mutable_budget()->clear_currency(); },
     "project.budget.currency: required"},
    {"BudgetCurrencyUnknown", ValidProject,
     [](v1::Project& p) { p.mutable_budget()->set_currency("ABC"); },
     R"(project.budget.currency: not an ISO 4217 currency code, got "ABC")"},
    {"BudgetCurrencyLowerCase", ValidProject,
     [](v1::Project& p) { p.mutable_budget()->set_currency("kes"); },
     R"(project.budget.currency: not an ISO 4217 currency code, got "kes")"},
    {"Donor201Chars", ValidProject, [](v1::Project& p) { p.set_donor(std::string(201, 'd')); },
     "project.donor: must be at most 200 characters, got 201"},
    {"IatiEmpty", ValidProject, [](v1::Project& p) { p.clear_iati_identifier(); }, ""},
    {"Iati151Chars", ValidProject,
     [](v1::Project& p) { p.set_iati_identifier("GB-" + std::string(148, '1')); },
     "project.iati_identifier: must be at most 150 characters, got 151"},
    {"IatiWithSpace", ValidProject, [](v1::Project& p) { p.set_iati_identifier("GB-CHC 1"); },
     "project.iati_identifier: not an IATI identifier {reporting-org}-{activity} without "
     "spaces, got \"GB-CHC 1\""},
    {"IatiWithoutHyphen", ValidProject, [](v1::Project& p) { p.set_iati_identifier("GB1234"); },
     "project.iati_identifier: not an IATI identifier"},
};
INSTANTIATE_TEST_SUITE_P(Project, ProjectMutation, ::testing::ValuesIn(kProjectCases),
                         CaseName<v1::Project>);

// ----- Site ----------------------------------------------------------------------------------

using SiteCase = Case<v1::Site>;
class SiteMutation : public ::testing::TestWithParam<SiteCase> {};
TEST_P(SiteMutation, Validates) { Check(GetParam()); }

const SiteCase kSiteCases[] = {
    {"EmptyIdIsGenerated", ValidSite, [](v1::Site& s) { s.clear_id(); }, ""},
    {"IdNotUuid", ValidSite, [](v1::Site& s) { s.set_id("site 1"); },
     R"(site.id: not a lower-case UUID, got "site 1")"},
    {"ProjectIdEmpty", ValidSite, [](v1::Site& s) { s.clear_project_id(); },
     "site.project_id: required"},
    {"ProjectIdNotUuid", ValidSite, [](v1::Site& s) { s.set_project_id("x"); },
     R"(site.project_id: not a lower-case UUID, got "x")"},
    {"NameEmpty", ValidSite, [](v1::Site& s) { s.clear_name(); }, "site.name: required"},
    {"Name201Chars", ValidSite, [](v1::Site& s) { s.set_name(std::string(201, 'n')); },
     "site.name: must be at most 200 characters, got 201"},
    {"LatitudeTooHigh", ValidSite, [](v1::Site& s) { s.set_latitude_deg(200); },
     "site.latitude_deg: must be within [-90, 90], got 200"},
    {"LatitudeTooLow", ValidSite, [](v1::Site& s) { s.set_latitude_deg(-90.5); },
     "site.latitude_deg: must be within [-90, 90], got -90.5"},
    {"LatitudeNan", ValidSite, [](v1::Site& s) { s.set_latitude_deg(std::nan("")); },
     "site.latitude_deg: must be a finite number, got nan"},
    {"LatitudeNorthPole", ValidSite, [](v1::Site& s) { s.set_latitude_deg(90); }, ""},
    {"LongitudeTooHigh", ValidSite, [](v1::Site& s) { s.set_longitude_deg(180.0001); },
     "site.longitude_deg: must be within [-180, 180], got 180.0001"},
    {"LongitudeInfinite", ValidSite, [](v1::Site& s) { s.set_longitude_deg(-HUGE_VAL); },
     "site.longitude_deg: must be a finite number, got -inf"},
    {"LongitudeAntimeridian", ValidSite, [](v1::Site& s) { s.set_longitude_deg(-180); }, ""},
    {"AdminArea201Chars", ValidSite, [](v1::Site& s) { s.set_admin_area(std::string(201, 'a')); },
     "site.admin_area: must be at most 200 characters, got 201"},
};
INSTANTIATE_TEST_SUITE_P(Site, SiteMutation, ::testing::ValuesIn(kSiteCases), CaseName<v1::Site>);

// ----- Record: envelope and bodies -----------------------------------------------------------

using RecordCase = Case<v1::Record>;
class RecordMutation : public ::testing::TestWithParam<RecordCase> {};
TEST_P(RecordMutation, Validates) { Check(GetParam()); }

v1::WellRecord& Well(v1::Record& r) { return *r.mutable_well(); }
v1::WaterQualityTest& Test0(v1::Record& r) { return *r.mutable_well()->mutable_quality_tests(0); }
v1::CataractSurgery& Surgery(v1::Record& r) { return *r.mutable_cataract_surgery(); }
v1::FollowUpVisit& Visit(v1::Record& r, int i) {
  return *r.mutable_cataract_surgery()->mutable_follow_ups(i);
}
v1::ClassroomDonation& Donation(v1::Record& r) { return *r.mutable_classroom_donation(); }
v1::DonationItem& Item0(v1::Record& r) { return *r.mutable_classroom_donation()->mutable_items(0); }
v1::Expenditure& Spend(v1::Record& r) { return *r.mutable_expenditure(); }

const RecordCase kEnvelopeCases[] = {
    {"NoBody", ValidWellRecord, [](v1::Record& r) { r.clear_body(); },
     "record.body: one of well, cataract_surgery, classroom_donation, expenditure is required"},
    {"EmptyIdIsGenerated", ValidWellRecord, [](v1::Record& r) { r.clear_id(); }, ""},
    {"IdNotUuid", ValidWellRecord, [](v1::Record& r) { r.set_id("r1"); },
     R"(record.id: not a lower-case UUID, got "r1")"},
    {"ProjectIdEmpty", ValidWellRecord, [](v1::Record& r) { r.clear_project_id(); },
     "record.project_id: required"},
    {"ProjectIdNotUuid", ValidWellRecord, [](v1::Record& r) { r.set_project_id("p"); },
     R"(record.project_id: not a lower-case UUID, got "p")"},
    {"SiteIdOptional", ValidWellRecord, [](v1::Record& r) { r.clear_site_id(); }, ""},
    {"SiteIdNotUuid", ValidWellRecord, [](v1::Record& r) { r.set_site_id("s"); },
     R"(record.site_id: not a lower-case UUID, got "s")"},
    // Output-only fields are ignored, whatever a client sends.
    {"OutputOnlyFieldsIgnored", ValidWellRecord,
     [](v1::Record& r) {
       r.set_kind(static_cast<v1::RecordKind>(42));
       r.set_record_date("garbage");
       r.mutable_audit()->set_version(-7);
     },
     ""},
};
INSTANTIATE_TEST_SUITE_P(Envelope, RecordMutation, ::testing::ValuesIn(kEnvelopeCases),
                         CaseName<v1::Record>);

const RecordCase kWellCases[] = {
    {"DepthNegative", ValidWellRecord, [](v1::Record& r) { Well(r).set_drilled_depth_m(-5); },
     "record.well.drilled_depth_m: must be within [0, 2000], got -5"},
    {"DepthTooDeep", ValidWellRecord, [](v1::Record& r) { Well(r).set_drilled_depth_m(2000.5); },
     "record.well.drilled_depth_m: must be within [0, 2000], got 2000.5"},
    {"DepthMax", ValidWellRecord, [](v1::Record& r) { Well(r).set_drilled_depth_m(2000); }, ""},
    {"DepthNan", ValidWellRecord, [](v1::Record& r) { Well(r).set_drilled_depth_m(std::nan("")); },
     "record.well.drilled_depth_m: must be a finite number, got nan"},
    {"LevelBelowDepth", ValidWellRecord,
     [](v1::Record& r) { Well(r).set_static_water_level_m(80.5); },
     "record.well.static_water_level_m: must not exceed drilled_depth_m 80, got 80.5"},
    {"LevelAtDepth", ValidWellRecord, [](v1::Record& r) { Well(r).set_static_water_level_m(80); },
     ""},
    {"LevelNegative", ValidWellRecord,
     [](v1::Record& r) { Well(r).set_static_water_level_m(-0.1); },
     "record.well.static_water_level_m: must be within [0, 2000], got -0.1"},
    {"LevelInfinite", ValidWellRecord,
     [](v1::Record& r) { Well(r).set_static_water_level_m(HUGE_VAL); },
     "record.well.static_water_level_m: must be a finite number, got inf"},
    {"YieldTooHigh", ValidWellRecord, [](v1::Record& r) { Well(r).set_yield_lph(200001); },
     "record.well.yield_lph: must be within [0, 200000], got 200001"},
    {"YieldNegative", ValidWellRecord, [](v1::Record& r) { Well(r).set_yield_lph(-1); },
     "record.well.yield_lph: must be within [0, 200000], got -1"},
    {"SourceUnspecified", ValidWellRecord,
     [](v1::Record& r) { Well(r).set_water_source(v1::WATER_SOURCE_UNSPECIFIED); },
     "record.well.water_source: required"},
    {"SourceUnknown", ValidWellRecord,
     [](v1::Record& r) { Well(r).set_water_source(static_cast<v1::WaterSource>(99)); },
     "record.well.water_source: unknown value 99"},
    {"ExtractionUnspecified", ValidWellRecord,
     [](v1::Record& r) { Well(r).set_extraction(v1::EXTRACTION_TECHNOLOGY_UNSPECIFIED); },
     "record.well.extraction: required"},
    {"ExtractionUnknown", ValidWellRecord,
     [](v1::Record& r) { Well(r).set_extraction(static_cast<v1::ExtractionTechnology>(6)); },
     "record.well.extraction: unknown value 6"},
    {"StatusUnspecified", ValidWellRecord,
     [](v1::Record& r) { Well(r).set_functional_status(v1::FUNCTIONAL_STATUS_UNSPECIFIED); },
     "record.well.functional_status: required"},
    {"StatusUnknown", ValidWellRecord,
     [](v1::Record& r) { Well(r).set_functional_status(static_cast<v1::FunctionalStatus>(99)); },
     "record.well.functional_status: unknown value 99"},
    {"PopulationNegative", ValidWellRecord,
     [](v1::Record& r) { Well(r).set_population_served(-1); },
     "record.well.population_served: must be within [0, 100000], got -1"},
    {"PopulationTooHigh", ValidWellRecord,
     [](v1::Record& r) { Well(r).set_population_served(100001); },
     "record.well.population_served: must be within [0, 100000], got 100001"},
    {"CommissionedOptional", ValidWellRecord,
     [](v1::Record& r) { Well(r).clear_commissioned_date(); }, ""},
    {"CommissionedBad", ValidWellRecord,
     [](v1::Record& r) { Well(r).set_commissioned_date("2023-11"); },
     R"(record.well.commissioned_date: not a YYYY-MM-DD date in 1900..2199, got "2023-11")"},
    {"VisitDateMissing", ValidWellRecord, [](v1::Record& r) { Well(r).clear_visit_date(); },
     "record.well.visit_date: required"},
    {"VisitDateBad", ValidWellRecord, [](v1::Record& r) { Well(r).set_visit_date("2024-13-01"); },
     R"(record.well.visit_date: not a YYYY-MM-DD date in 1900..2199, got "2024-13-01")"},
    {"NoQualityTests", ValidWellRecord, [](v1::Record& r) { Well(r).clear_quality_tests(); }, ""},
    {"FiftyQualityTests", ValidWellRecord,
     [](v1::Record& r) {
       while (Well(r).quality_tests_size() < 50) *Well(r).add_quality_tests() = Test0(r);
     },
     ""},
    {"FiftyOneQualityTests", ValidWellRecord,
     [](v1::Record& r) {
       while (Well(r).quality_tests_size() < 51) *Well(r).add_quality_tests() = Test0(r);
     },
     "record.well.quality_tests: must have at most 50 tests, got 51"},
    {"TestDateMissing", ValidWellRecord, [](v1::Record& r) { Test0(r).clear_tested_date(); },
     "record.well.quality_tests[0].tested_date: required"},
    {"SecondTestDateBad", ValidWellRecord,
     [](v1::Record& r) {
       v1::WaterQualityTest* test = Well(r).add_quality_tests();
       *test = Test0(r);
       test->set_tested_date("2023-02-29");
     },
     R"(record.well.quality_tests[1].tested_date: not a YYYY-MM-DD date in 1900..2199, got "2023-02-29")"},
    {"EcoliNegative", ValidWellRecord, [](v1::Record& r) { Test0(r).set_ecoli_cfu_per_100ml(-5); },
     "record.well.quality_tests[0].ecoli_cfu_per_100ml: must be within "
     "[0, 1000000], got -5"},
    {"EcoliNotMeasured", ValidWellRecord,
     [](v1::Record& r) { Test0(r).clear_ecoli_cfu_per_100ml(); }, ""},
    {"EcoliMinusOneIsNotNotMeasured", ValidWellRecord,
     [](v1::Record& r) { Test0(r).set_ecoli_cfu_per_100ml(-1); },
     "record.well.quality_tests[0].ecoli_cfu_per_100ml: must be within [0, 1000000], got -1"},
    {"EcoliMax", ValidWellRecord, [](v1::Record& r) { Test0(r).set_ecoli_cfu_per_100ml(1e6); }, ""},
    {"EcoliTooHigh", ValidWellRecord,
     [](v1::Record& r) { Test0(r).set_ecoli_cfu_per_100ml(1e6 + 1); },
     "record.well.quality_tests[0].ecoli_cfu_per_100ml: must be within "
     "[0, 1000000], got 1000001"},
    {"EcoliNan", ValidWellRecord,
     [](v1::Record& r) { Test0(r).set_ecoli_cfu_per_100ml(std::nan("")); },
     "record.well.quality_tests[0].ecoli_cfu_per_100ml: must be a finite number, got nan"},
    {"TurbidityTooHigh", ValidWellRecord, [](v1::Record& r) { Test0(r).set_turbidity_ntu(10001); },
     "record.well.quality_tests[0].turbidity_ntu: must be within "
     "[0, 10000], got 10001"},
    {"TurbidityNegative", ValidWellRecord,
     [](v1::Record& r) { Test0(r).set_turbidity_ntu(-0.5); },
     "record.well.quality_tests[0].turbidity_ntu: must be within "
     "[0, 10000], got -0.5"},
    {"ArsenicTooHigh", ValidWellRecord,
     [](v1::Record& r) { Test0(r).set_arsenic_ug_per_l(100001); },
     "record.well.quality_tests[0].arsenic_ug_per_l: must be within "
     "[0, 100000], got 100001"},
    {"FluorideTooHigh", ValidWellRecord,
     [](v1::Record& r) { Test0(r).set_fluoride_mg_per_l(100.5); },
     "record.well.quality_tests[0].fluoride_mg_per_l: must be within "
     "[0, 100], got 100.5"},
    {"FluorideInfinite", ValidWellRecord,
     [](v1::Record& r) { Test0(r).set_fluoride_mg_per_l(HUGE_VAL); },
     "record.well.quality_tests[0].fluoride_mg_per_l: must be a finite number, got inf"},
    {"Notes2000Chars", ValidWellRecord, [](v1::Record& r) { Well(r).set_notes(Repeat("ü", 2000)); },
     ""},
    {"Notes2001Chars", ValidWellRecord,
     [](v1::Record& r) { Well(r).set_notes(std::string(2001, 'n')); },
     "record.well.notes: must be at most 2000 characters, got 2001"},
    {"NotesBell", ValidWellRecord, [](v1::Record& r) { Well(r).set_notes("pump\x07"); },
     R"(record.well.notes: must not contain control characters, got "pump\x07")"},
    {"NotesCarriageReturn", ValidWellRecord, [](v1::Record& r) { Well(r).set_notes("a\r\nb"); },
     "record.well.notes: must not contain control characters"},
    {"NotesDelete", ValidWellRecord, [](v1::Record& r) { Well(r).set_notes("a\x7f"); },
     "record.well.notes: must not contain control characters"},
    {"NotesOnlyWhitespace", ValidWellRecord, [](v1::Record& r) { Well(r).set_notes(" \n"); }, ""},
};
INSTANTIATE_TEST_SUITE_P(Well, RecordMutation, ::testing::ValuesIn(kWellCases),
                         CaseName<v1::Record>);

const RecordCase kSurgeryCases[] = {
    {"PatientRefEmpty", ValidSurgeryRecord, [](v1::Record& r) { Surgery(r).clear_patient_ref(); },
     "record.cataract_surgery.patient_ref: required"},
    {"PatientRefSpace", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).set_patient_ref("KH 117"); },
     "record.cataract_surgery.patient_ref: must be 1..64 characters of A-Z a-z 0-9 - _, got 6 "
     "bytes (not repeated here: it identifies a patient)"},
    {"PatientRefName", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).set_patient_ref("Sok.Dara"); },
     "record.cataract_surgery.patient_ref: must be 1..64 characters of A-Z a-z 0-9 - _"},
    {"PatientRef64", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).set_patient_ref(std::string(64, 'P')); }, ""},
    {"PatientRef65", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).set_patient_ref(std::string(65, 'P')); },
     "record.cataract_surgery.patient_ref: must be 1..64 characters"},
    {"AgeNegative", ValidSurgeryRecord, [](v1::Record& r) { Surgery(r).set_age_years(-1); },
     "record.cataract_surgery.age_years: must be within [0, 120], got -1"},
    {"Age121", ValidSurgeryRecord, [](v1::Record& r) { Surgery(r).set_age_years(121); },
     "record.cataract_surgery.age_years: must be within [0, 120], got 121"},
    {"AgeZero", ValidSurgeryRecord, [](v1::Record& r) { Surgery(r).set_age_years(0); }, ""},
    {"SexUnspecified", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).set_sex(v1::SEX_UNSPECIFIED); },
     "record.cataract_surgery.sex: required"},
    {"SexUnknown", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).set_sex(static_cast<v1::Sex>(4)); },
     "record.cataract_surgery.sex: unknown value 4"},
    {"EyeUnspecified", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).set_eye(v1::EYE_UNSPECIFIED); },
     "record.cataract_surgery.eye: required"},
    {"EyeUnknown", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).set_eye(static_cast<v1::Eye>(3)); },
     "record.cataract_surgery.eye: unknown value 3"},
    {"SurgeryDateMissing", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).clear_surgery_date(); },
     "record.cataract_surgery.surgery_date: required"},
    {"SurgeryDateBad", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).set_surgery_date("2024-5-6"); },
     R"(record.cataract_surgery.surgery_date: not a YYYY-MM-DD date in 1900..2199, got "2024-5-6")"},
    {"SurgeonRefEmpty", ValidSurgeryRecord, [](v1::Record& r) { Surgery(r).clear_surgeon_ref(); },
     "record.cataract_surgery.surgeon_ref: required"},
    {"SurgeonRefName", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).set_surgeon_ref("Dr. Chan"); },
     R"(record.cataract_surgery.surgeon_ref: must be 1..64 characters of A-Z a-z 0-9 - _, got "Dr. Chan")"},
    {"TechniqueUnspecified", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).set_technique(v1::SURGICAL_TECHNIQUE_UNSPECIFIED); },
     "record.cataract_surgery.technique: required"},
    {"TechniqueUnknown", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).set_technique(static_cast<v1::SurgicalTechnique>(99)); },
     "record.cataract_surgery.technique: unknown value 99"},
    {"PreopVaOptional", ValidSurgeryRecord, [](v1::Record& r) { Surgery(r).clear_preop_va(); }, ""},
    {"PreopVaBad", ValidSurgeryRecord, [](v1::Record& r) { Surgery(r).set_preop_va("abc"); },
     "record.cataract_surgery.preop_va: not a visual acuity (Snellen 6/18, logMAR 0.3, CF, HM, "
     "PL, NPL), got \"abc\""},
    {"NoFollowUps", ValidSurgeryRecord, [](v1::Record& r) { Surgery(r).clear_follow_ups(); }, ""},
    {"AllThreeStages", ValidSurgeryRecord,
     [](v1::Record& r) {
       v1::FollowUpVisit* visit = Surgery(r).add_follow_ups();
       *visit = Visit(r, 0);
       visit->set_stage(v1::FOLLOW_UP_STAGE_WEEKS_1_3);
       visit->set_visit_date("2024-05-20");
     },
     ""},
    {"StageUnspecified", ValidSurgeryRecord,
     [](v1::Record& r) { Visit(r, 0).set_stage(v1::FOLLOW_UP_STAGE_UNSPECIFIED); },
     "record.cataract_surgery.follow_ups[0].stage: required"},
    {"StageUnknown", ValidSurgeryRecord,
     [](v1::Record& r) { Visit(r, 1).set_stage(static_cast<v1::FollowUpStage>(99)); },
     "record.cataract_surgery.follow_ups[1].stage: unknown value 99"},
    {"StageDuplicate", ValidSurgeryRecord,
     [](v1::Record& r) { Visit(r, 1).set_stage(v1::FOLLOW_UP_STAGE_DAY_1); },
     "record.cataract_surgery.follow_ups[1].stage: duplicate of follow_ups[0], got "
     "FOLLOW_UP_STAGE_DAY_1"},
    {"VisitDateMissing", ValidSurgeryRecord, [](v1::Record& r) { Visit(r, 0).clear_visit_date(); },
     "record.cataract_surgery.follow_ups[0].visit_date: required"},
    {"VisitDateBad", ValidSurgeryRecord,
     [](v1::Record& r) { Visit(r, 0).set_visit_date("2024-05-32"); },
     R"(record.cataract_surgery.follow_ups[0].visit_date: not a YYYY-MM-DD date in 1900..2199, got "2024-05-32")"},
    {"VisitBeforeSurgery", ValidSurgeryRecord,
     [](v1::Record& r) { Visit(r, 1).set_visit_date("2024-05-05"); },
     "record.cataract_surgery.follow_ups[1].visit_date: must not be before surgery_date "
     "2024-05-06, got \"2024-05-05\""},
    {"PresentingVaMissing", ValidSurgeryRecord,
     [](v1::Record& r) { Visit(r, 0).clear_presenting_va(); },
     "record.cataract_surgery.follow_ups[0].presenting_va: required"},
    {"PresentingVaBad", ValidSurgeryRecord,
     [](v1::Record& r) { Visit(r, 0).set_presenting_va("7/3x"); },
     "record.cataract_surgery.follow_ups[0].presenting_va: not a visual acuity (Snellen 6/18, "
     "logMAR 0.3, CF, HM, PL, NPL), got \"7/3x\""},
    {"PresentingVaCountingFingers", ValidSurgeryRecord,
     [](v1::Record& r) { Visit(r, 0).set_presenting_va("cf"); }, ""},
    {"PresentingVaLogMarOutOfRange", ValidSurgeryRecord,
     [](v1::Record& r) { Visit(r, 1).set_presenting_va("logMAR 3.5"); },
     "record.cataract_surgery.follow_ups[1].presenting_va: logMAR must be within [-0.3, 3.0]"},
    {"BestCorrectedVaOptional", ValidSurgeryRecord,
     [](v1::Record& r) { Visit(r, 0).clear_best_corrected_va(); }, ""},
    {"BestCorrectedVaBad", ValidSurgeryRecord,
     [](v1::Record& r) { Visit(r, 0).set_best_corrected_va("6/0"); },
     "record.cataract_surgery.follow_ups[0].best_corrected_va: not a visual acuity"},
    {"ComplicationEmpty", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).add_complications(""); },
     "record.cataract_surgery.complications[1]: required"},
    {"Complication201Chars", ValidSurgeryRecord,
     [](v1::Record& r) { Surgery(r).set_complications(0, std::string(201, 'c')); },
     "record.cataract_surgery.complications[0]: must be at most 200 characters, got 201"},
    {"NoComplications", ValidSurgeryRecord, [](v1::Record& r) { Surgery(r).clear_complications(); },
     ""},
};
INSTANTIATE_TEST_SUITE_P(CataractSurgery, RecordMutation, ::testing::ValuesIn(kSurgeryCases),
                         CaseName<v1::Record>);

const RecordCase kDonationCases[] = {
    {"SchoolNameEmpty", ValidDonationRecord, [](v1::Record& r) { Donation(r).clear_school_name(); },
     "record.classroom_donation.school_name: required"},
    {"SchoolName201Chars", ValidDonationRecord,
     [](v1::Record& r) { Donation(r).set_school_name(std::string(201, 's')); },
     "record.classroom_donation.school_name: must be at most 200 characters, got 201"},
    {"NoItems", ValidDonationRecord, [](v1::Record& r) { Donation(r).clear_items(); },
     "record.classroom_donation.items: must have 1..500 items, got 0"},
    {"FiveHundredOneItems", ValidDonationRecord,
     [](v1::Record& r) {
       while (Donation(r).items_size() < 501) *Donation(r).add_items() = Item0(r);
     },
     "record.classroom_donation.items: must have at most 500 items, got 501"},
    {"ItemTypeEmpty", ValidDonationRecord, [](v1::Record& r) { Item0(r).clear_item_type(); },
     "record.classroom_donation.items[0].item_type: required"},
    {"ItemType101Chars", ValidDonationRecord,
     [](v1::Record& r) { Item0(r).set_item_type(std::string(101, 'i')); },
     "record.classroom_donation.items[0].item_type: must be at most 100 characters, got 101"},
    {"QuantityZero", ValidDonationRecord, [](v1::Record& r) { Item0(r).set_quantity(0); },
     "record.classroom_donation.items[0].quantity: must be within [1, 100000], got 0"},
    {"QuantityTooHigh", ValidDonationRecord, [](v1::Record& r) { Item0(r).set_quantity(100001); },
     "record.classroom_donation.items[0].quantity: must be within [1, 100000], got 100001"},
    {"ReceivedMoreThanDispatched", ValidDonationRecord,
     [](v1::Record& r) { Item0(r).set_quantity_received(41); },
     "record.classroom_donation.items[0].quantity_received: must be within [0, 40], got 41"},
    {"ReceivedNegative", ValidDonationRecord,
     [](v1::Record& r) { Item0(r).set_quantity_received(-1); },
     "record.classroom_donation.items[0].quantity_received: must be within [0, 40], got -1"},
    {"ReceivedAll", ValidDonationRecord, [](v1::Record& r) { Item0(r).set_quantity_received(40); },
     ""},
    {"UnitValueOptional", ValidDonationRecord, [](v1::Record& r) { Item0(r).clear_unit_value(); },
     ""},
    {"UnitValueFree", ValidDonationRecord,
     [](v1::Record& r) { Item0(r).mutable_unit_value()->set_amount_minor(0); }, ""},
    {"UnitValueNegative", ValidDonationRecord,
     [](v1::Record& r) { Item0(r).mutable_unit_value()->set_amount_minor(-100); },
     "record.classroom_donation.items[0].unit_value.amount_minor: must be >= 0, got -100"},
    {"UnitValueCurrencyUnknown", ValidDonationRecord,
     [](v1::Record& r) { Item0(r).mutable_unit_value()->set_currency("CFA"); },
     R"(record.classroom_donation.items[0].unit_value.currency: not an ISO 4217 currency code, got "CFA")"},
    {"SecondItemBad", ValidDonationRecord,
     [](v1::Record& r) { Donation(r).mutable_items(1)->set_quantity(-3); },
     "record.classroom_donation.items[1].quantity: must be within [1, 100000], got -3"},
    {"DeliveredDateMissing", ValidDonationRecord,
     [](v1::Record& r) { Donation(r).clear_delivered_date(); },
     "record.classroom_donation.delivered_date: required"},
    {"DeliveredDateTooEarly", ValidDonationRecord,
     [](v1::Record& r) { Donation(r).set_delivered_date("1899-12-31"); },
     R"(record.classroom_donation.delivered_date: not a YYYY-MM-DD date in 1900..2199, got "1899-12-31")"},
    {"ReceivedByOptional", ValidDonationRecord,
     [](v1::Record& r) { Donation(r).clear_received_by(); }, ""},
    {"ReceivedBy101Chars", ValidDonationRecord,
     [](v1::Record& r) { Donation(r).set_received_by(std::string(101, 'r')); },
     "record.classroom_donation.received_by: must be at most 100 characters, got 101"},
    {"ConditionUnspecified", ValidDonationRecord,
     [](v1::Record& r) { Donation(r).set_condition(v1::ITEM_CONDITION_UNSPECIFIED); },
     "record.classroom_donation.condition: required"},
    {"ConditionUnknown", ValidDonationRecord,
     [](v1::Record& r) { Donation(r).set_condition(static_cast<v1::ItemCondition>(9)); },
     "record.classroom_donation.condition: unknown value 9"},
    {"StudentsTooMany", ValidDonationRecord,
     [](v1::Record& r) { Donation(r).set_students_reached(100001); },
     "record.classroom_donation.students_reached: must be within [0, 100000], got 100001"},
    {"TeachersNegative", ValidDonationRecord,
     [](v1::Record& r) { Donation(r).set_teachers_trained(-1); },
     "record.classroom_donation.teachers_trained: must be within [0, 10000], got -1"},
    {"TeachersTooMany", ValidDonationRecord,
     [](v1::Record& r) { Donation(r).set_teachers_trained(10001); },
     "record.classroom_donation.teachers_trained: must be within [0, 10000], got 10001"},
};
INSTANTIATE_TEST_SUITE_P(ClassroomDonation, RecordMutation, ::testing::ValuesIn(kDonationCases),
                         CaseName<v1::Record>);

const RecordCase kExpenditureCases[] = {
    {"AmountMissing", ValidExpenditureRecord, [](v1::Record& r) { Spend(r).clear_amount(); },
     "record.expenditure.amount: required"},
    {"AmountZero", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).mutable_amount()->set_amount_minor(0); },
     "record.expenditure.amount.amount_minor: must be > 0, got 0"},
    {"AmountNegative", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).mutable_amount()->set_amount_minor(-5); },
     "record.expenditure.amount.amount_minor: must be > 0, got -5"},
    {"AmountOneMinorUnit", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).mutable_amount()->set_amount_minor(1); }, ""},
    {"CurrencyMissing", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).mutable_amount()->clear_currency(); },
     "record.expenditure.amount.currency: required"},
    {"CurrencyLowerCase", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).mutable_amount()->set_currency("usd"); },
     R"(record.expenditure.amount.currency: not an ISO 4217 currency code, got "usd")"},
    {"CurrencyWithdrawn", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).mutable_amount()->set_currency("HRK"); },
     R"(record.expenditure.amount.currency: not an ISO 4217 currency code, got "HRK")"},
    {"CategoryUnspecified", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).set_category(v1::EXPENDITURE_CATEGORY_UNSPECIFIED); },
     "record.expenditure.category: required"},
    {"CategoryUnknown", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).set_category(static_cast<v1::ExpenditureCategory>(8)); },
     "record.expenditure.category: unknown value 8"},
    {"SpentDateMissing", ValidExpenditureRecord, [](v1::Record& r) { Spend(r).clear_spent_date(); },
     "record.expenditure.spent_date: required"},
    {"SpentDateTooLate", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).set_spent_date("2200-01-01"); },
     R"(record.expenditure.spent_date: not a YYYY-MM-DD date in 1900..2199, got "2200-01-01")"},
    {"ReceiptRef101Chars", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).set_receipt_ref(std::string(101, 'r')); },
     "record.expenditure.receipt_ref: must be at most 100 characters, got 101"},
    {"ReceiptRefNewline", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).set_receipt_ref("RV-1\nRV-2"); },
     "record.expenditure.receipt_ref: must not contain control characters"},
    {"Description500Chars", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).set_description(std::string(500, 'd')); }, ""},
    {"Description501Chars", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).set_description(std::string(501, 'd')); },
     "record.expenditure.description: must be at most 500 characters, got 501"},
    {"DescriptionEscape", ValidExpenditureRecord,
     [](v1::Record& r) { Spend(r).set_description("fuel\x1b[31m"); },
     "record.expenditure.description: must not contain control characters"},
};
INSTANTIATE_TEST_SUITE_P(Expenditure, RecordMutation, ::testing::ValuesIn(kExpenditureCases),
                         CaseName<v1::Record>);

// ----- User and device -----------------------------------------------------------------------

using UserCase = Case<v1::User>;
class UserMutation : public ::testing::TestWithParam<UserCase> {};
TEST_P(UserMutation, Validates) { Check(GetParam()); }

const UserCase kUserCases[] = {
    {"EmptyIdIsGenerated", ValidUser, [](v1::User& u) { u.clear_id(); }, ""},
    {"IdNotUuid", ValidUser, [](v1::User& u) { u.set_id("jane"); },
     R"(user.id: not a lower-case UUID, got "jane")"},
    {"NameEmpty", ValidUser, [](v1::User& u) { u.clear_name(); }, "user.name: required"},
    {"Name201Chars", ValidUser, [](v1::User& u) { u.set_name(std::string(201, 'u')); },
     "user.name: must be at most 200 characters, got 201"},
    {"RoleUnspecified", ValidUser, [](v1::User& u) { u.set_role(v1::ROLE_UNSPECIFIED); },
     "user.role: required"},
    {"RoleUnknown", ValidUser, [](v1::User& u) { u.set_role(static_cast<v1::Role>(99)); },
     "user.role: unknown value 99"},
    {"AuditorWithPartner", ValidUser, [](v1::User& u) { u.set_partner_id(kPartnerId); },
     absl::StrCat("user.partner_id: must be empty unless role is ROLE_FIELD_DEVICE, got \"",
                  kPartnerId, "\"")},
    {"AdminWithPartner", ValidUser,
     [](v1::User& u) {
       u.set_role(v1::ROLE_ADMIN);
       u.set_partner_id(kPartnerId);
     },
     "user.partner_id: must be empty unless role is ROLE_FIELD_DEVICE"},
    {"FieldUserWithoutPartner", ValidFieldUser, [](v1::User& u) { u.clear_partner_id(); },
     "user.partner_id: required"},
    {"FieldUserBadPartner", ValidFieldUser, [](v1::User& u) { u.set_partner_id("amani"); },
     R"(user.partner_id: not a lower-case UUID, got "amani")"},
    {"FieldUserBecomesViewer", ValidFieldUser,
     [](v1::User& u) {
       u.set_role(v1::ROLE_HQ_VIEWER);
       u.clear_partner_id();
     },
     ""},
};
INSTANTIATE_TEST_SUITE_P(User, UserMutation, ::testing::ValuesIn(kUserCases), CaseName<v1::User>);

using DeviceCase = Case<v1::Device>;
class DeviceMutation : public ::testing::TestWithParam<DeviceCase> {};
TEST_P(DeviceMutation, Validates) { Check(GetParam()); }

const DeviceCase kDeviceCases[] = {
    {"EmptyIdIsGenerated", ValidDevice, [](v1::Device& d) { d.clear_id(); }, ""},
    {"IdNotUuid", ValidDevice, [](v1::Device& d) { d.set_id("tablet-3"); },
     R"(device.id: not a lower-case UUID, got "tablet-3")"},
    {"PartnerIdEmpty", ValidDevice, [](v1::Device& d) { d.clear_partner_id(); },
     "device.partner_id: required"},
    {"PartnerIdNotUuid", ValidDevice, [](v1::Device& d) { d.set_partner_id("018f"); },
     R"(device.partner_id: not a lower-case UUID, got "018f")"},
    {"NameEmpty", ValidDevice, [](v1::Device& d) { d.clear_name(); }, "device.name: required"},
    {"Name201Chars", ValidDevice, [](v1::Device& d) { d.set_name(std::string(201, 'd')); },
     "device.name: must be at most 200 characters, got 201"},
};
INSTANTIATE_TEST_SUITE_P(Device, DeviceMutation, ::testing::ValuesIn(kDeviceCases),
                         CaseName<v1::Device>);

// ---------------------------------------------------------------------------------------------
// Error messages
// ---------------------------------------------------------------------------------------------

TEST(ErrorMessage, LongValuesAreTruncated) {
  v1::User user = ValidUser();
  user.set_partner_id(std::string(500, 'x'));
  absl::Status status = ValidateUser(user);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr(absl::StrCat("got \"", std::string(80, 'x'), "\"..."))));
  EXPECT_LT(status.message().size(), 200u);
}

TEST(ErrorMessage, TruncationKeepsUtf8Whole) {
  v1::User user = ValidUser();
  user.set_partner_id("x" + Repeat("é", 100));  // the 80-byte cut falls inside a character
  absl::Status status = ValidateUser(user);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr(absl::StrCat("got \"x", Repeat("é", 39), "\"..."))));
}

TEST(ErrorMessage, ReportsOnlyTheFirstProblem) {
  v1::Record record = ValidWellRecord();
  record.mutable_well()->set_drilled_depth_m(-5);
  record.mutable_well()->set_yield_lph(-5);
  absl::Status status = ValidateRecord(record);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr("record.well.drilled_depth_m")));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("yield_lph")));
}

// ---------------------------------------------------------------------------------------------
// Ids and dates
// ---------------------------------------------------------------------------------------------

TEST(ValidateId, EmptyOnlyWhenAllowed) {
  EXPECT_OK(ValidateId("x.id", "", /*allow_empty=*/true));
  EXPECT_THAT(ValidateId("x.id", "", /*allow_empty=*/false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x.id: required")));
}

TEST(ValidateId, RequiresCanonicalLowerCaseUuid) {
  EXPECT_OK(ValidateId("x.id", kPartnerId, false));
  EXPECT_OK(ValidateId("x.id", kPartnerId, true));
  for (const char* bad :
       {"018F3A2C-7B1E-7C3D-9F00-1A2B3C4D5E6F", "018f3a2c7b1e7c3d9f001a2b3c4d5e6f",
        "{018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e6f}", " ", "null"}) {
    EXPECT_THAT(
        ValidateId("x.id", bad, true),
        StatusIs(absl::StatusCode::kInvalidArgument,
                 HasSubstr(absl::StrCat("x.id: not a lower-case UUID, got \"", bad, "\""))));
  }
}

TEST(IsDate, AcceptsRealCalendarDays) {
  for (const char* date : {"2024-02-29", "2000-02-29", "1900-01-01", "2199-12-31", "2023-12-31",
                           "2024-04-30", "2024-01-31"}) {
    EXPECT_TRUE(IsDate(date)) << date;
  }
}

TEST(IsDate, RejectsEverythingElse) {
  for (const char* date :
       {"",           "2023-02-29", "1900-02-29",       "2100-02-29",  "2024-02-30",
        "2024-04-31", "2024-06-31", "2024-00-10",       "2024-13-01",  "2024-01-00",
        "2024-01-32", "1899-12-31", "2200-01-01",       "2024-1-01",   "2024-01-1",
        "24-01-01",   "2024/01/01", "2024-01-01T00:00", " 2024-01-01", "2024-01-01 ",
        "2024-0a-01", "+024-01-01", "2024-01--1",       "20240101"}) {
    EXPECT_FALSE(IsDate(date)) << date;
  }
}

TEST(ValidateOptionalDate, EmptyIsFine) { EXPECT_OK(ValidateOptionalDate("filter.from_date", "")); }

TEST(ValidateOptionalDate, NamesThePath) {
  EXPECT_OK(ValidateOptionalDate("filter.from_date", "2024-03-01"));
  EXPECT_THAT(ValidateOptionalDate("filter.from_date", "2024-02-31"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("filter.from_date: not a YYYY-MM-DD date in 1900..2199, got "
                                 "\"2024-02-31\"")));
}

// ---------------------------------------------------------------------------------------------
// ISO codes
// ---------------------------------------------------------------------------------------------

int CountCodes(int length, bool (*is_code)(absl::string_view)) {
  int count = 0;
  std::string code(length, 'A');
  std::function<void(int)> fill = [&](int position) {
    if (position == length) {
      count += is_code(code) ? 1 : 0;
      return;
    }
    for (char ch = 'A'; ch <= 'Z'; ++ch) {
      code[position] = ch;
      fill(position + 1);
    }
  };
  fill(0);
  return count;
}

TEST(IsCountryCode, KnowsTheAssignedCodes) {
  for (const char* code : {"KE", "VN", "KH", "UG", "TZ", "SN", "US", "GB", "SS", "TL", "CW", "SX",
                           "BQ", "PS", "EH", "AX", "ZW", "AD", "AQ"}) {
    EXPECT_TRUE(IsCountryCode(code)) << code;
  }
  for (const char* code : {"", "K", "KEN", "ke", "Ke", "XX", "UK", "XK", "EU", "ZZ", "AN", "YU",
                           "CS", "TP", "K1", "AA"}) {
    EXPECT_FALSE(IsCountryCode(code)) << code;
  }
}

TEST(IsCountryCode, Has249Codes) { EXPECT_EQ(CountCodes(2, IsCountryCode), 249); }

TEST(IsCurrencyCode, KnowsActiveCodes) {
  for (const char* code : {"USD", "EUR", "KES", "UGX", "TZS", "VND", "KHR", "XOF", "XAF", "ETB",
                           "SSP", "SLE", "VES", "MRU", "STN", "ZWG", "XCG", "ZMW"}) {
    EXPECT_TRUE(IsCurrencyCode(code)) << code;
  }
  for (const char* code : {"", "US", "USDD", "usd", "Usd", "ABC", "HRK", "LTL", "ZMK", "MRO", "STD",
                           "VEF", "XAU", "XTS", "XXX", "XDR", "BTC"}) {
    EXPECT_FALSE(IsCurrencyCode(code)) << code;
  }
}

TEST(IsCurrencyCode, Has169Codes) { EXPECT_EQ(CountCodes(3, IsCurrencyCode), 169); }

TEST(CurrencyMinorUnits, FollowsIso4217) {
  struct Expected {
    const char* code;
    int minor_units;
  };
  for (const Expected& e : std::vector<Expected>{
           {"USD", 2}, {"EUR", 2}, {"KES", 2}, {"UGX", 0},  {"VND", 0},  {"RWF", 0}, {"XOF", 0},
           {"XAF", 0}, {"JPY", 0}, {"KRW", 0}, {"BHD", 3},  {"KWD", 3},  {"TND", 3}, {"CLF", 4},
           {"UYW", 4}, {"KHR", 2}, {"MGA", 2}, {"usd", -1}, {"XAU", -1}, {"", -1}}) {
    EXPECT_EQ(CurrencyMinorUnits(e.code), e.minor_units) << e.code;
  }
}

// ---------------------------------------------------------------------------------------------
// Derived values
// ---------------------------------------------------------------------------------------------

TEST(KindOf, FollowsTheBody) {
  EXPECT_EQ(KindOf(ValidWellRecord()), v1::RECORD_KIND_WELL);
  EXPECT_EQ(KindOf(ValidSurgeryRecord()), v1::RECORD_KIND_CATARACT_SURGERY);
  EXPECT_EQ(KindOf(ValidDonationRecord()), v1::RECORD_KIND_CLASSROOM_DONATION);
  EXPECT_EQ(KindOf(ValidExpenditureRecord()), v1::RECORD_KIND_EXPENDITURE);
  EXPECT_EQ(KindOf(v1::Record()), v1::RECORD_KIND_UNSPECIFIED);
  v1::Record lying = ValidWellRecord();
  lying.set_kind(v1::RECORD_KIND_EXPENDITURE);  // output only: the body decides
  EXPECT_EQ(KindOf(lying), v1::RECORD_KIND_WELL);
}

TEST(RecordDateOf, IsTheBodysOwnDate) {
  EXPECT_EQ(RecordDateOf(ValidWellRecord()), "2024-03-14");
  EXPECT_EQ(RecordDateOf(ValidSurgeryRecord()), "2024-05-06");
  EXPECT_EQ(RecordDateOf(ValidDonationRecord()), "2024-02-01");
  EXPECT_EQ(RecordDateOf(ValidExpenditureRecord()), "2024-04-30");
  EXPECT_EQ(RecordDateOf(v1::Record()), "");
  v1::Record lying = ValidWellRecord();
  lying.set_record_date("1999-01-01");
  EXPECT_EQ(RecordDateOf(lying), "2024-03-14");
}

TEST(ProjectKindFor, MapsEachRecordKind) {
  EXPECT_EQ(ProjectKindFor(v1::RECORD_KIND_WELL), v1::PROJECT_KIND_WELL);
  EXPECT_EQ(ProjectKindFor(v1::RECORD_KIND_CATARACT_SURGERY), v1::PROJECT_KIND_CATARACT);
  EXPECT_EQ(ProjectKindFor(v1::RECORD_KIND_CLASSROOM_DONATION), v1::PROJECT_KIND_CLASSROOM);
  EXPECT_EQ(ProjectKindFor(v1::RECORD_KIND_EXPENDITURE), v1::PROJECT_KIND_UNSPECIFIED);
  EXPECT_EQ(ProjectKindFor(v1::RECORD_KIND_UNSPECIFIED), v1::PROJECT_KIND_UNSPECIFIED);
  EXPECT_EQ(ProjectKindFor(static_cast<v1::RecordKind>(99)), v1::PROJECT_KIND_UNSPECIFIED);
}

// An enum value unknown to this build survives parsing (proto3 enums are open) and is rejected.
TEST(UnknownEnums, FromTheWireAreRejected) {
  v1::User user = ValidUser();
  std::string bytes = user.SerializeAsString();
  bytes += std::string("\x18\x63", 2);  // field 3 (role), varint 99: the last value wins
  v1::User parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(static_cast<int>(parsed.role()), 99);
  EXPECT_THAT(ValidateUser(parsed), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("user.role: unknown value 99")));
}

// --- Caps on lists and documents (one table in validate.cc) ---------------------------------

TEST(DocumentLimitsTest, EveryRepeatedFieldOfEveryDocumentHasACap) {
  std::vector<const google::protobuf::Descriptor*> todo = {
      v1::Partner::descriptor(), v1::Project::descriptor(), v1::Site::descriptor(),
      v1::Record::descriptor(),  v1::User::descriptor(),    v1::Device::descriptor()};
  std::set<const google::protobuf::Descriptor*> seen;
  int repeated = 0;
  while (!todo.empty()) {
    const google::protobuf::Descriptor* d = todo.back();
    todo.pop_back();
    if (!seen.insert(d).second) continue;
    for (int i = 0; i < d->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* f = d->field(i);
      if (f->is_repeated()) {
        ++repeated;
        EXPECT_GT(MaxEntries(*f), 0)
            << f->full_name() << " has no cap: add it to kMaxEntries in model/validate.cc";
      }
      if (f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
        todo.push_back(f->message_type());
      }
    }
  }
  EXPECT_GE(repeated, 5);  // the walk reached the record bodies
}

TEST(DocumentLimitsTest, ListsOverTheirCapAreRefusedNamingTheField) {
  v1::Record surgery = ValidSurgeryRecord();
  surgery.mutable_cataract_surgery()->clear_complications();
  for (int i = 0; i < 300'000; ++i) surgery.mutable_cataract_surgery()->add_complications("x");
  EXPECT_THAT(ValidateRecord(surgery),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record.cataract_surgery.complications: must have at most 20 "
                                 "complications, got 300000")));

  v1::Record visits = ValidSurgeryRecord();
  while (visits.cataract_surgery().follow_ups_size() < 11) {
    *visits.mutable_cataract_surgery()->add_follow_ups() = visits.cataract_surgery().follow_ups(0);
  }
  EXPECT_THAT(ValidateRecord(visits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record.cataract_surgery.follow_ups: must have at most 10")));
}

TEST(DocumentLimitsTest, DocumentsOverTheSizeCapAreRefused) {
  // Every field is capped on its own; unknown fields (from a newer app, or hostile) are not.
  v1::Record record = ValidWellRecord();
  record.GetReflection()->MutableUnknownFields(&record)->AddLengthDelimited(
      999, std::string(kMaxDocumentBytes, 'x'));
  EXPECT_THAT(ValidateRecord(record),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("record: a document may have at most ",
                                              kMaxDocumentBytes, " bytes, got "))));
  v1::Partner partner = ValidPartner();
  partner.GetReflection()->MutableUnknownFields(&partner)->AddLengthDelimited(
      999, std::string(kMaxDocumentBytes, 'x'));
  EXPECT_THAT(ValidatePartner(partner),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("partner: a document")));
}

}  // namespace
}  // namespace fieldsync::model
