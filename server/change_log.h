// The hash chain of the change log: hash_n = SHA-256(hash_{n-1} || canonical bytes of entry n).
//
// Canonical bytes of an entry (version 1): the ASCII line "fieldsync-change-v1\n", then each of
// seq, collection, doc_id, op, actor_id, device_id, device_seq, hlc, server_time (Unix
// microseconds), payload, in that order, each as an 8-byte big-endian length followed by its
// bytes; integers are written in decimal ASCII. The first entry's previous hash is 32 zero
// bytes. Hashes are stored and shown as lower-case hex. Anyone can recompute the chain from an
// export of the log with this definition alone.
#ifndef FIELDSYNC_SERVER_CHANGE_LOG_H_
#define FIELDSYNC_SERVER_CHANGE_LOG_H_

#include <string>

#include "absl/strings/string_view.h"
#include "server/store.h"

namespace fieldsync::server {

// 64 hex zeros: the previous hash of the first entry.
extern const char kGenesisHash[];

std::string CanonicalChangeBytes(const ChangeLogEntry& entry);

// Hex SHA-256(prev_hash (as raw bytes) || CanonicalChangeBytes(entry)). `prev_hash_hex` must be
// 64 hex characters.
std::string ChainHash(absl::string_view prev_hash_hex, const ChangeLogEntry& entry);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_CHANGE_LOG_H_
