#include "server/rate_limit.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/log.h"

namespace fieldsync::server {
namespace {

// The status payload holding the retry hint (decimal milliseconds).
constexpr char kRetryAfterPayload[] = "type.fieldsync.dev/retry-after-ms";
// When all of a device's concurrent places are taken, when to try again: a pull page or a push
// batch takes well under this.
constexpr int64_t kBusyRetryMs = 500;
// Buckets kept before rested, idle devices are forgotten.
constexpr size_t kSweepAbove = 10000;

absl::Status Exhausted(absl::string_view what, int64_t retry_after_ms) {
  return RetryLater(what, retry_after_ms);
}

// Milliseconds until a bucket refilling at `per_minute` holds `need` tokens, given `have`.
int64_t WaitMs(double need, double have, int64_t per_minute) {
  double ms = (need - have) * 60000.0 / static_cast<double>(per_minute);
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(ms)));
}

}  // namespace

absl::Status DeviceLimits::Validate() const {
  auto at_least = [](absl::string_view flag, int64_t value, int64_t min) {
    if (value >= min) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": must be at least ", min, ", got ", value));
  };
  if (absl::Status s = at_least("--device-calls-per-minute", calls_per_minute, 0); !s.ok()) {
    return s;
  }
  if (absl::Status s = at_least("--device-changes-per-minute", changes_per_minute, 0); !s.ok()) {
    return s;
  }
  if (absl::Status s = at_least("--device-max-concurrent", max_concurrent_calls, 0); !s.ok()) {
    return s;
  }
  if (calls_per_minute > 0) {
    if (absl::Status s = at_least("--device-call-burst", call_burst, 1); !s.ok()) return s;
  }
  if (changes_per_minute > 0) {
    // A full push batch must fit in the bucket, or it could never pass.
    if (absl::Status s = at_least("--device-change-burst", change_burst, 1000); !s.ok()) return s;
  }
  return absl::OkStatus();
}

DeviceRateLimiter::DeviceRateLimiter(DeviceLimits limits, std::function<absl::Time()> clock)
    : limits_(limits), clock_(clock ? std::move(clock) : std::function<absl::Time()>(absl::Now)) {}

DeviceRateLimiter::Slot::Slot(Slot&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)), device_id_(std::move(other.device_id_)) {}

DeviceRateLimiter::Slot& DeviceRateLimiter::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    if (limiter_ != nullptr) limiter_->Release(device_id_);
    limiter_ = std::exchange(other.limiter_, nullptr);
    device_id_ = std::move(other.device_id_);
  }
  return *this;
}

DeviceRateLimiter::Slot::~Slot() {
  if (limiter_ != nullptr) limiter_->Release(device_id_);
}

void DeviceRateLimiter::Refill(Bucket& b, absl::Time now) const {
  double minutes = std::max(0.0, absl::ToDoubleMinutes(now - b.refilled));
  b.refilled = now;
  if (limits_.calls_per_minute > 0) {
    b.calls = std::min(static_cast<double>(limits_.call_burst),
                       b.calls + minutes * static_cast<double>(limits_.calls_per_minute));
  }
  if (limits_.changes_per_minute > 0) {
    b.changes = std::min(static_cast<double>(limits_.change_burst),
                         b.changes + minutes * static_cast<double>(limits_.changes_per_minute));
  }
}

void DeviceRateLimiter::Sweep(absl::Time now) {
  if (buckets_.size() <= kSweepAbove) return;
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    Bucket& b = it->second;
    Refill(b, now);
    bool rested = (limits_.calls_per_minute == 0 || b.calls >= limits_.call_burst) &&
                  (limits_.changes_per_minute == 0 || b.changes >= limits_.change_burst);
    if (rested && b.running == 0) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
}

