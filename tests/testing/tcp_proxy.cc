#include "tests/testing/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fieldsync::testing {

namespace {

// Bytes a direction may hold queued before its reader stops reading.
constexpr int64_t kMaxQueued = 256 << 10;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SleepNs(int64_t ns) {
  if (ns > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
}

int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

// One proxied connection. Direction 0 is client -> server, 1 is server -> client.
struct TcpProxy::Connection {
  struct Chunk {
    int64_t release_ns = 0;
    std::string data;
    bool end = false;  // close the connection once everything before it is delivered
  };

  int fd[2] = {-1, -1};  // client, server
  int64_t cut_down = 0;  // CutAfter: bytes towards the client
  int64_t cut_both = 0;  // CutNextAfter / CutRandomly: bytes either way
  std::atomic<int64_t> down_read{0}, both_read{0};
  std::atomic<bool> closed{false}, cut_counted{false};
  // Upstream held until the proxy's release generation passes this value (-1: not held).
  std::atomic<int64_t> held_until_release{-1};

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Chunk> queue[2];
  int64_t queued[2] = {0, 0};

  void Close() {
    closed = true;
    shutdown(fd[0], SHUT_RDWR);
    shutdown(fd[1], SHUT_RDWR);
    cv.notify_all();
  }
};

TcpProxy::~TcpProxy() {
  stop_ = true;
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  CutAll();
  std::vector<std::thread> pumps;
  {
    absl::MutexLock lock(&mu_);
    pumps.swap(pumps_);
  }
  for (std::thread& t : pumps) t.join();
}

absl::Status TcpProxy::Start() {
  // Only loopback targets: tests never send traffic anywhere else.
  if (target_.rfind("127.0.0.1:", 0) != 0) {
    return absl::InvalidArgumentError("TcpProxy targets 127.0.0.1 only");
  }
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 64) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError("TcpProxy: cannot listen on 127.0.0.1");
  }
  address_ = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void TcpProxy::CutRandomly(double probability, int64_t min_bytes, int64_t max_bytes) {
  absl::MutexLock lock(&random_mu_);
  cut_probability_ = probability;
  cut_min_ = std::max<int64_t>(1, min_bytes);
  cut_max_ = std::max(cut_min_, max_bytes);
}

void TcpProxy::SetSeed(uint32_t seed) {
  absl::MutexLock lock(&random_mu_);
  rng_.seed(seed);
}

void TcpProxy::BlackHole(bool on) {
  black_hole_until_ns_ = on ? std::numeric_limits<int64_t>::max() : 0;
}

void TcpProxy::BlackHoleFor(absl::Duration d) {
  black_hole_until_ns_ = NowNs() + absl::ToInt64Nanoseconds(d);
}

bool TcpProxy::black_holed() const {
  int64_t until = black_hole_until_ns_.load();
  return until != 0 && NowNs() < until;
}

void TcpProxy::HoldOpenConnectionsUpstream() {
  absl::MutexLock lock(&mu_);
  for (Connection* c : live_) c->held_until_release = release_generation_.load();
}

void TcpProxy::AcceptLoop() {
  int port = 0;
  if (!absl::SimpleAtoi(target_.substr(target_.rfind(':') + 1), &port)) return;
  while (!stop_) {
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (stop_) return;
      continue;
    }
    ++connections_;
    int64_t cut_both = cut_next_.exchange(0);
    {
      // Drawn for every connection, in accept order, so that a seed replays the same cuts.
      absl::MutexLock lock(&random_mu_);
      double roll = std::uniform_real_distribution<double>(0, 1)(rng_);
      int64_t at = std::uniform_int_distribution<int64_t>(cut_min_, std::max(cut_min_, cut_max_))(rng_);
      if (cut_both == 0 && cut_probability_ > 0 && roll < cut_probability_) cut_both = at;
    }
    int server = ConnectLoopback(port);
    if (server < 0) {
      close(client);
      continue;
    }
    absl::MutexLock lock(&mu_);
    open_fds_.push_back(client);
    open_fds_.push_back(server);
    pumps_.emplace_back([this, client, server, cut_both] { Pump(client, server, cut_both); });
  }
}

void TcpProxy::Pump(int client, int server, int64_t cut_both) {
  Connection c;
  c.fd[0] = client;
  c.fd[1] = server;
  c.cut_down = cut_after_.load();
  c.cut_both = cut_both;
  {
    absl::MutexLock lock(&mu_);
    live_.push_back(&c);
  }
  {
    std::thread read_up([&] { ReadSide(c, 0); });
    std::thread read_down([&] { ReadSide(c, 1); });
    std::thread write_up([&] { WriteSide(c, 0); });
    std::thread write_down([&] { WriteSide(c, 1); });
    read_up.join();
    read_down.join();
    write_up.join();
    write_down.join();
  }
  c.Close();
  {
    absl::MutexLock lock(&mu_);
    live_.erase(std::find(live_.begin(), live_.end(), &c));
  }
  if (std::getenv("FIELDSYNC_PROXY_DEBUG") != nullptr) {
    std::fprintf(stderr, "proxy: connection closed after %lld bytes read (%lld towards the "
                 "client)%s\n", static_cast<long long>(c.both_read.load()),
                 static_cast<long long>(c.down_read.load()), c.cut_counted ? ", cut" : "");
  }
  absl::MutexLock lock(&mu_);
  for (int fd : {client, server}) {
    auto it = std::find(open_fds_.begin(), open_fds_.end(), fd);
    if (it != open_fds_.end()) {
      open_fds_.erase(it);
      close(fd);
    }
  }
}

