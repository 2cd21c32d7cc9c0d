#include "cli/search_flags.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "cli/plan_flags.hpp"
#include "core/errors.hpp"

namespace foldplan::cli {
namespace {

// A pinned dimension replaces the default list; each value must be positive.
void pin(std::vector<std::int64_t>& dimension, const std::vector<std::int64_t>& values,
         const char* flag) {
  if (values.empty())
    return;
  for (const std::int64_t value : values) {
    if (value <= 0)
      throw InputError(flag, fmt::format("{} is not a positive integer", value));
  }
  dimension = values;
  std::sort(dimension.begin(), dimension.end());
  dimension.erase(std::unique(dimension.begin(), dimension.end()), dimension.end());
}

template <typename T, typename Parse>
void pin_parsed(std::vector<T>& dimension, const std::vector<std::string>& values, Parse parse) {
  if (values.empty())
    return;
  dimension.clear();
  for (const std::string& value : values) {
    T parsed = parse(value);
    if (std::find(dimension.begin(), dimension.end(), parsed) == dimension.end())
      dimension.push_back(parsed);
  }
}

} // namespace

SearchRequest request_from_flags(const SearchFlags& flags, bool folding) {
  SearchRequest request;
  request.model = load_model(flags.model, "--model");
  request.cluster = load_cluster(flags.cluster, "--cluster");
  if (flags.gpus <= 0)
    throw InputError("--gpus", fmt::format("{} is not a positive integer", flags.gpus));
  if (flags.seq <= 0)
    throw InputError("--seq", fmt::format("{} is not a positive integer", flags.seq));
  if (flags.gbs <= 0)
    throw InputError("--gbs", fmt::format("{} is not a positive integer", flags.gbs));
  request.gpus = flags.gpus;
  request.training = {.seq_length = flags.seq, .global_batch_size = flags.gbs};
  request.space =
      default_search_space(request.model, request.cluster, request.gpus, request.training);
  request.space.folding = folding;
  SearchSpace& space = request.space;
  pin(space.tp, flags.tp, "--tp");
  pin(space.cp, flags.cp, "--cp");
  pin(space.pp, flags.pp, "--pp");
  pin(space.vpp, flags.vpp, "--vpp");
  pin(space.ep, flags.ep, "--ep");
  pin(space.etp, flags.etp, "--etp");
  pin(space.micro_batch_size, flags.mbs, "--mbs");
  pin_parsed(space.recompute, flags.recompute,
             [](const std::string& text) { return parse_recompute(text, "--recompute"); });
  pin_parsed(space.dispatcher, flags.dispatcher,
             [](const std::string& text) { return parse_dispatcher(text, "--dispatcher"); });
  pin_parsed(space.capacity, flags.capacity,
             [](const std::string& text) { return parse_capacity_policy(text, "--capacity"); });
  request.options.precision = precision_from_fp8_flag(flags.fp8);
  request.options.cp_comm_type = parse_cp_comm_type(flags.cp_comm_type, "--cp-comm-type");
  request.options.overlap_grad_reduce = !flags.no_overlap_grad_reduce;
  request.options.overlap_param_gather = !flags.no_overlap_grad_reduce;
  request.options.overlap_moe_expert_parallel_comm = flags.overlap_ep_comm;
  request.threads = flags.threads;
  if (!flags.calibration.empty())
    request.calibration = load_calibration(flags.calibration);
  return request;
}

void add_search_flags(CLI::App& command, SearchFlags& flags) {
  command.add_option("--model", flags.model, "model preset or JSON path")->capture_default_str();
  command.add_option("--cluster", flags.cluster, "cluster preset or JSON path")
      ->capture_default_str();
  command.add_option("--gpus", flags.gpus, "number of GPUs")->capture_default_str();
  command.add_option("--seq", flags.seq, "sequence length")->capture_default_str();
  command.add_option("--gbs", flags.gbs, "global batch size (sequences)")->capture_default_str();
  const auto list = [&](const char* name, std::vector<std::int64_t>& values, const char* what) {
    command.add_option(name, values, fmt::format("pin {} (comma-separated list)", what))
        ->delimiter(',');
  };
  list("--tp", flags.tp, "the tensor parallel size");
  list("--cp", flags.cp, "the context parallel size");
  list("--pp", flags.pp, "the pipeline parallel size");
  list("--vpp", flags.vpp, "the virtual pipeline stages per rank");
  list("--ep", flags.ep, "the expert parallel size");
  list("--etp", flags.etp, "the expert tensor parallel size");
  list("--mbs", flags.mbs, "the micro-batch size (default 1,2)");
  command.add_option("--recompute", flags.recompute, "pin recompute: none, selective, full")
      ->delimiter(',');
  command.add_option("--dispatcher", flags.dispatcher, "pin the dispatcher: alltoall, allgather")
      ->delimiter(',');
  command
      .add_option("--capacity", flags.capacity,
                  "capacity policies: dropless, a factor (1.0), or a padded factor (1.0:pad)")
      ->delimiter(',');
  command.add_flag("--no-folding", flags.no_folding,
                   "search pre-folding Megatron only: ETP = TP, EP carved out of DP");
  command.add_option("--fp8", flags.fp8, "fp8 recipe: tensorwise or blockwise (default bf16)");
  command.add_option("--cp-comm-type", flags.cp_comm_type, "p2p or a2a")->capture_default_str();
  command.add_flag("--no-overlap-grad-reduce", flags.no_overlap_grad_reduce,
                   "do not overlap the DP gradient reduce-scatter and parameter all-gather");
  command.add_flag("--overlap-ep-comm", flags.overlap_ep_comm,
                   "Megatron's --overlap-moe-expert-parallel-comm");
  command.add_option("--calibration", flags.calibration,
                     "a calibration file from `foldplan calibrate` (default: the shipped one)");
  command.add_option("--threads", flags.threads, "threads (default: every core)");
  command.add_flag("--progress", flags.progress, "show progress even when stderr is not a tty");
}

SearchProgress progress_reporter(bool forced) {
  if (!forced && isatty(STDERR_FILENO) == 0)
    return {};
  const auto start = std::chrono::steady_clock::now();
  return [start](std::int64_t done, std::int64_t total) {
    if (std::chrono::steady_clock::now() - start < std::chrono::seconds(1))
      return;
    fmt::print(stderr, "\rsearching: {:5.1f}% ({} of {} points)",
               100.0 * static_cast<double>(done) / static_cast<double>(total), done, total);
    if (done >= total)
      fmt::print(stderr, "\n");
  };
}

} // namespace foldplan::cli
