// grpc.health.v1.Health for fieldsyncd, answered by the server itself (not gRPC's built-in
// service, which reads and parses any request up to the receive limit before a line of ours
// runs): registered behind the call guard (call_guard.h) like every other service, so a health
// check without a token is read only within CallLimits.
//
//   HealthService health({"fieldsync.v1.SyncService", ...});   // "" (the server) is implied
//   health.SetServing(false);   // all NOT_SERVING: draining before a stop
//
// Check answers SERVING or NOT_SERVING for "" and each service named at construction, and
// NOT_FOUND for any other name (as the protocol asks). Watch sends the current status, then each
// change, until the caller goes away or Shutdown(). Thread-safe.
#ifndef FIELDSYNC_SERVER_HEALTH_H_
#define FIELDSYNC_SERVER_HEALTH_H_

#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace fieldsync::server {

class HealthService final : public grpc::health::v1::Health::Service {
 public:
  explicit HealthService(const std::vector<std::string>& services);

  // SERVING (true) or NOT_SERVING (false) for the server and every service; no effect after
  // Shutdown().
  void SetServing(bool serving);
  // NOT_SERVING for good; open Watch streams end.
  void Shutdown();

  grpc::Status Check(grpc::ServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req,
                     grpc::health::v1::HealthCheckResponse* resp) override;
  grpc::Status Watch(grpc::ServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  using Status = grpc::health::v1::HealthCheckResponse::ServingStatus;

  absl::Mutex mu_;
  std::map<std::string, Status> statuses_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped on every change, so that watchers notice one.
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_HEALTH_H_
