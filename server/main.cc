// fieldsyncd: the fieldsync server. See `fieldsyncd --help`.
#include <signal.h>
#include <sys/stat.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fieldsync/base/status_macros.h"
#include "fieldsync/sync/sqlite.h"
#include "server/admin.h"
#include "server/demo_data.h"
#include "server/log.h"
#include "server/restore.h"
#include "server/schema.h"
#include "server/server.h"
#include "server/sqlite_store.h"

namespace {

constexpr char kVersion[] = "0.1.0";

constexpr char kUsage[] = R"(fieldsyncd — the fieldsync server

Usage: fieldsyncd [flags]

Flags:
  --config FILE            read flags from FILE: lines "name = value" (a flag without --;
                           switches as "name = true|false"), # comments; flags given on the
                           command line win. Sample: deploy/fieldsyncd.conf
  --check-config           check the flags (and --config FILE): values, TLS files, database
                           folder and schema version; print "configuration OK" and exit 0, or
                           the problem and exit 2. Run it before a restart
  --listen HOST:PORT       address to serve gRPC on (default 127.0.0.1:50051; port 0 picks one)
  --db PATH|URL            SQLite database file (default ./data/fieldsync.db; its folder is
                           created; the file is created with mode 0600 and migrated), or a
                           PostgreSQL database postgresql://user@host:5432/dbname (migrated;
                           several fieldsyncd may share it: docs/OPERATIONS.md)
  --tls-cert PATH          PEM certificate chain: serve TLS (with --tls-key)
  --tls-key PATH           PEM private key for --tls-cert
  --allow-plaintext        serve plain text on an address other than loopback (refused
                           without it: tokens would cross the network in clear); only behind a
                           proxy that terminates TLS, or on a trusted private network
  --demo-data              load a demo network (partners, projects, thousands of records) into
                           the database if it has no projects yet, then serve
  --create-admin-token     create (or reuse) the admin user --admin-name, print a new bearer
                           token for it on stdout, and exit; the way to get the first credential
  --admin-name NAME        user name for --create-admin-token (default "admin")
  --restore-from BACKUP    with the server stopped: check the backup file (integrity, schema,
                           the change log's hash chain in full), move --db PATH (and its -wal,
                           -shm) aside to PATH.before-restore-<UTC time>, put the backup in its
                           place with a new epoch, and exit 0 (then start the server; devices
                           re-send what the backup lacks). On any error: exit 1, nothing moved
  --new-epoch              give the --db database a new epoch (after restoring PostgreSQL with
                           pg_restore, or a SQLite file by hand), print it and exit
  --port-file PATH         write the bound port to PATH once listening (for scripts and tests)
  --synchronous MODE       FULL (default: every acknowledged write survives a power cut) or
                           NORMAL (survives a process crash only)
  --drain-seconds N        on SIGTERM or SIGINT, first answer health checks NOT_SERVING for N
                           seconds while still serving (a load balancer moves away), then
                           stop; a second signal stops at once (default 0, at most 3600)
  --max-db-mb N            hard cap on the database file in MiB (0: none, the default; 1.5 is
                           allowed): a write that would pass it answers RESOURCE_EXHAUSTED as
                           on a full disk and reads go on; restart with a larger cap to write

