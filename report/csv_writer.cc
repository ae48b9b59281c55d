// CSV (RFC 4180) and the cell text it shares with the other formats.
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "internal.h"
#include "writers.h"

namespace fieldsync::report {

namespace {

// Characters that make a spreadsheet read a cell as a formula (or that hide one), and the
// apostrophe itself so that the escape stays reversible.
bool NeedsNeutralising(absl::string_view text) {
  if (text.empty()) return false;
  switch (text[0]) {
    case '=':
    case '+':
    case '-':
    case '@':
    case '\t':
    case '\r':
    case '\'':
      return true;
    default:
      return false;
  }
}

std::string NeutraliseText(absl::string_view text) {
  if (NeedsNeutralising(text)) return absl::StrCat("'", text);
  return std::string(text);
}

}  // namespace

std::string CellText(const Cell& cell) {
  struct Visitor {
    std::string operator()(std::monostate) const { return ""; }
    std::string operator()(const std::string& s) const { return NeutraliseText(s); }
    std::string operator()(int64_t v) const { return absl::StrCat(v); }
    std::string operator()(double v) const { return internal::DoubleText(v); }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
  };
  return std::visit(Visitor{}, cell);
}

std::string UnneutraliseText(absl::string_view csv_text) {
  if (csv_text.size() >= 2 && csv_text[0] == '\'' && NeedsNeutralising(csv_text.substr(1))) {
    return std::string(csv_text.substr(1));
  }
  return std::string(csv_text);
}

namespace {

// Appends `field` to `out`, quoted when it holds a comma, quote, CR or LF.
void AppendCsvField(absl::string_view field, std::string* out) {
  if (field.find_first_of(",\"\r\n") == absl::string_view::npos) {
    out->append(field.data(), field.size());
    return;
  }
  out->push_back('"');
  for (char c : field) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

class CsvWriter final : public TableWriter {
 public:
  explicit CsvWriter(ByteSink* sink) : out_(sink) {}

  absl::Status BeginTable(const TableSchema& schema) override {
    if (finished_) return internal::OutOfOrder("CSV", "BeginTable after Finish");
    if (schema_.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("format: CSV holds one table, got a second (\"", schema.name, "\" after \"",
                       schema_->name, "\")"));
    }
    if (absl::Status s = internal::CheckSchema(schema); !s.ok()) return s;
    schema_ = schema;
    in_table_ = true;
    std::string line;
    for (size_t i = 0; i < schema.columns.size(); ++i) {
      if (i > 0) line.push_back(',');
      AppendCsvField(NeutraliseText(schema.columns[i].name), &line);
    }
    line.append("\r\n");
    return out_.Append(line);
  }

  absl::Status WriteRow(absl::Span<const Cell> cells) override {
    if (!in_table_) return internal::OutOfOrder("CSV", "WriteRow outside BeginTable/EndTable");
    if (absl::Status s = internal::CheckRow(*schema_, cells); !s.ok()) return s;
    line_.clear();
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) line_.push_back(',');
      AppendCsvField(CellText(cells[i]), &line_);
    }
    line_.append("\r\n");
    return out_.Append(line_);
  }

  absl::Status EndTable() override {
    if (!in_table_) return internal::OutOfOrder("CSV", "EndTable without BeginTable");
    in_table_ = false;
    return out_.status();
  }

  absl::Status Finish() override {
    if (finished_) return internal::OutOfOrder("CSV", "Finish called twice");
    if (in_table_) return internal::OutOfOrder("CSV", "Finish before EndTable");
    finished_ = true;
    return out_.Flush();
  }

 private:
  internal::ChunkedOutput out_;
  std::optional<TableSchema> schema_;
  bool in_table_ = false;
  bool finished_ = false;
  std::string line_;
};

}  // namespace

std::unique_ptr<TableWriter> NewCsvWriter(ByteSink* sink) {
  return std::make_unique<CsvWriter>(sink);
}

}  // namespace fieldsync::report
