#include "planner/search.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <variant>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "costmodel/cost_context.hpp"
#include "costmodel/memory_model.hpp"
#include "costmodel/step_estimate.hpp"
#include "simulator/event_simulation.hpp"
#include "simulator/lowering.hpp"
#include "simulator/op_timer.hpp"
#include "simulator/simulation_size.hpp"

namespace foldplan {
namespace {

using Clock = std::chrono::steady_clock;

struct Point {
  std::int64_t tp, cp, pp, vpp, ep, etp, micro_batch_size;
  Recompute recompute;
  Dispatcher dispatcher;
  CapacityPolicy capacity;
};

// The space as a mixed-radix number: point i decodes without materialising the space.
class SpaceIndex {
public:
  explicit SpaceIndex(const SearchSpace& space) : space_(space) {}

  std::int64_t size() const { return space_.size(); }

  Point at(std::int64_t index) const {
    Point point{};
    point.capacity = take(space_.capacity, index);
    point.dispatcher = take(space_.dispatcher, index);
    point.recompute = take(space_.recompute, index);
    point.micro_batch_size = take(space_.micro_batch_size, index);
    point.etp = space_.folding ? take(space_.etp, index) : 0; // 0: ETP = TP, set below
    point.ep = take(space_.ep, index);
    point.vpp = take(space_.vpp, index);
    point.pp = take(space_.pp, index);
    point.cp = take(space_.cp, index);
    point.tp = take(space_.tp, index);
    if (!space_.folding)
      point.etp = point.tp;
    return point;
  }

private:
  template <typename T> static T take(const std::vector<T>& values, std::int64_t& index) {
    const auto count = static_cast<std::int64_t>(values.size());
    const T value = values[static_cast<std::size_t>(index % count)];
    index /= count;
    return value;
  }

  const SearchSpace& space_;
};

// The reason a point is not timed, or nothing.
using Rejection = std::optional<std::string>;

// Sizes first, in the order Megatron checks them, then the model's rules, then the options.
Rejection reject_sizes(const SearchRequest& request, const Point& p, ParallelConfig& config) {
  if (p.vpp > 1 && p.pp == 1)
    return "vpp without pipeline parallelism";
  const std::int64_t gpus = request.gpus;
  if (gpus % (p.tp * p.cp * p.pp) != 0)
    return "tp·cp·pp does not divide the GPUs";
  if (gpus % (p.etp * p.ep * p.pp) != 0)
    return "etp·ep·pp does not divide the GPUs";
  config = ParallelConfig{.tp = p.tp,
                          .cp = p.cp,
                          .dp = gpus / (p.tp * p.cp * p.pp),
                          .pp = p.pp,
                          .vpp = p.vpp,
                          .etp = p.etp,
                          .ep = p.ep,
                          .edp = gpus / (p.etp * p.ep * p.pp)};
  if (p.dispatcher == Dispatcher::allgather && p.ep * p.etp == 1)
    return "dispatcher choice without expert parallelism (same as alltoall)";
  return std::nullopt;
}

Rejection reject_options(const PlanOptions& options, const ParallelConfig& config,
                         const ModelSpec& model) {
  try {
    validate_plan_options(options, config, model.is_moe());
  } catch (const InputError& error) {
    // Rare (only base options that clash with a point), so the exception's cost does not matter.
    return fmt::format("option rule: {}", error.field());
  }
  return std::nullopt;
}

struct WorkerState {
  std::vector<RankedPlan> best; // unsorted, trimmed to `keep` now and then
  std::map<std::string, std::int64_t> rejected;
  std::int64_t timed = 0;
  std::vector<SearchPoint> sample; // trimmed to kMaxSampledPoints now and then
  std::vector<SearchPoint> front;
};

bool faster(const RankedPlan& a, const RankedPlan& b) {
  const double ta = a.ranking_step_time_s(), tb = b.ranking_step_time_s();
  if (ta != tb)
    return ta < tb;
  return a.plan.prediction->peak_memory_bytes < b.plan.prediction->peak_memory_bytes;
}

void keep_best(std::vector<RankedPlan>& plans, std::size_t keep) {
  if (plans.size() <= keep)
    return;
  std::nth_element(plans.begin(), plans.begin() + static_cast<std::ptrdiff_t>(keep - 1),
                   plans.end(), faster);
  plans.resize(keep);
}

class Searcher {
public:
  Searcher(const SearchRequest& request, std::size_t keep)
      : request_(request), index_(request.space), keep_(keep) {}