absl::StatusOr<DeviceRateLimiter::Slot> DeviceRateLimiter::Admit(absl::string_view device_id,
                                                                 int64_t changes) {
  const absl::Time now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(device_id);
  if (it == buckets_.end()) {
    Sweep(now);
    Bucket fresh;
    fresh.calls = static_cast<double>(limits_.call_burst);
    fresh.changes = static_cast<double>(limits_.change_burst);
    fresh.refilled = now;
    it = buckets_.emplace(std::string(device_id), fresh).first;
  }
  Bucket& b = it->second;
  Refill(b, now);

  absl::Status refused;
  if (limits_.max_concurrent_calls > 0 && b.running >= limits_.max_concurrent_calls) {
    refused = Exhausted(absl::StrCat("device rate limit: ", b.running,
                                     " Push/Pull calls of this device are already running (at "
                                     "most ",
                                     limits_.max_concurrent_calls, " at once)"),
                        kBusyRetryMs);
  } else if (limits_.calls_per_minute > 0 && b.calls < 1.0) {
    refused = Exhausted(absl::StrCat("device rate limit: at most ", limits_.calls_per_minute,
                                     " Push/Pull calls per minute (bursts of ",
                                     limits_.call_burst, ")"),
                        WaitMs(1.0, b.calls, limits_.calls_per_minute));
  } else if (limits_.changes_per_minute > 0 && changes > 0 &&
             b.changes < static_cast<double>(changes)) {
    refused = Exhausted(
        absl::StrCat("changes: device rate limit of ", limits_.changes_per_minute,
                     " pushed changes per minute (bursts of ", limits_.change_burst,
                     ") reached by this push of ", changes),
        WaitMs(static_cast<double>(std::min<int64_t>(changes, limits_.change_burst)), b.changes,
               limits_.changes_per_minute));
  }
  if (!refused.ok()) {
    // One line per episode, not one per refused call of a device hammering the server.
    if (!b.refusal_logged) {
      b.refusal_logged = true;
      Log("warn", absl::StrCat("rate limited device=", it->first, ": ", refused.message()));
    }
    return refused;
  }
  b.refusal_logged = false;
  if (limits_.calls_per_minute > 0) b.calls -= 1.0;
  if (limits_.changes_per_minute > 0) b.changes -= static_cast<double>(changes);
  b.running += 1;
  return Slot(this, it->first);
}

void DeviceRateLimiter::Release(const std::string& device_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(device_id);
  if (it != buckets_.end() && it->second.running > 0) it->second.running -= 1;
}

int64_t RetryAfterMs(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kResourceExhausted) return -1;
  absl::optional<absl::Cord> payload = status.GetPayload(kRetryAfterPayload);
  int64_t ms = -1;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &ms)) return -1;
  return ms;
}

absl::Status RetryLater(absl::string_view what, int64_t retry_after_ms) {
  absl::Status s = absl::ResourceExhaustedError(
      absl::StrCat(what, "; retry after ", retry_after_ms, " ms"));
  s.SetPayload(kRetryAfterPayload, absl::Cord(absl::StrCat(retry_after_ms)));
  return s;
}

// --- AuthFailureThrottle ---

absl::Status AuthFailureLimits::Validate() const {
  if (failures_per_minute < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--auth-failures-per-minute: must be at least 0, got ", failures_per_minute));
  }
  if (failures_per_minute > 0 && failure_burst < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-failure-burst: must be at least 1, got ", failure_burst));
  }
  return absl::OkStatus();
}

AuthFailureThrottle::AuthFailureThrottle(AuthFailureLimits limits,
                                         std::function<absl::Time()> clock)
    : limits_(limits), clock_(clock ? std::move(clock) : std::function<absl::Time()>(absl::Now)) {}

