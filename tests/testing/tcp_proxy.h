// A TCP proxy on 127.0.0.1 between a client and a server, for tests: it counts the bytes that
// cross it in each direction and injects the faults of a field link — latency, a throttled
// bandwidth, connections cut at chosen or random bytes, and a black hole that forwards nothing
// for a while.
//
//   TcpProxy proxy("127.0.0.1:50051");
//   ASSERT_OK(proxy.Start());
//   // point the client at proxy.address() ...
//   int64_t up = proxy.bytes_to_server(), down = proxy.bytes_to_client();
//   proxy.CutAfter(2000);   // every connection from now on dies after 2000 bytes downstream
//   proxy.SetLatency(absl::Milliseconds(300));              // one way, each direction
//   proxy.SetBandwidth(50'000 / 8, 100'000 / 8);            // EDGE: 50 kbit/s up, 100 down
//   proxy.CutRandomly(0.5, 1, 20000);   // half of the new connections die at a random byte
//   proxy.BlackHoleFor(absl::Seconds(3));                    // nothing crosses for 3 s
//
// Each connection is pumped by one reader and one writer thread per direction: a reader takes
// what arrives and queues it with its release time (arrival + latency); the writer sends it no
// earlier than that, paced to the bandwidth. Up to 256 KiB wait in a direction's queue; beyond
// that the reader stops reading, so TCP's own flow control pushes back on the sender.
// Random choices (which connection is cut, and where) come from one generator seeded with
// SetSeed(), drawn in the order connections are accepted.
#ifndef FIELDSYNC_TESTS_TESTING_TCP_PROXY_H_
#define FIELDSYNC_TESTS_TESTING_TCP_PROXY_H_

#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fieldsync::testing {

class TcpProxy {
 public:
  // `target` is "127.0.0.1:PORT".
  explicit TcpProxy(std::string target) : target_(std::move(target)) {}
  ~TcpProxy();

  absl::Status Start();
  // "127.0.0.1:<port>" to connect to.
  const std::string& address() const { return address_; }

  // Bytes delivered to each side.
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
  // Each connection accepted from now on is, with `probability`, closed once a number of bytes
  // drawn uniformly from [min_bytes, max_bytes] has crossed it in either direction (probability
  // 0: off). Ignored for a connection that CutNextAfter already applies to.
  void CutRandomly(double probability, int64_t min_bytes, int64_t max_bytes);
  // Seeds the generator behind CutRandomly.
  void SetSeed(uint32_t seed);

  // Every chunk is held back `one_way` in either direction before it is forwarded (applies to
  // data read from now on, on every connection). Zero: none.
  void SetLatency(absl::Duration one_way) { latency_ns_ = absl::ToInt64Nanoseconds(one_way); }
  // Bytes per second forwarded towards the server and towards the client (0: unlimited), for
  // every connection (each has its own allowance, as each is its own TCP flow).
  void SetBandwidth(int64_t up_bytes_per_s, int64_t down_bytes_per_s) {
    up_rate_ = up_bytes_per_s;
    down_rate_ = down_bytes_per_s;
  }
  // Black hole: while on, connections are still accepted (and connected to the server), but
  // nothing is forwarded either way on any connection, old or new; what was sent waits in the
  // queues and kernel buffers and flows on once the hole closes, as after a radio blackout that
  // TCP rides out. BlackHoleFor() closes it by itself after `d`.
  void BlackHole(bool on);
  void BlackHoleFor(absl::Duration d);
  bool black_holed() const;

  // Holds everything the connections open right now send towards the server (later ones are
  // not affected) until ReleaseHeld(): a request stuck in the network and delivered late, after
  // the client gave up on it and retried on a new connection.
  void HoldOpenConnectionsUpstream();
  void ReleaseHeld() { ++release_generation_; }

  // Connections cut (by CutAfter, CutNextAfter or CutRandomly), and connections accepted.
  int cuts() const { return cuts_.load(); }
  int connections() const { return connections_.load(); }
  // Closes every open connection now.
  void CutAll();

 private:
  struct Connection;
  void AcceptLoop();
  void Pump(int client, int server, int64_t cut_both);
  void ReadSide(Connection& c, int direction);
  void WriteSide(Connection& c, int direction);

  std::string target_;
  std::string address_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> up_{0}, down_{0}, cut_after_{0}, cut_next_{0};
  std::atomic<int64_t> latency_ns_{0}, up_rate_{0}, down_rate_{0};
  // Steady-clock nanoseconds until which the hole is open; 0: closed, INT64_MAX: until told.
  std::atomic<int64_t> black_hole_until_ns_{0};
  std::atomic<int> cuts_{0}, connections_{0};
  std::atomic<int64_t> release_generation_{0};
  std::vector<Connection*> live_ ABSL_GUARDED_BY(mu_);
  std::thread accept_thread_;
  absl::Mutex random_mu_;
  std::mt19937 rng_ ABSL_GUARDED_BY(random_mu_){1};
  double cut_probability_ ABSL_GUARDED_BY(random_mu_) = 0;
  int64_t cut_min_ ABSL_GUARDED_BY(random_mu_) = 0, cut_max_ ABSL_GUARDED_BY(random_mu_) = 0;
  absl::Mutex mu_;
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
  std::vector<int> open_fds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fieldsync::testing

#endif  // FIELDSYNC_TESTS_TESTING_TCP_PROXY_H_
