// TLS end to end: certificates made at test time by deploy/make-certs (the openssl CLI), the real
// fieldsyncd serving them, and the client library and the fieldsync CLI verifying the server
// against a CA file. A client trusting another CA, a plaintext client, a TLS client of a
// plaintext server and a certificate for another name all fail; fieldsyncd refuses to start
// with unusable certificate files.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fieldsync/client.h"
#include "fieldsync/v1/admin.grpc.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync {
namespace {

using ::fieldsync::client::Client;
using ::fieldsync::client::ClientOptions;
using ::fieldsync::testing::CommandResult;
using ::fieldsync::testing::FieldsyncCliPath;
using ::fieldsync::testing::FieldsyncdPath;
using ::fieldsync::testing::Hq;
using ::fieldsync::testing::RunCommand;
using ::fieldsync::testing::ServerProcess;
using ::fieldsync::testing::StatusIs;
using ::fieldsync::testing::TempDir;
using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = ::fieldsync::v1;

// The caller's FIELDSYNC_* variables must not leak into a test.
const std::vector<std::string> kCleanEnv = {"FIELDSYNC_SERVER=", "FIELDSYNC_TOKEN=",
                                            "FIELDSYNC_DEVICE_DB=", "FIELDSYNC_CA_FILE="};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Describe(const CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout: ", r.out, "\nstderr: ", r.err);
}

// Runs deploy/make-certs into `dir` with `names` ("--dns", "x", "--ip", "y"...).
void MakeCerts(const std::string& dir, const std::vector<std::string>& names) {
  std::vector<std::string> argv = {FIELDSYNC_MAKE_CERTS_PATH, dir};
  argv.insert(argv.end(), names.begin(), names.end());
  CommandResult r = RunCommand(argv);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
}

std::shared_ptr<grpc::Channel> TlsChannel(const std::string& address, const std::string& ca_pem,
                                          const std::string& server_name = "") {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_pem;
  grpc::ChannelArguments args;
  if (!server_name.empty()) args.SetSslTargetNameOverride(server_name);
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args);
}

v1::Record Well(const std::string& project_id) {
  v1::Record r;
  r.set_project_id(project_id);
  v1::WellRecord* w = r.mutable_well();
  w->set_drilled_depth_m(80);
  w->set_static_water_level_m(20);
  w->set_yield_lph(1200);
  w->set_water_source(v1::WATER_SOURCE_BOREHOLE);
  w->set_extraction(v1::EXTRACTION_TECHNOLOGY_HAND_PUMP);
  w->set_functional_status(v1::FUNCTIONAL_STATUS_FUNCTIONAL);
  w->set_population_served(400);
  w->set_visit_date("2026-03-14");
  return r;
}

ClientOptions TlsOptions(const std::string& ca_pem, const std::string& server_name = "") {
  ClientOptions options;
  options.use_tls = true;
  options.tls_root_certs_pem = ca_pem;
  options.tls_server_name = server_name;
  options.call_timeout_ms = 5000;
  options.retry.max_attempts = 2;
  options.retry.initial_backoff_ms = 10;
  return options;
}

// A fieldsyncd serving TLS with a certificate for localhost and 127.0.0.1 from a fresh CA.
class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeCerts(dir_.File("certs"), {"--dns", "localhost", "--ip", "127.0.0.1"});
    ca_file_ = dir_.File("certs/ca.pem");
    ca_pem_ = ReadFile(ca_file_);
    ASSERT_OK(server_.Start(dir_.path(), {"--tls-cert", dir_.File("certs/server.pem"),
                                          "--tls-key", dir_.File("certs/server.key")}));
    hq_ = std::make_unique<Hq>(TlsChannel(server_.address(), ca_pem_), server_.admin_token());
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "fieldsyncd log:\n" << server_.Log();
  }

  CommandResult Cli(std::vector<std::string> args, std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {FieldsyncCliPath(), "--timeout", "10"};
    argv.insert(argv.end(), args.begin(), args.end());
    env.insert(env.begin(), kCleanEnv.begin(), kCleanEnv.end());
    return RunCommand(argv, env);
  }

  TempDir dir_;
  ServerProcess server_;
  std::string ca_file_, ca_pem_;
  std::unique_ptr<Hq> hq_;
};

