#include "server/sqlite_store.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/model/event_dates.h"
#include "fieldsync/model/validate.h"
#include "fieldsync/model/visual_acuity.h"
#include "fieldsync/sync/checksum.h"
#include "fieldsync/sync/document.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "server/change_log.h"
#include "server/enum_names.h"
#include "server/log.h"
#include "server/schema.h"
#include "server/sqlite_reports.h"
#include "server/write_policy.h"

namespace fieldsync::server {

using Database = db::Connection;
using Statement = db::Statement;

namespace {

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

void SetTimestamp(int64_t micros, google::protobuf::Timestamp* ts) {
  *ts = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(micros);
}

std::string Serialize(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

// Rows per multi-row INSERT of a document's fields (a bounded number of statement texts).
constexpr size_t kRowsPerInsert = 100;

// The columns every document table shares, in this order, after the caller's own columns.
constexpr char kDocColumns[] = "payload, version, created_at, updated_at, created_by, updated_by";

// Reads a document written by WriteDoc: the payload at column `col`, then its audit columns.
template <typename M>
absl::StatusOr<M> ReadDoc(const Statement& st, int col) {
  M m;
  if (!m.ParseFromString(st.ColumnBlob(col))) {
    return absl::DataLossError("stored document does not parse");
  }
  v1::AuditInfo* a = m.mutable_audit();
  a->set_version(st.ColumnInt(col + 1));
  SetTimestamp(st.ColumnInt(col + 2), a->mutable_created_at());
  SetTimestamp(st.ColumnInt(col + 3), a->mutable_updated_at());
  a->set_created_by(st.ColumnText(col + 4));
  a->set_updated_by(st.ColumnText(col + 5));
  return m;
}

// A document's payload as stored: the message without its output-only audit block.
template <typename M>
std::string StoredPayload(const M& doc) {
  if (!doc.has_audit()) return Serialize(doc);  // the write path's documents: no copy needed
  M copy = doc;
  copy.clear_audit();
  return Serialize(copy);
}

// A bound parameter of a query built from a fixed set of SQL fragments.
using Param = std::variant<int64_t, double, std::string>;

void BindAll(Statement& st, const std::vector<Param>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    int idx = static_cast<int>(i + 1);
    if (auto* v = std::get_if<int64_t>(&params[i])) st.Bind(idx, *v);
    if (auto* v = std::get_if<double>(&params[i])) st.Bind(idx, *v);
    if (auto* v = std::get_if<std::string>(&params[i])) st.Bind(idx, absl::string_view(*v));
  }
}

// WHERE conditions assembled from constant fragments; values are always bound.
class Where {
 public:
  void Add(absl::string_view fragment) { parts_.emplace_back(fragment); }
  void Add(absl::string_view fragment, Param p) {
    parts_.emplace_back(fragment);
    params_.push_back(std::move(p));
  }
  void AddIf(bool cond, absl::string_view fragment, Param p) {
    if (cond) Add(fragment, std::move(p));
  }
  std::string Sql() const {
    return parts_.empty() ? "1 = 1" : absl::StrJoin(parts_, " AND ");
  }
  std::vector<Param>& params() { return params_; }

 private:
  std::vector<std::string> parts_;
  std::vector<Param> params_;
};

// Runs a SELECT of documents and parses each row's document starting at `col`.
template <typename M>
absl::StatusOr<std::vector<M>> QueryDocs(Database& db, const std::string& sql,
                                         const std::vector<Param>& params, int col = 0) {
  FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(sql));
  BindAll(*st, params);
  std::vector<M> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    FS_ASSIGN_OR_RETURN(M m, ReadDoc<M>(*st, col));
    out.push_back(std::move(m));
  }
  st->Reset();
  return out;
}

template <typename M>
absl::StatusOr<M> GetDoc(Database& db, absl::string_view table, absl::string_view what,
                         absl::string_view id) {
  FS_ASSIGN_OR_RETURN(
      std::vector<M> docs,
      QueryDocs<M>(db, absl::StrCat("SELECT ", kDocColumns, " FROM ", table, " WHERE id = ?"),
                   {std::string(id)}));
  if (docs.empty()) return absl::NotFoundError(absl::StrCat(what, " ", id, " not found"));
  return std::move(docs.front());
}

void AddPage(Where& where, std::string& sql_tail, const PageRequest& page,
             absl::string_view id_column) {
  if (!page.after_id.empty()) where.Add(absl::StrCat(id_column, " > ?"), page.after_id);
  sql_tail = absl::StrCat(" ORDER BY ", id_column, " LIMIT ", std::max(1, page.page_size));
}

// Appends one change to the hash-chained log and returns its sequence number, which becomes
// the document's version. Runs inside the caller's write transaction.
// Set for changes that came from a device (or carry a clock); empty for admin data.
struct ChangeOrigin {
  std::string device_id;
  int64_t device_seq = 0;
  std::string hlc;
  std::string stream_id = {};
};

// The last entry of the change log: the next entry's seq is seq + 1 and its prev_hash is hash.
struct ChainHead {
  int64_t seq = 0;
  std::string hash = kGenesisHash;
};

absl::StatusOr<ChainHead> ReadChainHead(Database& db) {
  FS_ASSIGN_OR_RETURN(Statement * last,
                      db.Prepare("SELECT seq, hash FROM change_log ORDER BY seq DESC LIMIT 1"));
  FS_ASSIGN_OR_RETURN(bool has_last, last->Step());
  ChainHead head;
  if (has_last) {
    head.seq = last->ColumnInt(0);
    head.hash = last->ColumnText(1);
  }
  last->Reset();
  return head;
}

// `head` is the log's last entry as read in this transaction (ReadChainHead).
absl::StatusOr<int64_t> AppendChange(Database& db, const ChainHead& head,
                                     absl::string_view collection, absl::string_view doc_id,
                                     absl::string_view op, const Actor& actor,
                                     const std::string& payload, int64_t now,
                                     const ChangeOrigin& origin = {}) {
  ChangeLogEntry e;
  const std::string& prev_hash = head.hash;
  e.seq = head.seq + 1;
  e.collection = std::string(collection);
  e.doc_id = std::string(doc_id);
  e.op = std::string(op);
  e.actor_id = actor.id;
  e.device_id = origin.device_id;
  e.device_seq = origin.device_seq;
  e.hlc = origin.hlc;
  e.server_time = absl::FromUnixMicros(now);
  e.payload = payload;
  std::string hash = ChainHash(prev_hash, e);
  FS_ASSIGN_OR_RETURN(
      Statement * ins,
      db.Prepare("INSERT INTO change_log(seq, collection, doc_id, op, actor_id, server_time, "
                 "payload, prev_hash, hash, device_id, device_seq, hlc, stream_id) "
                 "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  ins->Bind(1, e.seq);
  ins->Bind(2, e.collection);
  ins->Bind(3, e.doc_id);
  ins->Bind(4, e.op);
  ins->Bind(5, e.actor_id);
  ins->Bind(6, now);
  ins->BindBlob(7, payload);
  ins->Bind(8, prev_hash);
  ins->Bind(9, hash);
  ins->BindTextOrNull(10, e.device_id);
  if (e.device_id.empty()) {
    ins->BindNull(11);
  } else {
    ins->Bind(11, e.device_seq);
  }
  ins->BindTextOrNull(12, e.hlc);
  ins->Bind(13, origin.stream_id);
  absl::Status s = ins->Run();
  if (s.code() == absl::StatusCode::kAlreadyExists) {
    return absl::AlreadyExistsError(absl::StrCat("device_seq: change ", e.device_seq,
                                                 " of device ", e.device_id, " already applied"));
  }
  FS_RETURN_IF_ERROR(s);
  return e.seq;
}

absl::StatusOr<int64_t> AppendChange(Database& db, absl::string_view collection,
                                     absl::string_view doc_id, absl::string_view op,
                                     const Actor& actor, const std::string& payload,
                                     int64_t now, const ChangeOrigin& origin = {}) {
  FS_ASSIGN_OR_RETURN(ChainHead head, ReadChainHead(db));
  return AppendChange(db, head, collection, doc_id, op, actor, payload, now, origin);
}

// Maps a primary-key clash on insert to a message naming the id field.
absl::Status IdClash(absl::Status s, absl::string_view field, absl::string_view id) {
  if (s.code() == absl::StatusCode::kAlreadyExists) {
    return absl::AlreadyExistsError(absl::StrCat(field, ": ", id, " already exists"));
  }
  return s;
}

// Writes the typed projection of a record's body (the tables SQL and the indicators read).
absl::Status WriteProjection(Database& db, const v1::Record& r) {
  const std::string& id = r.id();
  switch (r.body_case()) {
    case v1::Record::kWell: {
      const v1::WellRecord& w = r.well();
      FS_ASSIGN_OR_RETURN(
          Statement * st,
          db.Prepare("INSERT INTO well_records(record_id, drilled_depth_m, static_water_level_m, "
                     "yield_lph, water_source, extraction, functional_status, population_served, "
                     "commissioned_date, visit_date) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
      st->Bind(1, id);
      st->Bind(2, w.drilled_depth_m());
      st->Bind(3, w.static_water_level_m());
      st->Bind(4, w.yield_lph());
      st->Bind(5, ShortName(w.water_source()));
      st->Bind(6, ShortName(w.extraction()));
      st->Bind(7, ShortName(w.functional_status()));
      st->Bind(8, static_cast<int64_t>(w.population_served()));
      st->BindTextOrNull(9, w.commissioned_date());
      st->Bind(10, w.visit_date());
      FS_RETURN_IF_ERROR(st->Run());
      for (int i = 0; i < w.quality_tests_size(); ++i) {
        const v1::WaterQualityTest& t = w.quality_tests(i);
        FS_ASSIGN_OR_RETURN(
            Statement * q,
            db.Prepare("INSERT INTO water_quality_tests(record_id, idx, tested_date, "
                       "ecoli_cfu_per_100ml, turbidity_ntu, arsenic_ug_per_l, fluoride_mg_per_l) "
                       "VALUES(?, ?, ?, ?, ?, ?, ?)"));
        q->Bind(1, id);
        q->Bind(2, i);
        q->Bind(3, t.tested_date());
        const std::pair<bool, double> values[] = {
            {t.has_ecoli_cfu_per_100ml(), t.ecoli_cfu_per_100ml()},
            {t.has_turbidity_ntu(), t.turbidity_ntu()},
            {t.has_arsenic_ug_per_l(), t.arsenic_ug_per_l()},
            {t.has_fluoride_mg_per_l(), t.fluoride_mg_per_l()}};
        for (int k = 0; k < 4; ++k) {
          if (values[k].first) {
            q->Bind(4 + k, values[k].second);
          } else {
            q->BindNull(4 + k);  // not measured
          }
        }
        FS_RETURN_IF_ERROR(q->Run());
      }
      return absl::OkStatus();
    }
    case v1::Record::kCataractSurgery: {
      const v1::CataractSurgery& c = r.cataract_surgery();
      FS_ASSIGN_OR_RETURN(
          Statement * st,
          db.Prepare("INSERT INTO cataract_surgeries(record_id, patient_ref, age_years, sex, eye, "
                     "surgery_date, surgeon_ref, technique, iol_implanted, preop_va, "
                     "complications) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
      st->Bind(1, id);
      st->Bind(2, c.patient_ref());
      st->Bind(3, static_cast<int64_t>(c.age_years()));
      st->Bind(4, ShortName(c.sex()));
      st->Bind(5, ShortName(c.eye()));
      st->Bind(6, c.surgery_date());
      st->Bind(7, c.surgeon_ref());
      st->Bind(8, ShortName(c.technique()));
      st->Bind(9, static_cast<int64_t>(c.iol_implanted()));
      st->Bind(10, c.preop_va());
      st->Bind(11, static_cast<int64_t>(c.complications_size()));
      FS_RETURN_IF_ERROR(st->Run());
      for (const v1::FollowUpVisit& f : c.follow_ups()) {
        FS_ASSIGN_OR_RETURN(model::VisualAcuity va,
                            model::ParseVisualAcuity(f.presenting_va(), "presenting_va"));
        FS_ASSIGN_OR_RETURN(
            Statement * q,
            db.Prepare("INSERT INTO cataract_follow_ups(record_id, stage, visit_date, "
                       "presenting_va, presenting_va_decimal) VALUES(?, ?, ?, ?, ?)"));
        q->Bind(1, id);
        q->Bind(2, ShortName(f.stage()));
        q->Bind(3, f.visit_date());
        q->Bind(4, f.presenting_va());
        q->Bind(5, va.decimal);
        FS_RETURN_IF_ERROR(q->Run());
      }
      return absl::OkStatus();
    }
    case v1::Record::kClassroomDonation: {
      const v1::ClassroomDonation& d = r.classroom_donation();
      FS_ASSIGN_OR_RETURN(
          Statement * st,
          db.Prepare("INSERT INTO classroom_donations(record_id, school_name, delivered_date, "
                     "received_by, condition, students_reached, teachers_trained) "
                     "VALUES(?, ?, ?, ?, ?, ?, ?)"));
      st->Bind(1, id);
      st->Bind(2, d.school_name());
      st->Bind(3, d.delivered_date());
      st->Bind(4, d.received_by());
      st->Bind(5, ShortName(d.condition()));
      st->Bind(6, static_cast<int64_t>(d.students_reached()));
      st->Bind(7, static_cast<int64_t>(d.teachers_trained()));
      FS_RETURN_IF_ERROR(st->Run());
      for (int i = 0; i < d.items_size(); ++i) {
        const v1::DonationItem& item = d.items(i);
        FS_ASSIGN_OR_RETURN(
            Statement * q,
            db.Prepare("INSERT INTO donation_items(record_id, idx, item_type, quantity, "
                       "quantity_received, unit_value_minor, currency) "
                       "VALUES(?, ?, ?, ?, ?, ?, ?)"));
        q->Bind(1, id);
        q->Bind(2, i);
        q->Bind(3, item.item_type());
        q->Bind(4, static_cast<int64_t>(item.quantity()));
        q->Bind(5, static_cast<int64_t>(item.quantity_received()));
        q->Bind(6, item.unit_value().amount_minor());
        q->BindTextOrNull(7, item.unit_value().currency());
        FS_RETURN_IF_ERROR(q->Run());
      }
      return absl::OkStatus();
    }
    case v1::Record::kExpenditure: {
      const v1::Expenditure& e = r.expenditure();
      FS_ASSIGN_OR_RETURN(
          Statement * st,
          db.Prepare("INSERT INTO expenditures(record_id, amount_minor, currency, category, "
                     "spent_date, receipt_ref) VALUES(?, ?, ?, ?, ?, ?)"));
      st->Bind(1, id);
      st->Bind(2, e.amount().amount_minor());
      st->Bind(3, e.amount().currency());
      st->Bind(4, ShortName(e.category()));
      st->Bind(5, e.spent_date());
      st->Bind(6, e.receipt_ref());
      return st->Run();
    }
    case v1::Record::BODY_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("record.body: one of well, cataract_surgery, "
                                    "classroom_donation, expenditure is required");
}

// Deletes a record's typed rows: those of its body `kind` (a record's kind never changes), or
// of every kind for BODY_NOT_SET.
absl::Status DeleteProjection(Database& db, absl::string_view id,
                              v1::Record::BodyCase kind = v1::Record::BODY_NOT_SET) {
  const std::pair<v1::Record::BodyCase, const char*> tables[] = {
      {v1::Record::kWell, "DELETE FROM water_quality_tests WHERE record_id = ?"},
      {v1::Record::kWell, "DELETE FROM well_records WHERE record_id = ?"},
      {v1::Record::kCataractSurgery, "DELETE FROM cataract_follow_ups WHERE record_id = ?"},
      {v1::Record::kCataractSurgery, "DELETE FROM cataract_surgeries WHERE record_id = ?"},
      {v1::Record::kClassroomDonation, "DELETE FROM donation_items WHERE record_id = ?"},
      {v1::Record::kClassroomDonation, "DELETE FROM classroom_donations WHERE record_id = ?"},
      {v1::Record::kExpenditure, "DELETE FROM expenditures WHERE record_id = ?"}};
  for (const auto& [table_kind, sql] : tables) {
    if (kind != v1::Record::BODY_NOT_SET && table_kind != kind) continue;
    FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(sql));
    st->Bind(1, id);
    FS_RETURN_IF_ERROR(st->Run());
  }
  return absl::OkStatus();
}

// What the store needs to know about a record's project.
struct ProjectRef {
  std::string partner_id;
  std::string kind;
  std::string country;
};

// `scope_partner` non-empty: another partner's project is answered exactly as a missing one.
absl::StatusOr<ProjectRef> LookupProject(Database& db, absl::string_view field,
                                         absl::string_view project_id,
                                         absl::string_view scope_partner = "") {
  FS_ASSIGN_OR_RETURN(Statement * st,
                      db.Prepare("SELECT partner_id, kind, country FROM projects WHERE id = ?"));
  st->Bind(1, project_id);
  FS_ASSIGN_OR_RETURN(bool row, st->Step());
  ProjectRef ref;
  if (row) ref = ProjectRef{st->ColumnText(0), st->ColumnText(1), st->ColumnText(2)};
  st->Reset();
  if (!row || (!scope_partner.empty() && ref.partner_id != scope_partner)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": no project with id \"", project_id.substr(0, 40), "\""));
  }
  return ref;
}

absl::Status CheckSiteInProject(Database& db, absl::string_view field, absl::string_view site_id,
                                absl::string_view project_id) {
  if (site_id.empty()) return absl::OkStatus();
  FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare("SELECT project_id FROM sites WHERE id = ?"));
  st->Bind(1, site_id);
  FS_ASSIGN_OR_RETURN(bool row, st->Step());
  std::string owner = row ? st->ColumnText(0) : std::string();
  st->Reset();
  // A missing site and one of another project (perhaps another partner's) get one answer.
  if (!row || owner != project_id) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": no site with id \"",
                                                   site_id.substr(0, 40), "\" in project \"",
                                                   project_id.substr(0, 40), "\""));
  }
  return absl::OkStatus();
}

