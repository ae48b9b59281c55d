#include "server/call_guard.h"

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <grpcpp/impl/call.h>
#include <grpcpp/impl/call_op_set.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "server/grpc_status.h"
#include "server/rpc.h"
#include "server/wire_check.h"

namespace fieldsync::server {
// Names the one specialization below.
struct GuardedCallIo;
}  // namespace fieldsync::server

// gRPC lets only its own handler templates wait on a synchronous call's operations (the
// completion queue's Pluck and the server context's metadata are private to them). The guard
// reads the request before the service's handler runs, so it needs the same two steps: this
// specialization, on a type of ours, of one of those friend templates provides them.
namespace grpc::internal {
template <>
class TemplatedBidiStreamingHandler<fieldsync::server::GuardedCallIo, false> {
 public:
  // Reads the call's next message into `buffer`; false if none came.
  static bool Read(Call* call, grpc::ByteBuffer* buffer) {
    CallOpSet<CallOpRecvMessage<grpc::ByteBuffer>> ops;
    ops.RecvMessage(buffer);
    call->PerformOps(&ops);
    return call->cq()->Pluck(&ops) && ops.got_message;
  }
  // Ends the call with `status` and no response message.
  static void Finish(const MethodHandler::HandlerParameter& param, const grpc::Status& status) {
    CallOpSet<CallOpSendInitialMetadata, CallOpServerSendStatus> ops;
    ServerContextBase* ctx = param.server_context;
    if (!ctx->sent_initial_metadata_) {
      ops.SendInitialMetadata(&ctx->initial_metadata_, ctx->initial_metadata_flags());
      ctx->sent_initial_metadata_ = true;
    }
    ops.ServerSendStatus(&ctx->trailing_metadata_, status);
    param.call->PerformOps(&ops);
    param.call->cq()->Pluck(&ops);
  }
};
}  // namespace grpc::internal

namespace fieldsync::server {
namespace {

using CallIo = grpc::internal::TemplatedBidiStreamingHandler<GuardedCallIo, false>;

const google::protobuf::ServiceDescriptor& ServiceNamed(const char* name) {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
  // The generated service and its descriptor come from the same .proto: a missing one is a
  // build mistake, found by the first test that starts a server.
  if (service == nullptr) {
    std::fprintf(stderr, "fieldsyncd: no descriptor for service %s\n", name);
    std::abort();
  }
  return *service;
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// A copy of `buffer` as the C type gRPC's deserializers take; they destroy it.
grpc_byte_buffer* CopyToCore(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::vector<grpc_slice> raw;
  raw.reserve(slices.size());
  for (const grpc::Slice& s : slices) raw.push_back(s.c_slice());  // a new reference each
  grpc_byte_buffer* out = grpc_raw_byte_buffer_create(raw.data(), raw.size());
  for (grpc_slice& s : raw) grpc_slice_unref(s);
  return out;
}

}  // namespace

class CallGuard::Handler : public grpc::internal::MethodHandler {
 public:
  Handler(CallGuard& guard, grpc::internal::MethodHandler* inner,
          const google::protobuf::MethodDescriptor& method, bool public_service)
      : guard_(guard),
        inner_(inner),
        path_(absl::StrCat("/", method.service()->full_name(), "/", method.name())),
        request_type_(*method.input_type()),
        public_(public_service || IsPublic(path_)),
        // Enroll's request holds a credential (the code); health checks hold none.
        credential_in_request_(!public_service && IsPublic(path_)),
        server_streaming_(method.server_streaming()) {}