TEST_F(TlsTest, DeviceTrustingTheCaEnrollsAndSyncsOverTls) {
  EXPECT_THAT(server_.Log(), HasSubstr("(TLS)"));
  v1::Partner partner = hq_->CreatePartner("Maji Safi", {"KE"});
  v1::Project project = hq_->CreateProject(partner.id(), v1::PROJECT_KIND_WELL, "KE");
  const std::string db = dir_.File("device.db");
  {
    ASSERT_OK_AND_ASSIGN(auto device,
                         Client::Enroll(server_.address(), hq_->EnrollmentCode(partner.id(), "t"),
                                        db, TlsOptions(ca_pem_)));
    ASSERT_OK(device->Sync());  // the project
    ASSERT_OK_AND_ASSIGN(v1::Record created, device->CreateRecord(Well(project.id())));
    ASSERT_OK_AND_ASSIGN(auto done, device->Sync());
    EXPECT_EQ(done.changes_pushed, 1);
    EXPECT_GE(done.documents_pulled, 1);  // the record as the server holds it
    // HQ, over TLS too, sees the record.
    v1::GetRecordRequest get;
    get.set_id(created.id());
    v1::Record on_server;
    grpc::Status s = hq_->tracker().GetRecord(hq_->Ctx().get(), get, &on_server);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(on_server.well().yield_lph(), 1200);
  }
  // A store enrolled over TLS never falls back to plain text, which would send its token in the
  // clear.
  EXPECT_THAT(Client::Open(db), StatusIs(absl::StatusCode::kFailedPrecondition,
                                         HasSubstr("over TLS")));
  ASSERT_OK_AND_ASSIGN(auto reopened, Client::Open(db, TlsOptions(ca_pem_)));
  EXPECT_OK(reopened->Sync());
}

TEST_F(TlsTest, CliRunsHqCommandsOverTlsWithCaFileOrEnvironment) {
  CommandResult created =
      Cli({"--server", server_.address(), "--token", server_.admin_token(), "--ca-file", ca_file_,
           "partners", "create", "--name", "Maji Safi", "--countries", "KE"});
  ASSERT_EQ(created.exit_code, 0) << Describe(created);
  CommandResult listed = Cli({"partners", "list"},
                             {"FIELDSYNC_SERVER=" + server_.address(),
                              "FIELDSYNC_TOKEN=" + server_.admin_token(),
                              "FIELDSYNC_CA_FILE=" + ca_file_});
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  EXPECT_THAT(listed.out, HasSubstr("Maji Safi"));

  // The CLI as a field device: enroll and sync over TLS; a sync without the CA is refused before
  // any byte leaves in plain text.
  v1::Partner partner = hq_->CreatePartner("Mat Sang", {"VN"});
  const std::string db = dir_.File("cli-device.db");
  CommandResult enrolled =
      Cli({"--server", server_.address(), "--ca-file", ca_file_, "device", "enroll", "--code",
           hq_->EnrollmentCode(partner.id(), "cli"), "--device-db", db});
  ASSERT_EQ(enrolled.exit_code, 0) << Describe(enrolled);
  CommandResult synced = Cli({"--ca-file", ca_file_, "sync", "--device-db", db});
  EXPECT_EQ(synced.exit_code, 0) << Describe(synced);
  CommandResult plain = Cli({"sync", "--device-db", db});
  EXPECT_EQ(plain.exit_code, 5) << Describe(plain);
  EXPECT_THAT(plain.err, AllOf(HasSubstr("over TLS"), HasSubstr("--ca-file")));
}

