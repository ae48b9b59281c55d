#include "server/schema.h"

#include "absl/strings/str_cat.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/base/status_macros.h"
#include "server/sqlite_reports.h"
#include "server/sqlite_store.h"

namespace fieldsync::server {

namespace {

// Each migration runs once, in order, in its own transaction, and is never edited after it
// shipped: a change to the schema is a new entry at the end.
//
// Tables hold the current state of every document in typed columns (so that SQL can check
// every indicator) plus its serialized protobuf payload (so that reads and sync return exactly
// what was written). Enum columns hold the enum value's short name ('FUNCTIONAL', 'WELL').
// Times are Unix microseconds.
constexpr const char* kMigrations[] = {
    // 1: the foundation. Every project, site and record is stored three ways in one transaction:
    // as a document of fields with their clocks (docs, doc_fields: what the merge works on and
    // devices pull), as its payload, and as typed columns (what indicators and auditors read).
    R"sql(
CREATE TABLE partners(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  countries TEXT NOT NULL,              -- comma-separated ISO 3166-1 alpha-2
  payload BLOB NOT NULL,
  version INTEGER NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  created_by TEXT NOT NULL, updated_by TEXT NOT NULL);

CREATE TABLE users(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,                   -- ADMIN, HQ_VIEWER, AUDITOR, FIELD_DEVICE
  partner_id TEXT REFERENCES partners(id),
  created_at INTEGER NOT NULL);

CREATE TABLE devices(
  id TEXT PRIMARY KEY,
  partner_id TEXT NOT NULL REFERENCES partners(id),
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_sync_at INTEGER,
  acked_device_seq INTEGER NOT NULL DEFAULT 0);  -- highest device_seq applied
CREATE INDEX devices_by_partner ON devices(partner_id, id);

CREATE TABLE tokens(
  id TEXT PRIMARY KEY,
  secret_sha256 TEXT NOT NULL UNIQUE,   -- hex SHA-256 of the bearer secret; the secret is never stored
  user_id TEXT REFERENCES users(id),
  device_id TEXT REFERENCES devices(id),
  role TEXT NOT NULL,
  partner_id TEXT,
  label TEXT NOT NULL DEFAULT '',
  prefix TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER,
  CHECK ((user_id IS NULL) <> (device_id IS NULL)));

CREATE TABLE projects(
  id TEXT PRIMARY KEY,
  partner_id TEXT NOT NULL REFERENCES partners(id),
  kind TEXT NOT NULL,                   -- WELL, CATARACT, CLASSROOM
  title TEXT NOT NULL,
  country TEXT NOT NULL,
  admin_area TEXT NOT NULL,
  status TEXT NOT NULL,                 -- PLANNED, ACTIVE, COMPLETED, CANCELLED
  start_date TEXT, end_date TEXT,
  budget_minor INTEGER NOT NULL, currency TEXT,
  donor TEXT NOT NULL, iati_identifier TEXT NOT NULL,
  payload BLOB NOT NULL,
  version INTEGER NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  created_by TEXT NOT NULL, updated_by TEXT NOT NULL);
CREATE INDEX projects_by_partner ON projects(partner_id, id);
CREATE INDEX projects_by_country ON projects(country, id);

CREATE TABLE sites(
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL REFERENCES projects(id),
  partner_id TEXT NOT NULL,
  name TEXT NOT NULL,
  latitude_deg REAL NOT NULL, longitude_deg REAL NOT NULL,
  admin_area TEXT NOT NULL,
  payload BLOB NOT NULL,
  version INTEGER NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  created_by TEXT NOT NULL, updated_by TEXT NOT NULL);
CREATE INDEX sites_by_project ON sites(project_id, id);

-- Every field record; partner_id and country are copied from the project (which cannot
-- change partner) so that scoped lists and stats need no join.
CREATE TABLE records(
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,                   -- WELL, CATARACT_SURGERY, CLASSROOM_DONATION, EXPENDITURE
  project_id TEXT NOT NULL REFERENCES projects(id),
  site_id TEXT REFERENCES sites(id),
  partner_id TEXT NOT NULL,
  country TEXT NOT NULL,
  record_date TEXT NOT NULL,
  payload BLOB NOT NULL,
  version INTEGER NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  created_by TEXT NOT NULL, updated_by TEXT NOT NULL);
CREATE INDEX records_by_project ON records(project_id, id);
CREATE INDEX records_by_site ON records(site_id, id);
CREATE INDEX records_by_partner ON records(partner_id, kind, record_date);
CREATE INDEX records_by_kind_date ON records(kind, record_date);

CREATE TABLE well_records(
  record_id TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
  drilled_depth_m REAL NOT NULL, static_water_level_m REAL NOT NULL, yield_lph REAL NOT NULL,
  water_source TEXT NOT NULL, extraction TEXT NOT NULL,
  functional_status TEXT NOT NULL,      -- FUNCTIONAL, PARTLY_FUNCTIONAL, NOT_FUNCTIONAL
  population_served INTEGER NOT NULL,
  commissioned_date TEXT, visit_date TEXT NOT NULL);

-- One row per test; a value not measured is NULL.
CREATE TABLE water_quality_tests(
  record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  tested_date TEXT NOT NULL,
  ecoli_cfu_per_100ml REAL, turbidity_ntu REAL, arsenic_ug_per_l REAL, fluoride_mg_per_l REAL,
  PRIMARY KEY (record_id, idx));

CREATE TABLE cataract_surgeries(
  record_id TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
  patient_ref TEXT NOT NULL, age_years INTEGER NOT NULL,
  sex TEXT NOT NULL, eye TEXT NOT NULL, surgery_date TEXT NOT NULL,
  surgeon_ref TEXT NOT NULL, technique TEXT NOT NULL, iol_implanted INTEGER NOT NULL,
  preop_va TEXT NOT NULL,
  complications INTEGER NOT NULL);     -- number of complications recorded

-- presenting_va_decimal is the decimal acuity (6/18 = 0.333...); the WHO category is computed
-- from it at query time so that the cut-off stays a parameter.
CREATE TABLE cataract_follow_ups(
  record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
  stage TEXT NOT NULL,                  -- DAY_1, WEEKS_1_3, WEEKS_4_12
  visit_date TEXT NOT NULL,
  presenting_va TEXT NOT NULL,
  presenting_va_decimal REAL NOT NULL,
  PRIMARY KEY (record_id, stage));

CREATE TABLE classroom_donations(
  record_id TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
  school_name TEXT NOT NULL, delivered_date TEXT NOT NULL, received_by TEXT NOT NULL,
  condition TEXT NOT NULL, students_reached INTEGER NOT NULL, teachers_trained INTEGER NOT NULL);

CREATE TABLE donation_items(
  record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  item_type TEXT NOT NULL, quantity INTEGER NOT NULL, quantity_received INTEGER NOT NULL,
  unit_value_minor INTEGER NOT NULL, currency TEXT,
  PRIMARY KEY (record_id, idx));

CREATE TABLE expenditures(
  record_id TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
  amount_minor INTEGER NOT NULL, currency TEXT NOT NULL, category TEXT NOT NULL,
  spent_date TEXT NOT NULL, receipt_ref TEXT NOT NULL);

-- Append-only, hash-chained: hash = SHA-256(prev_hash || canonical bytes of the entry); see
-- docs/ARCHITECTURE.md. seq is the server sequence and every document's version.
CREATE TABLE change_log(
  seq INTEGER PRIMARY KEY,
  collection TEXT NOT NULL,
  doc_id TEXT NOT NULL,
  op TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  device_id TEXT, device_seq INTEGER, hlc TEXT,
  server_time INTEGER NOT NULL,
  payload BLOB NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL);
CREATE INDEX change_log_by_doc ON change_log(collection, doc_id, seq);
CREATE TRIGGER change_log_no_update BEFORE UPDATE ON change_log
  BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;
CREATE TRIGGER change_log_no_delete BEFORE DELETE ON change_log
  BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;
CREATE TABLE docs(
  collection TEXT NOT NULL,
  doc_id TEXT NOT NULL,
  partner_id TEXT NOT NULL,             -- the sync scope the document belongs to
  seq INTEGER NOT NULL,                 -- change_log seq of its last change (pull order)
  deleted INTEGER NOT NULL DEFAULT 0,
  payload BLOB NOT NULL,                -- canonical payload (fieldsync/sync/document.h)
  PRIMARY KEY (collection, doc_id));
CREATE INDEX docs_by_scope ON docs(partner_id, seq);

CREATE TABLE doc_fields(
  collection TEXT NOT NULL,
  doc_id TEXT NOT NULL,
  path TEXT NOT NULL,
  value BLOB NOT NULL,
  hlc TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (collection, doc_id, path));

-- XOR-of-SHA-256 over the live documents of each scope, kept up to date by every write.
CREATE TABLE scope_checksums(
  partner_id TEXT PRIMARY KEY,
  digest BLOB NOT NULL,
  documents INTEGER NOT NULL);

-- (device_id, device_seq) is the idempotency key of a pushed change.
CREATE UNIQUE INDEX change_log_by_device ON change_log(device_id, device_seq)
  WHERE device_id IS NOT NULL;

CREATE TABLE conflicts(
  id TEXT PRIMARY KEY,
  collection TEXT NOT NULL, doc_id TEXT NOT NULL, partner_id TEXT NOT NULL,
  path TEXT NOT NULL,
  winning_value BLOB NOT NULL, winning_hlc TEXT NOT NULL, winning_writer TEXT NOT NULL,
  losing_value BLOB NOT NULL, losing_hlc TEXT NOT NULL, losing_writer TEXT NOT NULL,
  seq INTEGER NOT NULL,
  detected_at INTEGER NOT NULL,
  status TEXT NOT NULL,                 -- OPEN, RESOLVED
  resolved_by TEXT, resolved_at INTEGER, resolution TEXT);
CREATE INDEX conflicts_by_status ON conflicts(status, id);
CREATE INDEX conflicts_by_doc ON conflicts(doc_id, id);

-- One-time enrollment codes; only their SHA-256 is kept.
CREATE TABLE enrollments(
  code_sha256 TEXT PRIMARY KEY,
  device_id TEXT NOT NULL REFERENCES devices(id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER);
)sql",
    // 2: the audit trail's readable side, written by the one write path in the same transaction
    // as the change_log entry (and back-filled for older databases by replaying the log, see
    // BackfillChangeFields): per changed field the value before the change and whether the
    // change's value won; per entry of a project, site or record, the project it belongs to.
    R"sql(
CREATE TABLE change_fields(
  seq INTEGER NOT NULL,                 -- change_log.seq
  path TEXT NOT NULL,                   -- document path (fieldsync/sync/document.h)
  old_value BLOB,                       -- value before the change; NULL when unset
  outcome TEXT NOT NULL,                -- WON, LOST, APPLIED
  PRIMARY KEY (seq, path)) WITHOUT ROWID;
CREATE TABLE change_projects(
  seq INTEGER PRIMARY KEY,              -- change_log.seq
  project_id TEXT NOT NULL);
CREATE INDEX change_projects_by_project ON change_projects(project_id, seq);
)sql",
    // 3: facts about the database itself. 'epoch' names this database's history: made at
    // creation, replaced when the database is restored from a backup, so that devices know the
    // server may have lost changes it had acknowledged (docs/SYNC.md, "Restores").
    R"sql(
CREATE TABLE server_meta(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL);
)sql",
    // 4: GetStats' aggregates, kept by the one write path in the same transaction as the typed
    // rows (sqlite_stats.cc, Read/ApplyRecordStats) and back-filled from them (BackfillStats). A
    // "cell" is one project on one record date and holds every additive quantity of
    // docs/INDICATORS.md over the live records in it; a cell with no record left is deleted.
    // Spend per currency and schools per name are side tables, so that distinct schools stay
    // exact. The scan over the typed tables (GetStatsByScan) remains the reference.
    R"sql(
CREATE TABLE stats_cells(
  project_id TEXT NOT NULL,
  record_date TEXT NOT NULL,
  records INTEGER NOT NULL,
  water_points INTEGER NOT NULL, functional INTEGER NOT NULL, partly_functional INTEGER NOT NULL,
  not_functional INTEGER NOT NULL, people_served INTEGER NOT NULL,
  quality_tests INTEGER NOT NULL, ecoli_failures INTEGER NOT NULL,
  turbidity_failures INTEGER NOT NULL, arsenic_failures INTEGER NOT NULL,
  fluoride_failures INTEGER NOT NULL, tests_failing_any INTEGER NOT NULL,
  surgeries INTEGER NOT NULL, female INTEGER NOT NULL, with_iol INTEGER NOT NULL,
  with_complications INTEGER NOT NULL, followed_up INTEGER NOT NULL,
  day_1_examined INTEGER NOT NULL, day_1_good INTEGER NOT NULL,
  day_1_borderline INTEGER NOT NULL, day_1_poor INTEGER NOT NULL,
  weeks_1_3_examined INTEGER NOT NULL, weeks_1_3_good INTEGER NOT NULL,
  weeks_1_3_borderline INTEGER NOT NULL, weeks_1_3_poor INTEGER NOT NULL,
  weeks_4_12_examined INTEGER NOT NULL, weeks_4_12_good INTEGER NOT NULL,
  weeks_4_12_borderline INTEGER NOT NULL, weeks_4_12_poor INTEGER NOT NULL,
  donations INTEGER NOT NULL, item_rows INTEGER NOT NULL, items_dispatched INTEGER NOT NULL,
  items_received INTEGER NOT NULL, students_reached INTEGER NOT NULL,
  teachers_trained INTEGER NOT NULL,
  PRIMARY KEY (project_id, record_date)) WITHOUT ROWID;
CREATE TABLE stats_spend(
  project_id TEXT NOT NULL,
  record_date TEXT NOT NULL,
  currency TEXT NOT NULL,
  expenditures INTEGER NOT NULL,              -- expenditure records (the row goes at 0)
  spent_minor INTEGER NOT NULL,
  PRIMARY KEY (project_id, record_date, currency)) WITHOUT ROWID;
CREATE TABLE stats_schools(
  project_id TEXT NOT NULL,
  record_date TEXT NOT NULL,
  school_name TEXT NOT NULL,
  donations INTEGER NOT NULL,                 -- donation records (the row goes at 0)
  PRIMARY KEY (project_id, record_date, school_name)) WITHOUT ROWID;
)sql",
    // 5: field correctness (docs/SYNC.md). Every store of a device numbers its changes in its
    // own sequence space (stream_id; '' is the legacy space kept in devices.acked_device_seq), so
    // two stores of one device both land. Refused changes go to the rejection log, whole,
    // instead of blocking the device (their change_log entry has op 'reject'). Conflicts gain
    // a kind: RULE flags a merged document that breaks a rule spanning two writers' edits.
    // devices.pulled_seq is how far the device's last complete pull reached: what it had seen.
    R"sql(
