// Strict reading of one JSON object: every value is checked for type and range, every key that was
// not read is reported as unknown, and every error names the full path of the field.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace foldplan {

// The key of a spec file that holds per-field comments ({"hidden_size": "model width", …}), as
// the --template outputs write them; the model and cluster loaders skip it.
inline constexpr const char* kCommentsKey = "_comments";

class JsonObject {
public:
  // Throws InputError if `value` is not an object. `path` names it in errors ("model").
  JsonObject(const nlohmann::json& value, std::string path);

  const std::string& path() const { return path_; }
  std::string field(std::string_view key) const;
  bool has(std::string_view key) const;

  // Required values: a missing key or a wrong type is an InputError naming the field.
  std::int64_t integer(std::string_view key);
  double number(std::string_view key);
  std::string string(std::string_view key);
  bool boolean(std::string_view key);
  JsonObject object(std::string_view key);
  // The raw value, for a nested spec read by its own loader with path field(key).
  const nlohmann::json& value(std::string_view key);
  // The raw value, or nullptr when absent or null.
  const nlohmann::json* optional_value(std::string_view key);
  const nlohmann::json& array(std::string_view key);
  std::vector<std::int64_t> integer_list(std::string_view key);
  // An object whose values are all numbers, such as {"compute": 1.5, "bubble": 0.2}.
  std::map<std::string, double> number_map(std::string_view key);

  // Optional values: the fallback when the key is absent; a present key must still be well-typed.
  std::int64_t integer_or(std::string_view key, std::int64_t fallback);
  double number_or(std::string_view key, double fallback);
  std::string string_or(std::string_view key, std::string fallback);
  bool boolean_or(std::string_view key, bool fallback);
  std::optional<JsonObject> optional_object(std::string_view key);
  // Absent or null gives nullopt ("not set"); otherwise the value must be a positive number.
  std::optional<double> optional_positive_number(std::string_view key);

  // Range-checked integers, the common cases of the rules every spec needs.
  std::int64_t positive_integer(std::string_view key);
  std::int64_t positive_integer_or(std::string_view key, std::int64_t fallback);
  std::int64_t non_negative_integer_or(std::string_view key, std::int64_t fallback);
  double positive_number(std::string_view key);
  double positive_number_or(std::string_view key, double fallback);
  double non_negative_number_or(std::string_view key, double fallback);
  // One of `choices`, else an InputError listing them.
  std::string choice(std::string_view key, const std::vector<std::string>& choices);
  std::string choice_or(std::string_view key, const std::vector<std::string>& choices,
                        std::string fallback);

  // Throws InputError for the first key that no accessor read.
  void reject_unknown_keys() const;

private:
  const nlohmann::json& at(std::string_view key);
  const nlohmann::json* find(std::string_view key);

  const nlohmann::json& value_;
  std::string path_;
  std::set<std::string, std::less<>> read_keys_;
};

// Converts one JSON value to an int64, rejecting fractions, booleans, strings and overflow.
std::int64_t json_to_integer(const nlohmann::json& value, const std::string& field);
double json_to_number(const nlohmann::json& value, const std::string& field);
// A short rendering of a value for error messages ("-3", "\"abc\"", "[…]").
std::string describe_json_value(const nlohmann::json& value);

} // namespace foldplan
