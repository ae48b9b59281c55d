// What a client sends as a request, when it is not a valid request message:
// server::DescribeMalformed on any bytes, read as each of a few request types (the call guard
// runs it on every request protobuf could not parse).
//
// Checked: nothing crashes or runs away (deep nesting, lengths past the end, huge varints); the
// answer is never empty and names the request type, so the client's INVALID_ARGUMENT always
// says what was wrong.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "fieldsync/v1/admin.pb.h"
#include "fieldsync/v1/sync.pb.h"
#include "fieldsync/v1/tracker.pb.h"
#include "server/wire_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (const google::protobuf::Descriptor* type :
       {fieldsync::v1::PushRequest::descriptor(), fieldsync::v1::EnrollRequest::descriptor(),
        fieldsync::v1::CreateRecordRequest::descriptor(),
        fieldsync::v1::ListPartnersRequest::descriptor()}) {
    const std::string said = fieldsync::server::DescribeMalformed(*type, bytes);
    if (said.empty() || !absl::StartsWith(said, type->name())) {
      std::fprintf(stderr, "wire_check_fuzzer: %s: \"%s\"\n", type->name().c_str(), said.c_str());
      std::abort();
    }
  }
  return 0;
}
