// What several fuzz targets share: a scratch folder and a real SqliteStore holding a small,
// deterministic demo network plus one field device with a fixed id, so that seed inputs
// written once (fuzz/make_corpus.cc) name documents that exist in every run.
#ifndef FIELDSYNC_FUZZ_FIXTURE_H_
#define FIELDSYNC_FUZZ_FIXTURE_H_

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/sqlite_store.h"

namespace fieldsync::fuzz {

// The fuzzing device: bound to the first partner (by id) of the demo network.
inline constexpr char kDeviceId[] = "0190f000-0000-7000-8000-00000000d001";

// Aborts with `what` and the status if `s` is not OK: setup failures are not findings, but
// must not pass silently either.
void CheckOk(const absl::Status& s, const char* what);

// A new empty folder under $TMPDIR (or /tmp), removed at exit.
std::string NewScratchDir();

// Demo network options small enough to load in well under a second.
struct DemoWorld {
  std::unique_ptr<server::SqliteStore> store;
  std::string path;        // the database file
  std::string partner_id;  // kDeviceId's partner
  std::string other_partner_id;
};
// Opens a new store at `path` (synchronous=NORMAL: no fsync per commit), loads the small demo
// network and creates kDeviceId for its first partner.
DemoWorld OpenDemoWorld(const std::string& path);

}  // namespace fieldsync::fuzz

#endif  // FIELDSYNC_FUZZ_FIXTURE_H_
