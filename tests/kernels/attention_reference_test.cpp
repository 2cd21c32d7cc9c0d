#include "kernels/attention_reference.hpp"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/errors.hpp"

namespace foldplan::kernels {
namespace {

AttentionDims tiny(int seq_q, int seq_kv, bool causal) {
  AttentionDims dims;
  dims.batch = 1;
  dims.heads = 1;
  dims.kv_heads = 1;
  dims.seq_q = seq_q;
  dims.seq_kv = seq_kv;
  dims.qk_head_dim = 2;
  dims.v_head_dim = 2;
  dims.causal = causal;
  return dims;
}

// Scores [[1, 0], [0, 1]] (q = k = identity, scale 1): softmax rows (e, 1)/(e+1) and mirrored.
const std::vector<float> identity2{1, 0, 0, 1};
const std::vector<float> v2{1, 2, 3, 4};
const double e = std::exp(1.0);
const double p_high = e / (e + 1), p_low = 1 / (e + 1);

TEST(AttentionReference, NonCausalTwoByTwoMatchesHandSoftmax) {
  const auto out = attention_forward_reference(tiny(2, 2, false), 1.0f, identity2, identity2, v2);
  EXPECT_NEAR(out.o[0], p_high * 1 + p_low * 3, 1e-6);
  EXPECT_NEAR(out.o[1], p_high * 2 + p_low * 4, 1e-6);
  EXPECT_NEAR(out.o[2], p_low * 1 + p_high * 3, 1e-6);
  EXPECT_NEAR(out.o[3], p_low * 2 + p_high * 4, 1e-6);
  EXPECT_NEAR(out.lse[0], std::log(e + 1), 1e-6);
  EXPECT_NEAR(out.lse[1], std::log(e + 1), 1e-6);
}

TEST(AttentionReference, CausalFirstRowSeesOnlyItsKey) {
  const auto out = attention_forward_reference(tiny(2, 2, true), 1.0f, identity2, identity2, v2);
  EXPECT_NEAR(out.o[0], 1, 1e-6);
  EXPECT_NEAR(out.o[1], 2, 1e-6);
  EXPECT_NEAR(out.lse[0], 1, 1e-6); // log(exp(q0·k0)) with q0·k0 = 1
  EXPECT_NEAR(out.o[2], p_low * 1 + p_high * 3, 1e-6);
}

TEST(AttentionReference, SoftmaxScaleMultipliesScores) {
  // Scale 2: scores [2, 0] → p = (e², 1)/(e² + 1).
  const auto out = attention_forward_reference(tiny(2, 2, false), 2.0f, identity2, identity2, v2);
  const double high = e * e / (e * e + 1);
  EXPECT_NEAR(out.o[0], high * 1 + (1 - high) * 3, 1e-6);
  EXPECT_NEAR(out.lse[0], std::log(e * e + 1), 1e-6);
}

TEST(AttentionReference, CausalAlignsBottomRightWhenFewerQueries) {
  // seq_q 2, seq_kv 3, all scores 0: query 0 sees keys 0 and 1 (j <= 0 + 1), query 1 all three.
  const std::vector<float> q(4, 0.0f), k(6, 0.0f), v{1, 10, 2, 20, 6, 60};
  const auto out = attention_forward_reference(tiny(2, 3, true), 1.0f, q, k, v);
  EXPECT_NEAR(out.o[0], (1 + 2) / 2.0, 1e-6);
  EXPECT_NEAR(out.o[1], (10 + 20) / 2.0, 1e-6);
  EXPECT_NEAR(out.lse[0], std::log(2.0), 1e-6);
  EXPECT_NEAR(out.o[2], (1 + 2 + 6) / 3.0, 1e-6);
  EXPECT_NEAR(out.lse[1], std::log(3.0), 1e-6);
}

TEST(AttentionReference, CausalRowWithoutKeysIsZeroWithInfiniteLse) {
  // seq_q 3 > seq_kv 2: query 0 sees j <= -1, none; query 1 sees key 0; query 2 both.
  const std::vector<float> q(6, 0.0f), k(4, 0.0f), v{1, 10, 3, 30};
  const auto out = attention_forward_reference(tiny(3, 2, true), 1.0f, q, k, v);
  EXPECT_EQ(out.o[0], 0.0f);
  EXPECT_EQ(out.o[1], 0.0f);
  EXPECT_EQ(out.lse[0], std::numeric_limits<float>::infinity());
  EXPECT_NEAR(out.o[2], 1, 1e-6);
  EXPECT_NEAR(out.o[4], 2, 1e-6);
  const auto grads =
      attention_backward_reference(tiny(3, 2, true), 1.0f, q, k, v, std::vector<float>(6, 1.0f));
  EXPECT_EQ(grads.dq[0], 0.0f);
  EXPECT_EQ(grads.dq[1], 0.0f);
}

TEST(AttentionReference, GroupedQueryHeadsReadTheirKvHead) {
  // One key: every query head's output is the value of its kv head, h / (heads / kv_heads).
  AttentionDims dims = tiny(1, 1, false);
  dims.heads = 4;
  dims.kv_heads = 2;
  const std::vector<float> q(8, 0.5f), k(4, 0.25f), v{1, 2, 3, 4};
  const auto out = attention_forward_reference(dims, 1.0f, q, k, v);
  EXPECT_EQ(out.o, (std::vector<float>{1, 2, 1, 2, 3, 4, 3, 4}));
}

TEST(AttentionReference, RejectsMismatchedSizesAndHeads) {
  EXPECT_THROW(
      attention_forward_reference(tiny(2, 2, false), 1.0f, std::vector<float>(3), identity2, v2),
      InputError);
  AttentionDims dims = tiny(2, 2, false);
  dims.heads = 3;
  dims.kv_heads = 2;
  EXPECT_THROW(attention_forward_reference(dims, 1.0f, std::vector<float>(12), identity2, v2),
               InputError);
}

// loss = Σ o ∘ d_o; its gradients by central differences. Inputs are multiples of 1/8 in [-2, 2]
// and the step is 1/64, so x ± step stays exact in bf16 (the reference rounds its inputs).
TEST(AttentionReference, BackwardMatchesFiniteDifferencesWithGqaAndCausal) {
  AttentionDims dims = tiny(2, 3, true);
  dims.heads = 2;
  dims.kv_heads = 1;
  const float scale = 0.75f;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> eighths(-16, 16);
  const auto draw = [&](std::int64_t n) {
    std::vector<float> values(n);
    for (float& value : values) {
      value = static_cast<float>(eighths(rng)) / 8;
    }
    return values;
  };
  std::vector<float> q = draw(attention_q_elements(dims)), k = draw(attention_k_elements(dims)),
                     v = draw(attention_v_elements(dims)), d_o = draw(attention_o_elements(dims));
  const auto loss = [&] {
    const auto out = attention_forward_reference(dims, scale, q, k, v);
    double sum = 0;
    for (std::size_t i = 0; i < out.o.size(); ++i) {
      sum += static_cast<double>(out.o[i]) * d_o[i];
    }
    return sum;
  };
  const auto grads = attention_backward_reference(dims, scale, q, k, v, d_o);
  const float step = 1.0f / 64;
  const auto check = [&](std::vector<float>& input, const std::vector<float>& grad,
                         const char* name) {
    ASSERT_EQ(input.size(), grad.size());
    for (std::size_t i = 0; i < input.size(); ++i) {
      const float saved = input[i];
      input[i] = saved + step;
      const double up = loss();
      input[i] = saved - step;
      const double down = loss();
      input[i] = saved;
      EXPECT_NEAR(grad[i], (up - down) / (2 * step), 2e-3) << name << "[" << i << "]";
    }
  };
  check(q, grads.dq, "dq");
  check(k, grads.dk, "dk");
  check(v, grads.dv, "dv");
  // The kv head's gradient sums both query heads: it is not zero for any visible key.
  for (float value : grads.dv) {
    EXPECT_NE(value, 0.0f);
  }
}

} // namespace
} // namespace foldplan::kernels
