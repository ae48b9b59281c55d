/* fieldsync.h: the C API of libfieldsync, for apps that embed it (Android through JNI, iOS).
 *
 *   fs_client* c = NULL;
 *   char* err = NULL;
 *   if (fs_client_open("/data/app/fieldsync.db", &c, &err) != FS_OK) { show(err); fs_free(err); }
 *   char* out = NULL;
 *   if (fs_record_create(c, json, strlen(json), &out, NULL) == FS_OK) save_id(out);
 *   else show(fs_client_last_error(c));
 *   fs_free(out);
 *   fs_sync(c, on_progress, app_ctx);   (on a background thread)
 *   fs_client_close(c);
 *
 * Data in and out is JSON: the proto3 JSON mapping of the fieldsync.v1 messages in
 * proto/fieldsync/v1/domain.proto and tracker.proto (a Record, a Site, a ListRecordsRequest as a
 * filter...). Both lowerCamelCase and the proto field names are accepted on input; output uses
 * lowerCamelCase and omits fields at their default value. Unknown fields are refused
 * (FS_INVALID_ARGUMENT). Input JSON is (pointer, length) and need not be NUL-terminated.
 *
 * Ownership: every char* the library returns through an out-parameter was allocated by the
 * library, is NUL-terminated, and must be released with fs_free(). Out-parameters are set to
 * NULL (and lengths to 0) when a call fails. The string returned by fs_client_last_error() is
 * owned by the handle.
 *
 * Threads: a fs_client may be used from several threads at once. fs_sync() blocks while it
 * runs and is meant for a background thread; the app may keep writing and reading meanwhile,
 * and fs_cancel_sync() from another thread makes it return FS_CANCELLED soon. Only one fs_sync()
 * runs at a time per handle (a second returns FS_FAILED_PRECONDITION). Do not call
 * fs_client_close() while another call on the handle is running.
 *
 * Errors: functions return FS_OK or an error code (the canonical gRPC/Abseil codes, same
 * numbers); fs_client_last_error() then describes the last failed call made on that handle by
 * the calling thread, naming the field at fault ("record.well.yield_lph: ..."). No C++
 * exception ever leaves the library. See fieldsync/client.h for what each code means.
 */
#ifndef FIELDSYNC_FIELDSYNC_H_
#define FIELDSYNC_FIELDSYNC_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define FS_EXPORT __declspec(dllexport)
#else
#define FS_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* An open device store. Opaque. */
typedef struct fs_client fs_client;

typedef enum fs_status {
  FS_OK = 0,
  /* fs_sync() was stopped by fs_cancel_sync(). */
  FS_CANCELLED = 1,
  FS_UNKNOWN = 2,
  /* Bad input, do not retry it as is; the message names the field. Also: the server refused a
   * local change during fs_sync() (it stays queued). */
  FS_INVALID_ARGUMENT = 3,
  FS_DEADLINE_EXCEEDED = 4,
  /* No such document on this device (or it was deleted). */
  FS_NOT_FOUND = 5,
  /* A create reused an id. */
  FS_ALREADY_EXISTS = 6,
  FS_PERMISSION_DENIED = 7,
  FS_RESOURCE_EXHAUSTED = 8,
  /* The store is not enrolled / already enrolled, a version mismatch, a sync is running. */
  FS_FAILED_PRECONDITION = 9,
  FS_ABORTED = 10,
  FS_OUT_OF_RANGE = 11,
  FS_UNIMPLEMENTED = 12,
  FS_INTERNAL = 13,
  /* The server could not be reached (after retries): try again later. Nothing is lost. */
  FS_UNAVAILABLE = 14,
  /* The local copy differed from the server even after a repair. */
  FS_DATA_LOSS = 15,
  /* The device's token was revoked: enroll again. */
  FS_UNAUTHENTICATED = 16
} fs_status;

typedef enum fs_sync_phase {
  FS_SYNC_HANDSHAKE = 0,
  FS_SYNC_PUSH = 1,
  FS_SYNC_PULL = 2,
  FS_SYNC_DONE = 3
} fs_sync_phase;