TEST_F(TlsTest, ClientTrustingAnotherCaIsRefused) {
  MakeCerts(dir_.File("other"), {"--dns", "localhost", "--ip", "127.0.0.1"});
  const std::string other_ca = dir_.File("other/ca.pem");
  v1::Partner partner = hq_->CreatePartner("Maji Safi", {"KE"});
  const std::string code = hq_->EnrollmentCode(partner.id(), "t");

  EXPECT_THAT(Client::Enroll(server_.address(), code, dir_.File("d.db"),
                             TlsOptions(ReadFile(other_ca))),
              StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  // Nothing reached the server: the code is still good, with the right CA.
  EXPECT_OK(Client::Enroll(server_.address(), code, dir_.File("d2.db"), TlsOptions(ca_pem_)));

  CommandResult r = Cli({"--server", server_.address(), "--token", server_.admin_token(),
                         "--ca-file", other_ca, "partners", "list"});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, AllOf(HasSubstr("TLS"), HasSubstr("certificate"), HasSubstr(other_ca)));
  EXPECT_THAT(r.out, Not(HasSubstr("Maji Safi")));
}

TEST_F(TlsTest, PlaintextClientOfTlsServerFails) {
  // Told that the server speaks TLS and what to give, not "is it running?".
  CommandResult r =
      Cli({"--server", server_.address(), "--token", server_.admin_token(), "partners", "list"});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("the server at ", server_.address(),
                                            " speaks TLS; connect with --ca-file FILE")));
  EXPECT_THAT(r.err, Not(HasSubstr("is it running")));

  auto admin = v1::AdminService::NewStub(server_.Channel());  // plain text
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  testing::AddBearer(ctx, server_.admin_token());
  v1::WhoAmIResponse who;
  grpc::Status s = admin->WhoAmI(&ctx, v1::WhoAmIRequest(), &who);
  EXPECT_THAT(s.error_code(), AnyOf(grpc::StatusCode::UNAVAILABLE,
                                    grpc::StatusCode::DEADLINE_EXCEEDED));

  v1::Partner partner = hq_->CreatePartner("Maji Safi", {"KE"});
  ClientOptions plain;
  plain.call_timeout_ms = 5000;
  const std::string code = hq_->EnrollmentCode(partner.id(), "t");
  EXPECT_THAT(Client::Enroll(server_.address(), code, dir_.File("d.db"), plain),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("speaks TLS")));
  CommandResult enroll = Cli({"--server", server_.address(), "device", "enroll", "--code", code,
                              "--device-db", dir_.File("cli.db")});
  EXPECT_EQ(enroll.exit_code, 3) << Describe(enroll);
  EXPECT_THAT(enroll.err, HasSubstr(absl::StrCat("enroll: the server at ", server_.address(),
                                                 " speaks TLS; enroll with --ca-file FILE")));
  // Nothing was sent in the clear: the code still enrolls, over TLS.
  EXPECT_OK(Client::Enroll(server_.address(), code, dir_.File("d2.db"), TlsOptions(ca_pem_)));
}

