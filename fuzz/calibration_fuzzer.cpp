// libFuzzer target for the calibration loader (topologies/gpu_calibration): a calibration file
// either loads or is an InputError, and a loaded one round-trips.
#include "fuzz/fuzz_loader.hpp"
#include "topologies/gpu_calibration.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace foldplan;
  return fuzz::check_loader(data, size, [](const nlohmann::json& json) {
    const GpuCalibration calibration = calibration_from_json(json);
    fuzz::check_round_trip(calibration, calibration_to_json, [](const nlohmann::json& written) {
      return calibration_from_json(written);
    });
  });
}
