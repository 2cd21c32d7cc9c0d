// libFuzzer target for the cluster loader (topologies/cluster_spec): a cluster file either loads
// or is an InputError; a loaded cluster round-trips, and its topology graph is built for one
// NVLink domain (kept small so that each input stays fast).
#include <algorithm>

#include "fuzz/fuzz_loader.hpp"
#include "topologies/cluster.hpp"
#include "topologies/cluster_spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace foldplan;
  return fuzz::check_loader(data, size, [](const nlohmann::json& json) {
    const ClusterSpec spec = cluster_from_json(json);
    fuzz::check_round_trip(spec, cluster_to_json, [](const nlohmann::json& written) {
      return cluster_from_json(written);
    });
    constexpr std::int64_t kMaxFuzzedGpus = 4096;
    if (spec.nvlink_domain_gpus <= kMaxFuzzedGpus) {
      const Cluster cluster(spec, spec.nvlink_domain_gpus);
      (void)cluster.num_leaf_groups();
    }
  });
}
