// ParallelConfig: how one step is split — attention as TP×CP×DP×PP, MoE layers as ETP×EP×EDP×PP
// (MoE Parallel Folding; only PP is shared) — and the batch shape it is split over.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace foldplan {

struct ModelSpec;

struct ParallelConfig {
  std::int64_t tp = 1;  // tensor parallel (attention, dense MLP, shared experts); SP when > 1
  std::int64_t cp = 1;  // context parallel
  std::int64_t dp = 1;  // data parallel (excluding CP), world / (TP·CP·PP)
  std::int64_t pp = 1;  // pipeline parallel, shared by both mappings
  std::int64_t vpp = 1; // virtual pipeline stages per pipeline rank (1: no interleaving)
  std::int64_t etp = 1; // expert tensor parallel
  std::int64_t ep = 1;  // expert parallel
  std::int64_t edp = 1; // expert data parallel, world / (ETP·EP·PP)

  std::int64_t world_size() const { return tp * cp * dp * pp; }
  bool operator==(const ParallelConfig&) const = default;
};

struct TrainingShape {
  std::int64_t seq_length = 4096;
  std::int64_t global_batch_size = 256;
  std::int64_t micro_batch_size = 1;

  bool operator==(const TrainingShape&) const = default;
};

// The sizes a user names; dp and edp follow from the world size.
struct ParallelSizes {
  std::int64_t tp = 1, cp = 1, pp = 1, vpp = 1, ep = 1;
  // Unset: 1 with folding, TP without (Megatron's default is TP).
  std::optional<std::int64_t> etp = std::nullopt;
};

// Derives dp and edp from `world_size`. With `folding` false, reproduces pre-folding Megatron:
// ETP = TP and EP is carved out of DP. Throws InputError naming the flag when sizes do not divide.
ParallelConfig make_parallel_config(std::int64_t world_size, const ParallelSizes& sizes,
                                    bool folding);

// The first rule `config` breaks for this model and batch, or nullopt when it is valid.
struct ConfigViolation {
  std::string field;  // "parallel.ep"
  std::string rule;   // "6 does not divide num_experts 8"
  std::string reason; // short category for counting rejections: "ep does not divide experts"
};
std::optional<ConfigViolation> find_violation(const ParallelConfig& config, const ModelSpec& model,
                                              const TrainingShape& training,
                                              std::int64_t world_size, bool folding = true);
// Throws InputError for the first violation.
void validate_parallel_config(const ParallelConfig& config, const ModelSpec& model,
                              const TrainingShape& training, std::int64_t world_size,
                              bool folding = true);

// Micro-batches per step per data-parallel replica: GBS / (mbs · DP).
std::int64_t num_micro_batches(const ParallelConfig& config, const TrainingShape& training);

ParallelConfig parallel_from_json(const nlohmann::json& json, const std::string& path = "parallel");
nlohmann::json parallel_to_json(const ParallelConfig& config);
TrainingShape training_from_json(const nlohmann::json& json, const std::string& path = "training");
nlohmann::json training_to_json(const TrainingShape& training);

} // namespace foldplan
