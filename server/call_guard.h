// CallGuard: what every call of fieldsyncd's services passes before its request is read.
//
// gRPC's synchronous server reads and parses a unary request before any code of ours runs, so
// an unauthenticated caller could make the server hold and parse messages up to the receive
// limit (a 4 MiB message of a million unknown fields takes ~15 MiB to parse), and a request
// that is not valid protobuf was answered INTERNAL with an empty message. Guarded services are
// registered so that gRPC does not read the request itself (as "streamed" methods); the guard
//   1. refuses a peer that has failed authentication too often (AuthFailureThrottle),
//   2. authorizes the call from its metadata alone (auth.h's policy table),
//   3. takes a place for a server stream (StreamLimiter),
//   4. for calls without a token (Enroll, health checks): takes one of a few places for reading
//      requests, and refuses requests above CallLimits::max_public_request_bytes,
//   5. reads and parses the request, answering INVALID_ARGUMENT naming the field on bad bytes
//      (wire_check.h),
// and then runs the service's own handler, which finds the principal already established
// (AuthorizeCall in rpc.h).
//
//   CallGuard guard(auth, throttle, streams, CallLimits{});
//   std::unique_ptr<grpc::Service> sync = guard.Wrap<v1::SyncService>(sync_impl);
//   builder.RegisterService(sync.get());   // sync_impl itself is not registered
#ifndef FIELDSYNC_SERVER_CALL_GUARD_H_
#define FIELDSYNC_SERVER_CALL_GUARD_H_

#include <grpcpp/impl/service_type.h>
#include <grpcpp/support/method_handler.h>
#include <grpcpp/support/server_interceptor.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "server/auth.h"
#include "server/rate_limit.h"

namespace google::protobuf {
class Descriptor;
}

namespace fieldsync::server {

struct CallLimits {
  // Largest request of a call that needs no token (SyncService.Enroll, grpc.health.v1.Health),
  // in bytes; larger ones get RESOURCE_EXHAUSTED unparsed. Default 64 KiB.
  int64_t max_public_request_bytes = 64 << 10;
  // Requests of calls without a token read at once; more get RESOURCE_EXHAUSTED unread, so that
  // such callers cannot make the server hold more than this many messages. Default 8.
  int64_t max_public_reads = 8;
};

class CallGuard {
 public:
  // All referenced objects must outlive the guard and the services it wraps.
  CallGuard(const Authenticator& auth, AuthFailureThrottle& throttle, StreamLimiter& streams,
            CallLimits limits)
      : auth_(auth), throttle_(throttle), streams_(streams), limits_(limits) {}

  // A service with the methods of `inner` (an implementation of the generated service of
  // `Generated`, e.g. v1::SyncService), each guarded as above. Register it instead of `inner`,
  // which must outlive it. Calls of `public_service` need no token at all (health checks);
  // otherwise auth.h's policy table decides.
  template <class Generated>
  std::unique_ptr<grpc::Service> Wrap(typename Generated::Service& inner,
                                      bool public_service = false) {
    return std::make_unique<Guarded<typename Generated::Service>>(
        *this, inner, Generated::service_full_name(), public_service);
  }

 private:
  class Handler;
  friend class Handler;

  // Accessor of a generated service's protected handler table.
  template <class Service>
  struct HandlerOf : Service {
    static grpc::internal::MethodHandler* Get(Service& s, int index) {
      return (s.*&HandlerOf::GetHandler)(index);
    }
  };

  template <class Service>
  class Guarded : public Service {
   public:
    Guarded(CallGuard& guard, Service& inner, const char* name, bool public_service) {
      for (int i = 0; i < CallGuard::MethodCount(name); ++i) {
        this->MarkMethodStreamed(i, CallGuard::NewHandler(guard, HandlerOf<Service>::Get(inner, i),
                                                          name, i, public_service));
      }
    }
  };

  static int MethodCount(const char* service_name);
  static grpc::internal::MethodHandler* NewHandler(CallGuard& guard,
                                                   grpc::internal::MethodHandler* inner,
                                                   const char* service_name, int index,
                                                   bool public_service);

  const Authenticator& auth_;
  AuthFailureThrottle& throttle_;
  StreamLimiter& streams_;
  const CallLimits limits_;
  std::atomic<int64_t> public_reads_{0};
};

// For a service the guard cannot wrap (gRPC's server reflection, registered by its plugin): at
// most `max_open` calls of `method` run at once; a call beyond is cancelled before its request
// is read (the client sees CANCELLED). Each call may still send one message up to the receive
// limit at a time, so this bounds what such callers make the server hold.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewOpenCallLimit(
    std::string method, int64_t max_open);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_CALL_GUARD_H_
