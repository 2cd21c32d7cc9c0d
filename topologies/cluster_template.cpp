#include "topologies/cluster_template.hpp"

#include "core/json_object.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan {

nlohmann::json cluster_template() {
  // A real preset (DGX H100), so the numbers are consistent as they stand.
  nlohmann::json spec = cluster_to_json(load_cluster("dgx-h100"));
  spec["name"] = "my-cluster";
  spec[kCommentsKey] = {
      {"name", "what tables and reports call the cluster"},
      {"gpu.name", "the GPU model"},
      {"gpu.bf16_tflops", "dense bf16 peak, TFLOP/s (datasheet, without sparsity)"},
      {"gpu.fp8_tflops", "dense fp8 peak, TFLOP/s; 0 without fp8 tensor cores"},
      {"gpu.hbm_GB", "memory per GPU, decimal GB (80 GB = 80e9 bytes)"},
      {"gpu.hbm_TBps", "HBM bandwidth, TB/s"},
      {"gpu.num_sms", "streaming multiprocessors (GEMM wave quantisation)"},
      {"gpus_per_node", "GPUs in one server"},
      {"nvlink_domain_gpus", "GPUs sharing one NVLink/NVSwitch domain (8 for DGX, 72 for NVL72)"},
      {"nvlink_GBps", "NVLink bandwidth per GPU and direction, GB/s"},
      {"nvlink_latency_us", "per-step latency of an NVLink collective, µs"},
      {"nics_per_node", "network adapters per server (rail-optimized: one per GPU)"},
      {"nic_Gbps", "bandwidth of one NIC per direction, Gb/s"},
      {"network_latency_us", "per-step latency of a network collective, µs"},
      {"nodes_per_leaf", "servers under one leaf switch per rail"},
      {"oversubscription", "leaf-to-spine oversubscription (1: non-blocking)"},
  };
  return spec;
}

} // namespace foldplan
