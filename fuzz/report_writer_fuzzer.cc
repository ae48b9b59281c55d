// The report writers fed untrusted text: partner names, site names, descriptions and every other
// free-text field a device or HQ user typed end up in CSV, JSON Lines and IATI XML exports.
//
// Input: consumed with FuzzedDataProvider: the format, a schema of typed columns and rows of
// cells (CSV, JSONL), or IATI activities with every text field fuzzed.
//
// Checked, by independent readers written here (and libxml2 for XML):
// - CSV: parses (RFC 4180) into the header and the same number of rows and columns; every text
//   cell reads back, after UnneutraliseText, as the very bytes written; no cell starts with a
//   formula character unless neutralised; other cells read back as CellText.
// - JSON Lines: every line is one valid JSON object, valid UTF-8, with the columns as keys in
//   order; text that was valid UTF-8 decodes to the same bytes; numbers parse to the same value.
// - IATI: the document is well-formed XML that libxml2 parses without error.
#include <fuzzer/FuzzedDataProvider.h>
#include <libxml/parser.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fieldsync/report/writer.h"

namespace fieldsync::fuzz {
namespace {

using report::Cell;
using report::CellType;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "report_writer_fuzzer: %s\n", what.c_str());
  std::abort();
}

// --- UTF-8 and JSON, written independently of report/ -------------------------------------------

