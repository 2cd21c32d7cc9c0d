// The discrete-event step simulation; see event_simulation.hpp for the semantics. Everything the
// event loop looks up (dependents, stream queues, which collective of which group an op is, which
// transfer pairs with which) is precomputed per program or per rank, so the loop itself allocates
// nothing.
#include "simulator/event_simulation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "simulator/rank_folding.hpp"

namespace foldplan {
namespace {

constexpr std::uint8_t kComputeBit = 1u << stream_index(Stream::compute);

enum class StreamState : std::uint8_t { idle, waiting, running };

bool is_compute_like(OpKind kind) {
  return kind == OpKind::gemm || kind == OpKind::attention || kind == OpKind::memory_bound;
}

// One RankProgram, indexed for the event loop. Ops are referred to by their position in the list.
struct ProgramIndex {
  const RankProgram* program = nullptr;
  std::vector<std::uint8_t> stream;
  std::vector<std::int32_t> dep_count;
  std::vector<std::int32_t> dependents_begin; // CSR over dependents
  std::vector<std::int32_t> dependents;
  std::array<std::vector<std::int32_t>, kStreamCount> stream_ops; // each stream's ops, in order
  std::vector<std::int32_t> family;   // collectives, sends, recvs: index of the family
  std::vector<std::int32_t> sequence; // collectives: n (n-th of its family); p2p: ordinal
  std::vector<std::vector<std::int32_t>> family_collectives; // by family: ops in program order
  std::int32_t transfer_count = 0;
};

// One collective occurrence of one group: how many members issued it, the longest duration.
struct CollectiveInstance {
  std::int32_t arrived = 0;
  double duration_s = 0;
};

// One send/recv pair; a side is -1 when the program has no matching op.
struct TransferPair {
  std::int32_t arrived = 0;
  double duration_s = 0;
  std::int32_t send_rank = -1, send_op = -1, recv_rank = -1, recv_op = -1;
};

struct RankState {
  std::array<std::int32_t, kStreamCount> head = {};
  std::array<StreamState, kStreamCount> state = {};
  std::array<double, kStreamCount> started_s = {};
  std::uint8_t busy_mask = 0;
  double last_change_s = 0;
};

struct Event {
  double time_s;
  std::uint64_t sequence;
  std::int32_t rank;
  std::int32_t op;
};

// A min-heap on (time, sequence): std heaps are max-heaps, so "later" compares as "less".
struct LaterEvent {
  bool operator()(const Event& a, const Event& b) const {
    return std::tie(a.time_s, a.sequence) > std::tie(b.time_s, b.sequence);
  }
};

// Step time, critical rank, idle and bubble shares and the means, from each rank's own figures.
void summarise_ranks(SimulationResult& result) {
  result.step_time_s = 0;
  result.critical_rank = 0;
  for (const RankSimulation& rank : result.ranks) {
    if (rank.finish_s > result.step_time_s) {
      result.step_time_s = rank.finish_s;
      result.critical_rank = rank.rank;
    }
  }
  result.mean_bubble_fraction = 0;
  result.mean_exposed_s = {};
  for (RankSimulation& rank : result.ranks) {
    rank.compute_idle_s = result.step_time_s - rank.busy_s[stream_index(Stream::compute)];
    rank.bubble_fraction = result.step_time_s > 0 ? rank.compute_idle_s / result.step_time_s : 0.0;
    result.mean_bubble_fraction += rank.bubble_fraction;
    for (std::size_t s = 0; s < kStreamCount; ++s)
      result.mean_exposed_s[s] += rank.exposed_s[s];
  }
  const auto ranks = static_cast<double>(result.ranks.size());
  result.mean_bubble_fraction /= ranks;
  for (double& exposed : result.mean_exposed_s)
    exposed /= ranks;
  result.critical_exposed_s =
      result.ranks[static_cast<std::size_t>(result.critical_rank)].exposed_s;
}

class EventSimulation {
public:
  // `ops_of` (when given) holds each program's ops in place of `program`'s own, which the folded
  // simulation leaves empty rather than copy.
  EventSimulation(const StepProgram& program, const OpTimer& timer,
                  const SimulationOptions& options,
                  const std::vector<RankProgram>* ops_of = nullptr)
      : step_(program), ops_of_(ops_of != nullptr ? *ops_of : program.programs), timer_(timer),
        options_(options), world_(static_cast<std::int32_t>(program.world_size)) {
    index_families();
    index_programs();
    index_ranks();
    index_collectives();
    pair_transfers();
  }

