// A file compiled into the binary (presets), see cmake/EmbedPresets.cmake.
#pragma once

#include <span>
#include <string_view>

namespace foldplan {

struct EmbeddedFile {
  std::string_view name; // file name without directory and extension
  std::string_view text;
};

} // namespace foldplan
