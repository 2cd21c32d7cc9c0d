// GpuCalibration: what was measured on one GPU kind — GEMM throughput by shape and dtype, fused
// attention forward/backward, memory bandwidth, and NCCL collective curves — as stored in
// topologies/calibration/<gpu>.json ("schema": "foldplan.calibration/1"), each file naming the
// command and date that measured it. The cost model reads these; without one it falls back to
// physical models from the datasheet.
//
// JSON form (docs/measurements.md says how the shipped files were measured):
//   {"schema": "foldplan.calibration/1", "gpu": "H100-SXM5-80GB",
//    "measured": {"date": …, "device": …, "software": …, "command": …, "notes": …},
//    "gemm": {"bf16": [{"m": 64, "n": 1024, "k": 1024, "tflops": 25.45}, …],
//             "bf16_accumulate_fp32": […], "fp8": […]},
//    "attention": [{"batch": 1, "heads": 32, "kv_heads": 8, "seq": 4096, "head_dim": 128,
//                   "causal": true, "backend": "cudnn", "fwd_tflops": 541.7,
//                   "bwd_tflops": 422.0}, …],
//    "memory": {"copy_Bps": 3.033e12, "elementwise_Bps": 3.124e12, "stream_Bps": 2.829e12},
//    "collectives": [{"kind": "all_reduce", "gpus": 2, "link": "nvlink", "bytes": 4096,
//                     "time_s": 8.864e-06, "busbw_Bps": 4.621e8}, …]}
// "backend" is one of "cudnn", "flash", "foldplan" (foldplan's own kernel, kernels/attention_*.cu);
// a shape may be measured once per backend. "gemm.bf16_accumulate_fp32" is the bf16 GEMM adding its
// result into an fp32 C (beta = 1, what Megatron's weight gradients into main_grad run; 2mnk FLOPs
// counted as for bf16). "measured.notes", "collectives" and "gemm.bf16_accumulate_fp32" may be
// omitted; the lists may be empty (the cost model then uses its physical model for that part).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/embedded_file.hpp"

namespace foldplan {

inline constexpr const char* kCalibrationSchema = "foldplan.calibration/1";

struct GemmMeasurement {
  std::int64_t m = 0, n = 0, k = 0; // C[m,n] = A[m,k]·B[k,n]
  double tflops = 0;                // achieved, 2mnk / time
  bool operator==(const GemmMeasurement&) const = default;
};

struct AttentionMeasurement {
  std::int64_t batch = 1, heads = 0, kv_heads = 0, seq = 0, head_dim = 0;
  bool causal = true;
  // "cudnn" (cuDNN fused attention, what Megatron runs through Transformer Engine), "flash"
  // (FlashAttention), "foldplan" (foldplan's own kernel, kernels/attention_*.cu, what
  // `foldplan run` executes)
  std::string backend;
  double fwd_tflops = 0; // counted as 4·b·h·s²·d/2 (causal; 4·b·h·s²·d when not)
  double bwd_tflops = 0; // counted as 2.5× the forward FLOPs
  bool operator==(const AttentionMeasurement&) const = default;
};

struct CollectiveMeasurement {
  std::string kind; // all_reduce, all_gather, reduce_scatter, all_to_all, send_recv,
                    // send_recv_bidirectional
  std::int64_t gpus = 0;
  std::string link; // "nvlink", "network"
  double bytes = 0; // as nccl-tests counts the message size
  double time_s = 0;
  double busbw_Bps = 0;
  bool operator==(const CollectiveMeasurement&) const = default;
};

struct CalibrationProvenance {
  std::string date, device, software, command, notes;
  bool operator==(const CalibrationProvenance&) const = default;
};

struct GpuCalibration {
  std::string gpu; // exactly GpuSpec::name of the cluster presets, e.g. "H100-SXM5-80GB"
  CalibrationProvenance measured;
  std::vector<GemmMeasurement> gemm_bf16;
  // bf16 inputs, fp32 C read and written (C += A·B), as foldplan run's accumulate_fp32 GEMMs
  std::vector<GemmMeasurement> gemm_bf16_accumulate_fp32;
  std::vector<GemmMeasurement> gemm_fp8;
  std::vector<AttentionMeasurement> attention;
  double copy_Bps = 0;        // device-to-device copy, bytes read + written per second
  double elementwise_Bps = 0; // a streaming elementwise kernel, bytes read + written per second
  // foldplan's runtime stand-in for memory-bound ops (kernels/stream_bytes: half read, half
  // written), bytes read + written per second; what `foldplan run` prices memory-bound ops with.
  // 0: not measured (optional in the file).
  double stream_Bps = 0;
  std::vector<CollectiveMeasurement> collectives;
  bool operator==(const GpuCalibration&) const = default;
};

// Reads and validates; every problem is an InputError naming `path`.field, e.g.
// "calibration.gemm.bf16[3].tflops: -1 is not a positive number". Unknown keys are rejected.
GpuCalibration calibration_from_json(const nlohmann::json& json,
                                     const std::string& path = "calibration");
// The inverse of calibration_from_json: calibration_from_json(calibration_to_json(c)) == c, and
// a file read and written again is the same JSON value.
nlohmann::json calibration_to_json(const GpuCalibration& calibration);
// Throws InputError for the first rule `calibration` breaks: positive sizes, rates and times,
// known kinds, heads a multiple of kv_heads, no shape measured twice.
void validate_calibration(const GpuCalibration& calibration,
                          const std::string& path = "calibration");

// The calibrations compiled from topologies/calibration/*.json.
std::span<const EmbeddedFile> calibration_presets();
// The shipped calibration whose "gpu" is exactly `gpu_name` (a GpuSpec::name), or nullopt when
// none was measured.
std::optional<GpuCalibration> builtin_calibration(const std::string& gpu_name);
// A user's file, e.g. from `foldplan calibrate`.
GpuCalibration load_calibration(const std::string& path);

} // namespace foldplan
