#include "bench/bench_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fieldsync::bench {

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// fork+exec with stdout and stderr sent to files.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  int in = open("/dev/null", O_RDONLY);
  dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

int WaitExit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

}  // namespace

std::string FieldsyncdPath() {
  const char* env = std::getenv("FIELDSYNCD");
  return env != nullptr && *env != '\0' ? env : FIELDSYNCD_PATH;
}

Fieldsyncd::~Fieldsyncd() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    WaitExit(pid_);
  }
}

absl::Status Fieldsyncd::Start(const std::string& dir, const std::vector<std::string>& extra_args,
                               const std::string& db) {
  std::error_code mkdir_error;
  std::filesystem::create_directories(dir, mkdir_error);
  if (mkdir_error) {
    return absl::InternalError(absl::StrCat(dir, ": ", mkdir_error.message()));
  }
  db_path_ = db.empty() ? dir + "/fieldsync.db" : db;
  std::string out = dir + "/admin.token", log = dir + "/fieldsyncd.log";
  int code = WaitExit(Spawn({FieldsyncdPath(), "--db", db_path_, "--create-admin-token"}, out, log));
  if (code != 0) {
    return absl::InternalError(absl::StrCat("fieldsyncd --create-admin-token exited with ", code,
                                            ": ", ReadAll(log)));
  }
  admin_token_ = std::string(absl::StripAsciiWhitespace(ReadAll(out)));
  std::string port_file = dir + "/port";
  unlink(port_file.c_str());
  std::vector<std::string> argv = {FieldsyncdPath(), "--db", db_path_, "--port-file", port_file,
                                   "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  pid_ = Spawn(argv, "/dev/null", log);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("fieldsyncd exited early: ", ReadAll(log)));
    }
    int port = 0;
    std::string text(absl::StripAsciiWhitespace(ReadAll(port_file)));
    if (!text.empty() && absl::SimpleAtoi(text, &port) && port > 0) {
      address_ = absl::StrCat("127.0.0.1:", port);
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError("fieldsyncd did not listen within 60 s");
}

int Fieldsyncd::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int code = WaitExit(pid_);
  pid_ = -1;
  return code;
}

HqSetup::HqSetup(const std::string& address, std::string admin_token)
    : admin_token_(std::move(admin_token)) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  tracker_ = v1::TrackerService::NewStub(channel);
  admin_ = v1::AdminService::NewStub(channel);
}

std::unique_ptr<grpc::ClientContext> HqSetup::Ctx() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  ctx->AddMetadata("authorization", absl::StrCat("Bearer ", admin_token_));
  return ctx;
}

absl::StatusOr<std::string> HqSetup::CreatePartner(const std::string& name,
                                                   const std::string& country) {
  v1::CreatePartnerRequest req;
  req.mutable_partner()->set_name(name);
  req.mutable_partner()->add_countries(country);
  v1::Partner out;
  grpc::Status s = admin_->CreatePartner(Ctx().get(), req, &out);
  if (!s.ok()) return FromGrpc(s, "CreatePartner");
  return out.id();
}

absl::StatusOr<std::string> HqSetup::CreateProject(const std::string& partner_id,
                                                   const std::string& country) {
  v1::CreateProjectRequest req;
  v1::Project* p = req.mutable_project();
  p->set_partner_id(partner_id);
  p->set_kind(v1::PROJECT_KIND_WELL);
  p->set_title("Boreholes, Turkana");
  p->set_country(country);
  p->set_status(v1::PROJECT_STATUS_ACTIVE);
  v1::Project out;
  grpc::Status s = tracker_->CreateProject(Ctx().get(), req, &out);
  if (!s.ok()) return FromGrpc(s, "CreateProject");
  return out.id();
}

absl::StatusOr<std::string> HqSetup::EnrollmentCode(const std::string& partner_id,
                                                    const std::string& name) {
  v1::CreateDeviceRequest dreq;
  dreq.mutable_device()->set_partner_id(partner_id);
  dreq.mutable_device()->set_name(name);
  v1::Device device;
  grpc::Status s = admin_->CreateDevice(Ctx().get(), dreq, &device);
  if (!s.ok()) return FromGrpc(s, "CreateDevice");
  v1::CreateEnrollmentRequest ereq;
  ereq.set_device_id(device.id());
  v1::CreateEnrollmentResponse code;
  s = admin_->CreateEnrollment(Ctx().get(), ereq, &code);
  if (!s.ok()) return FromGrpc(s, "CreateEnrollment");
  return code.code();
}

v1::Record WellRecord(const std::string& project_id, int64_t i) {
  v1::Record r;
  r.set_project_id(project_id);
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
  w->set_commissioned_date(absl::StrCat("2024-0", 1 + i % 9, "-1", i % 9));
  w->set_visit_date(absl::StrCat("2026-0", 1 + i % 9, "-2", i % 9));
  v1::WaterQualityTest* t = w->add_quality_tests();
  t->set_tested_date(w->visit_date());
  t->set_ecoli_cfu_per_100ml(i % 11 ? 0 : 3);
  t->set_turbidity_ntu(0.5 + (i % 40) / 10.0);
  t->set_fluoride_mg_per_l(0.3 + (i % 15) / 10.0);
  w->set_notes(absl::StrCat("Apron intact; caretaker committee of ", 3 + i % 5,
                            " trained. Fence repaired after the long rains, spare parts stored "
                            "at the school."));
  return r;
}

int64_t PeakRssKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "VmHWM:")) {
      int64_t kib = -1;
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipWhitespace());
      if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kib)) return kib;
    }
  }
  return -1;
}

bool ResetPeakRss(pid_t pid) {
  std::ofstream out(absl::StrCat("/proc/", pid, "/clear_refs"));
  if (!out) return false;
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

double CpuSeconds(pid_t pid) {
  std::string stat = ReadAll(absl::StrCat("/proc/", pid, "/stat"));
  // Fields after the command name (which may hold spaces) start after the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> f =
      absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ', absl::SkipWhitespace());
  // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
  int64_t utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) || !absl::SimpleAtoi(f[12], &stime)) {
    return -1;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(rank));
  size_t hi = std::min(values.size() - 1, lo + 1);
  double frac = rank - static_cast<double>(lo);
  return values[lo] * (1 - frac) + values[hi] * frac;
}

std::string Thousands(double value) {
  std::string digits = absl::StrCat(static_cast<int64_t>(std::llround(value)));
  std::string out;
  int n = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (n > 0 && n % 3 == 0 && *it != '-') out.push_back(',');
    out.push_back(*it);
    ++n;
  }
  return std::string(out.rbegin(), out.rend());
}

}  // namespace fieldsync::bench