Per-device limits on SyncService Push and Pull (over a limit: RESOURCE_EXHAUSTED "...; retry
after N ms" and trailing metadata retry-after-ms; 0 turns a limit off):
  --device-calls-per-minute N    Push/Pull calls per device per minute (default 6000)
  --device-call-burst N          calls a rested device may make at once (default 1000)
  --device-changes-per-minute N  changes pushed per device per minute (default 1000000)
  --device-change-burst N        changes a rested device may push at once (default 200000,
                                 at least 1000: one full batch)
  --device-max-concurrent N      Push/Pull calls of one device running at once (default 8)

Hostile callers (docs/OPERATIONS.md, "Limits"):
  --auth-failures-per-minute N   failed authentications (bad token or enrollment code) one
                                 address may make per minute after a burst; beyond, its calls
                                 get RESOURCE_EXHAUSTED "...; retry after N ms" (default 30)
  --auth-failure-burst N         failures a rested address may make at once (default 20)
  --max-streams-per-token N      Pull, WatchChanges and Export streams one token may hold open
                                 (default 8)
  --max-streams N                streams open at once in all (default 256)
  --max-threads N                threads serving calls; each open stream holds one, a call
                                 beyond gets RESOURCE_EXHAUSTED (default 400)

ReportService (auditor exports; see docs/REPORTS.md):
  --iati-org-ref REF       IATI identifier of the reporting organisation, also the prefix of
                           activity identifiers of projects without one (default XM-DAC-00000,
                           a placeholder: set your organisation's)
  --iati-org-name NAME     its name (default "fieldsync NGO network")
  --iati-org-type CODE     its IATI OrganisationType code (default 21, international NGO)
  --report-tmp-dir PATH    folder for an XLSX export's temporary file (default: the
                           database's folder)

  --version                print the version and exit
  --help                   print this help and exit

Every RPC needs "authorization: Bearer <token>" metadata. Stop with SIGINT or SIGTERM.
)";

struct Flags {
  std::string listen = "127.0.0.1:50051";
  std::string db = "./data/fieldsync.db";
  std::string tls_cert, tls_key, port_file;
  std::string admin_name = "admin";
  std::string synchronous = "FULL";
  std::string max_db_mb = "0";
  bool demo_data = false;
  bool allow_plaintext = false;
  bool create_admin_token = false;
  std::string iati_org_ref = "XM-DAC-00000";
  std::string iati_org_name = "fieldsync NGO network";
  std::string iati_org_type = "21";
  std::string report_tmp_dir;
  std::string config;
  bool check_config = false;
  std::string drain_seconds = "0";
  std::string restore_from;
  bool new_epoch = false;
  // Per-device limits, as given (checked and converted in main).
  std::map<std::string, std::string> limits;
};

// Flags that act once and exit, or name the configuration itself: refused in a --config file.
bool CommandLineOnly(const std::string& flag) {
  static const auto* const kFlags = new std::set<std::string>{
      "--config", "--check-config", "--create-admin-token", "--restore-from", "--new-epoch",
      "--help", "--version"};
  return kFlags->count(flag) > 0;
}

// Reads the --config file `path`: one "name = value" per line (name: a flag without "--";
// switches "true" or "false"), blank lines, "#" comments (a whole line, or after a blank
// outside quotes); a value in double quotes is taken as is, without the quotes (no escapes).
// Sets each flag through the same tables as the command line, except those in `given`
// (the command line wins). Prints "fieldsyncd: FILE:LINE: ..." and returns false on an error.
bool ApplyConfigFile(const std::string& path, const std::map<std::string, std::string*>& values,
                     const std::map<std::string, bool*>& switches,
                     const std::set<std::string>& given) {
  std::ifstream in(path);
  std::error_code ec;
  if (!in || std::filesystem::is_directory(path, ec)) {
    std::cerr << "fieldsyncd: " << path << ": cannot read the --config file: "
              << (in ? "a folder" : std::strerror(errno)) << "\n";
    return false;
  }
  std::map<std::string, int> seen;  // key -> line
  std::string raw;
  for (int line_no = 1; std::getline(in, raw); ++line_no) {
    const std::string where = absl::StrCat(path, ":", line_no, ": ");
    absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      std::cerr << "fieldsyncd: " << where << "expected \"name = value\", got '"
                << line.substr(0, 60) << "'\n";
      return false;
    }
    std::string name(absl::StripAsciiWhitespace(line.substr(0, eq)));
    absl::string_view rest = absl::StripAsciiWhitespace(line.substr(eq + 1));
    if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") !=
                            std::string::npos || name[0] == '-') {
      std::cerr << "fieldsyncd: " << where << "'" << name
                << "' is not a key: write a flag's name without \"--\", e.g. \"listen = "
                   "0.0.0.0:50051\"\n";
      return false;
    }
    std::string value;
    if (!rest.empty() && rest[0] == '"') {
      size_t close = rest.find('"', 1);
      absl::string_view after =
          close == absl::string_view::npos ? "" : absl::StripAsciiWhitespace(rest.substr(close + 1));
      if (close == absl::string_view::npos || (!after.empty() && after[0] != '#')) {
        std::cerr << "fieldsyncd: " << where << name
                  << ": a quoted value must end with \" and nothing but a comment after it\n";
        return false;
      }
      value = std::string(rest.substr(1, close - 1));
    } else {
      size_t comment = rest.find_first_of('#');
      while (comment != absl::string_view::npos && comment > 0 && rest[comment - 1] != ' ' &&
             rest[comment - 1] != '\t') {
        comment = rest.find_first_of('#', comment + 1);
      }
      value = std::string(absl::StripAsciiWhitespace(rest.substr(0, comment)));
    }
    const std::string flag = "--" + name;
    if (CommandLineOnly(flag)) {
      std::cerr << "fieldsyncd: " << where << "'" << name
                << "' is not a setting: give " << flag << " on the command line\n";
      return false;
    }
    if (auto [it, added] = seen.emplace(name, line_no); !added) {
      std::cerr << "fieldsyncd: " << where << "'" << name << "' is set twice (also on line "
                << it->second << ")\n";
      return false;
    }
    if (auto it = switches.find(flag); it != switches.end()) {
      if (value != "true" && value != "false") {
        std::cerr << "fieldsyncd: " << where << name << ": true or false, got '" << value
                  << "'\n";
        return false;
      }
      if (!given.count(flag)) *it->second = value == "true";
      continue;
    }
    auto it = values.find(flag);
    if (it == values.end()) {
      std::cerr << "fieldsyncd: " << where << "unknown key '" << name
                << "' (see fieldsyncd --help)\n";
      return false;
    }
    if (!given.count(flag)) *it->second = value;
  }
  return true;
}

