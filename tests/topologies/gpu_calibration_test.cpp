#include "topologies/gpu_calibration.hpp"

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "input_error_message.hpp"
#include "topologies/cluster_spec.hpp"

namespace foldplan {
namespace {

using nlohmann::json;
using testing::input_error_message;

// A calibration with one point of every list.
json small_calibration() {
  return json::parse(R"({
    "schema": "foldplan.calibration/1",
    "gpu": "TEST-GPU",
    "measured": {"date": "2026-11-23", "device": "Test GPU", "software": "torch 2.11",
                 "command": "python3 tools/measure/microbench.py single", "notes": "n"},
    "gemm": {"bf16": [{"m": 64, "n": 1024, "k": 1024, "tflops": 25.45}],
             "fp8": [{"m": 128, "n": 1024, "k": 2048, "tflops": 57.93}]},
    "attention": [{"batch": 1, "heads": 32, "kv_heads": 8, "seq": 4096, "head_dim": 128,
                   "causal": true, "backend": "cudnn", "fwd_tflops": 541.7,
                   "bwd_tflops": 422.0}],
    "memory": {"copy_Bps": 3033000000000.0, "elementwise_Bps": 3124000000000.0},
    "collectives": [{"kind": "all_reduce", "gpus": 2, "link": "nvlink", "bytes": 4096,
                     "time_s": 8.864e-06, "busbw_Bps": 462100000.0}]})");
}

json embedded_json(const EmbeddedFile& file) {
  return json::parse(file.text);
}

TEST(GpuCalibration, ReadsEveryField) {
  const GpuCalibration calibration = calibration_from_json(small_calibration());
  EXPECT_EQ(calibration.gpu, "TEST-GPU");
  EXPECT_EQ(calibration.measured.date, "2026-11-23");
  EXPECT_EQ(calibration.measured.notes, "n");
  ASSERT_EQ(calibration.gemm_bf16.size(), 1u);
  EXPECT_EQ(calibration.gemm_bf16[0], (GemmMeasurement{64, 1024, 1024, 25.45}));
  ASSERT_EQ(calibration.gemm_fp8.size(), 1u);
  EXPECT_EQ(calibration.gemm_fp8[0].k, 2048);
  ASSERT_EQ(calibration.attention.size(), 1u);
  EXPECT_EQ(calibration.attention[0].kv_heads, 8);
  EXPECT_EQ(calibration.attention[0].backend, "cudnn");
  EXPECT_EQ(calibration.attention[0].bwd_tflops, 422.0);
  EXPECT_EQ(calibration.copy_Bps, 3.033e12);
  EXPECT_EQ(calibration.elementwise_Bps, 3.124e12);
  ASSERT_EQ(calibration.collectives.size(), 1u);
  EXPECT_EQ(calibration.collectives[0].kind, "all_reduce");
  EXPECT_EQ(calibration.collectives[0].bytes, 4096.0);
  EXPECT_EQ(calibration.collectives[0].time_s, 8.864e-06);
}

TEST(GpuCalibration, NotesAndCollectivesMayBeOmittedAndAreThenNotWritten) {
  json value = small_calibration();
  value["measured"].erase("notes");
  value.erase("collectives");
  const GpuCalibration calibration = calibration_from_json(value);
  EXPECT_EQ(calibration.measured.notes, "");
  EXPECT_TRUE(calibration.collectives.empty());
  const json written = calibration_to_json(calibration);
  EXPECT_FALSE(written.contains("collectives"));
  EXPECT_FALSE(written["measured"].contains("notes"));
  EXPECT_EQ(written, value);
}

TEST(GpuCalibration, ShippedFilesRoundTripExactly) {
  ASSERT_EQ(calibration_presets().size(), 2u);
  for (const EmbeddedFile& file : calibration_presets()) {
    const json original = embedded_json(file);
    const GpuCalibration calibration = calibration_from_json(original);
    const json written = calibration_to_json(calibration);
    EXPECT_EQ(written, original) << file.name;
    EXPECT_EQ(calibration_from_json(written), calibration) << file.name;
    // Byte counts stay integers in the text, as the measuring script writes them.
    if (!calibration.collectives.empty()) {
      EXPECT_EQ(written["collectives"][0]["bytes"].dump(),
                original["collectives"][0]["bytes"].dump());
    }
  }
}

TEST(GpuCalibration, BuiltinCalibrationsAreFoundByThePresetsGpuNames) {
  const std::optional<GpuCalibration> h100 = builtin_calibration(load_cluster("dgx-h100").gpu.name);
  ASSERT_TRUE(h100.has_value());
  EXPECT_EQ(h100->gpu, "H100-SXM5-80GB");
  EXPECT_EQ(h100->gemm_bf16.size(), 531u);
  EXPECT_EQ(h100->gemm_bf16_accumulate_fp32.size(), 531u); // foldplan calibrate, same shapes
  EXPECT_EQ(h100->gemm_fp8.size(), 225u);
  EXPECT_EQ(h100->attention.size(), 57u); // 36 cudnn, 21 foldplan
  EXPECT_TRUE(h100->collectives.empty());
  EXPECT_EQ(h100->copy_Bps, 3033e9);

  const std::optional<GpuCalibration> h200 = builtin_calibration(load_cluster("dgx-h200").gpu.name);
  ASSERT_TRUE(h200.has_value());
  EXPECT_EQ(h200->gpu, "H200-SXM5-141GB");
  EXPECT_EQ(h200->collectives.size(), 60u);
  EXPECT_EQ(h200->gemm_bf16_accumulate_fp32.size(), 531u);
  EXPECT_EQ(h200->attention.size(), 57u); // 36 cudnn, 21 foldplan (foldplan calibrate)
  EXPECT_EQ(h200->copy_Bps, 4297e9);

  EXPECT_FALSE(builtin_calibration(load_cluster("dgx-a100").gpu.name).has_value());
  EXPECT_FALSE(builtin_calibration("H100").has_value()); // names match exactly
}

TEST(GpuCalibration, LoadsAUsersFile) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / "foldplan_gpu_calibration_test.json";
  {
    std::ofstream out(path);
    out << small_calibration().dump(2);
  }
  EXPECT_EQ(load_calibration(path.string()), calibration_from_json(small_calibration()));
  std::filesystem::remove(path);
  EXPECT_NE(input_error_message([&] { load_calibration(path.string()); }).find(path.string()),
            std::string::npos);
}

