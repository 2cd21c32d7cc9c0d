// Mixed-radix rank layouts and the masked orthogonal group generator.
#include "parallel/rank_generator.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace foldplan {
namespace {

// stride[i] = Π_{j<i} size[j]: how far apart two ranks are that differ by one along dimension i.
std::vector<std::int64_t> strides_of(const RankLayout& layout) {
  std::vector<std::int64_t> strides;
  strides.reserve(layout.size());
  std::int64_t stride = 1;
  for (const RankDimension& dimension : layout) {
    strides.push_back(stride);
    stride *= dimension.size;
  }
  return strides;
}

// Σ digit[i] · stride[i], where the digits of `index` are taken in mixed radix over `sizes`
// (Megatron's decompose() followed by inner_product()).
std::int64_t spread_index(std::int64_t index, const std::vector<std::int64_t>& sizes,
                          const std::vector<std::int64_t>& strides) {
  std::int64_t rank = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    rank += (index % sizes[i]) * strides[i];
    index /= sizes[i];
  }
  return rank;
}

std::int64_t product_of(const std::vector<std::int64_t>& sizes) {
  std::int64_t product = 1;
  for (const std::int64_t size : sizes)
    product *= size;
  return product;
}

} // namespace

std::int64_t layout_world_size(const RankLayout& layout) {
  std::int64_t world_size = 1;
  for (const RankDimension& dimension : layout)
    world_size *= dimension.size;
  return world_size;
}

namespace {

// The layout split into the dimensions a group varies over and the ones that pick the group.
struct MaskedLayout {
  std::vector<std::int64_t> varying_sizes, varying_strides, fixed_sizes, fixed_strides;
};

MaskedLayout mask_layout(const RankLayout& layout, const std::vector<std::string>& varying) {
  for (const std::string& name : varying) {
    const bool known = std::any_of(layout.begin(), layout.end(),
                                   [&](const RankDimension& d) { return d.name == name; });
    if (!known)
      throw std::invalid_argument("rank layout has no dimension \"" + name + "\"");
  }
  const std::vector<std::int64_t> strides = strides_of(layout);
  MaskedLayout masked;
  for (std::size_t i = 0; i < layout.size(); ++i) {
    const bool varies = std::find(varying.begin(), varying.end(), layout[i].name) != varying.end();
    (varies ? masked.varying_sizes : masked.fixed_sizes).push_back(layout[i].size);
    (varies ? masked.varying_strides : masked.fixed_strides).push_back(strides[i]);
  }
  return masked;
}

RankGroup group_from_base(const MaskedLayout& masked, std::int64_t group_base) {
  const std::int64_t group_size = product_of(masked.varying_sizes);
  RankGroup group;
  group.reserve(static_cast<std::size_t>(group_size));
  for (std::int64_t member = 0; member < group_size; ++member) {
    group.push_back(group_base +
                    spread_index(member, masked.varying_sizes, masked.varying_strides));
  }
  return group;
}

} // namespace

// Megatron parallel_state.generate_masked_orthogonal_rank_groups(world_size, parallel_size, mask).
std::vector<RankGroup> generate_rank_groups(const RankLayout& layout,
                                            const std::vector<std::string>& varying) {
  const MaskedLayout masked = mask_layout(layout, varying);
  const std::int64_t group_count = product_of(masked.fixed_sizes);
  std::vector<RankGroup> groups;
  groups.reserve(static_cast<std::size_t>(group_count));
  for (std::int64_t group_index = 0; group_index < group_count; ++group_index) {
    groups.push_back(group_from_base(
        masked, spread_index(group_index, masked.fixed_sizes, masked.fixed_strides)));
  }
  return groups;
}

RankGroup group_holding_rank(const RankLayout& layout, const std::vector<std::string>& varying,
                             std::int64_t rank) {
  const MaskedLayout masked = mask_layout(layout, varying);
  // The group's first member: `rank` with every varying coordinate set to zero.
  std::int64_t group_base = rank;
  for (std::size_t i = 0; i < masked.varying_sizes.size(); ++i) {
    const std::int64_t coordinate = (rank / masked.varying_strides[i]) % masked.varying_sizes[i];
    group_base -= coordinate * masked.varying_strides[i];
  }
  return group_from_base(masked, group_base);
}

std::vector<std::int64_t> rank_coordinates(const RankLayout& layout, std::int64_t rank) {
  std::vector<std::int64_t> coordinates;
  coordinates.reserve(layout.size());
  for (const RankDimension& dimension : layout) {
    coordinates.push_back(rank % dimension.size);
    rank /= dimension.size;
  }
  return coordinates;
}

std::int64_t rank_at(const RankLayout& layout, const std::vector<std::int64_t>& coordinates) {
  if (coordinates.size() != layout.size()) {
    throw std::invalid_argument("rank_at needs one coordinate per layout dimension");
  }
  const std::vector<std::int64_t> strides = strides_of(layout);
  std::int64_t rank = 0;
  for (std::size_t i = 0; i < layout.size(); ++i) {
    rank += coordinates[i] * strides[i];
  }
  return rank;
}

} // namespace foldplan
