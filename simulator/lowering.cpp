#include "simulator/lowering.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/errors.hpp"
#include "core/units.hpp"
#include "costmodel/layer_costs.hpp"
#include "costmodel/memory_model.hpp"
#include "models/vocab_padding.hpp"
#include "parallel/layer_placement.hpp"
#include "parallel/rank_generator.hpp"
#include "parallel/rank_groups.hpp"
#include "simulator/expert_load.hpp"

namespace foldplan {
namespace {

using units::kBf16Bytes;
using units::kFp32Bytes;
using units::kInt64Bytes;

// Distributed-optimizer Adam step per parameter of the local shard (costmodel/step_estimate.cpp):
// fp32 gradient read twice (4 + 4), master weight read and written (8), both moments (16), bf16
// weight written (2).
constexpr double kOptimizerBytesPerParameter = 34.0;

using Deps = std::vector<int>;

double as_double(std::int64_t value) {
  return static_cast<double>(value);
}

// Family ids; -1 where every group of the family has one rank (nothing to communicate).
struct Families {
  int tp = -1, cp = -1, tp_cp = -1, dp_cp = -1, pp = -1, ep = -1, etp = -1, etp_ep = -1, edp = -1;
};

Families add_families(const ParallelConfig& config, bool folding, std::vector<CommGroup>& groups) {
  const RankLayout attention = attention_rank_layout(config);
  const RankLayout moe = moe_rank_layout(config, folding);
  auto add = [&](const char* name, const RankLayout& layout, std::vector<std::string> varying) {
    std::vector<RankGroup> members = generate_rank_groups(layout, varying);
    if (members.front().size() <= 1)
      return -1;
    const int id = static_cast<int>(groups.size());
    groups.push_back({.id = id, .name = name, .members = std::move(members)});
    return id;
  };
  Families families;
  families.tp = add("tp", attention, {"tp"});
  families.cp = add("cp", attention, {"cp"});
  // Without CP the sequence's shards are the TP group itself.
  families.tp_cp = config.cp == 1 ? families.tp : add("tp-cp", attention, {"tp", "cp"});
  families.dp_cp = add("dp-cp", attention, {"dp", "cp"});
  families.pp = add("pp", attention, {"pp"});
  families.ep = add("ep", moe, {"ep"});
  families.etp = add("etp", moe, {"etp"});
  families.etp_ep = add("etp-ep", moe, {"etp", "ep"});
  families.edp = add("edp", moe, {"cp", "edp"});
  return families;
}

// The shape arithmetic of costmodel/layer_costs.cpp, once per plan (balanced routing).
struct LayerShapes {
  std::int64_t h = 0;
  std::int64_t rows = 0;           // b·s/CP: rows of the attention and MLP GEMMs
  std::int64_t sequence_shard = 0; // b·s/(TP·CP): tokens between SP regions
  double shard_bytes = 0;          // sequence_shard · h, bf16
  double gathered_bytes = 0;       // rows · h, bf16: what TP all-gathers and reduce-scatters
  GemmDtype linear_dtype = GemmDtype::bf16;
  std::int64_t gated = 1;

  // Attention.
  AttentionOpShape core;      // one rank's block (CP p2p) or the a2a CP whole-sequence shape
  std::int64_t qkv_n = 0;     // fused QKV output width (no MLA)
  std::int64_t output_k = 0;  // inner size of the output projection
  double cp_kv_bytes = 0;     // K and V of one CP rank (ring)
  double cp_qkv_bytes = 0;    // a2a CP: Q, K, V of the sequence shard
  double cp_output_bytes = 0; // a2a CP: the attention output
  bool cp_all_to_all = false;

  // Routed experts.
  std::int64_t experts = 0, local_experts = 0, expert_ffn_local = 0, rows_per_local_expert = 0;
  double rows_sent = 0, rows_computed = 0;
  double router_bytes = 0, permute_bytes = 0, token_bytes = 0;
};

LayerShapes layer_shapes(const Plan& plan) {
  const ModelSpec& model = plan.model;
  const ParallelConfig& config = plan.parallel;
  const TrainingShape& training = plan.training;
  LayerShapes shapes;
  shapes.h = model.hidden_size;
  shapes.rows = training.micro_batch_size * training.seq_length / config.cp;
  shapes.sequence_shard = shapes.rows / config.tp;
  shapes.shard_bytes = as_double(shapes.sequence_shard * shapes.h) * kBf16Bytes;
  shapes.gathered_bytes = as_double(shapes.rows * shapes.h) * kBf16Bytes;
  shapes.linear_dtype =
      plan.options.precision == Precision::bf16 ? GemmDtype::bf16 : GemmDtype::fp8;
  shapes.gated = model.activation == Activation::swiglu ? 2 : 1;

  AttentionOpShape core{.batch = training.micro_batch_size,
                        .heads = model.num_attention_heads / config.tp,
                        .kv_heads = std::max<std::int64_t>(1, model.num_query_groups / config.tp),
                        .seq_q = training.seq_length / config.cp,
                        .seq_kv = training.seq_length / config.cp,
                        .qk_head_dim = model.kv_channels,
                        .v_head_dim = model.kv_channels,
                        .causal = true};
  if (model.mla) {
    core.kv_heads = core.heads;
    core.qk_head_dim = model.mla->qk_head_dim + model.mla->qk_pos_emb_head_dim;
    core.v_head_dim = model.mla->v_head_dim;
    shapes.output_k = core.heads * model.mla->v_head_dim;
  } else {
    const std::int64_t q = model.num_attention_heads * model.kv_channels / config.tp;
    shapes.qkv_n = q + 2 * core.kv_heads * model.kv_channels;
    shapes.output_k = q;
  }
  shapes.cp_all_to_all = config.cp > 1 && plan.options.cp_comm_type == CpCommType::a2a;
  const double tokens = as_double(training.micro_batch_size * core.seq_q);
  shapes.cp_kv_bytes =
      tokens * as_double(core.kv_heads * (core.qk_head_dim + core.v_head_dim)) * kBf16Bytes;
  shapes.cp_qkv_bytes = tokens *
                        as_double(core.heads * core.qk_head_dim +
                                  core.kv_heads * (core.qk_head_dim + core.v_head_dim)) *
                        kBf16Bytes;
  shapes.cp_output_bytes = tokens * as_double(core.heads * core.v_head_dim) * kBf16Bytes;
  if (shapes.cp_all_to_all) {
    core.heads /= config.cp;
    core.kv_heads = std::max<std::int64_t>(1, core.kv_heads / config.cp);
    core.seq_q = training.seq_length;
    core.seq_kv = training.seq_length;
  }
  shapes.core = core;

  if (model.is_moe()) {
    const MoeSpec& moe = model.moe;
    shapes.experts = moe.num_experts;
    shapes.local_experts = moe.num_experts / config.ep;
    shapes.expert_ffn_local = moe.ffn_hidden_size / config.etp;
    // Megatron moe_utils.get_capacity: capacity ceil(T·k/E·cf); padding fills every expert to it.
    const double balanced =
        as_double(shapes.sequence_shard * moe.router_topk) / as_double(moe.num_experts);
    double per_expert = balanced;
    if (plan.options.capacity_factor) {
      const double capacity = std::ceil(balanced * *plan.options.capacity_factor);
      per_expert = plan.options.pad_to_capacity ? capacity : std::min(per_expert, capacity);
    }
    shapes.rows_sent = balanced * as_double(moe.num_experts);
    shapes.rows_computed = per_expert * as_double(moe.num_experts) * as_double(config.etp);
    shapes.rows_per_local_expert = static_cast<std::int64_t>(
        std::ceil(shapes.rows_computed / as_double(shapes.local_experts)));
    shapes.token_bytes = as_double(shapes.h) * kBf16Bytes;
    shapes.permute_bytes = shapes.rows_sent * shapes.token_bytes * 2;
    shapes.router_bytes = as_double(shapes.sequence_shard * moe.num_experts) * kFp32Bytes * 3;
  }
  return shapes;
}

// --- the interleaved 1F1B schedule ------------------------------------------------------------

// One pass of one model chunk over one micro-batch.
struct ChunkPass {
  std::int64_t micro_batch = 0;
  std::int64_t chunk = 0;
  bool backward = false;
};

// One step of a stage's schedule: a forward pass, a backward pass, or both — Megatron's EP-overlap
// schedule (combined 1F1B) runs a forward and a backward together, interleaved layer by layer.
struct ScheduleStep {
  std::optional<ChunkPass> forward;
  std::optional<ChunkPass> backward;

