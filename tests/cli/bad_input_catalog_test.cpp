// Issue #9's catalogue: bad input across every command and file type — malformed and truncated
// JSON, wrong types, unknown keys, sizes that are negative, zero, huge, fractional or that do not
// divide, unknown presets, missing files, unwritable outputs, newer schemas, plans that contradict
// their model. Each must end with exit code 2 and one line naming the field and the rule; none
// may crash, hang or leave an output file behind.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/run_foldplan.hpp"

namespace {

using foldplan::testing_cli::CommandResult;
using foldplan::testing_cli::run_foldplan;
namespace fs = std::filesystem;

struct BadInput {
  std::string arguments;
  // The start of the one-line error: the field it names (a file's path when the file itself
  // cannot be read or parsed).
  std::string field;
};

class BadInputCatalog : public ::testing::Test {
protected:
  static void TearDownTestSuite() { fs::remove_all(directory_); }

  static void SetUpTestSuite() {
    // One directory per process: test runs of other checkouts may share the temp dir.
    directory_ = fs::path(::testing::TempDir()) /
                 ("foldplan_bad_inputs_" + std::to_string(static_cast<long>(getpid())));
    fs::remove_all(directory_);
    fs::create_directories(directory_);
    const CommandResult written = run_foldplan(
        "estimate --model mixtral-8x7b --gpus 16 --tp 2 --pp 2 --ep 4 -o " + path("plan.json"));
    ASSERT_EQ(written.exit_code, 0) << written.output;
    std::ifstream in(path("plan.json"));
    plan_ = nlohmann::json::parse(in);
    const std::string text = plan_.dump(2);
    write("truncated_plan.json", text.substr(0, text.size() / 2));
    write("malformed.json", "{\"num_layers\": 32,");
    write("empty.json", "");
    write("array.json", "[1, 2, 3]");
    edit_plan("newer_schema.json", [](nlohmann::json& p) { p["schema"] = "foldplan.plan/9"; });
    edit_plan("unknown_key.json", [](nlohmann::json& p) { p["parallel"]["zz"] = 1; });
    edit_plan("tp_string.json", [](nlohmann::json& p) { p["parallel"]["tp"] = "two"; });
    edit_plan("tp_fraction.json", [](nlohmann::json& p) { p["parallel"]["tp"] = 1.5; });
    edit_plan("tp_negative.json", [](nlohmann::json& p) { p["parallel"]["tp"] = -2; });
    edit_plan("heads_not_divided.json", [](nlohmann::json& p) {
      p["model"]["num_attention_heads"] = 30; // TP2 still divides 30, but not GQA's 8 groups
      p["model"]["num_query_groups"] = 3;
    });
    edit_plan("experts_not_divided.json",
              [](nlohmann::json& p) { p["model"]["moe"]["num_experts"] = 6; });
    edit_plan("gpus_mismatch.json", [](nlohmann::json& p) { p["gpus"] = 32; });
    edit_plan("no_model.json", [](nlohmann::json& p) { p.erase("model"); });
    edit_plan("huge_layers.json",
              [](nlohmann::json& p) { p["model"]["num_layers"] = 9223372036854775807LL; });
    edit_plan("zero_batch.json", [](nlohmann::json& p) { p["training"]["global_batch_size"] = 0; });
    edit_plan("bad_recompute.json", [](nlohmann::json& p) { p["options"]["recompute"] = "most"; });
    const CommandResult model = run_foldplan("models --template");
    nlohmann::json template_model = nlohmann::json::parse(model.output);
    template_model["hidden_size"] = -4096;
    write("negative_hidden.json", template_model.dump());
    template_model["hidden_size"] = 4096;
    template_model["vocab"] = 32000; // misspelt key
    write("misspelt_key.json", template_model.dump());
    write("bad_routing.csv", "expert,share\n0,abc\n");
    write("bad_calibration.json", "{\"schema\": \"foldplan.calibration/1\", \"gpu\": 3}");
    // Huge inputs: a 10,000-layer Mixtral planned on 100,000 GPUs is valid and estimates, but its
    // event simulation is over simulator/simulation_size.hpp's limit.
    nlohmann::json deep_model = nlohmann::json::parse(
        std::ifstream(std::string(FOLDPLAN_SOURCE_DIR) + "/models/presets/mixtral-8x7b.json"));
    deep_model["num_layers"] = 10000;
    write("layers_10000.json", deep_model.dump());
    const CommandResult huge = run_foldplan(
        "estimate --model " + path("layers_10000.json") +
        " --gpus 100000 --tp 8 --pp 100 --ep 8 --mbs 1 --gbs 1000 -o " + path("huge_plan.json"));
    ASSERT_EQ(huge.exit_code, 0) << huge.output;
    // Few GPUs and one micro-batch, but every token of the EP group routed through 10,000 MoE
    // layers: over the dispatcher simulation's limit.
    const CommandResult deep =
        run_foldplan("estimate --model " + path("layers_10000.json") +
                     " --gpus 128 --pp 16 --ep 8 --mbs 1 --gbs 8 -o " + path("deep_plan.json"));
    ASSERT_EQ(deep.exit_code, 0) << deep.output;
  }

