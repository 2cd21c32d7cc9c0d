// libFuzzer target for the plan loader (parallel/plan): a plan file either loads or is an
// InputError, and a loaded plan round-trips.
#include "fuzz/fuzz_loader.hpp"
#include "parallel/plan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace foldplan;
  return fuzz::check_loader(data, size, [](const nlohmann::json& json) {
    const Plan plan = plan_from_json(json);
    fuzz::check_round_trip(plan, plan_to_json,
                           [](const nlohmann::json& written) { return plan_from_json(written); });
  });
}
