#include "simulator/lowering.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <numeric>
#include <set>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "models/model_spec.hpp"
#include "parallel/parallel_config.hpp"
#include "simulator/event_simulation.hpp"
#include "tests/simulator/test_plans.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan {
namespace {

using testing_plans::make_plan;

// Mixtral-8x7B on 16 GPUs: TP2 PP2 EP4 (ETP1), DP4, EDP2; GBS 32 → 8 micro-batches.
Plan mixtral_16() {
  return make_plan("mixtral-8x7b", 16, {.tp = 2, .pp = 2, .ep = 4}, 32);
}

int count_ops(const RankProgram& program, OpKind kind, Phase phase) {
  int count = 0;
  for (const Op& op : program.ops)
    count += op.kind == kind && op.phase == phase;
  return count;
}

double gemm_flops(const RankProgram& program) {
  double flops = 0;
  for (const Op& op : program.ops)
    if (op.kind == OpKind::gemm) {
      const auto& g = std::get<GemmShape>(op.shape);
      flops += 2.0 * static_cast<double>(g.groups) * static_cast<double>(g.m) *
               static_cast<double>(g.n) * static_cast<double>(g.k);
    }
  return flops;
}

TEST(Lowering, MixtralProgramValidatesAndSharesOneProgramPerStage) {
  const StepProgram program = lower_plan(mixtral_16());
  EXPECT_NO_THROW(validate_step_program(program));
  EXPECT_EQ(program.world_size, 16);
  ASSERT_EQ(program.programs.size(), 2u);
  std::vector<std::int64_t> first(8), second(8);
  std::iota(first.begin(), first.end(), 0);
  std::iota(second.begin(), second.end(), 8);
  EXPECT_EQ(program.programs[0].ranks, first);
  EXPECT_EQ(program.programs[1].ranks, second);

  std::vector<std::string> names;
  for (const CommGroup& group : program.groups)
    names.push_back(group.name);
  // CP = ETP = 1: no cp or etp family; etp-ep is the EP group itself.
  EXPECT_EQ(names, (std::vector<std::string>{"tp", "dp-cp", "pp", "ep", "etp-ep", "edp"}));
  EXPECT_EQ(program.metadata.at("model"), "mixtral-8x7b");
  EXPECT_EQ(program.metadata.at("gpus"), 16);
  EXPECT_EQ(program.metadata.at("micro_batches"), 8);
}

TEST(Lowering, ForwardGemmCountMatchesHandCount) {
  const StepProgram program = lower_plan(mixtral_16());
  // Per MoE layer: QKV, output projection, router, expert fc1, expert fc2. 16 layers per stage,
  // 8 micro-batches; the last stage adds the logits GEMM per micro-batch.
  EXPECT_EQ(count_ops(program.programs[0], OpKind::gemm, Phase::forward), 16 * 8 * 5);
  EXPECT_EQ(count_ops(program.programs[1], OpKind::gemm, Phase::forward), 16 * 8 * 5 + 8);
  // Every forward GEMM has one dgrad and one wgrad.
  for (const RankProgram& stage : program.programs) {
    const int forward = count_ops(stage, OpKind::gemm, Phase::forward);
    EXPECT_EQ(count_ops(stage, OpKind::gemm, Phase::backward_dgrad), forward);
    EXPECT_EQ(count_ops(stage, OpKind::gemm, Phase::backward_wgrad), forward);
    EXPECT_EQ(count_ops(stage, OpKind::attention, Phase::forward), 16 * 8);
  }
}

TEST(Lowering, GemmFlopsOfAStageMatchHandCount) {
  const Plan plan = mixtral_16();
  ASSERT_EQ(plan.model.hidden_size, 4096);
  ASSERT_EQ(plan.model.moe.ffn_hidden_size, 14336);
  ASSERT_EQ(plan.model.num_query_groups, 8);
  ASSERT_EQ(plan.model.vocab_size, 32000);
  const StepProgram program = lower_plan(plan);
  // Rows b·s/CP = 4096; sequence shard 4096/TP = 2048. QKV: 32·128/2 + 2·(8/2)·128 = 3072.
  // Experts: 8/EP = 2 local, 2048·2/8 rows per expert, ×8 experts = 4096 rows → 2048 per local
  // expert; fc1 width 2·14336.
  const double qkv = 2.0 * 4096 * 3072 * 4096;
  const double proj = 2.0 * 4096 * 4096 * 2048;
  const double router = 2.0 * 2048 * 8 * 4096;
  const double fc1 = 2.0 * 2 * 2048 * 28672 * 4096;
  const double fc2 = 2.0 * 2 * 2048 * 4096 * 14336;
  // Forward + dgrad + wgrad = 3 × forward; 16 layers, 8 micro-batches.
  const double layers = 3 * (qkv + proj + router + fc1 + fc2) * 16 * 8;
  EXPECT_DOUBLE_EQ(gemm_flops(program.programs[0]), layers);
  // Logits: vocab 32000 (a multiple of 128·TP) / TP = 16000 per rank.
  const double logits = 3 * 2.0 * 4096 * 16000 * 4096 * 8;
  EXPECT_DOUBLE_EQ(gemm_flops(program.programs[1]), layers + logits);
}

TEST(Lowering, EverySendHasTheMatchingRecvOnThePeerStageInOrder) {
  const Plan plan = make_plan("mixtral-8x7b", 32, {.tp = 2, .pp = 4, .ep = 4}, 64);
  const StepProgram program = lower_plan(plan);
  validate_step_program(program);
  ASSERT_EQ(program.programs.size(), 4u);
  // (from stage, to stage) → (tag, bytes) in program order.
  using Link = std::pair<std::int64_t, std::int64_t>;
  std::map<Link, std::vector<std::pair<int, double>>> sent, received;
  int sends = 0;
  for (std::int64_t stage = 0; stage < 4; ++stage)
    for (const Op& op : program.programs[static_cast<std::size_t>(stage)].ops) {
      if (op.kind != OpKind::send && op.kind != OpKind::recv)
        continue;
      const auto& transfer = std::get<PeerTransfer>(op.shape);
      EXPECT_EQ(op.stream, Stream::pp_comm);
      EXPECT_EQ(program.groups[static_cast<std::size_t>(transfer.group_id)].name, "pp");
      if (op.kind == OpKind::send) {
        ++sends;
        sent[{stage, transfer.peer_index}].emplace_back(transfer.tag, transfer.bytes);
      } else {
        received[{transfer.peer_index, stage}].emplace_back(transfer.tag, transfer.bytes);
      }
    }
  EXPECT_EQ(sent, received);
  // 3 links, 16 micro-batches, activations forward and gradients back.
  EXPECT_EQ(sends, 3 * 16 * 2);
  // [s/CP/TP, mbs, h] bf16 = 2048 · 4096 · 2.
  EXPECT_DOUBLE_EQ(sent.at({0, 1}).front().second, 2048.0 * 4096 * 2);
}

TEST(Lowering, OneFOneBOrderOnEveryStage) {
  const Plan plan = make_plan("mixtral-8x7b", 32, {.tp = 2, .pp = 4, .ep = 4}, 64);
  const StepProgram program = lower_plan(plan);
  const std::int64_t micro_batches = 16;
  for (std::int64_t stage = 0; stage < 4; ++stage) {
    // The sequence of (micro-batch, backward?) in which passes start on the compute stream.
    std::vector<std::pair<int, bool>> order;
    for (const Op& op : program.programs[static_cast<std::size_t>(stage)].ops) {
      if (op.micro_batch < 0 || op.stream != Stream::compute)
        continue;
      const bool backward = op.phase != Phase::forward;
      if (order.empty() || order.back() != std::pair{op.micro_batch, backward})
        order.emplace_back(op.micro_batch, backward);
    }
    const std::int64_t warmup = 4 - stage - 1;
    std::vector<std::pair<int, bool>> expected;
    for (std::int64_t mb = 0; mb < warmup; ++mb)
      expected.emplace_back(static_cast<int>(mb), false);
    for (std::int64_t i = 0; i < micro_batches - warmup; ++i) {
      expected.emplace_back(static_cast<int>(warmup + i), false);
      expected.emplace_back(static_cast<int>(i), true);
    }
    for (std::int64_t mb = micro_batches - warmup; mb < micro_batches; ++mb)
      expected.emplace_back(static_cast<int>(mb), true);
    EXPECT_EQ(order, expected) << "stage " << stage;
  }
}

TEST(Lowering, DataParallelTailUsesMegatronBuckets) {
  const StepProgram program = lower_plan(mixtral_16());
  for (const RankProgram& stage : program.programs) {
    std::map<std::string, std::pair<int, double>> by_family; // family/op → (ops, bytes)
    int optimizer_steps = 0;
    for (const Op& op : stage.ops) {
      if (op.phase != Phase::optimizer)
        continue;
      EXPECT_EQ(op.micro_batch, -1);
      if (op.kind == OpKind::memory_bound) {
        ++optimizer_steps;
        continue;
      }
      const auto& collective = std::get<CollectiveShape>(op.shape);
      EXPECT_EQ(op.stream, Stream::dp_comm);
      const std::string key = program.groups[static_cast<std::size_t>(collective.group_id)].name +
                              "/" + std::string(collective_op_name(collective.op));
      by_family[key].first += 1;
      by_family[key].second += collective.bytes;
      EXPECT_LE(collective.bytes, 40e6 * 4 + 1); // one bucket of fp32 gradients at most
    }
    EXPECT_EQ(optimizer_steps, 1);
    // fp32 gradients reduce-scattered, bf16 parameters gathered: bytes 2:1, same bucket count.
    for (const char* family : {"dp-cp", "edp"}) {
      const auto& rs = by_family.at(std::string(family) + "/reduce_scatter");
      const auto& ag = by_family.at(std::string(family) + "/all_gather");
      EXPECT_EQ(rs.first, ag.first);
      EXPECT_GT(rs.first, 1);
      EXPECT_DOUBLE_EQ(rs.second, 2 * ag.second);
    }
  }
}

TEST(Lowering, OptionsChangeTheOpsAsTheCostModelDoes) {
  Plan plan = mixtral_16();
  const StepProgram base = lower_plan(plan);
  plan.options.recompute = Recompute::full;
  const StepProgram full = lower_plan(plan);
  validate_step_program(full);
  // Full recompute reruns every layer's forward GEMMs (not the logits) before its backward.
  EXPECT_EQ(count_ops(full.programs[1], OpKind::gemm, Phase::recompute), 16 * 8 * 5);
  plan.options.recompute = Recompute::selective;
  const StepProgram selective = lower_plan(plan);
  EXPECT_EQ(count_ops(selective.programs[0], OpKind::attention, Phase::recompute), 16 * 8);
  EXPECT_EQ(count_ops(selective.programs[0], OpKind::gemm, Phase::recompute), 0);
  plan.options.recompute = Recompute::none;
  plan.options.dispatcher = Dispatcher::allgather;
  const StepProgram allgather = lower_plan(plan);
  validate_step_program(allgather);
  for (const Op& op : allgather.programs[0].ops) {
    if (op.kind == OpKind::collective) {
      EXPECT_NE(std::get<CollectiveShape>(op.shape).op, CollectiveOp::all_to_all) << op.name;
    }
  }
  EXPECT_EQ(gemm_flops(allgather.programs[0]), gemm_flops(base.programs[0]));
}

TEST(Lowering, ContextParallelAndExpertTensorParallelValidate) {
  Plan plan = make_plan("mixtral-8x7b", 32, {.tp = 2, .cp = 2, .pp = 2, .ep = 4, .etp = 2}, 32);
  const StepProgram ring = lower_plan(plan);
  validate_step_program(ring);
  // p2p CP: CP causal blocks per layer and micro-batch.
  EXPECT_EQ(count_ops(ring.programs[0], OpKind::attention, Phase::forward), 16 * 8 * 2);
  plan.options.cp_comm_type = CpCommType::a2a;
  const StepProgram a2a = lower_plan(plan);
  validate_step_program(a2a);
  EXPECT_EQ(count_ops(a2a.programs[0], OpKind::attention, Phase::forward), 16 * 8);
}

// Mixtral-8x7B on 16 GPUs, TP2 PP2 VPP2 EP4: 32 layers in chunks of 8; DP4, so GBS 4·M.
Plan mixtral_16_vpp2(std::int64_t micro_batches) {
  return make_plan("mixtral-8x7b", 16, {.tp = 2, .pp = 2, .vpp = 2, .ep = 4}, 4 * micro_batches);
}

// (micro-batch, chunk, backward?) of the passes on the compute stream, in program order; the chunk
// comes from the layer (8 layers per chunk, chunk v of stage r holds block v·PP + r).
std::vector<std::tuple<int, int, bool>> pass_order(const RankProgram& program, int layers_per_chunk,
                                                   int pp) {
  std::vector<std::tuple<int, int, bool>> order;
  for (const Op& op : program.ops) {
    if (op.micro_batch < 0 || op.layer < 0 || op.stream != Stream::compute)
      continue;
    const std::tuple<int, int, bool> pass{op.micro_batch, op.layer / layers_per_chunk / pp,
                                          op.phase != Phase::forward};
    if (order.empty() || order.back() != pass)
      order.push_back(pass);
  }
  return order;
}

TEST(Lowering, InterleavedMixtralLowersValidatesAndPairsEveryTransfer) {
  const StepProgram program = lower_plan(mixtral_16_vpp2(8));
  validate_step_program(program);
  ASSERT_EQ(program.programs.size(), 2u);
  EXPECT_EQ(program.metadata.at("schedule"), "interleaved_1f1b");
  using Link = std::pair<std::int64_t, std::int64_t>;
  std::map<Link, std::vector<std::pair<int, double>>> sent, received;
  int sends = 0;
  for (std::int64_t stage = 0; stage < 2; ++stage)
    for (const Op& op : program.programs[static_cast<std::size_t>(stage)].ops) {
      if (op.kind != OpKind::send && op.kind != OpKind::recv)
        continue;
      const auto& transfer = std::get<PeerTransfer>(op.shape);
      EXPECT_EQ(op.stream, Stream::pp_comm);
      EXPECT_EQ(program.groups[static_cast<std::size_t>(transfer.group_id)].name, "pp");
      EXPECT_DOUBLE_EQ(transfer.bytes, 2048.0 * 4096 * 2);
      if (op.kind == OpKind::send) {
        ++sends;
        sent[{stage, transfer.peer_index}].emplace_back(transfer.tag, transfer.bytes);
      } else {
        received[{transfer.peer_index, stage}].emplace_back(transfer.tag, transfer.bytes);
      }
    }
  // Tags are unique per link (micro-batch, sender chunk, direction); pairing is by tag.
  for (auto* links : {&sent, &received})
    for (auto& [link, tags] : *links) {
      std::sort(tags.begin(), tags.end());
      EXPECT_EQ(std::adjacent_find(tags.begin(), tags.end()), tags.end());
    }
  EXPECT_EQ(sent, received);
  // Per micro-batch, activations: 0 → 1 (chunk 0), 1 → 0 (chunk 0 → 1), 0 → 1 (chunk 1); gradients
  // the reverse: 1 → 0 (chunk 1), 0 → 1 (chunk 1 → 0), 1 → 0 (chunk 0). Three each way per link.
  EXPECT_EQ(sends, 8 * 3 * 2);
  EXPECT_EQ(sent.at({0, 1}).size(), 8u * 3);
  EXPECT_EQ(sent.at({1, 0}).size(), 8u * 3);
  EXPECT_EQ(pipeline_tag(3, true, 1, 2), 2 * (3 * 2 + 1) + 1);

  // Every stage runs every layer of its chunks: 16 layers, 8 micro-batches, 5 GEMMs per layer.
  EXPECT_EQ(count_ops(program.programs[0], OpKind::gemm, Phase::forward), 16 * 8 * 5);
  EXPECT_EQ(count_ops(program.programs[1], OpKind::gemm, Phase::forward), 16 * 8 * 5 + 8);
  // Embedding on chunk 0 of stage 0, the output layer on chunk 1 of stage 1 only.
  std::map<std::string, std::set<int>> layers_around;
  for (std::size_t stage = 0; stage < 2; ++stage)
    for (const Op& op : program.programs[stage].ops) {
      if (op.name == "embedding.lookup.fwd" || op.name == "output.logits.fwd")
        layers_around[op.name].insert(static_cast<int>(stage));
    }
  EXPECT_EQ(layers_around["embedding.lookup.fwd"], (std::set<int>{0}));
  EXPECT_EQ(layers_around["output.logits.fwd"], (std::set<int>{1}));
  const auto& stage0 = program.programs[0].ops;
  const auto first_layer =
      std::find_if(stage0.begin(), stage0.end(), [](const Op& op) { return op.layer >= 0; });
  ASSERT_NE(first_layer, stage0.end());
  EXPECT_EQ(first_layer->layer, 0);

  // Simulates without deadlock: every op 1 µs, transfers instant.
  const SimulationResult result = simulate_step(program, [](const Op& op, std::int64_t) {
    return op.kind == OpKind::send || op.kind == OpKind::recv ? 0.0 : 1e-6;
  });
  EXPECT_GT(result.step_time_s, 0);
  EXPECT_EQ(result.ranks.size(), 16u);
}

TEST(Lowering, InterleavedOrderIsMegatrons) {
  // PP2 VPP2 M4: virtual micro-batches in groups of PP·VPP = 4: (0,c0) (1,c0) (0,c1) (1,c1)
  // (2,c0) ..., backward with the chunks reversed. Warm-up: stage 0 2·1 + 1·2 = 4, stage 1 2.
  const StepProgram program = lower_plan(mixtral_16_vpp2(4));
  using P = std::tuple<int, int, bool>;
  const std::vector<P> stage0 = {
      {0, 0, false}, {1, 0, false}, {0, 1, false}, {1, 1, false}, // warm-up
      {2, 0, false}, {0, 1, true},  {3, 0, false}, {1, 1, true},
      {2, 1, false}, {0, 0, true},  {3, 1, false}, {1, 0, true},  // steady state
      {2, 1, true},  {3, 1, true},  {2, 0, true},  {3, 0, true}}; // cool-down
  const std::vector<P> stage1 = {{0, 0, false}, {1, 0, false}, {0, 1, false}, {0, 1, true},
                                 {1, 1, false}, {1, 1, true},  {2, 0, false}, {0, 0, true},
                                 {3, 0, false}, {1, 0, true},  {2, 1, false}, {2, 1, true},
                                 {3, 1, false}, {3, 1, true},  {2, 0, true},  {3, 0, true}};
  EXPECT_EQ(pass_order(program.programs[0], 8, 2), stage0);
  EXPECT_EQ(pass_order(program.programs[1], 8, 2), stage1);
}

TEST(Lowering, InterleavedPipelinesOfFourStagesSimulate) {
  // TP2 PP4 VPP2/VPP4 EP4 on 32 GPUs: a ring of four stages, 16 micro-batches; and M == PP,
  // where Megatron runs every forward first.
  for (const auto& [vpp, global_batch] :
       {std::pair<std::int64_t, std::int64_t>{2, 64}, {4, 64}, {2, 16}}) {
    SCOPED_TRACE(vpp);
    const Plan plan =
        make_plan("mixtral-8x7b", 32, {.tp = 2, .pp = 4, .vpp = vpp, .ep = 4}, global_batch);
    const StepProgram program = lower_plan(plan);
    validate_step_program(program);
    EXPECT_NO_THROW(simulate_step(program, [](const Op& op, std::int64_t) {
      return op.kind == OpKind::send || op.kind == OpKind::recv ? 0.0 : 1e-6;
    }));
  }
}

TEST(Lowering, LowersAThousandGpuPlanQuickly) {
  const Plan plan = make_plan("mixtral-8x22b", 1024, {.tp = 2, .pp = 8, .ep = 8}, 1024);
  const auto start = std::chrono::steady_clock::now();
  const StepProgram program = lower_plan(plan);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::size_t ops = 0;
  for (const RankProgram& stage : program.programs)
    ops += stage.ops.size();
  std::cout << "mixtral-8x22b on 1024 GPUs (TP2 PP8 EP8, 16 micro-batches): "
            << program.programs.size() << " programs, " << ops << " ops, lowered in " << seconds
            << " s\n";
  EXPECT_EQ(program.programs.size(), 8u);
  EXPECT_LT(seconds, 5.0);
  validate_step_program(program);
}

} // namespace
} // namespace foldplan

namespace foldplan {
namespace {

// Every decoder layer has its pre-MLP norm and residual add, forward and backward, as the cost
// model counts them (a dense layer once lacked them).
TEST(Lowering, DenseLayersHaveTheirMlpNormAndResidual) {
  const StepProgram program = lower_plan(make_plan("llama3-70b", 8, {.tp = 2, .pp = 2}, 4));
  int norms = 0;
  int residuals = 0;
  for (const Op& op : program.programs.front().ops) {
    if (op.name.find(".mlp.norm") != std::string::npos)
      ++norms;
    if (op.name.find(".mlp.residual") != std::string::npos)
      ++residuals;
  }
  // 40 layers on the stage, micro-batches 4 / DP 2 = 2, forward and backward.
  EXPECT_EQ(norms, 40 * 2 * 2);
  EXPECT_EQ(residuals, 40 * 2 * 2);
}

} // namespace
} // namespace foldplan
