// The device's SQLite store: the documents as last pulled from the server, the outbox of local
// changes, the local view that queries read, and the sync state. Internal to libfieldsync.
//
//   FS_ASSIGN_OR_RETURN(auto store, LocalStore::Open(path));
//   FS_ASSIGN_OR_RETURN(auto tx, store->Begin());
//   FS_ASSIGN_OR_RETURN(LocalDocument doc, store->LoadDocument("record", id));
//   ... FS_RETURN_IF_ERROR(store->AppendChange(change)); store->RefreshView("record", id) ...
//   FS_RETURN_IF_ERROR(tx.Commit());
//
// Tables (schema in local_store.cc, versioned migrations):
//   server_fields(collection, doc_id, path, value, hlc, seq, epoch)  what the server last sent
//   outbox(device_seq, collection, doc_id, change)  local edits, kept until a completed pull
//     after their acknowledgement (so the view never steps back between push and pull)
//   docs(collection, doc_id, payload, deleted, version, pending, typed filter columns)  the
//     local view: server_fields with every outbox change merged on top (sync::Merge, the same
//     rule the server applies, so the view shows what the server will hold after the push)
//   sync_state(key, value)
//
// Thread rule: one LocalStore is one connection, used by one thread at a time. Two LocalStores
// on the same file (the app's and the sync thread's) are safe: every write is one IMMEDIATE
// transaction and WAL lets readers run beside it.
#ifndef FIELDSYNC_CLIENT_LIB_LOCAL_STORE_H_
#define FIELDSYNC_CLIENT_LIB_LOCAL_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/sync/hlc.h"
#include "fieldsync/sync/merge.h"
#include "fieldsync/sync/sqlite.h"
#include "fieldsync/v1/domain.pb.h"
#include "fieldsync/v1/sync.pb.h"
#include "fieldsync/v1/tracker.pb.h"

namespace fieldsync::client {

// sync_state keys.
inline constexpr char kDeviceIdKey[] = "device_id";
inline constexpr char kPartnerIdKey[] = "partner_id";
inline constexpr char kTokenKey[] = "token";
inline constexpr char kServerAddressKey[] = "server_address";
// "1" when the device enrolled over TLS: it never talks to that server in plain text again.
inline constexpr char kServerTlsKey[] = "server_tls";
inline constexpr char kCursorKey[] = "cursor";
inline constexpr char kLastHlcKey[] = "last_hlc";
inline constexpr char kClockOffsetKey[] = "clock_offset_ms";
inline constexpr char kLastSyncAtKey[] = "last_sync_at_ms";
inline constexpr char kAckedSeqKey[] = "acked_device_seq";
// The store's sequence space (a UUID; HandshakeRequest.stream_id). Unset in stores written by
// older libraries until their first sync takes one (SwitchStream).
inline constexpr char kStreamIdKey[] = "stream_id";
inline constexpr char kLastSeqKey[] = "last_device_seq";
// Generation of server_fields rows; a repair pulls everything into a new epoch and then drops
// the rows of older ones.
inline constexpr char kEpochKey[] = "epoch";
inline constexpr char kRepairingKey[] = "repairing";
// The server database's epoch (HandshakeResponse.server_epoch) as of the last handshake; not to
// be confused with kEpochKey, this store's own pull generation.
inline constexpr char kServerEpochKey[] = "server_epoch";

// The engine's form of an outbox change (device_id is the writer of `change`).
absl::StatusOr<sync::Change> ToEngineChange(const v1::Change& change, absl::string_view device_id);

// Fills a record's output-only fields the way the server derives them (kind, record_date,
// follow-up outcomes).
void DeriveRecordFields(v1::Record& record);

// Fills the audit block of a document (Record, Site, Project: AuditInfo) from the
// clocks of its fields, which say who wrote each value (HLC node: a device id, or the HQ user's
// id for a change made through TrackerService) and when (HLC wall time, Unix ms): created_at/by
// from the oldest clock among its current fields, updated_at/by from the newest (a pending local
// edit included: "this device, just now"). The device's reading of the server's audit block,
// derived from what it holds (no protocol field): created_* names the creator unless every
// field it wrote has been overwritten since, and the times are writers' clocks as corrected at
// their last handshake, not the server's commit times. version is left alone.
void DeriveAudit(const sync::Document& doc, v1::AuditInfo* audit);

// One document as this device sees it.
struct LocalDocument {
  // As last pulled (fields with their server clocks and sequence numbers).
  sync::Document server;
  // server with every outbox change for it merged on top: what queries show.
  sync::Document local;
  // Outbox entries touch it.
  bool pending = false;
  // Highest server sequence of its fields (0 if never pulled).
  int64_t version = 0;

