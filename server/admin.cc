#include "server/admin.h"

#include <cctype>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/model/validate.h"
#include "google/protobuf/util/time_util.h"
#include "server/log.h"
#include "server/tracker.h"

namespace fieldsync::server {

namespace {

constexpr int64_t kMaxTokenTtlSeconds = 10LL * 366 * 24 * 3600;

template <typename Response, typename Row>
Response PageOf(std::vector<Row>& rows, const PageRequest& page,
                google::protobuf::RepeatedPtrField<Row>* (Response::*field)()) {
  Response out;
  out.set_next_page_token(FinishPage<Row>(rows, page, [](const Row& r) { return r.id(); }));
  for (Row& r : rows) *(out.*field)()->Add() = std::move(r);
  return out;
}

}  // namespace

absl::StatusOr<v1::Partner> Admin::CreatePartner(const Principal& who, v1::Partner partner) {
  FS_RETURN_IF_ERROR(model::ValidatePartner(partner));
  if (partner.id().empty()) partner.set_id(NewUuidV7());
  return store_.CreatePartner(partner, who.actor());
}

absl::StatusOr<v1::Partner> Admin::UpdatePartner(const Principal& who, v1::Partner partner) {
  FS_RETURN_IF_ERROR(model::ValidateId("partner.id", partner.id(), /*allow_empty=*/false));
  FS_RETURN_IF_ERROR(model::ValidatePartner(partner));
  return store_.UpdatePartner(partner, who.actor());
}

absl::StatusOr<v1::Partner> Admin::GetPartner(const Principal& who, absl::string_view id) {
  FS_RETURN_IF_ERROR(model::ValidateId("id", id, /*allow_empty=*/false));
  return store_.GetPartner(id);
}

absl::StatusOr<v1::ListPartnersResponse> Admin::ListPartners(
    const Principal& who, const v1::ListPartnersRequest& request) {
  FS_ASSIGN_OR_RETURN(PageRequest page, PageFor(request.page_size(), request.page_token()));
  FS_ASSIGN_OR_RETURN(std::vector<v1::Partner> rows, store_.ListPartners(page));
  return PageOf(rows, page, &v1::ListPartnersResponse::mutable_partners);
}

absl::StatusOr<v1::User> Admin::CreateUser(const Principal& who, v1::User user) {
  FS_RETURN_IF_ERROR(model::ValidateUser(user));
  if (user.id().empty()) user.set_id(NewUuidV7());
  return store_.CreateUser(user, who.actor());
}

absl::StatusOr<v1::ListUsersResponse> Admin::ListUsers(const Principal& who,
                                                       const v1::ListUsersRequest& request) {
  FS_ASSIGN_OR_RETURN(PageRequest page, PageFor(request.page_size(), request.page_token()));
  FS_ASSIGN_OR_RETURN(std::vector<v1::User> rows, store_.ListUsers(page));
  return PageOf(rows, page, &v1::ListUsersResponse::mutable_users);
}

absl::StatusOr<v1::Device> Admin::CreateDevice(const Principal& who, v1::Device device) {
  FS_RETURN_IF_ERROR(model::ValidateDevice(device));
  if (device.id().empty()) device.set_id(NewUuidV7());
  return store_.CreateDevice(device, who.actor());
}

absl::StatusOr<v1::ListDevicesResponse> Admin::ListDevices(
    const Principal& who, const v1::ListDevicesRequest& request) {
  FS_RETURN_IF_ERROR(model::ValidateId("partner_id", request.partner_id(), /*allow_empty=*/true));
  FS_ASSIGN_OR_RETURN(PageRequest page, PageFor(request.page_size(), request.page_token()));
  FS_ASSIGN_OR_RETURN(std::vector<v1::Device> rows, store_.ListDevices(request.partner_id(), page));
  return PageOf(rows, page, &v1::ListDevicesResponse::mutable_devices);
}

namespace {

// Unambiguous when read aloud or typed on a phone: no 0/O, 1/I/L.
constexpr char kCodeAlphabet[] = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
constexpr int kCodeChars = 20;
constexpr int64_t kDefaultEnrollmentTtlSeconds = 7 * 24 * 3600;
constexpr int64_t kMaxEnrollmentTtlSeconds = 30 * 24 * 3600;

// Upper-cases and drops dashes and spaces, so "abcd-efgh" and "ABCDEFGH" are the same code.
std::string NormalizeCode(absl::string_view code) {
  std::string out;
  for (char c : code) {
    if (c == '-' || c == ' ') continue;
    out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

}  // namespace

absl::StatusOr<v1::CreateEnrollmentResponse> Admin::CreateEnrollment(
    const Principal& who, const v1::CreateEnrollmentRequest& request) {
  FS_RETURN_IF_ERROR(model::ValidateId("device_id", request.device_id(), /*allow_empty=*/false));
  if (request.ttl_seconds() < 0 || request.ttl_seconds() > kMaxEnrollmentTtlSeconds) {
    return absl::InvalidArgumentError(absl::StrCat("ttl_seconds: must be within [0, ",
                                                   kMaxEnrollmentTtlSeconds, "], got ",
                                                   request.ttl_seconds()));
  }
  absl::StatusOr<v1::Device> device = store_.GetDevice(request.device_id());
  if (device.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("device_id: device ", request.device_id(), " not found"));
  }
  FS_RETURN_IF_ERROR(device.status());
  if (device->has_disabled_at()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device_id: device ", device->id(),
        " is disabled; enable it (AdminService.EnableDevice) before making an enrollment code"));
  }
  const int alphabet = sizeof(kCodeAlphabet) - 1;
  std::string random = RandomBytes(kCodeChars);
  std::string code;
  for (int i = 0; i < kCodeChars; ++i) {
    if (i > 0 && i % 4 == 0) code.push_back('-');
    code.push_back(kCodeAlphabet[static_cast<unsigned char>(random[i]) % alphabet]);
  }
  int64_t ttl = request.ttl_seconds() == 0 ? kDefaultEnrollmentTtlSeconds : request.ttl_seconds();
  absl::Time expires = absl::Now() + absl::Seconds(ttl);
  FS_RETURN_IF_ERROR(store_.CreateEnrollment(device->id(), Sha256Hex(NormalizeCode(code)), expires,
                                             who.actor()));
  v1::CreateEnrollmentResponse out;
  out.set_code(code);
  *out.mutable_expires_at() =
      google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(expires));
  return out;
}

