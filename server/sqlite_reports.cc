// SqliteStore's side of ReportService: the audit rows the write path keeps (change_fields,
// change_projects), their back-fill (migration 2), and the read snapshot exports scan.
//
// Every scan steps one prepared statement and hands rows on one at a time; nothing here holds a
// table in memory. SQL text is built only from constant fragments; every value is bound.

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/model/visual_acuity.h"
#include "fieldsync/v1/sync.pb.h"
#include "google/protobuf/util/time_util.h"
#include "server/change_log.h"
#include "server/sqlite_reports.h"
#include "server/sqlite_store.h"

namespace fieldsync::server {

using Database = db::Connection;
using Statement = db::Statement;

// --- Write path --------------------------------------------------------------------------------

namespace {

// Rows per multi-row INSERT (a bounded number of statement texts).
constexpr size_t kRowsPerInsert = 100;

const char* OutcomeOf(const sync::FieldOutcome& f) {
  if (f.applied) return f.conflict ? "WON" : "APPLIED";
  // A replay (same clock, same value) is neither: its value is already current.
  if (f.winning_hlc.IsZero() && f.losing_hlc.IsZero()) return "APPLIED";
  return "LOST";
}

}  // namespace

absl::Status WriteChangeFields(Database& db, int64_t seq, absl::string_view project_id,
                               const sync::Document& before, const sync::MergeResult& merged) {
  // Up to kRowsPerInsert rows per INSERT: one round trip to PostgreSQL, not one per field.
  for (size_t start = 0; start < merged.fields.size(); start += kRowsPerInsert) {
    const size_t n = std::min(kRowsPerInsert, merged.fields.size() - start);
    std::string sql = "INSERT INTO change_fields(seq, path, old_value, outcome) VALUES";
    for (size_t i = 0; i < n; ++i) absl::StrAppend(&sql, i == 0 ? " " : ", ", "(?, ?, ?, ?)");
    FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare(sql));
    for (size_t i = 0; i < n; ++i) {
      const sync::FieldOutcome& f = merged.fields[start + i];
      const int b = static_cast<int>(i * 4);
      st->Bind(b + 1, seq);
      st->Bind(b + 2, f.path);
      auto it = before.fields.find(f.path);
      if (it == before.fields.end()) {
        st->BindNull(b + 3);
      } else {
        st->BindBlob(b + 3, it->second.value);
      }
      st->Bind(b + 4, OutcomeOf(f));
    }
    FS_RETURN_IF_ERROR(st->Run());
  }
  if (!project_id.empty()) {
    FS_ASSIGN_OR_RETURN(Statement * st,
                        db.Prepare("INSERT INTO change_projects(seq, project_id) VALUES(?, ?)"));
    st->Bind(1, seq);
    st->Bind(2, project_id);
    FS_RETURN_IF_ERROR(st->Run());
  }
  return absl::OkStatus();
}

namespace {

// The project a site or record document names (its project_id field), or "".
std::string ProjectIdOf(const sync::Document& doc) {
  if (doc.collection == "project") return doc.id;
  auto it = doc.fields.find("project_id");
  const google::protobuf::Message* proto = sync::PrototypeFor(doc.collection);
  if (it == doc.fields.end() || proto == nullptr) return "";
  std::unique_ptr<google::protobuf::Message> m(proto->New());
  if (!sync::Assemble({{"project_id", it->second.value}}, m.get()).ok()) return "";
  const auto* field = m->GetDescriptor()->FindFieldByName("project_id");
  return field == nullptr ? "" : m->GetReflection()->GetString(*m, field);
}

// The entries the audit rows are kept for, document by document: applied changes of projects,
// sites and records (not refusals), with the clock they were merged with.
constexpr char kReplaySql[] =
    "SELECT seq, collection, doc_id, payload, hlc FROM change_log "
    "WHERE collection IN ('project', 'site', 'record') AND op <> 'reject' "
    "ORDER BY collection, doc_id, seq";

// The change of a log entry. `hlc` is the entry's own clock, the one it was merged with: a
// device's payload holds the change as received, whose clock the skew rule may have replaced.
absl::StatusOr<sync::Change> ChangeFromLog(absl::string_view payload, absl::string_view hlc,
                                           int64_t seq) {
  v1::Change c;
  if (!c.ParseFromString(std::string(payload))) {
    return absl::DataLossError(absl::StrCat("change_log entry ", seq, ": payload does not parse"));
  }
  sync::Change out;
  out.device_seq = c.device_seq();
  out.collection = c.collection();
  out.doc_id = c.doc_id();
  FS_ASSIGN_OR_RETURN(out.hlc, sync::Hlc::Decode(hlc.empty() ? absl::string_view(c.hlc()) : hlc,
                                                 absl::StrCat("change_log[", seq, "].hlc")));
  for (const v1::FieldChange& f : c.fields()) {
    sync::FieldChange fc{f.path(), f.value(), sync::Hlc()};
    if (!f.base_hlc().empty()) {
      FS_ASSIGN_OR_RETURN(fc.base_hlc, sync::Hlc::Decode(f.base_hlc()));
    }
    out.fields.push_back(std::move(fc));
  }
  return out;
}

}  // namespace

