// Commands about changes as they happen: conflicts between concurrent edits, and the live feed
// of committed changes (TrackerService.ListConflicts, ResolveConflict, WatchChanges).
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/interrupt.h"
#include "cli/invocation.h"
#include "cli/listing.h"
#include "cli/output.h"
#include "cli/records.h"
#include "cli/values.h"
#include "fieldsync/base/status_macros.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace fieldsync::cli {
namespace {

std::string ConflictState(const v1::Conflict& c) {
  if (c.status() == v1::CONFLICT_STATUS_RESOLVED &&
      c.resolution() != v1::CONFLICT_RESOLUTION_UNSPECIFIED) {
    return absl::StrCat(EnumLabel(c.status()), ": ", EnumLabel(c.resolution()));
  }
  return EnumLabel(c.status());
}

// The value of a conflict without the nesting of its path: {"well":{"yieldLph":700}} -> 700.
std::string LeafValue(const std::string& json) {
  google::protobuf::Value value;
  if (!google::protobuf::util::JsonStringToMessage(json, &value).ok()) return json;
  const google::protobuf::Value* leaf = &value;
  while (leaf->kind_case() == google::protobuf::Value::kStructValue &&
         leaf->struct_value().fields_size() == 1) {
    leaf = &leaf->struct_value().fields().begin()->second;
  }
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(*leaf, &text).ok()) return json;
  return text;
}

std::string OrDash(absl::string_view text) { return text.empty() ? "-" : std::string(text); }

// One line of `watch`; also its header, with the column names as the values.
std::string WatchLine(absl::string_view seq, absl::string_view time, absl::string_view op,
                      absl::string_view collection, absl::string_view doc,
                      absl::string_view partner, absl::string_view country,
                      absl::string_view actor) {
  return absl::StrFormat("%8s  %-20s  %-6s  %-10s  %-36s  %-36s  %-7s  %s\n", seq, time, op,
                         collection, doc, partner, country, actor);
}

}  // namespace

absl::Status RunConflictsList(Invocation& inv) {
  static const auto* const kColumns = new std::vector<Column<v1::Conflict>>{
      {{"ID"}, [](const v1::Conflict& c) { return c.id(); }},
      {{"STATUS"}, ConflictState},
      {{"DETECTED"}, [](const v1::Conflict& c) { return FormatTimestamp(c.detected_at()); }},
      {{"DOCUMENT"},
       [](const v1::Conflict& c) { return absl::StrCat(c.collection(), " ", c.doc_id()); }},
      {{"FIELD", 30}, [](const v1::Conflict& c) { return c.path(); }},
      {{"KEPT", 24}, [](const v1::Conflict& c) { return LeafValue(c.winning_value_json()); }},
      {{"LOST", 24}, [](const v1::Conflict& c) { return LeafValue(c.losing_value_json()); }},
      {{"LOST BY"}, [](const v1::Conflict& c) { return c.losing_writer(); }},
  };
  v1::ListConflictsRequest request;
  if (inv.flags().Has("open")) request.set_status(v1::CONFLICT_STATUS_OPEN);
  request.set_doc_id(inv.flags().Get("doc"));
  return ListAndPrint(inv, "conflicts", &TrackerStub::ListConflicts, request,
                      &v1::ListConflictsResponse::conflicts, *kColumns);
}

absl::Status RunRejectionsList(Invocation& inv) {
  static const auto* const kColumns = new std::vector<Column<v1::RejectedChange>>{
      {{"ID"}, [](const v1::RejectedChange& r) { return r.id(); }},
      {{"STATUS"}, [](const v1::RejectedChange& r) { return EnumLabel(r.status()); }},
      {{"RECEIVED"},
       [](const v1::RejectedChange& r) { return FormatTimestamp(r.received_at()); }},
      {{"DEVICE"}, [](const v1::RejectedChange& r) { return r.device_id(); }},
      {{"SEQ"}, [](const v1::RejectedChange& r) { return absl::StrCat(r.device_seq()); }},
      {{"DOCUMENT"},
       [](const v1::RejectedChange& r) { return absl::StrCat(r.collection(), " ", r.doc_id()); }},
      {{"REASON", 60}, [](const v1::RejectedChange& r) { return r.reason(); }},
  };
  v1::ListRejectionsRequest request;
  if (inv.flags().Has("open")) request.set_status(v1::CONFLICT_STATUS_OPEN);
  request.set_device_id(inv.flags().Get("device"));
  return ListAndPrint(inv, "rejections", &TrackerStub::ListRejections, request,
                      &v1::ListRejectionsResponse::rejections, *kColumns);
}

absl::Status RunRejectionsResolve(Invocation& inv) {
  v1::ResolveRejectionRequest request;
  request.set_id(inv.arg(0));
  request.set_note(inv.flags().Get("note"));
  v1::RejectedChange rejection;
  FS_RETURN_IF_ERROR(inv.Call(absl::StrCat("resolve rejection ", inv.arg(0)),
                              &TrackerStub::ResolveRejection, request, &rejection));
  if (inv.json()) {
    PrintJson(inv.out(), rejection);
    return absl::OkStatus();
  }
  inv.out() << "Resolved rejection " << rejection.id() << " (" << rejection.collection() << " "
            << rejection.doc_id() << " from device " << rejection.device_id() << ").\n";
  return absl::OkStatus();
}

