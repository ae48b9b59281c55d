// Field-level last-writer-wins merge on hybrid logical clocks: the heart of sync.
//
//   Change c{.device_id = "dev-1", .device_seq = 42, .collection = "record", .doc_id = id,
//            .hlc = clock.Now(), .fields = {{"well.yield_lph", bytes, base}}};
//   MergeResult r = Merge(doc, c);
//   for (const FieldOutcome& f : r.fields) if (f.conflict) RecordConflict(f);
//
// Per field, the value with the greater clock wins (Hlc order: wall time, counter, then node, so
// two writers never tie). That makes Merge a join on a lattice: applying the same set of changes
// in any order, any number of times, gives the same document on every replica (commutative,
// associative, idempotent), which the randomized test in merge_test.cc checks.
//
// Conflicts: each changed field carries the clock of the value its writer last saw (base_hlc).
// If the document's current value has a different clock and was written by another node, the two
// writers edited concurrently: the merge still picks the greater clock, and the outcome is
// flagged `conflict` with both values, so that HQ can review it. Nothing is silently dropped.
#ifndef FIELDSYNC_SYNC_MERGE_H_
#define FIELDSYNC_SYNC_MERGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/sync/hlc.h"

namespace fieldsync::sync {

struct FieldChange {
  std::string path;
  // New value bytes; "" resets the field to its default. For kDeletedPath: "\x01" or "".
  std::string value;
  // Clock of the value the writer saw when editing (zero Hlc if the field was unset).
  Hlc base_hlc;
};

// One device's edit of one document: the unit of the outbox, of Push and of the change log.
struct Change {
  // Who made it; (device_id, device_seq) is unique and makes replays idempotent.
  std::string device_id;
  int64_t device_seq = 0;
  std::string collection;
  std::string doc_id;
  // One clock for every field of the change; hlc.node is the writer.
  Hlc hlc;
  std::vector<FieldChange> fields;
};

struct FieldOutcome {
  std::string path;
  // The change's value became current.
  bool applied = false;
  // The field was concurrently edited by another writer (see file comment).
  bool conflict = false;
  // The winner and loser of this field, when it is a conflict or the change lost.
  std::string winning_value, losing_value;
  Hlc winning_hlc, losing_hlc;
};

struct MergeResult {
  std::vector<FieldOutcome> fields;
  // Some field's value or clock changed.
  bool changed = false;
};

// Applies `change` to `doc` (whose collection and id must match; sets them if `doc` is new).
// Fields get `seq` as their sequence number when applied. Pure: no I/O.
MergeResult Merge(Document& doc, const Change& change, int64_t seq = 0);

// Checks a change's shape before it is merged: collection known (PrototypeFor), doc_id a UUID,
// device_seq > 0, hlc.node == device_id... (node check only when `expect_node` is non-empty),
// every path a field of the collection's message or kDeletedPath, no path twice, values parse.
// INVALID_ARGUMENT naming "changes[i]..." via `path`.
absl::Status ValidateChange(const Change& change, absl::string_view path,
                            absl::string_view expect_node);

}  // namespace fieldsync::sync

#endif  // FIELDSYNC_SYNC_MERGE_H_
