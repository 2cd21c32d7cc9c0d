// Prediction: what the cost model or simulator says one plan will do. Its JSON keys are those of
// `foldplan estimate --json`, so a plan file carries the same numbers the command printed.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace foldplan {

struct Prediction {
  double step_time_s = 0;
  double mfu = 0; // fraction of the GPU's dense peak, Megatron's model FLOPs
  double tflops_per_gpu = 0;
  double tokens_per_s_per_gpu = 0;
  double peak_memory_bytes = 0;
  bool fits = false;
  std::map<std::string, double> breakdown; // seconds per cost term ("compute", "ep_comm", "bubble")
  std::map<std::string, double> memory;    // bytes per memory term of the most loaded GPU

  bool operator==(const Prediction&) const = default;
};

Prediction prediction_from_json(const nlohmann::json& json, const std::string& path = "prediction");
nlohmann::json prediction_to_json(const Prediction& prediction);

} // namespace foldplan
