// An aligned text table for the terminal: columns sized to their widest cell, numbers
// right-aligned.
#pragma once

#include <string>
#include <vector>

namespace foldplan::cli {

enum class Align { left, right };

class Table {
public:
  struct Column {
    std::string header;
    Align align = Align::left;
  };

  explicit Table(std::vector<Column> columns);
  void add_row(std::vector<std::string> cells); // one cell per column
  std::string render() const;

private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

} // namespace foldplan::cli
