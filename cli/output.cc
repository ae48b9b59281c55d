#include "cli/output.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/money.h"
#include "cli/values.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"

namespace fieldsync::cli {
namespace {

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

std::string SingleLine(absl::string_view text) {
  std::string line(text);
  for (char& c : line) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return line;
}

void Pad(std::ostream& out, size_t n) {
  for (size_t i = 0; i < n; ++i) out << ' ';
}

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string ScalarText(const Message& message, const FieldDescriptor* field, int index) {
  const Reflection* r = message.GetReflection();
  const bool repeated = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(repeated ? r->GetRepeatedInt32(message, field, index)
                                   : r->GetInt32(message, field));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(repeated ? r->GetRepeatedInt64(message, field, index)
                                   : r->GetInt64(message, field));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(repeated ? r->GetRepeatedUInt32(message, field, index)
                                   : r->GetUInt32(message, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(repeated ? r->GetRepeatedUInt64(message, field, index)
                                   : r->GetUInt64(message, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return FormatDouble(repeated ? r->GetRepeatedDouble(message, field, index)
                                   : r->GetDouble(message, field));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return FormatDouble(repeated ? r->GetRepeatedFloat(message, field, index)
                                   : r->GetFloat(message, field));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (repeated ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field))
                 ? "yes"
                 : "no";
    case FieldDescriptor::CPPTYPE_ENUM: {
      int number = repeated ? r->GetRepeatedEnumValue(message, field, index)
                            : r->GetEnumValue(message, field);
      return EnumLabel(field->enum_type(), number);
    }
    case FieldDescriptor::CPPTYPE_STRING:
      return repeated ? r->GetRepeatedString(message, field, index) : r->GetString(message, field);
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return "";
}

void CollectPairs(const Message& message, const std::string& prefix,
                  std::vector<std::pair<std::string, std::string>>* pairs);

void CollectValue(const Message& message, const FieldDescriptor* field, int index,
                  const std::string& path,
                  std::vector<std::pair<std::string, std::string>>* pairs) {
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
    pairs->emplace_back(path, ScalarText(message, field, index));
    return;
  }
  const Reflection* r = message.GetReflection();
  const Message& value = field->is_repeated() ? r->GetRepeatedMessage(message, field, index)
                                              : r->GetMessage(message, field);
  if (const auto* money = dynamic_cast<const v1::Money*>(&value)) {
    pairs->emplace_back(path, FormatMoney(*money));
  } else if (const auto* time = dynamic_cast<const google::protobuf::Timestamp*>(&value)) {
    pairs->emplace_back(path, FormatTimestamp(*time));
  } else {
    CollectPairs(value, path + ".", pairs);
  }
}

void CollectPairs(const Message& message, const std::string& prefix,
                  std::vector<std::pair<std::string, std::string>>* pairs) {
  std::vector<const FieldDescriptor*> fields;
  message.GetReflection()->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    std::string path = prefix + field->name();
    if (!field->is_repeated()) {
      CollectValue(message, field, 0, path, pairs);
      continue;
    }
    const int size = message.GetReflection()->FieldSize(message, field);
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      // Repeated scalars (countries, complications) read best on one line.
      std::string joined;
      for (int i = 0; i < size; ++i) {
        absl::StrAppend(&joined, i > 0 ? ", " : "", ScalarText(message, field, i));
      }
      pairs->emplace_back(path, joined);
      continue;
    }
    for (int i = 0; i < size; ++i) {
      CollectValue(message, field, i, absl::StrCat(path, "[", i, "]"), pairs);
    }
  }
}

}  // namespace

size_t DisplayWidth(absl::string_view text) {
  size_t width = 0;
  for (char c : text) {
    if (!IsContinuationByte(c)) ++width;
  }
  return width;
}

std::string Truncate(absl::string_view text, size_t width) {
  if (width == 0 || DisplayWidth(text) <= width) return std::string(text);
  // Keep width - 1 code points, then the ellipsis.
  size_t kept = 0;
  size_t end = 0;
  while (end < text.size()) {
    if (!IsContinuationByte(text[end])) {
      if (kept == width - 1) break;
      ++kept;
    }
    ++end;
  }
  return absl::StrCat(text.substr(0, end), "…");
}

Table::Table(std::vector<TableColumn> columns) : columns_(std::move(columns)) {}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  for (size_t i = 0; i < cells.size(); ++i) {
    cells[i] = Truncate(SingleLine(cells[i]), columns_[i].max_width);
  }
  rows_.push_back(std::move(cells));
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths;
  for (const TableColumn& column : columns_) widths.push_back(DisplayWidth(column.header));
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], DisplayWidth(row[i]));
  }
  auto print_row = [&](const std::vector<std::string>& cells) {
    // The last column is not padded on the right, so lines carry no trailing blanks.
    for (size_t i = 0; i < cells.size(); ++i) {
      const size_t gap = widths[i] - DisplayWidth(cells[i]);
      const bool last = i + 1 == cells.size();
      if (i > 0) out << "  ";
      if (columns_[i].align == Align::kRight) {
        Pad(out, gap);
        out << cells[i];
      } else {
        out << cells[i];
        if (!last) Pad(out, gap);
      }
    }
    out << "\n";
  };
  std::vector<std::string> headers;
  for (const TableColumn& column : columns_) headers.push_back(column.header);
  print_row(headers);
  for (const auto& row : rows_) print_row(row);
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  // Printing a generated message cannot fail; an empty object is the safe fallback.
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) json = "{}";
  return json;
}

