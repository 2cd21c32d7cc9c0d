#include "planner/search.hpp"

#include <map>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "costmodel/cost_context.hpp"
#include "costmodel/paper_validation.hpp"
#include "costmodel/step_estimate.hpp"

namespace foldplan {
namespace {

SearchRequest request_for(const std::string& model, std::int64_t gpus, std::int64_t gbs) {
  SearchRequest request;
  request.model = load_model(model);
  request.cluster = load_cluster("dgx-h100");
  request.gpus = gpus;
  request.training = {.seq_length = 4096, .global_batch_size = gbs};
  request.space = default_search_space(request.model, request.cluster, gpus, request.training);
  request.simulate_top = 0;
  return request;
}

TEST(SearchSpace, DefaultsCoverWhatMegatronCanAccept) {
  const SearchRequest request = request_for("mixtral-8x22b", 128, 256);
  const SearchSpace& space = request.space;
  EXPECT_EQ(space.tp, (std::vector<std::int64_t>{1, 2, 4, 8})); // up to the NVLink domain
  EXPECT_EQ(space.pp, (std::vector<std::int64_t>{1, 2, 4, 7, 8, 14, 28, 56})); // 56 layers
  EXPECT_EQ(space.vpp, (std::vector<std::int64_t>{1, 2, 4, 7, 8}));
  EXPECT_EQ(space.ep, (std::vector<std::int64_t>{1, 2, 4, 8})); // divisors of 8 experts
  EXPECT_EQ(space.etp, (std::vector<std::int64_t>{1, 2, 4, 8}));
  EXPECT_EQ(space.cp.back(), 128);
  EXPECT_EQ(space.recompute.size(), 3u);
  EXPECT_EQ(space.dispatcher.size(), 2u);
  EXPECT_EQ(space.capacity, std::vector<CapacityPolicy>{CapacityPolicy{}});
  EXPECT_EQ(space.size(), 4 * 8 * 8 * 5 * 4 * 4 * 2 * 3 * 2 * 1);
  // A dense model has no expert dimensions to search.
  const SearchRequest dense = request_for("llama3-70b", 64, 128);
  EXPECT_EQ(dense.space.ep, std::vector<std::int64_t>{1});
  EXPECT_EQ(dense.space.dispatcher.size(), 1u);
}

TEST(SearchSpace, CapacityPoliciesParseAndRefuseNonsense) {
  EXPECT_EQ(parse_capacity_policy("dropless", "--capacity"), CapacityPolicy{});
  EXPECT_EQ(parse_capacity_policy("1.25", "--capacity"),
            (CapacityPolicy{.capacity_factor = 1.25, .pad_to_capacity = false}));
  EXPECT_EQ(parse_capacity_policy("1:pad", "--capacity"),
            (CapacityPolicy{.capacity_factor = 1.0, .pad_to_capacity = true}));
  EXPECT_EQ(to_string(CapacityPolicy{.capacity_factor = 1.0, .pad_to_capacity = true}),
            "cf 1 padded");
  for (const char* bad : {"", "0", "-1", "x", "1.0:", "nan", "1e999"}) {
    EXPECT_THROW(parse_capacity_policy(bad, "--capacity"), InputError) << bad;
  }
}

// Every plan a search returns is one Megatron accepts, fits, and comes best first; every point
// examined is either timed or rejected for a counted reason.
TEST(Search, ReturnsValidFittingPlansBestFirstAndAccountsForEveryPoint) {
  SearchRequest request = request_for("mixtral-8x7b", 32, 128);
  request.top_k = 20;
  const SearchResult result = search(request);
  ASSERT_EQ(result.plans.size(), 20u);
  std::int64_t rejected = 0;
  for (const auto& [reason, count] : result.rejected) {
    EXPECT_GT(count, 0) << reason;
    rejected += count;
  }
  EXPECT_EQ(result.evaluated, request.space.size());
  EXPECT_EQ(result.timed + rejected, result.evaluated);
  EXPECT_GT(result.rejected.at("does not fit in memory"), 0);
  for (std::size_t i = 0; i < result.plans.size(); ++i) {
    const Plan& plan = result.plans[i].plan;
    EXPECT_NO_THROW(validate_plan(plan));
    ASSERT_TRUE(plan.prediction);
    EXPECT_TRUE(plan.prediction->fits);
    if (i > 0) {
      EXPECT_LE(result.plans[i - 1].plan.prediction->step_time_s, plan.prediction->step_time_s);
    }
  }
}

// The search's best is the fastest of all valid, fitting points, found here by brute force
// through the same validation the CLI uses.
TEST(Search, BestIsTheFastestPointOfTheSpace) {
  SearchRequest request = request_for("mixtral-8x7b", 16, 64);
  request.space.micro_batch_size = {1};
  request.space.recompute = {Recompute::none, Recompute::full};
  const SearchResult result = search(request);
  ASSERT_FALSE(result.plans.empty());

  const CostContext context(request.cluster, request.gpus);
  double fastest = std::numeric_limits<double>::infinity();
  std::int64_t fitting = 0;
  for (const std::int64_t tp : request.space.tp)
    for (const std::int64_t cp : request.space.cp)
      for (const std::int64_t pp : request.space.pp)
        for (const std::int64_t vpp : request.space.vpp)
          for (const std::int64_t ep : request.space.ep)
            for (const std::int64_t etp : request.space.etp)
              for (const Recompute recompute : request.space.recompute)
                for (const Dispatcher dispatcher : request.space.dispatcher) {
                  if (dispatcher == Dispatcher::allgather && ep * etp == 1)
                    continue;
                  Plan plan;
                  plan.model = request.model;
                  plan.cluster = request.cluster;
                  plan.gpus = request.gpus;
                  plan.training = request.training;
                  plan.training.micro_batch_size = 1;
                  plan.options.recompute = recompute;
                  plan.options.dispatcher = dispatcher;
                  try {
                    plan.parallel = make_parallel_config(
                        request.gpus,
                        {.tp = tp, .cp = cp, .pp = pp, .vpp = vpp, .ep = ep, .etp = etp}, true);
                    validate_plan(plan);
                  } catch (const InputError&) {
                    continue;
                  }
                  const Prediction prediction = estimate_step(context, plan).prediction;
                  if (!prediction.fits)
                    continue;
                  ++fitting;
                  fastest = std::min(fastest, prediction.step_time_s);
                }
  EXPECT_EQ(result.timed, fitting);
  EXPECT_DOUBLE_EQ(result.plans.front().plan.prediction->step_time_s, fastest);
}

TEST(Search, PinnedDimensionsAndNoFoldingHold) {
  SearchRequest request = request_for("mixtral-8x22b", 128, 256);
  request.space.tp = {2};
  request.space.ep = {8};
  request.top_k = 50;
  for (const Plan& plan : [&] {
         std::vector<Plan> plans;
         for (const RankedPlan& ranked : search(request).plans)
           plans.push_back(ranked.plan);
         return plans;
       }()) {
    EXPECT_EQ(plan.parallel.tp, 2);
    EXPECT_EQ(plan.parallel.ep, 8);
  }
  request.space.folding = false;
  request.space.ep = {1, 2, 4, 8};
  const SearchResult unfolded = search(request);
  ASSERT_FALSE(unfolded.plans.empty());
  for (const RankedPlan& ranked : unfolded.plans) {
    EXPECT_FALSE(ranked.plan.options.folding);
    EXPECT_EQ(ranked.plan.parallel.etp, ranked.plan.parallel.tp);
    EXPECT_EQ(ranked.plan.parallel.dp % ranked.plan.parallel.ep, 0);
  }
}

TEST(Search, ThreadsDoNotChangeTheAnswer) {
  SearchRequest request = request_for("qwen2-57b-a14b", 64, 256);
  request.threads = 1;
  const SearchResult one = search(request);
  request.threads = 3;
  const SearchResult three = search(request);
  ASSERT_EQ(one.plans.size(), three.plans.size());
  for (std::size_t i = 0; i < one.plans.size(); ++i) {
    EXPECT_EQ(one.plans[i].plan.parallel, three.plans[i].plan.parallel) << i;
    EXPECT_EQ(one.plans[i].plan.options, three.plans[i].plan.options) << i;
  }
  EXPECT_EQ(one.rejected, three.rejected);
  EXPECT_EQ(one.timed, three.timed);
}

TEST(Search, SimulationReRanksTheBest) {
  SearchRequest request = request_for("mixtral-8x7b", 16, 64);
  request.space.micro_batch_size = {1};
  request.space.recompute = {Recompute::none};
  request.top_k = 4;
  request.simulate_top = 2;
  const SearchResult result = search(request);
  ASSERT_EQ(result.plans.size(), 4u);
  ASSERT_TRUE(result.plans[0].simulated_step_time_s);
  ASSERT_TRUE(result.plans[1].simulated_step_time_s);
  EXPECT_FALSE(result.plans[2].simulated_step_time_s);
  EXPECT_LE(*result.plans[0].simulated_step_time_s, *result.plans[1].simulated_step_time_s);
  const nlohmann::json json = search_result_to_json(result);
  EXPECT_EQ(json["plans"].size(), 4u);
  EXPECT_EQ(plan_from_json(json["plans"][0]).parallel, result.plans[0].plan.parallel);
  EXPECT_EQ(json["ranking"][0]["simulated_step_time_s"], *result.plans[0].simulated_step_time_s);
  EXPECT_EQ(json["evaluated"], result.evaluated);
}

TEST(Search, RefusesRequestsItCannotSearch) {
  SearchRequest request = request_for("mixtral-8x7b", 16, 64);
  request.space.ep.clear();
  EXPECT_THROW(search(request), InputError);
  request = request_for("mixtral-8x7b", 16, 64);
  request.top_k = 0;
  EXPECT_THROW(search(request), InputError);
  // A GPU count the cluster cannot hold is an input error before any worker starts (it once
  // escaped a worker thread and ended the process).
  request = request_for("mixtral-8x7b", 16, 64);
  request.gpus = 12;
  EXPECT_THROW(search(request), InputError);
  request = request_for("mixtral-8x7b", 16, 64);
  request.space.tp.assign(1000, 1);
  request.space.cp.assign(1000, 1);
  try {
    search(request);
    ADD_FAILURE() << "a space over the limit was searched";
  } catch (const InputError& error) {
    EXPECT_EQ(error.field(), "search space");
  }
}

// Issue #5: under the paper's conditions (capacity factor 1, GBS 256, seq 4096), the best folded
// plan is predicted at least as fast as the paper's own folded mapping, and beats the best plan
// without folding.
TEST(Search, BeatsThePaperMappingsAndFoldingBeatsNoFolding) {
  std::map<std::string, double> paper_mfu; // the paper's folded mapping, predicted
  for (const PaperComparison& c :
       compare_with_paper(std::string(FOLDPLAN_TEST_DATA_DIR) + "/paper_folding_table3.json")) {
    if (!c.fp8 && c.plan.options.folding)
      paper_mfu[c.plan.model.name] = c.prediction.mfu;
  }
  ASSERT_EQ(paper_mfu.size(), 4u);
  const std::map<std::string, std::int64_t> gpus = {{"mixtral-8x22b", 128},
                                                    {"qwen2-57b-a14b", 64},
                                                    {"mixtral-8x22b-g8t8", 128},
                                                    {"llama3-8x70b", 256}};
  for (const auto& [model, count] : gpus) {
    SearchRequest request = request_for(model, count, 256);
    request.space.capacity = {CapacityPolicy{.capacity_factor = 1.0}};
    request.space.dispatcher = {Dispatcher::alltoall};
    request.top_k = 1;
    const SearchResult folded = search(request);
    request.space.folding = false;
    const SearchResult unfolded = search(request);
    ASSERT_FALSE(folded.plans.empty()) << model;
    ASSERT_FALSE(unfolded.plans.empty()) << model;
    const double best = folded.plans.front().plan.prediction->mfu;
    EXPECT_GE(best, paper_mfu.at(model)) << model;
    EXPECT_GT(best, unfolded.plans.front().plan.prediction->mfu) << model;
  }
}

} // namespace
} // namespace foldplan
