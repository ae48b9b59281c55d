#include "fieldsync/sync/document.h"

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/v1/domain.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace fieldsync::sync {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// A singular message field inside a oneof: its own fields are the document's paths.
bool IsSplit(const FieldDescriptor* field) {
  return field->real_containing_oneof() != nullptr &&
         field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !field->is_repeated();
}

std::vector<const FieldDescriptor*> SetFields(const Message& message) {
  std::vector<const FieldDescriptor*> fields;
  message.GetReflection()->ListFields(message, &fields);
  return fields;
}

// Moves `field` out of `from` into a fresh message of the same type and returns its bytes.
std::string TakeField(Message& from, const FieldDescriptor* field) {
  std::unique_ptr<Message> only(from.New());
  from.GetReflection()->SwapFields(&from, only.get(), {field});
  return SerializeDeterministic(*only);
}

// Parses field values into scratch messages, one per message type, reused from value to value
// (ParseFromString clears first, so a reused message parses exactly as a new one): Assemble
// parses every value of a document.
class ValueParser {
 public:
  // Parses `value` as a message of `prototype`'s type that sets exactly `field` and nothing
  // else; nullptr otherwise. Valid until the next Parse of that type.
  const Message* Parse(const Message& prototype, const FieldDescriptor* field,
                       const std::string& value) {
    std::unique_ptr<Message>& parsed = scratch_[prototype.GetDescriptor()];
    if (parsed == nullptr) parsed.reset(prototype.New());
    if (!parsed->ParseFromString(value)) return nullptr;
    set_.clear();
    parsed->GetReflection()->ListFields(*parsed, &set_);
    if (set_.size() != 1 || set_[0] != field) return nullptr;
    if (parsed->GetReflection()->GetUnknownFields(*parsed).field_count() != 0) return nullptr;
    return parsed.get();
  }

 private:
  std::map<const Descriptor*, std::unique_ptr<Message>> scratch_;
  std::vector<const FieldDescriptor*> set_;
};

// MergeFieldValue for a path already resolved against out's type.
bool MergeResolved(const DocumentPath& resolved, const std::string& value, Message* out,
                   ValueParser& parser) {
  if (resolved.field == nullptr) return false;
  if (value.empty()) return true;
  const Reflection& reflection = *out->GetReflection();
  if (resolved.member != nullptr) {
    const Message* parsed =
        parser.Parse(reflection.GetMessage(*out, resolved.member), resolved.field, value);
    if (parsed == nullptr) return false;
    reflection.MutableMessage(out, resolved.member)->MergeFrom(*parsed);
    return true;
  }
  const Message* parsed = parser.Parse(*out, resolved.field, value);
  if (parsed == nullptr) return false;
  // A split member's own path only marks the oneof case: its fields travel in their own paths.
  if (IsSplit(resolved.field) &&
      parsed->GetReflection()->GetMessage(*parsed, resolved.field).ByteSizeLong() != 0) {
    return false;
  }
  out->MergeFrom(*parsed);
  return true;
}

}  // namespace

std::string SerializeDeterministic(const Message& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializePartialToCodedStream(&coded);
  }  // The coded stream flushes into `out` when destroyed.
  return out;
}

DocumentPath ResolvePath(const Descriptor& type, absl::string_view path) {
  DocumentPath resolved;
  size_t dot = path.find('.');
  const FieldDescriptor* top = type.FindFieldByName(std::string(path.substr(0, dot)));
  if (top == nullptr) return resolved;
  if (dot == absl::string_view::npos) {
    resolved.field = top;
    return resolved;
  }
  if (!IsSplit(top)) return resolved;
  const FieldDescriptor* sub =
      top->message_type()->FindFieldByName(std::string(path.substr(dot + 1)));
  if (sub == nullptr) return resolved;
  resolved.member = top;
  resolved.field = sub;
  return resolved;
}

