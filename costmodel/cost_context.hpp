// CostContext: everything the cost model needs about one cluster of N GPUs, built once and shared
// by every configuration evaluated on it — the topology, and the compute and collective models
// (calibrated when a measured table exists for the GPU).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "costmodel/collective_cost.hpp"
#include "costmodel/compute_cost.hpp"
#include "topologies/cluster.hpp"
#include "topologies/gpu_calibration.hpp"

namespace foldplan {

class CostContext {
public:
  // Uses `calibration` when given, else the shipped calibration for the GPU, else physical models.
  // Attention is priced from the calibration's `attention_backend` points: cuDNN, what Megatron
  // runs, unless the caller predicts another kernel (`foldplan run`: "foldplan"); GEMMs as
  // `gemm_kernels` calls them (ComputeCostModel).
  CostContext(const ClusterSpec& spec, std::int64_t gpus,
              std::optional<GpuCalibration> calibration = std::nullopt,
              const std::string& attention_backend = kDefaultAttentionBackend,
              GemmKernels gemm_kernels = GemmKernels::megatron);
  CostContext(const CostContext&) = delete;
  CostContext& operator=(const CostContext&) = delete;

  const Cluster& cluster() const { return cluster_; }
  const ComputeCostModel& compute() const { return compute_; }
  const CollectiveCostModel& collectives() const { return collectives_; }
  bool calibrated() const { return calibrated_; }
  // ComputeCostModel::attention_fallback: what priced attention when the asked backend's points
  // did not.
  const std::optional<std::string>& attention_fallback() const {
    return compute_.attention_fallback();
  }

private:
  struct Resolved {}; // tag: `calibration` is final (given or built-in), resolved once
  CostContext(const ClusterSpec& spec, std::int64_t gpus,
              const std::optional<GpuCalibration>& calibration,
              const std::string& attention_backend, GemmKernels gemm_kernels, Resolved);

  Cluster cluster_;
  bool calibrated_;
  ComputeCostModel compute_;
  CollectiveCostModel collectives_; // refers to cluster_: declared after it
};

} // namespace foldplan
