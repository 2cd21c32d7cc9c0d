// What `foldplan models --template` prints: a complete model file to copy and edit — every key a
// model file may hold, with a "_comments" object that says what each key means, keyed by the
// field's name. model_from_json ignores "_comments", so the template loads as it is.
#pragma once

#include <nlohmann/json.hpp>

#include "core/json_object.hpp"

namespace foldplan {

nlohmann::json model_template();

} // namespace foldplan
