#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/admin.h"
#include "server/auth.h"
#include "server/services.h"
#include "server/tracker.h"

namespace fieldsync::server {

struct FieldsyncServer::Services {
  explicit Services(Store& store)
      : auth(store), tracker(store), admin(store), syncer(store, admin),
        tracker_service(auth, tracker, stopping), admin_service(auth, admin),
        sync_service(auth, syncer) {}
  std::atomic<bool> stopping{false};
  Authenticator auth;
  Tracker tracker;
  Admin admin;
  Syncer syncer;
  TrackerServiceImpl tracker_service;
  AdminServiceImpl admin_service;
  SyncServiceImpl sync_service;
};

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

FieldsyncServer::~FieldsyncServer() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
}

absl::StatusOr<std::unique_ptr<FieldsyncServer>> FieldsyncServer::Start(
    const ServerOptions& options, Store& store) {
  if (options.tls_cert_path.empty() != options.tls_key_path.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key must be given together");
  }
  std::unique_ptr<FieldsyncServer> s(new FieldsyncServer());
  s->services_ = std::make_unique<Services>(store);

  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!options.tls_cert_path.empty()) {
    auto cert = ReadFile(options.tls_cert_path, "--tls-cert");
    if (!cert.ok()) return cert.status();
    auto key = ReadFile(options.tls_key_path, "--tls-key");
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    creds = grpc::SslServerCredentials(ssl);
    s->tls_ = true;
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, creds, &s->port_);
  builder.RegisterService(&s->services_->tracker_service);
  builder.RegisterService(&s->services_->admin_service);
  builder.RegisterService(&s->services_->sync_service);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // Field links are paid by the byte: compress responses for clients that accept gzip.
  builder.SetDefaultCompressionAlgorithm(GRPC_COMPRESS_GZIP);
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("--listen: cannot listen on ", options.listen,
                     " (address in use, or not a host:port this machine has)"));
  }
  return s;
}

void FieldsyncServer::Shutdown(absl::Duration grace) {
  services_->stopping = true;
  server_->GetHealthCheckService()->Shutdown();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

void FieldsyncServer::Wait() { server_->Wait(); }

}  // namespace fieldsync::server
