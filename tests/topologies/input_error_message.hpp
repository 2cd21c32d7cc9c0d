// Test helper: the message of the InputError an action throws, so tests compare whole messages.
#pragma once

#include <string>

#include "core/errors.hpp"

namespace foldplan::testing {

// Runs `action` and returns the InputError message it throws, or "" if it throws none.
template <typename Action> std::string input_error_message(Action&& action) {
  try {
    action();
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

} // namespace foldplan::testing
