#include "cli/export_verify.h"

#include <openssl/evp.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/report/writer.h"
#include "fieldsync/v1/sync.pb.h"
#include "google/protobuf/util/json_util.h"
#include "server/change_log.h"
#include "server/reports.h"

namespace fieldsync::cli {
namespace {

constexpr size_t kReadBytes = 64 * 1024;
// Fields whose last value the old_value check remembers; beyond this many (an audit trail of
// millions of documents) fields first seen are no longer remembered, so the check thins out
// instead of the verifier's memory growing without bound.
constexpr size_t kMaxRememberedFields = 2'000'000;

// Incremental SHA-256 (OpenSSL), hex output.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
  void Update(absl::string_view bytes) { EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()); }
  std::string FinalHex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest, &length);
    EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
    return absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(digest), length));
  }

 private:
  struct Free {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

absl::Status Rewind(std::istream& in) {
  in.clear();
  in.seekg(0);
  if (!in) return absl::DataLossError("cannot read the file from its start again");
  return absl::OkStatus();
}

// "1,234,567".
std::string Grouped(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return n < 0 ? absl::StrCat("-", out) : out;
}

// --- Pass 1: the bytes -----------------------------------------------------------------------

absl::Status CheckBytes(std::istream& in, const v1::ExportManifest& manifest,
                        ExportVerification& v) {
  const int64_t block_bytes = manifest.block_bytes();
  Sha256 whole;
  Sha256 block;
  std::vector<std::string> blocks;
  std::vector<int64_t> block_lines;  // line on which each block starts
  int64_t in_block = 0;
  int64_t line = 1;
  std::string buffer(kReadBytes, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    absl::string_view data(buffer.data(), static_cast<size_t>(got));
    whole.Update(data);
    v.bytes += got;
    while (!data.empty()) {
      if (block_bytes <= 0) {
        line += std::count(data.begin(), data.end(), '\n');
        break;
      }
      if (in_block == 0) block_lines.push_back(line);
      const size_t take =
          static_cast<size_t>(std::min<int64_t>(block_bytes - in_block, data.size()));
      absl::string_view piece = data.substr(0, take);
      block.Update(piece);
      line += std::count(piece.begin(), piece.end(), '\n');
      in_block += static_cast<int64_t>(take);
      data.remove_prefix(take);
      if (in_block == block_bytes) {
        blocks.push_back(block.FinalHex());
        in_block = 0;
      }
    }
  }
  if (in.bad()) return absl::DataLossError("read error");
  if (in_block > 0) blocks.push_back(block.FinalHex());
  v.sha256 = whole.FinalHex();

  const bool size_ok = v.bytes == manifest.content_bytes();
  const bool sha_ok = absl::AsciiStrToLower(manifest.content_sha256()) == v.sha256;
  if (size_ok && sha_ok) return absl::OkStatus();

  const auto& expected = manifest.block_sha256();
  const size_t common = std::min<size_t>(blocks.size(), static_cast<size_t>(expected.size()));
  for (size_t i = 0; i < common; ++i) {
    if (absl::AsciiStrToLower(expected[static_cast<int>(i)]) == blocks[i]) continue;
    v.bad_block = static_cast<int64_t>(i);
    v.bad_block_from = static_cast<int64_t>(i) * block_bytes;
    v.bad_block_to = std::min(v.bad_block_from + block_bytes, v.bytes);
    v.bad_block_line = block_lines[i];
    break;
  }
  std::string where;
  if (v.bad_block >= 0) {
    where = absl::StrCat("the first change is in bytes ", Grouped(v.bad_block_from), "-",
                         Grouped(v.bad_block_to - 1), " (block ", v.bad_block + 1, " of ",
                         expected.size(), ", starting at line ", v.bad_block_line, ")");
  } else if (v.bytes < manifest.content_bytes()) {
    where = absl::StrCat("it ends early: bytes ", Grouped(v.bytes), "-",
                         Grouped(manifest.content_bytes() - 1), " are missing");
  } else if (v.bytes > manifest.content_bytes()) {
    where = absl::StrCat(Grouped(v.bytes - manifest.content_bytes()),
                         " bytes were added after byte ", Grouped(manifest.content_bytes()),
                         " (line ", line, " is the last)");
  } else if (block_bytes <= 0 || expected.empty()) {
    where = "the manifest has no block hashes to say where";
  } else {
    where = "every block matches, but the whole does not: the manifest contradicts itself";
  }
  if (!size_ok) {
    v.problems.push_back(absl::StrCat("the file has ", Grouped(v.bytes),
                                      " bytes, the manifest says ",
                                      Grouped(manifest.content_bytes()), "; ", where));
  } else {
    v.problems.push_back(absl::StrCat("the file's SHA-256 is ", v.sha256, ", the manifest says ",
                                      manifest.content_sha256(), "; ", where));
  }
  return absl::OkStatus();
}

// --- Pass 2: rows and the audit chain --------------------------------------------------------

// The columns of an audit-trail row the checks read; text as it was before CSV neutralising.
struct AuditRow {
  int64_t line = 0;
  std::string seq, server_time_us, actor_id, device_id, device_seq, hlc, collection, doc_id, op,
      field, old_value, new_value, outcome, prev_hash, hash, payload_b64;
};

constexpr const char* kAuditColumns[] = {
    "seq",   "server_time_us", "actor_id",  "device_id", "device_seq", "hlc",
    "collection", "doc_id",    "op",        "field",     "old_value",  "new_value",
    "outcome",    "prev_hash", "hash",      "payload_b64"};
constexpr size_t kAuditColumnCount = sizeof(kAuditColumns) / sizeof(kAuditColumns[0]);

// The members of AuditRow in the order of kAuditColumns.
std::string AuditRow::*const kAuditMembers[] = {
    &AuditRow::seq,        &AuditRow::server_time_us, &AuditRow::actor_id,  &AuditRow::device_id,
    &AuditRow::device_seq, &AuditRow::hlc,            &AuditRow::collection, &AuditRow::doc_id,
    &AuditRow::op,         &AuditRow::field,          &AuditRow::old_value, &AuditRow::new_value,
    &AuditRow::outcome,    &AuditRow::prev_hash,      &AuditRow::hash,      &AuditRow::payload_b64};
static_assert(sizeof(kAuditMembers) / sizeof(kAuditMembers[0]) == kAuditColumnCount);

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(c)) return false;
  }
  return true;
}

