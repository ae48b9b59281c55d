// Reports for auditors (ReportService): 'report export' streams an export into a file and keeps
// its manifest beside it, 'report verify' checks a file against its manifest offline (and
// against the server when asked), 'audit verify' has the server recompute its hash chain.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/export_verify.h"
#include "cli/interrupt.h"
#include "cli/invocation.h"
#include "cli/output.h"
#include "cli/values.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/report/writer.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/message_differencer.h"

namespace fieldsync::cli {
namespace {

// Block size of the running hash while receiving (only the whole-file digest is used).
constexpr int64_t kHashBlockBytes = 1 << 20;

struct TableName {
  const char* name;
  v1::ReportTable table;
};

// Names accepted by --table, as in the files (sheet names); '-' may stand for '_'.
constexpr TableName kTableNames[] = {
    {"projects", v1::REPORT_TABLE_PROJECTS},
    {"sites", v1::REPORT_TABLE_SITES},
    {"wells", v1::REPORT_TABLE_WELLS},
    {"water_quality_tests", v1::REPORT_TABLE_WATER_QUALITY_TESTS},
    {"water_tests", v1::REPORT_TABLE_WATER_QUALITY_TESTS},
    {"surgeries", v1::REPORT_TABLE_SURGERIES},
    {"follow_ups", v1::REPORT_TABLE_FOLLOW_UPS},
    {"donations", v1::REPORT_TABLE_DONATIONS},
    {"donation_items", v1::REPORT_TABLE_DONATION_ITEMS},
    {"expenditures", v1::REPORT_TABLE_EXPENDITURES},
    {"audit_trail", v1::REPORT_TABLE_AUDIT_TRAIL},
    {"audit", v1::REPORT_TABLE_AUDIT_TRAIL},
    {"reconciliation", v1::REPORT_TABLE_RECONCILIATION},
    {"reconciliation_gaps", v1::REPORT_TABLE_RECONCILIATION_GAPS},
    {"iati", v1::REPORT_TABLE_IATI_ACTIVITIES},
    {"iati_activities", v1::REPORT_TABLE_IATI_ACTIVITIES},
};

// Every table of a workbook ("--table all").
constexpr v1::ReportTable kWorkbookTables[] = {
    v1::REPORT_TABLE_PROJECTS,           v1::REPORT_TABLE_SITES,
    v1::REPORT_TABLE_WELLS,              v1::REPORT_TABLE_WATER_QUALITY_TESTS,
    v1::REPORT_TABLE_SURGERIES,          v1::REPORT_TABLE_FOLLOW_UPS,
    v1::REPORT_TABLE_DONATIONS,          v1::REPORT_TABLE_DONATION_ITEMS,
    v1::REPORT_TABLE_EXPENDITURES,       v1::REPORT_TABLE_RECONCILIATION,
    v1::REPORT_TABLE_RECONCILIATION_GAPS, v1::REPORT_TABLE_AUDIT_TRAIL,
};

std::string TableLabel(v1::ReportTable table) {
  for (const TableName& t : kTableNames) {
    if (t.table == table) return t.name;
  }
  return EnumLabel(table);
}

std::string TableChoices() {
  std::vector<std::string> names;
  for (const TableName& t : kTableNames) names.push_back(t.name);
  names.push_back("all");
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<std::vector<v1::ReportTable>> ParseTables(absl::string_view flag,
                                                         absl::string_view text) {
  std::vector<v1::ReportTable> tables;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    const std::string name =
        absl::StrReplaceAll(absl::AsciiStrToLower(absl::StripAsciiWhitespace(item)), {{"-", "_"}});
    if (name == "all") {
      tables.insert(tables.end(), std::begin(kWorkbookTables), std::end(kWorkbookTables));
      continue;
    }
    bool found = false;
    for (const TableName& t : kTableNames) {
      if (name == t.name) {
        tables.push_back(t.table);
        found = true;
        break;
      }
    }
    if (!found) {
      return UsageError(absl::StrCat("--", flag, ": unknown table '", item, "'; one of ",
                                     TableChoices()));
    }
  }
  if (tables.empty()) {
    return UsageError(absl::StrCat("--", flag, ": name at least one table: ", TableChoices()));
  }
  return tables;
}

absl::StatusOr<v1::ReportFormat> ParseFormat(absl::string_view text) {
  const std::string name = absl::AsciiStrToLower(text);
  if (name == "csv") return v1::REPORT_FORMAT_CSV;
  if (name == "xlsx") return v1::REPORT_FORMAT_XLSX;
  if (name == "jsonl" || name == "json_lines" || name == "ndjson") return v1::REPORT_FORMAT_JSONL;
  if (name == "iati" || name == "xml" || name == "iati_xml") return v1::REPORT_FORMAT_IATI_XML;
  return UsageError(absl::StrCat("--format: must be csv, xlsx, jsonl or iati, got '", text, "'"));
}

std::string FormatLabel(v1::ReportFormat format) {
  switch (format) {
    case v1::REPORT_FORMAT_CSV:
      return "csv";
    case v1::REPORT_FORMAT_XLSX:
      return "xlsx";
    case v1::REPORT_FORMAT_JSONL:
      return "jsonl";
    case v1::REPORT_FORMAT_IATI_XML:
      return "iati";
    default:
      return EnumLabel(format);
  }
}

// The format an output file's extension suggests, if any.
std::optional<v1::ReportFormat> FormatOfPath(absl::string_view path) {
  const std::string lower = absl::AsciiStrToLower(path);
  if (absl::EndsWith(lower, ".csv")) return v1::REPORT_FORMAT_CSV;
  if (absl::EndsWith(lower, ".xlsx")) return v1::REPORT_FORMAT_XLSX;
  if (absl::EndsWith(lower, ".jsonl") || absl::EndsWith(lower, ".ndjson")) {
    return v1::REPORT_FORMAT_JSONL;
  }
  if (absl::EndsWith(lower, ".xml")) return v1::REPORT_FORMAT_IATI_XML;
  return std::nullopt;
}

// The ExportRequest the options ask for; every mistake is a usage error naming the option.
absl::StatusOr<v1::ExportRequest> ExportRequestFrom(const FlagValues& flags,
                                                    const std::string& output) {
  v1::ExportRequest request;
  if (flags.Has("table") && flags.Has("kind")) {
    return UsageError("--kind: is another name for --table; give one of them");
  }
  const std::string table_flag = flags.Has("kind") ? "kind" : "table";
  std::vector<v1::ReportTable> tables;
  if (flags.Has(table_flag)) {
    FS_ASSIGN_OR_RETURN(tables, ParseTables(table_flag, flags.Get(table_flag)));
  }
  const bool iati = std::find(tables.begin(), tables.end(), v1::REPORT_TABLE_IATI_ACTIVITIES) !=
                    tables.end();

  v1::ReportFormat format = v1::REPORT_FORMAT_UNSPECIFIED;
  if (flags.Has("format")) {
    FS_ASSIGN_OR_RETURN(format, ParseFormat(flags.Get("format")));
  } else if (iati) {
    format = v1::REPORT_FORMAT_IATI_XML;
  } else if (std::optional<v1::ReportFormat> guessed = FormatOfPath(output)) {
    format = *guessed;
  } else {
    return UsageError("--format: give csv, xlsx, jsonl or iati (or name --output FILE with one of "
                      "the extensions .csv, .xlsx, .jsonl, .xml)");
  }
  if (tables.empty()) {
    if (format != v1::REPORT_FORMAT_IATI_XML && format != v1::REPORT_FORMAT_XLSX) {
      return UsageError(absl::StrCat("'report export' needs --table TABLE for ", FormatLabel(format),
                                     ": one of ", TableChoices()));
    }
  }
  if (format == v1::REPORT_FORMAT_IATI_XML) {
    for (v1::ReportTable table : tables) {
      if (table != v1::REPORT_TABLE_IATI_ACTIVITIES) {
        return UsageError(absl::StrCat("--", table_flag, ": the iati format holds the table iati "
                                       "only, got ", TableLabel(table)));
      }
    }
  } else if (iati) {
    return UsageError(absl::StrCat("--format: the table iati is written as --format iati, got ",
                                   FormatLabel(format)));
  }
  if ((format == v1::REPORT_FORMAT_CSV || format == v1::REPORT_FORMAT_JSONL) &&
      tables.size() > 1) {
    return UsageError(absl::StrCat("--", table_flag, ": ", FormatLabel(format),
                                   " holds one table, got ", tables.size(),
                                   "; use --format xlsx for several"));
  }
  request.set_format(format);
  for (v1::ReportTable table : tables) request.add_tables(table);

  v1::ReportFilter& filter = *request.mutable_filter();
  if (flags.Has("from")) {
    FS_ASSIGN_OR_RETURN(std::string from, ParseDate("from", flags.Get("from")));
    filter.set_from_date(from);
  }
  if (flags.Has("to")) {
    FS_ASSIGN_OR_RETURN(std::string to, ParseDate("to", flags.Get("to")));
    filter.set_to_date(to);
  }
  if (!filter.from_date().empty() && !filter.to_date().empty() &&
      filter.to_date() < filter.from_date()) {
    return UsageError(absl::StrCat("--to: ", filter.to_date(), " is before --from ",
                                   filter.from_date()));
  }
  filter.set_country(absl::AsciiStrToUpper(flags.Get("country")));
  filter.set_partner_id(flags.Get("partner"));
  filter.set_project_id(flags.Get("project"));
  if (flags.Has("project-kind")) {
    FS_ASSIGN_OR_RETURN(int kind, ParseEnum("project-kind", flags.Get("project-kind"),
                                            v1::ProjectKind_descriptor()));
    filter.set_project_kind(static_cast<v1::ProjectKind>(kind));
  }
  return request;
}

// "3.2 MB".
std::string Bytes(int64_t n) {
  if (n < 10 * 1024) return absl::StrCat(n, " B");
  if (n < 10 * 1024 * 1024) return absl::StrFormat("%.1f KB", n / 1024.0);
  return absl::StrFormat("%.1f MB", n / (1024.0 * 1024.0));
}

// What 'report export' shows on stderr while it receives: a redrawn bar on a terminal, else (with
// --progress) one line every few seconds.
class ExportProgress {
 public:
  enum Style { kQuiet, kBar, kLines };
  ExportProgress(std::ostream& out, Style style) : out_(out), style_(style) {}

