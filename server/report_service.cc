#include "server/report_service.h"

#include <algorithm>
#include <cstdlib>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/model/validate.h"
#include "fieldsync/report/writer.h"
#include "fieldsync/sync/document.h"
#include "google/protobuf/util/time_util.h"
#include "server/change_log.h"
#include "server/enum_names.h"
#include "server/log.h"
#include "server/rpc.h"

namespace fieldsync::server {

namespace {

constexpr char kReport[] = "fieldsync.v1.ReportService";

// What an export request asks for, checked.
struct Plan {
  std::vector<v1::ReportTable> tables;
  ReportQuery query;
};

const char* FormatName(v1::ReportFormat f) {
  switch (f) {
    case v1::REPORT_FORMAT_CSV:
      return "CSV";
    case v1::REPORT_FORMAT_XLSX:
      return "XLSX";
    case v1::REPORT_FORMAT_JSONL:
      return "JSONL";
    case v1::REPORT_FORMAT_IATI_XML:
      return "IATI_XML";
    default:
      return "?";
  }
}

absl::StatusOr<Plan> PlanOf(const v1::ExportRequest& req) {
  Plan plan;
  const v1::ReportFormat format = req.format();
  if (format == v1::REPORT_FORMAT_UNSPECIFIED) {
    return absl::InvalidArgumentError("format: required (CSV, XLSX, JSONL or IATI_XML)");
  }
  if (!v1::ReportFormat_IsValid(format)) {
    return absl::InvalidArgumentError(absl::StrCat("format: unknown value ", format));
  }
  std::set<int> seen;
  for (int i = 0; i < req.tables_size(); ++i) {
    const int t = req.tables(i);
    if (t == v1::REPORT_TABLE_UNSPECIFIED || !v1::ReportTable_IsValid(t)) {
      return absl::InvalidArgumentError(absl::StrCat("tables[", i, "]: unknown table ", t));
    }
    if (!seen.insert(t).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tables[", i, "]: ", ReportTableName(static_cast<v1::ReportTable>(t)), " appears twice"));
    }
    const bool iati = t == v1::REPORT_TABLE_IATI_ACTIVITIES;
    if (iati != (format == v1::REPORT_FORMAT_IATI_XML)) {
      return absl::InvalidArgumentError(
          iati ? absl::StrCat("tables[", i, "]: iati_activities needs format IATI_XML, got ",
                              FormatName(format))
               : absl::StrCat("tables[", i, "]: IATI_XML holds only iati_activities, got ",
                              ReportTableName(static_cast<v1::ReportTable>(t))));
    }
    plan.tables.push_back(static_cast<v1::ReportTable>(t));
  }
  if ((format == v1::REPORT_FORMAT_CSV || format == v1::REPORT_FORMAT_JSONL) &&
      plan.tables.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("tables: ", FormatName(format),
                                                   " holds one table, got ", plan.tables.size(),
                                                   " tables"));
  }
  if (plan.tables.empty()) {
    switch (format) {
      case v1::REPORT_FORMAT_IATI_XML:
        plan.tables = {v1::REPORT_TABLE_IATI_ACTIVITIES};
        break;
      case v1::REPORT_FORMAT_XLSX:
        for (int t = v1::REPORT_TABLE_PROJECTS; t <= v1::REPORT_TABLE_RECONCILIATION_GAPS; ++t) {
          if (t != v1::REPORT_TABLE_AUDIT_TRAIL) plan.tables.push_back(static_cast<v1::ReportTable>(t));
        }
        break;
      default:
        plan.tables = {v1::REPORT_TABLE_PROJECTS};
    }
  }

