// Prints the paper comparison table (published vs predicted MFU) that the README shows.
// Usage: paper_validation [TABLE.json]   (default: tests/data/paper_folding_table3.json)
#include <cstdio>

#include <fmt/format.h>

#include "core/errors.hpp"
#include "costmodel/paper_validation.hpp"

int main(int argc, char** argv) {
  const std::string table =
      argc > 1 ? argv[1]
               : std::string(FOLDPLAN_SOURCE_DIR) + "/tests/data/paper_folding_table3.json";
  try {
    fmt::print("{}", foldplan::paper_comparison_markdown(foldplan::compare_with_paper(table)));
  } catch (const foldplan::InputError& error) {
    fmt::print(stderr, "paper_validation: error: {}\n", error.what());
    return 2;
  }
  return 0;
}