  void Update(int64_t rows_written, int64_t rows_total, int64_t bytes) {
    if (style_ == kQuiet) return;
    const absl::Time now = absl::Now();
    const absl::Duration every = style_ == kBar ? absl::Milliseconds(100) : absl::Seconds(2);
    if (now - last_ < every) return;
    last_ = now;
    const std::string text = Describe(rows_written, rows_total, bytes);
    if (style_ == kBar) {
      constexpr int kWidth = 20;
      const int filled = rows_total > 0 ? static_cast<int>(kWidth * rows_written / rows_total) : 0;
      out_ << "\r\033[Kexport [" << std::string(filled, '#') << std::string(kWidth - filled, '-')
           << "] " << text << std::flush;
      drawn_ = true;
    } else {
      out_ << "export: " << text << "\n" << std::flush;
    }
  }

  // Clears the bar (or prints the last line, if anything arrived), so that what follows starts
  // on a clean line.
  void Finish(int64_t rows_written, int64_t rows_total, int64_t bytes) {
    if (style_ == kBar && drawn_) out_ << "\r\033[K" << std::flush;
    if (style_ == kLines && last_ != absl::InfinitePast()) {
      out_ << "export: " << Describe(rows_written, rows_total, bytes) << "\n" << std::flush;
    }
  }

