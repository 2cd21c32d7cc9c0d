#include "costmodel/throughput.hpp"

#include <cassert>

#include "core/units.hpp"

namespace foldplan {

Throughput megatron_throughput(double flops_per_step, double tokens_per_step, double step_time_s,
                               std::int64_t world_size, double peak_flops_per_gpu) {
  assert(step_time_s > 0 && world_size > 0 && peak_flops_per_gpu > 0);
  const double gpus = static_cast<double>(world_size);
  const double flops_per_s_per_gpu = flops_per_step / (step_time_s * gpus);
  return {.tflops_per_gpu = flops_per_s_per_gpu / units::kTera,
          .mfu = flops_per_s_per_gpu / peak_flops_per_gpu,
          .tokens_per_s_per_gpu = tokens_per_step / (step_time_s * gpus)};
}

} // namespace foldplan
