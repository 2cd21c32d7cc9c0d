#include "core/schema_version.hpp"

#include <charconv>

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan {
namespace {

// The number after the last '/', or 0 when there is none.
int version_of(std::string_view schema) {
  const std::size_t slash = schema.rfind('/');
  if (slash == std::string_view::npos)
    return 0;
  const std::string_view digits = schema.substr(slash + 1);
  int version = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
  if (error != std::errc() || end != digits.data() + digits.size())
    return 0;
  return version;
}

} // namespace

void check_schema_version(const std::string& schema, std::string_view expected,
                          std::string_view document, const std::string& field) {
  const std::string_view prefix = expected.substr(0, expected.rfind('/') + 1);
  if (schema.rfind(prefix, 0) != 0) {
    throw InputError(field, fmt::format("\"{}\" is not a foldplan {} (expected \"{}\")", schema,
                                        document, expected));
  }
  const int version = version_of(schema);
  if (version <= 0) {
    throw InputError(field, fmt::format("\"{}\" has no valid version number", schema));
  }
  if (version > version_of(expected)) {
    throw InputError(field,
                     fmt::format("\"{}\" is newer than this foldplan reads ({}); upgrade foldplan",
                                 schema, expected));
  }
}

} // namespace foldplan
