#include "report/html_table.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "report/svg.hpp"

namespace foldplan::report {

HtmlTable::HtmlTable(std::vector<Column> columns) : columns_(std::move(columns)) {}

void HtmlTable::add_row(std::vector<std::string> cells) {
  if (cells.size() != columns_.size())
    throw std::invalid_argument("HtmlTable row has the wrong number of cells");
  rows_.push_back(std::move(cells));
}

std::string HtmlTable::str() const {
  std::string html = "<table>\n<thead><tr>";
  for (const Column& column : columns_) {
    html += fmt::format("<th{}>{}</th>", column.numeric ? R"( class="num")" : "",
                        escape_xml(column.header));
  }
  html += "</tr></thead>\n<tbody>\n";
  for (const auto& row : rows_) {
    html += "<tr>";
    for (std::size_t i = 0; i < row.size(); ++i) {
      html += fmt::format("<td{}>{}</td>", columns_[i].numeric ? R"( class="num")" : "",
                          escape_xml(row[i]));
    }
    html += "</tr>\n";
  }
  return html + "</tbody>\n</table>\n";
}

} // namespace foldplan::report