  template <typename Visit> void for_each_pass(Visit visit) const {
    if (forward)
      visit(*forward);
    if (backward)
      visit(*backward);
  }
};

// What a stage does in the interleaved schedule, in program order: a recv before the step that
// consumes it, the step, then the send of each result.
struct StageEvent {
  enum class Kind { recv, step, send } kind = Kind::step;
  ScheduleStep step;           // step: the passes computed
  ChunkPass pass;              // transfers: the pass that consumes (recv) or produced (send) it
  std::int64_t peer = -1;      // transfers: the other stage
  std::int64_t peer_chunk = 0; // transfers: the chunk on the other stage
};

// Megatron schedules.py forward_backward_pipelining_with_interleaving, default
// microbatch_group_size_per_vp_stage G = PP: virtual micro-batch k belongs to micro-batch
// (k / (PP·VPP))·PP + k mod PP and to chunk (k mod PP·VPP) / PP, backward in reverse chunk order.
// Warm-up 2·(PP−r−1) + (VPP−1)·PP capped at M·VPP, and everything when M == PP (Megatron's
// all_warmup_microbatches); then one forward and one backward per step; then the cool-down.
// With the EP overlap (combined_1f1b_schedule_for_interleaved_pipelining) the warm-up has one more
// forward and each steady step runs its forward and backward as one combined step.
std::vector<ScheduleStep> interleaved_order(std::int64_t pp, std::int64_t vpp,
                                            std::int64_t micro_batches, std::int64_t pp_rank,
                                            bool combined) {
  const std::int64_t total = micro_batches * vpp;
  auto pass = [&](std::int64_t k, bool backward) {
    const std::int64_t in_group = k % (pp * vpp);
    const std::int64_t chunk = in_group / pp;
    return ChunkPass{.micro_batch = (k / (pp * vpp)) * pp + in_group % pp,
                     .chunk = backward ? vpp - 1 - chunk : chunk,
                     .backward = backward};
  };
  const std::int64_t warmup =
      micro_batches == pp
          ? total
          : std::min(2 * (pp - pp_rank - 1) + (vpp - 1) * pp + (combined ? 1 : 0), total);
  std::vector<ScheduleStep> order;
  order.reserve(static_cast<std::size_t>(2 * total));
  for (std::int64_t k = 0; k < warmup; ++k)
    order.push_back({.forward = pass(k, false), .backward = std::nullopt});
  for (std::int64_t k = 0; k < total - warmup; ++k) {
    if (combined) {
      order.push_back({.forward = pass(warmup + k, false), .backward = pass(k, true)});
      continue;
    }
    order.push_back({.forward = pass(warmup + k, false), .backward = std::nullopt});
    order.push_back({.forward = std::nullopt, .backward = pass(k, true)});
  }
  for (std::int64_t k = total - warmup; k < total; ++k)
    order.push_back({.forward = std::nullopt, .backward = pass(k, true)});
  return order;
}

// The stage and chunk that consume the output of `pass` on `stage` (activations of the last chunk
// and gradients of chunk 0 on stage 0 go nowhere): forward r → r+1, the last stage wraps to
// chunk v+1 of stage 0; backward the reverse.
std::optional<std::pair<std::int64_t, std::int64_t>>
consumer(const ChunkPass& pass, std::int64_t stage, std::int64_t pp, std::int64_t vpp) {
  if (!pass.backward) {
    if (stage + 1 < pp)
      return std::pair{stage + 1, pass.chunk};
    if (pass.chunk + 1 < vpp)
      return std::pair{std::int64_t{0}, pass.chunk + 1};
    return std::nullopt;
  }
  if (stage > 0)
    return std::pair{stage - 1, pass.chunk};
  if (pass.chunk > 0)
    return std::pair{pp - 1, pass.chunk - 1};
  return std::nullopt;
}

// Orders every stage's steps and pipeline transfers. The steps keep Megatron's order; the
// transfers are placed where a reference run of that order puts them — forward passes 1 time unit,
// backward 2, a combined step 3, transfers instant (a send completes when its step ends) — and
// each stage lists its events by (time, transfers before steps, sender, receiver, tag). Both sides
// of a transfer share its key and every dependency points to a smaller key, so the programs
// follow one global order: the in-order pp_comm streams cannot deadlock whatever the real
// durations, and with durations proportional to the reference ones the simulation reproduces it.
std::vector<std::vector<StageEvent>> interleaved_events(std::int64_t pp, std::int64_t vpp,
                                                        std::int64_t micro_batches, bool combined) {
  std::vector<std::vector<ScheduleStep>> orders;
  for (std::int64_t stage = 0; stage < pp; ++stage)
    orders.push_back(interleaved_order(pp, vpp, micro_batches, stage, combined));
  // End time of each pass: [stage][(micro_batch·vpp + chunk)·2 + backward], −1 before it ran.
  auto index = [vpp](const ChunkPass& pass) {
    return static_cast<std::size_t>((pass.micro_batch * vpp + pass.chunk) * 2 + pass.backward);
  };
  std::vector<std::vector<std::int64_t>> end(
      static_cast<std::size_t>(pp),
      std::vector<std::int64_t>(static_cast<std::size_t>(micro_batches * vpp * 2), -1));
  std::vector<std::vector<std::int64_t>> start(static_cast<std::size_t>(pp));
  // The producer (stage, pass) of a pass's input, if it has one.
  auto producer = [&](const ChunkPass& pass,
                      std::int64_t stage) -> std::optional<std::pair<std::int64_t, ChunkPass>> {
    ChunkPass from = pass;
    if (!pass.backward) {
      if (stage > 0)
        return std::pair{stage - 1, from};
      if (pass.chunk == 0)
        return std::nullopt;
      from.chunk -= 1;
      return std::pair{pp - 1, from};
    }
    if (stage + 1 < pp)
      return std::pair{stage + 1, from};
    if (pass.chunk + 1 == vpp)
      return std::nullopt;
    from.chunk += 1;
    return std::pair{std::int64_t{0}, from};
  };
  std::vector<std::size_t> next(static_cast<std::size_t>(pp), 0);
  std::vector<std::int64_t> clock(static_cast<std::size_t>(pp), 0);
  for (bool progress = true; progress;) {
    progress = false;
    for (std::int64_t stage = 0; stage < pp; ++stage) {
      const auto s = static_cast<std::size_t>(stage);
      for (; next[s] < orders[s].size(); ++next[s]) {
        const ScheduleStep& step = orders[s][next[s]];
        std::int64_t ready = clock[s];
        bool inputs_ready = true;
        step.for_each_pass([&](const ChunkPass& pass) {
          if (const auto input = producer(pass, stage)) {
            const std::int64_t produced =
                end[static_cast<std::size_t>(input->first)][index(input->second)];
            inputs_ready = inputs_ready && produced >= 0;
            ready = std::max(ready, produced);
          }
        });
        if (!inputs_ready)
          break;
        start[s].push_back(ready);
        clock[s] = ready + (step.forward ? 1 : 0) + (step.backward ? 2 : 0);
        step.for_each_pass([&](const ChunkPass& pass) { end[s][index(pass)] = clock[s]; });
        progress = true;
      }
    }
  }
  for (std::int64_t stage = 0; stage < pp; ++stage)
    if (next[static_cast<std::size_t>(stage)] != orders[static_cast<std::size_t>(stage)].size())
      throw std::logic_error("interleaved schedule: stage " + std::to_string(stage) + " stalls");

  // (time, 0 for transfers / 1 for steps, sender, receiver, tag or position) → event.
  using Key = std::tuple<std::int64_t, int, std::int64_t, std::int64_t, std::int64_t>;
  std::vector<std::vector<std::pair<Key, StageEvent>>> keyed(static_cast<std::size_t>(pp));
  for (std::int64_t stage = 0; stage < pp; ++stage) {
    const auto s = static_cast<std::size_t>(stage);
    for (std::size_t position = 0; position < orders[s].size(); ++position) {
      const ScheduleStep& step = orders[s][position];
      keyed[s].push_back(
          {Key{start[s][position], 1, stage, stage, static_cast<std::int64_t>(position)},
           StageEvent{.kind = StageEvent::Kind::step, .step = step, .pass = {}}});
      step.for_each_pass([&](const ChunkPass& pass) {
        const auto to = consumer(pass, stage, pp, vpp);
        if (!to)
          return;
        const Key key{end[s][index(pass)], 0, stage, to->first,
                      pipeline_tag(pass.micro_batch, pass.backward, pass.chunk, vpp)};
        keyed[s].push_back({key, StageEvent{.kind = StageEvent::Kind::send,
                                            .step = {},
                                            .pass = pass,
                                            .peer = to->first,
                                            .peer_chunk = to->second}});
        keyed[static_cast<std::size_t>(to->first)].push_back(
            {key, StageEvent{.kind = StageEvent::Kind::recv,
                             .step = {},
                             .pass = {.micro_batch = pass.micro_batch,
                                      .chunk = to->second,
                                      .backward = pass.backward},
                             .peer = stage,
                             .peer_chunk = pass.chunk}});
      });
    }
  }
  std::vector<std::vector<StageEvent>> events(static_cast<std::size_t>(pp));
  for (std::size_t s = 0; s < keyed.size(); ++s) {
    std::sort(keyed[s].begin(), keyed[s].end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [key, event] : keyed[s])
      events[s].push_back(event);
  }
  return events;
}

// Builds the program of one pipeline stage (with routed experts: of one place in the ETP×EP
// group on that stage).
class StageLowering {
public:
  StageLowering(const Plan& plan, const Families& families, const LayerShapes& shapes,
                std::int64_t pp_rank, RankProgram& program, const ExpertLoads* loads = nullptr,
                ExpertRank expert_rank = {})
      : plan_(plan), model_(plan.model), config_(plan.parallel), families_(families), s_(shapes),
        pp_rank_(pp_rank), program_(program), loads_(loads), expert_rank_(expert_rank) {}

