// SqliteStore: the Store on SQL, written once for two engines (server/db.h): one embedded
// SQLite file in WAL mode (the pilot's default) or a PostgreSQL database that several
// fieldsyncd replicas share.
//
//   FS_ASSIGN_OR_RETURN(std::unique_ptr<SqliteStore> store,
//                       SqliteStore::Open({.path = "data/fieldsync.db"}));
//
// Thread rule: one writer connection behind a mutex (SQLite has one writer anyway) and a small
// pool of reader connections; WAL lets the readers run while the writer commits. Every write is
// one IMMEDIATE transaction with synchronous=FULL, so an OK means it survives a power cut. On
// PostgreSQL a write transaction also holds an advisory lock, so the writers of all replicas
// take turns: sequence numbers commit in order and the hash chain stays one chain.
#ifndef FIELDSYNC_SERVER_SQLITE_STORE_H_
#define FIELDSYNC_SERVER_SQLITE_STORE_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "fieldsync/sync/hlc.h"
#include "fieldsync/sync/merge.h"
#include "server/db.h"
#include "server/store.h"

namespace fieldsync::server {

class SqliteStore : public Store {
 public:
  struct Options {
    // Database file; created (mode 0600) and migrated if needed. Its folder must exist. Or a
    // PostgreSQL URL ("postgresql://user@host:5432/db"): its database must exist; the schema
    // is created and migrated in it.
    std::string path;
    // PRAGMA synchronous of the writer: "FULL" (default; durable across power loss) or
    // "NORMAL" (durable across a process crash only; for tests and bulk loads).
    std::string synchronous = "FULL";
    // Reader connections. Default 4.
    int readers = 4;
    // Hard cap on the database file, in bytes (PRAGMA max_page_count on the writer); 0 for
    // none. A write that would grow the file past it fails with RESOURCE_EXHAUSTED exactly as
    // on a full disk, and is rolled back whole.
    int64_t max_db_bytes = 0;
  };

  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const Options& options);
  ~SqliteStore() override;

  absl::StatusOr<v1::Partner> CreatePartner(const v1::Partner& partner,
                                            const Actor& actor) override;
  absl::StatusOr<v1::Partner> UpdatePartner(const v1::Partner& partner,
                                            const Actor& actor) override;
  absl::StatusOr<v1::Partner> GetPartner(absl::string_view id) override;
  absl::StatusOr<std::vector<v1::Partner>> ListPartners(const PageRequest& page) override;

  absl::StatusOr<v1::User> CreateUser(const v1::User& user, const Actor& actor) override;
  absl::StatusOr<v1::User> GetUser(absl::string_view id) override;
  absl::StatusOr<std::vector<v1::User>> ListUsers(const PageRequest& page) override;

  absl::StatusOr<v1::Device> CreateDevice(const v1::Device& device, const Actor& actor) override;
  absl::StatusOr<v1::Device> GetDevice(absl::string_view id) override;
  absl::StatusOr<std::vector<v1::Device>> ListDevices(absl::string_view partner_id,
                                                      const PageRequest& page) override;

  absl::StatusOr<v1::Token> CreateToken(const v1::Token& token,
                                        absl::string_view secret_sha256_hex,
                                        const Actor& actor) override;
  absl::StatusOr<TokenRecord> FindToken(absl::string_view secret_sha256_hex) override;
  absl::StatusOr<std::vector<v1::Token>> ListTokens(absl::string_view user_id,
                                                    absl::string_view device_id,
                                                    const PageRequest& page) override;
  absl::StatusOr<v1::Token> RevokeToken(absl::string_view id, const Actor& actor) override;
  absl::StatusOr<int64_t> RevokeDeviceTokens(absl::string_view device_id,
                                             const Actor& actor) override;
  absl::StatusOr<v1::Device> SetDeviceDisabled(absl::string_view id, bool disabled,
                                               const Actor& actor) override;