  bool exists() const { return !local.fields.empty() && !local.deleted(); }
};

// Merges one outbox change into doc.local (and marks the document pending), as LoadDocument
// does for each of the document's outbox entries in device_seq order.
absl::Status MergeIntoLocal(LocalDocument& doc, const v1::Change& change);

// What a rebase did (LocalStore::Rebase).
struct RebaseOutcome {
  // Documents with at least one field this device wrote, and the changes that re-send them.
  int64_t documents = 0;
  int64_t changes = 0;
  // Pending (unacknowledged) outbox changes renumbered after them.
  int64_t renumbered = 0;
  // Acknowledged outbox changes folded into the re-sent ones.
  int64_t folded = 0;
  // The new last device_seq.
  int64_t last_seq = 0;
};

// What applying one pull page did.
struct PageOutcome {
  int64_t documents = 0;
  // Greatest field clock in the page (zero if none): the caller's clock observes it.
  sync::Hlc max_hlc;
  // Set on the last page.
  bool last = false;
  bool checksum_checked = false;
  bool checksum_matched = true;
  // The mismatch started a repair: the cursor was reset, pull again.
  bool repair_started = false;
  // A repair just completed and the checksum still differs.
  bool mismatch_after_repair = false;
  std::string local_checksum;
};

// A change of this store that the server refused, kept on the device for the user.
struct LocalRejection {
  int64_t id = 0;
  int64_t device_seq = 0;
  std::string collection;
  std::string doc_id;
  int code = 0;  // gRPC status code
  std::string reason;
  v1::Change change;
  int64_t rejected_at_ms = 0;
  std::string status;  // OPEN, RESUBMITTED, DISMISSED
};

class LocalStore {
 public:
  // Opens (creating if needed) and migrates the store. FAILED_PRECONDITION for a store written
  // by a newer library.
  // `max_bytes` > 0 caps the file (PRAGMA max_page_count): past it, writes fail with
  // RESOURCE_EXHAUSTED as on a full disk.
  static absl::StatusOr<std::unique_ptr<LocalStore>> Open(const std::string& path,
                                                          int64_t max_bytes = 0);

  // BEGIN IMMEDIATE: the write lock is taken at once, so a transaction never fails half-way
  // for a lock held by the other connection (it waits up to the busy timeout instead).
  absl::StatusOr<sqlite::Transaction> Begin();

  // --- sync_state ---
  absl::StatusOr<std::string> GetState(absl::string_view key);  // "" if unset
  absl::StatusOr<int64_t> GetStateInt(absl::string_view key);   // 0 if unset
  absl::Status SetState(absl::string_view key, absl::string_view value);
  absl::Status SetStateInt(absl::string_view key, int64_t value);
  // Stores `hlc` as kLastHlcKey unless a later one is stored.
  absl::Status RaiseLastHlc(const sync::Hlc& hlc);
  // The greatest clock this device has issued or seen, from storage (zero if none).
  absl::StatusOr<sync::Hlc> LatestKnownHlc();

  // --- Documents ---
  absl::StatusOr<LocalDocument> LoadDocument(absl::string_view collection, absl::string_view id);
  // Recomputes the docs row of one document from server_fields and the outbox.
  absl::Status RefreshView(absl::string_view collection, absl::string_view id);
  // Writes the docs row of `doc` as given: a LoadDocument result, possibly with outbox changes
  // merged since by MergeIntoLocal (the same as RefreshView would do, without reading it
  // again). `payload`, if not null, receives the row's payload ("" when there is no row).
  absl::Status StoreView(const LocalDocument& doc, std::string* payload = nullptr);

  // --- Outbox ---
  // Assigns the next device_seq (gapless, never reused), stores the change and returns it.
  // Call inside a transaction.
  absl::StatusOr<int64_t> AppendChange(v1::Change change);
  // Outbox entries with device_seq > after_seq, in order, at most `limit`.
  absl::StatusOr<std::vector<v1::Change>> OutboxAfter(int64_t after_seq, int limit);
  absl::StatusOr<int64_t> CountOutboxAfter(int64_t after_seq);

  // --- Clocks ---
  // For a device whose clock ran ahead: every pending outbox change stamped after
  // `limit_wall_ms` takes a new stamp from `next` (in outbox order, so their order is kept),
  // and base clocks that named an old stamp name the new one; kLastHlcKey becomes `last`
  // (the clock after restamping). Call inside a transaction. Returns the changes restamped.
  absl::StatusOr<int64_t> RestampAhead(int64_t limit_wall_ms,
                                       const std::function<sync::Hlc()>& next);
  absl::Status SetLastHlc(const sync::Hlc& hlc);

