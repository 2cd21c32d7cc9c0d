// `foldplan run --layers L`: the plan's model cut to L decoder layers, every per-layer shape kept
// (hidden, heads, experts, FFN sizes, batch and sequence), so a model too large for the GPUs at
// hand still runs its real layers.
#pragma once

#include <cstdint>

#include "parallel/plan.hpp"

namespace foldplan::cli {

// The plan with L layers (a list-form MoE layer pattern keeps its first L entries) and no
// prediction (it was the full model's). InputError on "--layers" naming the rule the smaller model
// breaks (L not split evenly over PP·VPP, no MoE layer left…).
Plan scale_plan_layers(const Plan& plan, std::int64_t layers);

} // namespace foldplan::cli
