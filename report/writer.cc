// NewTableWriter: the format switch.
#include "fieldsync/report/writer.h"

#include "absl/strings/str_cat.h"
#include "writers.h"

namespace fieldsync::report {

absl::StatusOr<std::unique_ptr<TableWriter>> NewTableWriter(v1::ReportFormat format, ByteSink* sink,
                                                            absl::string_view temp_dir) {
  switch (format) {
    case v1::REPORT_FORMAT_CSV:
      return NewCsvWriter(sink);
    case v1::REPORT_FORMAT_JSONL:
      return NewJsonLinesWriter(sink);
    case v1::REPORT_FORMAT_XLSX:
      return NewXlsxWriter(sink, temp_dir);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("format: ", v1::ReportFormat_Name(format),
                       " is not a table format (CSV, XLSX or JSONL)"));
  }
}

}  // namespace fieldsync::report
