// SqliteStore: the Store on one embedded SQLite file in WAL mode. The pilot's default.
//
//   FS_ASSIGN_OR_RETURN(std::unique_ptr<SqliteStore> store,
//                       SqliteStore::Open({.path = "data/fieldsync.db"}));
//
// Thread rule: one writer connection behind a mutex (SQLite has one writer anyway) and a small
// pool of reader connections; WAL lets the readers run while the writer commits. Every write is
// one IMMEDIATE transaction with synchronous=FULL, so an OK means it survives a power cut.
#ifndef FIELDSYNC_SERVER_SQLITE_STORE_H_
#define FIELDSYNC_SERVER_SQLITE_STORE_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "fieldsync/sync/sqlite.h"
#include "server/store.h"

namespace fieldsync::server {

class SqliteStore : public Store {
 public:
  struct Options {
    // Database file; created (mode 0600) and migrated if needed. Its folder must exist.
    std::string path;
    // PRAGMA synchronous of the writer: "FULL" (default; durable across power loss) or
    // "NORMAL" (durable across a process crash only; for tests and bulk loads).
    std::string synchronous = "FULL";
    // Reader connections. Default 4.
    int readers = 4;
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

  absl::Status RunInTransaction(const std::function<absl::Status()>& fn) override;

  absl::StatusOr<std::vector<ChangeLogEntry>> ReadChangeLog(int64_t after_seq,
                                                            int limit) override;

 private:
  class ReaderLease;
  using WriteFn = std::function<absl::Status(sqlite::Database&)>;
  using ReadFn = std::function<absl::Status(sqlite::Database&)>;

  explicit SqliteStore(std::unique_ptr<sqlite::Database> writer);

  // Runs `fn` on the writer connection in its own transaction, or inside the caller's
  // RunInTransaction (under a savepoint, so a failed write leaves nothing behind).
  absl::Status Write(const WriteFn& fn);
  // Runs `fn` on a reader connection.
  absl::Status Read(const ReadFn& fn);

  std::unique_ptr<sqlite::Database> writer_;
  absl::Mutex writer_mu_;
  std::atomic<std::thread::id> tx_owner_{};

  absl::Mutex readers_mu_;
  std::vector<std::unique_ptr<sqlite::Database>> idle_readers_ ABSL_GUARDED_BY(readers_mu_);
};

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_SQLITE_STORE_H_