  static std::string path(const std::string& name) { return (directory_ / name).string(); }

  static void write(const std::string& name, const std::string& text) {
    std::ofstream(path(name)) << text;
  }

  template <typename Edit> static void edit_plan(const std::string& name, Edit edit) {
    nlohmann::json edited = plan_;
    edit(edited);
    write(name, edited.dump(2));
  }

  static inline fs::path directory_;
  static inline nlohmann::json plan_;
};

TEST_F(BadInputCatalog, EveryBadInputIsOneLineNamingItsFieldAndExitCodeTwo) {
  const std::string plan = path("plan.json");
  const std::string out = path("never_written.json");
  const std::vector<BadInput> catalogue = {
      // Presets and files that do not exist.
      {"estimate --model mixtral-8x22", "--model"},
      {"estimate --cluster dgx-h1000", "--cluster"},
      {"estimate --model " + path("missing.json"), path("missing.json")},
      {"search --model no-such-model", "--model"},
      {"models no-such-model", "models NAME"},
      {"clusters no-such-cluster", "clusters NAME"},
      {"simulate " + path("missing.json"), path("missing.json")},
      {"trace " + path("missing.json") + " -o " + out, path("missing.json")},
      {"explain " + path("missing.json"), path("missing.json")},
      // Malformed, truncated, empty and wrongly shaped JSON.
      {"simulate " + path("malformed.json"), path("malformed.json")},
      {"simulate " + path("truncated_plan.json"), path("truncated_plan.json")},
      {"simulate " + path("empty.json"), path("empty.json")},
      {"simulate " + path("array.json"), "plan"},
      {"explain " + path("truncated_plan.json"), path("truncated_plan.json")},
      {"estimate --model " + path("malformed.json"), path("malformed.json")},
      {"estimate --model " + path("array.json"), "model"},
      {"estimate --cluster " + path("malformed.json"), path("malformed.json")},
      // Wrong types, unknown keys, newer schemas, inconsistent plans.
      {"simulate " + path("newer_schema.json"), "plan.schema"},
      {"simulate " + path("unknown_key.json"), "plan.parallel"},
      {"simulate " + path("tp_string.json"), "plan.parallel.tp"},
      {"simulate " + path("tp_fraction.json"), "plan.parallel.tp"},
      {"simulate " + path("tp_negative.json"), "plan.parallel"},
      {"simulate " + path("heads_not_divided.json"), "parallel.tp"},
      {"simulate " + path("experts_not_divided.json"), "parallel.ep"},
      {"simulate " + path("gpus_mismatch.json"), "parallel.dp"},
      {"simulate " + path("no_model.json"), "plan"},
      {"simulate " + path("huge_layers.json"), "plan.model"},
      {"simulate " + path("zero_batch.json"), "plan.training"},
      {"simulate " + path("bad_recompute.json"), "plan.options.recompute"},
      {"trace " + path("newer_schema.json") + " -o " + out, "plan.schema"},
      {"explain " + path("experts_not_divided.json"), "parallel.ep"},
      {"estimate --model " + path("negative_hidden.json"), "model.hidden_size"},
      {"estimate --model " + path("misspelt_key.json"), "model.vocab"},
      // Sizes: negative, zero, huge, not dividing.
      {"estimate --gpus 0", "--gpus"},
      {"estimate --gpus -8", "--gpus"},
      {"estimate --gpus 100000000000", "training.global_batch_size"},
      {"estimate --gpus 128 --tp 3", "--tp"},
      {"estimate --gpus 128 --tp 0", "--tp"},
      {"estimate --gpus 128 --ep 3", "--ep"},
      {"estimate --gpus 128 --pp 5", "--pp"},
      {"estimate --gpus 128 --cp -1", "--cp"},
      {"estimate --gpus 128 --vpp 0", "--vpp"},
      {"estimate --seq 0", "training.seq_length"},
      {"estimate --gbs 100", "training."},
      {"estimate --mbs 0", "training.micro_batch_size"},
      {"estimate --capacity-factor -1", "--capacity-factor"},
      {"estimate --pad-to-capacity", "options.pad_to_capacity"},
      {"estimate --fp8 e5m2", "--fp8"},
      {"estimate --recompute most", "--recompute"},
      {"estimate --dispatcher flex", "--dispatcher"},
      {"groups --gpus 16 --tp 2 --rank 16", "--rank"},
      {"groups --gpus 16 --tp 3", "--tp"},
      {"search --gpus 12", "--gpus"},
      {"search --tp 0", "--tp"},
      {"search --capacity 0", "--capacity"},
      {"search --mbs 1,-2", "--mbs"},
      {"search --top 0", "top"},
      {"search --simulate-top -1", "simulate-top"},
      // Routing and calibration files.
      {"simulate " + plan + " --routing zipf:-1", "--routing"},
      {"simulate " + plan + " --routing " + path("bad_routing.csv"), path("bad_routing.csv")},
      {"simulate " + plan + " --routing " + path("missing.csv"), path("missing.csv")},
      {"estimate --calibration " + path("bad_calibration.json"), "calibration"},
      {"estimate --calibration " + path("missing.json"), path("missing.json")},
      // Huge worlds and models: refused before any work, naming the sizes and the limit.
      {"simulate " + path("huge_plan.json"), "plan: 100000 GPUs × 10000 layers over pp 100"},
      {"trace " + path("huge_plan.json") + " -o " + out, "plan: 100000 GPUs × 10000 layers"},
      {"simulate " + path("deep_plan.json") + " --routing zipf:1.2",
       "plan: 10000 MoE layers × 1 sampled micro-batches of an ETP 1 × EP 8 group"},
      {"search --gpus 1048576", "--gpus"},
      // Outputs that cannot be written.
      {"estimate -o /proc/foldplan/plan.json", "/proc/foldplan/plan.json"},
      {"trace " + plan + " -o /proc/foldplan/trace.json", "/proc/foldplan/trace.json"},
      {"search --model mixtral-8x7b --gpus 16 --gbs 64 --simulate-top 0 -o "
       "/proc/foldplan/best.json",
       "/proc/foldplan/best.json"},
  };
  ASSERT_GE(catalogue.size(), 50u);
  for (const BadInput& bad : catalogue) {
    const CommandResult result = run_foldplan(bad.arguments);
    EXPECT_EQ(result.exit_code, 2) << bad.arguments << "\n" << result.output;
    const std::string prefix = "foldplan: error: ";
    ASSERT_FALSE(result.output.empty()) << bad.arguments;
    EXPECT_EQ(result.output.rfind(prefix, 0), 0u) << bad.arguments << "\n" << result.output;
    EXPECT_EQ(result.output.find('\n'), result.output.size() - 1)
        << bad.arguments << " printed more than one line:\n"
        << result.output;
    EXPECT_EQ(result.output.compare(prefix.size(), bad.field.size(), bad.field), 0)
        << bad.arguments << " does not name " << bad.field << ":\n"
        << result.output;
  }
  EXPECT_FALSE(fs::exists(out));
}

} // namespace