// True when the filter keeps whole ranges of the change log (no per-project selection), so
// that consecutive entries of the export must have consecutive seqs.
bool KeepsWholeRanges(const v1::ReportFilter& f) {
  return f.country().empty() && f.partner_id().empty() && f.project_id().empty() &&
         f.project_kind() == v1::PROJECT_KIND_UNSPECIFIED;
}

bool NoFilter(const v1::ReportFilter& f) {
  return KeepsWholeRanges(f) && f.from_date().empty() && f.to_date().empty();
}

// Checks entries as their rows arrive, in file order.
class AuditChainChecker {
 public:
  AuditChainChecker(const v1::ExportManifest& manifest, ExportVerification& v)
      : manifest_(manifest), v_(v) {}

  void AddRow(AuditRow row) {
    if (!rows_.empty() && row.seq != rows_.front().seq) FinishEntry();
    rows_.push_back(std::move(row));
  }

  void Finish() {
    if (!rows_.empty()) FinishEntry();
    if (!NoFilter(manifest_.filter())) return;
    if (v_.audit_entries == 0) {
      if (manifest_.chain_head_seq() > 0) {
        Problem(0, 0, absl::StrCat("the audit trail is empty, but the export was cut at entry ",
                                   manifest_.chain_head_seq()));
      }
      return;
    }
    if (last_seq_ != manifest_.chain_head_seq()) {
      Problem(last_seq_, last_line_,
              absl::StrCat("the audit trail ends at entry ", last_seq_,
                           ", but the export was cut at entry ", manifest_.chain_head_seq(),
                           " (entries after it are missing)"));
    } else if (last_hash_ != absl::AsciiStrToLower(manifest_.chain_head_hash())) {
      Problem(last_seq_, last_line_,
              absl::StrCat("entry ", last_seq_, "'s hash ", last_hash_,
                           " differs from the manifest's chain head hash ",
                           manifest_.chain_head_hash()));
    }
  }

