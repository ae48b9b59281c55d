// Pieces the report writers share: chunked output to a sink, UTF-8 repair, number text, row
// checks. Private to report/.
#ifndef FIELDSYNC_REPORT_INTERNAL_H_
#define FIELDSYNC_REPORT_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "fieldsync/report/writer.h"

namespace fieldsync::report::internal {

// Writes to the sink are at most this long.
inline constexpr size_t kChunkBytes = 64 * 1024;

// Collects small appends and passes them to a sink in writes of at most kChunkBytes; a long
// append is cut into pieces, so no single Write is longer. The first sink error sticks: every
// later call returns it.
class ChunkedOutput {
 public:
  explicit ChunkedOutput(ByteSink* sink);
  absl::Status Append(absl::string_view bytes);
  absl::Status Flush();
  const absl::Status& status() const { return status_; }

 private:
  absl::Status WriteThrough(absl::string_view bytes);

  ByteSink* sink_;
  std::string buffer_;
  absl::Status status_;
};

// Decodes one UTF-8 sequence at the start of `s`: the code point and its length. An invalid or
// cut sequence (overlong forms, surrogates, > U+10FFFF) gives code point -1 and length 1.
struct Utf8Char {
  int32_t code_point;
  size_t length;
};
Utf8Char DecodeUtf8(absl::string_view s);

inline constexpr absl::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

bool IsValidUtf8(absl::string_view s);
// `s` with every invalid byte replaced by U+FFFD.
std::string RepairUtf8(absl::string_view s);

// Shortest text of the double nearest `value` at 15 significant digits ("12.5", "0.1", "1e-07",
// "42.3" for 42.300000000000004); "" for NaN and infinities.
std::string DoubleText(double value);

// Checks a schema: a name, at least one column, column names non-empty and unique.
absl::Status CheckSchema(const TableSchema& schema);
// Checks that `cells` fits `schema`: one cell per column, each empty or of the column's type
// (kNumber also takes int64_t).
absl::Status CheckRow(const TableSchema& schema, absl::Span<const Cell> cells);

// Why a call came at the wrong time: FAILED_PRECONDITION naming the format.
absl::Status OutOfOrder(absl::string_view format, absl::string_view what);

}  // namespace fieldsync::report::internal

#endif  // FIELDSYNC_REPORT_INTERNAL_H_