absl::Status CheckPartnerCountry(Database& db, absl::string_view partner_field,
                                 absl::string_view partner_id, absl::string_view country) {
  FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare("SELECT countries FROM partners WHERE id = ?"));
  st->Bind(1, partner_id);
  FS_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) {
    return absl::InvalidArgumentError(
        absl::StrCat(partner_field, ": no partner with id \"", partner_id, "\""));
  }
  std::vector<std::string> countries = absl::StrSplit(st->ColumnText(0), ',');
  st->Reset();
  if (std::find(countries.begin(), countries.end(), country) == countries.end()) {
    return absl::InvalidArgumentError(absl::StrCat("project.country: partner does not work in \"",
                                                   country, "\" (its countries: ",
                                                   absl::StrJoin(countries, ","), ")"));
  }
  return absl::OkStatus();
}

// The audit columns of an existing document, for an update.
struct Existing {
  int64_t version = 0;
  std::string a;  // first extra column
  std::string b;  // second extra column
};

absl::StatusOr<Existing> LookupExisting(Database& db, const std::string& sql, absl::string_view id,
                                        absl::string_view what) {
  FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(sql));
  st->Bind(1, id);
  FS_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) return absl::NotFoundError(absl::StrCat(what, " ", id, " not found"));
  Existing e{st->ColumnInt(0), st->ColumnText(1), st->ColumnText(2)};
  st->Reset();
  return e;
}

absl::Status CheckVersion(absl::string_view what, int64_t expected, int64_t actual) {
  if (expected > 0 && expected != actual) {
    return absl::FailedPreconditionError(absl::StrCat(
        "expected_version: ", what, " is at version ", actual, ", not ", expected,
        "; read it again and retry"));
  }
  return absl::OkStatus();
}

template <typename M>
void StampAudit(M& doc, int64_t version, int64_t created_at, int64_t now,
                absl::string_view created_by, const Actor& actor) {
  v1::AuditInfo* a = doc.mutable_audit();
  a->set_version(version);
  SetTimestamp(created_at, a->mutable_created_at());
  SetTimestamp(now, a->mutable_updated_at());
  a->set_created_by(std::string(created_by));
  a->set_updated_by(actor.id);
}

v1::Token ReadToken(const Statement& st, int col) {
  // Columns: id, user_id, device_id, role, partner_id, label, prefix, created_at, expires_at,
  // revoked_at.
  v1::Token t;
  t.set_id(st.ColumnText(col));
  t.set_user_id(st.ColumnText(col + 1));
  t.set_device_id(st.ColumnText(col + 2));
  v1::Role role = v1::ROLE_UNSPECIFIED;
  ParseShortName(st.ColumnText(col + 3), &role);
  t.set_role(role);
  t.set_partner_id(st.ColumnText(col + 4));
  t.set_label(st.ColumnText(col + 5));
  t.set_prefix(st.ColumnText(col + 6));
  SetTimestamp(st.ColumnInt(col + 7), t.mutable_created_at());
  if (!st.ColumnIsNull(col + 8)) SetTimestamp(st.ColumnInt(col + 8), t.mutable_expires_at());
  if (!st.ColumnIsNull(col + 9)) SetTimestamp(st.ColumnInt(col + 9), t.mutable_revoked_at());
  return t;
}

constexpr char kTokenColumns[] =
    "t.id, t.user_id, t.device_id, t.role, t.partner_id, t.label, t.prefix, t.created_at, "
    "t.expires_at, t.revoked_at";

}  // namespace

// --- Connections -------------------------------------------------------------------------------

class SqliteStore::ReaderLease {
 public:
  explicit ReaderLease(SqliteStore* store) : store_(store) {
    absl::MutexLock lock(&store_->readers_mu_);
    store_->readers_mu_.Await(absl::Condition(
        +[](std::vector<std::unique_ptr<Database>>* v) { return !v->empty(); },
        &store_->idle_readers_));
    db_ = std::move(store_->idle_readers_.back());
    store_->idle_readers_.pop_back();
  }
  ~ReaderLease() {
    absl::MutexLock lock(&store_->readers_mu_);
    store_->idle_readers_.push_back(std::move(db_));
  }
  Database& db() { return *db_; }

 private:
  SqliteStore* store_;
  std::unique_ptr<Database> db_;
};

SqliteStore::SqliteStore(std::unique_ptr<Database> writer) : writer_(std::move(writer)) {}
SqliteStore::~SqliteStore() = default;

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const Options& options) {
  const bool postgres = db::IsPostgresUrl(options.path);
  auto open = [&](bool writer) -> absl::StatusOr<std::unique_ptr<Database>> {
    if (postgres) return db::OpenPostgres(options.path);
    sqlite::OpenOptions o;
    o.synchronous = options.synchronous;
    o.create = writer;
    return db::OpenSqlite(options.path, o);
  };
  if (postgres && options.max_db_bytes > 0) {
    return absl::InvalidArgumentError(
        "max_db_bytes: a size cap applies to a SQLite file only; PostgreSQL has its own quotas");
  }
  FS_ASSIGN_OR_RETURN(auto writer, open(true));
  FS_RETURN_IF_ERROR(Migrate(*writer));
  if (options.max_db_bytes > 0) {
    // Never below the current size (SQLite keeps the larger of the two), at least one page.
    FS_ASSIGN_OR_RETURN(Statement * ps, writer->Prepare("PRAGMA page_size"));
    FS_ASSIGN_OR_RETURN(bool row, ps->Step());
    int64_t page = row ? std::max<int64_t>(ps->ColumnInt(0), 512) : 4096;
    ps->Reset();
    FS_RETURN_IF_ERROR(writer->Exec(absl::StrCat(
        "PRAGMA max_page_count = ", std::max<int64_t>(1, options.max_db_bytes / page))));
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(writer)));
  store->shared_ = postgres;
  {
    // The server's clock never goes back past a timestamp it has stored, even if the
    // machine's clock does.
    absl::MutexLock lock(&store->writer_mu_);
    FS_ASSIGN_OR_RETURN(Statement * st, store->writer_->Prepare("SELECT MAX(hlc) FROM doc_fields"));
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (row && !st->ColumnIsNull(0)) {
      absl::StatusOr<sync::Hlc> last = sync::Hlc::Decode(st->ColumnText(0));
      if (last.ok()) store->clock_.Observe(*last);
    }
    st->Reset();
    store->PublishLastSeq();
  }
  for (int i = 0; i < std::max(1, options.readers); ++i) {
    FS_ASSIGN_OR_RETURN(auto reader, open(false));
    absl::MutexLock lock(&store->readers_mu_);
    store->idle_readers_.push_back(std::move(reader));
  }
  return store;
}

struct SqliteStore::PendingWrite {
  const WriteFn* fn;
  SqliteStore* store;
  absl::Status status;
  bool done = false;
};

bool SqliteStore::GroupTurn(PendingWrite* w) {
  return w->done || !w->store->group_running_;
}

absl::Status SqliteStore::Write(const WriteFn& fn) {
  if (tx_owner_.load() == std::this_thread::get_id()) {
    // Inside RunInTransaction on this thread: the writer lock is already held.
    FS_RETURN_IF_ERROR(writer_->Exec("SAVEPOINT write"));
    const std::map<std::string, ScopeDelta> scopes_before = scope_deltas_;
    absl::Status s = fn(*writer_);
    if (!s.ok()) {
      scope_deltas_ = scopes_before;
      writer_->Exec("ROLLBACK TO write").IgnoreError();
      writer_->Exec("RELEASE write").IgnoreError();
      return s;
    }
    return writer_->Exec("RELEASE write");
  }
  PendingWrite me{&fn, this, absl::OkStatus()};
  {
    absl::MutexLock lock(&group_mu_);
    group_queue_.push_back(&me);
    group_mu_.Await(absl::Condition(&SqliteStore::GroupTurn, &me));
    if (me.done) return me.status;  // a group led by another caller committed it
    group_running_ = true;
  }
  std::vector<PendingWrite*> group;
  {
    absl::MutexLock writer_lock(&writer_mu_);
    {
      // Everything queued while we waited for the writer joins this group.
      absl::MutexLock lock(&group_mu_);
      group.swap(group_queue_);
    }
    CommitGroup(group);
  }
  absl::MutexLock lock(&group_mu_);
  for (PendingWrite* w : group) w->done = true;
  group_running_ = false;
  return me.status;
}

namespace {

// Test only (tests/replicas_test.cc, the late-commit test): FIELDSYNC_TEST_DELAY_BEFORE_COMMIT_MS=N
// makes every write transaction that appended to the change log wait N ms between its writes and
// its COMMIT, holding it open (and on PostgreSQL the write lock), so that a change commits late
// on one replica while another replica writes. Read once; never set outside tests.
void DelayBeforeCommitForTests(db::Connection& writer,
                               const std::function<int64_t()>& committed_seq) {
  static const int64_t ms = [] {
    const char* v = std::getenv("FIELDSYNC_TEST_DELAY_BEFORE_COMMIT_MS");
    int64_t n = 0;
    return v != nullptr && absl::SimpleAtoi(v, &n) && n > 0 ? n : int64_t{0};
  }();
  if (ms <= 0) return;
  // The writer sees its own appends; committed_seq() what everyone sees.
  absl::StatusOr<db::Statement*> st = writer.Prepare("SELECT COALESCE(MAX(seq), 0) FROM change_log");
  if (!st.ok()) return;
  absl::StatusOr<bool> row = (*st)->Step();
  int64_t mine = row.ok() && *row ? (*st)->ColumnInt(0) : 0;
  (*st)->Reset();
  if (mine > committed_seq()) absl::SleepFor(absl::Milliseconds(ms));
}

}  // namespace

void SqliteStore::CommitGroup(const std::vector<PendingWrite*>& group) {
  auto fail_all = [&](const absl::Status& s) {
    for (PendingWrite* w : group) w->status = s;
  };
  scope_deltas_.clear();
  absl::StatusOr<db::Transaction> tx =
      db::Transaction::Begin(*writer_, db::Transaction::kWrite);
  if (!tx.ok()) return fail_all(tx.status());
  if (group.size() == 1) {
    // Alone: the transaction is the write's own, as without grouping.
    PendingWrite* w = group.front();
    w->status = (*w->fn)(*writer_);
    if (w->status.ok()) w->status = FlushScopes(*writer_);
    if (w->status.ok()) DelayBeforeCommitForTests(*writer_, [this] { return LastSeq(); });
    if (w->status.ok()) w->status = tx->Commit();
    if (w->status.ok()) PublishLastSeq();
    return;
  }
  bool any = false;
  for (PendingWrite* w : group) {
    const std::map<std::string, ScopeDelta> scopes_before = scope_deltas_;
    absl::Status s = writer_->Exec("SAVEPOINT group_write");
    if (s.ok()) s = (*w->fn)(*writer_);
    if (s.ok()) s = writer_->Exec("RELEASE group_write");
    w->status = s;
    if (s.ok()) {
      any = true;
      continue;
    }
    // Undo this write alone. If that fails, SQLite has already rolled the whole transaction
    // back (disk full, I/O error): nothing of the group stands, and no later write may run
    // outside a transaction.
    scope_deltas_ = scopes_before;
    absl::Status undo = writer_->Exec("ROLLBACK TO group_write");
    if (undo.ok()) undo = writer_->Exec("RELEASE group_write");
    if (!undo.ok()) {
      // The others (applied before, or not yet run) lose nothing they were told was kept;
      // ABORTED: retry.
      absl::Status lost = absl::AbortedError(absl::StrCat(
          "the write was rolled back with a concurrent one that failed: ", s.message()));
      for (PendingWrite* v : group) {
        if (v != w) v->status = lost;
      }
      return;  // tx's destructor rolls back whatever is left
    }
  }
  if (!any) return;  // nothing to keep: tx's destructor rolls back
  absl::Status committed = FlushScopes(*writer_);
  if (committed.ok()) DelayBeforeCommitForTests(*writer_, [this] { return LastSeq(); });
  if (committed.ok()) committed = tx->Commit();
  if (!committed.ok()) {
    for (PendingWrite* w : group) {
      if (w->status.ok()) w->status = committed;
    }
    return;
  }
  PublishLastSeq();
}

void SqliteStore::PublishLastSeq() {
  absl::StatusOr<Statement*> st = writer_->Prepare("SELECT COALESCE(MAX(seq), 0) FROM change_log");
  if (!st.ok()) return;
  absl::StatusOr<bool> row = (*st)->Step();
  if (!row.ok() || !*row) return;
  int64_t seq = (*st)->ColumnInt(0);
  (*st)->Reset();
  absl::MutexLock lock(&seq_mu_);
  if (seq > last_seq_) {
    last_seq_ = seq;
    seq_cv_.SignalAll();
  }
}

absl::Status SqliteStore::RunInTransaction(const std::function<absl::Status()>& fn) {
  if (tx_owner_.load() == std::this_thread::get_id()) {
    return absl::FailedPreconditionError("RunInTransaction: already inside a transaction");
  }
  absl::MutexLock lock(&writer_mu_);
  FS_ASSIGN_OR_RETURN(auto tx, db::Transaction::Begin(*writer_, db::Transaction::kWrite));
  scope_deltas_.clear();
  tx_owner_.store(std::this_thread::get_id());
  absl::Status s = fn();
  tx_owner_.store(std::thread::id());
  if (s.ok()) s = FlushScopes(*writer_);
  FS_RETURN_IF_ERROR(s);
  DelayBeforeCommitForTests(*writer_, [this] { return LastSeq(); });
  FS_RETURN_IF_ERROR(tx.Commit());
  PublishLastSeq();
  return absl::OkStatus();
}

