#include "client_lib/local_store.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/model/validate.h"
#include "fieldsync/model/visual_acuity.h"
#include "fieldsync/sync/checksum.h"
#include "google/protobuf/util/time_util.h"

namespace fieldsync::client {
namespace {

using sqlite::Statement;

// Each migration runs once, in order, in its own transaction; a schema change is a new entry at
// the end, never an edit of a shipped one (devices in the field upgrade from any version).
constexpr const char* kMigrations[] = {
    // 1: the foundation.
    R"sql(
CREATE TABLE sync_state(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL) WITHOUT ROWID;

-- The documents as the server last sent them, one row per field with its clock. epoch is the
-- pull generation the row came from (see kEpochKey).
CREATE TABLE server_fields(
  collection TEXT NOT NULL,
  doc_id TEXT NOT NULL,
  path TEXT NOT NULL,
  value BLOB NOT NULL,
  hlc TEXT NOT NULL,
  seq INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  PRIMARY KEY (collection, doc_id, path)) WITHOUT ROWID;
CREATE INDEX server_fields_by_epoch ON server_fields(epoch);

-- Local edits (serialized fieldsync.v1.Change), numbered without gaps by device_seq.
CREATE TABLE outbox(
  device_seq INTEGER PRIMARY KEY,
  collection TEXT NOT NULL,
  doc_id TEXT NOT NULL,
  change BLOB NOT NULL,
  created_at_ms INTEGER NOT NULL);
CREATE INDEX outbox_by_doc ON outbox(collection, doc_id, device_seq);

-- The local view queries read: server state with the outbox merged on top. payload is the
-- document's message without output-only fields; the typed columns serve the list filters
-- ('' or 0 when not applicable). kind is a RecordKind for records, a ProjectKind for projects.
CREATE TABLE docs(
  collection TEXT NOT NULL,
  doc_id TEXT NOT NULL,
  payload BLOB NOT NULL,
  deleted INTEGER NOT NULL,
  version INTEGER NOT NULL,
  pending INTEGER NOT NULL,
  project_id TEXT NOT NULL DEFAULT '',
  site_id TEXT NOT NULL DEFAULT '',
  partner_id TEXT NOT NULL DEFAULT '',
  kind INTEGER NOT NULL DEFAULT 0,
  record_date TEXT NOT NULL DEFAULT '',
  country TEXT NOT NULL DEFAULT '',
  status INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (collection, doc_id)) WITHOUT ROWID;
CREATE INDEX docs_by_project ON docs(collection, project_id, doc_id);
CREATE INDEX docs_by_date ON docs(collection, record_date);
)sql",
    // 2: changes the server refused (moved here from the outbox, never lost), for the user to
    // see, amend and resubmit.
    R"sql(
CREATE TABLE rejections(
  id INTEGER PRIMARY KEY,
  stream_id TEXT NOT NULL,
  device_seq INTEGER NOT NULL,
  collection TEXT NOT NULL,
  doc_id TEXT NOT NULL,
  change BLOB NOT NULL,
  code INTEGER NOT NULL,
  reason TEXT NOT NULL,
  rejected_at_ms INTEGER NOT NULL,
  status TEXT NOT NULL);
CREATE UNIQUE INDEX rejections_by_seq ON rejections(stream_id, device_seq);
)sql",
};

constexpr int kLatestSchema = static_cast<int>(std::size(kMigrations));
constexpr absl::string_view kPageTokenPrefix = "fsl1:";

std::string EncodePageToken(absl::string_view last_id) {
  return absl::WebSafeBase64Escape(absl::StrCat(kPageTokenPrefix, last_id));
}

// Reads outbox changes (column 0) until the statement is done; resets it in every case.
absl::StatusOr<std::vector<v1::Change>> ReadChanges(sqlite::Statement& q) {
  std::vector<v1::Change> changes;
  absl::Status status;
  while (status.ok()) {
    absl::StatusOr<bool> row = q.Step();
    if (!row.ok()) {
      status = row.status();
      break;
    }
    if (!*row) break;
    v1::Change change;
    if (!change.ParseFromString(q.ColumnBlob(0))) {
      status = absl::DataLossError("an outbox entry does not parse");
      break;
    }
    changes.push_back(std::move(change));
  }
  q.Reset();
  if (!status.ok()) return status;
  return changes;
}

// Reads the rows (doc_id, payload, version) of a list query into one page of `out`: parses each
// payload, lets `keep` filter and complete it, stops after `limit` kept rows and returns the next
// page token ("" on the last page). Resets the statement in every case.
template <typename Message>
absl::StatusOr<std::string> ReadPage(sqlite::Statement& q, int limit, absl::string_view what,
                                     google::protobuf::RepeatedPtrField<Message>* out,
                                     const std::function<bool(Message&)>& keep) {
  std::string last_id, next_token;
  absl::Status status;
  while (status.ok()) {
    absl::StatusOr<bool> row = q.Step();
    if (!row.ok()) {
      status = row.status();
      break;
    }
    if (!*row) break;
    Message message;
    if (!message.ParseFromString(q.ColumnBlob(1))) {
      status = absl::DataLossError(absl::StrCat(what, " ", q.ColumnText(0), " does not parse"));
      break;
    }
    if (!keep(message)) continue;
    if (out->size() == limit) {
      next_token = EncodePageToken(last_id);
      break;
    }
    message.mutable_audit()->set_version(q.ColumnInt(2));
    *out->Add() = std::move(message);
    last_id = q.ColumnText(0);
  }
  q.Reset();
  if (!status.ok()) return status;
  return next_token;
}

// Page size and the id to continue after, validated like the server's lists.
absl::Status PageFor(int32_t page_size, absl::string_view token, int* limit,
                     std::string* after_id) {
  if (page_size < 0 || page_size > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be within [0, 1000], got ", page_size));
  }
  *limit = page_size == 0 ? 100 : page_size;
  after_id->clear();
  if (token.empty()) return absl::OkStatus();
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) || !absl::StartsWith(raw, kPageTokenPrefix) ||
      !IsUuid(raw.substr(kPageTokenPrefix.size()))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_token: not a token from a previous page, got \"", token.substr(0, 60), "\""));
  }
  *after_id = raw.substr(kPageTokenPrefix.size());
  return absl::OkStatus();
}

absl::Status CheckCountry(absl::string_view path, absl::string_view country) {
  if (country.empty() || model::IsCountryCode(country)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": not an ISO 3166-1 alpha-2 country code, got \"", country, "\""));
}

absl::StatusOr<sync::Hlc> DecodeOptionalHlc(absl::string_view text, absl::string_view path) {
  if (text.empty()) return sync::Hlc();
  return sync::Hlc::Decode(text, path);
}

// The scope checksum of server_fields, kept up to date page by page so that a sync need not
// re-read every stored field (which made a sync with nothing to do cost O(documents)). Stored in
// sync_state as "<64 hex digits>:<documents>:<last pages since a full recomputation>"; absent
// (or unreadable) means unknown, and the next last page recomputes it in full.
constexpr char kServerDigestKey[] = "server_digest";
// A full recomputation at least every this many last pages, so that server_fields rows changed
// other than through ApplyPage (a damaged file) are still caught by the checksum comparison.
constexpr int64_t kFullChecksumEvery = 64;

struct RunningDigest {
  bool valid = false;
  std::string digest = std::string(32, '\0');
  int64_t documents = 0;
  int64_t since_full = 0;
};

RunningDigest ParseDigest(absl::string_view text) {
  RunningDigest d;
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  if (parts.size() != 3 || parts[0].size() != 64 || !absl::SimpleAtoi(parts[1], &d.documents) ||
      !absl::SimpleAtoi(parts[2], &d.since_full)) {
    return RunningDigest();
  }
  d.digest = absl::HexStringToBytes(parts[0]);
  d.valid = d.digest.size() == 32;
  return d.valid ? d : RunningDigest();
}

