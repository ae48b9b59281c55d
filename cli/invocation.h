// One run of one command: its parsed arguments, the global options, the streams, and the
// connection to fieldsyncd, made on first use. Commands receive an Invocation and use Call()
// for every RPC, so that the deadline, the token and the error wording are the same everywhere.
//
//   absl::Status RunProjectsGet(Invocation& inv) {
//     v1::GetProjectRequest request;
//     request.set_id(inv.arg(0));
//     v1::Project project;
//     FS_RETURN_IF_ERROR(inv.Call("get project", &TrackerStub::GetProject, request, &project));
//     inv.Print(project);
//     return absl::OkStatus();
//   }
#ifndef FIELDSYNC_CLI_INVOCATION_H_
#define FIELDSYNC_CLI_INVOCATION_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cli/command_line.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/v1/admin.grpc.pb.h"
#include "fieldsync/v1/report.grpc.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "google/protobuf/message.h"

namespace fieldsync::cli {

using TrackerStub = v1::TrackerService::Stub;
using AdminStub = v1::AdminService::Stub;
using ReportStub = v1::ReportService::Stub;

// The global options, resolved against the environment and the defaults.
struct GlobalOptions {
  // "HOST:PORT" of fieldsyncd.
  std::string server = "127.0.0.1:50051";
  // Bearer token; empty when none was given (every call then fails with UNAUTHENTICATED before
  // reaching the network).
  std::string token;
  bool json = false;
  // Deadline of each call.
  absl::Duration timeout = absl::Seconds(30);
  // PEM file of root CAs; empty for the system's roots (with tls) or plain text.
  std::string ca_file;
  // Connect with TLS (--tls, or implied by --ca-file or --tls-server-name).
  bool tls = false;
  // The name the server's certificate must carry instead of the --server host; "" for that host.
  std::string tls_server_name;
  // Default of the device commands' --device-db: $FIELDSYNC_DEVICE_DB, else
  // ./fieldsync-device.db.
  std::string device_db;
};

// True when a gRPC error message of a TLS connection is about TLS (handshake, certificate).
bool LooksLikeTls(absl::string_view message);
// Says why a TLS connection to options.server may have failed, naming the CA file (or the
// system's roots) and the name the certificate must carry; for error messages.
std::string TlsFailure(const GlobalOptions& options);

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  // `err` is a terminal: progress may redraw one line instead of printing many.
  bool err_is_tty = false;
};

// Lets another thread (the Ctrl-C handler) stop the streaming call in progress. Thread-safe.
class CallCanceller {
 public:
  // Cancels the call in progress, or the next one started.
  void Cancel();
  bool cancelled() const;
  // Used by Invocation: the call in progress, or null once it is over.
  void Attach(grpc::ClientContext* context);

 private:
  mutable std::mutex mu_;
  grpc::ClientContext* context_ = nullptr;
  bool cancelled_ = false;
};

class Invocation {
 public:
  // `line` must have a command and outlive the Invocation.
  Invocation(const CommandLine& line, GlobalOptions options, Io io);
  ~Invocation();
  Invocation(const Invocation&) = delete;
  Invocation& operator=(const Invocation&) = delete;

  // The i-th positional argument (the parser checked how many there are).
  const std::string& arg(size_t i) const { return line_.positionals.at(i); }
  // The command's own options.
  const FlagValues& flags() const { return line_.flags; }
  // The global options as given on the command line (to tell "--server given" from a default).
  const FlagValues& global_flags() const { return line_.globals; }
  const GlobalOptions& options() const { return options_; }
  bool json() const { return options_.json; }
  std::istream& in() { return io_.in; }
  std::ostream& out() { return io_.out; }
  std::ostream& err() { return io_.err; }
  bool err_is_tty() const { return io_.err_is_tty; }

