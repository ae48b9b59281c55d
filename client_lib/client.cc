// Client: opening and enrolling a device store, local writes and queries. Sync() is in sync.cc.
#include "fieldsync/client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client_lib/client_impl.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/model/event_dates.h"
#include "fieldsync/model/validate.h"
#include "fieldsync/sync/document.h"

namespace fieldsync::client {
namespace {

const char* KindName(v1::RecordKind kind) {
  switch (kind) {
    case v1::RECORD_KIND_WELL:
      return "WELL";
    case v1::RECORD_KIND_CATARACT_SURGERY:
      return "CATARACT_SURGERY";
    case v1::RECORD_KIND_CLASSROOM_DONATION:
      return "CLASSROOM_DONATION";
    case v1::RECORD_KIND_EXPENDITURE:
      return "EXPENDITURE";
    default:
      return "UNSPECIFIED";
  }
}

const char* ProjectKindName(v1::ProjectKind kind) {
  switch (kind) {
    case v1::PROJECT_KIND_WELL:
      return "WELL";
    case v1::PROJECT_KIND_CATARACT:
      return "CATARACT";
    case v1::PROJECT_KIND_CLASSROOM:
      return "CLASSROOM";
    default:
      return "UNSPECIFIED";
  }
}

// The document's current message as this device sees it.
template <typename T>
absl::StatusOr<T> Current(const LocalDocument& doc) {
  T message;
  absl::Status s = sync::Assemble(doc.local.Values(), &message);
  if (!s.ok())
    return absl::DataLossError(
        absl::StrCat(doc.local.collection, " ", doc.local.id, ": ", s.message()));
  return message;
}

// The fields of `after` that differ from the document (its tombstone untouched).
sync::FieldValues ChangedFields(const LocalDocument& doc, const google::protobuf::Message& after) {
  sync::FieldValues before = doc.local.Values();
  before.erase(sync::kDeletedPath);
  return sync::Diff(before, sync::Flatten(after));
}

absl::Status CheckVersion(absl::string_view what, const LocalDocument& doc, int64_t expected) {
  if (expected <= 0 || expected == doc.version) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(what, " \"", doc.local.id, "\" is at version ",
                                                    doc.version, ", not the expected ", expected));
}

}  // namespace

absl::Status CheckServerAddress(absl::string_view address) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be HOST:PORT (an IPv6 address in brackets: [::1]:50051), got '", address,
                     "': ", why));
  };
  if (address.empty()) return bad("empty");
  absl::string_view host, port;
  if (address.front() == '[') {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos) return bad("no ']' after the IPv6 address");
    host = address.substr(1, close - 1);
    if (host.find(':') == absl::string_view::npos) return bad("no IPv6 address in the brackets");
    absl::string_view rest = address.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return bad("no ':PORT' after the ']'");
    port = rest.substr(1);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return bad(absl::StrCat("no port (e.g. ", address, ":50051)"));
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != absl::string_view::npos) {
      return bad("an IPv6 address goes in brackets, e.g. [::1]:50051");
    }
  }
  if (host.empty()) return bad("no host");
  for (char c : host) {
    const bool ok = absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
                    c == '_' || c == ':' || c == '%';
    if (!ok) return bad(absl::StrCat("'", std::string(1, c), "' cannot be part of a host name"));
  }
  int port_number = 0;
  const bool digits =
      !port.empty() && port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      });
  if (!digits || !absl::SimpleAtoi(port, &port_number) || port_number < 1 || port_number > 65535) {
    return bad(absl::StrCat("the port must be a number from 1 to 65535, not '", port, "'"));
  }
  return absl::OkStatus();
}

