// Checks on field devices (client library stores) against the server they sync with, shared by
// the fault, device-crash and disk-full tests.
//
//   testing::ExpectConverged(server.db_path(), partner_id, {a.get(), b.get()});
//   testing::ExpectExactlyOnce(server.db_path(), device_id, created_ids, last_device_seq);
#ifndef FIELDSYNC_TESTS_TESTING_DEVICE_CHECKS_H_
#define FIELDSYNC_TESTS_TESTING_DEVICE_CHECKS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "fieldsync/client.h"

namespace fieldsync::testing {

// Every live record, project and site of the device's local view, serialized and sorted: what
// it shows its user.
std::vector<std::string> LocalDocuments(client::Client& device);

// The server's scope checksum of `partner_id` (hex, from its scope_checksums table), read behind
// its back; "" if there is none.
std::string ServerScopeChecksum(const std::string& server_db, const std::string& partner_id);

// PRAGMA integrity_check on the SQLite file `db_path`, its rows joined: "ok" for a sound file.
std::string IntegrityCheck(const std::string& db_path);

// Devices of one partner converged: each one's ServerStateChecksum() equals the server's scope
// checksum, none has pending changes, and all hold the same documents. Reports with
// ADD_FAILURE / EXPECT, naming the device by its index.
void ExpectConverged(const std::string& server_db, const std::string& partner_id,
                     const std::vector<client::Client*>& devices);

// Each record id in `created` is on the server exactly once (one row in records, one create in
// change_log), and the server's change log holds the device's device_seq 1..last_device_seq,
// each once. Returns the number of problems found (each one also reported).
int ExpectExactlyOnce(const std::string& server_db, const std::string& device_id,
                      const std::vector<std::string>& created, int64_t last_device_seq);

}  // namespace fieldsync::testing

#endif  // FIELDSYNC_TESTS_TESTING_DEVICE_CHECKS_H_
