// Push batches as a device sends them: a PushRequest parsed from bytes goes through the checks
// the server makes before touching the store (Hlc::Decode, sync::ValidateChange, Merge and
// Assemble of the merged document), then into SqliteStore::Push on a real database holding a
// small demo network, as the device kDeviceId of its first partner.
//
// Input: one flags byte, then the serialized PushRequest. Unless a flag says otherwise the
// fuzzer renumbers device_seq to follow the store's acknowledged sequence (bit 0 set: keep
// them) and puts kDeviceId in each decodable hlc (bit 1 set: keep them), so that mutations of
// the fields reach the merge and the validators instead of the replay and sender checks.
//
// Checked: nothing crashes; a refused batch is INVALID_ARGUMENT or FAILED_PRECONDITION and
// leaves the database exactly as it was (PRAGMA data_version of a second connection, the
// change log's last seq, the device's acknowledged seq); an accepted batch logs exactly one
// change-log entry per new change, acknowledges the last of them, keeps the hash chain intact,
// and everything it changed comes back from a pull as fields that assemble into the
// collection's message.
#include <sqlite3.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fieldsync/sync/document.h"
#include "google/protobuf/stubs/logging.h"
#include "fieldsync/sync/hlc.h"
#include "fieldsync/sync/merge.h"
#include "fieldsync/v1/sync.pb.h"
#include "fuzz/fixture.h"
#include "server/change_log.h"
#include "server/syncer.h"

namespace fieldsync::fuzz {
namespace {

// Reopen a fresh database after this many inputs, so the file stays small.
constexpr int kRunsPerWorld = 5000;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "push_fuzzer: %s\n", what.c_str());
  std::abort();
}

struct State {
  std::string dir;
  int generation = 0;
  int runs = 0;
  DemoWorld world;
  sqlite3* observer = nullptr;  // a second connection, to see commits
  int64_t chain_checked_seq = 0;
  std::string chain_prev_hash = server::kGenesisHash;
};

State& S() {
  static State* s = new State();
  return *s;
}

void Reset() {
  State& s = S();
  if (s.observer != nullptr) sqlite3_close(s.observer);
  s.world = DemoWorld();
  if (s.dir.empty()) s.dir = NewScratchDir();
  std::string path = absl::StrCat(s.dir, "/push-", s.generation++, ".db");
  std::remove(absl::StrCat(s.dir, "/push-", s.generation - 2, ".db").c_str());
  s.world = OpenDemoWorld(path);
  if (sqlite3_open_v2(path.c_str(), &s.observer, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    Fail("cannot open the observer connection");
  }
  s.runs = 0;
  s.chain_checked_seq = 0;
  s.chain_prev_hash = server::kGenesisHash;
}

int64_t DataVersion() {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(S().observer, "PRAGMA data_version", -1, &st, nullptr) != SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW) {
    Fail(absl::StrCat("PRAGMA data_version: ", sqlite3_errmsg(S().observer)));
  }
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

// The pure checks, as SqliteStore's FromProto and ApplyChange make them, on their own: a change
// that validates must merge into a new document that assembles, and merge again as a no-op.
void CheckPure(const v1::PushRequest& request) {
  for (int i = 0; i < request.changes_size(); ++i) {
    const v1::Change& c = request.changes(i);
    absl::StatusOr<sync::Hlc> hlc = sync::Hlc::Decode(c.hlc(), "hlc");
    if (!hlc.ok()) continue;
    sync::Change change;
    change.device_id = kDeviceId;
    change.device_seq = c.device_seq();
    change.collection = c.collection();
    change.doc_id = c.doc_id();
    change.hlc = *hlc;
    bool decoded = true;
    for (const v1::FieldChange& f : c.fields()) {
      sync::FieldChange fc{f.path(), f.value(), sync::Hlc()};
      if (!f.base_hlc().empty()) {
        absl::StatusOr<sync::Hlc> base = sync::Hlc::Decode(f.base_hlc(), "base_hlc");
        if (!base.ok()) {
          decoded = false;
          break;
        }
        fc.base_hlc = *base;
      }
      change.fields.push_back(std::move(fc));
    }
    if (!decoded) continue;
    absl::Status valid = sync::ValidateChange(change, absl::StrCat("changes[", i, "]"), kDeviceId);
    if (!valid.ok()) {
      if (valid.code() != absl::StatusCode::kInvalidArgument) {
        Fail(absl::StrCat("ValidateChange answered ", valid.ToString()));
      }
      continue;
    }
    sync::Document doc;
    sync::MergeResult first = sync::Merge(doc, change, 1);
    if (!first.changed && !change.fields.empty()) {
      // Every field is new to an empty document, but "" values equal the unset state.
      bool all_empty = true;
      for (const sync::FieldChange& f : change.fields) all_empty &= f.value.empty();
      if (!all_empty) Fail("a valid change did not change an empty document");
    }
    absl::StatusOr<std::string> payload = sync::CanonicalPayload(doc);
    if (!payload.ok()) {
      Fail(absl::StrCat("a valid change merged into a document that does not assemble: ",
                        payload.status().ToString()));
    }
    sync::Document again = doc;
    sync::MergeResult second = sync::Merge(again, change, 2);
    if (second.changed) Fail("merging the same change twice changed the document");
    for (const sync::FieldOutcome& f : second.fields) {
      if (f.conflict) Fail("a replayed change was flagged as a conflict");
    }
  }
}

void CheckChain(server::Store& store) {
  State& s = S();
  while (true) {
    absl::StatusOr<std::vector<server::ChangeLogEntry>> log =
        store.ReadChangeLog(s.chain_checked_seq, 500);
    CheckOk(log.status(), "read change log");
    if (log->empty()) return;
    for (const server::ChangeLogEntry& e : *log) {
      if (e.prev_hash != s.chain_prev_hash || e.hash != server::ChainHash(s.chain_prev_hash, e)) {
        Fail(absl::StrCat("change log hash chain broken at seq ", e.seq));
      }
      s.chain_prev_hash = e.hash;
      s.chain_checked_seq = e.seq;
    }
  }
}

void CheckPulled(server::Store& store, const std::string& partner_id, int64_t after_seq) {
  absl::StatusOr<server::PullResult> page = store.Pull(partner_id, after_seq, after_seq, 5000);
  CheckOk(page.status(), "pull after an accepted push");
  for (const v1::DocumentDelta& d : page->documents) {
    const google::protobuf::Message* prototype = sync::PrototypeFor(d.collection());
    if (prototype == nullptr) Fail(absl::StrCat("pulled an unknown collection ", d.collection()));
    sync::FieldValues values;
    for (const v1::DeltaField& f : d.fields()) {
      if (!sync::Hlc::Decode(f.hlc(), "hlc").ok()) Fail("pulled a field with a bad hlc");
      values[f.path()] = f.value();
    }
    std::unique_ptr<google::protobuf::Message> m(prototype->New());
    absl::Status assembled = sync::Assemble(values, m.get());
    if (!assembled.ok()) {
      Fail(absl::StrCat("pulled fields of ", d.collection(), " ", d.doc_id(),
                        " do not assemble: ", assembled.ToString()));
    }
  }
}

}  // namespace
}  // namespace fieldsync::fuzz

