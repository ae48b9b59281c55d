// load_gen: many devices syncing small batches at once against one fieldsyncd.
//
//   build/bench/load_gen --devices 500 --seconds 30 --think_ms 1000 [--json]
//
// Setup: --partners partners with one well project each, --devices devices spread over them,
// each enrolled (AdminService.CreateDevice, CreateEnrollment, SyncService.Enroll) and synced once.
// Then every device runs, for --seconds, the loop a field app runs: a sync round of Handshake,
// Push of 1..--max_batch new records (as the client library encodes them: one change per record,
// every field with the device's hybrid logical clock), Pull to the last page (which brings the
// records its partner's other devices pushed), then a pause uniform in [0, 2 × --think_ms]
// (0: the next round at once, a closed loop). One thread per device, blocking gRPC calls over
// --channels shared HTTP/2 connections; each device has its own token and device_seq.
//
// Reports: rounds and records per second, p50/p95/p99/max round latency (Handshake to last
// page), errors by gRPC code, the server's CPU (user+system, % of one core) and peak memory.
// The devices speak the wire protocol directly (no local SQLite), so the 2 cores go to the
// server rather than to 500 device databases.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/bench_util.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/sync/hlc.h"
#include "fieldsync/v1/sync.grpc.pb.h"

namespace fieldsync::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  int devices = 500;
  int partners = 25;
  int seconds = 30;
  int think_ms = 1000;
  int max_batch = 10;
  int channels = 50;
  bool json = false;
  std::string synchronous = "FULL";
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") {
      f->json = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    std::string v = argv[++i];
    int* target = a == "--devices"     ? &f->devices
                  : a == "--partners"  ? &f->partners
                  : a == "--seconds"   ? &f->seconds
                  : a == "--think_ms"  ? &f->think_ms
                  : a == "--max_batch" ? &f->max_batch
                  : a == "--channels"  ? &f->channels
                                       : nullptr;
    if (a == "--synchronous") {
      f->synchronous = v;
      continue;
    }
    if (target == nullptr || !absl::SimpleAtoi(v, target) || *target < 0) return false;
  }
  return f->devices > 0 && f->partners > 0 && f->max_batch > 0 && f->channels > 0;
}

// One simulated device.
struct Device {
  std::string id;
  std::string token;
  std::string project_id;
  std::shared_ptr<grpc::Channel> channel;
  int64_t device_seq = 0;
  std::string cursor;
  sync::HlcClock clock{"x"};
};

// What all device threads add up.
struct Totals {
  std::mutex mu;
  std::vector<double> latencies_ms;
  // Per call of the round: Handshake, Push (rounds with a batch), Pull.
  std::vector<double> call_ms[3];
  std::map<std::string, int64_t> errors;
  int64_t rounds = 0;
  int64_t records = 0;
  int64_t pulled = 0;
};

void Prepare(grpc::ClientContext& ctx, const std::string& token) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
}

