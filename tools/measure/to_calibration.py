#!/usr/bin/env python3
"""Turn microbench.py's raw JSON into a foldplan.calibration/1 file.

  to_calibration.py --gpu H200-SXM5-141GB --single results/h200.json \
      [--nccl results/h200_nccl.json] --command "<command run on the device>" \
      --out topologies/calibration/h200.json

Needs no torch. Writes one point per line so diffs stay readable.
"""

import argparse
import glob
import json
import os
import re

LINK = "nvlink"

# The cost model finds a GPU's calibration by the exact GpuSpec name of the cluster presets
# (topologies/presets/*.json, "gpu"."name"). make_calibration.sh spells the H200 without the "5".
GPU_NAME_FIXES = {"H200-SXM-141GB": "H200-SXM5-141GB"}
PRESET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "topologies",
                          "presets")


def preset_gpu_name(name):
    name = GPU_NAME_FIXES.get(name, name)
    known = sorted({json.load(open(p))["gpu"]["name"]
                    for p in glob.glob(os.path.join(PRESET_DIR, "*.json"))})
    if name not in known:
        raise SystemExit("--gpu %s is not the GPU name of any cluster preset (%s)"
                         % (name, ", ".join(known)))
    return name


def fmt_num(x):
    if isinstance(x, float):
        return float("%.4g" % x)
    return x


def compact(obj):
    return json.dumps({k: fmt_num(v) for k, v in obj.items()}, separators=(", ", ": "))


