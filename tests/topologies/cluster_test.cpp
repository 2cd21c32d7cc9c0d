#include "topologies/cluster.hpp"

#include <map>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "input_error_message.hpp"

namespace foldplan {
namespace {

using testing::input_error_message;

std::map<DeviceKind, int> count_devices(const Cluster& cluster) {
  std::map<DeviceKind, int> counts;
  for (const DeviceId device : boost::make_iterator_range(boost::vertices(cluster.graph()))) {
    ++counts[cluster.graph()[device].kind];
  }
  return counts;
}

std::map<LinkKind, int> count_links(const Cluster& cluster) {
  std::map<LinkKind, int> counts;
  for (const LinkId& link : boost::make_iterator_range(boost::edges(cluster.graph()))) {
    ++counts[cluster.graph()[link].kind];
  }
  return counts;
}

ClusterSpec dgx_h100_with_oversubscription(double oversubscription) {
  ClusterSpec spec = load_cluster("dgx-h100");
  spec.oversubscription = oversubscription;
  return spec;
}

TEST(Cluster, Dgx128GpusIs16NodesOnOneLeafGroup) {
  const Cluster cluster(load_cluster("dgx-h100"), 128);
  EXPECT_EQ(cluster.num_gpus(), 128);
  EXPECT_EQ(cluster.num_nodes(), 16);
  EXPECT_EQ(cluster.num_nvlink_domains(), 16);
  EXPECT_EQ(cluster.num_leaf_groups(), 1);

  const auto devices = count_devices(cluster);
  EXPECT_EQ(devices.at(DeviceKind::gpu), 128);
  EXPECT_EQ(devices.at(DeviceKind::nvswitch), 16);
  EXPECT_EQ(devices.at(DeviceKind::nic), 128);
  EXPECT_EQ(devices.at(DeviceKind::leaf_switch), 8); // one per rail
  EXPECT_EQ(devices.count(DeviceKind::spine_switch), 0U);
  const auto links = count_links(cluster);
  EXPECT_EQ(links.at(LinkKind::nvlink), 128);
  EXPECT_EQ(links.at(LinkKind::host), 128);
  EXPECT_EQ(links.at(LinkKind::rail), 128);
  EXPECT_EQ(links.count(LinkKind::uplink), 0U);
}

TEST(Cluster, RankRRunsOnGpuROfNodeRDividedByGpusPerNode) {
  const Cluster cluster(load_cluster("dgx-h100"), 512);
  EXPECT_EQ(cluster.node_of(0), 0);
  EXPECT_EQ(cluster.node_of(7), 0);
  EXPECT_EQ(cluster.node_of(8), 1);
  EXPECT_EQ(cluster.nvlink_domain_of(15), 1);
  EXPECT_EQ(cluster.leaf_group_of(255), 0); // node 31
  EXPECT_EQ(cluster.leaf_group_of(256), 1); // node 32
  EXPECT_EQ(cluster.graph()[cluster.gpu_device(37)].kind, DeviceKind::gpu);
  EXPECT_EQ(cluster.graph()[cluster.gpu_device(37)].index, 37);
}

TEST(Cluster, LevelFiguresOfADgxH100) {
  const Cluster cluster(load_cluster("dgx-h100"), 128);
  ASSERT_TRUE(cluster.nvlink_level());
  EXPECT_EQ(*cluster.nvlink_level(), (LinkLevel{"nvlink", 450e9, 3.4e-6}));
  EXPECT_EQ(cluster.network_level(), (LinkLevel{"network", 50e9, 9.6e-6}));
  EXPECT_FALSE(cluster.spine_level());
}

TEST(Cluster, TwoLeafGroupsMeetAtASpineWhoseShareShrinksWithOversubscription) {
  const Cluster blocking_free(dgx_h100_with_oversubscription(1), 512);
  EXPECT_EQ(blocking_free.num_leaf_groups(), 2);
  EXPECT_EQ(count_devices(blocking_free).at(DeviceKind::spine_switch), 1);
  EXPECT_EQ(count_devices(blocking_free).at(DeviceKind::leaf_switch), 16);
  EXPECT_EQ(count_links(blocking_free).at(LinkKind::uplink), 16);
  ASSERT_TRUE(blocking_free.spine_level());
  EXPECT_EQ(*blocking_free.spine_level(), (LinkLevel{"spine", 50e9, 9.6e-6}));

  const Cluster oversubscribed(dgx_h100_with_oversubscription(2), 512);
  ASSERT_TRUE(oversubscribed.spine_level());
  EXPECT_EQ(oversubscribed.spine_level()->bw_Bps, 25e9);
  EXPECT_EQ(oversubscribed.network_level().bw_Bps, 50e9); // below the leaf nothing changes
}

TEST(Cluster, LinksCountTheGpusSharingThem) {
  const Cluster cluster(dgx_h100_with_oversubscription(2), 512);
  for (const LinkId& link : boost::make_iterator_range(boost::edges(cluster.graph()))) {
    const Link& properties = cluster.graph()[link];
    switch (properties.kind) {
    case LinkKind::nvlink:
    case LinkKind::host:
    case LinkKind::rail:
      EXPECT_EQ(properties.gpus_sharing, 1.0);
      break;
    case LinkKind::uplink:
      EXPECT_EQ(properties.gpus_sharing, 32.0); // one GPU per node of the leaf group
      EXPECT_EQ(properties.bw_Bps, 32 * 50e9 / 2);
      break;
    }
  }
}

TEST(Cluster, NetworkShareIsTheNodesNicBandwidthOverItsGpus) {
  ClusterSpec shared = load_cluster("dgx-h100");
  shared.nics_per_node = 4; // two GPUs behind each 400 Gb/s NIC
  EXPECT_EQ(Cluster(shared, 64).network_level().bw_Bps, 4 * 50e9 / 8);

  ClusterSpec doubled = load_cluster("dgx-h100");
  doubled.nics_per_node = 16; // two 200 Gb/s NICs per GPU
  doubled.nic_bw_Bps = 25e9;
  const Cluster cluster(doubled, 64);
  EXPECT_EQ(cluster.network_level().bw_Bps, 16 * 25e9 / 8);
  EXPECT_EQ(count_devices(cluster).at(DeviceKind::nic), 128);
  EXPECT_EQ(count_devices(cluster).at(DeviceKind::leaf_switch), 16);
}

TEST(Cluster, Gb200Nvl72DomainsSpanEighteenTrays) {
  const Cluster cluster(load_cluster("gb200-nvl72"), 144);
  EXPECT_EQ(cluster.num_nodes(), 36);
  EXPECT_EQ(cluster.num_nvlink_domains(), 2);
  EXPECT_EQ(cluster.num_leaf_groups(), 2); // 36 trays, 32 per leaf group
  EXPECT_EQ(count_devices(cluster).at(DeviceKind::nvswitch), 2);
  EXPECT_EQ(cluster.nvlink_domain_of(71), 0);
  EXPECT_EQ(cluster.nvlink_domain_of(72), 1);
  EXPECT_EQ(cluster.node_of(71), 17);
  EXPECT_EQ(cluster.nvlink_level()->bw_Bps, 900e9);
  EXPECT_EQ(cluster.network_level().bw_Bps, 50e9);
}

TEST(Cluster, FewerGpusThanANodeMakeOnePartialNode) {
  const Cluster cluster(load_cluster("dgx-h100"), 4);
  EXPECT_EQ(cluster.num_nodes(), 1);
  EXPECT_EQ(cluster.num_nvlink_domains(), 1);
  EXPECT_EQ(count_devices(cluster).at(DeviceKind::gpu), 4);
  EXPECT_EQ(count_devices(cluster).at(DeviceKind::nic), 4); // only its GPUs' NICs
  EXPECT_EQ(cluster.nvlink_level()->bw_Bps, 450e9);

  const Cluster single(load_cluster("dgx-h100"), 1);
  EXPECT_FALSE(single.nvlink_level()); // nothing to talk to over NVLink
}

TEST(Cluster, GpuCountMustBeWholeNodes) {
  EXPECT_EQ(input_error_message([] { Cluster(load_cluster("dgx-h100"), 12); }),
            "--gpus: 12 is not a multiple of gpus_per_node 8 of cluster dgx-h100 (use whole "
            "nodes, or fewer than 8 GPUs for one partial node)");
  EXPECT_EQ(input_error_message([] { Cluster(load_cluster("dgx-h100"), 0); }),
            "--gpus: 0 is not a positive integer");
  EXPECT_EQ(input_error_message([] { Cluster(load_cluster("dgx-h100"), -8); }),
            "--gpus: -8 is not a positive integer");
  EXPECT_EQ(input_error_message([] { Cluster(load_cluster("dgx-h100"), 1LL << 40); }),
            "--gpus: 1099511627776 is more GPUs than foldplan models (at most 262144)");
  EXPECT_EQ(input_error_message([] { Cluster(load_cluster("gb200-nvl72"), 6, "plan.gpus"); }),
            "plan.gpus: 6 is not a multiple of gpus_per_node 4 of cluster gb200-nvl72 (use whole "
            "nodes, or fewer than 4 GPUs for one partial node)");
  EXPECT_NO_THROW(Cluster(load_cluster("gb200-nvl72"), 100)); // 25 trays: a partial domain
}

TEST(Cluster, AnInvalidSpecIsRefused) {
  ClusterSpec spec = load_cluster("dgx-h100");
  spec.nvlink_domain_gpus = 12;
  EXPECT_THROW(Cluster(spec, 16), InputError);
}

} // namespace
} // namespace foldplan
