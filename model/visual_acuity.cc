#include "fieldsync/model/visual_acuity.h"

#include <cmath>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace fieldsync::model {
namespace {

// Longer input is not a notation anyone writes; the limit also keeps numbers small.
constexpr size_t kMaxTextLength = 32;
constexpr double kMinLogMar = -0.3;
constexpr double kMaxLogMar = 3.0;
constexpr double kMaxSnellenDecimal = 4.0;


struct Category {
  absl::string_view spelling;  // lower case
  double decimal;
  absl::string_view normalized;
};

// Off-chart acuities with their conventional decimal values.
constexpr Category kCategories[] = {
    {"cf", 0.014, "CF"}, {"hm", 0.005, "HM"}, {"pl", 0.002, "PL"},
    {"lp", 0.002, "PL"}, {"npl", 0.0, "NPL"}, {"nlp", 0.0, "NPL"},
};

// `text` quoted for an error message, escaped and cut to about 80 bytes.
std::string Quote(absl::string_view text) {
  if (text.size() <= 80) return absl::StrCat("\"", absl::CHexEscape(text), "\"");
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, 80)), "\"...");
}

absl::Status Invalid(absl::string_view path, absl::string_view what, absl::string_view text) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what, ", got ", Quote(text)));
}

absl::Status NotANotation(absl::string_view path, absl::string_view text) {
  return Invalid(path, "not a visual acuity (Snellen 6/18, logMAR 0.3, CF, HM, PL, NPL)", text);
}

bool IsDigit(char ch) { return ch >= '0' && ch <= '9'; }

// A plain decimal number: digits, optionally a point followed by digits ("18", "7.5"), after
// a '+' or '-' sign when `signed_ok`. No exponents, "inf" or "nan", unlike strtod.
bool IsPlainDecimal(absl::string_view s, bool signed_ok) {
  if (signed_ok && !s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  size_t i = 0;
  while (i < s.size() && IsDigit(s[i])) ++i;
  if (i == 0) return false;
  if (i == s.size()) return true;
  if (s[i] != '.') return false;
  size_t fraction = ++i;
  while (i < s.size() && IsDigit(s[i])) ++i;
  return i == s.size() && i > fraction;
}

// A plain decimal (see IsPlainDecimal) written the shortest way: without '+', leading zeros
// or trailing fractional zeros, and "0" for minus zero: "06.50" -> "6.5", "-0.0" -> "0".
std::string NormalizeDecimal(absl::string_view s) {
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  absl::string_view whole = s, fraction;
  if (size_t point = s.find('.'); point != absl::string_view::npos) {
    whole = s.substr(0, point);
    fraction = s.substr(point + 1);
  }
  while (whole.size() > 1 && whole[0] == '0') whole.remove_prefix(1);
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  std::string out(whole);
  if (!fraction.empty()) absl::StrAppend(&out, ".", fraction);
  if (negative && out != "0") out.insert(0, "-");
  return out;
}

// Parses a plain decimal known to be valid.
double DecimalValue(absl::string_view normalized) {
  double v = 0;
  (void)absl::SimpleAtod(normalized, &v);  // cannot fail on a plain decimal
  return v;
}

absl::StatusOr<VisualAcuity> ParseLogMar(absl::string_view text, absl::string_view number,
                                         absl::string_view path) {
  number = absl::StripAsciiWhitespace(number);
  if (!IsPlainDecimal(number, /*signed_ok=*/true)) return NotANotation(path, text);
  VisualAcuity va;
  const std::string normalized = NormalizeDecimal(number);
  const double logmar = DecimalValue(normalized);
  if (logmar < kMinLogMar || logmar > kMaxLogMar) {
    return Invalid(path, "logMAR must be within [-0.3, 3.0]", text);
  }
  va.decimal = std::pow(10.0, -logmar);
  va.normalized = absl::StrCat("logMAR ", normalized);
  // "logMAR2.0...1" of the maximum length normalises one longer ("logMAR 2.0...1"): refuse it,
  // so that every accepted notation's normalised form is accepted too (found by fuzzing).
  if (va.normalized.size() > kMaxTextLength) return NotANotation(path, text);
  return va;
}

// `fraction` is `text` without surrounding spaces.
absl::StatusOr<VisualAcuity> ParseSnellen(absl::string_view text, absl::string_view fraction,
                                          absl::string_view path) {
  const size_t slash = fraction.find('/');
  if (slash == absl::string_view::npos) return NotANotation(path, text);
  const absl::string_view numerator = absl::StripAsciiWhitespace(fraction.substr(0, slash));
  const absl::string_view denominator = absl::StripAsciiWhitespace(fraction.substr(slash + 1));
  if (!IsPlainDecimal(numerator, false) || !IsPlainDecimal(denominator, false)) {
    return NotANotation(path, text);
  }
  const std::string n = NormalizeDecimal(numerator);
  const std::string d = NormalizeDecimal(denominator);
  const double n_value = DecimalValue(n);
  const double d_value = DecimalValue(d);
  if (n_value <= 0 || d_value <= 0) return NotANotation(path, text);
  VisualAcuity va;
  va.decimal = n_value / d_value;
  if (va.decimal > kMaxSnellenDecimal) {
    return Invalid(path, "Snellen fraction must be at most 4/1", text);
  }
  va.normalized = absl::StrCat(n, "/", d);
  return va;
}

}  // namespace

absl::StatusOr<VisualAcuity> ParseVisualAcuity(absl::string_view text, absl::string_view path) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  if (trimmed.empty() || trimmed.size() > kMaxTextLength) return NotANotation(path, text);
  const std::string lower = absl::AsciiStrToLower(trimmed);
  for (const Category& category : kCategories) {
    if (lower == category.spelling) {
      return VisualAcuity{category.decimal, std::string(category.normalized)};
    }
  }
  constexpr absl::string_view kLogMar = "logmar";
  if (absl::StartsWith(lower, kLogMar)) {
    return ParseLogMar(text, trimmed.substr(kLogMar.size()), path);
  }
  return ParseSnellen(text, trimmed, path);
}

v1::VisualOutcome OutcomeOf(const VisualAcuity& va, const OutcomeThresholds& t) {
  const double decimal = va.decimal * kOutcomeTolerance;
  if (decimal >= t.good_at_least) return v1::VISUAL_OUTCOME_GOOD;
  if (decimal >= t.borderline_at_least) return v1::VISUAL_OUTCOME_BORDERLINE;
  return v1::VISUAL_OUTCOME_POOR;
}

}  // namespace fieldsync::model