def software(env):
    m = re.search(r"Driver Version:\s*(\S+)", env.get("nvidia_smi_header", ""))
    drv = "driver %s" % m.group(1) if m else ""
    cudnn = env.get("cudnn")
    cudnn_s = "%d.%d.%d" % (cudnn // 10000, (cudnn // 100) % 100, cudnn % 100) if cudnn else "n/a"
    return "torch %s, CUDA %s, cuDNN %s, NCCL %s, %s" % (
        env["torch"], env["cuda_runtime"], cudnn_s, env.get("nccl"), drv or "driver ?")


def preset_gpu(name):
    """The GpuSpec of the cluster preset whose GPU is `name` (datasheet peak and HBM bandwidth)."""
    for path in sorted(glob.glob(os.path.join(PRESET_DIR, "*.json"))):
        gpu = json.load(open(path))["gpu"]
        if gpu["name"] == name:
            return gpu
    raise SystemExit("no cluster preset has GPU %s" % name)


def clock_scale(point, step_mhz, ridge_flop_per_byte=None):
    """Compute-bound throughput scales with the SM clock. A sweep measures each point at whatever
    clock the board was at: short kernels at full boost, long ones down at the power limit. A
    training step holds the board at one clock (step_clock.py), and no kernel in it runs faster
    than that: a compute-bound point measured above it is brought down to it (tflops x step_mhz /
    the SM clock read after the point). A point measured at or below it already ran power-limited,
    the regime training puts that kernel in, and is kept as measured (the clock read after a long
    kernel is lower than its average, so scaling those up would overstate them). A GEMM whose
    arithmetic intensity is below the GPU's ridge point streams its operands from HBM, whose
    bandwidth does not follow the SM clock: it is kept as measured too."""
    if not step_mhz or not point.get("sm_mhz"):
        return 1.0
    if ridge_flop_per_byte and "m" in point:
        m, n, k = point["m"], point["n"], point["k"]
        intensity = 2.0 * m * n * k / (2.0 * (m * k + k * n + m * n))
        if intensity < ridge_flop_per_byte:
            return 1.0
    return min(1.0, step_mhz / point["sm_mhz"])


def build(args):
    single = json.load(open(args.single))
    env = single["environment"]
    step_mhz = json.load(open(args.step_clock))["sm_mhz_median"] if args.step_clock else None
    gpu = preset_gpu(preset_gpu_name(args.gpu))
    hbm_Bps = gpu["hbm_TBps"] * 1e12
    # The ridge point at the step clock: FLOP per byte above which a GEMM is compute-bound.
    clock_fraction = (step_mhz or 1980.0) / 1980.0
    ridge_bf16 = gpu["bf16_tflops"] * 1e12 * clock_fraction / hbm_Bps
    ridge_fp8 = gpu["fp8_tflops"] * 1e12 * clock_fraction / hbm_Bps / 2  # 1-byte operands
    gemm_bf16 = [{"m": p["m"], "n": p["n"], "k": p["k"],
                  "tflops": p["tflops"] * clock_scale(p, step_mhz, ridge_bf16)}
                 for p in single["gemm_bf16"] if "tflops" in p]
    fp8 = single.get("gemm_fp8", {})
    gemm_fp8 = [{"m": p["m"], "n": p["n"], "k": p["k"],
                 "tflops": p["tflops"] * clock_scale(p, step_mhz, ridge_fp8)}
                for p in fp8.get("points", []) if "tflops" in p and not p.get("fast_accum")]
    attn = []
    for a in single["attention"]:
        if "fwd_tflops" not in a:
            continue
        scale = clock_scale(a, step_mhz)
        attn.append({"batch": a["batch"], "heads": a["heads"], "kv_heads": a["kv_heads"],
                     "seq": a["seq"], "head_dim": a["head_dim"], "causal": a["causal"],
                     "backend": a["backend"], "fwd_tflops": a["fwd_tflops"] * scale,
                     "bwd_tflops": a["bwd_tflops"] * scale})
    copy = max(single["memory"]["copy"], key=lambda c: c["size_bytes"])
    elem = max(single["memory"]["elementwise"], key=lambda c: c["numel"])
    colls = []
    if args.nccl:
        nccl = json.load(open(args.nccl))
        world = nccl["world_size"]
        for r in nccl["results"]:
            if not r.get("ok", False):
                continue
            colls.append({"kind": r["op"], "gpus": world, "link": LINK, "bytes": r["bytes"],
                          "time_s": r["time_s"], "busbw_Bps": r["busbw_Bps"]})
    measured = {"date": env["date_utc"][:10], "device": env.get("gpu_name"),
                "software": software(env), "command": args.command}
    if args.notes:
        measured["notes"] = args.notes
    if step_mhz:
        measured["notes"] = (measured.get("notes", "") + " Compute-bound GEMM and attention TFLOP/s "
                             "measured above %d MHz, the SM clock this GPU held under a training "
                             "load (tools/measure/step_clock.py; %s), are scaled down to it: "
                             "tflops x %d / the SM clock read after the point; GEMMs below the "
                             "ridge point (HBM-bound) are kept. Raw figures: %s." % (
                                 step_mhz, args.step_clock, step_mhz, args.single)).strip()
    return measured, gemm_bf16, gemm_fp8, attn, copy["Bps"], elem["Bps"], colls, fp8


def write(path, gpu, measured, bf16, fp8, attn, copy_bps, elem_bps, colls, fp8_raw):
    L = []
    L.append("{")
    L.append('  "schema": "foldplan.calibration/1",')
    L.append('  "gpu": %s,' % json.dumps(gpu))
    L.append('  "measured": %s,' % json.dumps(measured, indent=None))
    L.append('  "gemm": {')

    def block(name, pts, last):
        if not pts:
            L.append('    "%s": []%s' % (name, "" if last else ","))
            return
        L.append('    "%s": [' % name)
        for i, p in enumerate(pts):
            L.append("      " + compact(p) + ("," if i < len(pts) - 1 else ""))
        L.append("    ]" + ("" if last else ","))

    block("bf16", bf16, False)
    block("fp8", fp8, True)
    L.append("  },")
    L.append('  "attention": [')
    for i, p in enumerate(attn):
        L.append("    " + compact(p) + ("," if i < len(attn) - 1 else ""))
    L.append("  ],")
    L.append('  "memory": {"copy_Bps": %s, "elementwise_Bps": %s}%s' % (
        fmt_num(copy_bps), fmt_num(elem_bps), "," if colls else ""))
    if colls:
        L.append('  "collectives": [')
        for i, p in enumerate(colls):
            L.append("    " + compact(p) + ("," if i < len(colls) - 1 else ""))
        L.append("  ]")
    L.append("}")
    text = "\n".join(L) + "\n"
    json.loads(text)  # must parse
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpu", required=True)
    ap.add_argument("--single", required=True)
    ap.add_argument("--nccl")
    ap.add_argument("--command", required=True)
    ap.add_argument("--notes", default="")
    ap.add_argument("--step-clock", help="step_clock.py's result: normalise to that SM clock")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    measured, bf16, fp8, attn, cb, eb, colls, fp8_raw = build(a)
    write(a.out, preset_gpu_name(a.gpu), measured, bf16, fp8, attn, cb, eb, colls, fp8_raw)
    print("wrote %s: %d bf16, %d fp8, %d attention, %d collectives" % (
        a.out, len(bf16), len(fp8), len(attn), len(colls)))


if __name__ == "__main__":
    main()
