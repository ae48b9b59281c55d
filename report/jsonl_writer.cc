// JSON Lines: one object per row, keys in column order, typed values.
#include <cmath>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "internal.h"
#include "writers.h"

namespace fieldsync::report {

namespace {

// Appends `text` as a JSON string. Invalid UTF-8 bytes become U+FFFD so the line stays JSON.
void AppendJsonString(absl::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  while (!text.empty()) {
    const unsigned char c = static_cast<unsigned char>(text[0]);
    if (c >= 0x80) {
      internal::Utf8Char u = internal::DecodeUtf8(text);
      if (u.code_point < 0) {
        out->append(internal::kReplacementChar.data(), internal::kReplacementChar.size());
      } else {
        out->append(text.data(), u.length);
      }
      text.remove_prefix(u.length);
      continue;
    }
    text.remove_prefix(1);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void AppendJsonValue(const Cell& cell, std::string* out) {
  if (const auto* s = std::get_if<std::string>(&cell)) {
    // An empty text cell is null, as REPORTS.md and report.proto promise.
    if (s->empty()) {
      out->append("null");
    } else {
      AppendJsonString(*s, out);
    }
  } else if (const auto* i = std::get_if<int64_t>(&cell)) {
    absl::StrAppend(out, *i);
  } else if (const auto* d = std::get_if<double>(&cell)) {
    if (std::isfinite(*d)) {
      out->append(internal::DoubleText(*d));
    } else {
      out->append("null");
    }
  } else if (const auto* b = std::get_if<bool>(&cell)) {
    out->append(*b ? "true" : "false");
  } else {
    out->append("null");
  }
}

class JsonLinesWriter final : public TableWriter {
 public:
  explicit JsonLinesWriter(ByteSink* sink) : out_(sink) {}

  absl::Status BeginTable(const TableSchema& schema) override {
    if (finished_) return internal::OutOfOrder("JSONL", "BeginTable after Finish");
    if (schema_.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("format: JSONL holds one table, got a second (\"", schema.name,
                       "\" after \"", schema_->name, "\")"));
    }
    if (absl::Status s = internal::CheckSchema(schema); !s.ok()) return s;
    schema_ = schema;
    in_table_ = true;
    keys_.clear();
    for (const Column& column : schema.columns) {
      std::string key;
      AppendJsonString(column.name, &key);
      key.push_back(':');
      keys_.push_back(std::move(key));
    }
    return absl::OkStatus();
  }

  absl::Status WriteRow(absl::Span<const Cell> cells) override {
    if (!in_table_) return internal::OutOfOrder("JSONL", "WriteRow outside BeginTable/EndTable");
    if (absl::Status s = internal::CheckRow(*schema_, cells); !s.ok()) return s;
    line_.clear();
    line_.push_back('{');
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) line_.push_back(',');
      line_.append(keys_[i]);
      AppendJsonValue(cells[i], &line_);
    }
    line_.append("}\n");
    return out_.Append(line_);
  }

  absl::Status EndTable() override {
    if (!in_table_) return internal::OutOfOrder("JSONL", "EndTable without BeginTable");
    in_table_ = false;
    return out_.status();
  }

  absl::Status Finish() override {
    if (finished_) return internal::OutOfOrder("JSONL", "Finish called twice");
    if (in_table_) return internal::OutOfOrder("JSONL", "Finish before EndTable");
    finished_ = true;
    return out_.Flush();
  }

 private:
  internal::ChunkedOutput out_;
  std::optional<TableSchema> schema_;
  std::vector<std::string> keys_;  // "name": per column, escaped once
  bool in_table_ = false;
  bool finished_ = false;
  std::string line_;
};

}  // namespace

std::unique_ptr<TableWriter> NewJsonLinesWriter(ByteSink* sink) {
  return std::make_unique<JsonLinesWriter>(sink);
}

}  // namespace fieldsync::report
