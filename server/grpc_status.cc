#include "server/grpc_status.h"

#include <string>

namespace fieldsync::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // INTERNAL and DATA_LOSS carry details a client cannot act on; keep them short but present.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace fieldsync::server
