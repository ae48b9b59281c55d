// The C API: a thin shim over fieldsync::client::Client. Converts JSON <-> proto and
// absl::Status <-> fs_status, and keeps every C++ exception inside.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "fieldsync/client.h"
#include "fieldsync/fieldsync.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace v1 = ::fieldsync::v1;
using fieldsync::client::Client;

struct fs_client {
  std::unique_ptr<Client> client;
  std::mutex errors_mu;
  // The last error of each thread that used the handle.
  std::unordered_map<std::thread::id, std::string> errors;
};

namespace {

fs_status ToC(const absl::Status& s) { return static_cast<fs_status>(s.code()); }

// A malloc'ed, NUL-terminated copy for the caller to fs_free.
char* Copy(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p == nullptr) return nullptr;
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

void ClearOut(char** out, size_t* out_len) {
  if (out != nullptr) *out = nullptr;
  if (out_len != nullptr) *out_len = 0;
}

void SetError(fs_client* c, const absl::Status& s) {
  std::lock_guard<std::mutex> lock(c->errors_mu);
  c->errors[std::this_thread::get_id()] = s.ok() ? "" : std::string(s.message());
}

// Runs `body` with every exception turned into INTERNAL, and records the error per thread.
template <typename Body>
fs_status Guard(fs_client* c, Body&& body) {
  if (c == nullptr || !c->client) return FS_INVALID_ARGUMENT;
  absl::Status s;
  try {
    s = body();
  } catch (const std::exception& e) {
    s = absl::InternalError(absl::StrCat("internal error: ", e.what()));
  } catch (...) {
    s = absl::InternalError("internal error");
  }
  try {
    SetError(c, s);
  } catch (...) {
  }
  return ToC(s);
}

absl::Status FromJson(const char* json, size_t len, google::protobuf::Message* out,
                      absl::string_view what) {
  out->Clear();
  if (json == nullptr || len == 0) return absl::OkStatus();
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto s = google::protobuf::util::JsonStringToMessage(google::protobuf::StringPiece(json, len),
                                                       out, options);
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a valid ",
                                                   out->GetDescriptor()->full_name(),
                                                   " JSON: ", std::string(s.message())));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& m) {
  std::string json;
  auto s = google::protobuf::util::MessageToJsonString(m, &json);
  if (!s.ok()) return absl::InternalError(std::string(s.message()));
  return json;
}

// Writes the JSON of `result`'s message to the out-parameters.
template <typename T>
absl::Status Emit(const absl::StatusOr<T>& result, char** out, size_t* out_len) {
  if (!result.ok()) return result.status();
  absl::StatusOr<std::string> json = ToJson(*result);
  if (!json.ok()) return json.status();
  if (out != nullptr) {
    *out = Copy(*json);
    if (*out == nullptr) return absl::ResourceExhaustedError("out of memory");
  }
  if (out_len != nullptr) *out_len = json->size();
  return absl::OkStatus();
}

absl::Status CheckId(const char* id) {
  if (id == nullptr) return absl::InvalidArgumentError("id: must not be NULL");
  return absl::OkStatus();
}

template <typename Open>
fs_status OpenWith(Open&& open, fs_client** out, char** out_error) {
  if (out_error != nullptr) *out_error = nullptr;
  if (out == nullptr) return FS_INVALID_ARGUMENT;
  *out = nullptr;
  absl::Status s;
  try {
    absl::StatusOr<std::unique_ptr<Client>> client = open();
    if (client.ok()) {
      auto handle = std::make_unique<fs_client>();
      handle->client = *std::move(client);
      *out = handle.release();
      return FS_OK;
    }
    s = client.status();
  } catch (const std::exception& e) {
    s = absl::InternalError(absl::StrCat("internal error: ", e.what()));
  } catch (...) {
    s = absl::InternalError("internal error");
  }
  if (out_error != nullptr) *out_error = Copy(std::string(s.message()));
  return ToC(s);
}