  const v1::ReportFilter& f = req.filter();
  FS_RETURN_IF_ERROR(model::ValidateOptionalDate("filter.from_date", f.from_date()));
  FS_RETURN_IF_ERROR(model::ValidateOptionalDate("filter.to_date", f.to_date()));
  if (!f.from_date().empty() && !f.to_date().empty() && f.from_date() > f.to_date()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "filter.to_date: must not be before filter.from_date (", f.from_date(), "), got ",
        f.to_date()));
  }
  if (!f.country().empty() && !model::IsCountryCode(f.country())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "filter.country: not an ISO 3166-1 alpha-2 country code, got \"", f.country(), "\""));
  }
  FS_RETURN_IF_ERROR(model::ValidateId("filter.partner_id", f.partner_id(), true));
  FS_RETURN_IF_ERROR(model::ValidateId("filter.project_id", f.project_id(), true));
  if (!v1::ProjectKind_IsValid(f.project_kind())) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter.project_kind: unknown value ", f.project_kind()));
  }
  plan.query.from_date = f.from_date();
  plan.query.to_date = f.to_date();
  plan.query.country = f.country();
  plan.query.partner_id = f.partner_id();
  plan.query.project_id = f.project_id();
  if (f.project_kind() != v1::PROJECT_KIND_UNSPECIFIED) {
    plan.query.project_kind = ShortName(f.project_kind());
  }
  return plan;
}

// Cuts the file into chunks of at most kExportChunkBytes and sends them as they fill: with the
// synchronous gRPC writer each send waits for the transport, so a slow client slows the export
// down instead of letting it pile up in memory.
class ChunkSink final : public report::ByteSink {
 public:
  ChunkSink(const std::function<bool(const v1::ExportChunk&)>& emit,
            const std::function<bool()>& cancelled, const int64_t* rows_written,
            int64_t rows_total)
      : emit_(emit), cancelled_(cancelled), rows_written_(rows_written), rows_total_(rows_total) {}

  absl::Status Write(absl::string_view bytes) override {
    buffer_.append(bytes.data(), bytes.size());
    while (buffer_.size() >= kExportChunkBytes) {
      FS_RETURN_IF_ERROR(Send(kExportChunkBytes));
    }
    return absl::OkStatus();
  }

  // What is left (less than one chunk): it travels with the manifest in the last chunk.
  std::string TakeRest() { return std::move(buffer_); }

 private:
  absl::Status Send(size_t n) {
    if (cancelled_()) return absl::CancelledError("the client cancelled the export");
    v1::ExportChunk chunk;
    chunk.set_data(buffer_.substr(0, n));
    chunk.set_rows_written(*rows_written_);
    chunk.set_rows_total(rows_total_);
    buffer_.erase(0, n);
    if (!emit_(chunk)) return absl::CancelledError("the client went away during the export");
    return absl::OkStatus();
  }

  const std::function<bool(const v1::ExportChunk&)>& emit_;
  const std::function<bool()>& cancelled_;
  const int64_t* rows_written_;
  int64_t rows_total_;
  std::string buffer_;
};

// The counts TableRowCount reads for `table`: the others are not computed (each is a scan).
unsigned CountsFor(v1::ReportTable table) {
  switch (table) {
    case v1::REPORT_TABLE_PROJECTS:
    case v1::REPORT_TABLE_IATI_ACTIVITIES:
    case v1::REPORT_TABLE_RECONCILIATION:
      return kCountProjects;
    case v1::REPORT_TABLE_SITES:
      return kCountSites;
    case v1::REPORT_TABLE_WELLS:
    case v1::REPORT_TABLE_SURGERIES:
    case v1::REPORT_TABLE_DONATIONS:
    case v1::REPORT_TABLE_EXPENDITURES:
      return kCountRecords;
    case v1::REPORT_TABLE_WATER_QUALITY_TESTS:
      return kCountWaterQualityTests;
    case v1::REPORT_TABLE_FOLLOW_UPS:
      return kCountFollowUps;
    case v1::REPORT_TABLE_DONATION_ITEMS:
      return kCountDonationItems;
    case v1::REPORT_TABLE_AUDIT_TRAIL:
      return kCountAuditRows;
    case v1::REPORT_TABLE_RECONCILIATION_GAPS:
      return 0;  // counted by running its rows
    default:
      return kCountAll;
  }
}

