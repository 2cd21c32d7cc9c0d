// `foldplan calibrate` in a build without CUDA, cuBLAS or NCCL: refuses in one line.
#include "core/errors.hpp"
#include "runtime/calibration_sweep.hpp"

namespace foldplan::runtime {

CalibrationRun run_calibration_sweep(const CalibrationGrid& /*grid*/,
                                     const CalibrationOptions& /*options*/) {
  throw InputError("foldplan calibrate", "this build has no CUDA/NCCL runtime (CMake found no "
                                         "CUDA toolkit with cuBLAS and NCCL); rebuild where they "
                                         "are installed");
}

} // namespace foldplan::runtime
