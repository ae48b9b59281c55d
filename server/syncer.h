// The Syncer: the server side of SyncService — handshake, push, pull pages, enrollment —
// for field devices. SyncService only translates gRPC to these calls.
//
//   FS_ASSIGN_OR_RETURN(v1::PushResponse r, syncer.Push(device_principal, request));
//
// Only device tokens may sync (a FIELD_DEVICE user is partner staff on the web, not a device
// with an outbox): FAILED_PRECONDITION otherwise. See proto/fieldsync/v1/sync.proto for the
// guarantees and docs/SYNC.md for the design.
#ifndef FIELDSYNC_SERVER_SYNCER_H_
#define FIELDSYNC_SERVER_SYNCER_H_

#include <functional>

#include "absl/status/statusor.h"
#include "fieldsync/v1/sync.pb.h"
#include "server/admin.h"
#include "server/auth.h"
#include "server/rate_limit.h"
#include "server/store.h"

namespace fieldsync::server {

class Syncer {
 public:
  // Largest push batch accepted, in changes.
  static constexpr int kMaxPushChanges = 1000;
  // Largest pull page, in documents; the default is 500.
  static constexpr int kMaxPullPage = 5000;
  // Largest pull page in bytes of documents (a page always holds at least one document).
  static constexpr size_t kMaxPullPageBytes = 3 << 20;

  // `limiter` (may be null: no limits) admits each Push and Pull of a device; see rate_limit.h.
  Syncer(Store& store, Admin& admin, DeviceRateLimiter* limiter = nullptr)
      : store_(store), admin_(admin), limiter_(limiter) {}

  absl::StatusOr<v1::HandshakeResponse> Handshake(const Principal& device,
                                                  const v1::HandshakeRequest& request);
  absl::StatusOr<v1::PushResponse> Push(const Principal& device, const v1::PushRequest& request);
  // Streams pages to `emit` until the last one (or until `emit` returns false: the client went
  // away). Marks the device synced after the last page.
  absl::Status Pull(const Principal& device, const v1::PullRequest& request,
                    const std::function<bool(const v1::PullPage&)>& emit);
  absl::StatusOr<v1::EnrollResponse> Enroll(const v1::EnrollRequest& request);

 private:
  // OK with a held slot (empty without a limiter), or RESOURCE_EXHAUSTED with a retry hint.
  absl::StatusOr<DeviceRateLimiter::Slot> Admit(const Principal& device, int64_t changes);

  Store& store_;
  Admin& admin_;
  DeviceRateLimiter* limiter_;
};

// A pull cursor: where the pull started (fields changed after it are sent) and how far it has
// got (documents changed after it come next). Between pulls both are the same sequence; within
// a pull, `base` stays where the pull began, so a document created before a page boundary and
// edited after it still arrives with every field.
struct PullCursor {
  int64_t base = 0;
  int64_t position = 0;
};
// Opaque text for a cursor.
std::string EncodeCursor(const PullCursor& cursor);
// INVALID_ARGUMENT "cursor: ..." for anything EncodeCursor did not make; "" is {0, 0}.
absl::StatusOr<PullCursor> DecodeCursor(absl::string_view cursor);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_SYNCER_H_
