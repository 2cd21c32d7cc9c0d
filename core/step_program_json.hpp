// The JSON form of a step program ("schema": "foldplan.step/1"), the file the simulator writes and
// the runtime reads. Ops are objects whose shape sits under a key named after their kind:
//   {"id": 4, "name": "layer0.moe.dispatch.fwd", "kind": "collective", "stream": "ep_comm",
//    "phase": "forward", "micro_batch": 0, "layer": 0, "deps": [3],
//    "collective": {"op": "all_to_all_v", "group_id": 2, "bytes": 400,
//                   "send_bytes_per_peer": [100, 300]}}
// Defaults are left out when writing (layer and micro_batch -1, no deps, GEMM groups 1). Reading is
// strict: unknown keys, wrong types and newer schemas are InputErrors naming the field, and what is
// read is validated with validate_step_program. Writing then reading gives back an equal program.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/step_program.hpp"

namespace foldplan {

nlohmann::json step_program_to_json(const StepProgram& program);
StepProgram step_program_from_json(const nlohmann::json& json);

StepProgram load_step_program(const std::string& path);
// Written atomically (write_file_atomically), so a reader never sees half a program.
void save_step_program(const StepProgram& program, const std::string& path);

} // namespace foldplan
