// Versioned JSON documents ("foldplan.plan/1", "foldplan.step/1"): a reader accepts its own kind
// at its version or older, and refuses a newer version with a message that says to upgrade.
#pragma once

#include <string>
#include <string_view>

namespace foldplan {

// `expected` is the current schema, "<prefix>/<version>"; `document` names the kind in errors
// ("plan", "step program"). Throws InputError on `field` for another kind, a missing or
// malformed version, or a newer one.
void check_schema_version(const std::string& schema, std::string_view expected,
                          std::string_view document, const std::string& field);

} // namespace foldplan
