// The space a search walks: every size of the attention mapping (TP, CP, PP, VPP), of the MoE
// mapping (ETP, EP), the micro-batch size, recompute, dispatcher and capacity policy. Defaults
// cover what Megatron accepts for the model and cluster; a user pins or widens any dimension.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/model_spec.hpp"
#include "parallel/parallel_config.hpp"
#include "parallel/plan_options.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan {

// Token dropping: dropless (no capacity factor), or a capacity factor, padded or not.
struct CapacityPolicy {
  std::optional<double> capacity_factor;
  bool pad_to_capacity = false;
  bool operator==(const CapacityPolicy&) const = default;
};
std::string to_string(const CapacityPolicy& policy); // "dropless", "cf 1", "cf 1 padded"
// "dropless", "1", "1.25", "1:pad"; InputError naming `field` otherwise.
CapacityPolicy parse_capacity_policy(const std::string& text, const std::string& field);

struct SearchSpace {
  std::vector<std::int64_t> tp, cp, pp, vpp, ep, etp, micro_batch_size;
  std::vector<Recompute> recompute;
  std::vector<Dispatcher> dispatcher;
  std::vector<CapacityPolicy> capacity;
  // Without folding (pre-folding Megatron): ETP = TP and EP inside DP; the etp list is ignored.
  bool folding = true;

  // Points the lists span (before any validity check).
  std::int64_t size() const;
};

// Every value Megatron could accept for this model on `gpus` GPUs of `cluster`: TP up to the
// NVLink domain, CP and EP as powers of two, PP dividing the layers, VPP dividing each stage's
// layers (up to kMaxVirtualStages), ETP up to the NVLink domain, micro-batch 1 and 2, all three
// recompute settings, both dispatchers, dropless routing. Invalid combinations are left to the
// search, which counts them by reason. Dense models get EP = ETP = 1 and one dispatcher.
SearchSpace default_search_space(const ModelSpec& model, const ClusterSpec& cluster,
                                 std::int64_t gpus, const TrainingShape& training);

inline constexpr std::int64_t kMaxVirtualStages = 8;

} // namespace foldplan