 private:
  void Problem(int64_t seq, int64_t line, std::string text) {
    if (v_.bad_seq == 0 && seq > 0) {
      v_.bad_seq = seq;
      v_.bad_seq_line = line;
    }
    // A tampered trail can fail on every entry after the first bad one; the first few say it.
    if (++problems_ <= kMaxProblems) {
      v_.problems.push_back(std::move(text));
    } else if (problems_ == kMaxProblems + 1) {
      v_.problems.push_back("(further audit-trail problems not listed)");
    }
  }

  // "entry 57 (line 130)".
  static std::string Name(int64_t seq, int64_t line) {
    return absl::StrCat("entry ", seq, " (line ", line, ")");
  }

  void FinishEntry() {
    std::vector<AuditRow> rows = std::move(rows_);
    rows_.clear();
    const AuditRow& first = rows.front();
    const int64_t line = first.line;
    int64_t seq = 0;
    if (!absl::SimpleAtoi(first.seq, &seq) || seq <= 0) {
      Problem(0, line, absl::StrCat("line ", line, ": seq '", first.seq, "' is not a number"));
      return;
    }
    const std::string name = Name(seq, line);
    ++v_.audit_entries;

    // Rows of one entry repeat its entry columns; only payload_b64 is on the first row alone.
    for (size_t r = 1; r < rows.size(); ++r) {
      for (size_t c = 0; c < kAuditColumnCount; ++c) {
        const std::string column = kAuditColumns[c];
        if (column == "field" || column == "old_value" || column == "new_value" ||
            column == "outcome") {
          continue;
        }
        if (column == "payload_b64") {
          if (!rows[r].payload_b64.empty()) {
            Problem(seq, line,
                    absl::StrCat(name, ": line ", rows[r].line,
                                 " repeats payload_b64, which only the entry's first row holds"));
          }
          continue;
        }
        if (rows[r].*kAuditMembers[c] != first.*kAuditMembers[c]) {
          Problem(seq, line, absl::StrCat(name, ": line ", rows[r].line, " has another ", column,
                                          " than the entry's first row"));
        }
      }
    }

    server::ChangeLogEntry entry;
    entry.seq = seq;
    entry.collection = first.collection;
    entry.doc_id = first.doc_id;
    entry.op = first.op;
    entry.actor_id = first.actor_id;
    entry.device_id = first.device_id;
    entry.hlc = first.hlc;
    int64_t micros = 0;
    if (!first.device_seq.empty() && !absl::SimpleAtoi(first.device_seq, &entry.device_seq)) {
      Problem(seq, line, absl::StrCat(name, ": device_seq '", first.device_seq,
                                      "' is not a number"));
    }
    if (!absl::SimpleAtoi(first.server_time_us, &micros)) {
      Problem(seq, line, absl::StrCat(name, ": server_time_us '", first.server_time_us,
                                      "' is not a number"));
    }
    entry.server_time = absl::FromUnixMicros(micros);
    if (!absl::Base64Unescape(first.payload_b64, &entry.payload)) {
      Problem(seq, line, absl::StrCat(name, ": payload_b64 is not base64"));
    }
    const std::string prev_hash = absl::AsciiStrToLower(first.prev_hash);
    const std::string hash = absl::AsciiStrToLower(first.hash);
    if (!IsHex64(prev_hash) || !IsHex64(hash)) {
      Problem(seq, line, absl::StrCat(name, ": prev_hash and hash must be 64 hex digits"));
    } else if (server::ChainHash(prev_hash, entry) != hash) {
      Problem(seq, line, absl::StrCat(name, ": hash does not match its content (", first.collection,
                                      " ", first.doc_id, ", ", first.op, ")"));
    }

    // The link to the entry before.
    if (last_seq_ == 0) {
      if (seq == 1 && prev_hash != server::kGenesisHash) {
        Problem(seq, line, absl::StrCat(name, ": the first entry's prev_hash must be 64 zeros"));
      } else if (seq > 1 && NoFilter(manifest_.filter())) {
        Problem(seq, line, absl::StrCat(name, ": entries 1..", seq - 1, " are missing"));
      }
    } else if (seq <= last_seq_) {
      Problem(seq, line, absl::StrCat(name, ": out of order, after entry ", last_seq_));
    } else if (seq == last_seq_ + 1) {
      if (prev_hash != last_hash_) {
        Problem(seq, line, absl::StrCat(name, ": prev_hash differs from entry ", last_seq_,
                                        "'s hash"));
      }
    } else if (KeepsWholeRanges(manifest_.filter())) {
      Problem(seq, line,
              absl::StrCat(name, ": entries ", last_seq_ + 1, "..", seq - 1, " are missing"));
    }
    last_seq_ = seq;
    last_hash_ = hash;
    last_line_ = line;
    v_.audit_last_seq = seq;
    v_.audit_last_hash = hash;

    CheckFields(seq, name, entry, rows);
  }

