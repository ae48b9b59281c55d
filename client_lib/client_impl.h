// Client's state, shared by client.cc (local writes and queries) and sync.cc (Sync()).
// Internal to libfieldsync.
//
// Locks (never two at once except cancel_mu inside sync work, and clock_mu inside either
// store's transaction; never held across a network call except sync_mu, which only serialises
// Sync() calls and guards sync_store):
//   app_mu    the app's connection (app_store): local writes and queries.
//   sync_mu   the sync thread's connection (sync_store) and "one Sync() at a time".
//   clock_mu  the HLC clock, used by both.
//   cancel_mu the running sync's cancel flag and its in-flight gRPC call.
#ifndef FIELDSYNC_CLIENT_LIB_CLIENT_IMPL_H_
#define FIELDSYNC_CLIENT_LIB_CLIENT_IMPL_H_

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "client_lib/local_store.h"
#include "fieldsync/client.h"
#include "fieldsync/sync/hlc.h"
#include "fieldsync/v1/sync.grpc.pb.h"

namespace fieldsync::client {

// The one place where a gRPC status becomes an absl::Status (the codes map one to one).
absl::Status FromGrpc(const grpc::Status& status, absl::string_view rpc);

// `status` of a failed call made in plain text, reworded when the server turns out to speak TLS
// (ServerSpeaksTls): "the server at X speaks TLS ...". Unchanged otherwise.
absl::Status ExplainPlainTextToTls(const absl::Status& status, const std::string& address,
                                   const ClientOptions& options);

// A channel to the server as the options ask (TLS or not, gzip, reconnect backoff).
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const ClientOptions& options);

struct ClientImpl {
  ClientImpl(ClientOptions opts, std::string device)
      : options(std::move(opts)),
        device_id(device),
        physical(options.physical_clock_ms ? options.physical_clock_ms
                                           : std::function<int64_t()>(sync::SystemClockMs)),
        clock(device, physical) {}

  const ClientOptions options;
  const std::string device_id;
  std::string token;
  // Written by SetServerAddress() holding sync_mu and app_mu; read holding either.
  std::string server_address;
  const std::function<int64_t()> physical;

  std::mutex app_mu;
  std::unique_ptr<LocalStore> app_store;

  std::mutex clock_mu;
  sync::HlcClock clock;

  std::mutex sync_mu;
  std::unique_ptr<LocalStore> sync_store;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::SyncService::Stub> stub;
  // Adaptive push batch size (sync.cc): at most this many changes per Push while > 0 (0: the
  // server's maximum). Halved when a Push is cut or times out; doubled after two batches in a
  // row got through. Kept across Sync() calls: the link is the same.
  int push_batch_limit = 0;
  int push_batches_through = 0;

  std::mutex cancel_mu;
  std::condition_variable cancel_cv;
  bool sync_running = false;
  bool cancelled = false;
  grpc::ClientContext* active_call = nullptr;

  // --- Local writes (client.cc) ---
  // Decides the fields an edit changes, given the document as this device sees it (called
  // inside the write transaction). Empty: nothing to write.
  using EditFn = std::function<absl::StatusOr<sync::FieldValues>(const LocalDocument&)>;
  // Stamps and stores one edit of (collection, id) in one durable transaction: one outbox
  // change, the view refreshed. Holds app_mu.
  absl::Status Write(absl::string_view collection, absl::string_view id, const EditFn& edit);
  absl::Status WriteOnce(absl::string_view collection, absl::string_view id, const EditFn& edit);
  // Reference checks the server makes, against the local view (app_mu held).
  // Event dates may not be after today (the corrected clock), as the server checks.
  absl::Status CheckEventDates(const v1::Record& record);
  absl::Status CheckRecordReferences(const v1::Record& record);
  absl::StatusOr<v1::Project> ReferencedProject(absl::string_view path, absl::string_view id);

  // --- Sync (sync.cc) ---
  absl::StatusOr<SyncProgress> Sync(const ProgressCallback& callback);
  // Just the handshake: learns the clock offset (and acknowledgements). Not retried.
  absl::Status Handshake();
  void Cancel();
};

}  // namespace fieldsync::client

#endif  // FIELDSYNC_CLIENT_LIB_CLIENT_IMPL_H_
