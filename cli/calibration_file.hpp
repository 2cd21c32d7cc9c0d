// How `foldplan calibrate`'s timings become a calibration file (foldplan.calibration/1,
// topologies/gpu_calibration.hpp): the grid it times, the clock normalisation, the GPU's preset
// name, nccl-tests' bus bandwidth, merging with a base calibration, and the provenance. Host-only;
// the timing itself is runtime::run_calibration_sweep (runtime/calibration_sweep.hpp).
//
// The grid is the shipped tables' own (topologies/calibration/h100.json): bf16 GEMMs m ∈ {64 …
// 16384} × its 59 (n, k) pairs — small-m expert GEMMs included — twice, with a bf16 output and
// accumulating into fp32; foldplan's attention kernels at its "foldplan" shapes; a copy and a
// streaming kernel; NCCL over 4 KiB … 1 GiB in steps of ×4 when there are two GPUs or more.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "runtime/calibration_sweep.hpp"
#include "topologies/cluster_spec.hpp"
#include "topologies/gpu_calibration.hpp"

namespace foldplan::cli {

using runtime::CalibrationGemmShape;
using runtime::CalibrationGrid;
using runtime::CalibrationRun;

// The full sweep (531 GEMM shapes, the 21 foldplan attention shapes, 10 message sizes), or with
// `quick` a few of each (for tests and a fast check: 4096³ and small-m expert GEMMs among them).
CalibrationGrid calibration_grid(bool quick);

// How to_calibration.py brings a compute-bound point to the training-load clock: a point measured
// above `load_mhz` is scaled by load_mhz / point_mhz; at or below it, or with an unknown clock (0),
// it is kept; a GEMM below the ridge point (FLOP per byte; 0: none) streams from HBM and is kept.
double clock_scale(double point_mhz, double load_mhz, double intensity = 0, double ridge = 0);
// 2mnk over the bytes moved once: bf16 A and B, and C at `output_bytes_per_element` (2 for a bf16
// output, 8 for an fp32 C read and written).
double gemm_intensity(const CalibrationGemmShape& shape, double output_bytes_per_element = 2);
// FLOP per byte above which a bf16 GEMM is compute-bound at the load clock: the dense peak scaled
// by load_mhz / max_mhz, over the datasheet HBM bandwidth (as to_calibration.py).
double bf16_ridge_point(const GpuSpec& gpu, double load_mhz, double max_mhz);

// The cluster presets' GpuSpec name of a CUDA device name ("NVIDIA H100 80GB HBM3" →
// "H100-SXM5-80GB", "NVIDIA H200" → "H200-SXM5-141GB"), or nullopt when foldplan knows none.
std::optional<std::string> preset_gpu_name(const std::string& cuda_device_name);
// The GpuSpec of that name from the cluster presets; InputError naming `field` when none has it.
GpuSpec preset_gpu(const std::string& name, const std::string& field);

// bus bandwidth / algorithm bandwidth, as nccl-tests: 2(n−1)/n for all_reduce, (n−1)/n for
// all_gather, reduce_scatter and all_to_all, 1 for send_recv (per direction).
double bus_bandwidth_factor(const std::string& kind, std::int64_t gpus);

struct CalibrationSource {
  std::string gpu;     // the GpuSpec name
  std::string date;    // UTC, YYYY-MM-DD
  std::string command; // the exact argv
  bool raw = false;    // keep compute-bound points as measured (no clock normalisation)
};

// The measured calibration: TFLOP/s and busbw from the timings, compute-bound points normalised to
// the load clock; then every point of `base` (if any) the sweep did not measure is carried — fp8
// GEMMs, other attention backends, shapes outside a --quick grid, collectives of other GPU counts
// — and measured.notes say exactly what was measured and what carried. Validated.
GpuCalibration assemble_calibration(const CalibrationRun& run, const CalibrationSource& source,
                                    const std::optional<GpuCalibration>& base,
                                    const std::string& base_name);

} // namespace foldplan::cli
