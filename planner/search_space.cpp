#include "planner/search_space.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan {
namespace {

constexpr std::string_view kPadSuffix = ":pad";

std::vector<std::int64_t> divisors_up_to(std::int64_t value, std::int64_t limit) {
  std::vector<std::int64_t> divisors;
  for (std::int64_t d = 1; d <= std::min(value, limit); ++d) {
    if (value % d == 0)
      divisors.push_back(d);
  }
  return divisors;
}

std::vector<std::int64_t> powers_of_two_up_to(std::int64_t limit) {
  std::vector<std::int64_t> powers;
  for (std::int64_t p = 1; p <= limit; p *= 2)
    powers.push_back(p);
  return powers;
}

} // namespace

std::string to_string(const CapacityPolicy& policy) {
  if (!policy.capacity_factor)
    return "dropless";
  return fmt::format("cf {:g}{}", *policy.capacity_factor, policy.pad_to_capacity ? " padded" : "");
}

CapacityPolicy parse_capacity_policy(const std::string& text, const std::string& field) {
  if (text == "dropless")
    return {};
  std::string number = text;
  bool pad = false;
  if (number.ends_with(kPadSuffix)) {
    number.resize(number.size() - kPadSuffix.size());
    pad = true;
  }
  errno = 0;
  char* end = nullptr;
  const double factor = std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size() || errno != 0 ||
      !std::isfinite(factor) || factor <= 0) {
    throw InputError(field, fmt::format("\"{}\" is not \"dropless\", a positive capacity factor "
                                        "or a factor with \":pad\" (1.25:pad)",
                                        text));
  }
  return {.capacity_factor = factor, .pad_to_capacity = pad};
}

std::int64_t SearchSpace::size() const {
  const auto count = [](const auto& values) { return static_cast<std::int64_t>(values.size()); };
  const std::int64_t expert_tp = folding ? count(etp) : 1;
  return count(tp) * count(cp) * count(pp) * count(vpp) * count(ep) * expert_tp *
         count(micro_batch_size) * count(recompute) * count(dispatcher) * count(capacity);
}

SearchSpace default_search_space(const ModelSpec& model, const ClusterSpec& cluster,
                                 std::int64_t gpus, const TrainingShape& training) {
  SearchSpace space;
  const std::int64_t domain = std::min(cluster.nvlink_domain_gpus, gpus);
  space.tp = powers_of_two_up_to(std::min(domain, model.num_attention_heads));
  // CP splits the sequence into 2·CP chunks (Megatron's load-balanced causal split).
  space.cp = powers_of_two_up_to(std::min(gpus, training.seq_length / 2));
  space.pp = divisors_up_to(model.num_layers, gpus);
  space.vpp = divisors_up_to(model.num_layers, kMaxVirtualStages);
  space.micro_batch_size = {1, 2};
  space.recompute = {Recompute::none, Recompute::selective, Recompute::full};
  space.capacity = {CapacityPolicy{}};
  if (model.is_moe()) {
    space.ep = divisors_up_to(model.moe.num_experts, gpus);
    space.etp = powers_of_two_up_to(domain);
    space.dispatcher = {Dispatcher::alltoall, Dispatcher::allgather};
  } else {
    space.ep = {1};
    space.etp = {1};
    space.dispatcher = {Dispatcher::alltoall};
  }
  return space;
}

} // namespace foldplan
