// IATI Activity Standard 2.03 XML. Element order follows iati-activities-schema.xsd
// (tests/data/iati); each activity is built whole in memory, then passed on.
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "fieldsync/report/writer.h"
#include "internal.h"

namespace fieldsync::report {

namespace {

// Escapes text for element content and attribute values alike; drops what XML 1.0 forbids.
std::string Xml(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const unsigned char c = static_cast<unsigned char>(text[0]);
    if (c >= 0x80) {
      internal::Utf8Char u = internal::DecodeUtf8(text);
      if (u.code_point < 0) {
        out.append(internal::kReplacementChar.data(), internal::kReplacementChar.size());
      } else if (u.code_point != 0xFFFE && u.code_point != 0xFFFF) {
        out.append(text.data(), u.length);
      }
      text.remove_prefix(u.length);
      continue;
    }
    text.remove_prefix(1);
    switch (c) {
      case '&':
        out.append("&amp;");
        break;
      case '<':
        out.append("&lt;");
        break;
      case '>':
        out.append("&gt;");
        break;
      case '"':
        out.append("&quot;");
        break;
      case '\'':
        out.append("&apos;");
        break;
      // As references they survive attribute-value and line-end normalisation.
      case '\t':
        out.append("&#9;");
        break;
      case '\n':
        out.append("&#10;");
        break;
      case '\r':
        out.append("&#13;");
        break;
      default:
        if (c >= 0x20) out.push_back(static_cast<char>(c));  // other controls: dropped
    }
  }
  return out;
}

bool IsDigits(absl::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return !s.empty();
}

// xsd:date as we write it: YYYY-MM-DD with a month 01-12 and a day 01-31.
bool IsIsoDate(absl::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !IsDigits(s.substr(0, 4)) ||
      !IsDigits(s.substr(5, 2)) || !IsDigits(s.substr(8, 2))) {
    return false;
  }
  const int month = (s[5] - '0') * 10 + (s[6] - '0');
  const int day = (s[8] - '0') * 10 + (s[9] - '0');
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

// xsd:dateTime as we accept it: YYYY-MM-DDTHH:MM:SS, optional fraction, optional Z or +hh:mm.
bool IsIsoDateTime(absl::string_view s) {
  if (s.size() < 19 || !IsIsoDate(s.substr(0, 10)) || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || !IsDigits(s.substr(11, 2)) || !IsDigits(s.substr(14, 2)) ||
      !IsDigits(s.substr(17, 2))) {
    return false;
  }
  absl::string_view rest = s.substr(19);
  if (!rest.empty() && rest[0] == '.') {
    size_t n = 1;
    while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') ++n;
    if (n == 1) return false;
    rest.remove_prefix(n);
  }
  if (rest.empty() || rest == "Z") return true;
  return rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && IsDigits(rest.substr(1, 2)) &&
         rest[3] == ':' && IsDigits(rest.substr(4, 2));
}

// amount_minor / 10^minor_units as an exact decimal.
std::string Amount(int64_t amount_minor, int minor_units) {
  const bool negative = amount_minor < 0;
  // Magnitude in unsigned arithmetic, so INT64_MIN works too.
  uint64_t magnitude =
      negative ? ~static_cast<uint64_t>(amount_minor) + 1 : static_cast<uint64_t>(amount_minor);
  std::string digits = absl::StrCat(magnitude);
  const size_t units = static_cast<size_t>(minor_units);
  if (units > 0) {
    if (digits.size() <= units) digits.insert(0, units + 1 - digits.size(), '0');
    digits.insert(digits.size() - units, ".");
  }
  return negative ? absl::StrCat("-", digits) : digits;
}

absl::Status Invalid(const IatiActivity& a, absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("iati activity \"", a.identifier, "\": ", field, ": ", why));
}

absl::Status CheckDate(const IatiActivity& a, absl::string_view field, absl::string_view value) {
  if (value.empty() || IsIsoDate(value)) return absl::OkStatus();
  return Invalid(a, field, absl::StrCat("must be YYYY-MM-DD, got \"", value, "\""));
}

absl::Status CheckMinorUnits(const IatiActivity& a, absl::string_view field, int units) {
  if (units >= 0 && units <= 18) return absl::OkStatus();
  return Invalid(a, field, absl::StrCat("must be in [0, 18], got ", units));
}

