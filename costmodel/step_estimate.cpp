#include "costmodel/step_estimate.hpp"

#include <algorithm>

#include "core/units.hpp"
#include "costmodel/layer_costs.hpp"
#include "costmodel/memory_model.hpp"
#include "costmodel/throughput.hpp"
#include "models/model_flops.hpp"
#include "parallel/layer_placement.hpp"

namespace foldplan {
namespace {

using units::kBf16Bytes;
using units::kFp32Bytes;

// Megatron DDP: bucket_size = max(40M, 1M · data-parallel size) parameters
// (megatron/training/training.py get_model → DistributedDataParallelConfig).
constexpr double kMinBucketParameters = 40e6;
constexpr double kBucketParametersPerDpRank = 1e6;
// Distributed-optimizer Adam step per parameter of the local shard: read the fp32 gradient (4),
// read and write the fp32 master weight (8), both moments (16), write the bf16 weight (2), and
// read the gradient once more for the global norm (4).
constexpr double kOptimizerBytesPerParameter = 34.0;

double bucket_parameters(std::int64_t dp_size) {
  return std::max(kMinBucketParameters, kBucketParametersPerDpRank * static_cast<double>(dp_size));
}

// Time of a reduce-scatter (fp32 gradients) or all-gather (bf16 parameters) of `parameters`
// over `group`, and of its last (first) bucket, which nothing can hide.
struct DataParallelTransfer {
  double total_s = 0;
  double one_bucket_s = 0;
};

DataParallelTransfer transfer(const CollectiveCostModel& collectives, CollectiveKind kind,
                              const GroupPlacement& group, double parameters,
                              double bytes_per_parameter, std::int64_t dp_size) {
  if (group.num_ranks <= 1 || parameters <= 0)
    return {};
  const double bucket = std::min(parameters, bucket_parameters(dp_size));
  return {collectives.time_s(kind, group, parameters * bytes_per_parameter),
          collectives.time_s(kind, group, bucket * bytes_per_parameter)};
}

} // namespace

StepEstimate estimate_step(const CostContext& context, const Plan& plan,
                           double expert_load_factor) {
  const ModelSpec& model = plan.model;
  const ParallelConfig& config = plan.parallel;
  const PlanOptions& options = plan.options;
  const PlacedGroups groups =
      place_groups_of_rank_zero(context.cluster(), config, plan.options.folding);
  const LayerCostModel layers(context, model, config, plan.training, options, groups,
                              expert_load_factor);
  const CollectiveCostModel& collectives = context.collectives();

  StepEstimate estimate;
  estimate.micro_batches = num_micro_batches(config, plan.training);
  const double micro_batches = static_cast<double>(estimate.micro_batches);
  // Layer costs depend only on the layer's kind: compute each kind once.
  const PassCost dense = model.num_dense_layers() > 0 ? layers.dense_layer() : PassCost{};
  const PassCost moe = model.is_moe() ? layers.moe_layer() : PassCost{};
  const bool pipelined = config.pp > 1;
  // Without VPP Megatron's 1F1B sends and receives block (overlap_p2p_comm is forced off).
  const double send_s = pipelined && config.vpp == 1
                            ? 2 * collectives.time_s(CollectiveKind::send_recv, groups.pp,
                                                     layers.pipeline_message_bytes())
                            : 0.0;

  MemoryBreakdown peak_memory;
  for (std::int64_t pp_rank = 0; pp_rank < config.pp; ++pp_rank) {
    StageEstimate stage;
    for (std::int64_t chunk = 0; chunk < config.vpp; ++chunk) {
      const LayerRange range =
          layers_of_stage(model.num_layers, config.pp, config.vpp, pp_rank, chunk);
      for (std::int64_t layer = range.first; layer < range.end; ++layer) {
        stage.layers += model.is_moe_layer(layer) ? moe : dense;
      }
    }
    if (pp_rank == 0)
      stage.layers += layers.embedding();
    if (pp_rank == config.pp - 1) {
      stage.layers += layers.output_layer();
      for (std::int64_t mtp = 0; mtp < model.mtp_num_layers; ++mtp) {
        stage.layers += layers.decoder_layer(model.num_layers - 1);
        stage.layers += layers.output_layer();
      }
    }
    stage.pipeline_send_s = pipelined ? send_s : 0.0;
    if (options.overlap_moe_expert_parallel_comm) {
      // Megatron's combined 1F1B runs one micro-batch's dispatch/combine beside the other's
      // compute: the A2A is exposed only where it outlasts the compute it is paired with.
      const double ep_s = stage.layers.forward.ep_comm_s + stage.layers.backward.ep_comm_s;
      const double compute_s = stage.layers.forward.compute_s() + stage.layers.backward.compute_s();
      const double exposed = std::max(0.0, ep_s - compute_s);
      const double keep = ep_s > 0 ? exposed / ep_s : 0.0;
      stage.layers.forward.ep_comm_s *= keep;
      stage.layers.backward.ep_comm_s *= keep;
    }

    // The memory model knows what this stage holds: its parameters size the DP traffic.
    const MemoryBreakdown memory = memory_per_gpu(model, config, plan.training, options, pp_rank,
                                                  std::max(1.0, expert_load_factor));
    if (pp_rank == 0 || memory.total_bytes() > peak_memory.total_bytes())
      peak_memory = memory;
    const std::int64_t dense_dp = config.dp * config.cp;
    const DataParallelTransfer dense_rs =
        transfer(collectives, CollectiveKind::reduce_scatter, groups.dp_cp, memory.dense_parameters,
                 kFp32Bytes, dense_dp);
    const DataParallelTransfer expert_rs =
        transfer(collectives, CollectiveKind::reduce_scatter, groups.edp, memory.expert_parameters,
                 kFp32Bytes, config.edp);
    const DataParallelTransfer dense_ag =
        transfer(collectives, CollectiveKind::all_gather, groups.dp_cp, memory.dense_parameters,
                 kBf16Bytes, dense_dp);
    const DataParallelTransfer expert_ag =
        transfer(collectives, CollectiveKind::all_gather, groups.edp, memory.expert_parameters,
                 kBf16Bytes, config.edp);
    stage.grad_reduce_s = dense_rs.total_s + expert_rs.total_s;
    stage.param_gather_s = dense_ag.total_s + expert_ag.total_s;
    // Megatron DDP reduces gradients as buckets fill during the last micro-batch's backward
    // (earlier micro-batches run under no_sync), and gathers parameters for the next step as its
    // first forward reaches them: one micro-batch of this stage is the window, and the last
    // (first) bucket always waits.
    const double reduce_exposed =
        options.overlap_grad_reduce
            ? std::max(0.0, stage.grad_reduce_s - stage.layers.backward.total_s()) +
                  std::max(dense_rs.one_bucket_s, expert_rs.one_bucket_s)
            : stage.grad_reduce_s;
    const double gather_exposed =
        options.overlap_param_gather
            ? std::max(0.0, stage.param_gather_s - stage.layers.forward.total_s()) +
                  std::max(dense_ag.one_bucket_s, expert_ag.one_bucket_s)
            : stage.param_gather_s;
    stage.exposed_dp_s = std::min(reduce_exposed, stage.grad_reduce_s) +
                         std::min(gather_exposed, stage.param_gather_s);
    const double shard = memory.dense_parameters / static_cast<double>(dense_dp) +
                         memory.expert_parameters / static_cast<double>(config.edp);
    stage.optimizer_s = context.compute().memory_bound_time_s(shard * kOptimizerBytesPerParameter);
    estimate.stages.push_back(stage);
  }

  // The schedule. 1F1B with per-micro-batch stage costs c_r: the first micro-batch passes every
  // stage once and the rest follow at the pace of the slowest, Σ c_r + (M−1)·max c_r, which is
  // (M + PP − 1)·c for equal stages. Interleaving cuts the fill and drain to 1/VPP of it:
  // M·max c_r + (PP−1)/VPP · mean c_r (Narayanan et al., SC'21).
  double slowest_s = 0;
  double sum_s = 0;
  for (std::size_t r = 0; r < estimate.stages.size(); ++r) {
    const double cost_s = estimate.stages[r].per_micro_batch_s();
    sum_s += cost_s;
    if (cost_s > slowest_s) {
      slowest_s = cost_s;
      estimate.critical_stage = static_cast<int>(r);
    }
  }
  const double pp = static_cast<double>(config.pp);
  estimate.pipeline_s =
      config.vpp == 1
          ? sum_s + (micro_batches - 1) * slowest_s
          : micro_batches * slowest_s + (pp - 1) / static_cast<double>(config.vpp) * (sum_s / pp);
  estimate.bubble_s = estimate.pipeline_s - micro_batches * slowest_s;

  // After the last backward, stage r has been idle for the backward of the stages before it
  // (1F1B drains from the last stage to the first), time its gradient reduction can use.
  double tail_s = 0;
  double slack_s = 0;
  for (const StageEstimate& stage : estimate.stages) {
    tail_s = std::max(tail_s, std::max(0.0, stage.exposed_dp_s - slack_s) + stage.optimizer_s);
    slack_s += stage.layers.backward.total_s();
  }
  const StageEstimate& critical =
      estimate.stages[static_cast<std::size_t>(estimate.critical_stage)];
  const double step_s = estimate.pipeline_s + tail_s;

  Prediction& prediction = estimate.prediction;
  prediction.step_time_s = step_s;
  const PhaseCost per_micro_batch = critical.layers.forward + critical.layers.backward;
  prediction.breakdown = {
      {"compute", micro_batches * per_micro_batch.compute_s()},
      {"tp_comm", micro_batches * per_micro_batch.tp_comm_s},
      {"cp_comm", micro_batches * per_micro_batch.cp_comm_s},
      {"ep_comm", micro_batches * per_micro_batch.ep_comm_s},
      {"etp_comm", micro_batches * per_micro_batch.etp_comm_s},
      {"host_sync", micro_batches * per_micro_batch.host_sync_s},
      {"pp_comm", micro_batches * critical.pipeline_send_s},
      {"bubble", estimate.bubble_s},
      {"dp_comm_and_optimizer", tail_s},
  };

  const double tokens =
      static_cast<double>(plan.training.global_batch_size * plan.training.seq_length);
  const double flops = megatron_flops_per_step(model, plan.training.seq_length,
                                               plan.training.global_batch_size, config.tp);
  // MFU against the bf16 dense peak in every precision, as the paper and Megatron's logs report
  // it; fp8 runs show their gain as higher TFLOP/s and MFU, not a different yardstick.
  const Throughput throughput =
      megatron_throughput(flops, tokens, step_s, plan.gpus, plan.cluster.gpu.bf16_flops);
  prediction.mfu = throughput.mfu;
  prediction.tflops_per_gpu = throughput.tflops_per_gpu;
  prediction.tokens_per_s_per_gpu = throughput.tokens_per_s_per_gpu;

  prediction.peak_memory_bytes = peak_memory.total_bytes();
  prediction.fits = prediction.peak_memory_bytes <= plan.cluster.gpu.hbm_bytes;
  for (const auto& [name, bytes] : memory_terms(peak_memory))
    prediction.memory[name] = bytes;
  estimate.peak_memory_stage = static_cast<int>(peak_memory.pp_rank);
  return estimate;
}

} // namespace foldplan
