// A TCP proxy on 127.0.0.1 between a client and a server, for tests: it counts the bytes that
// cross it in each direction and can cut connections, to measure what a sync costs on the wire
// and to break links at chosen points.
//
//   TcpProxy proxy("127.0.0.1:50051");
//   ASSERT_OK(proxy.Start());
//   // point the client at proxy.address() ...
//   int64_t up = proxy.bytes_to_server(), down = proxy.bytes_to_client();
//   proxy.CutAfter(2000);   // every connection from now on dies after 2000 bytes downstream
#ifndef FIELDSYNC_TESTS_TESTING_TCP_PROXY_H_
#define FIELDSYNC_TESTS_TESTING_TCP_PROXY_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace fieldsync::testing {

class TcpProxy {
 public:
  // `target` is "127.0.0.1:PORT".
  explicit TcpProxy(std::string target) : target_(std::move(target)) {}
  ~TcpProxy();

  absl::Status Start();
  // "127.0.0.1:<port>" to connect to.
  const std::string& address() const { return address_; }

  int64_t bytes_to_server() const { return up_.load(); }
  int64_t bytes_to_client() const { return down_.load(); }
  void ResetCounters() {
    up_ = 0;
    down_ = 0;
  }
  // Connections accepted from now on are closed after `bytes` bytes have gone to the client
  // (0: never).
  void CutAfter(int64_t bytes) { cut_after_ = bytes; }
  // The next connection accepted (only that one) is closed once `bytes` bytes have crossed it
  // in either direction; later connections are left alone. For "the link dropped at byte N".
  void CutNextAfter(int64_t bytes) { cut_next_ = bytes; }
  // Connections that were cut by CutAfter/CutNextAfter, and connections accepted.
  int cuts() const { return cuts_.load(); }
  int connections() const { return connections_.load(); }
  // Closes every open connection now.
  void CutAll();

 private:
  void AcceptLoop();
  void Pump(int client, int server);

  std::string target_;
  std::string address_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> up_{0}, down_{0}, cut_after_{0}, cut_next_{0};
  std::atomic<int> cuts_{0}, connections_{0};
  std::thread accept_thread_;
  absl::Mutex mu_;
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
  std::vector<int> open_fds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fieldsync::testing

#endif  // FIELDSYNC_TESTS_TESTING_TCP_PROXY_H_
