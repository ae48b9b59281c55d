// libfieldsync: what a field app links to record data with no network and sync it later.
//
//   FS_ASSIGN_OR_RETURN(auto client, Client::Enroll("hq.example.org:443", "ABCD-EFGH-...",
//                                                    "/data/app/fieldsync.db"));
//   FS_ASSIGN_OR_RETURN(v1::Record saved, client->CreateRecord(record));  // durable, offline
//   FS_ASSIGN_OR_RETURN(SyncProgress done, client->Sync(on_progress));    // when a link is up
//   // later runs: Client::Open("/data/app/fieldsync.db")
//
// One SQLite file per device holds the documents the device may see (as last pulled from the
// server), an outbox of local edits not yet confirmed by the server, and the sync state (device
// id, token, pull cursor, hybrid logical clock). A local write appends one change to the outbox
// and updates the local view in one transaction that is durable (synchronous=FULL) before the
// call returns; queries see it at once. Sync() pushes the outbox, then pulls what changed on the
// server; it never loses or doubles an edit, whatever the link does (see client_lib/DESIGN.md).
//
// Thread rules: a Client may be used from any number of threads at once. Local writes and
// queries are serialised on one connection; Sync() runs on its own connection and holds no lock
// across a network call, so the app keeps writing while a sync runs on a background thread
// (writes made during a sync are pushed by the next one). At most one Sync() runs at a time.
// Destroy the Client only when no call on it is running.
//
// Errors (absl::Status codes, part of the contract):
//   INVALID_ARGUMENT    bad input; the message names the field ("record.well.yield_lph: ...").
//   NOT_FOUND           no such (live) document in the local store.
//   ALREADY_EXISTS      a create reused an id.
//   RESOURCE_EXHAUSTED  a local write: the device's storage is full (or max_store_bytes is
//                       reached); nothing of the write was stored, earlier writes are intact.
//   FAILED_PRECONDITION the store is not enrolled / already enrolled, a version mismatch, or
//                       another Sync() is running.
//   UNAVAILABLE, DEADLINE_EXCEEDED  Sync(): the server could not be reached after all retries
//                       (also: its TLS certificate did not verify against the roots given).
//                       A client without use_tls whose server answers TLS is told so: the
//                       message says "speaks TLS" (Enroll() likewise).
//   RESOURCE_EXHAUSTED  Sync(): the server's per-device rate limit still refused after all
//                       retries (the message says "retry after N ms"); or the server could not
//                       store the changes (its disk or database is full: "... full"), in which
//                       case nothing was applied and the changes stay queued.
//   UNAUTHENTICATED, PERMISSION_DENIED  Sync(): the token was revoked or is not a device's.
//   CANCELLED           Sync() was stopped by Cancel().
//   DATA_LOSS           Sync(): the local copy still differed from the server after a repair.
#ifndef FIELDSYNC_CLIENT_H_
#define FIELDSYNC_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fieldsync/v1/domain.pb.h"
#include "fieldsync/v1/tracker.pb.h"

