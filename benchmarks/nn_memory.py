"""Memory a training step keeps for the backward: relulab.nn with lean=True against torch.nn, as ratios.

On CPU the exact, deterministic measure is the set of tensors autograd saves during the forward pass (recorded with
torch.autograd.graph.saved_tensors_hooks; each storage counted once, parameters excluded): that is what stays
alive from the end of the forward to the backward, where a training step peaks. Reported per model and member:
the bytes saved by the whole step and by the activation modules alone, torch.nn vs relulab lean.

Models (the activation's saved tensor is not shared with the next layer, so the lean option can save it):
  mlp-dropout:  3 x (Linear -> activation -> Dropout) -> Linear, batch 256, width 1024
  cnn-bn:       2 x (Conv3x3 -> activation -> BatchNorm) -> pool -> Linear, batch 32, 32x32 images, 32/64 channels
and, for contrast, a model where torch's relu already shares its saved output with the next layer:
  mlp-shared:   3 x (Linear -> activation) -> Linear

Members are names of relulab.nn.MODULES, plus two variants: "rrelu:eval" (the activation in evaluation mode, its
deterministic mean slope, in an otherwise training model) and "prelu:frozen" (slopes without gradient).

    python benchmarks/nn_memory.py
    python benchmarks/nn_memory.py --models cnn-bn --members relu leaky_relu prelu:frozen
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch import nn

import relulab.nn as rnn


class SquaredReLUReference(nn.Module):
    def forward(self, x):
        return torch.relu(x).square()


def torch_module(name: str) -> nn.Module:
    cls = rnn.MODULES[name].torch_counterpart
    return SquaredReLUReference() if cls is None else cls()


def mlp_dropout(act) -> nn.Module:
    layers: list[nn.Module] = []
    width_in = 256
    for _ in range(3):
        layers += [nn.Linear(width_in, 1024), act(1024), nn.Dropout(0.1)]
        width_in = 1024
    return nn.Sequential(*layers, nn.Linear(1024, 10))


def mlp_shared(act) -> nn.Module:
    layers: list[nn.Module] = []
    width_in = 256
    for _ in range(3):
        layers += [nn.Linear(width_in, 1024), act(1024)]
        width_in = 1024
    return nn.Sequential(*layers, nn.Linear(1024, 10))


def cnn_bn(act) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), act(32), nn.BatchNorm2d(32),
        nn.Conv2d(32, 64, 3, padding=1), act(64), nn.BatchNorm2d(64),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, 10),
    )


MODELS = {
    "mlp-dropout": (mlp_dropout, (256, 256)),
    "cnn-bn": (cnn_bn, (32, 3, 32, 32)),
    "mlp-shared": (mlp_shared, (256, 256)),
}


def factory(name: str, variant: str):
    """act(channels) -> module; PReLU gets one slope per channel, as in real models."""
    def build(channels: int) -> nn.Module:
        params = {"num_parameters": channels} if name == "prelu" else {}
        if variant == "torch":
            return nn.PReLU(channels) if name == "prelu" else torch_module(name)
        return rnn.make(name, lean=variant == "lean", **params)
    return build


def saved_bytes(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(bytes saved by the whole forward, bytes saved inside activation modules), each storage counted once."""
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    everything: dict[int, int] = {}
    in_activation: dict[int, int] = {}
    inside = [False]

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            everything[storage.data_ptr()] = storage.nbytes()
            if inside[0]:
                in_activation[storage.data_ptr()] = storage.nbytes()
        return tensor

    handles = []
    for module in model.modules():
        if rnn.activation_name(module) is not None or isinstance(module, SquaredReLUReference):
            handles.append(module.register_forward_pre_hook(lambda *_: inside.__setitem__(0, True)))
            handles.append(module.register_forward_hook(lambda *_: inside.__setitem__(0, False)))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = model(x).square().mean()
        loss.backward()
    finally:
        for handle in handles:
            handle.remove()
    return sum(everything.values()), sum(in_activation.values())


def prepare(model: nn.Module, variant: str) -> nn.Module:
    """Apply a member variant ("eval", "frozen") to the activation modules of a training model."""
    for module in model.modules():
        if rnn.activation_name(module) is None:
            continue
        if variant == "eval":
            module.eval()
        if variant == "frozen":
            for parameter in module.parameters():
                parameter.requires_grad_(False)
    return model


DEFAULT_MEMBERS = list(rnn.MODULES)
DEFAULT_MEMBERS[DEFAULT_MEMBERS.index("rrelu") + 1:1] = ["rrelu:eval"]
DEFAULT_MEMBERS[DEFAULT_MEMBERS.index("prelu") + 1:1] = ["prelu:frozen"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--members", nargs="*", default=DEFAULT_MEMBERS)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    print("bytes autograd saves for the backward in one training step (parameters excluded); "
          "ratio = relulab lean / torch.nn")
    print(f"{'model':12} {'member':13} {'torch.nn MB':>11} {'lean MB':>9} {'step ratio':>10} "
          f"{'act. torch MB':>13} {'act. lean MB':>12} {'act. ratio':>10}")
    for model_name in args.models:
        build, shape = MODELS[model_name]
        x = torch.randn(shape)
        for label in args.members:
            name, _, variant = label.partition(":")
            torch.manual_seed(0)
            reference = prepare(build(factory(name, "torch")).train(), variant)
            lean = prepare(build(factory(name, "lean")).train(), variant)
            total_torch, act_torch = saved_bytes(reference, x)
            total_lean, act_lean = saved_bytes(lean, x)
            act_ratio = act_lean / act_torch if act_torch else float("nan")
            print(f"{model_name:12} {label:13} {total_torch / 2**20:11.2f} {total_lean / 2**20:9.2f} "
                  f"{total_lean / total_torch:10.3f} {act_torch / 2**20:13.2f} {act_lean / 2**20:12.2f} "
                  f"{act_ratio:10.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
