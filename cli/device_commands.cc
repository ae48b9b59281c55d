// Commands of a field device: its local database (libfieldsync's store, --device-db) and sync.
// Everything but 'device enroll' and 'sync' works offline; none of them uses --token (the device
// keeps its own).
#include <unistd.h>

#include <limits>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/interrupt.h"
#include "cli/invocation.h"
#include "cli/listing.h"
#include "cli/output.h"
#include "cli/records.h"
#include "cli/sync_progress.h"
#include "cli/values.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/client.h"

namespace fieldsync::cli {
namespace {

using client::Client;
using client::ClientOptions;
using client::ClientStatus;
using client::SyncProgress;

constexpr char kTlsOnlyHint[] =
    "give --ca-file PATH (or set FIELDSYNC_CA_FILE), or --tls for a server certificate from a "
    "public CA";

constexpr char kEnrollHint[] =
    "enroll this device first with 'fieldsync device enroll --code CODE' (HQ makes codes with "
    "'fieldsync devices enroll-code DEVICE_ID'), or name its database with --device-db PATH or "
    "FIELDSYNC_DEVICE_DB";

std::string DeviceDbPath(const Invocation& inv) {
  return inv.flags().Has("device-db") ? inv.flags().Get("device-db") : inv.options().device_db;
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// `status` with "<what>: " before its message, its code kept.
absl::Status Prefixed(absl::string_view what, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

// A failed call that libfieldsync made to fieldsyncd, worded like the CLI's own calls (see
// Invocation::FromGrpc); `unreachable_hint` follows when the server could not be reached.
absl::Status NetworkError(absl::string_view what, const std::string& server,
                          const absl::Status& status, absl::string_view unreachable_hint,
                          const GlobalOptions& options) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      if (!options.tls && absl::StrContains(status.message(), "speaks TLS")) {
        // libfieldsync probed the server after the plain-text connection failed.
        return WithHint(
            absl::Status(status.code(),
                         absl::StrCat(what, ": the server at ", server, " speaks TLS; ", what,
                                      " with --ca-file FILE: ", status.message())),
            "FILE is the CA certificate the server's certificate chains to (deploy/make-certs "
            "writes ca.pem); --tls instead for a certificate from a public CA");
      }
      if (options.tls && LooksLikeTls(status.message())) {
        GlobalOptions tls = options;
        tls.server = server;
        return absl::Status(status.code(),
                            absl::StrCat(what, ": ", TlsFailure(tls), ": ", status.message()));
      }
      [[fallthrough]];
    case absl::StatusCode::kDeadlineExceeded:
      return WithHint(
          absl::Status(status.code(), absl::StrCat(what, ": cannot reach fieldsyncd at ", server,
                                                   " (is it running?): ", status.message())),
          unreachable_hint);
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      if (absl::StrContains(status.message(), "disabled")) {
        return WithHint(
            Prefixed(absl::StrCat(what, ": the server refused this device's token"), status),
            "HQ has disabled this device; nothing recorded here is lost, and it syncs again "
            "once HQ enables it ('fieldsync devices enable DEVICE_ID')");
      }
      return WithHint(
          Prefixed(absl::StrCat(what, ": the server refused this device's token"), status),
          "HQ may have revoked it: ask HQ for a new code ('fieldsync devices enroll-code "
          "DEVICE_ID') and enroll this database again with it ('fieldsync device enroll --code "
          "CODE'): its unsent records stay and go with the next sync");
    case absl::StatusCode::kResourceExhausted:
      if (IsRateLimited(status)) {
        return WithHint(
            Prefixed(absl::StrCat(what, ": the server is limiting how often this device syncs"),
                     status),
            "nothing is lost; wait as long as the server asks and sync again");
      }
      // Not a rate limit: the server could not store the request (its disk or database is
      // full, or it ran out of memory). The write was rolled back whole.
      return WithHint(
          Prefixed(absl::StrCat(what,
                                ": the server could not store this (its storage is full "
                                "or it is out of resources)"),
                   status),
          "nothing was changed on the server and nothing is lost here (an enrollment code stays "
          "valid); ask HQ to free space on the server, then run this again");
    default:
      return Prefixed(what, status);
  }
}

absl::StatusOr<ClientOptions> ClientOptionsFor(const Invocation& inv) {
  ClientOptions options;
  options.call_timeout_ms = absl::ToInt64Milliseconds(inv.options().timeout);
  if (!inv.options().ca_file.empty()) {
    std::ifstream file(inv.options().ca_file, std::ios::binary);
    if (!file) {
      return UsageError(absl::StrCat("--ca-file: cannot read '", inv.options().ca_file,
                                     "': ", std::strerror(errno)));
    }
    std::stringstream pem;
    pem << file.rdbuf();
    options.tls_root_certs_pem = pem.str();
  }
  options.use_tls = inv.options().tls;
  options.tls_server_name = inv.options().tls_server_name;
  return options;
}

// The enrolled device whose database --device-db names.
absl::StatusOr<std::unique_ptr<Client>> OpenDevice(const Invocation& inv,
                                                   const ClientOptions& options) {
  const std::string path = DeviceDbPath(inv);
  if (path.empty()) return UsageError("--device-db: must name a file, got ''");
  // Client::Open refuses a missing file too; this says what to do about it.
  if (!Exists(path)) {
    return WithHint(absl::FailedPreconditionError(absl::StrCat("no device database at ", path)),
                    kEnrollHint);
  }
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Open(path, options);
  if (client.status().code() == absl::StatusCode::kFailedPrecondition &&
      absl::StrContains(client.status().message(), "over TLS")) {
    return WithHint(Prefixed(absl::StrCat("open device database ", path), client.status()),
                    kTlsOnlyHint);
  }
  if (client.status().code() == absl::StatusCode::kFailedPrecondition) {
    return WithHint(Prefixed(absl::StrCat("open device database ", path), client.status()),
                    kEnrollHint);
  }
  if (!client.ok()) return Prefixed(absl::StrCat("open device database ", path), client.status());
  return client;
}

absl::StatusOr<std::unique_ptr<Client>> OpenDevice(const Invocation& inv) {
  FS_ASSIGN_OR_RETURN(ClientOptions options, ClientOptionsFor(inv));
  return OpenDevice(inv, options);
}

// After a local write: how much waits for the next sync (a hint on stderr, not a result).
void PrintPending(Invocation& inv, Client& client) {
  if (inv.json()) return;
  absl::StatusOr<ClientStatus> status = client.Status();
  if (!status.ok()) return;
  inv.err() << "(saved on this device; " << Counted(status->pending_changes, "change")
            << " waiting for 'fieldsync sync')\n";
}

}  // namespace

absl::Status RunDeviceEnroll(Invocation& inv) {
  const std::string path = DeviceDbPath(inv);
  if (path.empty()) return UsageError("--device-db: must name a file, got ''");
  FS_ASSIGN_OR_RETURN(ClientOptions options, ClientOptionsFor(inv));
  std::string server = inv.options().server;
  const bool existed = Exists(path);
  if (existed && !inv.global_flags().Has("server")) {
    // A database enrolling again does so with the server it syncs with, unless told otherwise.
    absl::StatusOr<std::unique_ptr<Client>> current = Client::Open(path, options);
    if (current.ok()) {
      absl::StatusOr<ClientStatus> status = (*current)->Status();
      if (status.ok() && !status->server_address.empty()) server = status->server_address;
    }
  }
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Enroll(server, inv.flags().Get("code"), path, options);
  if (!client.ok()) {
    // libfieldsync creates the database before asking the server; a failed enrollment must not
    // leave an empty one behind.
    if (!existed) {
      for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
        std::remove(absl::StrCat(path, suffix).c_str());
      }
    }
    const absl::Status& status = client.status();
    switch (status.code()) {
      case absl::StatusCode::kFailedPrecondition:
        if (absl::StrContains(status.message(), "over TLS")) {
          return WithHint(Prefixed("enroll", status), kTlsOnlyHint);
        }
        if (absl::StrContains(status.message(), "disabled")) {
          return WithHint(Prefixed("enroll", status),
                          "HQ has disabled this device; it can enroll once HQ enables it again "
                          "('fieldsync devices enable DEVICE_ID')");
        }
        if (absl::StrContains(status.message(), "another device")) {
          return WithHint(Prefixed("enroll: the server refused the code", status),
                          "this database belongs to its own device: ask HQ for a code for that "
                          "device ('fieldsync device status' shows its id), or enroll the other "
                          "device with a new --device-db PATH");
        }
        return WithHint(Prefixed("enroll", status),
                        "a device database is enrolled again only once HQ has revoked its token; "
                        "give a new --device-db PATH to enroll another device");
      case absl::StatusCode::kNotFound:
      case absl::StatusCode::kInvalidArgument:
        return WithHint(Prefixed("enroll: the server refused the code", status),
                        "codes are single-use and expire; HQ makes a new one with 'fieldsync "
                        "devices enroll-code DEVICE_ID'");
      case absl::StatusCode::kUnauthenticated:
        // Only the check of an enrolled database's token gives this; say it as it is.
        return Prefixed("enroll", status);
      default:
        return NetworkError("enroll", server, status,
                            "check --server; the code stays valid until it is used or expires",
                            inv.options());
    }
  }
  absl::StatusOr<ClientStatus> status = (*client)->Status();
  FS_RETURN_IF_ERROR(Prefixed("enroll", status.status()));
  if (inv.json()) {
    PrintJson(inv.out(), JsonObject()
                             .AddString("device_id", status->device_id)
                             .AddString("partner_id", status->partner_id)
                             .AddString("server_address", status->server_address)
                             .AddString("device_db", path));
    return absl::OkStatus();
  }
  inv.out() << "Enrolled this device as " << status->device_id << " (partner " << status->partner_id
            << ") with fieldsyncd at " << status->server_address << ".\n"
            << "Its data is kept in " << path
            << "; run 'fieldsync sync' to receive its partner's projects.\n";
  return absl::OkStatus();
}

