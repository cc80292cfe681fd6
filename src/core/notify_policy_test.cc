#include "core/notify_policy.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace sked::policy {
namespace {

using E = NotifyEvent;

std::vector<NotifyEvent> Events(RunStatus status, bool retry_follows, bool was_failing) {
  return SettleEvents({status, retry_follows, was_failing});
}

TEST(NotifyPolicyTest, EveryEventNameRoundTrips) {
  for (int i = 0; i <= static_cast<int>(E::kStale); ++i) {
    const auto event = static_cast<E>(i);
    auto parsed = ParseNotifyEvent(NotifyEventName(event));
    ASSERT_TRUE(parsed.ok()) << NotifyEventName(event);
    EXPECT_EQ(*parsed, event);
  }
}

TEST(NotifyPolicyTest, AnUnknownEventNamesItselfAndTheChoices) {
  auto parsed = ParseNotifyEvent("Failed");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("'Failed'"), std::string::npos);
  EXPECT_NE(parsed.status().message().find("retries_exhausted"), std::string::npos);
  EXPECT_FALSE(ParseNotifyEvent("").ok());
}

TEST(NotifyPolicyTest, AFailureThatWillBeRetriedIsNotTheFinalOne) {
  EXPECT_EQ(Events(RunStatus::kFailed, true, false), std::vector<E>{E::kFailed});
  EXPECT_EQ(Events(RunStatus::kTimedOut, true, true), std::vector<E>{E::kTimedOut});
  EXPECT_EQ(Events(RunStatus::kAbandoned, true, false), std::vector<E>{E::kAbandoned});
}

TEST(NotifyPolicyTest, AFailureWithNoRetryExhaustsTheRetries) {
  EXPECT_EQ(Events(RunStatus::kFailed, false, false),
            (std::vector<E>{E::kFailed, E::kRetriesExhausted}));
  EXPECT_EQ(Events(RunStatus::kTimedOut, false, true),
            (std::vector<E>{E::kTimedOut, E::kRetriesExhausted}));
  EXPECT_EQ(Events(RunStatus::kAbandoned, false, false),
            (std::vector<E>{E::kAbandoned, E::kRetriesExhausted}));
}

TEST(NotifyPolicyTest, OnlyASuccessAfterAFailureIsARecovery) {
  EXPECT_EQ(Events(RunStatus::kSucceeded, false, false), std::vector<E>{E::kSucceeded});
  EXPECT_EQ(Events(RunStatus::kSucceeded, false, true),
            (std::vector<E>{E::kSucceeded, E::kRecovered}));
}

TEST(NotifyPolicyTest, ASkippedFireIsMissedAndACancelRaisesNothing) {
  EXPECT_EQ(Events(RunStatus::kSkipped, false, false), std::vector<E>{E::kMissed});
  EXPECT_TRUE(Events(RunStatus::kCancelled, false, true).empty());
  EXPECT_TRUE(Events(RunStatus::kRunning, false, false).empty());
  EXPECT_TRUE(Events(RunStatus::kQueued, false, false).empty());
}

TEST(NotifyPolicyTest, TheDefaultAlertsOnTheFinalFailureNotOnEachAttempt) {
  const auto& d = DefaultNotifyEvents();
  auto has = [&](E e) { return std::find(d.begin(), d.end(), e) != d.end(); };
  EXPECT_TRUE(has(E::kRetriesExhausted));
  EXPECT_FALSE(has(E::kFailed));
  EXPECT_FALSE(has(E::kTimedOut));
  EXPECT_FALSE(has(E::kSucceeded));
  EXPECT_FALSE(has(E::kRecovered));
}

}  // namespace
}  // namespace sked::policy
