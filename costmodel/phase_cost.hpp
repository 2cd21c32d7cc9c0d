// PhaseCost: the time one rank spends on one piece of work (a layer, a stage) in one direction for
// one micro-batch, split into compute kinds and the communication of each parallel dimension, so
// that the step estimate can say which costs dominate and which can overlap.
#pragma once

namespace foldplan {

struct PhaseCost {
  double gemm_s = 0;
  double attention_s = 0;    // fused attention core
  double memory_bound_s = 0; // norms, activations, router, permute, residuals
  double tp_comm_s = 0;      // sequence-parallel all-gather / reduce-scatter over TP
  double cp_comm_s = 0;      // context-parallel KV exchange left exposed
  double ep_comm_s = 0;      // MoE dispatch/combine all-to-all over EP (or allgather dispatcher)
  double etp_comm_s = 0;     // expert-TP all-gather / reduce-scatter
  double host_sync_s = 0;    // GPU idle while the CPU waits for token counts (.cpu())

  double compute_s() const { return gemm_s + attention_s + memory_bound_s; }
  double communication_s() const { return tp_comm_s + cp_comm_s + ep_comm_s + etp_comm_s; }
  double total_s() const { return compute_s() + communication_s() + host_sync_s; }

  PhaseCost& operator+=(const PhaseCost& other) {
    gemm_s += other.gemm_s;
    attention_s += other.attention_s;
    memory_bound_s += other.memory_bound_s;
    tp_comm_s += other.tp_comm_s;
    cp_comm_s += other.cp_comm_s;
    ep_comm_s += other.ep_comm_s;
    etp_comm_s += other.etp_comm_s;
    host_sync_s += other.host_sync_s;
    return *this;
  }
  friend PhaseCost operator+(PhaseCost a, const PhaseCost& b) { return a += b; }
  friend PhaseCost operator*(PhaseCost a, double factor) {
    a.gemm_s *= factor;
    a.attention_s *= factor;
    a.memory_bound_s *= factor;
    a.tp_comm_s *= factor;
    a.cp_comm_s *= factor;
    a.ep_comm_s *= factor;
    a.etp_comm_s *= factor;
    a.host_sync_s *= factor;
    return a;
  }
};

// Forward and backward (recompute included) of the same piece of work.
struct PassCost {
  PhaseCost forward;
  PhaseCost backward;

  PassCost& operator+=(const PassCost& other) {
    forward += other.forward;
    backward += other.backward;
    return *this;
  }
  double total_s() const { return forward.total_s() + backward.total_s(); }
};

} // namespace foldplan
