#include "server/auth.h"

#include <algorithm>
#include <initializer_list>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fieldsync/base/ids.h"
#include "google/protobuf/util/time_util.h"

namespace fieldsync::server {

namespace {

using v1::ROLE_ADMIN;
using v1::ROLE_AUDITOR;
using v1::ROLE_FIELD_DEVICE;
using v1::ROLE_HQ_VIEWER;

struct Policy {
  const char* method;
  std::initializer_list<v1::Role> roles;
  // Callable without a token (enrollment: the code is the credential).
  bool public_call = false;
};

constexpr std::initializer_list<v1::Role> kEveryone = {ROLE_ADMIN, ROLE_HQ_VIEWER, ROLE_AUDITOR,
                                                       ROLE_FIELD_DEVICE};
constexpr std::initializer_list<v1::Role> kAdmin = {ROLE_ADMIN};
// Writers of field data: HQ admins and partner devices (scoped to their partner by the Tracker).
constexpr std::initializer_list<v1::Role> kFieldWriters = {ROLE_ADMIN, ROLE_FIELD_DEVICE};
constexpr std::initializer_list<v1::Role> kDevices = {ROLE_FIELD_DEVICE};
// Readers of everything across partners: reports and audit checks.
constexpr std::initializer_list<v1::Role> kAuditors = {ROLE_ADMIN, ROLE_HQ_VIEWER, ROLE_AUDITOR};

// The one table of who may call what. A field device's reads and writes are further limited
// to its partner's data by the Tracker.
const Policy kPolicies[] = {
    {"/fieldsync.v1.TrackerService/CreateProject", kAdmin},
    {"/fieldsync.v1.TrackerService/UpdateProject", kAdmin},
    {"/fieldsync.v1.TrackerService/GetProject", kEveryone},
    {"/fieldsync.v1.TrackerService/ListProjects", kEveryone},
    {"/fieldsync.v1.TrackerService/CreateSite", kFieldWriters},
    {"/fieldsync.v1.TrackerService/GetSite", kEveryone},
    {"/fieldsync.v1.TrackerService/ListSites", kEveryone},
    {"/fieldsync.v1.TrackerService/CreateRecord", kFieldWriters},
    {"/fieldsync.v1.TrackerService/UpdateRecord", kFieldWriters},
    {"/fieldsync.v1.TrackerService/GetRecord", kEveryone},
    {"/fieldsync.v1.TrackerService/ListRecords", kEveryone},
    {"/fieldsync.v1.TrackerService/GetStats", kEveryone},
    {"/fieldsync.v1.TrackerService/DeleteRecord", kFieldWriters},
    {"/fieldsync.v1.TrackerService/ListConflicts", kEveryone},
    {"/fieldsync.v1.TrackerService/ResolveConflict", kAdmin},
    {"/fieldsync.v1.TrackerService/ListRejections", kEveryone},
    {"/fieldsync.v1.TrackerService/ResolveRejection", kAdmin},
    {"/fieldsync.v1.TrackerService/WatchChanges", kEveryone},
    {"/fieldsync.v1.SyncService/Handshake", kDevices},
    {"/fieldsync.v1.SyncService/Push", kDevices},
    {"/fieldsync.v1.SyncService/Pull", kDevices},
    {"/fieldsync.v1.SyncService/Enroll", {}, /*public_call=*/true},
    {"/fieldsync.v1.AdminService/CreatePartner", kAdmin},
    {"/fieldsync.v1.AdminService/UpdatePartner", kAdmin},
    {"/fieldsync.v1.AdminService/GetPartner", kAdmin},
    {"/fieldsync.v1.AdminService/ListPartners", kAdmin},
    {"/fieldsync.v1.AdminService/CreateUser", kAdmin},
    {"/fieldsync.v1.AdminService/ListUsers", kAdmin},
    {"/fieldsync.v1.AdminService/CreateDevice", kAdmin},
    {"/fieldsync.v1.AdminService/ListDevices", kAdmin},
    {"/fieldsync.v1.AdminService/CreateEnrollment", kAdmin},
    {"/fieldsync.v1.AdminService/DisableDevice", kAdmin},
    {"/fieldsync.v1.AdminService/EnableDevice", kAdmin},
    {"/fieldsync.v1.AdminService/CreateToken", kAdmin},
    {"/fieldsync.v1.AdminService/ListTokens", kAdmin},
    {"/fieldsync.v1.AdminService/RevokeToken", kAdmin},
    {"/fieldsync.v1.AdminService/WhoAmI", kEveryone},
    {"/fieldsync.v1.AdminService/Backup", kAdmin},
    {"/fieldsync.v1.ReportService/Export", kAuditors},
    {"/fieldsync.v1.ReportService/GetExportManifest", kAuditors},
    {"/fieldsync.v1.ReportService/VerifyAuditChain", kAuditors},
};

constexpr absl::string_view kSecretPrefix = "fs_";
constexpr size_t kSecretLength = 3 + 43;

const Policy* PolicyFor(absl::string_view method) {
  for (const Policy& p : kPolicies) {
    if (method == p.method) return &p;
  }
  return nullptr;
}

}  // namespace

std::vector<v1::Role> RolesFor(absl::string_view method) {
  const Policy* p = PolicyFor(method);
  if (p == nullptr) return {};
  if (p->public_call) return {ROLE_ADMIN, ROLE_HQ_VIEWER, ROLE_AUDITOR, ROLE_FIELD_DEVICE};
  return std::vector<v1::Role>(p->roles);
}

bool IsPublic(absl::string_view method) {
  const Policy* p = PolicyFor(method);
  return p != nullptr && p->public_call;
}

std::vector<std::string> PolicyMethods() {
  std::vector<std::string> out;
  for (const Policy& p : kPolicies) out.emplace_back(p.method);
  return out;
}

Principal SystemPrincipal() {
  Principal p;
  p.token.set_user_id("system");
  p.token.set_role(ROLE_ADMIN);
  p.name = "system";
  return p;
}

std::string NewTokenSecret() {
  return absl::StrCat(kSecretPrefix, Base64UrlEncode(RandomBytes(32)));
}

std::string HashTokenSecret(absl::string_view secret) { return Sha256Hex(secret); }

absl::StatusOr<Principal> Authenticator::Authorize(absl::string_view authorization,
                                                   absl::string_view method) const {
  if (IsPublic(method)) return Principal();
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "missing credentials: send metadata \"authorization: Bearer <token>\"");
  }
  if (!absl::StartsWithIgnoreCase(authorization, "Bearer ")) {
    return absl::UnauthenticatedError(
        "authorization: expected \"Bearer <token>\"");
  }
  absl::string_view secret = authorization.substr(7);
  if (secret.size() != kSecretLength || !absl::StartsWith(secret, kSecretPrefix)) {
    return absl::UnauthenticatedError("authorization: malformed token");
  }
  absl::StatusOr<TokenRecord> found = store_.FindToken(HashTokenSecret(secret));
  if (found.status().code() == absl::StatusCode::kNotFound) {
    return absl::UnauthenticatedError("authorization: unknown token");
  }
  if (!found.ok()) return found.status();
  const v1::Token& token = found->token;
  if (token.has_revoked_at()) {
    return absl::UnauthenticatedError(
        absl::StrCat("authorization: token ", token.prefix(), "… was revoked"));
  }
  if (token.has_expires_at() &&
      google::protobuf::util::TimeUtil::TimestampToMicroseconds(token.expires_at()) <=
          absl::ToUnixMicros(absl::Now())) {
    return absl::UnauthenticatedError(
        absl::StrCat("authorization: token ", token.prefix(), "… has expired"));
  }
  if (found->device_disabled) {
    return absl::UnauthenticatedError(
        absl::StrCat("authorization: device ", token.device_id(),
                     " is disabled (HQ can enable it again: 'fieldsync devices enable ID')"));
  }
  std::vector<v1::Role> roles = RolesFor(method);
  if (std::find(roles.begin(), roles.end(), token.role()) == roles.end()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "role ", v1::Role_Name(token.role()), " may not call ", method));
  }
  return Principal{token, found->subject_name};
}

}  // namespace fieldsync::server
