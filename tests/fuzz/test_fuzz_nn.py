"""Fuzz relulab.nn's public entry points: the modules (through make), the functional API, gain and swap.

A call returns the family member's value and derivative (float64 NumPy, itself checked against mpmath) at the
tensor's values, to the accuracy of the tensor's dtype, or raises TypeError/ValueError naming the argument.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import relulab as rl  # noqa: E402
import relulab.nn as rnn  # noqa: E402
import relulab.nn.functional as RF  # noqa: E402
from relulab.nn._ops import OPS  # noqa: E402

from .conftest import FUZZ  # noqa: E402
from .test_fuzz_family import SPECIAL, param_values  # noqa: E402

NAMES = sorted(OPS)
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
FINITE = st.one_of(st.floats(-8, 8), st.floats(-1e4, 1e4), st.sampled_from(SPECIAL))


@st.composite
def tensors(draw):
    kind = draw(st.sampled_from(["float"] * 8 + ["int", "bool", "numpy", "list", "complex"]))
    shape = draw(st.sampled_from([(), (1,), (6,), (2, 3), (2, 3, 2), (0, 3)]))
    size = int(np.prod(shape))
    values = np.array(draw(st.lists(FINITE, min_size=size, max_size=size)), dtype=np.float64).reshape(shape)
    if kind == "float":
        return torch.tensor(values).to(draw(st.sampled_from(DTYPES)))
    if kind == "int":
        return torch.tensor(np.nan_to_num(values).clip(-100, 100).astype(np.int64))
    if kind == "bool":
        return torch.tensor(values > 0)
    if kind == "complex":
        return torch.tensor(values).to(torch.complex64)
    return values if kind == "numpy" else values.tolist()


def _check_named(error: Exception, candidates) -> None:
    names = "|".join(re.escape(c) for c in candidates)
    assert re.search(rf"\b({names})\b", str(error)), f"message names no argument: {error}"


TOL = {torch.float64: (1e-10, 1e-12), torch.float32: (2e-5, 2e-6), torch.float16: (2e-3, 1e-3),
       torch.bfloat16: (1.6e-2, 8e-3)}


def _compare(got: torch.Tensor, want: np.ndarray, dtype, scale_abs: float, what: str) -> None:
    rtol, atol = TOL[dtype]
    with np.errstate(over="ignore"):
        want_t = torch.tensor(np.asarray(want, dtype=np.float64)).to(dtype).double()
    got = got.detach().double()
    same_special = (torch.isnan(got) & torch.isnan(want_t)) | (got == want_t)
    close = (got - want_t).abs() <= rtol * want_t.abs() + atol * scale_abs + 4 * torch.finfo(dtype).tiny
    bad = ~(same_special | close)
    assert not bool(bad.any()), f"{what}: got {got[bad][:3].tolist()}, want {want_t[bad][:3].tolist()}"


@FUZZ
@given(name=st.sampled_from(NAMES), data=st.data(), x=tensors(), via=st.sampled_from(["module", "functional"]),
       backward=st.booleans())
def test_module_and_functional_value_or_named_error(name, data, x, via, backward):
    member = rl.get(name)
    params = {p.name: data.draw(param_values(p), label=p.name) for p in member.params
              if p.name in OPS[name].params and data.draw(st.booleans())}
    options = {}
    if OPS[name].inplace and data.draw(st.booleans()):
        options["inplace"] = data.draw(st.sampled_from([True, False, 1, "yes"]))
    if data.draw(st.booleans()):
        options["lean"] = data.draw(st.sampled_from([True, False, None]))
    if member.has_kink_at_zero and name != "prelu" and data.draw(st.booleans()):
        options["at_zero"] = data.draw(st.one_of(st.floats(-0.5, 1.5), st.sampled_from([math.nan, 10**400, "0"])))
    candidates = ["input", "x", "inplace", "lean", "at_zero", "weight", "training", "init", "num_parameters",
                  "unexpected keyword argument", "takes", "got an unexpected", "missing"]
    candidates += [p.name for p in member.params]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            if via == "module" or name == "prelu":
                module = rnn.make(name, **params, **options).eval()
                if isinstance(x, torch.Tensor) and x.is_floating_point():
                    module = module.to(x.dtype)
                fn = module
            else:
                fn = lambda t: getattr(RF, name)(t, **params, **options)
            leaf = x.clone().requires_grad_(True) if isinstance(x, torch.Tensor) and x.is_floating_point() else x
            y = fn(leaf * 1 if isinstance(leaf, torch.Tensor) and leaf.requires_grad else leaf)
            if backward and isinstance(leaf, torch.Tensor) and leaf.requires_grad:
                y.backward(torch.ones_like(y))
    except (TypeError, ValueError) as error:
        _check_named(error, candidates)
        event(f"refused: {type(error).__name__}")
        return
    event("value checked")
    assert isinstance(x, torch.Tensor) and x.is_floating_point(), f"accepted {type(x).__name__}"
    assert y.dtype == x.dtype and y.shape == x.shape
    family_params = {k: v for k, v in params.items()}
    args = ()
    if name == "prelu":
        args = (module.weight.detach().double().numpy(),)
        if x.dim() < 2:
            args = (module.weight.detach().double().numpy().reshape(-1)[:1],)
    x64 = x.double().numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        want = member(x64, *args, **family_params)
    scale = max([1.0] + [abs(float(v)) for v in family_params.values() if isinstance(v, (int, float))
                         and not isinstance(v, bool) and math.isfinite(float(v))])
    # torch's own gelu kernel, the native path in float32/float64, forms 1 + erf(x / sqrt 2), which cancels for
    # x << 0: its error there is absolute (about |x| eps), not relative (docs/nn.md).
    absolute = 1.0 if name in ("sigmoid", "tanh", "gelu") else 0.0
    if name == "celu":  # torch's kernel forms x / alpha, subnormal for |x| < alpha * tiny (docs/nn.md)
        absolute = float(family_params.get("alpha", 1.0)) * torch.finfo(x.dtype).tiny / TOL[x.dtype][1]
    _compare(y, want, x.dtype, absolute, f"{name} value")
    if backward:
        at_zero = options.get("at_zero")
        with np.errstate(over="ignore", invalid="ignore"):
            grad = member.grad(x64, *args, **family_params, **({"at_zero": at_zero} if at_zero is not None else {}))
        # f'(NaN): torch's branch value, documented in docs/nn.md ("relulab.nn keeps torch's value"); not judged.
        keep = ~torch.isnan(x)
        # Derivatives of the x * A(x) members cancel near their roots: compare on the scale of their terms.
        _compare(leaf.grad[keep], np.asarray(grad)[keep.numpy()], x.dtype, scale, f"{name} derivative")


def _gain_reference(name: str, params: dict) -> float:
    """1 / sqrt(E[f(z)^2]) by the trapezoid rule on a fine grid: independent of relulab.nn.init's quadrature."""
    if name == "rrelu":  # training slopes a ~ U(l, u): E[f^2] = 1/2 + E[a^2] / 2
        lower, upper = params.get("lower", 1 / 8), params.get("upper", 1 / 3)
        return math.sqrt(2.0 / (1.0 + (lower * lower + lower * upper + upper * upper) / 3.0))
    if name in ("prelu", "leaky_relu"):  # E[f^2] = (1 + s^2) / 2 by symmetry of the normal density
        slope = params.get("init", 0.25) if name == "prelu" else params.get("negative_slope", 0.01)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if name == "hard_tanh":  # clip(z, a, b): a^2 Phi(a) + int_a^b z^2 phi + b^2 (1 - Phi(b)), in mpmath
        import mpmath

        with mpmath.workdps(30):
            a, b = mpmath.mpf(params.get("min_val", -1.0)), mpmath.mpf(params.get("max_val", 1.0))
            # the middle integral only where the density lives (beyond |z| = 40 it is below 1e-347)
            low, high = max(a, -40), min(b, 40)
            # on panels of width <= 1: one wide interval lets the quadrature miss the density's narrow bump
            panels = mpmath.linspace(low, high, int(high - low) + 2) if low < high else []
            middle = mpmath.quad(lambda z: z * z * mpmath.npdf(z), panels) if panels else 0
            cdf = lambda v: 0 if v < -40 else 1 if v > 40 else mpmath.ncdf(v)  # noqa: E731 (mpmath's own overflows)
            second = a * a * cdf(a) + middle + b * b * cdf(-b)
        return float(1 / mpmath.sqrt(second))
    jumps = [-14.0, 14.0]
    if name == "softplus" and math.isfinite(params.get("threshold", 20.0)):
        jumps.append(params.get("threshold", 20.0) / params.get("beta", 1.0))  # where f switches to x
    if name == "relu":
        jumps.append(float(params.get("threshold", 0.0)))  # a thresholded relu jumps from 0 to t at t
    jumps = sorted({j for j in jumps if -14.0 <= j <= 14.0})
    total = 0.0
    for left, right in zip(jumps[:-1], jumps[1:]):
        # each piece on its own grid, strictly inside its jumps (a jump's own value belongs to one side only)
        z = np.linspace(left + 1e-12 * (1 + abs(left)) if left > -14.0 else left,
                        right - 1e-12 * (1 + abs(right)) if right < 14.0 else right, 100_001)
        with np.errstate(over="ignore"):
            f = rl.get(name)(z, **params)
            total += np.trapezoid(f * f * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi), z)
    return 1.0 / math.sqrt(total)