/* What a running fs_sync() has done so far; totals for the whole call. */
typedef struct fs_sync_progress {
  fs_sync_phase phase;
  /* Local changes the server acknowledged, out of changes_total. */
  int64_t changes_pushed;
  int64_t changes_total;
  /* Concurrent edits of the same field the server detected in our changes. */
  int64_t conflicts;
  int64_t documents_pulled;
  int64_t pages;
  /* Bytes of pulled pages before compression. */
  int64_t bytes_pulled;
  /* Attempts retried after network errors. */
  int64_t retries;
  /* 1 if the local copy was found to differ from the server and was repaired. */
  int repaired;
  /* Documents this device had written and sent again because the server was restored from a
   * backup and had lost changes it acknowledged (0 otherwise; docs/SYNC.md, "Restores"). */
  int64_t resent_documents;
  /* Local changes the server refused: moved to the rejection log (fs_rejections_json), they
   * never hold back the changes after them. */
  int64_t changes_refused;
  /* Local changes applied but flagged for HQ's review: merged with another writer's edit they
   * break a rule that spans both (each was valid alone). */
  int64_t changes_flagged;
} fs_sync_progress;

/* Called on the thread running fs_sync() after each step, and once with FS_SYNC_DONE on
 * success. `progress` is valid during the call only. It may call fs_cancel_sync(). */
typedef void (*fs_progress_fn)(const fs_sync_progress* progress, void* ctx);

/* Releases a buffer the library returned. NULL is allowed. */
FS_EXPORT void fs_free(void* p);

/* Exchanges a one-time enrollment code (from HQ) for this device's credentials and creates the
 * store at db_path. server_address is "host:port" ("[::1]:port" for IPv6). On failure *out is
 * NULL and, if out_error is not NULL, *out_error a message to fs_free().
 * Enrolling again: when db_path holds an enrolled store whose token the server refuses (HQ
 * revoked it), a new code for the same device enrolls that store again, keeping its documents
 * and its unsent changes; a code for another device is refused (FS_FAILED_PRECONDITION) and
 * stays valid. A store whose token still works is not enrolled again (FS_FAILED_PRECONDITION). */
FS_EXPORT fs_status fs_client_enroll(const char* server_address, const char* code,
                                     const char* db_path, fs_client** out, char** out_error);
/* Opens the store of an enrolled device. Same conventions as fs_client_enroll. */
FS_EXPORT fs_status fs_client_open(const char* db_path, fs_client** out, char** out_error);

/* How the library connects to the server. Zero-initialise it ({0} or memset) and set what you
 * need: every zero field keeps its default. */
typedef struct fs_connect_options {
  /* 1: connect with TLS (production); 0: plain text (loopback and tests only). A store that has
   * enrolled or synced over TLS refuses to open without it (FS_FAILED_PRECONDITION). A plain-text
   * client whose server speaks TLS gets FS_UNAVAILABLE with a message saying so. */
  int use_tls;
  /* PEM file of the CA certificate(s) the server's certificate must chain to (deploy/make-certs
   * writes ca.pem); NULL: the system's roots. Setting it implies use_tls. */
  const char* ca_file;
  /* The name the server's certificate must carry instead of the host of the server address;
   * NULL: that host. */
  const char* tls_server_name;
  /* Deadline of each call to the server, milliseconds; 0: 30000. */
  int64_t call_timeout_ms;
  /* Deadline of a whole fs_sync(), milliseconds; 0: none (retries alone bound it). */
  int64_t sync_timeout_ms;
} fs_connect_options;

/* fs_client_enroll and fs_client_open with connection options; options may be NULL (defaults).
 * FS_INVALID_ARGUMENT if ca_file cannot be read. */
FS_EXPORT fs_status fs_client_enroll_with(const char* server_address, const char* code,
                                          const char* db_path, const fs_connect_options* options,
                                          fs_client** out, char** out_error);
FS_EXPORT fs_status fs_client_open_with(const char* db_path, const fs_connect_options* options,
                                        fs_client** out, char** out_error);
/* Closes the store and frees the handle. NULL is allowed. */
FS_EXPORT void fs_client_close(fs_client* client);
/* The message of the last failed call on `client` from this thread ("" if none). Valid until
 * the next call on the handle from this thread. */
FS_EXPORT const char* fs_client_last_error(fs_client* client);

/* --- Field records: fieldsync.v1.Record JSON --------------------------------------------- */
/* Creates a record (an empty id is generated) and returns it with its derived fields. Durable
 * before the call returns; no network needed. */