absl::Status BackfillChangeFields(Database& db) {
  FS_ASSIGN_OR_RETURN(
      std::unique_ptr<Statement> entries,
      db.PrepareUncached(kReplaySql));
  sync::Document doc;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, entries->Step());
    if (!row) break;
    int64_t seq = entries->ColumnInt(0);
    std::string collection = entries->ColumnText(1);
    std::string doc_id = entries->ColumnText(2);
    if (collection != doc.collection || doc_id != doc.id) {
      doc = sync::Document();
      doc.collection = collection;
      doc.id = doc_id;
    }
    FS_ASSIGN_OR_RETURN(sync::Change change,
                        ChangeFromLog(entries->ColumnBlob(3), entries->ColumnText(4), seq));
    sync::Document before = doc;
    sync::MergeResult merged = sync::Merge(doc, change, seq);
    FS_RETURN_IF_ERROR(WriteChangeFields(db, seq, ProjectIdOf(doc), before, merged));
  }
  return absl::OkStatus();
}

absl::StatusOr<AuditRowsProblem> CheckChangeFields(Database& db, int64_t from_seq,
                                                   int64_t to_seq) {
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Statement> entries, db.PrepareUncached(kReplaySql));
  FS_ASSIGN_OR_RETURN(Statement * rows,
                      db.Prepare("SELECT path, old_value, outcome FROM change_fields "
                                 "WHERE seq = ? ORDER BY path"));
  FS_ASSIGN_OR_RETURN(Statement * project,
                      db.Prepare("SELECT project_id FROM change_projects WHERE seq = ?"));
  AuditRowsProblem first;  // the lowest bad seq (the replay goes document by document)
  auto found = [&](int64_t seq, std::string problem) {
    if (first.seq == 0 || seq < first.seq) first = AuditRowsProblem{seq, std::move(problem)};
  };
  sync::Document doc;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, entries->Step());
    if (!row) break;
    const int64_t seq = entries->ColumnInt(0);
    std::string collection = entries->ColumnText(1);
    std::string doc_id = entries->ColumnText(2);
    if (collection != doc.collection || doc_id != doc.id) {
      doc = sync::Document();
      doc.collection = collection;
      doc.id = doc_id;
    }
    absl::StatusOr<sync::Change> change =
        ChangeFromLog(entries->ColumnBlob(3), entries->ColumnText(4), seq);
    if (!change.ok()) {
      found(seq, std::string(change.status().message()));
      continue;
    }
    sync::Document before = doc;
    sync::MergeResult merged = sync::Merge(doc, *change, seq);
    if (seq < from_seq || (to_seq > 0 && seq > to_seq)) continue;
    // What the write path stored for this entry, against what the chain says it must be.
    std::vector<std::string> expected, stored;
    for (const sync::FieldOutcome& f : merged.fields) {
      auto it = before.fields.find(f.path);
      expected.push_back(absl::StrCat(f.path, "|", it == before.fields.end() ? "null" : absl::CHexEscape(it->second.value), "|", OutcomeOf(f)));
    }
    std::sort(expected.begin(), expected.end());
    rows->Bind(1, seq);
    while (true) {
      FS_ASSIGN_OR_RETURN(bool r, rows->Step());
      if (!r) break;
      stored.push_back(absl::StrCat(rows->ColumnText(0), "|",
                                    rows->ColumnIsNull(1) ? "null" : absl::CHexEscape(rows->ColumnBlob(1)),
                                    "|", rows->ColumnText(2)));
    }
    rows->Reset();
    std::sort(stored.begin(), stored.end());
    if (stored != expected) {
      found(seq, absl::StrCat("entry ", seq, " (", collection, " ", doc_id,
                              "): its audit rows (old values, won/lost) differ from a replay "
                              "of the chain"));
      continue;
    }
    const std::string project_id = ProjectIdOf(doc);
    project->Bind(1, seq);
    FS_ASSIGN_OR_RETURN(bool has, project->Step());
    const std::string stored_project = has ? project->ColumnText(0) : "";
    project->Reset();
    if (stored_project != project_id) {
      found(seq, absl::StrCat("entry ", seq, " (", collection, " ", doc_id,
                              "): its project differs from a replay of the chain"));
    }
  }
  return first;
}

