#include "kernels/attention_reference.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan::kernels {
namespace {

void check_size(const char* field, std::span<const float> values, std::int64_t expected) {
  if (static_cast<std::int64_t>(values.size()) != expected) {
    throw InputError(field,
                     fmt::format("holds {} values, the dims need {}", values.size(), expected));
  }
}

void check_dims(const AttentionDims& dims) {
  if (dims.batch < 1 || dims.heads < 1 || dims.kv_heads < 1 || dims.seq_q < 1 || dims.seq_kv < 1 ||
      dims.qk_head_dim < 1 || dims.v_head_dim < 1) {
    throw InputError("dims", "every size must be at least 1");
  }
  if (dims.heads % dims.kv_heads != 0) {
    throw InputError("dims.heads",
                     fmt::format("{} is not a multiple of kv_heads {}", dims.heads, dims.kv_heads));
  }
}

std::vector<float> rounded(std::span<const float> values) {
  std::vector<float> out(values.begin(), values.end());
  for (float& value : out) {
    value = round_to_bf16(value);
  }
  return out;
}

// Index helpers for the BSHD layout.
struct Layout {
  const AttentionDims& d;
  std::int64_t q(int b, int i, int h) const {
    return ((static_cast<std::int64_t>(b) * d.seq_q + i) * d.heads + h) * d.qk_head_dim;
  }
  std::int64_t k(int b, int j, int g) const {
    return ((static_cast<std::int64_t>(b) * d.seq_kv + j) * d.kv_heads + g) * d.qk_head_dim;
  }
  std::int64_t v(int b, int j, int g) const {
    return ((static_cast<std::int64_t>(b) * d.seq_kv + j) * d.kv_heads + g) * d.v_head_dim;
  }
  std::int64_t o(int b, int i, int h) const {
    return ((static_cast<std::int64_t>(b) * d.seq_q + i) * d.heads + h) * d.v_head_dim;
  }
  std::int64_t lse(int b, int h, int i) const {
    return (static_cast<std::int64_t>(b) * d.heads + h) * d.seq_q + i;
  }
};

// One query row's softmax over the keys it sees: probabilities (0 for hidden keys) and the
// log-sum-exp of the scaled scores (+inf when it sees none).
struct RowSoftmax {
  std::vector<double> p;
  double lse = 0;
};

RowSoftmax row_softmax(const AttentionDims& dims, const Layout& at, float scale,
                       const std::vector<float>& q, const std::vector<float>& k, int b, int h,
                       int i) {
  const int g = h / (dims.heads / dims.kv_heads);
  RowSoftmax row{std::vector<double>(dims.seq_kv, 0.0), 0};
  std::vector<double> score(dims.seq_kv, -std::numeric_limits<double>::infinity());
  double max_score = -std::numeric_limits<double>::infinity();
  for (int j = 0; j < dims.seq_kv; ++j) {
    if (!attention_key_visible(dims, i, j)) {
      continue;
    }
    double dot = 0;
    for (int c = 0; c < dims.qk_head_dim; ++c) {
      dot += static_cast<double>(q[at.q(b, i, h) + c]) * k[at.k(b, j, g) + c];
    }
    score[j] = dot * scale;
    max_score = std::max(max_score, score[j]);
  }
  if (std::isinf(max_score)) {
    row.lse = std::numeric_limits<double>::infinity();
    return row;
  }
  double sum = 0;
  for (int j = 0; j < dims.seq_kv; ++j) {
    row.p[j] = std::exp(score[j] - max_score);
    sum += row.p[j];
  }
  for (double& p : row.p) {
    p /= sum;
  }
  row.lse = max_score + std::log(sum);
  return row;
}

} // namespace

std::int64_t attention_q_elements(const AttentionDims& d) {
  return static_cast<std::int64_t>(d.batch) * d.seq_q * d.heads * d.qk_head_dim;
}
std::int64_t attention_k_elements(const AttentionDims& d) {
  return static_cast<std::int64_t>(d.batch) * d.seq_kv * d.kv_heads * d.qk_head_dim;
}
std::int64_t attention_v_elements(const AttentionDims& d) {
  return static_cast<std::int64_t>(d.batch) * d.seq_kv * d.kv_heads * d.v_head_dim;
}
std::int64_t attention_o_elements(const AttentionDims& d) {
  return static_cast<std::int64_t>(d.batch) * d.seq_q * d.heads * d.v_head_dim;
}
std::int64_t attention_lse_elements(const AttentionDims& d) {
  return static_cast<std::int64_t>(d.batch) * d.heads * d.seq_q;
}

