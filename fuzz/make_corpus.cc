// Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (run from the
// repository root after changing the contract or the fixture):
//
//   build-sanitize/fuzz/fieldsync_make_fuzz_corpus fuzz/corpus
//
// Seeds are real-looking inputs: push batches built from the fixture's demo network (new
// records of every kind, edits, deletes, a new site, a batch with one bad change, a change to
// another partner's record), the documents themselves, cursors, clocks, credentials, acuities
// and report cells. Hand-written seeds sit next to them.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fieldsync/model/validate.h"
#include "fieldsync/sync/document.h"
#include "fieldsync/sync/hlc.h"
#include "fuzz/fixture.h"
#include "fieldsync/v1/report.pb.h"
#include "server/syncer.h"

namespace fieldsync::fuzz {
namespace {

std::string root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  std::string dir = absl::StrCat(root, "/", target);
  mkdir(dir.c_str(), 0755);
  std::ofstream(absl::StrCat(dir, "/", name), std::ios::binary) << bytes;
}

std::string Seed(char selector, const std::string& bytes) {
  return absl::StrCat(std::string(1, selector), bytes);
}

// A fixed, valid UUID for new documents of the seeds.
std::string NewId(int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "0190f000-0000-7000-8000-%012x", 0xa000 + n);
  return buf;
}

const int64_t kWallMs = 1795000000000;  // 2026-11-17

v1::Change ChangeOf(const google::protobuf::Message& doc, const std::string& collection,
                    const std::string& id, int64_t seq) {
  std::unique_ptr<google::protobuf::Message> m(doc.New());
  m->CopyFrom(doc);
  sync::ClearOutputOnly(m.get());
  v1::Change c;
  c.set_device_seq(seq);
  c.set_collection(collection);
  c.set_doc_id(id);
  c.set_hlc(sync::Hlc{kWallMs + seq, 0, kDeviceId}.Encode());
  for (const auto& [path, value] : sync::Flatten(*m)) {
    v1::FieldChange* f = c.add_fields();
    f->set_path(path);
    f->set_value(value);
  }
  return c;
}

std::string Batch(const std::vector<v1::Change>& changes, char flags = 0) {
  v1::PushRequest req;
  for (const v1::Change& c : changes) *req.add_changes() = c;
  return Seed(flags, req.SerializeAsString());
}

