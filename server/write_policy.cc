#include "server/write_policy.h"

#include "absl/strings/str_cat.h"

namespace fieldsync::server {

namespace {

struct Rule {
  absl::string_view collection;
  WriteOp op;
  bool admin;
  bool field_device;
};

constexpr Rule kRules[] = {
    {"project", WriteOp::kCreate, true, false}, {"project", WriteOp::kUpdate, true, false},
    {"project", WriteOp::kDelete, false, false}, {"site", WriteOp::kCreate, true, true},
    {"site", WriteOp::kUpdate, true, true},      {"site", WriteOp::kDelete, false, false},
    {"record", WriteOp::kCreate, true, true},    {"record", WriteOp::kUpdate, true, true},
    {"record", WriteOp::kDelete, true, true},
};

absl::string_view RoleText(v1::Role role) {
  switch (role) {
    case v1::ROLE_ADMIN:
      return "an admin";
    case v1::ROLE_HQ_VIEWER:
      return "an HQ viewer";
    case v1::ROLE_AUDITOR:
      return "an auditor";
    case v1::ROLE_FIELD_DEVICE:
      return "a field device";
    default:
      return "this role";
  }
}

}  // namespace

absl::string_view WriteOpName(WriteOp op) {
  switch (op) {
    case WriteOp::kCreate:
      return "create";
    case WriteOp::kUpdate:
      return "update";
    case WriteOp::kDelete:
      return "delete";
  }
  return "write";
}

bool IsDocumentCollection(absl::string_view collection) {
  return collection == "project" || collection == "site" || collection == "record";
}

absl::Status CheckWrite(const Actor& actor, absl::string_view collection, WriteOp op) {
  if (!IsDocumentCollection(collection)) {
    return absl::InvalidArgumentError(
        absl::StrCat("collection: must be project, site or record, got \"",
                     collection.substr(0, 40), "\""));
  }
  bool may_write_any = false;  // some write of this collection is the role's
  for (const Rule& r : kRules) {
    if (r.collection != collection) continue;
    may_write_any |= (actor.role == v1::ROLE_ADMIN && r.admin) ||
                     (actor.role == v1::ROLE_FIELD_DEVICE && r.field_device);
  }
  for (const Rule& r : kRules) {
    if (r.collection != collection || r.op != op) continue;
    const bool allowed = (actor.role == v1::ROLE_ADMIN && r.admin) ||
                         (actor.role == v1::ROLE_FIELD_DEVICE && r.field_device);
    if (allowed) return absl::OkStatus();
    if (!r.admin && !r.field_device) {
      // Nobody may: a property of the data, not of the role.
      return absl::InvalidArgumentError(absl::StrCat(
          collection, "._deleted: ", collection, "s cannot be deleted",
          collection == "project" ? " (set status CANCELLED)" : ""));
    }
    // One answer for every operation when the role writes none of the collection, so that
    // the answer does not tell an update (the document exists) from a create.
    return absl::PermissionDeniedError(
        may_write_any ? absl::StrCat(collection, ": ", RoleText(actor.role), " may not ",
                                     WriteOpName(op), " ", collection, "s")
                      : absl::StrCat(collection, ": ", RoleText(actor.role), " may not write ",
                                     collection, "s"));
  }
  return absl::PermissionDeniedError(absl::StrCat(collection, ": no rule allows this write"));
}

}  // namespace fieldsync::server
