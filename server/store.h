// The storage interface of fieldsyncd. SqliteStore implements it first; a PostgreSQL store for
// several replicas must fit behind the same interface, so nothing here mentions SQLite.
//
//   FS_ASSIGN_OR_RETURN(auto store, SqliteStore::Open({.path = "data/fieldsync.db"}));
//   FS_ASSIGN_OR_RETURN(v1::Project p, store->GetProject(id));
//
// The store checks what needs its data and must hold inside one transaction: referenced rows
// exist (a record's project and site, a project's partner), a record's kind matches its
// project's kind, ids are unique, optimistic versions match. Field validation, defaults and
// authorization are the Tracker's job, before the store is called.
//
// Every write is atomic and durable when it returns OK, bumps the document's version to a new
// server sequence number, and appends one entry to the hash-chained change log in the same
// transaction.
//
// Errors: NOT_FOUND (missing id, named in the message), ALREADY_EXISTS (id or unique name
// reused), FAILED_PRECONDITION (version mismatch, wrong project kind), INVALID_ARGUMENT (a
// reference that does not exist, such as record.project_id), RESOURCE_EXHAUSTED (disk full),
// UNAVAILABLE (database busy), INTERNAL (anything else).
//
// Thread-safety: all methods may be called concurrently.
#ifndef FIELDSYNC_SERVER_STORE_H_
#define FIELDSYNC_SERVER_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fieldsync/v1/admin.pb.h"
#include "fieldsync/v1/domain.pb.h"
#include "fieldsync/v1/sync.pb.h"
#include "fieldsync/v1/tracker.pb.h"

