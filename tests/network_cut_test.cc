// The link drops in the middle of a push or a pull, at many different byte offsets: a TCP proxy
// between a device and the real fieldsyncd closes the connection after N bytes, the client
// retries on a new connection, and afterwards nothing is lost, nothing is applied twice and the
// devices hold exactly the server's documents.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <sqlite3.h>

#include "fieldsync/client.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync {
namespace {

namespace v1 = ::fieldsync::v1;
using client::Client;
using client::ClientOptions;

// Byte offsets at which the link drops: inside the HTTP/2 preface, inside the first request's
// headers, inside a request or page, in large pages, near the end. (A cut inside the preface used
// to leave gRPC 1.51's channel unable to reconnect; the client now rebuilds its channel after a
// transport failure — see network_fault_test's CutInsideTheHttp2PrefaceIsRecovered.)
constexpr int64_t kCutPoints[] = {20, 40, 130, 300, 700, 1500, 3000, 6000};

class NetworkCutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(server_.Start(dir_.path()));
    hq_ = std::make_unique<testing::Hq>(server_.Channel(), server_.admin_token());
    partner_ = hq_->CreatePartner("Maji Safi", {"KE"});
    project_ = hq_->CreateProject(partner_.id(), v1::PROJECT_KIND_WELL, "KE", "Boreholes");
    proxy_ = std::make_unique<testing::TcpProxy>(server_.address());
    ASSERT_OK(proxy_->Start());
    options_.retry.initial_backoff_ms = 10;
    options_.retry.max_backoff_ms = 1000;
    options_.retry.max_attempts = 20;
    options_.call_timeout_ms = 10000;
    options_.pull_page_size = 25;
  }

  std::string EnrollDevice(const std::string& name) {
    std::string path = dir_.File(name + ".db");
    auto c = Client::Enroll(server_.address(), hq_->EnrollmentCode(partner_.id(), name), path,
                            options_);
    EXPECT_OK(c);
    return path;
  }

  // Opens the device's store with a new channel through the proxy: its first connection is the
  // one CutNextAfter applies to.
  std::unique_ptr<Client> OpenThroughProxy(const std::string& path) {
    // The store remembers the server it enrolled with; point it at the proxy.
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    std::string sql = "UPDATE sync_state SET value = '" + proxy_->address() +
                      "' WHERE key = 'server_address'";
    sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    auto c = Client::Open(path, options_);
    EXPECT_OK(c);
    return c.ok() ? *std::move(c) : nullptr;
  }

  v1::Record Well(int i) {
    v1::Record r;
    r.set_project_id(project_.id());
    v1::WellRecord* w = r.mutable_well();
    w->set_drilled_depth_m(50 + i % 40);
    w->set_static_water_level_m(10);
    w->set_yield_lph(1000 + i);
    w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
    w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
    w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
    w->set_population_served(100 + i);
    w->set_visit_date("2026-06-01");
    w->set_notes("Record " + std::to_string(i) + " written offline before the link came back.");
    return r;
  }

  int64_t ServerCount(const std::string& sql) {
    return testing::QueryInt(server_.db_path(), sql);
  }


  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::unique_ptr<testing::Hq> hq_;
  std::unique_ptr<testing::TcpProxy> proxy_;
  v1::Partner partner_;
  v1::Project project_;
  ClientOptions options_;
};

TEST_F(NetworkCutTest, PushesCutAtAnyByteLoseAndDuplicateNothing) {
  std::string path = EnrollDevice("field");
  {
    auto first = OpenThroughProxy(path);
    ASSERT_OK(first->Sync());  // learn the project
  }
  int created = 0;
  for (int64_t cut : kCutPoints) {
    auto device = OpenThroughProxy(path);
    ASSERT_TRUE(device);
    for (int i = 0; i < 60; ++i) ASSERT_OK(device->CreateRecord(Well(created++)));
    int cuts_before = proxy_->cuts();
    proxy_->CutNextAfter(cut);
    auto done = device->Sync();
    ASSERT_OK(done) << "cut at " << cut << ": " << done.status();
    EXPECT_GT(proxy_->cuts(), cuts_before) << "the link was not cut at " << cut;
    ASSERT_OK_AND_ASSIGN(auto status, device->Status());
    EXPECT_EQ(status.pending_changes, 0) << "cut at " << cut;
    EXPECT_EQ(ServerCount("SELECT COUNT(*) FROM records"), created) << "cut at " << cut;
  }
  // Every change is in the log exactly once.
  EXPECT_EQ(ServerCount("SELECT COUNT(*) FROM change_log WHERE device_id IS NOT NULL"), created);
  EXPECT_EQ(ServerCount("SELECT COUNT(DISTINCT device_seq) FROM change_log "
                        "WHERE device_id IS NOT NULL"),
            created);
}

TEST_F(NetworkCutTest, PullsCutAtAnyByteResumeAndConverge) {
  // HQ writes 120 records; fresh devices pull them through links cut at each point.
  for (int i = 0; i < 120; ++i) {
    v1::CreateRecordRequest req;
    *req.mutable_record() = Well(i);
    v1::Record out;
    ASSERT_TRUE(hq_->tracker().CreateRecord(hq_->Ctx().get(), req, &out).ok());
  }
  std::string reference_checksum;
  int n = 0;
  for (int64_t cut : kCutPoints) {
    std::string path = EnrollDevice("puller" + std::to_string(n++));
    auto device = OpenThroughProxy(path);
    ASSERT_TRUE(device);
    int cuts_before = proxy_->cuts();
    proxy_->CutNextAfter(cut);
    auto done = device->Sync();
    ASSERT_OK(done) << "cut at " << cut << ": " << done.status() << " after "
                    << proxy_->connections() << " connections";
    EXPECT_GT(proxy_->cuts(), cuts_before) << "the link was not cut at " << cut;
    v1::ListRecordsRequest all;
    all.set_page_size(1000);
    ASSERT_OK_AND_ASSIGN(auto records, device->ListRecords(all));
    EXPECT_EQ(records.records_size(), 120) << "cut at " << cut;
    ASSERT_OK_AND_ASSIGN(std::string checksum, device->ServerStateChecksum());
    if (reference_checksum.empty()) reference_checksum = checksum;
    EXPECT_EQ(checksum, reference_checksum) << "cut at " << cut;
  }
}

}  // namespace
}  // namespace fieldsync
