/* The C API used from real C (compiled as C99 against fieldsync.h alone). Run by
 * tests/client_sync_test.cc against a real fieldsyncd:
 *
 *   fieldsync_c_api_test <server address> <enrollment code> <db path> <well project id>
 *
 * Enrolls, writes offline, syncs, reads back, reopens. Exit status 0 when everything held. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fieldsync/fieldsync.h"

static int failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

#define CHECK_OK(client, call)                                                           \
  do {                                                                                   \
    fs_status s_ = (call);                                                               \
    if (s_ != FS_OK) {                                                                   \
      fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #call, (int)s_, \
              fs_client_last_error(client));                                             \
      ++failures;                                                                        \
    }                                                                                    \
  } while (0)

struct progress_log {
  int calls;
  int done;
  long long pushed;
};

static void on_progress(const fs_sync_progress* p, void* ctx) {
  struct progress_log* log = (struct progress_log*)ctx;
  log->calls++;
  if (p->phase == FS_SYNC_DONE) {
    log->done++;
    log->pushed = (long long)p->changes_pushed;
  }
}

/* The "id" of a JSON object the library returned (ids are plain UUIDs, no escapes). */
static int json_id(const char* json, char* id, size_t size) {
  const char* at = strstr(json, "\"id\":\"");
  const char* end;
  if (at == NULL) return 0;
  at += 6;
  end = strchr(at, '"');
  if (end == NULL || (size_t)(end - at) >= size) return 0;
  memcpy(id, at, (size_t)(end - at));
  id[end - at] = '\0';
  return 1;
}

int main(int argc, char** argv) {
  fs_client* client = NULL;
  char* error = NULL;
  char* out = NULL;
  size_t out_len = 0;
  char id[64];
  char record[1024];
  struct progress_log log = {0, 0, 0};
  fs_status s;

  if (argc != 5) {
    fprintf(stderr, "usage: %s ADDRESS CODE DB_PATH WELL_PROJECT_ID\n", argv[0]);
    return 2;
  }

  /* Opening a store that is not enrolled fails with a message to free. */
  s = fs_client_open(argv[3], &client, &error);
  CHECK(s == FS_FAILED_PRECONDITION);
  CHECK(client == NULL);
  CHECK(error != NULL && strstr(error, "not enrolled") != NULL);
  fs_free(error);
  error = NULL;

  s = fs_client_enroll(argv[1], argv[2], argv[3], &client, &error);
  if (s != FS_OK) {
    fprintf(stderr, "enroll failed (%d): %s\n", (int)s, error ? error : "");
    fs_free(error);
    return 1;
  }
  CHECK(error == NULL);

  /* The project arrives with the first sync. */
  CHECK_OK(client, fs_sync(client, on_progress, &log));
  CHECK(log.done == 1);
  CHECK_OK(client, fs_project_get(client, argv[4], &out, &out_len));
  CHECK(out != NULL && out_len == strlen(out) && strstr(out, "PROJECT_KIND_WELL") != NULL);
  fs_free(out);
  out = NULL;

  /* Offline write: visible at once, derived fields filled. */
  snprintf(record, sizeof record,
           "{\"projectId\":\"%s\",\"well\":{\"drilledDepthM\":80,\"staticWaterLevelM\":20,"
           "\"yieldLph\":1200,\"waterSource\":\"WATER_SOURCE_BOREHOLE\","
           "\"extraction\":\"EXTRACTION_TECHNOLOGY_HAND_PUMP\","
           "\"functionalStatus\":\"FUNCTIONAL_STATUS_FUNCTIONAL\",\"populationServed\":400,"
           "\"visitDate\":\"2026-03-14\"}}",
           argv[4]);
  CHECK_OK(client, fs_record_create(client, record, strlen(record), &out, &out_len));
  CHECK(out != NULL && strstr(out, "\"kind\":\"RECORD_KIND_WELL\"") != NULL);
  CHECK(out != NULL && strstr(out, "\"recordDate\":\"2026-03-14\"") != NULL);
  CHECK(out != NULL && json_id(out, id, sizeof id));
  fs_free(out);
  out = NULL;

  /* A validation error names the field; nothing is returned. */
  {
    const char* bad = "{\"projectId\":\"x\",\"well\":{}}";
    s = fs_record_create(client, bad, strlen(bad), &out, &out_len);
    CHECK(s == FS_INVALID_ARGUMENT);
    CHECK(out == NULL && out_len == 0);
    CHECK(strstr(fs_client_last_error(client), "record.project_id") != NULL);
  }
  /* Malformed JSON and unknown ids. */
  s = fs_record_create(client, "{nope", 5, &out, NULL);
  CHECK(s == FS_INVALID_ARGUMENT);
  s = fs_record_get(client, "0190a000-0000-7000-8000-000000000000", &out, NULL);
  CHECK(s == FS_NOT_FOUND);

  CHECK_OK(client, fs_status_json(client, &out, NULL));
  CHECK(out != NULL && strstr(out, "\"pendingChanges\":1") != NULL);
  fs_free(out);
  out = NULL;

  CHECK_OK(client, fs_sync(client, on_progress, &log));
  CHECK(log.done == 2 && log.pushed == 1);
  CHECK_OK(client, fs_status_json(client, &out, NULL));
  CHECK(out != NULL && strstr(out, "\"pendingChanges\":0") != NULL);
  fs_free(out);
  out = NULL;

  /* Read back through the list with a JSON filter. */
  {
    char filter[256];
    snprintf(filter, sizeof filter, "{\"projectId\":\"%s\",\"kind\":\"RECORD_KIND_WELL\"}",
             argv[4]);
    CHECK_OK(client, fs_record_list(client, filter, strlen(filter), &out, &out_len));
    CHECK(out != NULL && strstr(out, id) != NULL);
    fs_free(out);
    out = NULL;
  }
  /* Nothing refused; an unknown rejection is NOT_FOUND. */
  CHECK_OK(client, fs_rejections_json(client, &out, NULL));
  CHECK(out != NULL && strstr(out, "\"rejections\":[]") != NULL);
  fs_free(out);
  out = NULL;
  CHECK(fs_rejection_dismiss(client, 12345) == FS_NOT_FOUND);
  CHECK(fs_rejection_resubmit(client, 12345) == FS_NOT_FOUND);
  /* The server's address can change; a malformed one is refused and changes nothing. */
  CHECK(fs_client_set_server(client, "127.0.0.1:70000") == FS_INVALID_ARGUMENT);
  CHECK(strstr(fs_client_last_error(client), "65535") != NULL);
  CHECK(fs_client_set_server(client, NULL) == FS_INVALID_ARGUMENT);
  CHECK_OK(client, fs_client_set_server(client, argv[1]));
  fs_cancel_sync(client); /* nothing running: no effect */
  fs_client_close(client);
  client = NULL;

  /* Reopen: the record and the sync state are still there. */
  CHECK(fs_client_open(argv[3], &client, NULL) == FS_OK);
  if (client != NULL) {
    CHECK_OK(client, fs_record_get(client, id, &out, NULL));
    CHECK(out != NULL && strstr(out, "\"yieldLph\":1200") != NULL);
    fs_free(out);
    out = NULL;
    CHECK_OK(client, fs_record_delete(client, id));
    CHECK(fs_record_get(client, id, &out, NULL) == FS_NOT_FOUND);
    CHECK_OK(client, fs_sync(client, NULL, NULL));
    fs_client_close(client);
  }
  fs_free(NULL);

  if (failures != 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  return 0;
}
