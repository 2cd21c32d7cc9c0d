// What the forward and backward kernels both read about a call: sizes, BSHD strides in elements,
// the softmax scale (also in base 2, for exp2) and the mask.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/attention_dims.hpp"

namespace foldplan::kernels {

struct AttentionCallParams {
  int heads = 0, kv_group = 0, seq_q = 0, seq_kv = 0;      // kv_group: query heads per kv head
  std::int64_t q_row = 0, k_row = 0, v_row = 0, o_row = 0; // between consecutive positions
  std::int64_t q_batch = 0, k_batch = 0, v_batch = 0, o_batch = 0;
  float scale = 0, scale_log2 = 0;
  bool causal = true;
};

inline AttentionCallParams attention_call_params(const AttentionDims& dims, float softmax_scale) {
  AttentionCallParams params;
  params.heads = dims.heads;
  params.kv_group = dims.heads / dims.kv_heads;
  params.seq_q = dims.seq_q;
  params.seq_kv = dims.seq_kv;
  params.q_row = static_cast<std::int64_t>(dims.heads) * dims.qk_head_dim;
  params.k_row = static_cast<std::int64_t>(dims.kv_heads) * dims.qk_head_dim;
  params.v_row = static_cast<std::int64_t>(dims.kv_heads) * dims.v_head_dim;
  params.o_row = static_cast<std::int64_t>(dims.heads) * dims.v_head_dim;
  params.q_batch = params.q_row * dims.seq_q;
  params.k_batch = params.k_row * dims.seq_kv;
  params.v_batch = params.v_row * dims.seq_kv;
  params.o_batch = params.o_row * dims.seq_q;
  params.scale = softmax_scale;
  params.scale_log2 = softmax_scale * static_cast<float>(M_LOG2E);
  params.causal = dims.causal;
  return params;
}

} // namespace foldplan::kernels
