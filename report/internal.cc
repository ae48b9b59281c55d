#include "internal.h"

#include <charconv>
#include <cmath>
#include <set>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace fieldsync::report::internal {

ChunkedOutput::ChunkedOutput(ByteSink* sink) : sink_(sink) { buffer_.reserve(kChunkBytes); }

absl::Status ChunkedOutput::WriteThrough(absl::string_view bytes) {
  if (!status_.ok()) return status_;
  status_ = sink_->Write(bytes);
  return status_;
}

absl::Status ChunkedOutput::Append(absl::string_view bytes) {
  if (!status_.ok()) return status_;
  if (buffer_.size() + bytes.size() <= kChunkBytes) {
    buffer_.append(bytes.data(), bytes.size());
    return absl::OkStatus();
  }
  // Top the buffer up to a full chunk, send it, send whole chunks straight from `bytes`, keep
  // the rest.
  const size_t fill = kChunkBytes - buffer_.size();
  buffer_.append(bytes.data(), fill);
  bytes.remove_prefix(fill);
  absl::Status s = WriteThrough(buffer_);
  buffer_.clear();
  if (!s.ok()) return s;
  while (bytes.size() > kChunkBytes) {
    s = WriteThrough(bytes.substr(0, kChunkBytes));
    if (!s.ok()) return s;
    bytes.remove_prefix(kChunkBytes);
  }
  buffer_.append(bytes.data(), bytes.size());
  return absl::OkStatus();
}

absl::Status ChunkedOutput::Flush() {
  if (!status_.ok()) return status_;
  if (buffer_.empty()) return absl::OkStatus();
  absl::Status s = WriteThrough(buffer_);
  buffer_.clear();
  return s;
}

Utf8Char DecodeUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  if (n == 0) return {-1, 0};
  const unsigned char b0 = p[0];
  if (b0 < 0x80) return {b0, 1};
  size_t len;
  int32_t cp;
  int32_t min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return {-1, 1};
  }
  if (n < len) return {-1, 1};
  for (size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return {-1, 1};
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {-1, 1};
  return {cp, len};
}

bool IsValidUtf8(absl::string_view s) {
  while (!s.empty()) {
    if (static_cast<unsigned char>(s[0]) < 0x80) {
      s.remove_prefix(1);
      continue;
    }
    Utf8Char c = DecodeUtf8(s);
    if (c.code_point < 0) return false;
    s.remove_prefix(c.length);
  }
  return true;
}

std::string RepairUtf8(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    Utf8Char c = DecodeUtf8(s);
    if (c.code_point < 0) {
      out.append(kReplacementChar.data(), kReplacementChar.size());
    } else {
      out.append(s.data(), c.length);
    }
    s.remove_prefix(c.length);
  }
  return out;
}

std::string DoubleText(double value) {
  if (!std::isfinite(value)) return "";
  char buf[400];
  // At most 15 significant digits: every decimal of up to 15 digits (all a person or a device
  // types) reads back as itself, while binary noise from arithmetic (0.1 * 3 =
  // 0.30000000000000004) goes: 42.3, not 42.300000000000004.
  {
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific, 14);
    if (ec == std::errc()) {
      double rounded = value;
      auto parsed = std::from_chars(buf, end, rounded);
      if (parsed.ec == std::errc()) value = rounded;
    }
  }
  // Without a precision, to_chars gives the shortest text that reads back exactly. Plain decimals
  // for everyday magnitudes (1000000, not 1e+06: people read these files); exponents only for
  // the very small and very large.
  const double magnitude = std::fabs(value);
  const bool fixed = magnitude == 0 || (magnitude >= 1e-5 && magnitude < 1e15);
  auto [end, ec] = fixed ? std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::fixed)
                         : std::to_chars(buf, buf + sizeof(buf), value);
  if (ec != std::errc()) return "";
  return std::string(buf, end);
}

absl::Status CheckSchema(const TableSchema& schema) {
  if (schema.name.empty()) return absl::InvalidArgumentError("table.name: must not be empty");
  if (schema.columns.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("table ", schema.name, ": must have at least one column"));
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    const std::string& name = schema.columns[i].name;
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("table ", schema.name, ": column ", i, " has no name"));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("table ", schema.name, ": column \"", name, "\" appears twice"));
    }
  }
  return absl::OkStatus();
}

namespace {

const char* CellTypeName(CellType type) {
  switch (type) {
    case CellType::kText:
      return "text";
    case CellType::kInteger:
      return "integer";
    case CellType::kNumber:
      return "number";
    case CellType::kBool:
      return "bool";
    case CellType::kDate:
      return "date";
    case CellType::kTimestamp:
      return "timestamp";
  }
  return "?";
}

const char* HeldTypeName(const Cell& cell) {
  switch (cell.index()) {
    case 0:
      return "empty";
    case 1:
      return "string";
    case 2:
      return "int64";
    case 3:
      return "double";
    case 4:
      return "bool";
  }
  return "?";
}

bool Fits(CellType type, const Cell& cell) {
  if (std::holds_alternative<std::monostate>(cell)) return true;
  switch (type) {
    case CellType::kText:
    case CellType::kDate:
    case CellType::kTimestamp:
      return std::holds_alternative<std::string>(cell);
    case CellType::kInteger:
      return std::holds_alternative<int64_t>(cell);
    case CellType::kNumber:
      return std::holds_alternative<double>(cell) || std::holds_alternative<int64_t>(cell);
    case CellType::kBool:
      return std::holds_alternative<bool>(cell);
  }
  return false;
}

}  // namespace

absl::Status CheckRow(const TableSchema& schema, absl::Span<const Cell> cells) {
  if (cells.size() != schema.columns.size()) {
    return absl::InvalidArgumentError(absl::StrCat("table ", schema.name, ": row has ",
                                                   cells.size(), " cells, the table has ",
                                                   schema.columns.size(), " columns"));
  }
  for (size_t i = 0; i < cells.size(); ++i) {
    if (!Fits(schema.columns[i].type, cells[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "table ", schema.name, ": column ", schema.columns[i].name, " is ",
          CellTypeName(schema.columns[i].type), ", got a ", HeldTypeName(cells[i]), " cell"));
    }
  }
  return absl::OkStatus();
}

absl::Status OutOfOrder(absl::string_view format, absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat(format, " writer: ", what));
}

}  // namespace fieldsync::report::internal
