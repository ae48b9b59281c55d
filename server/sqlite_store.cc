#include "server/sqlite_store.h"

#include <cmath>
#include <map>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/model/visual_acuity.h"
#include "google/protobuf/util/time_util.h"
#include "server/change_log.h"
#include "server/enum_names.h"
#include "server/schema.h"

namespace fieldsync::server {

using sqlite::Database;
using sqlite::Statement;

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
    return parts_.empty() ? "1" : absl::StrJoin(parts_, " AND ");
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
absl::StatusOr<int64_t> AppendChange(Database& db, absl::string_view collection,
                                     absl::string_view doc_id, absl::string_view op,
                                     const Actor& actor, const std::string& payload,
                                     int64_t now) {
  FS_ASSIGN_OR_RETURN(Statement * last,
                      db.Prepare("SELECT seq, hash FROM change_log ORDER BY seq DESC LIMIT 1"));
  FS_ASSIGN_OR_RETURN(bool has_last, last->Step());
  ChangeLogEntry e;
  std::string prev_hash = kGenesisHash;
  e.seq = 1;
  if (has_last) {
    e.seq = last->ColumnInt(0) + 1;
    prev_hash = last->ColumnText(1);
  }
  last->Reset();
  e.collection = std::string(collection);
  e.doc_id = std::string(doc_id);
  e.op = std::string(op);
  e.actor_id = actor.id;
  e.server_time = absl::FromUnixMicros(now);
  e.payload = payload;
  std::string hash = ChainHash(prev_hash, e);
  FS_ASSIGN_OR_RETURN(
      Statement * ins,
      db.Prepare("INSERT INTO change_log(seq, collection, doc_id, op, actor_id, server_time, "
                 "payload, prev_hash, hash) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  ins->Bind(1, e.seq);
  ins->Bind(2, e.collection);
  ins->Bind(3, e.doc_id);
  ins->Bind(4, e.op);
  ins->Bind(5, e.actor_id);
  ins->Bind(6, now);
  ins->BindBlob(7, payload);
  ins->Bind(8, prev_hash);
  ins->Bind(9, hash);
  FS_RETURN_IF_ERROR(ins->Run());
  return e.seq;
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
        double values[] = {t.ecoli_cfu_per_100ml(), t.turbidity_ntu(), t.arsenic_ug_per_l(),
                           t.fluoride_mg_per_l()};
        for (int k = 0; k < 4; ++k) {
          if (values[k] < 0) {
            q->BindNull(4 + k);  // not measured
          } else {
            q->Bind(4 + k, values[k]);
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

absl::Status DeleteProjection(Database& db, absl::string_view id) {
  for (const char* sql : {"DELETE FROM water_quality_tests WHERE record_id = ?",
                          "DELETE FROM well_records WHERE record_id = ?",
                          "DELETE FROM cataract_follow_ups WHERE record_id = ?",
                          "DELETE FROM cataract_surgeries WHERE record_id = ?",
                          "DELETE FROM donation_items WHERE record_id = ?",
                          "DELETE FROM classroom_donations WHERE record_id = ?",
                          "DELETE FROM expenditures WHERE record_id = ?"}) {
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

absl::StatusOr<ProjectRef> LookupProject(Database& db, absl::string_view field,
                                         absl::string_view project_id) {
  FS_ASSIGN_OR_RETURN(Statement * st,
                      db.Prepare("SELECT partner_id, kind, country FROM projects WHERE id = ?"));
  st->Bind(1, project_id);
  FS_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": no project with id \"", project_id, "\""));
  }
  ProjectRef ref{st->ColumnText(0), st->ColumnText(1), st->ColumnText(2)};
  st->Reset();
  return ref;
}

absl::Status CheckSiteInProject(Database& db, absl::string_view field, absl::string_view site_id,
                                absl::string_view project_id) {
  if (site_id.empty()) return absl::OkStatus();
  FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare("SELECT project_id FROM sites WHERE id = ?"));
  st->Bind(1, site_id);
  FS_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": no site with id \"", site_id, "\""));
  }
  std::string owner = st->ColumnText(0);
  st->Reset();
  if (owner != project_id) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": site \"", site_id,
                                                   "\" belongs to another project"));
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
  sqlite::OpenOptions wopts;
  wopts.synchronous = options.synchronous;
  FS_ASSIGN_OR_RETURN(auto writer, Database::Open(options.path, wopts));
  FS_RETURN_IF_ERROR(Migrate(*writer));
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(writer)));
  sqlite::OpenOptions ropts;
  ropts.create = false;
  for (int i = 0; i < std::max(1, options.readers); ++i) {
    FS_ASSIGN_OR_RETURN(auto reader, Database::Open(options.path, ropts));
    absl::MutexLock lock(&store->readers_mu_);
    store->idle_readers_.push_back(std::move(reader));
  }
  return store;
}

