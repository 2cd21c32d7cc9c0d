#include "parallel/plan.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "core/file_io.hpp"
#include "core/json_object.hpp"
#include "core/schema_version.hpp"

namespace foldplan {

void validate_plan(const Plan& plan) {
  if (plan.gpus <= 0) {
    throw InputError("plan.gpus", fmt::format("{} is not a positive integer", plan.gpus));
  }
  if (auto violation = find_violation(plan.parallel, plan.model, plan.training, plan.gpus,
                                      plan.options.folding)) {
    throw InputError(violation->field, violation->rule);
  }
  validate_plan_options(plan.options, plan.parallel, plan.model.is_moe());
  // Megatron-Core (TE's a2a context parallelism) scatters the attention heads of each TP rank
  // over the CP ranks: both head counts must divide.
  if (plan.options.cp_comm_type == CpCommType::a2a && plan.parallel.cp > 1) {
    const std::int64_t heads = plan.model.num_attention_heads / plan.parallel.tp;
    const std::int64_t kv_heads =
        std::max<std::int64_t>(1, plan.model.num_query_groups / plan.parallel.tp);
    if (heads % plan.parallel.cp != 0 || kv_heads % plan.parallel.cp != 0) {
      throw InputError("options.cp_comm_type",
                       fmt::format("a2a needs cp {} to divide the heads per TP rank ({} query, {} "
                                   "key/value)",
                                   plan.parallel.cp, heads, kv_heads));
    }
  }
}

Plan plan_from_json(const nlohmann::json& json) {
  JsonObject object(json, "plan");
  check_schema_version(object.string("schema"), kPlanSchema, "plan", "plan.schema");
  Plan plan;
  plan.model = model_from_json(object.value("model"), object.field("model"));
  plan.cluster = cluster_from_json(object.value("cluster"), object.field("cluster"));
  plan.gpus = object.positive_integer("gpus");
  plan.training = training_from_json(object.value("training"), object.field("training"));
  plan.parallel = parallel_from_json(object.value("parallel"), object.field("parallel"));
  if (const nlohmann::json* options = object.optional_value("options")) {
    plan.options = options_from_json(*options, object.field("options"));
  }
  if (const nlohmann::json* prediction = object.optional_value("prediction")) {
    plan.prediction = prediction_from_json(*prediction, object.field("prediction"));
  }
  object.reject_unknown_keys();
  validate_plan(plan);
  return plan;
}

nlohmann::json plan_to_json(const Plan& plan) {
  nlohmann::json json = {
      {"schema", kPlanSchema},
      {"model", model_to_json(plan.model)},
      {"cluster", cluster_to_json(plan.cluster)},
      {"gpus", plan.gpus},
      {"training", training_to_json(plan.training)},
      {"parallel", parallel_to_json(plan.parallel)},
      {"options", options_to_json(plan.options)},
  };
  if (plan.prediction)
    json["prediction"] = prediction_to_json(*plan.prediction);
  return json;
}

Plan load_plan(const std::string& path) {
  return plan_from_json(read_json_file(path));
}

void save_plan(const Plan& plan, const std::string& path) {
  write_file_atomically(path, plan_to_json(plan).dump(2) + "\n");
}

} // namespace foldplan
