// What the engine's services share: the context that is constant after
// construction, and the in-memory book of the runs this instance holds, under
// one mutex. Each service (claimer.h, executor_pool.h, settler.h,
// lease_keeper.h, reaper.h, scheduler_loop.h, job_service.h) keeps a
// reference to both; the operations on the book that several services use
// are methods here.
//
// How a run travels through the book (docs/architecture.md):
//   claimed ahead  -> reserved (until its not_before)
//   due            -> ready (until a worker is free; past the hold, released)
//   started        -> executing (+ a kStarted dispatch, written by the loop)
//   finished       -> outcomes (settled by the settler)
//
// Lock order, where two locks meet:
//  - store -> engine: a store may call back into the engine while it holds
//    its own lock and an open transaction (ClaimDue's planner, ReapExpired's
//    retry planner), and the callback takes `mu`. So no service calls the
//    store while it holds `mu`.
//  - driver -> engine: a driver waits on the engine's clock while holding its
//    own lock, and the clock takes `mu` to count the waiter; a driver's stop
//    callback may take that driver lock. So stop tokens fire outside `mu`
//    (RequestStopLocked records them, FlushStops fires them).
//  - claim_settle_mu -> store -> engine: a claim and a settle exclude each
//    other (the claim's planner discounts the runs that ended here and are
//    not settled: a settle committed but not yet applied to the book would
//    be counted by neither side). Taken by the loop's claims and by the
//    settler thread, never under `mu`.
//  - a Clock's or a condition variable's internal lock is taken under `mu`
//    while waiting, never the other way round.

#ifndef SKED_ENGINE_ENGINE_STATE_H_
#define SKED_ENGINE_ENGINE_STATE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <stop_token>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "engine/job_metrics.h"
#include "sked/clock.h"
#include "sked/driver.h"
#include "sked/engine.h"
#include "sked/schedule.h"
#include "sked/store.h"

namespace sked::engine_internal {

// How long a due, claimed run waits in memory for a free worker before it is
// released to the shared queue: alone, and when live peers could take it.
constexpr Duration kHoldReady = std::chrono::seconds(1);
constexpr Duration kHoldReadyInFleet = std::chrono::milliseconds(100);

// While due runs that came due within this long wait for a worker (a burst
// draining), workers do not wake the loop: its store writes (settles,
// starts) would take a core from them, and they wait at most this long.
constexpr Duration kBurstWritesDefer = std::chrono::milliseconds(50);

// Claims take the store before settles (a burst is not late behind the last
// one's settles), but not without bound: with this many settle batches of
// outcomes waiting, a settle no longer gives way to a claim, and a claim
// takes no further batch in its pass. Under a load the store cannot keep up
// with, claims would otherwise take every turn and the outcomes, with the
// book's runs and jobs, would pile up in memory.
constexpr int kSettleBatchesBehind = 4;

// An idle worker joins those taking a burst's runs only once every run they
// execute has run this long (real time): a burst of short runs drains
// fastest on one worker (two or more on a few cores mostly pass the book's
// lock and its containers between the cores), runs that block get more.
constexpr std::chrono::steady_clock::duration kWorkerJoinAfter = std::chrono::microseconds(100);

// The book makes room ahead for the outcomes, starts and unsettled runs of
// at most this many booked runs (MakeRoomForBookedLocked); larger outcome
// buffers are not kept between settles.
constexpr size_t kMaxRoomForBooked = size_t{1} << 15;

// A reservation that passed over runs whose job another transaction held (a
// peer reserving the job's other runs) is tried again this soon.
constexpr Duration kReserveAgain = std::chrono::milliseconds(2);

// The mean run time (ReserveFromQueueLocked) moves by 1/this of each run's
// difference from it: a change of pace is read within a few dozen runs.
constexpr double kRunTimeWeight = 16;

// The job cache keeps at most this many jobs beyond those with runs in the
// book: with a million stored jobs, every one is claimed in turn, and caching
// each one would grow the engine by its whole job table.
constexpr size_t kMaxCachedJobs = 16384;

double Seconds(Duration d);

// Constant after construction; borrowed things outlive the engine.
struct EngineContext {
  EngineOptions options;
  Store* store = nullptr;
  DriverRegistry* drivers = nullptr;
  Clock* clock = nullptr;  // the injected clock
};

// A run started here and not yet finished.
struct Execution {
  std::int64_t job_id = 0;  // the run itself is the worker's (ExecutorPool::Started)
  std::chrono::steady_clock::time_point began;  // real time, for JoinWorkersLocked
  std::stop_source stop;
  Instant deadline;                  // timeout
  std::optional<RunStatus> stop_as;  // timed_out or cancelled, once stop is requested
  std::string stop_reason;
  std::optional<Instant> stopped_at;
};

// A due run waiting here for a worker, since `since` (its not_before, or when
// it was reserved from the queue).
struct Ready {
  Run run;
  Instant since;
};

// A job as last seen (by the claimer, or a worker's read), with its parsed
// schedule once the claimer needed it; replaced when the job's version changes.
struct CachedJobEntry {
  std::shared_ptr<const Job> job;  // shared with the workers running its runs
  std::optional<Schedule> schedule;
};

// A run that finished here and whose outcome is not written yet: how the
// store still counts it (its start may be unwritten too: it is then still
// queued there, reserved by this instance).
enum class StoreSees { kQueued, kRunning, kNeither };

struct Unsettled {
  std::int64_t job_id = 0;
  StoreSees as = StoreSees::kRunning;
};

// Whether a service thread is parked on the clock, and until when (WaitIdle).
struct Parked {
  bool parked = false;
  Instant until{};
};

struct EngineState {
  Mutex mu;
  std::condition_variable loop_cv;      // wakes the scheduler loop
  std::condition_variable work_cv;      // wakes workers
  std::condition_variable idle_cv;      // WaitIdle, Stop
  std::condition_variable periodic_cv;  // wakes the lease keeper and the reaper (to stop)
  std::condition_variable settle_cv;    // wakes the settler thread
  // Held across a claim's store transaction and across a settle's batch and
  // its entry in the book (lock order above).
  Mutex claim_settle_mu SKED_ACQUIRED_BEFORE(mu);

