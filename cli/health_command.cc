// fieldsync health: grpc.health.v1.Health/Check against fieldsyncd, with no token, for probes.
#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/invocation.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace fieldsync::cli {

absl::Status RunHealth(Invocation& inv) {
  using grpc::health::v1::Health;
  using grpc::health::v1::HealthCheckRequest;
  using grpc::health::v1::HealthCheckResponse;
  HealthCheckRequest request;
  request.set_service(inv.flags().Get("service"));
  HealthCheckResponse response;
  FS_RETURN_IF_ERROR(inv.CallWithoutToken(
      "health check",
      [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context) {
        return Health::NewStub(channel)->Check(context, request, &response);
      }));
  const std::string status = HealthCheckResponse::ServingStatus_Name(response.status());
  if (inv.json()) {
    inv.out() << "{\"status\":\"" << status << "\"}\n";
  } else {
    inv.out() << status << "\n";
  }
  if (response.status() == HealthCheckResponse::SERVING) return absl::OkStatus();
  // Exit 3, as for a server that cannot be reached: a probe treats both alike.
  return WithHint(absl::UnavailableError(absl::StrCat("health check: fieldsyncd at ",
                                                      inv.options().server, " answers ", status)),
                  "it is draining before a stop, or starting; send calls elsewhere meanwhile");
}

}  // namespace fieldsync::cli
