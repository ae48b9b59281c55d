// What the record commands of HQ ('records ...') and of a field device ('device records ...')
// share: reading a record from --file/--data, the list filters, the list columns, and applying a
// partial record ("only the fields given") to a stored one.
//
//   FS_ASSIGN_OR_RETURN(RecordInput input, ReadRecordFlag(inv));
//   FS_ASSIGN_OR_RETURN(v1::Record current, client->GetRecord(id));
//   FS_RETURN_IF_ERROR(ApplyRecordPatch(input, &current));  // given fields replace, others stay
#ifndef FIELDSYNC_CLI_RECORDS_H_
#define FIELDSYNC_CLI_RECORDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/command_line.h"
#include "cli/listing.h"
#include "cli/values.h"
#include "fieldsync/v1/domain.pb.h"
#include "fieldsync/v1/tracker.pb.h"

namespace fieldsync::cli {

class Invocation;

// --kind values of records: well, cataract, classroom, expenditure.
const EnumAliases& RecordKindAliases();

// "well", "cataract", ... for a record kind (its --kind alias).
std::string RecordKindLabel(v1::RecordKind kind);

// One line about the body: "functional, 350 people, borehole".
std::string RecordSummary(const v1::Record& record);

// The columns of record lists: ID, KIND, DATE, PROJECT, SUMMARY.
const std::vector<Column<v1::Record>>& RecordColumns();

// --file FILE and --data JSON, the options that carry a record.
std::vector<FlagSpec> RecordBodyFlags();
// Help on the record JSON, for the details of commands that take one.
extern const char kRecordJsonHelp[];

// A record as given on the command line: the parsed message and the JSON text it came from
// (which tells the fields given from those left out).
struct RecordInput {
  v1::Record record;
  std::string json;
};

// The record given by --file or --data ('-' reads stdin) as a fieldsync.v1.Record in protobuf
// JSON. A usage error if neither or both are given, the file cannot be read, or the JSON is not
// a Record (the message says why).
absl::StatusOr<RecordInput> ReadRecordFlag(Invocation& inv);

// Sets the filters of ListRecordsRequest from --kind, --project, --site, --from and --to (those
// that `flags` has). A usage error for a bad kind or date.
absl::Status ApplyRecordFilters(const FlagValues& flags, v1::ListRecordsRequest* request);

// Replaces in `record` exactly the fields that `input.json` names, at any depth, and keeps the
// others: {"well":{"yield_lph":500}} changes the yield only ({"well":{}} changes nothing). A
// field given as a list (the quality tests, the items of a donation) replaces the whole list; a
// field given as null, 0 or "" is cleared; a body of another kind replaces the body.
// INVALID_ARGUMENT if the JSON is not an object.
absl::Status ApplyRecordPatch(const RecordInput& input, v1::Record* record);

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_RECORDS_H_
