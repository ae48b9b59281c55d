// Commands of AdminService: partners, users, devices, tokens, whoami.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/invocation.h"
#include "cli/listing.h"
#include "cli/output.h"
#include "cli/values.h"
#include "fieldsync/base/status_macros.h"

namespace fieldsync::cli {
namespace {

const EnumAliases& RoleAliases() {
  static const auto* const kAliases = new EnumAliases{
      {"admin", v1::ROLE_ADMIN},
      {"hq", v1::ROLE_HQ_VIEWER},
      {"auditor", v1::ROLE_AUDITOR},
      {"field", v1::ROLE_FIELD_DEVICE},
  };
  return *kAliases;
}

// Short role names, as --role takes them.
std::string RoleLabel(v1::Role role) {
  for (const auto& [name, number] : RoleAliases()) {
    if (number == role) return name;
  }
  return EnumLabel(role);
}

std::string TokenOwner(const v1::Token& token) {
  if (!token.user_id().empty()) return absl::StrCat("user ", token.user_id());
  if (!token.device_id().empty()) return absl::StrCat("device ", token.device_id());
  return "";
}

std::string TokenState(const v1::Token& token) {
  if (token.has_revoked_at()) return "revoked";
  if (token.has_expires_at() &&
      absl::FromUnixSeconds(token.expires_at().seconds()) <= absl::Now()) {
    return "expired";
  }
  return "active";
}

std::string Expiry(const v1::Token& token) {
  return token.has_expires_at() ? FormatTimestamp(token.expires_at()) : "never";
}

absl::Status ApplyPartnerFlags(const FlagValues& flags, v1::Partner* partner) {
  if (flags.Has("name")) partner->set_name(flags.Get("name"));
  if (flags.Has("countries")) {
    FS_ASSIGN_OR_RETURN(std::vector<std::string> countries,
                        ParseCodeList("countries", flags.Get("countries")));
    partner->clear_countries();
    for (std::string& country : countries) partner->add_countries(std::move(country));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunPartnersList(Invocation& inv) {
  static const auto* const kColumns = new std::vector<Column<v1::Partner>>{
      {{"ID"}, [](const v1::Partner& p) { return p.id(); }},
      {{"NAME", 40}, [](const v1::Partner& p) { return p.name(); }},
      {{"COUNTRIES", 30}, [](const v1::Partner& p) { return absl::StrJoin(p.countries(), ","); }},
      {{"UPDATED"}, [](const v1::Partner& p) { return FormatTimestamp(p.audit().updated_at()); }},
  };
  return ListAndPrint(inv, "partners", &AdminStub::ListPartners, v1::ListPartnersRequest(),
                      &v1::ListPartnersResponse::partners, *kColumns);
}

absl::Status RunPartnersGet(Invocation& inv) {
  v1::GetPartnerRequest request;
  request.set_id(inv.arg(0));
  v1::Partner partner;
  FS_RETURN_IF_ERROR(inv.Call(absl::StrCat("get partner ", inv.arg(0)), &AdminStub::GetPartner,
                              request, &partner));
  inv.Print(partner);
  return absl::OkStatus();
}

absl::Status RunPartnersCreate(Invocation& inv) {
  v1::CreatePartnerRequest request;
  FS_RETURN_IF_ERROR(ApplyPartnerFlags(inv.flags(), request.mutable_partner()));
  v1::Partner partner;
  FS_RETURN_IF_ERROR(inv.Call("create partner", &AdminStub::CreatePartner, request, &partner));
  inv.Print(partner);
  return absl::OkStatus();
}

absl::Status RunPartnersUpdate(Invocation& inv) {
  if (!inv.flags().Has("name") && !inv.flags().Has("countries")) {
    return UsageError("nothing to change: give --name or --countries");
  }
  const std::string what = absl::StrCat("update partner ", inv.arg(0));
  v1::GetPartnerRequest get;
  get.set_id(inv.arg(0));
  v1::UpdatePartnerRequest request;
  FS_RETURN_IF_ERROR(inv.Call(what, &AdminStub::GetPartner, get, request.mutable_partner()));
  FS_RETURN_IF_ERROR(ApplyPartnerFlags(inv.flags(), request.mutable_partner()));
  v1::Partner partner;
  FS_RETURN_IF_ERROR(inv.Call(what, &AdminStub::UpdatePartner, request, &partner));
  inv.Print(partner);
  return absl::OkStatus();
}

absl::Status RunUsersList(Invocation& inv) {
  static const auto* const kColumns = new std::vector<Column<v1::User>>{
      {{"ID"}, [](const v1::User& u) { return u.id(); }},
      {{"NAME", 40}, [](const v1::User& u) { return u.name(); }},
      {{"ROLE"}, [](const v1::User& u) { return RoleLabel(u.role()); }},
      {{"PARTNER"}, [](const v1::User& u) { return u.partner_id(); }},
      {{"CREATED"}, [](const v1::User& u) { return FormatTimestamp(u.created_at()); }},
  };
  return ListAndPrint(inv, "users", &AdminStub::ListUsers, v1::ListUsersRequest(),
                      &v1::ListUsersResponse::users, *kColumns);
}

absl::Status RunUsersCreate(Invocation& inv) {
  v1::CreateUserRequest request;
  v1::User& user = *request.mutable_user();
  user.set_name(inv.flags().Get("name"));
  FS_ASSIGN_OR_RETURN(
      int role, ParseEnum("role", inv.flags().Get("role"), v1::Role_descriptor(), RoleAliases()));
  user.set_role(static_cast<v1::Role>(role));
  user.set_partner_id(inv.flags().Get("partner"));
  v1::User created;
  FS_RETURN_IF_ERROR(inv.Call("create user", &AdminStub::CreateUser, request, &created));
  inv.Print(created);
  return absl::OkStatus();
}

absl::Status RunDevicesList(Invocation& inv) {
  static const auto* const kColumns = new std::vector<Column<v1::Device>>{
      {{"ID"}, [](const v1::Device& d) { return d.id(); }},
      {{"NAME", 40}, [](const v1::Device& d) { return d.name(); }},
      {{"PARTNER"}, [](const v1::Device& d) { return d.partner_id(); }},
      {{"CREATED"}, [](const v1::Device& d) { return FormatTimestamp(d.created_at()); }},
      {{"ACKED SEQ", 0, Align::kRight},
       [](const v1::Device& d) { return absl::StrCat(d.acked_device_seq()); }},
      {{"OPEN CONFLICTS", 0, Align::kRight},
       [](const v1::Device& d) { return absl::StrCat(d.open_conflicts()); }},
      {{"LAST SYNC"},
       [](const v1::Device& d) {
         return d.has_last_sync_at() ? FormatTimestamp(d.last_sync_at()) : "never";
       }},
      {{"STATE"},
       [](const v1::Device& d) {
         return d.has_disabled_at()
                    ? absl::StrCat("disabled since ", FormatTimestamp(d.disabled_at()))
                    : std::string("enabled");
       }},
  };
  v1::ListDevicesRequest request;
  request.set_partner_id(inv.flags().Get("partner"));
  return ListAndPrint(inv, "devices", &AdminStub::ListDevices, request,
                      &v1::ListDevicesResponse::devices, *kColumns);
}

absl::Status RunDevicesCreate(Invocation& inv) {
  v1::CreateDeviceRequest request;
  request.mutable_device()->set_partner_id(inv.flags().Get("partner"));
  request.mutable_device()->set_name(inv.flags().Get("name"));
  v1::Device device;
  FS_RETURN_IF_ERROR(inv.Call("create device", &AdminStub::CreateDevice, request, &device));
  inv.Print(device);
  return absl::OkStatus();
}

absl::Status RunDevicesEnrollCode(Invocation& inv) {
  v1::CreateEnrollmentRequest request;
  request.set_device_id(inv.arg(0));
  if (inv.flags().Has("ttl")) {
    FS_ASSIGN_OR_RETURN(int64_t ttl, ParseDurationSeconds("ttl", inv.flags().Get("ttl")));
    // 0 would ask the server for its default of 7 days, not for a code that never expires.
    if (ttl == 0) return UsageError("--ttl: an enrollment code must expire, e.g. 7d (at most 30d)");
    request.set_ttl_seconds(ttl);
  }
  const std::string what = absl::StrCat("create an enrollment code for device ", inv.arg(0));
  v1::CreateEnrollmentResponse response;
  FS_RETURN_IF_ERROR(inv.Call(what, &AdminStub::CreateEnrollment, request, &response));
  if (inv.json()) {
    PrintJson(inv.out(), response);
    return absl::OkStatus();
  }
  inv.out() << "Enrollment code for device " << inv.arg(0) << " (single use, valid until "
            << FormatTimestamp(response.expires_at()) << "):\n\n"
            << "    " << response.code() << "\n\n"
            << "On the device, run:\n"
            << "  fieldsync device enroll --code " << response.code() << " --server "
            << inv.options().server << "\n";
  return absl::OkStatus();
}

absl::Status RunDevicesDisable(Invocation& inv) {
  v1::DisableDeviceRequest request;
  request.set_id(inv.arg(0));
  v1::Device device;
  FS_RETURN_IF_ERROR(inv.Call(absl::StrCat("disable device ", inv.arg(0)),
                              &AdminStub::DisableDevice, request, &device));
  inv.Print(device);
  return absl::OkStatus();
}

absl::Status RunDevicesEnable(Invocation& inv) {
  v1::EnableDeviceRequest request;
  request.set_id(inv.arg(0));
  v1::Device device;
  FS_RETURN_IF_ERROR(inv.Call(absl::StrCat("enable device ", inv.arg(0)), &AdminStub::EnableDevice,
                              request, &device));
  inv.Print(device);
  return absl::OkStatus();
}

absl::Status RunTokensList(Invocation& inv) {
  static const auto* const kColumns = new std::vector<Column<v1::Token>>{
      {{"ID"}, [](const v1::Token& t) { return t.id(); }},
      {{"PREFIX"}, [](const v1::Token& t) { return t.prefix(); }},
      {{"ROLE"}, [](const v1::Token& t) { return RoleLabel(t.role()); }},
      {{"OWNER"}, TokenOwner},
      {{"LABEL", 30}, [](const v1::Token& t) { return t.label(); }},
      {{"EXPIRES"}, Expiry},
      {{"STATE"}, TokenState},
  };
  v1::ListTokensRequest request;
  request.set_user_id(inv.flags().Get("user"));
  request.set_device_id(inv.flags().Get("device"));
  return ListAndPrint(inv, "tokens", &AdminStub::ListTokens, request,
                      &v1::ListTokensResponse::tokens, *kColumns);
}

absl::Status RunTokensCreate(Invocation& inv) {
  const FlagValues& flags = inv.flags();
  if (flags.Has("user") == flags.Has("device")) {
    return UsageError("give exactly one of --user ID and --device ID");
  }
  v1::CreateTokenRequest request;
  request.set_user_id(flags.Get("user"));
  request.set_device_id(flags.Get("device"));
  request.set_label(flags.Get("label"));
  if (flags.Has("ttl")) {
    FS_ASSIGN_OR_RETURN(int64_t ttl, ParseDurationSeconds("ttl", flags.Get("ttl")));
    request.set_ttl_seconds(ttl);
  }
  v1::CreateTokenResponse response;
  FS_RETURN_IF_ERROR(inv.Call("create token", &AdminStub::CreateToken, request, &response));
  if (inv.json()) {
    PrintJson(inv.out(), response);
    return absl::OkStatus();
  }
  const v1::Token& token = response.token();
  inv.out() << "Created token " << token.id() << " for " << TokenOwner(token) << " (role "
            << RoleLabel(token.role()) << "), expires: " << Expiry(token) << ".\n"
            << "The secret is shown only this once; store it safely:\n\n"
            << "  " << response.secret() << "\n\n";
  return absl::OkStatus();
}

absl::Status RunTokensRevoke(Invocation& inv) {
  v1::RevokeTokenRequest request;
  request.set_id(inv.arg(0));
  v1::Token token;
  FS_RETURN_IF_ERROR(inv.Call(absl::StrCat("revoke token ", inv.arg(0)), &AdminStub::RevokeToken,
                              request, &token));
  inv.Print(token);
  return absl::OkStatus();
}

absl::Status RunAdminBackup(Invocation& inv) {
  v1::BackupRequest request;
  request.set_path(inv.arg(0));
  v1::BackupResponse response;
  FS_RETURN_IF_ERROR(inv.Call(absl::StrCat("backup to ", inv.arg(0)), &AdminStub::Backup,
                              request, &response));
  if (inv.json()) {
    PrintJson(inv.out(), response);
    return absl::OkStatus();
  }
  PrintPairs(inv.out(), {{"path", response.path()},
                         {"bytes", absl::StrCat(response.bytes())},
                         {"head_seq", absl::StrCat(response.head_seq())},
                         {"head_hash", response.head_hash()},
                         {"epoch", response.epoch()}});
  return absl::OkStatus();
}

absl::Status RunWhoAmI(Invocation& inv) {
  v1::WhoAmIResponse response;
  FS_RETURN_IF_ERROR(inv.Call("whoami", &AdminStub::WhoAmI, v1::WhoAmIRequest(), &response));
  if (inv.json()) {
    PrintJson(inv.out(), response);
    return absl::OkStatus();
  }
  const v1::Token& token = response.token();
  std::vector<std::pair<std::string, std::string>> pairs = {
      {"name", response.name()},
      {"role", RoleLabel(token.role())},
      {"principal", TokenOwner(token)},
  };
  if (!token.partner_id().empty()) pairs.emplace_back("partner", token.partner_id());
  pairs.emplace_back("token", absl::StrCat(token.id(), " (", token.prefix(), "…)"));
  if (!token.label().empty()) pairs.emplace_back("label", token.label());
  pairs.emplace_back("expires", Expiry(token));
  PrintPairs(inv.out(), pairs);
  return absl::OkStatus();
}

}  // namespace fieldsync::cli
