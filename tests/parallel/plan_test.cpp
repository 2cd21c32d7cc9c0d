#include "parallel/plan.hpp"

#include <gtest/gtest.h>

#include "core/errors.hpp"

namespace foldplan {
namespace {

// The paper's folded Mixtral-8x22B plan: 128 H100s, TP2 PP8 | ETP1 EP8 (Table 3).
Plan paper_plan() {
  Plan plan;
  plan.model = load_model("mixtral-8x22b");
  plan.cluster = load_cluster("dgx-h100");
  plan.gpus = 128;
  plan.training = {.seq_length = 4096, .global_batch_size = 256, .micro_batch_size = 1};
  plan.parallel = make_parallel_config(128, {.tp = 2, .pp = 8, .ep = 8, .etp = 1}, true);
  plan.options.capacity_factor = 1.0;
  return plan;
}

std::string error_of(const nlohmann::json& json) {
  try {
    plan_from_json(json);
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

TEST(Plan, DerivedSizesFollowTheWorld) {
  const Plan plan = paper_plan();
  EXPECT_EQ(plan.parallel.dp, 8);
  EXPECT_EQ(plan.parallel.edp, 2);
}

TEST(Plan, JsonRoundTripsExactly) {
  Plan plan = paper_plan();
  plan.prediction = Prediction{.step_time_s = 6.25,
                               .mfu = 0.493,
                               .tflops_per_gpu = 487.7,
                               .tokens_per_s_per_gpu = 1311.5,
                               .peak_memory_bytes = 7.1e10,
                               .fits = true,
                               .breakdown = {{"compute", 4.5}, {"bubble", 0.7}},
                               .memory = {{"weights", 1.2e10}}};
  const nlohmann::json json = plan_to_json(plan);
  EXPECT_EQ(json["schema"], "foldplan.plan/1");
  EXPECT_EQ(json["parallel"], (nlohmann::json{{"tp", 2},
                                              {"cp", 1},
                                              {"dp", 8},
                                              {"pp", 8},
                                              {"vpp", 1},
                                              {"etp", 1},
                                              {"ep", 8},
                                              {"edp", 2}}));
  const Plan read = plan_from_json(json);
  EXPECT_EQ(plan_to_json(read), json);
  EXPECT_EQ(read.parallel, plan.parallel);
  EXPECT_EQ(read.options, plan.options);
  EXPECT_EQ(read.prediction, plan.prediction);
  // Through text too, as a file holds it.
  EXPECT_EQ(plan_to_json(plan_from_json(nlohmann::json::parse(json.dump(2)))), json);
}

TEST(Plan, NewerSchemaIsRefused) {
  nlohmann::json json = plan_to_json(paper_plan());
  json["schema"] = "foldplan.plan/2";
  EXPECT_EQ(error_of(json),
            "plan.schema: \"foldplan.plan/2\" is newer than this foldplan reads (foldplan.plan/1); "
            "upgrade foldplan");
  json["schema"] = "other/1";
  EXPECT_NE(error_of(json).find("is not a foldplan plan"), std::string::npos);
}

TEST(Plan, UnknownKeysAndWrongTypesNameTheirPath) {
  nlohmann::json json = plan_to_json(paper_plan());
  json["parallel"]["tpp"] = 2;
  EXPECT_EQ(error_of(json), "plan.parallel.tpp: unknown key (check its spelling, or remove it)");

  json = plan_to_json(paper_plan());
  json["training"]["global_batch_size"] = "256";
  EXPECT_EQ(error_of(json),
            "plan.training.global_batch_size: expected an integer, got string \"256\"");

  json = plan_to_json(paper_plan());
  json["options"]["dispatcher"] = "deepep";
  EXPECT_EQ(error_of(json),
            "plan.options.dispatcher: \"deepep\" is not one of alltoall, allgather");

  json = plan_to_json(paper_plan());
  json.erase("gpus");
  EXPECT_EQ(error_of(json), "plan.gpus: is required but missing");
}

TEST(Plan, SizesInconsistentWithTheModelAreRefused) {
  nlohmann::json json = plan_to_json(paper_plan());
  json["parallel"]["ep"] = 16;
  json["parallel"]["edp"] = 1;
  const std::string error = error_of(json);
  EXPECT_NE(error.find("parallel.ep"), std::string::npos) << error;
  EXPECT_NE(error.find("16"), std::string::npos) << error;

  json = plan_to_json(paper_plan());
  json["gpus"] = 64;
  EXPECT_NE(error_of(json).find("world size 64"), std::string::npos) << error_of(json);
}

TEST(Plan, OptionRulesFollowMegatron) {
  Plan plan = paper_plan();
  plan.options.capacity_factor.reset();
  plan.options.pad_to_capacity = true;
  EXPECT_THROW(validate_plan(plan), InputError);

  plan = paper_plan();
  plan.options.overlap_moe_expert_parallel_comm = true; // PP 8 without VPP
  try {
    validate_plan(plan);
    FAIL();
  } catch (const InputError& error) {
    EXPECT_STREQ(error.what(),
                 "options.overlap_moe_expert_parallel_comm: true with pp 8 requires vpp > 1");
  }
}

} // namespace
} // namespace foldplan
