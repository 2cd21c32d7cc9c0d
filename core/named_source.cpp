#include "core/named_source.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/errors.hpp"
#include "core/file_io.hpp"

namespace foldplan {
namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitution});
    }
  }
  return row[b.size()];
}

bool looks_like_path(const std::string& name) {
  return name.find('/') != std::string::npos ||
         (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0);
}

} // namespace

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = std::string::npos;
  for (const std::string& candidate : candidates) {
    const std::size_t distance = edit_distance(word, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  // A suggestion is useful only when most of the word survives.
  const std::size_t allowed = std::max<std::size_t>(2, word.size() / 3);
  return best_distance <= allowed ? best : "";
}

std::vector<std::string> preset_names(std::span<const EmbeddedFile> presets) {
  std::vector<std::string> names;
  for (const EmbeddedFile& file : presets) {
    if (!file.name.empty())
      names.emplace_back(file.name);
  }
  return names;
}

NamedJson resolve_named_json(const std::string& name_or_path, std::span<const EmbeddedFile> presets,
                             const std::string& kind, const std::string& field) {
  if (name_or_path.empty())
    throw InputError(field, fmt::format("{} name is empty", kind));
  if (looks_like_path(name_or_path)) {
    return {read_json_file(name_or_path), name_or_path};
  }
  for (const EmbeddedFile& file : presets) {
    if (file.name == name_or_path) {
      const std::string source = fmt::format("preset {}", name_or_path);
      return {parse_json(std::string(file.text), source), source};
    }
  }
  const std::vector<std::string> names = preset_names(presets);
  const std::string suggestion = closest_match(name_or_path, names);
  if (!suggestion.empty()) {
    throw InputError(
        field, fmt::format("unknown {} '{}'; did you mean '{}'?", kind, name_or_path, suggestion));
  }
  throw InputError(field, fmt::format("unknown {} '{}'; presets are {} (or give a path to a .json "
                                      "file)",
                                      kind, name_or_path, fmt::join(names, ", ")));
}

} // namespace foldplan
