// GoogleTest matchers for absl::Status and absl::StatusOr, written once (Debian's Abseil has none).
//
//   EXPECT_THAT(store.GetProject("x"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("x")));
//   ASSERT_OK(tx.Commit());
//   ASSERT_OK_AND_ASSIGN(auto db, Database::Open(path, {}));
#ifndef FIELDSYNC_TESTS_TESTING_STATUS_MATCHERS_H_
#define FIELDSYNC_TESTS_TESTING_STATUS_MATCHERS_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fieldsync::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER_P2(StatusIs, code, message_matcher,
           std::string("has code ") + absl::StatusCodeToString(code)) {
  const absl::Status& s = ::fieldsync::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::fieldsync::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.ok();
}

}  // namespace fieldsync::testing

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::fieldsync::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::fieldsync::testing::IsOk())

#define FS_TEST_CONCAT_INNER_(a, b) a##b
#define FS_TEST_CONCAT_(a, b) FS_TEST_CONCAT_INNER_(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(FS_TEST_CONCAT_(fs_test_statusor_, __LINE__), lhs, rexpr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  ASSERT_OK(statusor);                                   \
  lhs = std::move(statusor).value()

#endif  // FIELDSYNC_TESTS_TESTING_STATUS_MATCHERS_H_