  // For documents that sync (projects, sites, records) the payload is the v1::Change: one row
  // per field it set (in any order), each new_value the payload's value as text, each old_value
  // what the last accepted change of that field in this file left.
  void CheckFields(int64_t seq, const std::string& name, const server::ChangeLogEntry& entry,
                   const std::vector<AuditRow>& rows) {
    const std::string& collection = entry.collection;
    if (collection != "project" && collection != "site" && collection != "record") return;
    v1::Change change;
    if (!change.ParseFromString(entry.payload)) {
      Problem(seq, rows.front().line, absl::StrCat(name, ": the payload is not a Change"));
      return;
    }
    std::vector<std::string> paths;
    for (const v1::FieldChange& f : change.fields()) paths.push_back(f.path());
    std::sort(paths.begin(), paths.end());
    std::vector<std::string> row_fields;
    for (const AuditRow& row : rows) row_fields.push_back(row.field);
    std::sort(row_fields.begin(), row_fields.end());
    const std::vector<std::string> expected =
        paths.empty() ? std::vector<std::string>{""} : paths;
    if (row_fields != expected) {
      Problem(seq, rows.front().line,
              absl::StrCat(name, ": its rows name the fields [", absl::StrJoin(row_fields, ", "),
                           "], its payload [", absl::StrJoin(paths, ", "), "]"));
      return;
    }
    std::map<std::string, const v1::FieldChange*> by_path;
    for (const v1::FieldChange& f : change.fields()) by_path[f.path()] = &f;
    for (const AuditRow& row : rows) {
      if (row.field.empty()) continue;
      // The new value is the payload's, shown as the server shows field values.
      if (auto f = by_path.find(row.field); f != by_path.end()) {
        const std::string shown =
            server::FieldValueText(collection, row.field, f->second->value());
        if (shown != row.new_value) {
          Problem(seq, row.line,
                  absl::StrCat(name, ": new_value of ", row.field, " on line ", row.line, " is '",
                               row.new_value, "', but its payload says '", shown, "'"));
        }
      }
      // A refused change (docs/SYNC.md) changed nothing: no old value, and what it sent is not
      // what the field holds after it.
      if (entry.op == "reject") {
        if (row.outcome != "refused" || !row.old_value.empty()) {
          Problem(seq, row.line,
                  absl::StrCat(name, ": a refused change must show outcome 'refused' and no "
                                     "old value, line ",
                               row.line));
        }
        continue;
      }
      std::string key = absl::StrCat(collection, "\x1f", entry.doc_id, "\x1f", row.field);
      auto it = current_.find(key);
      if (it != current_.end() && it->second.value != row.old_value) {
        Problem(seq, row.line,
                absl::StrCat(name, ": old_value of ", row.field, " on line ", row.line, " is '",
                             row.old_value, "', but entry ", it->second.seq, " left '",
                             it->second.value, "'"));
      }
      if (row.outcome == "lost") continue;
      if (it != current_.end()) {
        it->second = {seq, row.new_value};
      } else if (current_.size() < kMaxRememberedFields) {
        current_.emplace(std::move(key), Value{seq, row.new_value});
      }
    }
  }

