#include "simulator/estimate_comparison.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "parallel/layer_placement.hpp"

namespace foldplan {
namespace {

constexpr std::size_t kCompute = stream_index(Stream::compute);

// What the simulation measured on each pipeline stage: the compute of its busiest rank, which
// sets the stage's pace (its TP and EP peers wait for it).
struct StageFacts {
  std::vector<double> compute_s;
  std::vector<std::int64_t> busiest_rank;
  std::int64_t heaviest = 0;
  std::int64_t lightest = 0;
};

std::int64_t stage_of_rank(const Plan& plan, std::int64_t rank) {
  return rank / (plan.parallel.world_size() / plan.parallel.pp);
}

StageFacts stage_facts(const Plan& plan, const SimulationResult& simulated) {
  StageFacts facts;
  const std::int64_t stage_ranks = plan.parallel.world_size() / plan.parallel.pp;
  for (std::int64_t stage = 0; stage < plan.parallel.pp; ++stage) {
    std::int64_t busiest = stage * stage_ranks;
    for (std::int64_t rank = busiest + 1; rank < (stage + 1) * stage_ranks; ++rank) {
      if (simulated.ranks[static_cast<std::size_t>(rank)].busy_s[kCompute] >
          simulated.ranks[static_cast<std::size_t>(busiest)].busy_s[kCompute])
        busiest = rank;
    }
    facts.busiest_rank.push_back(busiest);
    facts.compute_s.push_back(simulated.ranks[static_cast<std::size_t>(busiest)].busy_s[kCompute]);
  }
  const auto [lightest, heaviest] =
      std::minmax_element(facts.compute_s.begin(), facts.compute_s.end());
  facts.heaviest = heaviest - facts.compute_s.begin();
  facts.lightest = lightest - facts.compute_s.begin();
  return facts;
}

// What sets a stage apart from the others: the embedding, the output layer and MTP heads, or an
// uneven share of the layers.
std::string stage_load(const Plan& plan, std::int64_t stage) {
  const ParallelConfig& config = plan.parallel;
  std::vector<std::string> parts;
  if (stage == 0)
    parts.emplace_back("the embedding");
  if (stage == config.pp - 1) {
    parts.emplace_back("the output layer");
    if (plan.model.mtp_num_layers > 0)
      parts.push_back(fmt::format("{} MTP head(s)", plan.model.mtp_num_layers));
  }
  std::int64_t layers = 0;
  for (std::int64_t chunk = 0; chunk < config.vpp; ++chunk) {
    const LayerRange range =
        layers_of_stage(plan.model.num_layers, config.pp, config.vpp, stage, chunk);
    layers += range.end - range.first;
  }
  if (layers * config.pp != plan.model.num_layers)
    parts.push_back(fmt::format("{} of {} layers", layers, plan.model.num_layers));
  if (parts.empty())
    return "no more layers than the others";
  std::string joined = parts.front();
  for (std::size_t i = 1; i < parts.size(); ++i)
    joined += (i + 1 == parts.size() ? " and " : ", ") + parts[i];
  return joined;
}

class Explainer {
public:
  Explainer(const ComparedStep& step, const EstimateComparison& comparison,
            const StageFacts& stages)
      : step_(step), comparison_(comparison), stages_(stages) {}