// Parses "--name value" and "--name=value". Returns false (after printing why) on a bad flag.
bool ParseFlags(int argc, char** argv, Flags& f, bool& exit_now) {
  std::map<std::string, std::string*> values = {
      {"--listen", &f.listen},       {"--db", &f.db},
      {"--tls-cert", &f.tls_cert},   {"--tls-key", &f.tls_key},
      {"--port-file", &f.port_file}, {"--admin-name", &f.admin_name},
      {"--synchronous", &f.synchronous}, {"--max-db-mb", &f.max_db_mb}};
  for (const char* name : {"--device-calls-per-minute", "--device-call-burst",
                           "--device-changes-per-minute", "--device-change-burst",
                           "--device-max-concurrent", "--auth-failures-per-minute",
                           "--auth-failure-burst", "--max-streams-per-token", "--max-streams",
                           "--max-threads"}) {
    values[name] = &f.limits[name];
  }
  values["--iati-org-ref"] = &f.iati_org_ref;
  values["--iati-org-name"] = &f.iati_org_name;
  values["--iati-org-type"] = &f.iati_org_type;
  values["--report-tmp-dir"] = &f.report_tmp_dir;
  values["--config"] = &f.config;
  values["--drain-seconds"] = &f.drain_seconds;
  std::map<std::string, bool*> switches = {{"--demo-data", &f.demo_data},
                                           {"--allow-plaintext", &f.allow_plaintext},
                                           {"--create-admin-token", &f.create_admin_token}};
  switches["--check-config"] = &f.check_config;
  values["--restore-from"] = &f.restore_from;
  switches["--new-epoch"] = &f.new_epoch;
  std::set<std::string> given;  // on the command line: these win over --config
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      exit_now = true;
      return true;
    }
    if (arg == "--version") {
      std::cout << "fieldsyncd " << kVersion << "\n";
      exit_now = true;
      return true;
    }
    std::string name = arg, value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (auto it = switches.find(name); it != switches.end()) {
      if (has_value && value != "true" && value != "false") {
        std::cerr << "fieldsyncd: " << name << ": a switch, =true or =false, got '" << value
                  << "'\n";
        return false;
      }
      *it->second = !has_value || value == "true";
      given.insert(name);
      continue;
    }
    auto it = values.find(name);
    if (it == values.end()) {
      std::cerr << "fieldsyncd: unknown flag " << name << " (see fieldsyncd --help)\n";
      return false;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        std::cerr << "fieldsyncd: " << name << " needs a value (see fieldsyncd --help)\n";
        return false;
      }
      value = argv[++i];
    }
    *it->second = value;
    given.insert(name);
  }
  return f.config.empty() || ApplyConfigFile(f.config, values, switches, given);
}

