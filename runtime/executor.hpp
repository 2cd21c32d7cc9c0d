// The executor: runs a step program on GPUs — a thread per local GPU, or one process per GPU under
// a launcher (mpirun, srun) — with NCCL communicators split for every group family the program
// names, a CUDA stream per program Stream, cuBLAS for GEMMs, the attention kernels, a streaming
// kernel for memory-bound ops and NCCL for collectives and transfers; warm-up steps, then timed
// steps with CUDA events around every op. Knows nothing of models: the CLI lowers the plan and
// says which MoE layers to check. Built without CUDA, execute_step_program refuses in one line.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/step_program.hpp"
#include "runtime/launch_environment.hpp"
#include "runtime/measured_step.hpp"

namespace foldplan::runtime {

// One MoE layer shape to run for real before the timed steps (runtime/moe_layer.hpp's
// MoeLayerSpec, in host-only terms), on every EP group of the world.
struct MoeLayerCheckRequest {
  std::string description = {}; // how the results name the layer
  std::int64_t tokens = 0, hidden = 0, ffn_hidden = 0;
  int experts = 0, top_k = 0;
  bool gated = true;
  double capacity_factor = 0;
  bool pad_to_capacity = false;
  bool drop_by_position = false; // Megatron's --moe-token-drop-policy position (default: probs)
  double routing_skew = 0;
  std::vector<std::vector<std::int64_t>> ep_groups = {};  // partition the world
  std::vector<std::vector<std::int64_t>> etp_groups = {}; // empty when ETP = 1
};

struct ExecutorOptions {
  int local_gpus = 0; // --local-gpus; 0: one, or one per process under a launcher
  int warmup_steps = 1;
  int timed_steps = 3;
  double timeout_s = 300; // per step (and per communicator set-up) before every rank aborts
  double predicted_peak_bytes = 0; // per GPU; 0 skips the memory check
  std::vector<MoeLayerCheckRequest> moe_checks = {};
  EnvironmentReader environment = {}; // launcher variables; std::getenv when empty
};

struct ExecutionResult {
  bool reporting = true; // false on ranks other than 0 under a launcher: rank 0 reports
  std::string device = {};
  std::vector<RankMeasurement> ranks = {}; // every rank of the world (on the reporting process)
  std::vector<MoeCheckOutcome> moe_checks = {};
};

// A failure during the run (NCCL, CUDA, cuBLAS error or timeout), after every communicator was
// aborted: one line naming the rank, the op and the library's error.
class ExecutionError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Whether this build can execute (CUDA, cuBLAS and NCCL were found); require_gpu_runtime refuses
// in one line (InputError naming `command`) where it cannot.
bool runtime_has_gpu_support();
void require_gpu_runtime(const std::string& command = "foldplan run");

// InputError for refusals before any allocation (no CUDA in this build, world size, memory, an op
// the runtime cannot run); ExecutionError for failures while running.
ExecutionResult execute_step_program(const StepProgram& program, const ExecutorOptions& options);

} // namespace foldplan::runtime