  // Megatron's interleaved schedule: `events` from interleaved_events for this stage.
  void lower_interleaved(const std::vector<StageEvent>& events) {
    const std::int64_t micro_batches = num_micro_batches(config_, plan_.training);
    forward_end_.assign(static_cast<std::size_t>(micro_batches * config_.vpp), -1);
    // Received tensors and pass results by (micro_batch·vpp + chunk)·2 + backward.
    std::vector<int> received(forward_end_.size() * 2, -1), produced(forward_end_.size() * 2, -1);
    auto slot = [this](const ChunkPass& pass) {
      return static_cast<std::size_t>((pass.micro_batch * config_.vpp + pass.chunk) * 2 +
                                      pass.backward);
    };
    int last_backward = -1;
    for (const StageEvent& event : events) {
      const ChunkPass& pass = event.pass;
      switch (event.kind) {
      case StageEvent::Kind::recv:
        received[slot(pass)] =
            transfer(OpKind::recv, pass.micro_batch, pass.backward, event.peer,
                     pipeline_tag(pass.micro_batch, pass.backward, event.peer_chunk, config_.vpp),
                     pass.backward ? forward_end_[chunk_index(pass.micro_batch, pass.chunk)] : -1);
        break;
      case StageEvent::Kind::step: {
        const std::optional<ChunkPass>& f = event.step.forward;
        const std::optional<ChunkPass>& b = event.step.backward;
        if (f && b) {
          const auto [forward_output, backward_output] =
              combined(f->micro_batch, received[slot(*f)], f->chunk, b->micro_batch,
                       received[slot(*b)], b->chunk);
          produced[slot(*f)] = forward_output;
          produced[slot(*b)] = last_backward = backward_output;
        } else if (b) {
          last_backward = backward(b->micro_batch, received[slot(*b)], b->chunk);
          produced[slot(*b)] = last_backward;
        } else {
          produced[slot(*f)] = forward(f->micro_batch, received[slot(*f)], f->chunk);
        }
        break;
      }
      case StageEvent::Kind::send:
        transfer(OpKind::send, pass.micro_batch, pass.backward, event.peer,
                 pipeline_tag(pass.micro_batch, pass.backward, pass.chunk, config_.vpp),
                 produced[slot(pass)]);
        break;
      }
    }
    data_parallel_tail(last_backward);
  }

  void lower() {
    const std::int64_t micro_batches = num_micro_batches(config_, plan_.training);
    forward_end_.assign(static_cast<std::size_t>(micro_batches), -1);
    if (plan_.options.overlap_moe_expert_parallel_comm && config_.pp == 1) {
      lower_combined_without_pipelining(micro_batches);
      return;
    }

    // Megatron schedules.py forward_backward_pipelining_without_interleaving.
    const std::int64_t warmup = std::min(config_.pp - pp_rank_ - 1, micro_batches);
    const std::int64_t remaining = micro_batches - warmup;
    for (std::int64_t mb = 0; mb < warmup; ++mb) {
      const int input = receive(mb, false);
      send(mb, false, forward(mb, input));
    }
    int next_input = remaining > 0 ? receive(warmup, false) : -1;
    int last_backward = -1;
    for (std::int64_t i = 0; i < remaining; ++i) {
      const std::int64_t forward_mb = warmup + i;
      const int output = forward(forward_mb, next_input);
      // send_forward_recv_backward, then send_backward_recv_forward (or send_backward alone).
      const int gradient = exchange(forward_mb, false, output, i, true);
      last_backward = backward(i, gradient);
      if (i == remaining - 1)
        send(i, true, last_backward);
      else
        next_input = exchange(i, true, last_backward, forward_mb + 1, false);
    }
    for (std::int64_t mb = remaining; mb < micro_batches; ++mb) {
      const int gradient = receive(mb, true);
      last_backward = backward(mb, gradient);
      send(mb, true, last_backward);
    }
    data_parallel_tail(last_backward);
  }

private:
  // --- emission -----------------------------------------------------------------------------

  int emit(const std::string& op, OpKind kind, Stream stream, OpShape shape, const Deps& deps,
           Phase phase) {
    Deps kept;
    for (const int dep : deps)
      if (dep >= 0 && std::find(kept.begin(), kept.end(), dep) == kept.end())
        kept.push_back(dep);
    std::string name = scope_ + "." + op;
    if (phase != Phase::optimizer)
      name += "." + std::string(pass_name(phase));
    // The lowering alone appends to the program, so ids are list positions: what append_op
    // would give, without its scan of every earlier op.
    const int id = static_cast<int>(program_.ops.size());
    program_.ops.push_back({.id = id,
                            .name = std::move(name),
                            .kind = kind,
                            .stream = stream,
                            .phase = phase,
                            .micro_batch = micro_batch_,
                            .layer = layer_,
                            .deps = std::move(kept),
                            .shape = std::move(shape)});
    return id;
  }

  std::string_view pass_name(Phase phase) const {
    switch (phase) {
    case Phase::forward:
      return "fwd";
    case Phase::recompute:
      return "recompute";
    case Phase::backward_dgrad:
      return gemm_pass_ ? "dgrad" : "bwd";
    case Phase::backward_wgrad:
      return "wgrad";
    case Phase::optimizer:
      return "";
    case Phase::other:
      return "other";
    }
    return "other";
  }

  // The phase of non-GEMM ops in the current pass: forward, recompute or backward (dgrad path).
  Phase pass_phase() const { return backward_ ? Phase::backward_dgrad : forward_phase_; }

  int memory(const std::string& op, double bytes, const Deps& deps, int kernels = 1) {
    return emit(op, OpKind::memory_bound, Stream::compute,
                MemoryBoundShape{.bytes = bytes, .kernels = kernels}, deps, pass_phase());
  }

  // A collective on `family`; with no family (groups of one rank) nothing is emitted and the
  // input passes through.
  int collective(const std::string& op, int family, Stream stream, CollectiveOp kind, double bytes,
                 const Deps& deps, std::vector<double> send_bytes_per_peer = {}) {
    if (family < 0)
      return deps.empty() ? -1 : *std::max_element(deps.begin(), deps.end());
    return emit(op, OpKind::collective, stream,
                CollectiveShape{.op = kind,
                                .group_id = family,
                                .bytes = bytes,
                                .send_bytes_per_peer = std::move(send_bytes_per_peer)},
                deps, pass_phase());
  }

  int gemm(const std::string& op, GemmShape shape, const Deps& deps, Phase phase) {
    gemm_pass_ = true;
    const int id = emit(op, OpKind::gemm, Stream::compute, shape, deps, phase);
    gemm_pass_ = false;
    return id;
  }

  // Y[m,n] = X[m,k]·W[k,n]; backward: dgrad dX = dY·Wᵀ [m,n]x[n,k], wgrad dW = Xᵀ·dY [k,m]x[m,n].
  // The wgrad waits only for dY, so collectives after the dgrad can overlap it.
  int linear(const std::string& op, std::int64_t m, std::int64_t n, std::int64_t k,
             const Deps& deps, GemmDtype dtype, std::int64_t groups = 1) {
    if (m <= 0)
      return deps.empty() ? -1 : *std::max_element(deps.begin(), deps.end());
    if (!backward_)
      return gemm(op, {.m = m, .n = n, .k = k, .groups = groups, .dtype = dtype}, deps,
                  forward_phase_);
    const int dgrad = gemm(op, {.m = m, .n = k, .k = n, .groups = groups, .dtype = dtype}, deps,
                           Phase::backward_dgrad);
    gemm(op, {.m = k, .n = n, .k = m, .groups = groups, .dtype = dtype, .accumulate_fp32 = true},
         deps, Phase::backward_wgrad);
    return dgrad;
  }

