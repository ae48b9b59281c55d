// Short, readable names of proto enum values, as stored in SQL columns and shown to people:
// FUNCTIONAL_STATUS_PARTLY_FUNCTIONAL <-> "PARTLY_FUNCTIONAL", PROJECT_KIND_WELL <-> "WELL".
// The prefix removed is the one before the enum's UNSPECIFIED value.
#ifndef FIELDSYNC_SERVER_ENUM_NAMES_H_
#define FIELDSYNC_SERVER_ENUM_NAMES_H_

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/generated_enum_reflection.h"

namespace fieldsync::server {

namespace internal {
std::string ShortName(const google::protobuf::EnumDescriptor* d, int value);
bool ParseShortName(const google::protobuf::EnumDescriptor* d, absl::string_view name,
                    int* value);
}  // namespace internal

// The short name of `value`, or its number as text for a value the enum does not define.
template <typename E>
std::string ShortName(E value) {
  return internal::ShortName(google::protobuf::GetEnumDescriptor<E>(), static_cast<int>(value));
}

// Parses a short name (case-insensitive) back; false if the enum has no such value.
template <typename E>
bool ParseShortName(absl::string_view name, E* value) {
  int v = 0;
  if (!internal::ParseShortName(google::protobuf::GetEnumDescriptor<E>(), name, &v)) return false;
  *value = static_cast<E>(v);
  return true;
}

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_ENUM_NAMES_H_
