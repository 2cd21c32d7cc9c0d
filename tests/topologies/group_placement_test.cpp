#include "topologies/group_placement.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

namespace foldplan {
namespace {

std::vector<std::int64_t> range(std::int64_t first, std::int64_t count, std::int64_t stride = 1) {
  std::vector<std::int64_t> ranks;
  for (std::int64_t i = 0; i < count; ++i)
    ranks.push_back(first + i * stride);
  return ranks;
}

std::vector<std::string> level_names(const GroupPlacement& placement) {
  std::vector<std::string> names;
  for (const LinkLevel& level : placement.levels)
    names.push_back(level.name);
  return names;
}

ClusterSpec dgx_h100_with_oversubscription(double oversubscription) {
  ClusterSpec spec = load_cluster("dgx-h100");
  spec.oversubscription = oversubscription;
  return spec;
}

const LinkLevel kH100Nvlink{"nvlink", 450e9, 3.4e-6};
const LinkLevel kH100Network{"network", 50e9, 9.6e-6};

TEST(GroupPlacement, OneNodeTalksOverNvlinkOnly) {
  const Cluster cluster(load_cluster("dgx-h100"), 128);
  const GroupPlacement placement = place_group(cluster, range(0, 8));
  EXPECT_EQ(placement.num_ranks, 8);
  EXPECT_EQ(placement.num_nodes, 1);
  EXPECT_EQ(placement.num_domains, 1);
  EXPECT_EQ(placement.max_ranks_per_node, 8);
  EXPECT_TRUE(placement.uniform);
  EXPECT_TRUE(placement.within_one_nvlink_domain());
  EXPECT_EQ(placement.levels, std::vector<LinkLevel>{kH100Nvlink});
}

TEST(GroupPlacement, TwoNeighboursAreIntraNode) {
  const Cluster cluster(load_cluster("dgx-h100"), 128);
  const GroupPlacement placement = place_group(cluster, std::vector<std::int64_t>{0, 1});
  EXPECT_EQ(placement.num_nodes, 1);
  EXPECT_EQ(placement.max_ranks_per_node, 2);
  EXPECT_EQ(placement.levels, std::vector<LinkLevel>{kH100Nvlink});
}

TEST(GroupPlacement, StridedDataParallelGroupHasOneRankPerNodeAndUsesTheNetworkOnly) {
  const Cluster cluster(load_cluster("dgx-h100"), 128);
  const GroupPlacement placement = place_group(cluster, range(0, 16, 8));
  EXPECT_EQ(placement.num_nodes, 16);
  EXPECT_EQ(placement.num_domains, 16);
  EXPECT_EQ(placement.max_ranks_per_node, 1);
  EXPECT_EQ(placement.max_ranks_per_domain, 1);
  EXPECT_TRUE(placement.uniform);
  EXPECT_FALSE(placement.within_one_nvlink_domain());
  EXPECT_EQ(placement.levels, std::vector<LinkLevel>{kH100Network}); // 400 Gb/s per GPU
}

TEST(GroupPlacement, TwoFullNodesCrossNvlinkThenTheNetwork) {
  const Cluster cluster(load_cluster("dgx-h100"), 128);
  const GroupPlacement placement = place_group(cluster, range(16, 16));
  EXPECT_EQ(placement.num_nodes, 2);
  EXPECT_EQ(placement.max_ranks_per_node, 8);
  EXPECT_EQ(placement.levels, (std::vector<LinkLevel>{kH100Nvlink, kH100Network}));
  EXPECT_EQ(placement.find_level("network")->bw_Bps, 50e9);
  EXPECT_EQ(placement.find_level("spine"), nullptr);
}

TEST(GroupPlacement, UnevenGroupIsNotUniform) {
  const Cluster cluster(load_cluster("dgx-h100"), 128);
  const GroupPlacement placement = place_group(cluster, std::vector<std::int64_t>{0, 1, 2, 8});
  EXPECT_EQ(placement.num_nodes, 2);
  EXPECT_EQ(placement.max_ranks_per_node, 3);
  EXPECT_FALSE(placement.uniform);
  EXPECT_EQ(level_names(placement), (std::vector<std::string>{"nvlink", "network"}));
}

TEST(GroupPlacement, OrderOfRanksDoesNotMatter) {
  const Cluster cluster(load_cluster("dgx-h100"), 128);
  const std::vector<std::int64_t> shuffled{17, 3, 9, 1, 120};
  const std::vector<std::int64_t> sorted{1, 3, 9, 17, 120};
  const GroupPlacement a = place_group(cluster, shuffled);
  const GroupPlacement b = place_group(cluster, sorted);
  EXPECT_EQ(a.num_nodes, 4);
  EXPECT_EQ(a.num_nodes, b.num_nodes);
  EXPECT_EQ(a.max_ranks_per_node, b.max_ranks_per_node);
  EXPECT_EQ(a.uniform, b.uniform);
  EXPECT_EQ(a.levels, b.levels);
}

TEST(GroupPlacement, ASingleRankCrossesNothing) {
  const Cluster cluster(load_cluster("dgx-h100"), 128);
  const GroupPlacement placement = place_group(cluster, std::vector<std::int64_t>{42});
  EXPECT_EQ(placement.num_nodes, 1);
  EXPECT_EQ(placement.max_ranks_per_node, 1);
  EXPECT_TRUE(placement.levels.empty());
}

TEST(GroupPlacement, Gb200DomainOf72GpusSpans18TraysOverNvlink) {
  const Cluster cluster(load_cluster("gb200-nvl72"), 144);
  const GroupPlacement domain = place_group(cluster, range(0, 72));
  EXPECT_EQ(domain.num_nodes, 18);
  EXPECT_EQ(domain.num_domains, 1);
  EXPECT_EQ(domain.max_ranks_per_node, 4);
  EXPECT_TRUE(domain.within_one_nvlink_domain());
  EXPECT_EQ(domain.levels, (std::vector<LinkLevel>{{"nvlink", 900e9, 3.4e-6}}));

  // Trays 0 and 18 are in different domains but under the same leaf switches.
  const GroupPlacement pair = place_group(cluster, std::vector<std::int64_t>{0, 72});
  EXPECT_EQ(pair.num_domains, 2);
  EXPECT_EQ(pair.levels, (std::vector<LinkLevel>{{"network", 50e9, 9.6e-6}}));

  // Tray 32 is in the second leaf group.
  const GroupPlacement far = place_group(cluster, std::vector<std::int64_t>{0, 128});
  EXPECT_EQ(level_names(far), (std::vector<std::string>{"network", "spine"}));

  const GroupPlacement everything = place_group(cluster, range(0, 144));
  EXPECT_EQ(everything.num_domains, 2);
  EXPECT_EQ(everything.num_leaf_groups, 2);
  EXPECT_EQ(everything.max_ranks_per_domain, 72);
  EXPECT_EQ(level_names(everything), (std::vector<std::string>{"nvlink", "network", "spine"}));
}

TEST(GroupPlacement, Gb200GroupInsideOneDomainAcrossLeafGroupsStaysOnNvlink) {
  // Domain 1 holds trays 18..35; trays 32..35 are in the second leaf group.
  const Cluster cluster(load_cluster("gb200-nvl72"), 144);
  const GroupPlacement placement = place_group(cluster, std::vector<std::int64_t>{72, 143});
  EXPECT_EQ(placement.num_leaf_groups, 2);
  EXPECT_TRUE(placement.within_one_nvlink_domain());
  EXPECT_EQ(level_names(placement), std::vector<std::string>{"nvlink"});
}

TEST(GroupPlacement, PartialNodeOfFourGpus) {
  const Cluster cluster(load_cluster("dgx-h100"), 4);
  const GroupPlacement placement = place_group(cluster, range(0, 4));
  EXPECT_EQ(placement.num_nodes, 1);
  EXPECT_EQ(placement.max_ranks_per_node, 4);
  EXPECT_EQ(placement.levels, std::vector<LinkLevel>{kH100Nvlink});
}

TEST(GroupPlacement, OversubscriptionTwoHalvesTheSpineShareAcrossLeafGroups) {
  const Cluster cluster(dgx_h100_with_oversubscription(2), 512);
  const GroupPlacement across = place_group(cluster, std::vector<std::int64_t>{0, 256});
  EXPECT_EQ(across.num_leaf_groups, 2);
  EXPECT_EQ(across.levels, (std::vector<LinkLevel>{kH100Network, {"spine", 25e9, 9.6e-6}}));

  const GroupPlacement within = place_group(cluster, std::vector<std::int64_t>{0, 248});
  EXPECT_EQ(within.levels, std::vector<LinkLevel>{kH100Network}); // nodes 0 and 31

  const Cluster non_blocking(dgx_h100_with_oversubscription(1), 512);
  EXPECT_EQ(place_group(non_blocking, std::vector<std::int64_t>{0, 256}).levels[1].bw_Bps, 50e9);
}

TEST(GroupPlacement, CallersBugsAreRefused) {
  const Cluster cluster(load_cluster("dgx-h100"), 128);
  EXPECT_THROW(place_group(cluster, std::vector<std::int64_t>{}), std::invalid_argument);
  EXPECT_THROW(place_group(cluster, std::vector<std::int64_t>{0, 128}), std::invalid_argument);
  EXPECT_THROW(place_group(cluster, std::vector<std::int64_t>{-1, 3}), std::invalid_argument);
  EXPECT_THROW(place_group(cluster, std::vector<std::int64_t>{5, 2, 5}), std::invalid_argument);
}

// The arithmetic answer against a plain recount of the same groups with maps.
TEST(GroupPlacement, CountsAgreeWithARecountOnRandomGroups) {
  const Cluster cluster(load_cluster("gb200-nvl72"), 288);
  std::mt19937_64 random(14960);
  std::vector<std::int64_t> all(288);
  std::iota(all.begin(), all.end(), 0);
  for (int trial = 0; trial < 500; ++trial) {
    std::shuffle(all.begin(), all.end(), random);
    const auto size = std::uniform_int_distribution<std::size_t>(1, 40)(random);
    const std::vector<std::int64_t> group(all.begin(), all.begin() + static_cast<long>(size));

    std::map<std::int64_t, std::int64_t> per_node, per_domain, per_leaf_group;
    for (const std::int64_t rank : group) {
      ++per_node[rank / 4];
      ++per_domain[rank / 72];
      ++per_leaf_group[rank / 4 / 32];
    }
    const auto most = [](const std::map<std::int64_t, std::int64_t>& counts) {
      std::int64_t best = 0;
      for (const auto& [key, count] : counts)
        best = std::max(best, count);
      return best;
    };
    const auto least = [](const std::map<std::int64_t, std::int64_t>& counts) {
      std::int64_t best = std::numeric_limits<std::int64_t>::max();
      for (const auto& [key, count] : counts)
        best = std::min(best, count);
      return best;
    };

    const GroupPlacement placement = place_group(cluster, group);
    ASSERT_EQ(placement.num_ranks, static_cast<std::int64_t>(size));
    ASSERT_EQ(placement.num_nodes, static_cast<std::int64_t>(per_node.size()));
    ASSERT_EQ(placement.num_domains, static_cast<std::int64_t>(per_domain.size()));
    ASSERT_EQ(placement.num_leaf_groups, static_cast<std::int64_t>(per_leaf_group.size()));
    ASSERT_EQ(placement.max_ranks_per_node, most(per_node));
    ASSERT_EQ(placement.uniform, most(per_node) == least(per_node));
    ASSERT_EQ(placement.max_ranks_per_domain, most(per_domain));
    ASSERT_EQ(placement.find_level("nvlink") != nullptr, most(per_domain) >= 2);
    ASSERT_EQ(placement.find_level("network") != nullptr, per_domain.size() >= 2);
    ASSERT_EQ(placement.find_level("spine") != nullptr,
              per_domain.size() >= 2 && per_leaf_group.size() >= 2);
  }
}

// The closed form against the graph: the bottleneck and latency on the path between two members.
LinkLevel along_path(const Cluster& cluster, std::int64_t from, std::int64_t to,
                     std::initializer_list<LinkKind> allowed) {
  const auto path =
      shortest_path(cluster.graph(), cluster.gpu_device(from), cluster.gpu_device(to), allowed);
  EXPECT_TRUE(path);
  LinkLevel level{"path", std::numeric_limits<double>::infinity(), 0};
  for (const LinkId& link : path.value_or(std::vector<LinkId>{})) {
    const Link& properties = cluster.graph()[link];
    level.bw_Bps = std::min(level.bw_Bps, properties.bw_Bps / properties.gpus_sharing);
    level.latency_s += properties.latency_s;
  }
  return level;
}

TEST(GroupPlacement, LevelFiguresEqualTheBottleneckOnThePathBetweenMembers) {
  ClusterSpec shared_nics = dgx_h100_with_oversubscription(3);
  shared_nics.nics_per_node = 2; // four GPUs behind each NIC
  for (const ClusterSpec& spec :
       {dgx_h100_with_oversubscription(2), shared_nics, load_cluster("gb200-nvl72")}) {
    SCOPED_TRACE(spec.name + " oversubscription " + std::to_string(spec.oversubscription));
    const Cluster cluster(spec, 512);
    const std::int64_t next_domain = spec.nvlink_domain_gpus;
    const std::int64_t next_leaf_group = spec.nodes_per_leaf * spec.gpus_per_node;
    const std::vector<std::pair<std::int64_t, std::int64_t>> pairs{
        {0, 1}, {0, next_domain}, {0, next_leaf_group}};
    for (const auto& [from, to] : pairs) {
      const GroupPlacement placement = place_group(cluster, std::vector<std::int64_t>{from, to});
      const LinkLevel& outermost = placement.levels.back();
      const LinkLevel path =
          outermost.name == "nvlink"
              ? along_path(cluster, from, to, {LinkKind::nvlink})
              : along_path(cluster, from, to, {LinkKind::host, LinkKind::rail, LinkKind::uplink});
      EXPECT_DOUBLE_EQ(outermost.bw_Bps, path.bw_Bps) << from << " to " << to;
      EXPECT_DOUBLE_EQ(outermost.latency_s, path.latency_s) << from << " to " << to;
    }
  }
}

} // namespace
} // namespace foldplan
