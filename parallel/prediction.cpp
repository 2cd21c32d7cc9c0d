#include "parallel/prediction.hpp"

#include "core/json_object.hpp"

namespace foldplan {

Prediction prediction_from_json(const nlohmann::json& json, const std::string& path) {
  JsonObject object(json, path);
  Prediction prediction;
  prediction.step_time_s = object.positive_number("step_time_s");
  prediction.mfu = object.non_negative_number_or("mfu", 0.0);
  prediction.tflops_per_gpu = object.non_negative_number_or("tflops_per_gpu", 0.0);
  prediction.tokens_per_s_per_gpu = object.non_negative_number_or("tokens_per_s_per_gpu", 0.0);
  prediction.peak_memory_bytes = object.non_negative_number_or("peak_memory_bytes", 0.0);
  prediction.fits = object.boolean("fits");
  if (object.has("breakdown"))
    prediction.breakdown = object.number_map("breakdown");
  if (object.has("memory"))
    prediction.memory = object.number_map("memory");
  object.reject_unknown_keys();
  return prediction;
}

nlohmann::json prediction_to_json(const Prediction& prediction) {
  return {
      {"step_time_s", prediction.step_time_s},
      {"mfu", prediction.mfu},
      {"tflops_per_gpu", prediction.tflops_per_gpu},
      {"tokens_per_s_per_gpu", prediction.tokens_per_s_per_gpu},
      {"peak_memory_bytes", prediction.peak_memory_bytes},
      {"fits", prediction.fits},
      {"breakdown", prediction.breakdown},
      {"memory", prediction.memory},
  };
}

} // namespace foldplan