// --- The report snapshot -----------------------------------------------------------------------

namespace {

// WHERE conditions from constant fragments; values bound in order.
class Conditions {
 public:
  void Add(const char* fragment, std::string value) {
    parts_.emplace_back(fragment);
    params_.emplace_back(std::move(value));
  }
  void AddInt(const char* fragment, int64_t value) {
    parts_.emplace_back(fragment);
    params_.emplace_back(value);
  }
  std::string Sql() const { return parts_.empty() ? "1 = 1" : absl::StrJoin(parts_, " AND "); }
  void Bind(Statement& st) const {
    for (size_t i = 0; i < params_.size(); ++i) {
      int idx = static_cast<int>(i + 1);
      if (auto* v = std::get_if<int64_t>(&params_[i])) st.Bind(idx, *v);
      if (auto* v = std::get_if<std::string>(&params_[i])) st.Bind(idx, absl::string_view(*v));
    }
  }

 private:
  std::vector<std::string> parts_;
  std::vector<std::variant<std::string, int64_t>> params_;
};

// Filters on the project `p` (country, partner, project, kind).
void AddProjectFilters(Conditions& c, const ReportQuery& q) {
  if (!q.country.empty()) c.Add("p.country = ?", q.country);
  if (!q.partner_id.empty()) c.Add("p.partner_id = ?", q.partner_id);
  if (!q.project_id.empty()) c.Add("p.id = ?", q.project_id);
  if (!q.project_kind.empty()) c.Add("p.kind = ?", q.project_kind);
}

// The scans below stream rows in id order with no sort: a sort (a temporary b-tree, in memory
// with temp_store=MEMORY) would hold the whole result. So they drive from the scanned table's
// primary key (or its by-project index, ordered by id too), fix the join order with CROSS JOIN,
// and hide the other filter columns from index selection with a unary plus.
void AddScanProjectFilters(Conditions& c, const ReportQuery& q, const char* project_column) {
  if (!q.country.empty()) c.Add("+p.country = ?", q.country);
  if (!q.partner_id.empty()) c.Add("+p.partner_id = ?", q.partner_id);
  if (!q.project_id.empty()) c.Add(project_column, q.project_id);
  if (!q.project_kind.empty()) c.Add("+p.kind = ?", q.project_kind);
}

void AddRecordDates(Conditions& c, const ReportQuery& q) {
  if (!q.from_date.empty()) c.Add("r.record_date >= ?", q.from_date);
  if (!q.to_date.empty()) c.Add("r.record_date <= ?", q.to_date);
}

void AddProjectPeriod(Conditions& c, const ReportQuery& q) {
  if (!q.to_date.empty()) c.Add("(p.start_date IS NULL OR p.start_date <= ?)", q.to_date);
  if (!q.from_date.empty()) c.Add("(p.end_date IS NULL OR p.end_date >= ?)", q.from_date);
}

int64_t DayStartMicros(const std::string& date) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%d", date, absl::UTCTimeZone(), &t, &err)) return 0;
  return absl::ToUnixMicros(t);
}

void AddAuditFilters(Conditions& c, const ReportQuery& q) {
  if (!q.from_date.empty()) c.AddInt("+l.server_time >= ?", DayStartMicros(q.from_date));
  if (!q.to_date.empty()) {
    c.AddInt("+l.server_time < ?", DayStartMicros(q.to_date) + absl::ToInt64Microseconds(absl::Hours(24)));
  }
  // Entries without a project fail these (p.* is NULL).
  AddScanProjectFilters(c, q, "+p.id = ?");
}

// Name of a user or device id, or the id itself.
std::string NameOf(absl::string_view column) {
  return absl::StrCat("COALESCE((SELECT name FROM users WHERE id = ", column,
                      "), (SELECT name FROM devices WHERE id = ", column, "), ", column, ")");
}