namespace {

// A TLS 1.2 ClientHello offering the usual ECDHE suites and ALPN "h2": any TLS server answers it
// with a handshake or an alert record, a plain-text HTTP/2 server with neither.
std::string TlsClientHello() {
  auto u16 = [](std::string& out, size_t v) {
    out.push_back(static_cast<char>((v >> 8) & 0xff));
    out.push_back(static_cast<char>(v & 0xff));
  };
  auto extension = [&](std::string& out, int type, const std::string& data) {
    u16(out, static_cast<size_t>(type));
    u16(out, data.size());
    out += data;
  };
  std::string body = {'\x03', '\x03'};                                          // TLS 1.2
  for (int i = 0; i < 32; ++i) body.push_back(static_cast<char>(i * 37 + 11));  // random
  body.push_back('\0');                                                         // no session id
  std::string suites;
  for (int s : {0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0x009c, 0x009d, 0x002f, 0x0035}) {
    u16(suites, static_cast<size_t>(s));
  }
  u16(body, suites.size());
  body += suites;
  body += std::string{'\x01', '\0'};  // compression: null
  std::string groups, list;
  for (int g : {0x001d, 0x0017, 0x0018}) u16(list, static_cast<size_t>(g));
  u16(groups, list.size());
  groups += list;
  std::string algorithms;
  list.clear();
  for (int a : {0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601}) {
    u16(list, static_cast<size_t>(a));
  }
  u16(algorithms, list.size());
  algorithms += list;
  std::string alpn;
  u16(alpn, 3);
  alpn += std::string{'\x02', 'h', '2'};
  std::string extensions;
  extension(extensions, 0x000a, groups);
  extension(extensions, 0x000b, std::string{'\x01', '\0'});
  extension(extensions, 0x000d, algorithms);
  extension(extensions, 0x0010, alpn);
  u16(body, extensions.size());
  body += extensions;
  std::string handshake = {'\x01', '\0'};
  u16(handshake, body.size());
  handshake += body;
  std::string record = {'\x16', '\x03', '\x01'};
  u16(record, handshake.size());
  return record + handshake;
}

// Waits for `events` on `fd` until `deadline_ms` (steady clock); true if they came.
bool WaitFor(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

}  // namespace

bool ServerSpeaksTls(const std::string& address, int64_t timeout_ms) {
  if (!CheckServerAddress(address).ok()) return false;
  std::string host, port;
  if (address.front() == '[') {
    const size_t close = address.find(']');
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) return false;
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
  const std::string hello = TlsClientHello();
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { ::close(*f); });
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) continue;
    if (!WaitFor(fd, POLLOUT, deadline)) continue;
    int error = 0;
    socklen_t len = sizeof(error);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) continue;
    if (::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(hello.size())) {
      continue;
    }
    unsigned char head[2] = {0, 0};
    size_t got = 0;
    while (got < sizeof(head) && WaitFor(fd, POLLIN, deadline)) {
      ssize_t n = ::recv(fd, head + got, sizeof(head) - got, 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    // A TLS record: handshake (22) or alert (21), version 3.x.
    return got == sizeof(head) && (head[0] == 22 || head[0] == 21) && head[1] == 3;
  }
  return false;
}

// How long the TLS probe after a failed plain-text call may take: a TLS server answers a
// ClientHello at once; this bounds the extra wait when something silent listens instead.
constexpr int64_t kTlsProbeMs = 2000;

absl::Status ExplainPlainTextToTls(const absl::Status& status, const std::string& address,
                                   const ClientOptions& options) {
  if (options.use_tls) return status;
  // A plain-text HTTP/2 client meeting a TLS server sees the connection closed: UNAVAILABLE.
  if (status.code() != absl::StatusCode::kUnavailable) return status;
  if (!ServerSpeaksTls(address, std::min<int64_t>(options.call_timeout_ms, kTlsProbeMs))) {
    return status;
  }
  return absl::Status(
      status.code(),
      absl::StrCat("the server at ", address,
                   " speaks TLS and this device connects in plain text: connect with TLS "
                   "(use_tls, with the CA its certificate chains to): ",
                   status.message()));
}