namespace fieldsync::server {

// Who makes a change, for the audit fields, the change log and the write policy
// (server/write_policy.h), which the store applies to every write of a project, site or record
// whatever route it came by.
struct Actor {
  // User or device id; "system" for the server's own writes (demo data).
  std::string id;
  // The role the write is made with; the server's own writes are ADMIN.
  v1::Role role = v1::ROLE_ADMIN;
  // Non-empty for a partner-bound writer (a field device): it may touch only that partner's
  // documents, and another partner's document is to it as if it did not exist.
  std::string partner_id = {};
};

// A device pushing changes: its id, the partner whose documents it may touch, and the
// sequence space of the pushing store ("" is the device's legacy space).
struct DeviceWriter {
  std::string device_id;
  std::string partner_id;
  std::string stream_id = {};
};

// What a push did.
struct PushResult {
  // Highest device_seq of the stream acknowledged so far (this push and earlier ones), the
  // refused changes included: they are kept in the rejection log.
  int64_t acked_device_seq = 0;
  // Conflicts this push created.
  int conflicts = 0;
  // The batch's refused changes (replays of refused changes included), in device_seq order.
  std::vector<v1::Rejection> rejections;
  // The batch's changes applied but flagged for review (a RULE conflict).
  std::vector<v1::Review> reviews;
};

// One page of a pull.
struct PullResult {
  std::vector<v1::DocumentDelta> documents;
  // Server sequence of the last document in the page (the next cursor); the request's cursor
  // when the page is empty.
  int64_t last_seq = 0;
  // No more documents after this page (at the time of reading).
  bool last = false;
  // On the last page: the scope's checksum (hex) and live document count, read in the same
  // snapshot as the page.
  std::string scope_checksum;
  int64_t scope_documents = 0;
};

// A restriction of reads to one partner's data. Empty partner_id: everything.
struct Scope {
  std::string partner_id;
};

// One page of a keyset-paged list.
struct PageRequest {
  // 1..1000.
  int page_size = 100;
  // Exclusive lower bound on the id: the last id of the previous page, or empty.
  std::string after_id;
};

// A token as the authenticator needs it.
struct TokenRecord {
  v1::Token token;
  // Name of the user or device the token belongs to.
  std::string subject_name;
  // The token's device is disabled (AdminService.DisableDevice).
  bool device_disabled = false;
};

// One entry of the append-only change log.
struct ChangeLogEntry {
  int64_t seq = 0;
  std::string collection;  // "partner", "project", "site", "record", ...
  std::string doc_id;
  std::string op;          // "create", "update", "delete"
  std::string actor_id;
  // Set for changes pushed by a device (sync); empty for changes made through the API.
  std::string device_id;
  int64_t device_seq = 0;
  std::string hlc;
  absl::Time server_time;
  // For projects, sites and records: the serialized v1::Change (fields, clocks, device seq) as
  // it was merged, winner or loser. For admin data (partners, users, devices, tokens): the
  // document after the change (never a token secret or hash).
  std::string payload;
  std::string prev_hash;   // hex
  std::string hash;        // hex SHA-256(prev_hash bytes || canonical bytes of this entry)
};

// --- Reports (ReportService) -------------------------------------------------------------------

// Which rows a report reads. Validated by the caller; empty fields do not filter.
struct ReportQuery {
  // Record tables: record_date within [from_date, to_date] (YYYY-MM-DD). Projects: active in
  // the period (start_date <= to_date and end_date >= from_date, a missing date never
  // excludes). Audit trail: the UTC day of the server time. Sites: not filtered by date.
  std::string from_date;
  std::string to_date;
  // Of the project: ISO country, partner, the project itself, its kind ("WELL", "CATARACT",
  // "CLASSROOM" — the short name).
  std::string country;
  std::string partner_id;
  std::string project_id;
  std::string project_kind;
};

// Who wrote a document, with names, for a report row.
struct ReportProvenance {
  std::string partner_id;
  std::string partner_name;
  std::string country;
  // User or device names of created_by / updated_by (the id itself if it names neither).
  std::string created_by_name;
  std::string updated_by_name;
  // The device whose push created the document; empty if it was created through the API.
  std::string created_device_id;
};

// A project with the aggregates of its live records within the query's period.
struct ReportProject {
  v1::Project project;  // audit filled
  ReportProvenance who;
  int64_t sites = 0;
  int64_t wells = 0;
  int64_t wells_functional = 0;
  int64_t wells_partly_functional = 0;
  int64_t wells_not_functional = 0;
  int64_t population_served_functional = 0;  // people served by FUNCTIONAL water points
  int64_t surgeries = 0;
  int64_t surgeries_with_day1 = 0;           // with a DAY_1 follow-up
  int64_t surgeries_with_weeks_4_12 = 0;     // with a WEEKS_4_12 follow-up
  int64_t good_outcomes_weeks_4_12 = 0;      // WHO good (6/18 or better) at WEEKS_4_12
  int64_t donations = 0;
  int64_t items_dispatched = 0;
  int64_t items_received = 0;
  int64_t students_reached = 0;
  int64_t expenditures = 0;
  // Sum of the expenditures in the budget's currency, minor units.
  int64_t spend_minor = 0;
  // Expenditures in another currency than the budget's (not in spend_minor).
  int64_t expenditures_other_currency = 0;
};

struct ReportSite {
  v1::Site site;  // audit filled
  ReportProvenance who;
};

struct ReportRecord {
  v1::Record record;  // audit, kind, record_date and follow-up outcomes filled
  ReportProvenance who;
};

// One change-log entry made readable.
struct ReportAuditEntry {
  ChangeLogEntry entry;
  std::string actor_name;   // user or device name; the id if unknown
  std::string device_name;  // empty when the entry has no device
  // The project the changed document belongs to; empty for admin data.
  std::string project_id;
  struct Field {
    std::string path;
    // The field's value (document-path bytes, fieldsync/sync/document.h) before the change;
    // empty when it was unset.
    std::string old_value;
    // "won" (became current over a concurrent edit), "lost" (did not become current) or
    // "applied" (became current, or already was).
    std::string outcome;
  };
  // For project, site and record entries: one per changed field, ordered by path. The new
  // values are in the payload (a v1::Change).
  std::vector<Field> fields;
};

// Row counts of every table a report can hold, within one snapshot.
struct ReportCounts {
  int64_t projects = 0;
  int64_t projects_by_kind[4] = {0, 0, 0, 0};  // indexed by v1::ProjectKind
  int64_t sites = 0;
  int64_t records[5] = {0, 0, 0, 0, 0};  // live records, indexed by v1::RecordKind
  int64_t water_quality_tests = 0;
  int64_t follow_ups = 0;
  int64_t donation_items = 0;
  int64_t audit_rows = 0;  // one per changed field, one per entry without fields
};

// Which counts ReportSnapshot::Count computes (a bitmask; the others stay 0). Each is a scan of
// its table, seconds on a large database, so an export asks only for those of its tables.
enum ReportCountSet : unsigned {
  kCountProjects = 1u << 0,  // projects and projects_by_kind
  kCountSites = 1u << 1,
  kCountRecords = 1u << 2,
  kCountWaterQualityTests = 1u << 3,
  kCountFollowUps = 1u << 4,
  kCountDonationItems = 1u << 5,
  kCountAuditRows = 1u << 6,
  kCountAll = (1u << 7) - 1,
};

// A consistent read-only view of the whole database for one export: every scan and count sees
// the same committed state, the one after entry head_seq(). Holds a reader (SQLite: one read
// transaction on a reader connection) until destroyed. Scans hand rows to `visit` one at a time
// in a stable order (ids ascending; audit entries by seq) and stop at the first error `visit`
// returns. Not thread-safe: one thread at a time.
class ReportSnapshot {
 public:
  virtual ~ReportSnapshot() = default;
  // The last change-log entry visible: its seq and hash (0 and 64 zeros for an empty log).
  virtual int64_t head_seq() const = 0;
  virtual const std::string& head_hash() const = 0;

