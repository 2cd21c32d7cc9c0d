// The step program: the one interface between the simulator (which lowers a plan into it), the cost
// model (which times each op) and the runtime (which executes it). One training step of every rank
// as an ordered list of ops — GEMMs, attention, memory-bound kernels, collectives, point-to-point
// transfers — each with the stream it runs on and the ops it waits for. Plain data: the core
// library knows nothing about models or parallel configurations. Its JSON form is in
// step_program_json.hpp.
//
// Sharing. Ranks that are provably identical (the same work, only different peers) share one
// RankProgram. So that a shared program stays valid on every rank that runs it, an op never names
// an absolute rank of another process: communication names a group *family* (CommGroup, e.g. every
// TP group of the world) and each executing rank uses the one group of that family it belongs to.
// Point-to-point peers are likewise a position inside that group (the next pipeline stage is
// position pp+1 of the rank's PP group), so all DP replicas of a pipeline stage share one program.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace foldplan {

inline constexpr std::string_view kStepProgramSchema = "foldplan.step/1";
// Most kernels one memory-bound op may stand for.
inline constexpr int kMaxKernelsPerOp = 1024;

enum class OpKind { gemm, attention, memory_bound, collective, send, recv };

// Not "CollectiveKind": costmodel's CollectiveKind is the cost-model view (send_recv, no
// v-variant).
enum class CollectiveOp { all_reduce, all_gather, reduce_scatter, all_to_all, all_to_all_v };

// The CUDA stream an op runs on. Ops on different streams may overlap; the dependencies say which
// cannot, so what communication hides behind compute is explicit, never a fudge factor.
enum class Stream { compute, tp_comm, ep_comm, dp_comm, pp_comm, cp_comm };

enum class Phase { forward, backward_dgrad, backward_wgrad, recompute, optimizer, other };

// Element type of a GEMM's inputs. Not "Precision": parallel's Precision is the training recipe
// (fp8 tensorwise or blockwise); a kernel only needs to know which tensor-core path it takes.
enum class GemmDtype { bf16, fp8 };

// C[m×n] = A[m×k]·B[k×n]; groups > 1 is a grouped GEMM of `groups` such problems (MoE experts),
// each of the shape given (the lowering pads or averages token counts per expert).
struct GemmShape {
  std::int64_t m = 0, n = 0, k = 0;
  std::int64_t groups = 1;
  GemmDtype dtype = GemmDtype::bf16;
  // The result is added into an fp32 buffer (weight gradients into Megatron's main_grad).
  bool accumulate_fp32 = false;
  bool operator==(const GemmShape&) const = default;
};

// Fused (flash) attention of one rank's slice. Named apart from costmodel's AttentionShape.
struct AttentionOpShape {
  std::int64_t batch = 0, heads = 0, kv_heads = 0, seq_q = 0, seq_kv = 0;
  std::int64_t qk_head_dim = 0, v_head_dim = 0;
  bool causal = true;
  bool backward = false;
  bool operator==(const AttentionOpShape&) const = default;
};

// Kernels bound by HBM traffic (norms, activations, permutation): the bytes read plus written.
struct MemoryBoundShape {
  double bytes = 0;
  // Kernels the op stands for: a chain of small ones (the router's softmax, top-k, scatters and
  // loss terms) pays a launch each, whatever its bytes.
  int kernels = 1;
  bool operator==(const MemoryBoundShape&) const = default;
};

// A collective on the group of family `group_id` that holds the executing rank. `bytes` is the
// message size as NCCL counts it (the input of all-reduce, the full output of all-gather, the full
// input of reduce-scatter, the whole send buffer of all-to-all). Only all_to_all_v has
// `send_bytes_per_peer`: one entry per group member in group order, summing to `bytes`.
struct CollectiveShape {
  CollectiveOp op = CollectiveOp::all_reduce;
  int group_id = 0;
  double bytes = 0;
  std::vector<double> send_bytes_per_peer;
  bool operator==(const CollectiveShape&) const = default;
};

