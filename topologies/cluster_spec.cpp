#include "topologies/cluster_spec.hpp"

#include <cmath>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "core/json_object.hpp"
#include "core/named_source.hpp"
#include "topologies/decimal_scaling.hpp"

namespace foldplan {
namespace {

// The unit a JSON key spells, as SI = value·10^decimal_places / binary_divisor. Both steps are
// exact (a decimal shift, a division by a power of two), so files round-trip unchanged.
struct KeyUnit {
  int decimal_places;
  double binary_divisor;
};
constexpr KeyUnit kTeraUnit{12, 1};        // tflops, TBps
constexpr KeyUnit kGigaUnit{9, 1};         // GB, GBps
constexpr KeyUnit kGigabitUnit{9, 8};      // Gbps → bytes/s
constexpr KeyUnit kMicrosecondUnit{-6, 1}; // us → s

double to_si(double value, KeyUnit unit) {
  return shift_decimal_point(value, unit.decimal_places) / unit.binary_divisor;
}

double from_si(double value, KeyUnit unit) {
  return shift_decimal_point(value * unit.binary_divisor, -unit.decimal_places);
}

std::string field_of(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

// The rules name the JSON key and show the value in the unit the key spells, as the user wrote it.
void require_positive(double value, const std::string& field) {
  if (!(std::isfinite(value) && value > 0)) {
    throw InputError(field, fmt::format("{} is not a positive number", value));
  }
}

void require_non_negative(double value, const std::string& field, const std::string& note = "") {
  if (!std::isfinite(value))
    throw InputError(field, fmt::format("{} is not a finite number", value));
  if (value < 0)
    throw InputError(field, fmt::format("{} is negative{}", value, note));
}

void require_positive(std::int64_t value, const std::string& field) {
  if (value <= 0)
    throw InputError(field, fmt::format("{} is not a positive integer", value));
}

void require_name(const std::string& name, const std::string& field) {
  if (name.empty())
    throw InputError(field, "is empty; give the cluster (or GPU) a name");
}

} // namespace

void validate_cluster(const ClusterSpec& cluster, const std::string& path) {
  const auto field = [&](const std::string& key) { return field_of(path, key); };
  const std::string gpu_path = field("gpu");
  const auto gpu_field = [&](const std::string& key) { return field_of(gpu_path, key); };

  require_name(cluster.name, field("name"));
  const GpuSpec& gpu = cluster.gpu;
  require_name(gpu.name, gpu_field("name"));
  require_positive(from_si(gpu.bf16_flops, kTeraUnit), gpu_field("bf16_tflops"));
  require_non_negative(from_si(gpu.fp8_flops, kTeraUnit), gpu_field("fp8_tflops"),
                       " (0 means the GPU has no fp8)");
  require_positive(from_si(gpu.hbm_bytes, kGigaUnit), gpu_field("hbm_GB"));
  require_positive(from_si(gpu.hbm_bw_Bps, kTeraUnit), gpu_field("hbm_TBps"));
  require_positive(gpu.num_sms, gpu_field("num_sms"));

  require_positive(cluster.gpus_per_node, field("gpus_per_node"));
  require_positive(cluster.nvlink_domain_gpus, field("nvlink_domain_gpus"));
  // An NVLink domain is made of whole nodes (a DGX node, or the 18 compute trays of an NVL72).
  if (cluster.nvlink_domain_gpus % cluster.gpus_per_node != 0) {
    throw InputError(field("nvlink_domain_gpus"),
                     fmt::format("{} is not a multiple of gpus_per_node {}",
                                 cluster.nvlink_domain_gpus, cluster.gpus_per_node));
  }
  require_positive(from_si(cluster.nvlink_bw_Bps, kGigaUnit), field("nvlink_GBps"));
  require_non_negative(from_si(cluster.nvlink_latency_s, kMicrosecondUnit),
                       field("nvlink_latency_us"));

  require_positive(cluster.nics_per_node, field("nics_per_node"));
  // Each GPU's share of the node's NICs must be the same for every GPU, or the per-GPU network
  // bandwidth the cost model uses would be wrong for some of them.
  if (cluster.gpus_per_node % cluster.nics_per_node != 0 &&
      cluster.nics_per_node % cluster.gpus_per_node != 0) {
    throw InputError(field("nics_per_node"),
                     fmt::format("{} neither divides nor is a multiple of gpus_per_node {} (GPUs "
                                 "must share the NICs evenly)",
                                 cluster.nics_per_node, cluster.gpus_per_node));
  }
  require_positive(from_si(cluster.nic_bw_Bps, kGigabitUnit), field("nic_Gbps"));
  require_non_negative(from_si(cluster.network_latency_s, kMicrosecondUnit),
                       field("network_latency_us"));

  require_positive(cluster.nodes_per_leaf, field("nodes_per_leaf"));
  if (!(std::isfinite(cluster.oversubscription) && cluster.oversubscription >= 1)) {
    throw InputError(field("oversubscription"),
                     fmt::format("{} is less than 1 (1 means a non-blocking fabric; 2 means the "
                                 "leaves have half as much bandwidth up as down)",
                                 cluster.oversubscription));
  }
}

ClusterSpec cluster_from_json(const nlohmann::json& json, const std::string& path) {
  JsonObject object(json, path);
  ClusterSpec cluster;
  cluster.name = object.string("name");

  JsonObject gpu = object.object("gpu");
  cluster.gpu.name = gpu.string("name");
  cluster.gpu.bf16_flops = to_si(gpu.number("bf16_tflops"), kTeraUnit);
  cluster.gpu.fp8_flops = to_si(gpu.number("fp8_tflops"), kTeraUnit);
  cluster.gpu.hbm_bytes = to_si(gpu.number("hbm_GB"), kGigaUnit);
  cluster.gpu.hbm_bw_Bps = to_si(gpu.number("hbm_TBps"), kTeraUnit);
  cluster.gpu.num_sms = gpu.integer("num_sms");
  gpu.reject_unknown_keys();

  cluster.gpus_per_node = object.integer("gpus_per_node");
  cluster.nvlink_domain_gpus = object.integer_or("nvlink_domain_gpus", cluster.gpus_per_node);
  cluster.nvlink_bw_Bps = to_si(object.number("nvlink_GBps"), kGigaUnit);
  cluster.nvlink_latency_s = object.has("nvlink_latency_us")
                                 ? to_si(object.number("nvlink_latency_us"), kMicrosecondUnit)
                                 : kDefaultNvlinkLatency_s;
  cluster.nics_per_node = object.integer("nics_per_node");
  cluster.nic_bw_Bps = to_si(object.number("nic_Gbps"), kGigabitUnit);
  cluster.network_latency_s = object.has("network_latency_us")
                                  ? to_si(object.number("network_latency_us"), kMicrosecondUnit)
                                  : kDefaultNetworkLatency_s;
  cluster.nodes_per_leaf = object.integer_or("nodes_per_leaf", kDefaultNodesPerLeaf);
  cluster.oversubscription = object.number_or("oversubscription", kDefaultOversubscription);
  object.optional_value(kCommentsKey); // documentation only (the --template's comments)
  object.reject_unknown_keys();

  validate_cluster(cluster, path);
  return cluster;
}

nlohmann::json cluster_to_json(const ClusterSpec& cluster) {
  const GpuSpec& gpu = cluster.gpu;
  return {
      {"name", cluster.name},
      {"gpu",
       {{"name", gpu.name},
        {"bf16_tflops", from_si(gpu.bf16_flops, kTeraUnit)},
        {"fp8_tflops", from_si(gpu.fp8_flops, kTeraUnit)},
        {"hbm_GB", from_si(gpu.hbm_bytes, kGigaUnit)},
        {"hbm_TBps", from_si(gpu.hbm_bw_Bps, kTeraUnit)},
        {"num_sms", gpu.num_sms}}},
      {"gpus_per_node", cluster.gpus_per_node},
      {"nvlink_domain_gpus", cluster.nvlink_domain_gpus},
      {"nvlink_GBps", from_si(cluster.nvlink_bw_Bps, kGigaUnit)},
      {"nvlink_latency_us", from_si(cluster.nvlink_latency_s, kMicrosecondUnit)},
      {"nics_per_node", cluster.nics_per_node},
      {"nic_Gbps", from_si(cluster.nic_bw_Bps, kGigabitUnit)},
      {"network_latency_us", from_si(cluster.network_latency_s, kMicrosecondUnit)},
      {"nodes_per_leaf", cluster.nodes_per_leaf},
      {"oversubscription", cluster.oversubscription},
  };
}

ClusterSpec load_cluster(const std::string& name_or_path, const std::string& field) {
  const NamedJson named = resolve_named_json(name_or_path, cluster_presets(), "cluster", field);
  return cluster_from_json(named.value, "cluster");
}

} // namespace foldplan
