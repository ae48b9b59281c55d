// Hybrid logical clocks: timestamps that follow physical time where clocks agree and still
// order causally related events where they do not (Kulkarni et al., 2014).
//
//   HlcClock clock("device-7", SystemClockMs);
//   Hlc t = clock.Now();                    // stamp a local edit
//   clock.Observe(server_hlc);              // after every server response
//   std::string wire = t.Encode();          // "0001732780000000.00000.device-7"
//
// Order: (wall_ms, counter, node) lexicographically; node (the device id, or "server") breaks
// ties, so two different writers never produce equal timestamps. Encode() keeps that order as
// plain byte order, so encoded timestamps sort correctly in SQL too.
#ifndef FIELDSYNC_SYNC_HLC_H_
#define FIELDSYNC_SYNC_HLC_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fieldsync::sync {

struct Hlc {
  // Physical part: Unix milliseconds, 0..9999999999999999.
  int64_t wall_ms = 0;
  // Logical part: events within the same wall_ms, 0..99999.
  uint32_t counter = 0;
  // Writer id: non-empty, no '.' characters; breaks ties.
  std::string node;

  // 16-digit wall_ms, '.', 5-digit counter, '.', node.
  std::string Encode() const;
  // INVALID_ARGUMENT (naming `path`) for anything Encode() cannot produce.
  static absl::StatusOr<Hlc> Decode(absl::string_view text, absl::string_view path = "hlc");

  bool IsZero() const { return wall_ms == 0 && counter == 0 && node.empty(); }
};

// True if `hlc` is in range: what Encode() writes and Decode() reads back.
bool IsValidHlc(const Hlc& hlc);

bool operator<(const Hlc& a, const Hlc& b);
bool operator==(const Hlc& a, const Hlc& b);
inline bool operator!=(const Hlc& a, const Hlc& b) { return !(a == b); }
inline bool operator>(const Hlc& a, const Hlc& b) { return b < a; }

// Milliseconds since the Unix epoch from the system clock.
int64_t SystemClockMs();

// A clock for one node. Not thread-safe: guard it with the caller's lock.
class HlcClock {
 public:
  // `physical_ms` supplies the node's physical time (injectable for tests and for a device's
  // corrected clock, see set_offset_ms).
  HlcClock(std::string node, std::function<int64_t()> physical_ms = SystemClockMs);

  // A new timestamp for a local event, greater than every timestamp this clock has issued or
  // observed. Physical time is clamped to 0..9999999999999999 (a dead RTC before 1970 counts as
  // 0). When the counter would pass 99999, wall_ms advances by 1 and the counter restarts at 0.
  Hlc Now();
  // Advances the clock past `remote` (a timestamp received from another node). The server
  // bounds remote clocks (BoundSkew) before observing them; a remote at the very end of the
  // range would push wall_ms past what Encode() can write.
  void Observe(const Hlc& remote);
  // Restores the last timestamp after a restart (read from durable storage). Never moves the
  // clock back: an older `last` is ignored. The node stays this clock's node.
  void Restore(const Hlc& last);
  // Moves the clock to `last`, also backwards: only for a device that learns its clock ran
  // far ahead (its stamps beyond the server's skew bound were never valid; see docs/SYNC.md,
  // "Clocks in the field are wrong"). The node stays this clock's node.
  void ResetTo(const Hlc& last);
  const Hlc& last() const { return last_; }

  // A correction added to the physical clock: a device learns it from the server's time at each
  // handshake (server_ms - local_ms), so a device whose date is a year off still stamps its
  // edits with roughly the right time. Default 0.
  void set_offset_ms(int64_t offset) { offset_ms_ = offset; }
  int64_t offset_ms() const { return offset_ms_; }

 private:
  int64_t Physical() const { return physical_ms_() + offset_ms_; }
  std::string node_;
  std::function<int64_t()> physical_ms_;
  int64_t offset_ms_ = 0;
  Hlc last_;
};

// The server's skew rule: a change may claim to be at most `max_future_ms` ahead of the
// server's clock. Returns `claimed` unchanged if within the bound, else the server's time
// (server_now_ms, counter 0, claimed.node) — the change is then ordered as if made when the
// server received it. Deterministic; the server logs both.
Hlc BoundSkew(const Hlc& claimed, int64_t server_now_ms, int64_t max_future_ms);

// Default bound of BoundSkew: 5 minutes.
inline constexpr int64_t kDefaultMaxFutureMs = 5 * 60 * 1000;

}  // namespace fieldsync::sync

#endif  // FIELDSYNC_SYNC_HLC_H_