// One side of a point-to-point transfer: the peer is position `peer_index` of the group of family
// `group_id` that holds the executing rank. A send from rank s to rank d with tag t pairs with the
// recv on d from s with tag t.
struct PeerTransfer {
  int group_id = 0;
  std::int64_t peer_index = 0;
  double bytes = 0;
  int tag = 0;
  bool operator==(const PeerTransfer&) const = default;
};

using OpShape =
    std::variant<GemmShape, AttentionOpShape, MemoryBoundShape, CollectiveShape, PeerTransfer>;

struct Op {
  int id = 0;
  std::string name = {}; // "layer3.moe.fc1.fwd": what a trace shows and validate matches on
  OpKind kind = OpKind::gemm;
  Stream stream = Stream::compute;
  Phase phase = Phase::forward;
  int micro_batch = -1; // -1: not part of a micro-batch (optimizer step)
  int layer = -1;       // -1: not part of a layer (embedding, loss, optimizer)
  // Ids of ops of the same program that must finish first; each appears earlier in the op list,
  // so the list itself is a topological order (the runtime issues ops in list order).
  std::vector<int> deps = {};
  // GemmShape for gemm, AttentionOpShape for attention, MemoryBoundShape for memory_bound,
  // CollectiveShape for collective, PeerTransfer for send and recv.
  OpShape shape;
  bool operator==(const Op&) const = default;
};

// A family of communication groups ("tp", "ep", "dp-cp"…): disjoint groups of ranks, as Megatron's
// parallel_state makes one process group per member of a family. A family need not cover the world;
// it must cover every rank whose program communicates over it.
struct CommGroup {
  int id = 0;
  std::string name;
  std::vector<std::vector<std::int64_t>> members; // each group's ranks, in NCCL rank order
  bool operator==(const CommGroup&) const = default;
};

// The program of every rank in `ranks`: they run it identically.
struct RankProgram {
  std::vector<std::int64_t> ranks;
  std::vector<Op> ops;
  bool operator==(const RankProgram&) const = default;
};

struct StepProgram {
  std::string schema = std::string(kStepProgramSchema);
  std::int64_t world_size = 0;
  std::vector<CommGroup> groups;
  std::vector<RankProgram> programs;
  nlohmann::json metadata = nlohmann::json::object(); // free-form: the plan it was lowered from
  bool operator==(const StepProgram&) const = default;
};

// Appends `op` with the next free id (one past the largest id so far) and returns that id, so
// builders can write `const int fc1 = append_op(program, {...}); ... .deps = {fc1}`.
int append_op(RankProgram& program, Op op);

// Checks every rule the simulator and runtime rely on; the first broken one is an InputError whose
// field is a JSON path ("program.programs[1].ops[7].deps[0]"):
// - world_size positive; every rank 0..world_size-1 runs exactly one program;
// - group ids unique; each family's groups non-empty, in range and disjoint;
// - op ids unique in a program, deps name earlier ops, the shape matches the kind;
// - sizes non-negative (GEMM groups and attention heads positive, kv_heads divides heads);
// - a collective, send or recv names an existing family that holds every rank of the program;
// - all_to_all_v has one split per member of each executing rank's group, summing to bytes, and
//   only all_to_all_v has splits;
// - a send or recv peer is a position in the group other than the executing rank's own.
// Not checked here: that sends and recvs pair up and that group members issue matching collectives
// in the same order — the simulator reports those as deadlocks, with the waiting ops.
void validate_step_program(const StepProgram& program);

// The group of `family` that holds `rank`, or nullptr when none does.
const std::vector<std::int64_t>* group_holding(const CommGroup& family, std::int64_t rank);
// The family with id `group_id`, or nullptr.
const CommGroup* find_comm_group(const StepProgram& program, int group_id);
// The program `rank` runs, or nullptr.
const RankProgram* program_of_rank(const StepProgram& program, std::int64_t rank);

// Names as the JSON spells them (lower case, underscores).
std::string_view op_kind_name(OpKind kind);
std::string_view collective_op_name(CollectiveOp op);
std::string_view stream_name(Stream stream);
std::string_view phase_name(Phase phase);
std::string_view gemm_dtype_name(GemmDtype dtype);

} // namespace foldplan
