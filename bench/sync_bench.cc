// sync_bench: the sync workload of the performance issue, run with the real client library
// against a real fieldsyncd on loopback.
//
//   build/bench/sync_bench --records 100000            # human-readable table
//   build/bench/sync_bench --records 10000 --json      # plus one RESULT {...} line for bench/run
//
// Phases, each timed alone: N water-point records (~300 bytes as protobuf) created on device A
// (one durable local transaction each, as an app makes them); A pushes them; a fresh device B
// pulls them; A updates 10 % of them (one field each); A pushes the edit; B pulls it. Then the
// latency of a sync with nothing to do and of a sync with one changed record (medians), and
// GetStats over the server's records. Both devices talk to the server through a counting TCP
// proxy on loopback (--proxy=0 to connect directly), so bytes on the wire are everything that
// crosses the connection: HTTP/2 frames and headers, gzip-compressed gRPC messages.
//
// Peak memory is VmHWM from /proc, reset before each phase (clear_refs), for the server process
// and for this process (which holds both client libraries). Server CPU per record is the
// server's user+system time over the phase.
//
// The server's database is on disk with synchronous=FULL, as deployed. The two device stores are
// on tmpfs (--device_dir, default /dev/shm): a device commits every local write with an fsync,
// which on this shared disk would make creating 100,000 records take longer than syncing them,
// and PouchDB's leveldb, the peer, does not fsync at all. What is measured is sync.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/bench_util.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/client.h"
#include "fieldsync/sync/document.h"
#include "bench/wire_counter.h"

namespace fieldsync::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Flags {
  int64_t records = 10000;
  bool proxy = true;
  int latency_runs = 200;
  bool json = false;
  std::string dir;
  std::string synchronous = "FULL";
  std::string db;  // --db: a postgresql:// URL (an empty database) instead of DIR/fieldsync.db
  // Where the two device stores live: tmpfs by default (see the file comment).
  std::string device_dir = "/dev/shm";
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name, std::string* out) {
      std::string prefix = absl::StrCat(name, "=");
      if (a == name && i + 1 < argc) {
        *out = argv[++i];
        return true;
      }
      if (a.rfind(prefix, 0) == 0) {
        *out = a.substr(prefix.size());
        return true;
      }
      return false;
    };
    std::string v;
    if (value("--records", &v)) {
      if (!absl::SimpleAtoi(v, &f->records) || f->records < 10) return false;
    } else if (value("--proxy", &v)) {
      f->proxy = v != "0";
    } else if (value("--latency_runs", &v)) {
      if (!absl::SimpleAtoi(v, &f->latency_runs) || f->latency_runs < 1) return false;
    } else if (value("--dir", &v)) {
      f->dir = v;
    } else if (value("--synchronous", &v)) {
      f->synchronous = v;
    } else if (value("--db", &v)) {
      f->db = v;
    } else if (value("--device_dir", &v)) {
      f->device_dir = v;
    } else if (a == "--json") {
      f->json = true;
    } else {
      return false;
    }
  }
  return true;
}

// One phase's figures.
struct Phase {
  std::string name;
  int64_t records = 0;
  double seconds = 0;
  int64_t wire_bytes = 0;
  int64_t server_peak_kib = -1;
  int64_t client_peak_kib = -1;
  double server_cpu_s = 0;
  double client_cpu_s = 0;
  double records_per_s() const { return seconds > 0 ? records / seconds : 0; }
};

class Bench {
 public:
  explicit Bench(const Flags& flags) : flags_(flags) {}