absl::Status SqliteStore::Read(const ReadFn& fn) {
  // Inside RunInTransaction, reads must see the batch's own uncommitted writes.
  if (tx_owner_.load() == std::this_thread::get_id()) return fn(*writer_);
  ReaderLease lease(this);
  return fn(lease.db());
}

// --- Partners ----------------------------------------------------------------------------------

absl::StatusOr<v1::Partner> SqliteStore::CreatePartner(const v1::Partner& partner,
                                                       const Actor& actor) {
  v1::Partner out = partner;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    int64_t now = NowMicros();
    std::string payload = StoredPayload(partner);
    FS_ASSIGN_OR_RETURN(int64_t seq, AppendChange(db, "partner", partner.id(), "create", actor,
                                                  payload, now));
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("INSERT INTO partners(id, name, countries, payload, version, created_at, "
                   "updated_at, created_by, updated_by) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    st->Bind(1, partner.id());
    st->Bind(2, partner.name());
    st->Bind(3, absl::StrJoin(partner.countries(), ","));
    st->BindBlob(4, payload);
    st->Bind(5, seq);
    st->Bind(6, now);
    st->Bind(7, now);
    st->Bind(8, actor.id);
    st->Bind(9, actor.id);
    absl::Status s = st->Run();
    // The unique index on name: "partners.name" on SQLite, "partners_name_key" on PostgreSQL.
    if (s.code() == absl::StatusCode::kAlreadyExists &&
        (absl::StrContains(s.message(), "partners.name") ||
         absl::StrContains(s.message(), "partners_name_key"))) {
      return absl::AlreadyExistsError(
          absl::StrCat("partner.name: a partner named \"", partner.name(), "\" already exists"));
    }
    FS_RETURN_IF_ERROR(IdClash(s, "partner.id", partner.id()));
    StampAudit(out, seq, now, now, actor.id, actor);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Partner> SqliteStore::UpdatePartner(const v1::Partner& partner,
                                                       const Actor& actor) {
  v1::Partner out = partner;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(
        Existing old,
        LookupExisting(db, "SELECT version, created_by, created_at FROM partners WHERE id = ?",
                       partner.id(), "partner"));
    // A partner may not drop a country it still has projects in.
    FS_ASSIGN_OR_RETURN(Statement * used,
                        db.Prepare("SELECT DISTINCT country FROM projects WHERE partner_id = ?"));
    used->Bind(1, partner.id());
    while (true) {
      FS_ASSIGN_OR_RETURN(bool row, used->Step());
      if (!row) break;
      std::string c = used->ColumnText(0);
      if (std::find(partner.countries().begin(), partner.countries().end(), c) ==
          partner.countries().end()) {
        used->Reset();
        return absl::FailedPreconditionError(absl::StrCat(
            "partner.countries: the partner still has projects in \"", c, "\""));
      }
    }
    int64_t now = NowMicros();
    std::string payload = StoredPayload(partner);
    FS_ASSIGN_OR_RETURN(int64_t seq, AppendChange(db, "partner", partner.id(), "update", actor,
                                                  payload, now));
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("UPDATE partners SET name = ?, countries = ?, payload = ?, version = ?, "
                   "updated_at = ?, updated_by = ? WHERE id = ?"));
    st->Bind(1, partner.name());
    st->Bind(2, absl::StrJoin(partner.countries(), ","));
    st->BindBlob(3, payload);
    st->Bind(4, seq);
    st->Bind(5, now);
    st->Bind(6, actor.id);
    st->Bind(7, partner.id());
    absl::Status s = st->Run();
    if (s.code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(
          absl::StrCat("partner.name: a partner named \"", partner.name(), "\" already exists"));
    }
    FS_RETURN_IF_ERROR(s);
    int64_t created_at = 0;
    if (!absl::SimpleAtoi(old.b, &created_at)) created_at = 0;
    StampAudit(out, seq, created_at, now, old.a, actor);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Partner> SqliteStore::GetPartner(absl::string_view id) {
  absl::StatusOr<v1::Partner> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    out = GetDoc<v1::Partner>(db, "partners", "partner", id);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<v1::Partner>> SqliteStore::ListPartners(const PageRequest& page) {
  absl::StatusOr<std::vector<v1::Partner>> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    Where where;
    std::string tail;
    AddPage(where, tail, page, "id");
    out = QueryDocs<v1::Partner>(
        db, absl::StrCat("SELECT ", kDocColumns, " FROM partners WHERE ", where.Sql(), tail),
        where.params());
    return absl::OkStatus();
  }));
  return out;
}

// --- Users, devices, tokens --------------------------------------------------------------------

absl::StatusOr<v1::User> SqliteStore::CreateUser(const v1::User& user, const Actor& actor) {
  v1::User out = user;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    int64_t now = NowMicros();
    if (!user.partner_id().empty()) {
      FS_ASSIGN_OR_RETURN(Statement * p, db.Prepare("SELECT 1 FROM partners WHERE id = ?"));
      p->Bind(1, user.partner_id());
      FS_ASSIGN_OR_RETURN(bool found, p->Step());
      p->Reset();
      if (!found) {
        return absl::InvalidArgumentError(
            absl::StrCat("user.partner_id: no partner with id \"", user.partner_id(), "\""));
      }
    }
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("INSERT INTO users(id, name, role, partner_id, created_at) VALUES(?, ?, ?, ?, ?)"));
    st->Bind(1, user.id());
    st->Bind(2, user.name());
    st->Bind(3, ShortName(user.role()));
    st->BindTextOrNull(4, user.partner_id());
    st->Bind(5, now);
    absl::Status s = st->Run();
    if (s.code() == absl::StatusCode::kAlreadyExists &&
        (absl::StrContains(s.message(), "users.name") ||
         absl::StrContains(s.message(), "users_name_key"))) {
      return absl::AlreadyExistsError(
          absl::StrCat("user.name: a user named \"", user.name(), "\" already exists"));
    }
    FS_RETURN_IF_ERROR(IdClash(s, "user.id", user.id()));
    SetTimestamp(now, out.mutable_created_at());
    v1::User logged = out;
    return AppendChange(db, "user", user.id(), "create", actor, Serialize(logged), now).status();
  }));
  return out;
}

namespace {

constexpr char kUserColumns[] = "id, name, role, partner_id, created_at";

absl::StatusOr<std::vector<v1::User>> QueryUsers(Database& db, const std::string& sql,
                                                 const std::vector<Param>& params) {
  FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(sql));
  BindAll(*st, params);
  std::vector<v1::User> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    v1::User u;
    u.set_id(st->ColumnText(0));
    u.set_name(st->ColumnText(1));
    v1::Role role = v1::ROLE_UNSPECIFIED;
    ParseShortName(st->ColumnText(2), &role);
    u.set_role(role);
    u.set_partner_id(st->ColumnText(3));
    SetTimestamp(st->ColumnInt(4), u.mutable_created_at());
    out.push_back(std::move(u));
  }
  return out;
}

constexpr char kDeviceColumns[] =
    "id, partner_id, name, created_at, last_sync_at, acked_device_seq + "
    "COALESCE((SELECT SUM(s.acked_device_seq) FROM device_streams s "
    "WHERE s.device_id = devices.id), 0), "
    "(SELECT COUNT(*) FROM conflicts c WHERE c.status = 'OPEN' AND "
    "(c.winning_writer = devices.id OR c.losing_writer = devices.id)), disabled_at";

absl::StatusOr<std::vector<v1::Device>> QueryDevices(Database& db, const std::string& sql,
                                                     const std::vector<Param>& params) {
  FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(sql));
  BindAll(*st, params);
  std::vector<v1::Device> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    v1::Device d;
    d.set_id(st->ColumnText(0));
    d.set_partner_id(st->ColumnText(1));
    d.set_name(st->ColumnText(2));
    SetTimestamp(st->ColumnInt(3), d.mutable_created_at());
    if (!st->ColumnIsNull(4)) SetTimestamp(st->ColumnInt(4), d.mutable_last_sync_at());
    d.set_acked_device_seq(st->ColumnInt(5));
    d.set_open_conflicts(st->ColumnInt(6));
    if (!st->ColumnIsNull(7)) SetTimestamp(st->ColumnInt(7), d.mutable_disabled_at());
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

absl::StatusOr<v1::User> SqliteStore::GetUser(absl::string_view id) {
  absl::StatusOr<std::vector<v1::User>> users;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    users = QueryUsers(db, absl::StrCat("SELECT ", kUserColumns, " FROM users WHERE id = ?"),
                       {std::string(id)});
    return absl::OkStatus();
  }));
  FS_RETURN_IF_ERROR(users.status());
  if (users->empty()) return absl::NotFoundError(absl::StrCat("user ", id, " not found"));
  return users->front();
}

absl::StatusOr<std::vector<v1::User>> SqliteStore::ListUsers(const PageRequest& page) {
  absl::StatusOr<std::vector<v1::User>> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    Where where;
    std::string tail;
    AddPage(where, tail, page, "id");
    out = QueryUsers(db, absl::StrCat("SELECT ", kUserColumns, " FROM users WHERE ", where.Sql(),
                                      tail),
                     where.params());
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Device> SqliteStore::CreateDevice(const v1::Device& device,
                                                     const Actor& actor) {
  v1::Device out = device;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    int64_t now = NowMicros();
    FS_ASSIGN_OR_RETURN(Statement * p, db.Prepare("SELECT 1 FROM partners WHERE id = ?"));
    p->Bind(1, device.partner_id());
    FS_ASSIGN_OR_RETURN(bool found, p->Step());
    p->Reset();
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat("device.partner_id: no partner with id \"", device.partner_id(), "\""));
    }
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("INSERT INTO devices(id, partner_id, name, created_at) VALUES(?, ?, ?, ?)"));
    st->Bind(1, device.id());
    st->Bind(2, device.partner_id());
    st->Bind(3, device.name());
    st->Bind(4, now);
    FS_RETURN_IF_ERROR(IdClash(st->Run(), "device.id", device.id()));
    SetTimestamp(now, out.mutable_created_at());
    out.clear_last_sync_at();
    return AppendChange(db, "device", device.id(), "create", actor, Serialize(out), now).status();
  }));
  return out;
}

absl::StatusOr<v1::Device> SqliteStore::GetDevice(absl::string_view id) {
  absl::StatusOr<std::vector<v1::Device>> devices;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    devices = QueryDevices(
        db, absl::StrCat("SELECT ", kDeviceColumns, " FROM devices WHERE id = ?"),
        {std::string(id)});
    return absl::OkStatus();
  }));
  FS_RETURN_IF_ERROR(devices.status());
  if (devices->empty()) return absl::NotFoundError(absl::StrCat("device ", id, " not found"));
  return devices->front();
}

absl::StatusOr<std::vector<v1::Device>> SqliteStore::ListDevices(absl::string_view partner_id,
                                                                 const PageRequest& page) {
  absl::StatusOr<std::vector<v1::Device>> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    Where where;
    where.AddIf(!partner_id.empty(), "partner_id = ?", std::string(partner_id));
    std::string tail;
    AddPage(where, tail, page, "id");
    out = QueryDevices(
        db, absl::StrCat("SELECT ", kDeviceColumns, " FROM devices WHERE ", where.Sql(), tail),
        where.params());
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Device> SqliteStore::SetDeviceDisabled(absl::string_view id, bool disabled,
                                                          const Actor& actor) {
  v1::Device out;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    int64_t now = NowMicros();
    FS_ASSIGN_OR_RETURN(
        Statement * up,
        db.Prepare(disabled
                       ? "UPDATE devices SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL"
                       : "UPDATE devices SET disabled_at = NULL WHERE id = ? AND "
                         "disabled_at IS NOT NULL"));
    if (disabled) {
      up->Bind(1, now);
      up->Bind(2, id);
    } else {
      up->Bind(1, id);
    }
    FS_RETURN_IF_ERROR(up->Run());
    const bool changed = db.Changes() > 0;
    FS_ASSIGN_OR_RETURN(
        std::vector<v1::Device> found,
        QueryDevices(db, absl::StrCat("SELECT ", kDeviceColumns, " FROM devices WHERE id = ?"),
                     {std::string(id)}));
    if (found.empty()) return absl::NotFoundError(absl::StrCat("id: device ", id, " not found"));
    out = found.front();
    if (!changed) return absl::OkStatus();
    return AppendChange(db, "device", id, disabled ? "disable" : "enable", actor, Serialize(out),
                        now)
        .status();
  }));
  return out;
}

absl::StatusOr<v1::Token> SqliteStore::CreateToken(const v1::Token& token,
                                                   absl::string_view secret_sha256_hex,
                                                   const Actor& actor) {
  v1::Token out = token;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    int64_t now = NowMicros();
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("INSERT INTO tokens(id, secret_sha256, user_id, device_id, role, partner_id, "
                   "label, prefix, created_at, expires_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    st->Bind(1, token.id());
    st->Bind(2, secret_sha256_hex);
    st->BindTextOrNull(3, token.user_id());
    st->BindTextOrNull(4, token.device_id());
    st->Bind(5, ShortName(token.role()));
    st->BindTextOrNull(6, token.partner_id());
    st->Bind(7, token.label());
    st->Bind(8, token.prefix());
    st->Bind(9, now);
    if (token.has_expires_at()) {
      st->Bind(10, google::protobuf::util::TimeUtil::TimestampToMicroseconds(token.expires_at()));
    } else {
      st->BindNull(10);
    }
    FS_RETURN_IF_ERROR(IdClash(st->Run(), "token.id", token.id()));
    SetTimestamp(now, out.mutable_created_at());
    // The log records that a token was issued, never its secret or hash.
    return AppendChange(db, "token", token.id(), "create", actor, Serialize(out), now).status();
  }));
  return out;
}

absl::StatusOr<TokenRecord> SqliteStore::FindToken(absl::string_view secret_sha256_hex) {
  absl::StatusOr<TokenRecord> out = absl::NotFoundError("no such token");
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare(absl::StrCat("SELECT ", kTokenColumns,
                                ", COALESCE(u.name, d.name, ''), d.disabled_at FROM tokens t "
                                "LEFT JOIN users u ON u.id = t.user_id "
                                "LEFT JOIN devices d ON d.id = t.device_id "
                                "WHERE t.secret_sha256 = ?")));
    st->Bind(1, secret_sha256_hex);
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) out = TokenRecord{ReadToken(*st, 0), st->ColumnText(10), !st->ColumnIsNull(11)};
    st->Reset();
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<v1::Token>> SqliteStore::ListTokens(absl::string_view user_id,
                                                               absl::string_view device_id,
                                                               const PageRequest& page) {
  std::vector<v1::Token> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    Where where;
    where.AddIf(!user_id.empty(), "t.user_id = ?", std::string(user_id));
    where.AddIf(!device_id.empty(), "t.device_id = ?", std::string(device_id));
    std::string tail;
    AddPage(where, tail, page, "t.id");
    FS_ASSIGN_OR_RETURN(Statement * st,
                        db.Prepare(absl::StrCat("SELECT ", kTokenColumns, " FROM tokens t WHERE ",
                                                where.Sql(), tail)));
    BindAll(*st, where.params());
    while (true) {
      FS_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      out.push_back(ReadToken(*st, 0));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Token> SqliteStore::RevokeToken(absl::string_view id, const Actor& actor) {
  v1::Token out;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    int64_t now = NowMicros();
    FS_ASSIGN_OR_RETURN(
        Statement * up,
        db.Prepare("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"));
    up->Bind(1, now);
    up->Bind(2, id);
    FS_RETURN_IF_ERROR(up->Run());
    bool changed = db.Changes() > 0;
    FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(absl::StrCat(
                                            "SELECT ", kTokenColumns, " FROM tokens t WHERE id = ?")));
    st->Bind(1, id);
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return absl::NotFoundError(absl::StrCat("token ", id, " not found"));
    out = ReadToken(*st, 0);
    st->Reset();
    if (!changed) return absl::OkStatus();
    return AppendChange(db, "token", id, "revoke", actor, Serialize(out), now).status();
  }));
  return out;
}