std::string TempDir(const std::string& configured) {
  if (!configured.empty()) return configured;
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

}  // namespace

absl::Status Reporter::Export(const Principal& who, const v1::ExportRequest& request,
                              const std::function<bool(const v1::ExportChunk&)>& emit,
                              const std::function<bool()>& cancelled) {
  FS_ASSIGN_OR_RETURN(Plan plan, PlanOf(request));
  // One slot per running export; released however the export ends.
  if (running_.fetch_add(1) >= options_.max_concurrent_exports) {
    running_.fetch_sub(1);
    return absl::ResourceExhaustedError(absl::StrCat(
        options_.max_concurrent_exports, " exports are running already; retry when one finishes"));
  }
  struct Slot {
    std::atomic<int>* n;
    void Release() {
      if (n != nullptr) n->fetch_sub(1);
      n = nullptr;
    }
    ~Slot() { Release(); }
  } slot{&running_};

  const absl::Time started = absl::Now();
  FS_ASSIGN_OR_RETURN(std::unique_ptr<ReportSnapshot> snapshot, store_.OpenReportSnapshot());
  unsigned wanted = 0;
  for (v1::ReportTable t : plan.tables) wanted |= CountsFor(t);
  FS_ASSIGN_OR_RETURN(ReportCounts counts, snapshot->Count(plan.query, wanted));
  int64_t rows_total = 0;
  for (v1::ReportTable t : plan.tables) {
    FS_ASSIGN_OR_RETURN(int64_t n, TableRowCount(*snapshot, plan.query, counts, t));
    rows_total += n;
  }

  int64_t rows_written = 0;
  ChunkSink chunks(emit, cancelled, &rows_written, rows_total);
  report::HashingSink hashed(&chunks, kManifestBlockBytes);
  v1::ExportManifest manifest;
  auto count_row = [&]() -> absl::Status {
    // XLSX keeps rows in its temporary file until the end: look for a cancel here too.
    if ((++rows_written & 1023) == 0 && cancelled()) {
      return absl::CancelledError("the client cancelled the export");
    }
    return absl::OkStatus();
  };
  const absl::Time now = absl::Now();
  if (request.format() == v1::REPORT_FORMAT_IATI_XML) {
    report::IatiWriter out(
        &hashed,
        report::IatiOrganisation{options_.iati.ref, options_.iati.name, options_.iati.type, 0},
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone()));
    FS_RETURN_IF_ERROR(out.Begin());
    FS_RETURN_IF_ERROR(WriteIatiActivities(
        *snapshot, plan.query, options_.iati,
        absl::FormatTime("%Y-%m-%d", now, absl::UTCTimeZone()),
        [&](const report::IatiActivity& a) -> absl::Status {
          FS_RETURN_IF_ERROR(count_row());
          return out.WriteActivity(a);
        }));
    FS_RETURN_IF_ERROR(out.End());
    v1::TableRowCount* rc = manifest.add_row_counts();
    rc->set_table(ReportTableName(v1::REPORT_TABLE_IATI_ACTIVITIES));
    rc->set_kind(v1::REPORT_TABLE_IATI_ACTIVITIES);
    rc->set_rows(rows_written);
  } else {
    FS_ASSIGN_OR_RETURN(std::unique_ptr<report::TableWriter> out,
                        report::NewTableWriter(request.format(), &hashed,
                                               TempDir(options_.temp_dir)));
    for (v1::ReportTable t : plan.tables) {
      const int64_t before = rows_written;
      FS_RETURN_IF_ERROR(out->BeginTable(TableSchemaOf(t)));
      FS_RETURN_IF_ERROR(WriteTableRows(*snapshot, plan.query, t,
                                        [&](absl::Span<const report::Cell> row) -> absl::Status {
                                          FS_RETURN_IF_ERROR(count_row());
                                          return out->WriteRow(row);
                                        }));
      FS_RETURN_IF_ERROR(out->EndTable());
      v1::TableRowCount* rc = manifest.add_row_counts();
      rc->set_table(ReportTableName(t));
      rc->set_kind(t);
      rc->set_rows(rows_written - before);
    }
    FS_RETURN_IF_ERROR(out->Finish());
  }

  manifest.set_manifest_version(1);
  manifest.set_export_id(NewUuidV7());
  manifest.set_format(request.format());
  for (v1::ReportTable t : plan.tables) manifest.add_tables(t);
  *manifest.mutable_filter() = request.filter();
  *manifest.mutable_generated_at() =
      google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now));
  manifest.set_generated_by(who.subject_id());
  manifest.set_generated_by_name(who.name);
  manifest.set_chain_head_seq(snapshot->head_seq());
  manifest.set_chain_head_hash(snapshot->head_hash());
  manifest.set_content_bytes(hashed.bytes());
  manifest.set_content_sha256(hashed.Sha256Hex());
  manifest.set_block_bytes(kManifestBlockBytes);
  for (std::string& h : hashed.BlockSha256Hex()) manifest.add_block_sha256(std::move(h));
  manifest.set_server_version(options_.server_version);
  snapshot.reset();  // let go of the reader before writing

  if (cancelled()) return absl::CancelledError("the client cancelled the export");
  FS_RETURN_IF_ERROR(store_
                         .LogExport(manifest.export_id(), sync::SerializeDeterministic(manifest),
                                    who.actor())
                         .status());
  Log("info", absl::StrCat("export id=", manifest.export_id(), " by=", who.subject_id(),
                           " format=", FormatName(request.format()), " rows=", rows_written,
                           " bytes=", manifest.content_bytes(), " head=", manifest.chain_head_seq(),
                           " in ", absl::FormatDuration(absl::Now() - started)));
  // Free the slot before the last message: a client that starts its next export as soon as
  // this one ends must not find it taken.
  slot.Release();
  v1::ExportChunk last;
  last.set_data(chunks.TakeRest());
  last.set_rows_written(rows_written);
  last.set_rows_total(rows_total);
  *last.mutable_manifest() = manifest;
  if (!emit(last)) return absl::CancelledError("the client went away before the manifest");
  return absl::OkStatus();
}

