// Which transformer layers a pipeline chunk holds under Megatron's even split, with or without
// virtual pipeline stages (interleaving).
#pragma once

#include <cstdint>

namespace foldplan {

// Layers [first, end), 0-based.
struct LayerRange {
  std::int64_t first = 0;
  std::int64_t end = 0;

  std::int64_t count() const { return end - first; }
  bool operator==(const LayerRange&) const = default;
};

// The layers of virtual chunk `vpp_rank` on pipeline rank `pp_rank`. Requires
// num_layers % (pp · vpp) == 0, 0 <= pp_rank < pp and 0 <= vpp_rank < vpp (std::invalid_argument
// otherwise: validate the configuration first).
LayerRange layers_of_stage(std::int64_t num_layers, std::int64_t pp, std::int64_t vpp,
                           std::int64_t pp_rank, std::int64_t vpp_rank);

} // namespace foldplan