  // Never throws: an error ends every worker and search() rethrows it.
  void run_worker(WorkerState& state) noexcept {
    try {
      search_points(state);
    } catch (...) {
      const std::lock_guard lock(error_mutex_);
      if (!error_)
        error_ = std::current_exception();
      next_.store(index_.size()); // the others stop at their next chunk
    }
    finished_workers_.fetch_add(1);
  }

  unsigned finished_workers() const { return finished_workers_.load(); }

  std::int64_t done() const { return done_.load(); }

  void rethrow_error() const {
    if (error_)
      std::rethrow_exception(error_);
  }

private:
  void search_points(WorkerState& state) {
    const CostContext context(request_.cluster, request_.gpus, request_.calibration);
    Plan plan{.model = request_.model,
              .cluster = request_.cluster,
              .gpus = request_.gpus,
              .training = request_.training,
              .parallel = {},
              .options = request_.options,
              .prediction = std::nullopt};
    plan.options.folding = request_.space.folding;
    constexpr std::int64_t kChunk = 256;
    const std::int64_t total = index_.size();
    for (;;) {
      const std::int64_t begin = next_.fetch_add(kChunk);
      if (begin >= total)
        break;
      const std::int64_t end = std::min(total, begin + kChunk);
      for (std::int64_t i = begin; i < end; ++i) {
        if (const Rejection reason = evaluate(i, plan, context, state))
          ++state.rejected[*reason];
      }
      done_.fetch_add(end - begin);
      if (state.best.size() > 4 * keep_)
        keep_best(state.best, keep_);
      if (state.sample.size() > 2 * kMaxSampledPoints)
        trim_sample(state.sample, kMaxSampledPoints);
    }
    keep_best(state.best, keep_);
    trim_sample(state.sample, kMaxSampledPoints);
  }

  Rejection evaluate(std::int64_t index, Plan& plan, const CostContext& context,
                     WorkerState& state) const {
    const Point point = index_.at(index);
    ParallelConfig config;
    if (Rejection reason = reject_sizes(request_, point, config))
      return reason;
    plan.training.micro_batch_size = point.micro_batch_size;
    if (const auto violation = find_violation(config, request_.model, plan.training, request_.gpus,
                                              request_.space.folding)) {
      return violation->reason;
    }
    plan.parallel = config;
    plan.options.recompute = point.recompute;
    plan.options.dispatcher = point.dispatcher;
    plan.options.capacity_factor = point.capacity.capacity_factor;
    plan.options.pad_to_capacity = point.capacity.pad_to_capacity;
    if (Rejection reason = reject_options(plan.options, config, request_.model))
      return reason;
    // Memory is a fraction of the estimate's cost: prune by it before timing.
    const MemoryBreakdown memory =
        peak_memory_per_gpu(request_.model, config, plan.training, plan.options);
    if (memory.total_bytes() > request_.cluster.gpu.hbm_bytes)
      return std::string("does not fit in memory");
    plan.prediction = estimate_step(context, plan).prediction;
    ++state.timed;
    const SearchPoint timed{.step_time_s = plan.prediction->step_time_s,
                            .peak_memory_bytes = plan.prediction->peak_memory_bytes,
                            .folded = request_.space.folding,
                            .index = index,
                            .parallel = config,
                            .micro_batch_size = point.micro_batch_size,
                            .recompute = point.recompute};
    add_to_pareto_front(state.front, timed);
    state.sample.push_back(timed);
    state.best.push_back(RankedPlan{.plan = plan, .simulated_step_time_s = std::nullopt});
    return std::nullopt;
  }

