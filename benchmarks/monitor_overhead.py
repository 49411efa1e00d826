"""Overhead of relulab's Monitor on a training step of the case-study CNN (digits-sized input).

Plain steps and monitored steps are timed in interleaved blocks in one process, so machine noise hits both
alike; the script prints the median ratio monitored / plain (goal: <= 1.03 with statistics every batch).

    python benchmarks/monitor_overhead.py [--batch 128] [--blocks 30] [--steps 20] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from relulab import Monitor
from relulab.lab.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--blocks", type=int, default=30, help="interleaved blocks of each kind")
    parser.add_argument("--steps", type=int, default=20, help="training steps per block")
    parser.add_argument("--every", type=int, default=1, help="Monitor(every=...)")
    parser.add_argument("--shape", type=int, nargs="+", default=[1, 8, 8], help="input shape (C H W)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = tuple(args.shape)
    model = build_model("cnn", shape, 10, activation="relu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(args.batch, *shape)
    y = torch.randint(0, 10, (args.batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def block() -> float:
        start = time.perf_counter()
        for _ in range(args.steps):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            optimizer.step()
        return (time.perf_counter() - start) / args.steps

    monitor = Monitor(model, every=args.every)
    for _ in range(3):  # warm up both paths
        block()
        with monitor:
            block()
    ratios, plain_times, monitored_times = [], [], []
    for _ in range(args.blocks):
        plain = block()
        with monitor:
            monitored = block()
        plain_times.append(plain)
        monitored_times.append(monitored)
        ratios.append(monitored / plain)
    report = monitor.report()
    print(f"case-study CNN {shape}, batch {args.batch}, {torch.get_num_threads()} threads, "
          f"{len(report.layers)} monitored layers, every={args.every}")
    print(f"plain step     median {1e3 * statistics.median(plain_times):.3f} ms")
    print(f"monitored step median {1e3 * statistics.median(monitored_times):.3f} ms")
    print(f"ratio monitored/plain: median {statistics.median(ratios):.3f} "
          f"(quartiles {statistics.quantiles(ratios, n=4)[0]:.3f}-{statistics.quantiles(ratios, n=4)[2]:.3f})")


if __name__ == "__main__":
    main()
