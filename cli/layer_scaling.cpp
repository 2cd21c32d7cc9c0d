#include "cli/layer_scaling.hpp"

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan::cli {

Plan scale_plan_layers(const Plan& plan, std::int64_t layers) {
  if (layers <= 0)
    throw InputError("--layers", fmt::format("{} is not a positive integer", layers));
  Plan scaled = plan;
  scaled.model.num_layers = layers;
  std::vector<bool>& pattern = scaled.model.moe.layer_pattern;
  if (static_cast<std::int64_t>(pattern.size()) > layers)
    pattern.resize(static_cast<std::size_t>(layers));
  scaled.prediction.reset();
  try {
    validate_model(scaled.model);
    validate_plan(scaled);
  } catch (const InputError& error) {
    throw InputError("--layers",
                     fmt::format("{} layers: {}: {}", layers, error.field(), error.rule()));
  }
  return scaled;
}

} // namespace foldplan::cli
