#include "cli/table.hpp"

#include <gtest/gtest.h>

namespace foldplan::cli {
namespace {

TEST(Table, AlignsColumnsToTheWidestCell) {
  Table table({{"model", Align::left}, {"params", Align::right}});
  table.add_row({"mixtral-8x22b", "141.0B"});
  table.add_row({"gpt3", "175.0B"});
  EXPECT_EQ(table.render(), "model          params\n"
                            "-------------  ------\n"
                            "mixtral-8x22b  141.0B\n"
                            "gpt3           175.0B\n");
}

TEST(Table, CountsMultiByteCharactersAsOneColumn) {
  Table table({{"t", Align::right}, {"x", Align::left}});
  table.add_row({"5 µs", "…"});
  table.add_row({"10 ms", "ab"});
  EXPECT_EQ(table.render(), "    t  x\n"
                            "-----  --\n"
                            " 5 µs  …\n"
                            "10 ms  ab\n");
}

} // namespace
} // namespace foldplan::cli
