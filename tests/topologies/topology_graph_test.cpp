#include "topologies/topology_graph.hpp"

#include <gtest/gtest.h>

namespace foldplan {
namespace {

// Two GPUs joined both through an NVSwitch and through NICs and a leaf switch.
struct TwoGpus {
  TopologyGraph graph;
  DeviceId gpu_a, gpu_b, nvswitch, nic_a, nic_b, leaf;

  TwoGpus() {
    gpu_a = boost::add_vertex(Device{DeviceKind::gpu, 0}, graph);
    gpu_b = boost::add_vertex(Device{DeviceKind::gpu, 1}, graph);
    nvswitch = boost::add_vertex(Device{DeviceKind::nvswitch, 0}, graph);
    nic_a = boost::add_vertex(Device{DeviceKind::nic, 0}, graph);
    nic_b = boost::add_vertex(Device{DeviceKind::nic, 1}, graph);
    leaf = boost::add_vertex(Device{DeviceKind::leaf_switch, 0}, graph);
    boost::add_edge(gpu_a, nvswitch, Link{LinkKind::nvlink, 450e9, 1e-6}, graph);
    boost::add_edge(nvswitch, gpu_b, Link{LinkKind::nvlink, 450e9, 1e-6}, graph);
    boost::add_edge(gpu_a, nic_a, Link{LinkKind::host, 50e9, 0}, graph);
    boost::add_edge(nic_a, leaf, Link{LinkKind::rail, 50e9, 4e-6}, graph);
    boost::add_edge(gpu_b, nic_b, Link{LinkKind::host, 50e9, 0}, graph);
    boost::add_edge(leaf, nic_b, Link{LinkKind::rail, 50e9, 4e-6}, graph);
  }
};

TEST(TopologyGraph, ShortestPathUsesOnlyTheAllowedLinks) {
  const TwoGpus fixture;
  const auto over_nvlink =
      shortest_path(fixture.graph, fixture.gpu_a, fixture.gpu_b, {LinkKind::nvlink});
  ASSERT_TRUE(over_nvlink);
  ASSERT_EQ(over_nvlink->size(), 2U);
  EXPECT_EQ(boost::source((*over_nvlink)[0], fixture.graph), fixture.gpu_a);

  const auto over_network =
      shortest_path(fixture.graph, fixture.gpu_a, fixture.gpu_b, {LinkKind::host, LinkKind::rail});
  ASSERT_TRUE(over_network);
  ASSERT_EQ(over_network->size(), 4U);
  EXPECT_EQ(fixture.graph[(*over_network)[0]].kind, LinkKind::host);
  EXPECT_EQ(fixture.graph[(*over_network)[1]].kind, LinkKind::rail);
  EXPECT_EQ(fixture.graph[(*over_network)[2]].kind, LinkKind::rail);
  EXPECT_EQ(fixture.graph[(*over_network)[3]].kind, LinkKind::host);
}

TEST(TopologyGraph, ShortestPathPrefersFewerLinks) {
  const TwoGpus fixture;
  const auto any = shortest_path(fixture.graph, fixture.gpu_a, fixture.gpu_b,
                                 {LinkKind::nvlink, LinkKind::host, LinkKind::rail});
  ASSERT_TRUE(any);
  EXPECT_EQ(any->size(), 2U);
}

TEST(TopologyGraph, NoPathWhenTheAllowedLinksDoNotConnect) {
  const TwoGpus fixture;
  EXPECT_FALSE(shortest_path(fixture.graph, fixture.gpu_a, fixture.gpu_b, {LinkKind::host}));
  EXPECT_FALSE(shortest_path(fixture.graph, fixture.gpu_a, fixture.gpu_b, {LinkKind::uplink}));
  const auto to_itself = shortest_path(fixture.graph, fixture.gpu_a, fixture.gpu_a, {});
  ASSERT_TRUE(to_itself);
  EXPECT_TRUE(to_itself->empty());
}

} // namespace
} // namespace foldplan
