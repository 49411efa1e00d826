"""Training-step time of relulab.nn modules against their torch.nn counterparts, as ratios measured in one run.

For every member, two copies of the same small model (identical weights) differ only in the activation module:
torch.nn's and relulab.nn's. One training step is zero_grad + forward + cross-entropy + backward + SGD step. The
two are timed in alternation (blocks of ``--steps`` steps, ``--repeats`` times, so drift and background load hit
both alike) and the median of the per-block ratios relulab / torch is printed, with its interquartile range.
``--lean`` also times relulab's lean variant. A ratio of 1.00 means equal speed; the target is <= 1.05.

    python benchmarks/nn_speed.py                 # MLP and CNN, every member
    python benchmarks/nn_speed.py --model mlp --members relu gelu --repeats 60
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

import relulab.nn as rnn


class SquaredReLUReference(nn.Module):
    """torch has no squared relu module; the plain composition is the reference."""

    def forward(self, x):
        return torch.relu(x).square()


def torch_module(name: str, **params) -> nn.Module:
    cls = rnn.MODULES[name].torch_counterpart
    return SquaredReLUReference() if cls is None else cls(**params)


def mlp(act) -> nn.Module:
    return nn.Sequential(nn.Linear(256, 512), act(), nn.Linear(512, 512), act(), nn.Linear(512, 10))


def cnn(act) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), act(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), act(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 8 * 8, 128), act(), nn.Linear(128, 10),
    )


MODELS = {
    "mlp": (mlp, lambda g: torch.randn(256, 256, generator=g)),
    "cnn": (cnn, lambda g: torch.randn(32, 3, 32, 32, generator=g)),
}


def build(model_name: str, name: str, variant: str) -> nn.Module:
    factory, _ = MODELS[model_name]
    if variant == "torch":
        return factory(lambda: torch_module(name))
    return factory(lambda: rnn.make(name, lean=variant == "lean"))


def step_fn(model: nn.Module, x: torch.Tensor, target: torch.Tensor):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        optimizer.step()

    return step


def measure(model_name: str, name: str, variants: list[str], steps: int, repeats: int,
            clock=time.perf_counter) -> dict[str, list[float]]:
    generator = torch.Generator().manual_seed(0)
    _, make_input = MODELS[model_name]
    x = make_input(generator)
    target = torch.randint(0, 10, (x.shape[0],), generator=generator)
    torch.manual_seed(0)
    reference = build(model_name, name, "torch")
    models = {"torch": reference}
    for variant in variants[1:]:
        model = build(model_name, name, variant)
        model.load_state_dict(copy.deepcopy(reference.state_dict()), strict=False)
        models[variant] = model
    steps_by_variant = {v: step_fn(m, x, target) for v, m in models.items()}
    for step in steps_by_variant.values():  # warm-up: allocator, thread pool, first-call dispatch
        for _ in range(3):
            step()
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(repeats):
        for variant in variants:
            step = steps_by_variant[variant]
            start = clock()
            for _ in range(steps):
                step()
            times[variant].append(clock() - start)
    return times


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=[*MODELS, "all"], default="all")
    parser.add_argument("--members", nargs="*", default=list(rnn.MODULES))
    parser.add_argument("--steps", type=int, default=5, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=30, help="alternating blocks per variant")
    parser.add_argument("--lean", action="store_true", help="also time lean=True")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: this thread's CPU time (implies --threads 1); robust on a shared, loaded machine")
    args = parser.parse_args(argv)
    if args.clock == "cpu":
        args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    variants = ["torch", "relulab"] + (["lean"] if args.lean else [])
    models = list(MODELS) if args.model == "all" else [args.model]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.clock} clock; {args.repeats} "
          f"alternating blocks of {args.steps} training steps; ratio = median over blocks of relulab / torch.nn (IQR)")
    header = f"{'model':5} {'member':13} {'torch.nn ms/step':>16} {'relulab / torch':>22}"
    if args.lean:
        header += f" {'lean / torch':>22}"
    print(header)
    worst = 0.0
    for model_name in models:
        for name in args.members:
            name = rnn.make(name).activation.name if name not in rnn.MODULES else name
            times = measure(model_name, name, variants, args.steps, args.repeats, clock)
            base = times["torch"]
            line = f"{model_name:5} {name:13} {statistics.median(base) / args.steps * 1e3:16.3f}"
            for variant in variants[1:]:
                ratios = [t / b for t, b in zip(times[variant], base)]
                low, mid, high = quartiles(ratios)
                line += f" {mid:10.3f} [{low:.3f}, {high:.3f}]"
                if variant == "relulab":
                    worst = max(worst, mid)
            print(line, flush=True)
    print(f"worst median ratio relulab / torch.nn: {worst:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