absl::StatusOr<int64_t> SqliteStore::RevokeDeviceTokens(absl::string_view device_id,
                                                        const Actor& actor) {
  int64_t revoked = 0;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    int64_t now = NowMicros();
    std::vector<std::string> ids;
    {
      FS_ASSIGN_OR_RETURN(Statement * st,
                          db.Prepare("SELECT id FROM tokens WHERE device_id = ? AND "
                                     "revoked_at IS NULL ORDER BY id"));
      st->Bind(1, device_id);
      while (true) {
        FS_ASSIGN_OR_RETURN(bool row, st->Step());
        if (!row) break;
        ids.push_back(st->ColumnText(0));
      }
    }
    for (const std::string& id : ids) {
      FS_ASSIGN_OR_RETURN(Statement * up,
                          db.Prepare("UPDATE tokens SET revoked_at = ? WHERE id = ?"));
      up->Bind(1, now);
      up->Bind(2, id);
      FS_RETURN_IF_ERROR(up->Run());
      FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(absl::StrCat("SELECT ", kTokenColumns,
                                                                  " FROM tokens t WHERE id = ?")));
      st->Bind(1, id);
      FS_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) return absl::InternalError(absl::StrCat("token ", id, " vanished"));
      v1::Token token = ReadToken(*st, 0);
      st->Reset();
      FS_RETURN_IF_ERROR(
          AppendChange(db, "token", id, "revoke", actor, Serialize(token), now).status());
    }
    revoked = static_cast<int64_t>(ids.size());
    return absl::OkStatus();
  }));
  return revoked;
}

// --- Projects ----------------------------------------------------------------------------------

namespace {

void BindProjectColumns(Statement& st, const v1::Project& p) {
  // Shared column order: partner_id, kind, title, country, admin_area, status, start_date,
  // end_date, budget_minor, currency, donor, iati_identifier.
  st.Bind(1, p.partner_id());
  st.Bind(2, ShortName(p.kind()));
  st.Bind(3, p.title());
  st.Bind(4, p.country());
  st.Bind(5, p.admin_area());
  st.Bind(6, ShortName(p.status()));
  st.BindTextOrNull(7, p.start_date());
  st.BindTextOrNull(8, p.end_date());
  st.Bind(9, p.budget().amount_minor());
  st.BindTextOrNull(10, p.budget().currency());
  st.Bind(11, p.donor());
  st.Bind(12, p.iati_identifier());
}

}  // namespace

absl::StatusOr<v1::Project> SqliteStore::GetProject(absl::string_view id) {
  absl::StatusOr<v1::Project> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    out = GetDoc<v1::Project>(db, "projects", "project", id);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<v1::Project>> SqliteStore::ListProjects(
    const v1::ListProjectsRequest& f, const Scope& scope, const PageRequest& page) {
  absl::StatusOr<std::vector<v1::Project>> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    Where where;
    where.AddIf(!scope.partner_id.empty(), "partner_id = ?", scope.partner_id);
    where.AddIf(f.kind() != v1::PROJECT_KIND_UNSPECIFIED, "kind = ?", ShortName(f.kind()));
    where.AddIf(!f.country().empty(), "country = ?", f.country());
    where.AddIf(!f.partner_id().empty(), "partner_id = ?", f.partner_id());
    where.AddIf(f.status() != v1::PROJECT_STATUS_UNSPECIFIED, "status = ?",
                ShortName(f.status()));
    // One named parameter used four times takes one slot in SQLite's numbering, in order of
    // first appearance, so it binds like a single "?".
    // instr is strpos on PostgreSQL.
    where.AddIf(!f.text().empty(),
                db.engine() == db::Engine::kPostgres
                    ? "(strpos(lower(title), lower($text)) > 0 "
                      "OR strpos(lower(donor), lower($text)) > 0 "
                      "OR strpos(lower(admin_area), lower($text)) > 0 "
                      "OR strpos(lower(iati_identifier), lower($text)) > 0)"
                    : "(instr(lower(title), lower($text)) > 0 "
                      "OR instr(lower(donor), lower($text)) > 0 "
                      "OR instr(lower(admin_area), lower($text)) > 0 "
                      "OR instr(lower(iati_identifier), lower($text)) > 0)",
                f.text());
    std::string tail;
    AddPage(where, tail, page, "id");
    std::string sql =
        absl::StrCat("SELECT ", kDocColumns, " FROM projects WHERE ", where.Sql(), tail);
    std::vector<Param> params = where.params();
    out = QueryDocs<v1::Project>(db, sql, params);
    return absl::OkStatus();
  }));
  return out;
}

// --- Sites -------------------------------------------------------------------------------------

absl::StatusOr<v1::Site> SqliteStore::GetSite(absl::string_view id) {
  absl::StatusOr<v1::Site> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    out = GetDoc<v1::Site>(db, "sites", "site", id);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<v1::Site>> SqliteStore::ListSites(absl::string_view project_id,
                                                             const Scope& scope,
                                                             const PageRequest& page) {
  absl::StatusOr<std::vector<v1::Site>> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    Where where;
    where.AddIf(!scope.partner_id.empty(), "partner_id = ?", scope.partner_id);
    where.AddIf(!project_id.empty(), "project_id = ?", std::string(project_id));
    std::string tail;
    AddPage(where, tail, page, "id");
    out = QueryDocs<v1::Site>(
        db, absl::StrCat("SELECT ", kDocColumns, " FROM sites WHERE ", where.Sql(), tail),
        where.params());
    return absl::OkStatus();
  }));
  return out;
}

// --- Records -----------------------------------------------------------------------------------

namespace {

absl::Status CheckRecordFitsProject(const v1::Record& r, const ProjectRef& project) {
  v1::ProjectKind needed = v1::PROJECT_KIND_UNSPECIFIED;
  switch (r.body_case()) {
    case v1::Record::kWell:
      needed = v1::PROJECT_KIND_WELL;
      break;
    case v1::Record::kCataractSurgery:
      needed = v1::PROJECT_KIND_CATARACT;
      break;
    case v1::Record::kClassroomDonation:
      needed = v1::PROJECT_KIND_CLASSROOM;
      break;
    default:
      return absl::OkStatus();  // expenditures fit any project
  }
  if (ShortName(needed) != project.kind) {
    return absl::InvalidArgumentError(absl::StrCat(
        "record.project_id: project \"", r.project_id(), "\" is a ", project.kind,
        " project; a ", ShortName(r.kind()), " record needs a ", ShortName(needed), " project"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::Record> SqliteStore::GetRecord(absl::string_view id) {
  absl::StatusOr<v1::Record> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    out = GetDoc<v1::Record>(db, "records", "record", id);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<v1::Record>> SqliteStore::ListRecords(const v1::ListRecordsRequest& f,
                                                                 const Scope& scope,
                                                                 const PageRequest& page) {
  absl::StatusOr<std::vector<v1::Record>> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    Where where;
    where.AddIf(!scope.partner_id.empty(), "partner_id = ?", scope.partner_id);
    where.AddIf(f.kind() != v1::RECORD_KIND_UNSPECIFIED, "kind = ?", ShortName(f.kind()));
    where.AddIf(!f.project_id().empty(), "project_id = ?", f.project_id());
    where.AddIf(!f.site_id().empty(), "site_id = ?", f.site_id());
    where.AddIf(!f.from_date().empty(), "record_date >= ?", f.from_date());
    where.AddIf(!f.to_date().empty(), "record_date <= ?", f.to_date());
    where.AddIf(!f.partner_id().empty(), "partner_id = ?", f.partner_id());
    where.AddIf(!f.country().empty(), "country = ?", f.country());
    std::string tail;
    AddPage(where, tail, page, "id");
    out = QueryDocs<v1::Record>(
        db, absl::StrCat("SELECT ", kDocColumns, " FROM records WHERE ", where.Sql(), tail),
        where.params());
    return absl::OkStatus();
  }));
  return out;
}

// --- The document write path -------------------------------------------------------------------

namespace {

// A document as stored: its fields with clocks, and the docs row.
struct StoredDoc {
  sync::Document doc;
  bool exists = false;
  std::string partner_id;
  int64_t seq = 0;
  std::string payload;  // canonical payload, for the scope checksum
};

absl::StatusOr<StoredDoc> LoadDoc(Database& db, absl::string_view collection,
                                  absl::string_view id) {
  StoredDoc out;
  out.doc.collection = std::string(collection);
  out.doc.id = std::string(id);
  FS_ASSIGN_OR_RETURN(
      Statement * row,
      db.Prepare("SELECT partner_id, seq, payload FROM docs WHERE collection = ? AND doc_id = ?"));
  row->Bind(1, collection);
  row->Bind(2, id);
  FS_ASSIGN_OR_RETURN(out.exists, row->Step());
  if (out.exists) {
    out.partner_id = row->ColumnText(0);
    out.seq = row->ColumnInt(1);
    out.payload = row->ColumnBlob(2);
  }
  row->Reset();
  if (!out.exists) return out;
  FS_ASSIGN_OR_RETURN(Statement * fields,
                      db.Prepare("SELECT path, value, hlc, seq FROM doc_fields "
                                 "WHERE collection = ? AND doc_id = ?"));
  fields->Bind(1, collection);
  fields->Bind(2, id);
  while (true) {
    FS_ASSIGN_OR_RETURN(bool has, fields->Step());
    if (!has) break;
    sync::FieldState& f = out.doc.fields[fields->ColumnText(0)];
    f.value = fields->ColumnBlob(1);
    FS_ASSIGN_OR_RETURN(f.hlc, sync::Hlc::Decode(fields->ColumnText(2)));
    f.seq = fields->ColumnInt(3);
  }
  return out;
}

// XORs `payload`'s document hash into the partner's pending scope checksum change (add or
// remove); SqliteStore::FlushScopes writes it before the transaction commits.
template <typename Deltas>
void ToggleScope(Deltas& deltas, absl::string_view partner_id, absl::string_view collection,
                 absl::string_view id, absl::string_view payload, int delta) {
  sync::ScopeChecksum sum;
  sum.Add(collection, id, payload);
  auto& d = deltas[std::string(partner_id)];
  for (size_t i = 0; i < 32 && i < d.digest.size(); ++i) d.digest[i] ^= sum.Digest()[i];
  d.documents += delta;
}

// Applies one partner's pending change to its stored scope checksum.
absl::Status WriteScope(Database& db, absl::string_view partner_id, absl::string_view change,
                        int64_t delta) {
  FS_ASSIGN_OR_RETURN(
      Statement * get,
      db.Prepare("SELECT digest, documents FROM scope_checksums WHERE partner_id = ?"));
  get->Bind(1, partner_id);
  FS_ASSIGN_OR_RETURN(bool found, get->Step());
  std::string digest = found ? get->ColumnBlob(0) : std::string(32, '\0');
  int64_t documents = found ? get->ColumnInt(1) : 0;
  get->Reset();
  for (size_t i = 0; i < 32 && i < digest.size() && i < change.size(); ++i) digest[i] ^= change[i];
  FS_ASSIGN_OR_RETURN(
      Statement * put,
      db.Prepare("INSERT INTO scope_checksums(partner_id, digest, documents) VALUES(?, ?, ?) "
                 "ON CONFLICT(partner_id) DO UPDATE SET digest = excluded.digest, "
                 "documents = excluded.documents"));
  put->Bind(1, partner_id);
  put->BindBlob(2, digest);
  put->Bind(3, documents + delta);
  return put->Run();
}

// The typed message of a document's current values, with derived fields filled.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> TypedOf(const sync::Document& doc) {
  const google::protobuf::Message* proto = sync::PrototypeFor(doc.collection);
  if (proto == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("collection: not a synced collection, got \"", doc.collection, "\""));
  }
  std::unique_ptr<google::protobuf::Message> m(proto->New());
  FS_RETURN_IF_ERROR(sync::Assemble(doc.Values(), m.get()));
  return m;
}

// Fills what the server derives on a record: kind, record date, follow-up outcomes.
absl::Status DeriveRecord(v1::Record& r) {
  r.set_kind(model::KindOf(r));
  r.set_record_date(model::RecordDateOf(r));
  if (r.has_cataract_surgery()) {
    for (v1::FollowUpVisit& f : *r.mutable_cataract_surgery()->mutable_follow_ups()) {
      FS_ASSIGN_OR_RETURN(model::VisualAcuity va,
                          model::ParseVisualAcuity(f.presenting_va(), "presenting_va"));
      f.set_outcome(model::OutcomeOf(va));
    }
  }
  return absl::OkStatus();
}

// Fields that are fixed once a document exists.
absl::Status CheckImmutable(const google::protobuf::Message& before,
                            const google::protobuf::Message& after, absl::string_view collection) {
  auto same = [&](const char* field) -> absl::Status {
    const auto* f = before.GetDescriptor()->FindFieldByName(field);
    const auto* r = before.GetReflection();
    if (r->GetString(before, f) == r->GetString(after, f)) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(collection, ".", field, ": cannot change (is \"",
                                                   r->GetString(before, f), "\"), got \"",
                                                   r->GetString(after, f), "\""));
  };
  if (collection == "project") {
    FS_RETURN_IF_ERROR(same("partner_id"));
    const auto& b = static_cast<const v1::Project&>(before);
    const auto& a = static_cast<const v1::Project&>(after);
    if (a.kind() != b.kind()) {
      return absl::InvalidArgumentError(absl::StrCat("project.kind: cannot change (is ",
                                                     ShortName(b.kind()), "), got ",
                                                     ShortName(a.kind())));
    }
  } else if (collection == "site") {
    FS_RETURN_IF_ERROR(same("project_id"));
  } else if (collection == "record") {
    FS_RETURN_IF_ERROR(same("project_id"));
    const auto& b = static_cast<const v1::Record&>(before);
    const auto& a = static_cast<const v1::Record&>(after);
    if (a.body_case() != b.body_case()) {
      return absl::InvalidArgumentError(absl::StrCat("record.body: kind cannot change (is ",
                                                     ShortName(model::KindOf(b)), "), got ",
                                                     ShortName(model::KindOf(a))));
    }
  }
  return absl::OkStatus();
}

template <typename M>
void BindAuditColumns(Statement& st, int first, int64_t seq, int64_t now, const Actor& actor) {
  // version, created_at, updated_at, created_by, updated_by
  st.Bind(first, seq);
  st.Bind(first + 1, now);
  st.Bind(first + 2, now);
  st.Bind(first + 3, actor.id);
  st.Bind(first + 4, actor.id);
}

// The upsert tail shared by the typed tables: created_* stay as first written.
constexpr char kUpsertAudit[] =
    "version = excluded.version, updated_at = excluded.updated_at, "
    "updated_by = excluded.updated_by, payload = excluded.payload";

absl::Status WriteProjectRow(Database& db, const v1::Project& p, int64_t seq, int64_t now,
                             const Actor& actor) {
  FS_ASSIGN_OR_RETURN(
      Statement * st,
      db.Prepare(absl::StrCat(
          "INSERT INTO projects(partner_id, kind, title, country, admin_area, status, "
          "start_date, end_date, budget_minor, currency, donor, iati_identifier, id, payload, "
          "version, created_at, updated_at, created_by, updated_by) "
          "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT(id) DO UPDATE SET title = excluded.title, country = excluded.country, "
          "admin_area = excluded.admin_area, status = excluded.status, "
          "start_date = excluded.start_date, end_date = excluded.end_date, "
          "budget_minor = excluded.budget_minor, currency = excluded.currency, "
          "donor = excluded.donor, iati_identifier = excluded.iati_identifier, ",
          kUpsertAudit)));
  BindProjectColumns(*st, p);
  st->Bind(13, p.id());
  st->BindBlob(14, StoredPayload(p));
  BindAuditColumns<v1::Project>(*st, 15, seq, now, actor);
  FS_RETURN_IF_ERROR(st->Run());
  // Records carry their project's country for scoped queries; keep them in step.
  FS_ASSIGN_OR_RETURN(Statement * rc, db.Prepare("UPDATE records SET country = ? "
                                                 "WHERE project_id = ? AND country <> ?"));
  rc->Bind(1, p.country());
  rc->Bind(2, p.id());
  rc->Bind(3, p.country());
  return rc->Run();
}

absl::Status WriteSiteRow(Database& db, const v1::Site& site, absl::string_view partner_id,
                          int64_t seq, int64_t now, const Actor& actor) {
  FS_ASSIGN_OR_RETURN(
      Statement * st,
      db.Prepare(absl::StrCat(
          "INSERT INTO sites(id, project_id, partner_id, name, latitude_deg, longitude_deg, "
          "admin_area, payload, version, created_at, updated_at, created_by, updated_by) "
          "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT(id) DO UPDATE SET name = excluded.name, "
          "latitude_deg = excluded.latitude_deg, longitude_deg = excluded.longitude_deg, "
          "admin_area = excluded.admin_area, ",
          kUpsertAudit)));
  st->Bind(1, site.id());
  st->Bind(2, site.project_id());
  st->Bind(3, partner_id);
  st->Bind(4, site.name());
  st->Bind(5, site.latitude_deg());
  st->Bind(6, site.longitude_deg());
  st->Bind(7, site.admin_area());
  st->BindBlob(8, StoredPayload(site));
  BindAuditColumns<v1::Site>(*st, 9, seq, now, actor);
  return st->Run();
}

// `existed`: the record had typed rows before this change (else there is nothing to delete).
absl::Status WriteRecordRow(Database& db, const v1::Record& r, const ProjectRef& project,
                            int64_t seq, int64_t now, const Actor& actor, bool existed) {
  // GetStats' aggregates: the record's contribution before (rows and record_date) and after.
  const int stats_kinds = StatsKindsOf(r);
  RecordStats stats_before;
  if (existed) {
    FS_ASSIGN_OR_RETURN(stats_before, ReadRecordStats(db, r.id(), stats_kinds));
  }
  FS_ASSIGN_OR_RETURN(
      Statement * st,
      db.Prepare(absl::StrCat(
          "INSERT INTO records(id, kind, project_id, site_id, partner_id, country, record_date, "
          "payload, version, created_at, updated_at, created_by, updated_by) "
          "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT(id) DO UPDATE SET site_id = excluded.site_id, "
          "record_date = excluded.record_date, ",
          kUpsertAudit)));
  st->Bind(1, r.id());
  st->Bind(2, ShortName(r.kind()));
  st->Bind(3, r.project_id());
  st->BindTextOrNull(4, r.site_id());
  st->Bind(5, project.partner_id);
  st->Bind(6, project.country);
  st->Bind(7, r.record_date());
  st->BindBlob(8, StoredPayload(r));
  BindAuditColumns<v1::Record>(*st, 9, seq, now, actor);
  FS_RETURN_IF_ERROR(st->Run());
  if (existed) FS_RETURN_IF_ERROR(DeleteProjection(db, r.id(), r.body_case()));
  FS_RETURN_IF_ERROR(WriteProjection(db, r));
  FS_ASSIGN_OR_RETURN(RecordStats stats_after, ReadRecordStats(db, r.id(), stats_kinds));
  return ApplyRecordStats(db, stats_before, stats_after);
}

absl::Status DeleteRecordRow(Database& db, absl::string_view id) {
  FS_ASSIGN_OR_RETURN(RecordStats stats_before, ReadRecordStats(db, id, kStatsAllKinds));
  FS_RETURN_IF_ERROR(ApplyRecordStats(db, stats_before, RecordStats()));
  FS_RETURN_IF_ERROR(DeleteProjection(db, id));
  FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare("DELETE FROM records WHERE id = ?"));
  st->Bind(1, id);
  return st->Run();
}