  absl::StatusOr<v1::Project> CreateProject(const v1::Project& project,
                                            const Actor& actor) override;
  absl::StatusOr<v1::Project> UpdateProject(const v1::Project& project, int64_t expected_version,
                                            const Actor& actor) override;
  absl::StatusOr<v1::Project> GetProject(absl::string_view id) override;
  absl::StatusOr<std::vector<v1::Project>> ListProjects(const v1::ListProjectsRequest& filter,
                                                        const Scope& scope,
                                                        const PageRequest& page) override;

  absl::StatusOr<v1::Site> CreateSite(const v1::Site& site, const Actor& actor) override;
  absl::StatusOr<v1::Site> GetSite(absl::string_view id) override;
  absl::StatusOr<std::vector<v1::Site>> ListSites(absl::string_view project_id,
                                                  const Scope& scope,
                                                  const PageRequest& page) override;

  absl::StatusOr<v1::Record> CreateRecord(const v1::Record& record, const Actor& actor) override;
  absl::StatusOr<v1::Record> UpdateRecord(const v1::Record& record, int64_t expected_version,
                                          const Actor& actor) override;
  absl::StatusOr<v1::Record> GetRecord(absl::string_view id) override;
  absl::StatusOr<std::vector<v1::Record>> ListRecords(const v1::ListRecordsRequest& filter,
                                                      const Scope& scope,
                                                      const PageRequest& page) override;

  absl::StatusOr<v1::GetStatsResponse> GetStats(const v1::GetStatsRequest& filter,
                                                const Scope& scope) override;
  // The same answer computed by scanning the typed tables (every record, ~5 s at 1M records):
  // the reference that GetStats' aggregates are checked against (tests/stats_aggregates_test.cc).
  absl::StatusOr<v1::GetStatsResponse> GetStatsByScan(const v1::GetStatsRequest& filter,
                                                      const Scope& scope);

  absl::StatusOr<v1::Record> DeleteRecord(absl::string_view id, int64_t expected_version,
                                          const Actor& actor) override;

  absl::StatusOr<PushResult> Push(const DeviceWriter& device,
                                  const std::vector<v1::Change>& changes) override;
  absl::StatusOr<PullResult> Pull(absl::string_view partner_id, int64_t after_seq,
                                  int64_t fields_after_seq, int limit) override;
  absl::StatusOr<int64_t> AckedDeviceSeq(absl::string_view device_id,
                                         absl::string_view stream_id = "") override;
  absl::StatusOr<std::vector<v1::Rejection>> RejectionsAfter(absl::string_view device_id,
                                                             absl::string_view stream_id,
                                                             int64_t after_seq) override;
  absl::Status MarkSynced(absl::string_view device_id, int64_t pulled_seq = 0) override;
  absl::StatusOr<std::vector<v1::RejectedChange>> ListRejections(
      const v1::ListRejectionsRequest& filter, const Scope& scope,
      const PageRequest& page) override;
  absl::StatusOr<v1::RejectedChange> ResolveRejection(absl::string_view id,
                                                      absl::string_view note,
                                                      const Actor& actor) override;
  std::string ServerHlc() override;

  absl::StatusOr<std::vector<v1::Conflict>> ListConflicts(const v1::ListConflictsRequest& filter,
                                                          const Scope& scope,
                                                          const PageRequest& page) override;
  absl::StatusOr<v1::Conflict> GetConflict(absl::string_view id) override;
  absl::StatusOr<v1::Conflict> ResolveConflict(absl::string_view id,
                                               v1::ConflictResolution resolution,
                                               const Actor& actor) override;

  absl::Status CreateEnrollment(absl::string_view device_id, absl::string_view code_sha256_hex,
                                absl::Time expires_at, const Actor& actor) override;
  absl::StatusOr<std::string> RedeemEnrollment(absl::string_view code_sha256_hex) override;

  absl::StatusOr<std::string> ProjectOfDocument(absl::string_view collection,
                                                absl::string_view id) override;
  int64_t LastSeq() override;
  void WaitForChange(int64_t seq, absl::Duration timeout) override;

  absl::Status RunInTransaction(const std::function<absl::Status()>& fn) override;

