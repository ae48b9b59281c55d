// Visual acuity notation and the WHO outcome categories of cataract surgery.
//
//   auto va = ParseVisualAcuity("6/24");        // decimal 0.25
//   VisualOutcome o = OutcomeOf(*va);            // VISUAL_OUTCOME_BORDERLINE
//
// Accepted notation (case-insensitive, surrounding spaces ignored):
// - Snellen fractions "N/D" with N and D positive numbers (metres "6/18", feet "20/60",
//   decimals allowed "6/7.5"); decimal acuity = N/D, which must be <= 4 (N/D never above 4/1).
// - logMAR "logMAR 0.48" (or "logmar -0.1"), value in [-0.3, 3.0]; decimal = 10^-logMAR.
// - "CF" (counting fingers), "HM" (hand movements), "PL" or "LP" (perception of light),
//   "NPL" or "NLP" (no perception of light); these are below any chart value.
// Anything else ("7/3x", "6/0", "abc") is INVALID_ARGUMENT.
#ifndef FIELDSYNC_MODEL_VISUAL_ACUITY_H_
#define FIELDSYNC_MODEL_VISUAL_ACUITY_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "fieldsync/v1/domain.pb.h"

namespace fieldsync::model {

struct VisualAcuity {
  // Decimal acuity (1.0 = 6/6). CF 0.014, HM 0.005, PL 0.002, NPL 0 (conventional values).
  double decimal = 0;
  // Normalised notation: "6/18", "20/60", "logMAR 0.48", "CF", "HM", "PL", "NPL".
  std::string normalized;
};

// Parses `text`; the error names `path` and the value.
absl::StatusOr<VisualAcuity> ParseVisualAcuity(absl::string_view text,
                                               absl::string_view path = "visual_acuity");

// The thresholds of the WHO categories, as decimal acuity. The defaults are WHO's: good is
// 6/18 or better, borderline down to 6/60, poor below. Effective cataract surgical coverage
// (eCSC) uses a stricter good threshold of 6/12: OutcomeThresholds{6.0 / 12.0, 6.0 / 60.0}.
struct OutcomeThresholds {
  double good_at_least = 6.0 / 18.0;
  double borderline_at_least = 6.0 / 60.0;
};

// Acuities are recorded to the nearest 0.01 logMAR (one letter is 0.02), so an acuity within
// half a step, 0.005 logMAR, of a threshold counts as at the threshold: logMAR 0.48, the usual
// entry for 6/18 (logMAR 0.477), is good. As a factor on decimal acuity: 10^0.005. Everything
// that categorises acuities (OutcomeOf, the server's SQL indicators) applies it the same way:
// decimal * kOutcomeTolerance >= threshold.
inline constexpr double kOutcomeTolerance = 1.0115794542598986;

// The category of an acuity, with kOutcomeTolerance.
v1::VisualOutcome OutcomeOf(const VisualAcuity& va, const OutcomeThresholds& t = {});

}  // namespace fieldsync::model

#endif  // FIELDSYNC_MODEL_VISUAL_ACUITY_H_
