// The dispatcher simulation: a hand-computed layer first, then invariants (token conservation,
// balanced loads, padding, monotone skew) and the figures for Mixtral-8x7B.
#include "simulator/dispatch_simulation.hpp"

#include <iostream>

#include <gtest/gtest.h>

#include "core/errors.hpp"

namespace foldplan {
namespace {

// k = 2: token t picks pairs[t] with probs[t].
SourceRouting top2(std::vector<std::pair<int, int>> pairs,
                   std::vector<std::pair<float, float>> probs) {
  SourceRouting routing;
  routing.num_tokens = static_cast<std::int64_t>(pairs.size());
  routing.topk = 2;
  for (std::size_t token = 0; token < pairs.size(); ++token) {
    routing.experts.push_back(pairs[token].first);
    routing.experts.push_back(pairs[token].second);
    routing.probs.push_back(probs[token].first);
    routing.probs.push_back(probs[token].second);
  }
  return routing;
}

DispatchGeometry tiny_geometry() {
  DispatchGeometry geometry;
  geometry.num_experts = 4;
  geometry.topk = 2;
  geometry.hidden_size = 16;
  geometry.tokens_per_rank = 8;
  geometry.ep = 2;
  return geometry;
}

// E=4, k=2, T=8, EP=2 (experts 0,1 on EP rank 0; 2,3 on rank 1), cf=1: capacity 4.
// Rank 0: expert 0 is picked by tokens 0,1,2,3,4,6 (6 > 4: two dropped), 1 by 0,2,5,7,
//         2 by 1,4,5 and 3 by 3,6,7 → kept 4,4,3,3 → sends [8, 6].
// Rank 1: every token picks (2,3) → 8 each, 4 kept each → sends [0, 8].
std::vector<SourceRouting> tiny_sources() {
  const std::vector<std::pair<float, float>> rank0_probs = {
      {0.50f, 0.5f}, {0.9f, 0.1f}, {0.6f, 0.4f},   {0.7f, 0.3f},
      {0.80f, 0.2f}, {0.5f, 0.5f}, {0.55f, 0.45f}, {0.5f, 0.5f}};
  return {top2({{0, 1}, {0, 2}, {0, 1}, {0, 3}, {0, 2}, {1, 2}, {0, 3}, {1, 3}}, rank0_probs),
          top2(std::vector<std::pair<int, int>>(8, {2, 3}),
               std::vector<std::pair<float, float>>(8, {0.6f, 0.4f}))};
}

PlanOptions capacity_options(double factor, DropPolicy policy, bool pad = false) {
  PlanOptions options;
  options.capacity_factor = factor;
  options.drop_policy = policy;
  options.pad_to_capacity = pad;
  return options;
}

TEST(DispatchLayer, HandComputedTinyCase) {
  const std::vector<SourceRouting> sources = tiny_sources();
  for (const DropPolicy policy : {DropPolicy::position, DropPolicy::probs}) {
    const LayerDispatch dispatch =
        dispatch_layer(sources, tiny_geometry(), capacity_options(1.0, policy));
    ASSERT_EQ(dispatch.ep_alltoall.size(), 1u);
    EXPECT_EQ(dispatch.ep_alltoall[0].rows, (std::vector<std::int64_t>{8, 6, 0, 8}));
    EXPECT_EQ(dispatch.computed_rows_per_ep_rank, (std::vector<std::int64_t>{8, 14}));
    EXPECT_EQ(dispatch.max_load_ep_rank, 1);
    EXPECT_DOUBLE_EQ(dispatch.load_factor, 14.0 / 11.0);
    EXPECT_EQ(dispatch.routed_choices, 32);
    EXPECT_EQ(dispatch.dropped_choices, 10);
    EXPECT_EQ(dispatch.padding_rows, 0);
    EXPECT_EQ(dispatch.ep_alltoall[0].at(0, 1) * dispatch.bytes_per_row, 6 * 16 * 2);
  }

  const LayerDispatch padded =
      dispatch_layer(sources, tiny_geometry(), capacity_options(1.0, DropPolicy::position, true));
  EXPECT_EQ(padded.ep_alltoall[0].rows, (std::vector<std::int64_t>{8, 8, 8, 8}));
  EXPECT_EQ(padded.padding_rows, 2 + 8);
  EXPECT_EQ(padded.computed_rows_per_ep_rank, (std::vector<std::int64_t>{16, 16}));
}

TEST(DispatchLayer, AllgatherComputesTheSameRowsFromTheGatheredTokens) {
  DispatchGeometry geometry = tiny_geometry();
  geometry.dispatcher = Dispatcher::allgather;
  const LayerDispatch dispatch =
      dispatch_layer(tiny_sources(), geometry, capacity_options(1.0, DropPolicy::position));
  EXPECT_TRUE(dispatch.ep_alltoall.empty());
  EXPECT_EQ(dispatch.gathered_rows_per_rank, 2 * 8);
  EXPECT_EQ(dispatch.computed_rows_per_ep_rank, (std::vector<std::int64_t>{8, 14}));
}

ModelSpec moe_model(std::int64_t experts, std::int64_t topk, std::int64_t layers) {
  ModelSpec model = load_model("mixtral-8x7b");
  model.num_layers = layers;
  model.moe.num_experts = experts;
  model.moe.router_topk = topk;
  return model;
}

TrainingShape shape(std::int64_t seq) {
  TrainingShape training;
  training.seq_length = seq;
  training.micro_batch_size = 1;
  return training;
}

TEST(SimulateDispatch, TokensSentEqualTokensReceived) {
  ParallelConfig parallel;
  parallel.tp = 2;
  parallel.etp = 2;
  parallel.ep = 4;
  for (const bool pad : {false, true}) {
    const PlanOptions options = capacity_options(1.0, DropPolicy::probs, pad);
    const DispatchResult result = simulate_dispatch(moe_model(16, 4, 2), parallel, shape(1024),
                                                    options, parse_routing_spec("zipf:1.2"), 2, 5);
    ASSERT_EQ(result.samples.size(), 4u);
    EXPECT_EQ(result.geometry.tokens_per_rank, 512);
    for (const LayerDispatch& sample : result.samples) {
      std::int64_t sent = 0;
      std::int64_t received = 0;
      for (const AllToAllMatrix& matrix : sample.ep_alltoall) {
        for (std::int64_t rank = 0; rank < matrix.size; ++rank) {
          sent += matrix.rows_sent(rank);
          received += matrix.rows_received(rank);
        }
      }
      EXPECT_EQ(sent, received);
      EXPECT_EQ(sent, sample.routed_choices - sample.dropped_choices + sample.padding_rows);
      std::int64_t computed = 0;
      for (const std::int64_t rows : sample.computed_rows_per_ep_rank)
        computed += rows;
      EXPECT_EQ(computed, sent);
    }
  }
}

TEST(SimulateDispatch, NothingDropsWhenCapacityCoversTheMaximumLoad) {
  // With cf = E/k the capacity is T, and no expert can get more than T picks.
  ParallelConfig parallel;
  parallel.ep = 4;
  const DispatchResult result = simulate_dispatch(moe_model(16, 2, 2), parallel, shape(512),
                                                  capacity_options(8.0, DropPolicy::probs),
                                                  parse_routing_spec("zipf:2.0"), 2, 1);
  EXPECT_EQ(result.dropped_fraction, 0.0);
}

TEST(SimulateDispatch, BalancedRoutingGivesEqualLoadsAndNoDrops) {
  ParallelConfig parallel;
  parallel.ep = 8;
  const DispatchResult result = simulate_dispatch(load_model("mixtral-8x7b"), parallel, shape(4096),
                                                  capacity_options(1.0, DropPolicy::probs),
                                                  parse_routing_spec("balanced"), 2, 3);
  EXPECT_EQ(result.mean_load_factor, 1.0);
  EXPECT_EQ(result.max_load_factor, 1.0);
  EXPECT_EQ(result.dropped_fraction, 0.0);
  // T·k/E per expert from each of 8 sources: 4096·2/8·8.
  EXPECT_EQ(result.max_computed_rows, 8192);
}

TEST(SimulateDispatch, ZipfSkewRaisesTheHottestRankMonotonically) {
  ParallelConfig parallel;
  parallel.ep = 8;
  std::int64_t previous = 0;
  for (const std::string spec : {"zipf:1.0", "zipf:1.5", "zipf:2.0"}) {
    const DispatchResult result =
        simulate_dispatch(load_model("mixtral-8x7b"), parallel, shape(4096), PlanOptions{},
                          parse_routing_spec(spec), 1, 17);
    EXPECT_GT(result.samples[0].max_computed_rows(), previous) << spec;
    previous = result.samples[0].max_computed_rows();
  }
}

TEST(SimulateDispatch, PaddingFixesTheRowsOfEveryRank) {
  ParallelConfig parallel;
  parallel.tp = 2;
  parallel.etp = 2;
  parallel.ep = 4;
  const PlanOptions options = capacity_options(1.25, DropPolicy::probs, true);
  const DispatchResult result =
      simulate_dispatch(moe_model(16, 4, 2), parallel, shape(2048), options,
                        parse_routing_spec("dirichlet:0.3"), 2, 9);
  const std::int64_t capacity = 320; // T = 2048/TP = 1024; ceil(1024·4/16 · 1.25)
  for (const LayerDispatch& sample : result.samples) {
    for (const std::int64_t rows : sample.computed_rows_per_ep_rank)
      EXPECT_EQ(rows, 4 * capacity * 2 * 4); // E_l · capacity · ETP · EP
    EXPECT_EQ(sample.load_factor, 1.0);
  }
}

TEST(SimulateDispatch, BadInputsAreInputErrors) {
  ParallelConfig parallel;
  parallel.ep = 3;
  try {
    simulate_dispatch(load_model("mixtral-8x7b"), parallel, shape(4096), PlanOptions{},
                      parse_routing_spec("uniform"), 1, 1);
    ADD_FAILURE();
  } catch (const InputError& error) {
    EXPECT_EQ(error.field(), "parallel.ep");
  }
  parallel.ep = 1;
  EXPECT_THROW(simulate_dispatch(load_model("llama3-70b"), parallel, shape(4096), PlanOptions{},
                                 parse_routing_spec("uniform"), 1, 1),
               InputError);
  EXPECT_THROW(simulate_dispatch(load_model("mixtral-8x7b"), parallel, shape(4096), PlanOptions{},
                                 parse_routing_spec("uniform"), 0, 1),
               InputError);
  RoutingSpec wrong_length;
  wrong_length.kind = RoutingKind::histogram;
  wrong_length.expert_share = {0.5, 0.5};
  wrong_length.text = "two.json";
  EXPECT_THROW(simulate_dispatch(load_model("mixtral-8x7b"), parallel, shape(4096), PlanOptions{},
                                 wrong_length, 1, 1),
               InputError);
}

// The figures quoted for Mixtral-8x7B (seq 4096, mbs 1, EP 8, all 32 layers, 4 micro-batches).
TEST(SimulateDispatch, MixtralFigures) {
  ParallelConfig parallel;
  parallel.ep = 8;
  const ModelSpec mixtral = load_model("mixtral-8x7b");
  const DispatchResult skewed = simulate_dispatch(mixtral, parallel, shape(4096), PlanOptions{},
                                                  parse_routing_spec("zipf:1.2"), 4);
  const DispatchResult uniform =
      simulate_dispatch(mixtral, parallel, shape(4096), capacity_options(1.0, DropPolicy::probs),
                        parse_routing_spec("uniform"), 4);
  std::cout << "mixtral-8x7b EP8 zipf:1.2 dropless: load factor mean " << skewed.mean_load_factor
            << " max " << skewed.max_load_factor << ", hottest rank rows "
            << skewed.max_computed_rows << "\n"
            << "mixtral-8x7b EP8 uniform cf=1: dropped fraction " << uniform.dropped_fraction
            << ", load factor mean " << uniform.mean_load_factor << "\n";
  // Zipf(1.2) over 8 experts: the top expert holds 1/Σ r^-1.2 ≈ 0.43 of the first picks.
  EXPECT_GT(skewed.mean_load_factor, 2.0);
  EXPECT_LT(skewed.mean_load_factor, 3.5);
  // Binomial noise around T·k/E = 1024 per expert: a few percent over capacity.
  EXPECT_GT(uniform.dropped_fraction, 0.0);
  EXPECT_LT(uniform.dropped_fraction, 0.05);
  EXPECT_LE(uniform.max_computed_rows, 8 * 1024); // capacity caps each source at 1024 per expert
}

} // namespace
} // namespace foldplan
