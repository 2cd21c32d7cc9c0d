#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/named_source.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan {
namespace {

TEST(ClusterPresets, AreTheFiveDocumentedClusters) {
  EXPECT_EQ(
      preset_names(cluster_presets()),
      (std::vector<std::string>{"dgx-a100", "dgx-h100", "dgx-h200", "gb200-nvl72", "hgx-h800"}));
}

TEST(ClusterPresets, EveryPresetIsCanonicalNamedLikeItsFileAndRoundTrips) {
  for (const EmbeddedFile& file : cluster_presets()) {
    SCOPED_TRACE(std::string(file.name));
    const nlohmann::json text = nlohmann::json::parse(file.text);
    const ClusterSpec cluster = cluster_from_json(text);
    EXPECT_EQ(cluster.name, file.name);
    EXPECT_EQ(cluster_to_json(cluster), text); // the file already spells every key
    EXPECT_EQ(cluster_from_json(cluster_to_json(cluster)), cluster);
    EXPECT_EQ(cluster.nodes_per_leaf, 32);
    EXPECT_EQ(cluster.oversubscription, 1.0);
  }
}

TEST(ClusterPresets, DgxH100MatchesTheDatasheet) {
  const ClusterSpec cluster = load_cluster("dgx-h100");
  EXPECT_EQ(cluster.gpu.name, "H100-SXM5-80GB");
  EXPECT_EQ(cluster.gpu.bf16_flops, 989.5e12);
  EXPECT_EQ(cluster.gpu.fp8_flops, 1979e12);
  EXPECT_EQ(cluster.gpu.hbm_bytes, 80e9);
  EXPECT_EQ(cluster.gpu.hbm_bw_Bps, 3.35e12);
  EXPECT_EQ(cluster.gpu.num_sms, 132);
  EXPECT_EQ(cluster.gpus_per_node, 8);
  EXPECT_EQ(cluster.nvlink_domain_gpus, 8);
  EXPECT_EQ(cluster.nvlink_bw_Bps, 450e9);
  EXPECT_EQ(cluster.nics_per_node, 8);
  EXPECT_EQ(cluster.nic_bw_Bps, 50e9);
}

TEST(ClusterPresets, DgxH200DiffersFromH100OnlyInMemory) {
  ClusterSpec h200 = load_cluster("dgx-h200");
  EXPECT_EQ(h200.gpu.hbm_bytes, 141e9);
  EXPECT_EQ(h200.gpu.hbm_bw_Bps, 4.8e12);
  ClusterSpec h100 = load_cluster("dgx-h100");
  h200.name = h100.name;
  h200.gpu.name = h100.gpu.name;
  h200.gpu.hbm_bytes = h100.gpu.hbm_bytes;
  h200.gpu.hbm_bw_Bps = h100.gpu.hbm_bw_Bps;
  EXPECT_EQ(h200, h100);
}

TEST(ClusterPresets, DgxA100HasNoFp8) {
  const ClusterSpec cluster = load_cluster("dgx-a100");
  EXPECT_EQ(cluster.gpu.bf16_flops, 312e12);
  EXPECT_EQ(cluster.gpu.fp8_flops, 0.0);
  EXPECT_EQ(cluster.gpu.hbm_bytes, 80e9);
  EXPECT_EQ(cluster.gpu.hbm_bw_Bps, 2.039e12);
  EXPECT_EQ(cluster.gpu.num_sms, 108);
  EXPECT_EQ(cluster.nvlink_bw_Bps, 300e9);
  EXPECT_EQ(cluster.nic_bw_Bps, 25e9); // 200 Gb/s HDR
}

TEST(ClusterPresets, HgxH800IsAnH100WithNarrowerNvlink) {
  ClusterSpec h800 = load_cluster("hgx-h800");
  EXPECT_EQ(h800.nvlink_bw_Bps, 200e9);
  ClusterSpec h100 = load_cluster("dgx-h100");
  h800.name = h100.name;
  h800.gpu.name = h100.gpu.name;
  h800.nvlink_bw_Bps = h100.nvlink_bw_Bps;
  EXPECT_EQ(h800, h100);
}

TEST(ClusterPresets, Gb200Nvl72IsOneNvlinkDomainOf18Trays) {
  const ClusterSpec cluster = load_cluster("gb200-nvl72");
  EXPECT_EQ(cluster.gpu.bf16_flops, 2500e12);
  EXPECT_EQ(cluster.gpu.fp8_flops, 5000e12);
  EXPECT_EQ(cluster.gpu.hbm_bytes, 186e9);
  EXPECT_EQ(cluster.gpu.hbm_bw_Bps, 8e12);
  EXPECT_EQ(cluster.gpus_per_node, 4);
  EXPECT_EQ(cluster.nvlink_domain_gpus, 72);
  EXPECT_EQ(cluster.nvlink_domain_gpus / cluster.gpus_per_node, 18);
  EXPECT_EQ(cluster.nvlink_bw_Bps, 900e9);
  EXPECT_EQ(cluster.nics_per_node, 4);
  EXPECT_EQ(cluster.nic_bw_Bps, 50e9); // 800 Gb/s per GPU
}

} // namespace
} // namespace foldplan
