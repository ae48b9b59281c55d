// Authentication and authorization of every RPC, in one place.
//
//   absl::StatusOr<Principal> who = auth.Authorize(ctx_metadata_value, kCreateProject);
//
// A call carries "authorization: Bearer <secret>" metadata. The secret is looked up by its
// SHA-256 on every call, so revoking a token takes effect on the next call. Which roles may
// call which RPC is one table (auth.cc, kPolicies); a method missing from it is refused.
// Secrets never reach a log line.
#ifndef FIELDSYNC_SERVER_AUTH_H_
#define FIELDSYNC_SERVER_AUTH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fieldsync/v1/admin.pb.h"
#include "server/store.h"

namespace fieldsync::server {

// The caller of an RPC, as established from its token.
struct Principal {
  v1::Token token;
  // User or device name.
  std::string name;

  v1::Role role() const { return token.role(); }
  // User or device id: who the change log names.
  const std::string& subject_id() const {
    return token.user_id().empty() ? token.device_id() : token.user_id();
  }
  // The partner a FIELD_DEVICE credential is bound to; empty for HQ roles.
  const std::string& partner_id() const { return token.partner_id(); }
  bool partner_bound() const { return token.role() == v1::ROLE_FIELD_DEVICE; }
  Actor actor() const { return Actor{subject_id(), role(), partner_bound() ? partner_id() : ""}; }
  // The read scope of this caller.
  Scope scope() const { return Scope{partner_bound() ? partner_id() : std::string()}; }
};

class Authenticator {
 public:
  explicit Authenticator(Store& store) : store_(store) {}

  // Checks the "authorization" metadata value and that the token's role may call `method`
  // ("/fieldsync.v1.TrackerService/CreateProject").
  // UNAUTHENTICATED: missing, malformed, unknown, revoked or expired token.
  // PERMISSION_DENIED: the role may not call the method.
  absl::StatusOr<Principal> Authorize(absl::string_view authorization,
                                      absl::string_view method) const;

 private:
  Store& store_;
};

// The server itself acting as ADMIN (demo data, bootstrap); its changes are logged as "system".
Principal SystemPrincipal();

// The roles allowed to call `method`; empty if the method is unknown. A public method (one
// that needs no token, see IsPublic) allows every role.
std::vector<v1::Role> RolesFor(absl::string_view method);
// True for methods callable without a token (SyncService.Enroll: the code is the credential).
// Authorize returns an empty Principal for them.
bool IsPublic(absl::string_view method);
// Every method the policy table names.
std::vector<std::string> PolicyMethods();

// "fs_" + 43 base64url characters: a new 256-bit bearer secret.
std::string NewTokenSecret();
// The hex SHA-256 the store keeps for a secret.
std::string HashTokenSecret(absl::string_view secret);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_AUTH_H_
