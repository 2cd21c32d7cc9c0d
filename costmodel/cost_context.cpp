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
                         std::optional<GpuCalibration> calibration)
    : CostContext(spec, gpus, pick_calibration(spec, std::move(calibration)), Resolved{}) {}

CostContext::CostContext(const ClusterSpec& spec, std::int64_t gpus,
                         const std::optional<GpuCalibration>& calibration, Resolved)
    : cluster_(spec, gpus), calibrated_(calibration.has_value()), compute_(spec.gpu, calibration),
      collectives_(cluster_, calibration) {}

} // namespace foldplan
