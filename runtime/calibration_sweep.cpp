// The kernels' dims of a calibration shape (runtime/calibration_sweep.hpp).
#include "runtime/calibration_sweep.hpp"

namespace foldplan::runtime {

kernels::AttentionDims attention_dims_of(const CalibrationAttentionShape& shape) {
  const auto narrow = [](std::int64_t value) { return static_cast<int>(value); };
  return {.batch = 1,
          .heads = narrow(shape.heads),
          .kv_heads = narrow(shape.kv_heads),
          .seq_q = narrow(shape.seq),
          .seq_kv = narrow(shape.seq),
          .qk_head_dim = narrow(shape.head_dim),
          .v_head_dim = narrow(shape.head_dim),
          .causal = shape.causal};
}

} // namespace foldplan::runtime
