// Even layer split over pipeline ranks and their virtual chunks.
#include "parallel/layer_placement.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace foldplan {

// Megatron transformer_block.get_transformer_layer_offset (even split) and the
// initialize_model_parallel docstring: chunk v of pipeline rank r holds the (v·PP + r)-th block of
// L / (PP·VPP) consecutive layers, so PP4 VPP2 L16 puts layers [0,2) and [8,10) on rank 0.
LayerRange layers_of_stage(std::int64_t num_layers, std::int64_t pp, std::int64_t vpp,
                           std::int64_t pp_rank, std::int64_t vpp_rank) {
  const bool valid = num_layers > 0 && pp > 0 && vpp > 0 && num_layers % (pp * vpp) == 0 &&
                     pp_rank >= 0 && pp_rank < pp && vpp_rank >= 0 && vpp_rank < vpp;
  if (!valid) {
    throw std::invalid_argument(
        fmt::format("layers_of_stage(num_layers {}, pp {}, vpp {}, pp_rank {}, vpp_rank {}): "
                    "not an even split",
                    num_layers, pp, vpp, pp_rank, vpp_rank));
  }
  const std::int64_t layers_per_chunk = num_layers / (pp * vpp);
  const std::int64_t first = (vpp_rank * pp + pp_rank) * layers_per_chunk;
  return {first, first + layers_per_chunk};
}

} // namespace foldplan