  virtual absl::StatusOr<ReportCounts> Count(const ReportQuery& query, unsigned which) = 0;
  virtual absl::Status ScanProjects(
      const ReportQuery& query, const std::function<absl::Status(const ReportProject&)>& visit) = 0;
  virtual absl::Status ScanSites(const ReportQuery& query,
                                 const std::function<absl::Status(const ReportSite&)>& visit) = 0;
  virtual absl::Status ScanRecords(
      const ReportQuery& query, v1::RecordKind kind,
      const std::function<absl::Status(const ReportRecord&)>& visit) = 0;
  virtual absl::Status ScanAuditTrail(
      const ReportQuery& query, const std::function<absl::Status(const ReportAuditEntry&)>& visit) = 0;
};

// What an online backup wrote.
struct BackupInfo {
  std::string path;
  int64_t bytes = 0;
  // The last change-log entry in the backup.
  int64_t head_seq = 0;
  std::string head_hash;
  // The epoch of the database the backup was taken from (a restore gives it a new one).
  std::string epoch;
};

class Store {
 public:
  virtual ~Store() = default;

  // --- Partners, users, devices, tokens -------------------------------------------------------
  virtual absl::StatusOr<v1::Partner> CreatePartner(const v1::Partner& partner,
                                                    const Actor& actor) = 0;
  virtual absl::StatusOr<v1::Partner> UpdatePartner(const v1::Partner& partner,
                                                    const Actor& actor) = 0;
  virtual absl::StatusOr<v1::Partner> GetPartner(absl::string_view id) = 0;
  virtual absl::StatusOr<std::vector<v1::Partner>> ListPartners(const PageRequest& page) = 0;

  virtual absl::StatusOr<v1::User> CreateUser(const v1::User& user, const Actor& actor) = 0;
  virtual absl::StatusOr<v1::User> GetUser(absl::string_view id) = 0;
  virtual absl::StatusOr<std::vector<v1::User>> ListUsers(const PageRequest& page) = 0;

  virtual absl::StatusOr<v1::Device> CreateDevice(const v1::Device& device,
                                                  const Actor& actor) = 0;
  virtual absl::StatusOr<v1::Device> GetDevice(absl::string_view id) = 0;
  virtual absl::StatusOr<std::vector<v1::Device>> ListDevices(absl::string_view partner_id,
                                                              const PageRequest& page) = 0;
  // Disables (or enables) a device; idempotent, logged only when the state changes. NOT_FOUND
  // for an unknown device.
  virtual absl::StatusOr<v1::Device> SetDeviceDisabled(absl::string_view id, bool disabled,
                                                       const Actor& actor) = 0;

  // Stores a token's metadata and the SHA-256 (hex) of its secret.
  virtual absl::StatusOr<v1::Token> CreateToken(const v1::Token& token,
                                                absl::string_view secret_sha256_hex,
                                                const Actor& actor) = 0;
  // Finds a token by the SHA-256 of its secret; NOT_FOUND if none. Revoked and expired
  // tokens are returned too: the caller decides.
  virtual absl::StatusOr<TokenRecord> FindToken(absl::string_view secret_sha256_hex) = 0;
  virtual absl::StatusOr<std::vector<v1::Token>> ListTokens(absl::string_view user_id,
                                                            absl::string_view device_id,
                                                            const PageRequest& page) = 0;
  // Marks a token revoked (idempotent: revoking twice keeps the first time).
  virtual absl::StatusOr<v1::Token> RevokeToken(absl::string_view id, const Actor& actor) = 0;
  // Revokes every unrevoked token of a device (each logged); returns how many.
  virtual absl::StatusOr<int64_t> RevokeDeviceTokens(absl::string_view device_id,
                                                     const Actor& actor) = 0;

