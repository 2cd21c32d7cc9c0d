// libFuzzer target for the routing histogram loader (simulator/routing, --routing FILE): a
// histogram either loads or is an InputError; a loaded one round-trips and routes a few tokens.
#include <algorithm>

#include "fuzz/fuzz_loader.hpp"
#include "simulator/routing.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace foldplan;
  return fuzz::check_loader(data, size, [](const nlohmann::json& json) {
    RoutingSpec spec;
    spec.kind = RoutingKind::histogram;
    spec.expert_share = expert_share_from_json(json, "fuzz-input");
    fuzz::check_round_trip(
        spec.expert_share, expert_share_to_json,
        [](const nlohmann::json& written) { return expert_share_from_json(written, "written"); });
    const auto experts = static_cast<std::int64_t>(spec.expert_share.size());
    const std::vector<double> shares = draw_expert_shares(spec, experts, 1);
    const std::int64_t topk = std::min<std::int64_t>(2, experts);
    const SourceRouting routing = route_source_tokens(spec, shares, 16, topk, 0, 7);
    (void)tokens_per_expert(routing, experts);
  });
}
