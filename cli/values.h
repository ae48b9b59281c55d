// Parsing of option values (dates, numbers, durations, enum names) into what the requests need.
// Every error is a usage error (exit code 2) whose message starts with the option:
// "--lat: must be a number, got 'north'".
//
//   FS_ASSIGN_OR_RETURN(int64_t ttl, ParseDurationSeconds("ttl", "30d"));    // 2592000
//   FS_ASSIGN_OR_RETURN(int kind, ParseEnum("kind", "well", v1::ProjectKind_descriptor()));
#ifndef FIELDSYNC_CLI_VALUES_H_
#define FIELDSYNC_CLI_VALUES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/generated_enum_reflection.h"

namespace fieldsync::cli {

// A finite decimal number ("-1.2921", "36.82").
absl::StatusOr<double> ParseDouble(absl::string_view flag, absl::string_view text);

// A whole number within [min, max].
absl::StatusOr<int64_t> ParseInt(absl::string_view flag, absl::string_view text, int64_t min,
                                 int64_t max);

// A calendar date "YYYY-MM-DD" (leap years checked); returned unchanged.
absl::StatusOr<std::string> ParseDate(absl::string_view flag, absl::string_view text);

// A lifetime "30d", "12h", "90m", "3600s" or "3600" (seconds) in seconds, > 0; "never" is 0.
absl::StatusOr<int64_t> ParseDurationSeconds(absl::string_view flag, absl::string_view text);

// Comma-separated codes ("ke, ug") as upper-case items ("KE", "UG"); at least one.
absl::StatusOr<std::vector<std::string>> ParseCodeList(absl::string_view flag,
                                                       absl::string_view text);

// An enum option: one of `aliases` (name -> number) if given, else the value's short label
// ("well" for PROJECT_KIND_WELL, see EnumLabel) or its full name. The zero value
// (UNSPECIFIED) is never accepted. The error lists the choices.
using EnumAliases = std::vector<std::pair<std::string, int>>;
absl::StatusOr<int> ParseEnum(absl::string_view flag, absl::string_view text,
                              const google::protobuf::EnumDescriptor* type,
                              const EnumAliases& aliases = {});

// The short, lower-case label of an enum value: the value name without the enum's own prefix
// ("PROJECT_KIND_WELL" -> "well", "ROLE_HQ_VIEWER" -> "hq_viewer"). "" for a zero value whose
// name ends in UNSPECIFIED; the number for an unknown value.
std::string EnumLabel(const google::protobuf::EnumDescriptor* type, int number);

template <typename E>
std::string EnumLabel(E value) {
  return EnumLabel(google::protobuf::GetEnumDescriptor<E>(), static_cast<int>(value));
}

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_VALUES_H_
