#include "cli/sync_progress.h"

#include <gtest/gtest.h>

#include <sstream>

namespace fieldsync::cli {
namespace {

using client::SyncPhase;
using client::SyncProgress;

SyncProgress Step(SyncPhase phase, int64_t pushed, int64_t total, int64_t documents = 0,
                  int64_t pages = 0) {
  SyncProgress p;
  p.phase = phase;
  p.changes_pushed = pushed;
  p.changes_total = total;
  p.documents_pulled = documents;
  p.pages = pages;
  return p;
}

TEST(SyncProgressPrinterTest, PlainLinesOncePerChange) {
  std::ostringstream out;
  SyncProgressPrinter printer(out, SyncProgressPrinter::kLines);
  printer.Update(Step(SyncPhase::kHandshake, 0, 0));
  printer.Update(Step(SyncPhase::kPush, 0, 4));
  printer.Update(Step(SyncPhase::kPush, 0, 4));  // nothing new: not repeated
  printer.Update(Step(SyncPhase::kPush, 4, 4));
  SyncProgress pulled = Step(SyncPhase::kPull, 4, 4, 1, 1);
  pulled.conflicts = 1;
  pulled.retries = 2;
  printer.Update(pulled);
  printer.Update(Step(SyncPhase::kDone, 4, 4, 1, 1));  // the command prints the summary
  printer.Finish();
  EXPECT_EQ(out.str(),
            "sync: handshake: pushed 0/0, pulled 0 documents, 0 pages\n"
            "sync: push: pushed 0/4, pulled 0 documents, 0 pages\n"
            "sync: push: pushed 4/4, pulled 0 documents, 0 pages\n"
            "sync: pull: pushed 4/4, pulled 1 document, 1 page, 1 conflict, 2 retries\n");
}

TEST(SyncProgressPrinterTest, BarRedrawsOneLineAndClearsIt) {
  std::ostringstream out;
  SyncProgressPrinter printer(out, SyncProgressPrinter::kBar);
  printer.Update(Step(SyncPhase::kPush, 1, 4));
  printer.Update(Step(SyncPhase::kPull, 4, 4, 250, 2));
  printer.Finish();
  EXPECT_EQ(out.str(),
            "\r\033[Ksync [#####---------------] push: pushed 1/4, pulled 0 documents, 0 pages"
            "\r\033[Ksync [####################] pull: pushed 4/4, pulled 250 documents, 2 pages"
            "\r\033[K");
}

TEST(SyncProgressPrinterTest, QuietPrintsNothing) {
  std::ostringstream out;
  SyncProgressPrinter printer(out, SyncProgressPrinter::kQuiet);
  printer.Update(Step(SyncPhase::kPush, 1, 4));
  printer.Finish();
  EXPECT_EQ(out.str(), "");
}

}  // namespace
}  // namespace fieldsync::cli
