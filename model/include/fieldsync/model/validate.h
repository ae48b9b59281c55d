// Validation of every domain message, shared by fieldsyncd and the client library so that a
// device refuses exactly what the server would.
//
//   absl::Status s = fieldsync::model::ValidateRecord(record);
//   // INVALID_ARGUMENT "record.well.drilled_depth_m: must be within [0, 2000], got -5"
//
// Each validator checks one message on its own (ranges, enums, codes, dates, notation, lengths,
// required fields). References to other rows (a record's project exists and has the matching
// kind, a site belongs to the project) need the store and are checked by the server's Tracker.
// Output-only fields (audit, kind, record_date, outcome) are ignored.
//
// Errors are always INVALID_ARGUMENT with a message "<path>: <what is wrong>, got <value>",
// where <path> starts with the message's own name (partner, project, site, record, user,
// device) and follows field names: "record.cataract_surgery.follow_ups[1].presenting_va".
// Only the first problem found is reported. Thread-safe; no state.
#ifndef FIELDSYNC_MODEL_VALIDATE_H_
#define FIELDSYNC_MODEL_VALIDATE_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "fieldsync/v1/admin.pb.h"
#include "fieldsync/v1/domain.pb.h"
#include "google/protobuf/message.h"

namespace fieldsync::model {

// Each validator first checks the document's size (CheckDocumentSize), then its fields.
absl::Status ValidatePartner(const v1::Partner& partner);
absl::Status ValidateProject(const v1::Project& project);
absl::Status ValidateSite(const v1::Site& site);
absl::Status ValidateRecord(const v1::Record& record);
absl::Status ValidateUser(const v1::User& user);
absl::Status ValidateDevice(const v1::Device& device);

// Largest serialized document (a partner, project, site, record, user or device), in bytes:
// 256 KiB. Every field is capped on its own; this also bounds unknown fields.
inline constexpr size_t kMaxDocumentBytes = 256 * 1024;

// The most entries the repeated field `field` may hold in a document, from one table in
// validate.cc; 0 if the field has none (validate_test.cc checks that every repeated field of
// every document has one).
int MaxEntries(const google::protobuf::FieldDescriptor& field);

// Every list in `document` within MaxEntries, and the whole within kMaxDocumentBytes;
// otherwise INVALID_ARGUMENT "<root>.<path>: must have at most N <entries>, got M" or
// "<root>: a document may have at most N bytes, got M". `root` names the document ("record").
absl::Status CheckDocumentSize(const google::protobuf::Message& document, absl::string_view root);

// An id field: empty is allowed only when `allow_empty` (the server will generate one);
// otherwise it must be a canonical lower-case UUID. `path` names the field in the message.
absl::Status ValidateId(absl::string_view path, absl::string_view id, bool allow_empty);

// An optional YYYY-MM-DD date filter or field: empty is OK, otherwise it must be a real
// calendar date between 1900-01-01 and 2199-12-31.
absl::Status ValidateOptionalDate(absl::string_view path, absl::string_view date);

// True for an ISO 3166-1 alpha-2 code assigned to a country (upper case), e.g. "KE", "VN".
bool IsCountryCode(absl::string_view code);
// True for an active ISO 4217 alphabetic currency code (upper case), e.g. "USD", "UGX".
bool IsCurrencyCode(absl::string_view code);
// The number of decimal places of the currency's minor unit, as ISO 4217 defines it: 2 for
// "USD", 0 for "UGX" and "VND", 3 for "BHD". -1 if IsCurrencyCode(code) is false.
int CurrencyMinorUnits(absl::string_view code);
// True for a real calendar date "YYYY-MM-DD" (leap years included) in 1900..2199.
bool IsDate(absl::string_view date);

// The kind of a record, from the body that is set (UNSPECIFIED if none).
v1::RecordKind KindOf(const v1::Record& record);
// The record's own date: visit, surgery, delivery or payment date.
std::string RecordDateOf(const v1::Record& record);
// The project kind a record kind belongs to. Expenditures fit any project (returns
// PROJECT_KIND_UNSPECIFIED).
v1::ProjectKind ProjectKindFor(v1::RecordKind kind);

}  // namespace fieldsync::model

#endif  // FIELDSYNC_MODEL_VALIDATE_H_
