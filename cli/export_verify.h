// Offline verification of an export against its manifest: the bytes (SHA-256, length, and the
// block hashes that say where a file was changed), the row counts, and for an audit trail in CSV
// or JSON Lines the hash chain itself, entry by entry. No network, no server code beyond the
// chain's hash definition (server/change_log.h).
//
//   std::ifstream file("audit.csv", std::ios::binary);
//   FS_ASSIGN_OR_RETURN(v1::ExportManifest manifest, ParseManifestJson(manifest_text));
//   FS_ASSIGN_OR_RETURN(ExportVerification v, VerifyExport(file, manifest));
//   if (!v.ok()) for (const std::string& p : v.problems) std::cout << "FAILED: " << p << "\n";
//
// Every function here is pure (its inputs are streams and messages) and thread-compatible.
#ifndef FIELDSYNC_CLI_EXPORT_VERIFY_H_
#define FIELDSYNC_CLI_EXPORT_VERIFY_H_

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fieldsync/v1/report.pb.h"

namespace fieldsync::cli {

// Reads RFC 4180 CSV: records end in CRLF (a lone LF is accepted), fields are separated by
// commas, a quoted field may hold commas, "" for a quote, CR and LF. Cells are returned as they
// are in the file (no UnneutraliseText). Reads through the stream's buffer, one record at a
// time.
class CsvReader {
 public:
  explicit CsvReader(std::istream& in) : in_(in) {}
  // The next record into `fields`; false at the end of the input. INVALID_ARGUMENT naming the
  // line for a quote inside an unquoted field, text after a closing quote, or an unterminated
  // quoted field.
  absl::StatusOr<bool> Next(std::vector<std::string>* fields);
  // 1-based line on which the record last returned by Next() starts.
  int64_t record_line() const { return record_line_; }

 private:
  std::istream& in_;
  int64_t line_ = 1;
  int64_t record_line_ = 0;
};

// The manifest as the CLI stores it next to an export (FILE.manifest.json): protobuf JSON with
// proto field names, indented. ParseManifestJson accepts any protobuf JSON of an
// ExportManifest (unknown fields are ignored); INVALID_ARGUMENT when it is not one.
std::string ManifestToJson(const v1::ExportManifest& manifest);
absl::StatusOr<v1::ExportManifest> ParseManifestJson(absl::string_view json);

// What VerifyExport found.
struct ExportVerification {
  // Facts about the file as read.
  int64_t bytes = 0;
  std::string sha256;  // hex
  // Data rows counted in the file (CSV and JSON Lines: records after the header / lines;
  // IATI: activities); -1 when the format is not counted (XLSX).
  int64_t rows = -1;
  // For an audit-trail export: entries whose hash was recomputed, and the last one's seq/hash.
  int64_t audit_entries = 0;
  int64_t audit_last_seq = 0;
  std::string audit_last_hash;
  // Where the bytes first differ from the manifest's block hashes: the block's bytes
  // [from, to) and the 1-based line on which the block starts; block < 0 when no block differs
  // (or the manifest has no block hashes).
  int64_t bad_block = -1;
  int64_t bad_block_from = 0;
  int64_t bad_block_to = 0;
  int64_t bad_block_line = 0;
  // For an audit trail: the first entry whose hash, link or rows do not verify (0: none), and
  // the line of its first row.
  int64_t bad_seq = 0;
  int64_t bad_seq_line = 0;
  // One sentence per problem, the most telling first; empty when the file verifies.
  std::vector<std::string> problems;

  bool ok() const { return problems.empty(); }
};

// Reads `content` from its start, twice (it must be seekable, like a file or a string stream),
// and checks it against `manifest`:
// - length and SHA-256 against content_bytes and content_sha256; on a mismatch the first block
//   whose SHA-256 differs from block_sha256, with its byte range and starting line, and whether
//   bytes are missing or extra at the end;
// - for CSV and JSON Lines the number of data rows against row_counts, for IATI XML the number
//   of activities;
// - for an audit trail (table AUDIT_TRAIL in CSV or JSON Lines): each entry's hash recomputed
//   from its columns with the chain's definition (prev_hash from the row), each prev_hash
//   against the previous entry's hash, no missing seqs when the filter selects whole ranges of
//   the log (dates only), the rows of an entry agreeing with each other and with the fields its
//   payload names, each old_value equal to the value the previous entry of that field left, and
//   with no filter the last entry against chain_head_seq/chain_head_hash.
// Problems go into the result; an error status only when the stream cannot be read.
absl::StatusOr<ExportVerification> VerifyExport(std::istream& content,
                                                const v1::ExportManifest& manifest);

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_EXPORT_VERIFY_H_