  int attention(const std::string& op, const Deps& deps, Phase phase) {
    AttentionOpShape shape = s_.core;
    shape.backward = phase == Phase::backward_dgrad;
    return emit(op, OpKind::attention, Stream::compute, shape, deps, phase);
  }

  int tp(const std::string& op, CollectiveOp kind, double bytes, const Deps& deps) {
    return collective(op, families_.tp, Stream::tp_comm, kind, bytes, deps);
  }

  // --- attention block (layer_costs attention_block) -----------------------------------------

  // Core attention forward or backward of one rank. p2p CP (TE's load-balanced ring) computes CP
  // causal blocks of its own size; the ring's CP−1 K/V steps are lowered as one all-gather of
  // K and V over CP (and, backward, a reduce-scatter of their gradients) that the first,
  // local block overlaps. a2a CP swaps sequence for heads with an all-to-all each way.
  int core_attention(int input) {
    const int cp = families_.cp;
    const Phase phase = pass_phase();
    const bool recompute = backward_ && plan_.options.recompute == Recompute::selective;
    if (s_.cp_all_to_all) {
      const double in_bytes = backward_ ? s_.cp_output_bytes : s_.cp_qkv_bytes;
      const double out_bytes = backward_ ? s_.cp_qkv_bytes : s_.cp_output_bytes;
      const int gathered = collective("attn.cp_a2a_in", cp, Stream::cp_comm,
                                      CollectiveOp::all_to_all, in_bytes, {input});
      int deps = gathered;
      if (recompute)
        deps = attention("attn.core", {gathered}, Phase::recompute);
      const int core = attention("attn.core", {deps}, phase);
      return collective("attn.cp_a2a_out", cp, Stream::cp_comm, CollectiveOp::all_to_all, out_bytes,
                        {core});
    }
    const int ring = collective("attn.cp_kv", cp, Stream::cp_comm, CollectiveOp::all_gather,
                                s_.cp_kv_bytes * as_double(config_.cp), {input});
    int previous = input;
    for (std::int64_t block = 0; block < config_.cp; ++block) {
      const Deps deps = block == 0 ? Deps{previous} : Deps{previous, ring};
      if (recompute)
        previous = attention("attn.core", deps, Phase::recompute);
      previous = attention("attn.core", {previous, block == 0 ? -1 : ring}, phase);
    }
    if (backward_)
      previous = collective("attn.cp_dkv", cp, Stream::cp_comm, CollectiveOp::reduce_scatter,
                            s_.cp_kv_bytes * as_double(config_.cp), {previous});
    return previous;
  }

  int attention_block(int input) {
    const std::int64_t rows = s_.rows;
    const std::int64_t h = s_.h;
    const GemmDtype dtype = s_.linear_dtype;
    if (!backward_) {
      const int norm = memory("attn.norm", s_.shard_bytes * 2, {input});
      const int x = tp("attn.tp_ag", CollectiveOp::all_gather, s_.gathered_bytes, {norm});
      int qkv = -1;
      if (model_.mla) {
        const MlaSpec& mla = *model_.mla;
        const std::int64_t heads = model_.num_attention_heads / config_.tp;
        const std::int64_t qk = mla.qk_head_dim + mla.qk_pos_emb_head_dim;
        int q = -1;
        if (mla.q_lora_rank > 0) {
          q = linear("attn.q_down", rows, mla.q_lora_rank, h, {x}, dtype);
          q = linear("attn.q_up", rows, heads * qk, mla.q_lora_rank, {q}, dtype);
        } else {
          q = linear("attn.q", rows, heads * qk, h, {x}, dtype);
        }
        int kv =
            linear("attn.kv_down", rows, mla.kv_lora_rank + mla.qk_pos_emb_head_dim, h, {x}, dtype);
        kv = linear("attn.kv_up", rows, heads * (mla.qk_head_dim + mla.v_head_dim),
                    mla.kv_lora_rank, {kv}, dtype);
        qkv = std::max(q, kv);
      } else {
        qkv = linear("attn.qkv", rows, s_.qkv_n, h, {x}, dtype);
      }
      const int core = core_attention(qkv);
      const int proj = linear("attn.proj", rows, h, s_.output_k, {core}, dtype);
      const int rs = tp("attn.tp_rs", CollectiveOp::reduce_scatter, s_.gathered_bytes, {proj});
      return memory("attn.residual", s_.shard_bytes * 3, {rs, input});
    }
    const int residual = memory("attn.residual", s_.shard_bytes * 2, {input});
    const int gathered = tp("attn.tp_rs", CollectiveOp::all_gather, s_.gathered_bytes, {residual});
    const int proj = linear("attn.proj", rows, h, s_.output_k, {gathered}, dtype);
    const int core = core_attention(proj);
    Deps qkv;
    if (model_.mla) {
      const MlaSpec& mla = *model_.mla;
      const std::int64_t heads = model_.num_attention_heads / config_.tp;
      const std::int64_t qk = mla.qk_head_dim + mla.qk_pos_emb_head_dim;
      const int kv_up = linear("attn.kv_up", rows, heads * (mla.qk_head_dim + mla.v_head_dim),
                               mla.kv_lora_rank, {core}, dtype);
      qkv.push_back(linear("attn.kv_down", rows, mla.kv_lora_rank + mla.qk_pos_emb_head_dim, h,
                           {kv_up}, dtype));
      if (mla.q_lora_rank > 0) {
        const int q_up = linear("attn.q_up", rows, heads * qk, mla.q_lora_rank, {core}, dtype);
        qkv.push_back(linear("attn.q_down", rows, mla.q_lora_rank, h, {q_up}, dtype));
      } else {
        qkv.push_back(linear("attn.q", rows, heads * qk, h, {core}, dtype));
      }
    } else {
      qkv.push_back(linear("attn.qkv", rows, s_.qkv_n, h, {core}, dtype));
    }
    const int rs = tp("attn.tp_ag", CollectiveOp::reduce_scatter, s_.gathered_bytes, qkv);
    return memory("attn.norm", s_.shard_bytes * 3, {rs});
  }

  // --- MLPs (layer_costs tensor_parallel_mlp and routed_experts) -----------------------------

  // The dense MLP or the shared experts, without norm or residual (their callers add those).
  int tensor_parallel_mlp(const std::string& name, std::int64_t ffn, int input) {
    const std::int64_t rows = s_.rows;
    const std::int64_t ffn_local = ffn / config_.tp;
    const double activation_bytes = as_double(rows * (s_.gated + 1) * ffn_local) * kBf16Bytes;
    const double tp_bytes = as_double(rows * s_.h) * kBf16Bytes;
    const GemmDtype dtype = s_.linear_dtype;
    if (!backward_) {
      const int x = tp(name + ".tp_ag", CollectiveOp::all_gather, tp_bytes, {input});
      const int fc1 = linear(name + ".fc1", rows, s_.gated * ffn_local, s_.h, {x}, dtype);
      const int act = memory(name + ".act", activation_bytes, {fc1});
      const int fc2 = linear(name + ".fc2", rows, s_.h, ffn_local, {act}, dtype);
      return tp(name + ".tp_rs", CollectiveOp::reduce_scatter, tp_bytes, {fc2});
    }
    const int x = tp(name + ".tp_rs", CollectiveOp::all_gather, tp_bytes, {input});
    const int fc2 = linear(name + ".fc2", rows, s_.h, ffn_local, {x}, dtype);
    const int act = memory(name + ".act", activation_bytes * 1.5, {fc2});
    const int fc1 = linear(name + ".fc1", rows, s_.gated * ffn_local, s_.h, {act}, dtype);
    return tp(name + ".tp_ag", CollectiveOp::reduce_scatter, tp_bytes, {fc1});
  }

  int router(int input) {
    if (!backward_) {
      const int logits = gemm("moe.router", {.m = s_.sequence_shard, .n = s_.experts, .k = s_.h},
                              {input}, forward_phase_);
      const int topk =
          memory("moe.topk", s_.router_bytes, {logits}, router_forward_kernels(plan_.options));
      return collective("moe.aux_loss_ar", families_.tp_cp, Stream::tp_comm,
                        CollectiveOp::all_reduce, as_double(s_.experts) * kFp32Bytes, {topk});
    }
    const int topk = memory("moe.topk", s_.router_bytes, {input}, kRouterBackwardKernels);
    return linear("moe.router", s_.sequence_shard, s_.experts, s_.h, {topk}, GemmDtype::bf16);
  }

