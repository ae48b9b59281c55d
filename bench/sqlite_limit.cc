// sqlite_limit: the physical limit a sync server on this disk cannot beat — plain SQLite inserting
// the benchmark's records (id + the ~300-byte protobuf) in one transaction with one prepared
// statement, WAL mode, synchronous=NORMAL and =FULL; and, for scale, one transaction per row.
//
//   build/bench/sqlite_limit --records 100000 [--dir /tmp] [--json]
//
// Deliberately the raw sqlite3 API in a tight loop (no wrapper, no Status), so that the figure
// is SQLite's and the disk's alone.
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "fieldsync/base/ids.h"

namespace fieldsync::bench {
namespace {

struct Row {
  std::string id;
  std::string payload;
};

bool Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite_limit: %s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    return false;
  }
  return true;
}

// Rows per second inserting `rows` into a new database at `path`; `per_row_tx` commits each row
// on its own. -1 on error.
double Insert(const std::string& path, const std::vector<Row>& rows, const char* synchronous,
              bool per_row_tx) {
  unlink(path.c_str());
  unlink((path + "-wal").c_str());
  unlink((path + "-shm").c_str());
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return -1;
  std::string pragmas = absl::StrCat("PRAGMA journal_mode=WAL; PRAGMA synchronous=", synchronous,
                                     "; CREATE TABLE records(id TEXT PRIMARY KEY, payload BLOB "
                                     "NOT NULL)");
  double rate = -1;
  sqlite3_stmt* st = nullptr;
  if (Exec(db, pragmas.c_str()) &&
      sqlite3_prepare_v3(db, "INSERT INTO records(id, payload) VALUES(?, ?)", -1,
                         SQLITE_PREPARE_PERSISTENT, &st, nullptr) == SQLITE_OK) {
    auto t0 = std::chrono::steady_clock::now();
    bool ok = per_row_tx || Exec(db, "BEGIN");
    for (size_t i = 0; ok && i < rows.size(); ++i) {
      if (per_row_tx) ok = Exec(db, "BEGIN");
      sqlite3_bind_text(st, 1, rows[i].id.data(), static_cast<int>(rows[i].id.size()),
                        SQLITE_STATIC);
      sqlite3_bind_blob(st, 2, rows[i].payload.data(), static_cast<int>(rows[i].payload.size()),
                        SQLITE_STATIC);
      ok = ok && sqlite3_step(st) == SQLITE_DONE;
      sqlite3_reset(st);
      if (ok && per_row_tx) ok = Exec(db, "COMMIT");
    }
    if (ok && !per_row_tx) ok = Exec(db, "COMMIT");
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (ok) rate = static_cast<double>(rows.size()) / s;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  unlink(path.c_str());
  unlink((path + "-wal").c_str());
  unlink((path + "-shm").c_str());
  return rate;
}

}  // namespace
}  // namespace fieldsync::bench

int main(int argc, char** argv) {
  using namespace fieldsync::bench;
  int64_t n = 100000;
  int64_t per_row_n = 5000;
  std::string dir = "/tmp";
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--records" && i + 1 < argc && absl::SimpleAtoi(argv[i + 1], &n) && n > 0) {
      ++i;
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "usage: sqlite_limit [--records N] [--dir DIR] [--json]\n");
      return 2;
    }
  }
  std::vector<Row> rows;
  rows.reserve(n);
  std::string project = fieldsync::NewUuidV7();
  for (int64_t i = 0; i < n; ++i) {
    fieldsync::v1::Record r = WellRecord(project, i);
    r.set_id(fieldsync::NewUuidV7());
    rows.push_back(Row{r.id(), r.SerializeAsString()});
  }
  std::vector<Row> few(rows.begin(), rows.begin() + std::min<int64_t>(per_row_n, n));
  std::string path = absl::StrCat(dir, "/fieldsync-sqlite-limit-", getpid(), ".db");
  double normal = Insert(path, rows, "NORMAL", false);
  double full = Insert(path, rows, "FULL", false);
  double row_normal = Insert(path, few, "NORMAL", true);
  double row_full = Insert(path, few, "FULL", true);
  if (normal < 0 || full < 0 || row_normal < 0 || row_full < 0) return 1;
  std::printf("plain SQLite %s, %s rows of %zu bytes (mean id+payload ~%zu), WAL:\n",
              sqlite3_libversion(), Thousands(n).c_str(), rows[0].payload.size(),
              rows[0].id.size() + rows[0].payload.size());
  std::printf("  one transaction, synchronous=NORMAL: %12s rows/s\n", Thousands(normal).c_str());
  std::printf("  one transaction, synchronous=FULL:   %12s rows/s\n", Thousands(full).c_str());
  std::printf("  one transaction per row, NORMAL:     %12s rows/s (%s rows)\n",
              Thousands(row_normal).c_str(), Thousands(few.size()).c_str());
  std::printf("  one transaction per row, FULL:       %12s rows/s (%s rows)\n",
              Thousands(row_full).c_str(), Thousands(few.size()).c_str());
  if (json) {
    std::printf(
        "RESULT {\"records\":%lld,\"one_tx_normal\":%.0f,\"one_tx_full\":%.0f,"
        "\"per_row_normal\":%.0f,\"per_row_full\":%.0f}\n",
        static_cast<long long>(n), normal, full, row_normal, row_full);
  }
  return 0;
}