// Encodes a sync::Change as the wire Change stored in the change log.
v1::Change ToProto(const sync::Change& c) {
  v1::Change out;
  out.set_device_seq(c.device_seq);
  out.set_collection(c.collection);
  out.set_doc_id(c.doc_id);
  out.set_hlc(c.hlc.Encode());
  for (const sync::FieldChange& f : c.fields) {
    v1::FieldChange* fc = out.add_fields();
    fc->set_path(f.path);
    fc->set_value(f.value);
    if (!f.base_hlc.IsZero()) fc->set_base_hlc(f.base_hlc.Encode());
  }
  return out;
}

absl::StatusOr<sync::Change> FromProto(const v1::Change& c, absl::string_view device_id) {
  sync::Change out;
  out.device_id = std::string(device_id);
  out.device_seq = c.device_seq();
  out.collection = c.collection();
  out.doc_id = c.doc_id();
  FS_ASSIGN_OR_RETURN(out.hlc, sync::Hlc::Decode(c.hlc(), "hlc"));
  for (int i = 0; i < c.fields_size(); ++i) {
    const v1::FieldChange& f = c.fields(i);
    sync::FieldChange fc{f.path(), f.value(), sync::Hlc()};
    if (!f.base_hlc().empty()) {
      FS_ASSIGN_OR_RETURN(fc.base_hlc,
                          sync::Hlc::Decode(f.base_hlc(), absl::StrCat("fields[", i, "].base_hlc")));
    }
    out.fields.push_back(std::move(fc));
  }
  return out;
}

// Refuses event dates after the server's today (with a day of tolerance, model/event_dates.h).
absl::Status CheckEventDates(const v1::Record& r) {
  return model::CheckEventDatesNotAfter(r, model::LatestEventDate(sync::SystemClockMs()));
}

// Whether `change` makes a valid document of `stored` as its writer last saw it: every field
// another writer set after the writer's last complete pull (and that the change does not
// itself set) taken back to its value before that write, from the audit trail. False when
// there is no such field — then the writer saw all it merged with, and a broken rule is its
// own — and for HQ writers, who write against the version they read.
using Validator = std::function<absl::Status(const google::protobuf::Message&)>;
absl::StatusOr<bool> ValidAsWriterSawIt(Database& db, const sync::Document& stored,
                                        const sync::Change& change, absl::string_view device_id,
                                        int64_t pulled_seq, const Validator& validate) {
  if (device_id.empty()) return false;
  std::set<absl::string_view> touched;
  for (const sync::FieldChange& f : change.fields) touched.insert(f.path);
  sync::Document view = stored;
  bool unseen = false;
  FS_ASSIGN_OR_RETURN(Statement * old,
                      db.Prepare("SELECT old_value FROM change_fields WHERE seq = ? AND path = ?"));
  for (const auto& [path, field] : stored.fields) {
    if (touched.count(path) > 0 || field.hlc.node == device_id || field.seq <= pulled_seq) {
      continue;
    }
    unseen = true;
    old->Bind(1, field.seq);
    old->Bind(2, path);
    FS_ASSIGN_OR_RETURN(bool row, old->Step());
    std::string before = row && !old->ColumnIsNull(0) ? old->ColumnBlob(0) : std::string();
    old->Reset();
    view.fields[path].value = std::move(before);
  }
  if (!unseen) return false;
  sync::Merge(view, change, 0);
  if (view.deleted()) return false;
  FS_ASSIGN_OR_RETURN(std::unique_ptr<google::protobuf::Message> m, TypedOf(view));
  const auto* id = m->GetDescriptor()->FindFieldByName("id");
  m->GetReflection()->SetString(m.get(), id, change.doc_id);
  if (auto* p = google::protobuf::DynamicCastToGenerated<v1::Project>(m.get());
      p != nullptr && p->status() == v1::PROJECT_STATUS_UNSPECIFIED) {
    p->set_status(v1::PROJECT_STATUS_PLANNED);
  }
  return validate(*m).ok();
}

// Keeps the document's review flags true: `review` non-empty opens a RULE conflict naming the
// broken rule (one open per document: a later change that still breaks it updates the
// reason); empty closes the open one, since the document is valid again.
absl::Status FlagForReview(Database& db, absl::string_view collection, absl::string_view doc_id,
                           absl::string_view partner_id, absl::string_view review,
                           const sync::Change& change, int64_t seq, int64_t now,
                           const Actor& actor) {
  if (review.empty()) {
    FS_ASSIGN_OR_RETURN(
        Statement * close,
        db.Prepare("UPDATE conflicts SET status = 'RESOLVED', resolved_by = ?, resolved_at = ?, "
                   "resolution = 'KEEP_WINNER' WHERE doc_id = ? AND collection = ? "
                   "AND kind = 'RULE' AND status = 'OPEN'"));
    close->Bind(1, actor.id);
    close->Bind(2, now);
    close->Bind(3, doc_id);
    close->Bind(4, collection);
    return close->Run();
  }
  FS_ASSIGN_OR_RETURN(
      Statement * update,
      db.Prepare("UPDATE conflicts SET reason = ?, seq = ?, winning_hlc = ?, winning_writer = ? "
                 "WHERE doc_id = ? AND collection = ? AND kind = 'RULE' AND status = 'OPEN'"));
  update->Bind(1, review);
  update->Bind(2, seq);
  update->Bind(3, change.hlc.Encode());
  update->Bind(4, change.hlc.node);
  update->Bind(5, doc_id);
  update->Bind(6, collection);
  FS_RETURN_IF_ERROR(update->Run());
  if (db.Changes() > 0) return absl::OkStatus();
  // The rule's first path names the field the conflict is about.
  absl::string_view path = review.substr(0, review.find(':'));
  if (absl::ConsumePrefix(&path, collection)) absl::ConsumePrefix(&path, ".");
  FS_ASSIGN_OR_RETURN(
      Statement * st,
      db.Prepare("INSERT INTO conflicts(id, collection, doc_id, partner_id, path, "
                 "winning_value, winning_hlc, winning_writer, losing_value, losing_hlc, "
                 "losing_writer, seq, detected_at, status, kind, reason) "
                 "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'OPEN', 'RULE', ?)"));
  st->Bind(1, NewUuidV7());
  st->Bind(2, collection);
  st->Bind(3, doc_id);
  st->Bind(4, partner_id);
  st->Bind(5, path);
  st->BindBlob(6, "");
  st->Bind(7, change.hlc.Encode());
  st->Bind(8, change.hlc.node);
  st->BindBlob(9, "");
  st->Bind(10, "");
  st->Bind(11, "");
  st->Bind(12, seq);
  st->Bind(13, now);
  st->Bind(14, review);
  return st->Run();
}

}  // namespace

absl::Status SqliteStore::FlushScopes(Database& db) {
  std::map<std::string, ScopeDelta> deltas;
  deltas.swap(scope_deltas_);
  for (const auto& [partner_id, d] : deltas) {
    FS_RETURN_IF_ERROR(WriteScope(db, partner_id, d.digest, d.documents));
  }
  return absl::OkStatus();
}

sync::Hlc SqliteStore::NextHlc(absl::string_view node) {
  sync::Hlc h = clock_.Now();
  h.node = std::string(node);
  return h;
}

std::string SqliteStore::ServerHlc() {
  absl::MutexLock lock(&writer_mu_);
  return clock_.Now().Encode();
}

