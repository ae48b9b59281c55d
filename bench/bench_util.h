// Helpers the benchmarks share: a real fieldsyncd on 127.0.0.1 (port picked by the kernel), the
// headquarters setup a sync needs (partner, project, device enrollment), the benchmark's field
// record, and readings of a process from /proc (peak memory, CPU time).
//
//   Fieldsyncd server;
//   FS_RETURN_IF_ERROR(server.Start("/tmp/run", {}));
//   HqSetup hq(server.address(), server.admin_token());
//   FS_ASSIGN_OR_RETURN(std::string partner, hq.CreatePartner("Maji Safi", "KE"));
//
// Nothing here is used by fieldsyncd or the client library; errors are absl::Status like the rest
// of the tree, and the benchmark programs print them and exit non-zero.
#ifndef FIELDSYNC_BENCH_BENCH_UTIL_H_
#define FIELDSYNC_BENCH_BENCH_UTIL_H_

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fieldsync/v1/admin.grpc.pb.h"
#include "fieldsync/v1/domain.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"

namespace fieldsync::bench {

// Path of the fieldsyncd built next to the benchmarks (set by CMake), overridable with the
// environment variable FIELDSYNCD.
std::string FieldsyncdPath();

// A fieldsyncd child process on 127.0.0.1:0 with its database in `dir`. Killed (SIGTERM, then
// SIGKILL) when the object goes away.
class Fieldsyncd {
 public:
  Fieldsyncd() = default;
  ~Fieldsyncd();
  Fieldsyncd(const Fieldsyncd&) = delete;
  Fieldsyncd& operator=(const Fieldsyncd&) = delete;

  // Creates an admin token for `dir`/fieldsync.db (or `db`: a file or a postgresql:// URL),
  // then starts the server with `extra_args` and waits until it listens. Its log goes to
  // `dir`/fieldsyncd.log.
  absl::Status Start(const std::string& dir, const std::vector<std::string>& extra_args,
                     const std::string& db = "");
  // SIGTERM and wait; the exit status as waitpid reports it.
  int Stop();

  const std::string& address() const { return address_; }
  const std::string& admin_token() const { return admin_token_; }
  const std::string& db_path() const { return db_path_; }
  pid_t pid() const { return pid_; }

 private:
  std::string address_, admin_token_, db_path_;
  pid_t pid_ = -1;
};

// The admin calls that prepare a sync: each returns the server's error as a Status.
class HqSetup {
 public:
  HqSetup(const std::string& address, std::string admin_token);
  absl::StatusOr<std::string> CreatePartner(const std::string& name, const std::string& country);
  absl::StatusOr<std::string> CreateProject(const std::string& partner_id,
                                            const std::string& country);
  // Registers a device and returns a one-time enrollment code for it.
  absl::StatusOr<std::string> EnrollmentCode(const std::string& partner_id,
                                             const std::string& name);
  v1::TrackerService::Stub& tracker() { return *tracker_; }
  std::unique_ptr<grpc::ClientContext> Ctx() const;

 private:
  std::string admin_token_;
  std::unique_ptr<v1::TrackerService::Stub> tracker_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

// The benchmark's field record: a water point of about 300 bytes as protobuf (numbers, enums,
// two dates, one quality test, a 100-character note), the same values bench/peers/pouchdb
// writes as JSON. `i` varies the values.
v1::Record WellRecord(const std::string& project_id, int64_t i);

// Peak resident memory (VmHWM) of `pid` in KiB, or -1.
int64_t PeakRssKib(pid_t pid);
// Resets the peak (writes 5 to /proc/<pid>/clear_refs); false if the kernel refused.
bool ResetPeakRss(pid_t pid);
// User + system CPU time of `pid` in seconds, or -1.
double CpuSeconds(pid_t pid);

// The p-th percentile (0..100) of `values` (sorted in place); 0 for none.
double Percentile(std::vector<double>& values, double p);

// "12,345".
std::string Thousands(double value);

}  // namespace fieldsync::bench

#endif  // FIELDSYNC_BENCH_BENCH_UTIL_H_