int Fail(const absl::Status& s) {
  fieldsync::server::Log("error", s.ToString());
  return 1;
}

// True for a host of --listen that only this machine can reach: 127.0.0.0/8, ::1, localhost.
bool IsLoopbackHost(absl::string_view host) {
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

// Plain text (no TLS) on an address other machines can reach.
bool PlaintextOffLoopback(const Flags& f) {
  const size_t colon = f.listen.rfind(':');
  return f.tls_cert.empty() && colon != std::string::npos &&
         !IsLoopbackHost(absl::string_view(f.listen).substr(0, colon));
}

// The checks of flag values that need no file, database or network; main makes them before
// anything else and --check-config with them. A new flag's value check belongs here.
absl::Status CheckValues(const Flags& f) {
  const size_t colon = f.listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(absl::string_view(f.listen).substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen: must be HOST:PORT with a port 0..65535, got '", f.listen, "'"));
  }
  if (f.db.empty()) return absl::InvalidArgumentError("--db: must not be empty");
  if (f.tls_cert.empty() != f.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key must be given together");
  }
  if (PlaintextOffLoopback(f) && !f.allow_plaintext) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen: ", f.listen, " is not a loopback address and no --tls-cert/--tls-key are "
        "given: bearer tokens and field data would cross the network in plain text. Give "
        "--tls-cert and --tls-key, or --allow-plaintext if a proxy in front of fieldsyncd "
        "terminates TLS or the network is private"));
  }
  if (f.synchronous != "FULL" && f.synchronous != "NORMAL" && f.synchronous != "OFF") {
    return absl::InvalidArgumentError(
        absl::StrCat("--synchronous: must be FULL or NORMAL, got '", f.synchronous, "'"));
  }
  double mb = 0;
  if (!absl::SimpleAtod(f.max_db_mb, &mb) || !(mb >= 0 && mb < 1e9)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-db-mb: not a number of MiB >= 0, got '", f.max_db_mb, "'"));
  }
  int drain = 0;
  if (!absl::SimpleAtoi(f.drain_seconds, &drain) || drain < 0 || drain > 3600) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--drain-seconds: must be a whole number 0..3600, got '", f.drain_seconds, "'"));
  }
  int org_type = 0;
  if (!absl::SimpleAtoi(f.iati_org_type, &org_type) || org_type < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--iati-org-type: not an IATI OrganisationType code, got '", f.iati_org_type, "'"));
  }
  if (f.iati_org_ref.empty() || f.iati_org_name.empty()) {
    return absl::InvalidArgumentError("--iati-org-ref and --iati-org-name must not be empty");
  }
  if (f.admin_name.empty()) return absl::InvalidArgumentError("--admin-name: must not be empty");
  return absl::OkStatus();
}

// `dir` exists as a folder this process may create files in, or can be created (its nearest
// existing parent is such a folder).
absl::Status CheckWritableFolder(const std::filesystem::path& dir, absl::string_view flag) {
  std::filesystem::path p = dir.empty() ? std::filesystem::path(".") : dir;
  std::error_code ec;
  while (!std::filesystem::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) {
    p = p.parent_path();
  }
  if (!std::filesystem::is_directory(p, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat(flag, ": ", p.string(), " is not a folder"));
  }
  if (access(p.c_str(), W_OK | X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        flag, ": cannot create files in ", p.string(), ": ", std::strerror(errno),
        " (run --check-config as the user the service runs as)"));
  }
  return absl::OkStatus();
}

// The schema version recorded in the SQLite database at `path` (0 for none yet), opened
// read-only; NOT_FOUND if there is no such file.
absl::StatusOr<int> SchemaVersionOf(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return absl::NotFoundError(path);
  fieldsync::sqlite::OpenOptions ro;
  ro.create = false;
  ro.read_only = true;
  FS_ASSIGN_OR_RETURN(auto conn, fieldsync::sqlite::Database::Open(path, ro));
  auto q = conn->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!q.ok()) return 0;  // no schema_migrations table: an empty database
  FS_ASSIGN_OR_RETURN(bool row, (*q)->Step());
  return row ? static_cast<int>((*q)->ColumnInt(0)) : 0;
}

