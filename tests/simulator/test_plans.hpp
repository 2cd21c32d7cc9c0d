// Plans the simulator tests lower: a preset model on DGX-H100 nodes, seq 4096, micro-batch 1.
#pragma once

#include <cstdint>
#include <string>

#include "models/model_spec.hpp"
#include "parallel/parallel_config.hpp"
#include "parallel/plan.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan::testing_plans {

inline Plan make_plan(const std::string& model, std::int64_t gpus, const ParallelSizes& sizes,
                      std::int64_t global_batch) {
  Plan plan;
  plan.model = load_model(model);
  plan.cluster = load_cluster("dgx-h100");
  plan.gpus = gpus;
  plan.training = {.seq_length = 4096, .global_batch_size = global_batch, .micro_batch_size = 1};
  plan.parallel = make_parallel_config(gpus, sizes, true);
  validate_plan(plan);
  return plan;
}

} // namespace foldplan::testing_plans
