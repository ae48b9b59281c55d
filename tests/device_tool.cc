// fieldsync_device_tool: a field device as a separate process, for tests that SIGKILL it.
//
//   fieldsync_device_tool create DB PROJECT_ID   records wells in a loop until killed; after each
//                                                commit prints "created <id> <device_seq>"
//   fieldsync_device_tool sync DB PAGE_SIZE      one Sync(); prints "page <n> <documents>" after
//                                                each pull page is applied, then "done"
//
// Every line is flushed at once, so what the test reads is what the device had committed.
// Exit code 0, or 1 with the error on stderr.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fieldsync/client.h"

namespace {

namespace v1 = ::fieldsync::v1;
using fieldsync::client::Client;
using fieldsync::client::ClientOptions;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "fieldsync_device_tool: %s\n", s.ToString().c_str());
  return 1;
}

v1::Record Well(const std::string& project_id, int i) {
  v1::Record r;
  r.set_project_id(project_id);
  v1::WellRecord* w = r.mutable_well();
  w->set_drilled_depth_m(30 + i % 70);
  w->set_static_water_level_m(9);
  w->set_yield_lph(500 + i % 2000);
  w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
  w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
  w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
  w->set_population_served(50 + i % 950);
  w->set_visit_date("2026-08-03");
  w->set_notes("recorded by a device that may be killed at any moment, #" + std::to_string(i));
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: fieldsync_device_tool create DB PROJECT_ID | sync DB PAGE_SIZE\n");
    return 2;
  }
  const std::string command = argv[1], db = argv[2], arg = argv[3];
  ClientOptions options;
  options.call_timeout_ms = 10000;
  options.retry.initial_backoff_ms = 20;
  options.retry.max_backoff_ms = 300;
  if (command == "sync") options.pull_page_size = std::atoi(arg.c_str());
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Open(db, options);
  if (!client.ok()) return Fail(client.status());
  if (command == "create") {
    for (int i = 0;; ++i) {
      absl::StatusOr<v1::Record> r = (*client)->CreateRecord(Well(arg, i));
      if (!r.ok()) return Fail(r.status());
      absl::StatusOr<fieldsync::client::ClientStatus> st = (*client)->Status();
      std::printf("created %s %lld\n", r->id().c_str(),
                  st.ok() ? static_cast<long long>(st->last_device_seq) : -1LL);
      std::fflush(stdout);
    }
  }
  if (command == "sync") {
    int64_t pages = 0;
    absl::StatusOr<fieldsync::client::SyncProgress> done =
        (*client)->Sync([&](const fieldsync::client::SyncProgress& p) {
          if (p.pages > pages) {
            pages = p.pages;
            std::printf("page %lld %lld\n", static_cast<long long>(p.pages),
                        static_cast<long long>(p.documents_pulled));
            std::fflush(stdout);
          }
        });
    if (!done.ok()) return Fail(done.status());
    std::printf("done %lld %s\n", static_cast<long long>(done->documents_pulled),
                done->repaired ? "repaired" : "clean");
    std::fflush(stdout);
    return 0;
  }
  std::fprintf(stderr, "fieldsync_device_tool: unknown command %s\n", command.c_str());
  return 2;
}