  static constexpr int kMaxProblems = 10;
  struct Value {
    int64_t seq;
    std::string value;
  };

  const v1::ExportManifest& manifest_;
  ExportVerification& v_;
  std::vector<AuditRow> rows_;
  int64_t last_seq_ = 0;
  std::string last_hash_;
  int64_t last_line_ = 0;
  int problems_ = 0;
  std::unordered_map<std::string, Value> current_;
};

// Indices of the audit columns in a header; missing columns are named in `missing`.
std::vector<int> AuditColumnIndices(const std::vector<std::string>& header,
                                    std::vector<std::string>& missing) {
  std::vector<int> indices(kAuditColumnCount, -1);
  for (size_t c = 0; c < kAuditColumnCount; ++c) {
    auto it = std::find(header.begin(), header.end(), kAuditColumns[c]);
    if (it == header.end()) {
      missing.push_back(kAuditColumns[c]);
    } else {
      indices[c] = static_cast<int>(it - header.begin());
    }
  }
  return indices;
}

int64_t ManifestRows(const v1::ExportManifest& manifest) {
  int64_t rows = 0;
  for (const v1::TableRowCount& count : manifest.row_counts()) rows += count.rows();
  return rows;
}

bool IsAuditTrail(const v1::ExportManifest& manifest) {
  return manifest.tables_size() == 1 && manifest.tables(0) == v1::REPORT_TABLE_AUDIT_TRAIL;
}