void PrintJson(std::ostream& out, const google::protobuf::Message& message) {
  out << ToJson(message) << "\n";
}

std::string Counted(int64_t n, absl::string_view noun, absl::string_view plural) {
  if (n == 1) return absl::StrCat(n, " ", noun);
  return plural.empty() ? absl::StrCat(n, " ", noun, "s") : absl::StrCat(n, " ", plural);
}

std::string JsonQuote(absl::string_view text) {
  std::string quoted = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        quoted += "\\\"";
        break;
      case '\\':
        quoted += "\\\\";
        break;
      case '\n':
        quoted += "\\n";
        break;
      case '\r':
        quoted += "\\r";
        break;
      case '\t':
        quoted += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&quoted, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          quoted.push_back(c);
        }
    }
  }
  quoted += "\"";
  return quoted;
}

JsonObject& JsonObject::AddRaw(absl::string_view key, absl::string_view json) {
  absl::StrAppend(&body_, body_.empty() ? "" : ",", JsonQuote(key), ":", json);
  return *this;
}

JsonObject& JsonObject::AddString(absl::string_view key, absl::string_view value) {
  return AddRaw(key, JsonQuote(value));
}

JsonObject& JsonObject::AddInt(absl::string_view key, int64_t value) {
  return AddRaw(key, absl::StrCat(value));
}

JsonObject& JsonObject::AddBool(absl::string_view key, bool value) {
  return AddRaw(key, value ? "true" : "false");
}

JsonObject& JsonObject::AddMessage(absl::string_view key,
                                   const google::protobuf::Message& message) {
  return AddRaw(key, ToJson(message));
}

std::string JsonObject::ToString() const { return absl::StrCat("{", body_, "}"); }

void PrintJson(std::ostream& out, const JsonObject& object) { out << object.ToString() << "\n"; }

void PrintPairs(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& pairs) {
  size_t width = 0;
  for (const auto& [key, value] : pairs) width = std::max(width, DisplayWidth(key));
  for (const auto& [key, value] : pairs) {
    out << key << ":";
    if (!value.empty()) {
      Pad(out, width - DisplayWidth(key) + 1);
      out << SingleLine(value);
    }
    out << "\n";
  }
}

void PrintDetails(std::ostream& out, const google::protobuf::Message& message) {
  std::vector<std::pair<std::string, std::string>> pairs;
  CollectPairs(message, "", &pairs);
  PrintPairs(out, pairs);
}

std::string FormatTimestamp(const google::protobuf::Timestamp& time) {
  if (time.seconds() == 0 && time.nanos() == 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(time.seconds()),
                          absl::UTCTimeZone());
}

std::string FormatUnixMillis(int64_t ms) {
  if (ms == 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

std::string FormatMoney(const v1::Money& money) {
  if (money.currency().empty() && money.amount_minor() == 0) return "";
  return FormatMoney(money.amount_minor(), money.currency());
}

std::string FormatDouble(double value) { return absl::StrFormat("%.15g", value); }

std::string FormatPercent(double share) { return absl::StrFormat("%.1f%%", share * 100.0); }

}  // namespace fieldsync::cli
