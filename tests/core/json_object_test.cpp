#include "core/json_object.hpp"

#include <gtest/gtest.h>

#include "core/errors.hpp"

namespace foldplan {
namespace {

using nlohmann::json;

// Runs `read` and returns the InputError message it throws, or "" if it does not throw.
template <typename Read> std::string error_of(Read&& read) {
  try {
    read();
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

TEST(JsonObject, ReadsTypedValuesWithDefaults) {
  const json value = {{"layers", 56}, {"ratio", 1.5}, {"name", "m"}, {"tied", false}};
  JsonObject object(value, "model");
  EXPECT_EQ(object.positive_integer("layers"), 56);
  EXPECT_DOUBLE_EQ(object.number("ratio"), 1.5);
  EXPECT_EQ(object.string("name"), "m");
  EXPECT_FALSE(object.boolean("tied"));
  EXPECT_EQ(object.integer_or("absent", 7), 7);
  EXPECT_NO_THROW(object.reject_unknown_keys());
}

TEST(JsonObject, IntegerWrittenAsWholeFloatIsAccepted) {
  const json value = {{"seq", 4096.0}};
  JsonObject object(value, "training");
  EXPECT_EQ(object.integer("seq"), 4096);
}

TEST(JsonObject, ErrorsNameTheFieldTheValueAndTheRule) {
  const json value = {{"layers", -3},   {"heads", 4096.5}, {"name", 12},
                      {"big", 1e300},   {"flag", "yes"},   {"huge", 18446744073709551615ULL},
                      {"kind", "moe2"}, {"list", {1, "a"}}};
  EXPECT_EQ(error_of([&] { JsonObject(value, "model").positive_integer("layers"); }),
            "model.layers: -3 is not a positive integer");
  EXPECT_EQ(error_of([&] { JsonObject(value, "model").integer("heads"); }),
            "model.heads: 4096.5 is not an integer");
  EXPECT_EQ(error_of([&] { JsonObject(value, "model").string("name"); }),
            "model.name: expected a string, got integer 12");
  EXPECT_EQ(error_of([&] { JsonObject(value, "model").integer("big"); }),
            "model.big: 1e+300 is not an integer");
  EXPECT_EQ(error_of([&] { JsonObject(value, "model").boolean("flag"); }),
            "model.flag: expected true or false, got string \"yes\"");
  EXPECT_EQ(error_of([&] { JsonObject(value, "model").integer("huge"); }),
            "model.huge: 18446744073709551615 is too large for an integer");
  EXPECT_EQ(error_of([&] {
              JsonObject(value, "model").choice("kind", {"dense", "moe"});
            }),
            "model.kind: \"moe2\" is not one of dense, moe");
  EXPECT_EQ(error_of([&] { JsonObject(value, "model").integer_list("list"); }),
            "model.list[1]: expected an integer, got string \"a\"");
  EXPECT_EQ(error_of([&] { JsonObject(value, "model").integer("missing"); }),
            "model.missing: is required but missing");
}

TEST(JsonObject, UnknownKeysAreRejectedWithTheirPath) {
  const json value = {{"outer", {{"known", 1}, {"typo", 2}}}};
  JsonObject top(value, "");
  JsonObject outer = top.object("outer");
  outer.integer("known");
  EXPECT_EQ(error_of([&] { outer.reject_unknown_keys(); }),
            "outer.typo: unknown key (check its spelling, or remove it)");
  EXPECT_NO_THROW(top.reject_unknown_keys());
}

TEST(JsonObject, NonObjectIsRejected) {
  EXPECT_EQ(error_of([] { JsonObject(json::array(), "plan"); }),
            "plan: expected an object, got array […]");
  EXPECT_EQ(error_of([] { JsonObject(json(3), ""); }),
            "(top level): expected an object, got integer 3");
}

} // namespace
} // namespace foldplan

#include "core/schema_version.hpp"

namespace foldplan {
namespace {

std::string schema_error(const std::string& schema) {
  try {
    check_schema_version(schema, "foldplan.plan/3", "plan", "plan.schema");
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

TEST(SchemaVersion, AcceptsItsKindUpToItsVersion) {
  EXPECT_EQ(schema_error("foldplan.plan/3"), "");
  EXPECT_EQ(schema_error("foldplan.plan/1"), "");
  EXPECT_EQ(schema_error("foldplan.plan/4"),
            "plan.schema: \"foldplan.plan/4\" is newer than this foldplan reads "
            "(foldplan.plan/3); upgrade foldplan");
  EXPECT_EQ(schema_error("foldplan.step/1"),
            "plan.schema: \"foldplan.step/1\" is not a foldplan plan (expected "
            "\"foldplan.plan/3\")");
  EXPECT_EQ(schema_error("foldplan.plan/x"),
            "plan.schema: \"foldplan.plan/x\" has no valid version number");
  EXPECT_EQ(schema_error("foldplan.plan/"),
            "plan.schema: \"foldplan.plan/\" has no valid version number");
}

} // namespace
} // namespace foldplan
