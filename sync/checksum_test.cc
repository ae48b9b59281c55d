#include "fieldsync/sync/checksum.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "fieldsync/base/ids.h"
#include "fieldsync/v1/domain.pb.h"
#include "tests/testing/status_matchers.h"

namespace fieldsync::sync {
namespace {

using ::fieldsync::testing::StatusIs;
using ::testing::HasSubstr;

struct Entry {
  std::string collection, id, payload;
};

std::vector<Entry> Entries(int n) {
  std::vector<Entry> entries;
  for (int i = 0; i < n; ++i) {
    v1::Project project;
    project.set_title("project " + std::to_string(i));
    entries.push_back(
        {i % 2 ? "project" : "record", "id-" + std::to_string(i), SerializeDeterministic(project)});
  }
  return entries;
}

ScopeChecksum Sum(const std::vector<Entry>& entries) {
  ScopeChecksum sum;
  for (const Entry& e : entries) sum.Add(e.collection, e.id, e.payload);
  return sum;
}

TEST(ScopeChecksum, EmptySetIsAllZero) {
  ScopeChecksum sum;
  EXPECT_EQ(sum.Digest(), std::string(32, '\0'));
  EXPECT_EQ(sum.Hex(), std::string(64, '0'));
  EXPECT_EQ(sum.count(), 0);
}

TEST(ScopeChecksum, MatchesTheDefinition) {
  ScopeChecksum sum;
  sum.Add("project", "p1", "payload");
  EXPECT_EQ(sum.Digest(), Sha256(std::string("fieldsync-doc-v1\0project\0p1\0payload", 35)));
  EXPECT_EQ(sum.Hex(), HexEncode(sum.Digest()));
  EXPECT_EQ(sum.count(), 1);
}

TEST(ScopeChecksum, OrderIndependent) {
  std::vector<Entry> entries = Entries(50);
  const std::string digest = Sum(entries).Digest();
  std::mt19937 rng(1);
  for (int i = 0; i < 20; ++i) {
    std::shuffle(entries.begin(), entries.end(), rng);
    EXPECT_EQ(Sum(entries).Digest(), digest);
  }
}

TEST(ScopeChecksum, RemoveUndoesAdd) {
  std::vector<Entry> entries = Entries(10);
  ScopeChecksum sum = Sum(entries);
  ScopeChecksum without_three = Sum({entries.begin(), entries.begin() + 3});
  for (size_t i = 3; i < entries.size(); ++i) {
    sum.Remove(entries[i].collection, entries[i].id, entries[i].payload);
  }
  EXPECT_EQ(sum.Digest(), without_three.Digest());
  EXPECT_EQ(sum.count(), 3);
  for (size_t i = 0; i < 3; ++i)
    sum.Remove(entries[i].collection, entries[i].id, entries[i].payload);
  EXPECT_EQ(sum.Digest(), ScopeChecksum().Digest());
  EXPECT_EQ(sum.count(), 0);
}

TEST(ScopeChecksum, OneChangedByteChangesTheDigest) {
  std::vector<Entry> entries = Entries(5);
  const std::string digest = Sum(entries).Digest();
  for (size_t i = 0; i < entries[2].payload.size(); ++i) {
    std::vector<Entry> changed = entries;
    changed[2].payload[i] ^= 1;
    EXPECT_NE(Sum(changed).Digest(), digest) << "byte " << i;
  }
  // The separators keep (collection, id, payload) unambiguous.
  ScopeChecksum a, b;
  a.Add("project", "ab", "c");
  b.Add("project", "a", "bc");
  EXPECT_NE(a.Digest(), b.Digest());
  std::vector<Entry> renamed = entries;
  renamed[0].id += "x";
  EXPECT_NE(Sum(renamed).Digest(), digest);
  std::vector<Entry> moved = entries;
  moved[0].collection = "site";
  EXPECT_NE(Sum(moved).Digest(), digest);
}

Document ProjectDocument(const std::string& id, const std::string& title) {
  Document doc{"project", id, {}};
  v1::Project project;
  project.set_title(title);
  for (const auto& [path, value] : Flatten(project)) doc.fields[path].value = value;
  return doc;
}

TEST(ScopeChecksum, DocumentsUseTheirCanonicalPayloadAndDeletedOnesDoNotCount) {
  Document live = ProjectDocument("p1", "Wells");
  Document gone = ProjectDocument("p2", "Old");
  gone.fields[kDeletedPath].value = "\x01";

  ScopeChecksum by_doc;
  ASSERT_OK(by_doc.Add(live));
  ASSERT_OK(by_doc.Add(gone));
  ScopeChecksum by_payload;
  ASSERT_OK_AND_ASSIGN(std::string payload, CanonicalPayload(live));
  by_payload.Add("project", "p1", payload);
  EXPECT_EQ(by_doc.Digest(), by_payload.Digest());
  EXPECT_EQ(by_doc.count(), 1);

  // Undeleted: counts again.
  gone.fields[kDeletedPath].value = "";
  ASSERT_OK(by_doc.Add(gone));
  EXPECT_EQ(by_doc.count(), 2);
  EXPECT_NE(by_doc.Digest(), by_payload.Digest());
}

TEST(ScopeChecksum, ADocumentThatDoesNotAssembleIsAnError) {
  Document doc{"project", "p1", {{"bogus", {"x", {}, 0}}}};
  ScopeChecksum sum;
  EXPECT_THAT(sum.Add(doc), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bogus")));
  EXPECT_EQ(sum.count(), 0);
}

}  // namespace
}  // namespace fieldsync::sync
