#include "cli/commands.h"

#include "cli/listing.h"

namespace fieldsync::cli {
namespace {

std::vector<FlagSpec> ProjectFlags(bool create) {
  std::vector<FlagSpec> flags;
  if (create) {
    flags.push_back({"partner", "ID", "partner that runs the project", true});
    flags.push_back({"kind", "KIND", "well, cataract or classroom", true});
  }
  flags.push_back({"title", "TEXT", "project title", create});
  flags.push_back({"country", "CC", "ISO 3166-1 alpha-2 code, one of the partner's", create});
  flags.push_back({"admin-area", "TEXT", "region, province or district"});
  flags.push_back({"status", "STATUS", "planned (default), active, completed or cancelled"});
  flags.push_back({"start", "YYYY-MM-DD", "start date"});
  flags.push_back({"end", "YYYY-MM-DD", "end date, not before the start"});
  flags.push_back({"budget", "AMOUNT", "total budget in major units, e.g. 12345.67"});
  flags.push_back({"currency", "CODE", "ISO 4217 currency of --budget, e.g. USD, KES, UGX"});
  flags.push_back({"donor", "TEXT", "funding organisation"});
  flags.push_back({"iati-id", "ID", "IATI activity identifier"});
  return flags;
}

std::vector<FlagSpec> RecordBodyFlags() {
  return {
      {"file", "FILE", "the record as proto JSON in FILE ('-' for stdin)"},
      {"data", "JSON", "the record as proto JSON text ('-' for stdin)"},
  };
}

constexpr char kRecordJsonHelp[] =
    "The record is a fieldsync.v1.Record in protobuf JSON with exactly one body, e.g.\n"
    "  {\"project_id\":\"...\",\"site_id\":\"...\",\"well\":{\"water_source\":"
    "\"WATER_SOURCE_BOREHOLE\",\n"
    "   \"extraction\":\"EXTRACTION_TECHNOLOGY_HAND_PUMP\",\"functional_status\":"
    "\"FUNCTIONAL_STATUS_FUNCTIONAL\",\n"
    "   \"visit_date\":\"2024-03-01\",\"population_served\":350}}\n"
    "Other bodies: cataract_surgery, classroom_donation, expenditure (see domain.proto).\n"
    "Give exactly one of --file and --data.";

}  // namespace

const std::vector<GroupSpec>& Groups() {
  static const auto* const kGroups = new std::vector<GroupSpec>{
      {"partners", "Partner organisations that run projects."},
      {"projects", "Charity projects: wells, cataract surgery, classrooms."},
      {"sites", "Places where projects work: water points, clinics, schools."},
      {"records", "Field records: wells, surgeries, donations, expenditures."},
      {"users", "People with access: HQ, auditors, partner staff (admin only)."},
      {"devices", "Field devices of partners (admin only)."},
      {"tokens", "Bearer tokens of users and devices (admin only)."},
  };
  return *kGroups;
}

const std::vector<CommandSpec>& Commands() {
  static const auto* const kCommands = new std::vector<CommandSpec>{
      // Partners.
      {"partners list", {}, "List partner organisations.", WithPagingFlags({}), RunPartnersList},
      {"partners get", {"ID"}, "Show one partner.", {}, RunPartnersGet},
      {"partners create",
       {},
       "Create a partner.",
       {{"name", "NAME", "display name, unique", true},
        {"countries", "CC,CC", "countries it works in, e.g. KE,UG", true}},
       RunPartnersCreate},
      {"partners update",
       {"ID"},
       "Change a partner's name or countries.",
       {{"name", "NAME", "new display name"},
        {"countries", "CC,CC", "new list of countries (replaces the old one)"}},
       RunPartnersUpdate},

      // Projects.
      {"projects list",
       {},
       "List projects matching all the given filters.",
       WithPagingFlags({{"kind", "KIND", "well, cataract or classroom"},
                        {"country", "CC", "ISO 3166-1 alpha-2 country code"},
                        {"partner", "ID", "partner id"},
                        {"status", "STATUS", "planned, active, completed or cancelled"},
                        {"text", "TEXT", "text in title, donor, admin area or IATI id"}}),
       RunProjectsList},
      {"projects get", {"ID"}, "Show one project.", {}, RunProjectsGet},
      {"projects create",
       {},
       "Create a project.",
       ProjectFlags(/*create=*/true),
       RunProjectsCreate,
       "The budget amount is converted to minor units by the currency (2 decimals for USD,\n"
       "none for UGX, RWF, VND, XOF, XAF...)."},
      {"projects update",
       {"ID"},
       "Change a project's editable fields.",
       ProjectFlags(/*create=*/false),
       RunProjectsUpdate,
       "Fetches the project, applies the options given and stores it, failing if someone\n"
       "changed it meanwhile. Partner and kind cannot change. --budget alone keeps the\n"
       "currency; an empty value (--donor \"\") clears a text field."},

      // Sites.
      {"sites list",
       {},
       "List sites.",
       WithPagingFlags({{"project", "ID", "only sites of this project"}}),
       RunSitesList},
      {"sites get", {"ID"}, "Show one site.", {}, RunSitesGet},
      {"sites create",
       {},
       "Create a site in a project.",
       {{"project", "ID", "project the site belongs to", true},
        {"name", "NAME", "name of the place", true},
        {"lat", "DEGREES", "WGS84 latitude, -90..90", true},
        {"lon", "DEGREES", "WGS84 longitude, -180..180", true},
        {"admin-area", "TEXT", "district or commune"}},
       RunSitesCreate},

      // Records.
      {"records list",
       {},
       "List field records matching all the given filters.",
       WithPagingFlags({{"kind", "KIND", "well, cataract, classroom or expenditure"},
                        {"project", "ID", "project id"},
                        {"site", "ID", "site id"},
                        {"from", "YYYY-MM-DD", "records dated on or after"},
                        {"to", "YYYY-MM-DD", "records dated on or before"},
                        {"partner", "ID", "records of this partner's projects"},
                        {"country", "CC", "records of projects in this country"}}),
       RunRecordsList},
      {"records get", {"ID"}, "Show one record.", {}, RunRecordsGet},
      {"records create",
       {},
       "Create a field record from JSON.",
       RecordBodyFlags(),
       RunRecordsCreate,
       kRecordJsonHelp},
      {"records update",
       {"ID"},
       "Replace a record's body or site from JSON.",
       RecordBodyFlags(),
       RunRecordsUpdate,
       std::string(kRecordJsonHelp) +
           "\nFields left out keep their current values; a body given replaces the whole body.\n"
           "Fails if someone changed the record meanwhile."},

      // Indicators.
      {"stats",
       {},
       "Indicators: water points, cataract outcomes, classrooms, spend.",
       {{"by", "GROUPING", "none (default), country, partner, kind or month"},
        {"partner", "ID", "only projects of this partner"},
        {"country", "CC", "only projects in this country"},
        {"kind", "KIND", "only projects of this kind: well, cataract or classroom"},
        {"from", "YYYY-MM-DD", "only records dated on or after"},
        {"to", "YYYY-MM-DD", "only records dated on or before"}},
       RunStats,
       "Money is shown in major units per currency; budgets are not monthly, so --by month\n"
       "shows spend only."},

      // Administration.
      {"users list", {}, "List users.", WithPagingFlags({}), RunUsersList},
      {"users create",
       {},
       "Create a user.",
       {{"name", "NAME", "login or display name, unique", true},
        {"role", "ROLE", "admin, hq, auditor or field", true},
        {"partner", "ID", "the partner of a field user (field role only)"}},
       RunUsersCreate},
      {"devices list",
       {},
       "List field devices and when they last synced.",
       WithPagingFlags({{"partner", "ID", "only devices of this partner"}}),
       RunDevicesList},
      {"devices create",
       {},
       "Register a field device for a partner.",
       {{"partner", "ID", "partner whose data the device holds", true},
        {"name", "NAME", "label, e.g. \"Tablet 3, Kisumu team\"", true}},
       RunDevicesCreate},
      {"tokens list",
       {},
       "List tokens (never their secrets).",
       WithPagingFlags({{"user", "ID", "only tokens of this user"},
                        {"device", "ID", "only tokens of this device"}}),
       RunTokensList},
      {"tokens create",
       {},
       "Issue a token for a user or a device; prints the secret once.",
       {{"user", "ID", "the user the token acts for"},
        {"device", "ID", "the device the token acts for"},
        {"label", "TEXT", "free label, e.g. \"laptop of the M&E officer\""},
        {"ttl", "DURATION", "lifetime: 30d, 12h, 90m, 3600s or never (default: never)"}},
       RunTokensCreate,
       "Give exactly one of --user and --device. The secret is shown only in this output;\n"
       "the server keeps only its hash."},
      {"tokens revoke",
       {"TOKEN_ID"},
       "Revoke a token; calls made with it fail from then on.",
       {},
       RunTokensRevoke},
      {"whoami", {}, "Show whose token is in use, and its role.", {}, RunWhoAmI},
  };
  return *kCommands;
}

}  // namespace fieldsync::cli
