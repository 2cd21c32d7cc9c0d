#include "planner/plan_explanation.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/units.hpp"
#include "costmodel/layer_costs.hpp"

namespace foldplan {
namespace {

std::string links_of(const GroupPlacement& group) {
  std::string links;
  for (const LinkLevel& level : group.levels) {
    const std::string name = level.name == kNvlinkLevel    ? "NVLink"
                             : level.name == kNetworkLevel ? "InfiniBand"
                                                           : "spine";
    links += (links.empty() ? "" : " + ") + name;
  }
  return links;
}

double term(const Prediction& prediction, const std::string& name) {
  const auto found = prediction.breakdown.find(name);
  return found == prediction.breakdown.end() ? 0.0 : found->second;
}

std::vector<GroupExplanation> explain_groups(const Plan& plan, const CostContext& context,
                                             const StepEstimate& estimate,
                                             const MemoryBreakdown& first_stage) {
  const PlacedGroups placed =
      place_groups_of_rank_zero(context.cluster(), plan.parallel, plan.options.folding);
  const CollectiveCostModel& collectives = context.collectives();
  const Prediction& p = estimate.prediction;
  const bool allgather = plan.options.dispatcher == Dispatcher::allgather;
  // The distributed optimizer's whole gradient reduce-scatter (fp32) and parameter all-gather
  // (bf16) over a group, before any overlap with compute.
  const auto data_parallel_s = [&](const GroupPlacement& group, double parameters) {
    return collectives.time_s(CollectiveKind::reduce_scatter, group,
                              parameters * units::kFp32Bytes) +
           collectives.time_s(CollectiveKind::all_gather, group, parameters * units::kBf16Bytes);
  };
  const struct {
    const char* name;
    const GroupPlacement& group;
    const char* carries;
    double step_s;
  } rows[] = {
      {"tp", placed.tp, "sequence-parallel all-gather / reduce-scatter", term(p, "tp_comm")},
      {"cp", placed.cp, "K/V exchange of context parallelism", term(p, "cp_comm")},
      {"ep", placed.ep, "MoE dispatch and combine all-to-all",
       allgather ? 0.0 : term(p, "ep_comm")},
      {"etp", placed.etp, "expert-TP all-gather / reduce-scatter", term(p, "etp_comm")},
      {"etp-ep", placed.etp_ep,
       allgather ? "allgather dispatcher all-gather / reduce-scatter" : "token counts",
       allgather ? term(p, "ep_comm") : 0.0},
      {"pp", placed.pp, "activations and their gradients between stages", term(p, "pp_comm")},
      {"dp-cp", placed.dp_cp, "dense gradients and parameters (distributed optimizer)",
       data_parallel_s(placed.dp_cp, first_stage.dense_parameters)},
      {"edp", placed.edp, "expert gradients and parameters (distributed optimizer)",
       data_parallel_s(placed.edp, first_stage.expert_parameters)},
  };
  std::vector<GroupExplanation> groups;
  for (const auto& row : rows) {
    if (row.group.num_ranks <= 1)
      continue;
    groups.push_back({.name = row.name,
                      .ranks = row.group.num_ranks,
                      .nodes = row.group.num_nodes,
                      .links = links_of(row.group),
                      .carries = row.carries,
                      .step_s = row.step_s});
  }
  return groups;
}

std::string size_differences(const Plan& from, const Plan& to) {
  const ParallelConfig& a = from.parallel;
  const ParallelConfig& b = to.parallel;
  std::string text;
  const auto add = [&](const std::string& name, const std::string& old_value,
                       const std::string& new_value) {
    if (old_value != new_value)
      text += fmt::format("{}{} {}→{}", text.empty() ? "" : ", ", name, old_value, new_value);
  };
  const auto number = [](std::int64_t value) { return std::to_string(value); };
  add("TP", number(a.tp), number(b.tp));
  add("CP", number(a.cp), number(b.cp));
  add("PP", number(a.pp), number(b.pp));
  add("VPP", number(a.vpp), number(b.vpp));
  add("ETP", number(a.etp), number(b.etp));
  add("EP", number(a.ep), number(b.ep));
  add("mbs", number(from.training.micro_batch_size), number(to.training.micro_batch_size));
  add("recompute", to_string(from.options.recompute), to_string(to.options.recompute));
  add("dispatcher", to_string(from.options.dispatcher), to_string(to.options.dispatcher));
  return text.empty() ? "same sizes" : text;
}

std::string biggest_change(const Prediction& from, const Prediction& to) {
  std::string name;
  double change = 0;
  for (const auto& [term_name, seconds] : to.breakdown) {
    const double delta = seconds - term(from, term_name);
    if (std::abs(delta) > std::abs(change)) {
      change = delta;
      name = term_name;
    }
  }
  if (name.empty())
    return "no term changes";
  return fmt::format("{} {}{}", name, change < 0 ? "-" : "+", units::format_time(std::abs(change)));
}

std::vector<Alternative> find_alternatives(const Plan& plan, const Prediction& mine,
                                           std::int64_t count) {
  // The plan's own capacity policy: alternatives drop (or keep) the same tokens.
  SearchRequest request = search_request_around(plan, plan.options.folding);
  request.top_k = count + 1;
  request.simulate_top = 0;
  std::vector<Alternative> alternatives;
  for (RankedPlan& ranked : search(request).plans) {
    const Plan& other = ranked.plan;
    if (other.parallel == plan.parallel && other.options == plan.options &&
        other.training == plan.training)
      continue;
    if (static_cast<std::int64_t>(alternatives.size()) == count)
      break;
    alternatives.push_back({.plan = ranked,
                            .step_time_delta_s = other.prediction->step_time_s - mine.step_time_s,
                            .differences = size_differences(plan, other),
                            .biggest_term_change = biggest_change(mine, *other.prediction)});
  }
  return alternatives;
}

nlohmann::json phase_json(const PhaseCost& cost) {
  return {{"gemm_s", cost.gemm_s},
          {"attention_s", cost.attention_s},
          {"memory_bound_s", cost.memory_bound_s},
          {"tp_comm_s", cost.tp_comm_s},
          {"cp_comm_s", cost.cp_comm_s},
          {"ep_comm_s", cost.ep_comm_s},
          {"etp_comm_s", cost.etp_comm_s},
          {"host_sync_s", cost.host_sync_s}};
}

} // namespace

PlanExplanation explain_plan(const Plan& plan, const CostContext& context,
                             std::int64_t alternatives) {
  PlanExplanation explanation;
  explanation.estimate = estimate_step(context, plan);
  const PlacedGroups placed =
      place_groups_of_rank_zero(context.cluster(), plan.parallel, plan.options.folding);
  const LayerCostModel layers(context, plan.model, plan.parallel, plan.training, plan.options,
                              placed);
  if (plan.model.num_dense_layers() > 0) {
    explanation.layers.push_back(
        {.kind = "dense", .count = plan.model.num_dense_layers(), .cost = layers.dense_layer()});
  }
  if (plan.model.is_moe()) {
    explanation.layers.push_back(
        {.kind = "moe", .count = plan.model.num_moe_layers(), .cost = layers.moe_layer()});
  }
  for (std::int64_t pp_rank = 0; pp_rank < plan.parallel.pp; ++pp_rank) {
    explanation.stage_memory.push_back(
        memory_per_gpu(plan.model, plan.parallel, plan.training, plan.options, pp_rank));
  }
  explanation.groups =
      explain_groups(plan, context, explanation.estimate, explanation.stage_memory.front());
  if (alternatives > 0) {
    explanation.alternatives =
        find_alternatives(plan, explanation.estimate.prediction, alternatives);
  }
  return explanation;
}

nlohmann::json explanation_to_json(const PlanExplanation& explanation) {
  nlohmann::json json;
  json["prediction"] = prediction_to_json(explanation.estimate.prediction);
  json["critical_stage"] = explanation.estimate.critical_stage;
  json["micro_batches"] = explanation.estimate.micro_batches;
  nlohmann::json& layers = json["layers"] = nlohmann::json::array();
  for (const LayerExplanation& layer : explanation.layers) {
    layers.push_back({{"kind", layer.kind},
                      {"count", layer.count},
                      {"forward", phase_json(layer.cost.forward)},
                      {"backward", phase_json(layer.cost.backward)}});
  }
  nlohmann::json& stages = json["stages"] = nlohmann::json::array();
  for (std::size_t r = 0; r < explanation.estimate.stages.size(); ++r) {
    const StageEstimate& stage = explanation.estimate.stages[r];
    stages.push_back({{"pp_rank", r},
                      {"per_micro_batch_s", stage.per_micro_batch_s()},
                      {"pipeline_send_s", stage.pipeline_send_s},
                      {"grad_reduce_s", stage.grad_reduce_s},
                      {"param_gather_s", stage.param_gather_s},
                      {"exposed_dp_s", stage.exposed_dp_s},
                      {"optimizer_s", stage.optimizer_s},
                      {"memory_bytes", explanation.stage_memory[r].total_bytes()}});
  }
  nlohmann::json& groups = json["groups"] = nlohmann::json::array();
  for (const GroupExplanation& group : explanation.groups) {
    groups.push_back({{"name", group.name},
                      {"ranks", group.ranks},
                      {"nodes", group.nodes},
                      {"links", group.links},
                      {"carries", group.carries},
                      {"step_s", group.step_s}});
  }
  nlohmann::json& alternatives = json["alternatives"] = nlohmann::json::array();
  for (const Alternative& alternative : explanation.alternatives) {
    alternatives.push_back({{"plan", plan_to_json(alternative.plan.plan)},
                            {"step_time_delta_s", alternative.step_time_delta_s},
                            {"differences", alternative.differences},
                            {"biggest_term_change", alternative.biggest_term_change}});
  }
  return json;
}

} // namespace foldplan