  // Calls one TrackerService, AdminService or ReportService method with the token and the
  // deadline. On failure returns the server's code with a message "<what>: <server message>";
  // UNAVAILABLE and DEADLINE_EXCEEDED say that fieldsyncd cannot be reached. UNAUTHENTICATED
  // without calling when no token was given; a usage error when the --ca-file cannot be read.
  template <typename Request, typename Response>
  absl::Status Call(absl::string_view what,
                    grpc::Status (TrackerStub::*method)(grpc::ClientContext*, const Request&,
                                                        Response*),
                    const Request& request, Response* response) {
    FS_RETURN_IF_ERROR(Connect());
    return Invoke(what, [&](grpc::ClientContext* context) {
      return (tracker_.get()->*method)(context, request, response);
    });
  }
  template <typename Request, typename Response>
  absl::Status Call(absl::string_view what,
                    grpc::Status (AdminStub::*method)(grpc::ClientContext*, const Request&,
                                                      Response*),
                    const Request& request, Response* response) {
    FS_RETURN_IF_ERROR(Connect());
    return Invoke(what, [&](grpc::ClientContext* context) {
      return (admin_.get()->*method)(context, request, response);
    });
  }
  template <typename Request, typename Response>
  absl::Status Call(absl::string_view what,
                    grpc::Status (ReportStub::*method)(grpc::ClientContext*, const Request&,
                                                       Response*),
                    const Request& request, Response* response) {
    FS_RETURN_IF_ERROR(Connect());
    return Invoke(what, [&](grpc::ClientContext* context) {
      return (report_.get()->*method)(context, request, response);
    });
  }

  // Calls a server-streaming TrackerService method with the token and hands each message to
  // `on_message`, in order, until the server ends the stream (OK), `on_message` returns false
  // or `canceller` is cancelled (the call is cancelled; OK). `deadline` bounds the whole stream
  // (absl::InfiniteDuration() for none). Errors as for Call().
  template <typename Request, typename Response>
  absl::Status ReadStream(absl::string_view what,
                          std::unique_ptr<grpc::ClientReader<Response>> (TrackerStub::*method)(
                              grpc::ClientContext*, const Request&),
                          const Request& request, absl::Duration deadline, CallCanceller& canceller,
                          const std::function<bool(const Response&)>& on_message) {
    FS_RETURN_IF_ERROR(Connect());
    return ReadStreamOf(what, tracker_.get(), method, request, deadline, canceller, on_message);
  }
  // The same for a ReportService method (Export).
  template <typename Request, typename Response>
  absl::Status ReadStream(absl::string_view what,
                          std::unique_ptr<grpc::ClientReader<Response>> (ReportStub::*method)(
                              grpc::ClientContext*, const Request&),
                          const Request& request, absl::Duration deadline, CallCanceller& canceller,
                          const std::function<bool(const Response&)>& on_message) {
    FS_RETURN_IF_ERROR(Connect());
    return ReadStreamOf(what, report_.get(), method, request, deadline, canceller, on_message);
  }

  // Runs `rpc` over the connection with the deadline but no token, for services that need
  // none (grpc.health.v1.Health). Errors as for Call(), except that no token is required.
  absl::Status CallWithoutToken(
      absl::string_view what,
      const std::function<grpc::Status(const std::shared_ptr<grpc::Channel>&,
                                       grpc::ClientContext*)>& rpc);

  // Prints one result: JSON with --json, else the "key: value" details.
  void Print(const google::protobuf::Message& message);

 private:
  template <typename Stub, typename Request, typename Response>
  absl::Status ReadStreamOf(absl::string_view what, Stub* stub,
                            std::unique_ptr<grpc::ClientReader<Response>> (Stub::*method)(
                                grpc::ClientContext*, const Request&),
                            const Request& request, absl::Duration deadline,
                            CallCanceller& canceller,
                            const std::function<bool(const Response&)>& on_message) {
    grpc::ClientContext context;
    FS_RETURN_IF_ERROR(StartCall(what, deadline, &context));
    std::unique_ptr<grpc::ClientReader<Response>> reader = (stub->*method)(&context, request);
    canceller.Attach(&context);
    bool stopped = false;
    Response message;
    while (reader->Read(&message)) {
      if (!on_message(message)) {
        stopped = true;
        context.TryCancel();
        break;
      }
    }
    canceller.Attach(nullptr);
    const grpc::Status status = reader->Finish();
    if (stopped || canceller.cancelled() || status.ok()) return absl::OkStatus();
    return FromGrpc(what, status);
  }

  absl::Status Connect();
  // Connects, checks that a token was given and prepares `context` with it and the deadline.
  absl::Status StartCall(absl::string_view what, absl::Duration deadline,
                         grpc::ClientContext* context);
  absl::Status Invoke(absl::string_view what,
                      const std::function<grpc::Status(grpc::ClientContext*)>& rpc);
  absl::Status FromGrpc(absl::string_view what, const grpc::Status& status);

  const CommandLine& line_;
  GlobalOptions options_;
  Io io_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<TrackerStub> tracker_;
  std::unique_ptr<AdminStub> admin_;
  std::unique_ptr<ReportStub> report_;
};

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_INVOCATION_H_
