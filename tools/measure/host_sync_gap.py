"""The GPU idle time a host synchronisation costs in PyTorch eager mode: Megatron's alltoall
dispatcher copies token counts to the CPU once per MoE layer forward (`.cpu()` before the
all-to-all-v), so the GPU drains its queue and waits while the CPU copies, returns to Python and
launches the next kernel. Measured as the time of [GEMM; tiny reduction; .cpu(); GEMM] minus the
same chain without the synchronisation, over many repetitions.

Usage: python3 host_sync_gap.py --out FILE.json
"""
import argparse
import json
import statistics
import time

import torch


def chain(a, b, counts, sync, repeats):
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        c = a @ b
        total = counts.sum(dim=0)  # tokens per expert, as the dispatcher computes them
        if sync:
            total.cpu()  # the dispatcher's device-to-host copy of the splits
        c = c @ b
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    counts = torch.randint(0, 2, (4096, 64), device="cuda", dtype=torch.int32)
    for _ in range(3):
        chain(a, b, counts, True, 20)
        chain(a, b, counts, False, 20)
    gaps = []
    for _ in range(15):
        with_sync = chain(a, b, counts, True, 200)
        without = chain(a, b, counts, False, 200)
        gaps.append(with_sync - without)
    result = {
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "host_sync_gap_s_median": statistics.median(gaps),
        "host_sync_gap_s_min": min(gaps),
        "host_sync_gap_s_max": max(gaps),
        "method": "time of [4096^3 GEMM; sum over [4096,64]; .cpu(); GEMM] minus the same chain "
                  "without .cpu(), 200 repetitions, median of 15",
    }
    print(json.dumps(result, indent=1))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
