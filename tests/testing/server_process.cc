#include "tests/testing/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fieldsync::testing {

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// fork+exec with stdout/stderr sent to files; returns the child's pid.
pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            const std::string& out_path, const std::string& err_path) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  int in = open("/dev/null", O_RDONLY);
  dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  for (const std::string& kv : env) putenv(strdup(kv.c_str()));
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

}  // namespace

std::string FieldsyncdPath() {
  // Another build of the server under the same tests (e.g. a deliberately broken one, to show
  // that the tests catch it: docs/RELIABILITY.md).
  const char* other = std::getenv("FIELDSYNC_FIELDSYNCD");
  return other != nullptr && *other != '\0' ? other : FIELDSYNCD_PATH;
}
std::string FieldsyncCliPath() { return FIELDSYNC_CLI_PATH; }

CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env) {
  char dir_template[] = "/tmp/fieldsync-cmd-XXXXXX";
  std::string dir = mkdtemp(dir_template);
  std::string out_path = dir + "/out", err_path = dir + "/err";
  CommandResult r;
  r.exit_code = WaitExit(Spawn(argv, env, out_path, err_path));
  r.out = ReadAll(out_path);
  r.err = ReadAll(err_path);
  unlink(out_path.c_str());
  unlink(err_path.c_str());
  rmdir(dir.c_str());
  return r;
}

void AddBearer(grpc::ClientContext& ctx, const std::string& token) {
  ctx.AddMetadata("authorization", "Bearer " + token);
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    WaitExit(pid_);
  }
  if (!own_postgres_db_.empty()) DropPostgresDatabase(own_postgres_db_);
}

absl::Status ServerProcess::Start(const std::string& dir,
                                  const std::vector<std::string>& extra_args) {
  std::string db = dir + "/fieldsync.db";
  if (!sqlite_only_ && UsingPostgres()) {
    if (own_postgres_db_.empty() || own_postgres_dir_ != dir) {
      if (!own_postgres_db_.empty()) DropPostgresDatabase(own_postgres_db_);
      absl::StatusOr<std::string> url = CreatePostgresDatabase();
      if (!url.ok()) return url.status();
      own_postgres_db_ = *url;
      own_postgres_dir_ = dir;
    }
    db = own_postgres_db_;
  }
  return StartOn(dir, db, extra_args);
}

absl::Status ServerProcess::StartOn(const std::string& dir, const std::string& db,
                                    const std::vector<std::string>& extra_args) {
  dir_ = dir;
  db_path_ = db;
  log_path_ = dir + "/fieldsyncd.log";
  extra_args_ = extra_args;
  CommandResult token = RunCommand({FieldsyncdPath(), "--db", db_path_, "--create-admin-token"});
  if (token.exit_code != 0) {
    return absl::InternalError(absl::StrCat("--create-admin-token failed (", token.exit_code,
                                            "): ", token.err));
  }
  admin_token_ = std::string(absl::StripAsciiWhitespace(token.out));
  address_.clear();
  return Launch();
}

absl::Status ServerProcess::Launch() {
  std::string port_file = dir_ + "/port";
  unlink(port_file.c_str());
  std::vector<std::string> argv = {FieldsyncdPath(), "--db", db_path_, "--port-file", port_file,
                                   "--listen", address_.empty() ? "127.0.0.1:0" : address_};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  pid_ = Spawn(argv, env_, "/dev/null", log_path_);
  // Demo data can take a while to load before the server listens.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("fieldsyncd exited early: ", Log()));
    }
    std::string port = std::string(absl::StripAsciiWhitespace(ReadAll(port_file)));
    int p = 0;
    if (!port.empty() && absl::SimpleAtoi(port, &p) && p > 0) {
      address_ = absl::StrCat("127.0.0.1:", p);
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError("fieldsyncd did not start listening within 120 s");
}

int ServerProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int code = WaitExit(pid_);
  pid_ = -1;
  return code;
}

absl::Status ServerProcess::Restart() {
  Stop();
  return Launch();
}

absl::Status ServerProcess::Restart(const std::vector<std::string>& extra_args) {
  extra_args_ = extra_args;
  return Restart();
}

std::string ServerProcess::Log() const { return ReadAll(log_path_); }

std::shared_ptr<grpc::Channel> ServerProcess::Channel() const {
  return grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
}

}  // namespace fieldsync::testing
