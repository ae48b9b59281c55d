// The one place where absl::Status becomes grpc::Status (the canonical codes map one to one).
#ifndef FIELDSYNC_SERVER_GRPC_STATUS_H_
#define FIELDSYNC_SERVER_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace fieldsync::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_GRPC_STATUS_H_
