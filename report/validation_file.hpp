// The measured-vs-predicted file `foldplan report --validation FILE` draws (docs/report.md):
// a JSON object whose keys name a step or an op class and whose values are
// {"predicted_s": seconds, "measured_s": seconds}, e.g.
//   {"step": {"predicted_s": 1.52, "measured_s": 1.61},
//    "gemm": {"predicted_s": 0.91, "measured_s": 0.95}}
// Any other key inside an entry is an error, so a misspelt field does not pass silently.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace foldplan::report {

struct ValidationEntry {
  std::string name;
  double predicted_s = 0;
  double measured_s = 0;

  // measured / predicted − 1 (how far off the prediction is), 0 when nothing was predicted.
  double error() const { return predicted_s > 0 ? measured_s / predicted_s - 1 : 0.0; }
};

// "step" first when present, then the others in name order. InputError naming the entry's field
// for anything else than non-negative numbers under those two keys, and for an empty object.
std::vector<ValidationEntry> validation_from_json(const nlohmann::json& json,
                                                  const std::string& path = "validation");
std::vector<ValidationEntry> load_validation(const std::string& path);

} // namespace foldplan::report
