// FieldsyncServer: the gRPC server of fieldsyncd with its services, standard health checking
// and reflection, over one Store.
//
//   FS_ASSIGN_OR_RETURN(auto server, FieldsyncServer::Start(options, *store));
//   server->Wait();   // until Shutdown() from another thread
#ifndef FIELDSYNC_SERVER_SERVER_H_
#define FIELDSYNC_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/call_guard.h"
#include "server/rate_limit.h"
#include "server/store.h"

namespace grpc {
class Server;
}

namespace fieldsync::server {

struct ServerOptions {
  // host:port to listen on; port 0 lets the kernel pick (see FieldsyncServer::port()).
  std::string listen = "127.0.0.1:50051";
  // PEM certificate chain and private key; both empty for plaintext, both set for TLS.
  std::string tls_cert_path;
  std::string tls_key_path;
  // Largest request message accepted, in bytes; larger ones get RESOURCE_EXHAUSTED.
  // Default 4 MiB.
  int max_receive_message_bytes = 4 << 20;
  // Per-device limits on Push and Pull (rate_limit.h).
  DeviceLimits device_limits;
  // Failed authentications one address may make (rate_limit.h).
  AuthFailureLimits auth_failure_limits;
  // Server streams open at once, per token and in total (rate_limit.h).
  StreamLimits stream_limits;
  // Calls that need no token: their largest request, how many are read at once (call_guard.h).
  CallLimits call_limits;
  // Threads serving calls at once (each open stream holds one); a call beyond them gets
  // RESOURCE_EXHAUSTED from gRPC. Default 400.
  int max_threads = 400;
  // ReportService: folder for XLSX temporary files (empty: $TMPDIR or /tmp), exports at once
  // (default 2), the IATI reporting organisation (identifier, name, OrganisationType code), and
  // the version manifests name.
  std::string report_temp_dir;
  int max_concurrent_exports = 2;
  std::string iati_org_ref = "XM-DAC-00000";
  std::string iati_org_name = "fieldsync NGO network";
  int iati_org_type = 21;
  std::string server_version = "0.1.0";
};

// Checks ServerOptions' TLS files as Start() does, without listening: both or neither given,
// readable, a PEM certificate and its unencrypted private key, not expired.
// FAILED_PRECONDITION or INVALID_ARGUMENT naming the flag otherwise.
absl::Status CheckTlsConfig(const ServerOptions& options);

class FieldsyncServer {
 public:
  // Builds the services and starts listening. FAILED_PRECONDITION if the address cannot be
  // bound, or the TLS files cannot be read, hold no certificate or key, or do not match.
  static absl::StatusOr<std::unique_ptr<FieldsyncServer>> Start(const ServerOptions& options,
                                                                Store& store);
  ~FieldsyncServer();

  // The bound port.
  int port() const { return port_; }
  bool tls() const { return tls_; }
  // Stops accepting calls, lets running ones finish for up to `grace`, then cancels them.
  void Shutdown(absl::Duration grace);
  // Blocks until the server has shut down.
  void Wait();
  // What grpc.health.v1.Health/Check answers (for the whole server, "", and every service by
  // its full name, e.g. "fieldsync.v1.SyncService"):
  // SERVING from Start(), NOT_SERVING after SetServing(false) (draining before a stop) and
  // for good once Shutdown() begins.
  void SetServing(bool serving);

 private:
  struct Services;
  FieldsyncServer() = default;
  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool tls_ = false;
};

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_SERVER_H_