ALTER TABLE change_log ADD COLUMN stream_id TEXT NOT NULL DEFAULT '';
DROP INDEX change_log_by_device;
CREATE UNIQUE INDEX change_log_by_stream ON change_log(device_id, stream_id, device_seq)
  WHERE device_id IS NOT NULL;
CREATE TABLE device_streams(
  device_id TEXT NOT NULL REFERENCES devices(id),
  stream_id TEXT NOT NULL,
  acked_device_seq INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (device_id, stream_id));
CREATE TABLE rejections(
  id TEXT PRIMARY KEY,
  device_id TEXT NOT NULL,
  stream_id TEXT NOT NULL,
  device_seq INTEGER NOT NULL,
  collection TEXT NOT NULL,
  doc_id TEXT NOT NULL,
  partner_id TEXT NOT NULL,             -- the pushing device's partner
  change BLOB NOT NULL,               -- the v1.Change as received
  code INTEGER NOT NULL,                  -- gRPC status code
  reason TEXT NOT NULL,
  seq INTEGER NOT NULL,                   -- its change_log entry (op 'reject')
  received_at INTEGER NOT NULL,
  status TEXT NOT NULL,                 -- OPEN, RESOLVED
  resolved_by TEXT, resolved_at INTEGER, resolution_note TEXT);