@FUZZ
@given(name=st.sampled_from(NAMES + ["no_such", "swish", "LeakyReLU"]), data=st.data())
def test_gain_value_or_named_error(name, data):
    try:
        member = rl.get(name)
    except ValueError:
        return
    params = {p.name: data.draw(param_values(p), label=p.name) for p in member.params if data.draw(st.booleans())}
    if member.name == "prelu" and data.draw(st.booleans()):
        params["init"] = data.draw(st.one_of(st.floats(-3, 3), st.sampled_from([math.nan, "1", 10**400])))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            value = rnn.gain(name, **params)
    except (TypeError, ValueError) as error:
        _check_named(error, ["gain", *params, "init"])
        event("refused")
        return
    event("value checked")
    for key in ("training", "seed", "rng", "channel_axis"):
        params.pop(key, None)
    want = _gain_reference(member.name, params)
    if not math.isfinite(want) or want == 0:  # E[f^2] beyond float64 in the quadrature (elu with alpha = 1e300)
        return
    assert math.isfinite(value) and value > 0
    assert abs(value - want) <= 1e-6 * want, f"gain({name}, {params}) = {value}, want {want}"


@FUZZ
@given(old=st.sampled_from(NAMES + ["nope"]), new=st.sampled_from(NAMES + ["nope", 3]), data=st.data())
def test_swap_count_or_named_error(old, new, data):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4), rnn.GELU(),
                                torch.nn.Sequential(torch.nn.ReLU(inplace=True), torch.nn.Tanh()))
    params = {}
    if isinstance(new, str) and new in OPS:
        params = {p.name: data.draw(param_values(p), label=p.name) for p in rl.get(new).params
                  if p.name in OPS[new].params and data.draw(st.booleans())}
    expected = sum(1 for m in model.modules() if rnn.activation_name(m) == (rl.get(old).name if old in OPS else None))
    try:
        count = rnn.swap(model, old, new, **params)
    except (TypeError, ValueError) as error:
        _check_named(error, ["name", "old", "new", "activation", *params, "unknown", "init", "num_parameters"])
        return
    assert count == expected
    assert sum(1 for m in model.modules() if rnn.activation_name(m) == rl.get(new).name) >= count
