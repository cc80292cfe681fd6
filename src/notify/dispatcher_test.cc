// The dispatcher on the simulated clock, over a SQLite store: delivery,
// retries with backoff, giving up, a missing channel, the payload; and the
// built-in command and log channels and the webhook signature.

#include "notify/dispatcher.h"

#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "sked/store.h"
#include "testing/simulated_clock.h"

namespace sked::notify {
namespace {

using std::chrono::seconds;

const Instant kT0 = Instant(seconds(1'800'000'000));

// Answers each delivery with the next scripted status (OK when none left).
class ScriptedChannel final : public Channel {
 public:
  explicit ScriptedChannel(std::deque<Status> answers, std::vector<std::string>* seen)
      : answers_(std::move(answers)), seen_(seen) {}
  Status Deliver(const std::string& payload) override {
    seen_->push_back(payload);
    if (answers_.empty()) return Status::Ok();
    Status s = answers_.front();
    answers_.pop_front();
    return s;
  }

 private:
  std::deque<Status> answers_;
  std::vector<std::string>* seen_;
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions options;
    options.notify.channels = {"ops"};
    store_ = std::move(*Store::Open("sqlite::memory:", options));
    ASSERT_TRUE(store_->Migrate().ok());
  }

  // A job whose run failed for good at kT0 (one retries_exhausted to "ops").
  sked::Run FailedRun(const std::string& name) {
    Job j;
    j.spec.name = name;
    j.spec.driver = "noop";
    j.spec.schedule = "* * * * *";
    j.created_at = j.updated_at = kT0;
    j = *store_->CreateJob(j);
    NewRun manual;
    manual.scheduled_for = kT0;
    manual.trigger = RunTrigger::kManual;
    EXPECT_TRUE(store_->InsertRun(j.id, manual, kT0).ok());
    auto started = store_->StartQueued("inst", kT0, 1, kT0 + seconds(30));
    EXPECT_EQ(started->size(), 1u);
    RunOutcome o;
    o.run_id = started->front().id;
    o.lease_token = started->front().lease_token;
    o.status = RunStatus::kFailed;
    o.finished_at = kT0;
    o.exit_code = 3;
    o.error = "exit status 3";
    o.output = "<script>alert(1)</script>\xff\n";
    EXPECT_EQ(*store_->SettleRuns({o}), std::vector<bool>{true});
    return *store_->GetRun(o.run_id);
  }

  std::unique_ptr<Dispatcher> NewDispatcher(std::deque<Status> answers,
                                            const std::string& channel = "ops") {
    std::map<std::string, std::unique_ptr<Channel>> channels;
    channels[channel] = std::make_unique<ScriptedChannel>(std::move(answers), &seen_);
    DispatcherOptions options;
    options.instance_id = "inst";
    options.max_attempts = 3;
    options.backoff = seconds(10);
    return std::make_unique<Dispatcher>(options, store_.get(), &clock_, std::move(channels),
                                        [this](const Notification& n, const Status& s) {
                                          attempts_.push_back(n.event + ":" + s.message());
                                        });
  }

  Notification Only() {
    auto all = store_->ListNotifications({});
    EXPECT_EQ(all->size(), 1u);
    return all->empty() ? Notification() : all->front();
  }

  sked::testing::SimulatedClock clock_{kT0};
  std::unique_ptr<Store> store_;
  std::vector<std::string> seen_;
  std::vector<std::string> attempts_;
};

TEST_F(DispatcherTest, DeliversThePayloadOnce) {
  const sked::Run run = FailedRun("nightly");
  auto d = NewDispatcher({});
  EXPECT_EQ(*d->RunOnce(), 1);
  EXPECT_EQ(*d->RunOnce(), 0) << "delivered twice";
  ASSERT_EQ(seen_.size(), 1u);
  const Notification n = Only();
  EXPECT_EQ(n.status, NotificationStatus::kDelivered);
  EXPECT_EQ(n.attempts, 1);

  auto payload = nlohmann::json::parse(seen_[0]);
  EXPECT_EQ(payload["event"], "retries_exhausted");
  EXPECT_EQ(payload["channel"], "ops");
  EXPECT_EQ(payload["job"]["name"], "nightly");
  EXPECT_EQ(payload["run"]["id"], run.id);
  EXPECT_EQ(payload["run"]["status"], "failed");
  EXPECT_EQ(payload["run"]["exit_code"], 3);
  EXPECT_EQ(payload["run"]["error"], "exit status 3");
  // Output is carried as text (JSON escapes it); bytes that are not UTF-8
  // are replaced, not refused.
  const std::string tail = payload["run"]["output_tail"];
  EXPECT_EQ(tail.rfind("<script>alert(1)</script>", 0), 0u) << tail;
  EXPECT_EQ(payload["attempt"], 1);
}

TEST_F(DispatcherTest, RetriesWithBackoffThenDelivers) {
  FailedRun("flaky-peer");
  auto d = NewDispatcher({UnavailableError("HTTP 503"), UnavailableError("HTTP 502")});
  EXPECT_EQ(*d->RunOnce(), 1);
  Notification n = Only();
  EXPECT_EQ(n.status, NotificationStatus::kPending);
  EXPECT_EQ(n.last_error, "HTTP 503");
  EXPECT_EQ(n.next_attempt_at, kT0 + seconds(10));
  EXPECT_EQ(*d->RunOnce(), 0) << "retried before its backoff";
  clock_.AdvanceTime(seconds(10));
  EXPECT_EQ(*d->RunOnce(), 1);
  EXPECT_EQ(Only().next_attempt_at, kT0 + seconds(30)) << "the backoff doubles";
  clock_.AdvanceTime(seconds(19));
  EXPECT_EQ(*d->RunOnce(), 0);
  clock_.AdvanceTime(seconds(1));
  EXPECT_EQ(*d->RunOnce(), 1);
  n = Only();
  EXPECT_EQ(n.status, NotificationStatus::kDelivered);
  EXPECT_EQ(n.attempts, 3);
  EXPECT_EQ(attempts_,
            (std::vector<std::string>{"retries_exhausted:HTTP 503", "retries_exhausted:HTTP 502",
                                      "retries_exhausted:"}));
}

TEST_F(DispatcherTest, GivesUpAfterMaxAttempts) {
  FailedRun("down");
  auto d = NewDispatcher({UnavailableError("a"), UnavailableError("b"), UnavailableError("c"),
                          UnavailableError("never asked")});
  for (int i = 0; i < 10; ++i) {
    (void)d->RunOnce();
    clock_.AdvanceTime(std::chrono::minutes(10));
  }
  const Notification n = Only();
  EXPECT_EQ(n.status, NotificationStatus::kFailed);
  EXPECT_EQ(n.attempts, 3);
  EXPECT_EQ(n.last_error, "c");
  EXPECT_EQ(seen_.size(), 3u);
  EXPECT_FALSE(store_->NextNotificationAt()->has_value());
}

TEST_F(DispatcherTest, ANotificationForAChannelNoLongerConfiguredFailsWithWhy) {
  FailedRun("orphan");
  auto d = NewDispatcher({}, "renamed");
  EXPECT_EQ(*d->RunOnce(), 1);
  EXPECT_TRUE(seen_.empty());
  EXPECT_EQ(Only().last_error, "no channel named 'ops' is configured");
}

TEST_F(DispatcherTest, ARunDeletedBeforeDeliveryStillNotifies) {
  const sked::Run run = FailedRun("deleted");
  ASSERT_TRUE(store_->DeleteJob(run.job_id).ok());
  auto d = NewDispatcher({});
  EXPECT_EQ(*d->RunOnce(), 1);
  ASSERT_EQ(seen_.size(), 1u);
  auto payload = nlohmann::json::parse(seen_[0]);
  EXPECT_EQ(payload["job"]["name"], "deleted");
  EXPECT_TRUE(payload["run"].is_null());
}

TEST_F(DispatcherTest, RetentionDeletesDeliveredNotificationsAfterKeep) {
  FailedRun("kept-a-while");
  std::map<std::string, std::unique_ptr<Channel>> channels;
  channels["ops"] = std::make_unique<ScriptedChannel>(std::deque<Status>{}, &seen_);
  DispatcherOptions options;
  options.instance_id = "inst";
  options.keep = std::chrono::hours(24);
  Dispatcher d(options, store_.get(), &clock_, std::move(channels));
  EXPECT_EQ(*d.RunOnce(), 1);
  EXPECT_EQ(*d.Prune(), 0);
  clock_.AdvanceTime(std::chrono::hours(24));
  EXPECT_EQ(*d.Prune(), 0) << "deleted at keep, not after";
  clock_.AdvanceTime(seconds(1));
  EXPECT_EQ(*d.Prune(), 1);
  EXPECT_TRUE(store_->ListNotifications({})->empty());
}

TEST_F(DispatcherTest, TheBackoffDoublesUpToItsCap) {
  auto d = NewDispatcher({});
  EXPECT_EQ(d->Backoff(1), seconds(10));
  EXPECT_EQ(d->Backoff(2), seconds(20));
  EXPECT_EQ(d->Backoff(4), seconds(80));
  EXPECT_EQ(d->Backoff(60), std::chrono::minutes(10));
}

// The command channel: the payload on standard input, exit 0 = delivered;
// a failure says how, a command past its timeout is killed with its
// process group.
TEST(CommandChannelTest, PayloadOnStdinExitStatusDecides) {
  const auto dir = std::filesystem::temp_directory_path() / "sked-command-channel";
  std::filesystem::create_directories(dir);
  const std::string out = (dir / "payload.json").string();
  ChannelConfig c;
  c.name = "script";
  c.type = "command";
  c.command = {"/bin/sh", "-c", "cat > '" + out + "'"};
  auto channel = NewCommandChannel(c);
  EXPECT_TRUE(channel->Deliver("{\"event\":\"failed\"}").ok());
  std::ifstream in(out);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, "{\"event\":\"failed\"}");

  c.command = {"/bin/sh", "-c", "echo 'no route to pager' >&2; exit 4"};
  Status st = NewCommandChannel(c)->Deliver("{}");
  EXPECT_EQ(st.message(), "command '/bin/sh': exit status 4: no route to pager");

  // Exits without reading a large payload: a failure, not a dead daemon.
  c.command = {"/bin/sh", "-c", "exit 0"};
  EXPECT_TRUE(NewCommandChannel(c)->Deliver(std::string(1 << 20, 'x')).ok());

  c.command = {"/nonexistent/alert"};
  EXPECT_FALSE(NewCommandChannel(c)->Deliver("{}").ok());

  // Past its timeout: killed, with the child it left in the background.
  c.timeout = std::chrono::milliseconds(300);
  const std::string pid_file = (dir / "child.pid").string();
  c.command = {"/bin/sh", "-c", "sleep 30 & echo $! > '" + pid_file + "'; wait"};
  st = NewCommandChannel(c)->Deliver("{}");
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.ToString();
  std::ifstream pid_in(pid_file);
  int child = 0;
  pid_in >> child;
  ASSERT_GT(child, 0);
  // The background sleep was in the command's process group: gone (reaped
  // by init once killed; kill(0) fails, or it is a zombie for a moment).
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string s;
    std::getline(stat, s);
    gone = !stat || s.find(") Z") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone) << "the command's child outlived the timeout";
}

TEST(EmailMessageTest, HeadersSummaryAndPayloadWithCrlfLinesOnly) {
  ChannelConfig c;
  c.from = "sked@example.test";
  c.to = {"ops@example.test", "oncall@example.test"};
  const std::string payload =
      R"({"id":7,"event":"retries_exhausted","job":{"id":1,"name":"nightly"},"run":{"id":9,)"
      R"("attempt":3,"trigger":"retry","status":"failed","exit_code":3,"error":"exit status 3",)"
      R"("output_tail":"line one\nbare cr\rSubject: not a header\n"}})";
  const std::string m = EmailMessage(c, payload, 1700000000);
  const std::string headers = m.substr(0, m.find("\r\n\r\n"));
  EXPECT_NE(headers.find("From: sked <sked@example.test>\r\n"), std::string::npos) << headers;
  EXPECT_NE(headers.find("To: ops@example.test, oncall@example.test\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Subject: [sked] nightly: retries_exhausted\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Date: Tue, 14 Nov 2023 22:13:20 +0000"), std::string::npos) << headers;
  // The run's output stays in the body, whatever it holds.
  EXPECT_EQ(headers.find("not a header"), std::string::npos);
  EXPECT_NE(m.find("Exit code: 3\r\n"), std::string::npos);
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '\n') {
      ASSERT_TRUE(i > 0 && m[i - 1] == '\r') << "a bare LF at " << i;
    }
    if (m[i] == '\r') {
      ASSERT_TRUE(i + 1 < m.size() && m[i + 1] == '\n') << "a bare CR at " << i;
    }
  }
}

TEST(WebhookSignatureTest, IsTheHmacOfTheTimestampAndBody) {
  // RFC 4231 test case 2's key and data, signed as "<t>.<body>": computed
  // independently with `printf '%s' '1700000000.what do ya want for nothing?' |
  // openssl dgst -sha256 -hmac Jefe`.
  EXPECT_EQ(WebhookSignature("Jefe", 1700000000, "what do ya want for nothing?"),
            "t=1700000000,v1=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e");
}

}  // namespace
}  // namespace sked::notify
