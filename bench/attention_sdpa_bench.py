"""PyTorch SDPA (FlashAttention-2 and cuDNN backends) on the shapes attention_gpu_bench times, so
its table has same-machine neighbours. Usage: python3 bench/attention_sdpa_bench.py [seq ...]"""
import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F


def median_ms(fn, warmup=3, timed=10):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(timed):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return sorted(times)[len(times) // 2]


def main():
    seqs = [int(s) for s in sys.argv[1:]] or [4096]
    print("| backend | heads/kv | seq | dim | fwd TFLOP/s | bwd TFLOP/s |\n|---|---|---|---|---|---|")
    for seq in seqs:
        for heads, kv_heads, dim in [(32, 8, 128), (32, 8, 64)]:
            # BHSD for SDPA; kv heads repeated (what the FA2 backend needs for GQA).
            q = torch.randn(1, heads, seq, dim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
            k = torch.randn(1, kv_heads, seq, dim, device="cuda", dtype=torch.bfloat16)
            v = torch.randn(1, kv_heads, seq, dim, device="cuda", dtype=torch.bfloat16)
            k = k.repeat_interleave(heads // kv_heads, 1).requires_grad_()
            v = v.repeat_interleave(heads // kv_heads, 1).requires_grad_()
            flops = 4 * heads * seq * seq * dim / 2
            for name, backend in [("FA2", SDPBackend.FLASH_ATTENTION), ("cuDNN", SDPBackend.CUDNN_ATTENTION)]:
                try:
                    with sdpa_kernel(backend):
                        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                        d_o = torch.randn_like(o)
                        fwd = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
                        both = median_ms(lambda: torch.autograd.grad(
                            F.scaled_dot_product_attention(q, k, v, is_causal=True), (q, k, v), d_o))
                    bwd = both - fwd
                    print(f"| {name} | {heads}/{kv_heads} | {seq} | {dim} | {flops / fwd / 1e9:.0f} | "
                          f"{2.5 * flops / bwd / 1e9:.0f} |", flush=True)
                except RuntimeError as error:
                    print(f"| {name} | {heads}/{kv_heads} | {seq} | {dim} | failed: {str(error)[:60]} | |")


if __name__ == "__main__":
    main()