std::string FormatDigest(const RunningDigest& d) {
  return absl::StrCat(absl::BytesToHexString(d.digest), ":", d.documents, ":", d.since_full);
}

// The canonical payload of a live document as server_fields hold it (`doc`: its rows, as
// LoadServerFields reads them); nullopt for none (no rows, deleted, or a collection the checksum
// does not cover), exactly as ServerChecksum counts.
absl::StatusOr<std::optional<std::string>> ServerPayload(const sync::Document& doc) {
  if (sync::PrototypeFor(doc.collection) == nullptr || doc.fields.empty() || doc.deleted()) {
    return std::optional<std::string>();
  }
  FS_ASSIGN_OR_RETURN(std::string payload, sync::CanonicalPayload(doc));
  return std::optional<std::string>(std::move(payload));
}

// Rows of server_fields written by one INSERT in ApplyPage: a statement per row costs about as
// much again as the row itself.
constexpr size_t kRowsPerInsert = 32;

// INSERT OR REPLACE of `rows` rows (1..kRowsPerInsert) into server_fields, 7 parameters a row:
// collection, doc_id, path, value, hlc, seq, epoch.
const std::string& InsertServerFieldsSql(int rows) {
  static const std::vector<std::string>* const kSql = [] {
    auto* sql = new std::vector<std::string>(kRowsPerInsert + 1);
    for (size_t n = 1; n <= kRowsPerInsert; ++n) {
      std::string& s = (*sql)[n];
      s = "INSERT OR REPLACE INTO server_fields(collection, doc_id, path, value, hlc, seq, epoch) "
          "VALUES(?, ?, ?, ?, ?, ?, ?)";
      for (size_t i = 1; i < n; ++i) s += ", (?, ?, ?, ?, ?, ?, ?)";
    }
    return sql;
  }();
  return (*kSql)[rows];
}

using DocIds = std::vector<std::pair<std::string, std::string>>;

// The (collection, doc_id) rows of `q`, a prepared SELECT of those two columns with its
// parameters bound; leaves it reset.
absl::StatusOr<DocIds> ReadDocIds(Statement& q) {
  DocIds ids;
  for (;;) {
    absl::StatusOr<bool> row = q.Step();
    if (!row.ok()) {
      q.Reset();
      return row.status();
    }
    if (!*row) break;
    ids.emplace_back(q.ColumnText(0), q.ColumnText(1));
  }
  q.Reset();
  return ids;
}

// XORs one document in or out of `d` (`delta` +1 or -1 on the count).
void ToggleDigest(RunningDigest& d, absl::string_view collection, absl::string_view id,
                  absl::string_view payload, int delta) {
  sync::ScopeChecksum one;
  one.Add(collection, id, payload);
  for (size_t i = 0; i < 32; ++i) d.digest[i] ^= one.Digest()[i];
  d.documents += delta;
}

}  // namespace

absl::StatusOr<sync::Change> ToEngineChange(const v1::Change& change, absl::string_view device_id) {
  sync::Change out;
  out.device_id = std::string(device_id);
  out.device_seq = change.device_seq();
  out.collection = change.collection();
  out.doc_id = change.doc_id();
  FS_ASSIGN_OR_RETURN(out.hlc, sync::Hlc::Decode(change.hlc(), "change.hlc"));
  for (const v1::FieldChange& f : change.fields()) {
    sync::FieldChange field;
    field.path = f.path();
    field.value = f.value();
    FS_ASSIGN_OR_RETURN(field.base_hlc, DecodeOptionalHlc(f.base_hlc(), "change.base_hlc"));
    out.fields.push_back(std::move(field));
  }
  return out;
}

void DeriveRecordFields(v1::Record& record) {
  record.set_kind(model::KindOf(record));
  record.set_record_date(model::RecordDateOf(record));
  if (record.has_cataract_surgery()) {
    for (v1::FollowUpVisit& f : *record.mutable_cataract_surgery()->mutable_follow_ups()) {
      absl::StatusOr<model::VisualAcuity> va = model::ParseVisualAcuity(f.presenting_va());
      f.set_outcome(va.ok() ? model::OutcomeOf(*va) : v1::VISUAL_OUTCOME_UNSPECIFIED);
    }
  }
}

absl::StatusOr<std::unique_ptr<LocalStore>> LocalStore::Open(const std::string& path,
                                                             int64_t max_bytes) {
  sqlite::OpenOptions options;
  options.synchronous = "FULL";     // a local write survives a power cut before the app hears OK
  options.busy_timeout_ms = 30000;  // the other connection's transactions are short
  FS_ASSIGN_OR_RETURN(auto db, sqlite::Database::Open(path, options));
  if (max_bytes > 0) {
    FS_ASSIGN_OR_RETURN(Statement * ps, db->Prepare("PRAGMA page_size"));
    FS_ASSIGN_OR_RETURN(bool row, ps->Step());
    int64_t page = row ? std::max<int64_t>(ps->ColumnInt(0), 512) : 4096;
    ps->Reset();
    FS_RETURN_IF_ERROR(db->Exec(
        absl::StrCat("PRAGMA max_page_count = ", std::max<int64_t>(1, max_bytes / page))));
  }
  std::unique_ptr<LocalStore> store(new LocalStore(std::move(db)));
  FS_RETURN_IF_ERROR(store->Migrate());
  return store;
}

absl::Status LocalStore::Migrate() {
  FS_RETURN_IF_ERROR(db_->Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations("
      "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"));
  for (;;) {
    FS_ASSIGN_OR_RETURN(auto tx, Begin());
    FS_ASSIGN_OR_RETURN(Statement * q,
                        db_->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    FS_ASSIGN_OR_RETURN(bool row, q->Step());
    int current = row ? static_cast<int>(q->ColumnInt(0)) : 0;
    q->Reset();
    if (current > kLatestSchema) {
      return absl::FailedPreconditionError(absl::StrCat("local store schema version ", current,
                                                        " is newer than this library (",
                                                        kLatestSchema, "); upgrade the app"));
    }
    if (current == kLatestSchema) return tx.Commit();
    // Checked and applied under one write lock, so two connections opening a new file at once
    // cannot both run a migration.
    FS_RETURN_IF_ERROR(db_->Exec(kMigrations[current]));
    FS_ASSIGN_OR_RETURN(Statement * ins,
                        db_->Prepare("INSERT INTO schema_migrations(version) VALUES(?)"));
    ins->Bind(1, current + 1);
    FS_RETURN_IF_ERROR(ins->Run());
    FS_RETURN_IF_ERROR(tx.Commit());
  }
}

absl::StatusOr<sqlite::Transaction> LocalStore::Begin() {
  return sqlite::Transaction::Begin(*db_, sqlite::Transaction::kImmediate);
}

// --- sync_state --------------------------------------------------------------------------------

absl::StatusOr<std::string> LocalStore::GetState(absl::string_view key) {
  FS_ASSIGN_OR_RETURN(Statement * q, db_->Prepare("SELECT value FROM sync_state WHERE key=?"));
  q->Bind(1, key);
  FS_ASSIGN_OR_RETURN(bool row, q->Step());
  std::string value = row ? q->ColumnText(0) : "";
  q->Reset();
  return value;
}

absl::StatusOr<int64_t> LocalStore::GetStateInt(absl::string_view key) {
  FS_ASSIGN_OR_RETURN(std::string text, GetState(key));
  if (text.empty()) return 0;
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) {
    return absl::DataLossError(absl::StrCat("sync_state.", key, ": not an integer, got \"",
                                            absl::CHexEscape(text.substr(0, 40)), "\""));
  }
  return value;
}

absl::Status LocalStore::SetState(absl::string_view key, absl::string_view value) {
  FS_ASSIGN_OR_RETURN(Statement * st,
                      db_->Prepare("INSERT INTO sync_state(key, value) VALUES(?1, ?2) "
                                   "ON CONFLICT(key) DO UPDATE SET value=excluded.value"));
  st->Bind(1, key);
  st->Bind(2, value);
  return st->Run();
}