absl::Status CheckActivity(const IatiActivity& a) {
  if (a.identifier.empty()) return Invalid(a, "identifier", "required");
  if (a.participating_orgs.empty()) {
    return Invalid(a, "participating_orgs", "IATI requires at least one");
  }
  for (size_t i = 0; i < a.participating_orgs.size(); ++i) {
    const int role = a.participating_orgs[i].role;
    if (role < 1 || role > 4) {
      return Invalid(a, absl::StrCat("participating_orgs[", i, "].role"),
                     absl::StrCat("must be 1-4, got ", role));
    }
  }
  if (a.planned_start.empty() && a.actual_start.empty() && a.planned_end.empty() &&
      a.actual_end.empty()) {
    return Invalid(a, "planned_start",
                   "IATI requires at least one activity date (planned/actual start/end)");
  }
  if (!a.last_updated.empty() && !IsIsoDateTime(a.last_updated)) {
    return Invalid(a, "last_updated",
                   absl::StrCat("must be YYYY-MM-DDTHH:MM:SSZ, got \"", a.last_updated, "\""));
  }
  const std::pair<const char*, const std::string*> dates[] = {
      {"planned_start", &a.planned_start},
      {"actual_start", &a.actual_start},
      {"planned_end", &a.planned_end},
      {"actual_end", &a.actual_end},
      {"budget_period_start", &a.budget_period_start},
      {"budget_period_end", &a.budget_period_end},
      {"budget_value_date", &a.budget_value_date}};
  for (const auto& [field, value] : dates) {
    if (absl::Status s = CheckDate(a, field, *value); !s.ok()) return s;
  }
  if (absl::Status s = CheckMinorUnits(a, "budget_minor_units", a.budget_minor_units); !s.ok()) {
    return s;
  }
  for (size_t i = 0; i < a.transactions.size(); ++i) {
    const IatiTransaction& t = a.transactions[i];
    const std::string field = absl::StrCat("transactions[", i, "]");
    if (t.date.empty()) return Invalid(a, absl::StrCat(field, ".date"), "required");
    if (absl::Status s = CheckDate(a, absl::StrCat(field, ".date"), t.date); !s.ok()) return s;
    if (absl::Status s = CheckMinorUnits(a, absl::StrCat(field, ".minor_units"), t.minor_units);
        !s.ok()) {
      return s;
    }
  }
  for (size_t r = 0; r < a.results.size(); ++r) {
    for (size_t i = 0; i < a.results[r].indicators.size(); ++i) {
      const auto& periods = a.results[r].indicators[i].periods;
      for (size_t p = 0; p < periods.size(); ++p) {
        const std::string field =
            absl::StrCat("results[", r, "].indicators[", i, "].periods[", p, "]");
        if (absl::Status s = CheckDate(a, field + ".start_date", periods[p].start_date); !s.ok()) {
          return s;
        }
        if (absl::Status s = CheckDate(a, field + ".end_date", periods[p].end_date); !s.ok()) {
          return s;
        }
      }
    }
  }
  return absl::OkStatus();
}

void AppendNarrativeElement(std::string* out, absl::string_view indent, absl::string_view element,
                            absl::string_view attributes, absl::string_view text) {
  absl::StrAppend(out, indent, "<", element, attributes, "><narrative>", Xml(text),
                  "</narrative></", element, ">\n");
}

void AppendOrgAttributes(std::string* out, const IatiOrganisation& org) {
  if (!org.ref.empty()) absl::StrAppend(out, " ref=\"", Xml(org.ref), "\"");
  if (org.type != 0) absl::StrAppend(out, " type=\"", org.type, "\"");
}

bool HasPoint(const IatiLocation& l) {
  const double lat = l.latitude_deg;
  const double lon = l.longitude_deg;
  if (!std::isfinite(lat) || !std::isfinite(lon)) return false;
  if (lat < -90 || lat > 90 || lon < -180 || lon > 180) return false;
  return !(lat == 0 && lon == 0);
}