absl::Status FromGrpc(const grpc::Status& status, absl::string_view rpc) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(rpc, ": ", status.error_message()));
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const ClientOptions& options) {
  grpc::ChannelArguments args;
  if (options.compress) args.SetCompressionAlgorithm(GRPC_COMPRESS_GZIP);
  args.SetMaxReceiveMessageSize(64 << 20);
  // gRPC's own reconnect backoff would otherwise make every call fail fast for up to two
  // minutes after a drop; our retry loop already backs off. GRPC_ARG_MIN_RECONNECT_BACKOFF_MS
  // stays at its default: gRPC also uses it as the deadline of each connection attempt, and a
  // 2G link needs seconds for TCP and TLS handshakes (at 500 ms, a connection attempt after a
  // drop could never complete).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 10000);
  // This channel's connections are its own (not shared through gRPC's process-wide pool with
  // other Clients of the same server): a channel made anew for a retry really reconnects.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.use_tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_root_certs_pem;
    creds = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(address, creds, args);
}

namespace {

std::string TlsOnlyMessage(const std::string& db_path, const std::string& server) {
  return absl::StrCat(db_path, " has talked with ", server,
                      " over TLS: it never uses plain text again; open it with use_tls (and the "
                      "CA the server's certificate chains to)");
}

// Before a store enrolls again: its TLS rule holds, and its token must really be refused (a
// store whose token works has nothing to re-enroll; doing so would only revoke that token).
absl::Status CheckCanEnrollAgain(LocalStore& store, const std::string& db_path,
                                 const std::string& server_address, const ClientOptions& options) {
  FS_ASSIGN_OR_RETURN(std::string device_id, store.GetState(kDeviceIdKey));
  FS_ASSIGN_OR_RETURN(std::string tls, store.GetState(kServerTlsKey));
  FS_ASSIGN_OR_RETURN(std::string server, store.GetState(kServerAddressKey));
  if (tls == "1" && !options.use_tls) {
    return absl::FailedPreconditionError(TlsOnlyMessage(db_path, server));
  }
  FS_ASSIGN_OR_RETURN(std::string token, store.GetState(kTokenKey));
  auto stub = v1::SyncService::NewStub(MakeChannel(server_address, options));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(options.call_timeout_ms));
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  v1::HandshakeRequest request;
  request.set_protocol_version(v1::PROTOCOL_VERSION_1);
  v1::HandshakeResponse response;
  absl::Status checked = FromGrpc(stub->Handshake(&ctx, request, &response), "Handshake");
  if (checked.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        db_path, " is already enrolled as device ", device_id, " and its token still works with ",
        server_address, ": there is nothing to enroll again"));
  }
  if (checked.code() != absl::StatusCode::kUnauthenticated) {
    return absl::Status(
        checked.code(),
        absl::StrCat("cannot tell whether the token of ", db_path, " (device ", device_id,
                     ") still works, so it is not enrolled again: ",
                     ExplainPlainTextToTls(checked, server_address, options).message()));
  }
  return absl::OkStatus();
}

}  // namespace