absl::Status RunDeviceSetServer(Invocation& inv) {
  const std::string& address = inv.arg(0);
  if (absl::Status s = client::CheckServerAddress(address); !s.ok()) {
    return UsageError(absl::StrCat("HOST:PORT: ", s.message()));
  }
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, OpenDevice(inv));
  absl::StatusOr<ClientStatus> before = client->Status();
  FS_RETURN_IF_ERROR(Prefixed("set server", before.status()));
  FS_RETURN_IF_ERROR(Prefixed("set server", client->SetServerAddress(address)));
  if (inv.json()) {
    PrintJson(inv.out(), JsonObject()
                             .AddString("device_id", before->device_id)
                             .AddString("server_address", address)
                             .AddString("previous_server_address", before->server_address)
                             .AddString("device_db", DeviceDbPath(inv)));
    return absl::OkStatus();
  }
  inv.out() << "This device now syncs with fieldsyncd at " << address << " (was "
            << before->server_address << "); its records and unsent changes stay.\n";
  return absl::OkStatus();
}

absl::Status RunDeviceStatus(Invocation& inv) {
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, OpenDevice(inv));
  absl::StatusOr<ClientStatus> status = client->Status();
  FS_RETURN_IF_ERROR(Prefixed("device status", status.status()));
  const std::string path = DeviceDbPath(inv);
  if (inv.json()) {
    PrintJson(inv.out(), JsonObject()
                             .AddString("device_id", status->device_id)
                             .AddString("partner_id", status->partner_id)
                             .AddString("server_address", status->server_address)
                             .AddString("device_db", path)
                             .AddInt("pending_changes", status->pending_changes)
                             .AddString("last_sync_at", FormatUnixMillis(status->last_sync_at_ms))
                             .AddString("cursor", status->cursor)
                             .AddInt("acked_device_seq", status->acked_device_seq)
                             .AddInt("last_device_seq", status->last_device_seq)
                             .AddInt("clock_offset_ms", status->clock_offset_ms)
                             .AddInt("projects", status->projects)
                             .AddInt("sites", status->sites)
                             .AddInt("records", status->records));
    return absl::OkStatus();
  }
  PrintPairs(
      inv.out(),
      {
          {"device", status->device_id},
          {"partner", status->partner_id},
          {"server", status->server_address},
          {"database", path},
          {"pending changes", absl::StrCat(status->pending_changes)},
          {"last sync",
           status->last_sync_at_ms == 0 ? "never" : FormatUnixMillis(status->last_sync_at_ms)},
          {"cursor", status->cursor.empty() ? "(none: nothing pulled yet)" : status->cursor},
          {"device_seq",
           absl::StrCat("last ", status->last_device_seq, ", acked ", status->acked_device_seq)},
          {"clock offset",
           absl::StrCat(status->clock_offset_ms > 0 ? "+" : "", status->clock_offset_ms, " ms")},
          {"local documents",
           absl::StrCat(Counted(status->projects, "project"), ", ", Counted(status->sites, "site"),
                        ", ", Counted(status->records, "record"))},
      });
  return absl::OkStatus();
}