// Protobuf logs every string field with invalid UTF-8 it refuses to parse; such input never
// reaches a handler (gRPC refuses it first), so the lines are noise here.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int,
                                     const std::string&) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldsync;
  using namespace fieldsync::fuzz;
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  v1::PushRequest request;
  // gRPC refuses what does not parse before any handler runs.
  if (!request.ParseFromArray(data + 1, static_cast<int>(size - 1))) return -1;
  CheckPure(request);
  if (request.changes_size() > server::Syncer::kMaxPushChanges) return 0;

  State& s = S();
  if (s.world.store == nullptr || s.runs >= kRunsPerWorld) Reset();
  ++s.runs;
  server::SqliteStore& store = *s.world.store;

  absl::StatusOr<int64_t> acked_before = store.AckedDeviceSeq(kDeviceId);
  CheckOk(acked_before.status(), "acked seq");
  for (int i = 0; i < request.changes_size(); ++i) {
    v1::Change* c = request.mutable_changes(i);
    if ((flags & 1) == 0) c->set_device_seq(*acked_before + 1 + i);
    if ((flags & 2) == 0) {
      absl::StatusOr<sync::Hlc> hlc = sync::Hlc::Decode(c->hlc(), "hlc");
      if (hlc.ok()) {
        hlc->node = kDeviceId;
        c->set_hlc(hlc->Encode());
      }
    }
  }
  std::vector<v1::Change> changes(request.changes().begin(), request.changes().end());

  const int64_t last_seq_before = store.LastSeq();
  const int64_t version_before = DataVersion();
  absl::StatusOr<server::PushResult> pushed =
      store.Push(server::DeviceWriter{kDeviceId, s.world.partner_id}, changes);
  absl::StatusOr<int64_t> acked_after = store.AckedDeviceSeq(kDeviceId);
  CheckOk(acked_after.status(), "acked seq");
  const int64_t last_seq_after = store.LastSeq();
  if (std::getenv("FIELDSYNC_FUZZ_VERBOSE") != nullptr) {
    std::fprintf(stderr, "push of %d changes: %s\n", request.changes_size(),
                 pushed.ok() ? absl::StrCat("ok, acked ", *acked_after).c_str()
                             : pushed.status().ToString().c_str());
  }

  if (!pushed.ok()) {
    absl::StatusCode code = pushed.status().code();
    if (code != absl::StatusCode::kInvalidArgument &&
        code != absl::StatusCode::kFailedPrecondition) {
      Fail(absl::StrCat("a refused push answered ", pushed.status().ToString()));
    }
    if (!absl::StartsWith(pushed.status().message(), "changes[")) {
      Fail(absl::StrCat("a refused push does not name the change: ", pushed.status().ToString()));
    }
    if (DataVersion() != version_before || last_seq_after != last_seq_before ||
        *acked_after != *acked_before) {
      Fail(absl::StrCat("a refused push left something behind: ", pushed.status().ToString()));
    }
    return 0;
  }
  if (pushed->acked_device_seq != *acked_after || *acked_after < *acked_before) {
    Fail("an accepted push acknowledged the wrong sequence");
  }
  if (last_seq_after - last_seq_before != *acked_after - *acked_before) {
    Fail(absl::StrCat("an accepted push of ", *acked_after - *acked_before, " new changes logged ",
                      last_seq_after - last_seq_before, " entries"));
  }
  if (last_seq_after != last_seq_before) {
    CheckChain(store);
    CheckPulled(store, s.world.partner_id, last_seq_before);
  }
  return 0;
}
