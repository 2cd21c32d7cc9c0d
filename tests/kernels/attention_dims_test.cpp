#include "kernels/attention_dims.hpp"

#include <gtest/gtest.h>

namespace foldplan::kernels {
namespace {

AttentionDims llama_like() {
  AttentionDims dims;
  dims.batch = 1;
  dims.heads = 32;
  dims.kv_heads = 8;
  dims.seq_q = 4096;
  dims.seq_kv = 4096;
  dims.qk_head_dim = 128;
  dims.v_head_dim = 128;
  return dims;
}

TEST(AttentionDims, SupportedShapesHaveNoReason) {
  EXPECT_EQ(attention_unsupported_reason(llama_like()), "");
  AttentionDims mla = llama_like();
  mla.qk_head_dim = 192;
  EXPECT_EQ(attention_unsupported_reason(mla), "");
  AttentionDims small = llama_like();
  small.qk_head_dim = small.v_head_dim = 64;
  small.seq_q = 100;
  small.seq_kv = 333;
  EXPECT_EQ(attention_unsupported_reason(small), "");
}

TEST(AttentionDims, ReasonsNameTheFieldAndTheRule) {
  AttentionDims dims = llama_like();
  dims.qk_head_dim = dims.v_head_dim = 96;
  EXPECT_EQ(attention_unsupported_reason(dims), "qk_head_dim 96: supported 64, 128, 192");
  dims = llama_like();
  dims.v_head_dim = 64;
  EXPECT_EQ(attention_unsupported_reason(dims).rfind("v_head_dim 64 with qk_head_dim 128", 0), 0u);
  dims = llama_like();
  dims.kv_heads = 5;
  EXPECT_EQ(attention_unsupported_reason(dims), "heads 32: must be a multiple of kv_heads 5");
  dims = llama_like();
  dims.seq_kv = 0;
  EXPECT_EQ(attention_unsupported_reason(dims), "seq_kv 0: must be at least 1");
}

TEST(AttentionDims, FlopsCountAsFlashAttention) {
  // 4·b·h·s²·d / 2 forward for causal; 2.5× backward.
  const AttentionDims dims = llama_like();
  const double forward = 4.0 * 32 * 4096.0 * 4096.0 * 128 / 2;
  EXPECT_DOUBLE_EQ(attention_forward_flops(dims), forward);
  EXPECT_DOUBLE_EQ(attention_backward_flops(dims), 2.5 * forward);
  AttentionDims full = dims;
  full.causal = false;
  EXPECT_DOUBLE_EQ(attention_forward_flops(full), 2 * forward);
}

TEST(AttentionDims, CausalVisibilityIsBottomRight) {
  AttentionDims dims = llama_like();
  dims.seq_q = 2;
  dims.seq_kv = 5;
  EXPECT_TRUE(attention_key_visible(dims, 0, 3));
  EXPECT_FALSE(attention_key_visible(dims, 0, 4));
  EXPECT_TRUE(attention_key_visible(dims, 1, 4));
  dims.causal = false;
  EXPECT_TRUE(attention_key_visible(dims, 0, 4));
}

} // namespace
} // namespace foldplan::kernels
