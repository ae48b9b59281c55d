// Report filters as HQ and auditors send them: ReportService's Export, GetExportManifest and
// VerifyAuditChain requests parsed from bytes and run by the server's Reporter against a real
// SqliteStore holding the small demo network (filters reach SQL and every table writer).
//
// Input: one selector byte (% 3: 0 Export, 1 GetExportManifest, 2 VerifyAuditChain), then the
// serialized request.
//
// Checked: nothing crashes; a refusal is INVALID_ARGUMENT (or NOT_FOUND for a manifest) naming
// a request field; an accepted export comes in chunks of at most kExportChunkBytes, ends with
// a manifest whose byte count and SHA-256 match the chunks and whose rows_written equals
// rows_total; CSV and JSONL end with a newline, IATI XML is well-formed (libxml2); the audit
// chain of the fixture always verifies.
//
// fieldsyncd logs one line per export on stderr: scripts/test-sanitizers runs this target with
// -close_fd_mask=2 (fuzz/report_export.options); replay a finding without it to see the reason.
#include <libxml/parser.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "fieldsync/base/ids.h"
#include "fuzz/fixture.h"
#include "google/protobuf/stubs/logging.h"
#include "server/report_service.h"

namespace fieldsync::fuzz {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "report_export_fuzzer: %s\n", what.c_str());
  std::abort();
}

struct State {
  DemoWorld world;
  std::unique_ptr<server::Reporter> reporter;
  std::string first_export_id;
};

State& S() {
  static State* s = [] {
    auto* s = new State();
    std::string dir = NewScratchDir();
    s->world = OpenDemoWorld(dir + "/export.db");
    server::ReporterOptions options;
    options.temp_dir = dir;
    s->reporter = std::make_unique<server::Reporter>(*s->world.store, options);
    return s;
  }();
  return *s;
}

void IgnoreXmlErrors(void*, const char*, ...) {}

void CheckRefusal(const absl::Status& s, absl::string_view rpc) {
  if (s.code() != absl::StatusCode::kInvalidArgument && s.code() != absl::StatusCode::kNotFound) {
    Fail(absl::StrCat(rpc, " answered ", s.ToString()));
  }
  absl::string_view m = s.message();
  size_t colon = m.find(':');
  if (colon == absl::string_view::npos || colon == 0 || m.substr(0, colon).find(' ') != absl::string_view::npos) {
    Fail(absl::StrCat(rpc, " refusal does not name a field: ", m));
  }
}

void Export(State& s, const v1::ExportRequest& request) {
  std::string data;
  int chunks = 0;
  v1::ExportChunk last;
  absl::Status st = s.reporter->Export(
      server::SystemPrincipal(), request,
      [&](const v1::ExportChunk& c) {
        if (c.data().size() > server::kExportChunkBytes) Fail("a chunk is too long");
        data += c.data();
        ++chunks;
        last = c;
        return true;
      },
      [] { return false; });
  if (!st.ok()) {
    if (chunks > 0) Fail(absl::StrCat("a refused export sent data: ", st.ToString()));
    CheckRefusal(st, "Export");
    return;
  }
  if (!last.has_manifest()) Fail("the last chunk has no manifest");
  const v1::ExportManifest& m = last.manifest();
  if (m.content_bytes() != static_cast<int64_t>(data.size())) Fail("manifest byte count");
  if (m.content_sha256() != Sha256Hex(data)) Fail("manifest SHA-256 differs from the bytes");
  if (last.rows_written() != last.rows_total()) {
    Fail(absl::StrCat("rows_written ", last.rows_written(), " != rows_total ", last.rows_total()));
  }
  if (s.first_export_id.empty()) s.first_export_id = m.export_id();
  switch (request.format()) {
    case v1::REPORT_FORMAT_CSV:
    case v1::REPORT_FORMAT_JSONL:
      if (!data.empty() && data.back() != '\n') Fail("a text export does not end with a newline");
      break;
    case v1::REPORT_FORMAT_IATI_XML: {
      xmlDocPtr doc = xmlReadMemory(data.data(), static_cast<int>(data.size()), "iati.xml",
                                    nullptr, XML_PARSE_NONET | XML_PARSE_NOERROR |
                                                 XML_PARSE_NOWARNING);
      if (doc == nullptr) Fail("the IATI export is not well-formed XML");
      xmlFreeDoc(doc);
      break;
    }
    default:
      break;
  }
}

}  // namespace
}  // namespace fieldsync::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  xmlInitParser();
  xmlSetGenericErrorFunc(nullptr, &fieldsync::fuzz::IgnoreXmlErrors);
  // Protobuf logs every string field with invalid UTF-8 it refuses to parse; such input never
  // reaches a handler (gRPC refuses it first).
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int,
                                     const std::string&) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldsync;
  using namespace fieldsync::fuzz;
  if (size < 1) return 0;
  State& s = S();
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const int n = static_cast<int>(size - 1);
  switch (data[0] % 3) {
    case 0: {
      v1::ExportRequest request;
      if (!request.ParseFromArray(bytes, n)) return -1;
      Export(s, request);
      break;
    }
    case 1: {
      v1::GetExportManifestRequest request;
      if (!request.ParseFromArray(bytes, n)) return -1;
      if (data[0] & 0x80 && !s.first_export_id.empty()) request.set_export_id(s.first_export_id);
      absl::StatusOr<v1::ExportManifest> m = s.reporter->GetExportManifest(request);
      if (!m.ok()) CheckRefusal(m.status(), "GetExportManifest");
      else if (m->export_id() != request.export_id()) Fail("a manifest of another export");
      break;
    }
    case 2: {
      v1::VerifyAuditChainRequest request;
      if (!request.ParseFromArray(bytes, n)) return -1;
      absl::StatusOr<v1::VerifyAuditChainResponse> r = s.reporter->VerifyAuditChain(request);
      if (!r.ok()) CheckRefusal(r.status(), "VerifyAuditChain");
      // A range reaching past the head is answered "not ok: entries N..M are missing", which is
      // how a truncated log shows to an auditor holding an older head; within the log, the
      // fixture's chain must verify.
      else if (!r->ok() && request.from_seq() <= s.world.store->LastSeq() &&
               request.to_seq() <= s.world.store->LastSeq()) {
        Fail(absl::StrCat("the fixture's audit chain does not verify: ", r->problem()));
      }
      break;
    }
  }
  return 0;
}
