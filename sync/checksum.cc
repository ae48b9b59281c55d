#include "fieldsync/sync/checksum.h"

#include "absl/strings/str_cat.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/base/status_macros.h"

namespace fieldsync::sync {
namespace {

// XOR is its own inverse, so Add and Remove are the same step.
void Toggle(std::string& digest, absl::string_view collection, absl::string_view id,
            absl::string_view payload) {
  static constexpr absl::string_view kDomain("fieldsync-doc-v1\0", 17);
  static constexpr absl::string_view kSeparator("\0", 1);
  std::string hash = Sha256(absl::StrCat(kDomain, collection, kSeparator, id, kSeparator, payload));
  for (size_t i = 0; i < digest.size(); ++i) digest[i] ^= hash[i];
}

}  // namespace

void ScopeChecksum::Add(absl::string_view collection, absl::string_view id,
                        absl::string_view payload) {
  Toggle(digest_, collection, id, payload);
  ++count_;
}

void ScopeChecksum::Remove(absl::string_view collection, absl::string_view id,
                           absl::string_view payload) {
  Toggle(digest_, collection, id, payload);
  --count_;
}

absl::Status ScopeChecksum::Add(const Document& doc) {
  if (doc.deleted()) return absl::OkStatus();
  FS_ASSIGN_OR_RETURN(std::string payload, CanonicalPayload(doc));
  Add(doc.collection, doc.id, payload);
  return absl::OkStatus();
}

std::string ScopeChecksum::Hex() const { return HexEncode(digest_); }

}  // namespace fieldsync::sync
