#!/usr/bin/env python3
"""Per-shape comparison of a `foldplan calibrate` file with a shipped calibration: for bf16 GEMMs
and foldplan attention the ratio new / shipped (median, 10th and 90th percentile, the 90th
percentile of |ratio - 1|), memory ratios, and the new fp32-accumulate table against its own bf16
table. Prints Markdown.

  python3 tools/measure/compare_calibration.py NEW.json SHIPPED.json
"""
import json
import statistics
import sys


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def stats(ratios):
    return "n %d, median %.3f, p10 %.3f, p90 %.3f, p90 |ratio-1| %.3f" % (
        len(ratios), statistics.median(ratios), percentile(ratios, 0.1), percentile(ratios, 0.9),
        percentile([abs(r - 1) for r in ratios], 0.9))


def gemm_table(points):
    return {(p["m"], p["n"], p["k"]): p["tflops"] for p in points}


def attention_key(p):
    return (p["batch"], p["heads"], p["kv_heads"], p["seq"], p["head_dim"], p["causal"], p["backend"])


def main(new_path, shipped_path):
    new, shipped = json.load(open(new_path)), json.load(open(shipped_path))
    print("%s against %s" % (new_path, shipped_path))
    bf16_new, bf16_old = gemm_table(new["gemm"]["bf16"]), gemm_table(shipped["gemm"]["bf16"])
    common = sorted(set(bf16_new) & set(bf16_old))
    print("- gemm.bf16 new/shipped: " + stats([bf16_new[s] / bf16_old[s] for s in common]))
    for m_range, name in (((64, 512), "m 64-512"), ((1024, 16384), "m 1024-16384")):
        part = [bf16_new[s] / bf16_old[s] for s in common if m_range[0] <= s[0] <= m_range[1]]
        print("  - %s: %s" % (name, stats(part)))
    accumulate = gemm_table(new["gemm"].get("bf16_accumulate_fp32", []))
    if accumulate:
        ratios = [accumulate[s] / bf16_new[s] for s in sorted(set(accumulate) & set(bf16_new))]
        print("- gemm.bf16_accumulate_fp32 / gemm.bf16 (same run): " + stats(ratios))
        slow = [s for s in accumulate if accumulate[s] / bf16_new[s] < 0.8]
        print("  - shapes more than 20%% slower accumulating: %d (m <= 512: %d)" % (
            len(slow), len([s for s in slow if s[0] <= 512])))
    for key in ("copy_Bps", "elementwise_Bps"):
        print("- memory.%s: new %.4g, shipped %.4g, ratio %.3f" % (
            key, new["memory"][key], shipped["memory"][key], new["memory"][key] / shipped["memory"][key]))
    att_new = {attention_key(p): p for p in new["attention"] if p["backend"] == "foldplan"}
    att_old = {attention_key(p): p for p in shipped["attention"] if p["backend"] == "foldplan"}
    both = sorted(set(att_new) & set(att_old))
    if both:
        for field in ("fwd_tflops", "bwd_tflops"):
            print("- attention foldplan %s new/shipped: %s" % (
                field, stats([att_new[k][field] / att_old[k][field] for k in both])))
    else:
        print("- attention foldplan: no shipped points to compare with (%d new)" % len(att_new))


if __name__ == "__main__":
    main(*sys.argv[1:3])
