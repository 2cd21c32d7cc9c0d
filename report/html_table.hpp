// HTML tables for the report: every cell escaped, numeric columns right-aligned with tabular
// figures so digits line up.
#pragma once

#include <string>
#include <vector>

namespace foldplan::report {

class HtmlTable {
public:
  struct Column {
    std::string header;
    bool numeric = false;
  };

  explicit HtmlTable(std::vector<Column> columns);
  void add_row(std::vector<std::string> cells); // one cell per column
  std::string str() const;

private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

} // namespace foldplan::report
