// libFuzzer target for the model loader (models/model_spec): a model file either loads or is an
// InputError; a loaded model round-trips and its parameter and FLOP counts are computed (they
// are what validate_model promises fit in 64 bits).
#include "fuzz/fuzz_loader.hpp"
#include "models/model_flops.hpp"
#include "models/model_spec.hpp"
#include "models/parameter_count.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace foldplan;
  return fuzz::check_loader(data, size, [](const nlohmann::json& json) {
    const ModelSpec model = model_from_json(json);
    fuzz::check_round_trip(model, model_to_json,
                           [](const nlohmann::json& written) { return model_from_json(written); });
    (void)total_parameters(model, MtpLayers::included);
    (void)active_parameters(model, MtpLayers::included);
    (void)megatron_flops_per_token(model, 4096, 8);
  });
}