CREATE UNIQUE INDEX rejections_by_stream ON rejections(device_id, stream_id, device_seq);
CREATE INDEX rejections_by_status ON rejections(status, id);
ALTER TABLE conflicts ADD COLUMN kind TEXT NOT NULL DEFAULT 'FIELD';
ALTER TABLE conflicts ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN pulled_seq INTEGER NOT NULL DEFAULT 0;
)sql",
    // 6: a device can be disabled (AdminService.DisableDevice): while disabled_at is set, every
    // token of the device is refused and it cannot enroll.
    R"sql(
ALTER TABLE devices ADD COLUMN disabled_at INTEGER;
)sql",
};

// The same migrations on PostgreSQL: the same versions, tables, columns and indexes, in its
// types (BIGINT, DOUBLE PRECISION, BYTEA; text compared byte by byte as in SQLite, whatever the
// database's collation), the append-only rule as a trigger function.
constexpr const char* kPostgresMigrations[] = {
    R"sql(
CREATE TABLE partners(
  id TEXT COLLATE "C" PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL UNIQUE,
  countries TEXT COLLATE "C" NOT NULL,              -- comma-separated ISO 3166-1 alpha-2
  payload BYTEA NOT NULL,
  version BIGINT NOT NULL,
  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  created_by TEXT COLLATE "C" NOT NULL, updated_by TEXT COLLATE "C" NOT NULL);

CREATE TABLE users(
  id TEXT COLLATE "C" PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL UNIQUE,
  role TEXT COLLATE "C" NOT NULL,                   -- ADMIN, HQ_VIEWER, AUDITOR, FIELD_DEVICE
  partner_id TEXT COLLATE "C" REFERENCES partners(id),
  created_at BIGINT NOT NULL);

CREATE TABLE devices(
  id TEXT COLLATE "C" PRIMARY KEY,
  partner_id TEXT COLLATE "C" NOT NULL REFERENCES partners(id),
  name TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  last_sync_at BIGINT,
  acked_device_seq BIGINT NOT NULL DEFAULT 0);  -- highest device_seq applied
CREATE INDEX devices_by_partner ON devices(partner_id, id);

CREATE TABLE tokens(
  id TEXT COLLATE "C" PRIMARY KEY,
  -- hex SHA-256 of the bearer secret; the secret is never stored
  secret_sha256 TEXT COLLATE "C" NOT NULL UNIQUE,
  user_id TEXT COLLATE "C" REFERENCES users(id),
  device_id TEXT COLLATE "C" REFERENCES devices(id),
  role TEXT COLLATE "C" NOT NULL,
  partner_id TEXT COLLATE "C",
  label TEXT COLLATE "C" NOT NULL DEFAULT '',
  prefix TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  revoked_at BIGINT,
  CHECK ((user_id IS NULL) <> (device_id IS NULL)));

CREATE TABLE projects(
  id TEXT COLLATE "C" PRIMARY KEY,
  partner_id TEXT COLLATE "C" NOT NULL REFERENCES partners(id),
  kind TEXT COLLATE "C" NOT NULL,                   -- WELL, CATARACT, CLASSROOM
  title TEXT COLLATE "C" NOT NULL,
  country TEXT COLLATE "C" NOT NULL,
  admin_area TEXT COLLATE "C" NOT NULL,
  status TEXT COLLATE "C" NOT NULL,                 -- PLANNED, ACTIVE, COMPLETED, CANCELLED
  start_date TEXT COLLATE "C", end_date TEXT COLLATE "C",
  budget_minor BIGINT NOT NULL, currency TEXT COLLATE "C",
  donor TEXT COLLATE "C" NOT NULL, iati_identifier TEXT COLLATE "C" NOT NULL,
  payload BYTEA NOT NULL,
  version BIGINT NOT NULL,
  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  created_by TEXT COLLATE "C" NOT NULL, updated_by TEXT COLLATE "C" NOT NULL);
CREATE INDEX projects_by_partner ON projects(partner_id, id);
CREATE INDEX projects_by_country ON projects(country, id);

CREATE TABLE sites(
  id TEXT COLLATE "C" PRIMARY KEY,
  project_id TEXT COLLATE "C" NOT NULL REFERENCES projects(id),
  partner_id TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  latitude_deg DOUBLE PRECISION NOT NULL, longitude_deg DOUBLE PRECISION NOT NULL,
  admin_area TEXT COLLATE "C" NOT NULL,
  payload BYTEA NOT NULL,
  version BIGINT NOT NULL,
  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  created_by TEXT COLLATE "C" NOT NULL, updated_by TEXT COLLATE "C" NOT NULL);
CREATE INDEX sites_by_project ON sites(project_id, id);

-- Every field record; partner_id and country are copied from the project (which cannot
-- change partner) so that scoped lists and stats need no join.
CREATE TABLE records(
  id TEXT COLLATE "C" PRIMARY KEY,
  kind TEXT COLLATE "C" NOT NULL, -- WELL, CATARACT_SURGERY, CLASSROOM_DONATION, EXPENDITURE
  project_id TEXT COLLATE "C" NOT NULL REFERENCES projects(id),
  site_id TEXT COLLATE "C" REFERENCES sites(id),
  partner_id TEXT COLLATE "C" NOT NULL,
  country TEXT COLLATE "C" NOT NULL,
  record_date TEXT COLLATE "C" NOT NULL,
  payload BYTEA NOT NULL,
  version BIGINT NOT NULL,
  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  created_by TEXT COLLATE "C" NOT NULL, updated_by TEXT COLLATE "C" NOT NULL);
CREATE INDEX records_by_project ON records(project_id, id);
CREATE INDEX records_by_site ON records(site_id, id);
CREATE INDEX records_by_partner ON records(partner_id, kind, record_date);
CREATE INDEX records_by_kind_date ON records(kind, record_date);

CREATE TABLE well_records(
  record_id TEXT COLLATE "C" PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
  drilled_depth_m DOUBLE PRECISION NOT NULL,
  static_water_level_m DOUBLE PRECISION NOT NULL,
  yield_lph DOUBLE PRECISION NOT NULL,
  water_source TEXT COLLATE "C" NOT NULL, extraction TEXT COLLATE "C" NOT NULL,
  functional_status TEXT COLLATE "C" NOT NULL,      -- FUNCTIONAL, PARTLY_FUNCTIONAL, NOT_FUNCTIONAL
  population_served BIGINT NOT NULL,
  commissioned_date TEXT COLLATE "C", visit_date TEXT COLLATE "C" NOT NULL);

-- One row per test; a value not measured is NULL.
CREATE TABLE water_quality_tests(
  record_id TEXT COLLATE "C" NOT NULL REFERENCES records(id) ON DELETE CASCADE,
  idx BIGINT NOT NULL,
  tested_date TEXT COLLATE "C" NOT NULL,
  ecoli_cfu_per_100ml DOUBLE PRECISION,
  turbidity_ntu DOUBLE PRECISION,
  arsenic_ug_per_l DOUBLE PRECISION,
  fluoride_mg_per_l DOUBLE PRECISION,
  PRIMARY KEY (record_id, idx));

CREATE TABLE cataract_surgeries(
  record_id TEXT COLLATE "C" PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
  patient_ref TEXT COLLATE "C" NOT NULL, age_years BIGINT NOT NULL,
  sex TEXT COLLATE "C" NOT NULL,
  eye TEXT COLLATE "C" NOT NULL,
  surgery_date TEXT COLLATE "C" NOT NULL,
  surgeon_ref TEXT COLLATE "C" NOT NULL,
  technique TEXT COLLATE "C" NOT NULL,
  iol_implanted BIGINT NOT NULL,
  preop_va TEXT COLLATE "C" NOT NULL,
  complications BIGINT NOT NULL);     -- number of complications recorded

-- presenting_va_decimal is the decimal acuity (6/18 = 0.333...); the WHO category is computed
-- from it at query time so that the cut-off stays a parameter.
CREATE TABLE cataract_follow_ups(
  record_id TEXT COLLATE "C" NOT NULL REFERENCES records(id) ON DELETE CASCADE,
  stage TEXT COLLATE "C" NOT NULL,                  -- DAY_1, WEEKS_1_3, WEEKS_4_12
  visit_date TEXT COLLATE "C" NOT NULL,
  presenting_va TEXT COLLATE "C" NOT NULL,
  presenting_va_decimal DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (record_id, stage));

CREATE TABLE classroom_donations(
  record_id TEXT COLLATE "C" PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
  school_name TEXT COLLATE "C" NOT NULL,
  delivered_date TEXT COLLATE "C" NOT NULL,
  received_by TEXT COLLATE "C" NOT NULL,
  condition TEXT COLLATE "C" NOT NULL,
  students_reached BIGINT NOT NULL,
  teachers_trained BIGINT NOT NULL);

CREATE TABLE donation_items(
  record_id TEXT COLLATE "C" NOT NULL REFERENCES records(id) ON DELETE CASCADE,
  idx BIGINT NOT NULL,
  item_type TEXT COLLATE "C" NOT NULL, quantity BIGINT NOT NULL, quantity_received BIGINT NOT NULL,
  unit_value_minor BIGINT NOT NULL, currency TEXT COLLATE "C",
  PRIMARY KEY (record_id, idx));

CREATE TABLE expenditures(
  record_id TEXT COLLATE "C" PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
  amount_minor BIGINT NOT NULL,
  currency TEXT COLLATE "C" NOT NULL,
  category TEXT COLLATE "C" NOT NULL,
  spent_date TEXT COLLATE "C" NOT NULL, receipt_ref TEXT COLLATE "C" NOT NULL);

-- Append-only, hash-chained: hash = SHA-256(prev_hash || canonical bytes of the entry); see
-- docs/ARCHITECTURE.md. seq is the server sequence and every document's version.
CREATE TABLE change_log(
  seq BIGINT PRIMARY KEY,
  collection TEXT COLLATE "C" NOT NULL,
  doc_id TEXT COLLATE "C" NOT NULL,
  op TEXT COLLATE "C" NOT NULL,
  actor_id TEXT COLLATE "C" NOT NULL,
  device_id TEXT COLLATE "C", device_seq BIGINT, hlc TEXT COLLATE "C",
  server_time BIGINT NOT NULL,
  payload BYTEA NOT NULL,
  prev_hash TEXT COLLATE "C" NOT NULL,
  hash TEXT COLLATE "C" NOT NULL);
CREATE INDEX change_log_by_doc ON change_log(collection, doc_id, seq);
CREATE FUNCTION change_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'change_log is append-only' USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER change_log_no_update BEFORE UPDATE ON change_log
  FOR EACH ROW EXECUTE FUNCTION change_log_append_only();
CREATE TRIGGER change_log_no_delete BEFORE DELETE ON change_log
  FOR EACH ROW EXECUTE FUNCTION change_log_append_only();
CREATE TRIGGER change_log_no_truncate BEFORE TRUNCATE ON change_log
  FOR EACH STATEMENT EXECUTE FUNCTION change_log_append_only();
CREATE TABLE docs(
  collection TEXT COLLATE "C" NOT NULL,
  doc_id TEXT COLLATE "C" NOT NULL,
  partner_id TEXT COLLATE "C" NOT NULL,             -- the sync scope the document belongs to
  seq BIGINT NOT NULL,                 -- change_log seq of its last change (pull order)
  deleted BIGINT NOT NULL DEFAULT 0,
  payload BYTEA NOT NULL,                -- canonical payload (fieldsync/sync/document.h)
  PRIMARY KEY (collection, doc_id));
CREATE INDEX docs_by_scope ON docs(partner_id, seq);

CREATE TABLE doc_fields(
  collection TEXT COLLATE "C" NOT NULL,
  doc_id TEXT COLLATE "C" NOT NULL,
  path TEXT COLLATE "C" NOT NULL,
  value BYTEA NOT NULL,
  hlc TEXT COLLATE "C" NOT NULL,
  seq BIGINT NOT NULL,
  PRIMARY KEY (collection, doc_id, path));

-- XOR-of-SHA-256 over the live documents of each scope, kept up to date by every write.
CREATE TABLE scope_checksums(
  partner_id TEXT COLLATE "C" PRIMARY KEY,
  digest BYTEA NOT NULL,
  documents BIGINT NOT NULL);

-- (device_id, device_seq) is the idempotency key of a pushed change.
CREATE UNIQUE INDEX change_log_by_device ON change_log(device_id, device_seq)
  WHERE device_id IS NOT NULL;

CREATE TABLE conflicts(
  id TEXT COLLATE "C" PRIMARY KEY,
  collection TEXT COLLATE "C" NOT NULL,
  doc_id TEXT COLLATE "C" NOT NULL,
  partner_id TEXT COLLATE "C" NOT NULL,
  path TEXT COLLATE "C" NOT NULL,
  winning_value BYTEA NOT NULL,
  winning_hlc TEXT COLLATE "C" NOT NULL,
  winning_writer TEXT COLLATE "C" NOT NULL,
  losing_value BYTEA NOT NULL,
  losing_hlc TEXT COLLATE "C" NOT NULL,
  losing_writer TEXT COLLATE "C" NOT NULL,
  seq BIGINT NOT NULL,
  detected_at BIGINT NOT NULL,
  status TEXT COLLATE "C" NOT NULL,                 -- OPEN, RESOLVED
  resolved_by TEXT COLLATE "C", resolved_at BIGINT, resolution TEXT COLLATE "C");
CREATE INDEX conflicts_by_status ON conflicts(status, id);
CREATE INDEX conflicts_by_doc ON conflicts(doc_id, id);

-- One-time enrollment codes; only their SHA-256 is kept.
CREATE TABLE enrollments(
  code_sha256 TEXT COLLATE "C" PRIMARY KEY,
  device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id),
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT);
)sql",
    R"sql(