  absl::StatusOr<std::vector<ChangeLogEntry>> ReadChangeLog(int64_t after_seq,
                                                            int limit) override;

  absl::StatusOr<std::pair<int64_t, std::string>> CheckAuditRows(int64_t from_seq,
                                                                 int64_t to_seq) override;

  // Reports (sqlite_reports.cc).
  absl::StatusOr<std::unique_ptr<ReportSnapshot>> OpenReportSnapshot() override;
  absl::StatusOr<int64_t> LogExport(absl::string_view export_id, absl::string_view manifest,
                                    const Actor& actor) override;
  absl::StatusOr<ChangeLogEntry> LastEntryOf(absl::string_view collection,
                                             absl::string_view doc_id) override;

  absl::StatusOr<std::string> Epoch() override;
  absl::StatusOr<std::string> NewEpoch() override;
  absl::StatusOr<BackupInfo> Backup(const std::string& path) override;

 private:
  friend class SqliteReportSnapshot;
  class ReaderLease;
  using WriteFn = std::function<absl::Status(db::Connection&)>;
  using ReadFn = std::function<absl::Status(db::Connection&)>;

  explicit SqliteStore(std::unique_ptr<db::Connection> writer);

  // Who makes a change through the document path, and what they may touch.
  struct Writer {
    // Who, with which role and partner (write_policy.h).
    Actor actor;
    // Set for device pushes.
    std::string device_id;
    int64_t device_seq = 0;
    std::string stream_id = {};
    // The change's bytes as the device sent them: the change log's payload.
    const std::string* received = nullptr;
    // How far the device's last complete pull reached: a field another writer changed after
    // it is one the device had not seen when it edited.
    int64_t pulled_seq = 0;
  };
  // Result of applying one change.
  struct Applied {
    int64_t seq = 0;
    int conflicts = 0;
    bool changed = false;
    // Non-empty: the merged document breaks this rule and is flagged for review.
    std::string review = {};
  };
  // The one write path of projects, sites and records: merges `change` into the document,
  // validates the result, and updates doc_fields, docs, the scope checksum, the typed tables,
  // conflicts and the change log. Runs on the writer connection inside a transaction.
  absl::StatusOr<Applied> ApplyChange(db::Connection& db, const sync::Change& change,
                                      const Writer& writer);
  // A change by an HQ user (no device) of `collection`/`id` to the values of `doc`; only
  // fields that differ from the stored document are sent. `must_exist`: NOT_FOUND if missing;
  // otherwise ALREADY_EXISTS if present. Returns the new seq (or the old version if nothing
  // changed).
  absl::StatusOr<int64_t> WriteDocument(db::Connection& db, absl::string_view collection,
                                        const google::protobuf::Message& doc, bool must_exist,
                                        int64_t expected_version, const Actor& actor,
                                        bool deleted = false);
  // Appends a refused change to the change log (op "reject") and the rejection log.
  absl::Status LogRejection(db::Connection& db, const DeviceWriter& device, const v1::Change& c,
                            const std::string& received, const v1::Rejection& rejection);
  // Stores how far a stream is acknowledged; `is_new`: the stream has no row yet.
  absl::Status SetStreamAcked(db::Connection& db, const DeviceWriter& device, int64_t acked,
                              bool is_new);
  static constexpr int64_t kMaxStreamsPerDevice = 1000;
  // Reads the last committed seq and wakes WaitForChange callers. Writer lock held.
  void PublishLastSeq();
  // The same from a reader, for commits of other fieldsyncd processes sharing the database.
  void RefreshLastSeq();
  // Next timestamp of the server clock for `node`. Writer lock held.
  sync::Hlc NextHlc(absl::string_view node);

