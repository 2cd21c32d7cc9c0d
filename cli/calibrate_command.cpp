// `foldplan calibrate -o FILE`: measures this machine's GPUs — bf16 GEMMs with a bf16 and an
// fp32-accumulate output, foldplan's attention kernels, memory bandwidth, NCCL collectives with
// --local-gpus ≥ 2 — and writes a calibration file (foldplan.calibration/1) that every command
// reads with --calibration FILE. What it cannot measure is carried from --base (runtime/
// calibration_sweep.hpp). Calibrating is never needed for an answer: the shipped files and the
// physical models give predictions without it.
#include <chrono>
#include <ctime>
#include <fstream>
#include <iterator>
#include <optional>

#include <fmt/format.h>

#include "cli/calibration_file.hpp"
#include "cli/command.hpp"
#include "core/errors.hpp"
#include "core/file_io.hpp"

namespace foldplan::cli {
namespace {

struct CalibrateOptions {
  int local_gpus = 1;
  int device = 0;
  bool quick = false;
  std::string base = "builtin";
  std::string gpu; // the GpuSpec name; from the device's name when empty
  bool raw = false;
  bool json = false;
  std::string output;
};

std::string utc_date() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  return fmt::format("{:04}-{:02}-{:02}", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday);
}

// The exact argv, as the calibration's measured.command records it.
std::string command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string line;
  for (char c : raw)
    line += c == '\0' ? ' ' : c;
  while (!line.empty() && line.back() == ' ')
    line.pop_back();
  return line.empty() ? std::string("foldplan calibrate") : line;
}

void check_flags(const CalibrateOptions& options) {
  if (options.local_gpus < 1)
    throw InputError("--local-gpus",
                     fmt::format("{} is not a positive number", options.local_gpus));
  if (options.device < 0)
    throw InputError("--device", fmt::format("{} is not a GPU index (0 or more)", options.device));
  if (options.output.empty() && !options.json)
    throw InputError("-o", "is missing; give the calibration file to write (or --json)");
  if (!options.gpu.empty())
    preset_gpu(options.gpu, "--gpu");
}

// --base: the shipped calibration of `gpu` (builtin; none when none was measured), nothing
// (none), or a file; with the name the notes give it.
std::pair<std::optional<GpuCalibration>, std::string> base_of(const std::string& base,
                                                              const std::string& gpu) {
  if (base == "none")
    return {std::nullopt, "none"};
  if (base == "builtin")
    return {builtin_calibration(gpu), fmt::format("the shipped {} calibration", gpu)};
  return {load_calibration(base), base};
}

int run_calibrate(const CalibrateOptions& options) {
  check_flags(options);
  // A base file is read before the sweep, so that a bad one costs no GPU time.
  if (options.base != "builtin" && options.base != "none")
    load_calibration(options.base);
  const CalibrationGrid grid = calibration_grid(options.quick);
  const runtime::CalibrationRun run = runtime::run_calibration_sweep(
      grid, {.local_gpus = options.local_gpus,
             .device = options.device,
             .progress = [](const std::string& line) { fmt::print(stderr, "{}\n", line); }});
  std::string gpu = options.gpu;
  if (gpu.empty()) {
    const std::optional<std::string> name = preset_gpu_name(run.device_name);
    if (!name) {
      throw InputError("--gpu", fmt::format("the device \"{}\" is not a GPU of the cluster "
                                            "presets; name the preset GPU it is with --gpu",
                                            run.device_name));
    }
    gpu = *name;
  }
  const auto [base, base_name] = base_of(options.base, gpu);
  const GpuCalibration calibration = assemble_calibration(
      run, {.gpu = gpu, .date = utc_date(), .command = command_line(), .raw = options.raw}, base,
      base_name);
  const std::string text = calibration_to_json(calibration).dump(2) + "\n";
  if (!options.output.empty()) {
    write_file_atomically(options.output, text);
    fmt::print(stderr,
               "wrote {} ({}: {} bf16 GEMMs, {} fp32-accumulate, {} attention points, "
               "copy {:.0f} GB/s, {} collective points)\n",
               options.output, gpu, calibration.gemm_bf16.size(),
               calibration.gemm_bf16_accumulate_fp32.size(), calibration.attention.size(),
               calibration.copy_Bps / 1e9, calibration.collectives.size());
  }
  if (options.json)
    fmt::print("{}", text);
  return 0;
}

} // namespace

void add_calibrate_command(CLI::App& app, CommandAction& chosen) {
  auto options = std::make_shared<CalibrateOptions>();
  CLI::App* command = app.add_subcommand(
      "calibrate", "Measure this machine's GPUs (GEMMs, attention, memory, NCCL) into a "
                   "calibration file for --calibration");
  command
      ->add_option("--local-gpus", options->local_gpus,
                   "GPUs to use; 2 or more also measure NCCL collectives among them")
      ->capture_default_str();
  command->add_option("--device", options->device, "the first GPU to use")->capture_default_str();
  command->add_flag("--quick", options->quick, "a few shapes of each kind (a fast check)");
  command
      ->add_option("--base", options->base,
                   "where unmeasured parts come from: builtin (the shipped file of this GPU), "
                   "none, or a calibration file")
      ->capture_default_str();
  command->add_option("--gpu", options->gpu,
                      "the cluster presets' GPU name (default: from the device's name)");
  command->add_flag("--raw", options->raw,
                    "keep compute-bound points as measured (no normalisation to the training-load "
                    "SM clock)");
  command->add_flag("--json", options->json, "print the calibration as JSON");
  command->add_option("-o,--output", options->output, "write the calibration file here");
  command->callback([&chosen, options] { chosen = [options] { return run_calibrate(*options); }; });
}

} // namespace foldplan::cli
