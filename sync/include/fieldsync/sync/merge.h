// Field-level last-writer-wins merge on hybrid logical clocks: the heart of sync.
//
//   Change c{.device_id = "dev-1", .device_seq = 42, .collection = "record", .doc_id = id,
//            .hlc = clock.Now(), .fields = {{"well.yield_lph", bytes, base}}};
//   MergeResult r = Merge(doc, c);
//   for (const FieldOutcome& f : r.fields) if (f.conflict) RecordConflict(f);
//
// Per field, the value with the greater clock wins (Hlc order: wall time, counter, then node, so
// two writers never tie). Should two writes still carry the same clock with different values
// (BoundSkew stamps every too-far-ahead change of one device within a millisecond alike), the
// greater value bytes win, so the order on (clock, value) stays total. That makes Merge a join
// on a lattice: applying the same set of changes in any order, any number of times, gives the
// same document on every replica (commutative, associative, idempotent), which the randomized
// test in merge_test.cc checks. A replayed change (same clock, same value) is a no-op.
//
// Conflicts: each changed field carries the clock of the value its writer last saw (base_hlc).
// If the document's current value has a later clock than that, was written by another node, and
// differs from the change's value, the two writers edited concurrently: the merge still picks
// the greater clock, and the outcome is flagged `conflict` with both values, so that HQ can
// review it. Nothing is silently dropped. (Equal values agree and are not flagged. A change that
// arrives after a later change built on it, possible only when changes travel out of causal
// order as with store-and-forward, is flagged too: documents keep no base clocks to tell.)
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
  // The winner and loser of this field, when it is a conflict or the change lost; empty for a
  // replay (the change's clock and value are already current), which neither won nor lost.
  std::string winning_value, losing_value;
  Hlc winning_hlc, losing_hlc;
};

struct MergeResult {
  std::vector<FieldOutcome> fields;
  // Some field's value or clock changed.
  bool changed = false;
};

// Applies `change` to `doc` (whose collection and id must match; sets them if `doc` is new,
// i.e. both are empty). A change for another document is ignored: no outcomes, changed false.
// Outcomes are in the order of change.fields. Fields get `seq` as their sequence number when
// applied. Pure: no I/O. Does not validate: run ValidateChange on untrusted changes first.
MergeResult Merge(Document& doc, const Change& change, int64_t seq = 0);

// Checks a change's shape before it is merged: collection known (PrototypeFor), doc_id a UUID,
// device_id non-empty, device_seq > 0, hlc valid (IsValidHlc). When `expect_node` is non-empty
// (the authenticated sender), device_id == hlc.node == expect_node; with an empty `expect_node`
// neither is compared (the server's own changes, a log replay). At least one field (as
// sync.proto requires); every path a field of the collection's message (see ResolvePath) or
// kDeletedPath, no path twice; every value parses as exactly its field (MergeFieldValue), sets
// no output-only field (see ClearOutputOnly), and is "" or "\x01" for kDeletedPath; every
// base_hlc zero or valid. INVALID_ARGUMENT naming the part via `path`, e.g.
// `changes[3].fields[1].path: not a field of record, got "well.bogus"`.
absl::Status ValidateChange(const Change& change, absl::string_view path,
                            absl::string_view expect_node);

}  // namespace fieldsync::sync

#endif  // FIELDSYNC_SYNC_MERGE_H_
