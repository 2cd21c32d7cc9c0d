#include "report/validation_file.hpp"

#include <algorithm>

#include "core/errors.hpp"
#include "core/file_io.hpp"
#include "core/json_object.hpp"

namespace foldplan::report {

std::vector<ValidationEntry> validation_from_json(const nlohmann::json& json,
                                                  const std::string& path) {
  if (!json.is_object())
    throw InputError(path, "is not an object of {name: {predicted_s, measured_s}}");
  if (json.empty())
    throw InputError(path, "has no entries");
  std::vector<ValidationEntry> entries;
  for (const auto& [name, value] : json.items()) {
    JsonObject entry(value, path + "." + name);
    entries.push_back({.name = name,
                       .predicted_s = entry.non_negative_number_or("predicted_s", -1),
                       .measured_s = entry.non_negative_number_or("measured_s", -1)});
    if (entries.back().predicted_s < 0)
      throw InputError(entry.field("predicted_s"), "is missing");
    if (entries.back().measured_s < 0)
      throw InputError(entry.field("measured_s"), "is missing");
    entry.reject_unknown_keys();
  }
  std::stable_partition(entries.begin(), entries.end(),
                        [](const ValidationEntry& e) { return e.name == "step"; });
  return entries;
}

std::vector<ValidationEntry> load_validation(const std::string& path) {
  return validation_from_json(read_json_file(path), "--validation " + path);
}

} // namespace foldplan::report