Client::Client(std::unique_ptr<ClientImpl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Enroll(const std::string& server_address,
                                                       const std::string& code,
                                                       const std::string& db_path,
                                                       const ClientOptions& options) {
  if (server_address.empty())
    return absl::InvalidArgumentError("server_address: must not be empty");
  if (absl::Status s = CheckServerAddress(server_address); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("server_address: ", s.message()));
  }
  if (code.empty()) return absl::InvalidArgumentError("code: must not be empty");
  std::string enrolled;
  if (::access(db_path.c_str(), F_OK) == 0) {
    FS_ASSIGN_OR_RETURN(auto existing, LocalStore::Open(db_path));
    FS_ASSIGN_OR_RETURN(enrolled, existing->GetState(kDeviceIdKey));
    if (!enrolled.empty()) {
      FS_RETURN_IF_ERROR(CheckCanEnrollAgain(*existing, db_path, server_address, options));
    }
  }
  // Redeem the code first: a refused code leaves no store behind.
  auto stub = v1::SyncService::NewStub(MakeChannel(server_address, options));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(options.call_timeout_ms));
  v1::EnrollRequest request;
  request.set_code(code);
  // A store enrolling again: the server refuses (without using the code up) a code for
  // another device.
  request.set_device_id(enrolled);
  v1::EnrollResponse response;
  if (absl::Status s = FromGrpc(stub->Enroll(&ctx, request, &response), "Enroll"); !s.ok()) {
    return ExplainPlainTextToTls(s, server_address, options);
  }
  if (!IsUuid(response.device_id()) || response.token().empty()) {
    return absl::InternalError("Enroll: the server's answer has no device id or token");
  }
  if (!enrolled.empty() && response.device_id() != enrolled) {
    return absl::InternalError(absl::StrCat("Enroll: the server enrolled device ",
                                            response.device_id(), ", not this store's ", enrolled));
  }
  {
    FS_ASSIGN_OR_RETURN(auto store, LocalStore::Open(db_path));
    FS_ASSIGN_OR_RETURN(auto tx, store->Begin());
    FS_RETURN_IF_ERROR(store->SetState(kTokenKey, response.token()));
    FS_RETURN_IF_ERROR(store->SetState(kServerAddressKey, server_address));
    if (options.use_tls) FS_RETURN_IF_ERROR(store->SetState(kServerTlsKey, "1"));
    if (enrolled.empty()) {
      FS_RETURN_IF_ERROR(store->SetState(kDeviceIdKey, response.device_id()));
      FS_RETURN_IF_ERROR(store->SetState(kPartnerIdKey, response.partner_id()));
      // A device enrolled again continues its numbering: a change numbered at or below what
      // the server already applied would be taken for a replay and silently skipped.
      FS_RETURN_IF_ERROR(store->SetStateInt(kAckedSeqKey, response.acked_device_seq()));
      FS_RETURN_IF_ERROR(store->SetStateInt(kLastSeqKey, response.acked_device_seq()));
    }
    // Enrolled again: documents, outbox and numbering stay as they are; the next Sync()'s
    // handshake reconciles the acknowledgements as after any reconnection.
    FS_RETURN_IF_ERROR(tx.Commit());
  }
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, Open(db_path, options));
  // Learn the clock correction now, while there is a link, so that edits made before the first
  // sync are not stamped with a wildly wrong clock (an HLC never goes back, so a clock a year
  // ahead would otherwise stay ahead). Best effort: the first Sync() does it again.
  client->impl_->Handshake().IgnoreError();
  return client;
}

absl::StatusOr<std::unique_ptr<Client>> Client::Open(const std::string& db_path,
                                                     const ClientOptions& options) {
  // Opening must not leave an empty store behind where the app expected its data.
  if (::access(db_path.c_str(), F_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(db_path, " is not enrolled (no store there): call Client::Enroll first"));
  }
  FS_ASSIGN_OR_RETURN(auto app_store, LocalStore::Open(db_path, options.max_store_bytes));
  FS_ASSIGN_OR_RETURN(std::string device_id, app_store->GetState(kDeviceIdKey));
  if (device_id.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(db_path, " is not enrolled: call Client::Enroll first"));
  }
  auto impl = std::make_unique<ClientImpl>(options, device_id);
  FS_ASSIGN_OR_RETURN(impl->token, app_store->GetState(kTokenKey));
  FS_ASSIGN_OR_RETURN(impl->server_address, app_store->GetState(kServerAddressKey));
  FS_ASSIGN_OR_RETURN(std::string enrolled_tls, app_store->GetState(kServerTlsKey));
  if (enrolled_tls == "1" && !options.use_tls) {
    // Plain text would send the device's token (and its patients' records) in the clear.
    return absl::FailedPreconditionError(TlsOnlyMessage(db_path, impl->server_address));
  }
  FS_ASSIGN_OR_RETURN(int64_t offset, app_store->GetStateInt(kClockOffsetKey));
  FS_ASSIGN_OR_RETURN(sync::Hlc latest, app_store->LatestKnownHlc());
  impl->clock.set_offset_ms(offset);
  impl->clock.Restore(latest);
  impl->app_store = std::move(app_store);
  FS_ASSIGN_OR_RETURN(impl->sync_store, LocalStore::Open(db_path, options.max_store_bytes));
  impl->channel = MakeChannel(impl->server_address, options);
  impl->stub = v1::SyncService::NewStub(impl->channel);
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

// --- Local writes ------------------------------------------------------------------------------

