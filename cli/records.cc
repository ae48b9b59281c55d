#include "cli/records.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/errors.h"
#include "cli/invocation.h"
#include "cli/output.h"
#include "fieldsync/base/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace fieldsync::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

const FieldDescriptor* FieldByJsonKey(const Descriptor& type, absl::string_view key) {
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor* field = type.field(i);
    if (field->name() == key || field->json_name() == key) return field;
  }
  return nullptr;
}

// Well-known types (Timestamp, wrappers...) have a JSON form of their own: never descend.
bool IsWellKnown(const Descriptor& type) {
  return absl::StartsWith(type.file()->name(), "google/protobuf/");
}

// Moves the fields that `given` names from `patch` (parsed from the same JSON) into `target`.
absl::Status MoveGivenFields(const google::protobuf::Struct& given, Message* patch, Message* target,
                             const std::string& path) {
  const Descriptor& type = *target->GetDescriptor();
  const google::protobuf::Reflection& reflection = *target->GetReflection();
  for (const auto& [key, value] : given.fields()) {
    const FieldDescriptor* field = FieldByJsonKey(type, key);
    if (field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, key, ": no such field in ", type.full_name()));
    }
    const bool descend = !field->is_repeated() &&
                         field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
                         !IsWellKnown(*field->message_type()) &&
                         value.kind_case() == google::protobuf::Value::kStructValue;
    if (descend) {
      FS_RETURN_IF_ERROR(MoveGivenFields(
          value.struct_value(), reflection.MutableMessage(patch, field),
          reflection.MutableMessage(target, field), absl::StrCat(path, field->name(), ".")));
    } else {
      // The patch holds the value given (or the default, for null, 0 or ""); swapping moves it,
      // and for a member of a oneof (a record's body) swaps the whole oneof.
      reflection.SwapFields(target, patch, {field});
    }
  }
  return absl::OkStatus();
}

}  // namespace

const EnumAliases& RecordKindAliases() {
  static const auto* const kAliases = new EnumAliases{
      {"well", v1::RECORD_KIND_WELL},
      {"cataract", v1::RECORD_KIND_CATARACT_SURGERY},
      {"classroom", v1::RECORD_KIND_CLASSROOM_DONATION},
      {"expenditure", v1::RECORD_KIND_EXPENDITURE},
  };
  return *kAliases;
}

std::string RecordKindLabel(v1::RecordKind kind) {
  for (const auto& [name, number] : RecordKindAliases()) {
    if (number == kind) return name;
  }
  return EnumLabel(kind);
}

std::string RecordSummary(const v1::Record& r) {
  switch (r.body_case()) {
    case v1::Record::kWell:
      return absl::StrCat(EnumLabel(r.well().functional_status()), ", ",
                          r.well().population_served(), " people, ",
                          EnumLabel(r.well().water_source()));
    case v1::Record::kCataractSurgery: {
      const v1::CataractSurgery& s = r.cataract_surgery();
      return absl::StrCat(s.patient_ref(), ", ", EnumLabel(s.eye()), " eye, ",
                          EnumLabel(s.technique()), ", ", s.follow_ups_size(), " follow-ups");
    }
    case v1::Record::kClassroomDonation: {
      const v1::ClassroomDonation& d = r.classroom_donation();
      int64_t dispatched = 0;
      int64_t received = 0;
      for (const v1::DonationItem& item : d.items()) {
        dispatched += item.quantity();
        received += item.quantity_received();
      }
      return absl::StrCat(d.school_name(), ": ", received, "/", dispatched, " items received");
    }
    case v1::Record::kExpenditure:
      return absl::StrCat(FormatMoney(r.expenditure().amount()), ", ",
                          EnumLabel(r.expenditure().category()));
    case v1::Record::BODY_NOT_SET:
      break;
  }
  return "";
}

