// The contract every fuzz target checks: any bytes either load or throw foldplan's InputError.
// Any other exception is a finding (reported, then abort() so libFuzzer saves the input); crashes,
// leaks and undefined behaviour are caught by the sanitizers the targets are built with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <nlohmann/json.hpp>

#include "core/errors.hpp"
#include "core/file_io.hpp"

namespace foldplan::fuzz {

// Parses `data` as JSON the way read_json_file does, then hands it to `load`.
template <typename Load> int check_loader(const std::uint8_t* data, std::size_t size, Load load) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    load(parse_json(text, "fuzz-input"));
  } catch (const InputError&) {
    // The contract: bad input is an InputError, which the CLI prints as one line.
  } catch (const std::exception& error) {
    std::fprintf(stderr, "finding: not an InputError: %s\n", error.what());
    std::abort();
  }
  return 0;
}

// What a loader accepted, written back and read again, must load and write the same JSON: a
// writer that emits what its reader rejects (or reads differently) is a finding too.
template <typename Value, typename Write, typename Read>
void check_round_trip(const Value& value, Write write, Read read) {
  const nlohmann::json written = write(value);
  try {
    if (write(read(written)) != written) {
      std::fprintf(stderr, "finding: a written value reads back different: %s\n",
                   written.dump().c_str());
      std::abort();
    }
  } catch (const InputError& error) {
    std::fprintf(stderr, "finding: a written value does not read back: %s\n", error.what());
    std::abort();
  }
}

} // namespace foldplan::fuzz
