// How the fieldsync CLI fails: every failure is an absl::Status, and this file alone decides
// which exit code and which hint it gets.
//
//   if (!value_ok) return UsageError("--limit: must be a whole number >= 1, got 'x'");
//   ...
//   int code = ExitCodeFor(status);  // 2 for the usage error above
//
// Usage errors (a mistake on the command line, found before any call) and the server refusing
// input are both INVALID_ARGUMENT in spirit; a usage error carries a payload so that it exits 2
// while the server's INVALID_ARGUMENT exits 5.
#ifndef FIELDSYNC_CLI_ERRORS_H_
#define FIELDSYNC_CLI_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fieldsync::cli {

// Exit codes, listed in `fieldsync --help`.
inline constexpr int kExitOk = 0;
// Anything not listed below (INTERNAL, RESOURCE_EXHAUSTED, ABORTED, ...).
inline constexpr int kExitFailure = 1;
// Unknown command or option, missing required option, bad option value.
inline constexpr int kExitUsage = 2;
// The server could not be reached or did not answer in time (UNAVAILABLE, DEADLINE_EXCEEDED).
inline constexpr int kExitUnreachable = 3;
// No token, a bad or revoked token (UNAUTHENTICATED), or a role that may not (PERMISSION_DENIED).
inline constexpr int kExitAuth = 4;
// The server refused the input or did not find the object (INVALID_ARGUMENT, NOT_FOUND,
// ALREADY_EXISTS, FAILED_PRECONDITION, OUT_OF_RANGE).
inline constexpr int kExitInvalid = 5;

// A mistake on the command line. The message names the option: "--lat: not a number, got 'x'".
absl::Status UsageError(absl::string_view message);
// True for a status made by UsageError().
bool IsUsageError(const absl::Status& status);

// `status` with a hint of its own, which HintFor() then returns instead of the hint for its
// code (e.g. "enroll this device first" where FAILED_PRECONDITION would suggest a retry).
absl::Status WithHint(absl::Status status, absl::string_view hint);

// True for the server's per-device rate limit (RESOURCE_EXHAUSTED whose message carries the
// limiter's "retry after N ms", server/rate_limit.cc); false for the other RESOURCE_EXHAUSTED
// causes, above all a server whose disk or database is full ("database or disk is full"), which
// waiting out a rate limit would not cure.
bool IsRateLimited(const absl::Status& status);

// The exit code for a failed (or OK) status, as listed above.
int ExitCodeFor(const absl::Status& status);

// One line of advice for the user after the error message, or "" when there is none
// (e.g. how to pass a token after UNAUTHENTICATED); the hint given to WithHint() if any.
std::string HintFor(const absl::Status& status);

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_ERRORS_H_