  std::string reason(const TermComparison& term) const {
    const bool more = term.difference_s() > 0;
    if (term.term == "compute")
      return compute();
    if (term.term == "bubble")
      return bubble(more);
    if (term.term == "tp_comm") {
      if (!more)
        return "the simulation hides TP and ETP collectives behind weight-gradient GEMMs and "
               "other streams; the estimate counts every one";
      return step_.routed_experts
                 ? "TP peers are different EP ranks with different routed loads: they wait for "
                   "each other at TP collectives"
                 : "waits at TP collectives for a slower peer count as exposed TP time";
    }
    if (term.term == "cp_comm") {
      return more ? "the KV exchange waits on attention blocks the estimate assumed it hides"
                  : "the simulation overlaps the KV exchange with attention blocks where the "
                    "dependencies allow; the estimate keeps what its formula leaves exposed";
    }
    if (term.term == "ep_comm")
      return ep_comm(more);
    if (term.term == "pp_comm") {
      if (step_.plan.parallel.vpp > 1)
        return more ? "the estimate hides interleaved transfers entirely; the simulation waits on "
                      "each that arrives late"
                    : "interleaved transfers overlap compute in both";
      return more ? "blocking transfers wait until the neighbour stage reaches its matching send "
                    "or receive"
                  : "the estimate charges two blocking transfers per micro-batch; in the "
                    "simulation part of them runs beside the neighbour's work";
    }
    if (term.term == "host_sync")
      return "the step program has no host synchronisation (the token-count .cpu() the estimate "
             "charges)";
    if (term.term == "dp_comm_and_optimizer") {
      return more ? "the step program starts every gradient bucket after the last backward and "
                    "gathers parameters after the optimizer step, with no compute left to hide "
                    "them; the estimate hides both behind a micro-batch's backward and forward"
                  : "the simulated stage's gradient buckets run while earlier stages still "
                    "drain the pipeline";
    }
    return {};
  }

private:
  std::string compute() const {
    if (step_.routed_experts) {
      return fmt::format("the estimate charges every MoE layer the busiest expert rank's load "
                         "({:.2f}x the mean); rank {} computes the rows routing gives it, layer "
                         "by layer",
                         step_.expert_load_factor, comparison_.compared_rank);
    }
    const auto stage = static_cast<std::size_t>(comparison_.estimated_critical_stage);
    if (stages_.heaviest != comparison_.estimated_critical_stage) {
      return fmt::format("the estimate's slowest stage {} is not the simulation's: stage {} "
                         "computes {:.0f}% more",
                         stage, stages_.heaviest,
                         100 * (stages_.compute_s[static_cast<std::size_t>(stages_.heaviest)] /
                                    stages_.compute_s[stage] -
                                1));
    }
    return fmt::format("the simulation times rank {}'s ops one by one; the estimate sums "
                       "per-layer costs of stage {}",
                       comparison_.compared_rank, stage);
  }

  std::string bubble(bool more) const {
    const Plan& plan = step_.plan;
    if (plan.parallel.pp == 1) {
      return step_.routed_experts
                 ? "no pipeline: this is waiting at collectives for slower EP ranks (routing "
                   "skew), which the estimate folds into compute"
                 : "no pipeline: this is waiting at collectives for slower ranks";
    }
    const double heaviest = stages_.compute_s[static_cast<std::size_t>(stages_.heaviest)];
    const double lightest = stages_.compute_s[static_cast<std::size_t>(stages_.lightest)];
    const double spread = lightest > 0 ? 100 * (heaviest / lightest - 1) : 0;
    if (more && step_.routed_experts) {
      return fmt::format("each MoE layer waits for its slowest EP rank, and the stages' busiest "
                         "ranks differ by up to {:.0f}%; the estimate folds the skew into compute "
                         "instead",
                         spread);
    }
    // Stages within 5% of each other count as equal.
    if (more && heaviest > 1.05 * lightest) {
      return fmt::format("{}stage {} carries {} and computes {:.0f}% more than stage {}",
                         plan.parallel.vpp > 1 ? "the interleaved estimate assumes equal stages; "
                                               : "stages are unequal: ",
                         stages_.heaviest, stage_load(plan, stages_.heaviest), spread,
                         stages_.lightest);
    }
    if (more && plan.options.overlap_moe_expert_parallel_comm)
      return "the combined 1F1B schedule runs one more warm-up micro-batch and pairs passes of "
             "unequal length";
    return more ? "the simulated pipeline also waits where blocking transfers and collectives "
                  "hold a stage for its neighbour"
                : "the simulated stages overlap part of the fill and drain that the estimate "
                  "charges in full";
  }

  std::string ep_comm(bool more) const {
    if (step_.plan.options.overlap_moe_expert_parallel_comm) {
      return more ? "with EP overlap the estimate hides all-to-alls behind the whole stage's "
                    "compute; the simulation only behind the paired micro-batch's layer segments"
                  : "the paired micro-batch's layer segments hide more of the all-to-alls than "
                    "the estimate's stage-wide comparison";
    }
    if (step_.routed_experts) {
      return fmt::format("the estimate scales every all-to-all by the busiest rank's load "
                         "({:.2f}x); the simulation times each rank's own splits and its waits "
                         "for the slowest",
                         step_.expert_load_factor);
    }
    return more ? "waits at all-to-alls for slower EP peers count as exposed EP time"
                : "the simulation runs all-to-alls beside the shared experts and other streams";
  }