bool ValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int n;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + n >= s.size()) return false;  // cut short
    for (int k = 1; k <= n; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A JSON value as this checker sees it.
struct JsonValue {
  enum Kind { kNull, kBool, kNumber, kString, kOther } kind = kNull;
  std::string text;  // string contents (decoded) or the number's literal
};

class JsonReader {
 public:
  explicit JsonReader(absl::string_view s) : s_(s) {}

  // One object of scalar values: its keys and values in order. False if not valid JSON.
  bool ReadObject(std::vector<std::pair<std::string, JsonValue>>* members) {
    Space();
    if (!Eat('{')) return false;
    Space();
    if (Eat('}')) return AtEnd();
    while (true) {
      Space();
      JsonValue key;
      if (!String(&key.text)) return false;
      Space();
      if (!Eat(':')) return false;
      Space();
      JsonValue value;
      if (!Value(&value)) return false;
      members->emplace_back(key.text, value);
      Space();
      if (Eat(',')) continue;
      if (Eat('}')) return AtEnd();
      return false;
    }
  }

 private:
  bool AtEnd() {
    Space();
    return i_ == s_.size();
  }
  void Space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool Literal(absl::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  bool Value(JsonValue* v) {
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    if (c == '"') {
      v->kind = JsonValue::kString;
      return String(&v->text);
    }
    if (c == 'n') return v->kind = JsonValue::kNull, Literal("null");
    if (c == 't') return v->kind = JsonValue::kBool, v->text = "true", Literal("true");
    if (c == 'f') return v->kind = JsonValue::kBool, v->text = "false", Literal("false");
    v->kind = JsonValue::kNumber;
    return Number(&v->text);
  }
  bool Digits() {
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }
  bool Number(std::string* text) {
    size_t start = i_;
    Eat('-');
    if (Eat('0')) {
    } else if (!Digits()) {
      return false;
    }
    if (Eat('.') && !Digits()) return false;
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (!Eat('+')) Eat('-');
      if (!Digits()) return false;
    }
    *text = std::string(s_.substr(start, i_ - start));
    return true;
  }
  bool Hex4(uint32_t* out) {
    if (i_ + 4 > s_.size()) return false;
    *out = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      int d = (c >= '0' && c <= '9') ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (d < 0) return false;
      *out = *out * 16 + d;
    }
    return true;
  }
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    out->clear();
    while (i_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;  // raw control characters are not allowed in JSON strings
      if (c != '\\') {
        out->push_back(static_cast<char>(c));
        continue;
      }
      if (i_ >= s_.size()) return false;
      char e = s_[i_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (!Literal("\\u") || !Hex4(&lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return false;
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

  absl::string_view s_;
  size_t i_ = 0;
};

// --- CSV, RFC 4180 ------------------------------------------------------------------------------

// Records of `csv`, each ended by CRLF. False if malformed.
bool ParseCsv(absl::string_view csv, std::vector<std::vector<std::string>>* records) {
  size_t i = 0;
  while (i < csv.size()) {
    std::vector<std::string> record;
    while (true) {
      std::string field;
      if (i < csv.size() && csv[i] == '"') {
        ++i;
        while (true) {
          if (i >= csv.size()) return false;
          if (csv[i] == '"') {
            if (i + 1 < csv.size() && csv[i + 1] == '"') {
              field.push_back('"');
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          field.push_back(csv[i++]);
        }
      } else {
        while (i < csv.size() && csv[i] != ',' && csv[i] != '\r' && csv[i] != '\n') {
          if (csv[i] == '"') return false;  // a quote inside an unquoted field
          field.push_back(csv[i++]);
        }
      }
      record.push_back(std::move(field));
      if (i < csv.size() && csv[i] == ',') {
        ++i;
        continue;
      }
      if (csv.substr(i, 2) != "\r\n") return false;
      i += 2;
      break;
    }
    records->push_back(std::move(record));
  }
  return true;
}

// --- Inputs -------------------------------------------------------------------------------------

Cell FuzzCell(FuzzedDataProvider& in, CellType type) {
  if (in.ConsumeIntegralInRange<int>(0, 9) == 0) return std::monostate();
  switch (type) {
    case CellType::kText:
    case CellType::kDate:
    case CellType::kTimestamp:
      return in.ConsumeRandomLengthString(64);
    case CellType::kInteger:
      return in.ConsumeIntegral<int64_t>();
    case CellType::kNumber:
      switch (in.ConsumeIntegralInRange<int>(0, 5)) {
        case 0: return std::numeric_limits<double>::quiet_NaN();
        case 1: return std::numeric_limits<double>::infinity();
        case 2: return in.ConsumeIntegral<int64_t>();
        default: return in.ConsumeFloatingPoint<double>();
      }
    case CellType::kBool:
      return in.ConsumeBool();
  }
  return std::monostate();
}

report::TableSchema FuzzSchema(FuzzedDataProvider& in) {
  report::TableSchema schema;
  schema.name = "fuzzed";
  int columns = in.ConsumeIntegralInRange<int>(1, 6);
  for (int i = 0; i < columns; ++i) {
    CellType type = static_cast<CellType>(in.ConsumeIntegralInRange<int>(0, 5));
    schema.columns.push_back({absl::StrCat("c", i), type});
  }
  return schema;
}

void CheckCsv(FuzzedDataProvider& in) {
  report::StringSink sink;
  absl::StatusOr<std::unique_ptr<report::TableWriter>> writer =
      report::NewTableWriter(v1::REPORT_FORMAT_CSV, &sink, "/nonexistent");
  if (!writer.ok()) Fail(writer.status().ToString());
  report::TableSchema schema = FuzzSchema(in);
  if (!(*writer)->BeginTable(schema).ok()) Fail("BeginTable refused a good schema");
  std::vector<std::vector<Cell>> rows;
  int n = in.ConsumeIntegralInRange<int>(0, 8);
  for (int r = 0; r < n; ++r) {
    std::vector<Cell> row;
    for (const report::Column& c : schema.columns) row.push_back(FuzzCell(in, c.type));
    absl::Status s = (*writer)->WriteRow(row);
    if (!s.ok()) Fail(absl::StrCat("CSV WriteRow refused a row of the right types: ", s.ToString()));
    rows.push_back(std::move(row));
  }
  if (!(*writer)->EndTable().ok() || !(*writer)->Finish().ok()) Fail("CSV EndTable/Finish");
  std::vector<std::vector<std::string>> records;
  if (!ParseCsv(sink.data(), &records)) Fail("the CSV does not parse");
  if (records.size() != rows.size() + 1) {
    Fail(absl::StrCat("CSV has ", records.size(), " records for ", rows.size(), " rows + header"));
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    const std::vector<std::string>& got = records[r + 1];
    if (got.size() != schema.columns.size()) Fail(absl::StrCat("CSV row ", r, " column count"));
    for (size_t c = 0; c < got.size(); ++c) {
      const Cell& cell = rows[r][c];
      if (!got[c].empty() && std::string("=+-@\t\r").find(got[c][0]) != std::string::npos) {
        // A formula character may start only a number ("-5").
        if (!std::holds_alternative<int64_t>(cell) && !std::holds_alternative<double>(cell)) {
          Fail(absl::StrCat("CSV cell ", r, ",", c, " starts with a formula character"));
        }
      }
      if (const auto* text = std::get_if<std::string>(&cell)) {
        if (report::UnneutraliseText(got[c]) != *text) {
          Fail(absl::StrCat("CSV text cell ", r, ",", c, " does not read back"));
        }
      } else if (got[c] != report::CellText(cell)) {
        Fail(absl::StrCat("CSV cell ", r, ",", c, " reads back as ", got[c]));
      }
    }
  }
}

void CheckJsonLines(FuzzedDataProvider& in) {
  report::StringSink sink;
  absl::StatusOr<std::unique_ptr<report::TableWriter>> writer =
      report::NewTableWriter(v1::REPORT_FORMAT_JSONL, &sink, "/nonexistent");
  if (!writer.ok()) Fail(writer.status().ToString());
  report::TableSchema schema = FuzzSchema(in);
  if (!(*writer)->BeginTable(schema).ok()) Fail("BeginTable refused a good schema");
  std::vector<std::vector<Cell>> rows;
  int n = in.ConsumeIntegralInRange<int>(0, 8);
  for (int r = 0; r < n; ++r) {
    std::vector<Cell> row;
    for (const report::Column& c : schema.columns) row.push_back(FuzzCell(in, c.type));
    absl::Status s = (*writer)->WriteRow(row);
    if (!s.ok()) Fail(absl::StrCat("JSONL WriteRow refused a row: ", s.ToString()));
    rows.push_back(std::move(row));
  }
  if (!(*writer)->EndTable().ok() || !(*writer)->Finish().ok()) Fail("JSONL EndTable/Finish");
  const std::string& out = sink.data();
  if (!ValidUtf8(out)) Fail("JSON Lines output is not valid UTF-8");
  std::vector<absl::string_view> lines;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) Fail("the last JSON line has no newline");
    lines.push_back(absl::string_view(out).substr(start, end - start));
    start = end + 1;
  }
  if (lines.size() != rows.size()) {
    Fail(absl::StrCat(lines.size(), " JSON lines for ", rows.size(), " rows"));
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    std::vector<std::pair<std::string, JsonValue>> members;
    if (!JsonReader(lines[r]).ReadObject(&members)) Fail(absl::StrCat("line ", r, " is not JSON"));
    if (members.size() != schema.columns.size()) Fail(absl::StrCat("line ", r, " key count"));
    for (size_t c = 0; c < members.size(); ++c) {
      const Cell& cell = rows[r][c];
      const JsonValue& v = members[c].second;
      if (members[c].first != schema.columns[c].name) Fail("JSON keys out of order");
      if (std::holds_alternative<std::monostate>(cell)) {
        if (v.kind != JsonValue::kNull) Fail("an empty cell is not null");
      } else if (const auto* text = std::get_if<std::string>(&cell)) {
        // An empty text cell is null (docs/REPORTS.md); any other is a string that reads back.
        if (text->empty()) {
          if (v.kind != JsonValue::kNull) Fail("an empty text cell is not null");
        } else {
          if (v.kind != JsonValue::kString) Fail("a text cell is not a string");
          if (ValidUtf8(*text) && v.text != *text) Fail("a text cell does not read back");
        }
      } else if (const auto* i = std::get_if<int64_t>(&cell)) {
        if (v.kind != JsonValue::kNumber) Fail("an integer cell is not a number");
        if (schema.columns[c].type == CellType::kInteger && v.text != absl::StrCat(*i)) {
          Fail("an integer cell does not read back");
        }
      } else if (const auto* d = std::get_if<double>(&cell)) {
        if (!std::isfinite(*d)) {
          if (v.kind != JsonValue::kNull) Fail("NaN or infinity is not null");
        } else if (v.kind != JsonValue::kNumber ||
                   std::fabs(std::strtod(v.text.c_str(), nullptr) - *d) >
                       1e-14 * std::fabs(*d)) {
          // Numbers are written to 15 significant digits (docs/REPORTS.md): they read back to
          // within that.
          Fail(absl::StrCat("a number cell does not read back: ", v.text));
        }
      } else if (const auto* b = std::get_if<bool>(&cell)) {
        if (v.kind != JsonValue::kBool || v.text != (*b ? "true" : "false")) Fail("bool cell");
      }
    }
  }
}

void IgnoreXmlErrors(void*, const char*, ...) {}

void CheckIati(FuzzedDataProvider& in) {
  auto text = [&](size_t max = 40) { return in.ConsumeRandomLengthString(max); };
  report::IatiOrganisation reporting{text(), text(), in.ConsumeIntegralInRange<int>(0, 90), 0};
  report::StringSink sink;
  report::IatiWriter writer(&sink, reporting, text(30));
  if (!writer.Begin().ok()) return;
  int activities = in.ConsumeIntegralInRange<int>(0, 3);
  for (int a = 0; a < activities; ++a) {
    report::IatiActivity act;
    act.identifier = text();
    act.default_currency = text(4);
    act.title = text();
    act.description = text();
    for (int i = in.ConsumeIntegralInRange<int>(0, 2); i > 0; --i) {
      act.participating_orgs.push_back({text(), text(), in.ConsumeIntegralInRange<int>(0, 90),
                                        in.ConsumeIntegralInRange<int>(0, 5)});
    }
    act.status = in.ConsumeIntegralInRange<int>(0, 6);
    act.planned_start = text(12);
    act.planned_end = text(12);
    act.actual_start = text(12);
    act.actual_end = text(12);
    act.recipient_country = text(3);
    for (int i = in.ConsumeIntegralInRange<int>(0, 2); i > 0; --i) {
      act.locations.push_back({text(), text(), in.ConsumeFloatingPoint<double>(),
                               in.ConsumeFloatingPoint<double>()});
    }
    act.dac_sector = in.ConsumeIntegral<int>();
    act.budget_minor = in.ConsumeIntegral<int64_t>();
    act.budget_minor_units = in.ConsumeIntegralInRange<int>(-1, 5);
    act.budget_period_start = text(12);
    act.budget_period_end = text(12);
    act.budget_value_date = text(12);
    for (int i = in.ConsumeIntegralInRange<int>(0, 2); i > 0; --i) {
      report::IatiTransaction t;
      t.ref = text();
      t.type = in.ConsumeIntegralInRange<int>(0, 13);
      t.date = text(12);
      t.amount_minor = in.ConsumeIntegral<int64_t>();
      t.currency = text(4);
      t.minor_units = in.ConsumeIntegralInRange<int>(-1, 5);
      t.description = text();
      act.transactions.push_back(std::move(t));
    }
    for (int i = in.ConsumeIntegralInRange<int>(0, 1); i > 0; --i) {
      report::IatiResult result;
      result.type = in.ConsumeIntegralInRange<int>(0, 3);
      result.title = text();
      report::IatiIndicator ind;
      ind.title = text();
      ind.measure = in.ConsumeIntegralInRange<int>(0, 3);
      ind.ascending = in.ConsumeBool();
      ind.description = text();
      report::IatiIndicatorPeriod p;
      p.start_date = text(12);
      p.end_date = text(12);
      p.has_target = in.ConsumeBool();
      p.target = in.ConsumeFloatingPoint<double>();
      p.actual = in.ConsumeFloatingPoint<double>();
      ind.periods.push_back(p);
      result.indicators.push_back(std::move(ind));
      act.results.push_back(std::move(result));
    }
    act.last_updated = text(22);
    absl::Status s = writer.WriteActivity(act);
    if (!s.ok()) {
      if (s.code() != absl::StatusCode::kInvalidArgument) Fail(s.ToString());
      return;  // refused input: nothing more to check
    }
  }
  if (!writer.End().ok()) Fail("IatiWriter::End");
  const std::string& xml = sink.data();
  if (!ValidUtf8(xml)) Fail("IATI XML is not valid UTF-8");
  xmlDocPtr doc = xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "iati.xml", nullptr,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (doc == nullptr) Fail("IATI output is not well-formed XML");
  xmlFreeDoc(doc);
}

}  // namespace
}  // namespace fieldsync::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  xmlInitParser();
  xmlSetGenericErrorFunc(nullptr, &fieldsync::fuzz::IgnoreXmlErrors);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0: fieldsync::fuzz::CheckCsv(in); break;
    case 1: fieldsync::fuzz::CheckJsonLines(in); break;
    case 2: fieldsync::fuzz::CheckIati(in); break;
  }
  return 0;
}