absl::StatusOr<v1::ExportManifest> Reporter::GetExportManifest(
    const v1::GetExportManifestRequest& request) {
  FS_RETURN_IF_ERROR(model::ValidateId("export_id", request.export_id(), false));
  absl::StatusOr<ChangeLogEntry> entry = store_.LastEntryOf("export", request.export_id());
  if (entry.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(
        absl::StrCat("export_id: no export ", request.export_id(), " on this server"));
  }
  FS_RETURN_IF_ERROR(entry.status());
  v1::ExportManifest manifest;
  if (!manifest.ParseFromString(entry->payload)) {
    return absl::DataLossError(
        absl::StrCat("export ", request.export_id(), ": the logged manifest does not parse"));
  }
  return manifest;
}

absl::StatusOr<v1::VerifyAuditChainResponse> Reporter::VerifyAuditChain(
    const v1::VerifyAuditChainRequest& request) {
  if (request.from_seq() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("from_seq: must be >= 0, got ", request.from_seq()));
  }
  if (request.to_seq() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("to_seq: must be >= 0, got ", request.to_seq()));
  }
  if (request.to_seq() > 0 && request.to_seq() < request.from_seq()) {
    return absl::InvalidArgumentError(absl::StrCat("to_seq: must not be below from_seq (",
                                                   request.from_seq(), "), got ",
                                                   request.to_seq()));
  }
  const int64_t from = std::max<int64_t>(1, request.from_seq());
  const int64_t to = request.to_seq();  // 0: to the end
  v1::VerifyAuditChainResponse out;
  auto fail = [&](int64_t seq, std::string problem) {
    out.set_ok(false);
    out.set_first_bad_seq(seq);
    out.set_problem(std::move(problem));
    return out;
  };
  // The starting point: the stored hash of the entry before `from` (trusted as stored).
  std::string prev_hash = kGenesisHash;
  int64_t expected = from;
  if (from > 1) {
    FS_ASSIGN_OR_RETURN(std::vector<ChangeLogEntry> before, store_.ReadChangeLog(from - 2, 1));
    if (before.empty() || before.front().seq != from - 1) {
      return fail(from - 1, absl::StrCat("entry ", from - 1,
                                         " (the starting point before from_seq) is missing"));
    }
    prev_hash = before.front().hash;
  }
  constexpr int kPage = 1000;
  int64_t after = from - 1;
  while (true) {
    FS_ASSIGN_OR_RETURN(std::vector<ChangeLogEntry> page, store_.ReadChangeLog(after, kPage));
    for (const ChangeLogEntry& e : page) {
      if (to > 0 && e.seq > to) break;
      if (e.seq != expected) {
        return fail(expected, e.seq - 1 == expected
                                  ? absl::StrCat("entry ", expected, " is missing")
                                  : absl::StrCat("entries ", expected, "..", e.seq - 1,
                                                 " are missing"));
      }
      if (e.prev_hash != prev_hash) {
        return fail(e.seq, absl::StrCat("entry ", e.seq, ": prev_hash differs from entry ",
                                        e.seq - 1, "'s hash"));
      }
      if (e.prev_hash.size() != 64 || ChainHash(prev_hash, e) != e.hash) {
        return fail(e.seq,
                    absl::StrCat("entry ", e.seq, " (", e.collection, " ", e.doc_id, " ", e.op,
                                 "): hash does not match its content"));
      }
      prev_hash = e.hash;
      out.set_entries_checked(out.entries_checked() + 1);
      out.set_head_seq(e.seq);
      out.set_head_hash(e.hash);
      ++expected;
    }
    if (page.size() < kPage || (to > 0 && !page.empty() && page.back().seq >= to)) break;
    after = page.back().seq;
  }
  if (to > 0 && expected <= to) {
    return fail(expected, absl::StrCat("entries ", expected, "..", to,
                                       " are missing (the log ends at ", expected - 1, ")"));
  }
  // What exports show beside the hashed entries (old values, won/lost, project) must follow
  // from them: recomputed by replaying the chain through the merge.
  FS_ASSIGN_OR_RETURN(auto rows, store_.CheckAuditRows(from, to));
  if (rows.first != 0) return fail(rows.first, rows.second);
  out.set_ok(true);
  return out;
}