absl::StatusOr<v1::EnrollResponse> Admin::Enroll(absl::string_view code,
                                                 absl::string_view expected_device_id) {
  std::string normalized = NormalizeCode(code);
  if (normalized.size() != kCodeChars) {
    return absl::InvalidArgumentError(
        absl::StrCat("code: expected ", kCodeChars, " characters (dashes optional), got ",
                     normalized.size()));
  }
  FS_RETURN_IF_ERROR(model::ValidateId("device_id", expected_device_id, /*allow_empty=*/true));
  v1::EnrollResponse out;
  int64_t revoked_tokens = 0;
  // One transaction: a code is used if and only if its token was issued (on a full disk the
  // code stays valid), and the device's earlier tokens go in the same step, so that a phone
  // enrolled again leaves no second live credential behind.
  FS_RETURN_IF_ERROR(store_.RunInTransaction([&]() -> absl::Status {
    FS_ASSIGN_OR_RETURN(std::string device_id, store_.RedeemEnrollment(Sha256Hex(normalized)));
    if (!expected_device_id.empty() && device_id != expected_device_id) {
      // Rolled back with the rest: the code stays valid for its own device.
      return absl::FailedPreconditionError(
          absl::StrCat("device_id: the code enrolls another device, not ", expected_device_id,
                       " (the code stays valid for its own device)"));
    }
    FS_ASSIGN_OR_RETURN(v1::Device device, store_.GetDevice(device_id));
    if (device.has_disabled_at()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "code: device ", device.id(), " is disabled; HQ must enable it before it can enroll"));
    }
    const Actor actor{device.id()};
    FS_ASSIGN_OR_RETURN(int64_t revoked, store_.RevokeDeviceTokens(device.id(), actor));
    v1::Token token;
    token.set_device_id(device.id());
    token.set_role(v1::ROLE_FIELD_DEVICE);
    token.set_partner_id(device.partner_id());
    token.set_label("enrollment");
    FS_ASSIGN_OR_RETURN(v1::CreateTokenResponse issued, Issue(actor, std::move(token), 0));
    revoked_tokens = revoked;
    out.set_device_id(device.id());
    out.set_partner_id(device.partner_id());
    out.set_token(issued.secret());
    out.set_acked_device_seq(device.acked_device_seq());
    return absl::OkStatus();
  }));
  if (revoked_tokens > 0) {
    Log("info", absl::StrCat("enrollment of device=", out.device_id(), " revoked ", revoked_tokens,
                             " earlier token(s)"));
  }
  return out;
}