void TcpProxy::ReadSide(Connection& c, int direction) {
  const int src = c.fd[direction];
  char buf[16384];
  auto enqueue = [&](std::string data, bool end) {
    std::lock_guard<std::mutex> lock(c.mu);
    Connection::Chunk chunk;
    chunk.release_ns = NowNs() + latency_ns_.load();
    chunk.data = std::move(data);
    chunk.end = end;
    c.queued[direction] += static_cast<int64_t>(chunk.data.size());
    c.queue[direction].push_back(std::move(chunk));
    c.cv.notify_all();
  };
  while (!stop_ && !c.closed) {
    if (black_holed()) {
      SleepNs(5'000'000);
      continue;
    }
    {
      std::unique_lock<std::mutex> lock(c.mu);
      if (c.queued[direction] > kMaxQueued) {
        c.cv.wait_for(lock, std::chrono::milliseconds(5));
        continue;
      }
    }
    pollfd p{src, POLLIN, 0};
    int r = poll(&p, 1, 50);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (r == 0) continue;
    ssize_t n = read(src, buf, sizeof buf);
    if (n <= 0) {
      enqueue("", true);  // the peer closed (or failed): close the other side after the rest
      return;
    }
    bool cut = false;
    int64_t before = c.both_read.fetch_add(n);
    if (c.cut_both > 0 && before + n > c.cut_both) {
      n = static_cast<ssize_t>(std::max<int64_t>(0, c.cut_both - before));
      cut = true;
    }
    if (direction == 1) {
      int64_t down_before = c.down_read.fetch_add(n);
      if (c.cut_down > 0 && down_before + n > c.cut_down) {
        n = static_cast<ssize_t>(std::max<int64_t>(0, c.cut_down - down_before));
        cut = true;
      }
    }
    if (cut && !c.cut_counted.exchange(true)) ++cuts_;
    enqueue(std::string(buf, static_cast<size_t>(n)), cut);  // up to the cut point, then die
    if (cut) return;
  }
}

void TcpProxy::WriteSide(Connection& c, int direction) {
  const int dst = c.fd[1 - direction];
  std::atomic<int64_t>& delivered = direction == 0 ? up_ : down_;
  std::atomic<int64_t>& rate = direction == 0 ? up_rate_ : down_rate_;
  int64_t next_free_ns = 0;  // bandwidth pacing: when the link is free for the next byte
  for (;;) {
    Connection::Chunk chunk;
    {
      std::unique_lock<std::mutex> lock(c.mu);
      std::deque<Connection::Chunk>& q = c.queue[direction];
      if (q.empty()) {
        if (c.closed || stop_) return;
        c.cv.wait_for(lock, std::chrono::milliseconds(20));
        continue;
      }
      int64_t held = c.held_until_release.load();
      if (direction == 0 && held >= 0 && release_generation_.load() <= held) {
        lock.unlock();
        if (stop_) return;
        SleepNs(5'000'000);
        continue;
      }
      int64_t wait = q.front().release_ns - NowNs();
      if (wait > 0 || black_holed()) {
        lock.unlock();
        if (c.closed || stop_) return;
        SleepNs(std::min<int64_t>(std::max<int64_t>(wait, 1'000'000), 20'000'000));
        continue;
      }
      chunk = std::move(q.front());
      q.pop_front();
      c.queued[direction] -= static_cast<int64_t>(chunk.data.size());
      c.cv.notify_all();
    }
    size_t off = 0;
    while (off < chunk.data.size()) {
      if (c.closed || stop_) return;
      if (black_holed()) {
        SleepNs(5'000'000);
        continue;
      }
      int64_t bps = rate.load();
      size_t slice = chunk.data.size() - off;
      if (bps > 0) {
        // Slices of 20 ms worth of bytes keep the pace smooth.
        slice = std::min<size_t>(slice, static_cast<size_t>(std::max<int64_t>(1, bps / 50)));
        int64_t now = NowNs();
        if (next_free_ns < now) next_free_ns = now;
        SleepNs(next_free_ns - now);
      }
      ssize_t w = send(dst, chunk.data.data() + off, slice, MSG_NOSIGNAL);
      if (w <= 0) {
        if (w < 0 && errno == EINTR) continue;
        if (direction == 1 && c.held_until_release.load() >= 0) {
          // The client is gone, but what it sent is still held for the server: deliver that
          // on release (the upstream writer closes the connection after it).
          shutdown(c.fd[0], SHUT_RDWR);
          return;
        }
        c.Close();
        return;
      }
      off += static_cast<size_t>(w);
      delivered += w;
      if (bps > 0) next_free_ns += w * 1'000'000'000 / bps;
    }
    if (chunk.end) {
      if (direction == 1 && c.held_until_release.load() >= 0) {
        shutdown(c.fd[0], SHUT_RDWR);  // as above: the held upstream still goes first
        return;
      }
      c.Close();
      return;
    }
  }
}

void TcpProxy::CutAll() {
  absl::MutexLock lock(&mu_);
  for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
}

}  // namespace fieldsync::testing