absl::Status CheckCsvRows(std::istream& in, const v1::ExportManifest& manifest,
                          ExportVerification& v) {
  CsvReader reader(in);
  std::vector<std::string> fields;
  absl::StatusOr<bool> more = reader.Next(&fields);
  if (!more.ok()) {
    v.problems.push_back(std::string(more.status().message()));
    return absl::OkStatus();
  }
  v.rows = 0;
  if (!*more) return absl::OkStatus();  // not even a header: the row count says the rest
  const bool audit = IsAuditTrail(manifest);
  std::vector<int> indices;
  std::optional<AuditChainChecker> chain;
  if (audit) {
    std::vector<std::string> missing;
    indices = AuditColumnIndices(fields, missing);
    if (!missing.empty()) {
      v.problems.push_back(absl::StrCat("the audit trail has no column ",
                                        absl::StrJoin(missing, ", ")));
    } else {
      chain.emplace(manifest, v);
    }
  }
  const size_t columns = fields.size();
  while (true) {
    more = reader.Next(&fields);
    if (!more.ok()) {
      v.problems.push_back(std::string(more.status().message()));
      return absl::OkStatus();
    }
    if (!*more) break;
    ++v.rows;
    if (fields.size() != columns) {
      v.problems.push_back(absl::StrCat("line ", reader.record_line(), ": ", fields.size(),
                                        " cells, the header has ", columns));
      chain.reset();
      continue;
    }
    if (chain.has_value()) {
      AuditRow row;
      row.line = reader.record_line();
      for (size_t c = 0; c < kAuditColumnCount; ++c) {
        row.*kAuditMembers[c] = report::UnneutraliseText(fields[static_cast<size_t>(indices[c])]);
      }
      chain->AddRow(std::move(row));
    }
  }
  if (chain.has_value()) chain->Finish();
  return absl::OkStatus();
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Reads one JSON object whose values are all scalars (a JSON Lines row), as key -> the text the
// CSV would hold: strings unescaped, numbers as written, true/false, "" for null. False when the
// line is not such an object. (A general JSON parser is several times slower on long trails.)
class FlatJsonObject {
 public:
  explicit FlatJsonObject(absl::string_view text) : s_(text) {}

  bool Parse(std::map<std::string, std::string>& out) {
    out.clear();
    SkipSpace();
    if (!Eat('{')) return false;
    SkipSpace();
    if (Eat('}')) return AtEnd();
    while (true) {
      std::string key, value;
      SkipSpace();
      if (!String(key)) return false;
      SkipSpace();
      if (!Eat(':')) return false;
      SkipSpace();
      if (!Value(value)) return false;
      out[std::move(key)] = std::move(value);
      SkipSpace();
      if (Eat(',')) continue;
      if (Eat('}')) return AtEnd();
      return false;
    }
  }

 private:
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool AtEnd() {
    SkipSpace();
    return i_ == s_.size();
  }
  bool Hex4(uint32_t& cp) {
    if (i_ + 4 > s_.size()) return false;
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      cp <<= 4;
      if (c >= '0' && c <= '9') {
        cp |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        cp |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        cp |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }
  bool String(std::string& out) {
    if (!Eat('"')) return false;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return true;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= s_.size()) return false;
      const char e = s_[i_++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF && i_ + 1 < s_.size() && s_[i_] == '\\' &&
              s_[i_ + 1] == 'u') {
            i_ += 2;
            uint32_t low = 0;
            if (!Hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }
  bool Value(std::string& out) {
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '"') return String(out);
    for (absl::string_view word : {absl::string_view("null"), absl::string_view("true"),
                                   absl::string_view("false")}) {
      if (s_.substr(i_, word.size()) == word) {
        i_ += word.size();
        if (word != "null") out = std::string(word);
        return true;
      }
    }
    const size_t start = i_;
    while (i_ < s_.size() && (absl::ascii_isdigit(s_[i_]) || s_[i_] == '-' || s_[i_] == '+' ||
                              s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
    }
    if (i_ == start) return false;  // an object, an array or garbage
    out = std::string(s_.substr(start, i_ - start));
    return true;
  }

  absl::string_view s_;
  size_t i_ = 0;
};

absl::Status CheckJsonLinesRows(std::istream& in, const v1::ExportManifest& manifest,
                                ExportVerification& v) {
  v.rows = 0;
  std::optional<AuditChainChecker> chain;
  if (IsAuditTrail(manifest)) chain.emplace(manifest, v);
  std::string line;
  int64_t number = 0;
  bool columns_checked = false;
  std::map<std::string, std::string> values;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    ++v.rows;
    if (!chain.has_value()) continue;
    if (!FlatJsonObject(line).Parse(values)) {
      v.problems.push_back(absl::StrCat("line ", number, ": not a JSON object of plain values"));
      chain.reset();
      continue;
    }
    if (!columns_checked) {
      columns_checked = true;
      std::vector<std::string> missing;
      for (const char* column : kAuditColumns) {
        if (values.find(column) == values.end()) missing.push_back(column);
      }
      if (!missing.empty()) {
        v.problems.push_back(absl::StrCat("the audit trail has no column ",
                                          absl::StrJoin(missing, ", ")));
        chain.reset();
        continue;
      }
    }
    AuditRow row;
    row.line = number;
    for (size_t c = 0; c < kAuditColumnCount; ++c) {
      auto it = values.find(kAuditColumns[c]);
      if (it != values.end()) row.*kAuditMembers[c] = std::move(it->second);
    }
    chain->AddRow(std::move(row));
  }
  if (in.bad()) return absl::DataLossError("read error");
  if (chain.has_value()) chain->Finish();
  return absl::OkStatus();
}

// Counts "<iati-activity" start tags (not "<iati-activities").
absl::Status CountIatiActivities(std::istream& in, ExportVerification& v) {
  const std::string kTag = "<iati-activity";
  v.rows = 0;
  std::string carry;
  std::string buffer(kReadBytes, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    std::string text = carry + buffer.substr(0, static_cast<size_t>(got));
    // A tag is counted once the byte after it is in `text`; the last kTag.size() bytes, where
    // a tag may be cut, are looked at again with the next read (no counted tag lies in them).
    for (size_t pos = text.find(kTag); pos != std::string::npos && pos + kTag.size() < text.size();
         pos = text.find(kTag, pos + 1)) {
      const char next = text[pos + kTag.size()];
      if (next == ' ' || next == '>' || next == '\n' || next == '\t' || next == '\r') ++v.rows;
    }
    carry = text.size() > kTag.size() ? text.substr(text.size() - kTag.size()) : text;
  }
  if (in.bad()) return absl::DataLossError("read error");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<bool> CsvReader::Next(std::vector<std::string>* fields) {
  fields->clear();
  std::streambuf* sb = in_.rdbuf();
  using Traits = std::char_traits<char>;
  int c = sb->sgetc();
  if (c == Traits::eof()) return false;
  record_line_ = line_;
  std::string field;
  while (true) {
    c = sb->sbumpc();
    if (c == '"' && field.empty()) {
      // A quoted field: up to the closing quote; "" is a quote.
      while (true) {
        c = sb->sbumpc();
        if (c == Traits::eof()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "line ", record_line_, ": a quoted field is not closed before the end of the file"));
        }
        if (c == '"') {
          if (sb->sgetc() == '"') {
            sb->sbumpc();
            field.push_back('"');
            continue;
          }
          break;
        }
        if (c == '\n') ++line_;
        field.push_back(static_cast<char>(c));
      }
      c = sb->sbumpc();
      if (c != ',' && c != '\r' && c != '\n' && c != Traits::eof()) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", line_, ": text after the closing quote of a field"));
      }
    } else {
      while (c != ',' && c != '\r' && c != '\n' && c != Traits::eof()) {
        if (c == '"') {
          return absl::InvalidArgumentError(
              absl::StrCat("line ", line_, ": a quote inside an unquoted field"));
        }
        field.push_back(static_cast<char>(c));
        c = sb->sbumpc();
      }
    }
    fields->push_back(std::move(field));
    field.clear();
    if (c == ',') continue;
    if (c == '\r') {
      if (sb->sgetc() == '\n') sb->sbumpc();
      ++line_;
    } else if (c == '\n') {
      ++line_;
    }
    return true;
  }
}

