// Validation of a step program and the look-ups its consumers share; see step_program.hpp.
#include "core/step_program.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan {
namespace {

constexpr std::string_view kRoot = "program";

// The shape alternative each kind carries, as an index into OpShape.
std::size_t shape_index_of(OpKind kind) {
  switch (kind) {
  case OpKind::gemm:
    return 0;
  case OpKind::attention:
    return 1;
  case OpKind::memory_bound:
    return 2;
  case OpKind::collective:
    return 3;
  case OpKind::send:
  case OpKind::recv:
    return 4;
  }
  return 0;
}

std::string_view shape_description(std::size_t index) {
  constexpr std::string_view kNames[] = {"a gemm", "an attention", "a memory_bound", "a collective",
                                         "a send/recv"};
  return kNames[index];
}

void require_non_negative(double value, const std::string& field) {
  if (!std::isfinite(value) || value < 0)
    throw InputError(field, fmt::format("{} is not a non-negative number of bytes", value));
}

void require_non_negative(std::int64_t value, const std::string& field) {
  if (value < 0)
    throw InputError(field, fmt::format("{} is negative", value));
}

void require_positive(std::int64_t value, const std::string& field) {
  if (value <= 0)
    throw InputError(field, fmt::format("{} is not a positive integer", value));
}

// Where each rank sits in one family: the index of its group, or -1.
struct FamilyIndex {
  const CommGroup* family = nullptr;
  std::vector<int> group_of_rank;
};

// How one family serves one program: whether it holds every rank of the program, and the size of
// the groups that do (0 when they differ, which all_to_all_v cannot split for in one program).
struct FamilyCoverage {
  std::optional<std::int64_t> uncovered_rank;
  std::size_t common_group_size = 0;
};

class StepProgramValidator {
public:
  explicit StepProgramValidator(const StepProgram& program) : program_(program) {}

  void run() {
    if (program_.world_size <= 0) {
      throw InputError(field("world_size"),
                       fmt::format("{} is not a positive integer", program_.world_size));
    }
    check_groups();
    check_rank_coverage();
    for (std::size_t p = 0; p < program_.programs.size(); ++p)
      check_program(p);
  }

private:
  static std::string field(std::string_view key) { return fmt::format("{}.{}", kRoot, key); }

  void check_groups() {
    for (std::size_t g = 0; g < program_.groups.size(); ++g) {
      const CommGroup& family = program_.groups[g];
      const std::string path = fmt::format("{}.groups[{}]", kRoot, g);
      if (family.id < 0)
        throw InputError(path + ".id", fmt::format("{} is negative", family.id));
      const auto [it, inserted] = family_by_id_.emplace(family.id, FamilyIndex{});
      if (!inserted) {
        throw InputError(path + ".id", fmt::format("{} is already the id of groups[{}]", family.id,
                                                   index_of_family(family.id)));
      }
      it->second.family = &family;
      it->second.group_of_rank.assign(static_cast<std::size_t>(program_.world_size), -1);
      if (family.members.empty())
        throw InputError(path + ".members", "has no group");
      for (std::size_t m = 0; m < family.members.size(); ++m) {
        const std::string group_path = fmt::format("{}.members[{}]", path, m);
        if (family.members[m].empty())
          throw InputError(group_path, "is an empty group");
        for (std::size_t r = 0; r < family.members[m].size(); ++r) {
          const std::int64_t rank = family.members[m][r];
          const std::string rank_path = fmt::format("{}[{}]", group_path, r);
          check_rank_in_world(rank, rank_path);
          int& holder = it->second.group_of_rank[static_cast<std::size_t>(rank)];
          if (holder >= 0) {
            throw InputError(rank_path,
                             fmt::format("rank {} is already in members[{}]", rank, holder));
          }
          holder = static_cast<int>(m);
        }
      }
    }
  }

  std::size_t index_of_family(int id) const {
    for (std::size_t g = 0; g < program_.groups.size(); ++g) {
      if (program_.groups[g].id == id)
        return g;
    }
    return 0;
  }

