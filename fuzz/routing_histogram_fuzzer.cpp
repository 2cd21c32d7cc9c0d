// libFuzzer target for the routing histogram loader (simulator/routing, --routing FILE): a
// histogram either loads or is an InputError; a loaded one round-trips (within rounding) and
// routes a few tokens.
#include <algorithm>
#include <cmath>

#include "fuzz/fuzz_loader.hpp"
#include "simulator/routing.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace foldplan;
  return fuzz::check_loader(data, size, [](const nlohmann::json& json) {
    RoutingSpec spec;
    spec.kind = RoutingKind::histogram;
    spec.expert_share = expert_share_from_json(json, "fuzz-input");
    // Shares are normalised on reading, and normalising normalised shares may move the last bit:
    // a written histogram must read back within rounding, not bit for bit.
    const std::vector<double> reread =
        expert_share_from_json(expert_share_to_json(spec.expert_share), "written");
    for (std::size_t i = 0; i < reread.size(); ++i) {
      if (reread.size() != spec.expert_share.size() ||
          std::abs(reread[i] - spec.expert_share[i]) > 1e-12 * spec.expert_share[i] + 1e-300) {
        std::fprintf(stderr, "finding: a written histogram reads back different\n");
        std::abort();
      }
    }
    const auto experts = static_cast<std::int64_t>(spec.expert_share.size());
    const std::vector<double> shares = draw_expert_shares(spec, experts, 1);
    const std::int64_t topk = std::min<std::int64_t>(2, experts);
    const SourceRouting routing = route_source_tokens(spec, shares, 16, topk, 0, 7);
    (void)tokens_per_expert(routing, experts);
  });
}
