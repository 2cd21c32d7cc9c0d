#include "cli/parse_error_message.hpp"

#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "core/named_source.hpp"

namespace foldplan::cli {
namespace {

std::vector<std::string> flag_names(const CLI::App& command) {
  std::vector<std::string> names;
  for (const CLI::Option* option : command.get_options()) {
    for (const std::string& name : option->get_lnames())
      names.push_back("--" + name);
  }
  return names;
}

std::vector<std::string> command_names(CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* command : app.get_subcommands({}))
    names.push_back(command->get_name());
  return names;
}

// The unexpected arguments: the words after CLI11's "…not expected: ".
std::vector<std::string> unexpected_arguments(const std::string& message) {
  const std::size_t colon = message.find("expected: ");
  std::vector<std::string> words;
  if (colon == std::string::npos)
    return words;
  std::istringstream stream(message.substr(colon + 10));
  for (std::string word; stream >> word;)
    words.push_back(word);
  return words;
}

} // namespace

std::string parse_error_message(CLI::App& app, const CLI::ParseError& error) {
  const std::string message = error.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&error) == nullptr)
    return message;
  const std::vector<CLI::App*> chosen = app.get_subcommands();
  CLI::App& command = chosen.empty() ? app : *chosen.back();
  for (std::string word : unexpected_arguments(message)) {
    std::string suggestion;
    if (word.rfind("--", 0) == 0) {
      word = word.substr(0, word.find('='));
      suggestion = closest_match(word, flag_names(command));
    } else if (chosen.empty()) {
      suggestion = closest_match(word, command_names(app));
    }
    if (!suggestion.empty())
      return fmt::format("{}; did you mean '{}'?", message, suggestion);
  }
  return message;
}

} // namespace foldplan::cli