FS_EXPORT fs_status fs_record_create(fs_client* client, const char* json, size_t len,
                                     char** out_json, size_t* out_len);
/* Replaces a record's site and body (id selects it). If expected_version > 0 it must equal the
 * record's audit.version (else FS_FAILED_PRECONDITION). */
FS_EXPORT fs_status fs_record_update(fs_client* client, const char* json, size_t len,
                                     int64_t expected_version, char** out_json, size_t* out_len);
FS_EXPORT fs_status fs_record_delete(fs_client* client, const char* id);
FS_EXPORT fs_status fs_record_get(fs_client* client, const char* id, char** out_json,
                                  size_t* out_len);
/* filter: fieldsync.v1.ListRecordsRequest JSON (NULL or length 0 for no filter); returns a
 * fieldsync.v1.ListRecordsResponse JSON ({"records": [...], "nextPageToken": "..."}). */
FS_EXPORT fs_status fs_record_list(fs_client* client, const char* filter_json, size_t len,
                                   char** out_json, size_t* out_len);

/* --- Sites (fieldsync.v1.Site JSON) and projects (read-only on a device) ------------------ */
FS_EXPORT fs_status fs_site_create(fs_client* client, const char* json, size_t len, char** out_json,
                                   size_t* out_len);
FS_EXPORT fs_status fs_site_update(fs_client* client, const char* json, size_t len, char** out_json,
                                   size_t* out_len);
FS_EXPORT fs_status fs_site_get(fs_client* client, const char* id, char** out_json,
                                size_t* out_len);
/* filter: fieldsync.v1.ListSitesRequest JSON; returns fieldsync.v1.ListSitesResponse JSON. */
FS_EXPORT fs_status fs_site_list(fs_client* client, const char* filter_json, size_t len,
                                 char** out_json, size_t* out_len);
FS_EXPORT fs_status fs_project_get(fs_client* client, const char* id, char** out_json,
                                   size_t* out_len);
/* filter: fieldsync.v1.ListProjectsRequest JSON; returns ListProjectsResponse JSON. */
FS_EXPORT fs_status fs_project_list(fs_client* client, const char* filter_json, size_t len,
                                    char** out_json, size_t* out_len);

/* --- Sync --------------------------------------------------------------------------------- */
/* Pushes local changes and pulls the server's, retrying network errors with backoff. Blocks.
 * progress may be NULL. */
FS_EXPORT fs_status fs_sync(fs_client* client, fs_progress_fn progress, void* ctx);
/* Makes a running fs_sync() return FS_CANCELLED soon. No effect if none runs. */
FS_EXPORT void fs_cancel_sync(fs_client* client);
/* Points the store at its server's new address ("host:port") for every later fs_sync(); the
 * token, documents and unsent changes stay, and so does the TLS rule (a store that has seen TLS
 * keeps using it). FS_INVALID_ARGUMENT for a malformed address (port 1..65535), and
 * FS_FAILED_PRECONDITION while fs_sync() runs. */
FS_EXPORT fs_status fs_client_set_server(fs_client* client, const char* server_address);
/* The sync state as JSON: {"deviceId", "partnerId", "serverAddress", "pendingChanges",
 * "ackedDeviceSeq", "lastDeviceSeq", "lastSyncAtMs", "cursor", "clockOffsetMs", "projects",
 * "sites", "records"}. */
FS_EXPORT fs_status fs_status_json(fs_client* client, char** out_json, size_t* out_len);

/* --- Changes the server refused ------------------------------------------------------------ */
/* This device's refused changes, newest first: {"rejections": [{"id", "deviceSeq",
 * "collection", "docId", "code", "reason", "rejectedAtMs", "status" (OPEN, RESUBMITTED,
 * DISMISSED), "change" (the fieldsync.v1.Change as pushed)}]}. */
FS_EXPORT fs_status fs_rejections_json(fs_client* client, char** out_json, size_t* out_len);
/* Writes a refused change's values again as a new local edit on top of the document as it is
 * now (validated like any write) and marks it RESUBMITTED. */
FS_EXPORT fs_status fs_rejection_resubmit(fs_client* client, int64_t id);
/* Marks a refused change DISMISSED. */
FS_EXPORT fs_status fs_rejection_dismiss(fs_client* client, int64_t id);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FIELDSYNC_FIELDSYNC_H_ */