absl::Status RunDeviceRecordsList(Invocation& inv) {
  v1::ListRecordsRequest request;
  FS_RETURN_IF_ERROR(ApplyRecordFilters(inv.flags(), &request));
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, OpenDevice(inv));
  const std::function<absl::Status(const v1::ListRecordsRequest&, v1::ListRecordsResponse*)> fetch =
      [&](const v1::ListRecordsRequest& page_request, v1::ListRecordsResponse* page) {
        absl::StatusOr<v1::ListRecordsResponse> listed = client->ListRecords(page_request);
        FS_RETURN_IF_ERROR(Prefixed("list records", listed.status()));
        *page = *std::move(listed);
        return absl::OkStatus();
      };
  return ListPagesAndPrint(inv, "records", fetch, request, &v1::ListRecordsResponse::records,
                           RecordColumns());
}

absl::Status RunDeviceRecordsGet(Invocation& inv) {
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, OpenDevice(inv));
  absl::StatusOr<v1::Record> record = client->GetRecord(inv.arg(0));
  FS_RETURN_IF_ERROR(Prefixed(absl::StrCat("get record ", inv.arg(0)), record.status()));
  inv.Print(*record);
  return absl::OkStatus();
}

absl::Status RunDeviceRecordsAdd(Invocation& inv) {
  FS_ASSIGN_OR_RETURN(RecordInput input, ReadRecordFlag(inv));
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, OpenDevice(inv));
  absl::StatusOr<v1::Record> created = client->CreateRecord(std::move(input.record));
  FS_RETURN_IF_ERROR(Prefixed("add record", created.status()));
  inv.Print(*created);
  PrintPending(inv, *client);
  return absl::OkStatus();
}