  const ComparedStep& step_;
  const EstimateComparison& comparison_;
  const StageFacts& stages_;
};

double breakdown_term(const StepEstimate& estimate, const std::string& name) {
  const auto& breakdown = estimate.prediction.breakdown;
  const auto found = breakdown.find(name);
  return found == breakdown.end() ? 0.0 : found->second;
}

} // namespace

EstimateComparison compare_with_estimate(const ComparedStep& step) {
  const SimulationResult& simulated = step.simulated;
  EstimateComparison comparison;
  comparison.simulated_step_s = simulated.step_time_s;
  comparison.estimated_step_s = step.estimate.prediction.step_time_s;
  comparison.simulated_critical_rank = simulated.critical_rank;
  comparison.simulated_critical_stage = stage_of_rank(step.plan, simulated.critical_rank);
  comparison.estimated_critical_stage = step.estimate.critical_stage;

  // The estimate's terms are those of its critical stage: the simulation's are those of that
  // stage's busiest rank (the step time is every rank's). Its compute stream holds micro-batch
  // work and the optimizer step of the tail.
  const StageFacts stages = stage_facts(step.plan, simulated);
  const std::int64_t rank =
      stages.busiest_rank[static_cast<std::size_t>(step.estimate.critical_stage)];
  comparison.compared_rank = rank;
  double compute_s = 0;
  double optimizer_s = 0;
  for (const Op& op : program_of_rank(step.program, rank)->ops) {
    if (op.stream != Stream::compute)
      continue;
    (op.phase == Phase::optimizer ? optimizer_s : compute_s) += step.timer(op, rank);
  }
  const auto& exposed = simulated.ranks[static_cast<std::size_t>(rank)].exposed_s;
  auto exposed_on = [&](Stream stream) { return exposed[stream_index(stream)]; };
  const StepEstimate& estimate = step.estimate;
  comparison.terms = {
      {.term = "compute",
       .simulated_s = compute_s,
       .estimated_s = breakdown_term(estimate, "compute"),
       .reason = {}},
      {.term = "bubble", .simulated_s = 0, .estimated_s = estimate.bubble_s, .reason = {}},
      // The lowering puts ETP collectives on the TP stream.
      {.term = "tp_comm",
       .simulated_s = exposed_on(Stream::tp_comm),
       .estimated_s = breakdown_term(estimate, "tp_comm") + breakdown_term(estimate, "etp_comm"),
       .reason = {}},
      {.term = "cp_comm",
       .simulated_s = exposed_on(Stream::cp_comm),
       .estimated_s = breakdown_term(estimate, "cp_comm"),
       .reason = {}},
      {.term = "ep_comm",
       .simulated_s = exposed_on(Stream::ep_comm),
       .estimated_s = breakdown_term(estimate, "ep_comm"),
       .reason = {}},
      {.term = "pp_comm",
       .simulated_s = exposed_on(Stream::pp_comm),
       .estimated_s = breakdown_term(estimate, "pp_comm"),
       .reason = {}},
      {.term = "host_sync",
       .simulated_s = 0,
       .estimated_s = breakdown_term(estimate, "host_sync"),
       .reason = {}},
      {.term = "dp_comm_and_optimizer",
       .simulated_s = exposed_on(Stream::dp_comm) + optimizer_s,
       .estimated_s = breakdown_term(estimate, "dp_comm_and_optimizer"),
       .reason = {}},
  };
  // The bubble is what is left of the simulated step: time the rank waited with none of its own
  // work running (pipeline fill and drain, waits at collectives and transfers).
  double accounted_s = 0;
  for (const TermComparison& term : comparison.terms)
    accounted_s += term.simulated_s;
  comparison.terms[1].simulated_s = std::max(0.0, simulated.step_time_s - accounted_s);

  const Explainer explainer(step, comparison, stages);
  const double notable_s = kNotableDifferenceShare * simulated.step_time_s;
  for (TermComparison& term : comparison.terms) {
    if (std::fabs(term.difference_s()) >= notable_s)
      term.reason = explainer.reason(term);
  }
  return comparison;
}

nlohmann::json estimate_comparison_to_json(const EstimateComparison& comparison) {
  nlohmann::json terms = nlohmann::json::array();
  for (const TermComparison& term : comparison.terms) {
    nlohmann::json entry = {{"term", term.term},
                            {"simulated_s", term.simulated_s},
                            {"estimated_s", term.estimated_s},
                            {"difference_s", term.difference_s()}};
    if (!term.reason.empty())
      entry["reason"] = term.reason;
    terms.push_back(std::move(entry));
  }
  return {{"simulated_step_time_s", comparison.simulated_step_s},
          {"estimated_step_time_s", comparison.estimated_step_s},
          {"difference_s", comparison.simulated_step_s - comparison.estimated_step_s},
          {"simulated_critical_rank", comparison.simulated_critical_rank},
          {"compared_rank", comparison.compared_rank},
          {"simulated_critical_stage", comparison.simulated_critical_stage},
          {"estimated_critical_stage", comparison.estimated_critical_stage},
          {"notable_difference_share", kNotableDifferenceShare},
          {"terms", std::move(terms)}};
}

} // namespace foldplan
