// Record payloads and the other documents clients write: a message parsed from bytes goes
// through the model validators (model/validate.h; a cataract surgery's follow-ups through the
// visual acuity parser) and through the document split the sync engine stores it as
// (sync::Flatten, Assemble, Diff).
//
// Input: one selector byte, then the bytes. Selector % 10: 0 Partner, 1 Project, 2 Site,
// 3 Record, 4 User, 5 Device (serialized messages); 6 ValidateId, 7 ValidateOptionalDate,
// 8 IsCountryCode / IsCurrencyCode / CurrencyMinorUnits, 9 a Record whose body is validated
// twice, before and after a round trip through its document.
//
// Checked: nothing crashes; a refusal is INVALID_ARGUMENT whose message starts with the
// message's name; output-only fields do not change the verdict; Assemble(Flatten(m)) succeeds
// and flattens back to the same fields, and validates the same as m; Diff of a document with
// itself is empty; a valid record has a real record date and a kind.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fieldsync/model/validate.h"
#include "fieldsync/sync/document.h"
#include "google/protobuf/stubs/logging.h"

namespace fieldsync::fuzz {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "record_fuzzer: %s\n", what.c_str());
  std::abort();
}

void CheckVerdict(const absl::Status& s, absl::string_view name) {
  if (s.ok()) return;
  if (s.code() != absl::StatusCode::kInvalidArgument) {
    Fail(absl::StrCat(name, ": validator answered ", s.ToString()));
  }
  if (!absl::StartsWith(s.message(), name)) {
    Fail(absl::StrCat(name, ": error does not name the message: ", s.message()));
  }
}

template <typename M>
void CheckDocument(const M& message, absl::Status (*validate)(const M&), absl::string_view name) {
  absl::Status verdict = validate(message);
  CheckVerdict(verdict, name);
  M cleared = message;
  sync::ClearOutputOnly(&cleared);
  absl::Status cleared_verdict = validate(cleared);
  if (cleared_verdict.ok() != verdict.ok()) {
    Fail(absl::StrCat(name, ": output-only fields changed the verdict: ", verdict.ToString(),
                      " vs ", cleared_verdict.ToString()));
  }
  sync::FieldValues fields = sync::Flatten(cleared);
  M back;
  absl::Status assembled = sync::Assemble(fields, &back);
  if (!assembled.ok()) Fail(absl::StrCat(name, ": Flatten did not assemble: ", assembled.ToString()));
  sync::FieldValues again = sync::Flatten(back);
  if (again != fields) Fail(absl::StrCat(name, ": Flatten/Assemble does not round-trip"));
  if (!sync::Diff(fields, again).empty()) Fail(absl::StrCat(name, ": Diff of equal documents"));
  absl::Status back_verdict = validate(back);
  if (back_verdict.ok() != verdict.ok()) {
    Fail(absl::StrCat(name, ": the document validates differently from the message: ",
                      verdict.ToString(), " vs ", back_verdict.ToString()));
  }
  // Every path is a field of the message, and each value parses as exactly that field.
  for (const auto& [path, value] : fields) {
    if (sync::ResolvePath(*message.GetDescriptor(), path).field == nullptr) {
      Fail(absl::StrCat(name, ": Flatten made the unknown path ", path));
    }
    M one;
    if (!sync::MergeFieldValue(path, value, &one)) {
      Fail(absl::StrCat(name, ": the value of ", path, " does not merge back"));
    }
  }
}

template <typename M>
bool Parse(absl::string_view bytes, M* out) {
  return out->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

}  // namespace
}  // namespace fieldsync::fuzz

// Protobuf logs every string field with invalid UTF-8 it refuses to parse; such input never
// reaches a handler (gRPC refuses it first), so the lines are noise here.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int,
                                     const std::string&) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldsync;
  using namespace fieldsync::fuzz;
  if (size < 1) return 0;
  absl::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 10) {
    case 0: {
      v1::Partner m;
      if (!Parse(rest, &m)) return -1;
      CheckDocument(m, &model::ValidatePartner, "partner");
      break;
    }
    case 1: {
      v1::Project m;
      if (!Parse(rest, &m)) return -1;
      CheckDocument(m, &model::ValidateProject, "project");
      break;
    }
    case 2: {
      v1::Site m;
      if (!Parse(rest, &m)) return -1;
      CheckDocument(m, &model::ValidateSite, "site");
      break;
    }
    case 3:
    case 9: {
      v1::Record m;
      if (!Parse(rest, &m)) return -1;
      CheckDocument(m, &model::ValidateRecord, "record");
      if (model::ValidateRecord(m).ok()) {
        if (model::KindOf(m) == v1::RECORD_KIND_UNSPECIFIED) Fail("a valid record has no kind");
        if (!model::IsDate(model::RecordDateOf(m))) Fail("a valid record has no record date");
        (void)model::ProjectKindFor(model::KindOf(m));
      }
      break;
    }
    case 4: {
      v1::User m;
      if (!Parse(rest, &m)) return -1;
      CheckVerdict(model::ValidateUser(m), "user");
      break;
    }
    case 5: {
      v1::Device m;
      if (!Parse(rest, &m)) return -1;
      CheckVerdict(model::ValidateDevice(m), "device");
      break;
    }
    case 6: {
      absl::Status s = model::ValidateId("id", rest, /*allow_empty=*/data[0] & 0x80);
      CheckVerdict(s, "id");
      if (s.ok() && !rest.empty() && rest.size() != 36) Fail("accepted an id of odd length");
      break;
    }
    case 7: {
      absl::Status s = model::ValidateOptionalDate("date", rest);
      CheckVerdict(s, "date");
      if (s.ok() != (rest.empty() || model::IsDate(rest))) Fail("date verdicts disagree");
      break;
    }
    case 8: {
      bool currency = model::IsCurrencyCode(rest);
      int units = model::CurrencyMinorUnits(rest);
      if (currency != (units >= 0) || units > 4) Fail("currency verdicts disagree");
      if (model::IsCountryCode(rest) && rest.size() != 2) Fail("odd country code accepted");
      break;
    }
  }
  return 0;
}