absl::Status ClientImpl::Write(absl::string_view collection, absl::string_view id,
                               const EditFn& edit) {
  absl::Status s = WriteOnce(collection, id, edit);
  if (s.code() == absl::StatusCode::kResourceExhausted) {
    // The transaction rolled back whole: say so in words an app can show.
    return absl::ResourceExhaustedError(
        absl::StrCat("the device's storage is full: ", collection, " ", id,
                     " was not saved (earlier data is intact; free space and try again): ",
                     s.message()));
  }
  return s;
}

absl::Status ClientImpl::WriteOnce(absl::string_view collection, absl::string_view id,
                                   const EditFn& edit) {
  // Caller holds app_mu.
  FS_ASSIGN_OR_RETURN(auto tx, app_store->Begin());
  FS_ASSIGN_OR_RETURN(LocalDocument doc, app_store->LoadDocument(collection, id));
  FS_ASSIGN_OR_RETURN(sync::FieldValues changed, edit(doc));
  if (changed.empty()) return absl::OkStatus();  // nothing to write; the transaction rolls back

  sync::Hlc hlc;
  {
    std::lock_guard<std::mutex> lock(clock_mu);
    hlc = clock.Now();
  }
  v1::Change change;
  change.set_collection(std::string(collection));
  change.set_doc_id(std::string(id));
  change.set_hlc(hlc.Encode());
  for (const auto& [path, value] : changed) {
    v1::FieldChange* f = change.add_fields();
    f->set_path(path);
    f->set_value(value);
    // The clock of the value this device sees: how the server tells a concurrent edit.
    auto seen = doc.local.fields.find(path);
    if (seen != doc.local.fields.end() && !seen->second.hlc.IsZero()) {
      f->set_base_hlc(seen->second.hlc.Encode());
    }
  }
  // The view: the document as loaded with this change on top, as RefreshView would read it
  // back (the change is the document's newest outbox entry).
  FS_RETURN_IF_ERROR(MergeIntoLocal(doc, change));
  FS_RETURN_IF_ERROR(app_store->AppendChange(std::move(change)).status());
  FS_RETURN_IF_ERROR(app_store->RaiseLastHlc(hlc));
  FS_RETURN_IF_ERROR(app_store->StoreView(doc));
  return tx.Commit();
}

absl::StatusOr<v1::Project> ClientImpl::ReferencedProject(absl::string_view path,
                                                          absl::string_view id) {
  absl::StatusOr<v1::Project> project = app_store->GetProject(id);
  if (project.status().code() == absl::StatusCode::kNotFound) {
    // Same answer as the server's; the project may not have been pulled yet.
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": no project with id \"", id, "\" on this device (sync to receive new projects)"));
  }
  return project;
}

absl::Status ClientImpl::CheckEventDates(const v1::Record& record) {
  int64_t now_ms = 0;
  {
    std::lock_guard<std::mutex> lock(clock_mu);
    now_ms = physical() + clock.offset_ms();  // the clock as corrected at the last handshake
  }
  return model::CheckEventDatesNotAfter(record, model::LatestEventDate(now_ms));
}

