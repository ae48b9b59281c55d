#include "fieldsync/sync/merge.h"

#include <memory>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "fieldsync/base/ids.h"

namespace fieldsync::sync {
namespace {

// The order every replica uses to pick a field's value: the clock, and only for two writes
// with the same clock (BoundSkew can stamp two changes of one device alike) the value bytes.
// A total order on (clock, value) makes the merge a join, whatever arrives first.
bool Beats(const Hlc& hlc, const std::string& value, const FieldState& current) {
  if (hlc != current.hlc) return current.hlc < hlc;
  return current.value < value;
}

std::string Quoted(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, 120)),
                      text.size() > 120 ? "...\"" : "\"");
}

// Each part as it is: Encode() assumes a valid clock.
std::string Describe(const Hlc& hlc) {
  return absl::StrCat("wall_ms ", hlc.wall_ms, ", counter ", hlc.counter, ", node ",
                      Quoted(hlc.node));
}

}  // namespace

MergeResult Merge(Document& doc, const Change& change, int64_t seq) {
  MergeResult result;
  if (doc.collection.empty() && doc.id.empty()) {
    doc.collection = change.collection;
    doc.id = change.doc_id;
  }
  if (doc.collection != change.collection || doc.id != change.doc_id) return result;

  for (const FieldChange& field : change.fields) {
    static const FieldState kUnset;
    auto it = doc.fields.find(field.path);
    const FieldState& current = it == doc.fields.end() ? kUnset : it->second;

    FieldOutcome outcome;
    outcome.path = field.path;
    bool duplicate = current.hlc == change.hlc && current.value == field.value;
    outcome.applied = !duplicate && Beats(change.hlc, field.value, current);
    // Another writer changed the value after the one this writer saw. A current value older
    // than the one the writer saw was already overwritten by what it saw (that merge is where a
    // conflict shows), and equal values agree: nothing for anyone to review in either case.
    outcome.conflict = field.base_hlc < current.hlc && current.hlc.node != change.hlc.node &&
                       current.value != field.value;
    if (!duplicate && (outcome.conflict || !outcome.applied)) {
      const FieldState incoming{field.value, change.hlc, seq};
      const FieldState& winner = outcome.applied ? incoming : current;
      const FieldState& loser = outcome.applied ? current : incoming;
      outcome.winning_value = winner.value;
      outcome.winning_hlc = winner.hlc;
      outcome.losing_value = loser.value;
      outcome.losing_hlc = loser.hlc;
    }
    if (outcome.applied) {
      doc.fields[field.path] = FieldState{field.value, change.hlc, seq};
      result.changed = true;
    }
    result.fields.push_back(std::move(outcome));
  }
  return result;
}

absl::Status ValidateChange(const Change& change, absl::string_view path,
                            absl::string_view expect_node) {
  auto invalid = [&](absl::string_view where, absl::string_view message) {
    return absl::InvalidArgumentError(absl::StrCat(path, ".", where, ": ", message));
  };
  const google::protobuf::Message* prototype = PrototypeFor(change.collection);
  if (prototype == nullptr) {
    return invalid("collection", absl::StrCat("must be partner, project, site or record, got ",
                                              Quoted(change.collection)));
  }
  if (!IsUuid(change.doc_id)) {
    return invalid("doc_id",
                   absl::StrCat("must be a lower-case UUID, got ", Quoted(change.doc_id)));
  }
  if (change.device_id.empty()) return invalid("device_id", "must not be empty");
  if (change.device_seq <= 0) {
    return invalid("device_seq", absl::StrCat("must be > 0, got ", change.device_seq));
  }
  if (!IsValidHlc(change.hlc)) {
    return invalid("hlc", absl::StrCat("not a valid HLC, got ", Describe(change.hlc)));
  }
  if (!expect_node.empty()) {
    if (change.device_id != expect_node) {
      return invalid("device_id", absl::StrCat("must be the sending device ", Quoted(expect_node),
                                               ", got ", Quoted(change.device_id)));
    }
    if (change.hlc.node != expect_node) {
      return invalid("hlc", absl::StrCat("node must be the sending device ", Quoted(expect_node),
                                         ", got ", Quoted(change.hlc.node)));
    }
  }

  if (change.fields.empty()) return invalid("fields", "must not be empty");
  std::set<absl::string_view> seen;
  std::unique_ptr<google::protobuf::Message> scratch(prototype->New());
  for (size_t i = 0; i < change.fields.size(); ++i) {
    const FieldChange& field = change.fields[i];
    std::string where = absl::StrCat("fields[", i, "]");
    if (!field.base_hlc.IsZero() && !IsValidHlc(field.base_hlc)) {
      return invalid(where + ".base_hlc",
                     absl::StrCat("not a valid HLC, got ", Describe(field.base_hlc)));
    }
    if (!seen.insert(field.path).second) {
      return invalid(where + ".path", absl::StrCat("appears twice, got ", Quoted(field.path)));
    }
    if (field.path == kDeletedPath) {
      if (field.value != "" && field.value != "\x01") {
        return invalid(where + ".value", absl::StrCat("must be \"\" or \"\\x01\" for ",
                                                      kDeletedPath, ", got ", Quoted(field.value)));
      }
      continue;
    }
    if (ResolvePath(*prototype->GetDescriptor(), field.path).field == nullptr) {
      return invalid(where + ".path", absl::StrCat("not a field of ", change.collection, ", got ",
                                                   Quoted(field.path)));
    }
    scratch->Clear();
    if (!MergeFieldValue(field.path, field.value, scratch.get())) {
      return invalid(where + ".value",
                     absl::StrCat("not a valid value of ", change.collection, " field ",
                                  Quoted(field.path), " (", field.value.size(), " bytes)"));
    }
    // Documents hold only what people wrote; the server computes the rest. Clearing a set field
    // always removes bytes, so the size tells whether ClearOutputOnly found anything to clear.
    const size_t as_sent = scratch->ByteSizeLong();
    ClearOutputOnly(scratch.get());
    if (scratch->ByteSizeLong() != as_sent) {
      return invalid(where + ".value", absl::StrCat("sets output-only fields of ",
                                                    change.collection, " in ", Quoted(field.path)));
    }
  }
  return absl::OkStatus();
}

}  // namespace fieldsync::sync