// The device of a document's first change, or NULL.
std::string CreatedDevice(absl::string_view collection, absl::string_view id_column) {
  return absl::StrCat("(SELECT device_id FROM change_log WHERE collection = '", collection,
                      "' AND doc_id = ", id_column, " ORDER BY seq LIMIT 1)");
}

// The shared provenance and document columns of a scan over table alias `t`: payload,
// version, created_at, updated_at, created_by, updated_by, partner_id, partner name, country,
// created_by name, updated_by name, created device.
std::string DocColumns(absl::string_view t, absl::string_view collection) {
  return absl::StrCat(t, ".payload, ", t, ".version, ", t, ".created_at, ", t, ".updated_at, ",
                      t, ".created_by, ", t, ".updated_by, p.partner_id, ",
                      "COALESCE((SELECT name FROM partners WHERE id = p.partner_id), ''), ",
                      "p.country, ", NameOf(absl::StrCat(t, ".created_by")), ", ",
                      NameOf(absl::StrCat(t, ".updated_by")), ", ",
                      "COALESCE(", CreatedDevice(collection, absl::StrCat(t, ".id")), ", '')");
}

template <typename M>
absl::Status ReadDocColumns(const Statement& st, M* doc, ReportProvenance* who) {
  if (!doc->ParseFromString(st.ColumnBlob(0))) {
    return absl::DataLossError("stored document does not parse");
  }
  v1::AuditInfo* a = doc->mutable_audit();
  a->set_version(st.ColumnInt(1));
  *a->mutable_created_at() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(st.ColumnInt(2));
  *a->mutable_updated_at() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(st.ColumnInt(3));
  a->set_created_by(st.ColumnText(4));
  a->set_updated_by(st.ColumnText(5));
  who->partner_id = st.ColumnText(6);
  who->partner_name = st.ColumnText(7);
  who->country = st.ColumnText(8);
  who->created_by_name = st.ColumnText(9);
  who->updated_by_name = st.ColumnText(10);
  who->created_device_id = st.ColumnText(11);
  return absl::OkStatus();
}

// SQLite's planner hints above (CROSS JOIN fixes the join order, a unary plus hides a column
// from index selection) are no PostgreSQL: there the planner chooses, and the scan streams
// through a cursor whatever the plan.
std::string ForEngine(const Database& db, std::string sql) {
  if (db.engine() != db::Engine::kPostgres) return sql;
  absl::StrReplaceAll({{" CROSS JOIN ", " JOIN "}, {"+p.", "p."}, {"+r.", "r."}, {"+l.", "l."}},
                      &sql);
  return sql;
}

absl::StatusOr<std::unique_ptr<Statement>> PrepareScan(Database& db, const std::string& sql,
                                                       const Conditions& c) {
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Statement> st, db.PrepareUncached(ForEngine(db, sql)));
  c.Bind(*st);
  return st;
}

absl::StatusOr<int64_t> CountOf(Database& db, const std::string& sql, const Conditions& c) {
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Statement> st, PrepareScan(db, sql, c));
  FS_ASSIGN_OR_RETURN(bool row, st->Step());
  return row ? st->ColumnInt(0) : 0;
}

}  // namespace

class SqliteReportSnapshot final : public ReportSnapshot {
 public:
  static absl::StatusOr<std::unique_ptr<ReportSnapshot>> Open(SqliteStore* store) {
    std::unique_ptr<SqliteReportSnapshot> s(new SqliteReportSnapshot(store));
    FS_RETURN_IF_ERROR(s->Begin());
    return std::unique_ptr<ReportSnapshot>(std::move(s));
  }

  ~SqliteReportSnapshot() override {
    if (in_tx_) db_->Rollback().IgnoreError();  // read only: nothing to keep
    absl::MutexLock lock(&store_->readers_mu_);
    store_->idle_readers_.push_back(std::move(db_));
  }

  int64_t head_seq() const override { return head_seq_; }
  const std::string& head_hash() const override { return head_hash_; }

  absl::StatusOr<ReportCounts> Count(const ReportQuery& q, unsigned which) override;
  absl::Status ScanProjects(const ReportQuery& q,
                            const std::function<absl::Status(const ReportProject&)>& visit) override;
  absl::Status ScanSites(const ReportQuery& q,
                         const std::function<absl::Status(const ReportSite&)>& visit) override;
  absl::Status ScanRecords(const ReportQuery& q, v1::RecordKind kind,
                           const std::function<absl::Status(const ReportRecord&)>& visit) override;
  absl::Status ScanAuditTrail(
      const ReportQuery& q, const std::function<absl::Status(const ReportAuditEntry&)>& visit) override;