int Main() {
  DemoWorld w = OpenDemoWorld(NewScratchDir() + "/corpus.db");
  v1::ListRecordsRequest all;
  server::PageRequest page{1000, ""};
  auto mine = w.store->ListRecords(all, server::Scope{w.partner_id}, page);
  auto theirs = w.store->ListRecords(all, server::Scope{w.other_partner_id}, page);
  CheckOk(mine.status(), "list records");
  CheckOk(theirs.status(), "list records");
  std::map<v1::RecordKind, v1::Record> by_kind;
  for (const v1::Record& r : *mine) by_kind.emplace(model::KindOf(r), r);

  // --- push -------------------------------------------------------------------------------
  int n = 0;
  std::vector<v1::Change> creates;
  for (const auto& [kind, record] : by_kind) {
    v1::Record copy = record;
    copy.set_id(NewId(++n));
    v1::Change c = ChangeOf(copy, "record", copy.id(), 1);
    creates.push_back(c);
    Write("push", absl::StrCat("create-", v1::RecordKind_Name(kind)), Batch({c}));
  }
  Write("push", "create-batch", Batch(creates));
  if (!mine->empty()) {
    const v1::Record& r = mine->front();
    // One field edited, with the clock of the value the device saw.
    v1::Change edit;
    edit.set_device_seq(1);
    edit.set_collection("record");
    edit.set_doc_id(r.id());
    edit.set_hlc(sync::Hlc{kWallMs, 0, kDeviceId}.Encode());
    v1::Record cleared = r;
    sync::ClearOutputOnly(&cleared);
    sync::FieldValues fields = sync::Flatten(cleared);
    for (const auto& [path, value] : fields) {
      if (path == "site_id" || path == "project_id" || path == "id") continue;
      v1::FieldChange* f = edit.add_fields();
      f->set_path(path);
      f->set_value(value);
      f->set_base_hlc(sync::Hlc{kWallMs - 86400000, 3, "server"}.Encode());
      break;
    }
    Write("push", "edit-one-field", Batch({edit}));
    v1::Change del;
    del.set_device_seq(1);
    del.set_collection("record");
    del.set_doc_id(r.id());
    del.set_hlc(sync::Hlc{kWallMs, 1, kDeviceId}.Encode());
    v1::FieldChange* f = del.add_fields();
    f->set_path(sync::kDeletedPath);
    f->set_value("\x01");
    Write("push", "delete", Batch({del}));
    v1::Record bad = by_kind.count(v1::RECORD_KIND_WELL) ? by_kind[v1::RECORD_KIND_WELL] : r;
    bad.set_id(NewId(++n));
    if (bad.has_well()) bad.mutable_well()->set_drilled_depth_m(-5);
    if (bad.has_cataract_surgery()) bad.mutable_cataract_surgery()->set_surgery_date("2026-02-30");
    std::vector<v1::Change> with_bad = creates;
    with_bad.push_back(ChangeOf(bad, "record", bad.id(), 2));
    Write("push", "batch-with-one-bad-change", Batch(with_bad));
    Write("push", "raw-seq-and-node", Batch({ChangeOf(r, "record", r.id(), 7)}, 3));
  }
  if (!theirs->empty()) {
    const v1::Record& r = theirs->front();
    Write("push", "other-partners-record", Batch({ChangeOf(r, "record", r.id(), 1)}));
  }
  v1::ListProjectsRequest projects_filter;
  auto projects = w.store->ListProjects(projects_filter, server::Scope{w.partner_id}, page);
  CheckOk(projects.status(), "list projects");
  if (!projects->empty()) {
    v1::Site site;
    site.set_id(NewId(++n));
    site.set_project_id(projects->front().id());
    site.set_name("Fuzz camp");
    site.set_latitude_deg(-1.28);
    site.set_longitude_deg(36.82);
    Write("push", "create-site", Batch({ChangeOf(site, "site", site.id(), 1)}));
    v1::Project p = projects->front();
    Write("push", "project-update", Batch({ChangeOf(p, "project", p.id(), 1)}));
    Write("record", "project", Seed(1, p.SerializeAsString()));
    Write("record", "site", Seed(2, site.SerializeAsString()));
  }
  auto partner = w.store->GetPartner(w.partner_id);
  CheckOk(partner.status(), "get partner");
  Write("record", "partner", Seed(0, partner->SerializeAsString()));

  // --- record -----------------------------------------------------------------------------
  for (const auto& [kind, record] : by_kind) {
    Write("record", v1::RecordKind_Name(kind), Seed(3, record.SerializeAsString()));
  }
  v1::User user;
  user.set_name("ana");
  user.set_role(v1::ROLE_HQ_VIEWER);
  Write("record", "user", Seed(4, user.SerializeAsString()));
  v1::Device device;
  device.set_partner_id(w.partner_id);
  device.set_name("Tablet 3");
  Write("record", "device", Seed(5, device.SerializeAsString()));
  Write("record", "id", Seed(6, NewId(1)));
  Write("record", "date", Seed(7, "2024-02-29"));
  Write("record", "currency", Seed(8, "UGX"));

  // --- cursor, hlc ------------------------------------------------------------------------
  Write("cursor", "start", server::EncodeCursor({0, 0}));
  Write("cursor", "mid-pull", server::EncodeCursor({120, 4711}));
  Write("cursor", "between-pulls", server::EncodeCursor({9000, 9000}));
  Write("cursor", "garbage", "not-a-cursor");
  Write("hlc", "device", sync::Hlc{kWallMs, 0, kDeviceId}.Encode());
  Write("hlc", "server", sync::Hlc{kWallMs, 99999, "server"}.Encode());
  Write("hlc", "far-future", sync::Hlc{9999999999999999, 12, "dev"}.Encode());
  Write("hlc", "zero", sync::Hlc{0, 0, "x"}.Encode());

  // --- report_export ----------------------------------------------------------------------
  const v1::ReportFormat formats[] = {v1::REPORT_FORMAT_CSV, v1::REPORT_FORMAT_JSONL,
                                      v1::REPORT_FORMAT_XLSX, v1::REPORT_FORMAT_IATI_XML};
  for (v1::ReportFormat format : formats) {
    v1::ExportRequest req;
    req.set_format(format);
    Write("report_export", absl::StrCat("default-", v1::ReportFormat_Name(format)),
          Seed(0, req.SerializeAsString()));
    req.mutable_filter()->set_from_date("2024-01-01");
    req.mutable_filter()->set_to_date("2026-06-30");
    req.mutable_filter()->set_partner_id(w.partner_id);
    req.mutable_filter()->set_project_kind(v1::PROJECT_KIND_WELL);
    Write("report_export", absl::StrCat("filtered-", v1::ReportFormat_Name(format)),
          Seed(0, req.SerializeAsString()));
  }
  for (int t = v1::REPORT_TABLE_PROJECTS; t <= v1::REPORT_TABLE_AUDIT_TRAIL; ++t) {
    v1::ExportRequest req;
    req.set_format(t % 2 ? v1::REPORT_FORMAT_CSV : v1::REPORT_FORMAT_JSONL);
    req.add_tables(static_cast<v1::ReportTable>(t));
    if (!projects->empty()) req.mutable_filter()->set_project_id(projects->front().id());
    req.mutable_filter()->set_country("KE");
    Write("report_export", absl::StrCat("table-", t), Seed(0, req.SerializeAsString()));
  }
  v1::GetExportManifestRequest manifest;
  manifest.set_export_id(NewId(99));
  Write("report_export", "manifest", Seed(static_cast<char>(0x81), manifest.SerializeAsString()));
  v1::VerifyAuditChainRequest verify;
  verify.set_from_seq(1);
  verify.set_to_seq(40);
  Write("report_export", "verify", Seed(2, verify.SerializeAsString()));
  return 0;
}

}  // namespace
}  // namespace fieldsync::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  fieldsync::fuzz::root = argv[1];
  return fieldsync::fuzz::Main();
}