// One sync round; the failing RPC's name and status code on error ("" when fine). `call_ms`,
// when given, gets each call's milliseconds (Handshake, Push, Pull; -1 for a Push not made).
std::string SyncRound(Device& d, v1::SyncService::Stub& stub, int batch, int64_t record_no,
                      int64_t* pulled, double* call_ms = nullptr) {
  auto since = [](Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };
  auto t = Clock::now();
  double ignored[3];
  if (call_ms == nullptr) call_ms = ignored;
  call_ms[1] = -1;
  {
    v1::HandshakeRequest req;
    req.set_protocol_version(v1::PROTOCOL_VERSION_1);
    req.set_device_time_ms(sync::SystemClockMs());
    req.set_device_hlc(d.clock.last().Encode());
    v1::HandshakeResponse resp;
    grpc::ClientContext ctx;
    Prepare(ctx, d.token);
    grpc::Status s = stub.Handshake(&ctx, req, &resp);
    if (!s.ok()) return absl::StrCat("Handshake ", s.error_code(), " ", s.error_message());
    if (auto h = sync::Hlc::Decode(resp.server_hlc()); h.ok()) d.clock.Observe(*h);
    // After a lost Push response the server is ahead: continue from its count.
    d.device_seq = std::max(d.device_seq, resp.acked_device_seq());
    call_ms[0] = since(t);
  }
  if (batch > 0) {
    v1::PushRequest req;
    for (int i = 0; i < batch; ++i) {
      v1::Record r = WellRecord(d.project_id, record_no + i);
      r.set_id(NewUuidV7());
      v1::Change* c = req.add_changes();
      c->set_device_seq(d.device_seq + 1 + i);
      c->set_collection("record");
      c->set_doc_id(r.id());
      c->set_hlc(d.clock.Now().Encode());
      for (const auto& [path, value] : sync::Flatten(r)) {
        v1::FieldChange* f = c->add_fields();
        f->set_path(path);
        f->set_value(value);
      }
    }
    v1::PushResponse resp;
    grpc::ClientContext ctx;
    Prepare(ctx, d.token);
    t = Clock::now();
    grpc::Status s = stub.Push(&ctx, req, &resp);
    call_ms[1] = since(t);
    if (!s.ok()) return absl::StrCat("Push ", s.error_code(), " ", s.error_message());
    if (resp.acked_device_seq() != d.device_seq + batch) {
      return absl::StrCat("Push acked ", resp.acked_device_seq(), ", expected ",
                          d.device_seq + batch);
    }
    d.device_seq += batch;
    if (auto h = sync::Hlc::Decode(resp.server_hlc()); h.ok()) d.clock.Observe(*h);
  }
  v1::PullRequest req;
  req.set_cursor(d.cursor);
  req.set_page_size(500);
  grpc::ClientContext ctx;
  Prepare(ctx, d.token);
  t = Clock::now();
  auto reader = stub.Pull(&ctx, req);
  v1::PullPage page;
  bool last = false;
  while (reader->Read(&page)) {
    *pulled += page.documents_size();
    d.cursor = page.cursor();
    if (page.last()) last = true;
  }
  grpc::Status s = reader->Finish();
  call_ms[2] = since(t);
  if (!s.ok()) return absl::StrCat("Pull ", s.error_code(), " ", s.error_message());
  if (!last) return "Pull ended before its last page";
  return "";
}