// A device enrolled in plain text (a pilot before TLS) whose server later serves TLS: once it
// has synced over TLS, its store never talks plain text again, even if something plain-text
// answers at its server's address later (a downgrade would send its token in the clear).
TEST(TlsUpgradeTest, AStoreThatHasSyncedOverTlsNeverFallsBackToPlainText) {
  TempDir dir;
  MakeCerts(dir.File("certs"), {"--dns", "localhost", "--ip", "127.0.0.1"});
  const std::string ca_pem = ReadFile(dir.File("certs/ca.pem"));
  const std::vector<std::string> tls = {"--tls-cert", dir.File("certs/server.pem"), "--tls-key",
                                        dir.File("certs/server.key")};
  ServerProcess server;
  ASSERT_OK(server.Start(dir.path()));
  const std::string db = dir.File("device.db");
  ClientOptions plain;
  plain.call_timeout_ms = 5000;
  plain.retry.max_attempts = 2;
  plain.retry.initial_backoff_ms = 10;
  {
    Hq hq(server.Channel(), server.admin_token());
    v1::Partner partner = hq.CreatePartner("Maji Safi", {"KE"});
    ASSERT_OK_AND_ASSIGN(
        auto device,
        Client::Enroll(server.address(), hq.EnrollmentCode(partner.id(), "t"), db, plain));
    ASSERT_OK(device->Sync());
  }
  // Plain text is still allowed: it never saw TLS.
  ASSERT_OK(Client::Open(db, plain));

  ASSERT_OK(server.Restart(tls));
  {
    ASSERT_OK_AND_ASSIGN(auto device, Client::Open(db, TlsOptions(ca_pem)));
    ASSERT_OK(device->Sync());
  }
  EXPECT_THAT(Client::Open(db, plain),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("over TLS")));
  // Even with a plain-text server answering at the address again.
  ASSERT_OK(server.Restart(std::vector<std::string>{}));
  EXPECT_THAT(Client::Open(db, plain),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("over TLS")));
  CommandResult r =
      RunCommand({FieldsyncCliPath(), "--timeout", "10", "sync", "--device-db", db}, kCleanEnv);
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_THAT(r.err, AllOf(HasSubstr("over TLS"), HasSubstr("--ca-file")));
}

TEST_F(TlsTest, CertificateForAnotherNameFailsVerification) {
  // A second server whose certificate names only wrong.example.org, from its own CA.
  TempDir other_dir;
  MakeCerts(other_dir.File("certs"), {"--dns", "wrong.example.org"});
  const std::string wrong_ca = other_dir.File("certs/ca.pem");
  ServerProcess other;
  ASSERT_OK(other.Start(other_dir.path(), {"--tls-cert", other_dir.File("certs/server.pem"),
                                           "--tls-key", other_dir.File("certs/server.key")}));

  CommandResult r = Cli({"--server", other.address(), "--token", other.admin_token(),
                         "--ca-file", wrong_ca, "partners", "list"});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, AllOf(HasSubstr("TLS"), HasSubstr("name '127.0.0.1'")));
  // The name was the only fault: expecting it makes the same call work.
  CommandResult named = Cli({"--server", other.address(), "--token", other.admin_token(),
                             "--ca-file", wrong_ca, "--tls-server-name", "wrong.example.org",
                             "partners", "list"});
  EXPECT_EQ(named.exit_code, 0) << Describe(named);

  Hq hq(TlsChannel(other.address(), ReadFile(wrong_ca), "wrong.example.org"),
        other.admin_token());
  v1::Partner partner = hq.CreatePartner("Maji Safi", {"KE"});
  EXPECT_THAT(Client::Enroll(other.address(), hq.EnrollmentCode(partner.id(), "a"),
                             other_dir.File("a.db"), TlsOptions(ReadFile(wrong_ca))),
              StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_OK(Client::Enroll(other.address(), hq.EnrollmentCode(partner.id(), "b"),
                           other_dir.File("b.db"),
                           TlsOptions(ReadFile(wrong_ca), "wrong.example.org")));
}

TEST(TlsPlaintextServerTest, TlsClientOfPlaintextServerFails) {
  TempDir dir;
  MakeCerts(dir.File("certs"), {});
  ServerProcess server;
  ASSERT_OK(server.Start(dir.path()));
  CommandResult r =
      RunCommand({FieldsyncCliPath(), "--timeout", "10", "--server", server.address(), "--token",
                  server.admin_token(), "--ca-file", dir.File("certs/ca.pem"), "partners", "list"},
                 kCleanEnv);
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("TLS"));

  Hq hq(server.Channel(), server.admin_token());
  v1::Partner partner = hq.CreatePartner("Maji Safi", {"KE"});
  EXPECT_THAT(Client::Enroll(server.address(), hq.EnrollmentCode(partner.id(), "t"),
                             dir.File("d.db"), TlsOptions(ReadFile(dir.File("certs/ca.pem")))),
              StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
}