  // Lifecycle.
  bool started SKED_GUARDED_BY(mu) = false;
  bool draining SKED_GUARDED_BY(mu) = false;     // stop claiming and starting
  bool stopping SKED_GUARDED_BY(mu) = false;     // services exit
  bool wake SKED_GUARDED_BY(mu) = false;         // the loop should run a pass now
  bool grace_ended SKED_GUARDED_BY(mu) = false;  // EndShutdownGrace() was called
  Parked loop_park SKED_GUARDED_BY(mu);
  Parked heartbeat_park SKED_GUARDED_BY(mu);
  Parked reaper_park SKED_GUARDED_BY(mu);
  std::optional<Instant> last_pass_at SKED_GUARDED_BY(mu);

  // The claimer's: fires claimed ahead and reserved for this instance, by
  // (not_before, -priority, id), until they are due; then in `ready`, in that
  // order, until a worker is free.
  std::map<std::tuple<Instant, int, std::int64_t>, Run> reserved SKED_GUARDED_BY(mu);
  std::deque<Ready> ready SKED_GUARDED_BY(mu);
  // When to claim next: claim_ahead before the next fire the store knows of
  // (or at it, for a busy job that is judged at the instant); a local job
  // change resets it. Other processes' changes are seen within poll_interval.
  Instant next_claim SKED_GUARDED_BY(mu){};
  // The horizon of the next claim when it starts early for a burst (else
  // Instant::min(): now + claim_ahead).
  Instant claim_until SKED_GUARDED_BY(mu) = Instant::min();
  // With live peers a burst claimed ahead is claimed by part (this
  // instance's jobs, ClaimRequest::parts): the fires due by this horizon that
  // are still due belong to other parts and are claimed at their instant.
  Instant part_claimed_until SKED_GUARDED_BY(mu) = Instant::min();
  double claim_us_per_fire SKED_GUARDED_BY(mu) = 50;  // claim time per fire, moving average
  std::unordered_map<std::int64_t, CachedJobEntry> jobs SKED_GUARDED_BY(mu);

  // The executor pool's.
  std::unordered_map<std::int64_t, Execution> executing SKED_GUARDED_BY(mu);
  std::unordered_map<std::int64_t, int> running_by_job SKED_GUARDED_BY(mu);
  std::vector<Dispatch> dispatches SKED_GUARDED_BY(mu);  // what became of reserved runs
  std::unordered_set<std::int64_t> unrecorded_starts SKED_GUARDED_BY(mu);  // started, unwritten
  Instant hold_check_at SKED_GUARDED_BY(mu){};  // when the oldest ready run goes to the queue
  std::deque<Instant> recent_starts SKED_GUARDED_BY(mu);  // started here within the last hold
  // How long the runs that ended here lately ran, in microseconds (a moving
  // mean, kRunTimeWeight; none before the first ends), and when the last ended.
  std::optional<double> run_us_mean SKED_GUARDED_BY(mu);
  Instant last_run_end SKED_GUARDED_BY(mu) = Instant::min();
  std::multiset<Instant> driver_waits SKED_GUARDED_BY(mu);  // drivers waiting on the clock
  std::vector<std::stop_source> pending_stops SKED_GUARDED_BY(mu);
  // Workers taking ready runs one after another, and whether an idle one
  // watches them for a reason to join (the others sleep until work comes or
  // that one leaves the watch).
  int active_workers SKED_GUARDED_BY(mu) = 0;
  bool standby_worker SKED_GUARDED_BY(mu) = false;
  // When a worker last started a run (steady clock, ns): the watching
  // worker reads it without the lock while the active ones keep starting.
  std::atomic<std::int64_t> last_start_ns{0};
  Instant next_cancel_poll SKED_GUARDED_BY(mu){};
  std::optional<Instant> last_escape_at SKED_GUARDED_BY(mu);  // a process escaped its group

