// libFuzzer target for the step-program loader (core/step_program_json): a program file either
// loads (and so passed validate_step_program) or is an InputError, and a loaded one round-trips.
#include "core/step_program_json.hpp"
#include "fuzz/fuzz_loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace foldplan;
  return fuzz::check_loader(data, size, [](const nlohmann::json& json) {
    const StepProgram program = step_program_from_json(json);
    fuzz::check_round_trip(program, step_program_to_json, [](const nlohmann::json& written) {
      return step_program_from_json(written);
    });
  });
}