CREATE TABLE change_fields(
  seq BIGINT NOT NULL,                 -- change_log.seq
  path TEXT COLLATE "C" NOT NULL,                   -- document path (fieldsync/sync/document.h)
  old_value BYTEA,                       -- value before the change; NULL when unset
  outcome TEXT COLLATE "C" NOT NULL,                -- WON, LOST, APPLIED
  PRIMARY KEY (seq, path));
CREATE TABLE change_projects(
  seq BIGINT PRIMARY KEY,              -- change_log.seq
  project_id TEXT COLLATE "C" NOT NULL);
CREATE INDEX change_projects_by_project ON change_projects(project_id, seq);
)sql",
    R"sql(
CREATE TABLE server_meta(
  key TEXT COLLATE "C" PRIMARY KEY,
  value TEXT COLLATE "C" NOT NULL);
)sql",
    R"sql(
CREATE TABLE stats_cells(
  project_id TEXT COLLATE "C" NOT NULL,
  record_date TEXT COLLATE "C" NOT NULL,
  records BIGINT NOT NULL,
  water_points BIGINT NOT NULL, functional BIGINT NOT NULL, partly_functional BIGINT NOT NULL,
  not_functional BIGINT NOT NULL, people_served BIGINT NOT NULL,
  quality_tests BIGINT NOT NULL, ecoli_failures BIGINT NOT NULL,
  turbidity_failures BIGINT NOT NULL, arsenic_failures BIGINT NOT NULL,
  fluoride_failures BIGINT NOT NULL, tests_failing_any BIGINT NOT NULL,
  surgeries BIGINT NOT NULL, female BIGINT NOT NULL, with_iol BIGINT NOT NULL,
  with_complications BIGINT NOT NULL, followed_up BIGINT NOT NULL,
  day_1_examined BIGINT NOT NULL, day_1_good BIGINT NOT NULL,
  day_1_borderline BIGINT NOT NULL, day_1_poor BIGINT NOT NULL,
  weeks_1_3_examined BIGINT NOT NULL, weeks_1_3_good BIGINT NOT NULL,
  weeks_1_3_borderline BIGINT NOT NULL, weeks_1_3_poor BIGINT NOT NULL,
  weeks_4_12_examined BIGINT NOT NULL, weeks_4_12_good BIGINT NOT NULL,
  weeks_4_12_borderline BIGINT NOT NULL, weeks_4_12_poor BIGINT NOT NULL,
  donations BIGINT NOT NULL, item_rows BIGINT NOT NULL, items_dispatched BIGINT NOT NULL,
  items_received BIGINT NOT NULL, students_reached BIGINT NOT NULL,
  teachers_trained BIGINT NOT NULL,
  PRIMARY KEY (project_id, record_date));
