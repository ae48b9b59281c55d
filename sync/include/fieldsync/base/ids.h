// Identifiers and secrets generated where a row is created.
//
//   std::string id = fieldsync::NewUuidV7();   // "018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e6f"
//   if (!fieldsync::IsUuid(id)) ...
#ifndef FIELDSYNC_BASE_IDS_H_
#define FIELDSYNC_BASE_IDS_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

namespace fieldsync {

// A new RFC 9562 UUID version 7 (48-bit Unix milliseconds, then random bits), lower-case hex
// with dashes. Ids made later by the same process sort after earlier ones. Thread-safe.
std::string NewUuidV7();

// True if `s` is a UUID in canonical lower-case 8-4-4-4-12 hex form (any version).
bool IsUuid(absl::string_view s);

// `n` cryptographically random bytes from OpenSSL's RAND_bytes. Aborts if the system has no
// entropy source, which leaves nothing sensible to do.
std::string RandomBytes(size_t n);

// Unpadded base64url of `bytes`.
std::string Base64UrlEncode(absl::string_view bytes);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

// Raw 32-byte SHA-256 of `data`.
std::string Sha256(absl::string_view data);

// Lower-case hex of arbitrary bytes.
std::string HexEncode(absl::string_view bytes);

}  // namespace fieldsync

#endif  // FIELDSYNC_BASE_IDS_H_