// ClientOptions from the C options (NULL: the defaults).
absl::StatusOr<fieldsync::client::ClientOptions> FromC(const fs_connect_options* c) {
  fieldsync::client::ClientOptions options;
  if (c == nullptr) return options;
  if (c->call_timeout_ms < 0 || c->sync_timeout_ms < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        c->call_timeout_ms < 0 ? "call_timeout_ms" : "sync_timeout_ms", ": must not be negative"));
  }
  if (c->call_timeout_ms > 0) options.call_timeout_ms = c->call_timeout_ms;
  options.sync_timeout_ms = c->sync_timeout_ms;
  options.use_tls = c->use_tls != 0;
  if (c->ca_file != nullptr) {
    std::ifstream file(c->ca_file, std::ios::binary);
    if (!file) {
      return absl::InvalidArgumentError(
          absl::StrCat("ca_file: cannot read '", c->ca_file, "': ", std::strerror(errno)));
    }
    std::stringstream pem;
    pem << file.rdbuf();
    options.tls_root_certs_pem = pem.str();
    options.use_tls = true;
  }
  if (c->tls_server_name != nullptr) options.tls_server_name = c->tls_server_name;
  return options;
}

}  // namespace

extern "C" {

void fs_free(void* p) { std::free(p); }

fs_status fs_client_enroll(const char* server_address, const char* code, const char* db_path,
                           fs_client** out, char** out_error) {
  return OpenWith(
      [&]() -> absl::StatusOr<std::unique_ptr<Client>> {
        if (server_address == nullptr || code == nullptr || db_path == nullptr) {
          return absl::InvalidArgumentError("server_address, code and db_path must not be NULL");
        }
        return Client::Enroll(server_address, code, db_path);
      },
      out, out_error);
}

fs_status fs_client_enroll_with(const char* server_address, const char* code,
                                const char* db_path, const fs_connect_options* options,
                                fs_client** out, char** out_error) {
  return OpenWith(
      [&]() -> absl::StatusOr<std::unique_ptr<Client>> {
        if (server_address == nullptr || code == nullptr || db_path == nullptr) {
          return absl::InvalidArgumentError("server_address, code and db_path must not be NULL");
        }
        absl::StatusOr<fieldsync::client::ClientOptions> opts = FromC(options);
        if (!opts.ok()) return opts.status();
        return Client::Enroll(server_address, code, db_path, *opts);
      },
      out, out_error);
}

fs_status fs_client_open_with(const char* db_path, const fs_connect_options* options,
                              fs_client** out, char** out_error) {
  return OpenWith(
      [&]() -> absl::StatusOr<std::unique_ptr<Client>> {
        if (db_path == nullptr) return absl::InvalidArgumentError("db_path: must not be NULL");
        absl::StatusOr<fieldsync::client::ClientOptions> opts = FromC(options);
        if (!opts.ok()) return opts.status();
        return Client::Open(db_path, *opts);
      },
      out, out_error);
}

fs_status fs_client_open(const char* db_path, fs_client** out, char** out_error) {
  return OpenWith(
      [&]() -> absl::StatusOr<std::unique_ptr<Client>> {
        if (db_path == nullptr) return absl::InvalidArgumentError("db_path: must not be NULL");
        return Client::Open(db_path);
      },
      out, out_error);
}

void fs_client_close(fs_client* client) {
  try {
    delete client;
  } catch (...) {
  }
}

const char* fs_client_last_error(fs_client* client) {
  if (client == nullptr) return "client: NULL handle";
  try {
    std::lock_guard<std::mutex> lock(client->errors_mu);
    // Node-based map: the string's address is stable until this thread's next call.
    return client->errors[std::this_thread::get_id()].c_str();
  } catch (...) {
    return "";
  }
}

fs_status fs_record_create(fs_client* client, const char* json, size_t len, char** out_json,
                           size_t* out_len) {
  ClearOut(out_json, out_len);
  return Guard(client, [&]() -> absl::Status {
    v1::Record record;
    if (absl::Status s = FromJson(json, len, &record, "record"); !s.ok()) return s;
    return Emit(client->client->CreateRecord(std::move(record)), out_json, out_len);
  });
}

fs_status fs_record_update(fs_client* client, const char* json, size_t len,
                           int64_t expected_version, char** out_json, size_t* out_len) {
  ClearOut(out_json, out_len);
  return Guard(client, [&]() -> absl::Status {
    v1::Record record;
    if (absl::Status s = FromJson(json, len, &record, "record"); !s.ok()) return s;
    return Emit(client->client->UpdateRecord(std::move(record), expected_version), out_json,
                out_len);
  });
}

fs_status fs_record_delete(fs_client* client, const char* id) {
  return Guard(client, [&]() -> absl::Status {
    if (absl::Status s = CheckId(id); !s.ok()) return s;
    return client->client->DeleteRecord(id);
  });
}

fs_status fs_record_get(fs_client* client, const char* id, char** out_json, size_t* out_len) {
  ClearOut(out_json, out_len);
  return Guard(client, [&]() -> absl::Status {
    if (absl::Status s = CheckId(id); !s.ok()) return s;
    return Emit(client->client->GetRecord(id), out_json, out_len);
  });
}

fs_status fs_record_list(fs_client* client, const char* filter_json, size_t len, char** out_json,
                         size_t* out_len) {
  ClearOut(out_json, out_len);
  return Guard(client, [&]() -> absl::Status {
    v1::ListRecordsRequest filter;
    if (absl::Status s = FromJson(filter_json, len, &filter, "filter"); !s.ok()) return s;
    return Emit(client->client->ListRecords(filter), out_json, out_len);
  });
}

fs_status fs_site_create(fs_client* client, const char* json, size_t len, char** out_json,
                         size_t* out_len) {
  ClearOut(out_json, out_len);
  return Guard(client, [&]() -> absl::Status {
    v1::Site site;
    if (absl::Status s = FromJson(json, len, &site, "site"); !s.ok()) return s;
    return Emit(client->client->CreateSite(std::move(site)), out_json, out_len);
  });
}

fs_status fs_site_update(fs_client* client, const char* json, size_t len, char** out_json,
                         size_t* out_len) {
  ClearOut(out_json, out_len);
  return Guard(client, [&]() -> absl::Status {
    v1::Site site;
    if (absl::Status s = FromJson(json, len, &site, "site"); !s.ok()) return s;
    return Emit(client->client->UpdateSite(std::move(site)), out_json, out_len);
  });
}

fs_status fs_site_get(fs_client* client, const char* id, char** out_json, size_t* out_len) {
  ClearOut(out_json, out_len);
  return Guard(client, [&]() -> absl::Status {
    if (absl::Status s = CheckId(id); !s.ok()) return s;
    return Emit(client->client->GetSite(id), out_json, out_len);
  });
}

fs_status fs_site_list(fs_client* client, const char* filter_json, size_t len, char** out_json,
                       size_t* out_len) {
  ClearOut(out_json, out_len);
  return Guard(client, [&]() -> absl::Status {
    v1::ListSitesRequest filter;
    if (absl::Status s = FromJson(filter_json, len, &filter, "filter"); !s.ok()) return s;
    return Emit(client->client->ListSites(filter), out_json, out_len);
  });
}

fs_status fs_project_get(fs_client* client, const char* id, char** out_json, size_t* out_len) {
  ClearOut(out_json, out_len);
  return Guard(client, [&]() -> absl::Status {
    if (absl::Status s = CheckId(id); !s.ok()) return s;
    return Emit(client->client->GetProject(id), out_json, out_len);
  });
}

fs_status fs_project_list(fs_client* client, const char* filter_json, size_t len, char** out_json,
                          size_t* out_len) {
  ClearOut(out_json, out_len);
  return Guard(client, [&]() -> absl::Status {
    v1::ListProjectsRequest filter;
    if (absl::Status s = FromJson(filter_json, len, &filter, "filter"); !s.ok()) return s;
    return Emit(client->client->ListProjects(filter), out_json, out_len);
  });
}

fs_status fs_sync(fs_client* client, fs_progress_fn progress, void* ctx) {
  return Guard(client, [&]() -> absl::Status {
    fieldsync::client::ProgressCallback callback;
    if (progress != nullptr) {
      callback = [progress, ctx](const fieldsync::client::SyncProgress& p) {
        fs_sync_progress c{};
        c.phase = static_cast<fs_sync_phase>(p.phase);
        c.changes_pushed = p.changes_pushed;
        c.changes_total = p.changes_total;
        c.conflicts = p.conflicts;
        c.documents_pulled = p.documents_pulled;
        c.pages = p.pages;
        c.bytes_pulled = p.bytes_pulled;
        c.retries = p.retries;
        c.repaired = p.repaired ? 1 : 0;
        c.resent_documents = p.resent_documents;
        c.changes_refused = p.changes_refused;
        c.changes_flagged = p.changes_flagged;
        progress(&c, ctx);
      };
    }
    return client->client->Sync(callback).status();
  });
}

void fs_cancel_sync(fs_client* client) {
  if (client == nullptr || !client->client) return;
  try {
    client->client->Cancel();
  } catch (...) {
  }
}

fs_status fs_client_set_server(fs_client* client, const char* server_address) {
  return Guard(client, [&]() -> absl::Status {
    if (server_address == nullptr) {
      return absl::InvalidArgumentError("server_address: must not be NULL");
    }
    return client->client->SetServerAddress(server_address);
  });
}

fs_status fs_status_json(fs_client* client, char** out_json, size_t* out_len) {
  ClearOut(out_json, out_len);
  return Guard(client, [&]() -> absl::Status {
    absl::StatusOr<fieldsync::client::ClientStatus> st = client->client->Status();
    if (!st.ok()) return st.status();
    google::protobuf::Struct s;
    auto& f = *s.mutable_fields();
    f["deviceId"].set_string_value(st->device_id);
    f["partnerId"].set_string_value(st->partner_id);
    f["serverAddress"].set_string_value(st->server_address);
    f["pendingChanges"].set_number_value(static_cast<double>(st->pending_changes));
    f["ackedDeviceSeq"].set_number_value(static_cast<double>(st->acked_device_seq));
    f["lastDeviceSeq"].set_number_value(static_cast<double>(st->last_device_seq));
    f["lastSyncAtMs"].set_number_value(static_cast<double>(st->last_sync_at_ms));
    f["cursor"].set_string_value(st->cursor);
    f["clockOffsetMs"].set_number_value(static_cast<double>(st->clock_offset_ms));
    f["projects"].set_number_value(static_cast<double>(st->projects));
    f["sites"].set_number_value(static_cast<double>(st->sites));
    f["records"].set_number_value(static_cast<double>(st->records));
    return Emit(absl::StatusOr<google::protobuf::Struct>(s), out_json, out_len);
  });
}

fs_status fs_rejections_json(fs_client* client, char** out_json, size_t* out_len) {
  ClearOut(out_json, out_len);
  return Guard(client, [&]() -> absl::Status {
    absl::StatusOr<std::vector<fieldsync::client::Rejection>> listed = client->client->Rejections();
    if (!listed.ok()) return listed.status();
    google::protobuf::Struct out;
    google::protobuf::ListValue* list = (*out.mutable_fields())["rejections"].mutable_list_value();
    for (const fieldsync::client::Rejection& r : *listed) {
      google::protobuf::Struct* item = list->add_values()->mutable_struct_value();
      auto& f = *item->mutable_fields();
      f["id"].set_number_value(static_cast<double>(r.id));
      f["deviceSeq"].set_number_value(static_cast<double>(r.device_seq));
      f["collection"].set_string_value(r.collection);
      f["docId"].set_string_value(r.doc_id);
      f["code"].set_number_value(r.code);
      f["reason"].set_string_value(r.reason);
      f["rejectedAtMs"].set_number_value(static_cast<double>(r.rejected_at_ms));
      f["status"].set_string_value(r.status);
      std::string change_json;
      google::protobuf::Struct change;
      if (google::protobuf::util::MessageToJsonString(r.change, &change_json).ok() &&
          google::protobuf::util::JsonStringToMessage(change_json, &change).ok()) {
        *f["change"].mutable_struct_value() = change;
      }
    }
    return Emit(absl::StatusOr<google::protobuf::Struct>(out), out_json, out_len);
  });
}

fs_status fs_rejection_resubmit(fs_client* client, int64_t id) {
  return Guard(client, [&]() -> absl::Status { return client->client->ResubmitRejection(id); });
}

fs_status fs_rejection_dismiss(fs_client* client, int64_t id) {
  return Guard(client, [&]() -> absl::Status { return client->client->DismissRejection(id); });
}

}  // extern "C"
