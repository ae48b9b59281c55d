// What `fieldsync sync` shows while it runs, on stderr: a redrawn bar on a terminal, one plain
// line per step otherwise (logs, pipes, CI), nothing with --quiet.
//
//   SyncProgressPrinter printer(std::cerr, SyncProgressPrinter::kLines);
//   client->Sync([&](const SyncProgress& p) { printer.Update(p); });
//   printer.Finish();
//   // sync: handshake: pushed 0/0, pulled 0 documents, 0 pages
//   // sync: push: pushed 1/1, pulled 0 documents, 0 pages
//   // sync: pull: pushed 1/1, pulled 3 documents, 1 page
#ifndef FIELDSYNC_CLI_SYNC_PROGRESS_H_
#define FIELDSYNC_CLI_SYNC_PROGRESS_H_

#include <ostream>
#include <string>

#include "fieldsync/client.h"

namespace fieldsync::cli {

// Thread-compatible: call it from the thread running Sync() (the progress callback's).
class SyncProgressPrinter {
 public:
  enum Style {
    // One line per step that changed something: "sync: <phase>: pushed X/Y, pulled N documents,
    // P pages[, C conflicts][, R retries]".
    kLines,
    // The same text after a 20-character bar (the push's share), redrawn in place with "\r".
    kBar,
    kQuiet,
  };

  SyncProgressPrinter(std::ostream& out, Style style) : out_(out), style_(style) {}

  // Shows `progress` (nothing for the final kDone report: the command prints a summary).
  void Update(const client::SyncProgress& progress);
  // Clears the bar, so that what follows starts on a clean line. Call before printing anything.
  void Finish();

  // The text of one step, as kLines prints it after "sync: ".
  static std::string Describe(const client::SyncProgress& progress);

 private:
  std::ostream& out_;
  const Style style_;
  std::string last_;
  bool drawn_ = false;
};

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_SYNC_PROGRESS_H_
