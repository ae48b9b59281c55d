#include "fuzz/fixture.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "server/demo_data.h"

namespace fieldsync::fuzz {

namespace {

std::vector<std::string>* ScratchDirs() {
  static auto* dirs = new std::vector<std::string>();
  return dirs;
}

void RemoveScratchDirs() {
  std::error_code ignored;
  for (const std::string& d : *ScratchDirs()) std::filesystem::remove_all(d, ignored);
}

}  // namespace

void CheckOk(const absl::Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "fuzz fixture: %s: %s\n", what, s.ToString().c_str());
  std::abort();
}

std::string NewScratchDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                      "/fieldsync-fuzz-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  if (ScratchDirs()->empty()) std::atexit(RemoveScratchDirs);
  ScratchDirs()->push_back(buf.data());
  return buf.data();
}

DemoWorld OpenDemoWorld(const std::string& path) {
  DemoWorld w;
  w.path = path;
  server::SqliteStore::Options options;
  options.path = path;
  options.synchronous = "NORMAL";
  options.readers = 1;
  absl::StatusOr<std::unique_ptr<server::SqliteStore>> store = server::SqliteStore::Open(options);
  CheckOk(store.status(), "open store");
  w.store = std::move(*store);
  server::DemoOptions demo;
  demo.partners = 2;
  demo.projects = 6;
  demo.records_per_kind = 6;
  CheckOk(server::LoadDemoData(*w.store, demo).status(), "load demo data");
  absl::StatusOr<std::vector<v1::Partner>> partners =
      w.store->ListPartners(server::PageRequest{100, ""});
  CheckOk(partners.status(), "list partners");
  if (partners->size() < 2) CheckOk(absl::InternalError("fewer than 2 partners"), "demo");
  w.partner_id = (*partners)[0].id();
  w.other_partner_id = (*partners)[1].id();
  v1::Device device;
  device.set_id(kDeviceId);
  device.set_partner_id(w.partner_id);
  device.set_name("Fuzz tablet");
  CheckOk(w.store->CreateDevice(device, server::Actor{"system"}).status(), "create device");
  return w;
}

}  // namespace fieldsync::fuzz
