// `foldplan groups`: Megatron-Core's process groups for a configuration — every attention and MoE
// group, or only those holding one rank — so users can check a mapping before they launch it.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/command.hpp"
#include "cli/table.hpp"
#include "core/errors.hpp"
#include "models/model_spec.hpp"
#include "parallel/parallel_config.hpp"
#include "parallel/rank_groups.hpp"
#include "topologies/cluster.hpp"
#include "topologies/group_placement.hpp"

namespace foldplan::cli {
namespace {

struct GroupsOptions {
  std::int64_t gpus = 0;
  ParallelSizes sizes;
  std::int64_t etp = 0; // 0: not given
  bool no_folding = false;
  std::int64_t rank = -1;
  bool json = false;
  std::string cluster = "dgx-h100";
  std::string model; // optional: also check the sizes against this model
  TrainingShape training;
};

// Shown in full up to this many groups per family; the rest is elided (--json has everything).
constexpr std::size_t kGroupsShown = 4;

// Long groups print as their first ranks and the last: [0,16,32,…,112].
constexpr std::size_t kRanksShown = 6;

std::string render_group(const RankGroup& group) {
  if (group.size() <= kRanksShown + 1)
    return fmt::format("[{}]", fmt::join(group, ","));
  const std::vector<std::int64_t> head(group.begin(), group.begin() + kRanksShown - 1);
  return fmt::format("[{},…,{}]", fmt::join(head, ","), group.back());
}

// Where a group's collectives go: inside one NVLink domain, or across nodes through the NICs.
std::string placement_cell(const Cluster& cluster, const RankGroup& group) {
  const GroupPlacement placement = place_group(cluster, group);
  if (placement.num_ranks == 1)
    return "-";
  if (placement.within_one_nvlink_domain()) {
    return placement.num_nodes == 1 ? "NVLink, 1 node"
                                    : fmt::format("NVLink, {} nodes", placement.num_nodes);
  }
  return fmt::format("{} ({} nodes)", placement.find_level(kSpineLevel) ? "IB via spine" : "IB",
                     placement.num_nodes);
}

// `all` gives the group counts; `shown` the groups to print (all of them, or those of one rank).
std::string render_families(const std::vector<NamedRankGroups>& all,
                            const std::vector<NamedRankGroups>& shown, const Cluster& cluster) {
  Table table({{"group", Align::left},
               {"count", Align::right},
               {"size", Align::right},
               {"placement", Align::left},
               {"ranks", Align::left}});
  for (std::size_t f = 0; f < shown.size(); ++f) {
    const NamedRankGroups& family = shown[f];
    std::string ranks;
    for (std::size_t i = 0; i < family.groups.size() && i < kGroupsShown; ++i) {
      ranks += (i > 0 ? " " : "") + render_group(family.groups[i]);
    }
    if (family.groups.size() > kGroupsShown) {
      ranks += fmt::format(" … ({} more)", family.groups.size() - kGroupsShown);
    }
    table.add_row({family.name, std::to_string(all[f].groups.size()),
                   std::to_string(family.groups.front().size()),
                   placement_cell(cluster, family.groups.front()), ranks});
  }
  return table.render();
}

int run_groups(const GroupsOptions& options) {
  if (options.gpus <= 0) {
    throw InputError("--gpus", fmt::format("{} is not a positive integer", options.gpus));
  }
  ParallelSizes sizes = options.sizes;
  if (options.etp != 0)
    sizes.etp = options.etp;
  const bool folding = !options.no_folding;
  const ParallelConfig config = make_parallel_config(options.gpus, sizes, folding);
  if (!options.model.empty()) {
    validate_parallel_config(config, load_model(options.model), options.training, options.gpus,
                             folding);
  }
  if (options.rank >= options.gpus) {
    throw InputError("--rank",
                     fmt::format("{} is not below --gpus {}", options.rank, options.gpus));
  }

  const Cluster cluster(load_cluster(options.cluster), options.gpus);
  const RankGroups all_groups = all_rank_groups(config, folding);
  const RankGroups groups =
      options.rank >= 0 ? groups_holding_rank(all_groups, options.rank) : all_groups;

  if (options.json) {
    nlohmann::ordered_json json = rank_groups_to_json(groups);
    if (options.rank >= 0) {
      json["rank"] = options.rank;
      json["coordinates"] =
          rank_coordinates_to_json(coordinates_of_rank(config, options.rank, folding));
    }
    fmt::print("{}\n", json.dump(2));
    return 0;
  }
  fmt::print("{} GPUs  attention TP{} CP{} DP{} PP{}{}  |  MoE ETP{} EP{} EDP{} PP{}  ({})\n",
             options.gpus, config.tp, config.cp, config.dp, config.pp,
             config.vpp > 1 ? fmt::format(" VPP{}", config.vpp) : "", config.etp, config.ep,
             config.edp, config.pp, folding ? "folded" : "no folding");
  if (options.rank >= 0) {
    const RankCoordinates at = coordinates_of_rank(config, options.rank, folding);
    fmt::print("rank {}: attention tp={} cp={} dp={} pp={}  |  moe etp={} ep={} edp={} pp={}\n",
               options.rank, at.attention.tp, at.attention.cp, at.attention.dp, at.attention.pp,
               at.moe.etp, at.moe.ep, at.moe.edp, at.moe.pp);
  }
  fmt::print("\nattention groups\n{}\nMoE groups\n{}",
             render_families(all_groups.attention, groups.attention, cluster),
             render_families(all_groups.moe, groups.moe, cluster));
  return 0;
}

} // namespace

void add_groups_command(CLI::App& app, CommandAction& chosen) {
  auto options = std::make_shared<GroupsOptions>();
  CLI::App* command = app.add_subcommand(
      "groups", "Print Megatron-Core's rank groups (order tp-cp-ep-dp-pp) for a configuration");
  command->add_option("--gpus", options->gpus, "world size")->required();
  command->add_option("--tp", options->sizes.tp, "tensor parallel size")->capture_default_str();
  command->add_option("--cp", options->sizes.cp, "context parallel size")->capture_default_str();
  command->add_option("--pp", options->sizes.pp, "pipeline parallel size")->capture_default_str();
  command->add_option("--vpp", options->sizes.vpp, "virtual pipeline stages per rank")
      ->capture_default_str();
  command->add_option("--ep", options->sizes.ep, "expert parallel size")->capture_default_str();
  command->add_option("--etp", options->etp,
                      "expert tensor parallel size (default 1 with folding, TP without)");
  command->add_flag("--no-folding", options->no_folding,
                    "pre-folding Megatron: ETP = TP and EP carved out of DP");
  command->add_option("--rank", options->rank, "show only the groups holding this rank");
  command
      ->add_option("--cluster", options->cluster,
                   "cluster preset or JSON path, for where each group runs")
      ->capture_default_str();
  command->add_option("--model", options->model,
                      "also check the sizes against this model (preset or JSON path)");
  command->add_option("--seq", options->training.seq_length, "sequence length (with --model)")
      ->capture_default_str();
  command
      ->add_option("--gbs", options->training.global_batch_size, "global batch size (with --model)")
      ->capture_default_str();
  command
      ->add_option("--mbs", options->training.micro_batch_size, "micro-batch size (with --model)")
      ->capture_default_str();
  command->add_flag("--json", options->json, "print every group as lists of ranks");
  command->callback([&chosen, options] { chosen = [options] { return run_groups(*options); }; });
}

} // namespace foldplan::cli
