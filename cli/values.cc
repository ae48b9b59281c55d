#include "cli/values.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/errors.h"

namespace fieldsync::cli {
namespace {

absl::Status Bad(absl::string_view flag, absl::string_view what, absl::string_view text) {
  return UsageError(absl::StrCat("--", flag, ": ", what, ", got '", text, "'"));
}

bool IsLeapYear(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

// "ProjectKind" -> "PROJECT_KIND_".
std::string EnumPrefix(const google::protobuf::EnumDescriptor* type) {
  std::string prefix;
  for (char c : type->name()) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c)) && !prefix.empty()) prefix += '_';
    prefix += absl::ascii_toupper(static_cast<unsigned char>(c));
  }
  return prefix + "_";
}

std::string ShortName(const google::protobuf::EnumValueDescriptor* value) {
  absl::string_view name = value->name();
  absl::ConsumePrefix(&name, EnumPrefix(value->type()));
  return absl::AsciiStrToLower(name);
}

}  // namespace

absl::StatusOr<double> ParseDouble(absl::string_view flag, absl::string_view text) {
  double value = 0;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) {
    return Bad(flag, "must be a number", text);
  }
  return value;
}

absl::StatusOr<int64_t> ParseInt(absl::string_view flag, absl::string_view text, int64_t min,
                                 int64_t max) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
    return Bad(flag, absl::StrCat("must be a whole number from ", min, " to ", max), text);
  }
  return value;
}

absl::StatusOr<std::string> ParseDate(absl::string_view flag, absl::string_view text) {
  auto bad = [&] { return Bad(flag, "must be a date YYYY-MM-DD", text); };
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return bad();
  int year = 0, month = 0, day = 0;
  if (!absl::SimpleAtoi(text.substr(0, 4), &year) || !absl::SimpleAtoi(text.substr(5, 2), &month) ||
      !absl::SimpleAtoi(text.substr(8, 2), &day)) {
    return bad();
  }
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) return bad();
  }
  static constexpr int kDaysIn[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12) return bad();
  int days = kDaysIn[month - 1] + (month == 2 && IsLeapYear(year) ? 1 : 0);
  if (day < 1 || day > days) return bad();
  return std::string(text);
}

absl::StatusOr<int64_t> ParseDurationSeconds(absl::string_view flag, absl::string_view text) {
  if (text == "never") return 0;
  absl::string_view number = text;
  int64_t unit = 1;
  if (!number.empty()) {
    switch (number.back()) {
      case 'd':
        unit = 86400;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'm':
        unit = 60;
        break;
      case 's':
        unit = 1;
        break;
      default:
        unit = 0;
        break;
    }
    if (unit != 0) {
      number.remove_suffix(1);
    } else {
      unit = 1;
    }
  }
  int64_t count = 0;
  // At most ten years, which is also the server's limit.
  constexpr int64_t kMaxSeconds = int64_t{10} * 366 * 86400;
  if (!absl::SimpleAtoi(number, &count) || count <= 0 || count > kMaxSeconds / unit) {
    return Bad(flag, "must be a duration like 30d, 12h, 90m or 3600s (at most 10 years), or never",
               text);
  }
  return count * unit;
}

absl::StatusOr<std::vector<std::string>> ParseCodeList(absl::string_view flag,
                                                       absl::string_view text) {
  std::vector<std::string> codes;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    codes.push_back(absl::AsciiStrToUpper(part));
  }
  if (codes.empty()) return Bad(flag, "must list at least one code, like KE,UG", text);
  return codes;
}

absl::StatusOr<int> ParseEnum(absl::string_view flag, absl::string_view text,
                              const google::protobuf::EnumDescriptor* type,
                              const EnumAliases& aliases) {
  std::vector<std::string> choices;
  if (!aliases.empty()) {
    for (const auto& [name, number] : aliases) {
      if (absl::EqualsIgnoreCase(text, name)) return number;
      choices.push_back(name);
    }
  }
  for (int i = 0; i < type->value_count(); ++i) {
    const google::protobuf::EnumValueDescriptor* value = type->value(i);
    if (value->number() == 0) continue;
    std::string label = ShortName(value);
    if (absl::EqualsIgnoreCase(text, label) || absl::EqualsIgnoreCase(text, value->name())) {
      return value->number();
    }
    if (aliases.empty()) choices.push_back(label);
  }
  return Bad(flag, absl::StrCat("must be one of ", absl::StrJoin(choices, ", ")), text);
}

std::string EnumLabel(const google::protobuf::EnumDescriptor* type, int number) {
  const google::protobuf::EnumValueDescriptor* value = type->FindValueByNumber(number);
  if (value == nullptr) return absl::StrCat(number);
  if (absl::EndsWith(value->name(), "_UNSPECIFIED")) return "";
  return ShortName(value);
}

}  // namespace fieldsync::cli