absl::Status ClientImpl::CheckRecordReferences(const v1::Record& record) {
  FS_ASSIGN_OR_RETURN(v1::Project project,
                      ReferencedProject("record.project_id", record.project_id()));
  v1::RecordKind kind = model::KindOf(record);
  v1::ProjectKind needed = model::ProjectKindFor(kind);
  if (needed != v1::PROJECT_KIND_UNSPECIFIED && needed != project.kind()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "record.project_id: project \"", project.id(), "\" is a ", ProjectKindName(project.kind()),
        " project; a ", KindName(kind), " record needs a ", ProjectKindName(needed), " project"));
  }
  if (!record.site_id().empty()) {
    absl::StatusOr<v1::Site> site = app_store->GetSite(record.site_id());
    if (site.status().code() == absl::StatusCode::kNotFound) {
      return absl::InvalidArgumentError(
          absl::StrCat("record.site_id: no site with id \"", record.site_id(), "\""));
    }
    FS_RETURN_IF_ERROR(site.status());
    if (site->project_id() != record.project_id()) {
      return absl::InvalidArgumentError(absl::StrCat("record.site_id: site \"", record.site_id(),
                                                     "\" belongs to another project"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Record> Client::CreateRecord(v1::Record record) {
  sync::ClearOutputOnly(&record);
  if (record.id().empty()) record.set_id(NewUuidV7());
  FS_RETURN_IF_ERROR(model::ValidateId("record.id", record.id(), false));
  FS_RETURN_IF_ERROR(model::ValidateRecord(record));
  FS_RETURN_IF_ERROR(impl_->CheckEventDates(record));
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  FS_RETURN_IF_ERROR(impl_->Write(
      "record", record.id(), [&](const LocalDocument& doc) -> absl::StatusOr<sync::FieldValues> {
        if (!doc.local.fields.empty()) {
          return absl::AlreadyExistsError(
              absl::StrCat("record.id: a record with id \"", record.id(), "\" already exists"));
        }
        FS_RETURN_IF_ERROR(impl_->CheckRecordReferences(record));
        return ChangedFields(doc, record);
      }));
  return impl_->app_store->GetRecord(record.id());
}

absl::StatusOr<v1::Record> Client::UpdateRecord(v1::Record record, int64_t expected_version) {
  sync::ClearOutputOnly(&record);
  FS_RETURN_IF_ERROR(model::ValidateId("record.id", record.id(), false));
  FS_RETURN_IF_ERROR(model::ValidateRecord(record));
  FS_RETURN_IF_ERROR(impl_->CheckEventDates(record));
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  FS_RETURN_IF_ERROR(impl_->Write(
      "record", record.id(), [&](const LocalDocument& doc) -> absl::StatusOr<sync::FieldValues> {
        if (!doc.exists()) {
          return absl::NotFoundError(
              absl::StrCat("record.id: no record with id \"", record.id(), "\""));
        }
        FS_RETURN_IF_ERROR(CheckVersion("record", doc, expected_version));
        FS_ASSIGN_OR_RETURN(v1::Record current, Current<v1::Record>(doc));
        if (current.project_id() != record.project_id()) {
          return absl::InvalidArgumentError(absl::StrCat("record.project_id: cannot change (is \"",
                                                         current.project_id(), "\"), got \"",
                                                         record.project_id(), "\""));
        }
        if (model::KindOf(current) != model::KindOf(record)) {
          return absl::InvalidArgumentError(absl::StrCat("record: kind cannot change from ",
                                                         KindName(model::KindOf(current)), " to ",
                                                         KindName(model::KindOf(record))));
        }
        FS_RETURN_IF_ERROR(impl_->CheckRecordReferences(record));
        return ChangedFields(doc, record);
      }));
  return impl_->app_store->GetRecord(record.id());
}

absl::Status Client::DeleteRecord(absl::string_view id) {
  FS_RETURN_IF_ERROR(model::ValidateId("id", id, false));
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  return impl_->Write(
      "record", id, [&](const LocalDocument& doc) -> absl::StatusOr<sync::FieldValues> {
        if (!doc.exists()) {
          return absl::NotFoundError(absl::StrCat("id: no record with id \"", id, "\""));
        }
        return sync::FieldValues{{sync::kDeletedPath, "\x01"}};
      });
}

// --- Refused changes ---------------------------------------------------------------------------

absl::StatusOr<std::vector<Rejection>> Client::Rejections() {
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  FS_ASSIGN_OR_RETURN(std::vector<LocalRejection> local, impl_->app_store->ListRejections());
  std::vector<Rejection> out;
  for (LocalRejection& r : local) {
    out.push_back(Rejection{r.id, r.device_seq, std::move(r.collection), std::move(r.doc_id),
                            r.code, std::move(r.reason), r.rejected_at_ms, std::move(r.status),
                            std::move(r.change)});
  }
  return out;
}

absl::Status Client::ResubmitRejection(int64_t id) {
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  FS_ASSIGN_OR_RETURN(LocalRejection r, impl_->app_store->GetRejection(id));
  if (r.collection != "record" && r.collection != "site") {
    return absl::FailedPreconditionError(absl::StrCat(
        "rejection ", id, ": a device cannot write ", r.collection, " documents; dismiss it"));
  }
  FS_RETURN_IF_ERROR(impl_->Write(
      r.collection, r.doc_id, [&](const LocalDocument& doc) -> absl::StatusOr<sync::FieldValues> {
        sync::FieldValues target = doc.local.Values();
        for (const v1::FieldChange& f : r.change.fields()) target[f.path()] = f.value();
        sync::FieldValues before = doc.local.Values();
        sync::FieldValues changed = sync::Diff(before, target);
        // The document as it would then be must pass the same checks as any local write.
        sync::Document after = doc.local;
        for (const auto& [path, value] : changed) after.fields[path].value = value;
        if (!after.deleted()) {
          const google::protobuf::Message* proto = sync::PrototypeFor(r.collection);
          std::unique_ptr<google::protobuf::Message> m(proto->New());
          FS_RETURN_IF_ERROR(sync::Assemble(after.Values(), m.get()));
          if (auto* record = google::protobuf::DynamicCastToGenerated<v1::Record>(m.get())) {
            record->set_id(r.doc_id);
            FS_RETURN_IF_ERROR(model::ValidateRecord(*record));
            FS_RETURN_IF_ERROR(impl_->CheckEventDates(*record));
            FS_RETURN_IF_ERROR(impl_->CheckRecordReferences(*record));
          } else if (auto* site = google::protobuf::DynamicCastToGenerated<v1::Site>(m.get())) {
            site->set_id(r.doc_id);
            FS_RETURN_IF_ERROR(model::ValidateSite(*site));
          }
        }
        return changed;
      }));
  return impl_->app_store->SetRejectionStatus(id, "RESUBMITTED");
}

absl::Status Client::DismissRejection(int64_t id) {
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  return impl_->app_store->SetRejectionStatus(id, "DISMISSED");
}

absl::StatusOr<v1::Record> Client::GetRecord(absl::string_view id) {
  FS_RETURN_IF_ERROR(model::ValidateId("id", id, false));
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  return impl_->app_store->GetRecord(id);
}

absl::StatusOr<v1::ListRecordsResponse> Client::ListRecords(const v1::ListRecordsRequest& request) {
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  return impl_->app_store->ListRecords(request);
}

absl::StatusOr<v1::Site> Client::CreateSite(v1::Site site) {
  sync::ClearOutputOnly(&site);
  if (site.id().empty()) site.set_id(NewUuidV7());
  FS_RETURN_IF_ERROR(model::ValidateId("site.id", site.id(), false));
  FS_RETURN_IF_ERROR(model::ValidateSite(site));
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  FS_RETURN_IF_ERROR(impl_->Write(
      "site", site.id(), [&](const LocalDocument& doc) -> absl::StatusOr<sync::FieldValues> {
        if (!doc.local.fields.empty()) {
          return absl::AlreadyExistsError(
              absl::StrCat("site.id: a site with id \"", site.id(), "\" already exists"));
        }
        FS_RETURN_IF_ERROR(impl_->ReferencedProject("site.project_id", site.project_id()).status());
        return ChangedFields(doc, site);
      }));
  return impl_->app_store->GetSite(site.id());
}

absl::StatusOr<v1::Site> Client::UpdateSite(v1::Site site) {
  sync::ClearOutputOnly(&site);
  FS_RETURN_IF_ERROR(model::ValidateId("site.id", site.id(), false));
  FS_RETURN_IF_ERROR(model::ValidateSite(site));
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  FS_RETURN_IF_ERROR(impl_->Write(
      "site", site.id(), [&](const LocalDocument& doc) -> absl::StatusOr<sync::FieldValues> {
        if (!doc.exists()) {
          return absl::NotFoundError(absl::StrCat("site.id: no site with id \"", site.id(), "\""));
        }
        FS_ASSIGN_OR_RETURN(v1::Site current, Current<v1::Site>(doc));
        if (current.project_id() != site.project_id()) {
          return absl::InvalidArgumentError(absl::StrCat("site.project_id: cannot change (is \"",
                                                         current.project_id(), "\"), got \"",
                                                         site.project_id(), "\""));
        }
        return ChangedFields(doc, site);
      }));
  return impl_->app_store->GetSite(site.id());
}

absl::StatusOr<v1::Site> Client::GetSite(absl::string_view id) {
  FS_RETURN_IF_ERROR(model::ValidateId("id", id, false));
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  return impl_->app_store->GetSite(id);
}

absl::StatusOr<v1::ListSitesResponse> Client::ListSites(const v1::ListSitesRequest& request) {
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  return impl_->app_store->ListSites(request);
}

absl::StatusOr<v1::Project> Client::GetProject(absl::string_view id) {
  FS_RETURN_IF_ERROR(model::ValidateId("id", id, false));
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  return impl_->app_store->GetProject(id);
}

absl::StatusOr<v1::ListProjectsResponse> Client::ListProjects(
    const v1::ListProjectsRequest& request) {
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  return impl_->app_store->ListProjects(request);
}

// --- State -------------------------------------------------------------------------------------

absl::StatusOr<ClientStatus> Client::Status() {
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  LocalStore& store = *impl_->app_store;
  ClientStatus status;
  status.device_id = impl_->device_id;
  FS_ASSIGN_OR_RETURN(status.partner_id, store.GetState(kPartnerIdKey));
  status.server_address = impl_->server_address;
  FS_ASSIGN_OR_RETURN(status.acked_device_seq, store.GetStateInt(kAckedSeqKey));
  FS_ASSIGN_OR_RETURN(status.last_device_seq, store.GetStateInt(kLastSeqKey));
  FS_ASSIGN_OR_RETURN(status.pending_changes, store.CountOutboxAfter(status.acked_device_seq));
  FS_ASSIGN_OR_RETURN(status.last_sync_at_ms, store.GetStateInt(kLastSyncAtKey));
  FS_ASSIGN_OR_RETURN(status.cursor, store.GetState(kCursorKey));
  FS_ASSIGN_OR_RETURN(status.clock_offset_ms, store.GetStateInt(kClockOffsetKey));
  FS_ASSIGN_OR_RETURN(status.projects, store.CountLive("project"));
  FS_ASSIGN_OR_RETURN(status.sites, store.CountLive("site"));
  FS_ASSIGN_OR_RETURN(status.records, store.CountLive("record"));
  return status;
}

absl::StatusOr<std::string> Client::ServerStateChecksum() {
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  return impl_->app_store->ServerChecksum();
}

absl::StatusOr<SyncProgress> Client::Sync(const ProgressCallback& progress) {
  absl::StatusOr<SyncProgress> done = impl_->Sync(progress);
  if (!done.ok()) {
    std::string server;
    {
      std::lock_guard<std::mutex> lock(impl_->app_mu);
      server = impl_->server_address;
    }
    return ExplainPlainTextToTls(done.status(), server, impl_->options);
  }
  if (impl_->options.use_tls) {
    // It has seen its server speak TLS: from now on this store refuses plain text (Open()).
    std::lock_guard<std::mutex> lock(impl_->app_mu);
    FS_ASSIGN_OR_RETURN(std::string tls, impl_->app_store->GetState(kServerTlsKey));
    if (tls != "1") FS_RETURN_IF_ERROR(impl_->app_store->SetState(kServerTlsKey, "1"));
  }
  return done;
}

absl::Status Client::SetServerAddress(const std::string& address) {
  if (absl::Status s = CheckServerAddress(address); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("address: ", s.message()));
  }
  std::unique_lock<std::mutex> sync_lock(impl_->sync_mu, std::try_to_lock);
  if (!sync_lock.owns_lock()) {
    return absl::FailedPreconditionError(
        "a sync is running on this client; set the address after it");
  }
  std::lock_guard<std::mutex> lock(impl_->app_mu);
  FS_RETURN_IF_ERROR(impl_->app_store->SetState(kServerAddressKey, address));
  impl_->server_address = address;
  impl_->channel = MakeChannel(address, impl_->options);
  impl_->stub = v1::SyncService::NewStub(impl_->channel);
  return absl::OkStatus();
}

void Client::Cancel() { impl_->Cancel(); }

}  // namespace fieldsync::client