namespace fieldsync::client {

// How Sync() retries transient failures (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED,
// RESOURCE_EXHAUSTED): exponential backoff with full jitter, i.e. before retry n it sleeps a
// uniformly random time in [0, min(max_backoff_ms, initial_backoff_ms * 2^(n-1))]. A retry
// resumes where the failed attempt stopped. The attempt counter restarts whenever an attempt
// made progress (pushed a batch or applied a page). When the server refuses a call with
// RESOURCE_EXHAUSTED and a retry hint (its per-device rate limit: trailing metadata
// "retry-after-ms"), the wait before the retry is at least the hint.
struct RetryOptions {
  // Backoff cap before the first retry, milliseconds. Default 200.
  int64_t initial_backoff_ms = 200;
  // Largest backoff cap, milliseconds. Default 30000.
  int64_t max_backoff_ms = 30000;
  // Attempts without progress before Sync() gives up and returns the last error. Default 8.
  int max_attempts = 8;
};

struct ClientOptions {
  // Deadline of each RPC (for Pull: of each pull stream, which resumes from the last applied
  // page if cut), milliseconds. Default 30000.
  int64_t call_timeout_ms = 30000;
  // Deadline of a whole Sync() call (every attempt, retry and wait), milliseconds; 0 for none
  // (then retry.max_attempts alone bounds it). Sync() returns the last error, with
  // "(sync_timeout_ms of N ms reached)", rather than start a wait or call it could not finish.
  // Default 0.
  int64_t sync_timeout_ms = 0;
  RetryOptions retry;
  // Documents per pull page (1..5000). Smaller pages lose less work when a link drops.
  // Default 200.
  int32_t pull_page_size = 200;
  // Compress requests and ask for compressed responses (gzip). Default true.
  bool compress = true;
  // Largest size of the local store file, bytes (0: no cap other than the disk). A local write
  // or pull that would grow it past the cap fails whole with RESOURCE_EXHAUSTED, exactly as on
  // a full disk. Default 0.
  int64_t max_store_bytes = 0;
  // Connect with TLS. Default false (plain text, for loopback and tests only: production
  // servers serve TLS, see docs/RELIABILITY.md).
  bool use_tls = false;
  // PEM root certificates for TLS (e.g. the ca.pem of deploy/make-certs): the server's
  // certificate must chain to one of them. Empty uses the system's roots. Default empty.
  std::string tls_root_certs_pem;
  // The name the server's certificate must carry, instead of the host in the server address
  // (for a server reached by IP or through a tunnel). Default empty.
  std::string tls_server_name;
  // The device's physical clock, Unix milliseconds. Default: the system clock. The client
  // corrects it with the offset learned from the server at every handshake.
  std::function<int64_t()> physical_clock_ms;
  // Testing only: called after every RPC response (rpc "Handshake", "Push", or "Pull" once per
  // page received, before it is applied). A non-OK status is treated as if the network had
  // failed at that point (the response is lost), which lets tests cut links at any step.
  std::function<absl::Status(absl::string_view rpc)> fault_injector_for_testing;
};

enum class SyncPhase { kHandshake, kPush, kPull, kDone };

// What a running Sync() has done so far. Counters are totals for the whole Sync() call.
struct SyncProgress {
  SyncPhase phase = SyncPhase::kHandshake;
  // Outbox changes the server acknowledged, out of changes_total pending when the push began.
  int64_t changes_pushed = 0;
  int64_t changes_total = 0;
  // Conflicts the server reported for our pushed changes (concurrent edits of a field).
  int64_t conflicts = 0;
  // Documents received and applied, and pull pages applied.
  int64_t documents_pulled = 0;
  int64_t pages = 0;
  // Bytes of pulled pages as protobuf (before compression on the wire).
  int64_t bytes_pulled = 0;
  // Attempts retried after transient errors.
  int64_t retries = 0;
  // The local copy's checksum differed from the server's and was repaired by a full re-pull.
  bool repaired = false;
  // The server had been restored from a backup (its epoch changed, or it acknowledged fewer of
  // this device's changes than before): this device queued its own edits of `resent_documents`
  // documents again, renumbered its pending changes after them, and pulled from the start
  // (docs/SYNC.md, "Restores").
  bool rebased = false;
  int64_t resent_documents = 0;
  // Pushed changes the server refused: moved from the outbox to the rejection log
  // (Client::Rejections), never blocking the changes after them.
  int64_t changes_refused = 0;
  // Pushed changes applied but flagged for HQ's review: the merged document breaks a rule
  // spanning this device's edit and another writer's (each valid alone).
  int64_t changes_flagged = 0;
};

// Called on the thread running Sync() after each step; must not call Sync() or destroy the
// Client. It may call Cancel() and any other method.
using ProgressCallback = std::function<void(const SyncProgress&)>;

// A snapshot of the device's sync state.
struct ClientStatus {
  std::string device_id;
  std::string partner_id;
  std::string server_address;
  // Local edits the server has not acknowledged yet.
  int64_t pending_changes = 0;
  // Highest device_seq the server acknowledged; last device_seq written locally.
  int64_t acked_device_seq = 0;
  int64_t last_device_seq = 0;
  // Unix milliseconds of the last Sync() that completed; 0 if never.
  int64_t last_sync_at_ms = 0;
  // The pull cursor (opaque; empty before the first pull).
  std::string cursor;
  // Correction applied to the physical clock, learned at the last handshake, milliseconds.
  int64_t clock_offset_ms = 0;
  // Local documents by collection, deleted ones excluded.
  int64_t projects = 0, sites = 0, records = 0;
};

// A change of this device the server refused (invalid, or outside the device's rights): moved
// from the outbox to the device's rejection log with the server's reason. The server keeps it
// too (TrackerService.ListRejections); it never blocks the changes after it.
struct Rejection {
  int64_t id = 0;          // local id, for ResubmitRejection / DismissRejection
  int64_t device_seq = 0;  // the number it was pushed under
  std::string collection;
  std::string doc_id;
  int code = 0;            // gRPC status code of the refusal
  std::string reason;      // names the field: "changes[0]: record.well.yield_lph: ..."
  int64_t rejected_at_ms = 0;
  std::string status;      // OPEN, RESUBMITTED, DISMISSED
  v1::Change change;       // the change as it was pushed
};
// Checks a server address: "HOST:PORT" or "[IPv6]:PORT" with PORT from 1 to 65535.
// INVALID_ARGUMENT saying what is wrong otherwise ("no port", "the port must be a number from 1
// to 65535"); the message names the address but not the caller's option, so callers prefix it
// ("--server: ...").
absl::Status CheckServerAddress(absl::string_view address);

// Whether the server at `address` ("HOST:PORT") answers a TLS ClientHello with TLS: a probe
// made when a plain-text connection failed, to tell "the server speaks TLS" from "the server is
// not running". Waits at most `timeout_ms`; false when nothing answers or the answer is not TLS.
bool ServerSpeaksTls(const std::string& address, int64_t timeout_ms);

struct ClientImpl;  // internal

class Client {
 public:
  // Exchanges a one-time enrollment code (from HQ's AdminService.CreateEnrollment) for this
  // device's token and creates the local store at `db_path` holding it. The server's status
  // (INVALID_ARGUMENT, NOT_FOUND for an unknown or used code, UNAVAILABLE...) on failure. Not
  // retried: a code is single-use.
  //
  // Enrolling again: if `db_path` already holds an enrolled device whose token the server no
  // longer accepts (revoked by HQ, or the device was enrolled elsewhere), a new code for the
  // same device enrolls this store again and keeps everything in it (documents, the outbox of
  // unsent changes, the pull cursor): only the token (and `server_address`) change. The server
  // checks that the code is for this device without using it up otherwise
  // (FAILED_PRECONDITION). FAILED_PRECONDITION too while the store's token still works (nothing
  // to do), and for a store that has talked TLS with its server when `options` lacks use_tls.
  static absl::StatusOr<std::unique_ptr<Client>> Enroll(const std::string& server_address,
                                                        const std::string& code,
                                                        const std::string& db_path,
                                                        const ClientOptions& options = {});
  // Opens the store of an enrolled device. FAILED_PRECONDITION if it is not enrolled (or is
  // from a newer library version), or if it has talked TLS with its server (enrolled or synced
  // with use_tls) and `options` lacks use_tls: a store that has seen TLS never goes back to
  // plain text, which would send its token in the clear.
  static absl::StatusOr<std::unique_ptr<Client>> Open(const std::string& db_path,
                                                      const ClientOptions& options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // --- Field records -------------------------------------------------------------------------
  // Validated exactly as the server does (model::ValidateRecord), and the project (and site)
  // must be known locally and fit, as the server checks. Output-only fields are ignored and
  // filled on return (kind, record_date, follow-up outcomes, audit.version = the server version
  // last pulled, 0 before). An empty id is generated (UUIDv7).
  absl::StatusOr<v1::Record> CreateRecord(v1::Record record);
  // Replaces a record's site and body; project and kind cannot change (INVALID_ARGUMENT). Only
  // the fields that differ from the local copy are sent, so concurrent edits of other fields on
  // other devices both survive. If expected_version > 0 it must equal audit.version
  // (FAILED_PRECONDITION otherwise). An update that changes nothing writes nothing.
  absl::StatusOr<v1::Record> UpdateRecord(v1::Record record, int64_t expected_version = 0);
  // Deletes a record (a tombstone that syncs). NOT_FOUND if missing or already deleted.
  absl::Status DeleteRecord(absl::string_view id);
  // NOT_FOUND if missing or deleted.
  absl::StatusOr<v1::Record> GetRecord(absl::string_view id);
  // The same filters and paging as TrackerService.ListRecords, over the local store.
  absl::StatusOr<v1::ListRecordsResponse> ListRecords(const v1::ListRecordsRequest& request);

  // --- Sites and projects --------------------------------------------------------------------
  // Sites are written like records (project must be known locally). Projects are read-only on
  // a device: HQ creates them and they arrive by Sync().
  absl::StatusOr<v1::Site> CreateSite(v1::Site site);
  // Replaces a site's name, position and admin area; its project cannot change.
  absl::StatusOr<v1::Site> UpdateSite(v1::Site site);
  absl::StatusOr<v1::Site> GetSite(absl::string_view id);
  absl::StatusOr<v1::ListSitesResponse> ListSites(const v1::ListSitesRequest& request);
  absl::StatusOr<v1::Project> GetProject(absl::string_view id);
  absl::StatusOr<v1::ListProjectsResponse> ListProjects(const v1::ListProjectsRequest& request);

  // --- Sync ----------------------------------------------------------------------------------
  // One sync round: Handshake (clock correction), Push the outbox in batches until empty, Pull
  // every page since the stored cursor, then compare the scope checksum with the server's (a
  // mismatch triggers one full re-pull: progress.repaired). Transient failures are retried per
  // ClientOptions::retry, resuming where they stopped. Returns the final progress (phase kDone).
  // A change the server refuses never stops the sync: it moves from the outbox to the
  // rejection log (Rejections(); progress.changes_refused) and the changes after it go on.
  // A change applied although the merged document breaks a rule spanning another writer's
  // edit is counted in progress.changes_flagged (HQ reviews it). Every state between steps is
  // consistent:
  // a Sync() stopped at any point (error, Cancel(), process death) loses nothing.
  absl::StatusOr<SyncProgress> Sync(const ProgressCallback& progress = nullptr);
  // Makes the Sync() running on another thread stop soon with CANCELLED. No effect when no
  // Sync() is running. Thread-safe.
  void Cancel();

  // --- Refused changes -----------------------------------------------------------------------
  // This device's refused changes, newest first.
  absl::StatusOr<std::vector<Rejection>> Rejections();
  // Writes the refused change's values again as a new local edit on top of the document as it
  // is now (after HQ fixed what it needed, or after the app amended the document with
  // UpdateRecord/UpdateSite — then only what still differs is sent), and marks the rejection
  // RESUBMITTED. The edit is validated like any local write. NOT_FOUND for an unknown id.
  absl::Status ResubmitRejection(int64_t id);
  // Marks a rejection DISMISSED (the user gave the change up). NOT_FOUND for an unknown id.
  absl::Status DismissRejection(int64_t id);
  // Points the store at its server's new address ("HOST:PORT", CheckServerAddress) for every
  // later Sync(); the token, the documents and the outbox stay. The TLS rule stays too: a store
  // that has seen TLS was opened with use_tls, and keeps using it. INVALID_ARGUMENT for a
  // malformed address, FAILED_PRECONDITION while a Sync() runs.
  absl::Status SetServerAddress(const std::string& address);

  absl::StatusOr<ClientStatus> Status();
  // Hex scope checksum of the documents as last pulled from the server (pending local edits
  // excluded): after a completed Sync() it equals the server's for this device's scope.
  absl::StatusOr<std::string> ServerStateChecksum();

 private:
  explicit Client(std::unique_ptr<ClientImpl> impl);
  std::unique_ptr<ClientImpl> impl_;
};

}  // namespace fieldsync::client

#endif  // FIELDSYNC_CLIENT_H_
