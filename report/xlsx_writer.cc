// XLSX through libxlsxwriter in constant-memory mode: rows go to per-sheet temporary files under
// temp_dir as they come; Finish assembles the workbook in one temporary file, streams it to the
// sink and deletes it.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "fieldsync/report/writer.h"
#include "internal.h"
#include "xlsxwriter.h"

namespace fieldsync::report {

namespace {

constexpr absl::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026, one UTF-16 unit

absl::Status LxwStatus(lxw_error error, absl::string_view what) {
  if (error == LXW_NO_ERROR) return absl::OkStatus();
  std::string message = absl::StrCat("xlsx: ", what, ": ", lxw_strerror(error));
  switch (error) {
    case LXW_ERROR_MEMORY_MALLOC_FAILED:
      return absl::ResourceExhaustedError(message);
    case LXW_ERROR_SHEETNAME_LENGTH_EXCEEDED:
    case LXW_ERROR_INVALID_SHEETNAME_CHARACTER:
    case LXW_ERROR_SHEETNAME_START_END_APOSTROPHE:
    case LXW_ERROR_SHEETNAME_ALREADY_USED:
    case LXW_ERROR_MAX_STRING_LENGTH_EXCEEDED:
    case LXW_ERROR_WORKSHEET_INDEX_OUT_OF_RANGE:
    case LXW_ERROR_WORKSHEET_MAX_NUMBER_URLS_EXCEEDED:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Excel reads "_xHHHH_" in cell text as the character U+HHHH (libxlsxwriter writes control
// characters that way). Text that holds such a sequence literally gets its "_" written as
// "_x005F_", so it reads back as written.
std::string EscapeLiteralEscapes(std::string text) {
  size_t at = text.find("_x");
  if (at == std::string::npos) return text;
  std::string out;
  size_t from = 0;
  for (; at != std::string::npos; at = text.find("_x", at + 1)) {
    if (at + 7 <= text.size() && IsHex(text[at + 2]) && IsHex(text[at + 3]) &&
        IsHex(text[at + 4]) && IsHex(text[at + 5]) && text[at + 6] == '_') {
      out.append(text, from, at - from);
      out.append("_x005F");
      from = at;  // the "_" itself follows, closing the escape
    }
  }
  out.append(text, from, std::string::npos);
  return out;
}

// Text Excel accepts: valid UTF-8, at most kXlsxMaxCellChars UTF-16 units; longer text is cut
// and ends with an ellipsis. Literal "_xHHHH_" is protected (EscapeLiteralEscapes).
std::string XlsxText(absl::string_view raw) {
  std::string text = EscapeLiteralEscapes(internal::IsValidUtf8(raw) ? std::string(raw)
                                                                     : internal::RepairUtf8(raw));
  if (text.size() <= static_cast<size_t>(kXlsxMaxCellChars)) return text;  // units <= bytes
  size_t units = 0;
  size_t pos = 0;
  size_t cut = std::string::npos;  // byte offset where the text must end to leave room for "…"
  while (pos < text.size()) {
    internal::Utf8Char c = internal::DecodeUtf8(absl::string_view(text).substr(pos));
    const size_t char_units = c.code_point >= 0x10000 ? 2 : 1;
    if (cut == std::string::npos && units + char_units > kXlsxMaxCellChars - 1) cut = pos;
    units += char_units;
    if (units > kXlsxMaxCellChars) break;
    pos += c.length;
  }
  if (units <= kXlsxMaxCellChars) return text;
  text.resize(cut);
  text.append(kEllipsis.data(), kEllipsis.size());
  return text;
}

bool ParseDigits(absl::string_view s, int* out) {
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return !s.empty();
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// "YYYY-MM-DD" with a real day of a year Excel can show (1900-9999).
bool ParseDate(absl::string_view s, lxw_datetime* out) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  int y, m, d;
  if (!ParseDigits(s.substr(0, 4), &y) || !ParseDigits(s.substr(5, 2), &m) ||
      !ParseDigits(s.substr(8, 2), &d)) {
    return false;
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1900 || m < 1 || m > 12 || d < 1) return false;
  if (d > kDays[m - 1] + (m == 2 && IsLeap(y) ? 1 : 0)) return false;
  *out = lxw_datetime{y, m, d, 0, 0, 0};
  return true;
}

// "YYYY-MM-DD HH:MM:SS" (also with a "T" and a trailing "Z").
bool ParseTimestamp(absl::string_view s, lxw_datetime* out) {
  if (!s.empty() && s.back() == 'Z') s.remove_suffix(1);
  if (s.size() != 19 || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':') {
    return false;
  }
  if (!ParseDate(s.substr(0, 10), out)) return false;
  int h, mi, se;
  if (!ParseDigits(s.substr(11, 2), &h) || !ParseDigits(s.substr(14, 2), &mi) ||
      !ParseDigits(s.substr(17, 2), &se) || h > 23 || mi > 59 || se > 59) {
    return false;
  }
  out->hour = h;
  out->min = mi;
  out->sec = se;
  return true;
}

// Integers beyond this lose digits as an Excel number (a double); they are written as text.
constexpr int64_t kMaxExactInteger = int64_t{1} << 53;

double ColumnWidth(const Column& column) {
  double width = 10;
  switch (column.type) {
    case CellType::kText:
      width = 16;
      break;
    case CellType::kInteger:
    case CellType::kNumber:
      width = 12;
      break;
    case CellType::kBool:
      width = 8;
      break;
    case CellType::kDate:
      width = 12;
      break;
    case CellType::kTimestamp:
      width = 20;
      break;
  }
  const double header = static_cast<double>(column.name.size()) + 2;
  return std::min(60.0, std::max(width, header));
}

class XlsxWriter final : public TableWriter {
 public:
  XlsxWriter(ByteSink* sink, XlsxOptions options) : sink_(sink), options_(options) {}

  ~XlsxWriter() override {
    if (workbook_ != nullptr) lxw_workbook_free(workbook_);
    if (!path_.empty()) unlink(path_.c_str());
  }

  absl::Status Init(absl::string_view temp_dir) {
    if (options_.max_rows_per_sheet < 2 || options_.max_rows_per_sheet > kXlsxMaxRowsPerSheet) {
      return absl::InvalidArgumentError(absl::StrCat("xlsx: max_rows_per_sheet must be in [2, ",
                                                     kXlsxMaxRowsPerSheet, "], got ",
                                                     options_.max_rows_per_sheet));
    }
    temp_dir_ = std::string(temp_dir);
    if (temp_dir_.empty()) {
      std::error_code error;
      temp_dir_ = std::filesystem::temp_directory_path(error).string();
      if (error) temp_dir_ = "/tmp";
    }
    std::string name = absl::StrCat(temp_dir_, "/fieldsync-export-XXXXXX.xlsx");
    const int fd = mkstemps(name.data(), 5);
    if (fd < 0) {
      const int err = errno;
      return absl::Status(absl::ErrnoToStatusCode(err),
                          absl::StrCat("xlsx: cannot create a temporary file in ", temp_dir_, ": ",
                                       std::strerror(err)));
    }
    close(fd);
    path_ = name;
    lxw_workbook_options options = {};
    options.constant_memory = LXW_TRUE;
    options.tmpdir = temp_dir_.data();
    workbook_ = workbook_new_opt(path_.c_str(), &options);
    if (workbook_ == nullptr) return absl::InternalError("xlsx: cannot create the workbook");
    bold_ = workbook_add_format(workbook_);
    date_ = workbook_add_format(workbook_);
    datetime_ = workbook_add_format(workbook_);
    if (bold_ == nullptr || date_ == nullptr || datetime_ == nullptr) {
      return absl::ResourceExhaustedError("xlsx: cannot create cell formats");
    }
    format_set_bold(bold_);
    format_set_num_format(date_, "yyyy-mm-dd");
    format_set_num_format(datetime_, "yyyy-mm-dd hh:mm:ss");
    return absl::OkStatus();
  }

  absl::Status BeginTable(const TableSchema& schema) override {
    if (finished_) return internal::OutOfOrder("XLSX", "BeginTable after Finish");
    if (in_table_) return internal::OutOfOrder("XLSX", "BeginTable before EndTable");
    if (absl::Status s = internal::CheckSchema(schema); !s.ok()) return s;
    schema_ = schema;
    part_ = 1;
    if (absl::Status s = AddSheet(); !s.ok()) return s;
    in_table_ = true;
    return absl::OkStatus();
  }

  absl::Status WriteRow(absl::Span<const Cell> cells) override {
    if (!in_table_) return internal::OutOfOrder("XLSX", "WriteRow outside BeginTable/EndTable");
    if (absl::Status s = internal::CheckRow(schema_, cells); !s.ok()) return s;
    if (row_ >= options_.max_rows_per_sheet) {
      ++part_;
      if (absl::Status s = AddSheet(); !s.ok()) return s;
    }
    const lxw_row_t row = static_cast<lxw_row_t>(row_);
    for (size_t i = 0; i < cells.size(); ++i) {
      const lxw_col_t col = static_cast<lxw_col_t>(i);
      lxw_error error = LXW_NO_ERROR;
      const Cell& cell = cells[i];
      if (const auto* s = std::get_if<std::string>(&cell)) {
        error = WriteString(row, col, schema_.columns[i].type, *s);
      } else if (const auto* v = std::get_if<int64_t>(&cell)) {
        if (*v > kMaxExactInteger || *v < -kMaxExactInteger) {
          error = worksheet_write_string(sheet_, row, col, absl::StrCat(*v).c_str(), nullptr);
        } else {
          error = worksheet_write_number(sheet_, row, col, static_cast<double>(*v), nullptr);
        }
      } else if (const auto* d = std::get_if<double>(&cell)) {
        if (std::isfinite(*d)) error = worksheet_write_number(sheet_, row, col, *d, nullptr);
      } else if (const auto* b = std::get_if<bool>(&cell)) {
        error = worksheet_write_boolean(sheet_, row, col, *b ? 1 : 0, nullptr);
      }
      if (error != LXW_NO_ERROR) {
        return LxwStatus(error,
                         absl::StrCat("table ", schema_.name, " column ", schema_.columns[i].name));
      }
    }
    ++row_;
    return absl::OkStatus();
  }

  absl::Status EndTable() override {
    if (!in_table_) return internal::OutOfOrder("XLSX", "EndTable without BeginTable");
    in_table_ = false;
    return absl::OkStatus();
  }

  absl::Status Finish() override {
    if (finished_) return internal::OutOfOrder("XLSX", "Finish called twice");
    if (in_table_) return internal::OutOfOrder("XLSX", "Finish before EndTable");
    finished_ = true;
    lxw_error error = workbook_close(workbook_);  // frees the workbook, even on error
    workbook_ = nullptr;
    if (error != LXW_NO_ERROR) return LxwStatus(error, "writing the workbook");
    absl::Status s = StreamFile();
    unlink(path_.c_str());
    path_.clear();
    return s;
  }

 private:
  absl::Status AddSheet() {
    const std::string name = XlsxSheetName(schema_.name, part_);
    const std::string key = absl::AsciiStrToLower(name);
    if (!sheet_names_.insert(key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("table ", schema_.name, ": sheet name \"", name, "\" is already used"));
    }
    sheet_ = workbook_add_worksheet(workbook_, name.c_str());
    if (sheet_ == nullptr) {
      return absl::InternalError(absl::StrCat("xlsx: cannot add sheet \"", name,
                                              "\" (temporary file in ", temp_dir_, "?)"));
    }
    for (size_t i = 0; i < schema_.columns.size(); ++i) {
      const lxw_col_t col = static_cast<lxw_col_t>(i);
      const std::string header = XlsxText(schema_.columns[i].name);
      lxw_error error = worksheet_write_string(sheet_, 0, col, header.c_str(), bold_);
      if (error == LXW_NO_ERROR) {
        error = worksheet_set_column(sheet_, col, col, ColumnWidth(schema_.columns[i]), nullptr);
      }
      if (error != LXW_NO_ERROR) return LxwStatus(error, absl::StrCat("sheet ", name, " header"));
    }
    worksheet_freeze_panes(sheet_, 1, 0);
    row_ = 1;
    return absl::OkStatus();
  }

  lxw_error WriteString(lxw_row_t row, lxw_col_t col, CellType type, const std::string& raw) {
    if (raw.empty()) return LXW_NO_ERROR;  // blank
    lxw_datetime when;
    if (type == CellType::kDate && ParseDate(raw, &when)) {
      return worksheet_write_datetime(sheet_, row, col, &when, date_);
    }
    if (type == CellType::kTimestamp && ParseTimestamp(raw, &when)) {
      return worksheet_write_datetime(sheet_, row, col, &when, datetime_);
    }
    const std::string text = XlsxText(raw);
    return worksheet_write_string(sheet_, row, col, text.c_str(), nullptr);
  }

  absl::Status StreamFile() {
    std::unique_ptr<FILE, int (*)(FILE*)> file(fopen(path_.c_str(), "rb"), &fclose);
    if (file == nullptr) {
      const int err = errno;
      return absl::InternalError(
          absl::StrCat("xlsx: cannot reopen ", path_, ": ", std::strerror(err)));
    }
    std::vector<char> buffer(internal::kChunkBytes);
    for (;;) {
      const size_t n = fread(buffer.data(), 1, buffer.size(), file.get());
      if (n > 0) {
        if (absl::Status s = sink_->Write(absl::string_view(buffer.data(), n)); !s.ok()) {
          return s;
        }
      }
      if (n < buffer.size()) {
        if (ferror(file.get())) return absl::InternalError(absl::StrCat("xlsx: reading ", path_));
        return absl::OkStatus();
      }
    }
  }

  ByteSink* sink_;
  XlsxOptions options_;
  std::string temp_dir_;
  std::string path_;
  lxw_workbook* workbook_ = nullptr;
  lxw_format* bold_ = nullptr;
  lxw_format* date_ = nullptr;
  lxw_format* datetime_ = nullptr;
  lxw_worksheet* sheet_ = nullptr;
  TableSchema schema_;
  int part_ = 1;
  int64_t row_ = 0;  // next row in the current sheet
  std::set<std::string> sheet_names_;
  bool in_table_ = false;
  bool finished_ = false;
};

}  // namespace

std::string XlsxSheetName(absl::string_view table_name, int part) {
  const std::string suffix = part > 1 ? absl::StrCat(" (", part, ")") : "";
  const size_t max_chars = LXW_SHEETNAME_MAX - suffix.size();
  std::string name;
  size_t chars = 0;
  std::string valid = internal::RepairUtf8(table_name);
  absl::string_view rest = valid;
  while (!rest.empty() && chars < max_chars) {
    internal::Utf8Char c = internal::DecodeUtf8(rest);
    if (std::strchr("[]:*?/\\", rest[0]) != nullptr && c.length == 1) {
      name.push_back('_');
    } else {
      name.append(rest.data(), c.length);
    }
    rest.remove_prefix(c.length);
    ++chars;
  }
  // Excel refuses a name that starts or ends with an apostrophe.
  if (!name.empty() && name.front() == '\'') name.front() = '_';
  if (!name.empty() && name.back() == '\'' && suffix.empty()) name.back() = '_';
  if (name.empty()) name = "table";
  return name + suffix;
}

absl::StatusOr<std::unique_ptr<TableWriter>> NewXlsxWriter(ByteSink* sink,
                                                           absl::string_view temp_dir,
                                                           XlsxOptions options) {
  auto writer = std::make_unique<XlsxWriter>(sink, options);
  if (absl::Status s = writer->Init(temp_dir); !s.ok()) return s;
  return std::unique_ptr<TableWriter>(std::move(writer));
}

}  // namespace fieldsync::report
