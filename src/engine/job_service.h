// The job service: validates job specs where they enter (shape, driver and
// its config, time zone, schedule and its minimum interval, start/end) and
// creates, updates, pauses, disables and deletes jobs; triggers and cancels
// runs. Every change made here wakes the claimer at once; other processes'
// changes arrive by notification or poll.

#ifndef SKED_ENGINE_JOB_SERVICE_H_
#define SKED_ENGINE_JOB_SERVICE_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "engine/engine_state.h"
#include "engine/executor_pool.h"

namespace sked::engine_internal {

class JobService {
 public:
  JobService(const EngineContext& ctx, EngineState& state, ExecutorPool& executor)
      : ctx_(ctx), state_(state), executor_(executor) {}
  JobService(const JobService&) = delete;
  JobService& operator=(const JobService&) = delete;

  Result<Job> Create(const JobSpec& spec, std::string_view source);
  Result<Job> Update(std::string_view name, const JobSpec& spec, std::int64_t version);
  Result<Job> Validate(const JobSpec& spec) {
    return BuildJob(spec, ctx_.clock->Now(), std::nullopt);
  }
  Result<Job> Disable(std::string_view name, std::string_view reason);
  Result<Job> SetPaused(std::string_view name, bool paused);
  // Deletes the job and its history; stops its running runs here and
  // forgets those reserved here.
  Status Delete(std::string_view name) SKED_EXCLUDES(state_.mu);
  Result<Job> Get(std::string_view name);
  Result<std::vector<Job>> List(const JobFilter& filter);
  Result<Run> Trigger(std::string_view name);
  Status Cancel(std::int64_t run_id) SKED_EXCLUDES(state_.mu);

 private:
  // Validation shared by create and update: everything but the version.
  // `check_driver` false: the driver and its config are not looked at (a
  // pause, which must work for a job whose driver's plugin is gone).
  Result<Job> BuildJob(const JobSpec& spec, Instant now, std::optional<Job> existing,
                       bool check_driver = true);
  Result<Job> UpdateJob(std::string_view name, const JobSpec& spec, std::int64_t version,
                        bool check_driver);
  // A job as users see it: active with a start_at still ahead is pending.
  static Job View(Job job, Instant now);

  const EngineContext& ctx_;
  EngineState& state_;
  ExecutorPool& executor_;
};

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_JOB_SERVICE_H_
