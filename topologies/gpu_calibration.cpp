// Reading, validating and writing calibration files (foldplan.calibration/1), and finding the
// shipped one for a GPU.
#include "topologies/gpu_calibration.hpp"

#include <cmath>
#include <map>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/errors.hpp"
#include "core/file_io.hpp"
#include "core/json_object.hpp"

namespace foldplan {
namespace {

const std::vector<std::string> kAttentionBackends = {"cudnn", "flash", "foldplan"};
const std::vector<std::string> kCollectiveKinds = {"all_reduce",     "all_gather",
                                                   "reduce_scatter", "all_to_all",
                                                   "send_recv",      "send_recv_bidirectional"};
const std::vector<std::string> kCollectiveLinks = {"nvlink", "network"};

std::string element_field(const std::string& list_field, std::size_t index) {
  return fmt::format("{}[{}]", list_field, index);
}

std::string field_of(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

void require_positive(double value, const std::string& field) {
  if (!(std::isfinite(value) && value > 0))
    throw InputError(field, fmt::format("{} is not a positive number", value));
}

void require_positive(std::int64_t value, const std::string& field) {
  if (value <= 0)
    throw InputError(field, fmt::format("{} is not a positive integer", value));
}

void require_text(const std::string& text, const std::string& field, const std::string& what) {
  if (text.empty())
    throw InputError(field, fmt::format("is empty; give {}", what));
}

void require_choice(const std::string& value, const std::vector<std::string>& choices,
                    const std::string& field) {
  for (const std::string& allowed : choices) {
    if (value == allowed)
      return;
  }
  throw InputError(field, fmt::format("\"{}\" is not one of {}", value, fmt::join(choices, ", ")));
}

// Reads every element of a JSON array as one object, each checked for unknown keys.
template <typename Point, typename ReadPoint>
std::vector<Point> list_from_json(const nlohmann::json& values, const std::string& field,
                                  ReadPoint read_point) {
  std::vector<Point> points;
  points.reserve(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    JsonObject object(values[i], element_field(field, i));
    points.push_back(read_point(object));
    object.reject_unknown_keys();
  }
  return points;
}

std::vector<GemmMeasurement> gemm_list_from_json(const nlohmann::json& values,
                                                 const std::string& field) {
  return list_from_json<GemmMeasurement>(values, field, [](JsonObject& object) {
    return GemmMeasurement{.m = object.integer("m"),
                           .n = object.integer("n"),
                           .k = object.integer("k"),
                           .tflops = object.number("tflops")};
  });
}

std::vector<AttentionMeasurement> attention_list_from_json(const nlohmann::json& values,
                                                           const std::string& field) {
  return list_from_json<AttentionMeasurement>(values, field, [](JsonObject& object) {
    return AttentionMeasurement{.batch = object.integer("batch"),
                                .heads = object.integer("heads"),
                                .kv_heads = object.integer("kv_heads"),
                                .seq = object.integer("seq"),
                                .head_dim = object.integer("head_dim"),
                                .causal = object.boolean("causal"),
                                .backend = object.string("backend"),
                                .fwd_tflops = object.number("fwd_tflops"),
                                .bwd_tflops = object.number("bwd_tflops")};
  });
}

std::vector<CollectiveMeasurement> collective_list_from_json(const nlohmann::json& values,
                                                             const std::string& field) {
  return list_from_json<CollectiveMeasurement>(values, field, [](JsonObject& object) {
    return CollectiveMeasurement{.kind = object.string("kind"),
                                 .gpus = object.integer("gpus"),
                                 .link = object.string("link"),
                                 .bytes = object.number("bytes"),
                                 .time_s = object.number("time_s"),
                                 .busbw_Bps = object.number("busbw_Bps")};
  });
}

void validate_gemm_list(const std::vector<GemmMeasurement>& points, const std::string& field) {
  std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, std::size_t> first_index;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const GemmMeasurement& point = points[i];
    const std::string element = element_field(field, i);
    require_positive(point.m, field_of(element, "m"));
    require_positive(point.n, field_of(element, "n"));
    require_positive(point.k, field_of(element, "k"));
    require_positive(point.tflops, field_of(element, "tflops"));
    const auto [it, inserted] = first_index.emplace(std::tuple(point.m, point.n, point.k), i);
    if (!inserted) {
      throw InputError(element, fmt::format("shape {}×{}×{} was already measured at [{}]", point.m,
                                            point.n, point.k, it->second));
    }
  }
}

void validate_attention_list(const std::vector<AttentionMeasurement>& points,
                             const std::string& field) {
  using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, bool,
                         std::string>;
  std::map<Key, std::size_t> first_index;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const AttentionMeasurement& point = points[i];
    const std::string element = element_field(field, i);
    require_positive(point.batch, field_of(element, "batch"));
    require_positive(point.heads, field_of(element, "heads"));
    require_positive(point.kv_heads, field_of(element, "kv_heads"));
    if (point.heads % point.kv_heads != 0) {
      throw InputError(field_of(element, "kv_heads"),
                       fmt::format("{} does not divide heads {}", point.kv_heads, point.heads));
    }
    require_positive(point.seq, field_of(element, "seq"));
    require_positive(point.head_dim, field_of(element, "head_dim"));
    require_choice(point.backend, kAttentionBackends, field_of(element, "backend"));
    require_positive(point.fwd_tflops, field_of(element, "fwd_tflops"));
    require_positive(point.bwd_tflops, field_of(element, "bwd_tflops"));
    const Key key{point.batch,    point.heads,  point.kv_heads, point.seq,
                  point.head_dim, point.causal, point.backend};
    const auto [it, inserted] = first_index.emplace(key, i);
    if (!inserted) {
      throw InputError(
          element, fmt::format("this shape and backend was already measured at [{}]", it->second));
    }
  }
}

void validate_collective_list(const std::vector<CollectiveMeasurement>& points,
                              const std::string& field) {
  for (std::size_t i = 0; i < points.size(); ++i) {
    const CollectiveMeasurement& point = points[i];
    const std::string element = element_field(field, i);
    require_choice(point.kind, kCollectiveKinds, field_of(element, "kind"));
    if (point.gpus < 2) {
      throw InputError(field_of(element, "gpus"),
                       fmt::format("{} is fewer than 2 (a collective needs two GPUs)", point.gpus));
    }
    require_choice(point.link, kCollectiveLinks, field_of(element, "link"));
    require_positive(point.bytes, field_of(element, "bytes"));
    require_positive(point.time_s, field_of(element, "time_s"));
    require_positive(point.busbw_Bps, field_of(element, "busbw_Bps"));
  }
}

nlohmann::json gemm_list_to_json(const std::vector<GemmMeasurement>& points) {
  nlohmann::json values = nlohmann::json::array();
  for (const GemmMeasurement& point : points) {
    values.push_back({{"m", point.m}, {"n", point.n}, {"k", point.k}, {"tflops", point.tflops}});
  }
  return values;
}

// Whole byte counts are written as integers, as nccl-tests and the measuring script write them.
nlohmann::json byte_count_to_json(double bytes) {
  constexpr double kLargestExactInteger = 9007199254740992.0; // 2^53
  if (std::trunc(bytes) == bytes && std::fabs(bytes) < kLargestExactInteger)
    return static_cast<std::int64_t>(bytes);
  return bytes;
}

} // namespace