  // What the MoE layer being lowered moves and computes on this rank: the balanced averages of
  // layer_shapes, or — with routed experts — the rows of this rank's place in the ETP×EP group.
  struct MoeRows {
    double rows_sent = 0;     // dispatched: the whole send buffer of the dispatch all-to-all
    double rows_received = 0; // received, and sent back by the combine
    double rows_computed = 0; // by the local experts, after the ETP all-gather
    std::int64_t rows_per_local_expert = 0;
    // Routed alltoall dispatcher: rows to and from each EP peer (the all_to_all_v splits).
    std::vector<double> rows_to_peer, rows_from_peer;
  };

  MoeRows moe_rows(std::int64_t layer, std::int64_t micro_batch) const {
    MoeRows rows{.rows_sent = s_.rows_sent,
                 .rows_received = s_.rows_sent,
                 .rows_computed = s_.rows_computed,
                 .rows_per_local_expert = s_.rows_per_local_expert,
                 .rows_to_peer = {},
                 .rows_from_peer = {}};
    if (loads_ == nullptr)
      return rows;
    const std::optional<ExpertLoad> load = loads_->at(layer, micro_batch, expert_rank_);
    if (!load)
      return rows;
    rows.rows_computed = as_double(load->rows_computed);
    // A grouped GEMM of equal problems: the local experts' rows averaged, rounded up.
    rows.rows_per_local_expert = (load->rows_computed + s_.local_experts - 1) / s_.local_experts;
    if (load->rows_to_peer.empty())
      return rows; // allgather: what moves does not depend on the routing
    rows.rows_sent = as_double(load->rows_sent);
    rows.rows_received = as_double(load->rows_received);
    for (const std::int64_t peer_rows : load->rows_to_peer)
      rows.rows_to_peer.push_back(as_double(peer_rows));
    for (const std::int64_t peer_rows : load->rows_from_peer)
      rows.rows_from_peer.push_back(as_double(peer_rows));
    return rows;
  }

  // Permute, unpermute and their gradients read and write every dispatched row once.
  double permute_bytes(const MoeRows& rows) const { return rows.rows_sent * s_.token_bytes * 2; }

  // An EP all-to-all of `rows` rows: all_to_all under balanced routing, all_to_all_v with the
  // routed split otherwise.
  int ep_all_to_all(const std::string& op, double rows, const std::vector<double>& rows_per_peer,
                    double bytes_per_row, const Deps& deps) {
    if (rows_per_peer.empty()) {
      return collective(op, families_.ep, Stream::ep_comm, CollectiveOp::all_to_all,
                        rows * bytes_per_row, deps);
    }
    std::vector<double> split;
    split.reserve(rows_per_peer.size());
    double bytes = 0;
    for (const double peer_rows : rows_per_peer) {
      split.push_back(peer_rows * bytes_per_row);
      bytes += split.back();
    }
    return collective(op, families_.ep, Stream::ep_comm, CollectiveOp::all_to_all_v, bytes, deps,
                      std::move(split));
  }

  // The experts between dispatch and combine: ETP all-gather, sort by local expert, grouped fc1,
  // activation, grouped fc2, sort back, ETP reduce-scatter (backward: the same in reverse).
  int experts(int input, const MoeRows& rows) {
    const bool alltoall = plan_.options.dispatcher == Dispatcher::alltoall;
    const bool sort = alltoall && s_.local_experts > 1 && config_.ep > 1;
    const int etp = alltoall ? families_.etp : -1;
    const double gathered = rows.rows_computed * s_.token_bytes;
    const double sort_bytes = rows.rows_computed * s_.token_bytes * 2;
    const double activation_bytes =
        rows.rows_computed * as_double((s_.gated + 1) * s_.expert_ffn_local) * kBf16Bytes;
    const std::int64_t m = rows.rows_per_local_expert;
    const std::int64_t groups = s_.local_experts;
    const GemmDtype dtype = s_.linear_dtype;
    // Backward: the gradient of the reduce-scatter is an all-gather and vice versa.
    int x =
        collective("moe.etp_ag", etp, Stream::tp_comm, CollectiveOp::all_gather, gathered, {input});
    if (sort)
      x = memory("moe.sort", sort_bytes, {x});
    if (!backward_) {
      x = linear("moe.fc1", m, s_.gated * s_.expert_ffn_local, s_.h, {x}, dtype, groups);
      x = memory("moe.act", activation_bytes, {x});
      x = linear("moe.fc2", m, s_.h, s_.expert_ffn_local, {x}, dtype, groups);
    } else {
      x = linear("moe.fc2", m, s_.h, s_.expert_ffn_local, {x}, dtype, groups);
      x = memory("moe.act", activation_bytes * 1.5, {x});
      x = linear("moe.fc1", m, s_.gated * s_.expert_ffn_local, s_.h, {x}, dtype, groups);
    }
    if (sort)
      x = memory("moe.unsort", sort_bytes, {x});
    return collective("moe.etp_rs", etp, Stream::tp_comm, CollectiveOp::reduce_scatter, gathered,
                      {x});
  }

  // --- decoder layers in segments -----------------------------------------------------------

  // The segments of a layer pass in Megatron's combined 1F1B (model_chunk_schedule_plan.py
  // TransformerLayerSchedulePlan): attention with the router and the dispatch preprocessing, the
  // dispatch all-to-all, the experts, the combine all-to-all, and the unpermute and residual
  // after it. A forward pass runs them in this order, a backward pass in reverse. A dense layer
  // is lowered whole in its attention segment.
  enum class Segment { attention, dispatch, experts, combine, post_combine };

  // One decoder layer's forward or backward pass of one micro-batch, and the ids its segments
  // hand each other.
  struct LayerPass {
    std::int64_t micro_batch = 0;
    std::int64_t layer = 0;
    bool moe = false;
    bool backward = false;
    Phase forward_phase = Phase::forward; // recompute for the forward that full recompute reruns
    std::string scope;
    MoeRows rows;
    int input = -1;
    int output = -1;
    int attention = -1, shared = -1, norm = -1, topk = -1, permute = -1, counts = -1;
    int x = -1, probs = -1, probs_grad = -1;
  };

  LayerPass layer_pass(std::int64_t layer, bool moe, std::int64_t micro_batch, bool backward,
                       int input, Phase forward_phase = Phase::forward) const {
    LayerPass pass{.micro_batch = micro_batch,
                   .layer = layer,
                   .moe = moe,
                   .backward = backward,
                   .forward_phase = forward_phase,
                   .scope = "layer" + std::to_string(layer),
                   .rows = {},
                   .input = input};
    if (moe)
      pass.rows = moe_rows(layer, micro_batch);
    return pass;
  }

  void lower_segment(LayerPass& pass, Segment segment) {
    micro_batch_ = static_cast<int>(pass.micro_batch);
    layer_ = static_cast<int>(pass.layer);
    scope_ = pass.scope;
    backward_ = pass.backward;
    forward_phase_ = pass.forward_phase;
    if (pass.backward)
      backward_segment(pass, segment);
    else
      forward_segment(pass, segment);
    layer_ = -1;
    forward_phase_ = Phase::forward;
  }

  void forward_segment(LayerPass& p, Segment segment) {
    const bool alltoall = plan_.options.dispatcher == Dispatcher::alltoall;
    const double group = as_double(config_.etp * config_.ep);
    switch (segment) {
    case Segment::attention:
      p.attention = attention_block(p.input);
      if (!p.moe) {
        p.output = dense_mlp_block(p.attention);
        return;
      }
      p.norm = memory("moe.norm", s_.shard_bytes * 2, {p.attention});
      if (model_.moe.shared_expert_intermediate_size > 0) {
        p.shared = tensor_parallel_mlp("shared_expert", model_.moe.shared_expert_intermediate_size,
                                       p.norm);
      }
      p.topk = router(p.norm);
      p.probs = p.topk;
      if (alltoall) {
        p.permute = memory("moe.permute", permute_bytes(p.rows), {p.norm, p.topk});
        p.counts =
            collective("moe.counts_ag", families_.etp_ep, Stream::ep_comm, CollectiveOp::all_gather,
                       as_double(config_.etp * config_.ep * s_.experts) * kInt64Bytes, {p.topk});
      }
      return;
    case Segment::dispatch:
      if (!p.moe)
        return;
      if (alltoall) {
        p.x = ep_all_to_all("moe.dispatch", p.rows.rows_sent, p.rows.rows_to_peer, s_.token_bytes,
                            {p.permute, p.counts});
        p.probs = ep_all_to_all("moe.dispatch_probs", p.rows.rows_sent, p.rows.rows_to_peer,
                                kFp32Bytes, {p.topk, p.counts});
      } else {
        p.x = collective("moe.gather", families_.etp_ep, Stream::ep_comm, CollectiveOp::all_gather,
                         group * as_double(s_.sequence_shard) *
                             (s_.token_bytes + as_double(s_.experts) * kBf16Bytes),
                         {p.norm, p.topk});
        p.x = memory("moe.permute", permute_bytes(p.rows), {p.x});
      }
      return;
    case Segment::experts:
      if (p.moe)
        p.x = experts(p.x, p.rows);
      return;
    case Segment::combine:
      if (p.moe && alltoall) {
        p.x = ep_all_to_all("moe.combine", p.rows.rows_received, p.rows.rows_from_peer,
                            s_.token_bytes, {p.x});
      }
      return;
    case Segment::post_combine: {
      if (!p.moe)
        return;
      int x = memory("moe.unpermute", permute_bytes(p.rows), {p.x, p.probs});
      x = memory("moe.unpermute_add", permute_bytes(p.rows), {x});
      if (!alltoall) {
        x = collective("moe.scatter", families_.etp_ep, Stream::ep_comm,
                       CollectiveOp::reduce_scatter,
                       group * as_double(s_.sequence_shard) * s_.token_bytes, {x});
      }
      p.output = memory("moe.residual", s_.shard_bytes * 3, {x, p.shared, p.attention});
      return;
    }
    }
  }

