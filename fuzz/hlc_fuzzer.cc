// Hybrid logical clock text, as devices send it in every Change.hlc and FieldChange.base_hlc.
//
// Checked: Hlc::Decode never crashes; what it accepts is valid (IsValidHlc) and re-encodes to
// the very same text (one spelling per clock, so encoded clocks sort and compare as bytes);
// BoundSkew and HlcClock::Observe on an accepted clock keep the clock valid and monotonic.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "fieldsync/sync/hlc.h"

namespace {

[[noreturn]] void Fail(const char* what, absl::string_view text) {
  std::fprintf(stderr, "hlc_fuzzer: %s: \"%.*s\"\n", what, static_cast<int>(text.size()),
               text.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fieldsync::sync::Hlc;
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Hlc> hlc = Hlc::Decode(text, "hlc");
  if (!hlc.ok()) {
    if (hlc.status().code() != absl::StatusCode::kInvalidArgument) Fail("odd error", text);
    return 0;
  }
  if (!fieldsync::sync::IsValidHlc(*hlc)) Fail("accepted an invalid clock", text);
  if (hlc->Encode() != text) Fail("does not re-encode to the same text", text);
  // The server's handling of a device clock (SqliteStore::Push): bound, then observe.
  const int64_t now = 1795000000000;  // 2026-11-17, fixed so a finding reproduces
  Hlc bounded = fieldsync::sync::BoundSkew(*hlc, now, fieldsync::sync::kDefaultMaxFutureMs);
  if (!fieldsync::sync::IsValidHlc(bounded) || bounded.node != hlc->node) {
    Fail("BoundSkew made an invalid clock", text);
  }
  fieldsync::sync::HlcClock clock("server", [] { return now; });
  Hlc before = clock.Now();
  clock.Observe(bounded);
  Hlc after = clock.Now();
  if (!(before < after) || !(bounded < after) || !fieldsync::sync::IsValidHlc(after)) {
    Fail("the server clock went wrong after observing", text);
  }
  return 0;
}