 private:
  explicit SqliteReportSnapshot(SqliteStore* store) : store_(store) {
    absl::MutexLock lock(&store_->readers_mu_);
    store_->readers_mu_.Await(absl::Condition(
        +[](std::vector<std::unique_ptr<Database>>* v) { return !v->empty(); },
        &store_->idle_readers_));
    db_ = std::move(store_->idle_readers_.back());
    store_->idle_readers_.pop_back();
  }

  absl::Status Begin() {
    FS_RETURN_IF_ERROR(db_->BeginRead());
    in_tx_ = true;
    // The first read fixes the snapshot (WAL): everything below sees this state.
    FS_ASSIGN_OR_RETURN(Statement * st,
                        db_->Prepare("SELECT seq, hash FROM change_log ORDER BY seq DESC LIMIT 1"));
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    head_seq_ = row ? st->ColumnInt(0) : 0;
    head_hash_ = row ? st->ColumnText(1) : std::string(kGenesisHash);
    st->Reset();
    return absl::OkStatus();
  }

  absl::Status FillAggregates(const ReportQuery& q, ReportProject& out);

  SqliteStore* store_;
  std::unique_ptr<Database> db_;
  bool in_tx_ = false;
  int64_t head_seq_ = 0;
  std::string head_hash_;
};

absl::StatusOr<ReportCounts> SqliteReportSnapshot::Count(const ReportQuery& q, unsigned which) {
  ReportCounts out;
  Database& db = *db_;
  // Per-kind counts are one pass of SUM(CASE WHEN kind = ...), not GROUP BY kind: a GROUP BY
  // that no index orders sorts every input row in a temporary b-tree first (in memory,
  // temp_store=MEMORY).
  if (which & kCountProjects) {
    Conditions c;
    AddProjectFilters(c, q);
    AddProjectPeriod(c, q);
    std::vector<std::string> sums;
    for (int k = 1; k <= 3; ++k) {
      sums.push_back(absl::StrCat("SUM(CASE WHEN p.kind = '",
                                  v1::ProjectKind_Name(static_cast<v1::ProjectKind>(k))
                                      .substr(std::strlen("PROJECT_KIND_")),
                                  "' THEN 1 ELSE 0 END)"));
    }
    FS_ASSIGN_OR_RETURN(std::unique_ptr<Statement> st,
                        PrepareScan(db,
                                    absl::StrCat("SELECT ", absl::StrJoin(sums, ", "),
                                                 " FROM projects p WHERE ", c.Sql()),
                                    c));
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    for (int k = 1; row && k <= 3; ++k) {
      out.projects_by_kind[k] = st->ColumnInt(k - 1);
      out.projects += out.projects_by_kind[k];
    }
  }
  if (which & kCountSites) {
    Conditions c;
    AddProjectFilters(c, q);
    FS_ASSIGN_OR_RETURN(out.sites,
                        CountOf(db,
                                absl::StrCat("SELECT COUNT(*) FROM sites s JOIN projects p ON "
                                             "p.id = s.project_id WHERE ",
                                             c.Sql()),
                                c));
  }
  Conditions rc;
  AddProjectFilters(rc, q);
  AddRecordDates(rc, q);
  const std::string record_join = "records r JOIN projects p ON p.id = r.project_id";
  if (which & kCountRecords) {
    // Without a project filter the join selects nothing (every record has its project: a
    // foreign key), and without it the count reads only the (kind, record_date) index instead
    // of a million table rows.
    const bool by_project = !q.country.empty() || !q.partner_id.empty() || !q.project_id.empty() ||
                            !q.project_kind.empty();
    std::vector<std::string> sums;
    for (int k = 1; k <= 4; ++k) {
      sums.push_back(absl::StrCat(
          "SUM(CASE WHEN r.kind = '",
          v1::RecordKind_Name(static_cast<v1::RecordKind>(k)).substr(std::strlen("RECORD_KIND_")),
          "' THEN 1 ELSE 0 END)"));
    }
    FS_ASSIGN_OR_RETURN(
        std::unique_ptr<Statement> st,
        PrepareScan(db,
                    absl::StrCat("SELECT ", absl::StrJoin(sums, ", "), " FROM ",
                                 by_project ? record_join : "records r", " WHERE ", rc.Sql()),
                    rc));
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    for (int k = 1; row && k <= 4; ++k) out.records[k] = st->ColumnInt(k - 1);
  }
  // Rows of a record's nested list (water tests, follow-ups, donated items).
  auto count_nested = [&](const char* table, int64_t* n) -> absl::Status {
    FS_ASSIGN_OR_RETURN(*n, CountOf(db,
                                    absl::StrCat("SELECT COUNT(*) FROM ", table,
                                                 " t JOIN records r ON r.id = t.record_id JOIN "
                                                 "projects p ON p.id = r.project_id WHERE ",
                                                 rc.Sql()),
                                    rc));
    return absl::OkStatus();
  };
  if (which & kCountWaterQualityTests) {
    FS_RETURN_IF_ERROR(count_nested("water_quality_tests", &out.water_quality_tests));
  }
  if (which & kCountFollowUps) {
    FS_RETURN_IF_ERROR(count_nested("cataract_follow_ups", &out.follow_ups));
  }
  if (which & kCountDonationItems) {
    FS_RETURN_IF_ERROR(count_nested("donation_items", &out.donation_items));
  }
  if (which & kCountAuditRows) {
    Conditions c;
    AddAuditFilters(c, q);
    FS_ASSIGN_OR_RETURN(out.audit_rows,
                        CountOf(db,
                                absl::StrCat("SELECT COUNT(*) FROM change_log l "
                                             "LEFT JOIN change_fields f ON f.seq = l.seq "
                                             "LEFT JOIN change_projects cp ON cp.seq = l.seq "
                                             "LEFT JOIN projects p ON p.id = cp.project_id WHERE ",
                                             c.Sql()),
                                c));
  }
  return out;
}