bool MergeFieldValue(absl::string_view path, const std::string& value, Message* out) {
  ValueParser parser;
  return MergeResolved(ResolvePath(*out->GetDescriptor(), path), value, out, parser);
}

FieldValues Flatten(const Message& message) {
  FieldValues values;
  std::unique_ptr<Message> rest(message.New());
  rest->CopyFrom(message);
  for (const FieldDescriptor* field : SetFields(*rest)) {
    if (!IsSplit(field)) {
      values[field->name()] = TakeField(*rest, field);
      continue;
    }
    Message* member = rest->GetReflection()->MutableMessage(rest.get(), field);
    std::vector<const FieldDescriptor*> subfields = SetFields(*member);
    if (subfields.empty()) {
      // Keep the oneof case of an all-default member: "well" with an empty WellRecord (built
      // afresh, so that unknown fields inside the member stay out as everywhere else).
      std::unique_ptr<Message> marker(message.New());
      marker->GetReflection()->MutableMessage(marker.get(), field);
      values[field->name()] = SerializeDeterministic(*marker);
      continue;
    }
    for (const FieldDescriptor* sub : subfields) {
      values[absl::StrCat(field->name(), ".", sub->name())] = TakeField(*member, sub);
    }
  }
  return values;
}

absl::Status Assemble(const FieldValues& fields, Message* out) {
  out->Clear();
  ValueParser parser;
  for (const auto& [path, value] : fields) {
    if (path == kDeletedPath) continue;
    const DocumentPath resolved = ResolvePath(*out->GetDescriptor(), path);
    if (resolved.field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": not a field of ", out->GetDescriptor()->full_name()));
    }
    if (!MergeResolved(resolved, value, out, parser)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": value does not parse as exactly this field of ",
                       out->GetDescriptor()->full_name(), " (", value.size(), " bytes)"));
    }
  }
  return absl::OkStatus();
}

FieldValues Diff(const FieldValues& before, const FieldValues& after) {
  FieldValues diff;
  for (const auto& [path, value] : after) {
    auto it = before.find(path);
    if (it == before.end() ? !value.empty() : it->second != value) diff[path] = value;
  }
  for (const auto& [path, value] : before) {
    if (!value.empty() && after.count(path) == 0) diff[path] = "";
  }
  return diff;
}

void ClearOutputOnly(Message* message) {
  if (const FieldDescriptor* audit = message->GetDescriptor()->FindFieldByName("audit")) {
    message->GetReflection()->ClearField(message, audit);
  }
  if (auto* record = google::protobuf::DynamicCastToGenerated<v1::Record>(message)) {
    record->clear_kind();
    record->clear_record_date();
    if (record->has_cataract_surgery()) {
      for (v1::FollowUpVisit& visit : *record->mutable_cataract_surgery()->mutable_follow_ups()) {
        visit.clear_outcome();
      }
    }
  }
}

const Message* PrototypeFor(absl::string_view collection) {
  if (collection == "partner") return &v1::Partner::default_instance();
  if (collection == "project") return &v1::Project::default_instance();
  if (collection == "site") return &v1::Site::default_instance();
  if (collection == "record") return &v1::Record::default_instance();
  return nullptr;
}

bool Document::deleted() const {
  auto it = fields.find(kDeletedPath);
  return it != fields.end() && it->second.value == "\x01";
}

FieldValues Document::Values() const {
  FieldValues values;
  for (const auto& [path, state] : fields) {
    if (!state.value.empty()) values[path] = state.value;
  }
  return values;
}

absl::StatusOr<std::string> CanonicalPayload(const Document& doc) {
  const Message* prototype = PrototypeFor(doc.collection);
  if (prototype == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("collection: unknown collection, got \"", doc.collection, "\""));
  }
  std::unique_ptr<Message> message(prototype->New());
  FS_RETURN_IF_ERROR(Assemble(doc.Values(), message.get()));
  return SerializeDeterministic(*message);
}

}  // namespace fieldsync::sync