AttentionReferenceForward attention_forward_reference(const AttentionDims& dims,
                                                      float softmax_scale,
                                                      std::span<const float> q_in,
                                                      std::span<const float> k_in,
                                                      std::span<const float> v_in) {
  check_dims(dims);
  check_size("q", q_in, attention_q_elements(dims));
  check_size("k", k_in, attention_k_elements(dims));
  check_size("v", v_in, attention_v_elements(dims));
  const auto q = rounded(q_in), k = rounded(k_in), v = rounded(v_in);
  const Layout at{dims};
  AttentionReferenceForward out{std::vector<float>(attention_o_elements(dims), 0.0f),
                                std::vector<float>(attention_lse_elements(dims), 0.0f)};
  for (int b = 0; b < dims.batch; ++b) {
    for (int h = 0; h < dims.heads; ++h) {
      const int g = h / (dims.heads / dims.kv_heads);
      for (int i = 0; i < dims.seq_q; ++i) {
        const RowSoftmax row = row_softmax(dims, at, softmax_scale, q, k, b, h, i);
        out.lse[at.lse(b, h, i)] = static_cast<float>(row.lse);
        for (int c = 0; c < dims.v_head_dim; ++c) {
          double sum = 0;
          for (int j = 0; j < dims.seq_kv; ++j) {
            sum += row.p[j] * v[at.v(b, j, g) + c];
          }
          out.o[at.o(b, i, h) + c] = static_cast<float>(sum);
        }
      }
    }
  }
  return out;
}

// FlashAttention-2's backward written out: dV = Pᵀ dO, dP = dO Vᵀ, dS = P ∘ (dP − rowsum(dO ∘ O)),
// dQ = scale · dS K, dK = scale · dSᵀ Q.
AttentionReferenceGradients
attention_backward_reference(const AttentionDims& dims, float softmax_scale,
                             std::span<const float> q_in, std::span<const float> k_in,
                             std::span<const float> v_in, std::span<const float> d_o_in) {
  check_dims(dims);
  check_size("q", q_in, attention_q_elements(dims));
  check_size("k", k_in, attention_k_elements(dims));
  check_size("v", v_in, attention_v_elements(dims));
  check_size("d_o", d_o_in, attention_o_elements(dims));
  const auto q = rounded(q_in), k = rounded(k_in), v = rounded(v_in), d_o = rounded(d_o_in);
  const Layout at{dims};
  std::vector<double> dq(q.size(), 0.0), dk(k.size(), 0.0), dv(v.size(), 0.0);
  std::vector<double> dp(dims.seq_kv);
  for (int b = 0; b < dims.batch; ++b) {
    for (int h = 0; h < dims.heads; ++h) {
      const int g = h / (dims.heads / dims.kv_heads);
      for (int i = 0; i < dims.seq_q; ++i) {
        const RowSoftmax row = row_softmax(dims, at, softmax_scale, q, k, b, h, i);
        double delta = 0; // rowsum(dO ∘ O) = Σ_j p_j dp_j
        for (int j = 0; j < dims.seq_kv; ++j) {
          dp[j] = 0;
          for (int c = 0; c < dims.v_head_dim; ++c) {
            dp[j] += static_cast<double>(d_o[at.o(b, i, h) + c]) * v[at.v(b, j, g) + c];
          }
          delta += row.p[j] * dp[j];
        }
        for (int j = 0; j < dims.seq_kv; ++j) {
          if (row.p[j] == 0) {
            continue;
          }
          for (int c = 0; c < dims.v_head_dim; ++c) {
            dv[at.v(b, j, g) + c] += row.p[j] * d_o[at.o(b, i, h) + c];
          }
          const double ds = row.p[j] * (dp[j] - delta) * softmax_scale;
          for (int c = 0; c < dims.qk_head_dim; ++c) {
            dq[at.q(b, i, h) + c] += ds * k[at.k(b, j, g) + c];
            dk[at.k(b, j, g) + c] += ds * q[at.q(b, i, h) + c];
          }
        }
      }
    }
  }
  const auto to_float = [](const std::vector<double>& values) {
    return std::vector<float>(values.begin(), values.end());
  };
  return {to_float(dq), to_float(dk), to_float(dv)};
}

} // namespace foldplan::kernels