absl::Status RunConflictsResolve(Invocation& inv) {
  const bool keep = inv.flags().Has("keep-winner");
  if (keep == inv.flags().Has("take-loser")) {
    return UsageError("give exactly one of --keep-winner and --take-loser");
  }
  v1::ResolveConflictRequest request;
  request.set_id(inv.arg(0));
  request.set_resolution(keep ? v1::CONFLICT_RESOLUTION_KEEP_WINNER
                              : v1::CONFLICT_RESOLUTION_TAKE_LOSER);
  v1::Conflict conflict;
  FS_RETURN_IF_ERROR(inv.Call(absl::StrCat("resolve conflict ", inv.arg(0)),
                              &TrackerStub::ResolveConflict, request, &conflict));
  if (inv.json()) {
    PrintJson(inv.out(), conflict);
    return absl::OkStatus();
  }
  inv.out() << "Resolved conflict " << conflict.id() << " (" << conflict.collection() << " "
            << conflict.doc_id() << ", " << conflict.path() << "): ";
  if (keep) {
    inv.out() << "kept " << LeafValue(conflict.winning_value_json()) << ".\n";
  } else {
    inv.out() << "took " << LeafValue(conflict.losing_value_json())
              << "; it reaches every device as a new edit at its next sync.\n";
  }
  return absl::OkStatus();
}

absl::Status RunWatch(Invocation& inv) {
  const FlagValues& flags = inv.flags();
  v1::WatchChangesRequest request;
  request.set_partner_id(flags.Get("partner"));
  request.set_country(absl::AsciiStrToUpper(flags.Get("country")));
  if (flags.Has("kind")) {
    FS_ASSIGN_OR_RETURN(int kind, ParseEnum("kind", flags.Get("kind"), v1::RecordKind_descriptor(),
                                            RecordKindAliases()));
    request.set_kind(static_cast<v1::RecordKind>(kind));
  }
  if (flags.Has("after")) {
    FS_ASSIGN_OR_RETURN(int64_t after, ParseInt("after", flags.Get("after"), 0,
                                                std::numeric_limits<int64_t>::max()));
    request.set_after_seq(after);
  }
  int64_t max_events = 0;  // 0: no limit
  if (flags.Has("max-events")) {
    FS_ASSIGN_OR_RETURN(max_events, ParseInt("max-events", flags.Get("max-events"), 1,
                                             std::numeric_limits<int64_t>::max()));
  }
  // A watch runs until stopped; only an explicit --timeout bounds it.
  const bool bounded = inv.global_flags().Has("timeout");
  const absl::Duration deadline = bounded ? inv.options().timeout : absl::InfiniteDuration();

  int64_t events = 0;
  int64_t last_seq = request.after_seq();
  if (!inv.json()) {
    inv.out() << WatchLine("SEQ", "COMMITTED", "OP", "COLLECTION", "DOCUMENT", "PARTNER", "COUNTRY",
                           "ACTOR")
              << std::flush;
  }
  CallCanceller canceller;
  absl::Status status;
  {
    InterruptHandler interrupt([&canceller] { canceller.Cancel(); });
    status = inv.ReadStream<v1::WatchChangesRequest, v1::ChangeEvent>(
        "watch changes", &TrackerStub::WatchChanges, request, deadline, canceller,
        [&](const v1::ChangeEvent& event) {
          if (inv.json()) {
            PrintJson(inv.out(), event);
          } else {
            inv.out() << WatchLine(absl::StrCat(event.seq()), FormatTimestamp(event.committed_at()),
                                   event.op(), event.collection(), event.doc_id(),
                                   OrDash(event.partner_id()), OrDash(event.country()),
                                   OrDash(event.actor()));
          }
          // Whoever reads the other end of a pipe sees each event as it happens.
          inv.out().flush();
          ++events;
          last_seq = event.seq();
          return max_events == 0 || events < max_events;
        });
  }
  const std::string resume = absl::StrCat("resume with --after ", last_seq);
  if (status.code() == absl::StatusCode::kDeadlineExceeded && bounded) {
    // The time given is up: the end of a bounded watch, unless it was to see more events.
    if (max_events > 0) {
      return absl::DeadlineExceededError(absl::StrCat(
          "watch changes: ", events, " of the ", max_events, " events asked for arrived within ",
          absl::FormatDuration(deadline), "; ", resume));
    }
    inv.err() << "(watched for " << absl::FormatDuration(deadline) << ": "
              << Counted(events, "event") << "; " << resume << ")\n";
    return absl::OkStatus();
  }
  if (status.code() == absl::StatusCode::kUnavailable ||
      status.code() == absl::StatusCode::kDeadlineExceeded) {
    // The link or the server went away: say where to pick up again.
    return absl::Status(status.code(), absl::StrCat(status.message(), "; ", resume));
  }
  FS_RETURN_IF_ERROR(status);
  if (canceller.cancelled()) {
    inv.err() << "(stopped after " << Counted(events, "event") << "; " << resume << ")\n";
    return absl::OkStatus();
  }
  if (max_events > 0 && events >= max_events) return absl::OkStatus();
  // The server ended the stream on its own (it is shutting down).
  return absl::UnavailableError(absl::StrCat("watch changes: fieldsyncd at ", inv.options().server,
                                             " ended the stream after ", Counted(events, "event"),
                                             "; ", resume));
}

}  // namespace fieldsync::cli
