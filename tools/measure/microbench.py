#!/usr/bin/env python3
"""GPU micro-benchmarks that feed foldplan's cost-model calibration tables.

Two sub-commands:

  microbench.py single --out PATH [--device N] [--sections gemm,fp8,attn,mem]
      cuBLAS bf16 GEMM grid, FP8 (torch._scaled_mm) GEMM subset, cuDNN SDPA
      attention (causal, GQA) forward/backward, device memory bandwidth.
      Runs on one GPU.

  microbench.py nccl --out PATH [--world N]
      NCCL collectives through torch.distributed, one process per GPU
      (torch.multiprocessing.spawn). NVLink multicast stays off
      (NCCL_NVLS_ENABLE=0).

Timing method (see /work/.library/device/METHOD.md):
  * CUDA events, warm-up first, median over >= 20 timed iterations.
  * Timed iterations are enqueued back to back behind a GPU spin
    (torch.cuda._sleep) so that host launch overhead is hidden and the events
    measure device time only; one event is recorded between consecutive
    iterations and the median of the differences is reported.
  * GEMMs are captured into a CUDA graph that cycles through R distinct input
    sets whose combined size is >= 3x the L2 cache, so small shapes are not
    timed out of L2; one timed iteration = one graph replay, and the
    per-GEMM time is median / R.
  * Inputs are random (never zeros), clocks are left as found and recorded
    with nvidia-smi before and after each section.

The JSON written is raw; tools/measure/to_calibration.py turns it into
topologies/calibration/<gpu>.json.
"""

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback

# NVLink multicast must stay off on the shared hosts (KINDS.md).
os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
os.environ["NCCL_NVLS_ENABLE"] = "0"
os.environ["TORCH_SYMM_MEM_DISABLE_MULTICAST"] = "1"
os.environ["NVSHMEM_DISABLE_NVLS"] = "1"

import torch  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

M_VALUES = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
NK_VALUES = [1024, 2048, 4096, 6144, 8192, 14336, 16384]
# skinny (n, k) pairs, run for every m
SKINNY_NK = [
    (512, 4096), (4096, 512), (512, 14336), (14336, 512),
    (28672, 4096), (4096, 28672), (28672, 8192), (8192, 28672),
    (49152, 4096), (4096, 49152),
]
FP8_M = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
FP8_NK = [1024, 2048, 4096, 8192, 14336]

ATTN_HEADS = [(32, 8), (48, 8), (64, 8), (16, 2), (8, 1), (24, 4)]
ATTN_SEQ = [1024, 2048, 4096, 8192, 16384, 32768]
ATTN_HEAD_DIM = 128


def log(*a):
    print(*a, flush=True)


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def sh(cmd):
    try:
        r = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30)
        return (r.stdout + r.stderr).strip()
    except Exception as e:  # pragma: no cover - best effort
        return "error: %r" % (e,)


SMI_FIELDS = ("index,name,driver_version,pstate,clocks.sm,clocks.mem,clocks.max.sm,"
              "clocks.max.mem,power.draw,power.limit,temperature.gpu,memory.used,memory.total")


def smi_snapshot():
    snap = {"time": now_iso(),
            "query": sh("nvidia-smi --query-gpu=%s --format=csv,noheader" % SMI_FIELDS)}
    ev = sh("nvidia-smi --query-gpu=index,clocks_event_reasons.active --format=csv,noheader")
    if "not a valid field" in ev.lower() or "invalid" in ev.lower():
        ev = sh("nvidia-smi --query-gpu=index,clocks_throttle_reasons.active --format=csv,noheader")
    snap["clock_event_reasons"] = ev
    return snap


