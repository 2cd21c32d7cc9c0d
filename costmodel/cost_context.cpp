#include "costmodel/cost_context.hpp"

namespace foldplan {
namespace {

std::optional<GpuCalibration> pick_calibration(const ClusterSpec& spec,
                                               std::optional<GpuCalibration> given) {
  if (given)
    return given;
  return builtin_calibration(spec.gpu.name);
}

} // namespace

CostContext::CostContext(const ClusterSpec& spec, std::int64_t gpus,
                         std::optional<GpuCalibration> calibration,
                         const std::string& attention_backend, GemmKernels gemm_kernels)
    : CostContext(spec, gpus, pick_calibration(spec, std::move(calibration)), attention_backend,
                  gemm_kernels, Resolved{}) {}

CostContext::CostContext(const ClusterSpec& spec, std::int64_t gpus,
                         const std::optional<GpuCalibration>& calibration,
                         const std::string& attention_backend, GemmKernels gemm_kernels, Resolved)
    : cluster_(spec, gpus), calibrated_(calibration.has_value()),
      compute_(spec.gpu, calibration, attention_backend, gemm_kernels),
      collectives_(cluster_, calibration) {}

} // namespace foldplan
