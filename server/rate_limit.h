// Per-device limits on sync traffic: a token bucket of Push/Pull calls, a token bucket of pushed
// changes, and a cap on calls running at once. A device over a limit is answered
// RESOURCE_EXHAUSTED "...; retry after N ms" with the same N in the trailing metadata
// `retry-after-ms`; nothing of the refused call is applied, so retrying it later is safe.
//
//   DeviceRateLimiter limiter(DeviceLimits{});
//   FS_ASSIGN_OR_RETURN(DeviceRateLimiter::Slot slot, limiter.Admit(device_id, changes));
//   ... serve the call; the slot frees its concurrency place when it goes away
//
// The defaults are far above what a device syncing normally (or the crash and load tests) does,
// and stop an app stuck in a retry loop from taking the server's write lock from everyone else.
#ifndef FIELDSYNC_SERVER_RATE_LIMIT_H_
#define FIELDSYNC_SERVER_RATE_LIMIT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fieldsync::server {

// Trailing metadata key of the retry hint, in milliseconds.
inline constexpr char kRetryAfterMetadata[] = "retry-after-ms";

struct DeviceLimits {
  // Push and Pull calls one device may make per minute, sustained; 0 turns the limit off.
  // Default 6000 (100 a second; a sync is two or three calls).
  int64_t calls_per_minute = 6000;
  // Calls a rested device may make in a burst (the bucket's size). Default 1000.
  int64_t call_burst = 1000;
  // Changes one device may push per minute, sustained; 0 turns the limit off. Default 1000000.
  int64_t changes_per_minute = 1000000;
  // Changes a rested device may push in a burst. At least the largest push batch (1000), or a
  // full batch could never pass. Default 200000.
  int64_t change_burst = 200000;
  // Push and Pull calls of one device running at once; 0 turns the limit off. Default 8.
  int64_t max_concurrent_calls = 8;

  // INVALID_ARGUMENT naming the flag ("--device-call-burst: ...") for impossible settings.
  absl::Status Validate() const;
};

class DeviceRateLimiter {
 public:
  // `clock` is for tests; the default is absl::Now.
  explicit DeviceRateLimiter(DeviceLimits limits,
                             std::function<absl::Time()> clock = nullptr);

  // A place among a device's concurrent calls, held while a call runs. Movable.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    ~Slot();

   private:
    friend class DeviceRateLimiter;
    Slot(DeviceRateLimiter* limiter, std::string device_id)
        : limiter_(limiter), device_id_(std::move(device_id)) {}
    DeviceRateLimiter* limiter_ = nullptr;
    std::string device_id_;
  };

  // Admits one call of `device_id` that pushes `changes` changes (0 for a pull), taking one call
  // and `changes` change tokens; or RESOURCE_EXHAUSTED with a retry hint (RetryAfterMs()) and
  // nothing taken.
  absl::StatusOr<Slot> Admit(absl::string_view device_id, int64_t changes);

  const DeviceLimits& limits() const { return limits_; }

 private:
  struct Bucket {
    double calls = 0;
    double changes = 0;
    absl::Time refilled;
    int64_t running = 0;
    bool refusal_logged = false;
  };
  void Release(const std::string& device_id);
  void Refill(Bucket& b, absl::Time now) const;
  // Forgets rested, idle devices once the map grows large (mu_ held).
  void Sweep(absl::Time now);

  const DeviceLimits limits_;
  const std::function<absl::Time()> clock_;
  std::mutex mu_;
  std::map<std::string, Bucket, std::less<>> buckets_;
};

// The retry hint carried by a RESOURCE_EXHAUSTED from DeviceRateLimiter, in milliseconds; -1 when
// `status` has none.
int64_t RetryAfterMs(const absl::Status& status);
// RESOURCE_EXHAUSTED "<what>; retry after N ms" carrying N as the retry hint (RetryAfterMs()).
absl::Status RetryLater(absl::string_view what, int64_t retry_after_ms);

// Failed authentications one network address may make: a wrong, unknown, revoked or expired
// token, or a wrong enrollment code. Guessing is slowed to `failures_per_minute` after a burst.
struct AuthFailureLimits {
  // Failures one address may make per minute, sustained; 0 turns the throttle off. Default 30.
  int64_t failures_per_minute = 30;
  // Failures a rested address may make in a burst. Default 20.
  int64_t failure_burst = 20;

  // INVALID_ARGUMENT naming the flag for impossible settings.
  absl::Status Validate() const;
};

// A token bucket of failed authentications per address ("ipv4:10.1.2.3", the peer without its
// port). While an address's bucket is empty, every call from it that needs a credential (a
// token or an enrollment code) is refused with RESOURCE_EXHAUSTED and a retry hint, before the
// credential is looked at: a guesser learns nothing faster than the refill rate. Addresses with
// failures to spare, and so every other peer, are not affected. Thread-safe.
//
// Logs one line per address and minute once it is throttled ("auth: 20 failed authentications
// from ipv4:10.1.2.3 in the last minute; ..."), never the credential.
class AuthFailureThrottle {
 public:
  explicit AuthFailureThrottle(AuthFailureLimits limits,
                               std::function<absl::Time()> clock = nullptr);

  // OK, or RESOURCE_EXHAUSTED with a retry hint while `peer` has no failures left.
  absl::Status Check(absl::string_view peer);
  // Counts one failed authentication of `peer`.
  void RecordFailure(absl::string_view peer);

 private:
  struct Bucket {
    double failures_left = 0;
    absl::Time refilled;
    absl::Time window_start;
    int64_t failures_in_window = 0;
    bool logged_in_window = false;
  };
  Bucket& BucketOf(absl::string_view peer, absl::Time now);

  const AuthFailureLimits limits_;
  const std::function<absl::Time()> clock_;
  std::mutex mu_;
  std::map<std::string, Bucket, std::less<>> buckets_;
};

// The address part of a gRPC peer string: "ipv4:10.1.2.3:5555" -> "ipv4:10.1.2.3",
// "ipv6:[::1]:5555" -> "ipv6:[::1]"; anything else unchanged.
std::string PeerAddress(absl::string_view peer);

// Caps on server streams open at once (Pull, WatchChanges, Export, health Watch): per
// principal (a token; callers without one share the principal "") and in total. A stream holds
// a server thread while it is open, so this is what keeps idle streams from taking them all.
struct StreamLimits {
  // Streams one token may hold open; 0 turns the cap off. Default 8.
  int64_t per_principal = 8;
  // Streams open at once in all; 0 turns the cap off. Default 256.
  int64_t total = 256;
};

class StreamLimiter {
 public:
  explicit StreamLimiter(StreamLimits limits) : limits_(limits) {}

  // A place among open streams, held while the stream runs. Movable.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    ~Slot();

   private:
    friend class StreamLimiter;
    Slot(StreamLimiter* limiter, std::string principal)
        : limiter_(limiter), principal_(std::move(principal)) {}
    StreamLimiter* limiter_ = nullptr;
    std::string principal_;
  };

  // A place for one more stream of `principal`, or RESOURCE_EXHAUSTED with a retry hint naming
  // the cap that was reached.
  absl::StatusOr<Slot> Admit(absl::string_view principal);

 private:
  void Release(const std::string& principal);

  const StreamLimits limits_;
  std::mutex mu_;
  int64_t total_ = 0;
  std::map<std::string, int64_t, std::less<>> open_;
};

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_RATE_LIMIT_H_
