// Resolving "a preset name or a path to the user's own JSON file", the way every command accepts
// models and clusters. Unknown names get a did-you-mean suggestion.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/embedded_file.hpp"

namespace foldplan {

struct NamedJson {
  nlohmann::json value;
  std::string source; // "preset mixtral-8x22b" or the file path, for messages
};

// A name containing '/' or ending in ".json" is read as a file; anything else must be a preset.
// `kind` ("model", "cluster") and `field` ("--model") appear in errors.
NamedJson resolve_named_json(const std::string& name_or_path, std::span<const EmbeddedFile> presets,
                             const std::string& kind, const std::string& field);

std::vector<std::string> preset_names(std::span<const EmbeddedFile> presets);

// The candidate closest to `word` by edit distance, or "" when none is plausibly meant.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

} // namespace foldplan