  void RunHandler(const HandlerParameter& param) final {
    auto* ctx = static_cast<grpc::ServerContext*>(param.server_context);
    const std::string peer = PeerAddress(ctx->peer());
    std::optional<Principal> who;
    if (public_) {
      if (credential_in_request_) {
        if (absl::Status s = guard_.throttle_.Check(peer); !s.ok()) return Finish(param, s);
      }
      who.emplace();
    } else {
      const std::string authorization = AuthorizationOf(*ctx);
      if (!authorization.empty()) {
        if (absl::Status s = guard_.throttle_.Check(peer); !s.ok()) return Finish(param, s);
      }
      absl::StatusOr<Principal> authorized = guard_.auth_.Authorize(authorization, path_);
      if (!authorized.ok()) {
        if (authorized.status().code() == absl::StatusCode::kUnauthenticated &&
            !authorization.empty()) {
          guard_.throttle_.RecordFailure(peer);
        }
        return Finish(param, authorized.status());
      }
      who = std::move(*authorized);
    }

    StreamLimiter::Slot stream;
    if (server_streaming_) {
      absl::StatusOr<StreamLimiter::Slot> slot = guard_.streams_.Admit(who->token.id());
      if (!slot.ok()) return Finish(param, slot.status());
      stream = std::move(*slot);
    }

    // Requests of callers without a token are read a few at a time.
    struct PublicRead {
      std::atomic<int64_t>* count = nullptr;
      void Release() {
        if (count != nullptr) count->fetch_sub(1);
        count = nullptr;
      }
      ~PublicRead() { Release(); }
    } public_read;
    if (public_) {
      if (guard_.public_reads_.fetch_add(1) >= guard_.limits_.max_public_reads) {
        guard_.public_reads_.fetch_sub(1);
        return Finish(param,
                      RetryLater(absl::StrCat("server busy: ", guard_.limits_.max_public_reads,
                                              " calls without a token are being read"),
                                 1000));
      }
      public_read.count = &guard_.public_reads_;
    }

    grpc::ByteBuffer buffer;
    if (!CallIo::Read(param.call, &buffer)) {
      return Finish(param, absl::InvalidArgumentError(absl::StrCat(
                               request_type_.name(), ": the call carried no request message")));
    }
    if (public_ &&
        static_cast<int64_t>(buffer.Length()) > guard_.limits_.max_public_request_bytes) {
      return Finish(param, absl::ResourceExhaustedError(
                               absl::StrCat(request_type_.name(), ": ", buffer.Length(),
                                            " bytes; a call without a token may send at most ",
                                            guard_.limits_.max_public_request_bytes)));
    }

    grpc::Status parsed;
    void* handler_data = nullptr;
    void* request =
        inner_->Deserialize(param.call->call(), CopyToCore(buffer), &parsed, &handler_data);
    if (request == nullptr || !parsed.ok()) {
      return Finish(param,
                    absl::InvalidArgumentError(DescribeMalformed(request_type_, Flatten(buffer))));
    }
    buffer.Clear();
    public_read.Release();

    PreAuthorized authorized(ctx, &*who);
    inner_->RunHandler(HandlerParameter(param.call, param.server_context, request, grpc::Status::OK,
                                        handler_data, nullptr));
  }

 private:
  // Answers the call with `status` alone (no response message).
  static void Finish(const HandlerParameter& param, const absl::Status& status) {
    if (int64_t ms = RetryAfterMs(status); ms >= 0) {
      param.server_context->AddTrailingMetadata(kRetryAfterMetadata, std::to_string(ms));
    }
    CallIo::Finish(param, ToGrpcStatus(status));
  }

  CallGuard& guard_;
  grpc::internal::MethodHandler* const inner_;  // owned by the wrapped service
  const std::string path_;
  const google::protobuf::Descriptor& request_type_;
  const bool public_;
  const bool credential_in_request_;
  const bool server_streaming_;
};

namespace {

class OpenCallLimit final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  OpenCallLimit(std::string method, int64_t max_open)
      : method_(std::move(method)), max_open_(max_open) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    if (info->method() == nullptr || method_ != info->method()) return nullptr;
    const bool over = open_.fetch_add(1) >= max_open_;
    return new Counted(this, over ? info->server_context() : nullptr);
  }

 private:
  // Lives as long as its call: counts it, and cancels it at once if it is one too many.
  class Counted final : public grpc::experimental::Interceptor {
   public:
    Counted(OpenCallLimit* limit, grpc::ServerContextBase* cancel)
        : limit_(limit), cancel_(cancel) {}
    ~Counted() override { limit_->open_.fetch_sub(1); }
    void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
      if (cancel_ != nullptr &&
          methods->QueryInterceptionHookPoint(
              grpc::experimental::InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
        cancel_->TryCancel();
        cancel_ = nullptr;
      }
      methods->Proceed();
    }

   private:
    OpenCallLimit* const limit_;
    grpc::ServerContextBase* cancel_;
  };

  const std::string method_;
  const int64_t max_open_;
  std::atomic<int64_t> open_{0};
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewOpenCallLimit(
    std::string method, int64_t max_open) {
  return std::make_unique<OpenCallLimit>(std::move(method), max_open);
}

int CallGuard::MethodCount(const char* service_name) {
  return ServiceNamed(service_name).method_count();
}

grpc::internal::MethodHandler* CallGuard::NewHandler(CallGuard& guard,
                                                     grpc::internal::MethodHandler* inner,
                                                     const char* service_name, int index,
                                                     bool public_service) {
  const google::protobuf::MethodDescriptor& method = *ServiceNamed(service_name).method(index);
  return new Handler(guard, inner, method, public_service);
}

}  // namespace fieldsync::server