absl::Status SqliteStore::Write(const WriteFn& fn) {
  if (tx_owner_.load() == std::this_thread::get_id()) {
    // Inside RunInTransaction on this thread: the writer lock is already held.
    FS_RETURN_IF_ERROR(writer_->Exec("SAVEPOINT write"));
    absl::Status s = fn(*writer_);
    if (!s.ok()) {
      writer_->Exec("ROLLBACK TO write").IgnoreError();
      writer_->Exec("RELEASE write").IgnoreError();
      return s;
    }
    return writer_->Exec("RELEASE write");
  }
  absl::MutexLock lock(&writer_mu_);
  FS_ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(*writer_, sqlite::Transaction::kImmediate));
  FS_RETURN_IF_ERROR(fn(*writer_));
  return tx.Commit();
}

absl::Status SqliteStore::RunInTransaction(const std::function<absl::Status()>& fn) {
  if (tx_owner_.load() == std::this_thread::get_id()) {
    return absl::FailedPreconditionError("RunInTransaction: already inside a transaction");
  }
  absl::MutexLock lock(&writer_mu_);
  FS_ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(*writer_, sqlite::Transaction::kImmediate));
  tx_owner_.store(std::this_thread::get_id());
  absl::Status s = fn();
  tx_owner_.store(std::thread::id());
  FS_RETURN_IF_ERROR(s);
  return tx.Commit();
}

absl::Status SqliteStore::Read(const ReadFn& fn) {
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
    if (s.code() == absl::StatusCode::kAlreadyExists &&
        absl::StrContains(s.message(), "partners.name")) {
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
    absl::SimpleAtoi(old.b, &created_at);
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
    if (s.code() == absl::StatusCode::kAlreadyExists && absl::StrContains(s.message(), "name")) {
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

constexpr char kDeviceColumns[] = "id, partner_id, name, created_at, last_sync_at";

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
                                ", COALESCE(u.name, d.name, '') FROM tokens t "
                                "LEFT JOIN users u ON u.id = t.user_id "
                                "LEFT JOIN devices d ON d.id = t.device_id "
                                "WHERE t.secret_sha256 = ?")));
    st->Bind(1, secret_sha256_hex);
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) out = TokenRecord{ReadToken(*st, 0), st->ColumnText(10)};
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