  const SearchRequest& request_;
  SpaceIndex index_;
  std::size_t keep_;
  std::atomic<std::int64_t> next_{0};
  std::atomic<std::int64_t> done_{0};
  std::atomic<unsigned> finished_workers_{0};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

void check_request(const SearchRequest& request) {
  if (request.gpus <= 0)
    throw InputError("gpus", fmt::format("{} is not a positive number of GPUs", request.gpus));
  if (request.top_k <= 0)
    throw InputError("top", fmt::format("{} is not a positive number of plans", request.top_k));
  if (request.simulate_top < 0) {
    throw InputError("simulate-top", fmt::format("{} is negative (0 turns the simulation off)",
                                                 request.simulate_top));
  }
  const SearchSpace& s = request.space;
  const std::pair<const char*, std::size_t> dimensions[] = {{"tp", s.tp.size()},
                                                            {"cp", s.cp.size()},
                                                            {"pp", s.pp.size()},
                                                            {"vpp", s.vpp.size()},
                                                            {"ep", s.ep.size()},
                                                            {"etp", s.folding ? s.etp.size() : 1},
                                                            {"mbs", s.micro_batch_size.size()},
                                                            {"recompute", s.recompute.size()},
                                                            {"dispatcher", s.dispatcher.size()},
                                                            {"capacity", s.capacity.size()}};
  for (const auto& [name, count] : dimensions) {
    if (count == 0)
      throw InputError(name, "no value left to search");
  }
  // The product of the list sizes, checked before it can overflow.
  double points = 1;
  for (const auto& [name, count] : dimensions)
    points *= static_cast<double>(count);
  if (points > static_cast<double>(kMaxSearchPoints)) {
    throw InputError("search space", fmt::format("{:.3g} points is over the limit of {}; pin a "
                                                 "dimension (--tp, --pp, --ep, ...)",
                                                 points, kMaxSearchPoints));
  }
}

// The event simulation of each of the first `count` plans, on up to `threads` threads. A plan over
// the simulation's size limit keeps its analytic estimate; the first such reason is returned.
std::optional<std::string> simulate_best(std::vector<RankedPlan>& plans, std::size_t count,
                                         unsigned threads, const SearchRequest& request) {
  count = std::min(count, plans.size());
  std::optional<std::string> skipped;
  std::vector<bool> too_large(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::optional<std::string> violation = simulation_size_violation(plans[i].plan, 0);
    too_large[i] = violation.has_value();
    if (violation && !skipped)
      skipped = *violation;
  }
  std::atomic<std::size_t> next{0};
  const auto worker = [&] {
    const CostContext context(request.cluster, request.gpus, request.calibration);
    for (std::size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      if (too_large[i])
        continue;
      const StepProgram program = lower_plan(plans[i].plan);
      const CostModelOpTimer timer(context, program);
      const OpTimer clock = [&](const Op& op, std::int64_t rank) { return timer(op, rank); };
      plans[i].simulated_step_time_s =
          simulate_step(program, clock,
                        {.fold_interchangeable_ranks = timer.ranks_interchangeable()})
              .step_time_s;
    }
  };
  std::vector<std::jthread> pool;
  for (unsigned t = 1; t < std::min<std::size_t>(threads, count); ++t)
    pool.emplace_back(worker);
  worker();
  pool.clear();
  std::stable_sort(plans.begin(), plans.begin() + static_cast<std::ptrdiff_t>(count), faster);
  return skipped;
}

} // namespace

double RankedPlan::ranking_step_time_s() const {
  return simulated_step_time_s ? *simulated_step_time_s : plan.prediction->step_time_s;
}

SearchResult search(const SearchRequest& request, const SearchProgress& progress) {
  check_request(request);
  // The cluster must hold the GPUs (InputError otherwise) before any worker starts.
  (void)CostContext(request.cluster, request.gpus, request.calibration);
  const Clock::time_point start = Clock::now();
  const unsigned threads =
      request.threads > 0 ? request.threads : std::max(1u, std::thread::hardware_concurrency());
  const auto keep = static_cast<std::size_t>(std::max(request.top_k, request.simulate_top));
  Searcher searcher(request, keep);
  std::vector<WorkerState> states(threads);
  {
    std::vector<std::jthread> pool;
    for (unsigned t = 1; t < threads; ++t)
      pool.emplace_back([&searcher, &states, t] { searcher.run_worker(states[t]); });
    if (progress) {
      // This thread reports while one more worker searches.
      std::jthread last([&searcher, &states] { searcher.run_worker(states[0]); });
      const std::int64_t total = request.space.size();
      while (searcher.finished_workers() < threads) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        progress(searcher.done(), total);
      }
    } else {
      searcher.run_worker(states[0]);
    }
  }
  searcher.rethrow_error();

