// Reading and writing step programs as JSON; see step_program_json.hpp for the layout.
#include "core/step_program_json.hpp"

#include <array>
#include <limits>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "core/file_io.hpp"
#include "core/json_object.hpp"
#include "core/schema_version.hpp"

namespace foldplan {
namespace {

// Every value of an enum and its name, for reading by choice(). The name functions are the one
// spelling; these lists only enumerate.
template <typename Enum, std::size_t N>
Enum read_enum(JsonObject& object, std::string_view key, const std::array<Enum, N>& values,
               std::string_view (*name_of)(Enum)) {
  std::vector<std::string> names;
  for (const Enum value : values)
    names.emplace_back(name_of(value));
  const std::string chosen = object.choice(key, names);
  for (const Enum value : values) {
    if (name_of(value) == chosen)
      return value;
  }
  return values[0];
}

constexpr std::array kOpKinds = {OpKind::gemm,       OpKind::attention, OpKind::memory_bound,
                                 OpKind::collective, OpKind::send,      OpKind::recv};
constexpr std::array kCollectiveOps = {CollectiveOp::all_reduce, CollectiveOp::all_gather,
                                       CollectiveOp::reduce_scatter, CollectiveOp::all_to_all,
                                       CollectiveOp::all_to_all_v};
constexpr std::array kStreams = {Stream::compute, Stream::tp_comm, Stream::ep_comm,
                                 Stream::dp_comm, Stream::pp_comm, Stream::cp_comm};
constexpr std::array kPhases = {Phase::forward,   Phase::backward_dgrad, Phase::backward_wgrad,
                                Phase::recompute, Phase::optimizer,      Phase::other};
constexpr std::array kGemmDtypes = {GemmDtype::bf16, GemmDtype::fp8};

// Op ids, group ids, tags, layers and micro-batch indices are ints: range-checked on the way in.
int to_int(std::int64_t value, const std::string& field) {
  if (value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max())
    throw InputError(field, fmt::format("{} is out of range", value));
  return static_cast<int>(value);
}

int read_int(JsonObject& object, std::string_view key) {
  return to_int(object.integer(key), object.field(key));
}

int read_int_or(JsonObject& object, std::string_view key, int fallback) {
  return object.has(key) ? read_int(object, key) : fallback;
}

std::vector<double> read_number_list(JsonObject& object, std::string_view key) {
  const nlohmann::json& values = object.array(key);
  std::vector<double> result;
  result.reserve(values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    result.push_back(json_to_number(values[i], fmt::format("{}[{}]", object.field(key), i)));
  return result;
}

// Calls read(element, path) for each element of the array under `key`.
template <typename Read>
void for_each_element(JsonObject& object, std::string_view key, Read read) {
  const nlohmann::json& values = object.array(key);
  for (std::size_t i = 0; i < values.size(); ++i)
    read(values[i], fmt::format("{}[{}]", object.field(key), i));
}

nlohmann::json shape_to_json(const OpShape& shape) {
  if (const auto* gemm = std::get_if<GemmShape>(&shape)) {
    nlohmann::json json = {{"m", gemm->m}, {"n", gemm->n}, {"k", gemm->k}};
    if (gemm->groups != 1)
      json["groups"] = gemm->groups;
    json["dtype"] = gemm_dtype_name(gemm->dtype);
    if (gemm->accumulate_fp32)
      json["accumulate_fp32"] = true;
    return json;
  }
  if (const auto* attention = std::get_if<AttentionOpShape>(&shape)) {
    return {{"batch", attention->batch},           {"heads", attention->heads},
            {"kv_heads", attention->kv_heads},     {"seq_q", attention->seq_q},
            {"seq_kv", attention->seq_kv},         {"qk_head_dim", attention->qk_head_dim},
            {"v_head_dim", attention->v_head_dim}, {"causal", attention->causal},
            {"backward", attention->backward}};
  }
  if (const auto* memory = std::get_if<MemoryBoundShape>(&shape)) {
    nlohmann::json json = {{"bytes", memory->bytes}};
    if (memory->kernels != 1)
      json["kernels"] = memory->kernels;
    return json;
  }
  if (const auto* collective = std::get_if<CollectiveShape>(&shape)) {
    nlohmann::json json = {{"op", collective_op_name(collective->op)},
                           {"group_id", collective->group_id},
                           {"bytes", collective->bytes}};
    if (!collective->send_bytes_per_peer.empty())
      json["send_bytes_per_peer"] = collective->send_bytes_per_peer;
    return json;
  }
  const auto& transfer = std::get<PeerTransfer>(shape);
  return {{"group_id", transfer.group_id},
          {"peer_index", transfer.peer_index},
          {"bytes", transfer.bytes},
          {"tag", transfer.tag}};
}

OpShape shape_from_json(OpKind kind, JsonObject object) {
  OpShape shape;
  switch (kind) {
  case OpKind::gemm: {
    GemmShape gemm;
    gemm.m = object.integer("m");
    gemm.n = object.integer("n");
    gemm.k = object.integer("k");
    gemm.groups = object.integer_or("groups", 1);
    gemm.dtype = read_enum(object, "dtype", kGemmDtypes, gemm_dtype_name);
    gemm.accumulate_fp32 = object.boolean_or("accumulate_fp32", false);
    shape = gemm;
    break;
  }
  case OpKind::attention: {
    AttentionOpShape attention;
    attention.batch = object.integer("batch");
    attention.heads = object.integer("heads");
    attention.kv_heads = object.integer("kv_heads");
    attention.seq_q = object.integer("seq_q");
    attention.seq_kv = object.integer("seq_kv");
    attention.qk_head_dim = object.integer("qk_head_dim");
    attention.v_head_dim = object.integer("v_head_dim");
    attention.causal = object.boolean("causal");
    attention.backward = object.boolean("backward");
    shape = attention;
    break;
  }
  case OpKind::memory_bound: {
    const std::int64_t kernels = object.positive_integer_or("kernels", 1);
    if (kernels > kMaxKernelsPerOp) {
      throw InputError(object.field("kernels"),
                       fmt::format("{} is more than {} kernels", kernels, kMaxKernelsPerOp));
    }
    shape = MemoryBoundShape{.bytes = object.number("bytes"), .kernels = static_cast<int>(kernels)};
    break;
  }
  case OpKind::collective: {
    CollectiveShape collective;
    collective.op = read_enum(object, "op", kCollectiveOps, collective_op_name);
    collective.group_id = read_int(object, "group_id");
    collective.bytes = object.number("bytes");
    if (object.has("send_bytes_per_peer"))
      collective.send_bytes_per_peer = read_number_list(object, "send_bytes_per_peer");
    shape = collective;
    break;
  }
  case OpKind::send:
  case OpKind::recv: {
    PeerTransfer transfer;
    transfer.group_id = read_int(object, "group_id");
    transfer.peer_index = object.integer("peer_index");
    transfer.bytes = object.number("bytes");
    transfer.tag = read_int(object, "tag");
    shape = transfer;
    break;
  }
  }
  object.reject_unknown_keys();
  return shape;
}

nlohmann::json op_to_json(const Op& op) {
  nlohmann::json json = {{"id", op.id},
                         {"name", op.name},
                         {"kind", op_kind_name(op.kind)},
                         {"stream", stream_name(op.stream)},
                         {"phase", phase_name(op.phase)}};
  if (op.micro_batch != -1)
    json["micro_batch"] = op.micro_batch;
  if (op.layer != -1)
    json["layer"] = op.layer;
  if (!op.deps.empty())
    json["deps"] = op.deps;
  json[std::string(op_kind_name(op.kind))] = shape_to_json(op.shape);
  return json;
}

Op op_from_json(const nlohmann::json& json, const std::string& path) {
  JsonObject object(json, path);
  Op op;
  op.id = read_int(object, "id");
  op.name = object.string("name");
  op.kind = read_enum(object, "kind", kOpKinds, op_kind_name);
  op.stream = read_enum(object, "stream", kStreams, stream_name);
  op.phase = read_enum(object, "phase", kPhases, phase_name);
  op.micro_batch = read_int_or(object, "micro_batch", -1);
  op.layer = read_int_or(object, "layer", -1);
  if (object.has("deps")) {
    for_each_element(object, "deps", [&](const nlohmann::json& dep, const std::string& dep_path) {
      op.deps.push_back(to_int(json_to_integer(dep, dep_path), dep_path));
    });
  }
  const std::string_view shape_key = op_kind_name(op.kind);
  op.shape = shape_from_json(op.kind, object.object(shape_key));
  object.reject_unknown_keys();
  return op;
}

nlohmann::json group_to_json(const CommGroup& family) {
  return {{"id", family.id}, {"name", family.name}, {"members", family.members}};
}

CommGroup group_from_json(const nlohmann::json& json, const std::string& path) {
  JsonObject object(json, path);
  CommGroup family;
  family.id = read_int(object, "id");
  family.name = object.string("name");
  for_each_element(
      object, "members", [&](const nlohmann::json& group, const std::string& group_path) {
        if (!group.is_array()) {
          throw InputError(group_path, fmt::format("expected an array of ranks, got {}",
                                                   describe_json_value(group)));
        }
        std::vector<std::int64_t> ranks;
        for (std::size_t r = 0; r < group.size(); ++r)
          ranks.push_back(json_to_integer(group[r], fmt::format("{}[{}]", group_path, r)));
        family.members.push_back(std::move(ranks));
      });
  object.reject_unknown_keys();
  return family;
}

nlohmann::json rank_program_to_json(const RankProgram& rank_program) {
  nlohmann::json ops = nlohmann::json::array();
  for (const Op& op : rank_program.ops)
    ops.push_back(op_to_json(op));
  return {{"ranks", rank_program.ranks}, {"ops", std::move(ops)}};
}

RankProgram rank_program_from_json(const nlohmann::json& json, const std::string& path) {
  JsonObject object(json, path);
  RankProgram rank_program;
  rank_program.ranks = object.integer_list("ranks");
  for_each_element(object, "ops", [&](const nlohmann::json& op, const std::string& op_path) {
    rank_program.ops.push_back(op_from_json(op, op_path));
  });
  object.reject_unknown_keys();
  return rank_program;
}

} // namespace

nlohmann::json step_program_to_json(const StepProgram& program) {
  nlohmann::json groups = nlohmann::json::array();
  for (const CommGroup& family : program.groups)
    groups.push_back(group_to_json(family));
  nlohmann::json programs = nlohmann::json::array();
  for (const RankProgram& rank_program : program.programs)
    programs.push_back(rank_program_to_json(rank_program));
  return {{"schema", program.schema},
          {"world_size", program.world_size},
          {"groups", std::move(groups)},
          {"programs", std::move(programs)},
          {"metadata", program.metadata}};
}

StepProgram step_program_from_json(const nlohmann::json& json) {
  JsonObject object(json, "program");
  StepProgram program;
  program.schema = object.string("schema");
  check_schema_version(program.schema, kStepProgramSchema, "step program", "program.schema");
  program.world_size = object.positive_integer("world_size");
  for_each_element(object, "groups", [&](const nlohmann::json& group, const std::string& path) {
    program.groups.push_back(group_from_json(group, path));
  });
  for_each_element(object, "programs",
                   [&](const nlohmann::json& rank_program, const std::string& path) {
                     program.programs.push_back(rank_program_from_json(rank_program, path));
                   });
  if (const nlohmann::json* metadata = object.optional_value("metadata")) {
    if (!metadata->is_object()) {
      throw InputError(object.field("metadata"),
                       fmt::format("expected an object, got {}", describe_json_value(*metadata)));
    }
    program.metadata = *metadata;
  }
  object.reject_unknown_keys();
  validate_step_program(program);
  return program;
}

StepProgram load_step_program(const std::string& path) {
  return step_program_from_json(read_json_file(path));
}

void save_step_program(const StepProgram& program, const std::string& path) {
  write_file_atomically(path, step_program_to_json(program).dump(2) + "\n");
}

} // namespace foldplan
