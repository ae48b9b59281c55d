// Event dates may not lie in the future: a visit on 2099-01-01 would flow into monthly
// indicators and IATI results. Both sides check with the same code — the server against its
// own date, a device against its corrected clock — with a tolerance of one day for time zones
// (a date is local to where the event happened; UTC+14 is a day ahead of UTC).
#ifndef FIELDSYNC_MODEL_EVENT_DATES_H_
#define FIELDSYNC_MODEL_EVENT_DATES_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "fieldsync/v1/domain.pb.h"

namespace fieldsync::model {

// The latest event date accepted at Unix time `now_ms`: the UTC date of now plus one day,
// "YYYY-MM-DD".
std::string LatestEventDate(int64_t now_ms);

// INVALID_ARGUMENT naming the field ("record.well.visit_date: must not be after 2026-12-08 ...")
// if any event date of `record` (visit, test, commissioning, surgery, follow-up, delivery and
// payment dates) is after `latest` ("YYYY-MM-DD"). Dates are compared as text; malformed dates
// are ValidateRecord's business.
absl::Status CheckEventDatesNotAfter(const v1::Record& record, absl::string_view latest);

}  // namespace fieldsync::model

#endif  // FIELDSYNC_MODEL_EVENT_DATES_H_
