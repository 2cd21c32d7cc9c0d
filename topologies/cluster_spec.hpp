// ClusterSpec: what one kind of cluster is made of — the GPU, the NVLink domain, the NICs and the
// rail-optimized fat tree. The number of GPUs is not part of it: it comes from --gpus.
//
// JSON form (keys spell their units; values are converted to SI when read, exactly, see
// decimal_scaling.hpp):
//   {"name": "dgx-h100",
//    "gpu": {"name": "H100-SXM5-80GB", "bf16_tflops": 989.5, "fp8_tflops": 1979, "hbm_GB": 80,
//            "hbm_TBps": 3.35, "num_sms": 132},
//    "gpus_per_node": 8, "nvlink_domain_gpus": 8, "nvlink_GBps": 450, "nvlink_latency_us": 3.4,
//    "nics_per_node": 8, "nic_Gbps": 400, "network_latency_us": 9.6,
//    "nodes_per_leaf": 32, "oversubscription": 1}
// nvlink_domain_gpus, both latencies, nodes_per_leaf and oversubscription may be omitted (the
// defaults below); cluster_to_json always writes every key.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "core/embedded_file.hpp"

namespace foldplan {

// Latency of one step of a collective when a cluster file does not give it, until calibration
// measures it: NCCL's own per-step estimates for the ring algorithm with its Simple protocol
// (the one large training messages use), hwLat in NCCL src/graph/tuning.cc: NVLink 3.4 us;
// network 9.6 us (NCCL 2.8–2.12; later releases say 14 us and add a measured path latency).
inline constexpr double kDefaultNvlinkLatency_s = 3.4e-6;
inline constexpr double kDefaultNetworkLatency_s = 9.6e-6;
// A DGX SuperPOD scalable unit: 32 nodes under one leaf switch per rail, non-blocking above it.
inline constexpr std::int64_t kDefaultNodesPerLeaf = 32;
inline constexpr double kDefaultOversubscription = 1.0;

struct GpuSpec {
  std::string name;         // "H100-SXM5-80GB"
  double bf16_flops = 0;    // dense peak, FLOP/s (H100: 989.5e12)
  double fp8_flops = 0;     // dense peak, FLOP/s; 0 when the GPU has no fp8 tensor cores
  double hbm_bytes = 0;     // memory capacity (datasheet, decimal: 80 GB = 80e9 bytes)
  double hbm_bw_Bps = 0;    // datasheet HBM bandwidth
  std::int64_t num_sms = 0; // streaming multiprocessors (for GEMM wave quantisation)

  bool operator==(const GpuSpec&) const = default;
};

struct ClusterSpec {
  std::string name;
  GpuSpec gpu;
  std::int64_t gpus_per_node = 8;
  // GPUs sharing one NVLink/NVSwitch domain: gpus_per_node for DGX, 72 for GB200 NVL72.
  // Always a multiple of gpus_per_node.
  std::int64_t nvlink_domain_gpus = 8;
  double nvlink_bw_Bps = 0; // per GPU, per direction
  double nvlink_latency_s = kDefaultNvlinkLatency_s;
  // NICs are shared evenly: nics_per_node divides gpus_per_node (GPUs share a NIC) or is a
  // multiple of it (each GPU owns several).
  std::int64_t nics_per_node = 8;
  double nic_bw_Bps = 0; // per NIC, per direction
  double network_latency_s = kDefaultNetworkLatency_s;
  // Rail-optimized fat tree: NIC r of every node connects to rail r's leaf switches; a leaf serves
  // nodes_per_leaf nodes; leaves meet at spines with this oversubscription (1 = non-blocking).
  std::int64_t nodes_per_leaf = kDefaultNodesPerLeaf;
  double oversubscription = kDefaultOversubscription;

  bool operator==(const ClusterSpec&) const = default;
};

// Reads and validates a cluster; every problem is an InputError naming `path`.field.
ClusterSpec cluster_from_json(const nlohmann::json& json, const std::string& path = "cluster");
// The canonical form: every key, in the units its name spells.
nlohmann::json cluster_to_json(const ClusterSpec& cluster);
// Throws InputError for the first rule `cluster` breaks (positive sizes and rates, a domain made
// of whole nodes, NICs shared evenly, oversubscription ≥ 1), naming the JSON key under `path`.
void validate_cluster(const ClusterSpec& cluster, const std::string& path = "cluster");

// The presets compiled from topologies/presets/*.json.
std::span<const EmbeddedFile> cluster_presets();
// A preset name ("dgx-h100") or a path to a JSON file; `field` names the flag in errors.
ClusterSpec load_cluster(const std::string& name_or_path, const std::string& field = "--cluster");

} // namespace foldplan