absl::StatusOr<v1::Device> Admin::SetDeviceDisabled(const Principal& who, absl::string_view id,
                                                    bool disabled) {
  FS_RETURN_IF_ERROR(model::ValidateId("id", id, /*allow_empty=*/false));
  FS_ASSIGN_OR_RETURN(v1::Device device, store_.SetDeviceDisabled(id, disabled, who.actor()));
  Log("info", absl::StrCat(disabled ? "disabled" : "enabled", " device=", device.id(),
                           " by=", who.actor().id));
  return device;
}

absl::StatusOr<v1::CreateTokenResponse> Admin::Issue(const Actor& actor, v1::Token token,
                                                     int64_t ttl_seconds) {
  std::string secret = NewTokenSecret();
  token.set_id(NewUuidV7());
  token.set_prefix(secret.substr(0, 8));
  if (ttl_seconds > 0) {
    *token.mutable_expires_at() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
        absl::ToUnixMicros(absl::Now() + absl::Seconds(ttl_seconds)));
  }
  FS_ASSIGN_OR_RETURN(v1::Token stored, store_.CreateToken(token, HashTokenSecret(secret), actor));
  v1::CreateTokenResponse out;
  *out.mutable_token() = std::move(stored);
  out.set_secret(std::move(secret));
  return out;
}

absl::StatusOr<v1::CreateTokenResponse> Admin::CreateToken(const Principal& who,
                                                           const v1::CreateTokenRequest& request) {
  if (request.user_id().empty() == request.device_id().empty()) {
    return absl::InvalidArgumentError("user_id: exactly one of user_id and device_id is required");
  }
  if (request.ttl_seconds() < 0 || request.ttl_seconds() > kMaxTokenTtlSeconds) {
    return absl::InvalidArgumentError(absl::StrCat("ttl_seconds: must be within [0, ",
                                                   kMaxTokenTtlSeconds, "], got ",
                                                   request.ttl_seconds()));
  }
  if (request.label().size() > 200) {
    return absl::InvalidArgumentError(
        absl::StrCat("label: must be at most 200 bytes, got ", request.label().size()));
  }
  v1::Token token;
  token.set_label(request.label());
  if (!request.user_id().empty()) {
    FS_RETURN_IF_ERROR(model::ValidateId("user_id", request.user_id(), /*allow_empty=*/false));
    absl::StatusOr<v1::User> user = store_.GetUser(request.user_id());
    if (user.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(absl::StrCat("user_id: user ", request.user_id(), " not found"));
    }
    FS_RETURN_IF_ERROR(user.status());
    token.set_user_id(user->id());
    token.set_role(user->role());
    token.set_partner_id(user->partner_id());
  } else {
    FS_RETURN_IF_ERROR(model::ValidateId("device_id", request.device_id(), /*allow_empty=*/false));
    absl::StatusOr<v1::Device> device = store_.GetDevice(request.device_id());
    if (device.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(
          absl::StrCat("device_id: device ", request.device_id(), " not found"));
    }
    FS_RETURN_IF_ERROR(device.status());
    token.set_device_id(device->id());
    token.set_role(v1::ROLE_FIELD_DEVICE);
    token.set_partner_id(device->partner_id());
  }
  return Issue(who.actor(), std::move(token), request.ttl_seconds());
}

