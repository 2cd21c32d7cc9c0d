#include "topologies/topology_graph.hpp"

#include <algorithm>

#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/filtered_graph.hpp>

namespace foldplan {
namespace {

struct AllowedLinks {
  const TopologyGraph* graph = nullptr;
  unsigned kinds = 0; // bit i set: LinkKind i allowed
  bool operator()(const LinkId& link) const {
    return (kinds >> static_cast<unsigned>((*graph)[link].kind) & 1U) != 0;
  }
};

// Remembers, for every device reached, the link it was first reached through.
class ParentLinkRecorder : public boost::default_bfs_visitor {
public:
  explicit ParentLinkRecorder(std::vector<std::optional<LinkId>>& parent) : parent_(parent) {}
  template <typename Graph> void tree_edge(const LinkId& link, const Graph& graph) const {
    parent_[boost::target(link, graph)] = link;
  }

private:
  std::vector<std::optional<LinkId>>& parent_;
};

} // namespace

std::optional<std::vector<LinkId>> shortest_path(const TopologyGraph& graph, DeviceId from,
                                                 DeviceId to,
                                                 std::initializer_list<LinkKind> allowed) {
  if (from == to)
    return std::vector<LinkId>{};
  AllowedLinks filter{&graph, 0};
  for (const LinkKind kind : allowed)
    filter.kinds |= 1U << static_cast<unsigned>(kind);
  const boost::filtered_graph<TopologyGraph, AllowedLinks> view(graph, filter);

  std::vector<std::optional<LinkId>> parent(boost::num_vertices(graph));
  boost::breadth_first_search(view, from, boost::visitor(ParentLinkRecorder(parent)));
  if (!parent[to])
    return std::nullopt;

  std::vector<LinkId> path;
  for (DeviceId device = to; device != from;) {
    const LinkId link = *parent[device];
    path.push_back(link);
    device = boost::source(link, graph) == device ? boost::target(link, graph)
                                                  : boost::source(link, graph);
  }
  std::reverse(path.begin(), path.end());
  return path;
}

} // namespace foldplan