  SimulationResult run() {
    events_.reserve(static_cast<std::size_t>(world_) * kStreamCount + 1);
    for (std::int32_t rank = 0; rank < world_; ++rank) {
      for (std::size_t s = 0; s < kStreamCount; ++s)
        issue(rank, s);
    }
    while (!events_.empty()) {
      std::pop_heap(events_.begin(), events_.end(), LaterEvent{});
      const Event event = events_.back();
      events_.pop_back();
      now_ = event.time_s;
      finish(event.rank, event.op);
    }
    for (std::int32_t rank = 0; rank < world_; ++rank) {
      const ProgramIndex& index = programs_[program_of_[rank]];
      for (std::size_t s = 0; s < kStreamCount; ++s) {
        if (static_cast<std::size_t>(states_[rank].head[s]) < index.stream_ops[s].size())
          report_deadlock();
      }
    }
    return summarise();
  }

private:
  void index_families() {
    family_groups_.resize(step_.groups.size());
    for (std::size_t f = 0; f < step_.groups.size(); ++f) {
      family_of_id_.emplace(step_.groups[f].id, static_cast<std::int32_t>(f));
      family_groups_[f].assign(static_cast<std::size_t>(world_), -1);
      const auto& members = step_.groups[f].members;
      for (std::size_t g = 0; g < members.size(); ++g) {
        for (const std::int64_t rank : members[g])
          family_groups_[f][static_cast<std::size_t>(rank)] = static_cast<std::int32_t>(g);
      }
    }
  }

  void index_programs() {
    programs_.resize(step_.programs.size());
    for (std::size_t p = 0; p < step_.programs.size(); ++p) {
      const RankProgram& program = ops_of_[p];
      ProgramIndex& index = programs_[p];
      index.program = &program;
      const std::size_t n = program.ops.size();
      std::unordered_map<int, std::int32_t> position_of_id;
      position_of_id.reserve(n);
      index.stream.resize(n);
      index.dep_count.resize(n);
      index.family.assign(n, -1);
      index.sequence.assign(n, -1);
      index.family_collectives.resize(step_.groups.size());
      std::vector<std::int32_t> dependent_count(n, 0);
      for (std::size_t o = 0; o < n; ++o) {
        const Op& op = program.ops[o];
        position_of_id.emplace(op.id, static_cast<std::int32_t>(o));
        index.stream[o] = static_cast<std::uint8_t>(stream_index(op.stream));
        index.stream_ops[stream_index(op.stream)].push_back(static_cast<std::int32_t>(o));
        index.dep_count[o] = static_cast<std::int32_t>(op.deps.size());
        for (const int dep : op.deps)
          ++dependent_count[static_cast<std::size_t>(position_of_id.at(dep))];
        if (const auto* collective = std::get_if<CollectiveShape>(&op.shape)) {
          const std::int32_t f = family_of_id_.at(collective->group_id);
          index.family[o] = f;
          auto& list = index.family_collectives[static_cast<std::size_t>(f)];
          index.sequence[o] = static_cast<std::int32_t>(list.size());
          list.push_back(static_cast<std::int32_t>(o));
        } else if (const auto* transfer = std::get_if<PeerTransfer>(&op.shape)) {
          index.family[o] = family_of_id_.at(transfer->group_id);
          index.sequence[o] = index.transfer_count++;
        }
      }
      index.dependents_begin.assign(n + 1, 0);
      for (std::size_t o = 0; o < n; ++o)
        index.dependents_begin[o + 1] = index.dependents_begin[o] + dependent_count[o];
      index.dependents.resize(static_cast<std::size_t>(index.dependents_begin[n]));
      std::vector<std::int32_t> fill(index.dependents_begin.begin(),
                                     index.dependents_begin.end() - 1);
      for (std::size_t o = 0; o < n; ++o) {
        for (const int dep : program.ops[o].deps) {
          const auto d = static_cast<std::size_t>(position_of_id.at(dep));
          index.dependents[static_cast<std::size_t>(fill[d]++)] = static_cast<std::int32_t>(o);
        }
      }
    }
  }

