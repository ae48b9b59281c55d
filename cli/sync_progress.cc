#include "cli/sync_progress.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "cli/output.h"

namespace fieldsync::cli {
namespace {

using client::SyncPhase;
using client::SyncProgress;

constexpr int kBarWidth = 20;

const char* PhaseName(SyncPhase phase) {
  switch (phase) {
    case SyncPhase::kHandshake:
      return "handshake";
    case SyncPhase::kPush:
      return "push";
    case SyncPhase::kPull:
      return "pull";
    case SyncPhase::kDone:
      break;
  }
  return "done";
}

// The push is the part whose size is known up front; the bar is full once the pull began.
std::string Bar(const SyncProgress& p) {
  int64_t filled = 0;
  if (p.phase == SyncPhase::kPull || p.phase == SyncPhase::kDone) {
    filled = kBarWidth;
  } else if (p.changes_total > 0) {
    filled = kBarWidth * p.changes_pushed / p.changes_total;
  }
  return absl::StrCat(std::string(filled, '#'), std::string(kBarWidth - filled, '-'));
}

}  // namespace

std::string SyncProgressPrinter::Describe(const SyncProgress& p) {
  std::string text = absl::StrCat(
      PhaseName(p.phase), ": pushed ", p.changes_pushed, "/", p.changes_total, ", pulled ",
      Counted(p.documents_pulled, "document"), ", ", Counted(p.pages, "page"));
  if (p.conflicts > 0) absl::StrAppend(&text, ", ", Counted(p.conflicts, "conflict"));
  if (p.retries > 0) absl::StrAppend(&text, ", ", Counted(p.retries, "retry", "retries"));
  if (p.rebased) {
    absl::StrAppend(&text, ", server restored: resent ",
                    Counted(p.resent_documents, "document"));
  }
  return text;
}

void SyncProgressPrinter::Update(const SyncProgress& progress) {
  if (style_ == kQuiet || progress.phase == SyncPhase::kDone) return;
  std::string text = Describe(progress);
  if (text == last_) return;
  last_ = text;
  if (style_ == kBar) {
    out_ << "\r\033[K"
         << "sync [" << Bar(progress) << "] " << text << std::flush;
    drawn_ = true;
  } else {
    out_ << "sync: " << text << "\n" << std::flush;
  }
}

void SyncProgressPrinter::Finish() {
  if (drawn_) out_ << "\r\033[K" << std::flush;
  drawn_ = false;
}

}  // namespace fieldsync::cli
