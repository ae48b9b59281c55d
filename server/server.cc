#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/admin.h"
#include "server/auth.h"
#include "server/call_guard.h"
#include "server/health.h"
#include "server/report_service.h"
#include "server/services.h"
#include "server/tracker.h"

namespace fieldsync::server {

namespace {

// Server reflection streams open at once (grpcurl and similar tools use one each). Each may
// parse a message up to the receive limit: 4 MiB of unknown fields take about 50 MiB.
constexpr int64_t kMaxReflectionStreams = 2;

ReporterOptions ReporterOptionsOf(const ServerOptions& o) {
  ReporterOptions r;
  r.temp_dir = o.report_temp_dir;
  r.max_concurrent_exports = o.max_concurrent_exports;
  r.iati.ref = o.iati_org_ref;
  r.iati.name = o.iati_org_name;
  r.iati.type = o.iati_org_type;
  r.server_version = o.server_version;
  return r;
}

}  // namespace

struct FieldsyncServer::Services {
  Services(Store& store, const DeviceLimits& limits, const ServerOptions& options)
      : auth(store), tracker(store), admin(store), limiter(limits),
        throttle(options.auth_failure_limits), streams(options.stream_limits),
        guard(auth, throttle, streams, options.call_limits),
        syncer(store, admin, &limiter), reporter(store, ReporterOptionsOf(options)),
        tracker_service(auth, tracker, stopping), admin_service(auth, admin),
        sync_service(auth, syncer, &throttle), report_service(auth, reporter, stopping),
        // Every service by name, as `fieldsync health --service NAME` asks (grpc.health.v1).
        health({v1::TrackerService::service_full_name(), v1::AdminService::service_full_name(),
                v1::SyncService::service_full_name(), v1::ReportService::service_full_name(),
                grpc::health::v1::Health::service_full_name(),
                "grpc.reflection.v1alpha.ServerReflection"}),
        guarded{guard.Wrap<v1::TrackerService>(tracker_service),
                guard.Wrap<v1::AdminService>(admin_service),
                guard.Wrap<v1::SyncService>(sync_service),
                guard.Wrap<v1::ReportService>(report_service),
                guard.Wrap<grpc::health::v1::Health>(health, /*public_service=*/true)} {}
  std::atomic<bool> stopping{false};
  Authenticator auth;
  Tracker tracker;
  Admin admin;
  DeviceRateLimiter limiter;
  AuthFailureThrottle throttle;
  StreamLimiter streams;
  CallGuard guard;
  Syncer syncer;
  Reporter reporter;
  TrackerServiceImpl tracker_service;
  AdminServiceImpl admin_service;
  SyncServiceImpl sync_service;
  ReportServiceImpl report_service;
  HealthService health;
  // What the server registers: the services above behind the call guard.
  std::unique_ptr<grpc::Service> guarded[5];
};

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat(flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// gRPC reports unusable TLS files only as a port it could not bind; say what is wrong instead.
absl::Status CheckTlsFiles(const ServerOptions& options, const std::string& cert_pem,
                           const std::string& key_pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), &BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!cert) {
    ERR_clear_error();
    return absl::FailedPreconditionError(absl::StrCat(
        "--tls-cert: ", options.tls_cert_path, " holds no PEM certificate"));
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (!key) {
    ERR_clear_error();
    return absl::FailedPreconditionError(absl::StrCat(
        "--tls-key: ", options.tls_key_path,
        " holds no unencrypted PEM private key (an encrypted key needs a passphrase fieldsyncd "
        "cannot ask for)"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(absl::StrCat(
        "--tls-key: ", options.tls_key_path, " is not the private key of the certificate in ",
        options.tls_cert_path));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) <= 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--tls-cert: the certificate in ", options.tls_cert_path,
        " has expired; clients would refuse it"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckTlsConfig(const ServerOptions& options) {
  if (options.tls_cert_path.empty() != options.tls_key_path.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key must be given together");
  }
  if (options.tls_cert_path.empty()) return absl::OkStatus();
  auto cert = ReadFile(options.tls_cert_path, "--tls-cert");
  if (!cert.ok()) return cert.status();
  auto key = ReadFile(options.tls_key_path, "--tls-key");
  if (!key.ok()) return key.status();
  return CheckTlsFiles(options, *cert, *key);
}

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
  if (absl::Status limits = options.device_limits.Validate(); !limits.ok()) return limits;
  s->services_ = std::make_unique<Services>(store, options.device_limits, options);

  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!options.tls_cert_path.empty()) {
    auto cert = ReadFile(options.tls_cert_path, "--tls-cert");
    if (!cert.ok()) return cert.status();
    auto key = ReadFile(options.tls_key_path, "--tls-key");
    if (!key.ok()) return key.status();
    if (absl::Status pair = CheckTlsFiles(options, *cert, *key); !pair.ok()) return pair;
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    creds = grpc::SslServerCredentials(ssl);
    s->tls_ = true;
  }

  // Health checks are answered by HealthService, behind the call guard like the rest.
  grpc::EnableDefaultHealthCheckService(false);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, creds, &s->port_);
  for (const std::unique_ptr<grpc::Service>& service : s->services_->guarded) {
    builder.RegisterService(service.get());
  }
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // Server reflection needs no token and parses what it reads: only a few streams at once.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> limits;
  limits.push_back(NewOpenCallLimit(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", kMaxReflectionStreams));
  builder.experimental().SetInterceptorCreators(std::move(limits));
  // The synchronous server runs each call, streams included, on a thread of its own: bound them.
  grpc::ResourceQuota quota("fieldsyncd");
  quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
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
  services_->health.Shutdown();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

void FieldsyncServer::Wait() { server_->Wait(); }

void FieldsyncServer::SetServing(bool serving) {
  services_->health.SetServing(serving);
}

}  // namespace fieldsync::server