def environment(device_index=None):
    env = {
        "date_utc": now_iso(),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "hostname": platform.node(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "nccl": None,
        "env": {k: os.environ.get(k) for k in
                ("CUDA_VISIBLE_DEVICES", "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST",
                 "NVSHMEM_DISABLE_NVLS", "PYTORCH_CUDA_ALLOC_CONF")},
        "nvidia_smi_header": "",
        "nvidia_smi_query_header": SMI_FIELDS,
        "nvidia_smi_start": smi_snapshot(),
        "nvidia_smi_clocks": sh("nvidia-smi -q -d CLOCK"),
    }
    try:
        v = torch.cuda.nccl.version()
        env["nccl"] = ".".join(str(x) for x in v) if isinstance(v, tuple) else str(v)
    except Exception as e:
        env["nccl"] = "unavailable: %r" % (e,)
    full = sh("nvidia-smi")
    env["nvidia_smi_header"] = "\n".join(l for l in full.splitlines() if "Driver Version" in l)
    if device_index is not None and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(device_index)
        env["gpu_name"] = torch.cuda.get_device_name(device_index)
        env["device_index"] = device_index
        env["sm_count"] = p.multi_processor_count
        env["total_memory_bytes"] = p.total_memory
        env["l2_bytes"] = getattr(p, "L2_cache_size", None)
        env["capability"] = "%d.%d" % (p.major, p.minor)
    return env


class Nvml:
    """Fast clock/power reads after each measurement (nvidia-ml-py), best effort."""

    def __init__(self, index):
        self.h = None
        try:
            import pynvml
            pynvml.nvmlInit()
            self.m = pynvml
            self.h = pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as e:  # pragma: no cover
            log("nvml unavailable: %r" % (e,))

    def read(self):
        if self.h is None:
            return {}
        try:
            return {"sm_mhz": self.m.nvmlDeviceGetClockInfo(self.h, self.m.NVML_CLOCK_SM),
                    "power_w": round(self.m.nvmlDeviceGetPowerUsage(self.h) / 1000.0, 1)}
        except Exception:
            return {}


NVML = [None]


def clocks():
    return NVML[0].read() if NVML[0] is not None else {}


class Saver:
    def __init__(self, path, doc):
        self.path = path
        self.doc = doc

    def save(self):
        tmp = self.path + ".partial"
        with open(tmp, "w") as f:
            json.dump(self.doc, f, indent=1)
        os.replace(tmp, self.path)


# ----------------------------------------------------------------------------
# timing helpers


def spin(ms):
    """Keep the GPU busy ~ms so the host can enqueue the timed work ahead."""
    ms = min(ms, 200.0)
    try:
        torch.cuda._sleep(int(ms * 1e-3 * 2.0e9))  # cycles at ~2 GHz
    except Exception:
        pass


def time_back_to_back(fn, iters, spin_ms=2.0):
    """Enqueue `iters` calls of fn back to back with an event between each;
    return the list of per-call device times in seconds."""
    evs = [torch.cuda.Event(enable_timing=True) for _ in range(iters + 1)]
    torch.cuda.synchronize()
    spin(spin_ms)
    evs[0].record()
    for i in range(iters):
        fn()
        evs[i + 1].record()
    torch.cuda.synchronize()
    return [evs[i].elapsed_time(evs[i + 1]) * 1e-3 for i in range(iters)]


def host_cost(fn, n=3):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    return (t1 - t0) / n


def summarize(ts):
    ts = sorted(ts)
    return {"median_s": statistics.median(ts), "min_s": ts[0], "max_s": ts[-1],
            "p10_s": ts[len(ts) // 10], "p90_s": ts[(len(ts) * 9) // 10], "n": len(ts)}


def rel_err(out, ref):
    out = out.double()
    ref = ref.double()
    return (torch.linalg.vector_norm(out - ref) / torch.linalg.vector_norm(ref)).item()


# ----------------------------------------------------------------------------
# GEMM


class Pool:
    """One large buffer of random values; GEMM operands are views into it at
    distinct, 512-byte aligned offsets, so no per-shape randn is needed."""

    def __init__(self, numel, dtype, dev):
        self.numel = numel
        if dtype == torch.bfloat16:
            self.buf = torch.randn(numel, device=dev, dtype=torch.bfloat16)
        else:
            tmp = torch.randn(numel, device=dev, dtype=torch.bfloat16)
            self.buf = tmp.to(dtype)
            del tmp
        self.dtype = dtype

    def sets(self, sizes, want):
        """Return up to `want` tuples of views of the given element counts."""
        align = 512
        per = sum(((s + align - 1) // align) * align for s in sizes)
        fit = max(1, self.numel // per)
        r = max(1, min(want, fit))
        out = []
        for i in range(r):
            off = i * per
            views = []
            for s in sizes:
                views.append(self.buf[off:off + s])
                off += ((s + align - 1) // align) * align
            out.append(views)
        return out


_SIDE = []


def _side_stream():
    # one stream for all captures: cuBLAS caches a workspace per stream
    if not _SIDE:
        _SIDE.append(torch.cuda.Stream())
    return _SIDE[0]


def gemm_time(run_one, nsets, l2_bytes, bytes_per_set, iters, warmup, use_graph=True):
    """run_one(i) launches GEMM on input set i. Returns (per-GEMM times list, R, mode)."""
    R = nsets
    mode = "graph"
    torch.cuda.synchronize()
    for i in range(R):  # eager warm-up: cuBLAS handle, heuristics, workspace
        run_one(i)
    torch.cuda.synchronize()
    g = None
    if use_graph:
        try:
            s = _side_stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for i in range(R):
                    run_one(i)
            torch.cuda.current_stream().wait_stream(s)
            torch.cuda.synchronize()
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                for i in range(R):
                    run_one(i)
            torch.cuda.synchronize()
        except Exception as e:
            log("  graph capture failed (%r); eager timing" % (e,))
            g = None
            mode = "eager"
    else:
        mode = "eager"

    if g is not None:
        fn = g.replay
    else:
        def fn():
            for i in range(R):
                run_one(i)
    for _ in range(warmup):
        fn()
    hc = host_cost(fn, 2)
    ts = time_back_to_back(fn, iters, spin_ms=max(1.0, 1.5e3 * hc * iters))
    del g
    return [t / R for t in ts], R, mode


def gemm_iters(flop):
    # keep each shape to well under a second of device time
    t_est = flop / 600e12
    if t_est > 20e-3:
        return 20, 2
    if t_est > 2e-3:
        return 25, 3
    return 40, 5


def bench_gemm_bf16(dev, l2, results, saver, deadline):
    pool = Pool(1 << 30, torch.bfloat16, dev)  # 2 GiB of random bf16
    shapes = []
    for m in M_VALUES:
        for n in NK_VALUES:
            for k in NK_VALUES:
                shapes.append((m, n, k, "grid"))
    for m in M_VALUES:
        for (n, k) in SKINNY_NK:
            shapes.append((m, n, k, "skinny"))

    # correctness once, 1024^3 and a skinny shape, against float64
    for (m, n, k) in [(1024, 1024, 1024), (256, 4096, 14336)]:
        a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        b = torch.randn(k, n, device=dev, dtype=torch.bfloat16)
        e = rel_err(torch.matmul(a, b), torch.matmul(a.double(), b.double()))
        results["checks"].append({"what": "bf16 matmul vs float64", "m": m, "n": n, "k": k,
                                  "rel_err": e, "ok": bool(e < 1e-2)})
        log("check bf16 %dx%dx%d rel_err %.2e" % (m, n, k, e))

    # global warm-up so clocks are up before the first shape
    a = pool.buf[: 8192 * 8192].view(8192, 8192)
    t0 = time.time()
    while time.time() - t0 < 1.0:
        torch.matmul(a, a)
    torch.cuda.synchronize()
    del a

    out_list = results["gemm_bf16"]
    for idx, (m, n, k, tag) in enumerate(shapes):
        if time.time() > deadline:
            results["skipped"].append("gemm_bf16 from %dx%dx%d on (time budget)" % (m, n, k))
            break
        try:
            flop = 2.0 * m * n * k
            bytes_set = 2 * (m * k + k * n)
            want = max(1, min(64, math.ceil(3 * l2 / bytes_set)))
            sets = pool.sets([m * k, k * n], want)
            As = [s[0].view(m, k) for s in sets]
            Bs = [s[1].view(k, n) for s in sets]
            C = torch.empty(m, n, device=dev, dtype=torch.bfloat16)

            def run_one(i, As=As, Bs=Bs, C=C):
                torch.matmul(As[i], Bs[i], out=C)

            iters, warm = gemm_iters(flop)
            ts, R, mode = gemm_time(run_one, len(sets), l2, bytes_set, iters, warm)
            st = summarize(ts)
            rec = {"m": m, "n": n, "k": k, "tag": tag, "time_s": st["median_s"],
                   "tflops": flop / st["median_s"] / 1e12, "rotating_sets": R,
                   "iters": iters, "timing": mode,
                   "min_s": st["min_s"], "p90_s": st["p90_s"]}
            rec.update(clocks())
            out_list.append(rec)
            if idx % 25 == 0 or (m, n, k) in [(8192, 8192, 8192), (1024, 1024, 1024)]:
                log("bf16 %5d x %5d x %5d : %8.1f TFLOP/s  (%.3f ms, R=%d, %s)" % (
                    m, n, k, rec["tflops"], rec["time_s"] * 1e3, R, mode))
            del As, Bs, C, sets
        except Exception as e:
            out_list.append({"m": m, "n": n, "k": k, "tag": tag, "error": repr(e)})
            log("bf16 %dx%dx%d failed: %r" % (m, n, k, e))
            torch.cuda.empty_cache()
        if idx % 50 == 0:
            saver.save()
    del pool
    torch.cuda.empty_cache()


def bench_gemm_fp8(dev, l2, results, saver, deadline):
    res = results["gemm_fp8"]
    if not hasattr(torch, "_scaled_mm") or not hasattr(torch, "float8_e4m3fn"):
        res["available"] = False
        res["note"] = "torch._scaled_mm or float8_e4m3fn not available"
        return
    res["available"] = True
    res["api"] = ("torch._scaled_mm(A e4m3 row-major [m,k], B e4m3 column-major [k,n], "
                  "scale_a, scale_b per-tensor float32, out_dtype=bfloat16)")
    f8 = torch.float8_e4m3fn
    sa = torch.tensor(1.0, device=dev, dtype=torch.float32)
    sb = torch.tensor(1.0, device=dev, dtype=torch.float32)

    # availability + correctness check
    try:
        m = n = k = 1024
        a = (torch.randn(m, k, device=dev)).to(f8)
        bt = (torch.randn(n, k, device=dev)).to(f8)
        sa2 = torch.tensor(0.5, device=dev)
        sb2 = torch.tensor(2.0, device=dev)
        o = torch.empty(m, n, device=dev, dtype=torch.bfloat16)
        try:
            torch._scaled_mm(a, bt.t(), scale_a=sa2, scale_b=sb2, out_dtype=torch.bfloat16, out=o)
            use_out = True
        except Exception as e:
            log("fp8 out= not accepted (%r); timing without out=" % (e,))
            o = torch._scaled_mm(a, bt.t(), scale_a=sa2, scale_b=sb2, out_dtype=torch.bfloat16)
            use_out = False
        res["out_kwarg"] = use_out
        ref = (a.float().double() * 0.5) @ (bt.float().double().t() * 2.0)
        e = rel_err(o, ref)
        results["checks"].append({"what": "fp8 _scaled_mm vs float64 on dequantized inputs",
                                  "m": m, "n": n, "k": k, "rel_err": e, "ok": bool(e < 1e-2)})
        log("check fp8 1024^3 rel_err %.2e" % e)
    except Exception as e:
        res["available"] = False
        res["note"] = "_scaled_mm failed: %r" % (e,)
        log("fp8 unavailable: %r" % (e,))
        return

    pool = Pool(1 << 30, f8, dev)  # 1 GiB of fp8
    points = res["points"]
    shapes = [(m, n, k) for m in FP8_M for n in FP8_NK for k in FP8_NK]
    # a few with fast accumulation (what Transformer Engine uses for forward GEMMs)
    fast = [(m, n, k) for m in (1024, 4096, 8192) for (n, k) in ((4096, 4096), (8192, 8192),
                                                               (14336, 4096), (4096, 14336))]
    todo = [(m, n, k, False) for (m, n, k) in shapes] + [(m, n, k, True) for (m, n, k) in fast]
    for idx, (m, n, k, fa) in enumerate(todo):
        if time.time() > deadline:
            results["skipped"].append("gemm_fp8 from %dx%dx%d on (time budget)" % (m, n, k))
            break
        try:
            flop = 2.0 * m * n * k
            bytes_set = m * k + k * n
            want = max(1, min(64, math.ceil(3 * l2 / bytes_set)))
            sets = pool.sets([m * k, k * n], want)
            As = [s[0].view(m, k) for s in sets]
            Bs = [s[1].view(n, k).t() for s in sets]  # column-major [k, n]
            C = torch.empty(m, n, device=dev, dtype=torch.bfloat16)

            def run_one(i, As=As, Bs=Bs, C=C, fa=fa):
                if use_out:
                    torch._scaled_mm(As[i], Bs[i], scale_a=sa, scale_b=sb,
                                     out_dtype=torch.bfloat16, use_fast_accum=fa, out=C)
                else:
                    torch._scaled_mm(As[i], Bs[i], scale_a=sa, scale_b=sb,
                                     out_dtype=torch.bfloat16, use_fast_accum=fa)

            iters, warm = gemm_iters(flop / 2)
            ts, R, mode = gemm_time(run_one, len(sets), l2, bytes_set, iters, warm)
            st = summarize(ts)
            rec = {"m": m, "n": n, "k": k, "fast_accum": fa, "time_s": st["median_s"],
                   "tflops": flop / st["median_s"] / 1e12, "rotating_sets": R,
                   "iters": iters, "timing": mode, "min_s": st["min_s"], "p90_s": st["p90_s"]}
            rec.update(clocks())
            points.append(rec)
            if idx % 25 == 0 or (m, n, k) == (8192, 8192, 8192):
                log("fp8%s %5d x %5d x %5d : %8.1f TFLOP/s (%.3f ms, R=%d)" % (
                    " fast" if fa else "", m, n, k, rec["tflops"], rec["time_s"] * 1e3, R))
            del As, Bs, C, sets
        except Exception as e:
            points.append({"m": m, "n": n, "k": k, "fast_accum": fa, "error": repr(e)})
            log("fp8 %dx%dx%d failed: %r" % (m, n, k, e))
        if idx % 50 == 0:
            saver.save()
    del pool
    torch.cuda.empty_cache()


# ----------------------------------------------------------------------------
# attention


def bench_attention(dev, results, saver, deadline):
    import torch.nn.functional as F
    from torch.nn.attention import sdpa_kernel, SDPBackend

    out = results["attention"]
    b, d = 1, ATTN_HEAD_DIM

    def attempts():
        return [("cudnn", SDPBackend.CUDNN_ATTENTION, "enable_gqa"),
                ("cudnn", SDPBackend.CUDNN_ATTENTION, "expand_kv"),
                ("flash", SDPBackend.FLASH_ATTENTION, "enable_gqa"),
                ("flash", SDPBackend.FLASH_ATTENTION, "expand_kv")]

    def make(h, hkv, s, gqa_mode):
        q = torch.randn(b, h, s, d, device=dev, dtype=torch.bfloat16, requires_grad=True)
        kv_h = hkv if gqa_mode == "enable_gqa" else h
        k = torch.randn(b, kv_h, s, d, device=dev, dtype=torch.bfloat16, requires_grad=True)
        v = torch.randn(b, kv_h, s, d, device=dev, dtype=torch.bfloat16, requires_grad=True)
        return q, k, v

    def call(q, k, v, gqa_mode):
        if gqa_mode == "enable_gqa":
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    # correctness once per backend that works, small shape, against float64 math
    for (name, be, gm) in attempts():
        try:
            h, hkv, s = 8, 2, 1024
            q, k, v = make(h, hkv, s, gm)
            with sdpa_kernel(be):
                o = call(q, k, v, gm)
                go = torch.randn_like(o)
                dq, dk, dv = torch.autograd.grad(o, (q, k, v), go)
            qd, kd, vd = (t.detach().double().requires_grad_(True) for t in (q, k, v))
            rep = h // kd.shape[1]
            kk = kd.repeat_interleave(rep, dim=1)
            vv = vd.repeat_interleave(rep, dim=1)
            sc = (qd @ kk.transpose(-1, -2)) / math.sqrt(d)
            mask = torch.tril(torch.ones(s, s, device=dev, dtype=torch.float32)) > 0.5
            sc = sc.masked_fill(~mask, float("-inf"))
            ref = torch.softmax(sc, dim=-1) @ vv
            rdq, rdk, rdv = torch.autograd.grad(ref, (qd, kd, vd), go.double())
            errs = {"out": rel_err(o, ref), "dq": rel_err(dq, rdq), "dk": rel_err(dk, rdk),
                    "dv": rel_err(dv, rdv)}
            ok = all(x < 2e-2 for x in errs.values())
            results["checks"].append({"what": "sdpa causal vs float64 math", "backend": name,
                                      "gqa_mode": gm, "heads": h, "kv_heads": hkv, "seq": s,
                                      "rel_err": errs, "ok": ok})
            log("check sdpa %s/%s %s" % (name, gm, errs))
        except Exception as e:
            results["checks"].append({"what": "sdpa causal vs float64 math", "backend": name,
                                      "gqa_mode": gm, "error": repr(e)[:500]})
            log("check sdpa %s/%s failed: %r" % (name, gm, str(e)[:200]))
    saver.save()

    for s in ATTN_SEQ:
        for (h, hkv) in ATTN_HEADS:
            if time.time() > deadline:
                results["skipped"].append("attention h=%d seq=%d on (time budget)" % (h, s))
                return
            fwd_flop = 4.0 * b * h * s * s * d / 2
            bwd_flop = 2.5 * fwd_flop
            rec = {"batch": b, "heads": h, "kv_heads": hkv, "seq": s, "head_dim": d,
                   "causal": True, "layout": "bhsd contiguous", "fwd_flop": fwd_flop,
                   "bwd_flop": bwd_flop, "failures": []}
            done = False
            for (name, be, gm) in attempts():
                try:
                    q, k, v = make(h, hkv, s, gm)
                    with sdpa_kernel(be):
                        o = call(q, k, v, gm)
                        go = torch.randn_like(o)
                        torch.cuda.synchronize()
                        t_est = fwd_flop / 400e12
                        iters = 20 if t_est > 5e-3 else 30
                        warm = 3 if t_est > 5e-3 else 5

                        def f():  # grad mode, as in training (log-sum-exp kept)
                            call(q, k, v, gm)

                        for _ in range(warm):
                            f()
                        hc = host_cost(f, 2)
                        tf = summarize(time_back_to_back(f, iters, max(1.0, 1.5e3 * hc * iters)))

                        def bw():
                            torch.autograd.grad(o, (q, k, v), go, retain_graph=True)

                        for _ in range(warm):
                            bw()
                        hc = host_cost(bw, 2)
                        tb = summarize(time_back_to_back(bw, iters, max(1.0, 1.5e3 * hc * iters)))
                    rec.update(clocks())
                    rec.update({"backend": name, "gqa_mode": gm, "iters": iters,
                                "fwd_time_s": tf["median_s"], "bwd_time_s": tb["median_s"],
                                "fwd_tflops": fwd_flop / tf["median_s"] / 1e12,
                                "bwd_tflops": bwd_flop / tb["median_s"] / 1e12,
                                "fwd_p90_s": tf["p90_s"], "bwd_p90_s": tb["p90_s"]})
                    done = True
                    del q, k, v, o, go
                    break
                except Exception as e:
                    rec["failures"].append({"backend": name, "gqa_mode": gm, "error": repr(e)[:300]})
                    torch.cuda.empty_cache()
            if not done:
                rec["error"] = "all backends failed"
            out.append(rec)
            if done:
                log("attn h=%2d/%d s=%5d %s/%s fwd %6.1f TFLOP/s (%.3f ms) bwd %6.1f (%.3f ms)" % (
                    h, hkv, s, rec["backend"], rec["gqa_mode"], rec["fwd_tflops"],
                    rec["fwd_time_s"] * 1e3, rec["bwd_tflops"], rec["bwd_time_s"] * 1e3))
            else:
                log("attn h=%d s=%d: all backends failed %s" % (h, s, rec["failures"]))
            torch.cuda.empty_cache()
        saver.save()


# ----------------------------------------------------------------------------
# memory


def bench_memory(dev, results):
    res = results["memory"]
    for gib in (1, 2, 4):
        n = gib * GiB // 2
        src = torch.randn(n, device=dev, dtype=torch.bfloat16)
        dst = torch.empty_like(src)
        dst.copy_(src)
        torch.cuda.synchronize()
        assert torch.equal(dst[:1024], src[:1024]) and torch.equal(dst[-1024:], src[-1024:])
        for _ in range(3):
            dst.copy_(src)
        st = summarize(time_back_to_back(lambda: dst.copy_(src), 20))
        byt = 2 * n * 2
        res["copy"].append({"size_bytes": n * 2, "bytes_moved": byt, "time_s": st["median_s"],
                            "Bps": byt / st["median_s"]})
        log("copy %d GiB: %.0f GB/s (read+write)" % (gib, byt / st["median_s"] / 1e9))
        del src, dst
        torch.cuda.empty_cache()
    for gib in (0.5, 1):
        n = int(gib * GiB) // 2
        x = torch.randn(n, device=dev, dtype=torch.bfloat16)
        y = torch.randn(n, device=dev, dtype=torch.bfloat16)
        z = torch.randn(n, device=dev, dtype=torch.bfloat16)
        o = torch.empty_like(x)
        torch.addcmul(z, x, y, out=o)
        torch.cuda.synchronize()
        e = rel_err(o[:4096], z[:4096].double() + x[:4096].double() * y[:4096].double())
        assert e < 1e-2, e
        for _ in range(3):
            torch.addcmul(z, x, y, out=o)
        st = summarize(time_back_to_back(lambda: torch.addcmul(z, x, y, out=o), 20))
        byt = 4 * n * 2
        res["elementwise"].append({"op": "o = z + x*y (torch.addcmul, bf16, one kernel)",
                                   "numel": n, "bytes_moved": byt, "time_s": st["median_s"],
                                   "Bps": byt / st["median_s"]})
        log("addcmul %.1f GiB/tensor: %.0f GB/s (3 reads + 1 write)" % (gib, byt / st["median_s"] / 1e9))
        del x, y, z, o
        torch.cuda.empty_cache()


def bench_repeat(dev, results):
    """Time a few headline GEMMs again in two clock states, to show the spread:
    'after_idle' = after 1.5 s with the GPU idle (boost clocks, what a short
    benchmark sees); 'after_load' = right after 2 s of continuous 8192^3 GEMMs
    (power-limited clocks, what a sustained training step sees)."""
    pool = Pool(1 << 28, torch.bfloat16, dev)
    heat_a = pool.buf[: 8192 * 8192].view(8192, 8192)
    heat_b = pool.buf[8192 * 8192: 2 * 8192 * 8192].view(8192, 8192)
    for (m, n, k) in [(8192, 8192, 8192), (4096, 4096, 4096), (1024, 1024, 1024), (512, 14336, 4096)]:
        bytes_set = 2 * (m * k + k * n)
        sets = pool.sets([m * k, k * n], max(1, min(64, math.ceil(3 * 50e6 / bytes_set))))
        As = [s[0].view(m, k) for s in sets]
        Bs = [s[1].view(k, n) for s in sets]
        C = torch.empty(m, n, device=dev, dtype=torch.bfloat16)
        for state in ("after_idle", "after_load"):
            torch.cuda.synchronize()
            if state == "after_idle":
                time.sleep(1.5)
            else:
                t0 = time.time()
                while time.time() - t0 < 2.0:
                    for _ in range(10):
                        torch.matmul(heat_a, heat_b)
                    torch.cuda.synchronize()
            ts, R, mode = gemm_time(lambda i: torch.matmul(As[i], Bs[i], out=C), len(sets), 50e6,
                                    bytes_set, 30, 3)
            t = statistics.median(ts)
            rec = {"m": m, "n": n, "k": k, "state": state, "tflops": 2.0 * m * n * k / t / 1e12,
                   "time_s": t, "rotating_sets": R}
            rec.update(clocks())
            results["repeat"].append(rec)
            log("repeat bf16 %dx%dx%d %s: %.1f TFLOP/s %s" % (m, n, k, state, rec["tflops"], clocks()))
    del pool, heat_a, heat_b
    torch.cuda.empty_cache()


def cmd_single(args):
    dev_index = args.device
    torch.cuda.set_device(dev_index)
    dev = torch.device("cuda", dev_index)
    t_start = time.time()
    deadline_total = t_start + args.budget_s
    env = environment(dev_index)
    NVML[0] = Nvml(dev_index)
    l2 = env.get("l2_bytes") or 50 * MiB
    results = {"schema": "foldplan.microbench.raw/1", "environment": env, "checks": [],
               "gemm_bf16": [], "gemm_fp8": {"points": []}, "attention": [],
               "memory": {"copy": [], "elementwise": []}, "repeat": [], "skipped": [],
               "errors": [], "smi": [], "section_seconds": {}}
    saver = Saver(args.out, results)
    log("device %d: %s, %s SMs, L2 %s bytes; torch %s cuda %s cudnn %s" % (
        dev_index, env.get("gpu_name"), env.get("sm_count"), l2, env["torch"],
        env["cuda_runtime"], env["cudnn"]))
    log(env["nvidia_smi_header"])
    saver.save()
    sections = args.sections.split(",")
    # section deadlines: share of the remaining budget
    share = {"mem": 0.05, "gemm": 0.45, "fp8": 0.15, "attn": 0.30, "repeat": 0.05}
    for sec in ["mem", "gemm", "fp8", "attn", "repeat"]:
        if sec not in sections:
            continue
        t0 = time.time()
        deadline = min(deadline_total, t0 + share[sec] * args.budget_s * 1.6)
        results["smi"].append({"before": sec, **smi_snapshot()})
        try:
            if sec == "mem":
                bench_memory(dev, results)
            elif sec == "gemm":
                bench_gemm_bf16(dev, l2, results, saver, deadline)
            elif sec == "fp8":
                bench_gemm_fp8(dev, l2, results, saver, deadline)
            elif sec == "attn":
                bench_attention(dev, results, saver, deadline)
            elif sec == "repeat":
                bench_repeat(dev, results)
        except Exception:
            tb = traceback.format_exc()
            results["errors"].append({"section": sec, "traceback": tb})
            log("section %s failed:\n%s" % (sec, tb))
            torch.cuda.empty_cache()
        results["smi"].append({"after": sec, **smi_snapshot()})
        results["section_seconds"][sec] = time.time() - t0
        log("== section %s took %.1f s; %s" % (sec, time.time() - t0, results["smi"][-1]["query"]))
        saver.save()
    results["total_seconds"] = time.time() - t_start
    saver.save()
    print_summary(results)
    log("wrote %s in %.1f s" % (args.out, results["total_seconds"]))


def print_summary(r):
    log("== summary ==")
    g = {(p["m"], p["n"], p["k"]): p for p in r["gemm_bf16"] if "tflops" in p}
    for sh_ in [(8192, 8192, 8192), (4096, 4096, 4096), (2048, 2048, 2048), (1024, 1024, 1024),
                (512, 14336, 4096), (4096, 14336, 4096), (16384, 6144, 6144), (256, 4096, 4096)]:
        if sh_ in g:
            log("bf16 %s: %.1f TFLOP/s" % ("x".join(map(str, sh_)), g[sh_]["tflops"]))
    f8 = {(p["m"], p["n"], p["k"]): p for p in r["gemm_fp8"].get("points", [])
          if "tflops" in p and not p.get("fast_accum")}
    for sh_ in [(8192, 8192, 8192), (4096, 4096, 4096), (1024, 1024, 1024)]:
        if sh_ in f8:
            log("fp8 %s: %.1f TFLOP/s" % ("x".join(map(str, sh_)), f8[sh_]["tflops"]))
    for a in r["attention"]:
        if a.get("heads") in (32,) and "fwd_tflops" in a:
            log("attn 32/8 s=%d %s: fwd %.1f bwd %.1f TFLOP/s" % (a["seq"], a["backend"],
                                                               a["fwd_tflops"], a["bwd_tflops"]))
    for c in r["memory"]["copy"]:
        log("copy %d B: %.0f GB/s" % (c["size_bytes"], c["Bps"] / 1e9))
    for c in r["memory"]["elementwise"]:
        log("addcmul %d el: %.0f GB/s" % (c["numel"], c["Bps"] / 1e9))
    for c in r["checks"]:
        log("check %s" % json.dumps(c)[:200])
    log("errors: %d, skipped: %s" % (len(r["errors"]), r["skipped"]))


# ----------------------------------------------------------------------------
# NCCL


NCCL_SIZES = [4 * KiB * (4 ** i) for i in range(10)]  # 4 KiB .. 1 GiB
NCCL_OPS = ["all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv",
            "send_recv_bidirectional"]


def busbw_factor(op, n):
    if op == "all_reduce":
        return 2.0 * (n - 1) / n
    if op in ("all_gather", "reduce_scatter", "all_to_all"):
        return (n - 1) / n
    return 1.0


def _nccl_worker(rank, world, port, out_path, iters):
    import torch.distributed as dist
    os.environ["NCCL_NVLS_ENABLE"] = "0"
    torch.cuda.set_device(rank)
    dev = torch.device("cuda", rank)
    dist.init_process_group("nccl", init_method="tcp://127.0.0.1:%d" % port, rank=rank,
                            world_size=world, device_id=dev)
    dt = torch.bfloat16
    es = 2
    results = []
    checks = []
    peer_next = (rank + 1) % world
    peer_prev = (rank - 1) % world

    def p2p(ops):
        ws = dist.batch_isend_irecv(ops)
        for w in ws:
            w.wait()

    for op in NCCL_OPS:
        for S in NCCL_SIZES:
            n_el = S // es
            torch.cuda.synchronize()
            # buffers and the op closure; S counted as nccl-tests does
            if op == "all_reduce":
                buf = torch.ones(n_el, device=dev, dtype=dt)
                f = lambda: dist.all_reduce(buf)  # noqa: E731
                f()
                torch.cuda.synchronize()
                ok = bool((buf == world).all().item())
            elif op == "all_gather":
                inp = torch.full((n_el // world,), float(rank + 1), device=dev, dtype=dt)
                outp = torch.empty(n_el // world * world, device=dev, dtype=dt)
                f = lambda: dist.all_gather_into_tensor(outp, inp)  # noqa: E731
                f()
                torch.cuda.synchronize()
                expect = torch.arange(1, world + 1, device=dev, dtype=torch.float32) \
                    .repeat_interleave(n_el // world).to(dt)
                ok = bool(torch.equal(outp, expect))
            elif op == "reduce_scatter":
                inp = torch.ones(n_el // world * world, device=dev, dtype=dt)
                outp = torch.empty(n_el // world, device=dev, dtype=dt)
                f = lambda: dist.reduce_scatter_tensor(outp, inp)  # noqa: E731
                f()
                torch.cuda.synchronize()
                ok = bool((outp == world).all().item())
            elif op == "all_to_all":
                c = n_el // world
                inp = torch.arange(world, device=dev, dtype=torch.float32).add(rank * world) \
                    .repeat_interleave(c).to(dt)
                outp = torch.empty(c * world, device=dev, dtype=dt)
                f = lambda: dist.all_to_all_single(outp, inp)  # noqa: E731
                f()
                torch.cuda.synchronize()
                expect = (torch.arange(world, device=dev, dtype=torch.float32) * world + rank) \
                    .repeat_interleave(c).to(dt)
                ok = bool(torch.equal(outp, expect))
            elif op == "send_recv":
                sbuf = torch.full((n_el,), float(rank + 1), device=dev, dtype=dt)
                rbuf = torch.zeros(n_el, device=dev, dtype=dt)
                if rank == 0:
                    ops = [dist.P2POp(dist.isend, sbuf, 1)]
                elif rank == 1:
                    ops = [dist.P2POp(dist.irecv, rbuf, 0)]
                else:
                    ops = []
                f = (lambda: p2p(ops)) if ops else (lambda: None)
                f()
                torch.cuda.synchronize()
                ok = bool((rbuf == 1).all().item()) if rank == 1 else True
            else:  # send_recv_bidirectional: send to next, receive from previous at once
                sbuf = torch.full((n_el,), float(rank + 1), device=dev, dtype=dt)
                rbuf = torch.zeros(n_el, device=dev, dtype=dt)
                ops = [dist.P2POp(dist.isend, sbuf, peer_next), dist.P2POp(dist.irecv, rbuf, peer_prev)]
                f = lambda: p2p(ops)  # noqa: E731
                f()
                torch.cuda.synchronize()
                ok = bool((rbuf == peer_prev + 1).all().item())
            okt = torch.tensor([1 if ok else 0], device=dev, dtype=torch.int32)
            dist.all_reduce(okt, op=dist.ReduceOp.MIN)
            ok_all = bool(okt.item() == 1)
            if S == NCCL_SIZES[0] or S == NCCL_SIZES[-1] or not ok_all:
                checks.append({"op": op, "bytes": S, "ok": ok_all})
            for _ in range(5):
                f()
            torch.cuda.synchronize()
            dist.barrier()
            torch.cuda.synchronize()
            hc = torch.tensor([host_cost(f, 2)], device=dev, dtype=torch.float64)
            dist.all_reduce(hc, op=dist.ReduceOp.MAX)  # same spin on every rank
            dist.barrier()
            torch.cuda.synchronize()
            ts = time_back_to_back(f, iters, spin_ms=max(2.0, 1.5e3 * hc.item() * iters))
            med = statistics.median(ts)
            t = torch.tensor([med, min(ts)], device=dev, dtype=torch.float64)
            tmax = t.clone()
            dist.all_reduce(tmax, op=dist.ReduceOp.MAX)
            t_med = tmax[0].item()
            algbw = S / t_med
            rec = {"op": op, "bytes": S, "dtype": "bfloat16", "time_s": t_med,
                   "time_s_rank0": med if rank == 0 else None,
                   "algbw_Bps": algbw, "busbw_Bps": algbw * busbw_factor(op, world),
                   "busbw_factor": busbw_factor(op, world), "iters": iters, "ok": ok_all}
            if op == "send_recv_bidirectional":
                rec["aggregate_Bps"] = 2 * algbw if world == 2 else world * algbw
            results.append(rec)
            if rank == 0:
                log("%-24s %10d B  %9.1f us  algbw %7.1f GB/s  busbw %7.1f GB/s  %s" % (
                    op, S, t_med * 1e6, algbw / 1e9, rec["busbw_Bps"] / 1e9, "ok" if ok_all else "WRONG"))
            del f
            torch.cuda.empty_cache()
            if rank == 0:
                _write_nccl(out_path, world, results, checks, partial=True)
    if rank == 0:
        _write_nccl(out_path, world, results, checks, partial=False)
    dist.barrier()
    dist.destroy_process_group()


_NCCL_ENV = {}


def _write_nccl(path, world, results, checks, partial):
    doc = dict(_NCCL_ENV)
    doc.update({"world_size": world, "partial": partial, "checks": checks, "results": results,
                "size_convention": ("bytes = nccl-tests 'size': all_reduce buffer; all_gather output "
                                    "(world x input); reduce_scatter input (world x output); "
                                    "all_to_all send buffer per rank; send_recv buffer. "
                                    "time_s = max over ranks of the median per-call device time."),
                "busbw_convention": ("algbw = bytes/time_s; busbw = algbw x factor: all_reduce "
                                     "2(n-1)/n, all_gather/reduce_scatter/all_to_all (n-1)/n, "
                                     "send_recv 1 (one direction, rank0->rank1 only), "
                                     "send_recv_bidirectional 1 per direction (every rank sends to "
                                     "next and receives from previous at once; aggregate_Bps = "
                                     "n x algbw)")})
    tmp = path + ".partial"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, path)


def cmd_nccl(args):
    import torch.multiprocessing as mp
    world = args.world or torch.cuda.device_count()
    if world < 2:
        raise SystemExit("nccl needs >= 2 GPUs, found %d" % world)
    env = environment(0)
    env["gpu_names"] = [torch.cuda.get_device_name(i) for i in range(world)]
    env["topology"] = sh("nvidia-smi topo -m")
    env["nvlink_status"] = sh("nvidia-smi nvlink -s -i 0")[:4000]
    _NCCL_ENV.clear()
    _NCCL_ENV.update({"schema": "foldplan.microbench.nccl.raw/1", "environment": env})
    log(env["topology"])
    t0 = time.time()
    _write_nccl(args.out, world, [], [], partial=True)
    # spawned children re-import this module, so _NCCL_ENV would be empty there: pass via file
    with open(args.out + ".env.json", "w") as f:
        json.dump(_NCCL_ENV, f)
    mp.spawn(_nccl_entry, args=(world, args.port, args.out, args.iters), nprocs=world, join=True)
    os.remove(args.out + ".env.json")
    with open(args.out) as f:
        doc = json.load(f)
    doc["total_seconds"] = time.time() - t0
    doc["environment"]["nvidia_smi_end"] = smi_snapshot()
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    log("wrote %s in %.1f s" % (args.out, doc["total_seconds"]))


def _nccl_entry(rank, world, port, out_path, iters):
    with open(out_path + ".env.json") as f:
        _NCCL_ENV.update(json.load(f))
    _nccl_worker(rank, world, port, out_path, iters)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("single")
    a.add_argument("--out", required=True)
    a.add_argument("--device", type=int, default=0)
    a.add_argument("--sections", default="mem,gemm,fp8,attn,repeat")
    a.add_argument("--budget-s", type=float, default=300.0,
                   help="soft wall-clock budget; sections stop early past it")
    b = sub.add_parser("nccl")
    b.add_argument("--out", required=True)
    b.add_argument("--world", type=int, default=0)
    b.add_argument("--port", type=int, default=29517)
    b.add_argument("--iters", type=int, default=30)
    args = ap.parse_args()
    if args.cmd == "single":
        cmd_single(args)
    else:
        cmd_nccl(args)


if __name__ == "__main__":
    main()