absl::StatusOr<SqliteStore::Applied> SqliteStore::ApplyChange(Database& db,
                                                              const sync::Change& change,
                                                              const Writer& writer) {
  const Actor& actor = writer.actor;
  const std::string& collection = change.collection;
  // Only documents go this way; partners and the other admin data have their own calls.
  if (!IsDocumentCollection(collection)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "change.collection: must be project, site or record, got \"",
        absl::string_view(collection).substr(0, 40), "\""));
  }
  if (!writer.device_id.empty()) {
    // Changes from devices are input; the server's own (HQ writes) are built by WriteDocument.
    FS_RETURN_IF_ERROR(sync::ValidateChange(change, "change", writer.device_id));
  }
  FS_ASSIGN_OR_RETURN(StoredDoc stored, LoadDoc(db, collection, change.doc_id));
  // To a partner-bound writer another partner's document does not exist (write_policy.h): every
  // check below then answers as it would for a new document, and nothing of it leaks.
  bool foreign = false;
  if (stored.exists && !actor.partner_id.empty() && stored.partner_id != actor.partner_id) {
    foreign = true;
    stored = StoredDoc();
    stored.doc.collection = collection;
    stored.doc.id = change.doc_id;
  }
  const bool was_live = stored.exists && !stored.doc.deleted();
  std::unique_ptr<google::protobuf::Message> before;
  if (stored.exists) {
    FS_ASSIGN_OR_RETURN(before, TypedOf(stored.doc));
  }

  // The sequence number this change will get in the log (this write transaction is the only
  // writer of the log until it commits).
  FS_ASSIGN_OR_RETURN(const ChainHead head, ReadChainHead(db));
  const int64_t seq = head.seq + 1;

  sync::Document doc = stored.doc;
  sync::MergeResult merged = sync::Merge(doc, change, seq);
  const bool live = !doc.deleted();
  if (!stored.exists && !live) {
    return absl::InvalidArgumentError(
        absl::StrCat(collection, "._deleted: no such ", collection, " to delete"));
  }
  const WriteOp op = !stored.exists ? WriteOp::kCreate
                     : !live        ? WriteOp::kDelete
                                    : WriteOp::kUpdate;
  FS_RETURN_IF_ERROR(CheckWrite(actor, collection, op));
  FS_ASSIGN_OR_RETURN(std::unique_ptr<google::protobuf::Message> after, TypedOf(doc));
  // The canonical payload (docs.payload and the scope checksum) is sync::CanonicalPayload(doc):
  // the assembled message as it is now, before the server fills in ids and derived fields.
  const std::string payload = merged.changed ? sync::SerializeDeterministic(*after) : "";
  if (before) FS_RETURN_IF_ERROR(CheckImmutable(*before, *after, collection));

  // Validate the merged document and its references, and find its scope. A merged document
  // that breaks a rule only because of another writer's edit this writer had not seen is kept
  // and flagged (`review`), never refused: each edit was valid alone (docs/SYNC.md).
  std::string review;
  auto validate = [&](const google::protobuf::Message& m) -> absl::Status {
    if (collection == "project") return model::ValidateProject(static_cast<const v1::Project&>(m));
    if (collection == "site") return model::ValidateSite(static_cast<const v1::Site&>(m));
    FS_RETURN_IF_ERROR(model::ValidateRecord(static_cast<const v1::Record&>(m)));
    return CheckEventDates(static_cast<const v1::Record&>(m));
  };
  auto check = [&]() -> absl::Status {
    absl::Status valid = validate(*after);
    if (valid.ok() || !live) return valid;
    FS_ASSIGN_OR_RETURN(bool alone_ok, ValidAsWriterSawIt(db, stored.doc, change, writer.device_id,
                                                          writer.pulled_seq, validate));
    if (!alone_ok) return valid;
    review = std::string(valid.message());
    return absl::OkStatus();
  };
  std::string partner_id;
  std::string project_id;  // of the document, for the audit trail
  ProjectRef project;
  if (collection == "project") {
    auto& p = static_cast<v1::Project&>(*after);
    p.set_id(change.doc_id);
    project_id = change.doc_id;
    if (p.status() == v1::PROJECT_STATUS_UNSPECIFIED) p.set_status(v1::PROJECT_STATUS_PLANNED);
    FS_RETURN_IF_ERROR(check());
    FS_RETURN_IF_ERROR(CheckPartnerCountry(db, "project.partner_id", p.partner_id(), p.country()));
    partner_id = p.partner_id();
  } else if (collection == "site") {
    auto& site = static_cast<v1::Site&>(*after);
    site.set_id(change.doc_id);
    FS_RETURN_IF_ERROR(check());
    FS_ASSIGN_OR_RETURN(project,
                        LookupProject(db, "site.project_id", site.project_id(), actor.partner_id));
    partner_id = project.partner_id;
    project_id = site.project_id();
  } else {
    auto& r = static_cast<v1::Record&>(*after);
    r.set_id(change.doc_id);
    FS_RETURN_IF_ERROR(check());
    FS_RETURN_IF_ERROR(DeriveRecord(r));
    FS_ASSIGN_OR_RETURN(project,
                        LookupProject(db, "record.project_id", r.project_id(), actor.partner_id));
    FS_RETURN_IF_ERROR(CheckRecordFitsProject(r, project));
    FS_RETURN_IF_ERROR(CheckSiteInProject(db, "record.site_id", r.site_id(), r.project_id()));
    partner_id = project.partner_id;
    project_id = r.project_id();
  }
  if (!actor.partner_id.empty() && partner_id != actor.partner_id) {
    // Unreachable through the scoped lookups above; kept as the last line of defence.
    return absl::InvalidArgumentError(absl::StrCat(
        collection == "project" ? "project.partner_id" : absl::StrCat(collection, ".project_id"),
        ": no project with that id"));
  }
  if (foreign) {
    // A valid new document whose id another partner's document already has: only a writer who
    // knows that id can get here, and learns no more than that it is taken.
    return absl::AlreadyExistsError(
        absl::StrCat(collection, ".id: ", change.doc_id, " is taken; use a new id"));
  }

  int64_t now = NowMicros();
  // Every field the change applies takes the change's clock.
  const std::string hlc = change.hlc.Encode();
  ChangeOrigin origin{writer.device_id, change.device_seq, hlc, writer.stream_id};
  // A device's change is logged as it was received, with the clock it claimed; the entry's
  // hlc is the clock it was merged with (they differ when the skew rule restamped it).
  FS_RETURN_IF_ERROR(AppendChange(db, head, collection, change.doc_id, WriteOpName(op),
                                  writer.actor,
                                  writer.received != nullptr
                                      ? *writer.received
                                      : sync::SerializeDeterministic(ToProto(change)),
                                  now, origin)
                         .status());

  Applied applied{seq, 0, merged.changed, review};
  for (const sync::FieldOutcome& f : merged.fields) {
    if (!f.conflict) continue;
    ++applied.conflicts;
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("INSERT INTO conflicts(id, collection, doc_id, partner_id, path, "
                   "winning_value, winning_hlc, winning_writer, losing_value, losing_hlc, "
                   "losing_writer, seq, detected_at, status, kind, reason) "
                   "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'OPEN', 'FIELD', '')"));
    st->Bind(1, NewUuidV7());
    st->Bind(2, collection);
    st->Bind(3, change.doc_id);
    st->Bind(4, partner_id);
    st->Bind(5, f.path);
    st->BindBlob(6, f.winning_value);
    st->Bind(7, f.winning_hlc.Encode());
    st->Bind(8, f.winning_hlc.node);
    st->BindBlob(9, f.losing_value);
    st->Bind(10, f.losing_hlc.Encode());
    st->Bind(11, f.losing_hlc.node);
    st->Bind(12, seq);
    st->Bind(13, now);
    FS_RETURN_IF_ERROR(st->Run());
  }
  FS_RETURN_IF_ERROR(FlagForReview(db, collection, change.doc_id, partner_id, review, change,
                                    seq, now, actor));
  FS_RETURN_IF_ERROR(WriteChangeFields(db, seq, project_id, stored.doc, merged));
  if (!merged.changed) return applied;  // logged (and conflicts kept), nothing else moves

  // The applied fields' new state, up to kRowsPerInsert rows per statement (one round trip to
  // PostgreSQL each); a path at most once per statement, as an upsert requires.
  std::vector<const std::string*> paths;
  std::set<absl::string_view> seen;
  for (const sync::FieldOutcome& f : merged.fields) {
    if (f.applied && seen.insert(f.path).second) paths.push_back(&f.path);
  }
  for (size_t start = 0; start < paths.size(); start += kRowsPerInsert) {
    const size_t n = std::min(kRowsPerInsert, paths.size() - start);
    std::string sql = "INSERT INTO doc_fields(collection, doc_id, path, value, hlc, seq) VALUES";
    for (size_t i = 0; i < n; ++i) absl::StrAppend(&sql, i == 0 ? " " : ", ", "(?, ?, ?, ?, ?, ?)");
    absl::StrAppend(&sql, " ON CONFLICT(collection, doc_id, path) DO UPDATE "
                          "SET value = excluded.value, hlc = excluded.hlc, seq = excluded.seq");
    FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(sql));
    for (size_t i = 0; i < n; ++i) {
      const std::string& path = *paths[start + i];
      const int b = static_cast<int>(i * 6);
      st->Bind(b + 1, collection);
      st->Bind(b + 2, change.doc_id);
      st->Bind(b + 3, path);
      st->BindBlob(b + 4, doc.fields.at(path).value);
      st->Bind(b + 5, hlc);
      st->Bind(b + 6, seq);
    }
    FS_RETURN_IF_ERROR(st->Run());
  }
  FS_ASSIGN_OR_RETURN(
      Statement * st,
      db.Prepare("INSERT INTO docs(collection, doc_id, partner_id, seq, deleted, payload) "
                 "VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(collection, doc_id) DO UPDATE SET "
                 "seq = excluded.seq, deleted = excluded.deleted, payload = excluded.payload"));
  st->Bind(1, collection);
  st->Bind(2, change.doc_id);
  st->Bind(3, partner_id);
  st->Bind(4, seq);
  st->Bind(5, static_cast<int64_t>(!live));
  st->BindBlob(6, payload);
  FS_RETURN_IF_ERROR(st->Run());
  if (was_live) {
    ToggleScope(scope_deltas_, partner_id, collection, change.doc_id, stored.payload, -1);
  }
  if (live) ToggleScope(scope_deltas_, partner_id, collection, change.doc_id, payload, 1);

  if (collection == "project") {
    FS_RETURN_IF_ERROR(
        WriteProjectRow(db, static_cast<const v1::Project&>(*after), seq, now, writer.actor));
  } else if (collection == "site") {
    FS_RETURN_IF_ERROR(WriteSiteRow(db, static_cast<const v1::Site&>(*after), partner_id, seq,
                                    now, writer.actor));
  } else if (live) {
    FS_RETURN_IF_ERROR(WriteRecordRow(db, static_cast<const v1::Record&>(*after), project, seq,
                                      now, writer.actor, was_live));
  } else {
    FS_RETURN_IF_ERROR(DeleteRecordRow(db, change.doc_id));
  }
  return applied;
}

absl::StatusOr<int64_t> SqliteStore::WriteDocument(Database& db, absl::string_view collection,
                                                   const google::protobuf::Message& doc,
                                                   bool must_exist, int64_t expected_version,
                                                   const Actor& actor, bool deleted) {
  const auto* id_field = doc.GetDescriptor()->FindFieldByName("id");
  std::string id = doc.GetReflection()->GetString(doc, id_field);
  FS_ASSIGN_OR_RETURN(StoredDoc stored, LoadDoc(db, collection, id));
  const bool exists = stored.exists && !stored.doc.deleted();
  if (must_exist && !exists) {
    return absl::NotFoundError(absl::StrCat(collection, " ", id, " not found"));
  }
  if (!must_exist && stored.exists) {
    return absl::AlreadyExistsError(absl::StrCat(collection, ".id: ", id, " already exists"));
  }
  if (must_exist) {
    // The version clients see is the typed row's, which moves with every applied change.
    FS_RETURN_IF_ERROR(CheckVersion(collection, expected_version, stored.seq));
  }
  std::unique_ptr<google::protobuf::Message> clean(doc.New());
  clean->CopyFrom(doc);
  sync::ClearOutputOnly(clean.get());
  sync::FieldValues target = sync::Flatten(*clean);
  if (deleted) {
    target = stored.doc.Values();
    target[sync::kDeletedPath] = "\x01";
  }
  sync::FieldValues diff = sync::Diff(stored.doc.Values(), target);
  if (diff.empty()) return stored.seq;
  sync::Change change;
  change.collection = std::string(collection);
  change.doc_id = id;
  // Another replica sharing the database may have stamped these fields with a clock ahead of
  // ours: an edit made after it must still be later.
  for (const auto& [path, field] : stored.doc.fields) clock_.Observe(field.hlc);
  change.hlc = NextHlc(actor.id);
  for (const auto& [path, value] : diff) {
    sync::Hlc base;
    if (auto it = stored.doc.fields.find(path); it != stored.doc.fields.end()) base = it->second.hlc;
    change.fields.push_back(sync::FieldChange{path, value, base});
  }
  FS_ASSIGN_OR_RETURN(Applied applied, ApplyChange(db, change, Writer{actor, "", 0, ""}));
  return applied.seq;
}

absl::StatusOr<v1::Project> SqliteStore::CreateProject(const v1::Project& project,
                                                       const Actor& actor) {
  absl::StatusOr<v1::Project> out;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    FS_RETURN_IF_ERROR(WriteDocument(db, "project", project, false, 0, actor).status());
    out = GetDoc<v1::Project>(db, "projects", "project", project.id());
    return out.status();
  }));
  return out;
}

absl::StatusOr<v1::Project> SqliteStore::UpdateProject(const v1::Project& project,
                                                       int64_t expected_version,
                                                       const Actor& actor) {
  absl::StatusOr<v1::Project> out;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    FS_RETURN_IF_ERROR(
        WriteDocument(db, "project", project, true, expected_version, actor).status());
    out = GetDoc<v1::Project>(db, "projects", "project", project.id());
    return out.status();
  }));
  return out;
}

absl::StatusOr<v1::Site> SqliteStore::CreateSite(const v1::Site& site, const Actor& actor) {
  absl::StatusOr<v1::Site> out;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    FS_RETURN_IF_ERROR(WriteDocument(db, "site", site, false, 0, actor).status());
    out = GetDoc<v1::Site>(db, "sites", "site", site.id());
    return out.status();
  }));
  return out;
}

absl::StatusOr<v1::Record> SqliteStore::CreateRecord(const v1::Record& record,
                                                     const Actor& actor) {
  absl::StatusOr<v1::Record> out;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    FS_RETURN_IF_ERROR(WriteDocument(db, "record", record, false, 0, actor).status());
    out = GetDoc<v1::Record>(db, "records", "record", record.id());
    return out.status();
  }));
  return out;
}

absl::StatusOr<v1::Record> SqliteStore::UpdateRecord(const v1::Record& record,
                                                     int64_t expected_version,
                                                     const Actor& actor) {
  absl::StatusOr<v1::Record> out;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    FS_RETURN_IF_ERROR(WriteDocument(db, "record", record, true, expected_version, actor).status());
    out = GetDoc<v1::Record>(db, "records", "record", record.id());
    return out.status();
  }));
  return out;
}

absl::StatusOr<v1::Record> SqliteStore::DeleteRecord(absl::string_view id,
                                                     int64_t expected_version,
                                                     const Actor& actor) {
  absl::StatusOr<v1::Record> out;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    out = GetDoc<v1::Record>(db, "records", "record", id);
    FS_RETURN_IF_ERROR(out.status());
    FS_RETURN_IF_ERROR(
        WriteDocument(db, "record", *out, true, expected_version, actor, /*deleted=*/true)
            .status());
    return absl::OkStatus();
  }));
  return out;
}

// --- Sync --------------------------------------------------------------------------------------

namespace {

// A refusal of the change itself (kept in the rejection log, acknowledged), as opposed to a
// failure of the server (nothing of the batch applies; the device retries).
bool IsRefusal(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return true;
    default:
      return false;
  }
}

// At most `n` bytes of `text`, cut at a UTF-8 boundary.
std::string Clip(absl::string_view text, size_t n) {
  if (text.size() <= n) return std::string(text);
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return std::string(text.substr(0, n));
}

v1::Rejection RejectionOf(const v1::Change& c, absl::StatusCode code, absl::string_view reason) {
  v1::Rejection r;
  r.set_device_seq(c.device_seq());
  r.set_collection(Clip(c.collection(), 40));
  r.set_doc_id(Clip(c.doc_id(), 64));
  r.set_code(static_cast<int>(code));
  r.set_reason(Clip(reason, 2000));
  return r;
}

}  // namespace

absl::Status SqliteStore::LogRejection(Database& db, const DeviceWriter& device,
                                       const v1::Change& c, const std::string& received,
                                       const v1::Rejection& rejection) {
  // In the hash chain like every change (op "reject", the change as received), so auditors see
  // what was refused; the reason and HQ's handling in the rejections table.
  const bool document = IsDocumentCollection(c.collection());
  absl::StatusOr<sync::Hlc> hlc = sync::Hlc::Decode(c.hlc());
  ChangeOrigin origin{device.device_id, c.device_seq(), hlc.ok() ? hlc->Encode() : "",
                      device.stream_id};
  const int64_t now = NowMicros();
  FS_ASSIGN_OR_RETURN(int64_t seq,
                      AppendChange(db, document ? c.collection() : "rejection",
                                   rejection.doc_id(), "reject",
                                   Actor{device.device_id, v1::ROLE_FIELD_DEVICE,
                                         device.partner_id},
                                   received, now, origin));
  FS_ASSIGN_OR_RETURN(
      Statement * st,
      db.Prepare("INSERT INTO rejections(id, device_id, stream_id, device_seq, collection, "
                 "doc_id, partner_id, change, code, reason, seq, received_at, status) "
                 "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'OPEN')"));
  st->Bind(1, NewUuidV7());
  st->Bind(2, device.device_id);
  st->Bind(3, device.stream_id);
  st->Bind(4, c.device_seq());
  st->Bind(5, rejection.collection());
  st->Bind(6, rejection.doc_id());
  st->Bind(7, device.partner_id);
  st->BindBlob(8, received);
  st->Bind(9, static_cast<int64_t>(rejection.code()));
  st->Bind(10, rejection.reason());
  st->Bind(11, seq);
  st->Bind(12, now);
  return st->Run();
}

