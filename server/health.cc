#include "server/health.h"

#include <grpcpp/server_context.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace fieldsync::server {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

HealthService::HealthService(const std::vector<std::string>& services) {
  statuses_[""] = HealthCheckResponse::SERVING;
  for (const std::string& name : services) statuses_[name] = HealthCheckResponse::SERVING;
}

void HealthService::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  for (auto& [name, status] : statuses_) {
    status = serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
  }
  ++generation_;
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  for (auto& [name, status] : statuses_) status = HealthCheckResponse::NOT_SERVING;
  shut_down_ = true;
  ++generation_;
}

grpc::Status HealthService::Check(grpc::ServerContext*, const HealthCheckRequest* req,
                                  HealthCheckResponse* resp) {
  absl::MutexLock lock(&mu_);
  auto it = statuses_.find(req->service());
  if (it == statuses_.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("service: \"", req->service(),
                                     "\" is not served here (\"\" asks for the whole server)"));
  }
  resp->set_status(it->second);
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* ctx, const HealthCheckRequest* req,
                                  grpc::ServerWriter<HealthCheckResponse>* writer) {
  int64_t seen = -1;
  while (!ctx->IsCancelled()) {
    HealthCheckResponse resp;
    bool last = false;
    {
      absl::MutexLock lock(&mu_);
      // Wake on a change, or every second to notice a caller that went away.
      auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return generation_ != seen; };
      mu_.AwaitWithTimeout(absl::Condition(&changed), absl::Seconds(1));
      if (generation_ == seen) continue;
      seen = generation_;
      auto it = statuses_.find(req->service());
      resp.set_status(it == statuses_.end() ? HealthCheckResponse::SERVICE_UNKNOWN : it->second);
      last = shut_down_;
    }
    if (!writer->Write(resp) || last) break;
  }
  return grpc::Status::OK;
}

}  // namespace fieldsync::server