absl::Status RunDeviceRecordsEdit(Invocation& inv) {
  const std::string& id = inv.arg(0);
  FS_ASSIGN_OR_RETURN(RecordInput input, ReadRecordFlag(inv));
  if (!input.record.id().empty() && input.record.id() != id) {
    return UsageError(absl::StrCat("the record JSON has id '", input.record.id(), "', not ", id));
  }
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, OpenDevice(inv));
  const std::string what = absl::StrCat("edit record ", id);
  absl::StatusOr<v1::Record> record = client->GetRecord(id);
  FS_RETURN_IF_ERROR(Prefixed(what, record.status()));
  FS_RETURN_IF_ERROR(Prefixed(what, ApplyRecordPatch(input, &*record)));
  record->set_id(id);
  absl::StatusOr<v1::Record> updated = client->UpdateRecord(*std::move(record));
  FS_RETURN_IF_ERROR(Prefixed(what, updated.status()));
  inv.Print(*updated);
  PrintPending(inv, *client);
  return absl::OkStatus();
}

absl::Status RunDeviceRecordsDelete(Invocation& inv) {
  const std::string& id = inv.arg(0);
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, OpenDevice(inv));
  const std::string what = absl::StrCat("delete record ", id);
  absl::StatusOr<v1::Record> record = client->GetRecord(id);
  FS_RETURN_IF_ERROR(Prefixed(what, record.status()));
  FS_RETURN_IF_ERROR(Prefixed(what, client->DeleteRecord(id)));
  if (inv.json()) {
    PrintJson(inv.out(), *record);
    return absl::OkStatus();
  }
  inv.out() << "Deleted record " << id << " (" << RecordKindLabel(record->kind()) << ", "
            << record->record_date() << ", project " << record->project_id()
            << ") on this device.\n";
  PrintPending(inv, *client);
  return absl::OkStatus();
}

absl::Status RunDeviceRejections(Invocation& inv) {
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, OpenDevice(inv));
  absl::StatusOr<std::vector<client::Rejection>> rejections = client->Rejections();
  FS_RETURN_IF_ERROR(Prefixed("device rejections", rejections.status()));
  if (inv.json()) {
    for (const client::Rejection& r : *rejections) {
      PrintJson(inv.out(), JsonObject()
                               .AddInt("id", r.id)
                               .AddString("status", r.status)
                               .AddInt("device_seq", r.device_seq)
                               .AddString("collection", r.collection)
                               .AddString("doc_id", r.doc_id)
                               .AddInt("code", r.code)
                               .AddString("reason", r.reason)
                               .AddString("rejected_at", FormatUnixMillis(r.rejected_at_ms))
                               .AddMessage("change", r.change));
    }
    return absl::OkStatus();
  }
  if (rejections->empty()) {
    inv.out() << "No refused changes on this device.\n";
    return absl::OkStatus();
  }
  for (const client::Rejection& r : *rejections) {
    inv.out() << r.id << "  " << r.status << "  " << FormatUnixMillis(r.rejected_at_ms) << "  "
              << r.collection << " " << r.doc_id << "\n    " << r.reason << "\n";
  }
  return absl::OkStatus();
}

namespace {

absl::StatusOr<int64_t> RejectionId(Invocation& inv) {
  return ParseInt("ID", inv.arg(0), 1, std::numeric_limits<int64_t>::max());
}

}  // namespace