  void index_ranks() {
    program_of_.assign(static_cast<std::size_t>(world_), -1);
    for (std::size_t p = 0; p < step_.programs.size(); ++p) {
      for (const std::int64_t rank : step_.programs[p].ranks)
        program_of_[static_cast<std::size_t>(rank)] = static_cast<std::int32_t>(p);
    }
    states_.resize(static_cast<std::size_t>(world_));
    dep_base_.resize(static_cast<std::size_t>(world_) + 1, 0);
    transfer_base_.resize(static_cast<std::size_t>(world_) + 1, 0);
    for (std::int32_t rank = 0; rank < world_; ++rank) {
      const ProgramIndex& index = programs_[program_of_[rank]];
      dep_base_[rank + 1] = dep_base_[rank] + index.dep_count.size();
      transfer_base_[rank + 1] =
          transfer_base_[rank] + static_cast<std::size_t>(index.transfer_count);
    }
    remaining_deps_.resize(dep_base_.back());
    for (std::int32_t rank = 0; rank < world_; ++rank) {
      const ProgramIndex& index = programs_[program_of_[rank]];
      std::copy(index.dep_count.begin(), index.dep_count.end(),
                remaining_deps_.begin() + static_cast<std::ptrdiff_t>(dep_base_[rank]));
    }
    result_.ranks.resize(static_cast<std::size_t>(world_));
    for (std::int32_t rank = 0; rank < world_; ++rank) {
      result_.ranks[rank].rank = rank;
      if (options_.record_timeline)
        result_.ranks[rank].timeline.resize(programs_[program_of_[rank]].dep_count.size());
    }
  }

  // Instances of every (family, group): as many as the member issuing the most collectives on it.
  void index_collectives() {
    instance_base_.resize(step_.groups.size());
    std::size_t total = 0;
    for (std::size_t f = 0; f < step_.groups.size(); ++f) {
      const auto& members = step_.groups[f].members;
      instance_base_[f].resize(members.size());
      for (std::size_t g = 0; g < members.size(); ++g) {
        instance_base_[f][g] = total;
        std::size_t most = 0;
        for (const std::int64_t rank : members[g]) {
          const ProgramIndex& index = programs_[program_of_[static_cast<std::size_t>(rank)]];
          most = std::max(most, index.family_collectives[f].size());
        }
        total += most;
      }
    }
    instances_.resize(total);
  }

  std::int64_t peer_of(std::int32_t rank, const PeerTransfer& transfer, std::int32_t family) const {
    const std::int32_t g = family_groups_[family][rank];
    return step_.groups[family].members[g][static_cast<std::size_t>(transfer.peer_index)];
  }