// fieldsyncd with these TLS arguments must exit at once, with `message` on stderr. (It runs
// under timeout(1): one that served anyway would be killed, exit 124, and fail the test.)
void ExpectRefused(const TempDir& dir, const std::vector<std::string>& tls_args,
                   const std::string& message) {
  std::vector<std::string> argv = {"/usr/bin/timeout", "20", FieldsyncdPath(), "--db",
                                   dir.File("refused.db"), "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), tls_args.begin(), tls_args.end());
  CommandResult r = RunCommand(argv);
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.exit_code, 124) << "fieldsyncd served with " << tls_args.back();
  EXPECT_THAT(r.err, HasSubstr(message)) << Describe(r);
  EXPECT_THAT(r.err, Not(HasSubstr("listening")));
}

TEST(FieldsyncdTlsFilesTest, RefusesToStartWithUnusableCertificateFiles) {
  TempDir dir;
  MakeCerts(dir.File("a"), {});
  MakeCerts(dir.File("b"), {});
  std::ofstream(dir.File("garbage.pem")) << "not a certificate\n";
  const std::string cert = dir.File("a/server.pem"), key = dir.File("a/server.key");

  ExpectRefused(dir, {"--tls-cert", cert}, "--tls-cert and --tls-key must be given together");
  ExpectRefused(dir, {"--tls-cert", cert, "--tls-key", dir.File("missing.key")},
                "--tls-key: cannot read");
  ExpectRefused(dir, {"--tls-cert", dir.File("missing.pem"), "--tls-key", key},
                "--tls-cert: cannot read");
  ExpectRefused(dir, {"--tls-cert", cert, "--tls-key", dir.File("b/server.key")},
                "is not the private key of the certificate");
  ExpectRefused(dir, {"--tls-cert", dir.File("garbage.pem"), "--tls-key", key},
                "holds no PEM certificate");
  ExpectRefused(dir, {"--tls-cert", cert, "--tls-key", dir.File("garbage.pem")},
                "holds no unencrypted PEM private key");
}

TEST(MakeCertsTest, WritesOwnerOnlyKeysAndNamesEveryAddress) {
  TempDir dir;
  MakeCerts(dir.File("out"), {"--dns", "hq.example.org", "--ip", "10.1.2.3"});
  for (const char* key : {"ca.key", "server.key"}) {
    struct stat st {};
    ASSERT_EQ(stat(dir.File(absl::StrCat("out/", key)).c_str(), &st), 0) << key;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << key;
  }
  CommandResult text = RunCommand(
      {"/usr/bin/openssl", "x509", "-in", dir.File("out/server.pem"), "-noout", "-text"});
  ASSERT_EQ(text.exit_code, 0) << Describe(text);
  EXPECT_THAT(text.out, AllOf(HasSubstr("DNS:hq.example.org"), HasSubstr("IP Address:10.1.2.3"),
                              HasSubstr("TLS Web Server Authentication")));
  CommandResult verified = RunCommand({"/usr/bin/openssl", "verify", "-CAfile",
                                       dir.File("out/ca.pem"), dir.File("out/server.pem")});
  EXPECT_EQ(verified.exit_code, 0) << Describe(verified);
  // A second run renews the server certificate under the same CA.
  const std::string ca_before = ReadFile(dir.File("out/ca.pem"));
  MakeCerts(dir.File("out"), {"--dns", "hq.example.org"});
  EXPECT_EQ(ReadFile(dir.File("out/ca.pem")), ca_before);
  verified = RunCommand({"/usr/bin/openssl", "verify", "-CAfile", dir.File("out/ca.pem"),
                         dir.File("out/server.pem")});
  EXPECT_EQ(verified.exit_code, 0) << Describe(verified);
}

}  // namespace
}  // namespace fieldsync
