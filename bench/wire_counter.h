// WireCounter: a TCP relay on 127.0.0.1 that counts the bytes crossing it each way — what a sync
// costs on the wire (HTTP/2 frames, headers, compressed messages: everything). One thread per
// connection relays both directions with poll(); no delay, no shaping, so it adds as little as
// a relay can. Loopback targets only.
//
//   WireCounter wire("127.0.0.1:50051");
//   FS_RETURN_IF_ERROR(wire.Start());          // clients connect to wire.address()
//   wire.Reset(); ...; int64_t bytes = wire.total();
#ifndef FIELDSYNC_BENCH_WIRE_COUNTER_H_
#define FIELDSYNC_BENCH_WIRE_COUNTER_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace fieldsync::bench {

class WireCounter {
 public:
  explicit WireCounter(std::string target) : target_(std::move(target)) {}
  ~WireCounter();
  WireCounter(const WireCounter&) = delete;
  WireCounter& operator=(const WireCounter&) = delete;

  absl::Status Start();
  // "127.0.0.1:<port>".
  const std::string& address() const { return address_; }
  int64_t to_server() const { return up_.load(); }
  int64_t to_client() const { return down_.load(); }
  int64_t total() const { return up_.load() + down_.load(); }
  void Reset() {
    up_ = 0;
    down_ = 0;
  }

 private:
  void AcceptLoop();
  void Relay(int client, int server);

  std::string target_;
  std::string address_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> up_{0}, down_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> relays_;
  std::vector<int> open_fds_;
};

}  // namespace fieldsync::bench

#endif  // FIELDSYNC_BENCH_WIRE_COUNTER_H_