  SearchResult result;
  result.evaluated = request.space.size();
  for (WorkerState& state : states) {
    result.timed += state.timed;
    for (const auto& [reason, count] : state.rejected)
      result.rejected[reason] += count;
    std::move(state.best.begin(), state.best.end(), std::back_inserter(result.plans));
    result.sampled_points.insert(result.sampled_points.end(), state.sample.begin(),
                                 state.sample.end());
    result.pareto_front.insert(result.pareto_front.end(), state.front.begin(), state.front.end());
  }
  trim_sample(result.sampled_points, kMaxSampledPoints);
  result.pareto_front = pareto_front(result.pareto_front);
  std::sort(result.plans.begin(), result.plans.end(), faster);
  if (result.plans.size() > keep)
    result.plans.resize(keep);
  result.simulation_skipped =
      simulate_best(result.plans, static_cast<std::size_t>(request.simulate_top), threads, request);
  if (result.plans.size() > static_cast<std::size_t>(request.top_k))
    result.plans.resize(static_cast<std::size_t>(request.top_k));
  result.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

SearchRequest search_request_around(const Plan& plan, bool folding) {
  SearchRequest request;
  request.model = plan.model;
  request.cluster = plan.cluster;
  request.gpus = plan.gpus;
  request.training = plan.training;
  request.space = default_search_space(plan.model, plan.cluster, plan.gpus, plan.training);
  request.space.folding = folding;
  request.space.capacity = {CapacityPolicy{.capacity_factor = plan.options.capacity_factor,
                                           .pad_to_capacity = plan.options.pad_to_capacity}};
  request.options = plan.options;
  return request;
}

nlohmann::json search_result_to_json(const SearchResult& result) {
  nlohmann::json plans = nlohmann::json::array();
  nlohmann::json ranking = nlohmann::json::array();
  for (std::size_t i = 0; i < result.plans.size(); ++i) {
    const RankedPlan& ranked = result.plans[i];
    plans.push_back(plan_to_json(ranked.plan));
    nlohmann::json entry = {{"rank", i + 1},
                            {"step_time_s", ranked.plan.prediction->step_time_s},
                            {"mfu", ranked.plan.prediction->mfu}};
    if (ranked.simulated_step_time_s)
      entry["simulated_step_time_s"] = *ranked.simulated_step_time_s;
    ranking.push_back(entry);
  }
  nlohmann::json front = nlohmann::json::array();
  for (const SearchPoint& point : result.pareto_front) {
    front.push_back({{"step_time_s", point.step_time_s},
                     {"peak_memory_bytes", point.peak_memory_bytes},
                     {"parallel", parallel_to_json(point.parallel)},
                     {"micro_batch_size", point.micro_batch_size},
                     {"recompute", to_string(point.recompute)}});
  }
  nlohmann::json json = {{"plans", plans},
                         {"pareto_front", front},
                         {"ranking", ranking},
                         {"evaluated", result.evaluated},
                         {"timed", result.timed},
                         {"rejected", result.rejected},
                         {"elapsed_s", result.elapsed_s}};
  if (result.simulation_skipped)
    json["simulation_skipped"] = *result.simulation_skipped;
  return json;
}

} // namespace foldplan