absl::Status SqliteReportSnapshot::FillAggregates(const ReportQuery& q, ReportProject& out) {
  Database& db = *db_;
  const std::string& id = out.project.id();
  // Fixed SQL text (cached): an empty date binds as "no bound".
  constexpr char kRecords[] =
      " r.project_id = ?1 AND (?2 = '' OR r.record_date >= ?2) AND (?3 = '' OR r.record_date <= ?3)";
  auto bind = [&](Statement* st) {
    st->Bind(1, id);
    st->Bind(2, q.from_date);
    st->Bind(3, q.to_date);
  };
  {
    FS_ASSIGN_OR_RETURN(Statement * st, db.Prepare("SELECT COUNT(*) FROM sites WHERE project_id = ?"));
    st->Bind(1, id);
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) out.sites = st->ColumnInt(0);
    st->Reset();
  }
  switch (out.project.kind()) {
    case v1::PROJECT_KIND_WELL: {
      FS_ASSIGN_OR_RETURN(
          Statement * st,
          db.Prepare(absl::StrCat(
              "SELECT COUNT(*), "
              "SUM(CASE WHEN w.functional_status = 'FUNCTIONAL' THEN 1 ELSE 0 END), "
              "SUM(CASE WHEN w.functional_status = 'PARTLY_FUNCTIONAL' THEN 1 ELSE 0 END), "
              "SUM(CASE WHEN w.functional_status = 'NOT_FUNCTIONAL' THEN 1 ELSE 0 END), "
              "SUM(CASE WHEN w.functional_status = 'FUNCTIONAL' THEN w.population_served ELSE 0 END) "
              "FROM records r JOIN well_records w ON w.record_id = r.id WHERE",
              kRecords)));
      bind(st);
      FS_ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) {
        out.wells = st->ColumnInt(0);
        out.wells_functional = st->ColumnInt(1);
        out.wells_partly_functional = st->ColumnInt(2);
        out.wells_not_functional = st->ColumnInt(3);
        out.population_served_functional = st->ColumnInt(4);
      }
      st->Reset();
      break;
    }
    case v1::PROJECT_KIND_CATARACT: {
      // The WHO "good" cut-off with the rounding tolerance, exactly as GetStats applies it.
      std::string good = absl::StrFormat(
          "%.17g", model::OutcomeThresholds().good_at_least / model::kOutcomeTolerance);
      FS_ASSIGN_OR_RETURN(
          Statement * st,
          db.Prepare(absl::StrCat(
              "SELECT COUNT(*), "
              "SUM(CASE WHEN EXISTS(SELECT 1 FROM cataract_follow_ups f WHERE f.record_id = r.id "
              "AND f.stage = 'DAY_1') THEN 1 ELSE 0 END), "
              "SUM(CASE WHEN EXISTS(SELECT 1 FROM cataract_follow_ups f WHERE f.record_id = r.id "
              "AND f.stage = 'WEEKS_4_12') THEN 1 ELSE 0 END), "
              "SUM(CASE WHEN EXISTS(SELECT 1 FROM cataract_follow_ups f WHERE f.record_id = r.id "
              "AND f.stage = 'WEEKS_4_12' AND f.presenting_va_decimal >= ", good,
              ") THEN 1 ELSE 0 END) "
              "FROM records r JOIN cataract_surgeries c ON c.record_id = r.id WHERE",
              kRecords)));
      bind(st);
      FS_ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) {
        out.surgeries = st->ColumnInt(0);
        out.surgeries_with_day1 = st->ColumnInt(1);
        out.surgeries_with_weeks_4_12 = st->ColumnInt(2);
        out.good_outcomes_weeks_4_12 = st->ColumnInt(3);
      }
      st->Reset();
      break;
    }
    case v1::PROJECT_KIND_CLASSROOM: {
      FS_ASSIGN_OR_RETURN(
          Statement * st,
          db.Prepare(absl::StrCat("SELECT COUNT(*), SUM(d.students_reached) FROM records r "
                                  "JOIN classroom_donations d ON d.record_id = r.id WHERE",
                                  kRecords)));
      bind(st);
      FS_ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) {
        out.donations = st->ColumnInt(0);
        out.students_reached = st->ColumnInt(1);
      }
      st->Reset();
      FS_ASSIGN_OR_RETURN(
          Statement * items,
          db.Prepare(absl::StrCat("SELECT SUM(i.quantity), SUM(i.quantity_received) FROM records r "
                                  "JOIN donation_items i ON i.record_id = r.id WHERE",
                                  kRecords)));
      bind(items);
      FS_ASSIGN_OR_RETURN(row, items->Step());
      if (row) {
        out.items_dispatched = items->ColumnInt(0);
        out.items_received = items->ColumnInt(1);
      }
      items->Reset();
      break;
    }
    default:
      break;
  }
  FS_ASSIGN_OR_RETURN(
      Statement * st,
      db.Prepare(absl::StrCat("SELECT COUNT(*), "
                              "SUM(CASE WHEN e.currency = ?4 THEN e.amount_minor ELSE 0 END), "
                              "SUM(CASE WHEN e.currency <> ?4 THEN 1 ELSE 0 END) FROM records r "
                              "JOIN expenditures e ON e.record_id = r.id WHERE",
                              kRecords)));
  bind(st);
  st->Bind(4, out.project.budget().currency());
  FS_ASSIGN_OR_RETURN(bool row, st->Step());
  if (row) {
    out.expenditures = st->ColumnInt(0);
    out.spend_minor = st->ColumnInt(1);
    out.expenditures_other_currency = st->ColumnInt(2);
  }
  st->Reset();
  return absl::OkStatus();
}