absl::Status RunDeviceRejectionResubmit(Invocation& inv) {
  FS_ASSIGN_OR_RETURN(int64_t id, RejectionId(inv));
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, OpenDevice(inv));
  FS_RETURN_IF_ERROR(Prefixed("resubmit", client->ResubmitRejection(id)));
  inv.out() << "Queued refused change " << id << " again; 'fieldsync sync' sends it.\n";
  return absl::OkStatus();
}

absl::Status RunDeviceRejectionDismiss(Invocation& inv) {
  FS_ASSIGN_OR_RETURN(int64_t id, RejectionId(inv));
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, OpenDevice(inv));
  FS_RETURN_IF_ERROR(Prefixed("dismiss", client->DismissRejection(id)));
  inv.out() << "Dismissed refused change " << id << ".\n";
  return absl::OkStatus();
}

absl::Status RunSync(Invocation& inv) {
  FS_ASSIGN_OR_RETURN(ClientOptions options, ClientOptionsFor(inv));
  if (inv.flags().Has("attempts")) {
    FS_ASSIGN_OR_RETURN(int64_t attempts,
                        ParseInt("attempts", inv.flags().Get("attempts"), 1, 1000));
    options.retry.max_attempts = static_cast<int>(attempts);
  }
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, OpenDevice(inv, options));
  absl::StatusOr<ClientStatus> before = client->Status();
  FS_RETURN_IF_ERROR(Prefixed("sync", before.status()));
  const std::string& server = before->server_address;
  // The device's token is only good with the server it enrolled with.
  if (inv.global_flags().Has("server") && inv.global_flags().Get("server") != server) {
    return UsageError(absl::StrCat("--server: this device syncs with ", server,
                                   ", where it enrolled, not with ",
                                   inv.global_flags().Get("server")));
  }

  SyncProgressPrinter::Style style = SyncProgressPrinter::kLines;
  if (inv.flags().Has("quiet")) {
    style = SyncProgressPrinter::kQuiet;
  } else if (inv.err_is_tty()) {
    style = SyncProgressPrinter::kBar;
  }
  SyncProgressPrinter reporter(inv.err(), style);
  absl::StatusOr<SyncProgress> done;
  {
    InterruptHandler interrupt([&client] { client->Cancel(); });
    done = client->Sync([&reporter](const SyncProgress& p) { reporter.Update(p); });
  }
  reporter.Finish();
  if (done.status().code() == absl::StatusCode::kCancelled) {
    return WithHint(absl::CancelledError("sync: cancelled"),
                    "nothing is lost: what was pushed or pulled is kept, and the next 'fieldsync "
                    "sync' continues from there");
  }
  if (!done.ok()) {
    return NetworkError("sync", server, done.status(),
                        "what this device recorded stays in its database; sync again when the "
                        "server can be reached",
                        inv.options());
  }

  if (inv.json()) {
    PrintJson(inv.out(), JsonObject()
                             .AddString("server_address", server)
                             .AddInt("changes_pushed", done->changes_pushed)
                             .AddInt("changes_total", done->changes_total)
                             .AddInt("conflicts", done->conflicts)
                             .AddInt("documents_pulled", done->documents_pulled)
                             .AddInt("pages", done->pages)
                             .AddInt("bytes_pulled", done->bytes_pulled)
                             .AddInt("retries", done->retries)
                             .AddBool("repaired", done->repaired)
                             .AddBool("rebased", done->rebased)
                             .AddInt("resent_documents", done->resent_documents)
                             .AddInt("changes_refused", done->changes_refused)
                             .AddInt("changes_flagged", done->changes_flagged));
    return absl::OkStatus();
  }
  inv.out() << "Synced with " << server << ": pushed " << Counted(done->changes_pushed, "change")
            << ", pulled " << Counted(done->documents_pulled, "document") << " in "
            << Counted(done->pages, "page") << ", " << Counted(done->conflicts, "conflict");
  if (done->retries > 0) inv.out() << ", " << Counted(done->retries, "retry", "retries");
  if (done->repaired) inv.out() << "; the local copy was repaired by a full re-pull";
  inv.out() << ".\n";
  if (done->changes_refused > 0) {
    inv.out() << "The server refused " << Counted(done->changes_refused, "change")
              << ": see 'fieldsync device rejections' (nothing else waits for them).\n";
  }
  if (done->changes_flagged > 0) {
    inv.out() << Counted(done->changes_flagged, "change")
              << " merged with another writer's edit into a record that breaks a rule; "
                 "HQ reviews it ('fieldsync conflicts list').\n";
  }
  if (done->rebased) {
    inv.out() << "The server was restored from a backup: resent "
              << Counted(done->resent_documents, "document")
              << " this device had written, and pulled everything again.\n";
  }
  return absl::OkStatus();
}

}  // namespace fieldsync::cli