// --check-config beyond CheckValues: the TLS files, the database's folder and, if the
// database exists, its schema version. Changes nothing. Returns what it found, for the
// "configuration OK" line.
absl::StatusOr<std::string> CheckFiles(const Flags& f) {
  using namespace fieldsync::server;
  std::string found;
  if (!f.tls_cert.empty()) {
    ServerOptions tls;
    tls.tls_cert_path = f.tls_cert;
    tls.tls_key_path = f.tls_key;
    FS_RETURN_IF_ERROR(CheckTlsConfig(tls));
    found = "TLS";
  } else {
    found = "plaintext";
  }
  if (absl::StrContains(f.db, "://")) {
    absl::StrAppend(&found, ", db ", f.db.substr(0, f.db.find("://")),
                    " (the database server is not contacted)");
  } else {
    std::filesystem::path db(f.db);
    std::error_code ec;
    if (std::filesystem::exists(db, ec)) {
      if (!std::filesystem::is_regular_file(db, ec)) {
        return absl::FailedPreconditionError(absl::StrCat("--db: ", f.db, " is not a file"));
      }
      if (access(db.c_str(), R_OK | W_OK) != 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("--db: cannot read and write ", f.db, ": ", std::strerror(errno),
                         " (run --check-config as the user the service runs as)"));
      }
      FS_RETURN_IF_ERROR(CheckWritableFolder(db.parent_path(), "--db"));
      absl::StatusOr<int> schema = SchemaVersionOf(f.db);
      if (!schema.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("--db: cannot read ", f.db, ": ", schema.status().message()));
      }
      const int version = *schema;
      if (version > LatestSchemaVersion()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "--db: ", f.db, " has schema version ", version, ", newer than this fieldsyncd (",
            LatestSchemaVersion(), "): it was written by a newer fieldsyncd; downgrade is not "
                                   "supported"));
      }
      absl::StrAppend(&found, ", db ", f.db, " schema ", version, " of ", LatestSchemaVersion(),
                      version < LatestSchemaVersion() ? " (migrated at start)" : "");
    } else {
      FS_RETURN_IF_ERROR(CheckWritableFolder(db.parent_path(), "--db"));
      absl::StrAppend(&found, ", db ", f.db, " (created at start)");
    }
  }
  if (!f.report_tmp_dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(f.report_tmp_dir, ec)) {
      return absl::FailedPreconditionError(
          absl::StrCat("--report-tmp-dir: ", f.report_tmp_dir, " is not a folder"));
    }
    FS_RETURN_IF_ERROR(CheckWritableFolder(f.report_tmp_dir, "--report-tmp-dir"));
  }
  return found;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fieldsync::server;
  Flags flags;
  bool exit_now = false;
  if (!ParseFlags(argc, argv, flags, exit_now)) return 2;
  if (exit_now) return 0;
  DeviceLimits device_limits;
  AuthFailureLimits auth_failure_limits;
  StreamLimits stream_limits;
  int64_t max_threads = ServerOptions().max_threads;
  for (auto& [name, target] : std::map<std::string, int64_t*>{
           {"--device-calls-per-minute", &device_limits.calls_per_minute},
           {"--device-call-burst", &device_limits.call_burst},
           {"--device-changes-per-minute", &device_limits.changes_per_minute},
           {"--device-change-burst", &device_limits.change_burst},
           {"--device-max-concurrent", &device_limits.max_concurrent_calls},
           {"--auth-failures-per-minute", &auth_failure_limits.failures_per_minute},
           {"--auth-failure-burst", &auth_failure_limits.failure_burst},
           {"--max-streams-per-token", &stream_limits.per_principal},
           {"--max-streams", &stream_limits.total},
           {"--max-threads", &max_threads}}) {
    const std::string& given = flags.limits[name];
    if (!given.empty() && !absl::SimpleAtoi(given, target)) {
      std::cerr << "fieldsyncd: " << name << ": not a whole number, got '" << given << "'\n";
      return 2;
    }
  }
  if (absl::Status s = device_limits.Validate(); !s.ok()) {
    std::cerr << "fieldsyncd: " << s.message() << "\n";
    return 2;
  }
  if (absl::Status s = auth_failure_limits.Validate(); !s.ok()) {
    std::cerr << "fieldsyncd: " << s.message() << "\n";
    return 2;
  }
  if (stream_limits.per_principal < 0 || stream_limits.total < 0) {
    std::cerr << "fieldsyncd: --max-streams and --max-streams-per-token: must be at least 0\n";
    return 2;
  }
  if (max_threads < 8 || max_threads > 100000) {
    std::cerr << "fieldsyncd: --max-threads: must be 8..100000, got " << max_threads << "\n";
    return 2;
  }
  if (absl::Status s = CheckValues(flags); !s.ok()) {
    std::cerr << "fieldsyncd: " << s.message() << "\n";
    return 2;
  }
  if (flags.check_config) {
    absl::StatusOr<std::string> found = CheckFiles(flags);
    if (!found.ok()) {
      std::cerr << "fieldsyncd: " << found.status().message() << "\n";
      return 2;
    }
    if (PlaintextOffLoopback(flags)) {
      std::cerr << "fieldsyncd: warning: --listen " << flags.listen
                << " serves plain text to other machines (--allow-plaintext): bearer tokens and "
                   "field data cross the network unencrypted unless a proxy in front terminates "
                   "TLS\n";
      absl::StrAppend(&*found, " (--allow-plaintext: not encrypted off this machine)");
    }
    std::cout << "configuration OK: listen " << flags.listen << ", " << *found << "\n";
    return 0;
  }

  if (!flags.restore_from.empty() || flags.new_epoch) {
    if (!flags.restore_from.empty() && flags.new_epoch) {
      std::cerr << "fieldsyncd: --restore-from gives the restored database a new epoch itself; "
                   "use one of --restore-from and --new-epoch\n";
      return 2;
    }
    umask(077);
    if (flags.new_epoch) {
      absl::StatusOr<std::string> epoch = SetNewEpoch(flags.db);
      if (!epoch.ok()) return Fail(epoch.status());
      Log("info", absl::StrCat("new epoch ", *epoch, " for ", fieldsync::db::RedactUrl(flags.db)));
      std::cout << *epoch << "\n";
      return 0;
    }
    absl::StatusOr<RestoreResult> restored = RestoreFromBackup(flags.restore_from, flags.db);
    if (!restored.ok()) return Fail(restored.status());
    Log("info", absl::StrCat("restored ", flags.db, " from ", flags.restore_from, ": ",
                             restored->entries_checked, " change-log entries verified, head seq ",
                             restored->head_seq, " hash ", restored->head_hash, ", epoch ",
                             restored->backup_epoch, " -> ", restored->epoch,
                             restored->moved_aside.empty()
                                 ? std::string()
                                 : absl::StrCat("; the previous database is now ",
                                                restored->moved_aside)));
    return 0;
  }

  // Block the stop signals in every thread gRPC will start; main waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  umask(077);

  std::filesystem::path db_path(flags.db);
  if (fieldsync::db::IsPostgresUrl(flags.db)) db_path.clear();  // no folder to make
  if (db_path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(db_path.parent_path(), ec);
    if (ec) {
      return Fail(absl::FailedPreconditionError(absl::StrCat(
          "--db: cannot create folder ", db_path.parent_path().string(), ": ", ec.message())));
    }
  }
  // For the log line of a migration: the schema version before the store migrates it.
  const int schema_before = db_path.empty() ? -1 : SchemaVersionOf(flags.db).value_or(-1);
  SqliteStore::Options store_options;
  store_options.path = flags.db;
  store_options.synchronous = flags.synchronous;
  double max_db_mb = 0;
  if (!absl::SimpleAtod(flags.max_db_mb, &max_db_mb) || !(max_db_mb >= 0 && max_db_mb < 1e9)) {
    std::cerr << "fieldsyncd: --max-db-mb: not a number of MiB >= 0, got '" << flags.max_db_mb
              << "'\n";
    return 2;
  }
  store_options.max_db_bytes = static_cast<int64_t>(max_db_mb * (1 << 20));
  auto store = SqliteStore::Open(store_options);
  if (!store.ok()) return Fail(store.status());
  if (schema_before >= 0 && schema_before < LatestSchemaVersion()) {
    Log("info", absl::StrCat("database schema of ", flags.db, " migrated from version ",
                             schema_before, " to ", LatestSchemaVersion()));
  }

  if (flags.create_admin_token) {
    Admin admin(**store);
    auto issued = admin.BootstrapAdminToken(flags.admin_name);
    if (!issued.ok()) return Fail(issued.status());
    Log("info", absl::StrCat("issued admin token ", issued->token().prefix(), "… (id ",
                             issued->token().id(), ") for user \"", flags.admin_name,
                             "\" in ", fieldsync::db::RedactUrl(flags.db)));
    std::cout << issued->secret() << "\n";
    return 0;
  }

  if (flags.demo_data) {
    absl::Time start = absl::Now();
    auto summary = LoadDemoData(**store, DemoOptions());
    if (summary.ok()) {
      Log("info", absl::StrCat("demo data loaded in ", absl::FormatDuration(absl::Now() - start),
                               ": ", summary->partners, " partners, ", summary->projects,
                               " projects, ", summary->sites, " sites, ", summary->wells,
                               " wells, ", summary->surgeries, " surgeries, ",
                               summary->donations, " donations, ", summary->expenditures,
                               " expenditures"));
    } else if (summary.status().code() == absl::StatusCode::kFailedPrecondition) {
      Log("info", absl::StrCat("demo data not loaded: ", summary.status().message()));
    } else {
      return Fail(summary.status());
    }
  }

  ServerOptions server_options;
  server_options.iati_org_ref = flags.iati_org_ref;
  server_options.iati_org_name = flags.iati_org_name;
  if (!absl::SimpleAtoi(flags.iati_org_type, &server_options.iati_org_type) ||
      server_options.iati_org_type < 0) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--iati-org-type: not an IATI OrganisationType code, got '", flags.iati_org_type, "'")));
  }
  if (flags.iati_org_ref.empty() || flags.iati_org_name.empty()) {
    return Fail(absl::InvalidArgumentError("--iati-org-ref and --iati-org-name must not be empty"));
  }
  server_options.report_temp_dir = flags.report_tmp_dir.empty()
                                       ? (db_path.has_parent_path() ? db_path.parent_path().string()
                                                                    : std::string("."))
                                       : flags.report_tmp_dir;
  server_options.server_version = kVersion;
  server_options.device_limits = device_limits;
  server_options.auth_failure_limits = auth_failure_limits;
  server_options.stream_limits = stream_limits;
  server_options.max_threads = static_cast<int>(max_threads);
  server_options.listen = flags.listen;
  server_options.tls_cert_path = flags.tls_cert;
  server_options.tls_key_path = flags.tls_key;
  auto server = FieldsyncServer::Start(server_options, **store);
  if (!server.ok()) return Fail(server.status());

  std::string host = flags.listen.substr(0, flags.listen.rfind(':'));
  Log("info", absl::StrCat("fieldsyncd ", kVersion, " listening on ", host, ":",
                           (*server)->port(), (*server)->tls() ? " (TLS)" : " (plaintext)",
                           " db=", fieldsync::db::RedactUrl(flags.db)));
  if (PlaintextOffLoopback(flags)) {
    Log("warn", absl::StrCat("plain text on ", host, " (--allow-plaintext): tokens and field data "
                             "cross the network unencrypted unless a proxy in front terminates "
                             "TLS"));
  }
  if (!flags.port_file.empty()) {
    std::string tmp = flags.port_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%d\n", (*server)->port());
      std::fclose(f);
      std::rename(tmp.c_str(), flags.port_file.c_str());  // readers never see a partial file
    }
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  Log("info", absl::StrCat("received ", sig == SIGINT ? "SIGINT" : "SIGTERM", ", stopping"));
  if (int drain = std::stoi(flags.drain_seconds); drain > 0) {
    (*server)->SetServing(false);
    Log("info", absl::StrCat("health NOT_SERVING; draining for ", drain,
                             " s before stopping (a second signal stops at once)"));
    timespec wait{drain, 0};
    sigtimedwait(&stop_signals, nullptr, &wait);
  }
  (*server)->Shutdown(absl::Seconds(5));
  (*server)->Wait();
  Log("info", "stopped");
  return 0;
}