  // The k-th send s→d with tag t pairs with the k-th recv on d from s with tag t.
  void pair_transfers() {
    struct Side {
      std::int64_t src, dst;
      int tag;
      int is_send;
      std::int32_t rank, op;
    };
    std::vector<Side> sides;
    sides.reserve(transfer_base_.back());
    for (std::int32_t rank = 0; rank < world_; ++rank) {
      const ProgramIndex& index = programs_[program_of_[rank]];
      for (std::size_t o = 0; o < index.family.size(); ++o) {
        const Op& op = index.program->ops[o];
        if (op.kind != OpKind::send && op.kind != OpKind::recv)
          continue;
        const auto& transfer = std::get<PeerTransfer>(op.shape);
        const std::int64_t peer = peer_of(rank, transfer, index.family[o]);
        const bool is_send = op.kind == OpKind::send;
        sides.push_back({is_send ? rank : peer, is_send ? peer : rank, transfer.tag,
                         is_send ? 1 : 0, rank, static_cast<std::int32_t>(o)});
      }
    }
    // Stable: the sides of one rank keep program order, so the k-th meets the k-th.
    std::stable_sort(sides.begin(), sides.end(), [](const Side& a, const Side& b) {
      return std::tie(a.src, a.dst, a.tag, a.is_send) < std::tie(b.src, b.dst, b.tag, b.is_send);
    });
    pair_of_.assign(transfer_base_.back(), -1);
    auto slot_of = [&](const Side& side) -> std::int32_t& {
      const ProgramIndex& index = programs_[program_of_[side.rank]];
      return pair_of_[transfer_base_[side.rank] +
                      static_cast<std::size_t>(index.sequence[static_cast<std::size_t>(side.op)])];
    };
    for (std::size_t begin = 0; begin < sides.size();) {
      std::size_t end = begin;
      while (end < sides.size() && sides[end].src == sides[begin].src &&
             sides[end].dst == sides[begin].dst && sides[end].tag == sides[begin].tag)
        ++end;
      std::size_t recvs = begin;
      while (recvs < end && sides[recvs].is_send == 0)
        ++recvs;
      const std::size_t recv_count = recvs - begin, send_count = end - recvs;
      for (std::size_t k = 0; k < std::max(recv_count, send_count); ++k) {
        TransferPair pair;
        if (k < send_count) {
          pair.send_rank = sides[recvs + k].rank;
          pair.send_op = sides[recvs + k].op;
          slot_of(sides[recvs + k]) = static_cast<std::int32_t>(pairs_.size());
        }
        if (k < recv_count) {
          pair.recv_rank = sides[begin + k].rank;
          pair.recv_op = sides[begin + k].op;
          slot_of(sides[begin + k]) = static_cast<std::int32_t>(pairs_.size());
        }
        pairs_.push_back(pair);
      }
      begin = end;
    }
  }

  double duration_of(std::int32_t rank, std::int32_t op) const {
    const Op& ref = programs_[program_of_[rank]].program->ops[static_cast<std::size_t>(op)];
    const double duration = timer_(ref, rank);
    if (!std::isfinite(duration) || duration < 0) {
      throw std::invalid_argument(fmt::format("the op timer gave {} s for op {} \"{}\" of rank {}",
                                              duration, ref.id, ref.name, rank));
    }
    return duration;
  }

  // Adds the time since the rank's last stream change to the exposed time of its busy comm streams.
  void account(std::int32_t rank) {
    RankState& state = states_[rank];
    const double elapsed = now_ - state.last_change_s;
    if (elapsed > 0 && (state.busy_mask & kComputeBit) == 0 && state.busy_mask != 0) {
      auto& exposed = result_.ranks[rank].exposed_s;
      for (std::size_t s = 0; s < kStreamCount; ++s) {
        if ((state.busy_mask >> s) & 1u)
          exposed[s] += elapsed;
      }
    }
    state.last_change_s = now_;
  }

  void start(std::int32_t rank, std::int32_t op, double duration_s) {
    account(rank);
    const std::size_t s = programs_[program_of_[rank]].stream[static_cast<std::size_t>(op)];
    RankState& state = states_[rank];
    state.state[s] = StreamState::running;
    state.started_s[s] = now_;
    state.busy_mask = static_cast<std::uint8_t>(state.busy_mask | (1u << s));
    if (options_.record_timeline)
      result_.ranks[rank].timeline[static_cast<std::size_t>(op)].start_s = now_;
    events_.push_back({now_ + duration_s, next_sequence_++, rank, op});
    std::push_heap(events_.begin(), events_.end(), LaterEvent{});
  }

