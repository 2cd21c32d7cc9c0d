// Layer placement over pipeline ranks and virtual chunks, against Megatron's docstring example.
#include "parallel/layer_placement.hpp"

#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

namespace foldplan {
namespace {

// Megatron initialize_model_parallel docstring: PP4, VPP2, 16 layers → GPU0 holds layers 1,2 and
// 9,10 (1-based), i.e. [0,2) and [8,10).
TEST(LayerPlacement, InterleavedChunksFollowMegatronsExample) {
  EXPECT_EQ(layers_of_stage(16, 4, 2, 0, 0), (LayerRange{0, 2}));
  EXPECT_EQ(layers_of_stage(16, 4, 2, 0, 1), (LayerRange{8, 10}));
  EXPECT_EQ(layers_of_stage(16, 4, 2, 1, 0), (LayerRange{2, 4}));
  EXPECT_EQ(layers_of_stage(16, 4, 2, 3, 1), (LayerRange{14, 16}));
}

TEST(LayerPlacement, WithoutInterleavingEachRankHoldsOneContiguousBlock) {
  EXPECT_EQ(layers_of_stage(56, 4, 1, 0, 0), (LayerRange{0, 14}));
  EXPECT_EQ(layers_of_stage(56, 4, 1, 3, 0), (LayerRange{42, 56}));
  EXPECT_EQ(layers_of_stage(56, 1, 1, 0, 0).count(), 56);
}

TEST(LayerPlacement, ChunksCoverEveryLayerExactlyOnce) {
  const std::int64_t layers = 48, pp = 4, vpp = 3;
  std::vector<int> owners(layers, 0);
  for (std::int64_t rank = 0; rank < pp; ++rank) {
    for (std::int64_t chunk = 0; chunk < vpp; ++chunk) {
      const LayerRange range = layers_of_stage(layers, pp, vpp, rank, chunk);
      EXPECT_EQ(range.count(), layers / (pp * vpp));
      for (std::int64_t layer = range.first; layer < range.end; ++layer)
        ++owners[layer];
    }
  }
  for (std::int64_t layer = 0; layer < layers; ++layer)
    EXPECT_EQ(owners[layer], 1) << layer;
}

TEST(LayerPlacement, UnevenSplitOrOutOfRangeStageIsAProgrammingError) {
  EXPECT_THROW(layers_of_stage(30, 4, 1, 0, 0), std::invalid_argument);
  EXPECT_THROW(layers_of_stage(16, 4, 2, 4, 0), std::invalid_argument);
  EXPECT_THROW(layers_of_stage(16, 4, 2, 0, 2), std::invalid_argument);
}

} // namespace
} // namespace foldplan