  // The settler's: finished runs waiting to be written.
  std::vector<RunOutcome> outcomes SKED_GUARDED_BY(mu);
  // The settler's other buffer: it takes `outcomes` and puts this one in its
  // place, then keeps what it took (emptied) for the next turn.
  std::vector<RunOutcome> outcomes_spare SKED_GUARDED_BY(mu);
  bool settle_asked SKED_GUARDED_BY(mu) = false;  // the loop asked for the outcomes to be written
  bool settling SKED_GUARDED_BY(mu) = false;      // the settler is writing (WaitIdle)
  // Outcomes the settler took from `outcomes` and has not written yet.
  size_t outcomes_in_settle SKED_GUARDED_BY(mu) = 0;
  // Those of them (written or not yet) that the store still counts as
  // active although they ended, by run and, counted, by job: the claimer
  // does not let them keep a job busy (FinishedNotSettledLocked). Runs with
  // a retry to write are not here: their job stays busy until it is queued.
  std::unordered_map<std::int64_t, Unsettled> unsettled SKED_GUARDED_BY(mu);
  std::unordered_map<std::int64_t, std::pair<int, int>> unsettled_by_job SKED_GUARDED_BY(mu);

  // The lease keeper's.
  int live_peers SKED_GUARDED_BY(mu) = 0;  // other instances seen heartbeating (fleet mode)
  // This instance's place among the live instances by id: its claim part.
  int fleet_rank SKED_GUARDED_BY(mu) = 0;

  // Everyone's.
  MetricsSnapshot metrics SKED_GUARDED_BY(mu);  // all but `jobs`, which are:
  JobMetricsBook job_metrics;                   // its own lock (a leaf: taken last)
  std::string last_store_error SKED_GUARDED_BY(mu);
  std::string reported_store_error SKED_GUARDED_BY(mu);  // the last one told to the observer
  std::mt19937_64 rng SKED_GUARDED_BY(mu);               // lease tokens, retry jitter

  // The loop runs a pass now.
  void WakeLoop() SKED_EXCLUDES(mu);
  // Asks the loop for a pass; true when it was not asked already, and so may
  // be asleep: the caller notifies loop_cv (after unlocking). A loop asked
  // already runs the pass without another notify.
  bool SetWakeLocked() SKED_REQUIRES(mu) { return !std::exchange(wake, true); }
  // A worker's SetWakeLocked. Not while a burst drains (kBurstWritesDefer):
  // then the loop is only made to wake by the burst's bound. A parked loop's
  // deadline is brought forward to it (true: the caller notifies loop_cv, and
  // the loop parks again until then, SchedulerLoop::Run); a loop not parked
  // looks at the burst before it parks.
  bool WorkerWakeLocked(Instant now) SKED_REQUIRES(mu);
  // While a burst drains: when the loop's writes are due (the oldest due run
  // still waiting came due kBurstWritesDefer before).
  std::optional<Instant> BurstWritesDueLocked(Instant now) const SKED_REQUIRES(mu);
  // Whether a pass at `now` claims fires (not draining, and the time set by
  // the claimer's last plan has come).
  bool ClaimDueLocked(Instant now) const SKED_REQUIRES(mu) {
    return !draining && now >= next_claim;
  }
  // Outcomes not written yet, in the book and in the settler's hands
  // (kSettleBatchesBehind).
  size_t OutcomesBehindLocked() const SKED_REQUIRES(mu) {
    return outcomes.size() + outcomes_in_settle;
  }
  // Whether an idle worker joins the active ones to take ready runs at
  // `now`: when none is active, or every run executing has run
  // kWorkerJoinAfter (they block: a sleep, a process, a request). When not,
  // `*ask_again` is when it could be.
  bool JoinWorkersLocked(std::chrono::steady_clock::time_point now,
                         std::chrono::steady_clock::time_point* ask_again) const SKED_REQUIRES(mu);
  // Grows, ahead of a burst, what each of the booked runs (reserved, ready,
  // executing) adds to as it starts and ends: the workers' outcome buffers,
  // the dispatches, the unrecorded starts and the unsettled runs. A worker
  // that grew them itself would move thousands of outcomes (and fault in
  // fresh pages) in the middle of a burst, at each doubling (the first
  // bursts of 10,000 runs stalled 2-14 ms at the 2,048th, 4,096th and
  // 8,192nd run). Once grown they keep their room.
  void MakeRoomForBookedLocked() SKED_REQUIRES(mu);
  // A job was created or changed here: claim on the next pass.
  void JobsChanged() SKED_EXCLUDES(mu);