  // Issues the head op of `rank`'s stream `s` if the stream is free and its deps have finished.
  void issue(std::int32_t rank, std::size_t s) {
    RankState& state = states_[rank];
    const ProgramIndex& index = programs_[program_of_[rank]];
    if (state.state[s] != StreamState::idle ||
        static_cast<std::size_t>(state.head[s]) >= index.stream_ops[s].size())
      return;
    const std::int32_t op = index.stream_ops[s][static_cast<std::size_t>(state.head[s])];
    const auto o = static_cast<std::size_t>(op);
    if (remaining_deps_[dep_base_[rank] + o] > 0)
      return;
    const OpKind kind = index.program->ops[o].kind;
    if (is_compute_like(kind)) {
      start(rank, op, duration_of(rank, op));
    } else if (kind == OpKind::collective) {
      state.state[s] = StreamState::waiting;
      arrive_at_collective(rank, op);
    } else {
      state.state[s] = StreamState::waiting;
      TransferPair& pair = pairs_[static_cast<std::size_t>(
          pair_of_[transfer_base_[rank] + static_cast<std::size_t>(index.sequence[o])])];
      pair.duration_s = std::max(pair.duration_s, duration_of(rank, op));
      if (++pair.arrived == 2) {
        start(pair.send_rank, pair.send_op, pair.duration_s);
        start(pair.recv_rank, pair.recv_op, pair.duration_s);
      }
    }
  }

  void arrive_at_collective(std::int32_t rank, std::int32_t op) {
    const ProgramIndex& index = programs_[program_of_[rank]];
    const auto o = static_cast<std::size_t>(op);
    const auto f = static_cast<std::size_t>(index.family[o]);
    const auto g = static_cast<std::size_t>(family_groups_[f][rank]);
    const auto n = static_cast<std::size_t>(index.sequence[o]);
    CollectiveInstance& instance = instances_[instance_base_[f][g] + n];
    instance.duration_s = std::max(instance.duration_s, duration_of(rank, op));
    const auto& members = step_.groups[f].members[g];
    if (static_cast<std::size_t>(++instance.arrived) < members.size())
      return;
    const CollectiveOp expected = std::get<CollectiveShape>(index.program->ops[o].shape).op;
    for (const std::int64_t member : members) {
      const ProgramIndex& member_index = programs_[program_of_[static_cast<std::size_t>(member)]];
      const std::int32_t member_op = member_index.family_collectives[f][n];
      const Op& member_ref = member_index.program->ops[static_cast<std::size_t>(member_op)];
      if (std::get<CollectiveShape>(member_ref.shape).op != expected) {
        throw InputError(
            op_field(static_cast<std::int32_t>(member), member_op),
            fmt::format("rank {} issues {} as collective #{} of group family {} "
                        "(\"{}\") where rank {} issues {}",
                        member, collective_op_name(std::get<CollectiveShape>(member_ref.shape).op),
                        n, step_.groups[f].id, step_.groups[f].name, rank,
                        collective_op_name(expected)));
      }
    }
    for (const std::int64_t member : members) {
      const ProgramIndex& member_index = programs_[program_of_[static_cast<std::size_t>(member)]];
      start(static_cast<std::int32_t>(member), member_index.family_collectives[f][n],
            instance.duration_s);
    }
  }

  void finish(std::int32_t rank, std::int32_t op) {
    account(rank);
    const ProgramIndex& index = programs_[program_of_[rank]];
    const auto o = static_cast<std::size_t>(op);
    const std::size_t s = index.stream[o];
    RankState& state = states_[rank];
    RankSimulation& out = result_.ranks[rank];
    out.busy_s[s] += now_ - state.started_s[s];
    out.finish_s = std::max(out.finish_s, now_);
    if (options_.record_timeline)
      out.timeline[o].end_s = now_;
    state.busy_mask = static_cast<std::uint8_t>(state.busy_mask & ~(1u << s));
    state.state[s] = StreamState::idle;
    ++state.head[s];
    for (auto d = index.dependents_begin[o]; d < index.dependents_begin[o + 1]; ++d) {
      const auto dependent =
          static_cast<std::size_t>(index.dependents[static_cast<std::size_t>(d)]);
      if (--remaining_deps_[dep_base_[rank] + dependent] == 0)
        issue(rank, index.stream[dependent]);
    }
    issue(rank, s);
  }

