#include "kernels/attention_dims.hpp"

#include <fmt/format.h>

namespace foldplan::kernels {

std::string attention_unsupported_reason(const AttentionDims& dims) {
  const auto positive = [](const char* field, int value) -> std::string {
    return value >= 1 ? "" : fmt::format("{} {}: must be at least 1", field, value);
  };
  for (const auto& reason : {positive("batch", dims.batch), positive("heads", dims.heads),
                             positive("kv_heads", dims.kv_heads), positive("seq_q", dims.seq_q),
                             positive("seq_kv", dims.seq_kv)}) {
    if (!reason.empty()) {
      return reason;
    }
  }
  if (dims.heads % dims.kv_heads != 0) {
    return fmt::format("heads {}: must be a multiple of kv_heads {}", dims.heads, dims.kv_heads);
  }
  // Grid dimensions y and z of the launches.
  constexpr int max_grid_yz = 65535;
  if (dims.heads > max_grid_yz || dims.batch > max_grid_yz) {
    return fmt::format("heads {} and batch {}: each at most {}", dims.heads, dims.batch,
                       max_grid_yz);
  }
  const int qk = dims.qk_head_dim;
  if (qk != 64 && qk != 128 && qk != 192) {
    return fmt::format("qk_head_dim {}: supported 64, 128, 192", qk);
  }
  const int expected_v = qk == 192 ? 128 : qk;
  if (dims.v_head_dim != expected_v) {
    return fmt::format("v_head_dim {} with qk_head_dim {}: supported {} (v equal to qk for 64 "
                       "and 128; 128 with qk 192, as DeepSeek's MLA)",
                       dims.v_head_dim, qk, expected_v);
  }
  return "";
}

double attention_forward_flops(const AttentionDims& dims) {
  const double pairs = static_cast<double>(dims.batch) * dims.heads * dims.seq_q * dims.seq_kv;
  const double flops = 2.0 * pairs * (dims.qk_head_dim + dims.v_head_dim);
  return dims.causal ? flops / 2 : flops;
}

double attention_backward_flops(const AttentionDims& dims) {
  return 2.5 * attention_forward_flops(dims);
}

} // namespace foldplan::kernels
