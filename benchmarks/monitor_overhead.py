"""Overhead of relulab's Monitor on a training step, statistics collected on every batch.

Cases: the case-study CNN on digits-sized input (1x8x8), the same CNN on 28x28 input, and a transformer block
(pre-norm attention + GELU MLP, (N, T, F) activations). Plain steps and monitored steps are timed in interleaved
blocks in one process, so machine noise hits both alike; the script prints the median ratio monitored / plain per
case. The clock is the process's CPU time with one torch thread (``--clock wall`` for wall time): on a shared
machine, other processes then cost neither side anything.

    python benchmarks/monitor_overhead.py [--cases digits mnist transformer] [--blocks 100] [--steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from relulab import Monitor
from relulab.lab.models import build_model


class TransformerBlock(nn.Module):
    """Pre-norm self-attention and a GELU MLP with residual adds: the block of GPT-2, ViT and friends."""

    def __init__(self, width: int = 64, heads: int = 4, hidden: int = 256, classes: int = 10) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.fc2(self.act(self.fc1(self.norm2(x))))
        return self.head(x.mean(dim=1))


def build(case: str, batch: int):
    torch.manual_seed(0)
    if case == "transformer":
        model = TransformerBlock()
        x = torch.randn(batch // 4, 32, 64)  # (N, T, F): 32 tokens of width 64
    else:
        shape = (1, 8, 8) if case == "digits" else (1, 28, 28)
        model = build_model("cnn", shape, 10, activation="relu")
        x = torch.randn(batch, *shape)
    y = torch.randint(0, 10, (x.shape[0],))
    return model, x, y


def measure(case: str, args) -> dict:
    model, x, y = build(case, args.batch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    def block() -> float:
        start = clock()
        for _ in range(args.steps):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            optimizer.step()
        return (clock() - start) / args.steps

    monitor = Monitor(model, every=args.every, functional=args.functional)
    for _ in range(3):  # warm up both paths (and numba's compile cache)
        block()
        with monitor:
            block()
    ratios, plain_times, monitored_times = [], [], []
    for i in range(args.blocks):
        if i % 2:  # alternate which goes first
            plain = block()
            with monitor:
                monitored = block()
        else:
            with monitor:
                monitored = block()
            plain = block()
        plain_times.append(plain)
        monitored_times.append(monitored)
        ratios.append(monitored / plain)
    quartiles = statistics.quantiles(ratios, n=4)
    return {"case": case, "layers": len(monitor.report().layers), "plain_ms": 1e3 * statistics.median(plain_times),
            "monitored_ms": 1e3 * statistics.median(monitored_times), "ratio": statistics.median(ratios),
            "q1": quartiles[0], "q3": quartiles[2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["digits", "mnist", "transformer"],
                        choices=["digits", "mnist", "transformer"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--blocks", type=int, default=100, help="interleaved blocks of each kind")
    parser.add_argument("--steps", type=int, default=10, help="training steps per block")
    parser.add_argument("--every", type=int, default=1, help="Monitor(every=...)")
    parser.add_argument("--functional", action="store_true", help="Monitor(functional=True)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"monitor overhead: {args.threads} thread(s), {args.clock} clock, every={args.every}, "
          f"functional={args.functional}, {args.blocks} interleaved blocks of {args.steps} steps")
    for case in args.cases:
        r = measure(case, args)
        print(f"{r['case']:<12} {r['layers']} sites  plain {r['plain_ms']:.3f} ms  monitored {r['monitored_ms']:.3f} ms"
              f"  ratio median {r['ratio']:.3f} (quartiles {r['q1']:.3f}-{r['q3']:.3f})", flush=True)


if __name__ == "__main__":
    main()