  std::string op_field(std::int32_t rank, std::int32_t op) const {
    return fmt::format("program.programs[{}].ops[{}]", program_of_[rank], op);
  }

  std::string describe(std::int32_t rank, std::int32_t op) const {
    const Op& ref = programs_[program_of_[rank]].program->ops[static_cast<std::size_t>(op)];
    return fmt::format("op {} \"{}\"", ref.id, ref.name);
  }

  // The op `rank` is held at: a waiting communication op if any, else its first unfinished head.
  std::string where_stuck(std::int32_t rank) const {
    const RankState& state = states_[rank];
    const ProgramIndex& index = programs_[program_of_[rank]];
    std::int32_t first = -1;
    for (std::size_t s = 0; s < kStreamCount; ++s) {
      if (static_cast<std::size_t>(state.head[s]) >= index.stream_ops[s].size())
        continue;
      const std::int32_t op = index.stream_ops[s][static_cast<std::size_t>(state.head[s])];
      if (state.state[s] == StreamState::waiting)
        return fmt::format("is itself waiting at {}", describe(rank, op));
      if (first < 0 || op < first)
        first = op;
    }
    if (first < 0)
      return "finished its program without it";
    return fmt::format("is held before {}", describe(rank, first));
  }

  [[noreturn]] void report_collective_deadlock(std::int32_t rank, std::int32_t op) const {
    const ProgramIndex& index = programs_[program_of_[rank]];
    const auto o = static_cast<std::size_t>(op);
    const auto f = static_cast<std::size_t>(index.family[o]);
    const auto g = static_cast<std::size_t>(family_groups_[f][rank]);
    const auto n = static_cast<std::size_t>(index.sequence[o]);
    std::string missing;
    for (const std::int64_t member : step_.groups[f].members[g]) {
      const auto m = static_cast<std::int32_t>(member);
      const ProgramIndex& member_index = programs_[program_of_[m]];
      const auto& list = member_index.family_collectives[f];
      if (list.size() <= n) {
        missing =
            fmt::format("rank {}, which issues only {} collectives on that family", m, list.size());
        break;
      }
      const std::int32_t member_op = list[n];
      const std::size_t s = member_index.stream[static_cast<std::size_t>(member_op)];
      const RankState& state = states_[m];
      const bool arrived =
          state.state[s] == StreamState::waiting &&
          member_index.stream_ops[s][static_cast<std::size_t>(state.head[s])] == member_op;
      if (!arrived) {
        missing = fmt::format("rank {}, which never reaches {}: it {}", m, describe(m, member_op),
                              where_stuck(m));
        break;
      }
    }
    throw InputError(
        op_field(rank, op),
        fmt::format("deadlock at {} s: rank {} waits at {} ({}, collective #{} of "
                    "group family {} \"{}\") for {}",
                    now_, rank, describe(rank, op),
                    collective_op_name(std::get<CollectiveShape>(index.program->ops[o].shape).op),
                    n, step_.groups[f].id, step_.groups[f].name, missing));
  }

  [[noreturn]] void report_transfer_deadlock(std::int32_t rank, std::int32_t op) const {
    const ProgramIndex& index = programs_[program_of_[rank]];
    const auto o = static_cast<std::size_t>(op);
    const Op& ref = index.program->ops[o];
    const auto& transfer = std::get<PeerTransfer>(ref.shape);
    const std::int64_t peer = peer_of(rank, transfer, index.family[o]);
    const TransferPair& pair = pairs_[static_cast<std::size_t>(
        pair_of_[transfer_base_[rank] + static_cast<std::size_t>(index.sequence[o])])];
    const bool is_send = ref.kind == OpKind::send;
    const std::int32_t other_op = is_send ? pair.recv_op : pair.send_op;
    std::string missing;
    if (other_op < 0) {
      missing = fmt::format("rank {}, which has no matching {} with tag {}", peer,
                            is_send ? "recv" : "send", transfer.tag);
    } else {
      const auto p = static_cast<std::int32_t>(peer);
      missing = fmt::format("rank {}, which never reaches {}: it {}", p, describe(p, other_op),
                            where_stuck(p));
    }
    throw InputError(
        op_field(rank, op),
        fmt::format("deadlock at {} s: rank {} waits at {} ({} rank {}, tag {}) for {}", now_, rank,
                    describe(rank, op), is_send ? "send to" : "recv from", peer, transfer.tag,
                    missing));
  }