  // The backward of each segment; the gradient of an all-to-all runs the other way, so the
  // backward combine sends what the forward dispatch sent and vice versa.
  void backward_segment(LayerPass& p, Segment segment) {
    const bool alltoall = plan_.options.dispatcher == Dispatcher::alltoall;
    const double group = as_double(config_.etp * config_.ep);
    switch (segment) {
    case Segment::post_combine: {
      if (!p.moe)
        return;
      const int residual = memory("moe.residual", s_.shard_bytes * 2, {p.input});
      if (model_.moe.shared_expert_intermediate_size > 0) {
        p.shared = tensor_parallel_mlp("shared_expert", model_.moe.shared_expert_intermediate_size,
                                       residual);
      }
      int x = residual;
      if (!alltoall) {
        x = collective("moe.scatter", families_.etp_ep, Stream::ep_comm, CollectiveOp::all_gather,
                       group * as_double(s_.sequence_shard) *
                           (s_.token_bytes + as_double(s_.experts) * kBf16Bytes),
                       {x});
      }
      x = memory("moe.unpermute_add", permute_bytes(p.rows), {x});
      p.x = memory("moe.unpermute", permute_bytes(p.rows), {x});
      p.probs_grad = memory("moe.probs_grad", permute_bytes(p.rows), {p.x});
      p.probs = p.probs_grad;
      return;
    }
    case Segment::combine:
      if (p.moe && alltoall) {
        p.x = ep_all_to_all("moe.combine", p.rows.rows_sent, p.rows.rows_to_peer, s_.token_bytes,
                            {p.x});
      }
      return;
    case Segment::experts:
      if (p.moe)
        p.x = experts(p.x, p.rows);
      return;
    case Segment::dispatch:
      if (!p.moe)
        return;
      if (alltoall) {
        p.x = ep_all_to_all("moe.dispatch", p.rows.rows_received, p.rows.rows_from_peer,
                            s_.token_bytes, {p.x});
        p.probs = ep_all_to_all("moe.dispatch_probs", p.rows.rows_received, p.rows.rows_from_peer,
                                kFp32Bytes, {p.probs_grad});
      } else {
        p.x = memory("moe.permute", permute_bytes(p.rows), {p.x});
        p.x = collective("moe.gather", families_.etp_ep, Stream::ep_comm,
                         CollectiveOp::reduce_scatter,
                         group * as_double(s_.sequence_shard) * s_.token_bytes, {p.x});
      }
      return;
    case Segment::attention: {
      if (!p.moe) {
        p.output = attention_block(dense_mlp_block(p.input));
        return;
      }
      // The permute's gradient waits for the dispatch all-to-all: it opens this segment, so that
      // compute of the other micro-batch can run during that all-to-all.
      if (alltoall)
        p.x = memory("moe.permute", permute_bytes(p.rows), {p.x});
      const int router_grad = router(p.probs);
      const int norm = memory("moe.norm", s_.shard_bytes * 3, {p.x, router_grad, p.shared});
      p.output = attention_block(norm);
      return;
    }
    }
  }

  static constexpr std::array kForwardSegments = {Segment::attention, Segment::dispatch,
                                                  Segment::experts, Segment::combine,
                                                  Segment::post_combine};
  static constexpr std::array kBackwardSegments = {Segment::post_combine, Segment::combine,
                                                   Segment::experts, Segment::dispatch,
                                                   Segment::attention};

  void lower_whole(LayerPass& pass) {
    for (const Segment segment : pass.backward ? kBackwardSegments : kForwardSegments)
      lower_segment(pass, segment);
  }

  // Megatron's combined 1F1B pairing of a forward and a backward layer pass
  // (TransformerLayerSchedulePlan.run), each segment's communication beside the other pass's
  // compute:
  //   ep_comm: combine_bwd      | dispatch_fwd → dispatch_bwd | combine_fwd
  //   compute: attention_fwd    | experts_bwd  → experts_fwd  | attention_bwd
  // Either pass may be missing when the two chunks hold different numbers of layers.
  void lower_pair(std::optional<LayerPass>& forward_pass, std::optional<LayerPass>& backward_pass) {
    auto run = [this](std::optional<LayerPass>& pass, Segment segment) {
      if (pass)
        lower_segment(*pass, segment);
    };
    run(backward_pass, Segment::post_combine);
    run(backward_pass, Segment::combine);
    run(forward_pass, Segment::attention);
    run(forward_pass, Segment::dispatch);
    run(backward_pass, Segment::experts);
    run(backward_pass, Segment::dispatch);
    run(forward_pass, Segment::experts);
    run(forward_pass, Segment::combine);
    run(backward_pass, Segment::attention);
    run(forward_pass, Segment::post_combine);
  }

  // The dense MLP with its pre-MLP norm and residual add (the MoE path has its own).
  int dense_mlp_block(int input) {
    if (!backward_) {
      const int norm = memory("mlp.norm", s_.shard_bytes * 2, {input});
      const int y = tensor_parallel_mlp("mlp", model_.ffn_hidden_size, norm);
      return memory("mlp.residual", s_.shard_bytes * 3, {y, input});
    }
    const int residual = memory("mlp.residual", s_.shard_bytes * 2, {input});
    const int y = tensor_parallel_mlp("mlp", model_.ffn_hidden_size, residual);
    return memory("mlp.norm", s_.shard_bytes * 3, {y});
  }

  // One decoder layer's pass, whole; full recompute reruns its forward when its backward begins.
  int decoder_layer(std::int64_t layer, bool moe, std::int64_t micro_batch, bool backward,
                    int input) {
    int start = input;
    if (backward && plan_.options.recompute == Recompute::full) {
      LayerPass recompute = layer_pass(layer, moe, micro_batch, false, input, Phase::recompute);
      lower_whole(recompute);
      start = std::max(input, recompute.output);
    }
    LayerPass pass = layer_pass(layer, moe, micro_batch, backward, start);
    lower_whole(pass);
    return pass.output;
  }

  // VocabParallelEmbedding: a lookup, then a reduce-scatter over TP into the sequence shard.
  int embedding(int input) {
    scope_ = "embedding";
    const double bytes = s_.gathered_bytes;
    if (!backward_) {
      const int lookup = memory("lookup", bytes * 2, {input});
      return tp("tp_rs", CollectiveOp::reduce_scatter, bytes, {lookup});
    }
    const int gathered = tp("tp_rs", CollectiveOp::all_gather, bytes, {input});
    return memory("lookup", bytes * 2, {gathered});
  }

  // Final norm, SP all-gather, logits (bf16), vocab-parallel cross entropy.
  int output_layer(const std::string& scope, int input) {
    scope_ = scope;
    const std::int64_t vocab_local = padded_vocab_size(model_.vocab_size, config_.tp) / config_.tp;
    const double logits_bytes = as_double(s_.rows * vocab_local) * kFp32Bytes;
    if (!backward_) {
      const int norm = memory("norm", s_.shard_bytes * 2, {input});
      const int x = tp("tp_ag", CollectiveOp::all_gather, s_.gathered_bytes, {norm});
      const int logits =
          gemm("logits", {.m = s_.rows, .n = vocab_local, .k = s_.h}, {x}, forward_phase_);
      return memory("loss", logits_bytes * 3, {logits});
    }
    const int loss = memory("loss", logits_bytes * 2, {input});
    const int logits = linear("logits", s_.rows, vocab_local, s_.h, {loss}, GemmDtype::bf16);
    const int rs = tp("tp_ag", CollectiveOp::reduce_scatter, s_.gathered_bytes, {logits});
    return memory("norm", s_.shard_bytes * 3, {rs});
  }