absl::StatusOr<PushResult> SqliteStore::Push(const DeviceWriter& device,
                                             const std::vector<v1::Change>& changes) {
  // One number, one change: a batch that numbers two changes alike (or goes backwards) is
  // refused whole, before anything is read — applying one of them would drop the other.
  for (size_t i = 1; i < changes.size(); ++i) {
    if (changes[i].device_seq() <= changes[i - 1].device_seq()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "changes[", i, "].device_seq: must be greater than changes[", i - 1,
          "].device_seq (", changes[i - 1].device_seq(), "), got ", changes[i].device_seq()));
    }
  }
  PushResult result;
  absl::Status s = Write([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(
        Statement * dev,
        db.Prepare("SELECT acked_device_seq, pulled_seq FROM devices WHERE id = ?"));
    dev->Bind(1, device.device_id);
    FS_ASSIGN_OR_RETURN(bool found, dev->Step());
    if (!found) return absl::NotFoundError(absl::StrCat("device ", device.device_id, " not found"));
    int64_t last = dev->ColumnInt(0);
    const int64_t pulled_seq = dev->ColumnInt(1);
    dev->Reset();
    bool stream_known = true;
    if (!device.stream_id.empty()) {
      FS_ASSIGN_OR_RETURN(Statement * st,
                          db.Prepare("SELECT acked_device_seq FROM device_streams "
                                     "WHERE device_id = ? AND stream_id = ?"));
      st->Bind(1, device.device_id);
      st->Bind(2, device.stream_id);
      FS_ASSIGN_OR_RETURN(stream_known, st->Step());
      last = stream_known ? st->ColumnInt(0) : 0;
      st->Reset();
    }
    const int64_t acked_before = last;
    for (size_t i = 0; i < changes.size(); ++i) {
      const v1::Change& c = changes[i];
      std::string where = absl::StrCat("changes[", i, "]");
      const std::string received = sync::SerializeDeterministic(c);
      if (c.device_seq() <= last) {
        // A replay (a lost response): already applied or refused. Unless another copy of this
        // store numbered a different change alike — then acknowledging this one would lose it.
        FS_ASSIGN_OR_RETURN(Statement * logged,
                            db.Prepare("SELECT op, payload FROM change_log WHERE device_id = ? "
                                       "AND stream_id = ? AND device_seq = ?"));
        logged->Bind(1, device.device_id);
        logged->Bind(2, device.stream_id);
        logged->Bind(3, c.device_seq());
        FS_ASSIGN_OR_RETURN(bool row, logged->Step());
        const std::string op = row ? logged->ColumnText(0) : "";
        const bool same = !row || logged->ColumnBlob(1) == received;
        logged->Reset();
        if (!same && !device.stream_id.empty()) {
          return absl::FailedPreconditionError(absl::StrCat(
              where, ".device_seq: ", c.device_seq(), " of stream_id ", device.stream_id,
              " already numbers another change: this store is a copy of another store of the "
              "device (a restored backup, or one store on two phones); it must continue under "
              "a new stream_id"));
        }
        if (op == "reject") {
          FS_ASSIGN_OR_RETURN(Statement * rej,
                              db.Prepare("SELECT code, reason FROM rejections WHERE device_id = ? "
                                         "AND stream_id = ? AND device_seq = ?"));
          rej->Bind(1, device.device_id);
          rej->Bind(2, device.stream_id);
          rej->Bind(3, c.device_seq());
          FS_ASSIGN_OR_RETURN(bool has, rej->Step());
          if (has) {
            result.rejections.push_back(RejectionOf(
                c, static_cast<absl::StatusCode>(rej->ColumnInt(0)), rej->ColumnText(1)));
          }
          rej->Reset();
        }
        continue;
      }
      if (c.device_seq() != last + 1) {
        return absl::FailedPreconditionError(absl::StrCat(
            where, ".device_seq: expected ", last + 1, " (the server has applied up to ", last,
            "), got ", c.device_seq()));
      }
      // Each change under its own savepoint: a refused one leaves nothing behind and the
      // others go on.
      const std::map<std::string, ScopeDelta> scopes_before = scope_deltas_;
      FS_RETURN_IF_ERROR(db.Exec("SAVEPOINT push_change"));
      absl::StatusOr<sync::Change> change = FromProto(c, device.device_id);
      if (change.ok()) {
        // The skew rule (docs/SYNC.md): a clock too far ahead is taken as the server's now.
        sync::Hlc bounded = sync::BoundSkew(change->hlc, sync::SystemClockMs(),
                                            sync::kDefaultMaxFutureMs);
        if (!(bounded == change->hlc)) {
          // A clamped change takes a fresh server timestamp (still the device's node), so
          // several clamped changes of one batch keep their order. The log keeps the claim.
          Log("warn", absl::StrCat("clock skew device=", device.device_id, " claimed=",
                                   change->hlc.Encode(), " ahead_ms=",
                                   change->hlc.wall_ms - sync::SystemClockMs()));
          change->hlc = NextHlc(device.device_id);
        }
        clock_.Observe(change->hlc);
      }
      Writer writer{Actor{device.device_id, v1::ROLE_FIELD_DEVICE, device.partner_id},
                    device.device_id, c.device_seq(), device.stream_id, &received, pulled_seq};
      absl::StatusOr<Applied> applied =
          change.ok() ? ApplyChange(db, *change, writer) : absl::StatusOr<Applied>(change.status());
      if (applied.ok()) {
        FS_RETURN_IF_ERROR(db.Exec("RELEASE push_change"));
        result.conflicts += applied->conflicts;
        if (!applied->review.empty()) {
          v1::Review* r = &result.reviews.emplace_back();
          r->set_device_seq(c.device_seq());
          r->set_collection(c.collection());
          r->set_doc_id(c.doc_id());
          r->set_reason(applied->review);
        }
      } else {
        scope_deltas_ = scopes_before;
        if (!IsRefusal(applied.status().code())) {
          // Not a refusal: the whole write fails (the group commit undoes it). SQLITE_FULL may
          // already have rolled the transaction back, savepoint and all, so ROLLBACK TO would
          // fail and its "no such savepoint" replace the RESOURCE_EXHAUSTED the device retries.
          return absl::Status(applied.status().code(),
                              absl::StrCat(where, ": ", applied.status().message()));
        }
        FS_RETURN_IF_ERROR(db.Exec("ROLLBACK TO push_change"));
        FS_RETURN_IF_ERROR(db.Exec("RELEASE push_change"));
        v1::Rejection rejection = RejectionOf(c, applied.status().code(),
                                              absl::StrCat(where, ": ",
                                                           applied.status().message()));
        FS_RETURN_IF_ERROR(LogRejection(db, device, c, received, rejection));
        result.rejections.push_back(std::move(rejection));
      }
      last = c.device_seq();
    }
    if (last != acked_before || !stream_known) {
      if (device.stream_id.empty()) {
        FS_ASSIGN_OR_RETURN(Statement * up,
                            db.Prepare("UPDATE devices SET acked_device_seq = ? WHERE id = ?"));
        up->Bind(1, last);
        up->Bind(2, device.device_id);
        FS_RETURN_IF_ERROR(up->Run());
      } else {
        FS_RETURN_IF_ERROR(SetStreamAcked(db, device, last, !stream_known));
      }
    }
    result.acked_device_seq = last;
    return absl::OkStatus();
  });
  FS_RETURN_IF_ERROR(s);
  return result;
}

absl::Status SqliteStore::SetStreamAcked(Database& db, const DeviceWriter& device, int64_t acked,
                                         bool is_new) {
  if (is_new) {
    // Each store of a device makes one stream (and one more each time it finds it is a copy):
    // thousands mean a broken or hostile client, not a device to keep serving.
    FS_ASSIGN_OR_RETURN(Statement * count,
                        db.Prepare("SELECT COUNT(*) FROM device_streams WHERE device_id = ?"));
    count->Bind(1, device.device_id);
    FS_ASSIGN_OR_RETURN(bool row, count->Step());
    const int64_t streams = row ? count->ColumnInt(0) : 0;
    count->Reset();
    if (streams >= kMaxStreamsPerDevice) {
      return absl::FailedPreconditionError(absl::StrCat(
          "stream_id: device ", device.device_id, " already has ", streams,
          " sequence spaces (stores); HQ must check it and enroll it again"));
    }
  }
  FS_ASSIGN_OR_RETURN(
      Statement * up,
      db.Prepare("INSERT INTO device_streams(device_id, stream_id, acked_device_seq, created_at) "
                 "VALUES(?, ?, ?, ?) ON CONFLICT(device_id, stream_id) DO UPDATE SET "
                 "acked_device_seq = excluded.acked_device_seq"));
  up->Bind(1, device.device_id);
  up->Bind(2, device.stream_id);
  up->Bind(3, acked);
  up->Bind(4, NowMicros());
  return up->Run();
}

absl::StatusOr<PullResult> SqliteStore::Pull(absl::string_view partner_id, int64_t after_seq,
                                             int64_t fields_after_seq, int limit) {
  PullResult out;
  out.last_seq = after_seq;
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    // One read transaction: the page and the checksum see the same snapshot.
    FS_ASSIGN_OR_RETURN(auto tx, db::Transaction::Begin(db, db::Transaction::kRead));
    FS_ASSIGN_OR_RETURN(
        Statement * docs,
        db.Prepare("SELECT collection, doc_id, seq FROM docs WHERE partner_id = ? AND seq > ? "
                   "ORDER BY seq LIMIT ?"));
    docs->Bind(1, partner_id);
    docs->Bind(2, after_seq);
    docs->Bind(3, static_cast<int64_t>(limit + 1));
    FS_ASSIGN_OR_RETURN(Statement * fields,
                        db.Prepare("SELECT path, value, hlc FROM doc_fields WHERE collection = ? "
                                   "AND doc_id = ? AND seq > ? ORDER BY path"));
    int rows = 0;
    while (true) {
      FS_ASSIGN_OR_RETURN(bool has, docs->Step());
      if (!has) break;
      if (++rows > limit) break;
      v1::DocumentDelta* d = &out.documents.emplace_back();
      d->set_collection(docs->ColumnText(0));
      d->set_doc_id(docs->ColumnText(1));
      d->set_version(docs->ColumnInt(2));
      out.last_seq = d->version();
      fields->Reset();
      fields->Bind(1, d->collection());
      fields->Bind(2, d->doc_id());
      fields->Bind(3, fields_after_seq);
      while (true) {
        FS_ASSIGN_OR_RETURN(bool f, fields->Step());
        if (!f) break;
        v1::DeltaField* df = d->add_fields();
        df->set_path(fields->ColumnText(0));
        df->set_value(fields->ColumnBlob(1));
        df->set_hlc(fields->ColumnText(2));
      }
    }
    docs->Reset();
    out.last = rows <= limit;
    if (out.last) {
      FS_ASSIGN_OR_RETURN(
          Statement * sum,
          db.Prepare("SELECT digest, documents FROM scope_checksums WHERE partner_id = ?"));
      sum->Bind(1, partner_id);
      FS_ASSIGN_OR_RETURN(bool found, sum->Step());
      out.scope_checksum = HexEncode(found ? sum->ColumnBlob(0) : std::string(32, '\0'));
      out.scope_documents = found ? sum->ColumnInt(1) : 0;
      sum->Reset();
    }
    return tx.Commit();
  }));
  return out;
}

absl::StatusOr<int64_t> SqliteStore::AckedDeviceSeq(absl::string_view device_id,
                                                    absl::string_view stream_id) {
  int64_t out = 0;
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(Statement * st,
                        db.Prepare("SELECT acked_device_seq FROM devices WHERE id = ?"));
    st->Bind(1, device_id);
    FS_ASSIGN_OR_RETURN(bool found, st->Step());
    if (!found) return absl::NotFoundError(absl::StrCat("device ", device_id, " not found"));
    out = st->ColumnInt(0);
    st->Reset();
    if (stream_id.empty()) return absl::OkStatus();
    FS_ASSIGN_OR_RETURN(Statement * stream,
                        db.Prepare("SELECT acked_device_seq FROM device_streams "
                                   "WHERE device_id = ? AND stream_id = ?"));
    stream->Bind(1, device_id);
    stream->Bind(2, stream_id);
    FS_ASSIGN_OR_RETURN(bool known, stream->Step());
    out = known ? stream->ColumnInt(0) : 0;
    stream->Reset();
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<v1::Rejection>> SqliteStore::RejectionsAfter(
    absl::string_view device_id, absl::string_view stream_id, int64_t after_seq) {
  std::vector<v1::Rejection> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("SELECT device_seq, collection, doc_id, code, reason FROM rejections "
                   "WHERE device_id = ? AND stream_id = ? AND device_seq > ? "
                   "ORDER BY device_seq LIMIT 1000"));
    st->Bind(1, device_id);
    st->Bind(2, stream_id);
    st->Bind(3, after_seq);
    while (true) {
      FS_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      v1::Rejection& r = out.emplace_back();
      r.set_device_seq(st->ColumnInt(0));
      r.set_collection(st->ColumnText(1));
      r.set_doc_id(st->ColumnText(2));
      r.set_code(static_cast<int32_t>(st->ColumnInt(3)));
      r.set_reason(st->ColumnText(4));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::Status SqliteStore::MarkSynced(absl::string_view device_id, int64_t pulled_seq) {
  return Write([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("UPDATE devices SET last_sync_at = ?, "
                   "pulled_seq = CASE WHEN pulled_seq > ? THEN pulled_seq ELSE ? END WHERE id = ?"));
    st->Bind(1, NowMicros());
    st->Bind(2, pulled_seq);
    st->Bind(3, pulled_seq);
    st->Bind(4, device_id);
    return st->Run();
  });
}

absl::StatusOr<std::pair<int64_t, std::string>> SqliteStore::CheckAuditRows(int64_t from_seq,
                                                                            int64_t to_seq) {
  std::pair<int64_t, std::string> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(auto tx, db::Transaction::Begin(db, db::Transaction::kRead));
    FS_ASSIGN_OR_RETURN(AuditRowsProblem problem, CheckChangeFields(db, from_seq, to_seq));
    out = {problem.seq, std::move(problem.problem)};
    return tx.Commit();
  }));
  return out;
}

// --- Rejections --------------------------------------------------------------------------------

namespace {

constexpr char kRejectionColumns[] =
    "id, device_id, stream_id, device_seq, collection, doc_id, partner_id, change, code, reason, "
    "received_at, status, resolved_by, resolved_at, resolution_note";

v1::RejectedChange ReadRejection(const Statement& st) {
  v1::RejectedChange r;
  r.set_id(st.ColumnText(0));
  r.set_device_id(st.ColumnText(1));
  r.set_stream_id(st.ColumnText(2));
  r.set_device_seq(st.ColumnInt(3));
  r.set_collection(st.ColumnText(4));
  r.set_doc_id(st.ColumnText(5));
  r.set_partner_id(st.ColumnText(6));
  r.mutable_change()->ParseFromString(st.ColumnBlob(7));
  r.set_code(static_cast<int32_t>(st.ColumnInt(8)));
  r.set_reason(st.ColumnText(9));
  SetTimestamp(st.ColumnInt(10), r.mutable_received_at());
  r.set_status(st.ColumnText(11) == "OPEN" ? v1::CONFLICT_STATUS_OPEN
                                           : v1::CONFLICT_STATUS_RESOLVED);
  if (!st.ColumnIsNull(12)) r.set_resolved_by(st.ColumnText(12));
  if (!st.ColumnIsNull(13)) SetTimestamp(st.ColumnInt(13), r.mutable_resolved_at());
  if (!st.ColumnIsNull(14)) r.set_resolution_note(st.ColumnText(14));
  return r;
}

}  // namespace

absl::StatusOr<std::vector<v1::RejectedChange>> SqliteStore::ListRejections(
    const v1::ListRejectionsRequest& filter, const Scope& scope, const PageRequest& page) {
  std::vector<v1::RejectedChange> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    std::string sql = absl::StrCat("SELECT ", kRejectionColumns, " FROM rejections WHERE 1 = 1");
    std::vector<std::string> params;
    if (filter.status() == v1::CONFLICT_STATUS_OPEN) absl::StrAppend(&sql, " AND status = 'OPEN'");
    if (filter.status() == v1::CONFLICT_STATUS_RESOLVED) {
      absl::StrAppend(&sql, " AND status = 'RESOLVED'");
    }
    if (!filter.device_id().empty()) {
      absl::StrAppend(&sql, " AND device_id = ?");
      params.push_back(filter.device_id());
    }
    if (!scope.partner_id.empty()) {
      absl::StrAppend(&sql, " AND partner_id = ?");
      params.push_back(scope.partner_id);
    }
    if (!page.after_id.empty()) {
      absl::StrAppend(&sql, " AND id < ?");  // newest first
      params.push_back(page.after_id);
    }
    absl::StrAppend(&sql, " ORDER BY id DESC LIMIT ?");
    FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(sql));
    int i = 1;
    for (const std::string& p : params) st->Bind(i++, p);
    st->Bind(i, static_cast<int64_t>(page.page_size));
    while (true) {
      FS_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      out.push_back(ReadRejection(*st));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::RejectedChange> SqliteStore::ResolveRejection(absl::string_view id,
                                                                 absl::string_view note,
                                                                 const Actor& actor) {
  absl::StatusOr<v1::RejectedChange> out;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("UPDATE rejections SET status = 'RESOLVED', resolved_by = ?, resolved_at = ?, "
                   "resolution_note = ? WHERE id = ? AND status = 'OPEN'"));
    st->Bind(1, actor.id);
    st->Bind(2, NowMicros());
    st->Bind(3, note);
    st->Bind(4, id);
    FS_RETURN_IF_ERROR(st->Run());
    const bool closed = db.Changes() > 0;
    FS_ASSIGN_OR_RETURN(
        Statement * get,
        db.Prepare(absl::StrCat("SELECT ", kRejectionColumns, " FROM rejections WHERE id = ?")));
    get->Bind(1, id);
    FS_ASSIGN_OR_RETURN(bool row, get->Step());
    if (!row) return absl::NotFoundError(absl::StrCat("id: no rejection with id \"", id, "\""));
    out = ReadRejection(*get);
    get->Reset();
    if (!closed) {
      return absl::FailedPreconditionError(absl::StrCat("id: rejection ", id, " is already resolved"));
    }
    return absl::OkStatus();
  }));
  return out;
}

