#include "fieldsync/model/visual_acuity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <string>

#include "tests/testing/status_matchers.h"

namespace fieldsync::model {
namespace {

using ::fieldsync::testing::StatusIs;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

struct Parsed {
  const char* text;
  const char* normalized;
  double decimal;
};

void PrintTo(const Parsed& p, std::ostream* os) { *os << '"' << p.text << '"'; }

class ParseAccepts : public ::testing::TestWithParam<Parsed> {};

TEST_P(ParseAccepts, NormalisesAndComputesDecimal) {
  const Parsed& p = GetParam();
  ASSERT_OK_AND_ASSIGN(VisualAcuity va, ParseVisualAcuity(p.text));
  EXPECT_EQ(va.normalized, p.normalized);
  EXPECT_NEAR(va.decimal, p.decimal, 1e-12);
}

INSTANTIATE_TEST_SUITE_P(
    Notation, ParseAccepts,
    ::testing::Values(
        // Snellen, metres and feet.
        Parsed{"6/6", "6/6", 1.0}, Parsed{"6/18", "6/18", 6.0 / 18},
        Parsed{"  6/18 ", "6/18", 6.0 / 18}, Parsed{"6 / 18", "6/18", 6.0 / 18},
        Parsed{"06/018", "6/18", 6.0 / 18}, Parsed{"20/60", "20/60", 20.0 / 60},
        Parsed{"20/200", "20/200", 0.1}, Parsed{"6/7.5", "6/7.5", 0.8},
        Parsed{"6/7.50", "6/7.5", 0.8}, Parsed{"6.0/60", "6/60", 0.1}, Parsed{"3/60", "3/60", 0.05},
        Parsed{"1/60", "1/60", 1.0 / 60}, Parsed{"4/1", "4/1", 4.0}, Parsed{"24/6", "24/6", 4.0},
        Parsed{"0.5/60", "0.5/60", 0.5 / 60},
        // logMAR, any case, with or without a sign.
        Parsed{"logMAR 0.48", "logMAR 0.48", 0.33113112148259105},
        Parsed{"logmar -0.1", "logMAR -0.1", 1.2589254117941673},
        Parsed{"LOGMAR 0.300", "logMAR 0.3", 0.5011872336272722},
        Parsed{"logMAR +0.2", "logMAR 0.2", 0.6309573444801932},
        Parsed{"logMAR -0.0", "logMAR 0", 1.0}, Parsed{"logMAR 0", "logMAR 0", 1.0},
        Parsed{"logMAR   1", "logMAR 1", 0.1}, Parsed{"logMAR3", "logMAR 3", 0.001},
        Parsed{"logMAR 3.0", "logMAR 3", 0.001},
        Parsed{"logMAR -0.3", "logMAR -0.3", 1.9952623149688795},
        Parsed{" logMAR 00.70 ", "logMAR 0.7", 0.19952623149688797},
        // Off-chart categories and their synonyms.
        Parsed{"CF", "CF", 0.014}, Parsed{"cf", "CF", 0.014}, Parsed{"HM", "HM", 0.005},
        Parsed{"hm ", "HM", 0.005}, Parsed{"PL", "PL", 0.002}, Parsed{"LP", "PL", 0.002},
        Parsed{"Pl", "PL", 0.002}, Parsed{"NPL", "NPL", 0.0}, Parsed{"nlp", "NPL", 0.0}),
    [](const ::testing::TestParamInfo<Parsed>& info) { return std::to_string(info.index); });

class ParseRejects : public ::testing::TestWithParam<const char*> {};

TEST_P(ParseRejects, AsNotANotation) {
  EXPECT_THAT(ParseVisualAcuity(GetParam(), "visit.presenting_va"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(std::string("visit.presenting_va: not a visual acuity (Snellen "
                                             "6/18, logMAR 0.3, CF, HM, PL, NPL), got \"") +
                                 GetParam() + "\"")));
}

INSTANTIATE_TEST_SUITE_P(
    Garbage, ParseRejects,
    ::testing::Values("7/3x", "6/0", "", "   ", "abc", "6/", "/6", "/", "logMAR", "logMAR x",
                      "logMAR ", "logMAR 0.3.1", "logMAR .3", "logMAR 0.", "logMAR --0.1",
                      "logMAR 1e-1", "logMAR nan", "logMAR inf", "logMAR 0x1", "logMAR 6/18", "0/6",
                      "0.0/6", "-6/18", "+6/18", "6/-18", "6/18/2", "6//18", "6.5.1/18", "1e1/18",
                      "inf/6", "nan/6", "6/inf", "six/18", "6/18 OD", "C F", "CFF", "NPLX", "6:18",
                      "0.5", "6/ 1 8", "6/000000000000000000000000000000000018",
                      // 32 characters whose normalised form ("logMAR 2.0...") would be 33.
                      "logMAR2.000000000004800000000048"),
    [](const ::testing::TestParamInfo<const char*>& info) { return std::to_string(info.index); });

TEST(ParseVisualAcuity, DefaultPathNamesTheField) {
  EXPECT_THAT(ParseVisualAcuity("abc"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("visual_acuity: not a visual acuity (Snellen 6/18, logMAR 0.3, "
                                 "CF, HM, PL, NPL), got \"abc\"")));
}

TEST(ParseVisualAcuity, LogMarOutOfRange) {
  for (const char* text : {"logMAR 3.01", "logMAR -0.31", "logMAR 10"}) {
    EXPECT_THAT(ParseVisualAcuity(text, "va"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(std::string("va: logMAR must be within [-0.3, 3.0], got \"") +
                                   text + "\"")));
  }
}

TEST(ParseVisualAcuity, SnellenAboveFourOverOne) {
  for (const char* text : {"30/6", "4.01/1", "6/1"}) {
    EXPECT_THAT(ParseVisualAcuity(text, "va"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(std::string("va: Snellen fraction must be at most 4/1, got \"") +
                                   text + "\"")));
  }
}

TEST(ParseVisualAcuity, ErrorQuotesAndEscapesTheInput) {
  EXPECT_OK(ParseVisualAcuity("6/18\n", "va"));  // surrounding space ignored
  EXPECT_THAT(ParseVisualAcuity("6/\x01", "va"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(R"(got "6/\x01")")));
  EXPECT_THAT(ParseVisualAcuity(std::string(200, '6'), "va"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("got \"" + std::string(80, '6') + "\"...")));
}

// ---------------------------------------------------------------------------------------------
// WHO outcome categories
// ---------------------------------------------------------------------------------------------

struct Categorised {
  const char* text;
  v1::VisualOutcome outcome;
};

void PrintTo(const Categorised& c, std::ostream* os) {
  *os << '"' << c.text << "\" -> " << v1::VisualOutcome_Name(c.outcome);
}

v1::VisualOutcome Outcome(const char* text, const OutcomeThresholds& t = {}) {
  absl::StatusOr<VisualAcuity> va = ParseVisualAcuity(text);
  if (!va.ok()) {
    ADD_FAILURE() << va.status();
    return v1::VISUAL_OUTCOME_UNSPECIFIED;
  }
  return OutcomeOf(*va, t);
}

class WhoOutcome : public ::testing::TestWithParam<Categorised> {};

TEST_P(WhoOutcome, WithDefaultThresholds) {
  EXPECT_EQ(Outcome(GetParam().text), GetParam().outcome);
}

INSTANTIATE_TEST_SUITE_P(
    Boundaries, WhoOutcome,
    ::testing::Values(
        Categorised{"6/6", v1::VISUAL_OUTCOME_GOOD}, Categorised{"6/12", v1::VISUAL_OUTCOME_GOOD},
        Categorised{"6/18", v1::VISUAL_OUTCOME_GOOD},
        Categorised{"6/19", v1::VISUAL_OUTCOME_BORDERLINE},
        Categorised{"6/24", v1::VISUAL_OUTCOME_BORDERLINE},
        Categorised{"6/60", v1::VISUAL_OUTCOME_BORDERLINE},
        Categorised{"6/61", v1::VISUAL_OUTCOME_POOR}, Categorised{"3/60", v1::VISUAL_OUTCOME_POOR},
        Categorised{"20/60", v1::VISUAL_OUTCOME_GOOD},
        Categorised{"20/63", v1::VISUAL_OUTCOME_BORDERLINE},
        Categorised{"20/200", v1::VISUAL_OUTCOME_BORDERLINE},
        Categorised{"20/400", v1::VISUAL_OUTCOME_POOR},
        Categorised{"logMAR 0.48", v1::VISUAL_OUTCOME_GOOD},
        Categorised{"logMAR 0.49", v1::VISUAL_OUTCOME_BORDERLINE},
        Categorised{"logMAR 1.0", v1::VISUAL_OUTCOME_BORDERLINE},
        Categorised{"logMAR 1.01", v1::VISUAL_OUTCOME_POOR},
        Categorised{"logMAR -0.3", v1::VISUAL_OUTCOME_GOOD},
        Categorised{"logMAR 3.0", v1::VISUAL_OUTCOME_POOR},
        Categorised{"CF", v1::VISUAL_OUTCOME_POOR}, Categorised{"HM", v1::VISUAL_OUTCOME_POOR},
        Categorised{"PL", v1::VISUAL_OUTCOME_POOR}, Categorised{"NPL", v1::VISUAL_OUTCOME_POOR}),
    [](const ::testing::TestParamInfo<Categorised>& info) { return std::to_string(info.index); });

TEST(OutcomeThresholds, DefaultsAreWhos) {
  OutcomeThresholds t;
  EXPECT_DOUBLE_EQ(t.good_at_least, 6.0 / 18.0);
  EXPECT_DOUBLE_EQ(t.borderline_at_least, 6.0 / 60.0);
}

// Effective cataract surgical coverage counts only 6/12 or better as good.
TEST(OutcomeOf, EffectiveCoverageThresholds) {
  const OutcomeThresholds ecsc{6.0 / 12.0, 6.0 / 60.0};
  EXPECT_EQ(Outcome("6/9", ecsc), v1::VISUAL_OUTCOME_GOOD);
  EXPECT_EQ(Outcome("6/12", ecsc), v1::VISUAL_OUTCOME_GOOD);
  EXPECT_EQ(Outcome("20/40", ecsc), v1::VISUAL_OUTCOME_GOOD);
  EXPECT_EQ(Outcome("logMAR 0.3", ecsc), v1::VISUAL_OUTCOME_GOOD);
  EXPECT_EQ(Outcome("6/13", ecsc), v1::VISUAL_OUTCOME_BORDERLINE);
  EXPECT_EQ(Outcome("logMAR 0.32", ecsc), v1::VISUAL_OUTCOME_BORDERLINE);
  EXPECT_EQ(Outcome("6/18", ecsc), v1::VISUAL_OUTCOME_BORDERLINE);
  EXPECT_EQ(Outcome("6/60", ecsc), v1::VISUAL_OUTCOME_BORDERLINE);
  EXPECT_EQ(Outcome("6/61", ecsc), v1::VISUAL_OUTCOME_POOR);
  EXPECT_EQ(Outcome("CF", ecsc), v1::VISUAL_OUTCOME_POOR);
}

TEST(OutcomeOf, WorksOnDecimalAcuityDirectly) {
  EXPECT_EQ(OutcomeOf(VisualAcuity{1.0 / 3.0, "6/18"}), v1::VISUAL_OUTCOME_GOOD);
  EXPECT_EQ(OutcomeOf(VisualAcuity{0.3, "x"}), v1::VISUAL_OUTCOME_BORDERLINE);
  EXPECT_EQ(OutcomeOf(VisualAcuity{0.0, "NPL"}), v1::VISUAL_OUTCOME_POOR);
  // Custom thresholds apply as given.
  EXPECT_EQ(OutcomeOf(VisualAcuity{0.3, "x"}, OutcomeThresholds{0.25, 0.1}),
            v1::VISUAL_OUTCOME_GOOD);
}

}  // namespace
}  // namespace fieldsync::model
