#include "core/errors.hpp"

#include <utility>

namespace foldplan {
namespace {

std::string field_and_rule(const std::string& field, const std::string& rule) {
  if (field.empty())
    return rule;
  std::string message;
  message.reserve(field.size() + 2 + rule.size());
  message.append(field).append(": ").append(rule);
  return message;
}

} // namespace

InputError::InputError(std::string field, std::string rule)
    : std::runtime_error(field_and_rule(field, rule)), field_(std::move(field)),
      rule_(std::move(rule)) {}

} // namespace foldplan
