// Routed expert loads: one rank's rows read from a hand-made dispatch result, samples reused in
// turn for micro-batches beyond the sampled ones, and the uniformity that lets the balanced
// lowering stand.
#include "simulator/expert_load.hpp"

#include <gtest/gtest.h>

namespace foldplan {
namespace {

// EP 2, ETP 1, MoE layers 1 and 3, two micro-batches sampled.
DispatchResult two_layer_dispatch() {
  DispatchResult dispatch;
  dispatch.geometry = {.num_experts = 4,
                       .topk = 2,
                       .hidden_size = 16,
                       .tokens_per_rank = 8,
                       .etp = 1,
                       .ep = 2,
                       .dispatcher = Dispatcher::alltoall};
  auto sample = [](std::int64_t layer, std::int64_t micro_batch, std::vector<std::int64_t> rows) {
    LayerDispatch layer_dispatch;
    layer_dispatch.layer = layer;
    layer_dispatch.micro_batch = micro_batch;
    layer_dispatch.ep_alltoall = {AllToAllMatrix{.size = 2, .rows = rows}};
    // Rank d computes column d.
    layer_dispatch.computed_rows_per_ep_rank = {rows[0] + rows[2], rows[1] + rows[3]};
    return layer_dispatch;
  };
  dispatch.samples = {sample(1, 0, {8, 8, 8, 8}), sample(1, 1, {10, 6, 12, 4}),
                      sample(3, 0, {16, 0, 9, 7}), sample(3, 1, {8, 8, 8, 8})};
  return dispatch;
}

TEST(ExpertLoads, ReadsTheRankRowAndColumnOfItsSample) {
  const DispatchResult dispatch = two_layer_dispatch();
  const ExpertLoads loads(dispatch);
  EXPECT_EQ(loads.sampled_micro_batches(), 2);
  // Layer 1, micro-batch 1, EP rank 0: sends [10, 6], receives [10, 12].
  const std::optional<ExpertLoad> rank0 = loads.at(1, 1, {.etp = 0, .ep = 0});
  ASSERT_TRUE(rank0.has_value());
  EXPECT_EQ(rank0->rows_to_peer, (std::vector<std::int64_t>{10, 6}));
  EXPECT_EQ(rank0->rows_from_peer, (std::vector<std::int64_t>{10, 12}));
  EXPECT_EQ(rank0->rows_sent, 16);
  EXPECT_EQ(rank0->rows_received, 22);
  EXPECT_EQ(rank0->rows_computed, 22);
  const std::optional<ExpertLoad> rank1 = loads.at(3, 0, {.etp = 0, .ep = 1});
  ASSERT_TRUE(rank1.has_value());
  EXPECT_EQ(rank1->rows_to_peer, (std::vector<std::int64_t>{9, 7}));
  EXPECT_EQ(rank1->rows_from_peer, (std::vector<std::int64_t>{0, 7}));
  EXPECT_EQ(rank1->rows_computed, 7);
}

TEST(ExpertLoads, MicroBatchesBeyondTheSampledOnesReuseThemInTurn) {
  const DispatchResult dispatch = two_layer_dispatch();
  const ExpertLoads loads(dispatch);
  EXPECT_EQ(loads.at(1, 5, {.etp = 0, .ep = 0}), loads.at(1, 1, {.etp = 0, .ep = 0}));
  EXPECT_EQ(loads.at(3, 4, {.etp = 0, .ep = 1}), loads.at(3, 0, {.etp = 0, .ep = 1}));
}

TEST(ExpertLoads, LayersWithoutASampleHaveNoLoad) {
  const DispatchResult dispatch = two_layer_dispatch();
  const ExpertLoads loads(dispatch);
  EXPECT_FALSE(loads.at(0, 0, {}).has_value()); // dense
  EXPECT_FALSE(loads.at(2, 0, {}).has_value());
  EXPECT_FALSE(loads.at(4, 0, {}).has_value()); // beyond the model (an MTP head)
}

TEST(ExpertLoads, UniformOnlyWhenEveryPairAndRankIsEqual) {
  DispatchResult dispatch = two_layer_dispatch();
  EXPECT_FALSE(ExpertLoads(dispatch).uniform());
  dispatch.samples = {dispatch.samples[0], dispatch.samples[3]};
  dispatch.samples[1].layer = 1;
  dispatch.samples[1].micro_batch = 1;
  EXPECT_TRUE(ExpertLoads(dispatch).uniform());
}

TEST(ExpertLoads, SimulatedBalancedRoutingIsUniform) {
  const ModelSpec model = load_model("mixtral-8x7b");
  const ParallelConfig parallel = make_parallel_config(16, {.tp = 2, .pp = 2, .ep = 4}, true);
  const TrainingShape training{.seq_length = 4096, .global_batch_size = 32, .micro_batch_size = 1};
  const DispatchResult balanced =
      simulate_dispatch(model, parallel, training, {}, parse_routing_spec("balanced"), 2);
  EXPECT_TRUE(ExpertLoads(balanced).uniform());
  const DispatchResult zipf =
      simulate_dispatch(model, parallel, training, {}, parse_routing_spec("zipf:1.2"), 2);
  EXPECT_FALSE(ExpertLoads(zipf).uniform());
}

} // namespace
} // namespace foldplan
