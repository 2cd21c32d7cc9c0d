#include "planner/search_points.hpp"

#include <algorithm>

namespace foldplan {

bool dominates(const SearchPoint& a, const SearchPoint& b) {
  return a.step_time_s <= b.step_time_s && a.peak_memory_bytes <= b.peak_memory_bytes &&
         (a.step_time_s < b.step_time_s || a.peak_memory_bytes < b.peak_memory_bytes);
}

void add_to_pareto_front(std::vector<SearchPoint>& front, const SearchPoint& point) {
  for (const SearchPoint& member : front) {
    if (dominates(member, point) || (member.step_time_s == point.step_time_s &&
                                     member.peak_memory_bytes == point.peak_memory_bytes))
      return;
  }
  std::erase_if(front, [&](const SearchPoint& member) { return dominates(point, member); });
  front.push_back(point);
}

std::vector<SearchPoint> pareto_front(const std::vector<SearchPoint>& points) {
  // In index order, so of two points with the same time and memory the first in the space stays
  // whatever order the workers found them in.
  std::vector<SearchPoint> ordered = points;
  std::sort(ordered.begin(), ordered.end(),
            [](const SearchPoint& a, const SearchPoint& b) { return a.index < b.index; });
  std::vector<SearchPoint> front;
  for (const SearchPoint& point : ordered)
    add_to_pareto_front(front, point);
  std::sort(front.begin(), front.end(), [](const SearchPoint& a, const SearchPoint& b) {
    return a.step_time_s != b.step_time_s ? a.step_time_s < b.step_time_s : a.index < b.index;
  });
  return front;
}

std::uint64_t sample_key(std::int64_t index) {
  // splitmix64's finaliser: consecutive indices land far apart.
  auto hash = static_cast<std::uint64_t>(index) + 0x9E3779B97F4A7C15ULL;
  hash = (hash ^ (hash >> 30)) * 0xBF58476D1CE4E5B9ULL;
  hash = (hash ^ (hash >> 27)) * 0x94D049BB133111EBULL;
  return hash ^ (hash >> 31);
}

void trim_sample(std::vector<SearchPoint>& sample, std::size_t keep) {
  const auto by_key = [](const SearchPoint& a, const SearchPoint& b) {
    return sample_key(a.index) < sample_key(b.index);
  };
  if (sample.size() > keep) {
    std::nth_element(sample.begin(), sample.begin() + static_cast<std::ptrdiff_t>(keep),
                     sample.end(), by_key);
    sample.resize(keep);
  }
  std::sort(sample.begin(), sample.end(),
            [](const SearchPoint& a, const SearchPoint& b) { return a.index < b.index; });
}

} // namespace foldplan
