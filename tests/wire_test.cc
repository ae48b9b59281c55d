// Bytes on the wire per synced record: a device syncs through a counting TCP proxy on loopback,
// and the bytes that cross it (TLS-less HTTP/2 frames, gzip-compressed gRPC messages, headers,
// acknowledgements: everything) are compared with the records' own protobuf encoding.
//
// The figures are printed and recorded as test properties (see docs/PERFORMANCE.md); the
// assertions are loose bounds that only a regression in the protocol (whole documents instead of
// deltas, compression off, a page per record) would cross.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>

#include "fieldsync/client.h"
#include "fieldsync/sync/document.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync {
namespace {

namespace v1 = ::fieldsync::v1;
using client::Client;

constexpr int kRecords = 1000;

class WireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(server_.Start(dir_.path()));
    hq_ = std::make_unique<testing::Hq>(server_.Channel(), server_.admin_token());
    partner_ = hq_->CreatePartner("Maji Safi", {"KE"});
    project_ = hq_->CreateProject(partner_.id(), v1::PROJECT_KIND_WELL, "KE", "Boreholes, Turkana");
    proxy_ = std::make_unique<testing::TcpProxy>(server_.address());
    ASSERT_OK(proxy_->Start());
  }

  std::unique_ptr<Client> Enroll(const std::string& name) {
    auto c = Client::Enroll(proxy_->address(), hq_->EnrollmentCode(partner_.id(), name),
                            dir_.File(name + ".db"));
    EXPECT_OK(c);
    return c.ok() ? *std::move(c) : nullptr;
  }

  // A plausible water point record of about 300 bytes as protobuf.
  v1::Record Well(int i) {
    v1::Record r;
    r.set_project_id(project_.id());
    v1::WellRecord* w = r.mutable_well();
    w->set_drilled_depth_m(40 + i % 80 + 0.5);
    w->set_static_water_level_m(8 + i % 20 + 0.25);
    w->set_yield_lph(600 + (i * 37) % 3000);
    w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
    w->set_extraction(i % 3 ? v1::EXTRACTION_TECHNOLOGY_HAND_PUMP
                            : v1::EXTRACTION_TECHNOLOGY_SOLAR_PUMP);
    w->set_functional_status(i % 7 ? v1::FUNCTIONAL_STATUS_FUNCTIONAL
                                   : v1::FUNCTIONAL_STATUS_PARTLY_FUNCTIONAL);
    w->set_population_served(150 + (i * 13) % 2000);
    w->set_commissioned_date("2024-0" + std::to_string(1 + i % 9) + "-1" + std::to_string(i % 9));
    w->set_visit_date("2026-0" + std::to_string(1 + i % 9) + "-2" + std::to_string(i % 9));
    v1::WaterQualityTest* t = w->add_quality_tests();
    t->set_tested_date(w->visit_date());
    t->set_ecoli_cfu_per_100ml(i % 11 ? 0 : 3);
    t->set_turbidity_ntu(0.5 + (i % 40) / 10.0);
    t->set_fluoride_mg_per_l(0.3 + (i % 15) / 10.0);
    w->set_notes("Apron intact; caretaker committee of " + std::to_string(3 + i % 5) +
                 " trained. Fence repaired after the long rains, spare parts stored at the school.");
    return r;
  }

  static void Report(const std::string& name, double value) {
    ::testing::Test::RecordProperty(name, std::to_string(value));
    std::printf("[ wire     ] %-44s %10.1f\n", name.c_str(), value);
  }

  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::unique_ptr<testing::Hq> hq_;
  std::unique_ptr<testing::TcpProxy> proxy_;
  v1::Partner partner_;
  v1::Project project_;
};

TEST_F(WireTest, BytesPerSyncedRecordStayCloseToTheRecordsOwnEncoding) {
  auto a = Enroll("a");
  auto b = Enroll("b");
  ASSERT_TRUE(a && b);
  ASSERT_OK(a->Sync());  // the devices learn their partner's projects
  ASSERT_OK(b->Sync());
  int64_t proto_bytes = 0;
  std::vector<v1::Record> created;
  for (int i = 0; i < kRecords; ++i) {
    v1::Record r = Well(i);
    auto saved = a->CreateRecord(r);
    ASSERT_OK(saved);
    v1::Record clean = *saved;
    sync::ClearOutputOnly(&clean);
    proto_bytes += clean.ByteSizeLong();
    created.push_back(*saved);
  }
  const double per_record = static_cast<double>(proto_bytes) / kRecords;
  Report("record protobuf bytes (mean)", per_record);

  proxy_->ResetCounters();
  ASSERT_OK(a->Sync());
  double push = static_cast<double>(proxy_->bytes_to_server() + proxy_->bytes_to_client()) /
                kRecords;
  Report("push: wire bytes per record (both ways)", push);

  proxy_->ResetCounters();
  ASSERT_OK(b->Sync());
  double pull = static_cast<double>(proxy_->bytes_to_server() + proxy_->bytes_to_client()) /
                kRecords;
  Report("pull: wire bytes per record (both ways)", pull);

  // Edit one field of 10 % of the records: only that field travels.
  for (int i = 0; i < kRecords; i += 10) {
    v1::Record r = created[i];
    r.mutable_well()->set_population_served(r.well().population_served() + 1);
    ASSERT_OK(a->UpdateRecord(r));
  }
  proxy_->ResetCounters();
  ASSERT_OK(a->Sync());
  double edit_push = static_cast<double>(proxy_->bytes_to_server() + proxy_->bytes_to_client()) /
                     (kRecords / 10);
  Report("edit push: wire bytes per changed record", edit_push);
  proxy_->ResetCounters();
  ASSERT_OK(b->Sync());
  double edit_pull = static_cast<double>(proxy_->bytes_to_server() + proxy_->bytes_to_client()) /
                     (kRecords / 10);
  Report("edit pull: wire bytes per changed record", edit_pull);

  proxy_->ResetCounters();
  ASSERT_OK(b->Sync());
  Report("sync with nothing to do: wire bytes", proxy_->bytes_to_server() +
                                                    proxy_->bytes_to_client());

  // Loose bounds: whole documents, no compression or a round trip per record would cross them.
  EXPECT_LT(push, 1.5 * per_record);
  EXPECT_LT(pull, 1.5 * per_record);
  EXPECT_LT(edit_push, per_record);
  EXPECT_LT(edit_pull, per_record);
  ASSERT_OK_AND_ASSIGN(std::string sa, a->ServerStateChecksum());
  ASSERT_OK_AND_ASSIGN(std::string sb, b->ServerStateChecksum());
  EXPECT_EQ(sa, sb);
}

}  // namespace
}  // namespace fieldsync
