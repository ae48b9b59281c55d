#include "tests/testing/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fieldsync::testing {

namespace {

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
    ++connections_;
    int server = ConnectLoopback(port);
    if (server < 0) {
      close(client);
      continue;
    }
    absl::MutexLock lock(&mu_);
    open_fds_.push_back(client);
    open_fds_.push_back(server);
    pumps_.emplace_back([this, client, server] { Pump(client, server); });
  }
}

void TcpProxy::Pump(int client, int server) {
  const int64_t cut = cut_after_.load();
  const int64_t cut_once = cut_next_.exchange(0);
  int64_t down_here = 0, both_here = 0;
  char buf[16384];
  pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
  while (!stop_) {
    if (poll(fds, 2, 200) < 0) break;
    bool closed = false;
    for (int i = 0; i < 2 && !closed; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        closed = true;
        break;
      }
      if (i == 1 && cut > 0 && down_here + n > cut) {
        n = static_cast<ssize_t>(cut - down_here);  // deliver up to the cut point, then die
        closed = true;
        ++cuts_;
      }
      if (cut_once > 0 && both_here + n > cut_once) {
        n = static_cast<ssize_t>(cut_once - both_here);
        closed = true;
        ++cuts_;
      }
      int to = i == 0 ? server : client;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, n - off);
        if (w <= 0) {
          closed = true;
          break;
        }
        off += w;
      }
      (i == 0 ? up_ : down_) += n;
      if (i == 1) down_here += n;
      both_here += n;
    }
    if (closed) break;
  }
  shutdown(client, SHUT_RDWR);
  shutdown(server, SHUT_RDWR);
  absl::MutexLock lock(&mu_);
  for (int fd : {client, server}) {
    auto it = std::find(open_fds_.begin(), open_fds_.end(), fd);
    if (it != open_fds_.end()) {
      open_fds_.erase(it);
      close(fd);
    }
  }
}

void TcpProxy::CutAll() {
  absl::MutexLock lock(&mu_);
  for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
}

}  // namespace fieldsync::testing
