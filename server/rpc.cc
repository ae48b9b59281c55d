#include "server/rpc.h"

namespace fieldsync::server {

std::string AuthorizationOf(const grpc::ServerContext& ctx) {
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

namespace {
thread_local const grpc::ServerContextBase* guarded_ctx = nullptr;
thread_local const Principal* guarded_who = nullptr;
}  // namespace

PreAuthorized::PreAuthorized(const grpc::ServerContextBase* ctx, const Principal* who)
    : previous_ctx_(guarded_ctx), previous_who_(guarded_who) {
  guarded_ctx = ctx;
  guarded_who = who;
}

PreAuthorized::~PreAuthorized() {
  guarded_ctx = previous_ctx_;
  guarded_who = previous_who_;
}

const Principal* PreAuthorized::For(const grpc::ServerContextBase* ctx) {
  return ctx != nullptr && ctx == guarded_ctx ? guarded_who : nullptr;
}

absl::StatusOr<Principal> AuthorizeCall(const Authenticator& auth, const grpc::ServerContext& ctx,
                                        absl::string_view method) {
  if (const Principal* who = PreAuthorized::For(&ctx)) return *who;
  return auth.Authorize(AuthorizationOf(ctx), method);
}

}  // namespace fieldsync::server
