#include "cli/interrupt.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <future>

namespace fieldsync::cli {
namespace {

TEST(InterruptHandlerTest, FirstSignalCallsBackOnItsOwnThread) {
  std::promise<void> called;
  {
    InterruptHandler handler([&called] { called.set_value(); });
    EXPECT_FALSE(handler.interrupted());
    ASSERT_EQ(raise(SIGINT), 0);
    ASSERT_EQ(called.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_TRUE(handler.interrupted());
  }
  // The previous disposition is back.
  struct sigaction now = {};
  ASSERT_EQ(sigaction(SIGINT, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

TEST(InterruptHandlerTest, NoSignalNoCallAndOnlyOneAtATime) {
  bool called = false;
  {
    InterruptHandler first([&called] { called = true; });
    InterruptHandler second([&called] { called = true; });
    EXPECT_FALSE(first.interrupted());
    EXPECT_FALSE(second.interrupted());
  }
  EXPECT_FALSE(called);
  // Once both are gone, a new handler owns the signals again.
  std::promise<void> again;
  InterruptHandler third([&again] { again.set_value(); });
  ASSERT_EQ(raise(SIGTERM), 0);
  EXPECT_EQ(again.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

}  // namespace
}  // namespace fieldsync::cli
