// fieldsyncd: the fieldsync server. See `fieldsyncd --help`.
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/admin.h"
#include "server/demo_data.h"
#include "server/log.h"
#include "server/server.h"
#include "server/sqlite_store.h"

namespace {

constexpr char kVersion[] = "0.1.0";

constexpr char kUsage[] = R"(fieldsyncd — the fieldsync server

Usage: fieldsyncd [flags]

Flags:
  --listen HOST:PORT       address to serve gRPC on (default 127.0.0.1:50051; port 0 picks one)
  --db PATH                SQLite database file (default ./data/fieldsync.db; its folder is
                           created; the file is created with mode 0600 and migrated)
  --tls-cert PATH          PEM certificate chain: serve TLS (with --tls-key)
  --tls-key PATH           PEM private key for --tls-cert
  --demo-data              load a demo network (partners, projects, thousands of records) into
                           the database if it has no projects yet, then serve
  --create-admin-token     create (or reuse) the admin user --admin-name, print a new bearer
                           token for it on stdout, and exit; the way to get the first credential
  --admin-name NAME        user name for --create-admin-token (default "admin")
  --port-file PATH         write the bound port to PATH once listening (for scripts and tests)
  --synchronous MODE       FULL (default: every acknowledged write survives a power cut) or
                           NORMAL (survives a process crash only)
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
  bool create_admin_token = false;
  std::string iati_org_ref = "XM-DAC-00000";
  std::string iati_org_name = "fieldsync NGO network";
  std::string iati_org_type = "21";
  std::string report_tmp_dir;
  // Per-device limits, as given (checked and converted in main).
  std::map<std::string, std::string> limits;
};

// Parses "--name value" and "--name=value". Returns false (after printing why) on a bad flag.
bool ParseFlags(int argc, char** argv, Flags& f, bool& exit_now) {
  std::map<std::string, std::string*> values = {
      {"--listen", &f.listen},       {"--db", &f.db},
      {"--tls-cert", &f.tls_cert},   {"--tls-key", &f.tls_key},
      {"--port-file", &f.port_file}, {"--admin-name", &f.admin_name},
      {"--synchronous", &f.synchronous}, {"--max-db-mb", &f.max_db_mb}};
  for (const char* name : {"--device-calls-per-minute", "--device-call-burst",
                           "--device-changes-per-minute", "--device-change-burst",
                           "--device-max-concurrent"}) {
    values[name] = &f.limits[name];
  }
  values["--iati-org-ref"] = &f.iati_org_ref;
  values["--iati-org-name"] = &f.iati_org_name;
  values["--iati-org-type"] = &f.iati_org_type;
  values["--report-tmp-dir"] = &f.report_tmp_dir;
  std::map<std::string, bool*> switches = {{"--demo-data", &f.demo_data},
                                           {"--create-admin-token", &f.create_admin_token}};
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
    if (auto it = switches.find(name); it != switches.end() && !has_value) {
      *it->second = true;
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
  }
  return true;
}

int Fail(const absl::Status& s) {
  fieldsync::server::Log("error", s.ToString());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fieldsync::server;
  Flags flags;
  bool exit_now = false;
  if (!ParseFlags(argc, argv, flags, exit_now)) return 2;
  if (exit_now) return 0;
  DeviceLimits device_limits;
  for (auto& [name, target] : std::map<std::string, int64_t*>{
           {"--device-calls-per-minute", &device_limits.calls_per_minute},
           {"--device-call-burst", &device_limits.call_burst},
           {"--device-changes-per-minute", &device_limits.changes_per_minute},
           {"--device-change-burst", &device_limits.change_burst},
           {"--device-max-concurrent", &device_limits.max_concurrent_calls}}) {
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

  // Block the stop signals in every thread gRPC will start; main waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  umask(077);

  std::filesystem::path db_path(flags.db);
  if (db_path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(db_path.parent_path(), ec);
    if (ec) {
      return Fail(absl::FailedPreconditionError(absl::StrCat(
          "--db: cannot create folder ", db_path.parent_path().string(), ": ", ec.message())));
    }
  }
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

  if (flags.create_admin_token) {
    Admin admin(**store);
    auto issued = admin.BootstrapAdminToken(flags.admin_name);
    if (!issued.ok()) return Fail(issued.status());
    Log("info", absl::StrCat("issued admin token ", issued->token().prefix(), "… (id ",
                             issued->token().id(), ") for user \"", flags.admin_name,
                             "\" in ", flags.db));
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
  server_options.listen = flags.listen;
  server_options.tls_cert_path = flags.tls_cert;
  server_options.tls_key_path = flags.tls_key;
  auto server = FieldsyncServer::Start(server_options, **store);
  if (!server.ok()) return Fail(server.status());

  std::string host = flags.listen.substr(0, flags.listen.rfind(':'));
  Log("info", absl::StrCat("fieldsyncd ", kVersion, " listening on ", host, ":",
                           (*server)->port(), (*server)->tls() ? " (TLS)" : " (plaintext)",
                           " db=", flags.db));
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
  (*server)->Shutdown(absl::Seconds(5));
  (*server)->Wait();
  Log("info", "stopped");
  return 0;
}
