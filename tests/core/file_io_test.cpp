#include "core/file_io.hpp"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "core/named_source.hpp"

namespace foldplan {
namespace {

std::filesystem::path fresh_directory(const std::string& name) {
  const auto directory = std::filesystem::temp_directory_path() / ("foldplan_test_" + name);
  std::filesystem::remove_all(directory);
  std::filesystem::create_directories(directory);
  return directory;
}

TEST(FileIo, AtomicWriteReplacesTheFileAndLeavesNoTemporary) {
  const auto directory = fresh_directory("atomic");
  const std::string path = (directory / "plan.json").string();
  write_file_atomically(path, "first");
  write_file_atomically(path, "second");
  EXPECT_EQ(read_text_file(path), "second");
  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(directory))
    ++files;
  EXPECT_EQ(files, 1);
}

TEST(FileIo, UnwritableOutputIsAnInputError) {
  try {
    write_file_atomically("/nonexistent-dir/plan.json", "x");
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    EXPECT_EQ(error.field(), "/nonexistent-dir/plan.json");
    EXPECT_NE(error.rule().find("cannot write output"), std::string::npos);
  }
}

TEST(FileIo, MissingFileAndMalformedJsonAreInputErrors) {
  EXPECT_THROW(read_text_file("/nonexistent/model.json"), InputError);
  try {
    parse_json("{\"a\": 1,", "my.json");
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    EXPECT_EQ(error.field(), "my.json");
    EXPECT_EQ(error.rule().rfind("malformed JSON: parse error at line 1", 0), 0u) << error.rule();
  }
}

// Found by fuzz/model_fuzzer: nlohmann reports a number beyond a double's range as out_of_range,
// not parse_error, and it escaped as an exception that is not an InputError.
TEST(FileIo, ANumberTooLargeForADoubleIsAnInputError) {
  try {
    parse_json("{\"ffn_hidden_size\": 1e4336}", "my.json");
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    EXPECT_EQ(error.field(), "my.json");
    EXPECT_EQ(error.rule(), "malformed JSON: number overflow parsing '1e4336'");
  }
}

TEST(NamedSource, ResolvesPresetsAndSuggestsNearNames) {
  const EmbeddedFile presets[] = {{"mixtral-8x22b", "{\"a\": 1}"}, {"dgx-h100", "{}"}};
  const NamedJson found = resolve_named_json("mixtral-8x22b", presets, "model", "--model");
  EXPECT_EQ(found.value["a"], 1);
  EXPECT_EQ(found.source, "preset mixtral-8x22b");
  try {
    resolve_named_json("mixtral8x22b", presets, "model", "--model");
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    EXPECT_STREQ(error.what(),
                 "--model: unknown model 'mixtral8x22b'; did you mean 'mixtral-8x22b'?");
  }
  try {
    resolve_named_json("gpt5", presets, "model", "--model");
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("presets are mixtral-8x22b, dgx-h100"),
              std::string::npos);
  }
}

TEST(NamedSource, ReadsAPathAsAFile) {
  const auto directory = fresh_directory("named");
  const std::string path = (directory / "mine.json").string();
  std::ofstream(path) << "{\"layers\": 2}";
  const NamedJson found = resolve_named_json(path, {}, "model", "--model");
  EXPECT_EQ(found.value["layers"], 2);
  EXPECT_EQ(found.source, path);
}

} // namespace
} // namespace foldplan
