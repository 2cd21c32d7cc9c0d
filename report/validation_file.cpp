#include "report/validation_file.hpp"

#include <algorithm>

#include "core/errors.hpp"
#include "core/file_io.hpp"
#include "core/json_object.hpp"
#include "core/schema_version.hpp"

namespace foldplan::report {

std::vector<ValidationEntry> validation_from_json(const nlohmann::json& json,
                                                  const std::string& path) {
  if (!json.is_object())
    throw InputError(path, "is not an object of {name: {predicted_s, measured_s}}");
  if (const auto schema = json.find("schema"); schema != json.end()) {
    if (!schema->is_string())
      throw InputError(path + ".schema", "is not a string");
    check_schema_version(schema->get<std::string>(), kValidationSchema, "validation",
                         path + ".schema");
  }
  std::vector<ValidationEntry> entries;
  for (const auto& [name, value] : json.items()) {
    if (std::find(kValidationMetadataKeys.begin(), kValidationMetadataKeys.end(), name) !=
        kValidationMetadataKeys.end())
      continue;
    JsonObject entry(value, path + "." + name);
    entries.push_back({.name = name,
                       .predicted_s = entry.non_negative_number_or("predicted_s", -1),
                       .measured_s = entry.non_negative_number_or("measured_s", -1)});
    if (entries.back().predicted_s < 0)
      throw InputError(entry.field("predicted_s"), "is missing");
    if (entries.back().measured_s < 0)
      throw InputError(entry.field("measured_s"), "is missing");
    entry.number_or("relative_error", 0); // recomputed from the two times where shown
    entry.non_negative_integer_or("ops", 0);
    entry.reject_unknown_keys();
  }
  if (entries.empty())
    throw InputError(path, "has no entries");
  std::stable_partition(entries.begin(), entries.end(),
                        [](const ValidationEntry& e) { return e.name == "step"; });
  return entries;
}

std::vector<ValidationEntry> load_validation(const std::string& path) {
  return validation_from_json(read_json_file(path), "--validation " + path);
}

} // namespace foldplan::report
