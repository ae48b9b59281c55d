// The concrete table writers behind NewTableWriter. Private to report/.
#ifndef FIELDSYNC_REPORT_WRITERS_H_
#define FIELDSYNC_REPORT_WRITERS_H_

#include <memory>

#include "fieldsync/report/writer.h"

namespace fieldsync::report {

std::unique_ptr<TableWriter> NewCsvWriter(ByteSink* sink);
std::unique_ptr<TableWriter> NewJsonLinesWriter(ByteSink* sink);

}  // namespace fieldsync::report

#endif  // FIELDSYNC_REPORT_WRITERS_H_
