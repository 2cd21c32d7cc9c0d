#include "costmodel/paper_validation.hpp"

#include <fmt/format.h>

#include "core/file_io.hpp"
#include "core/json_object.hpp"
#include "costmodel/cost_context.hpp"
#include "costmodel/step_estimate.hpp"

namespace foldplan {
namespace {

PaperComparison compare_row(JsonObject& table, const nlohmann::json& row_json,
                            const std::string& path, bool fp8, const CostContext& context) {
  JsonObject row(row_json, path);
  PaperComparison comparison;
  comparison.fp8 = fp8;
  Plan& plan = comparison.plan;
  plan.model = load_model(row.string("model"));
  plan.cluster = context.cluster().spec();
  plan.gpus = row.positive_integer("gpus");
  plan.training = {.seq_length = table.positive_integer("seq_length"),
                   .global_batch_size = table.positive_integer("global_batch_size"),
                   .micro_batch_size = table.positive_integer("micro_batch_size")};
  plan.options.folding = row.boolean("folding");
  plan.options.capacity_factor = table.positive_number("capacity_factor");
  if (fp8)
    plan.options.precision = Precision::fp8_tensorwise;
  plan.parallel = make_parallel_config(plan.gpus,
                                       {.tp = row.positive_integer("tp"),
                                        .cp = row.positive_integer("cp"),
                                        .pp = row.positive_integer("pp"),
                                        .ep = row.positive_integer("ep"),
                                        .etp = row.positive_integer("etp")},
                                       plan.options.folding);
  comparison.published = row.positive_number(fp8 ? "published_tflops" : "published_mfu");
  row.reject_unknown_keys();
  validate_plan(plan);
  // The paper does not state its recompute setting: take the least that fits, as a user would.
  for (const Recompute recompute : {Recompute::none, Recompute::selective, Recompute::full}) {
    plan.options.recompute = recompute;
    comparison.prediction = estimate_step(context, plan).prediction;
    if (comparison.prediction.fits)
      break;
  }
  plan.prediction = comparison.prediction;
  return comparison;
}

} // namespace

std::vector<PaperComparison> compare_with_paper(const std::string& table_path) {
  const nlohmann::json json = read_json_file(table_path);
  JsonObject table(json, "table");
  table.string("source");
  const ClusterSpec cluster = load_cluster(table.string("cluster"));
  std::vector<PaperComparison> comparisons;
  for (const bool fp8 : {false, true}) {
    const char* key = fp8 ? "fp8" : "configurations";
    const nlohmann::json& rows = table.array(key);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const std::int64_t gpus = JsonObject(rows[i], "row").positive_integer("gpus");
      const CostContext context(cluster, gpus);
      comparisons.push_back(
          compare_row(table, rows[i], fmt::format("table.{}[{}]", key, i), fp8, context));
    }
  }
  table.reject_unknown_keys();
  return comparisons;
}

std::string paper_comparison_markdown(const std::vector<PaperComparison>& comparisons) {
  std::string text =
      "| model | GPUs | mapping | TP | EP | ETP | PP | recompute | published | predicted | "
      "error | step time | memory/GPU |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const PaperComparison& c : comparisons) {
    const ParallelConfig& p = c.plan.parallel;
    const auto figure = [&](double value) {
      return c.fp8 ? fmt::format("{:.1f} TFLOP/s", value) : fmt::format("{:.1f}% MFU", 100 * value);
    };
    text += fmt::format(
        "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:+.1f}% | {:.2f} s | "
        "{:.1f} GB |\n",
        c.plan.model.name, c.fp8 ? " (fp8)" : "", c.plan.gpus,
        c.plan.options.folding ? "folding" : "no folding", p.tp, p.ep, p.etp, p.pp,
        to_string(c.plan.options.recompute), figure(c.published), figure(c.predicted()),
        100 * c.relative_error(), c.prediction.step_time_s, c.prediction.peak_memory_bytes / 1e9);
  }
  return text;
}

} // namespace foldplan