absl::Status LocalStore::SetStateInt(absl::string_view key, int64_t value) {
  return SetState(key, absl::StrCat(value));
}

absl::Status LocalStore::RaiseLastHlc(const sync::Hlc& hlc) {
  if (hlc.IsZero()) return absl::OkStatus();
  // Two connections write this key; keeping the maximum makes their commit order irrelevant.
  // Encoded clocks sort like the clocks themselves.
  FS_ASSIGN_OR_RETURN(Statement * st,
                      db_->Prepare("INSERT INTO sync_state(key, value) VALUES(?1, ?2) "
                                   "ON CONFLICT(key) DO UPDATE SET value=excluded.value "
                                   "WHERE excluded.value > sync_state.value"));
  st->Bind(1, kLastHlcKey);
  st->Bind(2, hlc.Encode());
  return st->Run();
}

absl::StatusOr<sync::Hlc> LocalStore::LatestKnownHlc() {
  sync::Hlc latest;
  auto consider = [&](const std::string& text) -> absl::Status {
    if (text.empty()) return absl::OkStatus();
    FS_ASSIGN_OR_RETURN(sync::Hlc hlc, sync::Hlc::Decode(text, "last_hlc"));
    if (latest.IsZero() || latest < hlc) latest = hlc;
    return absl::OkStatus();
  };
  FS_ASSIGN_OR_RETURN(std::string stored, GetState(kLastHlcKey));
  FS_RETURN_IF_ERROR(consider(stored));
  FS_ASSIGN_OR_RETURN(Statement * q, db_->Prepare("SELECT MAX(hlc) FROM server_fields"));
  FS_ASSIGN_OR_RETURN(bool row, q->Step());
  std::string pulled = row && !q->ColumnIsNull(0) ? q->ColumnText(0) : "";
  q->Reset();
  FS_RETURN_IF_ERROR(consider(pulled));
  return latest;
}

// --- Documents ---------------------------------------------------------------------------------

absl::StatusOr<std::vector<v1::Change>> LocalStore::OutboxOf(absl::string_view collection,
                                                             absl::string_view id) {
  FS_ASSIGN_OR_RETURN(Statement * q,
                      db_->Prepare("SELECT change FROM outbox WHERE collection=?1 AND doc_id=?2 "
                                   "ORDER BY device_seq"));
  q->Bind(1, collection);
  q->Bind(2, id);
  return ReadChanges(*q);
}

absl::Status MergeIntoLocal(LocalDocument& doc, const v1::Change& change) {
  FS_ASSIGN_OR_RETURN(sync::Change c, ToEngineChange(change, ""));
  c.device_id = c.hlc.node;
  sync::Merge(doc.local, c);
  doc.pending = true;
  return absl::OkStatus();
}

absl::Status LocalStore::LoadServerFields(absl::string_view collection, absl::string_view id,
                                          LocalDocument& doc) {
  doc.server.collection = std::string(collection);
  doc.server.id = std::string(id);
  FS_ASSIGN_OR_RETURN(Statement * q, db_->Prepare("SELECT path, value, hlc, seq FROM server_fields "
                                                  "WHERE collection=?1 AND doc_id=?2"));
  q->Bind(1, collection);
  q->Bind(2, id);
  for (;;) {
    absl::StatusOr<bool> row = q->Step();
    if (!row.ok()) {
      q->Reset();
      return row.status();
    }
    if (!*row) break;
    sync::FieldState state;
    state.value = q->ColumnBlob(1);
    absl::StatusOr<sync::Hlc> hlc = sync::Hlc::Decode(q->ColumnText(2), "server_fields.hlc");
    if (!hlc.ok()) {
      q->Reset();
      return hlc.status();
    }
    state.hlc = *std::move(hlc);
    state.seq = q->ColumnInt(3);
    doc.version = std::max(doc.version, state.seq);
    doc.server.fields[q->ColumnText(0)] = std::move(state);
  }
  q->Reset();
  return absl::OkStatus();
}

absl::Status LocalStore::MergeOutbox(LocalDocument& doc) {
  doc.local = doc.server;
  doc.pending = false;
  FS_ASSIGN_OR_RETURN(std::vector<v1::Change> pending, OutboxOf(doc.server.collection,
                                                                doc.server.id));
  for (const v1::Change& change : pending) FS_RETURN_IF_ERROR(MergeIntoLocal(doc, change));
  return absl::OkStatus();
}

absl::StatusOr<LocalDocument> LocalStore::LoadDocument(absl::string_view collection,
                                                       absl::string_view id) {
  LocalDocument doc;
  FS_RETURN_IF_ERROR(LoadServerFields(collection, id, doc));
  FS_RETURN_IF_ERROR(MergeOutbox(doc));
  return doc;
}

absl::Status LocalStore::RefreshView(absl::string_view collection, absl::string_view id) {
  FS_ASSIGN_OR_RETURN(LocalDocument doc, LoadDocument(collection, id));
  return StoreView(doc);
}

namespace {

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Appends field `number` (wire type 2) holding `bytes`.
void AppendLengthDelimited(int number, const std::string& bytes, std::string* out) {
  AppendVarint((static_cast<uint64_t>(number) << 3) | 2, out);
  AppendVarint(bytes.size(), out);
  out->append(bytes);
}

}  // namespace

void DeriveAudit(const sync::Document& doc, v1::AuditInfo* audit) {
  const sync::Hlc* oldest = nullptr;
  const sync::Hlc* newest = nullptr;
  for (const auto& [path, state] : doc.fields) {
    if (state.hlc.IsZero()) continue;
    if (oldest == nullptr || state.hlc < *oldest) oldest = &state.hlc;
    if (newest == nullptr || *newest < state.hlc) newest = &state.hlc;
  }
  if (oldest == nullptr) return;
  *audit->mutable_created_at() =
      google::protobuf::util::TimeUtil::MillisecondsToTimestamp(oldest->wall_ms);
  *audit->mutable_updated_at() =
      google::protobuf::util::TimeUtil::MillisecondsToTimestamp(newest->wall_ms);
  audit->set_created_by(oldest->node);
  audit->set_updated_by(newest->node);
}

