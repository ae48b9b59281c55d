// What the CLI prints: aligned tables, "key: value" detail views and one-line JSON.
//
//   Table table({{"ID"}, {"TITLE", 40}, {"BUDGET", 0, Align::kRight}});
//   table.AddRow({p.id(), p.title(), FormatMoney(p.budget())});
//   table.Print(std::cout);
//
//   PrintJson(std::cout, project);     // {"id":"0190...","partner_id":...}
//   PrintDetails(std::cout, project);  // id:          0190...
//                                      // title:       Wells for Kisumu
#ifndef FIELDSYNC_CLI_OUTPUT_H_
#define FIELDSYNC_CLI_OUTPUT_H_

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "fieldsync/v1/domain.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"

namespace fieldsync::cli {

// Width of UTF-8 text on a terminal, counted in code points (good enough for the Latin, Khmer-free
// text we print; wide CJK characters count as one).
size_t DisplayWidth(absl::string_view text);

// `text` cut to at most `width` code points, the last one replaced by "…" when cut.
std::string Truncate(absl::string_view text, size_t width);

enum class Align { kLeft, kRight };

struct TableColumn {
  std::string header;
  // Longer cells are truncated with "…"; 0 never truncates (ids must stay whole).
  size_t max_width = 0;
  Align align = Align::kLeft;
};

// A table with a header row; column widths fit the widest cell. Cells are single-line (newlines
// and tabs become spaces).
class Table {
 public:
  explicit Table(std::vector<TableColumn> columns);
  // `cells` has one entry per column (missing ones are empty).
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }
  void Print(std::ostream& out) const;

 private:
  std::vector<TableColumn> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// `message` as protobuf JSON on one line: proto field names, every field present (defaults too),
// enums by name.
std::string ToJson(const google::protobuf::Message& message);
// ToJson() and a newline.
void PrintJson(std::ostream& out, const google::protobuf::Message& message);

// A JSON object built key by key, for results that are not one proto message (the state of a
// device, the outcome of a sync). Keys keep their order; numbers are JSON numbers.
//
//   PrintJson(out, JsonObject().AddString("device_id", id).AddInt("pending_changes", 3));
//   // {"device_id":"0190...","pending_changes":3}
class JsonObject {
 public:
  JsonObject& AddString(absl::string_view key, absl::string_view value);
  JsonObject& AddInt(absl::string_view key, int64_t value);
  JsonObject& AddBool(absl::string_view key, bool value);
  // `message` as ToJson() prints it.
  JsonObject& AddMessage(absl::string_view key, const google::protobuf::Message& message);
  // One line, no whitespace.
  std::string ToString() const;

 private:
  JsonObject& AddRaw(absl::string_view key, absl::string_view json);
  std::string body_;
};
void PrintJson(std::ostream& out, const JsonObject& object);

// "1 change", "2 changes"; `plural` instead of `noun` + "s" when given ("retries").
std::string Counted(int64_t n, absl::string_view noun, absl::string_view plural = "");

// `text` as a JSON string literal, quotes included; UTF-8 passes through.
std::string JsonQuote(absl::string_view text);

// Aligned "key: value" lines.
void PrintPairs(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& pairs);

// Every set field of `message` as "path: value" lines via PrintPairs, nested fields by dotted
// path ("well.quality_tests[0].tested_date"). Money prints in major units, timestamps in UTC,
// enums by their short label.
void PrintDetails(std::ostream& out, const google::protobuf::Message& message);

// "2024-05-01T12:30:00Z"; "" when unset (zero).
std::string FormatTimestamp(const google::protobuf::Timestamp& time);
// Unix milliseconds as "2024-05-01T12:30:00Z"; "" for 0.
std::string FormatUnixMillis(int64_t ms);
// "12,345.67 USD"; "" when no currency is set.
std::string FormatMoney(const v1::Money& money);
// Shortest text that reads back as the same number for ordinary values: "36.8219", "0.1", "45".
std::string FormatDouble(double value);
// `share` (0..1) as "87.5%".
std::string FormatPercent(double share);

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_OUTPUT_H_
