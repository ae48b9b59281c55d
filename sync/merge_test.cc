#include "fieldsync/sync/merge.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <tuple>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "fieldsync/sync/checksum.h"
#include "fieldsync/v1/domain.pb.h"
#include "tests/testing/status_matchers.h"

namespace fieldsync::sync {
namespace {

using ::fieldsync::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kDocId[] = "018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e6f";
constexpr int64_t kT0 = 1'732'780'000'000;

Hlc At(int64_t wall_ms, uint32_t counter, std::string node) {
  Hlc h;
  h.wall_ms = wall_ms;
  h.counter = counter;
  h.node = std::move(node);
  return h;
}

std::string Yield(double lph) {
  v1::WellRecord well;
  well.set_yield_lph(lph);
  return SerializeDeterministic(well);
}

std::string Depth(double m) {
  v1::WellRecord well;
  well.set_drilled_depth_m(m);
  return SerializeDeterministic(well);
}

Change Edit(const Hlc& hlc, std::vector<FieldChange> fields, int64_t device_seq = 1) {
  Change c;
  c.device_id = hlc.node;
  c.device_seq = device_seq;
  c.collection = "record";
  c.doc_id = kDocId;
  c.hlc = hlc;
  c.fields = std::move(fields);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Merge, one change at a time
// ---------------------------------------------------------------------------------------------

TEST(Merge, NewDocumentTakesCollectionIdAndFields) {
  Document doc;
  MergeResult r = Merge(doc, Edit(At(kT0, 0, "dev-1"), {{"well.yield_lph", Yield(900), {}}}), 17);
  EXPECT_TRUE(r.changed);
  ASSERT_EQ(r.fields.size(), 1u);
  EXPECT_TRUE(r.fields[0].applied);
  EXPECT_FALSE(r.fields[0].conflict);
  EXPECT_EQ(doc.collection, "record");
  EXPECT_EQ(doc.id, kDocId);
  EXPECT_EQ(doc.fields["well.yield_lph"].value, Yield(900));
  EXPECT_EQ(doc.fields["well.yield_lph"].hlc, At(kT0, 0, "dev-1"));
  EXPECT_EQ(doc.fields["well.yield_lph"].seq, 17);
}

TEST(Merge, ReplayIsANoOp) {
  Document doc;
  Change c = Edit(At(kT0, 0, "dev-1"), {{"well.yield_lph", Yield(900), {}}});
  Merge(doc, c, 1);
  Document before = doc;
  MergeResult again = Merge(doc, c, 2);
  EXPECT_FALSE(again.changed);
  ASSERT_EQ(again.fields.size(), 1u);
  EXPECT_FALSE(again.fields[0].applied);
  EXPECT_FALSE(again.fields[0].conflict);
  EXPECT_EQ(again.fields[0].winning_value, "");  // a duplicate neither won nor lost
  EXPECT_EQ(doc.fields["well.yield_lph"].seq, 1);
}

TEST(Merge, AnOlderWriteLosesAndReportsTheWinner) {
  Document doc;
  Merge(doc, Edit(At(kT0 + 10, 0, "dev-1"), {{"well.yield_lph", Yield(900), {}}}));
  MergeResult r = Merge(doc, Edit(At(kT0, 0, "dev-1"), {{"well.yield_lph", Yield(100), {}}}));
  EXPECT_FALSE(r.changed);
  ASSERT_EQ(r.fields.size(), 1u);
  EXPECT_FALSE(r.fields[0].applied);
  EXPECT_FALSE(r.fields[0].conflict);  // the same writer: not concurrent
  EXPECT_EQ(r.fields[0].winning_value, Yield(900));
  EXPECT_EQ(r.fields[0].winning_hlc, At(kT0 + 10, 0, "dev-1"));
  EXPECT_EQ(r.fields[0].losing_value, Yield(100));
  EXPECT_EQ(r.fields[0].losing_hlc, At(kT0, 0, "dev-1"));
  EXPECT_EQ(doc.fields["well.yield_lph"].value, Yield(900));
}

TEST(Merge, NodeBreaksTiesOfWallAndCounter) {
  Change a = Edit(At(kT0, 3, "dev-a"), {{"well.yield_lph", Yield(1), {}}});
  Change b = Edit(At(kT0, 3, "dev-b"), {{"well.yield_lph", Yield(2), {}}});
  Document ab, ba;
  Merge(ab, a);
  Merge(ab, b);
  Merge(ba, b);
  Merge(ba, a);
  EXPECT_EQ(ab.fields["well.yield_lph"].value, Yield(2));
  EXPECT_EQ(ba.fields["well.yield_lph"].value, Yield(2));
}

TEST(Merge, EqualClocksWithDifferentValuesStillConverge) {
  // BoundSkew can stamp two changes of one device with the same clock.
  Change a = Edit(At(kT0, 0, "dev-a"), {{"well.yield_lph", Yield(1), {}}});
  Change b = Edit(At(kT0, 0, "dev-a"), {{"well.yield_lph", Yield(2), {}}}, 2);
  Document ab, ba;
  Merge(ab, a);
  Merge(ab, b);
  Merge(ba, b);
  Merge(ba, a);
  EXPECT_EQ(ab.fields["well.yield_lph"].value, ba.fields["well.yield_lph"].value);
}

TEST(Merge, ChangeForAnotherDocumentIsIgnored) {
  Document doc{"record", "other", {}};
  MergeResult r = Merge(doc, Edit(At(kT0, 0, "dev-1"), {{"site_id", "x", {}}}));
  EXPECT_FALSE(r.changed);
  EXPECT_TRUE(r.fields.empty());
  EXPECT_TRUE(doc.fields.empty());
}

TEST(Merge, DeleteAndUndeleteAreAFieldWithItsOwnClock) {
  Document doc;
  Merge(doc, Edit(At(kT0, 0, "dev-1"), {{"well.yield_lph", Yield(1), {}}}));
  Merge(doc, Edit(At(kT0 + 2, 0, "dev-2"), {{kDeletedPath, "\x01", {}}}));
  EXPECT_TRUE(doc.deleted());
  // An undelete older than the delete loses; a newer one wins.
  Merge(doc, Edit(At(kT0 + 1, 0, "dev-3"), {{kDeletedPath, "", {}}}));
  EXPECT_TRUE(doc.deleted());
  Merge(doc, Edit(At(kT0 + 3, 0, "dev-3"), {{kDeletedPath, "", At(kT0 + 2, 0, "dev-2")}}));
  EXPECT_FALSE(doc.deleted());
  EXPECT_EQ(doc.fields["well.yield_lph"].value, Yield(1));  // fields survive a delete
}

// ---------------------------------------------------------------------------------------------
// Conflicts
// ---------------------------------------------------------------------------------------------

// A document whose well.yield_lph and well.drilled_depth_m were written by dev-0.
Document Base(Hlc* base_hlc) {
  Document doc;
  *base_hlc = At(kT0, 0, "dev-0");
  Merge(doc, Edit(*base_hlc,
                  {{"well.yield_lph", Yield(100), {}}, {"well.drilled_depth_m", Depth(40), {}}}));
  return doc;
}

TEST(Conflict, SameFieldFromTheSameBaseIsFlaggedOnceAndTheLaterClockWins) {
  Hlc base;
  Change one =
      Edit(At(kT0 + 50, 0, "dev-1"), {{"well.yield_lph", Yield(200), At(kT0, 0, "dev-0")}});
  Change two =
      Edit(At(kT0 + 70, 0, "dev-2"), {{"well.yield_lph", Yield(300), At(kT0, 0, "dev-0")}});
  for (bool one_first : {true, false}) {
    Document doc = Base(&base);
    MergeResult first = Merge(doc, one_first ? one : two);
    MergeResult second = Merge(doc, one_first ? two : one);
    ASSERT_EQ(first.fields.size(), 1u);
    ASSERT_EQ(second.fields.size(), 1u);
    EXPECT_FALSE(first.fields[0].conflict);
    EXPECT_TRUE(second.fields[0].conflict);
    EXPECT_EQ(second.fields[0].winning_value, Yield(300));
    EXPECT_EQ(second.fields[0].winning_hlc, two.hlc);
    EXPECT_EQ(second.fields[0].losing_value, Yield(200));
    EXPECT_EQ(second.fields[0].losing_hlc, one.hlc);
    EXPECT_EQ(second.fields[0].applied, one_first);
    EXPECT_EQ(doc.fields["well.yield_lph"].value, Yield(300));
    EXPECT_EQ(doc.fields["well.yield_lph"].hlc, two.hlc);
  }
}

TEST(Conflict, DifferentFieldsBothSurviveWithoutConflict) {
  Hlc base;
  Document doc = Base(&base);
  MergeResult a =
      Merge(doc, Edit(At(kT0 + 50, 0, "dev-1"), {{"well.yield_lph", Yield(200), base}}));
  MergeResult b =
      Merge(doc, Edit(At(kT0 + 40, 0, "dev-2"), {{"well.drilled_depth_m", Depth(55), base}}));
  EXPECT_FALSE(a.fields[0].conflict);
  EXPECT_FALSE(b.fields[0].conflict);
  EXPECT_TRUE(a.fields[0].applied);
  EXPECT_TRUE(b.fields[0].applied);
  EXPECT_EQ(doc.fields["well.yield_lph"].value, Yield(200));
  EXPECT_EQ(doc.fields["well.drilled_depth_m"].value, Depth(55));
}

TEST(Conflict, AnEditThatSawThePreviousOneIsNoConflict) {
  Hlc base;
  Document doc = Base(&base);
  Hlc first = At(kT0 + 50, 0, "dev-1");
  Merge(doc, Edit(first, {{"well.yield_lph", Yield(200), base}}));
  MergeResult second =
      Merge(doc, Edit(At(kT0 + 60, 0, "dev-2"), {{"well.yield_lph", Yield(300), first}}));
  EXPECT_TRUE(second.fields[0].applied);
  EXPECT_FALSE(second.fields[0].conflict);
  // The same device editing again is never a conflict with itself.
  MergeResult third =
      Merge(doc, Edit(At(kT0 + 70, 0, "dev-2"), {{"well.yield_lph", Yield(400), first}}));
  EXPECT_FALSE(third.fields[0].conflict);
}

TEST(Conflict, ACurrentValueOlderThanTheOneTheWriterSawIsNoConflict) {
  // dev-2 saw dev-1's edit, but this replica gets dev-2's change before dev-1's.
  Hlc base;
  Document doc = Base(&base);
  Hlc seen = At(kT0 + 50, 0, "dev-1");
  MergeResult r =
      Merge(doc, Edit(At(kT0 + 60, 0, "dev-2"), {{"well.yield_lph", Yield(300), seen}}));
  EXPECT_TRUE(r.fields[0].applied);
  EXPECT_FALSE(r.fields[0].conflict);
}

TEST(Conflict, ConcurrentWritesOfTheSameValueAgree) {
  Hlc base;
  Document doc = Base(&base);
  Merge(doc, Edit(At(kT0 + 50, 0, "dev-1"), {{"well.yield_lph", Yield(200), base}}));
  MergeResult r =
      Merge(doc, Edit(At(kT0 + 60, 0, "dev-2"), {{"well.yield_lph", Yield(200), base}}));
  EXPECT_TRUE(r.fields[0].applied);
  EXPECT_FALSE(r.fields[0].conflict);
}

// ---------------------------------------------------------------------------------------------
// ValidateChange
// ---------------------------------------------------------------------------------------------

Change ValidChange() {
  return Edit(At(kT0, 0, "dev-1"),
              {{"well.yield_lph", Yield(10), {}},
               {"site_id", "", At(kT0 - 1, 0, "server")},
               {kDeletedPath, "\x01", {}},
               {"well", std::string("\xa2\x01\x00", 3), {}}},
              5);
}

TEST(ValidateChange, AcceptsAWellFormedChange) {
  EXPECT_OK(ValidateChange(ValidChange(), "changes[0]", "dev-1"));
  EXPECT_OK(ValidateChange(ValidChange(), "changes[0]", ""));
  Change project = ValidChange();
  v1::Project budget;
  budget.mutable_budget()->set_currency("USD");
  project.collection = "project";
  project.fields = {{"budget", SerializeDeterministic(budget), {}}};
  EXPECT_OK(ValidateChange(project, "changes[0]", ""));
}

TEST(ValidateChange, RejectsAPathThatIsNotAField) {
  Change c = ValidChange();
  c.fields[1].path = "well.bogus";
  EXPECT_THAT(ValidateChange(c, "changes[3]", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "changes[3].fields[1].path: not a field of record, got \"well.bogus\""));
  for (const char* path : {"bogus", "audit.version", "well.yield_lph.x", "well.", ""}) {
    c.fields[1].path = path;
    EXPECT_THAT(ValidateChange(c, "changes[3]", ""),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fields[1].path")))
        << path;
  }
}

TEST(ValidateChange, RejectsEachBadPart) {
  struct Case {
    std::function<void(Change&)> breaks;
    std::string message;
  };
  v1::Record other_field;
  other_field.set_project_id("p");
  v1::Record kind;
  kind.set_kind(v1::RECORD_KIND_WELL);
  v1::CataractSurgery surgery;
  surgery.add_follow_ups()->set_outcome(v1::VISUAL_OUTCOME_GOOD);
  const std::string outcome = SerializeDeterministic(surgery);
  const std::vector<Case> cases = {
      {[](Change& c) { c.collection = "records"; },
       "changes[2].collection: must be partner, project, site or record, got \"records\""},
      {[](Change& c) { c.doc_id = "42"; },
       "changes[2].doc_id: must be a lower-case UUID, got \"42\""},
      {[](Change& c) { c.device_id = ""; }, "changes[2].device_id: must not be empty"},
      {[](Change& c) { c.device_seq = 0; }, "changes[2].device_seq: must be > 0, got 0"},
      {[](Change& c) { c.hlc.node = ""; }, "changes[2].hlc: not a valid HLC"},
      {[](Change& c) { c.hlc.node = "dev.1"; }, "changes[2].hlc: not a valid HLC"},
      {[](Change& c) { c.hlc.counter = 100000; }, "changes[2].hlc: not a valid HLC"},
      {[](Change& c) { c.hlc.wall_ms = -1; }, "changes[2].hlc: not a valid HLC"},
      {[](Change& c) { c.device_id = c.hlc.node = "dev-2"; },
       "changes[2].device_id: must be the sending device \"dev-1\", got \"dev-2\""},
      {[](Change& c) { c.hlc.node = "dev-2"; },
       "changes[2].hlc: node must be the sending device \"dev-1\", got \"dev-2\""},
      {[](Change& c) { c.fields.clear(); }, "changes[2].fields: must not be empty"},
      {[](Change& c) { c.fields[2].base_hlc = At(5, 0, ""); },
       "changes[2].fields[2].base_hlc: not a valid HLC"},
      {[](Change& c) { c.fields[3].path = "site_id"; },
       "changes[2].fields[3].path: appears twice, got \"site_id\""},
      {[](Change& c) { c.fields[2].value = "yes"; },
       "changes[2].fields[2].value: must be \"\" or \"\\x01\" for _deleted, got \"yes\""},
      {[](Change& c) { c.fields[0].value = "\xff\xff"; },
       "changes[2].fields[0].value: not a valid value of record field \"well.yield_lph\""},
      {[&](Change& c) { c.fields[1].value = SerializeDeterministic(other_field); },
       "changes[2].fields[1].value: not a valid value of record field \"site_id\""},
      {[&](Change& c) {
         c.fields[1] = {"kind", SerializeDeterministic(kind), {}};
       },
       "changes[2].fields[1].value: sets output-only fields of record in \"kind\""},
      {[&](Change& c) {
         c.fields[1] = {"cataract_surgery.follow_ups", outcome, {}};
       },
       "changes[2].fields[1].value: sets output-only fields of record in "
       "\"cataract_surgery.follow_ups\""},
  };
  for (const Case& k : cases) {
    Change c = ValidChange();
    k.breaks(c);
    EXPECT_THAT(ValidateChange(c, "changes[2]", "dev-1"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(k.message)));
  }
  // Without an expected node, the writer is not checked against the sender.
  Change c = ValidChange();
  c.hlc.node = "server";
  EXPECT_OK(ValidateChange(c, "changes[2]", ""));
}

// ---------------------------------------------------------------------------------------------
// Convergence: random edits on replicas with bad clocks, delivered in random orders
// ---------------------------------------------------------------------------------------------

using MergeFn = std::function<void(Document&, const Change&)>;

// One device: a document store, a clock with a fake physical time, its outbox sequence.
struct Replica {
  std::string node;
  std::shared_ptr<int64_t> physical_ms = std::make_shared<int64_t>(0);
  int64_t drift_ms = 0;  // added to physical time on each step, on top of real time
  bool stuck = false;    // a dead RTC: physical time never moves
  std::unique_ptr<HlcClock> clock;
  std::map<std::string, Document> docs;
  int64_t seq = 0;
};

constexpr int kReplicas = 5;
constexpr int kDocuments = 20;
constexpr int kEdits = 300;

std::string DocId(int i) { return absl::StrCat("018f3a2c-7b1e-7c3d-9f00-0000000000", 10 + i); }
const char* CollectionOf(int i) { return i < kDocuments / 2 ? "record" : "project"; }

template <typename T>
const T& Pick(std::mt19937_64& rng, const std::vector<T>& options) {
  return options[rng() % options.size()];
}

// Mutates a random subset of `message`'s fields, with small value sets so that replicas often
// write the same field, and sometimes the same value.
void RandomEdit(std::mt19937_64& rng, const std::string& id, google::protobuf::Message* message) {
  auto maybe = [&] { return rng() % 3 == 0; };
  if (auto* record = google::protobuf::DynamicCastToGenerated<v1::Record>(message)) {
    if (maybe()) record->set_id(id);
    if (maybe()) record->set_project_id(Pick<std::string>(rng, {"", "p-1", "p-2"}));
    if (maybe()) record->set_site_id(Pick<std::string>(rng, {"", "s-1", "s-2", "s-3"}));
    if (rng() % 20 == 0) {
      record->mutable_expenditure()->set_receipt_ref(Pick<std::string>(rng, {"", "R-1"}));
      return;  // switches the body
    }
    v1::WellRecord* well = record->mutable_well();
    if (rng() % 15 == 0) well->Clear();  // all default: only the oneof case is left
    if (maybe()) well->set_yield_lph(static_cast<double>(rng() % 4) * 250);
    if (maybe()) well->set_drilled_depth_m(static_cast<double>(rng() % 3) * 30);
    if (maybe()) well->set_functional_status(static_cast<v1::FunctionalStatus>(rng() % 4));
    if (maybe()) well->set_notes(Pick<std::string>(rng, {"", "pump ok", "handle broken"}));
    if (maybe()) {
      if (rng() % 3 == 0) {
        well->clear_quality_tests();
      } else {
        v1::WaterQualityTest* test = well->add_quality_tests();
        test->set_tested_date("2024-11-0" + std::to_string(1 + rng() % 3));
        test->set_ecoli_cfu_per_100ml(static_cast<double>(rng() % 2));
      }
    }
    return;
  }
  auto* project = google::protobuf::DynamicCastToGenerated<v1::Project>(message);
  if (maybe()) project->set_id(id);
  if (maybe()) project->set_title(Pick<std::string>(rng, {"", "Wells", "Wells for Turkana"}));
  if (maybe()) project->set_status(static_cast<v1::ProjectStatus>(rng() % 5));
  if (maybe()) project->set_donor(Pick<std::string>(rng, {"", "WaterAid", "Rotary"}));
  if (maybe()) {
    if (rng() % 3 == 0) {
      project->clear_budget();
    } else {
      project->mutable_budget()->set_amount_minor(static_cast<int64_t>(rng() % 3) * 1000);
      project->mutable_budget()->set_currency(Pick<std::string>(rng, {"USD", "KES"}));
    }
  }
}

std::string Describe(const FieldState& f) {
  return absl::StrCat("(", absl::CHexEscape(f.value), " @ ", f.hlc.Encode(), ")");
}

// Runs one scenario and returns "" if every replica ends with the same documents (values and
// clocks), the same canonical payloads and the same scope checksum, and (checked last, so that
// a divergence is reported as such) every field holds the write with the greatest clock; else a
// description of the first difference.
std::string CheckConvergence(uint64_t seed, const MergeFn& merge) {
  std::mt19937_64 rng(seed);
  constexpr int64_t kYearMs = 365LL * 24 * 3600 * 1000;
  constexpr int64_t kFactoryDate = 946'684'800'000;  // 2000-01-01, a dead RTC's idea of now
  // Clocks in the field: right, a year ahead, a year behind, and two dead RTCs stuck at the
  // same factory date (so they stamp equal wall times and counters, and only the node tells
  // their writes apart). Which device gets which is random.
  std::vector<std::pair<int64_t, bool>> clocks = {{kT0, false},
                                                  {kT0 + kYearMs, false},
                                                  {kT0 - kYearMs, false},
                                                  {kFactoryDate, true},
                                                  {kFactoryDate, true}};
  std::shuffle(clocks.begin(), clocks.end(), rng);
  std::vector<Replica> replicas(kReplicas);
  for (int i = 0; i < kReplicas; ++i) {
    Replica& r = replicas[i];
    r.node = absl::StrCat("dev-", i);
    *r.physical_ms = clocks[i].first;
    r.stuck = clocks[i].second;
    r.drift_ms = static_cast<int64_t>(rng() % 3);
    std::shared_ptr<int64_t> physical = r.physical_ms;
    r.clock = std::make_unique<HlcClock>(r.node, [physical] { return *physical; });
  }

  std::vector<Change> log;
  auto deliver = [&](Replica& r, const Change& c) {
    merge(r.docs[c.doc_id], c);
    r.clock->Observe(c.hlc);
  };

  for (int step = 0; step < kEdits; ++step) {
    for (Replica& r : replicas) {
      if (r.stuck) continue;
      *r.physical_ms += static_cast<int64_t>(rng() % 40) + r.drift_ms;
      if (rng() % 25 == 0) *r.physical_ms -= static_cast<int64_t>(rng() % 3'600'000);  // steps back
    }
    Replica& r = replicas[rng() % kReplicas];
    int d = static_cast<int>(rng() % kDocuments);
    auto stored = r.docs.find(DocId(d));
    const Document doc = stored == r.docs.end() ? Document() : stored->second;
    std::unique_ptr<google::protobuf::Message> message(PrototypeFor(CollectionOf(d))->New());
    FieldValues before = doc.Values();
    before.erase(kDeletedPath);
    if (absl::Status s = Assemble(before, message.get()); !s.ok()) {
      return absl::StrCat("seed ", seed, ": replica ", r.node, " cannot assemble: ", s.ToString());
    }
    RandomEdit(rng, DocId(d), message.get());
    // The diff is taken against the stored values, so paths hidden by a body switch are reset.
    FieldValues changed = Diff(before, Flatten(*message));
    if (rng() % 10 == 0) changed[kDeletedPath] = doc.deleted() ? "" : "\x01";
    if (changed.empty()) continue;

    Change c;
    c.device_id = r.node;
    c.device_seq = ++r.seq;
    c.collection = CollectionOf(d);
    c.doc_id = DocId(d);
    c.hlc = r.clock->Now();
    for (auto& [path, value] : changed) {
      auto it = doc.fields.find(path);
      c.fields.push_back({path, value, it == doc.fields.end() ? Hlc() : it->second.hlc});
    }
    if (absl::Status s = ValidateChange(c, "change", r.node); !s.ok()) {
      return absl::StrCat("seed ", seed, ": invalid change: ", s.ToString());
    }
    merge(r.docs[c.doc_id], c);
    log.push_back(std::move(c));

    // Gossip: now and then a replica hears of a few changes, so later edits build on them.
    if (rng() % 3 == 0) {
      Replica& to = replicas[rng() % kReplicas];
      for (int k = static_cast<int>(rng() % 6); k > 0; --k) deliver(to, log[rng() % log.size()]);
    }
  }

  // Everything to everyone: shuffled, with duplicates, and drops that are retried later.
  for (Replica& r : replicas) {
    std::vector<size_t> order(log.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (size_t i = 0, n = order.size() / 5; i < n; ++i) order.push_back(rng() % log.size());
    while (!order.empty()) {
      std::shuffle(order.begin(), order.end(), rng);
      std::vector<size_t> dropped;
      for (size_t i : order) {
        if (rng() % 8 == 0) {
          dropped.push_back(i);
        } else {
          deliver(r, log[i]);
        }
      }
      order = std::move(dropped);
    }
  }

  const Replica& first = replicas[0];
  std::string first_checksum;
  for (const Replica& r : replicas) {
    ScopeChecksum checksum;
    if (r.docs.size() != first.docs.size()) {
      return absl::StrCat("seed ", seed, ": ", r.node, " has ", r.docs.size(), " documents, ",
                          first.node, " has ", first.docs.size());
    }
    for (const auto& [id, doc] : r.docs) {
      auto found = first.docs.find(id);
      if (found == first.docs.end()) {
        return absl::StrCat("seed ", seed, ": doc ", id, " is on ", r.node, " only");
      }
      const Document& other = found->second;
      for (const auto& [path, state] : doc.fields) {
        auto f = other.fields.find(path);
        if (f == other.fields.end() || f->second.value != state.value ||
            f->second.hlc != state.hlc) {
          return absl::StrCat("seed ", seed, ": doc ", id, " path ", path, ": ", r.node, " has ",
                              Describe(state), ", ", first.node, " has ",
                              f == other.fields.end() ? "nothing" : Describe(f->second));
        }
      }
      if (doc.fields.size() != other.fields.size()) {
        return absl::StrCat("seed ", seed, ": doc ", id, ": ", r.node, " has ", doc.fields.size(),
                            " fields, ", first.node, " has ", other.fields.size());
      }
      absl::StatusOr<std::string> payload = CanonicalPayload(doc);
      absl::StatusOr<std::string> other_payload = CanonicalPayload(other);
      if (!payload.ok() || !other_payload.ok() || *payload != *other_payload) {
        return absl::StrCat("seed ", seed, ": doc ", id, ": canonical payloads differ");
      }
      if (absl::Status s = checksum.Add(doc); !s.ok()) return s.ToString();
    }
    if (first_checksum.empty()) first_checksum = checksum.Hex();
    if (checksum.Hex() != first_checksum) {
      return absl::StrCat("seed ", seed, ": ", r.node, " scope checksum ", checksum.Hex(),
                          " != ", first_checksum);
    }
  }

  // Every field holds the greatest (clock, value) written to it.
  std::map<std::pair<std::string, std::string>, FieldState> expected;
  for (const Change& c : log) {
    for (const FieldChange& f : c.fields) {
      FieldState& e = expected[{c.doc_id, f.path}];
      if (std::tie(e.hlc, e.value) < std::tie(c.hlc, f.value)) e = FieldState{f.value, c.hlc, 0};
    }
  }
  for (const auto& [key, want] : expected) {
    auto doc = first.docs.find(key.first);
    const FieldState* got = nullptr;
    if (doc != first.docs.end()) {
      auto f = doc->second.fields.find(key.second);
      if (f != doc->second.fields.end()) got = &f->second;
    }
    if (got == nullptr || got->value != want.value || got->hlc != want.hlc) {
      return absl::StrCat("seed ", seed, ": ", first.node, " doc ", key.first, " path ", key.second,
                          " holds ", got ? Describe(*got) : "nothing", ", the latest write is ",
                          Describe(want));
    }
  }

  return "";
}

TEST(Convergence, RandomEditsAndDeliveriesConvergeOnEveryReplica) {
  auto start = std::chrono::steady_clock::now();
  int64_t merges = 0, applied = 0, conflicts = 0;
  MergeFn merge = [&](Document& doc, const Change& c) {
    ++merges;
    for (const FieldOutcome& f : Merge(doc, c).fields) {
      applied += f.applied;
      conflicts += f.conflict;
    }
  };
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    std::string divergence = CheckConvergence(seed, merge);
    ASSERT_EQ(divergence, "");
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  std::cout << "200 randomized scenarios in " << ms << " ms: " << merges << " merges, " << applied
            << " field writes applied, " << conflicts << " conflicts flagged\n";
}

// Deliberately wrong merges, to show that the checker above would catch them.
using BeatsFn = bool (*)(const Hlc& incoming, const FieldState& current);

void MergeBy(BeatsFn beats, Document& doc, const Change& change) {
  doc.collection = change.collection;
  doc.id = change.doc_id;
  for (const FieldChange& f : change.fields) {
    auto it = doc.fields.find(f.path);
    if (it == doc.fields.end() || beats(change.hlc, it->second)) {
      doc.fields[f.path] = FieldState{f.value, change.hlc, 0};
    }
  }
}

int DivergingSeeds(BeatsFn beats, std::string* example) {
  MergeFn merge = [beats](Document& doc, const Change& c) { MergeBy(beats, doc, c); };
  int diverging = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    std::string divergence = CheckConvergence(seed, merge);
    if (!divergence.empty()) {
      ++diverging;
      if (example->empty()) *example = divergence;
    }
  }
  return diverging;
}

TEST(Convergence, CheckerCatchesFirstWriterWins) {
  std::string example;
  EXPECT_GT(DivergingSeeds([](const Hlc&, const FieldState&) { return false; }, &example), 0);
  std::cout << "first writer wins: " << example << "\n";
}

TEST(Convergence, CheckerCatchesComparingOnlyWallTime) {
  std::string example;
  EXPECT_GT(DivergingSeeds(
                [](const Hlc& in, const FieldState& cur) { return in.wall_ms > cur.hlc.wall_ms; },
                &example),
            0);
  std::cout << "wall time only: " << example << "\n";
}

TEST(Convergence, CheckerCatchesAMissingNodeTieBreak) {
  std::string example;
  int diverging = DivergingSeeds(
      [](const Hlc& in, const FieldState& cur) {
        return std::tie(in.wall_ms, in.counter) > std::tie(cur.hlc.wall_ms, cur.hlc.counter);
      },
      &example);
  EXPECT_GT(diverging, 0);
  std::cout << "no node tie-break: " << diverging << "/40 seeds diverge, e.g. " << example << "\n";
}

}  // namespace
}  // namespace fieldsync::sync
