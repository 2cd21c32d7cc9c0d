#include "report/palette.hpp"

#include <array>
#include <utility>

namespace foldplan::report {
namespace {

constexpr std::string_view kGrey = "#bab0ac";

constexpr std::array<std::pair<std::string_view, std::string_view>, 14> kTermColours = {{
    {"compute", "#4e79a7"},
    {"tp_comm", "#f28e2b"},
    {"cp_comm", "#ff9da7"},
    {"ep_comm", "#e15759"},
    {"etp_comm", "#edc948"},
    {"host_sync", "#9c755f"},
    {"pp_comm", "#76b7b2"},
    {"bubble", "#d4d4d4"},
    {"dp_comm_and_optimizer", "#b07aa1"},
    {"weights", "#4e79a7"},
    {"gradients", "#76b7b2"},
    {"optimizer", "#b07aa1"},
    {"activations", "#f28e2b"},
    {"other", "#bab0ac"},
}};

} // namespace

std::string_view term_colour(std::string_view term) {
  for (const auto& [name, colour] : kTermColours) {
    if (name == term)
      return colour;
  }
  return kGrey;
}

namespace {

struct OpStyle {
  std::string_view colour;
  std::string_view name;
};

OpStyle op_style(const Op& op) {
  switch (op.kind) {
  case OpKind::gemm:
    return {"#4e79a7", "GEMM"};
  case OpKind::attention:
    return {"#59a14f", "attention"};
  case OpKind::memory_bound:
    return {"#8cd17d", "memory-bound"};
  case OpKind::collective:
  case OpKind::send:
  case OpKind::recv:
    break;
  }
  switch (op.stream) {
  case Stream::tp_comm:
    return {"#f28e2b", "TP communication"};
  case Stream::ep_comm:
    return {"#e15759", "EP communication"};
  case Stream::dp_comm:
    return {"#b07aa1", "DP communication"};
  case Stream::pp_comm:
    return {"#76b7b2", "PP send/recv"};
  case Stream::cp_comm:
    return {"#ff9da7", "CP communication"};
  case Stream::compute:
    break;
  }
  return {"#edc948", "communication on the compute stream"};
}

} // namespace

std::string_view op_colour(const Op& op) {
  return op_style(op).colour;
}

std::string_view op_class(const Op& op) {
  return op_style(op).name;
}

} // namespace foldplan::report
