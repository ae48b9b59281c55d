#include "cli/commands.h"

#include "cli/listing.h"
#include "cli/records.h"

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

// --device-db, which every command of a field device takes, after `flags`.
std::vector<FlagSpec> WithDeviceDbFlag(std::vector<FlagSpec> flags) {
  flags.push_back({"device-db", "PATH",
                   "the device's database (default: $FIELDSYNC_DEVICE_DB, else "
                   "./fieldsync-device.db)"});
  return flags;
}

std::vector<FlagSpec> RecordFilterFlags() {
  return {{"kind", "KIND", "well, cataract, classroom or expenditure"},
          {"project", "ID", "project id"},
          {"site", "ID", "site id"},
          {"from", "YYYY-MM-DD", "records dated on or after"},
          {"to", "YYYY-MM-DD", "records dated on or before"}};
}

constexpr char kDeviceHelp[] =
    "Works on the device's own database, offline; --server and --token are not used.";

}  // namespace

const std::vector<GroupSpec>& Groups() {
  static const auto* const kGroups = new std::vector<GroupSpec>{
      {"partners", "Partner organisations that run projects."},
      {"projects", "Charity projects: wells, cataract surgery, classrooms."},
      {"sites", "Places where projects work: water points, clinics, schools."},
      {"records", "Field records: wells, surgeries, donations, expenditures."},
      {"users", "People with access: HQ, auditors, partner staff (admin only)."},
      {"conflicts", "Concurrent edits of one field, kept for HQ to review."},
      {"rejections", "Pushed changes the server refused, kept whole for review."},
      {"device rejections", "This device's changes the server refused; resubmit or dismiss."},
      {"devices", "Field devices of partners (admin only)."},
      {"tokens", "Bearer tokens of users and devices (admin only)."},
      {"admin", "Server administration: online backups (admin only)."},
      {"device", "This field device, offline: enrollment, sync state, records."},
      {"device records", "Field records on this device; 'fieldsync sync' exchanges them."},
      {"report", "Verifiable exports for auditors: CSV, XLSX, JSON Lines, IATI."},
      {"audit", "The hash-chained history of every change."},
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
       WithPagingFlags([] {
         std::vector<FlagSpec> flags = RecordFilterFlags();
         flags.push_back({"partner", "ID", "records of this partner's projects"});
         flags.push_back({"country", "CC", "records of projects in this country"});
         return flags;
       }()),
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
      {"records delete",
       {"ID"},
       "Delete a record; devices remove it at their next sync.",
       {},
       RunRecordsDelete},

      // Conflicts.
      {"conflicts list",
       {},
       "List concurrent edits of one field, newest first.",
       WithPagingFlags({{"open", "", "only the conflicts waiting for a decision"},
                        {"doc", "ID", "only conflicts of this project, site or record"}}),
       RunConflictsList,
       "KEPT is the value in force (the later edit), LOST the one it replaced, both as JSON\n"
       "values; --json gives them with their path, and who wrote each, with which clock."},
      {"conflicts resolve",
       {"ID"},
       "Close a conflict, keeping the value in force or taking the lost one (admin only).",
       {{"keep-winner", "", "keep the value in force"},
        {"take-loser", "", "write the lost value back, as a new edit that syncs everywhere"}},
       RunConflictsResolve,
       "Give exactly one of --keep-winner and --take-loser."},

      {"rejections list",
       {},
       "List pushed changes the server refused, newest first, with the reason.",
       WithPagingFlags({{"open", "", "only the rejections waiting for HQ"},
                        {"device", "ID", "only changes of this device"}}),
       RunRejectionsList,
       "A refused change never blocks a device: it is kept here whole (--json shows it), the\n"
       "device lists it too ('fieldsync device rejections') and can resubmit it amended. A\n"
       "field device sees only its own."},
      {"rejections resolve",
       {"ID"},
       "Close a rejection once it has been dealt with (admin only).",
       {{"note", "TEXT", "what was done, kept with the rejection"}},
       RunRejectionsResolve},

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

      // The change feed.
      {"watch",
       {},
       "Print committed changes as they happen, until Ctrl-C.",
       {{"partner", "ID", "only changes of this partner's projects"},
        {"country", "CC", "only changes of projects in this country"},
        {"kind", "KIND", "only records of this kind: well, cataract, classroom or expenditure"},
        {"after", "SEQ", "start after this sequence number (default 0: the whole history first)"},
        {"max-events", "N", "stop after N events"}},
       RunWatch,
       "One line per change: SEQ, COMMITTED (UTC), OP (create, update, delete), COLLECTION,\n"
       "DOCUMENT, PARTNER, COUNTRY, ACTOR (user or device id); with --json one ChangeEvent per\n"
       "line (JSON Lines), with the changed document as the server holds it. Without --timeout it\n"
       "runs until Ctrl-C (exit 0) or --max-events; a --timeout given bounds the whole watch, and\n"
       "ending it before --max-events arrived exits 3. On stopping, stderr says which --after\n"
       "resumes."},

      // Reports for auditors.
      {"report export",
       {},
       "Export tables to a file, with a manifest that proves its content.",
       {{"table", "TABLE[,TABLE]", "what to export (see below); several only for xlsx"},
        {"kind", "TABLE[,TABLE]", "another name for --table"},
        {"format", "FORMAT", "csv, xlsx, jsonl or iati (default: from the --output extension)"},
        {"output", "FILE", "file to write (also -o FILE); its manifest goes to FILE.manifest.json",
         true},
        {"from", "YYYY-MM-DD", "records dated on or after (audit trail: changed on or after)"},
        {"to", "YYYY-MM-DD", "records dated on or before"},
        {"country", "CC", "only projects in this country"},
        {"partner", "ID", "only projects of this partner"},
        {"project", "ID", "only this project"},
        {"project-kind", "KIND", "only projects of this kind: well, cataract or classroom"},
        {"progress", "", "show progress on stderr even when it is not a terminal"}},
       RunReportExport,
       "Tables: projects, sites, wells, water_quality_tests (water-tests), surgeries, follow_ups,\n"
       "donations, donation_items, expenditures, audit_trail (audit), reconciliation,\n"
       "reconciliation_gaps, iati (IATI 2.03 activities; implies --format iati), all (every\n"
       "table but iati; xlsx only). csv and jsonl hold one table; xlsx one sheet per table\n"
       "(without --table: every table but the audit trail).\n"
       "The file is written as FILE.part and renamed to FILE only once its SHA-256 and length\n"
       "match the manifest the server sends at the end; on any failure or Ctrl-C nothing is\n"
       "left at FILE (exit 1 after Ctrl-C). The manifest (export id, SHA-256, row counts,\n"
       "filter, the audit-chain entry the export was cut at) is written to FILE.manifest.json;\n"
       "--json prints it. Progress (rows and bytes) goes to stderr on a terminal, or with\n"
       "--progress; never with --json. Needs an auditor, hq or admin token (exit 4 otherwise).\n"
       "Only a --timeout given bounds the export."},
      {"report verify",
       {"FILE"},
       "Check an exported file against its manifest, offline (and against the server).",
       {{"manifest", "PATH", "the manifest (default: FILE.manifest.json)"},
        {"online", "", "also check against the server (implied by --server)"}},
       RunReportVerify,
       "Offline: recomputes the file's SHA-256 and length and, if they differ, names the first\n"
       "changed block (bytes a-b, starting line); counts the rows; for an audit trail in csv\n"
       "or jsonl recomputes every entry's hash from its columns, checks each prev_hash link,\n"
       "that no entry is missing and that each old_value is what the field's previous change\n"
       "left, and names the first entry that fails.\n"
       "With --server HOST:PORT (or --online) and a token: the server must have recorded the\n"
       "export with the same manifest, and its audit chain must verify up to the entry the\n"
       "export was cut at, with the same hash (its history was not rewritten since).\n"
       "Prints \"OK: ...\" or one \"FAILED: ...\" line per problem. Exit 0 when it verifies,\n"
       "1 when it does not; 5 when FILE or the manifest cannot be read, 3 and 4 as usual."},
      {"audit verify",
       {},
       "Have the server recompute its change log's hash chain.",
       {{"from", "SEQ", "first entry to check (default: the first; earlier ones are trusted)"},
        {"to", "SEQ", "last entry to check (default: the last)"}},
       RunAuditVerify,
       "Prints the entries checked and the head's seq and hash, then OK, or FAILED with the\n"
       "first entry that does not verify and why (changed, missing or inserted). Exit 0 when\n"
       "the chain verifies, 1 when it does not. --json prints the VerifyAuditChainResponse."},

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
      {"devices enroll-code",
       {"DEVICE_ID"},
       "Make a one-time code that enrolls a device ('fieldsync device enroll').",
       {{"ttl", "DURATION", "how long the code stays valid: 7d (default), 12h, ...; at most 30d"}},
       RunDevicesEnrollCode,
       "The code is shown only in this output and works once; the device exchanges it for a\n"
       "token of its own, so no long-lived secret is typed on the device. A new code replaces\n"
       "the device's earlier unused ones, and enrolling revokes the device's earlier tokens."},
      {"devices disable",
       {"DEVICE_ID"},
       "Disable a device (lost or stolen): its tokens are refused from the next call on.",
       {},
       RunDevicesDisable,
       "A disabled device cannot sync or enroll; its data and history stay. 'fieldsync\n"
       "devices enable DEVICE_ID' undoes it (its tokens that were not revoked work again)."},
      {"devices enable", {"DEVICE_ID"}, "Enable a disabled device again.", {}, RunDevicesEnable},
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
      {"admin backup",
       {"PATH"},
       "Write an online backup of the server's database to PATH on the server's host.",
       {},
       RunAdminBackup,
       "PATH is absolute, on the machine fieldsyncd runs on; its folder must exist and the\n"
       "file must not. The copy is one consistent snapshot taken while the server keeps\n"
       "serving. Prints the file's size, the last change-log entry in it (compare with\n"
       "'fieldsync audit verify' after a restore) and the database epoch. Restore with\n"
       "'fieldsyncd --db PATH --restore-from BACKUP' (server stopped). PostgreSQL: pg_dump."},
      {"health",
       {},
       "Ask fieldsyncd whether it is serving (grpc.health.v1); needs no token.",
       {{"service", "NAME", "one service, e.g. fieldsync.v1.SyncService (default: the server)"}},
       RunHealth,
       "Prints SERVING and exits 0, or prints NOT_SERVING (the server is draining before a\n"
       "stop) and exits 3; exit 3 too when the server cannot be reached, 5 for an unknown\n"
       "--service. For probes of load balancers, containers and monitoring: --timeout bounds\n"
       "the call, --ca-file/--tls as for every command."},

      // A field device.
      {"device enroll",
       {},
       "Enroll this device with a one-time code from HQ and create its database.",
       WithDeviceDbFlag({{"code", "CODE", "the code from 'fieldsync devices enroll-code'", true}}),
       RunDeviceEnroll,
       "Exchanges the code with fieldsyncd at --server (default: $FIELDSYNC_SERVER, else\n"
       "127.0.0.1:50051) for the device's own token, kept in the new database; --token is not\n"
       "used. The database then syncs with that server only ('device set-server' moves it).\n"
       "With --ca-file (or --tls) the connection uses TLS, and once a database has talked TLS\n"
       "with its server (enrolled or synced) it refuses plain text: give --ca-file to 'sync'\n"
       "too (or set FIELDSYNC_CA_FILE).\n"
       "On a database already enrolled whose token HQ revoked, a new code for the same device\n"
       "enrolls it again, keeping its records and unsent changes (a code for another device is\n"
       "refused and stays valid); without --server it uses the server the database syncs with."},
      {"device set-server",
       {"HOST:PORT"},
       "Point this device at its server's new address; records and unsent changes stay.",
       WithDeviceDbFlag({}),
       RunDeviceSetServer,
       "Offline: only the database changes; the next 'fieldsync sync' goes to HOST:PORT with\n"
       "the device's token. A database that has talked TLS keeps using TLS (give --ca-file)."},
      {"device status",
       {},
       "Show the device's sync state: pending changes, last sync, cursor, clock, counts.",
       WithDeviceDbFlag({}),
       RunDeviceStatus,
       kDeviceHelp},
      {"device rejections",
       {},
       "List this device's changes the server refused, with the reason, newest first.",
       WithDeviceDbFlag({}),
       RunDeviceRejections,
       "A refused change leaves the outbox (it never holds back the others) and waits here.\n"
       "Fix what the reason names ('device records edit'), then 'device rejections resubmit\n"
       "ID' sends the refused values again on top of the record as it is now, or 'device\n"
       "rejections dismiss ID' gives the change up.\n" + std::string(kDeviceHelp)},
      {"device rejections resubmit",
       {"ID"},
       "Queue a refused change's values again as a new edit; 'fieldsync sync' sends it.",
       WithDeviceDbFlag({}),
       RunDeviceRejectionResubmit,
       kDeviceHelp},
      {"device rejections dismiss",
       {"ID"},
       "Give a refused change up (it stays listed as DISMISSED).",
       WithDeviceDbFlag({}),
       RunDeviceRejectionDismiss,
       kDeviceHelp},
      {"device records list",
       {},
       "List the records on this device matching all the given filters.",
       WithDeviceDbFlag(WithPagingFlags(RecordFilterFlags())),
       RunDeviceRecordsList,
       kDeviceHelp},
      {"device records get",
       {"ID"},
       "Show one record as this device has it.",
       WithDeviceDbFlag({}),
       RunDeviceRecordsGet,
       kDeviceHelp},
      {"device records add",
       {},
       "Record a field visit on this device, offline, from JSON.",
       WithDeviceDbFlag(RecordBodyFlags()),
       RunDeviceRecordsAdd,
       absl::StrCat(
           kRecordJsonHelp,
           "\nThe record is saved at once, with no network; 'fieldsync sync' sends it. Its "
           "project\n(and site) must be on the device: sync once after enrolling.\n",
           kDeviceHelp)},
      {"device records edit",
       {"ID"},
       "Change the fields of a record that the JSON names; the others are kept.",
       WithDeviceDbFlag(RecordBodyFlags()),
       RunDeviceRecordsEdit,
       "Only the fields named change, at any depth: {\"well\":{\"yield_lph\":500}} sets the\n"
       "yield and keeps everything else, so that edits of other fields elsewhere survive the\n"
       "sync. A list given (quality_tests, follow_ups, items) replaces the whole list; null, 0\n"
       "or \"\" clears a field. Project and kind cannot change. Give exactly one of --file and\n"
       "--data (JSON as for 'device records add').\n" +
           std::string(kDeviceHelp)},
      {"device records delete",
       {"ID"},
       "Delete a record on this device; 'fieldsync sync' sends the deletion.",
       WithDeviceDbFlag({}),
       RunDeviceRecordsDelete,
       kDeviceHelp},
      {"sync",
       {},
       "Exchange this device's changes with fieldsyncd.",
       WithDeviceDbFlag({{"attempts", "N",
                          "tries without progress before giving up when the server cannot be "
                          "reached (default: 8)"},
                         {"quiet", "", "no progress on stderr, only the summary"}}),
       RunSync,
       "Syncs with the server the device enrolled with (--server may only repeat it); --timeout\n"
       "is the deadline of each call. Progress goes to stderr: a bar on a terminal, else one\n"
       "line per step (phase, changes pushed of pending, documents and pages pulled); then one\n"
       "summary line, or with --json one object. Failures of the link are retried with backoff,\n"
       "resuming where they stopped; exit 3 when the server stays unreachable, 4 when it refuses\n"
       "the device's token. Ctrl-C stops cleanly (exit 1): nothing is lost, and the next sync\n"
       "continues."},
  };
  return *kCommands;
}

}  // namespace fieldsync::cli