absl::Status LocalStore::StoreView(const LocalDocument& doc, std::string* payload) {
  const std::string& collection = doc.server.collection;
  const std::string& id = doc.server.id;
  std::string bytes;
  const google::protobuf::Message* prototype = sync::PrototypeFor(collection);
  if (doc.local.fields.empty() || prototype == nullptr) {
    // Nothing known about it (or a collection this library does not show): no view row.
    if (payload != nullptr) payload->clear();
    FS_ASSIGN_OR_RETURN(Statement * del,
                        db_->Prepare("DELETE FROM docs WHERE collection=?1 AND doc_id=?2"));
    del->Bind(1, collection);
    del->Bind(2, id);
    return del->Run();
  }
  std::unique_ptr<google::protobuf::Message> message(prototype->New());
  absl::Status assembled = sync::Assemble(doc.local.Values(), message.get());
  if (!assembled.ok()) {
    return absl::DataLossError(absl::StrCat(collection, " ", id, ": ", assembled.message()));
  }
  std::string project_id, site_id, partner_id, record_date, country;
  int64_t kind = 0, status = 0;
  if (const auto* r = google::protobuf::DynamicCastToGenerated<v1::Record>(message.get())) {
    project_id = r->project_id();
    site_id = r->site_id();
    kind = model::KindOf(*r);
    record_date = model::RecordDateOf(*r);
  } else if (const auto* s = google::protobuf::DynamicCastToGenerated<v1::Site>(message.get())) {
    project_id = s->project_id();
  } else if (const auto* p = google::protobuf::DynamicCastToGenerated<v1::Project>(message.get())) {
    partner_id = p->partner_id();
    kind = p->kind();
    country = p->country();
    status = p->status();
  }
  FS_ASSIGN_OR_RETURN(
      Statement * st,
      db_->Prepare("INSERT OR REPLACE INTO docs(collection, doc_id, payload, deleted, version, "
                   "pending, project_id, site_id, partner_id, kind, record_date, country, status) "
                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"));
  st->Bind(1, collection);
  st->Bind(2, id);
  if (payload == nullptr) payload = &bytes;
  *payload = sync::SerializeDeterministic(*message);
  // The stored view also carries the audit block derived from the field clocks, appended as one
  // more length-delimited field (protobuf parses fields in any order); `payload` stays the
  // canonical bytes, which the running checksum reuses.
  std::string stored;
  const google::protobuf::FieldDescriptor* audit_field =
      message->GetDescriptor()->FindFieldByName("audit");
  v1::AuditInfo audit;
  if (audit_field != nullptr && audit_field->message_type() == v1::AuditInfo::descriptor()) {
    DeriveAudit(doc.local, &audit);
  }
  if (audit.ByteSizeLong() > 0) {
    stored = *payload;
    AppendLengthDelimited(audit_field->number(), audit.SerializeAsString(), &stored);
  }
  st->BindBlob(3, stored.empty() ? *payload : stored);
  st->Bind(4, doc.local.deleted() ? 1 : 0);
  st->Bind(5, doc.version);
  st->Bind(6, doc.pending ? 1 : 0);
  st->Bind(7, project_id);
  st->Bind(8, site_id);
  st->Bind(9, partner_id);
  st->Bind(10, kind);
  st->Bind(11, record_date);
  st->Bind(12, country);
  st->Bind(13, status);
  return st->Run();
}

absl::Status LocalStore::RefreshAllViews() {
  FS_ASSIGN_OR_RETURN(Statement * q,
                      db_->Prepare("SELECT collection, doc_id FROM docs UNION "
                                   "SELECT collection, doc_id FROM server_fields UNION "
                                   "SELECT collection, doc_id FROM outbox"));
  FS_ASSIGN_OR_RETURN(const DocIds ids, ReadDocIds(*q));
  for (const auto& [collection, id] : ids) FS_RETURN_IF_ERROR(RefreshView(collection, id));
  return absl::OkStatus();
}

// --- Outbox ------------------------------------------------------------------------------------

absl::StatusOr<int64_t> LocalStore::AppendChange(v1::Change change) {
  FS_ASSIGN_OR_RETURN(int64_t last, GetStateInt(kLastSeqKey));
  // device_seq must never be reused, even after every entry was dropped: the server would take
  // a reused number for a replay and ignore the edit. The counter in sync_state is the truth.
  int64_t seq = last + 1;
  change.set_device_seq(seq);
  FS_ASSIGN_OR_RETURN(Statement * st,
                      db_->Prepare("INSERT INTO outbox(device_seq, collection, doc_id, change, "
                                   "created_at_ms) VALUES(?1, ?2, ?3, ?4, ?5)"));
  st->Bind(1, seq);
  st->Bind(2, change.collection());
  st->Bind(3, change.doc_id());
  st->BindBlob(4, sync::SerializeDeterministic(change));
  st->Bind(5, sync::SystemClockMs());
  FS_RETURN_IF_ERROR(st->Run());
  FS_RETURN_IF_ERROR(SetStateInt(kLastSeqKey, seq));
  return seq;
}

absl::StatusOr<std::vector<v1::Change>> LocalStore::OutboxAfter(int64_t after_seq, int limit) {
  FS_ASSIGN_OR_RETURN(Statement * q, db_->Prepare("SELECT change FROM outbox WHERE device_seq > ?1 "
                                                  "ORDER BY device_seq LIMIT ?2"));
  q->Bind(1, after_seq);
  q->Bind(2, limit);
  return ReadChanges(*q);
}

absl::StatusOr<int64_t> LocalStore::CountOutboxAfter(int64_t after_seq) {
  FS_ASSIGN_OR_RETURN(Statement * q,
                      db_->Prepare("SELECT COUNT(*) FROM outbox WHERE device_seq > ?1"));
  q->Bind(1, after_seq);
  FS_ASSIGN_OR_RETURN(bool row, q->Step());
  int64_t n = row ? q->ColumnInt(0) : 0;
  q->Reset();
  return n;
}

// --- Clocks ------------------------------------------------------------------------------------

absl::StatusOr<int64_t> LocalStore::RestampAhead(int64_t limit_wall_ms,
                                                 const std::function<sync::Hlc()>& next) {
  FS_ASSIGN_OR_RETURN(int64_t acked, GetStateInt(kAckedSeqKey));
  // Each entry's change carries its own device_seq, the outbox key.
  FS_ASSIGN_OR_RETURN(std::vector<v1::Change> entries,
                      OutboxAfter(acked, std::numeric_limits<int>::max()));
  std::map<std::string, std::string> renamed;  // old encoded stamp -> new
  FS_ASSIGN_OR_RETURN(Statement * up,
                      db_->Prepare("UPDATE outbox SET change = ?1 WHERE device_seq = ?2"));
  int64_t restamped = 0;
  std::set<std::pair<std::string, std::string>> touched;
  for (v1::Change& change : entries) {
    bool changed = false;
    absl::StatusOr<sync::Hlc> hlc = sync::Hlc::Decode(change.hlc());
    if (hlc.ok() && hlc->wall_ms > limit_wall_ms) {
      std::string fresh = next().Encode();
      renamed[change.hlc()] = fresh;
      change.set_hlc(fresh);
      changed = true;
      ++restamped;
    }
    for (v1::FieldChange& f : *change.mutable_fields()) {
      auto it = renamed.find(f.base_hlc());
      if (it != renamed.end()) {
        f.set_base_hlc(it->second);
        changed = true;
      }
    }
    if (!changed) continue;
    up->Reset();
    up->BindBlob(1, sync::SerializeDeterministic(change));
    up->Bind(2, change.device_seq());
    FS_RETURN_IF_ERROR(up->Run());
    touched.emplace(change.collection(), change.doc_id());
  }
  for (const auto& [collection, id] : touched) FS_RETURN_IF_ERROR(RefreshView(collection, id));
  return restamped;
}

absl::Status LocalStore::SetLastHlc(const sync::Hlc& hlc) {
  return SetState(kLastHlcKey, hlc.Encode());
}

// --- Sequence spaces and refused changes ----------------------------------------------------------

absl::StatusOr<int64_t> LocalStore::SwitchStream() {
  FS_ASSIGN_OR_RETURN(int64_t acked, GetStateInt(kAckedSeqKey));
  FS_ASSIGN_OR_RETURN(Statement * gone,
                      db_->Prepare("SELECT DISTINCT collection, doc_id FROM outbox "
                                   "WHERE device_seq <= ?1"));
  gone->Bind(1, acked);
  FS_ASSIGN_OR_RETURN(const DocIds dropped, ReadDocIds(*gone));
  FS_ASSIGN_OR_RETURN(Statement * drop, db_->Prepare("DELETE FROM outbox WHERE device_seq <= ?1"));
  drop->Bind(1, acked);
  FS_RETURN_IF_ERROR(drop->Run());
  FS_ASSIGN_OR_RETURN(std::vector<v1::Change> entries,
                      OutboxAfter(acked, std::numeric_limits<int>::max()));
  // Ascending order and new numbers below the old ones: no update meets a number still taken.
  FS_ASSIGN_OR_RETURN(
      Statement * renumber,
      db_->Prepare("UPDATE outbox SET device_seq = ?1, change = ?2 WHERE device_seq = ?3"));
  int64_t seq = 0;
  for (v1::Change& change : entries) {
    const int64_t old_seq = change.device_seq();
    change.set_device_seq(++seq);
    renumber->Reset();
    renumber->Bind(1, seq);
    renumber->BindBlob(2, sync::SerializeDeterministic(change));
    renumber->Bind(3, old_seq);
    FS_RETURN_IF_ERROR(renumber->Run());
  }
  FS_RETURN_IF_ERROR(SetState(kStreamIdKey, NewUuidV7()));
  FS_RETURN_IF_ERROR(SetStateInt(kAckedSeqKey, 0));
  FS_RETURN_IF_ERROR(SetStateInt(kLastSeqKey, seq));
  for (const auto& [collection, id] : dropped) FS_RETURN_IF_ERROR(RefreshView(collection, id));
  return seq;
}

absl::StatusOr<bool> LocalStore::RecordRejection(const v1::Rejection& rejection) {
  FS_ASSIGN_OR_RETURN(Statement * q, db_->Prepare("SELECT collection, doc_id, change FROM outbox "
                                                  "WHERE device_seq = ?1"));
  q->Bind(1, rejection.device_seq());
  FS_ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) {
    q->Reset();
    return false;
  }
  const std::string collection = q->ColumnText(0), doc_id = q->ColumnText(1),
                    change = q->ColumnBlob(2);
  q->Reset();
  FS_ASSIGN_OR_RETURN(std::string stream_id, GetState(kStreamIdKey));
  FS_ASSIGN_OR_RETURN(
      Statement * ins,
      db_->Prepare("INSERT INTO rejections(stream_id, device_seq, collection, doc_id, change, "
                   "code, reason, rejected_at_ms, status) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                   "'OPEN') ON CONFLICT(stream_id, device_seq) DO NOTHING"));
  ins->Bind(1, stream_id);
  ins->Bind(2, rejection.device_seq());
  ins->Bind(3, collection);
  ins->Bind(4, doc_id);
  ins->BindBlob(5, change);
  ins->Bind(6, static_cast<int64_t>(rejection.code()));
  ins->Bind(7, rejection.reason());
  ins->Bind(8, sync::SystemClockMs());
  FS_RETURN_IF_ERROR(ins->Run());
  FS_ASSIGN_OR_RETURN(Statement * del, db_->Prepare("DELETE FROM outbox WHERE device_seq = ?1"));
  del->Bind(1, rejection.device_seq());
  FS_RETURN_IF_ERROR(del->Run());
  FS_RETURN_IF_ERROR(RefreshView(collection, doc_id));
  return true;
}

namespace {

constexpr char kRejectionColumns[] =
    "id, device_seq, collection, doc_id, code, reason, change, rejected_at_ms, status";

absl::StatusOr<LocalRejection> ReadRejection(const Statement& q) {
  LocalRejection r;
  r.id = q.ColumnInt(0);
  r.device_seq = q.ColumnInt(1);
  r.collection = q.ColumnText(2);
  r.doc_id = q.ColumnText(3);
  r.code = static_cast<int>(q.ColumnInt(4));
  r.reason = q.ColumnText(5);
  if (!r.change.ParseFromString(q.ColumnBlob(6))) {
    return absl::DataLossError(absl::StrCat("rejection ", r.id, " does not parse"));
  }
  r.rejected_at_ms = q.ColumnInt(7);
  r.status = q.ColumnText(8);
  return r;
}

}  // namespace

absl::StatusOr<std::vector<LocalRejection>> LocalStore::ListRejections() {
  FS_ASSIGN_OR_RETURN(Statement * q,
                      db_->Prepare(absl::StrCat("SELECT ", kRejectionColumns,
                                                " FROM rejections ORDER BY id DESC")));
  std::vector<LocalRejection> out;
  absl::Status status;
  while (status.ok()) {
    absl::StatusOr<bool> row = q->Step();
    if (!row.ok() || !*row) {
      status = row.status();
      break;
    }
    absl::StatusOr<LocalRejection> r = ReadRejection(*q);
    if (!r.ok()) {
      status = r.status();
      break;
    }
    out.push_back(*std::move(r));
  }
  q->Reset();
  FS_RETURN_IF_ERROR(status);
  return out;
}

absl::StatusOr<LocalRejection> LocalStore::GetRejection(int64_t id) {
  FS_ASSIGN_OR_RETURN(Statement * q, db_->Prepare(absl::StrCat(
                                         "SELECT ", kRejectionColumns, " FROM rejections WHERE id = ?1")));
  q->Bind(1, id);
  FS_ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) {
    q->Reset();
    return absl::NotFoundError(absl::StrCat("rejection ", id, " not found"));
  }
  absl::StatusOr<LocalRejection> r = ReadRejection(*q);
  q->Reset();
  return r;
}

absl::Status LocalStore::SetRejectionStatus(int64_t id, absl::string_view status) {
  FS_ASSIGN_OR_RETURN(Statement * st,
                      db_->Prepare("UPDATE rejections SET status = ?1 WHERE id = ?2"));
  st->Bind(1, status);
  st->Bind(2, id);
  FS_RETURN_IF_ERROR(st->Run());
  if (db_->Changes() == 0) return absl::NotFoundError(absl::StrCat("rejection ", id, " not found"));
  return absl::OkStatus();
}

// --- Server restores ---------------------------------------------------------------------------

absl::StatusOr<RebaseOutcome> LocalStore::Rebase(absl::string_view device_id,
                                                 int64_t server_acked, const sync::Hlc& base) {
  if (device_id.empty() || server_acked < 0 || !sync::IsValidHlc(base)) {
    return absl::InvalidArgumentError("rebase: needs the device id, an acknowledged seq >= 0 "
                                      "and a valid clock");
  }
  RebaseOutcome out;
  FS_ASSIGN_OR_RETURN(int64_t acked, GetStateInt(kAckedSeqKey));

  // The outbox as it is: acknowledged entries (folded into the re-sent fields) and pending ones
  // (sent again after them, in their order).
  struct Entry {
    v1::Change change;
    int64_t created_at_ms = 0;
  };
  std::vector<Entry> pending;
  std::map<std::pair<std::string, std::string>, std::vector<v1::Change>> folded;
  {
    FS_ASSIGN_OR_RETURN(Statement * q, db_->Prepare("SELECT device_seq, change, created_at_ms "
                                                    "FROM outbox ORDER BY device_seq"));
    for (;;) {
      absl::StatusOr<bool> row = q->Step();
      if (!row.ok()) {
        q->Reset();
        return row.status();
      }
      if (!*row) break;
      Entry e;
      if (!e.change.ParseFromString(q->ColumnBlob(1))) {
        q->Reset();
        return absl::DataLossError(
            absl::StrCat("outbox entry ", q->ColumnInt(0), " does not parse"));
      }
      e.created_at_ms = q->ColumnInt(2);
      if (q->ColumnInt(0) <= acked) {
        ++out.folded;
        folded[{e.change.collection(), e.change.doc_id()}].push_back(std::move(e.change));
      } else {
        pending.push_back(std::move(e));
      }
    }
    q->Reset();
  }

  // Every document this store knows from the server or from acknowledged edits.
  std::set<std::pair<std::string, std::string>> ids;
  {
    FS_ASSIGN_OR_RETURN(Statement * q,
                        db_->Prepare("SELECT DISTINCT collection, doc_id FROM server_fields"));
    FS_ASSIGN_OR_RETURN(const DocIds known, ReadDocIds(*q));
    ids.insert(known.begin(), known.end());
  }
  for (const auto& [id, changes] : folded) ids.insert(id);

  // One change per (document, clock) of the fields this device wrote, with that clock.
  struct Resend {
    // 0: a document this device created (it goes first); 1: another writer's it edited.
    int section = 0;
    sync::Hlc hlc;
    v1::Change change;
  };
  std::vector<Resend> resend;
  const std::string base_text = base.Encode();
  for (const auto& key : ids) {
    // Named copies, not structured bindings: lambdas below capture them (C++17).
    const std::string& collection = key.first;
    const std::string& id = key.second;
    FS_ASSIGN_OR_RETURN(LocalDocument loaded, LoadDocument(collection, id));
    sync::Document doc = std::move(loaded.server);
    if (auto it = folded.find({collection, id}); it != folded.end()) {
      for (const v1::Change& change : it->second) {
        FS_ASSIGN_OR_RETURN(sync::Change c, ToEngineChange(change, device_id));
        sync::Merge(doc, c);
      }
    }
    std::map<sync::Hlc, std::vector<std::pair<std::string, const sync::FieldState*>>> by_clock;
    const sync::FieldState* oldest = nullptr;
    for (const auto& [path, state] : doc.fields) {
      if (state.hlc.node == device_id) by_clock[state.hlc].emplace_back(path, &state);
      if (oldest == nullptr || state.hlc < oldest->hlc) oldest = &state;
    }
    if (by_clock.empty()) continue;
    ++out.documents;
    const sync::Hlc& first_clock = by_clock.begin()->first;
    // This device made the document's oldest field: it created the document.
    const bool created = oldest->hlc.node == device_id;
    auto add_field = [&](Resend& r, const std::string& path, const sync::FieldState& state) {
      v1::FieldChange* f = r.change.add_fields();
      f->set_path(path);
      f->set_value(state.value);
      f->set_base_hlc(base_text);
    };
    auto start = [&](const sync::Hlc& hlc) {
      Resend r;
      r.section = created ? 0 : 1;
      r.hlc = hlc;
      r.change.set_collection(collection);
      r.change.set_doc_id(id);
      r.change.set_hlc(hlc.Encode());
      return r;
    };
    // The first change, at this device's oldest clock on the document, carries every field this
    // device wrote: a restored server that lacks the document must get a valid one from it (a
    // required field edited later would be missing otherwise); the later clocks follow with
    // their own fields, so each field ends with its true clock. Of a document it created it
    // also carries the fields others wrote since, at that oldest clock, which loses to their
    // true clocks wherever the server has them (or gets them again from their writers): they
    // are part of the document the device is bringing back, and the server accepts a device's
    // change only under the device's own node. A deletion comes only with its own clock:
    // deleting is refused for a document the server does not have.
    Resend first = start(first_clock);
    for (const auto& [path, state] : doc.fields) {
      if (path == sync::kDeletedPath && !state.value.empty()) continue;
      if (state.hlc.node == device_id || created) add_field(first, path, state);
    }
    const bool first_has_fields = first.change.fields_size() > 0;
    if (first_has_fields) resend.push_back(std::move(first));
    for (auto it = by_clock.begin(); it != by_clock.end(); ++it) {
      Resend r = start(it->first);
      for (const auto& [path, state] : it->second) {
        // The oldest clock's fields went in the first change, but for a deletion.
        if (it == by_clock.begin() && first_has_fields &&
            !(path == sync::kDeletedPath && !state->value.empty())) {
          continue;
        }
        add_field(r, path, *state);
      }
      if (r.change.fields_size() > 0) resend.push_back(std::move(r));
    }
  }
  // Documents this device created first, then its edits of others' documents (which a server
  // lacking the document refuses until their creator has sent them again); within each, oldest
  // clock first: the order they were made in, so a site goes before the records that name it
  // and a document's creation before its later edits (stable: a document's first change stays
  // before a deletion with the same clock).
  std::stable_sort(resend.begin(), resend.end(), [](const Resend& a, const Resend& b) {
    if (a.section != b.section) return a.section < b.section;
    return a.hlc < b.hlc;
  });

  FS_RETURN_IF_ERROR(db_->Exec("DELETE FROM outbox"));
  FS_ASSIGN_OR_RETURN(Statement * ins,
                      db_->Prepare("INSERT INTO outbox(device_seq, collection, doc_id, change, "
                                   "created_at_ms) VALUES(?1, ?2, ?3, ?4, ?5)"));
  int64_t seq = server_acked;
  const int64_t now_ms = sync::SystemClockMs();
  auto append = [&](v1::Change& change, int64_t created_at_ms) -> absl::Status {
    change.set_device_seq(++seq);
    ins->Reset();
    ins->Bind(1, seq);
    ins->Bind(2, change.collection());
    ins->Bind(3, change.doc_id());
    ins->BindBlob(4, sync::SerializeDeterministic(change));
    ins->Bind(5, created_at_ms);
    return ins->Run();
  };
  std::set<std::pair<std::string, std::string>> touched;
  for (Resend& r : resend) {
    FS_RETURN_IF_ERROR(append(r.change, now_ms));
    touched.emplace(r.change.collection(), r.change.doc_id());
    ++out.changes;
  }
  for (Entry& e : pending) {
    FS_RETURN_IF_ERROR(append(e.change, e.created_at_ms));
    touched.emplace(e.change.collection(), e.change.doc_id());
    ++out.renumbered;
  }
  for (const auto& [id, changes] : folded) touched.insert(id);
  out.last_seq = seq;
  FS_RETURN_IF_ERROR(SetStateInt(kAckedSeqKey, server_acked));
  FS_RETURN_IF_ERROR(SetStateInt(kLastSeqKey, seq));

  // Pull everything again into a new generation, as a repair does: what the restored server no
  // longer has leaves server_fields at the end of that pull.
  FS_ASSIGN_OR_RETURN(int64_t epoch, GetStateInt(kEpochKey));
  FS_RETURN_IF_ERROR(SetState(kCursorKey, ""));
  FS_RETURN_IF_ERROR(SetStateInt(kEpochKey, epoch + 1));
  FS_RETURN_IF_ERROR(SetStateInt(kRepairingKey, 1));

  // The view is the same (the re-sent fields carry the values and clocks it already shows);
  // only the pending marks move.
  for (const auto& [collection, id] : touched) FS_RETURN_IF_ERROR(RefreshView(collection, id));
  return out;
}

// --- Pull --------------------------------------------------------------------------------------

absl::StatusOr<PageOutcome> LocalStore::ApplyPage(const v1::PullPage& page) {
  PageOutcome outcome;
  FS_ASSIGN_OR_RETURN(auto tx, Begin());
  FS_ASSIGN_OR_RETURN(int64_t epoch, GetStateInt(kEpochKey));
  FS_ASSIGN_OR_RETURN(std::string digest_text, GetState(kServerDigestKey));
  RunningDigest running = ParseDigest(digest_text);
  // The page's documents, each loaded once: their server rows before the page, then changed
  // in memory as the page's rows are written, so that the views and the checksum need not read
  // them back.
  std::map<std::pair<std::string, std::string>, LocalDocument> touched;
  for (int d = 0; d < page.documents_size(); ++d) {
    const v1::DocumentDelta& delta = page.documents(d);
    if (!IsUuid(delta.doc_id()) || delta.collection().empty()) {
      return absl::DataLossError(
          absl::StrCat("pull page: documents[", d, "] has no valid collection and id"));
    }
    touched.try_emplace({delta.collection(), delta.doc_id()});
  }
  for (auto& [key, doc] : touched) {
    FS_RETURN_IF_ERROR(LoadServerFields(key.first, key.second, doc));
    // The page's documents leave the running checksum as they were, and re-enter it below as
    // they are after the page.
    if (running.valid) {
      FS_ASSIGN_OR_RETURN(std::optional<std::string> before, ServerPayload(doc.server));
      if (before) ToggleDigest(running, key.first, key.second, *before, -1);
    }
  }
  // The page's fields in page order, kRowsPerInsert rows per statement (a later row for the
  // same path replaces an earlier one, in one statement as across statements).
  std::vector<std::pair<const v1::DocumentDelta*, const v1::DeltaField*>> rows;
  auto insert_rows = [&]() -> absl::Status {
    if (rows.empty()) return absl::OkStatus();
    FS_ASSIGN_OR_RETURN(Statement * insert,
                        db_->Prepare(InsertServerFieldsSql(static_cast<int>(rows.size()))));
    int p = 0;
    for (const auto& [delta, f] : rows) {
      insert->Bind(++p, delta->collection());
      insert->Bind(++p, delta->doc_id());
      insert->Bind(++p, f->path());
      insert->BindBlob(++p, f->value());
      insert->Bind(++p, f->hlc());
      insert->Bind(++p, delta->version());
      insert->Bind(++p, epoch);
    }
    rows.clear();
    return insert->Run();
  };
  for (int d = 0; d < page.documents_size(); ++d) {
    const v1::DocumentDelta& delta = page.documents(d);
    LocalDocument& doc = touched[{delta.collection(), delta.doc_id()}];
    for (const v1::DeltaField& f : delta.fields()) {
      FS_ASSIGN_OR_RETURN(
          sync::Hlc hlc,
          sync::Hlc::Decode(f.hlc(), absl::StrCat("pull page: documents[", d, "].fields.hlc")));
      if (outcome.max_hlc.IsZero() || outcome.max_hlc < hlc) outcome.max_hlc = hlc;
      rows.emplace_back(&delta, &f);
      if (rows.size() == kRowsPerInsert) FS_RETURN_IF_ERROR(insert_rows());
      doc.server.fields[f.path()] = sync::FieldState{f.value(), hlc, delta.version()};
    }
    ++outcome.documents;
  }
  FS_RETURN_IF_ERROR(insert_rows());
  // Anything in the outbox at all? A device that has pushed everything (or never wrote) need
  // not look for each document's entries.
  FS_ASSIGN_OR_RETURN(Statement * any_outbox, db_->Prepare("SELECT 1 FROM outbox LIMIT 1"));
  FS_ASSIGN_OR_RETURN(const bool outbox_has_rows, any_outbox->Step());
  any_outbox->Reset();
  for (auto& [key, doc] : touched) {
    // As LoadDocument would read it now.
    doc.version = 0;
    for (const auto& [path, state] : doc.server.fields) {
      doc.version = std::max(doc.version, state.seq);
    }
    if (outbox_has_rows) {
      FS_RETURN_IF_ERROR(MergeOutbox(doc));
    } else {
      doc.local = doc.server;
    }
    std::string view;
    FS_RETURN_IF_ERROR(StoreView(doc, &view));
    if (running.valid) {
      std::optional<std::string> after;
      if (!doc.pending && !doc.server.deleted() && !view.empty()) {
        // The view of a document with no outbox entries is its canonical server payload.
        after = std::move(view);
      } else {
        FS_ASSIGN_OR_RETURN(after, ServerPayload(doc.server));
      }
      if (after) ToggleDigest(running, key.first, key.second, *after, +1);
    }
  }
  FS_RETURN_IF_ERROR(SetState(kCursorKey, page.cursor()));
  FS_RETURN_IF_ERROR(RaiseLastHlc(outcome.max_hlc));

  if (page.last()) {
    outcome.last = true;
    FS_ASSIGN_OR_RETURN(int64_t repairing, GetStateInt(kRepairingKey));
    if (repairing != 0) {
      // The re-pull sent every document of the scope into this epoch; rows of older epochs are
      // what the server no longer has.
      FS_ASSIGN_OR_RETURN(Statement * del,
                          db_->Prepare("DELETE FROM server_fields WHERE epoch < ?1"));
      del->Bind(1, epoch);
      FS_RETURN_IF_ERROR(del->Run());
      FS_RETURN_IF_ERROR(SetStateInt(kRepairingKey, 0));
      FS_RETURN_IF_ERROR(RefreshAllViews());
    }
    // Everything acknowledged before this pull started is now in the server state: the
    // outbox copies of it can go. (Kept until now so that the view never showed the old value
    // between push and pull.)
    FS_ASSIGN_OR_RETURN(int64_t acked, GetStateInt(kAckedSeqKey));
    FS_ASSIGN_OR_RETURN(Statement * q,
                        db_->Prepare("SELECT DISTINCT collection, doc_id FROM outbox "
                                     "WHERE device_seq <= ?1"));
    q->Bind(1, acked);
    FS_ASSIGN_OR_RETURN(const DocIds done, ReadDocIds(*q));
    FS_ASSIGN_OR_RETURN(Statement * drop,
                        db_->Prepare("DELETE FROM outbox WHERE device_seq <= ?1"));
    drop->Bind(1, acked);
    FS_RETURN_IF_ERROR(drop->Run());
    for (const auto& [collection, id] : done) FS_RETURN_IF_ERROR(RefreshView(collection, id));

    // The checksum of server_fields: the running one, or a full recomputation after a repair
    // (old epochs dropped), when unknown, and every kFullChecksumEvery last pages.
    auto recompute = [&]() -> absl::Status {
      int64_t count = 0;
      FS_ASSIGN_OR_RETURN(std::string hex, ServerChecksum(&count));
      running.valid = true;
      running.digest = absl::HexStringToBytes(hex);
      running.documents = count;
      running.since_full = 0;
      return absl::OkStatus();
    };
    if (repairing != 0 || !running.valid || running.since_full + 1 >= kFullChecksumEvery) {
      FS_RETURN_IF_ERROR(recompute());
    } else {
      ++running.since_full;
    }
    if (!page.scope_checksum().empty()) {
      outcome.local_checksum = absl::BytesToHexString(running.digest);
      outcome.checksum_checked = true;
      outcome.checksum_matched = outcome.local_checksum == page.scope_checksum() &&
                                 running.documents == page.scope_documents();
      if (!outcome.checksum_matched && running.since_full != 0) {
        // Before a repair, make sure it is the stored state that differs, not the running sum.
        FS_RETURN_IF_ERROR(recompute());
        outcome.local_checksum = absl::BytesToHexString(running.digest);
        outcome.checksum_matched = outcome.local_checksum == page.scope_checksum() &&
                                   running.documents == page.scope_documents();
      }
      if (!outcome.checksum_matched) {
        if (repairing != 0) {
          outcome.mismatch_after_repair = true;
        } else {
          // Pull everything again into a new epoch; stored with this page, so a repair cut
          // short resumes as a repair.
          outcome.repair_started = true;
          FS_RETURN_IF_ERROR(SetState(kCursorKey, ""));
          FS_RETURN_IF_ERROR(SetStateInt(kEpochKey, epoch + 1));
          FS_RETURN_IF_ERROR(SetStateInt(kRepairingKey, 1));
        }
      }
    }
  }
  if (running.valid) FS_RETURN_IF_ERROR(SetState(kServerDigestKey, FormatDigest(running)));
  FS_RETURN_IF_ERROR(tx.Commit());
  return outcome;
}

absl::StatusOr<std::string> LocalStore::ServerChecksum(int64_t* count) {
  sync::ScopeChecksum sum;
  FS_ASSIGN_OR_RETURN(Statement * q,
                      db_->Prepare("SELECT collection, doc_id, path, value, hlc, seq "
                                   "FROM server_fields ORDER BY collection, doc_id"));
  sync::Document doc;
  auto flush = [&]() -> absl::Status {
    if (doc.id.empty() || sync::PrototypeFor(doc.collection) == nullptr) return absl::OkStatus();
    return sum.Add(doc);
  };
  absl::Status status;
  for (;;) {
    absl::StatusOr<bool> row = q->Step();
    if (!row.ok()) {
      status = row.status();
      break;
    }
    if (!*row) break;
    std::string collection = q->ColumnText(0), id = q->ColumnText(1);
    if (collection != doc.collection || id != doc.id) {
      status = flush();
      if (!status.ok()) break;
      doc = sync::Document();
      doc.collection = collection;
      doc.id = id;
    }
    sync::FieldState& state = doc.fields[q->ColumnText(2)];
    state.value = q->ColumnBlob(3);
    // The checksum covers values only; the clock is not needed.
    state.seq = q->ColumnInt(5);
  }
  q->Reset();
  FS_RETURN_IF_ERROR(status);
  FS_RETURN_IF_ERROR(flush());
  if (count != nullptr) *count = sum.count();
  return sum.Hex();
}

// --- Queries -----------------------------------------------------------------------------------

absl::Status LocalStore::LoadView(absl::string_view collection, absl::string_view id,
                                  google::protobuf::Message* out, int64_t* version) {
  FS_ASSIGN_OR_RETURN(Statement * q,
                      db_->Prepare("SELECT payload, version FROM docs "
                                   "WHERE collection=?1 AND doc_id=?2 AND deleted=0"));
  q->Bind(1, collection);
  q->Bind(2, id);
  FS_ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) {
    q->Reset();
    return absl::NotFoundError(absl::StrCat("no ", collection, " with id \"", id, "\""));
  }
  bool parsed = out->ParseFromString(q->ColumnBlob(0));
  *version = q->ColumnInt(1);
  q->Reset();
  if (!parsed) return absl::DataLossError(absl::StrCat(collection, " ", id, " does not parse"));
  return absl::OkStatus();
}