  void check_rank_in_world(std::int64_t rank, const std::string& path) const {
    if (rank < 0 || rank >= program_.world_size) {
      throw InputError(
          path, fmt::format("rank {} is outside the world of {} ranks", rank, program_.world_size));
    }
  }

  void check_rank_coverage() const {
    std::vector<int> program_of(static_cast<std::size_t>(program_.world_size), -1);
    for (std::size_t p = 0; p < program_.programs.size(); ++p) {
      const RankProgram& rank_program = program_.programs[p];
      const std::string path = fmt::format("{}.programs[{}].ranks", kRoot, p);
      if (rank_program.ranks.empty())
        throw InputError(path, "no rank runs this program");
      for (std::size_t r = 0; r < rank_program.ranks.size(); ++r) {
        const std::int64_t rank = rank_program.ranks[r];
        const std::string rank_path = fmt::format("{}[{}]", path, r);
        check_rank_in_world(rank, rank_path);
        int& runner = program_of[static_cast<std::size_t>(rank)];
        if (runner >= 0) {
          throw InputError(rank_path,
                           fmt::format("rank {} already runs programs[{}]", rank, runner));
        }
        runner = static_cast<int>(p);
      }
    }
    for (std::size_t rank = 0; rank < program_of.size(); ++rank) {
      if (program_of[rank] < 0)
        throw InputError(field("programs"), fmt::format("rank {} runs no program", rank));
    }
  }

  void check_program(std::size_t p) {
    const RankProgram& rank_program = program_.programs[p];
    const std::string path = fmt::format("{}.programs[{}]", kRoot, p);
    coverage_.clear();
    std::set<int> earlier_ids;
    for (std::size_t o = 0; o < rank_program.ops.size(); ++o) {
      const Op& op = rank_program.ops[o];
      const std::string op_path = fmt::format("{}.ops[{}]", path, o);
      if (earlier_ids.count(op.id) != 0)
        throw InputError(op_path + ".id", fmt::format("{} is the id of an earlier op", op.id));
      if (op.micro_batch < -1)
        throw InputError(op_path + ".micro_batch", fmt::format("{} is below -1", op.micro_batch));
      if (op.layer < -1)
        throw InputError(op_path + ".layer", fmt::format("{} is below -1", op.layer));
      for (std::size_t d = 0; d < op.deps.size(); ++d) {
        if (earlier_ids.count(op.deps[d]) == 0) {
          throw InputError(fmt::format("{}.deps[{}]", op_path, d),
                           fmt::format("{} is not an earlier op", op.deps[d]));
        }
      }
      check_shape(op, rank_program, op_path);
      earlier_ids.insert(op.id);
    }
  }

  void check_shape(const Op& op, const RankProgram& rank_program, const std::string& op_path) {
    const std::string shape_path = fmt::format("{}.{}", op_path, op_kind_name(op.kind));
    if (op.shape.index() != shape_index_of(op.kind)) {
      throw InputError(op_path, fmt::format("kind {} carries {} shape", op_kind_name(op.kind),
                                            shape_description(op.shape.index())));
    }
    if (const auto* gemm = std::get_if<GemmShape>(&op.shape)) {
      require_non_negative(gemm->m, shape_path + ".m");
      require_non_negative(gemm->n, shape_path + ".n");
      require_non_negative(gemm->k, shape_path + ".k");
      require_positive(gemm->groups, shape_path + ".groups");
    } else if (const auto* attention = std::get_if<AttentionOpShape>(&op.shape)) {
      check_attention(*attention, shape_path);
    } else if (const auto* memory = std::get_if<MemoryBoundShape>(&op.shape)) {
      require_non_negative(memory->bytes, shape_path + ".bytes");
      if (memory->kernels < 1 || memory->kernels > kMaxKernelsPerOp) {
        throw InputError(shape_path + ".kernels",
                         fmt::format("{} is not a kernel count from 1 to {}", memory->kernels,
                                     kMaxKernelsPerOp));
      }
    } else if (const auto* collective = std::get_if<CollectiveShape>(&op.shape)) {
      check_collective(*collective, rank_program, shape_path);
    } else if (const auto* transfer = std::get_if<PeerTransfer>(&op.shape)) {
      check_transfer(*transfer, rank_program, shape_path);
    }
  }

