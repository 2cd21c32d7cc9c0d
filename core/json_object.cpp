#include "core/json_object.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/errors.hpp"

namespace foldplan {
namespace {

const char* type_name(const nlohmann::json& value) {
  if (value.is_number_integer())
    return "integer";
  if (value.is_number_float())
    return "number";
  return value.type_name();
}

} // namespace

std::string describe_json_value(const nlohmann::json& value) {
  if (value.is_array())
    return "[…]";
  if (value.is_object())
    return "{…}";
  std::string text = value.dump();
  constexpr std::size_t kMaxLength = 40;
  if (text.size() > kMaxLength)
    text = text.substr(0, kMaxLength) + "…";
  return text;
}

std::int64_t json_to_integer(const nlohmann::json& value, const std::string& field) {
  if (value.is_number_integer()) {
    if (value.is_number_unsigned() &&
        value.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw InputError(field, fmt::format("{} is too large for an integer", value.dump()));
    }
    return value.get<std::int64_t>();
  }
  if (value.is_number_float()) {
    const double number = value.get<double>();
    // 4096.0 is accepted as 4096 (some tools write integers that way); 4096.5 is not.
    if (std::isfinite(number) && std::trunc(number) == number && std::fabs(number) < 9.0e15) {
      return static_cast<std::int64_t>(number);
    }
    throw InputError(field, fmt::format("{} is not an integer", describe_json_value(value)));
  }
  throw InputError(field, fmt::format("expected an integer, got {} {}", type_name(value),
                                      describe_json_value(value)));
}

double json_to_number(const nlohmann::json& value, const std::string& field) {
  if (!value.is_number()) {
    throw InputError(field, fmt::format("expected a number, got {} {}", type_name(value),
                                        describe_json_value(value)));
  }
  const double number = value.get<double>();
  if (!std::isfinite(number))
    throw InputError(field, "is not a finite number");
  return number;
}

JsonObject::JsonObject(const nlohmann::json& value, std::string path)
    : value_(value), path_(std::move(path)) {
  if (!value_.is_object()) {
    throw InputError(path_.empty() ? "(top level)" : path_,
                     fmt::format("expected an object, got {} {}", type_name(value_),
                                 describe_json_value(value_)));
  }
}

std::string JsonObject::field(std::string_view key) const {
  return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

bool JsonObject::has(std::string_view key) const {
  return value_.find(std::string(key)) != value_.end();
}

const nlohmann::json* JsonObject::find(std::string_view key) {
  const auto it = value_.find(std::string(key));
  if (it == value_.end())
    return nullptr;
  read_keys_.emplace(key);
  return &*it;
}

const nlohmann::json& JsonObject::at(std::string_view key) {
  const nlohmann::json* value = find(key);
  if (value == nullptr)
    throw InputError(field(key), "is required but missing");
  return *value;
}

std::int64_t JsonObject::integer(std::string_view key) {
  return json_to_integer(at(key), field(key));
}

double JsonObject::number(std::string_view key) {
  return json_to_number(at(key), field(key));
}

std::string JsonObject::string(std::string_view key) {
  const nlohmann::json& value = at(key);
  if (!value.is_string()) {
    throw InputError(field(key), fmt::format("expected a string, got {} {}", type_name(value),
                                             describe_json_value(value)));
  }
  return value.get<std::string>();
}

bool JsonObject::boolean(std::string_view key) {
  const nlohmann::json& value = at(key);
  if (!value.is_boolean()) {
    throw InputError(field(key), fmt::format("expected true or false, got {} {}", type_name(value),
                                             describe_json_value(value)));
  }
  return value.get<bool>();
}

JsonObject JsonObject::object(std::string_view key) {
  return JsonObject(at(key), field(key));
}

const nlohmann::json& JsonObject::value(std::string_view key) {
  return at(key);
}

const nlohmann::json* JsonObject::optional_value(std::string_view key) {
  const nlohmann::json* value = find(key);
  return value == nullptr || value->is_null() ? nullptr : value;
}

const nlohmann::json& JsonObject::array(std::string_view key) {
  const nlohmann::json& value = at(key);
  if (!value.is_array()) {
    throw InputError(field(key), fmt::format("expected an array, got {} {}", type_name(value),
                                             describe_json_value(value)));
  }
  return value;
}

std::vector<std::int64_t> JsonObject::integer_list(std::string_view key) {
  const nlohmann::json& values = array(key);
  std::vector<std::int64_t> result;
  result.reserve(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    result.push_back(json_to_integer(values[i], fmt::format("{}[{}]", field(key), i)));
  }
  return result;
}

std::map<std::string, double> JsonObject::number_map(std::string_view key) {
  const nlohmann::json& values = at(key);
  if (!values.is_object()) {
    throw InputError(field(key), fmt::format("expected an object of numbers, got {} {}",
                                             type_name(values), describe_json_value(values)));
  }
  std::map<std::string, double> result;
  for (const auto& [name, value] : values.items()) {
    result.emplace(name, json_to_number(value, fmt::format("{}.{}", field(key), name)));
  }
  return result;
}

std::int64_t JsonObject::integer_or(std::string_view key, std::int64_t fallback) {
  return has(key) ? integer(key) : fallback;
}

double JsonObject::number_or(std::string_view key, double fallback) {
  return has(key) ? number(key) : fallback;
}

std::string JsonObject::string_or(std::string_view key, std::string fallback) {
  return has(key) ? string(key) : fallback;
}

bool JsonObject::boolean_or(std::string_view key, bool fallback) {
  return has(key) ? boolean(key) : fallback;
}

std::optional<JsonObject> JsonObject::optional_object(std::string_view key) {
  if (!has(key))
    return std::nullopt;
  return object(key);
}

std::optional<double> JsonObject::optional_positive_number(std::string_view key) {
  const nlohmann::json* value = find(key);
  if (value == nullptr || value->is_null())
    return std::nullopt;
  return positive_number(key);
}

std::int64_t JsonObject::positive_integer(std::string_view key) {
  const std::int64_t value = integer(key);
  if (value <= 0)
    throw InputError(field(key), fmt::format("{} is not a positive integer", value));
  return value;
}

std::int64_t JsonObject::positive_integer_or(std::string_view key, std::int64_t fallback) {
  return has(key) ? positive_integer(key) : fallback;
}

std::int64_t JsonObject::non_negative_integer_or(std::string_view key, std::int64_t fallback) {
  if (!has(key))
    return fallback;
  const std::int64_t value = integer(key);
  if (value < 0)
    throw InputError(field(key), fmt::format("{} is negative", value));
  return value;
}

double JsonObject::positive_number(std::string_view key) {
  const double value = number(key);
  if (value <= 0)
    throw InputError(field(key), fmt::format("{} is not a positive number", value));
  return value;
}

double JsonObject::positive_number_or(std::string_view key, double fallback) {
  return has(key) ? positive_number(key) : fallback;
}

double JsonObject::non_negative_number_or(std::string_view key, double fallback) {
  if (!has(key))
    return fallback;
  const double value = number(key);
  if (value < 0)
    throw InputError(field(key), fmt::format("{} is negative", value));
  return value;
}

std::string JsonObject::choice(std::string_view key, const std::vector<std::string>& choices) {
  std::string value = string(key);
  for (const std::string& allowed : choices) {
    if (value == allowed)
      return value;
  }
  throw InputError(field(key),
                   fmt::format("\"{}\" is not one of {}", value, fmt::join(choices, ", ")));
}

std::string JsonObject::choice_or(std::string_view key, const std::vector<std::string>& choices,
                                  std::string fallback) {
  return has(key) ? choice(key, choices) : fallback;
}

void JsonObject::reject_unknown_keys() const {
  for (const auto& [key, value] : value_.items()) {
    if (read_keys_.find(key) == read_keys_.end()) {
      throw InputError(field(key), "unknown key (check its spelling, or remove it)");
    }
  }
}

} // namespace foldplan
