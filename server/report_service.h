// ReportService (proto/fieldsync/v1/report.proto): verifiable exports and audit-chain checks.
//
//   Reporter reporter(store, ReporterOptions{.temp_dir = "/var/lib/fieldsync"});
//   ReportServiceImpl service(auth, reporter);
//   builder.RegisterService(&service);
//
// Reporter holds the rules (validation, the one-snapshot export, the manifest and its change-log
// entry, chain verification); ReportServiceImpl only authorizes and translates.
#ifndef FIELDSYNC_SERVER_REPORT_SERVICE_H_
#define FIELDSYNC_SERVER_REPORT_SERVICE_H_

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "fieldsync/v1/report.grpc.pb.h"
#include "server/auth.h"
#include "server/reports.h"
#include "server/store.h"

namespace fieldsync::server {

struct ReporterOptions {
  // Folder for the temporary file of an XLSX export (removed afterwards). Empty: $TMPDIR, or
  // /tmp. fieldsyncd passes its database's folder.
  std::string temp_dir;
  // Exports running at once; more get RESOURCE_EXHAUSTED. Default 2.
  int max_concurrent_exports = 2;
  // How IATI files name the reporting organisation.
  IatiReporting iati;
  // fieldsyncd's version, for manifests.
  std::string server_version = "0.1.0";
};

// Chunks are at most this long (the proto's limit).
inline constexpr size_t kExportChunkBytes = 64 * 1024;
// The manifest's block size.
inline constexpr int64_t kManifestBlockBytes = 1 << 20;

class Reporter {
 public:
  Reporter(Store& store, ReporterOptions options) : store_(store), options_(std::move(options)) {}

  // Streams one export to `emit` (false: the client went away) and records it in the change
  // log. `cancelled` is polled while rows are produced. INVALID_ARGUMENT for a bad request
  // (naming the field), RESOURCE_EXHAUSTED when max_concurrent_exports are running, CANCELLED
  // if the client went away (nothing is logged then).
  absl::Status Export(const Principal& who, const v1::ExportRequest& request,
                      const std::function<bool(const v1::ExportChunk&)>& emit,
                      const std::function<bool()>& cancelled);
  // The manifest recorded for an export. INVALID_ARGUMENT for a malformed id, NOT_FOUND.
  absl::StatusOr<v1::ExportManifest> GetExportManifest(const v1::GetExportManifestRequest& request);
  // Recomputes the chain over the requested range, page by page.
  absl::StatusOr<v1::VerifyAuditChainResponse> VerifyAuditChain(
      const v1::VerifyAuditChainRequest& request);

 private:
  Store& store_;
  ReporterOptions options_;
  std::atomic<int> running_{0};
};

class ReportServiceImpl final : public v1::ReportService::Service {
 public:
  // `stopping` becomes true when the server shuts down: running exports end then.
  ReportServiceImpl(const Authenticator& auth, Reporter& reporter,
                    const std::atomic<bool>& stopping)
      : auth_(auth), reporter_(reporter), stopping_(stopping) {}

  grpc::Status Export(grpc::ServerContext* ctx, const v1::ExportRequest* req,
                      grpc::ServerWriter<v1::ExportChunk>* writer) override;
  grpc::Status GetExportManifest(grpc::ServerContext* ctx, const v1::GetExportManifestRequest* req,
                                 v1::ExportManifest* resp) override;
  grpc::Status VerifyAuditChain(grpc::ServerContext* ctx, const v1::VerifyAuditChainRequest* req,
                                v1::VerifyAuditChainResponse* resp) override;

 private:
  const Authenticator& auth_;
  Reporter& reporter_;
  const std::atomic<bool>& stopping_;
};

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_REPORT_SERVICE_H_