  static std::string Describe(int64_t rows_written, int64_t rows_total, int64_t bytes) {
    return absl::StrCat(rows_written, "/", rows_total, " rows, ", Bytes(bytes));
  }

 private:
  std::ostream& out_;
  const Style style_;
  absl::Time last_ = absl::InfinitePast();
  bool drawn_ = false;
};

absl::Status ErrnoError(absl::string_view what, const std::string& path, int error) {
  std::string message = absl::StrCat(what, " '", path, "': ", std::strerror(error));
  switch (error) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case ENOENT:
    case ENOTDIR:
    case EACCES:
    case EISDIR:
    case EROFS:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

// A file written as FILE.part and renamed to FILE once complete; removed if never committed.
class PartFile : public report::ByteSink {
 public:
  explicit PartFile(std::string path) : path_(std::move(path)), part_(path_ + ".part") {}
  ~PartFile() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(part_.c_str());
  }

  absl::Status Open() {
    fd_ = ::open(part_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0) return ErrnoError("cannot create", part_, errno);
    return absl::OkStatus();
  }

  absl::Status Write(absl::string_view bytes) override {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("cannot write", part_, errno);
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  // Makes the bytes durable and closes the file (still named FILE.part).
  absl::Status Close() {
    if (::fsync(fd_) != 0) return ErrnoError("cannot write", part_, errno);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return ErrnoError("cannot write", part_, errno);
    return absl::OkStatus();
  }

  // Renames FILE.part to FILE.
  absl::Status Commit() {
    if (::rename(part_.c_str(), path_.c_str()) != 0) {
      return ErrnoError("cannot rename to", path_, errno);
    }
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  std::string path_;
  std::string part_;
  int fd_ = -1;
  bool committed_ = false;
};

std::string ManifestPathFor(const std::string& file) { return file + ".manifest.json"; }

std::string RowSummary(const v1::ExportManifest& manifest) {
  int64_t total = 0;
  std::vector<std::string> parts;
  for (const v1::TableRowCount& count : manifest.row_counts()) {
    total += count.rows();
    parts.push_back(absl::StrCat(count.table(), " ", count.rows()));
  }
  if (parts.size() <= 1) return Counted(total, "row");
  return absl::StrCat(Counted(total, "row"), ": ", absl::StrJoin(parts, ", "));
}

absl::StatusOr<std::string> ReadWholeFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(flag, ": cannot read '", path, "': ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The top-level fields in which two manifests differ, by name.
std::vector<std::string> DifferingFields(const v1::ExportManifest& a, const v1::ExportManifest& b) {
  std::vector<std::string> names;
  const google::protobuf::Descriptor* descriptor = v1::ExportManifest::descriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    google::protobuf::util::MessageDifferencer differencer;
    std::vector<const google::protobuf::FieldDescriptor*> only = {field};
    if (!differencer.CompareWithFields(a, b, only, only)) names.push_back(field->name());
  }
  return names;
}

}  // namespace

absl::Status RunReportExport(Invocation& inv) {
  const FlagValues& flags = inv.flags();
  const std::string output = flags.Get("output");
  if (output.empty()) return UsageError("--output: must name a file, got ''");
  FS_ASSIGN_OR_RETURN(v1::ExportRequest request, ExportRequestFrom(flags, output));

  ExportProgress::Style style = ExportProgress::kQuiet;
  if (!inv.json()) {
    if (inv.err_is_tty()) {
      style = ExportProgress::kBar;
    } else if (flags.Has("progress")) {
      style = ExportProgress::kLines;
    }
  }
  ExportProgress progress(inv.err(), style);

  PartFile file(output);
  if (absl::Status opened = file.Open(); !opened.ok()) {
    return UsageError(absl::StrCat("--output: ", opened.message()));
  }
  report::HashingSink hashed(&file, kHashBlockBytes);
  // An export of millions of rows takes minutes: only a --timeout given bounds it.
  const absl::Duration deadline =
      inv.global_flags().Has("timeout") ? inv.options().timeout : absl::InfiniteDuration();

  std::optional<v1::ExportManifest> manifest;
  absl::Status write_status;
  int64_t rows_written = 0;
  int64_t rows_total = 0;
  CallCanceller canceller;
  absl::Status status;
  {
    InterruptHandler interrupt([&canceller] { canceller.Cancel(); });
    status = inv.ReadStream<v1::ExportRequest, v1::ExportChunk>(
        "export", &ReportStub::Export, request, deadline, canceller,
        [&](const v1::ExportChunk& chunk) {
          if (manifest.has_value()) {
            write_status = absl::DataLossError("export: the server sent data after the manifest");
            return false;
          }
          if (!chunk.data().empty()) {
            write_status = hashed.Write(chunk.data());
            if (!write_status.ok()) return false;
          }
          rows_written = chunk.rows_written();
          rows_total = chunk.rows_total();
          progress.Update(rows_written, rows_total, hashed.bytes());
          if (chunk.has_manifest()) manifest = chunk.manifest();
          return true;
        });
  }
  progress.Finish(rows_written, rows_total, hashed.bytes());
  const std::string unwritten = absl::StrCat("; nothing was written to ", output);
  if (canceller.cancelled()) {
    return absl::CancelledError(absl::StrCat("export: stopped (Ctrl-C) after ",
                                             Bytes(hashed.bytes()), unwritten));
  }
  if (!status.ok()) return absl::Status(status.code(), absl::StrCat(status.message(), unwritten));
  if (!write_status.ok()) {
    return absl::Status(write_status.code(), absl::StrCat(write_status.message(), unwritten));
  }
  if (!manifest.has_value()) {
    return absl::DataLossError(absl::StrCat(
        "export: the stream ended without a manifest after ", Bytes(hashed.bytes()), unwritten));
  }
  const std::string sha256 = hashed.Sha256Hex();
  if (hashed.bytes() != manifest->content_bytes() ||
      sha256 != absl::AsciiStrToLower(manifest->content_sha256())) {
    return absl::DataLossError(absl::StrCat(
        "export: received ", hashed.bytes(), " bytes with SHA-256 ", sha256,
        ", but the manifest says ", manifest->content_bytes(), " bytes with SHA-256 ",
        manifest->content_sha256(), unwritten));
  }
  FS_RETURN_IF_ERROR(file.Close());

  // The manifest goes beside the file, written the same way (complete or not at all).
  const std::string manifest_path = ManifestPathFor(output);
  PartFile manifest_file(manifest_path);
  FS_RETURN_IF_ERROR(manifest_file.Open());
  FS_RETURN_IF_ERROR(manifest_file.Write(ManifestToJson(*manifest)));
  FS_RETURN_IF_ERROR(manifest_file.Close());
  FS_RETURN_IF_ERROR(file.Commit());
  FS_RETURN_IF_ERROR(manifest_file.Commit());

  if (inv.json()) {
    PrintJson(inv.out(), *manifest);
    return absl::OkStatus();
  }
  inv.out() << "Wrote " << output << " (" << FormatLabel(manifest->format()) << ", "
            << RowSummary(*manifest) << ", " << Counted(manifest->content_bytes(), "byte")
            << ")\n"
            << "  sha256:   " << manifest->content_sha256() << "\n"
            << "  manifest: " << manifest_path << "\n"
            << "  export " << manifest->export_id() << ", cut at audit entry "
            << manifest->chain_head_seq() << "\n";
  return absl::OkStatus();
}

absl::Status RunReportVerify(Invocation& inv) {
  const std::string path = inv.arg(0);
  const std::string manifest_path =
      inv.flags().Has("manifest") ? inv.flags().Get("manifest") : ManifestPathFor(path);
  absl::StatusOr<std::string> manifest_text = ReadWholeFile("--manifest", manifest_path);
  if (!manifest_text.ok() && !inv.flags().Has("manifest")) {
    return absl::NotFoundError(absl::StrCat("report verify: no manifest at '", manifest_path,
                                            "' (name it with --manifest PATH)"));
  }
  FS_RETURN_IF_ERROR(manifest_text.status());
  absl::StatusOr<v1::ExportManifest> manifest = ParseManifestJson(*manifest_text);
  if (!manifest.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--manifest: '", manifest_path, "': ", manifest.status().message()));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(absl::StrCat("cannot read '", path, "': ", std::strerror(errno)));
  }
  FS_ASSIGN_OR_RETURN(ExportVerification v, VerifyExport(file, *manifest));
  std::vector<std::string> problems = v.problems;

  // Against the server: the export is on record as it is here, and the history up to the
  // export's cut is intact.
  const bool online = inv.flags().Has("online") || inv.global_flags().Has("server");
  std::string server_summary;
  if (online) {
    v1::GetExportManifestRequest get;
    get.set_export_id(manifest->export_id());
    v1::ExportManifest recorded;
    absl::Status got = inv.Call("get export manifest", &ReportStub::GetExportManifest, get,
                                &recorded);
    if (got.code() == absl::StatusCode::kNotFound) {
      problems.push_back(absl::StrCat("the server at ", inv.options().server,
                                      " has no record of export ", manifest->export_id()));
    } else if (!got.ok()) {
      return got;
    } else if (std::vector<std::string> fields = DifferingFields(*manifest, recorded);
               !fields.empty()) {
      problems.push_back(absl::StrCat("the server recorded export ", manifest->export_id(),
                                      " with another ", absl::StrJoin(fields, ", "),
                                      " than this manifest"));
    }
    v1::VerifyAuditChainRequest chain_request;
    chain_request.set_to_seq(manifest->chain_head_seq());
    v1::VerifyAuditChainResponse chain;
    if (manifest->chain_head_seq() > 0) {
      FS_RETURN_IF_ERROR(inv.Call("verify audit chain", &ReportStub::VerifyAuditChain,
                                  chain_request, &chain));
      if (!chain.ok()) {
        problems.push_back(absl::StrCat("the server's audit chain fails at entry ",
                                        chain.first_bad_seq(), ": ", chain.problem()));
      } else if (chain.head_seq() != manifest->chain_head_seq() ||
                 absl::AsciiStrToLower(chain.head_hash()) !=
                     absl::AsciiStrToLower(manifest->chain_head_hash())) {
        problems.push_back(absl::StrCat(
            "the server's audit chain at entry ", chain.head_seq(), " ends in hash ",
            chain.head_hash(), ", but the export was cut at entry ", manifest->chain_head_seq(),
            " with hash ", manifest->chain_head_hash(), ": its history was rewritten"));
      }
    }
    server_summary = absl::StrCat("the server at ", inv.options().server, " recorded export ",
                                  manifest->export_id(), " with this manifest, and its audit "
                                  "chain verifies up to entry ", manifest->chain_head_seq());
  }

  const bool ok = problems.empty();
  if (inv.json()) {
    google::protobuf::ListValue list;
    for (const std::string& problem : problems) list.add_values()->set_string_value(problem);
    JsonObject result;
    result.AddBool("ok", ok)
        .AddString("file", path)
        .AddString("manifest", manifest_path)
        .AddString("export_id", manifest->export_id())
        .AddInt("bytes", v.bytes)
        .AddString("sha256", v.sha256)
        .AddInt("rows", v.rows)
        .AddInt("audit_entries", v.audit_entries)
        .AddBool("checked_with_server", online)
        .AddInt("bad_block_from", v.bad_block_from)
        .AddInt("bad_block_to", v.bad_block >= 0 ? v.bad_block_to : 0)
        .AddInt("bad_block_line", v.bad_block_line)
        .AddInt("bad_seq", v.bad_seq)
        .AddInt("bad_seq_line", v.bad_seq_line)
        .AddMessage("problems", list);
    PrintJson(inv.out(), result);
  } else if (ok) {
    std::string what = v.rows >= 0 ? Counted(v.rows, "row") : RowSummary(*manifest);
    inv.out() << "OK: " << path << " matches its manifest (" << what << ", "
              << Counted(v.bytes, "byte") << ", sha256 " << v.sha256 << ")\n";
    if (v.audit_entries > 0) {
      inv.out() << "OK: audit trail: " << Counted(v.audit_entries, "entry", "entries")
                << " recomputed and linked, up to entry " << v.audit_last_seq << " (hash "
                << v.audit_last_hash << ")\n";
    }
    if (online) inv.out() << "OK: " << server_summary << "\n";
  } else {
    for (const std::string& problem : problems) {
      inv.out() << "FAILED: " << path << ": " << problem << "\n";
    }
  }
  if (ok) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrCat("report verify: ", path, " failed verification (",
                   Counted(static_cast<int64_t>(problems.size()), "problem"), ")"));
}

absl::Status RunAuditVerify(Invocation& inv) {
  v1::VerifyAuditChainRequest request;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (inv.flags().Has("from")) {
    FS_ASSIGN_OR_RETURN(int64_t from, ParseInt("from", inv.flags().Get("from"), 1, kMax));
    request.set_from_seq(from);
  }
  if (inv.flags().Has("to")) {
    FS_ASSIGN_OR_RETURN(int64_t to, ParseInt("to", inv.flags().Get("to"), 1, kMax));
    request.set_to_seq(to);
  }
  if (request.from_seq() > 0 && request.to_seq() > 0 && request.to_seq() < request.from_seq()) {
    return UsageError(absl::StrCat("--to: ", request.to_seq(), " is before --from ",
                                   request.from_seq()));
  }
  // Recomputing a long chain takes a while on the server.
  v1::VerifyAuditChainResponse response;
  FS_RETURN_IF_ERROR(
      inv.Call("verify audit chain", &ReportStub::VerifyAuditChain, request, &response));
  if (inv.json()) {
    PrintJson(inv.out(), response);
  } else if (response.ok()) {
    inv.out() << "OK: audit chain verified: "
              << Counted(response.entries_checked(), "entry", "entries") << " up to entry "
              << response.head_seq() << "\n"
              << "  head hash: " << response.head_hash() << "\n";
  } else {
    inv.out() << "FAILED: audit chain: entry " << response.first_bad_seq() << ": "
              << response.problem() << "\n"
              << "  checked " << Counted(response.entries_checked(), "entry", "entries")
              << " up to entry " << response.head_seq() << "\n";
  }
  if (response.ok()) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("audit verify: the chain fails at entry ",
                                          response.first_bad_seq()));
}

}  // namespace fieldsync::cli
