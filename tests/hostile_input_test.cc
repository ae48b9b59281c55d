// Hostile callers against a real fieldsyncd over real gRPC: what a caller without a valid token
// can make the server allocate, how many streams and threads one caller can hold, what every
// RPC answers to bytes that are not its request, and how fast tokens and enrollment codes can
// be guessed.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <grpcpp/create_channel_posix.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "fieldsync/v1/admin.grpc.pb.h"
#include "fieldsync/v1/report.grpc.pb.h"
#include "fieldsync/v1/sync.grpc.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "server/auth.h"
#include "tests/testing/hq.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync {
namespace {

using ::fieldsync::testing::AddBearer;
using ::fieldsync::testing::Hq;
using ::fieldsync::testing::ServerProcess;
using ::fieldsync::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = ::fieldsync::v1;

constexpr char kPush[] = "/fieldsync.v1.SyncService/Push";
constexpr char kEnroll[] = "/fieldsync.v1.SyncService/Enroll";
constexpr char kWatch[] = "/fieldsync.v1.TrackerService/WatchChanges";
constexpr char kReflection[] = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
constexpr char kHealthCheck[] = "/grpc.health.v1.Health/Check";

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// A value of /proc/PID/status in kB (VmHWM, VmRSS) or a count (Threads); -1 if absent.
int64_t ProcStatus(pid_t pid, const std::string& key) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::vector<std::string> parts =
        absl::StrSplit(line.substr(key.size() + 1), ' ', absl::SkipWhitespace());
    int64_t value = -1;
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &value)) return value;
  }
  return -1;
}

// `count` fields unknown to every fieldsync message: field 1000, varint 1 — three bytes each.
std::string UnknownFields(size_t count) {
  std::string out;
  out.reserve(count * 3);
  for (size_t i = 0; i < count; ++i) out.append("\xc0\x3e\x01", 3);
  return out;
}

struct RawReply {
  grpc::Status status;
  std::vector<std::string> messages;
};

