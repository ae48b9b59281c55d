#include "cli/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace fieldsync::cli {
namespace {

// The signal handler may only do async-signal-safe things: it writes one byte to a pipe that
// the handler's thread reads.
constexpr char kInterrupt = 'i';
constexpr char kQuit = 'q';
constexpr int kSignals[] = {SIGINT, SIGTERM};

std::atomic<bool> g_in_use{false};
int g_pipe[2] = {-1, -1};
struct sigaction g_previous[2];

void OnSignal(int /*signal*/) {
  const int saved_errno = errno;
  const char byte = kInterrupt;
  // Nothing useful can be done if the write fails: the pipe is only gone when we are done.
  [[maybe_unused]] ssize_t written = write(g_pipe[1], &byte, 1);
  errno = saved_errno;
}

}  // namespace

InterruptHandler::InterruptHandler(std::function<void()> on_interrupt)
    : on_interrupt_(std::move(on_interrupt)) {
  if (g_in_use.exchange(true)) return;
  if (pipe(g_pipe) != 0) {
    g_in_use = false;
    return;
  }
  active_ = true;
  thread_ = std::thread([this] { Wait(); });
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  // A second Ctrl-C gets the default action: it ends a stop that hangs.
  action.sa_flags = SA_RESTART | SA_RESETHAND;
  for (int i = 0; i < 2; ++i) sigaction(kSignals[i], &action, &g_previous[i]);
}

InterruptHandler::~InterruptHandler() {
  if (!active_) return;
  for (int i = 0; i < 2; ++i) sigaction(kSignals[i], &g_previous[i], nullptr);
  const char byte = kQuit;
  // The thread may already be gone (after an interrupt); the byte then stays unread.
  [[maybe_unused]] ssize_t written = write(g_pipe[1], &byte, 1);
  thread_.join();
  close(g_pipe[0]);
  close(g_pipe[1]);
  g_pipe[0] = g_pipe[1] = -1;
  g_in_use = false;
}

void InterruptHandler::Wait() {
  for (;;) {
    char byte = 0;
    const ssize_t n = read(g_pipe[0], &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n != 1 || byte != kInterrupt) return;
    interrupted_ = true;
    if (on_interrupt_) on_interrupt_();
    return;
  }
}

}  // namespace fieldsync::cli
