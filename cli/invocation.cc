#include "cli/invocation.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/errors.h"
#include "cli/output.h"
#include "fieldsync/client.h"

namespace fieldsync::cli {
namespace {

// Pages of records can be large (a donation has up to 500 item lines); gRPC's default limit of
// 4 MiB would fail a page of 1000 of them.
constexpr int kMaxReceiveBytes = 64 << 20;

}  // namespace

bool LooksLikeTls(absl::string_view message) {
  const std::string lower = absl::AsciiStrToLower(message);
  // Not "handshake": SyncService has an RPC of that name.
  for (absl::string_view word : {"ssl", "certificate", "tls", "peer name"}) {
    if (absl::StrContains(lower, word)) return true;
  }
  return false;
}

std::string TlsFailure(const GlobalOptions& options) {
  std::string host = options.tls_server_name;
  if (host.empty()) host = options.server.substr(0, options.server.rfind(':'));
  return absl::StrCat(
      "TLS handshake with ", options.server, " failed: the server's certificate must chain to ",
      options.ca_file.empty() ? std::string("the system's root CAs (give --ca-file)")
                              : absl::StrCat("the CA in --ca-file ", options.ca_file),
      " and name '", host, "' (a certificate problem, or the server does not serve TLS)");
}

Invocation::Invocation(const CommandLine& line, GlobalOptions options, Io io)
    : line_(line), options_(std::move(options)), io_(io) {}

Invocation::~Invocation() = default;

void Invocation::Print(const google::protobuf::Message& message) {
  if (json()) {
    PrintJson(out(), message);
  } else {
    PrintDetails(out(), message);
  }
}

absl::Status Invocation::Connect() {
  if (channel_ != nullptr) return absl::OkStatus();
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments args;
  if (!options_.tls) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    if (!options_.ca_file.empty()) {
      std::ifstream file(options_.ca_file, std::ios::binary);
      if (!file) {
        return UsageError(absl::StrCat("--ca-file: cannot read '", options_.ca_file, "': ",
                                       std::strerror(errno)));
      }
      std::stringstream pem;
      pem << file.rdbuf();
      ssl.pem_root_certs = pem.str();
    }
    credentials = grpc::SslCredentials(ssl);
    if (!options_.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options_.tls_server_name);
    }
  }
  args.SetCompressionAlgorithm(GRPC_COMPRESS_GZIP);
  args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  channel_ = grpc::CreateCustomChannel(options_.server, credentials, args);
  tracker_ = v1::TrackerService::NewStub(channel_);
  admin_ = v1::AdminService::NewStub(channel_);
  report_ = v1::ReportService::NewStub(channel_);
  return absl::OkStatus();
}

void CallCanceller::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

bool CallCanceller::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

void CallCanceller::Attach(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(mu_);
  context_ = context;
  if (context_ != nullptr && cancelled_) context_->TryCancel();
}

absl::Status Invocation::StartCall(absl::string_view what, absl::Duration deadline,
                                   grpc::ClientContext* context) {
  FS_RETURN_IF_ERROR(Connect());
  if (options_.token.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(what, ": no token given"));
  }
  if (deadline != absl::InfiniteDuration()) {
    context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(deadline));
  }
  context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  return absl::OkStatus();
}

absl::Status Invocation::Invoke(absl::string_view what,
                                const std::function<grpc::Status(grpc::ClientContext*)>& rpc) {
  grpc::ClientContext context;
  FS_RETURN_IF_ERROR(StartCall(what, options_.timeout, &context));
  grpc::Status status = rpc(&context);
  if (status.ok()) return absl::OkStatus();
  return FromGrpc(what, status);
}

absl::Status Invocation::CallWithoutToken(
    absl::string_view what,
    const std::function<grpc::Status(const std::shared_ptr<grpc::Channel>&,
                                     grpc::ClientContext*)>& rpc) {
  FS_RETURN_IF_ERROR(Connect());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(options_.timeout));
  grpc::Status status = rpc(channel_, &context);
  if (status.ok()) return absl::OkStatus();
  return FromGrpc(what, status);
}

absl::Status Invocation::FromGrpc(absl::string_view what, const grpc::Status& status) {
  // grpc::StatusCode and absl::StatusCode share their numbering.
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  std::string detail = status.error_message();
  if (detail.empty()) detail = absl::StatusCodeToString(code);
  if (code != absl::StatusCode::kDeadlineExceeded && code != absl::StatusCode::kUnavailable) {
    return absl::Status(code, absl::StrCat(what, ": ", detail));
  }
  // A connected channel means the server itself was slow or answered UNAVAILABLE (busy);
  // otherwise it could not be reached at all.
  const bool connected = channel_->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
  if (code == absl::StatusCode::kDeadlineExceeded) {
    const std::string waited = absl::FormatDuration(options_.timeout);
    if (connected) {
      return absl::Status(
          code, absl::StrCat(what, ": no answer from fieldsyncd at ", options_.server, " within ",
                             waited, "; a slow call may need a larger --timeout"));
    }
    return absl::Status(code, absl::StrCat(what, ": cannot reach fieldsyncd at ", options_.server,
                                           " (is it running?): no answer within ", waited));
  }
  if (connected) {
    return absl::Status(code, absl::StrCat(what, ": fieldsyncd at ", options_.server,
                                           " is unavailable, try again: ", detail));
  }
  if (options_.tls && LooksLikeTls(detail)) {
    return absl::Status(code, absl::StrCat(what, ": ", TlsFailure(options_), ": ", detail));
  }
  // Plain text refused: tell a server that speaks TLS from one that is not running.
  if (!options_.tls &&
      client::ServerSpeaksTls(
          options_.server, std::min<int64_t>(2000, absl::ToInt64Milliseconds(options_.timeout)))) {
    return WithHint(
        absl::Status(code, absl::StrCat(what, ": the server at ", options_.server,
                                        " speaks TLS; connect with --ca-file FILE: ", detail)),
        "FILE is the CA certificate the server's certificate chains to (deploy/make-certs writes "
        "ca.pem); --tls instead for a certificate from a public CA");
  }
  return absl::Status(code, absl::StrCat(what, ": cannot reach fieldsyncd at ", options_.server,
                                         " (is it running?): ", detail));
}

}  // namespace fieldsync::cli