absl::StatusOr<v1::Project> SqliteStore::CreateProject(const v1::Project& project,
                                                       const Actor& actor) {
  v1::Project out = project;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    FS_RETURN_IF_ERROR(
        CheckPartnerCountry(db, "project.partner_id", project.partner_id(), project.country()));
    int64_t now = NowMicros();
    std::string payload = StoredPayload(project);
    FS_ASSIGN_OR_RETURN(int64_t seq, AppendChange(db, "project", project.id(), "create", actor,
                                                  payload, now));
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("INSERT INTO projects(partner_id, kind, title, country, admin_area, status, "
                   "start_date, end_date, budget_minor, currency, donor, iati_identifier, "
                   "id, payload, version, created_at, updated_at, created_by, updated_by) "
                   "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    BindProjectColumns(*st, project);
    st->Bind(13, project.id());
    st->BindBlob(14, payload);
    st->Bind(15, seq);
    st->Bind(16, now);
    st->Bind(17, now);
    st->Bind(18, actor.id);
    st->Bind(19, actor.id);
    FS_RETURN_IF_ERROR(IdClash(st->Run(), "project.id", project.id()));
    StampAudit(out, seq, now, now, actor.id, actor);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Project> SqliteStore::UpdateProject(const v1::Project& project,
                                                       int64_t expected_version,
                                                       const Actor& actor) {
  v1::Project out = project;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(
        Statement * cur,
        db.Prepare("SELECT version, partner_id, kind, created_at, created_by FROM projects "
                   "WHERE id = ?"));
    cur->Bind(1, project.id());
    FS_ASSIGN_OR_RETURN(bool row, cur->Step());
    if (!row) return absl::NotFoundError(absl::StrCat("project ", project.id(), " not found"));
    int64_t version = cur->ColumnInt(0);
    std::string partner_id = cur->ColumnText(1), kind = cur->ColumnText(2);
    int64_t created_at = cur->ColumnInt(3);
    std::string created_by = cur->ColumnText(4);
    cur->Reset();
    FS_RETURN_IF_ERROR(CheckVersion("project", expected_version, version));
    if (project.partner_id() != partner_id) {
      return absl::InvalidArgumentError(absl::StrCat(
          "project.partner_id: cannot change (is \"", partner_id, "\"), got \"",
          project.partner_id(), "\""));
    }
    if (ShortName(project.kind()) != kind) {
      return absl::InvalidArgumentError(absl::StrCat("project.kind: cannot change (is ", kind,
                                                     "), got ", ShortName(project.kind())));
    }
    FS_RETURN_IF_ERROR(
        CheckPartnerCountry(db, "project.partner_id", project.partner_id(), project.country()));
    int64_t now = NowMicros();
    std::string payload = StoredPayload(project);
    FS_ASSIGN_OR_RETURN(int64_t seq, AppendChange(db, "project", project.id(), "update", actor,
                                                  payload, now));
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("UPDATE projects SET partner_id = ?, kind = ?, title = ?, country = ?, "
                   "admin_area = ?, status = ?, start_date = ?, end_date = ?, budget_minor = ?, "
                   "currency = ?, donor = ?, iati_identifier = ?, payload = ?, version = ?, "
                   "updated_at = ?, updated_by = ? WHERE id = ?"));
    BindProjectColumns(*st, project);
    st->BindBlob(13, payload);
    st->Bind(14, seq);
    st->Bind(15, now);
    st->Bind(16, actor.id);
    st->Bind(17, project.id());
    FS_RETURN_IF_ERROR(st->Run());
    // Records carry their project's country for scoped queries; keep them in step.
    FS_ASSIGN_OR_RETURN(Statement * rc,
                        db.Prepare("UPDATE records SET country = ? WHERE project_id = ? "
                                   "AND country <> ?"));
    rc->Bind(1, project.country());
    rc->Bind(2, project.id());
    rc->Bind(3, project.country());
    FS_RETURN_IF_ERROR(rc->Run());
    StampAudit(out, seq, created_at, now, created_by, actor);
    return absl::OkStatus();
  }));
  return out;
}

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
    where.AddIf(!f.text().empty(),
                "(instr(lower(title), lower($text)) > 0 OR instr(lower(donor), lower($text)) > 0 "
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

absl::StatusOr<v1::Site> SqliteStore::CreateSite(const v1::Site& site, const Actor& actor) {
  v1::Site out = site;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(ProjectRef project, LookupProject(db, "site.project_id", site.project_id()));
    int64_t now = NowMicros();
    std::string payload = StoredPayload(site);
    FS_ASSIGN_OR_RETURN(int64_t seq,
                        AppendChange(db, "site", site.id(), "create", actor, payload, now));
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("INSERT INTO sites(id, project_id, partner_id, name, latitude_deg, "
                   "longitude_deg, admin_area, payload, version, created_at, updated_at, "
                   "created_by, updated_by) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    st->Bind(1, site.id());
    st->Bind(2, site.project_id());
    st->Bind(3, project.partner_id);
    st->Bind(4, site.name());
    st->Bind(5, site.latitude_deg());
    st->Bind(6, site.longitude_deg());
    st->Bind(7, site.admin_area());
    st->BindBlob(8, payload);
    st->Bind(9, seq);
    st->Bind(10, now);
    st->Bind(11, now);
    st->Bind(12, actor.id);
    st->Bind(13, actor.id);
    FS_RETURN_IF_ERROR(IdClash(st->Run(), "site.id", site.id()));
    StampAudit(out, seq, now, now, actor.id, actor);
    return absl::OkStatus();
  }));
  return out;
}

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