std::string ActivityXml(const IatiActivity& a, const IatiOrganisation& reporting_org) {
  std::string x;
  absl::StrAppend(&x, "  <iati-activity");
  if (!a.last_updated.empty()) {
    absl::StrAppend(&x, " last-updated-datetime=\"", Xml(a.last_updated), "\"");
  }
  absl::StrAppend(&x, " xml:lang=\"en\"");
  if (!a.default_currency.empty()) {
    absl::StrAppend(&x, " default-currency=\"", Xml(a.default_currency), "\"");
  }
  absl::StrAppend(&x, ">\n");
  absl::StrAppend(&x, "    <iati-identifier>", Xml(a.identifier), "</iati-identifier>\n");

  std::string org_attributes;
  AppendOrgAttributes(&org_attributes, reporting_org);
  AppendNarrativeElement(&x, "    ", "reporting-org", org_attributes, reporting_org.name);
  AppendNarrativeElement(&x, "    ", "title", "", a.title);
  AppendNarrativeElement(&x, "    ", "description", " type=\"1\"", a.description);

  for (const IatiOrganisation& org : a.participating_orgs) {
    std::string attributes = absl::StrCat(" role=\"", org.role, "\"");
    AppendOrgAttributes(&attributes, org);
    if (org.name.empty()) {
      absl::StrAppend(&x, "    <participating-org", attributes, "/>\n");
    } else {
      AppendNarrativeElement(&x, "    ", "participating-org", attributes, org.name);
    }
  }
  absl::StrAppend(&x, "    <activity-status code=\"", a.status, "\"/>\n");
  const std::pair<int, const std::string*> dates[] = {
      {1, &a.planned_start}, {2, &a.actual_start}, {3, &a.planned_end}, {4, &a.actual_end}};
  for (const auto& [type, date] : dates) {
    if (!date->empty()) {
      absl::StrAppend(&x, "    <activity-date type=\"", type, "\" iso-date=\"", *date, "\"/>\n");
    }
  }
  if (!a.recipient_country.empty()) {
    absl::StrAppend(&x, "    <recipient-country code=\"", Xml(a.recipient_country),
                    "\" percentage=\"100\"/>\n");
  }
  for (const IatiLocation& l : a.locations) {
    const bool point = HasPoint(l);
    if (l.ref.empty() && l.name.empty() && !point) continue;
    absl::StrAppend(&x, "    <location");
    if (!l.ref.empty()) absl::StrAppend(&x, " ref=\"", Xml(l.ref), "\"");
    absl::StrAppend(&x, ">\n");
    if (!l.name.empty()) AppendNarrativeElement(&x, "      ", "name", "", l.name);
    if (point) {
      absl::StrAppend(&x,
                      "      <point srsName=\"http://www.opengis.net/def/crs/EPSG/0/4326\"><pos>",
                      internal::DoubleText(l.latitude_deg), " ",
                      internal::DoubleText(l.longitude_deg), "</pos></point>\n");
    }
    absl::StrAppend(&x, "    </location>\n");
  }
  if (a.dac_sector != 0) {
    absl::StrAppend(&x, "    <sector vocabulary=\"1\" code=\"", a.dac_sector,
                    "\" percentage=\"100\"/>\n");
  }
  if (!a.budget_period_start.empty() && !a.budget_period_end.empty()) {
    const std::string& value_date =
        a.budget_value_date.empty() ? a.budget_period_start : a.budget_value_date;
    absl::StrAppend(&x, "    <budget type=\"1\" status=\"1\">\n");
    absl::StrAppend(&x, "      <period-start iso-date=\"", a.budget_period_start, "\"/>\n");
    absl::StrAppend(&x, "      <period-end iso-date=\"", a.budget_period_end, "\"/>\n");
    absl::StrAppend(&x, "      <value");
    if (!a.default_currency.empty()) {
      absl::StrAppend(&x, " currency=\"", Xml(a.default_currency), "\"");
    }
    absl::StrAppend(&x, " value-date=\"", value_date, "\">",
                    Amount(a.budget_minor, a.budget_minor_units), "</value>\n");
    absl::StrAppend(&x, "    </budget>\n");
  }
  for (const IatiTransaction& t : a.transactions) {
    absl::StrAppend(&x, "    <transaction");
    if (!t.ref.empty()) absl::StrAppend(&x, " ref=\"", Xml(t.ref), "\"");
    absl::StrAppend(&x, ">\n");
    absl::StrAppend(&x, "      <transaction-type code=\"", t.type, "\"/>\n");
    absl::StrAppend(&x, "      <transaction-date iso-date=\"", t.date, "\"/>\n");
    absl::StrAppend(&x, "      <value");
    if (!t.currency.empty()) absl::StrAppend(&x, " currency=\"", Xml(t.currency), "\"");
    absl::StrAppend(&x, " value-date=\"", t.date, "\">", Amount(t.amount_minor, t.minor_units),
                    "</value>\n");
    if (!t.description.empty()) {
      AppendNarrativeElement(&x, "      ", "description", "", t.description);
    }
    absl::StrAppend(&x, "    </transaction>\n");
  }
  for (const IatiResult& r : a.results) {
    if (r.indicators.empty()) continue;  // the schema needs at least one
    absl::StrAppend(&x, "    <result type=\"", r.type, "\">\n");
    AppendNarrativeElement(&x, "      ", "title", "", r.title);
    for (const IatiIndicator& ind : r.indicators) {
      absl::StrAppend(&x, "      <indicator measure=\"", ind.measure, "\" ascending=\"",
                      ind.ascending ? 1 : 0, "\">\n");
      AppendNarrativeElement(&x, "        ", "title", "", ind.title);
      if (!ind.description.empty()) {
        AppendNarrativeElement(&x, "        ", "description", "", ind.description);
      }
      for (const IatiIndicatorPeriod& p : ind.periods) {
        if (p.start_date.empty() || p.end_date.empty()) continue;
        absl::StrAppend(&x, "        <period>\n");
        absl::StrAppend(&x, "          <period-start iso-date=\"", p.start_date, "\"/>\n");
        absl::StrAppend(&x, "          <period-end iso-date=\"", p.end_date, "\"/>\n");
        if (p.has_target && std::isfinite(p.target)) {
          absl::StrAppend(&x, "          <target value=\"", internal::DoubleText(p.target),
                          "\"/>\n");
        }
        if (std::isfinite(p.actual)) {
          absl::StrAppend(&x, "          <actual value=\"", internal::DoubleText(p.actual),
                          "\"/>\n");
        }
        absl::StrAppend(&x, "        </period>\n");
      }
      absl::StrAppend(&x, "      </indicator>\n");
    }
    absl::StrAppend(&x, "    </result>\n");
  }
  absl::StrAppend(&x, "  </iati-activity>\n");
  return x;
}

}  // namespace

