// Ctrl-C for long-running commands ('sync', 'watch'): the first SIGINT or SIGTERM calls a
// function on a thread of its own, so that the command can stop cleanly (cancel its call,
// finish its output); a second one ends the process as usual.
//
//   InterruptHandler interrupt([&] { client->Cancel(); });
//   absl::StatusOr<SyncProgress> done = client->Sync(progress);  // CANCELLED after Ctrl-C
//   if (interrupt.interrupted()) ...
#ifndef FIELDSYNC_CLI_INTERRUPT_H_
#define FIELDSYNC_CLI_INTERRUPT_H_

#include <atomic>
#include <functional>
#include <thread>

namespace fieldsync::cli {

// Installs handlers for SIGINT and SIGTERM for its lifetime and restores the previous ones when
// destroyed. At most one may exist at a time in a process (a second one handles no signal).
// `on_interrupt` runs at most once, on the handler's own thread, never after the destructor
// returns; it must be thread-safe with respect to what the command does meanwhile.
class InterruptHandler {
 public:
  explicit InterruptHandler(std::function<void()> on_interrupt);
  ~InterruptHandler();
  InterruptHandler(const InterruptHandler&) = delete;
  InterruptHandler& operator=(const InterruptHandler&) = delete;

  // A signal arrived (and `on_interrupt` has run or is running).
  bool interrupted() const { return interrupted_.load(); }

 private:
  void Wait();

  std::function<void()> on_interrupt_;
  std::atomic<bool> interrupted_{false};
  // Whether this handler owns the process's signal handling (see the class comment).
  bool active_ = false;
  std::thread thread_;
};

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_INTERRUPT_H_