struct BadInput {
  const char* pointer; // JSON pointer of the value to set
  json value;
  const char* message;
};

TEST(GpuCalibration, BadInputErrorsNameTheFieldTheValueAndTheRule) {
  const BadInput cases[] = {
      {"/schema", "foldplan.calibration/2",
       "calibration.schema: \"foldplan.calibration/2\" is not \"foldplan.calibration/1\""},
      {"/gpu", "",
       "calibration.gpu: is empty; give the GPU's name as the cluster presets spell it"},
      {"/measured/command", "",
       "calibration.measured.command: is empty; give the command that measured it"},
      {"/measured/operator", "me",
       "calibration.measured.operator: unknown key (check its spelling, or remove it)"},
      {"/gemm/bf16/0/tflops", -1, "calibration.gemm.bf16[0].tflops: -1 is not a positive number"},
      {"/gemm/bf16/0/m", 0, "calibration.gemm.bf16[0].m: 0 is not a positive integer"},
      {"/gemm/fp8/0/k", 2048.5, "calibration.gemm.fp8[0].k: 2048.5 is not an integer"},
      {"/gemm/fp8/0/time_s", 1,
       "calibration.gemm.fp8[0].time_s: unknown key (check its spelling, "
       "or remove it)"},
      {"/gemm/int8", json::array(),
       "calibration.gemm.int8: unknown key (check its spelling, or remove it)"},
      {"/attention/0/kv_heads", 5, "calibration.attention[0].kv_heads: 5 does not divide heads 32"},
      {"/attention/0/backend", "xformers",
       "calibration.attention[0].backend: \"xformers\" is not one of cudnn, flash, foldplan"},
      {"/attention/0/causal", 1,
       "calibration.attention[0].causal: expected true or false, got integer 1"},
      {"/attention/0/seq", -4096, "calibration.attention[0].seq: -4096 is not a positive integer"},
      {"/memory/copy_Bps", 0, "calibration.memory.copy_Bps: 0 is not a positive number"},
      {"/memory/stream_Bps", 0, "calibration.memory.stream_Bps: 0 is not a positive number"},
      {"/collectives/0/kind", "broadcast",
       "calibration.collectives[0].kind: \"broadcast\" is not one of all_reduce, all_gather, "
       "reduce_scatter, all_to_all, send_recv, send_recv_bidirectional"},
      {"/collectives/0/gpus", 1,
       "calibration.collectives[0].gpus: 1 is fewer than 2 (a collective needs two GPUs)"},
      {"/collectives/0/link", "pcie",
       "calibration.collectives[0].link: \"pcie\" is not one of nvlink, network"},
      {"/collectives/0/time_s", -1e-6,
       "calibration.collectives[0].time_s: -1e-06 is not a positive number"},
  };
  for (const BadInput& bad : cases) {
    json value = small_calibration();
    value[json::json_pointer(bad.pointer)] = bad.value;
    EXPECT_EQ(input_error_message([&] { calibration_from_json(value); }), bad.message)
        << bad.pointer;
  }
}