  static void check_attention(const AttentionOpShape& attention, const std::string& path) {
    require_non_negative(attention.batch, path + ".batch");
    require_positive(attention.heads, path + ".heads");
    require_positive(attention.kv_heads, path + ".kv_heads");
    require_non_negative(attention.seq_q, path + ".seq_q");
    require_non_negative(attention.seq_kv, path + ".seq_kv");
    require_positive(attention.qk_head_dim, path + ".qk_head_dim");
    require_positive(attention.v_head_dim, path + ".v_head_dim");
    // Grouped-query attention: each key/value head serves heads/kv_heads query heads.
    if (attention.heads % attention.kv_heads != 0) {
      throw InputError(path + ".kv_heads", fmt::format("{} does not divide heads {}",
                                                       attention.kv_heads, attention.heads));
    }
  }

  // The family `group_id` names, checked to hold every rank of the program.
  const FamilyCoverage& family_for(int group_id, const RankProgram& rank_program,
                                   const std::string& group_path) {
    const auto family = family_by_id_.find(group_id);
    if (family == family_by_id_.end())
      throw InputError(group_path, fmt::format("{} names no group", group_id));
    auto [it, inserted] = coverage_.emplace(group_id, FamilyCoverage{});
    if (inserted) {
      // Computed once per family and program: a program has many ops but few families.
      std::set<std::size_t> sizes;
      for (const std::int64_t rank : rank_program.ranks) {
        const int group = family->second.group_of_rank[static_cast<std::size_t>(rank)];
        if (group < 0) {
          it->second.uncovered_rank = rank;
          break;
        }
        sizes.insert(family->second.family->members[static_cast<std::size_t>(group)].size());
      }
      if (sizes.size() == 1)
        it->second.common_group_size = *sizes.begin();
    }
    if (it->second.uncovered_rank) {
      throw InputError(group_path, fmt::format("rank {} is in no group of {} (\"{}\")",
                                               *it->second.uncovered_rank, group_id,
                                               family->second.family->name));
    }
    return it->second;
  }

  void check_collective(const CollectiveShape& collective, const RankProgram& rank_program,
                        const std::string& path) {
    const FamilyCoverage& coverage =
        family_for(collective.group_id, rank_program, path + ".group_id");
    require_non_negative(collective.bytes, path + ".bytes");
    const std::string splits_path = path + ".send_bytes_per_peer";
    if (collective.op != CollectiveOp::all_to_all_v) {
      if (!collective.send_bytes_per_peer.empty()) {
        throw InputError(splits_path, fmt::format("only all_to_all_v has per-peer splits, not {}",
                                                  collective_op_name(collective.op)));
      }
      return;
    }
    if (coverage.common_group_size == 0) {
      throw InputError(path + ".group_id",
                       fmt::format("the ranks of this program are in groups of different sizes, "
                                   "so one split list cannot fit them all"));
    }
    if (collective.send_bytes_per_peer.size() != coverage.common_group_size) {
      throw InputError(splits_path, fmt::format("has {} splits for a group of {} ranks",
                                                collective.send_bytes_per_peer.size(),
                                                coverage.common_group_size));
    }
    double total_bytes = 0;
    for (std::size_t s = 0; s < collective.send_bytes_per_peer.size(); ++s) {
      require_non_negative(collective.send_bytes_per_peer[s],
                           fmt::format("{}[{}]", splits_path, s));
      total_bytes += collective.send_bytes_per_peer[s];
    }
    // Splits are byte counts held in doubles: exact for integers below 2^53, so compare with a
    // tolerance only for the rounding of fractional averages.
    if (std::fabs(total_bytes - collective.bytes) > 1e-9 * std::max(1.0, collective.bytes)) {
      throw InputError(splits_path, fmt::format("splits sum to {} but bytes is {}", total_bytes,
                                                collective.bytes));
    }
  }