absl::StatusOr<v1::ListTokensResponse> Admin::ListTokens(const Principal& who,
                                                         const v1::ListTokensRequest& request) {
  FS_RETURN_IF_ERROR(model::ValidateId("user_id", request.user_id(), /*allow_empty=*/true));
  FS_RETURN_IF_ERROR(model::ValidateId("device_id", request.device_id(), /*allow_empty=*/true));
  FS_ASSIGN_OR_RETURN(PageRequest page, PageFor(request.page_size(), request.page_token()));
  FS_ASSIGN_OR_RETURN(std::vector<v1::Token> rows,
                      store_.ListTokens(request.user_id(), request.device_id(), page));
  return PageOf(rows, page, &v1::ListTokensResponse::mutable_tokens);
}

absl::StatusOr<v1::Token> Admin::RevokeToken(const Principal& who, absl::string_view id) {
  FS_RETURN_IF_ERROR(model::ValidateId("id", id, /*allow_empty=*/false));
  return store_.RevokeToken(id, who.actor());
}

v1::WhoAmIResponse Admin::WhoAmI(const Principal& who) {
  v1::WhoAmIResponse out;
  *out.mutable_token() = who.token;
  out.set_name(who.name);
  return out;
}

absl::StatusOr<v1::BackupResponse> Admin::Backup(const Principal& who,
                                                  const v1::BackupRequest& request) {
  const std::string& path = request.path();
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "path: must be an absolute path on the server's host, got \"", path.substr(0, 200), "\""));
  }
  if (path.find('\0') != std::string::npos || path.back() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("path: must name a file, got \"", path.substr(0, 200), "\""));
  }
  std::error_code ec;
  const std::filesystem::path file(path);
  if (!std::filesystem::is_directory(file.parent_path(), ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "path: the folder ", file.parent_path().string(), " does not exist on the server"));
  }
  if (std::filesystem::symlink_status(file, ec).type() != std::filesystem::file_type::not_found) {
    return absl::AlreadyExistsError(
        absl::StrCat("path: ", path, " already exists; a backup never overwrites a file"));
  }
  FS_ASSIGN_OR_RETURN(BackupInfo info, store_.Backup(path));
  Log("info", absl::StrCat("backup by=", who.actor().id, " path=", info.path, " bytes=",
                           info.bytes, " head_seq=", info.head_seq, " epoch=", info.epoch));
  v1::BackupResponse out;
  out.set_path(info.path);
  out.set_bytes(info.bytes);
  out.set_head_seq(info.head_seq);
  out.set_head_hash(info.head_hash);
  out.set_epoch(info.epoch);
  return out;
}

absl::StatusOr<v1::CreateTokenResponse> Admin::BootstrapAdminToken(absl::string_view name) {
  Principal system = SystemPrincipal();
  // Reuse the user if it exists, so that running the command twice gives a second token for
  // the same admin rather than an error.
  std::string user_id;
  PageRequest page;
  page.page_size = 1000;
  while (user_id.empty()) {
    FS_ASSIGN_OR_RETURN(std::vector<v1::User> users, store_.ListUsers(page));
    for (const v1::User& u : users) {
      if (u.name() == name && u.role() == v1::ROLE_ADMIN) user_id = u.id();
    }
    if (static_cast<int>(users.size()) < page.page_size) break;
    page.after_id = users.back().id();
  }
  if (user_id.empty()) {
    v1::User user;
    user.set_name(std::string(name));
    user.set_role(v1::ROLE_ADMIN);
    FS_ASSIGN_OR_RETURN(v1::User created, CreateUser(system, user));
    user_id = created.id();
  }
  v1::Token token;
  token.set_user_id(user_id);
  token.set_role(v1::ROLE_ADMIN);
  token.set_label("bootstrap");
  return Issue(system.actor(), std::move(token), 0);
}

}  // namespace fieldsync::server
