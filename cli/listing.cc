#include "cli/listing.h"

#include "cli/values.h"

namespace fieldsync::cli {
namespace {

// The server's largest page.
constexpr int64_t kMaxPageSize = 1000;

}  // namespace

std::vector<FlagSpec> PagingFlags() {
  return {
      {"limit", "N", "show at most N items (default: 50)"},
      {"all", "", "show every item, however many (overrides --limit)"},
  };
}

std::vector<FlagSpec> WithPagingFlags(std::vector<FlagSpec> flags) {
  for (FlagSpec& flag : PagingFlags()) flags.push_back(std::move(flag));
  return flags;
}

absl::StatusOr<PageLimit> PageLimitFromFlags(const FlagValues& flags) {
  PageLimit limit;
  limit.all = flags.Has("all");
  if (flags.Has("limit")) {
    FS_ASSIGN_OR_RETURN(limit.max_items,
                        ParseInt("limit", flags.Get("limit"), 1, int64_t{1} << 40));
  }
  return limit;
}

int32_t NextPageSize(const PageLimit& limit, int64_t fetched) {
  if (limit.all) return static_cast<int32_t>(kMaxPageSize);
  return static_cast<int32_t>(std::clamp<int64_t>(limit.max_items - fetched, 1, kMaxPageSize));
}

}  // namespace fieldsync::cli