  // --- Projects, sites, records ---------------------------------------------------------------
  virtual absl::StatusOr<v1::Project> CreateProject(const v1::Project& project,
                                                    const Actor& actor) = 0;
  // expected_version 0 means "any".
  virtual absl::StatusOr<v1::Project> UpdateProject(const v1::Project& project,
                                                    int64_t expected_version,
                                                    const Actor& actor) = 0;
  virtual absl::StatusOr<v1::Project> GetProject(absl::string_view id) = 0;
  virtual absl::StatusOr<std::vector<v1::Project>> ListProjects(
      const v1::ListProjectsRequest& filter, const Scope& scope, const PageRequest& page) = 0;

  virtual absl::StatusOr<v1::Site> CreateSite(const v1::Site& site, const Actor& actor) = 0;
  virtual absl::StatusOr<v1::Site> GetSite(absl::string_view id) = 0;
  virtual absl::StatusOr<std::vector<v1::Site>> ListSites(absl::string_view project_id,
                                                          const Scope& scope,
                                                          const PageRequest& page) = 0;

  // `record` arrives with kind and record_date already derived.
  virtual absl::StatusOr<v1::Record> CreateRecord(const v1::Record& record,
                                                  const Actor& actor) = 0;
  virtual absl::StatusOr<v1::Record> UpdateRecord(const v1::Record& record,
                                                  int64_t expected_version,
                                                  const Actor& actor) = 0;
  virtual absl::StatusOr<v1::Record> GetRecord(absl::string_view id) = 0;
  virtual absl::StatusOr<std::vector<v1::Record>> ListRecords(
      const v1::ListRecordsRequest& filter, const Scope& scope, const PageRequest& page) = 0;

  // Indicators over the records matching `filter` within `scope`. Visual outcomes use the
  // WHO thresholds (model::OutcomeThresholds defaults).
  virtual absl::StatusOr<v1::GetStatsResponse> GetStats(const v1::GetStatsRequest& filter,
                                                        const Scope& scope) = 0;

  // Deletes a record: a tombstone that syncs to devices. The typed rows go; the document and
  // its history stay.
  virtual absl::StatusOr<v1::Record> DeleteRecord(absl::string_view id, int64_t expected_version,
                                                  const Actor& actor) = 0;

  // --- Sync -----------------------------------------------------------------------------------
  // Applies a device's batch of changes, all or nothing, in device_seq order. Changes at or
  // below the device's acknowledged sequence are skipped (replays); the first new change must
  // be acknowledged + 1 and the rest contiguous (FAILED_PRECONDITION otherwise). A change that
  // is malformed, invalid after merge, or touches another partner's document is
  // INVALID_ARGUMENT "changes[i]...". Durable when it returns OK.
  virtual absl::StatusOr<PushResult> Push(const DeviceWriter& device,
                                          const std::vector<v1::Change>& changes) = 0;
  // Documents of `partner_id`'s scope whose last change is after `after_seq`, in server
  // sequence order, at most `limit`; each with the fields changed after `fields_after_seq`
  // (<= after_seq): the point the whole pull started from. A document created before a page
  // boundary and edited after it is sent in a later page, and must then still carry the fields
  // of its creation.
  virtual absl::StatusOr<PullResult> Pull(absl::string_view partner_id, int64_t after_seq,
                                          int64_t fields_after_seq, int limit) = 0;
  // Highest device_seq acknowledged (applied or refused) in the device's stream (0 if none;
  // "" is the device's legacy stream).
  virtual absl::StatusOr<int64_t> AckedDeviceSeq(absl::string_view device_id,
                                                 absl::string_view stream_id = "") = 0;
  // The refused changes of a device's stream after `after_seq`, in device_seq order.
  virtual absl::StatusOr<std::vector<v1::Rejection>> RejectionsAfter(absl::string_view device_id,
                                                                     absl::string_view stream_id,
                                                                     int64_t after_seq) = 0;
  // Records that the device finished a sync round now, its pull having reached `pulled_seq`.
  virtual absl::Status MarkSynced(absl::string_view device_id, int64_t pulled_seq = 0) = 0;
  // A fresh timestamp of the server's hybrid logical clock, encoded.
  virtual std::string ServerHlc() = 0;

  // --- Conflicts ------------------------------------------------------------------------------
  virtual absl::StatusOr<std::vector<v1::Conflict>> ListConflicts(
      const v1::ListConflictsRequest& filter, const Scope& scope, const PageRequest& page) = 0;
  virtual absl::StatusOr<v1::Conflict> GetConflict(absl::string_view id) = 0;
  // Closes an open conflict; TAKE_LOSER writes the losing value back as a new change by
  // `actor`. FAILED_PRECONDITION if already resolved.
  virtual absl::StatusOr<v1::Conflict> ResolveConflict(absl::string_view id,
                                                       v1::ConflictResolution resolution,
                                                       const Actor& actor) = 0;

