// Demo data: a realistic network of partners, projects, sites and field records, for trying
// fieldsyncd, dashboards and reports without real field data.
//
//   FS_ASSIGN_OR_RETURN(auto store, SqliteStore::Open({.path = "data/demo.db"}));
//   FS_ASSIGN_OR_RETURN(DemoSummary loaded, LoadDemoData(*store, DemoOptions{}));
//   // loaded.wells == 3000, loaded.surgeries == 3000, ...
//
// Every document goes through Admin and Tracker as SystemPrincipal(), so it passes exactly the
// validation an API write would, gets its derived fields (record kind and date, WHO outcome
// of each follow-up) and one change-log entry, logged as "system".
//
// What is generated (fictional organisations and places that exist; no personal data):
// - partners working in Kenya, Uganda, Tanzania, Ethiopia, Rwanda, Malawi, Nigeria, Ghana,
//   Senegal, Cambodia, Viet Nam, Laos, the Philippines and Indonesia;
// - WELL, CATARACT and CLASSROOM projects in real first-level areas of those countries, dated
//   2022..as_of (mostly active or completed, some planned or cancelled), with budgets in USD,
//   EUR, GBP or the local currency (in that currency's ISO 4217 minor units: UGX, RWF, XOF and
//   VND have none), donors and IATI identifiers;
// - sites (water points, eye camps, schools) with coordinates near their area, inside the
//   country;
// - water points (WPDx-like, with water quality tests where fluoride is high in the Rift Valley
//   and Senegal's groundnut basin and arsenic high in the Mekong and Red River deltas), cataract
//   surgeries with WHO-plausible follow-up acuities (in the notation each partner's eye teams
//   use: Snellen in metres or feet, or logMAR), classroom donations, and expenditures that add
//   up to a plausible share of each project's budget.
#ifndef FIELDSYNC_SERVER_DEMO_DATA_H_
#define FIELDSYNC_SERVER_DEMO_DATA_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "server/store.h"

namespace fieldsync::server {

struct DemoOptions {
  // Seed of the generator. The same seed and options give the same documents, ids included
  // (ids are UUIDv7 whose time is the document's own date and whose random bits come from the
  // seed). Default 20261128.
  uint64_t seed = 20261128;
  // Partner organisations, 1..12. Default 8.
  int partners = 8;
  // Projects, spread over the partners and the three kinds, 0..20000. Default 240.
  int projects = 240;
  // Wells, cataract surgeries, classroom donations and expenditures to create, each,
  // 0..1000000. Exact whenever a project of the matching kind exists (with at least 3 projects
  // every kind has one that records data). Default 3000.
  int records_per_kind = 3000;
  // The demo's "today", YYYY-MM-DD in 2023..2100: project statuses follow from it and no
  // record, visit or payment is dated after it. Default "2026-11-28".
  std::string as_of = "2026-11-28";
};

// What LoadDemoData created.
struct DemoSummary {
  int partners = 0;
  int projects = 0;
  int sites = 0;
  int wells = 0;
  int surgeries = 0;
  int donations = 0;
  int expenditures = 0;
};

// Creates the demo network in `store`, in one transaction (Store::RunInTransaction): on any
// error nothing is left behind.
//
// Errors:
// - INVALID_ARGUMENT: an option out of range (the message names it).
// - FAILED_PRECONDITION: the database already has projects, or a partner with one of the demo
//   partners' names. Demo data goes into a fresh database only.
// - Any error of Admin, Tracker or the store, with the document that failed named in the message
//   (a demo value that validation refuses is a bug here).
//
// Takes the store's write transaction for the whole load (a few seconds for the defaults);
// other writers wait. Thread-safe as far as the store is.
absl::StatusOr<DemoSummary> LoadDemoData(Store& store, const DemoOptions& options);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_DEMO_DATA_H_