CREATE TABLE stats_spend(
  project_id TEXT COLLATE "C" NOT NULL,
  record_date TEXT COLLATE "C" NOT NULL,
  currency TEXT COLLATE "C" NOT NULL,
  expenditures BIGINT NOT NULL,              -- expenditure records (the row goes at 0)
  spent_minor BIGINT NOT NULL,
  PRIMARY KEY (project_id, record_date, currency));
CREATE TABLE stats_schools(
  project_id TEXT COLLATE "C" NOT NULL,
  record_date TEXT COLLATE "C" NOT NULL,
  school_name TEXT COLLATE "C" NOT NULL,
  donations BIGINT NOT NULL,                 -- donation records (the row goes at 0)
  PRIMARY KEY (project_id, record_date, school_name));
)sql",
    // 5: field correctness (docs/SYNC.md). Every store of a device numbers its changes in its
    // own sequence space (stream_id; '' is the legacy space kept in devices.acked_device_seq), so
    // two stores of one device both land. Refused changes go to the rejection log, whole,
    // instead of blocking the device (their change_log entry has op 'reject'). Conflicts gain
    // a kind: RULE flags a merged document that breaks a rule spanning two writers' edits.
    // devices.pulled_seq is how far the device's last complete pull reached: what it had seen.
    R"sql(
