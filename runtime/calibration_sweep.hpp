// `foldplan calibrate`'s measurements: the shapes it is asked to time (CalibrationGrid), and the
// device times and SM clocks the GPU sweep returns (run_calibration_sweep: calibration_gpu.cpp;
// calibration_no_gpu.cpp refuses). Knows nothing of calibration files or GPU presets: the CLI
// picks the grid and turns the timings into a file (cli/calibration_file.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kernels/attention_dims.hpp"

namespace foldplan::runtime {

struct CalibrationGemmShape {
  std::int64_t m = 0, n = 0, k = 0; // C[m,n] (+)= A[m,k]·B[k,n]
  bool operator==(const CalibrationGemmShape&) const = default;
};

struct CalibrationAttentionShape {
  std::int64_t heads = 0, kv_heads = 0, seq = 0, head_dim = 0; // batch 1, seq_q = seq_kv
  bool causal = true;
  bool operator==(const CalibrationAttentionShape&) const = default;
};

// The kernels' dims of one shape (batch 1, one head dim for q·k and v).
kernels::AttentionDims attention_dims_of(const CalibrationAttentionShape& shape);

struct CalibrationGrid {
  std::vector<CalibrationGemmShape> gemms; // each timed with a bf16 and an fp32-accumulate output
  std::vector<CalibrationAttentionShape> attention;
  std::vector<double> collective_bytes; // message sizes as nccl-tests counts them
};

// What the GPU sweep returns: device times (median of the timed iterations) and the SM clock read
// through NVML right after each point (0 when NVML could not be read).
struct TimedGemm {
  CalibrationGemmShape shape;
  double time_s = 0;
  double sm_mhz = 0;
};
struct TimedAttention {
  CalibrationAttentionShape shape;
  double forward_s = 0, backward_s = 0;
  double forward_sm_mhz = 0, backward_sm_mhz = 0;
};
struct TimedCollective {
  std::string kind; // as CollectiveMeasurement::kind
  std::int64_t gpus = 0;
  double bytes = 0;
  double time_s = 0; // the slowest rank's median
};
struct CalibrationRun {
  std::string device_name; // as CUDA names it, e.g. "NVIDIA H100 80GB HBM3"
  std::string software;    // CUDA runtime, cuBLAS, NCCL and driver versions
  std::vector<TimedGemm> gemm_bf16, gemm_bf16_accumulate_fp32;
  std::vector<TimedAttention> attention;
  // Bytes read + written per second: a device-to-device copy, and kernels/stream_bytes (the
  // runtime's memory-bound stand-in).
  double copy_Bps = 0, stream_Bps = 0;
  std::vector<TimedCollective> collectives;
  int gpus = 1;
  // The SM clock under a training-like load: the median NVML reading over ~2 s of large GEMMs run
  // back to back; and the GPU's maximum SM clock. 0 when NVML could not be read.
  double load_sm_mhz = 0, max_sm_mhz = 0;
};

struct CalibrationOptions {
  int local_gpus = 1;
  int device = 0; // the first GPU used (--device); GPUs device … device + local_gpus − 1
  // One line per step of progress ("GEMM bf16 123/531"); empty: silent.
  std::function<void(const std::string&)> progress;
};

// Times `grid` on the GPUs; InputError before any measurement (no CUDA in this build, too few
// GPUs), ExecutionError on a CUDA/cuBLAS/NCCL failure or a collective that gave a wrong result.
CalibrationRun run_calibration_sweep(const CalibrationGrid& grid,
                                     const CalibrationOptions& options);

} // namespace foldplan::runtime