  // Runs `fn` on the writer connection in its own transaction, or inside the caller's
  // RunInTransaction (under a savepoint, so a failed write leaves nothing behind).
  //
  // Group commit: writes that arrive while another is committing wait in a queue; the next
  // one to run takes the whole queue and applies it in one transaction, each write under its
  // own SAVEPOINT (a write that fails is rolled back alone), with one COMMIT — one fsync for
  // all. Every caller returns only after that COMMIT, with its own write's status (or the
  // COMMIT's error).
  absl::Status Write(const WriteFn& fn);
  struct PendingWrite;
  // True when `w` is done or no group is running (then its caller leads the next one).
  static bool GroupTurn(PendingWrite* w);
  // Applies `group` in one transaction on the writer connection. writer_mu_ held.
  void CommitGroup(const std::vector<PendingWrite*>& group);
  // Runs `fn` on a reader connection.
  absl::Status Read(const ReadFn& fn);

  std::unique_ptr<db::Connection> writer_;
  // Other fieldsyncd processes may write the same database (PostgreSQL).
  bool shared_ = false;
  absl::Mutex writer_mu_;
  sync::HlcClock clock_{"server"};  // guarded by writer_mu_ (or the RunInTransaction owner)
  // The scope checksum changes of the open write transaction, by partner: XOR of document
  // hashes and the change in document count, written once per partner just before COMMIT
  // (FlushScopes) rather than per change. PostgreSQL keeps every version of a row updated
  // within one transaction, so a row rewritten per change makes a long transaction (a group,
  // the demo load) quadratic. Guarded like clock_.
  struct ScopeDelta {
    std::string digest = std::string(32, '\0');
    int64_t documents = 0;
  };
  std::map<std::string, ScopeDelta> scope_deltas_;
  absl::Status FlushScopes(db::Connection& db);
  absl::Mutex seq_mu_;
  absl::CondVar seq_cv_;
  int64_t last_seq_ ABSL_GUARDED_BY(seq_mu_) = 0;
  std::atomic<std::thread::id> tx_owner_{};
  // Writes waiting for the next group commit, and whether a group is running.
  absl::Mutex group_mu_;
  std::vector<PendingWrite*> group_queue_ ABSL_GUARDED_BY(group_mu_);
  bool group_running_ ABSL_GUARDED_BY(group_mu_) = false;

  absl::Mutex readers_mu_;
  std::vector<std::unique_ptr<db::Connection>> idle_readers_ ABSL_GUARDED_BY(readers_mu_);
};

// GetStats' aggregates (migration 4: stats_cells, stats_spend, stats_schools; sqlite_stats.cc).
// The write path keeps them in the transaction that changes a record's typed rows: it reads the
// record's contribution before the rows change and after, and applies the difference.
//
// Which typed tables a record's contribution reads: the kind of its body (a record's kind never
// changes), or kStatsAllKinds when unknown.
enum StatsKinds : int {
  kStatsWell = 1,
  kStatsCataract = 2,
  kStatsClassroom = 4,
  kStatsExpenditure = 8,
  kStatsAllKinds = 15,
};
int StatsKindsOf(const v1::Record& r);
// What one record adds to the aggregates, computed with the indicator SQL of GetStatsByScan
// over that record's current typed rows.
struct RecordStats {
  bool exists = false;  // the record has a records row
  std::string project_id;
  std::string record_date;
  std::vector<int64_t> cell;  // the stats_cells columns after the key ("records" first)
  std::map<std::string, std::pair<int64_t, int64_t>> spend;  // currency: (expenditures, sum)
  std::map<std::string, int64_t> schools;                    // school name: donations
};
absl::StatusOr<RecordStats> ReadRecordStats(db::Connection& db, absl::string_view id, int kinds);
// Applies `after` - `before` (either may be empty: created, deleted); cells, currencies and
// schools left at zero are deleted.
absl::Status ApplyRecordStats(db::Connection& db, const RecordStats& before,
                              const RecordStats& after);
absl::Status BackfillStats(db::Connection& db);

// The change_log columns ReadChangeLogRow reads, in its order, as a SELECT list; `alias`: the
// table's alias in the query ("" for none).
std::string ChangeLogColumns(absl::string_view alias = "");
// The entry of the current row of a SELECT that starts with ChangeLogColumns().
ChangeLogEntry ReadChangeLogRow(const db::Statement& st);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_SQLITE_STORE_H_