absl::StatusOr<v1::Record> LocalStore::GetRecord(absl::string_view id) {
  v1::Record record;
  int64_t version = 0;
  FS_RETURN_IF_ERROR(LoadView("record", id, &record, &version));
  DeriveRecordFields(record);
  record.mutable_audit()->set_version(version);
  return record;
}

absl::StatusOr<v1::Site> LocalStore::GetSite(absl::string_view id) {
  v1::Site site;
  int64_t version = 0;
  FS_RETURN_IF_ERROR(LoadView("site", id, &site, &version));
  site.mutable_audit()->set_version(version);
  return site;
}

absl::StatusOr<v1::Project> LocalStore::GetProject(absl::string_view id) {
  v1::Project project;
  int64_t version = 0;
  FS_RETURN_IF_ERROR(LoadView("project", id, &project, &version));
  project.mutable_audit()->set_version(version);
  return project;
}

absl::StatusOr<v1::ListRecordsResponse> LocalStore::ListRecords(
    const v1::ListRecordsRequest& request) {
  if (!v1::RecordKind_IsValid(request.kind())) {
    return absl::InvalidArgumentError(absl::StrCat("kind: unknown value ", request.kind()));
  }
  FS_RETURN_IF_ERROR(model::ValidateId("project_id", request.project_id(), true));
  FS_RETURN_IF_ERROR(model::ValidateId("site_id", request.site_id(), true));
  FS_RETURN_IF_ERROR(model::ValidateId("partner_id", request.partner_id(), true));
  FS_RETURN_IF_ERROR(model::ValidateOptionalDate("from_date", request.from_date()));
  FS_RETURN_IF_ERROR(model::ValidateOptionalDate("to_date", request.to_date()));
  FS_RETURN_IF_ERROR(CheckCountry("country", request.country()));
  if (!request.from_date().empty() && !request.to_date().empty() &&
      request.from_date() > request.to_date()) {
    return absl::InvalidArgumentError(absl::StrCat("to_date: must not be before from_date (",
                                                   request.from_date(), "), got ",
                                                   request.to_date()));
  }
  int limit = 0;
  std::string after;
  FS_RETURN_IF_ERROR(PageFor(request.page_size(), request.page_token(), &limit, &after));

  FS_ASSIGN_OR_RETURN(
      Statement * q,
      db_->Prepare("SELECT r.doc_id, r.payload, r.version FROM docs r "
                   "LEFT JOIN docs p ON p.collection='project' AND p.doc_id=r.project_id "
                   "WHERE r.collection='record' AND r.deleted=0 "
                   "AND (?1=0 OR r.kind=?1) AND (?2='' OR r.project_id=?2) "
                   "AND (?3='' OR r.site_id=?3) AND (?4='' OR r.record_date>=?4) "
                   "AND (?5='' OR r.record_date<=?5) AND (?6='' OR p.partner_id=?6) "
                   "AND (?7='' OR p.country=?7) AND r.doc_id>?8 "
                   "ORDER BY r.doc_id LIMIT ?9"));
  q->Bind(1, static_cast<int64_t>(request.kind()));
  q->Bind(2, request.project_id());
  q->Bind(3, request.site_id());
  q->Bind(4, request.from_date());
  q->Bind(5, request.to_date());
  q->Bind(6, request.partner_id());
  q->Bind(7, request.country());
  q->Bind(8, after);
  q->Bind(9, limit + 1);
  v1::ListRecordsResponse response;
  FS_ASSIGN_OR_RETURN(std::string next,
                      ReadPage<v1::Record>(*q, limit, "record", response.mutable_records(),
                                           [](v1::Record& r) {
                                             DeriveRecordFields(r);
                                             return true;
                                           }));
  response.set_next_page_token(next);
  return response;
}

