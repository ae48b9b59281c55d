// One-line log records on stderr: "2026-11-28T05:55:00.123Z info fieldsyncd listening ...".
// Callers never pass tokens or patient references (see docs/OPERATIONS.md). Thread-safe.
#ifndef FIELDSYNC_SERVER_LOG_H_
#define FIELDSYNC_SERVER_LOG_H_

#include "absl/strings/string_view.h"

namespace fieldsync::server {

void Log(absl::string_view level, absl::string_view message);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_LOG_H_
