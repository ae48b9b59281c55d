#include "tests/testing/device_checks.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "fieldsync/base/ids.h"
#include "tests/testing/server_process.h"
#include "tests/testing/test_db.h"

namespace fieldsync::testing {

namespace {

// Runs `sql` with `?1` replaced by `param` quoted (ids and names of tests, no quotes in them)
// read-only on `db_path` (a SQLite file or a postgresql:// URL, tests/testing/test_db.h); the
// first column of each row as bytes.
std::vector<std::string> QueryColumn(const std::string& db_path, std::string sql,
                                     const std::string& param) {
  std::vector<std::string> out;
  if (size_t at = sql.find("?1"); at != std::string::npos) sql.replace(at, 2, "'" + param + "'");
  absl::StatusOr<std::vector<SqlRow>> rows = QueryRows(db_path, sql);
  if (!rows.ok()) {
    ADD_FAILURE() << rows.status();
    return out;
  }
  for (const SqlRow& row : *rows) out.push_back(row.empty() ? "" : row[0].value_or(""));
  return out;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }  // ids are UUIDs

}  // namespace

std::vector<std::string> LocalDocuments(client::Client& device) {
  std::vector<std::string> out;
  v1::ListRecordsRequest req;
  req.set_page_size(1000);
  for (;;) {
    absl::StatusOr<v1::ListRecordsResponse> page = device.ListRecords(req);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    for (const v1::Record& r : page->records()) out.push_back(r.SerializeAsString());
    if (page->next_page_token().empty()) break;
    req.set_page_token(page->next_page_token());
  }
  absl::StatusOr<v1::ListProjectsResponse> projects = device.ListProjects({});
  EXPECT_TRUE(projects.ok()) << projects.status();
  if (projects.ok()) {
    for (const v1::Project& p : projects->projects()) out.push_back(p.SerializeAsString());
  }
  absl::StatusOr<v1::ListSitesResponse> sites = device.ListSites({});
  EXPECT_TRUE(sites.ok()) << sites.status();
  if (sites.ok()) {
    for (const v1::Site& s : sites->sites()) out.push_back(s.SerializeAsString());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ServerScopeChecksum(const std::string& server_db, const std::string& partner_id) {
  std::vector<std::string> digest = QueryColumn(
      server_db, "SELECT digest FROM scope_checksums WHERE partner_id = ?1", partner_id);
  return digest.empty() ? "" : HexEncode(digest.front());
}

std::string IntegrityCheck(const std::string& db_path) {
  std::string out;
  for (const std::string& row : QueryColumn(db_path, "PRAGMA integrity_check", "")) {
    out += (out.empty() ? "" : "; ") + row;
  }
  return out;
}

void ExpectConverged(const std::string& server_db, const std::string& partner_id,
                     const std::vector<client::Client*>& devices) {
  const std::string server = ServerScopeChecksum(server_db, partner_id);
  EXPECT_FALSE(server.empty()) << "no scope checksum for partner " << partner_id;
  const int64_t server_records = QueryInt(
      server_db, "SELECT COUNT(*) FROM records r JOIN projects p ON p.id = r.project_id "
                 "WHERE p.partner_id = " + Quote(partner_id));
  std::vector<std::string> reference;
  for (size_t i = 0; i < devices.size(); ++i) {
    SCOPED_TRACE("device #" + std::to_string(i));
    absl::StatusOr<std::string> checksum = devices[i]->ServerStateChecksum();
    ASSERT_TRUE(checksum.ok()) << checksum.status();
    EXPECT_EQ(*checksum, server) << "the device's copy differs from the server's scope";
    absl::StatusOr<client::ClientStatus> st = devices[i]->Status();
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_EQ(st->pending_changes, 0);
    EXPECT_EQ(st->acked_device_seq, st->last_device_seq);
    EXPECT_EQ(st->records, server_records);
    std::vector<std::string> docs = LocalDocuments(*devices[i]);
    if (i == 0) {
      reference = std::move(docs);
    } else {
      EXPECT_TRUE(docs == reference) << "documents differ from device #0's (" << docs.size()
                                     << " vs " << reference.size() << ")";
    }
  }
}

int ExpectExactlyOnce(const std::string& server_db, const std::string& device_id,
                      const std::vector<std::string>& created, int64_t last_device_seq) {
  int problems = 0;
  for (const std::string& id : created) {
    int64_t rows = QueryInt(server_db, "SELECT COUNT(*) FROM records WHERE id = " + Quote(id));
    int64_t creates = QueryInt(server_db,
                               "SELECT COUNT(*) FROM change_log WHERE collection = 'record' "
                               "AND op = 'create' AND doc_id = " + Quote(id));
    if (rows != 1 || creates != 1) {
      if (++problems <= 10) {
        ADD_FAILURE() << "record " << id << ": " << rows << " row(s) in records, " << creates
                      << " create(s) in change_log (want 1 and 1)";
      }
    }
  }
  const std::string of_device = " FROM change_log WHERE device_id = " + Quote(device_id);
  int64_t rows = QueryInt(server_db, "SELECT COUNT(*)" + of_device);
  int64_t distinct = QueryInt(server_db, "SELECT COUNT(DISTINCT device_seq)" + of_device);
  int64_t hi = QueryInt(server_db, "SELECT COALESCE(MAX(device_seq), 0)" + of_device);
  if (rows != distinct) {
    ++problems;
    ADD_FAILURE() << "device " << device_id << ": a device_seq logged twice (" << rows
                  << " rows, " << distinct << " distinct)";
  }
  if (hi != rows || hi != last_device_seq) {
    ++problems;
    ADD_FAILURE() << "device " << device_id << ": change_log holds " << rows
                  << " changes up to device_seq " << hi << ", the device wrote "
                  << last_device_seq;
  }
  return problems;
}

}  // namespace fieldsync::testing