const std::vector<Column<v1::Record>>& RecordColumns() {
  static const auto* const kColumns = new std::vector<Column<v1::Record>>{
      {{"ID"}, [](const v1::Record& r) { return r.id(); }},
      {{"KIND"}, [](const v1::Record& r) { return RecordKindLabel(r.kind()); }},
      {{"DATE"}, [](const v1::Record& r) { return r.record_date(); }},
      {{"PROJECT"}, [](const v1::Record& r) { return r.project_id(); }},
      {{"SUMMARY", 50}, RecordSummary},
  };
  return *kColumns;
}

std::vector<FlagSpec> RecordBodyFlags() {
  return {
      {"file", "FILE", "the record as proto JSON in FILE ('-' for stdin)"},
      {"data", "JSON", "the record as proto JSON text ('-' for stdin)"},
  };
}

const char kRecordJsonHelp[] =
    "The record is a fieldsync.v1.Record in protobuf JSON with exactly one body, e.g.\n"
    "  {\"project_id\":\"...\",\"site_id\":\"...\",\"well\":{\"water_source\":"
    "\"WATER_SOURCE_BOREHOLE\",\n"
    "   \"extraction\":\"EXTRACTION_TECHNOLOGY_HAND_PUMP\",\"functional_status\":"
    "\"FUNCTIONAL_STATUS_FUNCTIONAL\",\n"
    "   \"visit_date\":\"2024-03-01\",\"population_served\":350}}\n"
    "Other bodies: cataract_surgery, classroom_donation, expenditure (see domain.proto).\n"
    "Give exactly one of --file and --data.";

absl::StatusOr<RecordInput> ReadRecordFlag(Invocation& inv) {
  const FlagValues& flags = inv.flags();
  if (flags.Has("file") == flags.Has("data")) {
    return UsageError("give exactly one of --file FILE.json and --data JSON");
  }
  const std::string flag = flags.Has("file") ? "file" : "data";
  const std::string value = flags.Get(flag);
  RecordInput input;
  if (value == "-") {
    input.json.assign(std::istreambuf_iterator<char>(inv.in()), std::istreambuf_iterator<char>());
  } else if (flag == "data") {
    input.json = value;
  } else {
    std::ifstream file(value, std::ios::binary);
    if (!file) {
      return UsageError(absl::StrCat("--file: cannot read '", value, "': ", std::strerror(errno)));
    }
    std::stringstream text;
    text << file.rdbuf();
    input.json = text.str();
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  if (auto status = google::protobuf::util::JsonStringToMessage(input.json, &input.record, options);
      !status.ok()) {
    return UsageError(absl::StrCat("--", flag, ": not a fieldsync.v1.Record in protobuf JSON: ",
                                   std::string(status.message())));
  }
  return input;
}

absl::Status ApplyRecordFilters(const FlagValues& flags, v1::ListRecordsRequest* request) {
  if (flags.Has("kind")) {
    FS_ASSIGN_OR_RETURN(int kind, ParseEnum("kind", flags.Get("kind"), v1::RecordKind_descriptor(),
                                            RecordKindAliases()));
    request->set_kind(static_cast<v1::RecordKind>(kind));
  }
  if (flags.Has("from")) {
    FS_ASSIGN_OR_RETURN(*request->mutable_from_date(), ParseDate("from", flags.Get("from")));
  }
  if (flags.Has("to")) {
    FS_ASSIGN_OR_RETURN(*request->mutable_to_date(), ParseDate("to", flags.Get("to")));
  }
  request->set_project_id(flags.Get("project"));
  request->set_site_id(flags.Get("site"));
  return absl::OkStatus();
}

absl::Status ApplyRecordPatch(const RecordInput& input, v1::Record* record) {
  google::protobuf::Struct given;
  if (auto status = google::protobuf::util::JsonStringToMessage(input.json, &given); !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the record JSON is not an object: ", std::string(status.message())));
  }
  v1::Record patch = input.record;
  return MoveGivenFields(given, &patch, record, "");
}

}  // namespace fieldsync::cli
