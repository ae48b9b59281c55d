// Pull cursors: the opaque "fsc2:" text a device sends back in PullRequest.cursor.
//
// Checked: DecodeCursor never crashes; it accepts only what EncodeCursor can make (0 <= base <=
// position), refuses everything else with INVALID_ARGUMENT naming "cursor", and an accepted
// cursor encodes and decodes back to the same positions.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "server/syncer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fieldsync::server::DecodeCursor;
  using fieldsync::server::EncodeCursor;
  using fieldsync::server::PullCursor;
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<PullCursor> cursor = DecodeCursor(text);
  if (!cursor.ok()) {
    if (cursor.status().code() != absl::StatusCode::kInvalidArgument ||
        !absl::StartsWith(cursor.status().message(), "cursor: ")) {
      std::fprintf(stderr, "refused cursor with %s\n", cursor.status().ToString().c_str());
      std::abort();
    }
    return 0;
  }
  if (cursor->base < 0 || cursor->position < cursor->base) {
    std::fprintf(stderr, "accepted an impossible cursor %lld:%lld\n",
                 static_cast<long long>(cursor->base), static_cast<long long>(cursor->position));
    std::abort();
  }
  absl::StatusOr<PullCursor> again = DecodeCursor(EncodeCursor(*cursor));
  if (!again.ok() || again->base != cursor->base || again->position != cursor->position) {
    std::fprintf(stderr, "cursor does not round-trip\n");
    std::abort();
  }
  return 0;
}