// --- Conflicts ---------------------------------------------------------------------------------

namespace {

constexpr char kConflictColumns[] =
    "id, collection, doc_id, partner_id, path, winning_value, winning_hlc, winning_writer, "
    "losing_value, losing_hlc, losing_writer, seq, detected_at, status, resolved_by, "
    "resolved_at, resolution, kind, reason";

// A field value as JSON of the document holding only that field: {"well":{"yieldLph":1200}}.
std::string FieldJson(absl::string_view collection, absl::string_view path,
                      absl::string_view value) {
  const google::protobuf::Message* proto = sync::PrototypeFor(collection);
  if (proto == nullptr) return "";
  std::unique_ptr<google::protobuf::Message> m(proto->New());
  if (path == sync::kDeletedPath) return value.empty() ? "{\"deleted\":false}" : "{\"deleted\":true}";
  if (!sync::Assemble({{std::string(path), std::string(value)}}, m.get()).ok()) return "";
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(*m, &json).ok()) return "";
  return json;
}

v1::Conflict ReadConflict(const Statement& st) {
  v1::Conflict c;
  c.set_id(st.ColumnText(0));
  c.set_collection(st.ColumnText(1));
  c.set_doc_id(st.ColumnText(2));
  c.set_partner_id(st.ColumnText(3));
  c.set_path(st.ColumnText(4));
  c.set_winning_value_json(FieldJson(c.collection(), c.path(), st.ColumnBlob(5)));
  c.set_winning_hlc(st.ColumnText(6));
  c.set_winning_writer(st.ColumnText(7));
  c.set_losing_value_json(FieldJson(c.collection(), c.path(), st.ColumnBlob(8)));
  c.set_losing_hlc(st.ColumnText(9));
  c.set_losing_writer(st.ColumnText(10));
  c.set_seq(st.ColumnInt(11));
  SetTimestamp(st.ColumnInt(12), c.mutable_detected_at());
  v1::ConflictStatus status = v1::CONFLICT_STATUS_UNSPECIFIED;
  ParseShortName(st.ColumnText(13), &status);
  c.set_status(status);
  c.set_resolved_by(st.ColumnText(14));
  if (!st.ColumnIsNull(15)) SetTimestamp(st.ColumnInt(15), c.mutable_resolved_at());
  v1::ConflictResolution resolution = v1::CONFLICT_RESOLUTION_UNSPECIFIED;
  if (!st.ColumnIsNull(16)) ParseShortName(st.ColumnText(16), &resolution);
  c.set_resolution(resolution);
  c.set_kind(st.ColumnText(17) == "RULE" ? v1::CONFLICT_KIND_RULE : v1::CONFLICT_KIND_FIELD);
  c.set_reason(st.ColumnText(18));
  return c;
}

absl::StatusOr<std::vector<v1::Conflict>> QueryConflicts(Database& db, const std::string& sql,
                                                         const std::vector<Param>& params) {
  FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(sql));
  BindAll(*st, params);
  std::vector<v1::Conflict> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    out.push_back(ReadConflict(*st));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<v1::Conflict>> SqliteStore::ListConflicts(
    const v1::ListConflictsRequest& f, const Scope& scope, const PageRequest& page) {
  absl::StatusOr<std::vector<v1::Conflict>> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    Where where;
    where.AddIf(!scope.partner_id.empty(), "partner_id = ?", scope.partner_id);
    where.AddIf(f.status() != v1::CONFLICT_STATUS_UNSPECIFIED, "status = ?",
                ShortName(f.status()));
    where.AddIf(!f.doc_id().empty(), "doc_id = ?", f.doc_id());
    std::string tail;
    AddPage(where, tail, page, "id");
    out = QueryConflicts(
        db, absl::StrCat("SELECT ", kConflictColumns, " FROM conflicts WHERE ", where.Sql(), tail),
        where.params());
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Conflict> SqliteStore::GetConflict(absl::string_view id) {
  absl::StatusOr<std::vector<v1::Conflict>> found;
  FS_RETURN_IF_ERROR(Read([&](Database& db) {
    found = QueryConflicts(
        db, absl::StrCat("SELECT ", kConflictColumns, " FROM conflicts WHERE id = ?"),
        {std::string(id)});
    return absl::OkStatus();
  }));
  FS_RETURN_IF_ERROR(found.status());
  if (found->empty()) return absl::NotFoundError(absl::StrCat("conflict ", id, " not found"));
  return found->front();
}

absl::StatusOr<v1::Conflict> SqliteStore::ResolveConflict(absl::string_view id,
                                                          v1::ConflictResolution resolution,
                                                          const Actor& actor) {
  absl::StatusOr<v1::Conflict> out;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("SELECT collection, doc_id, path, losing_value, status, kind FROM conflicts "
                   "WHERE id = ?"));
    st->Bind(1, id);
    FS_ASSIGN_OR_RETURN(bool found, st->Step());
    if (!found) return absl::NotFoundError(absl::StrCat("conflict ", id, " not found"));
    std::string collection = st->ColumnText(0), doc_id = st->ColumnText(1),
                path = st->ColumnText(2), losing = st->ColumnBlob(3), status = st->ColumnText(4),
                kind = st->ColumnText(5);
    st->Reset();
    if (kind == "RULE" && resolution == v1::CONFLICT_RESOLUTION_TAKE_LOSER) {
      return absl::InvalidArgumentError(
          "resolution: a RULE conflict has no losing value; correct the document (it closes "
          "itself once valid) or keep it as it is (KEEP_WINNER)");
    }
    if (status != "OPEN") {
      return absl::FailedPreconditionError(absl::StrCat("id: conflict ", id, " is already resolved"));
    }
    if (resolution == v1::CONFLICT_RESOLUTION_TAKE_LOSER) {
      FS_ASSIGN_OR_RETURN(StoredDoc stored, LoadDoc(db, collection, doc_id));
      sync::Change change;
      change.collection = collection;
      change.doc_id = doc_id;
      change.hlc = NextHlc(actor.id);
      sync::Hlc base;
      if (auto it = stored.doc.fields.find(path); it != stored.doc.fields.end()) {
        base = it->second.hlc;
      }
      change.fields.push_back(sync::FieldChange{path, losing, base});
      FS_RETURN_IF_ERROR(ApplyChange(db, change, Writer{actor, "", 0, ""}).status());
    }
    FS_ASSIGN_OR_RETURN(
        Statement * up,
        db.Prepare("UPDATE conflicts SET status = 'RESOLVED', resolved_by = ?, resolved_at = ?, "
                   "resolution = ? WHERE id = ?"));
    up->Bind(1, actor.id);
    up->Bind(2, NowMicros());
    up->Bind(3, ShortName(resolution));
    up->Bind(4, id);
    FS_RETURN_IF_ERROR(up->Run());
    FS_ASSIGN_OR_RETURN(
        std::vector<v1::Conflict> rows,
        QueryConflicts(db, absl::StrCat("SELECT ", kConflictColumns, " FROM conflicts WHERE id = ?"),
                       {std::string(id)}));
    out = rows.front();
    return absl::OkStatus();
  }));
  return out;
}

// --- Enrollment --------------------------------------------------------------------------------

absl::Status SqliteStore::CreateEnrollment(absl::string_view device_id,
                                           absl::string_view code_sha256_hex,
                                           absl::Time expires_at, const Actor& actor) {
  return Write([&](Database& db) -> absl::Status {
    int64_t now = NowMicros();
    // One valid code per device: a new code replaces the earlier unused ones (they expire now).
    FS_ASSIGN_OR_RETURN(Statement * old,
                        db.Prepare("UPDATE enrollments SET expires_at = ? WHERE device_id = ? AND "
                                   "used_at IS NULL AND expires_at > ?"));
    old->Bind(1, now);
    old->Bind(2, device_id);
    old->Bind(3, now);
    FS_RETURN_IF_ERROR(old->Run());
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("INSERT INTO enrollments(code_sha256, device_id, created_at, expires_at) "
                   "VALUES(?, ?, ?, ?)"));
    st->Bind(1, code_sha256_hex);
    st->Bind(2, device_id);
    st->Bind(3, now);
    st->Bind(4, absl::ToUnixMicros(expires_at));
    FS_RETURN_IF_ERROR(st->Run());
    v1::CreateEnrollmentRequest logged;  // the code itself never enters the log
    logged.set_device_id(std::string(device_id));
    return AppendChange(db, "enrollment", device_id, "create", actor, Serialize(logged), now)
        .status();
  });
}

absl::StatusOr<std::string> SqliteStore::RedeemEnrollment(absl::string_view code_sha256_hex) {
  std::string device_id;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    int64_t now = NowMicros();
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("UPDATE enrollments SET used_at = ? WHERE code_sha256 = ? AND used_at IS NULL "
                   "AND expires_at > ? RETURNING device_id"));
    st->Bind(1, now);
    st->Bind(2, code_sha256_hex);
    st->Bind(3, now);
    FS_ASSIGN_OR_RETURN(bool found, st->Step());
    if (!found) {
      return absl::NotFoundError("code: unknown, already used or expired enrollment code");
    }
    device_id = st->ColumnText(0);
    return st->Run();
  }));
  return device_id;
}

// --- Live feed ---------------------------------------------------------------------------------

absl::StatusOr<std::string> SqliteStore::ProjectOfDocument(absl::string_view collection,
                                                           absl::string_view id) {
  std::string out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(StoredDoc stored, LoadDoc(db, collection, id));
    if (!stored.exists) return absl::NotFoundError(absl::StrCat(collection, " ", id, " not found"));
    FS_ASSIGN_OR_RETURN(std::unique_ptr<google::protobuf::Message> m, TypedOf(stored.doc));
    const auto* field = m->GetDescriptor()->FindFieldByName("project_id");
    if (field == nullptr) return absl::InvalidArgumentError("collection: has no project");
    out = m->GetReflection()->GetString(*m, field);
    return absl::OkStatus();
  }));
  return out;
}

int64_t SqliteStore::LastSeq() {
  if (shared_) RefreshLastSeq();
  absl::MutexLock lock(&seq_mu_);
  return last_seq_;
}

void SqliteStore::RefreshLastSeq() {
  int64_t seq = 0;
  absl::Status s = Read([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare("SELECT COALESCE(MAX(seq), 0) FROM change_log"));
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) seq = st->ColumnInt(0);
    st->Reset();
    return absl::OkStatus();
  });
  if (!s.ok()) return;
  absl::MutexLock lock(&seq_mu_);
  if (seq > last_seq_) {
    last_seq_ = seq;
    seq_cv_.SignalAll();
  }
}

void SqliteStore::WaitForChange(int64_t seq, absl::Duration timeout) {
  // Commits of this process wake the wait at once; those of other replicas sharing the
  // database are seen by polling it.
  constexpr absl::Duration kPoll = absl::Milliseconds(100);
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (shared_) RefreshLastSeq();
    absl::MutexLock lock(&seq_mu_);
    absl::Time until = shared_ ? std::min(deadline, absl::Now() + kPoll) : deadline;
    while (last_seq_ <= seq) {
      if (seq_cv_.WaitWithDeadline(&seq_mu_, until)) break;
    }
    if (last_seq_ > seq || absl::Now() >= deadline) return;
  }
}

// --- Backups and restores ----------------------------------------------------------------------

absl::StatusOr<std::string> SqliteStore::Epoch() {
  std::string epoch;
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(epoch, GetMeta(db, "epoch"));
    return absl::OkStatus();
  }));
  return epoch;
}

absl::StatusOr<std::string> SqliteStore::NewEpoch() {
  std::string epoch = NewUuidV7();
  FS_RETURN_IF_ERROR(Write([&](Database& db) { return SetMeta(db, "epoch", epoch); }));
  return epoch;
}

absl::StatusOr<BackupInfo> SqliteStore::Backup(const std::string& path) {
  BackupInfo info;
  info.path = path;
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    sqlite::Database* lite = db.sqlite();
    if (lite == nullptr) {
      return absl::UnimplementedError(
          "Backup: the database is PostgreSQL: back it up with pg_dump (docs/OPERATIONS.md)");
    }
    // The head of the log and the epoch are read in the snapshot the copy is taken from.
    FS_ASSIGN_OR_RETURN(info.bytes, lite->BackupTo(path, [&]() -> absl::Status {
      FS_ASSIGN_OR_RETURN(Statement * st,
                          db.Prepare("SELECT seq, hash FROM change_log ORDER BY seq DESC LIMIT 1"));
      FS_ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) {
        info.head_seq = st->ColumnInt(0);
        info.head_hash = st->ColumnText(1);
      }
      st->Reset();
      FS_ASSIGN_OR_RETURN(info.epoch, GetMeta(db, "epoch"));
      return absl::OkStatus();
    }));
    return absl::OkStatus();
  }));
  return info;
}

// --- Change log --------------------------------------------------------------------------------

absl::StatusOr<int64_t> SqliteStore::LogExport(absl::string_view export_id,
                                               absl::string_view manifest, const Actor& actor) {
  int64_t seq = 0;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    // Only the log moves: an export is no document, so no docs row, no checksum, no sync.
    FS_ASSIGN_OR_RETURN(seq, AppendChange(db, "export", export_id, "create", actor,
                                          std::string(manifest), NowMicros()));
    return absl::OkStatus();
  }));
  return seq;
}

absl::StatusOr<std::vector<ChangeLogEntry>> SqliteStore::ReadChangeLog(int64_t after_seq,
                                                                       int limit) {
  std::vector<ChangeLogEntry> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(Statement * st,
                        db.Prepare(absl::StrCat("SELECT ", ChangeLogColumns(),
                                                " FROM change_log WHERE seq > ? ORDER BY seq "
                                                "LIMIT ?")));
    st->Bind(1, after_seq);
    st->Bind(2, static_cast<int64_t>(limit));
    while (true) {
      FS_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      out.push_back(ReadChangeLogRow(*st));
    }
    return absl::OkStatus();
  }));
  return out;
}

std::string ChangeLogColumns(absl::string_view alias) {
  const std::string t = alias.empty() ? "" : absl::StrCat(alias, ".");
  return absl::StrCat(t, "seq, ", t, "collection, ", t, "doc_id, ", t, "op, ", t, "actor_id, ",
                      "COALESCE(", t, "device_id, ''), COALESCE(", t, "device_seq, 0), ",
                      "COALESCE(", t, "hlc, ''), ", t, "server_time, ", t, "payload, ", t,
                      "prev_hash, ", t, "hash");
}

ChangeLogEntry ReadChangeLogRow(const db::Statement& st) {
  ChangeLogEntry e;
  e.seq = st.ColumnInt(0);
  e.collection = st.ColumnText(1);
  e.doc_id = st.ColumnText(2);
  e.op = st.ColumnText(3);
  e.actor_id = st.ColumnText(4);
  e.device_id = st.ColumnText(5);
  e.device_seq = st.ColumnInt(6);
  e.hlc = st.ColumnText(7);
  e.server_time = absl::FromUnixMicros(st.ColumnInt(8));
  e.payload = st.ColumnBlob(9);
  e.prev_hash = st.ColumnText(10);
  e.hash = st.ColumnText(11);
  return e;
}

}  // namespace fieldsync::server
