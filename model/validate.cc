#include "fieldsync/model/validate.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/model/visual_acuity.h"
#include "google/protobuf/descriptor.h"

namespace fieldsync::model {
namespace {

// Upper bound of any amount_minor, far above any real project (10^13 USD, 10^15 UGX) yet low
// enough that sums over many rows stay well inside int64.
constexpr int64_t kMaxAmountMinor = 1'000'000'000'000'000;
// A string quoted in an error message is cut to about this many bytes.
constexpr size_t kMaxQuotedBytes = 80;

// The one table of caps on lists in documents: every repeated field of every document message
// has a line here (validate_test.cc walks the descriptors to make sure), checked before any
// field is looked at, by device and server alike.
struct ListCap {
  const char* field;  // full name of the repeated field
  int max_entries;
  const char* noun;  // what the entries are, for the message
};
constexpr ListCap kMaxEntries[] = {
    {"fieldsync.v1.Partner.countries", 60, "countries"},
    {"fieldsync.v1.WellRecord.quality_tests", 50, "tests"},
    // One visit per follow-up stage.
    {"fieldsync.v1.CataractSurgery.follow_ups", 10, "follow-up visits"},
    {"fieldsync.v1.CataractSurgery.complications", 20, "complications"},
    {"fieldsync.v1.ClassroomDonation.items", 500, "items"},
};

const ListCap* CapOf(const google::protobuf::FieldDescriptor& field) {
  for (const ListCap& cap : kMaxEntries) {
    if (field.full_name() == cap.field) return &cap;
  }
  return nullptr;
}

// The first list in `m` (at `path`) over its cap, walking set fields only.
absl::Status CheckLists(const google::protobuf::Message& m, const std::string& path) {
  const google::protobuf::Reflection& r = *m.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  r.ListFields(m, &fields);
  for (const google::protobuf::FieldDescriptor* f : fields) {
    const std::string at = absl::StrCat(path, ".", f->name());
    const bool message = f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE;
    if (!f->is_repeated()) {
      if (message) FS_RETURN_IF_ERROR(CheckLists(r.GetMessage(m, f), at));
      continue;
    }
    const int size = r.FieldSize(m, f);
    const ListCap* cap = CapOf(*f);
    // A list without a line in the table is a programming error that the test catches; in
    // production it is held to the smallest cap rather than left unbounded.
    const int max = cap != nullptr ? cap->max_entries : 10;
    if (size > max) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": must have at most ", max, " ",
                                                     cap != nullptr ? cap->noun : "entries",
                                                     ", got ", size));
    }
    if (message) {
      for (int i = 0; i < size; ++i) {
        FS_RETURN_IF_ERROR(CheckLists(r.GetRepeatedMessage(m, f, i), absl::StrCat(at, "[", i, "]")));
      }
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

// What a UTF-8 scan of a text field found.
struct TextScan {
  bool valid_utf8 = true;
  size_t chars = 0;          // code points
  bool has_control = false;  // C0 (except \n and \t where multi-line), DEL or C1
  bool blank = true;         // only spaces, \t and \n
};

bool IsContinuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// Scans `s` code point by code point. Overlong forms, surrogates and values above U+10FFFF are
// invalid, as they are for protobuf's own UTF-8 check on parse.
TextScan ScanText(absl::string_view s, bool multiline) {
  TextScan scan;
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    uint32_t cp = 0;
    size_t len = 0;
    unsigned char min_second = 0x80, max_second = 0xBF;
    if (b < 0x80) {
      cp = b;
      len = 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
      cp = b & 0x1F;
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      cp = b & 0x0F;
      len = 3;
      if (b == 0xE0) min_second = 0xA0;  // overlong
      if (b == 0xED) max_second = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      cp = b & 0x07;
      len = 4;
      if (b == 0xF0) min_second = 0x90;  // overlong
      if (b == 0xF4) max_second = 0x8F;  // above U+10FFFF
    } else {
      scan.valid_utf8 = false;
      return scan;
    }
    if (i + len > s.size()) {
      scan.valid_utf8 = false;
      return scan;
    }
    for (size_t k = 1; k < len; ++k) {
      const unsigned char c = static_cast<unsigned char>(s[i + k]);
      const bool ok = k == 1 ? (c >= min_second && c <= max_second) : IsContinuation(c);
      if (!ok) {
        scan.valid_utf8 = false;
        return scan;
      }
      cp = (cp << 6) | (c & 0x3F);
    }
    i += len;
    ++scan.chars;
    const bool allowed_whitespace = multiline && (cp == '\n' || cp == '\t');
    if ((cp < 0x20 && !allowed_whitespace) || (cp >= 0x7F && cp <= 0x9F)) {
      scan.has_control = true;
    }
    if (cp != ' ' && cp != '\t' && cp != '\n') scan.blank = false;
  }
  return scan;
}

// `value` in double quotes with control characters escaped, cut to about 80 bytes so that a huge
// field does not make a huge error message: "Kisumu", "a\x01b", "aaaa..."...
std::string Quote(absl::string_view value) {
  const bool truncated = value.size() > kMaxQuotedBytes;
  if (truncated) {
    size_t n = kMaxQuotedBytes;
    while (n > 0 && IsContinuation(static_cast<unsigned char>(value[n]))) --n;
    value = value.substr(0, n);
  }
  // Invalid UTF-8 is hex-escaped entirely so that the message itself stays valid UTF-8.
  const std::string escaped =
      ScanText(value, true).valid_utf8 ? absl::Utf8SafeCHexEscape(value) : absl::CHexEscape(value);
  return absl::StrCat("\"", escaped, truncated ? "\"..." : "\"");
}

// The shortest text that reads back as `v`: "-5", "0.1", "2000.5", "nan".
std::string FormatDouble(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string text;
  for (int precision = 15; precision <= 17; ++precision) {
    text = absl::StrFormat("%.*g", precision, v);  // locale-independent, unlike snprintf
    double back = 0;
    if (absl::SimpleAtod(text, &back) && back == v) break;
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

constexpr int kMinYear = 1900;
constexpr int kMaxYear = 2199;

bool IsLeapYear(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

// The value of the decimal digits s[begin, end), or -1 if one is not a digit.
int Digits(absl::string_view s, size_t begin, size_t end) {
  int value = 0;
  for (size_t i = begin; i < end; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    value = value * 10 + (s[i] - '0');
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Checker
// ---------------------------------------------------------------------------------------------

enum class Presence { kOptional, kRequired };
enum class Lines { kOne, kMany };

// Checks the fields of one message and names them in errors. With path "record.well", field
// "notes" is reported as "record.well.notes"; an empty field names the message itself. Paths
// are only built when a check fails.
class Checker {
 public:
  explicit Checker(std::string path) : path_(std::move(path)) {}

  std::string Path(absl::string_view field) const {
    return field.empty() ? path_ : absl::StrCat(path_, ".", field);
  }
  // "record.well.quality_tests[3]".
  std::string Element(absl::string_view field, int index) const {
    return absl::StrCat(Path(field), "[", index, "]");
  }

  // "<path>: <what>".
  absl::Status Fail(absl::string_view field, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(Path(field), ": ", what));
  }
  // "<path>: <what>, got <got>".
  absl::Status Fail(absl::string_view field, absl::string_view what, absl::string_view got) const {
    return absl::InvalidArgumentError(absl::StrCat(Path(field), ": ", what, ", got ", got));
  }
  absl::Status Missing(absl::string_view field) const { return Fail(field, "required"); }

  // A finite number within [lo, hi].
  absl::Status Number(absl::string_view field, double v, double lo, double hi) const {
    if (!std::isfinite(v)) return Fail(field, "must be a finite number", FormatDouble(v));
    if (v < lo || v > hi) return Fail(field, RangeText(lo, hi), FormatDouble(v));
    return absl::OkStatus();
  }

  // A laboratory measurement: unset means "not measured"; a measured value is within [0, hi].
  absl::Status Measurement(absl::string_view field, bool measured, double v, double hi) const {
    if (!measured) return absl::OkStatus();
    return Number(field, v, 0, hi);
  }

  absl::Status Integer(absl::string_view field, int64_t v, int64_t lo, int64_t hi) const {
    if (v < lo || v > hi)
      return Fail(field, absl::StrCat("must be within [", lo, ", ", hi, "]"), absl::StrCat(v));
    return absl::OkStatus();
  }

  // A proto3 enum field; `is_valid` is the generated Foo_IsValid. Unknown numbers (open enums
  // let a newer client send them) are rejected; UNSPECIFIED (0) is rejected when required.
  absl::Status Enum(absl::string_view field, int v, bool (*is_valid)(int),
                    Presence presence) const {
    if (v == 0) return presence == Presence::kRequired ? Missing(field) : absl::OkStatus();
    if (!is_valid(v)) return Fail(field, absl::StrCat("unknown value ", v));
    return absl::OkStatus();
  }

  // Free text of min_chars..max_chars code points. Multi-line text may contain \n and \t; no
  // text may contain other control characters. Required text must not be blank.
  absl::Status Text(absl::string_view field, absl::string_view v, size_t min_chars,
                    size_t max_chars, Lines lines = Lines::kOne) const {
    if (v.empty()) return min_chars > 0 ? Missing(field) : absl::OkStatus();
    const TextScan scan = ScanText(v, lines == Lines::kMany);
    if (!scan.valid_utf8) return Fail(field, "not valid UTF-8", Quote(v));
    if (scan.has_control) return Fail(field, "must not contain control characters", Quote(v));
    if (scan.chars > max_chars) {
      return Fail(field, absl::StrCat("must be at most ", max_chars, " characters"),
                  absl::StrCat(scan.chars));
    }
    if (min_chars > 0 && scan.blank) return Fail(field, "must not be blank", Quote(v));
    if (scan.chars < min_chars) {
      return Fail(field, absl::StrCat("must be at least ", min_chars, " characters"),
                  absl::StrCat(scan.chars));
    }
    return absl::OkStatus();
  }

  // A pseudonymous reference code: 1..64 characters of [A-Za-z0-9-_].
  // `identifies_patient`: the value is never repeated in the message, which ends up in logs
  // (a mistyped patient reference is still the patient's, often their name).
  absl::Status Ref(absl::string_view field, absl::string_view v,
                   bool identifies_patient = false) const {
    if (v.empty()) return Missing(field);
    bool ok = v.size() <= 64;
    for (char ch : v) {
      ok = ok && ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_');
    }
    if (!ok && identifies_patient) {
      return Fail(field, "must be 1..64 characters of A-Z a-z 0-9 - _",
                  absl::StrCat(v.size(), " bytes (not repeated here: it identifies a patient)"));
    }
    if (!ok) return Fail(field, "must be 1..64 characters of A-Z a-z 0-9 - _", Quote(v));
    return absl::OkStatus();
  }

  absl::Status Id(absl::string_view field, absl::string_view v, Presence presence) const {
    if ((v.empty() && presence == Presence::kOptional) || IsUuid(v)) return absl::OkStatus();
    return ValidateId(Path(field), v, presence == Presence::kOptional);
  }

  absl::Status Date(absl::string_view field, absl::string_view v, Presence presence) const {
    if (v.empty()) return presence == Presence::kRequired ? Missing(field) : absl::OkStatus();
    if (!IsDate(v)) return Fail(field, "not a YYYY-MM-DD date in 1900..2199", Quote(v));
    return absl::OkStatus();
  }

  // `v` is a valid date (checked before); it must not be before `earliest`, named `name`.
  absl::Status NotBefore(absl::string_view field, absl::string_view v, absl::string_view name,
                         absl::string_view earliest) const {
    // YYYY-MM-DD dates compare correctly as strings.
    if (!v.empty() && !earliest.empty() && v < earliest) {
      return Fail(field, absl::StrCat("must not be before ", name, " ", earliest), Quote(v));
    }
    return absl::OkStatus();
  }

  absl::Status Country(absl::string_view field, absl::string_view v) const {
    if (v.empty()) return Missing(field);
    if (!IsCountryCode(v)) {
      return Fail(field, "not an ISO 3166-1 alpha-2 country code", Quote(v));
    }
    return absl::OkStatus();
  }

  // An amount of at least `min_amount` minor units in a valid currency.
  absl::Status Money(absl::string_view field, const v1::Money& money, int64_t min_amount) const {
    const Checker c(Path(field));
    if (money.amount_minor() < min_amount) {
      return c.Fail("amount_minor", min_amount == 0 ? "must be >= 0" : "must be > 0",
                    absl::StrCat(money.amount_minor()));
    }
    if (money.amount_minor() > kMaxAmountMinor) {
      return c.Fail("amount_minor", absl::StrCat("must be at most ", kMaxAmountMinor),
                    absl::StrCat(money.amount_minor()));
    }
    if (money.currency().empty()) return c.Missing("currency");
    if (!IsCurrencyCode(money.currency())) {
      return c.Fail("currency", "not an ISO 4217 currency code", Quote(money.currency()));
    }
    return absl::OkStatus();
  }

  // A visual acuity in any accepted notation.
  absl::Status Acuity(absl::string_view field, absl::string_view v, Presence presence) const {
    if (v.empty()) return presence == Presence::kRequired ? Missing(field) : absl::OkStatus();
    return ParseVisualAcuity(v, Path(field)).status();
  }

  // A repeated field's size within [lo, hi]; `noun` names its elements ("items").
  absl::Status Count(absl::string_view field, int size, int lo, int hi,
                     absl::string_view noun) const {
    if (size >= lo && size <= hi) return absl::OkStatus();
    const std::string what = lo == 0 ? absl::StrCat("must have at most ", hi, " ", noun)
                                     : absl::StrCat("must have ", lo, "..", hi, " ", noun);
    return Fail(field, what, absl::StrCat(size));
  }

 private:
  static std::string RangeBounds(double lo, double hi) {
    return absl::StrCat("[", FormatDouble(lo), ", ", FormatDouble(hi), "]");
  }
  static std::string RangeText(double lo, double hi) {
    return absl::StrCat("must be within ", RangeBounds(lo, hi));
  }

  std::string path_;
};

// ---------------------------------------------------------------------------------------------
// Record bodies
// ---------------------------------------------------------------------------------------------

absl::Status ValidateQualityTest(const v1::WaterQualityTest& test, const Checker& c) {
  FS_RETURN_IF_ERROR(c.Date("tested_date", test.tested_date(), Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Measurement("ecoli_cfu_per_100ml", test.has_ecoli_cfu_per_100ml(),
                                   test.ecoli_cfu_per_100ml(), 1e6));
  FS_RETURN_IF_ERROR(c.Measurement("turbidity_ntu", test.has_turbidity_ntu(), test.turbidity_ntu(),
                                   10'000));
  FS_RETURN_IF_ERROR(c.Measurement("arsenic_ug_per_l", test.has_arsenic_ug_per_l(),
                                   test.arsenic_ug_per_l(), 100'000));
  return c.Measurement("fluoride_mg_per_l", test.has_fluoride_mg_per_l(), test.fluoride_mg_per_l(),
                       100);
}

absl::Status ValidateWell(const v1::WellRecord& well, const Checker& c) {
  FS_RETURN_IF_ERROR(c.Number("drilled_depth_m", well.drilled_depth_m(), 0, 2000));
  FS_RETURN_IF_ERROR(c.Number("static_water_level_m", well.static_water_level_m(), 0, 2000));
  if (well.static_water_level_m() > well.drilled_depth_m()) {
    return c.Fail(
        "static_water_level_m",
        absl::StrCat("must not exceed drilled_depth_m ", FormatDouble(well.drilled_depth_m())),
        FormatDouble(well.static_water_level_m()));
  }
  FS_RETURN_IF_ERROR(c.Number("yield_lph", well.yield_lph(), 0, 200'000));
  FS_RETURN_IF_ERROR(
      c.Enum("water_source", well.water_source(), v1::WaterSource_IsValid, Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Enum("extraction", well.extraction(), v1::ExtractionTechnology_IsValid,
                            Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Enum("functional_status", well.functional_status(),
                            v1::FunctionalStatus_IsValid, Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Integer("population_served", well.population_served(), 0, 100'000));
  FS_RETURN_IF_ERROR(c.Date("commissioned_date", well.commissioned_date(), Presence::kOptional));
  FS_RETURN_IF_ERROR(c.Date("visit_date", well.visit_date(), Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Count("quality_tests", well.quality_tests_size(), 0,
                             MaxEntries(*v1::WellRecord::descriptor()->FindFieldByName(
                                 "quality_tests")),
                             "tests"));
  for (int i = 0; i < well.quality_tests_size(); ++i) {
    FS_RETURN_IF_ERROR(
        ValidateQualityTest(well.quality_tests(i), Checker(c.Element("quality_tests", i))));
  }
  return c.Text("notes", well.notes(), 0, 2000, Lines::kMany);
}

absl::Status ValidateFollowUp(const v1::FollowUpVisit& visit, absl::string_view surgery_date,
                              const Checker& c) {
  FS_RETURN_IF_ERROR(
      c.Enum("stage", visit.stage(), v1::FollowUpStage_IsValid, Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Date("visit_date", visit.visit_date(), Presence::kRequired));
  FS_RETURN_IF_ERROR(c.NotBefore("visit_date", visit.visit_date(), "surgery_date", surgery_date));
  FS_RETURN_IF_ERROR(c.Acuity("presenting_va", visit.presenting_va(), Presence::kRequired));
  return c.Acuity("best_corrected_va", visit.best_corrected_va(), Presence::kOptional);
}

absl::Status ValidateSurgery(const v1::CataractSurgery& surgery, const Checker& c) {
  FS_RETURN_IF_ERROR(c.Ref("patient_ref", surgery.patient_ref(), /*identifies_patient=*/true));
  FS_RETURN_IF_ERROR(c.Integer("age_years", surgery.age_years(), 0, 120));
  FS_RETURN_IF_ERROR(c.Enum("sex", surgery.sex(), v1::Sex_IsValid, Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Enum("eye", surgery.eye(), v1::Eye_IsValid, Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Date("surgery_date", surgery.surgery_date(), Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Ref("surgeon_ref", surgery.surgeon_ref()));
  FS_RETURN_IF_ERROR(
      c.Enum("technique", surgery.technique(), v1::SurgicalTechnique_IsValid, Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Acuity("preop_va", surgery.preop_va(), Presence::kOptional));

  // Index of the visit already seen for each stage, -1 if none.
  std::array<int, v1::FollowUpStage_ARRAYSIZE> visit_of_stage;
  visit_of_stage.fill(-1);
  for (int i = 0; i < surgery.follow_ups_size(); ++i) {
    const v1::FollowUpVisit& visit = surgery.follow_ups(i);
    const Checker visit_checker(c.Element("follow_ups", i));
    FS_RETURN_IF_ERROR(ValidateFollowUp(visit, surgery.surgery_date(), visit_checker));
    int& seen = visit_of_stage[visit.stage()];  // a valid stage after ValidateFollowUp
    if (seen >= 0) {
      return visit_checker.Fail("stage", absl::StrCat("duplicate of follow_ups[", seen, "]"),
                                v1::FollowUpStage_Name(visit.stage()));
    }
    seen = i;
  }
  for (int i = 0; i < surgery.complications_size(); ++i) {
    FS_RETURN_IF_ERROR(
        c.Text(absl::StrCat("complications[", i, "]"), surgery.complications(i), 1, 200));
  }
  return absl::OkStatus();
}

absl::Status ValidateDonationItem(const v1::DonationItem& item, const Checker& c) {
  FS_RETURN_IF_ERROR(c.Text("item_type", item.item_type(), 1, 100));
  FS_RETURN_IF_ERROR(c.Integer("quantity", item.quantity(), 1, 100'000));
  FS_RETURN_IF_ERROR(c.Integer("quantity_received", item.quantity_received(), 0, item.quantity()));
  // Optional: a donated item's value is not always known.
  if (item.has_unit_value()) FS_RETURN_IF_ERROR(c.Money("unit_value", item.unit_value(), 0));
  return absl::OkStatus();
}

absl::Status ValidateDonation(const v1::ClassroomDonation& donation, const Checker& c) {
  FS_RETURN_IF_ERROR(c.Text("school_name", donation.school_name(), 1, 200));
  FS_RETURN_IF_ERROR(c.Count(
      "items", donation.items_size(), 1,
      MaxEntries(*v1::ClassroomDonation::descriptor()->FindFieldByName("items")), "items"));
  for (int i = 0; i < donation.items_size(); ++i) {
    FS_RETURN_IF_ERROR(ValidateDonationItem(donation.items(i), Checker(c.Element("items", i))));
  }
  FS_RETURN_IF_ERROR(c.Date("delivered_date", donation.delivered_date(), Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Text("received_by", donation.received_by(), 0, 100));
  FS_RETURN_IF_ERROR(
      c.Enum("condition", donation.condition(), v1::ItemCondition_IsValid, Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Integer("students_reached", donation.students_reached(), 0, 100'000));
  return c.Integer("teachers_trained", donation.teachers_trained(), 0, 10'000);
}

absl::Status ValidateExpenditure(const v1::Expenditure& expenditure, const Checker& c) {
  if (!expenditure.has_amount()) return c.Missing("amount");
  FS_RETURN_IF_ERROR(c.Money("amount", expenditure.amount(), 1));
  FS_RETURN_IF_ERROR(c.Enum("category", expenditure.category(), v1::ExpenditureCategory_IsValid,
                            Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Date("spent_date", expenditure.spent_date(), Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Text("receipt_ref", expenditure.receipt_ref(), 0, 100));
  return c.Text("description", expenditure.description(), 0, 500, Lines::kMany);
}

// An IATI activity identifier "{reporting-org}-{activity}": no spaces, and a hyphen with text
// on both sides.
bool IsIatiIdentifier(absl::string_view id) {
  for (char ch : id) {
    if (static_cast<unsigned char>(ch) <= ' ' || ch == 0x7F) return false;
  }
  const size_t hyphen = id.find('-');
  return hyphen != absl::string_view::npos && hyphen > 0 && id.back() != '-';
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public
// ---------------------------------------------------------------------------------------------

absl::Status ValidatePartner(const v1::Partner& partner) {
  FS_RETURN_IF_ERROR(CheckDocumentSize(partner, "partner"));
  const Checker c("partner");
  FS_RETURN_IF_ERROR(c.Id("id", partner.id(), Presence::kOptional));
  FS_RETURN_IF_ERROR(c.Text("name", partner.name(), 1, 200));
  FS_RETURN_IF_ERROR(c.Count(
      "countries", partner.countries_size(), 1,
      MaxEntries(*v1::Partner::descriptor()->FindFieldByName("countries")), "countries"));
  for (int i = 0; i < partner.countries_size(); ++i) {
    const std::string field = absl::StrCat("countries[", i, "]");
    FS_RETURN_IF_ERROR(c.Country(field, partner.countries(i)));
    for (int j = 0; j < i; ++j) {
      if (partner.countries(j) == partner.countries(i)) {
        return c.Fail(field, absl::StrCat("duplicate of countries[", j, "]"),
                      Quote(partner.countries(i)));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateProject(const v1::Project& project) {
  FS_RETURN_IF_ERROR(CheckDocumentSize(project, "project"));
  const Checker c("project");
  FS_RETURN_IF_ERROR(c.Id("id", project.id(), Presence::kOptional));
  FS_RETURN_IF_ERROR(c.Id("partner_id", project.partner_id(), Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Enum("kind", project.kind(), v1::ProjectKind_IsValid, Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Text("title", project.title(), 1, 300));
  FS_RETURN_IF_ERROR(c.Country("country", project.country()));
  FS_RETURN_IF_ERROR(c.Text("admin_area", project.admin_area(), 0, 200));
  // UNSPECIFIED is allowed: the server stores PLANNED.
  FS_RETURN_IF_ERROR(
      c.Enum("status", project.status(), v1::ProjectStatus_IsValid, Presence::kOptional));
  FS_RETURN_IF_ERROR(c.Date("start_date", project.start_date(), Presence::kOptional));
  FS_RETURN_IF_ERROR(c.Date("end_date", project.end_date(), Presence::kOptional));
  FS_RETURN_IF_ERROR(
      c.NotBefore("end_date", project.end_date(), "start_date", project.start_date()));
  if (project.has_budget()) FS_RETURN_IF_ERROR(c.Money("budget", project.budget(), 0));
  FS_RETURN_IF_ERROR(c.Text("donor", project.donor(), 0, 200));
  FS_RETURN_IF_ERROR(c.Text("iati_identifier", project.iati_identifier(), 0, 150));
  if (!project.iati_identifier().empty() && !IsIatiIdentifier(project.iati_identifier())) {
    return c.Fail("iati_identifier",
                  "not an IATI identifier {reporting-org}-{activity} without spaces",
                  Quote(project.iati_identifier()));
  }
  return absl::OkStatus();
}

absl::Status ValidateSite(const v1::Site& site) {
  FS_RETURN_IF_ERROR(CheckDocumentSize(site, "site"));
  const Checker c("site");
  FS_RETURN_IF_ERROR(c.Id("id", site.id(), Presence::kOptional));
  FS_RETURN_IF_ERROR(c.Id("project_id", site.project_id(), Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Text("name", site.name(), 1, 200));
  FS_RETURN_IF_ERROR(c.Number("latitude_deg", site.latitude_deg(), -90, 90));
  FS_RETURN_IF_ERROR(c.Number("longitude_deg", site.longitude_deg(), -180, 180));
  return c.Text("admin_area", site.admin_area(), 0, 200);
}

absl::Status ValidateRecord(const v1::Record& record) {
  FS_RETURN_IF_ERROR(CheckDocumentSize(record, "record"));
  const Checker c("record");
  FS_RETURN_IF_ERROR(c.Id("id", record.id(), Presence::kOptional));
  FS_RETURN_IF_ERROR(c.Id("project_id", record.project_id(), Presence::kRequired));
  FS_RETURN_IF_ERROR(c.Id("site_id", record.site_id(), Presence::kOptional));
  switch (record.body_case()) {
    case v1::Record::kWell:
      return ValidateWell(record.well(), Checker(c.Path("well")));
    case v1::Record::kCataractSurgery:
      return ValidateSurgery(record.cataract_surgery(), Checker(c.Path("cataract_surgery")));
    case v1::Record::kClassroomDonation:
      return ValidateDonation(record.classroom_donation(), Checker(c.Path("classroom_donation")));
    case v1::Record::kExpenditure:
      return ValidateExpenditure(record.expenditure(), Checker(c.Path("expenditure")));
    case v1::Record::BODY_NOT_SET:
      break;
  }
  return c.Fail("body",
                "one of well, cataract_surgery, classroom_donation, expenditure is required");
}

absl::Status ValidateUser(const v1::User& user) {
  FS_RETURN_IF_ERROR(CheckDocumentSize(user, "user"));
  const Checker c("user");
  FS_RETURN_IF_ERROR(c.Id("id", user.id(), Presence::kOptional));
  FS_RETURN_IF_ERROR(c.Text("name", user.name(), 1, 200));
  FS_RETURN_IF_ERROR(c.Enum("role", user.role(), v1::Role_IsValid, Presence::kRequired));
  if (user.role() == v1::ROLE_FIELD_DEVICE) {
    return c.Id("partner_id", user.partner_id(), Presence::kRequired);
  }
  if (!user.partner_id().empty()) {
    return c.Fail("partner_id", "must be empty unless role is ROLE_FIELD_DEVICE",
                  Quote(user.partner_id()));
  }
  return absl::OkStatus();
}

absl::Status ValidateDevice(const v1::Device& device) {
  FS_RETURN_IF_ERROR(CheckDocumentSize(device, "device"));
  const Checker c("device");
  FS_RETURN_IF_ERROR(c.Id("id", device.id(), Presence::kOptional));
  FS_RETURN_IF_ERROR(c.Id("partner_id", device.partner_id(), Presence::kRequired));
  return c.Text("name", device.name(), 1, 200);
}

int MaxEntries(const google::protobuf::FieldDescriptor& field) {
  const ListCap* cap = CapOf(field);
  return cap == nullptr ? 0 : cap->max_entries;
}

absl::Status CheckDocumentSize(const google::protobuf::Message& document, absl::string_view root) {
  // The lists first: counting entries is cheaper than sizing a document of 300,000 of them.
  FS_RETURN_IF_ERROR(CheckLists(document, std::string(root)));
  const size_t bytes = document.ByteSizeLong();
  if (bytes > kMaxDocumentBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        root, ": a document may have at most ", kMaxDocumentBytes, " bytes, got ", bytes));
  }
  return absl::OkStatus();
}

absl::Status ValidateId(absl::string_view path, absl::string_view id, bool allow_empty) {
  if (id.empty()) {
    if (allow_empty) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(path, ": required"));
  }
  if (!IsUuid(id)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a lower-case UUID, got ", Quote(id)));
  }
  return absl::OkStatus();
}

absl::Status ValidateOptionalDate(absl::string_view path, absl::string_view date) {
  return Checker(std::string(path)).Date("", date, Presence::kOptional);
}

bool IsDate(absl::string_view date) {
  if (date.size() != 10 || date[4] != '-' || date[7] != '-') return false;
  const int year = Digits(date, 0, 4);
  const int month = Digits(date, 5, 7);
  const int day = Digits(date, 8, 10);
  if (year < kMinYear || year > kMaxYear || month < 1 || month > 12) return false;
  return day >= 1 && day <= DaysInMonth(year, month);
}

v1::RecordKind KindOf(const v1::Record& record) {
  switch (record.body_case()) {
    case v1::Record::kWell:
      return v1::RECORD_KIND_WELL;
    case v1::Record::kCataractSurgery:
      return v1::RECORD_KIND_CATARACT_SURGERY;
    case v1::Record::kClassroomDonation:
      return v1::RECORD_KIND_CLASSROOM_DONATION;
    case v1::Record::kExpenditure:
      return v1::RECORD_KIND_EXPENDITURE;
    case v1::Record::BODY_NOT_SET:
      break;
  }
  return v1::RECORD_KIND_UNSPECIFIED;
}

std::string RecordDateOf(const v1::Record& record) {
  switch (record.body_case()) {
    case v1::Record::kWell:
      return record.well().visit_date();
    case v1::Record::kCataractSurgery:
      return record.cataract_surgery().surgery_date();
    case v1::Record::kClassroomDonation:
      return record.classroom_donation().delivered_date();
    case v1::Record::kExpenditure:
      return record.expenditure().spent_date();
    case v1::Record::BODY_NOT_SET:
      break;
  }
  return "";
}

v1::ProjectKind ProjectKindFor(v1::RecordKind kind) {
  switch (kind) {
    case v1::RECORD_KIND_WELL:
      return v1::PROJECT_KIND_WELL;
    case v1::RECORD_KIND_CATARACT_SURGERY:
      return v1::PROJECT_KIND_CATARACT;
    case v1::RECORD_KIND_CLASSROOM_DONATION:
      return v1::PROJECT_KIND_CLASSROOM;
    default:
      // Expenditures fit any project; unknown kinds fit none in particular.
      return v1::PROJECT_KIND_UNSPECIFIED;
  }
}

}  // namespace fieldsync::model
