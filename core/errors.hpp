// Input errors: a problem with what a user gave us, carrying the field path and the rule it breaks.
// The CLI prints one as a single line and exits with code 2. Programming errors are assertions.
#pragma once

#include <stdexcept>
#include <string>

namespace foldplan {

class InputError : public std::runtime_error {
public:
  // `field` is a dotted JSON-style path ("model.num_layers", "parallel.ep", "--gpus");
  // `rule` says what is wrong, with the offending value ("-3 is not a positive integer").
  InputError(std::string field, std::string rule);

  const std::string& field() const { return field_; }
  const std::string& rule() const { return rule_; }

private:
  std::string field_;
  std::string rule_;
};

} // namespace foldplan
