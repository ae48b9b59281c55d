// Credentials as a client sends them: the "authorization" metadata value of any RPC
// (Authenticator::Authorize, against a real SqliteStore) and the one-time enrollment code of
// SyncService.Enroll (Admin::Enroll).
//
// Input: one selector byte, then the bytes of the header value (or of the code). The selector
// picks the method called (every method of the policy table, plus one unknown method); with
// bit 7 set the bytes are an enrollment code instead.
//
// The store holds tokens with known secrets: a valid ADMIN token, a valid device token, a
// revoked and an expired one (fuzz/auth.dict has them), and one enrollment code.
//
// Checked: only "Bearer <secret of a valid token>" (any case of "Bearer") passes, and only for
// a method its role may call (or a public method); every refusal is UNAUTHENTICATED or
// PERMISSION_DENIED and never repeats the secret; an enrollment code passes only if it
// normalises to the real code, and then once; its refusals are INVALID_ARGUMENT or NOT_FOUND.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fieldsync/base/ids.h"
#include "fuzz/fixture.h"
#include "google/protobuf/util/time_util.h"
#include "server/admin.h"
#include "server/auth.h"

namespace fieldsync::fuzz {
namespace {

// "fs_" + 43 characters, like NewTokenSecret().
std::string Secret(char c) { return absl::StrCat("fs_", std::string(43, c)); }
const char kEnrollmentCode[] = "ABCDEFGHJKMNPQRSTUVW";  // 20 characters of the code alphabet

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "auth_fuzzer: %s\n", what.c_str());
  std::abort();
}

struct State {
  DemoWorld world;
  std::unique_ptr<server::Admin> admin;
  std::unique_ptr<server::Authenticator> auth;
  std::vector<std::string> methods;
  bool enrolled = false;
};

void AddToken(server::Store& store, v1::Token token, char secret_char, bool revoke,
              bool expired) {
  std::string secret = Secret(secret_char);
  token.set_id(NewUuidV7());
  token.set_prefix(secret.substr(0, 8));
  if (expired) {
    *token.mutable_expires_at() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
        absl::ToUnixMicros(absl::Now() - absl::Hours(1)));
  }
  absl::StatusOr<v1::Token> stored =
      store.CreateToken(token, server::HashTokenSecret(secret), server::Actor{"system"});
  CheckOk(stored.status(), "create token");
  if (revoke) CheckOk(store.RevokeToken(stored->id(), server::Actor{"system"}).status(), "revoke");
}

State& S() {
  static State* s = [] {
    auto* s = new State();
    s->world = OpenDemoWorld(NewScratchDir() + "/auth.db");
    server::Store& store = *s->world.store;
    s->admin = std::make_unique<server::Admin>(store);
    s->auth = std::make_unique<server::Authenticator>(store);
    v1::User user;
    user.set_name("fuzz-admin");
    user.set_role(v1::ROLE_ADMIN);
    absl::StatusOr<v1::User> admin = s->admin->CreateUser(server::SystemPrincipal(), user);
    CheckOk(admin.status(), "create user");
    v1::Token t;
    t.set_user_id(admin->id());
    t.set_role(v1::ROLE_ADMIN);
    AddToken(store, t, 'A', false, false);
    AddToken(store, t, 'R', /*revoke=*/true, false);
    AddToken(store, t, 'E', false, /*expired=*/true);
    v1::Token d;
    d.set_device_id(kDeviceId);
    d.set_role(v1::ROLE_FIELD_DEVICE);
    d.set_partner_id(s->world.partner_id);
    AddToken(store, d, 'D', false, false);
    CheckOk(store.CreateEnrollment(kDeviceId, Sha256Hex(kEnrollmentCode),
                                   absl::Now() + absl::Hours(24 * 365), server::Actor{"system"}),
            "create enrollment");
    s->methods = server::PolicyMethods();
    s->methods.push_back("/fieldsync.v1.TrackerService/NoSuchMethod");
    return s;
  }();
  return *s;
}

void CheckEnroll(State& s, absl::string_view code) {
  absl::StatusOr<v1::EnrollResponse> enrolled = s.admin->Enroll(code);
  std::string normalized;
  for (char c : code) {
    if (c != '-' && c != ' ') normalized.push_back(absl::ascii_toupper(c));
  }
  if (enrolled.ok()) {
    if (s.enrolled || normalized != kEnrollmentCode) {
      Fail(absl::StrCat("enrolled with a code that should not pass: ", code));
    }
    s.enrolled = true;
    if (enrolled->device_id() != kDeviceId) Fail("enrolled the wrong device");
    absl::StatusOr<server::Principal> who = s.auth->Authorize(
        absl::StrCat("Bearer ", enrolled->token()), "/fieldsync.v1.SyncService/Push");
    if (!who.ok() || who->token.device_id() != kDeviceId) {
      Fail("the token from enrollment does not authorize the device");
    }
    return;
  }
  absl::StatusCode code_of = enrolled.status().code();
  if (code_of != absl::StatusCode::kInvalidArgument && code_of != absl::StatusCode::kNotFound) {
    Fail(absl::StrCat("Enroll answered ", enrolled.status().ToString()));
  }
}

}  // namespace
}  // namespace fieldsync::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldsync;
  using namespace fieldsync::fuzz;
  if (size < 1) return 0;
  State& s = S();
  absl::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 0x80) {
    CheckEnroll(s, rest);
    return 0;
  }
  const std::string& method = s.methods[data[0] % s.methods.size()];
  absl::StatusOr<server::Principal> who = s.auth->Authorize(rest, method);
  const bool bearer = absl::StartsWithIgnoreCase(rest, "Bearer ");
  absl::string_view secret = bearer ? rest.substr(7) : absl::string_view();
  if (server::IsPublic(method)) {
    if (!who.ok()) Fail(absl::StrCat("public method ", method, " refused"));
    return 0;
  }
  std::vector<v1::Role> roles = server::RolesFor(method);
  auto allowed = [&](v1::Role r) { return std::find(roles.begin(), roles.end(), r) != roles.end(); };
  const bool valid_admin = bearer && secret == Secret('A');
  // Enrolling the device revokes its earlier tokens (one live credential per device), 'D'
  // among them.
  const bool valid_device = bearer && secret == Secret('D') && !s.enrolled;
  if (who.ok()) {
    if (!(valid_admin && allowed(v1::ROLE_ADMIN)) &&
        !(valid_device && allowed(v1::ROLE_FIELD_DEVICE))) {
      Fail(absl::StrCat("authorized a call that must be refused, method ", method));
    }
    if (valid_device && (who->token.device_id() != kDeviceId ||
                         who->partner_id() != s.world.partner_id)) {
      Fail("device principal with the wrong device or partner");
    }
    return 0;
  }
  absl::StatusCode code = who.status().code();
  if (code == absl::StatusCode::kPermissionDenied) {
    if (!valid_admin && !valid_device) Fail("PERMISSION_DENIED for an invalid credential");
  } else if (code == absl::StatusCode::kUnauthenticated) {
    if ((valid_admin && allowed(v1::ROLE_ADMIN)) ||
        (valid_device && allowed(v1::ROLE_FIELD_DEVICE))) {
      Fail(absl::StrCat("refused a valid credential for ", method));
    }
    if ((valid_admin || valid_device)) Fail("UNAUTHENTICATED for a valid credential");
  } else {
    Fail(absl::StrCat("Authorize answered ", who.status().ToString()));
  }
  if (secret.size() >= 12 && absl::StrContains(who.status().message(), secret)) {
    Fail("an error message repeats the secret");
  }
  return 0;
}