  // --- Sequence spaces and refused changes ---
  // Moves this store to a new sequence space (kStreamIdKey): acknowledged outbox entries are
  // dropped (they are on the server; the next pull brings them back into the view), pending
  // ones are renumbered 1, 2, 3... in their order, kAckedSeqKey becomes 0. For a store that
  // finds it is a copy of another store of its device (the server saw different changes under
  // its numbers), and for stores of older libraries. Call inside a transaction. Returns the
  // number of pending entries renumbered.
  absl::StatusOr<int64_t> SwitchStream();
  // Moves a change the server refused from the outbox to the local rejection log (and the
  // document's view back to what it is without it). No-op if it is not in the outbox any
  // more. Call inside a transaction. True if it moved.
  absl::StatusOr<bool> RecordRejection(const v1::Rejection& rejection);
  // The local rejection log, newest first.
  absl::StatusOr<std::vector<LocalRejection>> ListRejections();
  // Sets a rejection's status ("RESUBMITTED", "DISMISSED"); NOT_FOUND for an unknown id.
  absl::Status SetRejectionStatus(int64_t id, absl::string_view status);
  absl::StatusOr<LocalRejection> GetRejection(int64_t id);

  // --- Server restores ---
  // After the server lost changes it had acknowledged (restored from a backup), makes this
  // store's state one the restored server can take, without changing what the app sees. Call
  // inside a transaction (with the handshake's other updates: all or nothing).
  //  1. Every field this device wrote (clock node `device_id`) of every document it knows, as
  //     it stands in server_fields with the acknowledged outbox changes (device_seq <=
  //     kAckedSeqKey) merged on top, is queued again: one change per document and clock, with
  //     that clock (so a newer value from elsewhere still wins on the server, and a value the
  //     server still has is a no-op), oldest clock first, numbered from `server_acked` + 1;
  //     a document's first change carries all those fields at its oldest clock (so it makes a
  //     valid document on a server that lacks it; the later changes restore the true clocks),
  //     except a deletion, which comes with its own clock only;
  //     each field's base_hlc is `base` (the device's clock now: it has seen every value it
  //     holds, so a value the server still has raises no conflict). Fields others wrote are
  //     not sent: the server takes a device's changes only under its own node (their writers
  //     send them again).
  //  2. Those acknowledged outbox changes are dropped (they are in step 1's changes); the
  //     pending ones follow, renumbered in their order.
  //  3. The pull cursor is cleared and a full re-pull into a new generation starts (like a
  //     repair): rows the restored server no longer has go at its end.
  // kAckedSeqKey becomes `server_acked`, kLastSeqKey the last number used.
  absl::StatusOr<RebaseOutcome> Rebase(absl::string_view device_id, int64_t server_acked,
                                       const sync::Hlc& base);

  // --- Pull ---
  // Applies one page in one transaction: server fields, affected views and the page's cursor.
  // On the last page it also drops acknowledged outbox entries (now part of the server state),
  // finishes a repair, and checks the scope checksum (starting a repair on mismatch unless one
  // just ran).
  absl::StatusOr<PageOutcome> ApplyPage(const v1::PullPage& page);
  // Checksum of the documents built from server_fields only.
  absl::StatusOr<std::string> ServerChecksum(int64_t* count = nullptr);

  // --- Queries (live documents of the local view) ---
  absl::StatusOr<v1::Record> GetRecord(absl::string_view id);
  absl::StatusOr<v1::ListRecordsResponse> ListRecords(const v1::ListRecordsRequest& request);
  absl::StatusOr<v1::Site> GetSite(absl::string_view id);
  absl::StatusOr<v1::ListSitesResponse> ListSites(const v1::ListSitesRequest& request);
  absl::StatusOr<v1::Project> GetProject(absl::string_view id);
  absl::StatusOr<v1::ListProjectsResponse> ListProjects(const v1::ListProjectsRequest& request);
  // Live documents of a collection.
  absl::StatusOr<int64_t> CountLive(absl::string_view collection);

 private:
  explicit LocalStore(std::unique_ptr<sqlite::Database> db) : db_(std::move(db)) {}
  absl::Status Migrate();
  absl::Status RefreshAllViews();
  absl::StatusOr<std::vector<v1::Change>> OutboxOf(absl::string_view collection,
                                                   absl::string_view id);
  // The server half of LoadDocument: doc.server and doc.version from server_fields (doc.local
  // and doc.pending untouched).
  absl::Status LoadServerFields(absl::string_view collection, absl::string_view id,
                                LocalDocument& doc);
  // The local half: doc.local = doc.server with the document's outbox entries merged on top.
  absl::Status MergeOutbox(LocalDocument& doc);
  // Loads a live document's message from the view (NOT_FOUND naming `what` otherwise).
  absl::Status LoadView(absl::string_view collection, absl::string_view id,
                        google::protobuf::Message* out, int64_t* version);

  std::unique_ptr<sqlite::Database> db_;
};

}  // namespace fieldsync::client

#endif  // FIELDSYNC_CLIENT_LIB_LOCAL_STORE_H_
