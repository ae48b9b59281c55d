#include "bench/wire_counter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fieldsync::bench {

namespace {

void NoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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
  NoDelay(fd);
  return fd;
}

}  // namespace

WireCounter::~WireCounter() {
  stop_ = true;
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  std::vector<std::thread> relays;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
    relays.swap(relays_);
  }
  for (std::thread& t : relays) t.join();
}

absl::Status WireCounter::Start() {
  if (target_.rfind("127.0.0.1:", 0) != 0) {
    return absl::InvalidArgumentError("WireCounter targets 127.0.0.1 only");
  }
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 128) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError("WireCounter: cannot listen on 127.0.0.1");
  }
  address_ = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void WireCounter::AcceptLoop() {
  int port = 0;
  if (!absl::SimpleAtoi(target_.substr(target_.rfind(':') + 1), &port)) return;
  while (!stop_) {
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (stop_) return;
      continue;
    }
    NoDelay(client);
    int server = ConnectLoopback(port);
    if (server < 0) {
      close(client);
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.push_back(client);
    open_fds_.push_back(server);
    relays_.emplace_back([this, client, server] { Relay(client, server); });
  }
}

void WireCounter::Relay(int client, int server) {
  char buf[65536];
  pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
  bool closed = false;
  while (!stop_ && !closed) {
    if (poll(fds, 2, 200) < 0) break;
    for (int i = 0; i < 2 && !closed; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        closed = true;
        break;
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
    }
  }
  shutdown(client, SHUT_RDWR);
  shutdown(server, SHUT_RDWR);
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : {client, server}) {
    auto it = std::find(open_fds_.begin(), open_fds_.end(), fd);
    if (it != open_fds_.end()) {
      open_fds_.erase(it);
      close(fd);
    }
  }
}

}  // namespace fieldsync::bench