absl::StatusOr<v1::Record> SqliteStore::CreateRecord(const v1::Record& record,
                                                     const Actor& actor) {
  v1::Record out = record;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(ProjectRef project,
                        LookupProject(db, "record.project_id", record.project_id()));
    FS_RETURN_IF_ERROR(CheckRecordFitsProject(record, project));
    FS_RETURN_IF_ERROR(
        CheckSiteInProject(db, "record.site_id", record.site_id(), record.project_id()));
    int64_t now = NowMicros();
    std::string payload = StoredPayload(record);
    FS_ASSIGN_OR_RETURN(int64_t seq,
                        AppendChange(db, "record", record.id(), "create", actor, payload, now));
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("INSERT INTO records(id, kind, project_id, site_id, partner_id, country, "
                   "record_date, payload, version, created_at, updated_at, created_by, "
                   "updated_by) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    st->Bind(1, record.id());
    st->Bind(2, ShortName(record.kind()));
    st->Bind(3, record.project_id());
    st->BindTextOrNull(4, record.site_id());
    st->Bind(5, project.partner_id);
    st->Bind(6, project.country);
    st->Bind(7, record.record_date());
    st->BindBlob(8, payload);
    st->Bind(9, seq);
    st->Bind(10, now);
    st->Bind(11, now);
    st->Bind(12, actor.id);
    st->Bind(13, actor.id);
    FS_RETURN_IF_ERROR(IdClash(st->Run(), "record.id", record.id()));
    FS_RETURN_IF_ERROR(WriteProjection(db, record));
    StampAudit(out, seq, now, now, actor.id, actor);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Record> SqliteStore::UpdateRecord(const v1::Record& record,
                                                     int64_t expected_version,
                                                     const Actor& actor) {
  v1::Record out = record;
  FS_RETURN_IF_ERROR(Write([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(
        Statement * cur,
        db.Prepare("SELECT version, project_id, kind, created_at, created_by FROM records "
                   "WHERE id = ?"));
    cur->Bind(1, record.id());
    FS_ASSIGN_OR_RETURN(bool row, cur->Step());
    if (!row) return absl::NotFoundError(absl::StrCat("record ", record.id(), " not found"));
    int64_t version = cur->ColumnInt(0);
    std::string project_id = cur->ColumnText(1), kind = cur->ColumnText(2);
    int64_t created_at = cur->ColumnInt(3);
    std::string created_by = cur->ColumnText(4);
    cur->Reset();
    FS_RETURN_IF_ERROR(CheckVersion("record", expected_version, version));
    if (record.project_id() != project_id) {
      return absl::InvalidArgumentError(absl::StrCat("record.project_id: cannot change (is \"",
                                                     project_id, "\"), got \"",
                                                     record.project_id(), "\""));
    }
    if (ShortName(record.kind()) != kind) {
      return absl::InvalidArgumentError(absl::StrCat("record.body: kind cannot change (is ",
                                                     kind, "), got ", ShortName(record.kind())));
    }
    FS_RETURN_IF_ERROR(
        CheckSiteInProject(db, "record.site_id", record.site_id(), record.project_id()));
    int64_t now = NowMicros();
    std::string payload = StoredPayload(record);
    FS_ASSIGN_OR_RETURN(int64_t seq,
                        AppendChange(db, "record", record.id(), "update", actor, payload, now));
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("UPDATE records SET site_id = ?, record_date = ?, payload = ?, version = ?, "
                   "updated_at = ?, updated_by = ? WHERE id = ?"));
    st->BindTextOrNull(1, record.site_id());
    st->Bind(2, record.record_date());
    st->BindBlob(3, payload);
    st->Bind(4, seq);
    st->Bind(5, now);
    st->Bind(6, actor.id);
    st->Bind(7, record.id());
    FS_RETURN_IF_ERROR(st->Run());
    FS_RETURN_IF_ERROR(DeleteProjection(db, record.id()));
    FS_RETURN_IF_ERROR(WriteProjection(db, record));
    StampAudit(out, seq, created_at, now, created_by, actor);
    return absl::OkStatus();
  }));
  return out;
}

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

// --- Change log --------------------------------------------------------------------------------

absl::StatusOr<std::vector<ChangeLogEntry>> SqliteStore::ReadChangeLog(int64_t after_seq,
                                                                       int limit) {
  std::vector<ChangeLogEntry> out;
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(
        Statement * st,
        db.Prepare("SELECT seq, collection, doc_id, op, actor_id, COALESCE(device_id, ''), "
                   "COALESCE(device_seq, 0), COALESCE(hlc, ''), server_time, payload, prev_hash, "
                   "hash FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?"));
    st->Bind(1, after_seq);
    st->Bind(2, static_cast<int64_t>(limit));
    while (true) {
      FS_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      ChangeLogEntry e;
      e.seq = st->ColumnInt(0);
      e.collection = st->ColumnText(1);
      e.doc_id = st->ColumnText(2);
      e.op = st->ColumnText(3);
      e.actor_id = st->ColumnText(4);
      e.device_id = st->ColumnText(5);
      e.device_seq = st->ColumnInt(6);
      e.hlc = st->ColumnText(7);
      e.server_time = absl::FromUnixMicros(st->ColumnInt(8));
      e.payload = st->ColumnBlob(9);
      e.prev_hash = st->ColumnText(10);
      e.hash = st->ColumnText(11);
      out.push_back(std::move(e));
    }
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace fieldsync::server