// --- ReportServiceImpl -------------------------------------------------------------------------

grpc::Status ReportServiceImpl::Export(grpc::ServerContext* ctx, const v1::ExportRequest* req,
                                       grpc::ServerWriter<v1::ExportChunk>* writer) {
  absl::StatusOr<Principal> who =
      AuthorizeCall(auth_, *ctx, absl::StrCat("/", kReport, "/Export"));
  if (!who.ok()) return ToGrpcStatus(who.status());
  return ToGrpcStatus(reporter_.Export(
      *who, *req, [&](const v1::ExportChunk& chunk) { return writer->Write(chunk); },
      [&] { return ctx->IsCancelled() || stopping_.load(); }));
}

grpc::Status ReportServiceImpl::GetExportManifest(grpc::ServerContext* ctx,
                                                  const v1::GetExportManifestRequest* req,
                                                  v1::ExportManifest* resp) {
  return Handle(auth_, ctx, kReport, "GetExportManifest", resp,
                [&](const Principal&) { return reporter_.GetExportManifest(*req); });
}

grpc::Status ReportServiceImpl::VerifyAuditChain(grpc::ServerContext* ctx,
                                                 const v1::VerifyAuditChainRequest* req,
                                                 v1::VerifyAuditChainResponse* resp) {
  return Handle(auth_, ctx, kReport, "VerifyAuditChain", resp,
                [&](const Principal&) { return reporter_.VerifyAuditChain(*req); });
}

}  // namespace fieldsync::server