// One call of `method` with `request` as its raw bytes, spoken as a stream (which fits unary and
// server-streaming methods alike): the request, then every message until the status.
RawReply RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                 const std::string& request, const std::string& token = "") {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  if (!token.empty()) AddBearer(ctx, token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  grpc::CompletionQueue cq;
  RawReply out;
  void* tag = nullptr;
  bool ok = false;
  auto call = stub.PrepareCall(&ctx, method, &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  cq.Next(&tag, &ok);
  if (ok) {
    grpc::Slice slice(request);
    grpc::ByteBuffer buffer(&slice, 1);
    call->WriteLast(buffer, grpc::WriteOptions(), reinterpret_cast<void*>(2));
    cq.Next(&tag, &ok);
    while (true) {
      grpc::ByteBuffer reply;
      call->Read(&reply, reinterpret_cast<void*>(3));
      cq.Next(&tag, &ok);
      if (!ok) break;
      out.messages.push_back(Flatten(reply));
    }
  }
  call->Finish(&out.status, reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return out;
}

// A channel of its own (not shared with other channels to the same address).
std::shared_ptr<grpc::Channel> OwnChannel(const std::string& address, int n) {
  grpc::ChannelArguments args;
  args.SetInt("fieldsync.test.channel", n);
  args.SetMaxSendMessageSize(64 << 20);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

class HostileInputTest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& flags = {}) {
    ASSERT_OK(server_.Start(dir_.path(), flags));
    hq_ = std::make_unique<Hq>(server_.Channel(), server_.admin_token());
  }

  // A device token of a new device of `partner_id` (of a new partner if empty).
  std::string DeviceToken(const std::string& name, std::string partner_id = "") {
    if (partner_id.empty()) {
      partner_id = hq_->CreatePartner(absl::StrCat("Partner of ", name), {"KE"}).id();
    }
    std::string code = hq_->EnrollmentCode(partner_id, name);
    v1::EnrollRequest req;
    req.set_code(code);
    v1::EnrollResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = v1::SyncService::NewStub(server_.Channel())->Enroll(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.token();
  }

  TempDir dir_;
  ServerProcess server_;
  std::unique_ptr<Hq> hq_;
};

// --- Memory before authentication (issue 13, item 5) ------------------------------------------

// Sends `calls` requests of `bytes` of unknown fields to `method` at once, each on a channel of
// its own, without a token; returns how many got each status code.
std::map<grpc::StatusCode, int> Flood(const std::string& address, const std::string& method,
                                      const std::string& bytes, int calls) {
  std::vector<std::thread> threads;
  std::vector<grpc::StatusCode> codes(calls);
  for (int i = 0; i < calls; ++i) {
    threads.emplace_back(
        [&, i] { codes[i] = RawCall(OwnChannel(address, i), method, bytes).status.error_code(); });
  }
  for (std::thread& t : threads) t.join();
  std::map<grpc::StatusCode, int> out;
  for (grpc::StatusCode c : codes) out[c] += 1;
  return out;
}

TEST_F(HostileInputTest, UnauthenticatedCallsOfUnknownFieldsStayUnderTwoHundredMegabytes) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // 3.9 MB of 1.3 million unknown fields: under the 4 MiB receive limit.
  const std::string bytes = UnknownFields(1'300'000);
  ASSERT_LT(bytes.size(), 4u << 20);
  for (const char* method : {kPush, kEnroll, kHealthCheck, kReflection}) {
    std::map<grpc::StatusCode, int> codes = Flood(server_.address(), method, bytes, 64);
    if (method != kReflection) {
      EXPECT_EQ(codes[grpc::StatusCode::OK], 0) << method;
    }
    EXPECT_EQ(codes[grpc::StatusCode::INTERNAL], 0) << method;
    const int64_t peak_kb = ProcStatus(server_.pid(), "VmHWM");
    ASSERT_GT(peak_kb, 0);
    EXPECT_LT(peak_kb, 200 * 1024)
        << "after 64 calls of " << method << ": peak RSS " << peak_kb / 1024 << " MiB";
  }
  // The server still serves.
  v1::ListPartnersRequest req;
  v1::ListPartnersResponse resp;
  EXPECT_TRUE(hq_->admin().ListPartners(hq_->Ctx().get(), req, &resp).ok());
}

// --- Streams and threads per caller (issue 13, item 6) -------------------------------------------

// A server stream held open: the request is sent, and the first message (or the status) read.
class OpenStream {
 public:
  OpenStream(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
             const std::string& request, const std::string& token = "") {
    grpc::GenericStub stub(channel);
    if (!token.empty()) AddBearer(ctx_, token);
    call_ = stub.PrepareCall(&ctx_, method, &cq_);
    void* tag = nullptr;
    bool ok = false;
    call_->StartCall(reinterpret_cast<void*>(1));
    cq_.Next(&tag, &ok);
    if (ok) {
      grpc::Slice slice(request);
      grpc::ByteBuffer buffer(&slice, 1);
      call_->Write(buffer, reinterpret_cast<void*>(2));
      cq_.Next(&tag, &ok);
    }
    if (ok) {
      grpc::ByteBuffer reply;
      call_->Read(&reply, reinterpret_cast<void*>(3));
      cq_.Next(&tag, &ok);
      open_ = ok;
    }
    if (!open_) Finish();
  }
  ~OpenStream() {
    if (open_) {
      ctx_.TryCancel();
      Finish();
    }
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
    }
  }
  // True if the server sent a first message and the stream is still open.
  bool open() const { return open_; }
  // The status of a stream that did not open.
  const grpc::Status& status() const { return status_; }

 private:
  void Finish() {
    void* tag = nullptr;
    bool ok = false;
    call_->Finish(&status_, reinterpret_cast<void*>(4));
    cq_.Next(&tag, &ok);
  }

  grpc::ClientContext ctx_;
  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  bool open_ = false;
  grpc::Status status_;
};

std::string Serialized(const google::protobuf::Message& m) { return m.SerializeAsString(); }

TEST_F(HostileInputTest, OneTokenHoldsAtMostEightStreams) {
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::Partner partner = hq_->CreatePartner("Maji Safi", {"KE"});
  hq_->CreateProject(partner.id(), v1::PROJECT_KIND_WELL, "KE");  // an event for every watcher
  v1::WatchChangesRequest watch;
  const std::string request = Serialized(watch);
  std::vector<std::unique_ptr<OpenStream>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(
        std::make_unique<OpenStream>(server_.Channel(), kWatch, request, server_.admin_token()));
    ASSERT_TRUE(held.back()->open()) << i << ": " << held.back()->status().error_message();
  }
  OpenStream ninth(server_.Channel(), kWatch, request, server_.admin_token());
  EXPECT_FALSE(ninth.open());
  EXPECT_EQ(ninth.status().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(ninth.status().error_message(), HasSubstr("already holds 8 open streams"));
  // Another token (a device of the project's partner) is not held back by the first one's.
  std::string device = DeviceToken("tablet", partner.id());
  OpenStream other(server_.Channel(), kWatch, request, device);
  EXPECT_TRUE(other.open()) << other.status().error_message();
  // A closed stream frees its place.
  held.pop_back();
  bool reopened = false;
  for (int attempt = 0; attempt < 200 && !reopened; ++attempt) {
    OpenStream again(server_.Channel(), kWatch, request, server_.admin_token());
    reopened = again.open();
    if (!reopened) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(reopened);
}

TEST_F(HostileInputTest, StreamsWithoutATokenAreCappedAndHoldFewThreads) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const int64_t idle_threads = ProcStatus(server_.pid(), "Threads");
  ASSERT_GT(idle_threads, 0);
  // Reflection and health watches need no token; each stream asks once and then stays open.
  const std::string list_services("\x3a\x00", 2);
  std::vector<std::unique_ptr<OpenStream>> streams;
  std::map<grpc::StatusCode, int> reflection;
  std::map<grpc::StatusCode, int> watch;
  for (int i = 0; i < 300; ++i) {
    streams.push_back(std::make_unique<OpenStream>(server_.Channel(), kReflection, list_services));
    reflection[streams.back()->open() ? grpc::StatusCode::OK
                                      : streams.back()->status().error_code()]++;
    streams.push_back(
        std::make_unique<OpenStream>(server_.Channel(), "/grpc.health.v1.Health/Watch", ""));
    watch[streams.back()->open() ? grpc::StatusCode::OK : streams.back()->status().error_code()]++;
  }
  const int64_t threads = ProcStatus(server_.pid(), "Threads");
  EXPECT_EQ(reflection[grpc::StatusCode::OK], 2);
  EXPECT_EQ(reflection[grpc::StatusCode::CANCELLED], 298);
  EXPECT_EQ(watch[grpc::StatusCode::OK], 8);
  EXPECT_EQ(watch[grpc::StatusCode::RESOURCE_EXHAUSTED], 292);
  EXPECT_LE(threads, idle_threads + 32);
}

TEST_F(HostileInputTest, ThreadsStayUnderMaxThreadsWhateverTheStreams) {
  ASSERT_NO_FATAL_FAILURE(
      Start({"--max-threads", "32", "--max-streams-per-token", "0", "--max-streams", "0"}));
  const int64_t idle_threads = ProcStatus(server_.pid(), "Threads");
  ASSERT_GT(idle_threads, 0);
  v1::Partner partner = hq_->CreatePartner("Maji Safi", {"KE"});
  hq_->CreateProject(partner.id(), v1::PROJECT_KIND_WELL, "KE");  // an event for every watcher
  const std::string request = Serialized(v1::WatchChangesRequest());
  std::vector<std::unique_ptr<OpenStream>> streams;
  int open = 0;
  int refused = 0;
  for (int i = 0; i < 100; ++i) {
    streams.push_back(
        std::make_unique<OpenStream>(server_.Channel(), kWatch, request, server_.admin_token()));
    if (streams.back()->open()) {
      ++open;
    } else {
      EXPECT_EQ(streams.back()->status().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
          << streams.back()->status().error_message();
      ++refused;
    }
  }
  const int64_t threads = ProcStatus(server_.pid(), "Threads");
  EXPECT_GT(open, 0);
  EXPECT_GT(refused, 0);
  EXPECT_LE(threads, idle_threads + 32) << open << " streams open, " << refused << " refused";
  streams.clear();
  // Once they are gone the server serves again.
  v1::ListPartnersRequest req;
  v1::ListPartnersResponse resp;
  grpc::Status s;
  for (int attempt = 0; attempt < 200; ++attempt) {
    s = hq_->admin().ListPartners(hq_->Ctx().get(), req, &resp);
    if (s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(s.ok()) << s.error_message();
}

// --- Malformed requests to every RPC (issue 13, item 9) --------------------------------------

// The request type of `method` ("/fieldsync.v1.SyncService/Push").
const google::protobuf::Descriptor* RequestTypeOf(const std::string& method) {
  (void)v1::HandshakeRequest::descriptor();  // links each service's descriptors
  (void)v1::GetStatsRequest::descriptor();
  (void)v1::WhoAmIRequest::descriptor();
  (void)v1::ExportRequest::descriptor();
  const size_t slash = method.rfind('/');
  const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
      method.substr(1, slash - 1));
  if (service == nullptr) return nullptr;
  const auto* m = service->FindMethodByName(method.substr(slash + 1));
  return m == nullptr ? nullptr : m->input_type();
}

// A length-delimited field: tag, length, bytes.
std::string LengthDelimited(int number, const std::string& value) {
  std::string out;
  auto varint = [&](uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  };
  varint((static_cast<uint64_t>(number) << 3) | 2);
  varint(value.size());
  out += value;
  return out;
}

TEST_F(HostileInputTest, EveryRpcNamesWhatIsWrongWithMalformedRequests) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string device = DeviceToken("tablet");
  struct Case {
    std::string name;
    std::string bytes;
    std::string names;  // expected in the message of INVALID_ARGUMENT ("" for any answer)
  };
  int checked = 0;
  for (const std::string& method : server::PolicyMethods()) {
    const google::protobuf::Descriptor* type = RequestTypeOf(method);
    ASSERT_NE(type, nullptr) << method;
    const std::string token =
        absl::StartsWith(method, "/fieldsync.v1.SyncService/") ? device : server_.admin_token();
    std::vector<Case> cases = {
        {"a cut varint", "\x08\xff\xff", absl::StrCat(type->name(), ".")},
        {"a length past the end",
         "\x0a\x10"
         "ab",
         absl::StrCat(type->name(), ".")},
        {"an unterminated group", "\x0b", absl::StrCat(type->name(), ".")},
        {"wire type 7", "\x0f", absl::StrCat(type->name(), ".")},
    };
    // Each string field: invalid UTF-8 (named), and 100 KB of text (any clear answer).
    for (int i = 0; i < type->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* f = type->field(i);
      if (f->type() != google::protobuf::FieldDescriptor::TYPE_STRING) continue;
      cases.push_back({absl::StrCat("invalid UTF-8 in ", f->name()),
                       LengthDelimited(f->number(), "ok\xc3\x28"),
                       absl::StrCat(type->name(), ".", f->name(), ": not valid UTF-8")});
      cases.push_back({absl::StrCat("100 KB in ", f->name()),
                       LengthDelimited(f->number(), std::string(100'000, 'x')), ""});
    }
    // A message field given a number instead: protobuf reads it as an unknown field.
    for (int i = 0; i < type->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* f = type->field(i);
      if (f->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE) continue;
      std::string wrong;
      wrong.push_back(static_cast<char>(f->number() << 3));
      wrong.push_back('\x05');
      if (f->number() < 16) cases.push_back({absl::StrCat("a number for ", f->name()), wrong, ""});
    }
    for (const Case& c : cases) {
      RawReply reply = RawCall(server_.Channel(), method, c.bytes, token);
      const grpc::Status& s = reply.status;
      EXPECT_FALSE(s.error_code() == grpc::StatusCode::INTERNAL)
          << method << ", " << c.name << ": INTERNAL \"" << s.error_message() << "\"";
      EXPECT_FALSE(!s.ok() && s.error_message().empty())
          << method << ", " << c.name << ": code " << s.error_code() << " with no message";
      if (!c.names.empty()) {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
            << method << ", " << c.name << ": " << s.error_message();
        EXPECT_THAT(s.error_message(), HasSubstr(c.names)) << method << ", " << c.name;
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 200);
}

// --- Unbounded lists (issue 13, item 4) -------------------------------------------------------

TEST_F(HostileInputTest, ARecordWithTooManyEntriesIsRefusedNamingTheList) {
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::Partner partner = hq_->CreatePartner("Mekong Vision", {"KH"});
  v1::Project eyes = hq_->CreateProject(partner.id(), v1::PROJECT_KIND_CATARACT, "KH");
  v1::CreateRecordRequest req;
  v1::Record* r = req.mutable_record();
  r->set_project_id(eyes.id());
  v1::CataractSurgery* s = r->mutable_cataract_surgery();
  s->set_patient_ref("KH-PP-2024_0117");
  s->set_age_years(67);
  s->set_sex(v1::SEX_FEMALE);
  s->set_eye(v1::EYE_RIGHT);
  s->set_surgery_date("2024-05-06");
  s->set_technique(v1::SURGICAL_TECHNIQUE_SICS);
  s->set_surgeon_ref("S014");
  for (int i = 0; i < 300'000; ++i) s->add_complications("x");
  v1::Record out;
  grpc::Status refused = hq_->tracker().CreateRecord(hq_->Ctx().get(), req, &out);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << refused.error_message();
  EXPECT_THAT(refused.error_message(),
              HasSubstr("record.cataract_surgery.complications: must have at most 20 "
                        "complications, got 300000"));
  // Within the cap it is stored.
  while (s->complications_size() > 20) s->mutable_complications()->RemoveLast();
  grpc::Status stored = hq_->tracker().CreateRecord(hq_->Ctx().get(), req, &out);
  EXPECT_TRUE(stored.ok()) << stored.error_message();
}

// --- Token and code guessing (issue 13, item 10) ---------------------------------------------

// A channel whose connection comes from 127.0.0.2 (still to the server on 127.0.0.1): another
// peer as far as the server can tell.
std::shared_ptr<grpc::Channel> ChannelFrom127002(const std::string& address) {
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) return nullptr;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_addr.s_addr = inet_addr("127.0.0.2");
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = inet_addr("127.0.0.1");
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    if (fd >= 0) close(fd);
    return nullptr;
  }
  return grpc::CreateInsecureChannelFromFd("127.0.0.2", fd);
}

TEST_F(HostileInputTest, GuessingTokensAndCodesIsSlowedPerAddress) {
  // 6 failures a minute (one per 10 s) after a burst of 5.
  ASSERT_NO_FATAL_FAILURE(Start({"--auth-failures-per-minute", "6", "--auth-failure-burst", "5"}));
  const std::string guess = "fs_" + std::string(43, 'G');
  v1::ListPartnersRequest req;
  v1::ListPartnersResponse resp;
  int unauthenticated = 0;
  int throttled = 0;
  int64_t retry_ms = -1;
  const absl::Time start = absl::Now();
  for (int i = 0; i < 100; ++i) {
    grpc::ClientContext ctx;
    AddBearer(ctx, guess);
    grpc::Status s = hq_->admin().ListPartners(&ctx, req, &resp);
    if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      ++unauthenticated;
    } else {
      ASSERT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
      EXPECT_THAT(s.error_message(), HasSubstr("too many failed authentications"));
      ++throttled;
      auto hint = ctx.GetServerTrailingMetadata().find("retry-after-ms");
      if (hint != ctx.GetServerTrailingMetadata().end()) {
        ASSERT_TRUE(
            absl::SimpleAtoi(std::string(hint->second.data(), hint->second.size()), &retry_ms));
      }
    }
  }
  // At most the burst plus one per 10 s that passed: the documented rate.
  const int64_t allowed = 5 + 1 + absl::ToInt64Seconds(absl::Now() - start) / 10;
  EXPECT_LE(unauthenticated, allowed);
  EXPECT_GT(throttled, 0);
  EXPECT_GT(retry_ms, 0);
  EXPECT_LE(retry_ms, 10'000);

  // Enrollment codes from the same address wait too.
  v1::EnrollRequest enroll;
  enroll.set_code("WRONG-CODE-1234");
  v1::EnrollResponse enrolled;
  grpc::ClientContext ectx;
  grpc::Status e = v1::SyncService::NewStub(server_.Channel())->Enroll(&ectx, enroll, &enrolled);
  EXPECT_EQ(e.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << e.error_message();

  // Another address is not affected: the admin's token works from 127.0.0.2.
  std::shared_ptr<grpc::Channel> other = ChannelFrom127002(server_.address());
  ASSERT_NE(other, nullptr);
  grpc::ClientContext octx;
  AddBearer(octx, server_.admin_token());
  grpc::Status ok = v1::AdminService::NewStub(other)->ListPartners(&octx, req, &resp);
  EXPECT_TRUE(ok.ok()) << ok.error_message();

  // Logged once with the address and the count, never with the token.
  const std::string log = server_.Log();
  EXPECT_THAT(log, HasSubstr("failed authentications from ipv4:127.0.0.1"));
  EXPECT_THAT(log, Not(HasSubstr(guess)));
  EXPECT_THAT(log, Not(HasSubstr("WRONG-CODE")));
}

TEST_F(HostileInputTest, WrongEnrollmentCodesCountAsFailedAuthentications) {
  ASSERT_NO_FATAL_FAILURE(Start({"--auth-failures-per-minute", "6", "--auth-failure-burst", "3"}));
  auto sync = v1::SyncService::NewStub(server_.Channel());
  std::vector<grpc::StatusCode> codes;
  for (int i = 0; i < 5; ++i) {
    v1::EnrollRequest enroll;
    enroll.set_code(absl::StrCat("GUESS-", i));
    v1::EnrollResponse enrolled;
    grpc::ClientContext ctx;
    codes.push_back(sync->Enroll(&ctx, enroll, &enrolled).error_code());
  }
  EXPECT_NE(codes[0], grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(codes[4], grpc::StatusCode::RESOURCE_EXHAUSTED);
}

}  // namespace
}  // namespace fieldsync
