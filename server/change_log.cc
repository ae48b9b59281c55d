#include "server/change_log.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "fieldsync/base/ids.h"

namespace fieldsync::server {

const char kGenesisHash[] = "0000000000000000000000000000000000000000000000000000000000000000";

namespace {

void AppendField(std::string& out, absl::string_view bytes) {
  uint64_t n = bytes.size();
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(bytes.data(), bytes.size());
}

}  // namespace

std::string CanonicalChangeBytes(const ChangeLogEntry& e) {
  std::string out = "fieldsync-change-v1\n";
  AppendField(out, absl::StrCat(e.seq));
  AppendField(out, e.collection);
  AppendField(out, e.doc_id);
  AppendField(out, e.op);
  AppendField(out, e.actor_id);
  AppendField(out, e.device_id);
  AppendField(out, absl::StrCat(e.device_seq));
  AppendField(out, e.hlc);
  AppendField(out, absl::StrCat(absl::ToUnixMicros(e.server_time)));
  AppendField(out, e.payload);
  return out;
}

std::string ChainHash(absl::string_view prev_hash_hex, const ChangeLogEntry& entry) {
  return Sha256Hex(absl::StrCat(absl::HexStringToBytes(prev_hash_hex), CanonicalChangeBytes(entry)));
}

}  // namespace fieldsync::server