absl::StatusOr<v1::ListSitesResponse> LocalStore::ListSites(const v1::ListSitesRequest& request) {
  FS_RETURN_IF_ERROR(model::ValidateId("project_id", request.project_id(), true));
  int limit = 0;
  std::string after;
  FS_RETURN_IF_ERROR(PageFor(request.page_size(), request.page_token(), &limit, &after));
  FS_ASSIGN_OR_RETURN(Statement * q, db_->Prepare("SELECT doc_id, payload, version FROM docs "
                                                  "WHERE collection='site' AND deleted=0 "
                                                  "AND (?1='' OR project_id=?1) AND doc_id>?2 "
                                                  "ORDER BY doc_id LIMIT ?3"));
  q->Bind(1, request.project_id());
  q->Bind(2, after);
  q->Bind(3, limit + 1);
  v1::ListSitesResponse response;
  FS_ASSIGN_OR_RETURN(std::string next,
                      ReadPage<v1::Site>(*q, limit, "site", response.mutable_sites(),
                                         [](v1::Site&) { return true; }));
  response.set_next_page_token(next);
  return response;
}

absl::StatusOr<v1::ListProjectsResponse> LocalStore::ListProjects(
    const v1::ListProjectsRequest& request) {
  if (!v1::ProjectKind_IsValid(request.kind())) {
    return absl::InvalidArgumentError(absl::StrCat("kind: unknown value ", request.kind()));
  }
  if (!v1::ProjectStatus_IsValid(request.status())) {
    return absl::InvalidArgumentError(absl::StrCat("status: unknown value ", request.status()));
  }
  FS_RETURN_IF_ERROR(model::ValidateId("partner_id", request.partner_id(), true));
  FS_RETURN_IF_ERROR(CheckCountry("country", request.country()));
  int limit = 0;
  std::string after;
  FS_RETURN_IF_ERROR(PageFor(request.page_size(), request.page_token(), &limit, &after));
  FS_ASSIGN_OR_RETURN(Statement * q,
                      db_->Prepare("SELECT doc_id, payload, version FROM docs "
                                   "WHERE collection='project' AND deleted=0 "
                                   "AND (?1=0 OR kind=?1) AND (?2='' OR country=?2) "
                                   "AND (?3='' OR partner_id=?3) AND (?4=0 OR status=?4) "
                                   "AND doc_id>?5 ORDER BY doc_id"));
  q->Bind(1, static_cast<int64_t>(request.kind()));
  q->Bind(2, request.country());
  q->Bind(3, request.partner_id());
  q->Bind(4, static_cast<int64_t>(request.status()));
  q->Bind(5, after);
  const std::string text = absl::AsciiStrToLower(request.text());
  auto matches = [&](const v1::Project& p) {
    if (text.empty()) return true;
    for (const std::string* s : {&p.title(), &p.donor(), &p.admin_area(), &p.iati_identifier()}) {
      if (absl::StrContains(absl::AsciiStrToLower(*s), text)) return true;
    }
    return false;
  };
  v1::ListProjectsResponse response;
  FS_ASSIGN_OR_RETURN(std::string next,
                      ReadPage<v1::Project>(*q, limit, "project", response.mutable_projects(),
                                            matches));
  response.set_next_page_token(next);
  return response;
}

absl::StatusOr<int64_t> LocalStore::CountLive(absl::string_view collection) {
  FS_ASSIGN_OR_RETURN(Statement * q,
                      db_->Prepare("SELECT COUNT(*) FROM docs WHERE collection=?1 AND deleted=0"));
  q->Bind(1, collection);
  FS_ASSIGN_OR_RETURN(bool row, q->Step());
  int64_t n = row ? q->ColumnInt(0) : 0;
  q->Reset();
  return n;
}

}  // namespace fieldsync::client
