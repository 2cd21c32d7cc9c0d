// Memory per GPU of each pipeline stage as stacked bars (weights, gradients, optimizer state,
// activations, other) against the GPU's capacity.
#pragma once

#include <string>
#include <vector>

#include "costmodel/memory_model.hpp"

namespace foldplan::report {

// The stacked terms of one stage, in drawing order; they sum to memory.total_bytes().
std::vector<std::pair<std::string, double>> memory_stack(const MemoryBreakdown& memory);

std::string render_memory_chart(const std::vector<MemoryBreakdown>& stages,
                                double gpu_memory_bytes);

} // namespace foldplan::report
