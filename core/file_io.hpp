// Reading input files and writing output files. Outputs are written atomically (temporary file in
// the same directory, then rename), so an interrupted run never leaves a half-written file.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace foldplan {

// Reads a whole file; a missing or unreadable file is an InputError naming the path.
std::string read_text_file(const std::string& path);

// Parses JSON text; a syntax error is an InputError naming `source` and the byte offset.
nlohmann::json parse_json(const std::string& text, const std::string& source);

nlohmann::json read_json_file(const std::string& path);

// Writes `contents` to `path` through a temporary file and rename; InputError if it cannot.
void write_file_atomically(const std::string& path, const std::string& contents);

} // namespace foldplan