  int Run() {
    absl::Status s = RunPhases();
    proxy_.reset();
    server_.Stop();
    std::error_code ignored;
    if (flags_.dir.empty() && !dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    if (!device_dir_.empty()) std::filesystem::remove_all(device_dir_, ignored);
    if (!s.ok()) {
      std::fprintf(stderr, "sync_bench: %s\n", s.ToString().c_str());
      return 1;
    }
    Print();
    return 0;
  }

 private:
  absl::Status RunPhases() {
    std::string dir = flags_.dir;
    if (dir.empty()) {
      char tmpl[] = "/tmp/fieldsync-bench-XXXXXX";
      if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
      dir = tmpl;
    }
    dir_ = dir;
    FS_RETURN_IF_ERROR(server_.Start(dir, {"--synchronous", flags_.synchronous}, flags_.db));
    HqSetup hq(server_.address(), server_.admin_token());
    auto partner = hq.CreatePartner("Maji Safi", "KE");
    if (!partner.ok()) return partner.status();
    auto project = hq.CreateProject(*partner, "KE");
    if (!project.ok()) return project.status();
    std::string target = server_.address();
    if (flags_.proxy) {
      proxy_ = std::make_unique<WireCounter>(server_.address());
      FS_RETURN_IF_ERROR(proxy_->Start());
      target = proxy_->address();
    }
    client::ClientOptions options;
    options.call_timeout_ms = 600000;
    auto code_a = hq.EnrollmentCode(*partner, "tablet A");
    auto code_b = hq.EnrollmentCode(*partner, "tablet B");
    if (!code_a.ok()) return code_a.status();
    if (!code_b.ok()) return code_b.status();
    auto code_c = hq.EnrollmentCode(*partner, "tablet C");
    if (!code_c.ok()) return code_c.status();
    std::string devices = absl::StrCat(flags_.device_dir, "/fieldsync-bench-devices-", getpid());
    std::filesystem::create_directories(devices);
    device_dir_ = devices;
    auto a = client::Client::Enroll(target, *code_a, devices + "/device-a.db", options);
    if (!a.ok()) return a.status();
    auto b = client::Client::Enroll(target, *code_b, devices + "/device-b.db", options);
    if (!b.ok()) return b.status();
    client::Client& A = **a;
    client::Client& B = **b;
    FS_RETURN_IF_ERROR(A.Sync().status());  // the devices learn their partner's project
    FS_RETURN_IF_ERROR(B.Sync().status());

    const int64_t n = flags_.records;
    // 1. Create N records on A.
    std::vector<v1::Record> created;
    created.reserve(n);
    int64_t proto_bytes = 0;
    {
      Phase p = Begin("local insert on device A", n);
      for (int64_t i = 0; i < n; ++i) {
        auto saved = A.CreateRecord(WellRecord(*project, i));
        if (!saved.ok()) return saved.status();
        v1::Record clean = *saved;
        sync::ClearOutputOnly(&clean);
        proto_bytes += static_cast<int64_t>(clean.ByteSizeLong());
        created.push_back(*std::move(saved));
      }
      End(p);
    }
    record_bytes_ = static_cast<double>(proto_bytes) / static_cast<double>(n);

    // 2. Push, 3. pull to B.
    FS_RETURN_IF_ERROR(SyncPhases(A, B, n, "push", "pull to fresh device B"));

    // 4. Update 10 %: one field each.
    int64_t edits = 0;
    {
      Phase p = Begin("local update of 10 % on A", n / 10);
      for (int64_t i = 0; i < n; i += 10) {
        v1::Record r = created[i];
        r.mutable_well()->set_population_served(r.well().population_served() + 1);
        auto updated = A.UpdateRecord(r);
        if (!updated.ok()) return updated.status();
        created[i] = *std::move(updated);
        ++edits;
      }
      p.records = edits;
      End(p);
    }
    // 5. Push the edit, 6. pull it to B.
    FS_RETURN_IF_ERROR(SyncPhases(A, B, edits, "push 10 % edit", "pull 10 % edit to B"));

    // Latency: a sync with nothing to do, and a sync carrying one changed record, by device C,
    // which talks to the server directly: a relay on a loaded 2-core machine adds a scheduler
    // wake-up to every packet, which is the relay's latency, not the sync's. (Its wire bytes are
    // counted on A and B, through the relay, over a few rounds.)
    auto c = client::Client::Enroll(server_.address(), *code_c, devices + "/device-c.db", options);
    if (!c.ok()) return c.status();
    client::Client& C = **c;
    FS_RETURN_IF_ERROR(C.Sync().status());  // C catches up (not timed)
    std::vector<double> empty, one_push, one_pull;
    for (int i = 0; i < flags_.latency_runs; ++i) {
      auto t0 = Clock::now();
      FS_RETURN_IF_ERROR(C.Sync().status());
      empty.push_back(Seconds(t0, Clock::now()) * 1000);
    }
    for (int i = 0; i < flags_.latency_runs; ++i) {
      const int64_t k = (i * 7919) % n;
      auto current = C.GetRecord(created[k].id());
      if (!current.ok()) return current.status();
      v1::Record r = *current;
      r.mutable_well()->set_population_served(r.well().population_served() + 1);
      auto updated = C.UpdateRecord(r);
      if (!updated.ok()) return updated.status();
      auto t0 = Clock::now();
      FS_RETURN_IF_ERROR(C.Sync().status());
      one_push.push_back(Seconds(t0, Clock::now()) * 1000);
    }
    // B pulls what C changed, one record at a time: A edits, B's sync is timed.
    int64_t empty_bytes = 0, one_bytes = 0;
    const int wire_runs = std::min(flags_.latency_runs, 10);
    for (int i = 0; i < wire_runs; ++i) {
      ResetCounters();
      FS_RETURN_IF_ERROR(B.Sync().status());
      empty_bytes += Wire();
    }
    FS_RETURN_IF_ERROR(A.Sync().status());  // A learns C's edits
    for (int i = 0; i < flags_.latency_runs; ++i) {
      const int64_t k = (i * 104729 + 13) % n;
      auto current = A.GetRecord(created[k].id());
      if (!current.ok()) return current.status();
      v1::Record r = *current;
      r.mutable_well()->set_population_served(r.well().population_served() + 1);
      auto updated = A.UpdateRecord(r);
      if (!updated.ok()) return updated.status();
      ResetCounters();
      FS_RETURN_IF_ERROR(A.Sync().status());
      if (i < wire_runs) one_bytes += Wire();
      auto t0 = Clock::now();
      FS_RETURN_IF_ERROR(B.Sync().status());
      one_pull.push_back(Seconds(t0, Clock::now()) * 1000);
    }
    FS_RETURN_IF_ERROR(C.Sync().status());
    empty_ms_ = Percentile(empty, 50);
    empty_p95_ms_ = Percentile(empty, 95);
    one_push_ms_ = Percentile(one_push, 50);
    one_push_p95_ms_ = Percentile(one_push, 95);
    one_pull_ms_ = Percentile(one_pull, 50);
    empty_wire_ = static_cast<double>(empty_bytes) / wire_runs;
    one_wire_ = static_cast<double>(one_bytes) / wire_runs;
    auto sc = C.ServerStateChecksum();
    if (!sc.ok()) return sc.status();

    // Convergence check: both devices hold the server's state.
    auto sa = A.ServerStateChecksum();
    auto sb = B.ServerStateChecksum();
    if (!sa.ok()) return sa.status();
    if (!sb.ok()) return sb.status();
    if (*sa != *sb || *sa != *sc) {
      return absl::InternalError("devices A, B and C did not converge");
    }

    // GetStats over everything (as HQ).
    std::vector<double> stats;
    for (int i = 0; i < 5; ++i) {
      v1::GetStatsRequest req;
      v1::GetStatsResponse resp;
      auto t0 = Clock::now();
      grpc::Status s = hq.tracker().GetStats(hq.Ctx().get(), req, &resp);
      if (!s.ok()) return absl::InternalError(absl::StrCat("GetStats: ", s.error_message()));
      stats.push_back(Seconds(t0, Clock::now()) * 1000);
    }
    stats_ms_ = Percentile(stats, 50);
    return absl::OkStatus();
  }

  // A's Sync(): the push phase ends when the client moves on to its pull (of the echo of its
  // own changes, reported separately); then B's Sync() pulls.
  absl::Status SyncPhases(client::Client& A, client::Client& B, int64_t n, const char* push_name,
                          const char* pull_name) {
    Phase push = Begin(push_name, n);
    bool pushed = false;
    Phase echo;
    auto on_progress = [&](const client::SyncProgress& progress) {
      if (!pushed && progress.phase == client::SyncPhase::kPull) {
        pushed = true;
        End(push);
        echo = Begin(absl::StrCat("  (A's pull of its own ", push_name, ")"), n);
      }
    };
    auto done = A.Sync(on_progress);
    if (!done.ok()) return done.status();
    if (done->changes_pushed != n) {
      return absl::InternalError(absl::StrCat(push_name, ": pushed ", done->changes_pushed,
                                              " changes, expected ", n));
    }
    End(echo);
    Phase pull = Begin(pull_name, n);
    auto got = B.Sync();
    if (!got.ok()) return got.status();
    if (got->documents_pulled != n) {
      return absl::InternalError(absl::StrCat(pull_name, ": pulled ", got->documents_pulled,
                                              " documents, expected ", n));
    }
    End(pull);
    return absl::OkStatus();
  }

  void ResetCounters() {
    if (proxy_) proxy_->Reset();
  }
  int64_t Wire() const {
    return proxy_ ? proxy_->total() : 0;
  }

  Phase Begin(std::string name, int64_t records) {
    Phase p;
    p.name = std::move(name);
    p.records = records;
    ResetPeakRss(server_.pid());
    ResetPeakRss(getpid());
    ResetCounters();
    cpu0_ = CpuSeconds(server_.pid());
    client_cpu0_ = CpuSeconds(getpid());
    t0_ = Clock::now();
    return p;
  }
  void End(Phase& p) {
    p.seconds = Seconds(t0_, Clock::now());
    p.wire_bytes = Wire();
    p.server_peak_kib = PeakRssKib(server_.pid());
    p.client_peak_kib = PeakRssKib(getpid());
    p.server_cpu_s = CpuSeconds(server_.pid()) - cpu0_;
    p.client_cpu_s = CpuSeconds(getpid()) - client_cpu0_;
    phases_.push_back(p);
  }

  void Print() const {
    std::printf("fieldsync sync_bench: %s records, server synchronous=%s, devices in %s, %s\n",
                Thousands(flags_.records).c_str(), flags_.synchronous.c_str(),
                flags_.device_dir.c_str(),
                flags_.proxy ? "through a counting proxy" : "direct");
    std::printf("record as protobuf: %.1f bytes (mean)\n\n", record_bytes_);
    std::printf("%-40s %10s %9s %12s %10s %11s %11s %10s %10s\n", "phase", "records/s",
                "seconds", "wire B/rec", "vs proto", "srv us/rec", "cli us/rec", "server MB",
                "client MB");
    for (const Phase& p : phases_) {
      double per = p.records > 0 ? static_cast<double>(p.wire_bytes) / p.records : 0;
      std::printf("%-40s %10s %9.2f %12.1f %10.2f %11.1f %11.1f %10.1f %10.1f\n",
                  p.name.c_str(), Thousands(p.records_per_s()).c_str(), p.seconds, per,
                  record_bytes_ > 0 ? per / record_bytes_ : 0,
                  p.records > 0 ? p.server_cpu_s * 1e6 / p.records : 0,
                  p.records > 0 ? p.client_cpu_s * 1e6 / p.records : 0,
                  p.server_peak_kib / 1024.0, p.client_peak_kib / 1024.0);
    }
    std::printf("\nsync with nothing to do: median %.2f ms, p95 %.2f ms, %.0f wire bytes\n",
                empty_ms_, empty_p95_ms_, empty_wire_);
    std::printf("sync pushing one changed record: median %.2f ms, p95 %.2f ms, %.0f wire bytes\n",
                one_push_ms_, one_push_p95_ms_, one_wire_);
    std::printf("sync pulling one changed record (B, through the relay): median %.2f ms\n",
                one_pull_ms_);
    std::printf("GetStats over %s records: median %.1f ms\n", Thousands(flags_.records).c_str(),
                stats_ms_);
    if (flags_.json) {
      std::vector<std::string> items;
      for (const Phase& p : phases_) {
        items.push_back(absl::StrCat(
            "{\"name\":\"", p.name, "\",\"records\":", p.records, ",\"seconds\":", p.seconds,
            ",\"records_per_s\":", p.records_per_s(), ",\"wire_bytes\":", p.wire_bytes,
            ",\"server_peak_kib\":", p.server_peak_kib, ",\"client_peak_kib\":",
            p.client_peak_kib, ",\"server_cpu_s\":", p.server_cpu_s, ",\"client_cpu_s\":",
            p.client_cpu_s, "}"));
      }
      std::printf(
          "RESULT {\"records\":%lld,\"record_bytes\":%.1f,\"empty_sync_ms\":%.3f,"
          "\"one_change_sync_ms\":%.3f,\"one_change_pull_ms\":%.3f,\"stats_ms\":%.2f,"
          "\"phases\":[%s]}\n",
          static_cast<long long>(flags_.records), record_bytes_, empty_ms_, one_push_ms_,
          one_pull_ms_, stats_ms_, absl::StrJoin(items, ",").c_str());
    }
  }

  const Flags flags_;
  std::string dir_, device_dir_;
  Fieldsyncd server_;
  std::unique_ptr<WireCounter> proxy_;
  std::vector<Phase> phases_;
  Clock::time_point t0_;
  double cpu0_ = 0, client_cpu0_ = 0;
  double record_bytes_ = 0;
  double empty_ms_ = 0, empty_p95_ms_ = 0, one_push_ms_ = 0, one_push_p95_ms_ = 0,
         one_pull_ms_ = 0, empty_wire_ = 0, one_wire_ = 0, stats_ms_ = 0;
};

}  // namespace
}  // namespace fieldsync::bench

int main(int argc, char** argv) {
  fieldsync::bench::Flags flags;
  if (!fieldsync::bench::ParseFlags(argc, argv, &flags)) {
    std::fprintf(stderr,
                 "usage: sync_bench [--records N (>= 10, default 10000)] [--proxy 0|1] "
                 "[--latency_runs N] [--synchronous FULL|NORMAL] [--dir DIR] [--device_dir DIR] "
                 "[--db postgresql://…] "
                 "[--json]\n");
    return 2;
  }
  return fieldsync::bench::Bench(flags).Run();
}
