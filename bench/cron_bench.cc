// Cost of computing a cron schedule's next fire, over a corpus of expressions
// in UTC and in America/New_York. Run: build/gcc/sked_cron_bench
// Figures are recorded in docs/performance.md.

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "sked/cron.h"

namespace {

const std::vector<std::string>& Corpus() {
  static const std::vector<std::string> corpus = {
      "* * * * *",              // every minute
      "*/5 * * * *",            // every 5 minutes
      "0 * * * *",              // hourly
      "30 2 * * *",             // nightly
      "0 9 * * 1-5",            // weekdays
      "*/15 9-17 * * MON-FRI",  // business hours
      "0 0 1 * *",              // monthly
      "0 0 1 1 *",              // yearly
      "0 0 L * *",              // last day of month
      "0 0 LW * *",             // last weekday
      "0 0 15W * *",            // nearest weekday
      "0 12 * * 5L",            // last Friday
      "0 6 * * MON#2",          // second Monday
      "0 0 13 * 5",             // the 13th or a Friday
      "0 0 29 2 *",             // leap day
      "*/10 * * * * *",         // every 10 seconds
      "0 30 2 * * *",           // with seconds
      "0 0 0 1 1 * 2030-2040",  // year field
      "15,45 1,13 * * *",       // list of times
      "0 0 */3 * SUN",          // steps or Sundays
      "@daily",                 // macro
      "0 22 * * 1#5,2L",        // rare weekday forms
  };
  return corpus;
}

void BM_Next(benchmark::State& state, const char* zone) {
  const std::string& expr = Corpus()[static_cast<size_t>(state.range(0))];
  auto schedule = sked::CronSchedule::Parse(expr, sked::CronOptions{zone, std::chrono::seconds(0)});
  if (!schedule.ok()) {
    state.SkipWithError(schedule.status().message().c_str());
    return;
  }
  // Start from many instants spread over a year so no single path is cached.
  std::vector<sked::Instant> starts;
  for (int i = 0; i < 1024; ++i) {
    starts.push_back(sked::FromUnixSeconds(1767225600LL + i * 30817LL));
  }
  size_t i = 0;
  for (auto _ : state) {
    auto next = schedule->Next(starts[i++ & 1023]);
    benchmark::DoNotOptimize(next);
  }
  state.SetLabel(expr);
}

void BM_Parse(benchmark::State& state) {
  const std::string& expr = Corpus()[static_cast<size_t>(state.range(0))];
  for (auto _ : state) {
    auto schedule = sked::CronSchedule::Parse(
        expr, sked::CronOptions{"America/New_York", std::chrono::seconds(0)});
    benchmark::DoNotOptimize(schedule);
  }
  state.SetLabel(expr);
}

void CorpusArgs(benchmark::internal::Benchmark* b) {
  for (size_t i = 0; i < Corpus().size(); ++i) b->Arg(static_cast<int64_t>(i));
}

BENCHMARK_CAPTURE(BM_Next, utc, "UTC")->Apply(CorpusArgs);
BENCHMARK_CAPTURE(BM_Next, new_york, "America/New_York")->Apply(CorpusArgs);
BENCHMARK(BM_Parse)->Apply(CorpusArgs);

}  // namespace

BENCHMARK_MAIN();
