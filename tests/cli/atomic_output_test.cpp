// Every command that writes a file writes it atomically (core/file_io.hpp): an output that cannot
// be written is one line naming the path with exit code 2, and leaves neither a partial file nor
// the temporary one behind; an output that can be written replaces the old file whole.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/cli/run_foldplan.hpp"

namespace {

using foldplan::testing_cli::CommandResult;
using foldplan::testing_cli::run_foldplan;
namespace fs = std::filesystem;

// Names of the entries of `directory`, sorted.
std::vector<std::string> entries(const fs::path& directory) {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(directory))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_file(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

class AtomicOutput : public ::testing::Test {
protected:
  void SetUp() override {
    directory_ = fs::path(::testing::TempDir()) /
                 ("foldplan_atomic_" +
                  std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(directory_);
    fs::create_directories(directory_);
    plan_ = (directory_ / "plan.json").string();
    const CommandResult written =
        run_foldplan("estimate --model mixtral-8x7b --gpus 16 --tp 2 --pp 2 --ep 4 -o " + plan_);
    ASSERT_EQ(written.exit_code, 0) << written.output;
  }
  void TearDown() override { fs::remove_all(directory_); }

  // Each command that takes -o, with `output` as its -o.
  std::vector<std::string> writing_commands(const std::string& output) const {
    return {
        "estimate --model mixtral-8x7b --gpus 16 --tp 2 --pp 2 --ep 4 -o " + output,
        "search --model mixtral-8x7b --gpus 16 --gbs 64 --tp 2 --pp 2 --simulate-top 0 -o " +
            output,
        "export " + plan_ + " --format megatron -o " + output,
        "trace " + plan_ + " -o " + output,
    };
  }

  fs::path directory_;
  std::string plan_;
};

// The output path is an existing directory: the temporary file is written beside it and the
// rename fails, so this exercises the clean-up after a write that got all the way to the end.
TEST_F(AtomicOutput, AnOutputThatIsADirectoryLeavesNothingBehind) {
  const fs::path taken = directory_ / "taken";
  fs::create_directories(taken);
  const std::vector<std::string> before = entries(directory_);
  for (const std::string& command : writing_commands(taken.string())) {
    const CommandResult result = run_foldplan(command);
    EXPECT_EQ(result.exit_code, 2) << command << "\n" << result.output;
    EXPECT_EQ(result.output,
              "foldplan: error: " + taken.string() + ": cannot write output: Is a directory\n")
        << command;
    EXPECT_EQ(entries(directory_), before) << command << " left a file behind";
    EXPECT_TRUE(entries(taken).empty()) << command;
  }
}

TEST_F(AtomicOutput, AnOutputInAMissingDirectoryIsOneLine) {
  const fs::path missing = directory_ / "no_such_directory" / "out.json";
  for (const std::string& command : writing_commands(missing.string())) {
    const CommandResult result = run_foldplan(command);
    EXPECT_EQ(result.exit_code, 2) << command << "\n" << result.output;
    EXPECT_EQ(result.output, "foldplan: error: " + missing.string() +
                                 ": cannot write output: No such file or directory\n")
        << command;
    EXPECT_FALSE(fs::exists(missing.parent_path())) << command;
  }
}

// A successful write replaces an existing file whole and leaves no temporary file.
TEST_F(AtomicOutput, AWrittenOutputReplacesTheOldFileAndLeavesNoTemporary) {
  const fs::path output = directory_ / "out.txt";
  for (const std::string& command : writing_commands(output.string())) {
    std::ofstream(output) << "old contents that are longer than nothing at all\n";
    const CommandResult result = run_foldplan(command);
    ASSERT_EQ(result.exit_code, 0) << command << "\n" << result.output;
    const std::string written = read_file(output);
    EXPECT_EQ(written.find("old contents"), std::string::npos) << command;
    ASSERT_FALSE(written.empty()) << command;
    EXPECT_EQ(written.back(), '\n') << command;
    EXPECT_EQ(entries(directory_), (std::vector<std::string>{"out.txt", "plan.json"})) << command;
  }
}

} // namespace