  void check_transfer(const PeerTransfer& transfer, const RankProgram& rank_program,
                      const std::string& path) {
    family_for(transfer.group_id, rank_program, path + ".group_id");
    require_non_negative(transfer.bytes, path + ".bytes");
    const FamilyIndex& family = family_by_id_.at(transfer.group_id);
    for (const std::int64_t rank : rank_program.ranks) {
      const int group = family.group_of_rank[static_cast<std::size_t>(rank)];
      const std::vector<std::int64_t>& members =
          family.family->members[static_cast<std::size_t>(group)];
      const std::string peer_path = path + ".peer_index";
      if (transfer.peer_index < 0 ||
          transfer.peer_index >= static_cast<std::int64_t>(members.size())) {
        throw InputError(peer_path, fmt::format("{} is outside rank {}'s group of {} ranks",
                                                transfer.peer_index, rank, members.size()));
      }
      if (members[static_cast<std::size_t>(transfer.peer_index)] == rank) {
        throw InputError(peer_path, fmt::format("{} is rank {} itself", transfer.peer_index, rank));
      }
    }
  }

  const StepProgram& program_;
  std::map<int, FamilyIndex> family_by_id_;
  std::map<int, FamilyCoverage> coverage_; // of the program being checked, by family id
};

} // namespace

int append_op(RankProgram& program, Op op) {
  int next_id = 0;
  for (const Op& existing : program.ops)
    next_id = std::max(next_id, existing.id + 1);
  op.id = next_id;
  program.ops.push_back(std::move(op));
  return next_id;
}

void validate_step_program(const StepProgram& program) {
  StepProgramValidator(program).run();
}

const std::vector<std::int64_t>* group_holding(const CommGroup& family, std::int64_t rank) {
  for (const std::vector<std::int64_t>& group : family.members) {
    if (std::find(group.begin(), group.end(), rank) != group.end())
      return &group;
  }
  return nullptr;
}

const CommGroup* find_comm_group(const StepProgram& program, int group_id) {
  for (const CommGroup& family : program.groups) {
    if (family.id == group_id)
      return &family;
  }
  return nullptr;
}

const RankProgram* program_of_rank(const StepProgram& program, std::int64_t rank) {
  for (const RankProgram& rank_program : program.programs) {
    if (std::find(rank_program.ranks.begin(), rank_program.ranks.end(), rank) !=
        rank_program.ranks.end())
      return &rank_program;
  }
  return nullptr;
}

std::string_view op_kind_name(OpKind kind) {
  switch (kind) {
  case OpKind::gemm:
    return "gemm";
  case OpKind::attention:
    return "attention";
  case OpKind::memory_bound:
    return "memory_bound";
  case OpKind::collective:
    return "collective";
  case OpKind::send:
    return "send";
  case OpKind::recv:
    return "recv";
  }
  return "";
}

std::string_view collective_op_name(CollectiveOp op) {
  switch (op) {
  case CollectiveOp::all_reduce:
    return "all_reduce";
  case CollectiveOp::all_gather:
    return "all_gather";
  case CollectiveOp::reduce_scatter:
    return "reduce_scatter";
  case CollectiveOp::all_to_all:
    return "all_to_all";
  case CollectiveOp::all_to_all_v:
    return "all_to_all_v";
  }
  return "";
}

std::string_view stream_name(Stream stream) {
  switch (stream) {
  case Stream::compute:
    return "compute";
  case Stream::tp_comm:
    return "tp_comm";
  case Stream::ep_comm:
    return "ep_comm";
  case Stream::dp_comm:
    return "dp_comm";
  case Stream::pp_comm:
    return "pp_comm";
  case Stream::cp_comm:
    return "cp_comm";
  }
  return "";
}

std::string_view phase_name(Phase phase) {
  switch (phase) {
  case Phase::forward:
    return "forward";
  case Phase::backward_dgrad:
    return "backward_dgrad";
  case Phase::backward_wgrad:
    return "backward_wgrad";
  case Phase::recompute:
    return "recompute";
  case Phase::optimizer:
    return "optimizer";
  case Phase::other:
    return "other";
  }
  return "";
}

std::string_view gemm_dtype_name(GemmDtype dtype) {
  switch (dtype) {
  case GemmDtype::bf16:
    return "bf16";
  case GemmDtype::fp8:
    return "fp8";
  }
  return "";
}

} // namespace foldplan