ALTER TABLE change_log ADD COLUMN stream_id TEXT COLLATE "C" NOT NULL DEFAULT '';
DROP INDEX change_log_by_device;
CREATE UNIQUE INDEX change_log_by_stream ON change_log(device_id, stream_id, device_seq)
  WHERE device_id IS NOT NULL;
CREATE TABLE device_streams(
  device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id),
  stream_id TEXT COLLATE "C" NOT NULL,
  acked_device_seq BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (device_id, stream_id));
CREATE TABLE rejections(
  id TEXT COLLATE "C" PRIMARY KEY,
  device_id TEXT COLLATE "C" NOT NULL,
  stream_id TEXT COLLATE "C" NOT NULL,
  device_seq BIGINT NOT NULL,
  collection TEXT COLLATE "C" NOT NULL,
  doc_id TEXT COLLATE "C" NOT NULL,
  partner_id TEXT COLLATE "C" NOT NULL,             -- the pushing device's partner
  change BYTEA NOT NULL,               -- the v1.Change as received
  code BIGINT NOT NULL,                  -- gRPC status code
  reason TEXT COLLATE "C" NOT NULL,
  seq BIGINT NOT NULL,                   -- its change_log entry (op 'reject')
  received_at BIGINT NOT NULL,
  status TEXT COLLATE "C" NOT NULL,                 -- OPEN, RESOLVED
  resolved_by TEXT COLLATE "C", resolved_at BIGINT, resolution_note TEXT);
