// Documents as the sync engine sees them: a message split into fields, each with the value
// and the clock of its last write, so that concurrent edits of different fields both survive.
//
//   v1::Record r = ...;
//   FieldValues fields = Flatten(r);          // {"id": ..., "well.yield_lph": ..., ...}
//   v1::Record back;
//   FS_RETURN_IF_ERROR(Assemble(fields, &back));   // back equals r
//
// Paths: each top-level field is one path named after the field ("project_id"). A singular
// message field that is a member of a oneof (Record's body) is split one level deeper
// ("well.yield_lph", "cataract_surgery.follow_ups"), so that two people editing different
// fields of one surgery both keep their edit. Everything else — repeated fields, maps, other
// message fields such as Money — is one atomic value.
//
// Values: the deterministic protobuf wire bytes of a message holding only that field (tag
// included). A field at its default value has the empty value "", so "unset" and "set to the
// default" are the same state, as in proto3.
//
// Output-only fields are not part of a document; callers clear them before Flatten
// (ClearOutputOnly does it for our messages).
#ifndef FIELDSYNC_SYNC_DOCUMENT_H_
#define FIELDSYNC_SYNC_DOCUMENT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fieldsync/sync/hlc.h"
#include "google/protobuf/message.h"

namespace fieldsync::sync {

// path -> value bytes. Sorted, so iteration order is deterministic.
using FieldValues = std::map<std::string, std::string>;

// The reserved path of a document's tombstone: value "\x01" deleted, "" alive. It merges
// like any other field, with its own clock, so a delete and a later undelete (or an edit that
// wins over the delete) converge everywhere.
inline constexpr char kDeletedPath[] = "_deleted";

// Every set field of `message` (default-valued fields are omitted). Unknown fields of the
// message and of a split oneof member are not part of a document and are dropped.
FieldValues Flatten(const google::protobuf::Message& message);

// Builds `out` (cleared first) from `fields`. Paths absent from `fields` stay default; the
// kDeletedPath entry is ignored. INVALID_ARGUMENT naming the path if a path is not a field of
// the message or a value does not parse as that field.
//
// Accepts both forms Flatten produces for a oneof member: its fields ("well.yield_lph") and,
// for a member whose fields are all default, the member itself ("well", whose value must then
// be exactly the empty member). Paths are applied in sorted order, so if values of two members
// of one oneof are present (possible only after concurrent edits that switched the body) the
// last in path order wins, the same on every replica.
absl::Status Assemble(const FieldValues& fields, google::protobuf::Message* out);

// What a document path names in messages of type `type`: `field` of the message itself
// ("project_id", "well"), or `field` of the oneof member `member` ("well.yield_lph"). `field` is
// nullptr when the path names nothing (kDeletedPath included).
struct DocumentPath {
  const google::protobuf::FieldDescriptor* member = nullptr;
  const google::protobuf::FieldDescriptor* field = nullptr;
};
DocumentPath ResolvePath(const google::protobuf::Descriptor& type, absl::string_view path);

// Merges one path's value into `out` ("" leaves `out` as it is). False if `path` names no
// field of `out`, or `value` is not the wire bytes of a message that sets exactly that field
// and nothing else (unknown fields included). The building block of Assemble and
// ValidateChange.
bool MergeFieldValue(absl::string_view path, const std::string& value,
                     google::protobuf::Message* out);

// Paths whose value differs between `before` and `after` (a path missing on one side counts as
// ""), with the value in `after` ("" if missing). For an edit, take `before` from the stored
// Document::Values() (without kDeletedPath), not from Flatten of the assembled message: then
// paths that Assemble could not show (a body another device switched) are reset too.
FieldValues Diff(const FieldValues& before, const FieldValues& after);

// Clears the output-only fields of fieldsync.v1 messages (audit, and Record's kind,
// record_date and follow-up outcomes) so that documents hold only what people wrote.
void ClearOutputOnly(google::protobuf::Message* message);

// The collections that sync, and the message type of each: "partner" (v1.Partner), "project"
// (v1.Project), "site" (v1.Site), "record" (v1.Record). nullptr for any other name.
const google::protobuf::Message* PrototypeFor(absl::string_view collection);

// One field's current state in a replica.
struct FieldState {
  std::string value;
  Hlc hlc;
  // Server sequence number of the change that set it (0 on devices before a pull).
  int64_t seq = 0;
};

// A replica's copy of one document.
struct Document {
  std::string collection;
  std::string id;
  std::map<std::string, FieldState> fields;

  bool deleted() const;
  // Current values, without clocks (kDeletedPath included if set). Fields whose current value
  // is "" (reset to default, or undeleted) are omitted, as Flatten omits default fields.
  FieldValues Values() const;
};

// Deterministic serialization of the document's message (Assemble of its values, deleted flag
// ignored): the bytes checksums and payload columns use. INVALID_ARGUMENT as Assemble.
absl::StatusOr<std::string> CanonicalPayload(const Document& doc);

// Deterministic serialization of any message (same message, same bytes, within one protobuf
// version).
std::string SerializeDeterministic(const google::protobuf::Message& message);

}  // namespace fieldsync::sync

#endif  // FIELDSYNC_SYNC_DOCUMENT_H_