IatiWriter::IatiWriter(ByteSink* sink, IatiOrganisation reporting_org,
                       absl::string_view generated_datetime)
    : sink_(sink),
      reporting_org_(std::move(reporting_org)),
      generated_datetime_(generated_datetime) {}

absl::Status IatiWriter::Emit(absl::string_view xml, bool flush) {
  if (pending_.size() + xml.size() < internal::kChunkBytes && !flush) {
    pending_.append(xml.data(), xml.size());
    return absl::OkStatus();
  }
  pending_.append(xml.data(), xml.size());
  absl::string_view rest = pending_;
  // Whole chunks now; the tail waits for more unless this is the end.
  while (rest.size() >= internal::kChunkBytes || (flush && !rest.empty())) {
    absl::string_view piece = rest.substr(0, internal::kChunkBytes);
    if (absl::Status s = sink_->Write(piece); !s.ok()) return s;
    rest.remove_prefix(piece.size());
  }
  pending_ = std::string(rest);
  return absl::OkStatus();
}

absl::Status IatiWriter::Begin() {
  if (begun_) return internal::OutOfOrder("IATI", "Begin called twice");
  if (reporting_org_.ref.empty()) {
    return absl::InvalidArgumentError(
        "reporting_org.ref: IATI requires an organisation identifier");
  }
  if (reporting_org_.type == 0) {
    return absl::InvalidArgumentError("reporting_org.type: IATI requires an organisation type");
  }
  if (!IsIsoDateTime(generated_datetime_)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "generated_datetime: must be YYYY-MM-DDTHH:MM:SSZ, got \"", generated_datetime_, "\""));
  }
  begun_ = true;
  return Emit(absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                           "<iati-activities version=\"2.03\" generated-datetime=\"",
                           generated_datetime_, "\">\n"),
              /*flush=*/false);
}

absl::Status IatiWriter::WriteActivity(const IatiActivity& activity) {
  if (!begun_ || ended_) {
    return internal::OutOfOrder("IATI", "WriteActivity outside Begin/End");
  }
  if (absl::Status s = CheckActivity(activity); !s.ok()) return s;
  if (absl::Status s = Emit(ActivityXml(activity, reporting_org_), /*flush=*/false); !s.ok()) {
    return s;
  }
  ++activities_;
  return absl::OkStatus();
}

absl::Status IatiWriter::End() {
  if (!begun_ || ended_) return internal::OutOfOrder("IATI", "End without Begin, or twice");
  ended_ = true;
  return Emit("</iati-activities>\n", /*flush=*/true);
}

}  // namespace fieldsync::report