std::string ManifestToJson(const v1::ExportManifest& manifest) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.add_whitespace = true;
  std::string json;
  // A message of our own always serialises.
  (void)google::protobuf::util::MessageToJsonString(manifest, &json, options);
  return json;
}

absl::StatusOr<v1::ExportManifest> ParseManifestJson(absl::string_view json) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  v1::ExportManifest manifest;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &manifest, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an export manifest: ", status.message().as_string()));
  }
  if (manifest.content_sha256().empty()) {
    return absl::InvalidArgumentError("not an export manifest: content_sha256 is missing");
  }
  return manifest;
}

absl::StatusOr<ExportVerification> VerifyExport(std::istream& content,
                                                const v1::ExportManifest& manifest) {
  ExportVerification v;
  FS_RETURN_IF_ERROR(Rewind(content));
  FS_RETURN_IF_ERROR(CheckBytes(content, manifest, v));
  FS_RETURN_IF_ERROR(Rewind(content));
  switch (manifest.format()) {
    case v1::REPORT_FORMAT_CSV:
      FS_RETURN_IF_ERROR(CheckCsvRows(content, manifest, v));
      break;
    case v1::REPORT_FORMAT_JSONL:
      FS_RETURN_IF_ERROR(CheckJsonLinesRows(content, manifest, v));
      break;
    case v1::REPORT_FORMAT_IATI_XML:
      FS_RETURN_IF_ERROR(CountIatiActivities(content, v));
      break;
    default:
      break;  // XLSX: a zip; its bytes are checked, its rows are not counted
  }
  if (v.rows >= 0 && manifest.row_counts_size() > 0 && v.rows != ManifestRows(manifest)) {
    v.problems.push_back(absl::StrCat("the file holds ", Grouped(v.rows),
                                      " rows, the manifest says ", Grouped(ManifestRows(manifest))));
  }
  return v;
}

}  // namespace fieldsync::cli