TEST(GpuCalibration, MissingSectionsAreNamed) {
  for (const char* key : {"gemm", "attention", "memory", "measured"}) {
    json value = small_calibration();
    value.erase(key);
    EXPECT_EQ(input_error_message([&] { calibration_from_json(value); }),
              std::string("calibration.") + key + ": is required but missing");
  }
  json value = small_calibration();
  value["memory"].erase("elementwise_Bps");
  EXPECT_EQ(input_error_message([&] { calibration_from_json(value); }),
            "calibration.memory.elementwise_Bps: is required but missing");
}

TEST(GpuCalibration, AShapeMeasuredTwiceIsRejected) {
  json value = small_calibration();
  value["gemm"]["bf16"].push_back(value["gemm"]["bf16"][0]);
  EXPECT_EQ(input_error_message([&] { calibration_from_json(value); }),
            "calibration.gemm.bf16[1]: shape 64×1024×1024 was already measured at [0]");
  value = small_calibration();
  value["attention"].push_back(value["attention"][0]);
  EXPECT_EQ(input_error_message([&] { calibration_from_json(value); }),
            "calibration.attention[1]: this shape and backend was already measured at [0]");
  // The same shape on another backend is another measurement.
  value["attention"][1]["backend"] = "flash";
  EXPECT_NO_THROW(calibration_from_json(value));
}

TEST(GpuCalibration, AccumulatingGemmsAreReadWrittenAndValidatedLikeTheOthers) {
  json value = small_calibration();
  value["gemm"]["bf16_accumulate_fp32"] =
      json::parse(R"([{"m": 64, "n": 4096, "k": 1024, "tflops": 17.5},
                      {"m": 128, "n": 4096, "k": 1024, "tflops": 33.25}])");
  const GpuCalibration calibration = calibration_from_json(value);
  ASSERT_EQ(calibration.gemm_bf16_accumulate_fp32.size(), 2u);
  EXPECT_EQ(calibration.gemm_bf16_accumulate_fp32[1], (GemmMeasurement{128, 4096, 1024, 33.25}));
  EXPECT_EQ(calibration_to_json(calibration), value);
  EXPECT_EQ(calibration_from_json(calibration_to_json(calibration)), calibration);

  // Absent, it stays absent when written; without it the file reads as before.
  EXPECT_TRUE(calibration_from_json(small_calibration()).gemm_bf16_accumulate_fp32.empty());
  EXPECT_FALSE(calibration_to_json(calibration_from_json(small_calibration()))["gemm"].contains(
      "bf16_accumulate_fp32"));

  json bad = value;
  bad["gemm"]["bf16_accumulate_fp32"][1]["tflops"] = 0;
  EXPECT_EQ(input_error_message([&] { calibration_from_json(bad); }),
            "calibration.gemm.bf16_accumulate_fp32[1].tflops: 0 is not a positive number");
  bad = value;
  bad["gemm"]["bf16_accumulate_fp32"][1]["m"] = 64;
  EXPECT_EQ(input_error_message([&] { calibration_from_json(bad); }),
            "calibration.gemm.bf16_accumulate_fp32[1]: shape 64×4096×1024 was already measured "
            "at [0]");
  bad = value;
  bad["gemm"]["bf16_accumulate_fp32"] = 3;
  EXPECT_NE(input_error_message([&] {
              calibration_from_json(bad);
            }).find("calibration.gemm.bf16_accumulate_fp32"),
            std::string::npos);
}

TEST(GpuCalibration, TheRuntimesStreamFigureIsOptionalReadAndWritten) {
  EXPECT_EQ(calibration_from_json(small_calibration()).stream_Bps, 0); // not measured
  json value = small_calibration();
  value["memory"]["stream_Bps"] = 2.829e12;
  const GpuCalibration calibration = calibration_from_json(value);
  EXPECT_EQ(calibration.stream_Bps, 2.829e12);
  EXPECT_EQ(calibration_to_json(calibration), value);
}

TEST(GpuCalibration, EmptyListsAreAccepted) {
  json value = small_calibration();
  value["gemm"]["fp8"] = json::array();
  value["attention"] = json::array();
  const GpuCalibration calibration = calibration_from_json(value);
  EXPECT_TRUE(calibration.gemm_fp8.empty());
  EXPECT_TRUE(calibration.attention.empty());
  EXPECT_EQ(calibration_to_json(calibration), value);
}

} // namespace
} // namespace foldplan
