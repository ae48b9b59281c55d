// Scope checksums: an order-independent digest of the set of live documents a device may see,
// computed the same way by the server and by the client after a pull. Equal digests mean equal
// document sets (up to SHA-256 collisions); a mismatch triggers a repair.
//
//   ScopeChecksum sum;
//   for (const Document& d : docs) sum.Add(d);   // any order
//   if (sum.Hex() != server_hex) Repair();
//
// Definition: XOR over live documents of SHA-256("fieldsync-doc-v1\0" collection "\0" id "\0"
// canonical payload). Deleted documents do not count. XOR makes it incremental.
#ifndef FIELDSYNC_SYNC_CHECKSUM_H_
#define FIELDSYNC_SYNC_CHECKSUM_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "fieldsync/sync/document.h"

namespace fieldsync::sync {

class ScopeChecksum {
 public:
  // Adds one live document given by its canonical payload; Remove undoes exactly that Add.
  void Add(absl::string_view collection, absl::string_view id, absl::string_view payload);
  void Remove(absl::string_view collection, absl::string_view id, absl::string_view payload);
  // Adds a document; deleted ones are ignored. INVALID_ARGUMENT if it does not assemble.
  absl::Status Add(const Document& doc);

  // 32 raw bytes; all zero for the empty set.
  const std::string& Digest() const { return digest_; }
  std::string Hex() const;
  int64_t count() const { return count_; }

 private:
  std::string digest_ = std::string(32, '\0');
  int64_t count_ = 0;
};

}  // namespace fieldsync::sync

#endif  // FIELDSYNC_SYNC_CHECKSUM_H_