void validate_calibration(const GpuCalibration& calibration, const std::string& path) {
  const auto field = [&](const std::string& key) { return field_of(path, key); };
  require_text(calibration.gpu, field("gpu"), "the GPU's name as the cluster presets spell it");
  const std::string measured = field("measured");
  const CalibrationProvenance& provenance = calibration.measured;
  require_text(provenance.date, field_of(measured, "date"), "the date of the measurement");
  require_text(provenance.device, field_of(measured, "device"), "the device that was measured");
  require_text(provenance.software, field_of(measured, "software"), "the software versions");
  require_text(provenance.command, field_of(measured, "command"), "the command that measured it");
  validate_gemm_list(calibration.gemm_bf16, field("gemm.bf16"));
  validate_gemm_list(calibration.gemm_bf16_accumulate_fp32, field("gemm.bf16_accumulate_fp32"));
  validate_gemm_list(calibration.gemm_fp8, field("gemm.fp8"));
  validate_attention_list(calibration.attention, field("attention"));
  require_positive(calibration.copy_Bps, field("memory.copy_Bps"));
  require_positive(calibration.elementwise_Bps, field("memory.elementwise_Bps"));
  if (calibration.stream_Bps != 0)
    require_positive(calibration.stream_Bps, field("memory.stream_Bps"));
  validate_collective_list(calibration.collectives, field("collectives"));
}

