#include "topologies/cluster_spec.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "input_error_message.hpp"

namespace foldplan {
namespace {

using nlohmann::json;
using testing::input_error_message;

// A cluster file with only the required keys.
json minimal_cluster() {
  return json::parse(R"({
    "name": "test-cluster",
    "gpu": {"name": "TEST-GPU", "bf16_tflops": 989.5, "fp8_tflops": 1979, "hbm_GB": 80,
            "hbm_TBps": 3.35, "num_sms": 132},
    "gpus_per_node": 8, "nvlink_GBps": 450, "nics_per_node": 8, "nic_Gbps": 400})");
}

TEST(ClusterSpec, ReadsKeysInTheirUnitsIntoSi) {
  const ClusterSpec cluster = cluster_from_json(minimal_cluster());
  EXPECT_EQ(cluster.name, "test-cluster");
  EXPECT_EQ(cluster.gpu.name, "TEST-GPU");
  EXPECT_EQ(cluster.gpu.bf16_flops, 989.5e12);
  EXPECT_EQ(cluster.gpu.fp8_flops, 1979e12);
  EXPECT_EQ(cluster.gpu.hbm_bytes, 80e9);
  EXPECT_EQ(cluster.gpu.hbm_bw_Bps, 3.35e12);
  EXPECT_EQ(cluster.gpu.num_sms, 132);
  EXPECT_EQ(cluster.gpus_per_node, 8);
  EXPECT_EQ(cluster.nvlink_bw_Bps, 450e9);
  EXPECT_EQ(cluster.nics_per_node, 8);
  EXPECT_EQ(cluster.nic_bw_Bps, 50e9); // 400 Gb/s is 50 GB/s
}

TEST(ClusterSpec, OmittedKeysTakeTheDocumentedDefaults) {
  const ClusterSpec cluster = cluster_from_json(minimal_cluster());
  EXPECT_EQ(cluster.nvlink_domain_gpus, 8); // one node
  EXPECT_EQ(cluster.nvlink_latency_s, 3.4e-6);
  EXPECT_EQ(cluster.network_latency_s, 9.6e-6);
  EXPECT_EQ(cluster.nodes_per_leaf, 32);
  EXPECT_EQ(cluster.oversubscription, 1.0);
}

TEST(ClusterSpec, GivenOptionalKeysOverrideTheDefaults) {
  json value = minimal_cluster();
  value["gpus_per_node"] = 4;
  value["nvlink_domain_gpus"] = 72;
  value["nvlink_latency_us"] = 2.5;
  value["network_latency_us"] = 7;
  value["nodes_per_leaf"] = 16;
  value["oversubscription"] = 2;
  const ClusterSpec cluster = cluster_from_json(value);
  EXPECT_EQ(cluster.nvlink_domain_gpus, 72);
  EXPECT_EQ(cluster.nvlink_latency_s, 2.5e-6);
  EXPECT_EQ(cluster.network_latency_s, 7e-6);
  EXPECT_EQ(cluster.nodes_per_leaf, 16);
  EXPECT_EQ(cluster.oversubscription, 2.0);
}

TEST(ClusterSpec, CanonicalFormHasEveryKeyAndRoundTrips) {
  const json canonical = cluster_to_json(cluster_from_json(minimal_cluster()));
  for (const char* key : {"nvlink_domain_gpus", "nvlink_latency_us", "network_latency_us",
                          "nodes_per_leaf", "oversubscription"}) {
    EXPECT_TRUE(canonical.contains(key)) << key;
  }
  EXPECT_EQ(canonical["nic_Gbps"], 400.0);
  EXPECT_EQ(canonical["nvlink_latency_us"], 3.4);
  EXPECT_EQ(canonical["gpu"]["hbm_TBps"], 3.35);
  EXPECT_EQ(cluster_to_json(cluster_from_json(canonical)), canonical);
}

TEST(ClusterSpec, SpecRoundTripsThroughJsonExactly) {
  ClusterSpec cluster;
  cluster.name = "odd-figures";
  cluster.gpu = {"X", 1234.56789e12, 0, 191.7e9, 7.77e12, 97};
  cluster.gpus_per_node = 6;
  cluster.nvlink_domain_gpus = 36;
  cluster.nvlink_bw_Bps = 333.3e9;
  cluster.nvlink_latency_s = 1.23e-6;
  cluster.nics_per_node = 3;
  cluster.nic_bw_Bps = 400e9 / 8 * 1.5;
  cluster.network_latency_s = 12.34e-6;
  cluster.nodes_per_leaf = 24;
  cluster.oversubscription = 1.5;
  EXPECT_EQ(cluster_from_json(cluster_to_json(cluster)), cluster);
}

TEST(ClusterSpec, FieldsAreComparedByEquality) {
  const ClusterSpec base = cluster_from_json(minimal_cluster());
  ClusterSpec changed = base;
  changed.gpu.num_sms = 133;
  EXPECT_NE(changed, base);
  changed = base;
  changed.oversubscription = 2;
  EXPECT_NE(changed, base);
}

TEST(ClusterSpec, ZeroFp8MeansNoFp8AndIsAccepted) {
  json value = minimal_cluster();
  value["gpu"]["fp8_tflops"] = 0;
  EXPECT_EQ(cluster_from_json(value).gpu.fp8_flops, 0.0);
}

TEST(ClusterSpec, SharedAndMultipleNicsPerGpuAreAccepted) {
  json value = minimal_cluster();
  value["nics_per_node"] = 4; // two GPUs per NIC
  EXPECT_EQ(cluster_from_json(value).nics_per_node, 4);
  value["nics_per_node"] = 16; // two NICs per GPU
  EXPECT_EQ(cluster_from_json(value).nics_per_node, 16);
}

struct BadInput {
  const char* pointer; // JSON pointer of the value to set ("" = whole document untouched)
  json value;
  const char* message;
};

TEST(ClusterSpec, BadInputErrorsNameTheFieldTheValueAndTheRule) {
  const BadInput cases[] = {
      {"/gpus_per_node", 0, "cluster.gpus_per_node: 0 is not a positive integer"},
      {"/gpus_per_node", "8", "cluster.gpus_per_node: expected an integer, got string \"8\""},
      {"/nvlink_domain_gpus", 12,
       "cluster.nvlink_domain_gpus: 12 is not a multiple of "
       "gpus_per_node 8"},
      {"/nvlink_domain_gpus", -8, "cluster.nvlink_domain_gpus: -8 is not a positive integer"},
      {"/nics_per_node", 0, "cluster.nics_per_node: 0 is not a positive integer"},
      {"/nics_per_node", 3,
       "cluster.nics_per_node: 3 neither divides nor is a multiple of "
       "gpus_per_node 8 (GPUs must share the NICs evenly)"},
      {"/oversubscription", 0.5,
       "cluster.oversubscription: 0.5 is less than 1 (1 means a "
       "non-blocking fabric; 2 means the leaves have half as much "
       "bandwidth up as down)"},
      {"/nodes_per_leaf", 0, "cluster.nodes_per_leaf: 0 is not a positive integer"},
      {"/nvlink_GBps", 0, "cluster.nvlink_GBps: 0 is not a positive number"},
      {"/nic_Gbps", -400, "cluster.nic_Gbps: -400 is not a positive number"},
      {"/nvlink_latency_us", -1, "cluster.nvlink_latency_us: -1 is negative"},
      {"/network_latency_us", -0.5, "cluster.network_latency_us: -0.5 is negative"},
      {"/name", "", "cluster.name: is empty; give the cluster (or GPU) a name"},
      {"/gpu/name", "", "cluster.gpu.name: is empty; give the cluster (or GPU) a name"},
      {"/gpu/bf16_tflops", -1, "cluster.gpu.bf16_tflops: -1 is not a positive number"},
      {"/gpu/fp8_tflops", -1,
       "cluster.gpu.fp8_tflops: -1 is negative (0 means the GPU has no "
       "fp8)"},
      {"/gpu/hbm_GB", 0, "cluster.gpu.hbm_GB: 0 is not a positive number"},
      {"/gpu/hbm_TBps", "fast", "cluster.gpu.hbm_TBps: expected a number, got string \"fast\""},
      {"/gpu/num_sms", 13.5, "cluster.gpu.num_sms: 13.5 is not an integer"},
      {"/nvlink_Gbps", 450, "cluster.nvlink_Gbps: unknown key (check its spelling, or remove it)"},
      {"/gpu/tf32_tflops", 495,
       "cluster.gpu.tf32_tflops: unknown key (check its spelling, or remove it)"},
      {"/gpu", 8, "cluster.gpu: expected an object, got integer 8"},
  };
  for (const BadInput& bad : cases) {
    json value = minimal_cluster();
    value[json::json_pointer(bad.pointer)] = bad.value;
    EXPECT_EQ(input_error_message([&] { cluster_from_json(value); }), bad.message) << bad.pointer;
  }
}

TEST(ClusterSpec, MissingKeysAreNamed) {
  json value = minimal_cluster();
  value.erase("nic_Gbps");
  EXPECT_EQ(input_error_message([&] { cluster_from_json(value); }),
            "cluster.nic_Gbps: is required but missing");
  value = minimal_cluster();
  value["gpu"].erase("num_sms");
  EXPECT_EQ(input_error_message([&] { cluster_from_json(value); }),
            "cluster.gpu.num_sms: is required but missing");
}

TEST(ClusterSpec, ErrorsUseTheGivenPath) {
  json value = minimal_cluster();
  value["gpus_per_node"] = -1;
  EXPECT_EQ(input_error_message([&] { cluster_from_json(value, "plan.cluster"); }),
            "plan.cluster.gpus_per_node: -1 is not a positive integer");
  EXPECT_EQ(input_error_message([&] { cluster_from_json(value, ""); }),
            "gpus_per_node: -1 is not a positive integer");
}

TEST(ClusterSpec, ValidationCatchesSpecsBuiltInCode) {
  ClusterSpec cluster = cluster_from_json(minimal_cluster());
  EXPECT_NO_THROW(validate_cluster(cluster));
  cluster.nvlink_bw_Bps = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(input_error_message([&] { validate_cluster(cluster); }),
            "cluster.nvlink_GBps: nan is not a positive number");
  cluster = cluster_from_json(minimal_cluster());
  cluster.oversubscription = 0.9;
  EXPECT_THROW(validate_cluster(cluster), InputError);
}

TEST(ClusterSpec, LoadsAPresetByNameAndSuggestsOnATypo) {
  EXPECT_EQ(load_cluster("dgx-h100").name, "dgx-h100");
  EXPECT_EQ(input_error_message([] { load_cluster("dgx-h10"); }),
            "--cluster: unknown cluster 'dgx-h10'; did you mean 'dgx-h100'?");
}

TEST(ClusterSpec, LoadsAUsersFileAndReportsItsErrors) {
  const auto directory = std::filesystem::temp_directory_path() / "foldplan_test_cluster_spec";
  std::filesystem::create_directories(directory);
  const std::string path = (directory / "my-cluster.json").string();
  json value = minimal_cluster();
  std::ofstream(path) << value.dump();
  EXPECT_EQ(load_cluster(path), cluster_from_json(value));

  value["oversubscription"] = 0;
  std::ofstream(path) << value.dump();
  EXPECT_EQ(
      input_error_message([&] { load_cluster(path); }).rfind("cluster.oversubscription: 0 ", 0),
      0U);
  std::filesystem::remove_all(directory);
}

} // namespace
} // namespace foldplan