int Run(const Flags& flags) {
  char tmpl[] = "/tmp/fieldsync-load-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  std::string dir = tmpl;
  int rc = 0;
  {
    Fieldsyncd server;
    absl::Status started = server.Start(dir, {"--synchronous", flags.synchronous});
    if (!started.ok()) {
      std::fprintf(stderr, "load_gen: %s\n", started.ToString().c_str());
      return 1;
    }
    HqSetup hq(server.address(), server.admin_token());
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    for (int i = 0; i < flags.channels; ++i) {
      grpc::ChannelArguments args;
      // Distinct connections: channels with equal arguments would share one.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("fieldsync.bench.channel", i);
      channels.push_back(grpc::CreateCustomChannel(server.address(),
                                                   grpc::InsecureChannelCredentials(), args));
    }
    // Partners, projects, devices.
    std::vector<std::string> projects;
    std::vector<std::string> partners;
    for (int p = 0; p < flags.partners; ++p) {
      auto partner = hq.CreatePartner(absl::StrCat("Partner ", p), "KE");
      if (!partner.ok()) {
        std::fprintf(stderr, "load_gen: %s\n", partner.status().ToString().c_str());
        return 1;
      }
      auto project = hq.CreateProject(*partner, "KE");
      if (!project.ok()) {
        std::fprintf(stderr, "load_gen: %s\n", project.status().ToString().c_str());
        return 1;
      }
      partners.push_back(*partner);
      projects.push_back(*project);
    }
    auto t_enroll = Clock::now();
    std::vector<std::unique_ptr<Device>> devices(flags.devices);
    std::atomic<int> next{0}, enroll_errors{0};
    std::vector<std::thread> enrollers;
    for (int t = 0; t < 8; ++t) {
      enrollers.emplace_back([&] {
        HqSetup own(server.address(), server.admin_token());
        for (int i = next++; i < flags.devices; i = next++) {
          auto d = std::make_unique<Device>();
          int p = i % flags.partners;
          d->project_id = projects[p];
          d->channel = channels[i % channels.size()];
          auto code = own.EnrollmentCode(partners[p], absl::StrCat("device ", i));
          if (!code.ok()) {
            ++enroll_errors;
            continue;
          }
          auto stub = v1::SyncService::NewStub(d->channel);
          v1::EnrollRequest req;
          req.set_code(*code);
          v1::EnrollResponse resp;
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
          if (!stub->Enroll(&ctx, req, &resp).ok()) {
            ++enroll_errors;
            continue;
          }
          d->id = resp.device_id();
          d->token = resp.token();
          d->clock = sync::HlcClock(d->id);
          int64_t pulled = 0;
          if (!SyncRound(*d, *stub, 0, 0, &pulled).empty()) {
            ++enroll_errors;
            continue;
          }
          devices[i] = std::move(d);
        }
      });
    }
    for (std::thread& t : enrollers) t.join();
    double enroll_s = std::chrono::duration<double>(Clock::now() - t_enroll).count();
    if (enroll_errors > 0) {
      std::fprintf(stderr, "load_gen: %d devices failed to enroll\n", enroll_errors.load());
      return 1;
    }

    // The measured window.
    Totals totals;
    std::atomic<bool> stop{false};
    ResetPeakRss(server.pid());
    double cpu0 = CpuSeconds(server.pid());
    auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int i = 0; i < flags.devices; ++i) {
      threads.emplace_back([&, i] {
        Device& d = *devices[i];
        auto stub = v1::SyncService::NewStub(d.channel);
        std::mt19937_64 rng(i * 7919 + 1);
        std::vector<double> mine, mine_calls[3];
        std::map<std::string, int64_t> errors;
        int64_t rounds = 0, records = 0, pulled = 0;
        int64_t record_no = static_cast<int64_t>(i) * 1000000;
        // Pauses end early when the window closes, so the window's rates are not diluted by
        // devices sleeping past its end.
        auto pause = [&](int ms) {
          auto until = Clock::now() + std::chrono::milliseconds(ms);
          while (!stop.load() && Clock::now() < until) {
            std::this_thread::sleep_for(std::min<Clock::duration>(
                until - Clock::now(), std::chrono::milliseconds(50)));
          }
        };
        // Devices start spread over one think time, as a network does.
        if (flags.think_ms > 0) pause(std::uniform_int_distribution<int>(0, flags.think_ms)(rng));
        while (!stop.load()) {
          int batch = std::uniform_int_distribution<int>(1, flags.max_batch)(rng);
          auto start = Clock::now();
          double call_ms[3];
          std::string error = SyncRound(d, *stub, batch, record_no, &pulled, call_ms);
          double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
          if (!error.empty()) {
            ++errors[error.substr(0, 60)];
            // A failed push leaves device_seq unacknowledged; learn it again next round.
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
          }
          record_no += batch;
          ++rounds;
          records += batch;
          mine.push_back(ms);
          for (int c = 0; c < 3; ++c) {
            if (call_ms[c] >= 0) mine_calls[c].push_back(call_ms[c]);
          }
          if (flags.think_ms > 0) {
            pause(std::uniform_int_distribution<int>(0, 2 * flags.think_ms)(rng));
          }
        }
        std::lock_guard<std::mutex> lock(totals.mu);
        totals.latencies_ms.insert(totals.latencies_ms.end(), mine.begin(), mine.end());
        for (int c = 0; c < 3; ++c) {
          totals.call_ms[c].insert(totals.call_ms[c].end(), mine_calls[c].begin(),
                                   mine_calls[c].end());
        }
        for (auto& [k, v] : errors) totals.errors[k] += v;
        totals.rounds += rounds;
        totals.records += records;
        totals.pulled += pulled;
      });
    }
    std::this_thread::sleep_for(std::chrono::seconds(flags.seconds));
    stop = true;
    for (std::thread& t : threads) t.join();
    double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    double cpu = CpuSeconds(server.pid()) - cpu0;
    int64_t peak_kib = PeakRssKib(server.pid());
    int64_t errors = 0;
    for (auto& [k, v] : totals.errors) errors += v;
    double p50 = Percentile(totals.latencies_ms, 50), p95 = Percentile(totals.latencies_ms, 95),
           p99 = Percentile(totals.latencies_ms, 99), max = Percentile(totals.latencies_ms, 100);
    std::printf("fieldsync load_gen: %d devices over %d partners, %d s, think %d ms (mean), "
                "batches 1..%d records, %d connections, synchronous=%s\n",
                flags.devices, flags.partners, flags.seconds, flags.think_ms, flags.max_batch,
                flags.channels, flags.synchronous.c_str());
    std::printf("  enrollment of %d devices: %.1f s\n", flags.devices, enroll_s);
    std::printf("  sync rounds: %s (%s/s), records pushed: %s (%s/s), documents pulled: %s\n",
                Thousands(totals.rounds).c_str(), Thousands(totals.rounds / wall).c_str(),
                Thousands(totals.records).c_str(), Thousands(totals.records / wall).c_str(),
                Thousands(totals.pulled).c_str());
    std::printf("  round latency: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms\n", p50, p95,
                p99, max);
    std::printf("  per call p50 / p99: Handshake %.1f / %.1f ms, Push %.1f / %.1f ms, "
                "Pull %.1f / %.1f ms\n",
                Percentile(totals.call_ms[0], 50), Percentile(totals.call_ms[0], 99),
                Percentile(totals.call_ms[1], 50), Percentile(totals.call_ms[1], 99),
                Percentile(totals.call_ms[2], 50), Percentile(totals.call_ms[2], 99));
    std::printf("  errors: %lld\n", static_cast<long long>(errors));
    for (auto& [k, v] : totals.errors) {
      std::printf("    %6lld  %s\n", static_cast<long long>(v), k.c_str());
    }
    std::printf("  server CPU: %.0f %% of one core (%.1f s over %.1f s); peak memory %.1f MB\n",
                100 * cpu / wall, cpu, wall, peak_kib / 1024.0);
    if (flags.json) {
      std::printf(
          "RESULT {\"devices\":%d,\"seconds\":%.1f,\"think_ms\":%d,\"rounds\":%lld,"
          "\"rounds_per_s\":%.1f,\"records_per_s\":%.1f,\"p50_ms\":%.2f,\"p95_ms\":%.2f,"
          "\"p99_ms\":%.2f,\"max_ms\":%.2f,\"errors\":%lld,\"server_cpu_pct\":%.1f,"
          "\"server_peak_kib\":%lld}\n",
          flags.devices, wall, flags.think_ms, static_cast<long long>(totals.rounds),
          totals.rounds / wall, totals.records / wall, p50, p95, p99, max,
          static_cast<long long>(errors), 100 * cpu / wall, static_cast<long long>(peak_kib));
    }
    rc = errors == 0 ? 0 : 3;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return rc;
}

}  // namespace
}  // namespace fieldsync::bench

int main(int argc, char** argv) {
  fieldsync::bench::Flags flags;
  if (!fieldsync::bench::ParseFlags(argc, argv, &flags)) {
    std::fprintf(stderr,
                 "usage: load_gen [--devices 500] [--partners 25] [--seconds 30] "
                 "[--think_ms 1000] [--max_batch 10] [--channels 50] "
                 "[--synchronous FULL|NORMAL] [--json]\n");
    return 2;
  }
  return fieldsync::bench::Run(flags);
}