  // Moves reserved runs due by `now` to `ready`, in their order, at most
  // `at_most` of them (workers move a few at a time: moving a burst of
  // thousands would delay its first start).
  void PromoteDueLocked(Instant now, size_t at_most = SIZE_MAX) SKED_REQUIRES(mu);
  // A worker's: promotes due runs until `ready` holds one for each active
  // worker and one for a worker that joins. Not more: a run moved into a
  // long `ready` waits there while the memory it moved to goes cold, and a
  // burst's runs would each be moved twice as far (a lone worker starting a
  // burst of 10,000 a run at a time took 2-3 us a run; promoting 8 a run, as
  // many as the workers, 3-5 us).
  void TopUpReadyLocked(Instant now) SKED_REQUIRES(mu) {
    const auto want = static_cast<size_t>(active_workers) + 1;
    if (ready.size() < want) PromoteDueLocked(now, want - ready.size());
  }
  // How long a due run waits in `ready` for a worker of this instance before
  // it goes to the shared queue: briefly when peers could start it.
  Duration HoldReadyLocked() const SKED_REQUIRES(mu) {
    return live_peers > 0 ? kHoldReadyInFleet : kHoldReady;
  }
  // How many ready runs this instance keeps however long they waited: as
  // many as it started in the last hold (at least one per worker).
  size_t KeepReadyLocked(Instant now, int workers) SKED_REQUIRES(mu);
  // How many queued runs a reservation takes for `workers`: as many as they
  // start in a hold, by the starts counted (KeepReadyLocked) or, while runs
  // end here (one did within the last hold), by the mean time of those that
  // ended lately, when that says more.
  size_t ReserveFromQueueLocked(Instant now, int workers) SKED_REQUIRES(mu);
  // A run ended here at `ended` after `ran` (ReserveFromQueueLocked).
  void CountRunTimeLocked(Instant ended, Duration ran) SKED_REQUIRES(mu);
  // Releases to the shared queue the ready runs past those kept that waited
  // longer than a hold.
  void ReleaseStalledLocked(Instant now, int workers) SKED_REQUIRES(mu);
  // Fires claimed but not started are given back (un-claimed): whoever
  // claims them next, a peer now or this instance after a restart, applies
  // the job's misfire policy, so none runs later as if on time (shutdown).
  void GiveBackClaimsLocked(Instant now) SKED_REQUIRES(mu);
  // Forgets reserved and ready runs matching `pred` (cancelled or deleted here).
  void DropReservedLocked(const std::function<bool(const Run&)>& pred) SKED_REQUIRES(mu);
  // Marks `e` stopped; the stop token fires in FlushStops(), outside `mu`.
  void RequestStopLocked(Execution& e, RunStatus as, std::string reason, Instant now)
      SKED_REQUIRES(mu);
  void FlushStops() SKED_EXCLUDES(mu);
  // Counts a run of `job` skipped here (metrics).
  void CountSkippedLocked(const std::string& job, const std::string& reason) SKED_REQUIRES(mu);
  // Counts a run of `job` settled here as `status` (metrics).
  void CountSettledLocked(const std::string& job, RunStatus status) SKED_REQUIRES(mu);
  // A run of `job_id` ended here; the store sees it `as` until it is settled.
  void AddUnsettledLocked(std::int64_t run_id, std::int64_t job_id, StoreSees as) SKED_REQUIRES(mu);
  // The store now sees the ended run `run_id` as `as` (its start was written,
  // or refused), or no longer at all once it is settled (kNeither, forgotten).
  void StoreSeesLocked(std::int64_t run_id, StoreSees as) SKED_REQUIRES(mu);
  // Takes from a due job's store counts the runs of it that ended here and
  // are not settled yet: a job is not busy because its last run's end is
  // still on its way to the store (the loop settles after it claims).
  // Returns {queued, running}.
  std::pair<int, int> DiscountUnsettledLocked(const DueJob& due) const SKED_REQUIRES(mu);
  // Caches `job` unless the same version is cached (keeping its schedule).
  void CacheJobLocked(Job job) SKED_REQUIRES(mu);
  // Past kMaxCachedJobs beyond the book's runs, forgets cached jobs that no
  // run in the book needs (down to half the bound, so trims are rare).
  void TrimJobCacheLocked() SKED_REQUIRES(mu);
};

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_ENGINE_STATE_H_
