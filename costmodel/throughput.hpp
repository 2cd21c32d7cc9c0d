// Throughput figures exactly as Megatron's training_log reports them: TFLOP/s per GPU from
// num_floating_point_operations (models/model_flops.hpp) over the iteration time and the world
// size, and MFU against the GPU's dense peak for the dtype.
#pragma once

#include <cstdint>

namespace foldplan {

struct Throughput {
  double tflops_per_gpu = 0;
  double mfu = 0; // fraction of peak
  double tokens_per_s_per_gpu = 0;
};

// Megatron training.py training_log: flops / (t_iter · 1e12 · world_size).
Throughput megatron_throughput(double flops_per_step, double tokens_per_step, double step_time_s,
                               std::int64_t world_size, double peak_flops_per_gpu);

} // namespace foldplan
