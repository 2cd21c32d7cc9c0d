#include "cli/table.hpp"

#include <algorithm>
#include <cassert>

namespace foldplan::cli {
namespace {

// Display width in code points, so "µ" or "…" count as one column.
std::size_t display_width(const std::string& text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

void append_padded(std::string& line, const std::string& cell, std::size_t width, Align align) {
  const std::string padding(width - display_width(cell), ' ');
  line += align == Align::right ? padding + cell : cell + padding;
}

} // namespace

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

void Table::add_row(std::vector<std::string> cells) {
  assert(cells.size() == columns_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::render() const {
  std::vector<std::size_t> widths(columns_.size());
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    widths[c] = display_width(columns_[c].header);
    for (const auto& row : rows_)
      widths[c] = std::max(widths[c], display_width(row[c]));
  }
  const auto render_line = [&](auto&& cell_of) {
    std::string line;
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      if (c > 0)
        line += "  ";
      append_padded(line, cell_of(c), widths[c], columns_[c].align);
    }
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    return line + "\n";
  };
  std::string text = render_line([&](std::size_t c) { return columns_[c].header; });
  text += render_line([&](std::size_t c) { return std::string(widths[c], '-'); });
  for (const auto& row : rows_)
    text += render_line([&](std::size_t c) { return row[c]; });
  return text;
}

} // namespace foldplan::cli
