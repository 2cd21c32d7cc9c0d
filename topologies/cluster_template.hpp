// What `foldplan clusters --template` prints: a complete cluster file to copy and edit, with a
// "_comments" object that says what each key means, keyed by the field's name (cluster_from_json
// skips it, so the template loads as it is).
#pragma once

#include <nlohmann/json.hpp>

namespace foldplan {

nlohmann::json cluster_template();

} // namespace foldplan
