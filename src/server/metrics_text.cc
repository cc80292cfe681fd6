#include "server/metrics_text.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>

namespace sked::server {
namespace {

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);  // the shortest exact form
  return std::string(buf, r.ptr);
}

std::string Number(std::int64_t v) { return std::to_string(v); }

double Seconds(Instant t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

class Writer {
 public:
  void Family(const std::string& name, const std::string& type, const std::string& help) {
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void Sample(const std::string& name, const std::string& labels, const std::string& value) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += " " + value + "\n";
  }
  // A histogram's samples under `labels` (without the le label).
  void Histo(const std::string& name, const std::string& labels, const Histogram& h) {
    const std::string sep = labels.empty() ? "" : labels + ",";
    for (size_t i = 0; i < h.bounds.size(); ++i) {
      Sample(name + "_bucket", sep + "le=\"" + Number(h.bounds[i]) + "\"", Number(h.counts[i]));
    }
    Sample(name + "_bucket", sep + "le=\"+Inf\"", Number(h.count));
    Sample(name + "_sum", labels, Number(h.sum));
    Sample(name + "_count", labels, Number(h.count));
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string Label(const std::string& name, const std::string& value) {
  return name + "=\"" + EscapeLabel(value) + "\"";
}

}  // namespace

std::string EscapeLabel(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string RenderMetrics(const MetricsInput& in) {
  Writer w;
  const MetricsSnapshot& m = in.engine;
  // Only jobs that exist get per-job series (a deleted job's go at once).
  std::set<std::string> names;
  for (const Job& j : in.jobs) names.insert(j.spec.name);
  auto known = [&](const std::string& job) { return !in.jobs_complete || names.count(job) != 0; };

  w.Family("sked_build_info", "gauge", "The sked version serving these metrics.");
  w.Sample("sked_build_info", Label("version", in.version), "1");
  w.Family("sked_ready", "gauge", "1 when /readyz answers 200.");
  w.Sample("sked_ready", "", in.ready ? "1" : "0");

  w.Family("sked_runs_total", "counter", "Runs settled by this instance, by job and final status.");
  for (const auto& [job, jm] : m.jobs) {
    if (!known(job)) continue;
    for (const auto& [status, n] : jm.runs_by_status) {
      w.Sample("sked_runs_total", Label("job", job) + "," + Label("status", status), Number(n));
    }
  }
  w.Family("sked_run_duration_seconds", "histogram",
           "How long runs executed here took (finished - started), by job.");
  for (const auto& [job, jm] : m.jobs) {
    if (!known(job) || jm.run_duration.count == 0) continue;
    w.Histo("sked_run_duration_seconds", Label("job", job), jm.run_duration);
  }
  w.Family("sked_untracked_job_runs_total", "counter",
           "Runs of jobs beyond scheduler.metrics_max_jobs: in the totals, without series of "
           "their own.");
  w.Sample("sked_untracked_job_runs_total", "", Number(m.untracked_job_runs));
  w.Family("sked_fire_lag_seconds", "histogram",
           "Start minus scheduled time of scheduled and catch-up runs started here.");
  w.Histo("sked_fire_lag_seconds", "", m.fire_lag);
  w.Family("sked_fires_skipped_total", "counter",
           "Fires recorded as skipped by this instance, by job and reason.");
  for (const auto& [job, jm] : m.jobs) {
    if (!known(job)) continue;
    for (const auto& [reason, n] : jm.skipped_by_reason) {
      w.Sample("sked_fires_skipped_total", Label("job", job) + "," + Label("reason", reason),
               Number(n));
    }
  }
  w.Family("sked_fires_claimed_total", "counter", "Fires claimed by this instance.");
  w.Sample("sked_fires_claimed_total", "", Number(m.fires_claimed));
  w.Family("sked_claim_waits_total", "counter",
           "Claims that waited for this instance's settle in flight.");
  w.Sample("sked_claim_waits_total", "", Number(m.claims_waited));
  w.Family("sked_queue_depth", "gauge", "Queued runs in the store (all instances).");
  w.Sample("sked_queue_depth", "", Number(m.queue_depth));
  w.Family("sked_running_runs", "gauge", "Runs executing in this instance.");
  w.Sample("sked_running_runs", "", Number(m.running));
  w.Family("sked_retries_total", "counter", "Retries scheduled by this instance.");
  w.Sample("sked_retries_total", "", Number(m.retries_scheduled));
  w.Family("sked_leases_reaped_total", "counter",
           "Runs whose owner's lease expired, settled as abandoned by this instance.");
  w.Sample("sked_leases_reaped_total", "", Number(m.reaped));
  w.Family("sked_escaped_processes_total", "counter",
           "Processes that left their run's process group and were killed.");
  w.Sample("sked_escaped_processes_total", "", Number(m.escaped_processes));

  w.Family("sked_job_last_success_timestamp_seconds", "gauge",
           "Start of the job's newest succeeded run (Unix time), for jobs that had one.");
  for (const Job& j : in.jobs) {
    if (j.last_success_at) {
      w.Sample("sked_job_last_success_timestamp_seconds", Label("job", j.spec.name),
               Number(Seconds(*j.last_success_at)));
    }
  }
  w.Family("sked_job_next_fire_timestamp_seconds", "gauge",
           "The job's next scheduled fire (Unix time), for jobs that will fire.");
  for (const Job& j : in.jobs) {
    const bool claims = j.state == JobState::kActive || j.state == JobState::kPending;
    if (claims && j.next_run_at) {
      w.Sample("sked_job_next_fire_timestamp_seconds", Label("job", j.spec.name),
               Number(Seconds(*j.next_run_at)));
    }
  }
  w.Family("sked_jobs", "gauge", "Jobs by state.");
  std::map<std::string, std::int64_t> by_state;
  for (JobState s : {JobState::kPending, JobState::kActive, JobState::kPaused, JobState::kDisabled,
                     JobState::kExpired}) {
    by_state[std::string(JobStateName(s))] = 0;
  }
  for (const Job& j : in.jobs) ++by_state[std::string(JobStateName(j.state))];
  for (const auto& [state, n] : by_state) w.Sample("sked_jobs", Label("state", state), Number(n));

  w.Family("sked_store_operation_duration_seconds", "histogram",
           "Latency of the engine's store operations, by operation.");
  for (const auto& [op, h] : in.store_operations) {
    w.Histo("sked_store_operation_duration_seconds", Label("operation", op), h);
  }
  w.Family("sked_instance_alive", "gauge",
           "1 for each instance alive by the liveness rule, 0 for one that died without "
           "deregistering (stopped instances are not listed).");
  for (const InstanceInfo& i : in.instances) {
    const InstanceState s = InstanceStateAt(i, in.now, in.lease);
    if (s == InstanceState::kStopped) continue;
    // A dead instance is listed for a day, then left out (ids are per process).
    if (s == InstanceState::kDead && in.now - i.heartbeat_at > std::chrono::hours(24)) continue;
    w.Sample("sked_instance_alive", Label("instance", i.id),
             s == InstanceState::kAlive ? "1" : "0");
  }
  if (in.notify) {
    const NotifyMetrics& n = *in.notify;
    struct Series {
      const char* name;
      const char* help;
      const char* label;
      const std::map<std::string, std::int64_t>* values;
    };
    for (const Series& x :
         {Series{"sked_notifications_delivered_total",
                 "Notifications this instance delivered, by channel.", "channel", &n.delivered},
          Series{"sked_notification_attempts_failed_total",
                 "Delivery attempts by this instance that failed (retried or given up), by "
                 "channel.",
                 "channel", &n.attempts_failed},
          Series{"sked_notifications_failed_total",
                 "Notifications this instance gave up on after max_attempts, by channel.",
                 "channel", &n.given_up},
          Series{"sked_watchdog_events_total",
                 "Watchdog events (late, overrun, stale) this instance raised, by event.", "event",
                 &n.watchdog}}) {
      w.Family(x.name, "counter", x.help);
      for (const auto& [label, value] : *x.values) {
        w.Sample(x.name, Label(x.label, label), Number(value));
      }
    }
  }
  if (in.retention) {
    const RetentionMetrics& r = *in.retention;
    w.Family("sked_retention_sweeps_total", "counter",
             "Retention sweeps this instance completed (a fleet sweeps on one instance at a "
             "time).");
    w.Sample("sked_retention_sweeps_total", "", Number(r.sweeps));
    w.Family("sked_retention_runs_deleted_total", "counter",
             "Settled runs this instance deleted by the retention policy.");
    w.Sample("sked_retention_runs_deleted_total", "", Number(r.runs_deleted));
    w.Family("sked_retention_failures_total", "counter",
             "Retention sweeps cut short by a store error.");
    w.Sample("sked_retention_failures_total", "", Number(r.failures));
    if (r.last_sweep_at) {
      w.Family("sked_retention_last_sweep_timestamp_seconds", "gauge",
               "When this instance's last retention sweep ended (Unix seconds).");
      w.Sample("sked_retention_last_sweep_timestamp_seconds", "",
               Number(Seconds(*r.last_sweep_at)));
    }
  }
  return w.Take();
}

}  // namespace sked::server
