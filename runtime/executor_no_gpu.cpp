// The executor of a build without CUDA, cuBLAS or NCCL: the same API, refusing in one line.
#include "core/errors.hpp"
#include "runtime/executor.hpp"

namespace foldplan::runtime {

bool runtime_has_gpu_support() {
  return false;
}

void require_gpu_runtime(const std::string& command) {
  throw InputError(command, "this build has no CUDA/NCCL runtime (CMake found no CUDA "
                            "toolkit with cuBLAS and NCCL); rebuild where they are "
                            "installed");
}

ExecutionResult execute_step_program(const StepProgram& /*program*/,
                                     const ExecutorOptions& /*options*/) {
  require_gpu_runtime();
  return {};
}

} // namespace foldplan::runtime
