#include "fieldsync/model/event_dates.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace fieldsync::model {

namespace {

absl::Status NotAfter(absl::string_view path, const std::string& date, absl::string_view latest) {
  if (date.empty() || date <= latest) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(path, ": must not be after ", latest,
                                                 " (today, one day of tolerance), got \"",
                                                 absl::string_view(date).substr(0, 20), "\""));
}

}  // namespace

std::string LatestEventDate(int64_t now_ms) {
  return absl::FormatTime("%Y-%m-%d", absl::FromUnixMillis(now_ms) + absl::Hours(24),
                          absl::UTCTimeZone());
}

absl::Status CheckEventDatesNotAfter(const v1::Record& r, absl::string_view latest) {
  switch (r.body_case()) {
    case v1::Record::kWell: {
      const v1::WellRecord& w = r.well();
      if (auto s = NotAfter("record.well.visit_date", w.visit_date(), latest); !s.ok()) return s;
      if (auto s = NotAfter("record.well.commissioned_date", w.commissioned_date(), latest);
          !s.ok()) {
        return s;
      }
      for (int i = 0; i < w.quality_tests_size(); ++i) {
        if (auto s = NotAfter(absl::StrCat("record.well.quality_tests[", i, "].tested_date"),
                              w.quality_tests(i).tested_date(), latest);
            !s.ok()) {
          return s;
        }
      }
      return absl::OkStatus();
    }
    case v1::Record::kCataractSurgery: {
      const v1::CataractSurgery& c = r.cataract_surgery();
      if (auto s = NotAfter("record.cataract_surgery.surgery_date", c.surgery_date(), latest);
          !s.ok()) {
        return s;
      }
      for (int i = 0; i < c.follow_ups_size(); ++i) {
        if (auto s = NotAfter(absl::StrCat("record.cataract_surgery.follow_ups[", i, "].visit_date"),
                              c.follow_ups(i).visit_date(), latest);
            !s.ok()) {
          return s;
        }
      }
      return absl::OkStatus();
    }
    case v1::Record::kClassroomDonation:
      return NotAfter("record.classroom_donation.delivered_date",
                      r.classroom_donation().delivered_date(), latest);
    case v1::Record::kExpenditure:
      return NotAfter("record.expenditure.spent_date", r.expenditure().spent_date(), latest);
    case v1::Record::BODY_NOT_SET:
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("record: unknown kind");
}

}  // namespace fieldsync::model
