// PlanOptions: the training settings beside the parallel sizes that change cost and memory —
// recompute, MoE dispatcher and token dropping, communication overlap, precision — named as
// Megatron-LM's flags name them.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace foldplan {

struct ParallelConfig;

enum class Recompute { none, selective, full };               // --recompute-granularity
enum class Dispatcher { alltoall, allgather };                // --moe-token-dispatcher-type
enum class DropPolicy { probs, position };                    // --moe-token-drop-policy
enum class Precision { bf16, fp8_tensorwise, fp8_blockwise }; // --bf16 / --fp8-recipe
enum class CpCommType { p2p, a2a }; // --cp-comm-type: KV ring, or all-to-all over heads

struct PlanOptions {
  Recompute recompute = Recompute::none;
  Dispatcher dispatcher = Dispatcher::alltoall;
  std::optional<double> capacity_factor; // --moe-expert-capacity-factor; none: dropless
  bool pad_to_capacity = false;          // --moe-pad-expert-input-to-capacity
  DropPolicy drop_policy = DropPolicy::probs;
  bool overlap_grad_reduce = true;               // --overlap-grad-reduce
  bool overlap_param_gather = true;              // --overlap-param-gather
  bool overlap_moe_expert_parallel_comm = false; // --overlap-moe-expert-parallel-comm
  Precision precision = Precision::bf16;
  CpCommType cp_comm_type = CpCommType::p2p;
  bool folding = true; // false: pre-folding Megatron (ETP = TP, EP inside DP)

  bool operator==(const PlanOptions&) const = default;
};

std::string to_string(Recompute recompute);
std::string to_string(Dispatcher dispatcher);
std::string to_string(DropPolicy policy);
std::string to_string(Precision precision);
std::string to_string(CpCommType type);
// Parse a flag value; InputError naming `field` and the allowed values otherwise.
Recompute parse_recompute(const std::string& text, const std::string& field);
Dispatcher parse_dispatcher(const std::string& text, const std::string& field);
Precision parse_precision(const std::string& text, const std::string& field);
CpCommType parse_cp_comm_type(const std::string& text, const std::string& field);

// Megatron's rules between options and sizes (§2.2–2.5 of the reference): the first broken one
// as an InputError naming the option.
void validate_plan_options(const PlanOptions& options, const ParallelConfig& parallel,
                           bool model_is_moe);

PlanOptions options_from_json(const nlohmann::json& json, const std::string& path = "options");
nlohmann::json options_to_json(const PlanOptions& options);

} // namespace foldplan
