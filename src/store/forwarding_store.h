#ifndef SKED_STORE_FORWARDING_STORE_H_
#define SKED_STORE_FORWARDING_STORE_H_

// A Store that passes every call to another one: decorators (timing, tests
// that slow down or fail calls) derive from it and override what they need.

#include "sked/store.h"

namespace sked {

class ForwardingStore : public Store {
 public:
  // `base` must outlive this store.
  explicit ForwardingStore(Store* base) : base_(base) {}

  Status Migrate() override { return base_->Migrate(); }
  Result<int> SchemaVersion() override { return base_->SchemaVersion(); }
  int LatestSchemaVersion() const override { return base_->LatestSchemaVersion(); }
  Result<Job> CreateJob(const Job& job) override { return base_->CreateJob(job); }
  Result<Job> UpdateJob(const Job& job) override { return base_->UpdateJob(job); }
  Result<Job> GetJob(std::int64_t id) override { return base_->GetJob(id); }
  Result<Job> GetJobByName(std::string_view name) override { return base_->GetJobByName(name); }
  Result<std::vector<Job>> ListJobs(const JobFilter& filter) override {
    return base_->ListJobs(filter);
  }
  Result<std::int64_t> CountJobs(JobState state) override { return base_->CountJobs(state); }
  Result<std::vector<std::string>> ListFiringDrivers() override {
    return base_->ListFiringDrivers();
  }
  Status DeleteJob(std::int64_t id) override { return base_->DeleteJob(id); }
  Result<std::vector<Run>> ClaimDue(const ClaimRequest& request,
                                    const std::function<FirePlan(const DueJob&)>& plan) override {
    return base_->ClaimDue(request, plan);
  }
  Result<std::optional<Instant>> NextDueAt() override { return base_->NextDueAt(); }
  Result<std::int64_t> CountDue(Instant by, std::int64_t limit) override {
    return base_->CountDue(by, limit);
  }
  Result<Run> InsertRun(std::int64_t job_id, const NewRun& run, Instant now) override {
    return base_->InsertRun(job_id, run, now);
  }
  Result<std::vector<Run>> StartQueued(std::string_view instance, Instant now, int limit,
                                       Instant lease_until) override {
    return base_->StartQueued(instance, now, limit, lease_until);
  }
  Result<Reservation> ReserveQueued(std::string_view instance, Instant now, int limit,
                                    Instant reserve_until) override {
    return base_->ReserveQueued(instance, now, limit, reserve_until);
  }
  Result<std::vector<bool>> RecordDispatches(std::string_view instance,
                                             const std::vector<Dispatch>& dispatches,
                                             Instant lease_until) override {
    return base_->RecordDispatches(instance, dispatches, lease_until);
  }
  Result<std::optional<Instant>> NextQueuedAt() override { return base_->NextQueuedAt(); }
  Result<std::int64_t> QueueDepth() override { return base_->QueueDepth(); }
  Result<std::vector<bool>> SettleRuns(const std::vector<RunOutcome>& outcomes) override {
    return base_->SettleRuns(outcomes);
  }
  Status ExtendLeases(std::string_view instance, Instant now, Instant renew_before,
                      Instant lease_until) override {
    return base_->ExtendLeases(instance, now, renew_before, lease_until);
  }
  Result<std::vector<Run>> ReapExpired(
      Instant now, int limit,
      const std::function<std::optional<NewRun>(const Job&, const Run&)>& retry) override {
    return base_->ReapExpired(now, limit, retry);
  }
  Result<bool> RequestCancel(std::int64_t run_id, Instant now, std::string_view reason) override {
    return base_->RequestCancel(run_id, now, reason);
  }
  Result<std::vector<Run>> CancelRequested(std::string_view instance) override {
    return base_->CancelRequested(instance);
  }
  Result<Run> GetRun(std::int64_t id) override { return base_->GetRun(id); }
  Result<std::vector<Run>> ListRuns(const RunFilter& filter) override {
    return base_->ListRuns(filter);
  }
  Status UpsertJobType(const JobType& type) override { return base_->UpsertJobType(type); }
  Result<std::vector<JobType>> ListJobTypes() override { return base_->ListJobTypes(); }
  Status RegisterInstance(const InstanceInfo& info,
                          const std::optional<InstanceInfo>& replacing) override {
    return base_->RegisterInstance(info, replacing);
  }
  Status Heartbeat(std::string_view instance, Instant now) override {
    return base_->Heartbeat(instance, now);
  }
  Status DeregisterInstance(std::string_view instance, Instant now) override {
    return base_->DeregisterInstance(instance, now);
  }
  Result<std::vector<InstanceInfo>> ListInstances() override { return base_->ListInstances(); }
  Result<RunningCounts> CountRunning(Instant now) override { return base_->CountRunning(now); }
  Result<ApiToken> CreateToken(const ApiToken& token) override { return base_->CreateToken(token); }
  Result<ApiToken> GetToken(std::int64_t id) override { return base_->GetToken(id); }
  Result<std::vector<ApiToken>> ListTokens() override { return base_->ListTokens(); }
  Result<ApiToken> RevokeToken(std::string_view name, Instant now) override {
    return base_->RevokeToken(name, now);
  }
  Result<std::int64_t> AppendAudit(const AuditEntry& entry) override {
    return base_->AppendAudit(entry);
  }
  Result<std::vector<AuditEntry>> ListAudit(const AuditFilter& filter) override {
    return base_->ListAudit(filter);
  }
  Result<std::vector<Notification>> ClaimNotifications(std::string_view instance, Instant now,
                                                       int limit, Instant claim_until) override {
    return base_->ClaimNotifications(instance, now, limit, claim_until);
  }
  Result<std::vector<bool>> RecordDeliveries(std::string_view instance,
                                             const std::vector<DeliveryResult>& results) override {
    return base_->RecordDeliveries(instance, results);
  }
  Result<std::optional<Instant>> NextNotificationAt() override {
    return base_->NextNotificationAt();
  }
  Result<std::vector<DeliveryAttempt>> ListDeliveryAttempts(std::int64_t notification_id) override {
    return base_->ListDeliveryAttempts(notification_id);
  }
  Result<std::vector<Notification>> ListNotifications(const NotificationFilter& filter) override {
    return base_->ListNotifications(filter);
  }
  Result<std::vector<Notification>> RaiseWatchdogEvents(Instant now) override {
    return base_->RaiseWatchdogEvents(now);
  }
  Result<std::int64_t> PruneNotifications(Instant finished_before, int limit) override {
    return base_->PruneNotifications(finished_before, limit);
  }
  Result<PruneResult> PruneRuns(const PruneRequest& request) override {
    return base_->PruneRuns(request);
  }
  Result<bool> AcquireLease(std::string_view name, std::string_view holder, Instant now,
                            Instant until) override {
    return base_->AcquireLease(name, holder, now, until);
  }

  bool SetListener(const std::function<void(StoreEvent)>& listener) override {
    return base_->SetListener(listener);
  }

 protected:
  Store* base() { return base_; }

 private:
  Store* const base_;
};

}  // namespace sked

#endif  // SKED_STORE_FORWARDING_STORE_H_
