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

TEST(NotifyPolicyTest, TheStoresDefaultsAreThePolicysDefaults) {
  std::vector<std::string> names;
  for (E e : DefaultNotifyEvents()) names.emplace_back(NotifyEventName(e));
  EXPECT_EQ(NotifyDefaults().on, names);
  EXPECT_TRUE(NotifyDefaults().channels.empty()) << "no channel unless one is configured";
}

TEST(NotifyPolicyTest, ASettlementGoesToEachChannelForEachEventTheJobNotifiesOn) {
  NotifyDefaults defaults;
  defaults.channels = {"ops"};
  SettledAttempt final_failure{RunStatus::kFailed, false, false};
  // The job says nothing: the defaults (the final failure only) to the default channel.
  EXPECT_EQ(RouteSettlement(final_failure, {}, defaults),
            (std::vector<OutboxEntry>{{E::kRetriesExhausted, "ops"}}));
  // Its own events and channels replace the defaults'.
  NotifySpec own;
  own.on = std::vector<std::string>{"failed", "retries_exhausted"};
  own.channels = std::vector<std::string>{"a", "b"};
  EXPECT_EQ(RouteSettlement(final_failure, own, defaults),
            (std::vector<OutboxEntry>{{E::kFailed, "a"},
                                      {E::kFailed, "b"},
                                      {E::kRetriesExhausted, "a"},
                                      {E::kRetriesExhausted, "b"}}));
  // An attempt a retry follows, and a plain success, raise nothing by default.
  EXPECT_TRUE(RouteSettlement({RunStatus::kFailed, true, false}, {}, defaults).empty());
  EXPECT_TRUE(RouteSettlement({RunStatus::kSucceeded, false, true}, {}, defaults).empty());
  // No channel anywhere, or an empty list of its own: nothing is written.
  EXPECT_TRUE(RouteSettlement(final_failure, {}, NotifyDefaults()).empty());
  NotifySpec silent;
  silent.channels = std::vector<std::string>{};
  EXPECT_TRUE(RouteSettlement(final_failure, silent, defaults).empty());
}

TEST(NotifyPolicyTest, OnlyAFailureWhileFailingOrAMissedFireRepeatsWithinRealert) {
  const Instant t0 = Instant(std::chrono::seconds(1'800'000'000));
  const Duration hour = std::chrono::hours(1);
  const auto minute = std::chrono::minutes(1);
  const OutboxEntry failure{E::kRetriesExhausted, "ops"};
  EXPECT_TRUE(IsRepeat(failure, true, t0, t0 + minute, hour));
  EXPECT_FALSE(IsRepeat(failure, false, t0, t0 + minute, hour)) << "a new incident";
  EXPECT_FALSE(IsRepeat(failure, true, t0, t0 + hour, hour)) << "realert passed";
  EXPECT_FALSE(IsRepeat(failure, true, std::nullopt, t0, hour)) << "never raised";
  EXPECT_FALSE(IsRepeat(failure, true, t0, t0 + minute, Duration(0))) << "realert off";
  EXPECT_TRUE(IsRepeat({E::kMissed, "ops"}, false, t0, t0 + minute, hour));
  EXPECT_FALSE(IsRepeat({E::kRecovered, "ops"}, true, t0, t0 + minute, hour));
}

TEST(NotifyPolicyTest, AnOverrunIsKTimesTheMedianOfRecentSuccessesOnceThereAreEnough) {
  using std::chrono::seconds;
  const std::vector<Duration> four = {seconds(10), seconds(10), seconds(10), seconds(10)};
  EXPECT_EQ(OverrunLimit(four, 3), std::nullopt) << "fewer than kOverrunMinSamples";
  // Odd count: the middle one, whatever the order; one slow outlier does not move it.
  EXPECT_EQ(OverrunLimit({seconds(12), seconds(3600), seconds(10), seconds(11), seconds(9)}, 3),
            Duration(seconds(33)));
  // Even count: the middle two averaged.
  EXPECT_EQ(OverrunLimit(
                {seconds(40), seconds(10), seconds(20), seconds(30), seconds(1), seconds(100)}, 2),
            Duration(seconds(50)));
  EXPECT_EQ(OverrunLimit({seconds(10), seconds(10), seconds(10), seconds(10), seconds(10)}, 1.5),
            Duration(seconds(15)));
  // A negative duration (the clock stepped back mid-run) is not a sample.
  EXPECT_EQ(OverrunLimit({seconds(10), seconds(10), seconds(10), seconds(10), seconds(-5)}, 2),
            std::nullopt);
  // No overflow for absurd history.
  const Duration years = std::chrono::hours(24 * 365 * 1000);
  const auto huge = OverrunLimit({years, years, years, years, years}, 100);
  ASSERT_TRUE(huge.has_value());
  EXPECT_GT(*huge, years);
}

TEST(NotifyPolicyTest, NotifySettingsAreCheckedWhereTheyEnter) {
  NotifySpec bad_event;
  bad_event.on = std::vector<std::string>{"failed", "exploded"};
  Status st = ValidateNotifySpec(bad_event);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("notify.on: unknown notification event 'exploded'"),
            std::string::npos)
      << st.message();
  for (const char* name : {"", "two words", "<script>", "a,b", "x'; DROP TABLE jobs; --"}) {
    NotifySpec bad_channel;
    bad_channel.channels = std::vector<std::string>{name};
    EXPECT_FALSE(ValidateNotifySpec(bad_channel).ok()) << name;
  }
  NotifySpec good;
  good.on = std::vector<std::string>{"recovered", "stale"};
  good.channels = std::vector<std::string>{"ops-chat", "pager.primary"};
  EXPECT_TRUE(ValidateNotifySpec(good).ok());
}

}  // namespace
}  // namespace sked::policy