  // --- Rejections -----------------------------------------------------------------------------
  // The rejection log, newest first; `scope` limits it to one partner's devices.
  virtual absl::StatusOr<std::vector<v1::RejectedChange>> ListRejections(
      const v1::ListRejectionsRequest& filter, const Scope& scope, const PageRequest& page) = 0;
  // Closes an open rejection. NOT_FOUND if unknown, FAILED_PRECONDITION if already resolved.
  virtual absl::StatusOr<v1::RejectedChange> ResolveRejection(absl::string_view id,
                                                              absl::string_view note,
                                                              const Actor& actor) = 0;

  // --- Enrollment -----------------------------------------------------------------------------
  // Stores a new code for the device; the device's earlier unused codes expire in the same
  // transaction (one valid code per device at a time).
  virtual absl::Status CreateEnrollment(absl::string_view device_id,
                                        absl::string_view code_sha256_hex, absl::Time expires_at,
                                        const Actor& actor) = 0;
  // Marks the code used and returns its device id. NOT_FOUND for an unknown, used or expired
  // code (one answer for all three, so codes cannot be probed).
  virtual absl::StatusOr<std::string> RedeemEnrollment(absl::string_view code_sha256_hex) = 0;

  // The project a site or record belongs to, also after the record was deleted (from its
  // stored fields); NOT_FOUND if the document never existed.
  virtual absl::StatusOr<std::string> ProjectOfDocument(absl::string_view collection,
                                                        absl::string_view id) = 0;

  // --- Live feed ------------------------------------------------------------------------------
  // The highest change_log seq committed.
  virtual int64_t LastSeq() = 0;
  // Blocks until a change with seq > `seq` commits or `timeout` passes.
  virtual void WaitForChange(int64_t seq, absl::Duration timeout) = 0;

  // Runs `fn` in one write transaction: every write `fn` makes through this store commits
  // together or not at all. Used for bulk loads and for enrollment (code, revocations, token).
  // `fn` must not call RunInTransaction again and must make its writes on the calling thread.
  virtual absl::Status RunInTransaction(const std::function<absl::Status()>& fn) = 0;

  // --- Change log -----------------------------------------------------------------------------
  // Entries with seq > after_seq, at most `limit`, in order.
  virtual absl::StatusOr<std::vector<ChangeLogEntry>> ReadChangeLog(int64_t after_seq,
                                                                    int limit) = 0;

  // The first entry within [from_seq, to_seq] (to_seq 0: to the end) whose audit rows — the
  // old values and WON/LOST/APPLIED outcomes an audit export shows, and the project — differ
  // from a replay of the chain; {0, ""} when all agree. See sqlite_reports.h.
  virtual absl::StatusOr<std::pair<int64_t, std::string>> CheckAuditRows(int64_t from_seq,
                                                                         int64_t to_seq) = 0;

  // --- Reports --------------------------------------------------------------------------------
  // A read snapshot for one export (see ReportSnapshot). Blocks while every reader is busy.
  virtual absl::StatusOr<std::unique_ptr<ReportSnapshot>> OpenReportSnapshot() = 0;
  // Appends the record of a completed export to the change log: collection "export", op
  // "create", doc_id `export_id`, payload `manifest` (a serialized v1::ExportManifest). Exports
  // are no documents: nothing syncs, no scope checksum moves. Returns the entry's seq.
  virtual absl::StatusOr<int64_t> LogExport(absl::string_view export_id,
                                            absl::string_view manifest, const Actor& actor) = 0;
  // The last change-log entry of `collection`/`doc_id`; NOT_FOUND if there is none.
  virtual absl::StatusOr<ChangeLogEntry> LastEntryOf(absl::string_view collection,
                                                     absl::string_view doc_id) = 0;

  // --- Backups and restores -------------------------------------------------------------------
  // The id (a UUID) of this database's history: made when the database is created, replaced
  // by NewEpoch after a restore. A device that sees it change knows the server may have lost
  // changes it had acknowledged, and sends its documents again (docs/SYNC.md).
  virtual absl::StatusOr<std::string> Epoch() = 0;
  // Gives the database a fresh epoch and returns it.
  virtual absl::StatusOr<std::string> NewEpoch() = 0;
  // An online copy of the whole database into the new file `path` on the server's host, taken
  // in one snapshot while writes go on (SQLite's backup API). UNIMPLEMENTED on PostgreSQL:
  // pg_dump does it there (docs/OPERATIONS.md).
  virtual absl::StatusOr<BackupInfo> Backup(const std::string& path) = 0;
};

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_STORE_H_