GpuCalibration calibration_from_json(const nlohmann::json& json, const std::string& path) {
  JsonObject object(json, path);
  const std::string schema = object.string("schema");
  if (schema != kCalibrationSchema) {
    throw InputError(object.field("schema"),
                     fmt::format("\"{}\" is not \"{}\"", schema, kCalibrationSchema));
  }
  GpuCalibration calibration;
  calibration.gpu = object.string("gpu");

  JsonObject measured = object.object("measured");
  calibration.measured.date = measured.string("date");
  calibration.measured.device = measured.string("device");
  calibration.measured.software = measured.string("software");
  calibration.measured.command = measured.string("command");
  calibration.measured.notes = measured.string_or("notes", "");
  measured.reject_unknown_keys();

  JsonObject gemm = object.object("gemm");
  calibration.gemm_bf16 = gemm_list_from_json(gemm.array("bf16"), gemm.field("bf16"));
  if (gemm.has("bf16_accumulate_fp32")) {
    calibration.gemm_bf16_accumulate_fp32 =
        gemm_list_from_json(gemm.array("bf16_accumulate_fp32"), gemm.field("bf16_accumulate_fp32"));
  }
  calibration.gemm_fp8 = gemm_list_from_json(gemm.array("fp8"), gemm.field("fp8"));
  gemm.reject_unknown_keys();

  calibration.attention =
      attention_list_from_json(object.array("attention"), object.field("attention"));

  JsonObject memory = object.object("memory");
  calibration.copy_Bps = memory.number("copy_Bps");
  calibration.elementwise_Bps = memory.number("elementwise_Bps");
  if (memory.has("stream_Bps"))
    calibration.stream_Bps = memory.positive_number("stream_Bps");
  memory.reject_unknown_keys();

  if (object.has("collectives")) {
    calibration.collectives =
        collective_list_from_json(object.array("collectives"), object.field("collectives"));
  }
  object.reject_unknown_keys();

  validate_calibration(calibration, path);
  return calibration;
}

nlohmann::json calibration_to_json(const GpuCalibration& calibration) {
  const CalibrationProvenance& provenance = calibration.measured;
  nlohmann::json measured = {{"date", provenance.date},
                             {"device", provenance.device},
                             {"software", provenance.software},
                             {"command", provenance.command}};
  if (!provenance.notes.empty())
    measured["notes"] = provenance.notes;

  nlohmann::json attention = nlohmann::json::array();
  for (const AttentionMeasurement& point : calibration.attention) {
    attention.push_back({{"batch", point.batch},
                         {"heads", point.heads},
                         {"kv_heads", point.kv_heads},
                         {"seq", point.seq},
                         {"head_dim", point.head_dim},
                         {"causal", point.causal},
                         {"backend", point.backend},
                         {"fwd_tflops", point.fwd_tflops},
                         {"bwd_tflops", point.bwd_tflops}});
  }

  nlohmann::json json = {
      {"schema", kCalibrationSchema},
      {"gpu", calibration.gpu},
      {"measured", measured},
      {"gemm",
       {{"bf16", gemm_list_to_json(calibration.gemm_bf16)},
        {"fp8", gemm_list_to_json(calibration.gemm_fp8)}}},
      {"attention", attention},
      {"memory",
       {{"copy_Bps", calibration.copy_Bps}, {"elementwise_Bps", calibration.elementwise_Bps}}},
  };
  if (calibration.stream_Bps > 0)
    json["memory"]["stream_Bps"] = calibration.stream_Bps;
  if (!calibration.gemm_bf16_accumulate_fp32.empty()) {
    json["gemm"]["bf16_accumulate_fp32"] = gemm_list_to_json(calibration.gemm_bf16_accumulate_fp32);
  }
  if (!calibration.collectives.empty()) {
    nlohmann::json collectives = nlohmann::json::array();
    for (const CollectiveMeasurement& point : calibration.collectives) {
      collectives.push_back({{"kind", point.kind},
                             {"gpus", point.gpus},
                             {"link", point.link},
                             {"bytes", byte_count_to_json(point.bytes)},
                             {"time_s", point.time_s},
                             {"busbw_Bps", point.busbw_Bps}});
    }
    json["collectives"] = collectives;
  }
  return json;
}

std::optional<GpuCalibration> builtin_calibration(const std::string& gpu_name) {
  for (const EmbeddedFile& file : calibration_presets()) {
    if (file.name.empty())
      continue; // the placeholder of an empty preset folder
    const std::string source = fmt::format("topologies/calibration/{}.json", file.name);
    GpuCalibration calibration =
        calibration_from_json(parse_json(std::string(file.text), source), "calibration");
    if (calibration.gpu == gpu_name)
      return calibration;
  }
  return std::nullopt;
}

GpuCalibration load_calibration(const std::string& path) {
  return calibration_from_json(read_json_file(path), "calibration");
}

} // namespace foldplan