CREATE UNIQUE INDEX rejections_by_stream ON rejections(device_id, stream_id, device_seq);
CREATE INDEX rejections_by_status ON rejections(status, id);
ALTER TABLE conflicts ADD COLUMN kind TEXT COLLATE "C" NOT NULL DEFAULT 'FIELD';
ALTER TABLE conflicts ADD COLUMN reason TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN pulled_seq BIGINT NOT NULL DEFAULT 0;
)sql",
    R"sql(
ALTER TABLE devices ADD COLUMN disabled_at BIGINT;
)sql",
};
static_assert(std::size(kPostgresMigrations) == std::size(kMigrations),
              "every migration has its PostgreSQL form");

}  // namespace

absl::Status SetMeta(db::Connection& db, absl::string_view key, absl::string_view value) {
  FS_ASSIGN_OR_RETURN(
      db::Statement * st,
      db.Prepare("INSERT INTO server_meta(key, value) VALUES(?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
  st->Bind(1, key);
  st->Bind(2, value);
  return st->Run();
}

absl::StatusOr<std::string> GetMeta(db::Connection& db, absl::string_view key) {
  FS_ASSIGN_OR_RETURN(db::Statement * st,
                      db.Prepare("SELECT value FROM server_meta WHERE key = ?"));
  st->Bind(1, key);
  FS_ASSIGN_OR_RETURN(bool row, st->Step());
  std::string value = row ? st->ColumnText(0) : std::string();
  st->Reset();
  if (!row) return absl::NotFoundError(absl::StrCat("server_meta: no ", key));
  return value;
}

int LatestSchemaVersion() { return static_cast<int>(std::size(kMigrations)); }

absl::Status Migrate(db::Connection& db) {
  const bool postgres = db.engine() == db::Engine::kPostgres;
  const char* const* migrations = postgres ? kPostgresMigrations : kMigrations;
  if (postgres) {
    // Under the write lock, like every step below: replicas starting at once migrate once.
    FS_ASSIGN_OR_RETURN(auto tx, db::Transaction::Begin(db, db::Transaction::kWrite));
    FS_RETURN_IF_ERROR(db.Exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations("
        "version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"));
    FS_RETURN_IF_ERROR(tx.Commit());
  } else {
    FS_RETURN_IF_ERROR(db.Exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations("
        "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"));
  }
  auto current_version = [&]() -> absl::StatusOr<int> {
    FS_ASSIGN_OR_RETURN(db::Statement * q,
                        db.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    FS_ASSIGN_OR_RETURN(bool row, q->Step());
    int current = row ? static_cast<int>(q->ColumnInt(0)) : 0;
    q->Reset();
    if (current > LatestSchemaVersion()) {
      return absl::FailedPreconditionError(
          absl::StrCat("database schema version ", current, " is newer than this fieldsyncd (",
                       LatestSchemaVersion(), "); upgrade fieldsyncd"));
    }
    return current;
  };
  FS_ASSIGN_OR_RETURN(int current, current_version());
  while (current < LatestSchemaVersion()) {
    FS_ASSIGN_OR_RETURN(auto tx, db::Transaction::Begin(db, db::Transaction::kWrite));
    // Again inside the transaction: another replica may have migrated while we waited.
    FS_ASSIGN_OR_RETURN(current, current_version());
    if (current >= LatestSchemaVersion()) return tx.Commit();
    const int v = current + 1;
    FS_RETURN_IF_ERROR(db.Exec(migrations[v - 1]));
    if (v == 2) FS_RETURN_IF_ERROR(BackfillChangeFields(db));
    if (v == 3) FS_RETURN_IF_ERROR(SetMeta(db, "epoch", NewUuidV7()));
    if (v == 4) FS_RETURN_IF_ERROR(BackfillStats(db));
    FS_ASSIGN_OR_RETURN(db::Statement * ins,
                        db.Prepare("INSERT INTO schema_migrations(version) VALUES(?)"));
    ins->Bind(1, v);
    FS_RETURN_IF_ERROR(ins->Run());
    FS_RETURN_IF_ERROR(tx.Commit());
    current = v;
  }
  return absl::OkStatus();
}

}  // namespace fieldsync::server