AuthFailureThrottle::Bucket& AuthFailureThrottle::BucketOf(absl::string_view peer,
                                                           absl::Time now) {
  auto it = buckets_.find(peer);
  if (it == buckets_.end()) {
    if (buckets_.size() > kSweepAbove) {
      // Forget addresses whose bucket has refilled: they are as good as new.
      for (auto s = buckets_.begin(); s != buckets_.end();) {
        double minutes = absl::ToDoubleMinutes(now - s->second.refilled);
        bool rested = s->second.failures_left +
                          minutes * static_cast<double>(limits_.failures_per_minute) >=
                      static_cast<double>(limits_.failure_burst);
        s = rested ? buckets_.erase(s) : std::next(s);
      }
    }
    Bucket fresh;
    fresh.failures_left = static_cast<double>(limits_.failure_burst);
    fresh.refilled = now;
    fresh.window_start = now;
    it = buckets_.emplace(std::string(peer), fresh).first;
  }
  Bucket& b = it->second;
  double minutes = std::max(0.0, absl::ToDoubleMinutes(now - b.refilled));
  b.refilled = now;
  b.failures_left = std::min(static_cast<double>(limits_.failure_burst),
                             b.failures_left + minutes * static_cast<double>(
                                                             limits_.failures_per_minute));
  if (now - b.window_start >= absl::Minutes(1)) {
    b.window_start = now;
    b.failures_in_window = 0;
    b.logged_in_window = false;
  }
  return b;
}

absl::Status AuthFailureThrottle::Check(absl::string_view peer) {
  if (limits_.failures_per_minute == 0) return absl::OkStatus();
  const absl::Time now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  Bucket& b = BucketOf(peer, now);
  if (b.failures_left >= 1.0) return absl::OkStatus();
  return RetryLater(absl::StrCat("authorization: too many failed authentications from this "
                                 "address (at most ",
                                 limits_.failures_per_minute, " a minute after a burst of ",
                                 limits_.failure_burst, ")"),
                    WaitMs(1.0, b.failures_left, limits_.failures_per_minute));
}

void AuthFailureThrottle::RecordFailure(absl::string_view peer) {
  if (limits_.failures_per_minute == 0) return;
  const absl::Time now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  Bucket& b = BucketOf(peer, now);
  b.failures_left = std::max(0.0, b.failures_left - 1.0);
  b.failures_in_window += 1;
  if (b.failures_left < 1.0 && !b.logged_in_window) {
    b.logged_in_window = true;
    Log("warn", absl::StrCat("auth: ", b.failures_in_window, " failed authentications from ", peer,
                             " in the last minute; its calls are refused until it slows to ",
                             limits_.failures_per_minute, " a minute"));
  }
}

std::string PeerAddress(absl::string_view peer) {
  if (!absl::StartsWith(peer, "ipv4:") && !absl::StartsWith(peer, "ipv6:")) {
    return std::string(peer);
  }
  size_t colon = peer.rfind(':');
  if (colon == absl::string_view::npos || colon < 5) return std::string(peer);
  return std::string(peer.substr(0, colon));
}

// --- StreamLimiter ---

StreamLimiter::Slot::Slot(Slot&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)), principal_(std::move(other.principal_)) {}

StreamLimiter::Slot& StreamLimiter::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    if (limiter_ != nullptr) limiter_->Release(principal_);
    limiter_ = std::exchange(other.limiter_, nullptr);
    principal_ = std::move(other.principal_);
  }
  return *this;
}

StreamLimiter::Slot::~Slot() {
  if (limiter_ != nullptr) limiter_->Release(principal_);
}

absl::StatusOr<StreamLimiter::Slot> StreamLimiter::Admit(absl::string_view principal) {
  std::lock_guard<std::mutex> lock(mu_);
  if (limits_.total > 0 && total_ >= limits_.total) {
    return RetryLater(absl::StrCat("server busy: ", total_,
                                   " streams are open, the most this server holds at once"),
                      kBusyRetryMs * 10);
  }
  int64_t& mine = open_[std::string(principal)];
  if (limits_.per_principal > 0 && mine >= limits_.per_principal) {
    return RetryLater(absl::StrCat("this token already holds ", limits_.per_principal,
                                   " open streams (Pull, WatchChanges, Export), the most one "
                                   "token may; close one first"),
                      kBusyRetryMs * 10);
  }
  mine += 1;
  total_ += 1;
  return Slot(this, std::string(principal));
}

void StreamLimiter::Release(const std::string& principal) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(principal);
  if (it != open_.end() && --it->second <= 0) open_.erase(it);
  if (total_ > 0) total_ -= 1;
}

}  // namespace fieldsync::server