  [[noreturn]] void report_deadlock() const {
    for (std::int32_t rank = 0; rank < world_; ++rank) {
      const RankState& state = states_[rank];
      const ProgramIndex& index = programs_[program_of_[rank]];
      for (std::size_t s = 0; s < kStreamCount; ++s) {
        if (state.state[s] != StreamState::waiting)
          continue;
        const std::int32_t op = index.stream_ops[s][static_cast<std::size_t>(state.head[s])];
        if (index.program->ops[static_cast<std::size_t>(op)].kind == OpKind::collective)
          report_collective_deadlock(rank, op);
        report_transfer_deadlock(rank, op);
      }
    }
    // Deps name earlier ops, so some unfinished op is always issuable unless communication waits.
    throw std::logic_error("event simulation stalled with no communication op waiting");
  }

  SimulationResult summarise() {
    summarise_ranks(result_);
    return std::move(result_);
  }

  const StepProgram& step_;
  const std::vector<RankProgram>& ops_of_;
  const OpTimer& timer_;
  const SimulationOptions& options_;
  const std::int32_t world_;

  std::unordered_map<int, std::int32_t> family_of_id_;
  std::vector<std::vector<std::int32_t>> family_groups_; // [family][rank] → group index or -1
  std::vector<ProgramIndex> programs_;
  std::vector<std::int32_t> program_of_;
  std::vector<RankState> states_;
  std::vector<std::size_t> dep_base_; // rank → offset into remaining_deps_
  std::vector<std::int32_t> remaining_deps_;
  std::vector<std::size_t> transfer_base_; // rank → offset into pair_of_
  std::vector<std::int32_t> pair_of_;
  std::vector<TransferPair> pairs_;
  std::vector<std::vector<std::size_t>> instance_base_; // [family][group] → offset
  std::vector<CollectiveInstance> instances_;
  std::vector<Event> events_;
  std::uint64_t next_sequence_ = 0;
  double now_ = 0;
  SimulationResult result_;
};

// Simulates one representative per class and gives every rank its representative's figures.
SimulationResult simulate_folded(const StepProgram& original, const FoldedProgram& folded,
                                 const OpTimer& timer, const SimulationOptions& options) {
  const OpTimer representative_timer = [&](const Op& op, std::int64_t rank) {
    return timer(op, folded.representative[static_cast<std::size_t>(rank)]);
  };
  const SimulationResult classes =
      EventSimulation(folded.program, representative_timer, options, &original.programs).run();
  SimulationResult result;
  result.ranks.reserve(folded.class_of_rank.size());
  for (std::size_t rank = 0; rank < folded.class_of_rank.size(); ++rank) {
    result.ranks.push_back(classes.ranks[static_cast<std::size_t>(folded.class_of_rank[rank])]);
    result.ranks.back().rank = static_cast<std::int64_t>(rank);
  }
  summarise_ranks(result);
  return result;
}

} // namespace

SimulationResult simulate_step(const StepProgram& program, const OpTimer& timer,
                               const SimulationOptions& options) {
  validate_step_program(program);
  if (program.world_size > std::numeric_limits<std::int32_t>::max())
    throw InputError("program.world_size", "is beyond the simulator's 2^31 ranks");
  if (options.fold_interchangeable_ranks) {
    if (const std::optional<FoldedProgram> folded = fold_interchangeable_ranks(program)) {
      try {
        return simulate_folded(program, *folded, timer, options);
      } catch (const InputError&) {
        // A deadlock: the full simulation below names the real ranks that wait.
      } catch (const std::invalid_argument&) {
        // A bad duration: likewise, named on the real rank.
      }
    }
  }
  return EventSimulation(program, timer, options).run();
}

} // namespace foldplan
