// Builds a large database for measuring exports (docs/REPORTS.md, "Memory"): the demo network
// with as many records as asked, written through the server's real write path (Tracker ->
// SqliteStore::ApplyChange, one change-log entry per document), so that every table, index and
// the hash chain are what a real server would hold.
//
//   report_db --db /work/tmp-1m/fieldsync.db --records 1000000
//
// First the default demo network (LoadDemoData: 240 projects, 12,000 records of every kind),
// then wells and expenditures of one more partner until the database holds --records records,
// in transactions of 5,000 (Store::RunInTransaction) with synchronous=NORMAL, printing progress;
// stopping it leaves the batches done so far. Then start fieldsyncd on the file as usual.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/admin.h"
#include "server/auth.h"
#include "server/demo_data.h"
#include "server/sqlite_store.h"
#include "server/tracker.h"

int main(int argc, char** argv) {
  std::string db;
  int64_t records = 1000000;
  int projects = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--db") {
      db = value;
    } else if (flag == "--records" && absl::SimpleAtoi(value, &records) && records >= 4) {
    } else if (flag == "--projects" && absl::SimpleAtoi(value, &projects) && projects >= 3) {
    } else {
      std::cerr << "report_db: bad option " << flag << " " << value << "\n";
      return 2;
    }
  }
  if (db.empty()) {
    std::cerr << "usage: report_db --db PATH [--records N] [--projects N]\n";
    return 2;
  }
  fieldsync::server::SqliteStore::Options options;
  options.path = db;
  options.synchronous = "NORMAL";
  auto store = fieldsync::server::SqliteStore::Open(options);
  if (!store.ok()) {
    std::cerr << "report_db: " << store.status() << "\n";
    return 1;
  }
  namespace v1 = fieldsync::v1;
  namespace server = fieldsync::server;
  const absl::Time start = absl::Now();
  auto summary = server::LoadDemoData(**store, server::DemoOptions());
  if (!summary.ok()) {
    std::cerr << "report_db: " << summary.status() << "\n";
    return 1;
  }
  int64_t loaded = summary->wells + summary->surgeries + summary->donations + summary->expenditures;
  std::cout << "demo network: " << loaded << " records in "
            << absl::FormatDuration(absl::Now() - start) << std::endl;

  // One more partner with a well project in Kenya, 200 water points, and records until done.
  server::Admin admin(**store);
  server::Tracker tracker(**store);
  const server::Principal who = server::SystemPrincipal();
  v1::Partner partner;
  partner.set_name("Bulk Water Trust");
  partner.add_countries("KE");
  auto p = admin.CreatePartner(who, partner);
  if (!p.ok()) {
    std::cerr << "report_db: " << p.status() << "\n";
    return 1;
  }
  v1::Project project;
  project.set_partner_id(p->id());
  project.set_kind(v1::PROJECT_KIND_WELL);
  project.set_title("Boreholes for the Lake Basin (bulk)");
  project.set_country("KE");
  project.set_status(v1::PROJECT_STATUS_ACTIVE);
  project.set_start_date("2023-01-01");
  project.mutable_budget()->set_amount_minor(900000000);
  project.mutable_budget()->set_currency("USD");
  auto pr = tracker.CreateProject(who, project);
  if (!pr.ok()) {
    std::cerr << "report_db: " << pr.status() << "\n";
    return 1;
  }
  std::vector<std::string> sites;
  for (int i = 0; i < 200; ++i) {
    v1::Site site;
    site.set_project_id(pr->id());
    site.set_name(absl::StrCat("Water point ", i + 1));
    site.set_latitude_deg(-0.1 - i * 0.001);
    site.set_longitude_deg(34.7 + i * 0.001);
    auto created = tracker.CreateSite(who, site);
    if (!created.ok()) {
      std::cerr << "report_db: " << created.status() << "\n";
      return 1;
    }
    sites.push_back(created->id());
  }
  constexpr int kBatch = 5000;
  int64_t n = 0;
  while (loaded < records) {
    const absl::Time batch_start = absl::Now();
    const int64_t batch = std::min<int64_t>(kBatch, records - loaded);
    absl::Status s = (*store)->RunInTransaction([&]() -> absl::Status {
      for (int64_t i = 0; i < batch; ++i, ++n) {
        v1::Record r;
        r.set_project_id(pr->id());
        const std::string day =
            absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(1672531200 + (n % 1400) * 86400),
                             absl::UTCTimeZone());
        if (n % 2 == 0) {
          r.set_site_id(sites[static_cast<size_t>(n / 2 % 200)]);
          v1::WellRecord* w = r.mutable_well();
          w->set_drilled_depth_m(40 + n % 80);
          w->set_static_water_level_m(5 + n % 30);
          w->set_yield_lph(300 + n % 2000);
          w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
          w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
          w->set_functional_status(n % 7 == 0 ? v1::FUNCTIONAL_STATUS_NOT_FUNCTIONAL
                                              : v1::FUNCTIONAL_STATUS_FUNCTIONAL);
          w->set_population_served(static_cast<int32_t>(100 + n % 900));
          w->set_visit_date(day);
          w->set_notes(absl::StrCat("visit ", n, ": pump, apron and drainage checked"));
        } else {
          v1::Expenditure* e = r.mutable_expenditure();
          e->mutable_amount()->set_amount_minor(1000 + n % 500000);
          e->mutable_amount()->set_currency("USD");
          e->set_category(v1::EXPENDITURE_CATEGORY_CONSTRUCTION);
          e->set_spent_date(day);
          e->set_receipt_ref(absl::StrCat("R-", n));
          e->set_description("cement, pipes and labour");
        }
        auto created = tracker.CreateRecord(who, std::move(r));
        if (!created.ok()) return created.status();
      }
      return absl::OkStatus();
    });
    if (!s.ok()) {
      std::cerr << "report_db: " << s << "\n";
      return 1;
    }
    loaded += batch;
    std::cout << loaded << " records, "
              << static_cast<int64_t>(batch / absl::ToDoubleSeconds(absl::Now() - batch_start))
              << " records/s, " << absl::FormatDuration(absl::Now() - start) << std::endl;
  }
  std::cout << "done: " << loaded << " records in " << absl::FormatDuration(absl::Now() - start)
            << std::endl;
  return 0;
}
