// Visual acuity notation as eye teams type it into a cataract follow-up ("6/18", "20/60",
// "logMAR 0.48", "CF", ...): model::ParseVisualAcuity on any text.
//
// Checked: nothing crashes (no overflow, no NaN); a refusal is INVALID_ARGUMENT naming the
// path; an accepted acuity has a finite decimal in [0, 4] and a normalised notation that parses
// again to the same decimal and the same WHO category.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "fieldsync/model/visual_acuity.h"

namespace {

[[noreturn]] void Fail(const char* what, absl::string_view text) {
  std::fprintf(stderr, "visual_acuity_fuzzer: %s: \"%.*s\"\n", what,
               static_cast<int>(text.size()), text.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldsync::model;
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<VisualAcuity> va = ParseVisualAcuity(text, "va");
  if (!va.ok()) {
    if (va.status().code() != absl::StatusCode::kInvalidArgument ||
        !absl::StartsWith(va.status().message(), "va")) {
      Fail("odd refusal", text);
    }
    return 0;
  }
  if (!std::isfinite(va->decimal) || va->decimal < 0 || va->decimal > 4) {
    Fail("decimal out of range", text);
  }
  absl::StatusOr<VisualAcuity> again = ParseVisualAcuity(va->normalized, "va");
  if (!again.ok()) Fail("the normalised notation does not parse", text);
  if (std::fabs(again->decimal - va->decimal) > 1e-9 * std::max(1.0, va->decimal) ||
      again->normalized != va->normalized) {
    Fail("the normalised notation parses differently", text);
  }
  if (OutcomeOf(*again) != OutcomeOf(*va)) Fail("the category changes on re-parsing", text);
  return 0;
}
