"""The SM clock a GPU holds while it trains: runs transformer layers (attention + SwiGLU MLP,
forward and backward, bf16) back to back for a while and samples the SM clock and board power
through NVML. The calibration normalises every measured GEMM and attention point to this clock,
because points of a sweep run at whatever clock the board happened to be at (short kernels at full
boost, long ones at the power limit), while a training step runs all of them at one clock.

Usage: python3 step_clock.py --out FILE.json [--seconds 30]
"""
import argparse
import json
import statistics
import threading
import time

import torch
import torch.nn.functional as F

try:
    import pynvml
except ImportError:  # nvidia-ml-py provides it
    pynvml = None


def layer(x, w_qkv, w_out, w_fc1, w_fc2, heads, kv_heads, head_dim):
    b, s, h = x.shape
    qkv = x @ w_qkv
    q, k, v = qkv.split([heads * head_dim, kv_heads * head_dim, kv_heads * head_dim], dim=-1)
    q = q.view(b, s, heads, head_dim).transpose(1, 2)
    k = k.view(b, s, kv_heads, head_dim).transpose(1, 2)
    v = v.view(b, s, kv_heads, head_dim).transpose(1, 2)
    a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    x = x + a.transpose(1, 2).reshape(b, s, heads * head_dim) @ w_out
    gate, up = (F.rms_norm(x, (h,)) @ w_fc1).chunk(2, dim=-1)
    return x + (F.silu(gate) * up) @ w_fc2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()

    # Mixtral-8x22B-shaped layer on one GPU (TP2 slice of attention, one expert's MLP).
    h, heads, kv_heads, head_dim, ffn, seq = 6144, 24, 4, 128, 16384, 4096
    dev = torch.device("cuda")
    dt = torch.bfloat16
    params = [torch.randn(*shape, device=dev, dtype=dt, requires_grad=True) * 0.01
              for shape in [(h, (heads + 2 * kv_heads) * head_dim), (heads * head_dim, h),
                            (h, 2 * ffn), (ffn, h)]]
    params = [p.detach().requires_grad_() for p in params]
    x = torch.randn(1, seq, h, device=dev, dtype=dt, requires_grad=True)

    samples = []
    stop = threading.Event()

    def sample():
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        while not stop.is_set():
            samples.append((time.time(),
                            pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
                            pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    start = time.time()
    sampler.start()
    layers = 0
    while time.time() - start < args.seconds:
        y = layer(x, *params, heads, kv_heads, head_dim)
        y.float().pow(2).mean().backward()
        layers += 1
        if layers % 8 == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    stop.set()
    sampler.join()
    # Skip the first 5 s: the board starts cool and at full boost.
    steady = [s for s in samples if s[0] - start > 5]
    result = {
        "gpu": torch.cuda.get_device_name(),
        "seconds": args.seconds,
        "layers_run": layers,
        "workload": "Mixtral-8x22B-shaped layer slice (h 6144, 24/4 heads, ffn 16384, seq 4096), "
                    "fwd+bwd, bf16, SDPA (cuDNN/flash as PyTorch picks), back to back",
        "sm_mhz_median": statistics.median(s[1] for s in steady),
        "sm_mhz_p10": sorted(s[1] for s in steady)[len(steady) // 10],
        "sm_mhz_p90": sorted(s[1] for s in steady)[9 * len(steady) // 10],
        "power_w_median": statistics.median(s[2] for s in steady),
        "samples": len(steady),
    }
    print(json.dumps(result, indent=1))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