  // The embedding lives on chunk 0 of stage 0, the output layer on the last chunk of the last
  // stage.
  bool first_stage(std::int64_t chunk) const { return pp_rank_ == 0 && chunk == 0; }
  bool last_stage(std::int64_t chunk) const {
    return pp_rank_ == config_.pp - 1 && chunk == config_.vpp - 1;
  }
  std::size_t chunk_index(std::int64_t mb, std::int64_t chunk) const {
    return static_cast<std::size_t>(mb * config_.vpp + chunk);
  }

  void enter_pass(std::int64_t mb, bool backward) {
    micro_batch_ = static_cast<int>(mb);
    layer_ = -1;
    backward_ = backward;
    forward_phase_ = Phase::forward;
  }

  // The head of a forward pass (the embedding) and its tail (the output layer and MTP heads).
  int forward_head(std::int64_t mb, int input, std::int64_t chunk) {
    enter_pass(mb, false);
    return first_stage(chunk) ? embedding(input) : input;
  }
  int forward_tail(std::int64_t mb, int hidden, std::int64_t chunk) {
    enter_pass(mb, false);
    int x = hidden;
    if (last_stage(chunk)) {
      x = output_layer("output", hidden);
      // Multi-token prediction heads (costmodel: one decoder layer and one output layer each).
      for (std::int64_t mtp = 0; mtp < model_.mtp_num_layers; ++mtp) {
        const int layer = decoder_layer(model_.num_layers + mtp,
                                        model_.is_moe_layer(model_.num_layers - 1), mb, false, x);
        enter_pass(mb, false);
        x = output_layer("mtp" + std::to_string(mtp) + ".output", layer);
      }
    }
    forward_end_[chunk_index(mb, chunk)] = x;
    return x;
  }
  // The head of a backward pass (the output layer and MTP heads) and its tail (the embedding).
  int backward_head(std::int64_t mb, int gradient, std::int64_t chunk) {
    enter_pass(mb, true);
    int x = std::max(gradient, forward_end_[chunk_index(mb, chunk)]);
    if (last_stage(chunk)) {
      for (std::int64_t mtp = model_.mtp_num_layers - 1; mtp >= 0; --mtp) {
        x = output_layer("mtp" + std::to_string(mtp) + ".output", x);
        x = decoder_layer(model_.num_layers + mtp, model_.is_moe_layer(model_.num_layers - 1), mb,
                          true, x);
        enter_pass(mb, true);
      }
      x = output_layer("output", x);
    }
    return x;
  }
  int backward_tail(std::int64_t mb, int x, std::int64_t chunk) {
    enter_pass(mb, true);
    if (first_stage(chunk))
      x = embedding(x);
    backward_ = false;
    return x;
  }

  LayerRange chunk_layers(std::int64_t chunk) const {
    return layers_of_stage(model_.num_layers, config_.pp, config_.vpp, pp_rank_, chunk);
  }

  int forward(std::int64_t mb, int input, std::int64_t chunk = 0) {
    const LayerRange layers = chunk_layers(chunk);
    int x = forward_head(mb, input, chunk);
    for (std::int64_t layer = layers.first; layer < layers.end; ++layer)
      x = decoder_layer(layer, model_.is_moe_layer(layer), mb, false, x);
    return forward_tail(mb, x, chunk);
  }

  int backward(std::int64_t mb, int gradient, std::int64_t chunk = 0) {
    const LayerRange layers = chunk_layers(chunk);
    int x = backward_head(mb, gradient, chunk);
    for (std::int64_t layer = layers.end - 1; layer >= layers.first; --layer)
      x = decoder_layer(layer, model_.is_moe_layer(layer), mb, true, x);
    return backward_tail(mb, x, chunk);
  }

  // Megatron's combined 1F1B step (combined_1f1b.py): the forward of one micro-batch and the
  // backward of another, forward layer i paired with backward layer n−1−i (lower_pair), so that
  // each pass's EP all-to-alls run while the other computes. Returns both passes' outputs.
  std::pair<int, int> combined(std::int64_t forward_mb, int input, std::int64_t forward_chunk,
                               std::int64_t backward_mb, int gradient,
                               std::int64_t backward_chunk) {
    const LayerRange forward_layers = chunk_layers(forward_chunk);
    const LayerRange backward_layers = chunk_layers(backward_chunk);
    int f = forward_head(forward_mb, input, forward_chunk);
    int b = backward_head(backward_mb, gradient, backward_chunk);
    const std::int64_t forward_count = forward_layers.end - forward_layers.first;
    const std::int64_t backward_count = backward_layers.end - backward_layers.first;
    for (std::int64_t i = 0; i < std::max(forward_count, backward_count); ++i) {
      std::optional<LayerPass> forward_pass, backward_pass;
      if (i < forward_count) {
        const std::int64_t layer = forward_layers.first + i;
        forward_pass = layer_pass(layer, model_.is_moe_layer(layer), forward_mb, false, f);
      }
      if (i < backward_count) {
        const std::int64_t layer = backward_layers.end - 1 - i;
        backward_pass = layer_pass(layer, model_.is_moe_layer(layer), backward_mb, true, b);
      }
      lower_pair(forward_pass, backward_pass);
      if (forward_pass)
        f = forward_pass->output;
      if (backward_pass)
        b = backward_pass->output;
    }
    f = forward_tail(forward_mb, f, forward_chunk);
    b = backward_tail(backward_mb, b, backward_chunk);
    return {f, b};
  }

  // combined_1f1b_schedule_for_no_pipelining: F1 | B1+F2 | B2+F3 | … | Bn, two micro-batches'
  // activations live at once.
  void lower_combined_without_pipelining(std::int64_t micro_batches) {
    forward(0, -1);
    for (std::int64_t mb = 1; mb < micro_batches; ++mb)
      combined(mb, -1, 0, mb - 1, -1, 0);
    data_parallel_tail(backward(micro_batches - 1, -1));
  }

  // --- pipeline transfers -------------------------------------------------------------------

  // Forward activations go to stage r+1, gradients to r−1: Megatron's p2p tensor
  // [s/CP/(TP with SP), mbs, h] in bf16.
  int transfer(OpKind kind, std::int64_t mb, bool gradient, int dep) {
    const bool to_next = (kind == OpKind::send) != gradient;
    const std::int64_t peer = to_next ? pp_rank_ + 1 : pp_rank_ - 1;
    if (peer < 0 || peer >= config_.pp)
      return -1;
    return transfer(kind, mb, gradient, peer, pipeline_tag(mb, gradient), dep);
  }
  int transfer(OpKind kind, std::int64_t mb, bool gradient, std::int64_t peer, int tag, int dep) {
    micro_batch_ = static_cast<int>(mb);
    layer_ = -1;
    scope_ = "pp";
    const std::string op =
        std::string(kind == OpKind::send ? "send" : "recv") + (gradient ? "_backward" : "_forward");
    return emit(
        op, kind, Stream::pp_comm,
        PeerTransfer{
            .group_id = families_.pp, .peer_index = peer, .bytes = s_.shard_bytes, .tag = tag},
        {dep}, gradient ? Phase::backward_dgrad : Phase::forward);
  }
  // A gradient's backward also needs the micro-batch's saved forward; the recv carries that dep.
  int receive(std::int64_t mb, bool gradient) {
    return transfer(OpKind::recv, mb, gradient,
                    gradient ? forward_end_[static_cast<std::size_t>(mb)] : -1);
  }
  void send(std::int64_t mb, bool gradient, int dep) { transfer(OpKind::send, mb, gradient, dep); }

  // A send and a receive Megatron posts together. In one stream, even stages send first and odd
  // stages receive first (Megatron p2p_communication._p2p_ops), so neighbours never both wait.
  int exchange(std::int64_t send_mb, bool send_gradient, int dep, std::int64_t recv_mb,
               bool recv_gradient) {
    if (pp_rank_ % 2 == 0) {
      send(send_mb, send_gradient, dep);
      return receive(recv_mb, recv_gradient);
    }
    const int received = receive(recv_mb, recv_gradient);
    send(send_mb, send_gradient, dep);
    return received;
  }

  // --- data parallelism and the optimizer ---------------------------------------------------

