#include "cli/money.h"

#include <cstdlib>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace fieldsync::cli {
namespace {

struct CurrencyDigits {
  const char* code;
  int digits;
};

// The ISO 4217 currencies whose minor unit is not 2 digits (list of 2023). Everything else,
// including unknown codes, is treated as 2 digits; the server rejects unknown codes anyway.
constexpr CurrencyDigits kNonTwoDigit[] = {
    {"BIF", 0}, {"CLP", 0}, {"DJF", 0}, {"GNF", 0}, {"ISK", 0}, {"JPY", 0}, {"KMF", 0},
    {"KRW", 0}, {"PYG", 0}, {"RWF", 0}, {"UGX", 0}, {"UYI", 0}, {"VND", 0}, {"VUV", 0},
    {"XAF", 0}, {"XOF", 0}, {"XPF", 0}, {"BHD", 3}, {"IQD", 3}, {"JOD", 3}, {"KWD", 3},
    {"LYD", 3}, {"OMR", 3}, {"TND", 3}, {"CLF", 4}, {"UYW", 4},
};

}  // namespace

int MinorUnitDigits(absl::string_view currency) {
  for (const CurrencyDigits& entry : kNonTwoDigit) {
    if (currency == entry.code) return entry.digits;
  }
  return 2;
}

absl::StatusOr<int64_t> ParseMajorAmount(absl::string_view text, absl::string_view currency) {
  const int digits = MinorUnitDigits(currency);
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(why, ", got '", text, "'"));
  };
  absl::string_view whole = text;
  absl::string_view fraction;
  if (size_t dot = text.find('.'); dot != absl::string_view::npos) {
    whole = text.substr(0, dot);
    fraction = text.substr(dot + 1);
    if (fraction.empty()) return bad("must be a decimal amount like 1234.50");
  }
  if (whole.empty()) return bad("must be a decimal amount like 1234.50");
  for (absl::string_view part : {whole, fraction}) {
    for (char c : part) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
        return bad("must be a decimal amount like 1234.50 (no sign, separators or exponent)");
      }
    }
  }
  if (static_cast<int>(fraction.size()) > digits) {
    if (digits == 0) {
      return bad(absl::StrCat(currency, " has no minor unit; give a whole amount"));
    }
    return bad(absl::StrCat(currency, " has ", digits, " decimals"));
  }
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t minor = 0;
  auto append_digit = [&](char c) {
    int d = c - '0';
    if (minor > (kMax - d) / 10) return false;
    minor = minor * 10 + d;
    return true;
  };
  for (char c : whole) {
    if (!append_digit(c)) return bad("is too large");
  }
  for (int i = 0; i < digits; ++i) {
    char c = i < static_cast<int>(fraction.size()) ? fraction[i] : '0';
    if (!append_digit(c)) return bad("is too large");
  }
  return minor;
}

std::string FormatAmount(int64_t amount_minor, absl::string_view currency) {
  const int digits = MinorUnitDigits(currency);
  // Work on the magnitude as unsigned so that INT64_MIN formats too.
  uint64_t magnitude = amount_minor < 0 ? 0 - static_cast<uint64_t>(amount_minor)
                                        : static_cast<uint64_t>(amount_minor);
  std::string number = absl::StrCat(magnitude);
  if (static_cast<int>(number.size()) <= digits) {
    number.insert(0, digits + 1 - number.size(), '0');
  }
  std::string whole = number.substr(0, number.size() - digits);
  std::string fraction = number.substr(number.size() - digits);
  std::string grouped;
  for (size_t i = 0; i < whole.size(); ++i) {
    if (i > 0 && (whole.size() - i) % 3 == 0) grouped += ',';
    grouped += whole[i];
  }
  std::string text = absl::StrCat(amount_minor < 0 ? "-" : "", grouped);
  if (digits > 0) absl::StrAppend(&text, ".", fraction);
  return text;
}

std::string FormatMoney(int64_t amount_minor, absl::string_view currency) {
  std::string text = FormatAmount(amount_minor, currency);
  if (!currency.empty()) absl::StrAppend(&text, " ", currency);
  return text;
}

}  // namespace fieldsync::cli
