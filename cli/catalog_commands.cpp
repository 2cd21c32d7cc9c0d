// `foldplan models` and `foldplan clusters`: the presets, as aligned tables or JSON.
#include <fmt/format.h>

#include "cli/command.hpp"
#include "cli/table.hpp"
#include "core/named_source.hpp"
#include "core/units.hpp"
#include "models/model_spec.hpp"
#include "models/model_template.hpp"
#include "models/parameter_count.hpp"
#include "topologies/cluster_spec.hpp"
#include "topologies/cluster_template.hpp"

namespace foldplan::cli {
namespace {

struct CatalogOptions {
  bool json = false;
  bool template_only = false;
  std::string name; // one model or cluster (preset or path) instead of the list
};

std::string experts_cell(const ModelSpec& model) {
  if (!model.is_moe())
    return "dense";
  std::string cell = fmt::format("{} top-{}", model.moe.num_experts, model.moe.router_topk);
  if (model.moe.shared_expert_intermediate_size > 0)
    cell += " +shared";
  return cell;
}

std::string attention_cell(const ModelSpec& model) {
  if (model.mla)
    return fmt::format("{} MLA", model.num_attention_heads);
  return fmt::format("{}/{}", model.num_attention_heads, model.num_query_groups);
}

nlohmann::json model_summary_json(const ModelSpec& model) {
  return {{"name", model.name},
          {"total_parameters", total_parameters(model)},
          {"active_parameters", active_parameters(model)},
          {"spec", model_to_json(model)}};
}

int run_models(const CatalogOptions& options) {
  if (options.template_only) {
    fmt::print("{}\n", model_template().dump(2));
    return 0;
  }
  std::vector<ModelSpec> models;
  if (!options.name.empty()) {
    models.push_back(load_model(options.name, "models NAME"));
  } else {
    for (const std::string& name : preset_names(model_presets()))
      models.push_back(load_model(name));
  }
  if (options.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const ModelSpec& model : models)
      list.push_back(model_summary_json(model));
    fmt::print("{}\n", nlohmann::json{{"models", list}}.dump(2));
    return 0;
  }
  Table table({{"model", Align::left},
               {"layers", Align::right},
               {"hidden", Align::right},
               {"heads/kv", Align::right},
               {"experts", Align::left},
               {"expert ffn", Align::right},
               {"vocab", Align::right},
               {"params", Align::right},
               {"active", Align::right}});
  for (const ModelSpec& model : models) {
    table.add_row({model.name, std::to_string(model.num_layers), std::to_string(model.hidden_size),
                   attention_cell(model), experts_cell(model),
                   model.is_moe() ? std::to_string(model.moe.ffn_hidden_size) : "-",
                   std::to_string(model.vocab_size),
                   units::format_count(static_cast<double>(total_parameters(model))),
                   units::format_count(static_cast<double>(active_parameters(model)))});
  }
  fmt::print("{}", table.render());
  return 0;
}

int run_clusters(const CatalogOptions& options) {
  if (options.template_only) {
    fmt::print("{}\n", cluster_template().dump(2));
    return 0;
  }
  std::vector<ClusterSpec> clusters;
  if (!options.name.empty()) {
    clusters.push_back(load_cluster(options.name, "clusters NAME"));
  } else {
    for (const std::string& name : preset_names(cluster_presets())) {
      clusters.push_back(load_cluster(name));
    }
  }
  if (options.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const ClusterSpec& cluster : clusters)
      list.push_back(cluster_to_json(cluster));
    fmt::print("{}\n", nlohmann::json{{"clusters", list}}.dump(2));
    return 0;
  }
  Table table({{"cluster", Align::left},
               {"gpu", Align::left},
               {"bf16", Align::right},
               {"hbm", Align::right},
               {"gpus/node", Align::right},
               {"nvlink domain", Align::right},
               {"nvlink/gpu", Align::right},
               {"nics/node", Align::left}});
  for (const ClusterSpec& cluster : clusters) {
    table.add_row({cluster.name, cluster.gpu.name,
                   fmt::format("{:.1f} TFLOP/s", cluster.gpu.bf16_flops / units::kTera),
                   units::format_bytes(cluster.gpu.hbm_bytes),
                   std::to_string(cluster.gpus_per_node),
                   std::to_string(cluster.nvlink_domain_gpus),
                   fmt::format("{:.0f} GB/s", cluster.nvlink_bw_Bps / units::kGiga),
                   fmt::format("{} x {:.0f} Gb/s", cluster.nics_per_node,
                               cluster.nic_bw_Bps * units::kBitsPerByte / units::kGiga)});
  }
  fmt::print("{}", table.render());
  return 0;
}

void add_catalog_command(CLI::App& app, CommandAction& chosen, const char* name,
                         const char* description, int (*run)(const CatalogOptions&)) {
  auto options = std::make_shared<CatalogOptions>();
  CLI::App* command = app.add_subcommand(name, description);
  command->add_option("name", options->name, "one preset name, or a path to your own JSON file");
  command->add_flag("--json", options->json, "print JSON instead of a table");
  command->add_flag("--template", options->template_only,
                    "print a complete spec to copy, edit, and pass back as a path");
  command->callback([&chosen, options, run] { chosen = [options, run] { return run(*options); }; });
}

} // namespace

void add_models_command(CLI::App& app, CommandAction& chosen) {
  add_catalog_command(app, chosen, "models",
                      "List the model presets with their sizes (or show one model)", run_models);
}

void add_clusters_command(CLI::App& app, CommandAction& chosen) {
  add_catalog_command(app, chosen, "clusters", "List the cluster presets (or show one cluster)",
                      run_clusters);
}

} // namespace foldplan::cli
