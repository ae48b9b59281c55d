#include "fieldsync/base/ids.h"

#include <gtest/gtest.h>

#include <set>

namespace fieldsync {
namespace {

TEST(Ids, UuidV7HasVersionVariantAndOrder) {
  std::string prev;
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    std::string id = NewUuidV7();
    ASSERT_TRUE(IsUuid(id)) << id;
    EXPECT_EQ(id[14], '7') << id;
    EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b') << id;
    EXPECT_LT(prev.substr(0, 13), id.substr(0, 13) + "~");  // time prefix never goes back
    EXPECT_TRUE(seen.insert(id).second) << "duplicate " << id;
    prev = id;
  }
}

TEST(Ids, IsUuidRejectsMalformed) {
  EXPECT_FALSE(IsUuid(""));
  EXPECT_FALSE(IsUuid("018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e6"));    // short
  EXPECT_FALSE(IsUuid("018F3A2C-7B1E-7C3D-9F00-1A2B3C4D5E6F"));   // upper case
  EXPECT_FALSE(IsUuid("018f3a2c+7b1e-7c3d-9f00-1a2b3c4d5e6f"));   // wrong separator
  EXPECT_FALSE(IsUuid("018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e6g"));   // not hex
  EXPECT_TRUE(IsUuid("018f3a2c-7b1e-7c3d-9f00-1a2b3c4d5e6f"));
}

TEST(Ids, Sha256MatchesKnownVector) {
  // FIPS 180-2 test vector.
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Ids, RandomBytesDiffer) {
  EXPECT_EQ(RandomBytes(32).size(), 32u);
  EXPECT_NE(RandomBytes(32), RandomBytes(32));
  EXPECT_EQ(Base64UrlEncode(std::string(32, '\xff')).size(), 43u);
}

}  // namespace
}  // namespace fieldsync
