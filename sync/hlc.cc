#include "fieldsync/sync/hlc.h"

#include <algorithm>
#include <chrono>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace fieldsync::sync {
namespace {

constexpr int64_t kMaxWallMs = 9'999'999'999'999'999;
constexpr uint32_t kMaxCounter = 99'999;
constexpr size_t kWallDigits = 16;
constexpr size_t kCounterDigits = 5;

std::string ZeroPadded(uint64_t value, size_t width) {
  std::string digits = std::to_string(value);
  if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
  return digits;
}

// Parses exactly `text.size()` decimal digits.
bool ParseDigits(absl::string_view text, uint64_t* out) {
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = value;
  return true;
}

// The next timestamp after (wall_ms, counter): the counter counts events within one
// millisecond, and when it would pass its 5 digits the clock borrows the next millisecond.
void Tick(Hlc& t) {
  if (t.counter >= kMaxCounter) {
    t.wall_ms += 1;
    t.counter = 0;
  } else {
    t.counter += 1;
  }
}

}  // namespace

std::string Hlc::Encode() const {
  return absl::StrCat(ZeroPadded(static_cast<uint64_t>(std::max<int64_t>(wall_ms, 0)), kWallDigits),
                      ".", ZeroPadded(counter, kCounterDigits), ".", node);
}

absl::StatusOr<Hlc> Hlc::Decode(absl::string_view text, absl::string_view path) {
  auto invalid = [&] {
    absl::string_view shown = text.substr(0, 120);
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not an HLC timestamp \"<16-digit wall_ms>.<5-digit counter>.<node>\", got \"",
        absl::CHexEscape(shown), shown.size() < text.size() ? "...\"" : "\""));
  };
  constexpr size_t kNodeStart = kWallDigits + 1 + kCounterDigits + 1;
  if (text.size() <= kNodeStart || text[kWallDigits] != '.' ||
      text[kWallDigits + 1 + kCounterDigits] != '.') {
    return invalid();
  }
  uint64_t wall = 0, counter = 0;
  if (!ParseDigits(text.substr(0, kWallDigits), &wall) ||
      !ParseDigits(text.substr(kWallDigits + 1, kCounterDigits), &counter)) {
    return invalid();
  }
  absl::string_view node = text.substr(kNodeStart);
  if (node.find('.') != absl::string_view::npos) return invalid();
  Hlc hlc;
  hlc.wall_ms = static_cast<int64_t>(wall);
  hlc.counter = static_cast<uint32_t>(counter);
  hlc.node = std::string(node);
  return hlc;
}

bool IsValidHlc(const Hlc& hlc) {
  return hlc.wall_ms >= 0 && hlc.wall_ms <= kMaxWallMs && hlc.counter <= kMaxCounter &&
         !hlc.node.empty() && hlc.node.find('.') == std::string::npos;
}

bool operator<(const Hlc& a, const Hlc& b) {
  // std::string compares bytes as unsigned char, the same order as the encoded form in SQL.
  return std::tie(a.wall_ms, a.counter, a.node) < std::tie(b.wall_ms, b.counter, b.node);
}

bool operator==(const Hlc& a, const Hlc& b) {
  return a.wall_ms == b.wall_ms && a.counter == b.counter && a.node == b.node;
}

int64_t SystemClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

HlcClock::HlcClock(std::string node, std::function<int64_t()> physical_ms)
    : node_(std::move(node)), physical_ms_(std::move(physical_ms)) {
  last_.node = node_;
}

Hlc HlcClock::Now() {
  // A physical clock before 1970 (a dead RTC) or past the encodable range is clamped rather than
  // trusted; the logical part keeps the order either way.
  int64_t physical = std::clamp<int64_t>(Physical(), 0, kMaxWallMs);
  if (physical > last_.wall_ms) {
    last_.wall_ms = physical;
    last_.counter = 0;
  } else {
    Tick(last_);
  }
  last_.node = node_;
  return last_;
}

void HlcClock::Observe(const Hlc& remote) {
  int64_t physical = std::clamp<int64_t>(Physical(), 0, kMaxWallMs);
  if (physical > last_.wall_ms && physical > remote.wall_ms) {
    last_.wall_ms = physical;
    last_.counter = 0;
  } else {
    // Continue from the later of the two logical clocks so that the next Now() is after both.
    if (remote.wall_ms > last_.wall_ms ||
        (remote.wall_ms == last_.wall_ms && remote.counter > last_.counter)) {
      last_.wall_ms = remote.wall_ms;
      last_.counter = remote.counter;
    }
    Tick(last_);
  }
  last_.node = node_;
}

void HlcClock::Restore(const Hlc& last) {
  if (std::tie(last.wall_ms, last.counter) > std::tie(last_.wall_ms, last_.counter)) {
    last_.wall_ms = last.wall_ms;
    last_.counter = last.counter;
  }
  last_.node = node_;
}

void HlcClock::ResetTo(const Hlc& last) {
  last_.wall_ms = last.wall_ms;
  last_.counter = last.counter;
  last_.node = node_;
}

Hlc BoundSkew(const Hlc& claimed, int64_t server_now_ms, int64_t max_future_ms) {
  if (claimed.wall_ms - server_now_ms <= max_future_ms) return claimed;
  Hlc bounded;
  bounded.wall_ms = server_now_ms;
  bounded.counter = 0;
  bounded.node = claimed.node;
  return bounded;
}

}  // namespace fieldsync::sync