absl::Status SqliteReportSnapshot::ScanProjects(
    const ReportQuery& q, const std::function<absl::Status(const ReportProject&)>& visit) {
  Conditions c;
  AddScanProjectFilters(c, q, "p.id = ?");
  AddProjectPeriod(c, q);
  FS_ASSIGN_OR_RETURN(
      std::unique_ptr<Statement> st,
      PrepareScan(*db_, absl::StrCat("SELECT ", DocColumns("p", "project"),
                                     " FROM projects p WHERE ", c.Sql(), " ORDER BY p.id"),
                  c));
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    ReportProject p;
    FS_RETURN_IF_ERROR(ReadDocColumns(*st, &p.project, &p.who));
    FS_RETURN_IF_ERROR(FillAggregates(q, p));
    FS_RETURN_IF_ERROR(visit(p));
  }
  return absl::OkStatus();
}

absl::Status SqliteReportSnapshot::ScanSites(
    const ReportQuery& q, const std::function<absl::Status(const ReportSite&)>& visit) {
  Conditions c;
  AddScanProjectFilters(c, q, "s.project_id = ?");
  FS_ASSIGN_OR_RETURN(
      std::unique_ptr<Statement> st,
      PrepareScan(*db_, absl::StrCat("SELECT ", DocColumns("s", "site"),
                                     " FROM sites s CROSS JOIN projects p ON p.id = s.project_id "
                                     "WHERE ",
                                     c.Sql(), " ORDER BY s.id"),
                  c));
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    ReportSite s;
    FS_RETURN_IF_ERROR(ReadDocColumns(*st, &s.site, &s.who));
    FS_RETURN_IF_ERROR(visit(s));
  }
  return absl::OkStatus();
}

