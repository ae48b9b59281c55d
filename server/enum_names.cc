#include "server/enum_names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace fieldsync::server::internal {

namespace {

std::string Prefix(const google::protobuf::EnumDescriptor* d) {
  const google::protobuf::EnumValueDescriptor* zero = d->FindValueByNumber(0);
  if (zero == nullptr || !absl::EndsWith(zero->name(), "UNSPECIFIED")) return "";
  return zero->name().substr(0, zero->name().size() - std::string("UNSPECIFIED").size());
}

}  // namespace

std::string ShortName(const google::protobuf::EnumDescriptor* d, int value) {
  const google::protobuf::EnumValueDescriptor* v = d->FindValueByNumber(value);
  if (v == nullptr) return absl::StrCat(value);
  std::string prefix = Prefix(d);
  return absl::StartsWith(v->name(), prefix) ? v->name().substr(prefix.size()) : v->name();
}

bool ParseShortName(const google::protobuf::EnumDescriptor* d, absl::string_view name,
                    int* value) {
  std::string full = absl::AsciiStrToUpper(absl::StrCat(Prefix(d), name));
  const google::protobuf::EnumValueDescriptor* v = d->FindValueByName(full);
  if (v == nullptr) v = d->FindValueByName(absl::AsciiStrToUpper(name));
  if (v == nullptr) return false;
  *value = v->number();
  return true;
}

}  // namespace fieldsync::server::internal
