#include "parallel/plan_options.hpp"

#include <array>
#include <utility>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "core/json_object.hpp"
#include "parallel/parallel_config.hpp"

namespace foldplan {
namespace {

// One table per enum: the spelling in JSON and flags, shared by parsing and printing.
constexpr std::array kRecomputeNames = {std::pair{Recompute::none, "none"},
                                        std::pair{Recompute::selective, "selective"},
                                        std::pair{Recompute::full, "full"}};
constexpr std::array kDispatcherNames = {std::pair{Dispatcher::alltoall, "alltoall"},
                                         std::pair{Dispatcher::allgather, "allgather"}};
constexpr std::array kDropPolicyNames = {std::pair{DropPolicy::probs, "probs"},
                                         std::pair{DropPolicy::position, "position"}};
constexpr std::array kPrecisionNames = {std::pair{Precision::bf16, "bf16"},
                                        std::pair{Precision::fp8_tensorwise, "fp8-tensorwise"},
                                        std::pair{Precision::fp8_blockwise, "fp8-blockwise"}};

constexpr std::array kCpCommTypeNames = {std::pair{CpCommType::p2p, "p2p"},
                                         std::pair{CpCommType::a2a, "a2a"}};

template <typename Enum, std::size_t N>
std::string name_of(const std::array<std::pair<Enum, const char*>, N>& names, Enum value) {
  for (const auto& [candidate, name] : names) {
    if (candidate == value)
      return name;
  }
  return "?";
}

template <typename Enum, std::size_t N>
Enum parse_name(const std::array<std::pair<Enum, const char*>, N>& names, const std::string& text,
                const std::string& field) {
  std::string allowed;
  for (const auto& [value, name] : names) {
    if (text == name)
      return value;
    allowed += allowed.empty() ? name : fmt::format(", {}", name);
  }
  throw InputError(field, fmt::format("\"{}\" is not one of {}", text, allowed));
}

} // namespace

std::string to_string(Recompute recompute) {
  return name_of(kRecomputeNames, recompute);
}
std::string to_string(Dispatcher dispatcher) {
  return name_of(kDispatcherNames, dispatcher);
}
std::string to_string(DropPolicy policy) {
  return name_of(kDropPolicyNames, policy);
}
std::string to_string(Precision precision) {
  return name_of(kPrecisionNames, precision);
}
std::string to_string(CpCommType type) {
  return name_of(kCpCommTypeNames, type);
}

Recompute parse_recompute(const std::string& text, const std::string& field) {
  return parse_name(kRecomputeNames, text, field);
}
Dispatcher parse_dispatcher(const std::string& text, const std::string& field) {
  return parse_name(kDispatcherNames, text, field);
}
Precision parse_precision(const std::string& text, const std::string& field) {
  return parse_name(kPrecisionNames, text, field);
}
CpCommType parse_cp_comm_type(const std::string& text, const std::string& field) {
  return parse_name(kCpCommTypeNames, text, field);
}

void validate_plan_options(const PlanOptions& options, const ParallelConfig& parallel,
                           bool model_is_moe) {
  if (options.capacity_factor && *options.capacity_factor <= 0) {
    throw InputError(
        "options.capacity_factor",
        fmt::format("{} is not positive (omit it for dropless routing)", *options.capacity_factor));
  }
  // Megatron arguments.py: --moe-pad-expert-input-to-capacity requires a capacity factor.
  if (options.pad_to_capacity && !options.capacity_factor) {
    throw InputError("options.pad_to_capacity", "true requires a capacity_factor");
  }
  if (!model_is_moe && (options.capacity_factor || options.overlap_moe_expert_parallel_comm)) {
    throw InputError(options.capacity_factor ? "options.capacity_factor"
                                             : "options.overlap_moe_expert_parallel_comm",
                     "is set but the model has no experts");
  }
  // Megatron: --overlap-param-gather requires --overlap-grad-reduce.
  if (options.overlap_param_gather && !options.overlap_grad_reduce) {
    throw InputError("options.overlap_param_gather", "true requires overlap_grad_reduce");
  }
  // TransformerConfig.__post_init__: the EP communication overlap's preconditions.
  if (options.overlap_moe_expert_parallel_comm) {
    const std::string field = "options.overlap_moe_expert_parallel_comm";
    if (parallel.ep <= 1)
      throw InputError(field, "true requires ep > 1");
    if (options.dispatcher != Dispatcher::alltoall) {
      throw InputError(field, "true requires the alltoall dispatcher");
    }
    if (parallel.pp > 1 && parallel.vpp <= 1) {
      throw InputError(field, fmt::format("true with pp {} requires vpp > 1", parallel.pp));
    }
    if (options.recompute == Recompute::full) {
      throw InputError(field, "true cannot be combined with full recompute");
    }
  }
}

PlanOptions options_from_json(const nlohmann::json& json, const std::string& path) {
  JsonObject object(json, path);
  PlanOptions options;
  options.recompute =
      parse_recompute(object.string_or("recompute", "none"), object.field("recompute"));
  options.dispatcher =
      parse_dispatcher(object.string_or("dispatcher", "alltoall"), object.field("dispatcher"));
  options.capacity_factor = object.optional_positive_number("capacity_factor");
  options.pad_to_capacity = object.boolean_or("pad_to_capacity", false);
  options.drop_policy = parse_name(kDropPolicyNames, object.string_or("drop_policy", "probs"),
                                   object.field("drop_policy"));
  options.overlap_grad_reduce = object.boolean_or("overlap_grad_reduce", true);
  options.overlap_param_gather = object.boolean_or("overlap_param_gather", true);
  options.overlap_moe_expert_parallel_comm =
      object.boolean_or("overlap_moe_expert_parallel_comm", false);
  options.precision =
      parse_precision(object.string_or("precision", "bf16"), object.field("precision"));
  options.cp_comm_type =
      parse_cp_comm_type(object.string_or("cp_comm_type", "p2p"), object.field("cp_comm_type"));
  options.folding = object.boolean_or("folding", true);
  object.reject_unknown_keys();
  return options;
}

nlohmann::json options_to_json(const PlanOptions& options) {
  return {
      {"recompute", to_string(options.recompute)},
      {"dispatcher", to_string(options.dispatcher)},
      {"capacity_factor",
       options.capacity_factor ? nlohmann::json(*options.capacity_factor) : nlohmann::json()},
      {"pad_to_capacity", options.pad_to_capacity},
      {"drop_policy", to_string(options.drop_policy)},
      {"overlap_grad_reduce", options.overlap_grad_reduce},
      {"overlap_param_gather", options.overlap_param_gather},
      {"overlap_moe_expert_parallel_comm", options.overlap_moe_expert_parallel_comm},
      {"precision", to_string(options.precision)},
      {"cp_comm_type", to_string(options.cp_comm_type)},
      {"folding", options.folding},
  };
}

} // namespace foldplan
