// The measured-vs-predicted file `foldplan report --validation FILE` draws (docs/report.md) and
// `foldplan validate -o` writes: a JSON object whose keys name a step or an op class and whose
// values are {"predicted_s": seconds, "measured_s": seconds}, e.g.
//   {"step": {"predicted_s": 1.52, "measured_s": 1.61},
//    "gemm": {"predicted_s": 0.91, "measured_s": 0.95}}
// An entry may also hold "relative_error" (a number) and "ops" (a count), which `validate` writes;
// any other key inside an entry is an error, so a misspelt field does not pass silently. The
// top-level keys that describe the run (kValidationMetadataKeys) are not entries and are skipped.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace foldplan::report {

inline constexpr std::string_view kValidationSchema = "foldplan.validation/1";

// What `foldplan validate` writes beside the entries: the schema (checked when present), what ran
// (plan, model, layers, device, world size, routing, calibration, steps, the slowest rank, a note
// on how attention was priced) and the per-program view.
inline constexpr std::array<std::string_view, 14> kValidationMetadataKeys = {
    "schema",       "plan",           "model",       "layers",       "device",
    "world_size",   "routing",        "calibration", "warmup_steps", "timed_steps",
    "slowest_rank", "attention_note", "programs",    "ops_by_name"};

struct ValidationEntry {
  std::string name;
  double predicted_s = 0;
  double measured_s = 0;

  // measured / predicted − 1 (how far off the prediction is), 0 when nothing was predicted.
  double error() const { return predicted_s > 0 ? measured_s / predicted_s - 1 : 0.0; }
};

// "step" first when present, then the others in name order. InputError naming the entry's field
// for anything else than non-negative numbers under those two keys (and the optional ones above),
// for a newer schema, and for an object without entries.
std::vector<ValidationEntry> validation_from_json(const nlohmann::json& json,
                                                  const std::string& path = "validation");
std::vector<ValidationEntry> load_validation(const std::string& path);

} // namespace foldplan::report
