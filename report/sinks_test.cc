#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <random>

#include "fieldsync/report/writer.h"
#include "report_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace fieldsync::report {
namespace {

using ::fieldsync::testing::StatusIs;
using ::testing::HasSubstr;

// The reference: OpenSSL's one-shot SHA256(), independent of the streaming EVP code.
std::string OneShotHex(absl::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return testing::Hex(absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

TEST(HashingSinkTest, MatchesOneShotDigestAndBlocksAtAbsoluteOffsets) {
  const std::string data = RandomBytes(10000, 7);
  StringSink out;
  HashingSink sink(&out, /*block_bytes=*/1024);
  // Writes of awkward sizes that straddle block boundaries.
  std::mt19937 rng(3);
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t n = std::min<size_t>(data.size() - pos, rng() % 3000);
    ASSERT_OK(sink.Write(absl::string_view(data).substr(pos, n)));
    pos += n;
  }
  EXPECT_EQ(out.data(), data);
  EXPECT_EQ(sink.bytes(), 10000);
  EXPECT_EQ(sink.Sha256Hex(), OneShotHex(data));
  const std::vector<std::string> blocks = sink.BlockSha256Hex();
  ASSERT_EQ(blocks.size(), 10u);  // 9 full blocks and 784 bytes
  for (size_t i = 0; i < blocks.size(); ++i) {
    EXPECT_EQ(blocks[i], OneShotHex(absl::string_view(data).substr(i * 1024, 1024))) << i;
  }
  EXPECT_EQ(sink.Sha256Hex(), OneShotHex(data));  // asking again gives the same
  EXPECT_THAT(sink.Write("x"), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("after")));
}

TEST(HashingSinkTest, AgreesWithSha256sum) {
  const std::string data = RandomBytes(3 * 4096, 11);
  HashingSink sink(nullptr, 4096);
  ASSERT_OK(sink.Write(data));
  fieldsync::testing::TempDir dir;
  testing::WriteFile(dir.File("d"), data);
  testing::CommandResult r = testing::RunCommand("sha256sum '" + dir.File("d") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.substr(0, 64), sink.Sha256Hex());
  EXPECT_EQ(sink.BlockSha256Hex().size(), 3u);  // exact multiple: no empty last block
}

TEST(HashingSinkTest, EmptyInputAndSinkErrors) {
  HashingSink empty(nullptr, 16);
  EXPECT_EQ(empty.Sha256Hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_TRUE(empty.BlockSha256Hex().empty());

  class Refusing final : public ByteSink {
   public:
    absl::Status Write(absl::string_view) override { return absl::UnavailableError("gone"); }
  } refusing;
  HashingSink sink(&refusing, 16);
  EXPECT_THAT(sink.Write("abc"), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("gone")));
  EXPECT_EQ(sink.bytes(), 0);  // only what the next sink took counts
}

}  // namespace
}  // namespace fieldsync::report
