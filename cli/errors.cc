#include "cli/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/match.h"

namespace fieldsync::cli {
namespace {

// Payload type URL that marks a usage error.
constexpr absl::string_view kUsagePayload = "type.fieldsync.org/fieldsync.cli.UsageError";
// Payload type URL of a hint given with WithHint().
constexpr absl::string_view kHintPayload = "type.fieldsync.org/fieldsync.cli.Hint";

}  // namespace

absl::Status UsageError(absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kUsagePayload, absl::Cord("1"));
  return status;
}

bool IsUsageError(const absl::Status& status) {
  return status.GetPayload(kUsagePayload).has_value();
}

absl::Status WithHint(absl::Status status, absl::string_view hint) {
  if (!status.ok()) status.SetPayload(kHintPayload, absl::Cord(hint));
  return status;
}

bool IsRateLimited(const absl::Status& status) {
  return status.code() == absl::StatusCode::kResourceExhausted &&
         absl::StrContains(status.message(), "retry after ");
}

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  if (IsUsageError(status)) return kExitUsage;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return kExitAuth;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return kExitInvalid;
    default:
      return kExitFailure;
  }
}

std::string HintFor(const absl::Status& status) {
  if (IsUsageError(status)) return "";
  if (auto hint = status.GetPayload(kHintPayload); hint.has_value()) {
    return std::string(*hint);
  }
  switch (status.code()) {
    case absl::StatusCode::kUnauthenticated:
      return "pass a valid token with --token TOKEN or set FIELDSYNC_TOKEN "
             "(an admin issues tokens with 'fieldsync tokens create')";
    case absl::StatusCode::kPermissionDenied:
      return "the token's role may not do this; 'fieldsync whoami' shows the role in use";
    case absl::StatusCode::kFailedPrecondition:
      return "the object changed meanwhile or is not in the required state; fetch it again and "
             "retry";
    default:
      return "";
  }
}

}  // namespace fieldsync::cli
