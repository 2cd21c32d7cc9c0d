// The report's colours: one per cost term, memory term, op class and data series, so the same
// thing has the same colour in every chart (Tableau 10, legible on white and for most colour
// vision deficiencies).
#pragma once

#include <string>
#include <string_view>

#include "core/step_program.hpp"

namespace foldplan::report {

inline constexpr std::string_view kFoldedColour = "#4e79a7";
inline constexpr std::string_view kUnfoldedColour = "#f28e2b";
inline constexpr std::string_view kChosenColour = "#e15759";
inline constexpr std::string_view kPredictedColour = "#4e79a7";
inline constexpr std::string_view kMeasuredColour = "#f28e2b";
inline constexpr std::string_view kCapacityColour = "#e15759";

// A cost term of Prediction::breakdown ("compute", "ep_comm", "bubble", …) or a memory term
// ("weights", "activations", …); grey for names it does not know.
std::string_view term_colour(std::string_view term);

// The timeline's colour of an op: compute ops by kind, communication by the stream it runs on.
std::string_view op_colour(const Op& op);
// The legend's name of that colour class ("GEMM", "EP all-to-all", …).
std::string_view op_class(const Op& op);

} // namespace foldplan::report