  // Gradient reduce-scatter (fp32) and parameter all-gather (bf16) in Megatron DDP buckets:
  // dense parameters over DP·CP, routed experts over EDP.
  std::vector<int> buckets(const std::string& op, int family, CollectiveOp kind, double parameters,
                           double bytes_per_parameter, std::int64_t data_parallel_size,
                           const Deps& deps) {
    std::vector<int> ids;
    if (family < 0 || parameters <= 0)
      return ids;
    const double bucket = data_parallel_bucket_parameters(data_parallel_size);
    double left = parameters;
    for (int index = 0; left > 0; ++index) {
      const double size = std::min(bucket, left);
      ids.push_back(collective(op + std::to_string(index), family, Stream::dp_comm, kind,
                               size * bytes_per_parameter, deps));
      left -= size;
    }
    return ids;
  }

  void data_parallel_tail(int last_backward) {
    micro_batch_ = -1;
    layer_ = -1;
    backward_ = false;
    forward_phase_ = Phase::optimizer;
    scope_ = "optimizer";
    const MemoryBreakdown memory_held =
        memory_per_gpu(model_, config_, plan_.training, plan_.options, pp_rank_);
    const std::int64_t dense_dp = config_.dp * config_.cp;
    Deps reduced = {last_backward};
    for (const int id :
         buckets("grad_rs_dense", families_.dp_cp, CollectiveOp::reduce_scatter,
                 memory_held.dense_parameters, kFp32Bytes, dense_dp, {last_backward}))
      reduced.push_back(id);
    for (const int id :
         buckets("grad_rs_expert", families_.edp, CollectiveOp::reduce_scatter,
                 memory_held.expert_parameters, kFp32Bytes, config_.edp, {last_backward}))
      reduced.push_back(id);
    const double shard = memory_held.dense_parameters / as_double(dense_dp) +
                         memory_held.expert_parameters / as_double(config_.edp);
    const int step = memory("adam", shard * kOptimizerBytesPerParameter, reduced);
    buckets("param_ag_dense", families_.dp_cp, CollectiveOp::all_gather,
            memory_held.dense_parameters, kBf16Bytes, dense_dp, {step});
    buckets("param_ag_expert", families_.edp, CollectiveOp::all_gather,
            memory_held.expert_parameters, kBf16Bytes, config_.edp, {step});
    forward_phase_ = Phase::forward;
  }

  const Plan& plan_;
  const ModelSpec& model_;
  const ParallelConfig& config_;
  const Families& families_;
  const LayerShapes& s_;
  const std::int64_t pp_rank_;
  RankProgram& program_;
  const ExpertLoads* loads_; // null: balanced routing
  const ExpertRank expert_rank_;

  std::vector<int> forward_end_; // by micro_batch·vpp + chunk
  // What the ops being emitted belong to.
  int micro_batch_ = -1;
  int layer_ = -1;
  std::string scope_;
  bool backward_ = false;
  bool gemm_pass_ = false;
  Phase forward_phase_ = Phase::forward; // forward, recompute (full recompute) or optimizer
};

} // namespace

double data_parallel_bucket_parameters(std::int64_t data_parallel_size) {
  return std::max(40e6, 1e6 * as_double(data_parallel_size));
}

int pipeline_tag(std::int64_t micro_batch, bool backward, std::int64_t chunk, std::int64_t vpp) {
  return static_cast<int>(2 * (micro_batch * vpp + chunk) + (backward ? 1 : 0));
}

namespace {

// Every rank's place in its ETP×EP group: its position in its group of the etp and ep families
// (0 where the family has one rank per group and was left out).
std::vector<ExpertRank> expert_ranks(const StepProgram& program, const Families& families) {
  std::vector<ExpertRank> places(static_cast<std::size_t>(program.world_size));
  auto fill = [&](int family_id, std::int64_t ExpertRank::*coordinate) {
    const CommGroup* family = find_comm_group(program, family_id);
    if (family == nullptr)
      return;
    for (const auto& group : family->members) {
      for (std::size_t position = 0; position < group.size(); ++position)
        places[static_cast<std::size_t>(group[position])].*coordinate =
            static_cast<std::int64_t>(position);
    }
  };
  fill(families.etp, &ExpertRank::etp);
  fill(families.ep, &ExpertRank::ep);
  return places;
}

std::string schedule_name(const Plan& plan) {
  const ParallelConfig& config = plan.parallel;
  const std::string schedule = config.vpp > 1  ? "interleaved_1f1b"
                               : config.pp > 1 ? "1f1b"
                                               : "no_pipelining";
  return plan.options.overlap_moe_expert_parallel_comm ? "combined_" + schedule : schedule;
}

// Lowers every stage; with `loads`, once per place in the ETP×EP group, ranks whose programs come
// out equal sharing one.
StepProgram lower(const Plan& plan, const ExpertLoads* loads) {
  const ParallelConfig& config = plan.parallel;
  StepProgram program;
  program.world_size = config.world_size();
  const Families families = add_families(config, plan.options.folding, program.groups);
  const LayerShapes shapes = layer_shapes(plan);
  const std::vector<ExpertRank> places =
      loads ? expert_ranks(program, families) : std::vector<ExpertRank>{};

  // pp is the slowest dimension of both layouts: stage r holds one contiguous block of ranks.
  const std::int64_t stage_ranks = program.world_size / config.pp;
  const std::vector<std::vector<StageEvent>> events =
      config.vpp > 1
          ? interleaved_events(config.pp, config.vpp, num_micro_batches(config, plan.training),
                               plan.options.overlap_moe_expert_parallel_comm)
          : std::vector<std::vector<StageEvent>>{};
  auto lower_stage = [&](std::int64_t stage, RankProgram& rank_program, ExpertRank place) {
    StageLowering lowering(plan, families, shapes, stage, rank_program, loads, place);
    if (config.vpp > 1)
      lowering.lower_interleaved(events[static_cast<std::size_t>(stage)]);
    else
      lowering.lower();
  };
  program.programs.reserve(static_cast<std::size_t>(config.pp));
  for (std::int64_t stage = 0; stage < config.pp; ++stage) {
    const std::int64_t first_rank = stage * stage_ranks;
    if (loads == nullptr) {
      RankProgram& rank_program = program.programs.emplace_back();
      rank_program.ranks.resize(static_cast<std::size_t>(stage_ranks));
      std::iota(rank_program.ranks.begin(), rank_program.ranks.end(), first_rank);
      lower_stage(stage, rank_program, {});
      continue;
    }
    // The stage's ranks by place, places in order of their first rank.
    std::vector<std::pair<ExpertRank, std::vector<std::int64_t>>> by_place;
    for (std::int64_t rank = first_rank; rank < first_rank + stage_ranks; ++rank) {
      const ExpertRank place = places[static_cast<std::size_t>(rank)];
      auto found = std::find_if(by_place.begin(), by_place.end(),
                                [&](const auto& entry) { return entry.first == place; });
      if (found == by_place.end())
        found = by_place.insert(by_place.end(), {place, {}});
      found->second.push_back(rank);
    }
    const std::size_t stage_begin = program.programs.size();
    for (auto& [place, ranks] : by_place) {
      RankProgram lowered{.ranks = std::move(ranks), .ops = {}};
      lower_stage(stage, lowered, place);
      auto same = std::find_if(program.programs.begin() + static_cast<std::ptrdiff_t>(stage_begin),
                               program.programs.end(),
                               [&](const RankProgram& other) { return other.ops == lowered.ops; });
      if (same == program.programs.end()) {
        program.programs.push_back(std::move(lowered));
        continue;
      }
      same->ranks.insert(same->ranks.end(), lowered.ranks.begin(), lowered.ranks.end());
      std::sort(same->ranks.begin(), same->ranks.end());
    }
  }

  program.metadata = {{"model", plan.model.name},
                      {"gpus", plan.gpus},
                      {"parallel", parallel_to_json(config)},
                      {"training", training_to_json(plan.training)},
                      {"micro_batches", num_micro_batches(config, plan.training)},
                      {"schedule", schedule_name(plan)},
                      {"routing", loads ? "simulated" : "balanced"},
                      {"data_parallel_buckets", "megatron ddp: max(40M, 1M*dp) parameters"}};
  if (loads)
    program.metadata["routing_sampled_micro_batches"] = loads->sampled_micro_batches();
  return program;
}

} // namespace

StepProgram lower_plan(const Plan& plan) {
  return lower(plan, nullptr);
}

StepProgram lower_plan(const Plan& plan, const ExpertLoads& loads) {
  const DispatchGeometry& geometry = loads.geometry();
  if (geometry.ep != plan.parallel.ep || geometry.etp != plan.parallel.etp ||
      geometry.num_experts != plan.model.moe.num_experts ||
      geometry.dispatcher != plan.options.dispatcher) {
    throw std::invalid_argument("lower_plan: the dispatch simulation is of another plan");
  }
  if (loads.sampled_micro_batches() < 1 || loads.uniform())
    return lower(plan, nullptr);
  return lower(plan, &loads);
}

} // namespace foldplan