absl::Status SqliteReportSnapshot::ScanRecords(
    const ReportQuery& q, v1::RecordKind kind,
    const std::function<absl::Status(const ReportRecord&)>& visit) {
  Conditions c;
  std::string kind_name = v1::RecordKind_Name(kind).substr(std::string("RECORD_KIND_").size());
  c.Add("+r.kind = ?", kind_name);
  AddScanProjectFilters(c, q, "r.project_id = ?");
  if (!q.from_date.empty()) c.Add("+r.record_date >= ?", q.from_date);
  if (!q.to_date.empty()) c.Add("+r.record_date <= ?", q.to_date);
  FS_ASSIGN_OR_RETURN(
      std::unique_ptr<Statement> st,
      PrepareScan(*db_, absl::StrCat("SELECT ", DocColumns("r", "record"),
                                     " FROM records r CROSS JOIN projects p ON p.id = r.project_id "
                                     "WHERE ",
                                     c.Sql(), " ORDER BY r.id"),
                  c));
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    ReportRecord r;
    FS_RETURN_IF_ERROR(ReadDocColumns(*st, &r.record, &r.who));
    FS_RETURN_IF_ERROR(visit(r));
  }
  return absl::OkStatus();
}

absl::Status SqliteReportSnapshot::ScanAuditTrail(
    const ReportQuery& q, const std::function<absl::Status(const ReportAuditEntry&)>& visit) {
  Conditions c;
  AddAuditFilters(c, q);
  FS_ASSIGN_OR_RETURN(
      std::unique_ptr<Statement> st,
      PrepareScan(*db_,
                  absl::StrCat("SELECT ", ChangeLogColumns("l"), ", ", NameOf("l.actor_id"), ", "
                               "COALESCE((SELECT name FROM devices WHERE id = l.device_id), ''), "
                               "COALESCE(cp.project_id, '') FROM change_log l "
                               "LEFT JOIN change_projects cp ON cp.seq = l.seq "
                               "LEFT JOIN projects p ON p.id = cp.project_id WHERE ", c.Sql(),
                               " ORDER BY l.seq"),
                  c));
  FS_ASSIGN_OR_RETURN(Statement * fields,
                      db_->Prepare("SELECT path, old_value, outcome FROM change_fields "
                                   "WHERE seq = ? ORDER BY path"));
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    ReportAuditEntry a;
    a.entry = ReadChangeLogRow(*st);
    a.actor_name = st->ColumnText(12);
    a.device_name = st->ColumnText(13);
    a.project_id = st->ColumnText(14);
    fields->Reset();
    fields->Bind(1, a.entry.seq);
    while (true) {
      FS_ASSIGN_OR_RETURN(bool f, fields->Step());
      if (!f) break;
      std::string outcome = fields->ColumnText(2);
      for (char& ch : outcome) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      a.fields.push_back({fields->ColumnText(0), fields->ColumnBlob(1), std::move(outcome)});
    }
    fields->Reset();
    FS_RETURN_IF_ERROR(visit(a));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ReportSnapshot>> SqliteStore::OpenReportSnapshot() {
  return SqliteReportSnapshot::Open(this);
}

absl::StatusOr<ChangeLogEntry> SqliteStore::LastEntryOf(absl::string_view collection,
                                                        absl::string_view doc_id) {
  absl::StatusOr<ChangeLogEntry> out =
      absl::NotFoundError(absl::StrCat(collection, " ", doc_id, " not found"));
  FS_RETURN_IF_ERROR(Read([&](Database& db) -> absl::Status {
    FS_ASSIGN_OR_RETURN(Statement * st,
                        db.Prepare(absl::StrCat("SELECT ", ChangeLogColumns(),
                                                " FROM change_log WHERE collection = ? AND "
                                                "doc_id = ? ORDER BY seq DESC LIMIT 1")));
    st->Bind(1, collection);
    st->Bind(2, doc_id);
    FS_ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) out = ReadChangeLogRow(*st);
    st->Reset();
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace fieldsync::server
