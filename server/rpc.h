// The shape every RPC handler shares: authorize the call (auth.h's policy table), run the
// domain operation, convert its status. Handlers are one line each:
//
//   grpc::Status CreateProject(grpc::ServerContext* ctx, const v1::CreateProjectRequest* req,
//                              v1::Project* resp) override {
//     return Handle(ctx, "CreateProject", resp, [&](const Principal& who) {
//       return tracker_.CreateProject(who, req->project());
//     });
//   }
#ifndef FIELDSYNC_SERVER_RPC_H_
#define FIELDSYNC_SERVER_RPC_H_

#include <grpcpp/server_context.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "server/auth.h"
#include "server/grpc_status.h"

namespace fieldsync::server {

// The "authorization" metadata of a call, or "" if absent.
std::string AuthorizationOf(const grpc::ServerContext& ctx);

// The principal the call guard (call_guard.h) established for the call `ctx` while it runs the
// call's handler on this thread, so that the handler does not look the token up again.
class PreAuthorized {
 public:
  PreAuthorized(const grpc::ServerContextBase* ctx, const Principal* who);
  ~PreAuthorized();
  PreAuthorized(const PreAuthorized&) = delete;
  PreAuthorized& operator=(const PreAuthorized&) = delete;
  // The principal of `ctx` if it is the call being guarded on this thread, else nullptr.
  static const Principal* For(const grpc::ServerContextBase* ctx);

 private:
  const grpc::ServerContextBase* previous_ctx_;
  const Principal* previous_who_;
};

// The caller of `method` ("/fieldsync.v1.TrackerService/GetProject"): the principal the call
// guard established, or Authenticator::Authorize on the call's metadata.
absl::StatusOr<Principal> AuthorizeCall(const Authenticator& auth, const grpc::ServerContext& ctx,
                                        absl::string_view method);

// Authorizes a call of `service`/`method` and, if allowed, stores the result of `op` in
// `*response`. `op` takes the Principal and returns absl::StatusOr<Response>.
template <typename Response, typename Op>
grpc::Status Handle(const Authenticator& auth, grpc::ServerContext* ctx,
                    absl::string_view service, absl::string_view method, Response* response,
                    Op&& op) {
  absl::StatusOr<Principal> who =
      AuthorizeCall(auth, *ctx, absl::StrCat("/", service, "/", method));
  if (!who.ok()) return ToGrpcStatus(who.status());
  absl::StatusOr<Response> result = op(*who);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_RPC_H_
