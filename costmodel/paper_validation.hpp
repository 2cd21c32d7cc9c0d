// The paper's published configurations (tests/data/paper_folding_table3.json) replayed through the
// cost model: for each, the plan Megatron would run (least recompute that fits), its prediction,
// and the published figure beside it. Shared by the validation test and bench/paper_validation.
#pragma once

#include <string>
#include <vector>

#include "parallel/plan.hpp"
#include "parallel/prediction.hpp"

namespace foldplan {

struct PaperComparison {
  Plan plan;
  Prediction prediction;
  double published = 0; // MFU (fraction) for the bf16 rows, TFLOP/s per GPU for the fp8 rows
  bool fp8 = false;
  double predicted() const { return fp8 ? prediction.tflops_per_gpu : prediction.mfu; }
  double relative_error() const { return predicted() / published - 1.0; }
};

// Reads the table file and predicts every row (bf16 rows, then fp8 rows).
std::vector<PaperComparison> compare_with_paper(const std::string& table_path);

// A Markdown table of the comparisons, for the README.
std::string paper_comparison_markdown(const std::vector<PaperComparison>& comparisons);

} // namespace foldplan
