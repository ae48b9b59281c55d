// Status propagation helpers, written once because Debian's Abseil 20220623 has none.
//
//   absl::StatusOr<Project> LoadProject(Store& store, absl::string_view id) {
//     FS_ASSIGN_OR_RETURN(Project p, store.GetProject(id));
//     FS_RETURN_IF_ERROR(Validate(p));
//     return p;
//   }
#ifndef FIELDSYNC_BASE_STATUS_MACROS_H_
#define FIELDSYNC_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define FS_RETURN_IF_ERROR(expr)                 \
  do {                                           \
    ::absl::Status fs_status_ = (expr);          \
    if (!fs_status_.ok()) return fs_status_;     \
  } while (false)

#define FS_STATUS_CONCAT_INNER_(a, b) a##b
#define FS_STATUS_CONCAT_(a, b) FS_STATUS_CONCAT_INNER_(a, b)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, else assigns the value
// to `lhs`, which may be a declaration ("auto x") or an existing variable.
#define FS_ASSIGN_OR_RETURN(lhs, rexpr) \
  FS_ASSIGN_OR_RETURN_IMPL_(FS_STATUS_CONCAT_(fs_statusor_, __LINE__), lhs, rexpr)

#define FS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // FIELDSYNC_BASE_STATUS_MACROS_H_
