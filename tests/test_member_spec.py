"""Adding a member is one Activation: registered at run time (NumPy kernels only, defined here), it appears in
every room (rl.names, relulab.nn's module and function, gain, the monitor, `relulab explain`, the docs table), and
unregistered it leaves every room again. Every number is checked against a formula written out in this test."""

from __future__ import annotations

import inspect
import math

import mpmath
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import relulab as rl  # noqa: E402
import relulab.nn as rnn  # noqa: E402
import relulab.nn.functional as RF  # noqa: E402
from relulab import Monitor  # noqa: E402
from relulab.cli import main  # noqa: E402
from relulab.family import Activation, Param, Properties, UnknownActivationError  # noqa: E402

NAME = "cubed_relu_spec_test"  # f(x) = scale * max(0, x)^3: C^2, exactly 0 for x < 0 (units can die)
CLASS = "CubedReluSpecTest"  # the class name derived from the member's name


def _forward(x, out, scale):
    positive = np.maximum(x, 0.0)
    return np.multiply(scale, positive * positive * positive, out=out)


def _derivative(x, out, scale):
    positive = np.maximum(x, 0.0)
    return np.multiply(3.0 * scale, positive * positive, out=out)


def _member() -> Activation:
    return Activation(
        NAME,
        forward=_forward,
        derivative=_derivative,
        formula=r"s \max(0, x)^3",
        derivative_formula=r"3 s \max(0, x)^2",
        summary="Scaled cubed ReLU (a test member).",
        params=(Param("scale", 0.5, "Scale s of the cube.", low=0.0, high=math.inf, low_open=True,
                      high_open=True),),
        properties=Properties(monotonic=True, lower_bound=0.0, upper_bound=None, smooth=False, kinks=(),
                              zero_for_negative=True, piecewise_linear=False),
        elementwise=True,
        use="Tests.",
        failure_mode="Dies like relu.",
    )


def direct(x: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The member and its derivative in float64, written out independently of its kernels."""
    positive = np.where(x > 0, x, 0.0)
    return scale * positive**3, 3.0 * scale * positive**2


def gain_by_integral(scale: float) -> float:
    """1 / sqrt(E[f(z)^2]), z ~ N(0, 1), by mpmath's quadrature of the written-out integrand."""
    mpmath.mp.dps = 30
    moment = mpmath.quad(lambda z: (scale * z**3) ** 2 * mpmath.npdf(z), [0, mpmath.inf])
    return float(1 / mpmath.sqrt(moment))


def explain(capsys, name: str) -> tuple[int, str, str]:
    code = main(["explain", name])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def planted_model(cls: type) -> torch.nn.Sequential:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), cls(), torch.nn.Linear(8, 2)).double()
    with torch.no_grad():
        model[0].bias.fill_(0.2)
        model[0].bias[[1, 6]] = -1000.0  # planted dead units
    return model


def test_a_member_registered_at_run_time_reaches_every_room_and_leaves_it_again(capsys):
    member = rl.register(_member())
    try:
        # the family
        assert NAME in rl.names() and rl.get(NAME) is member

        # relulab.nn: the module class (by name, by class name, by make) and the function
        cls = rnn.module_for(NAME)
        assert cls.__name__ == CLASS and getattr(rnn, CLASS) is cls and cls.activation is member
        assert type(rnn.make(NAME, scale=2.0)) is cls and rnn.make(NAME, scale=2.0).params == {"scale": 2.0}
        assert RF.function_for(NAME) is getattr(RF, NAME)
        assert "s \\max(0, x)^3" in cls.__doc__ and "scale" in cls.__doc__
        x = np.random.default_rng(0).normal(0.0, 2.0, 200)
        for scale in (0.5, 2.0):
            value, slope = direct(x, scale)
            for run in (lambda t: rnn.make(NAME, scale=scale)(t), lambda t: RF.activation(t, NAME, scale=scale),
                        lambda t: getattr(RF, NAME)(t, scale)):
                tensor = torch.tensor(x, requires_grad=True)
                y = run(tensor)
                y.backward(torch.ones_like(y))
                np.testing.assert_allclose(y.detach().numpy(), value, rtol=1e-15, atol=0)
                np.testing.assert_allclose(tensor.grad.numpy(), slope, rtol=1e-15, atol=0)
            points = torch.tensor(x[np.abs(x) > 1e-3][:30], dtype=torch.float64, requires_grad=True)
            assert torch.autograd.gradcheck(lambda t: rnn.make(NAME, scale=scale)(t), (points,))
        # dtype and device are kept (float32, bfloat16 through float32)
        for dtype in (torch.float32, torch.bfloat16):
            y = cls()(torch.tensor([-1.0, 2.0], dtype=dtype))
            assert y.dtype == dtype and y.device.type == "cpu"
            assert y.tolist() == [0.0, 4.0]
        with pytest.raises(ValueError, match="scale must be a real number in \\(0, inf\\); got -1"):
            cls(scale=-1.0)

        # gain: the spec's quadrature of the kernel against mpmath's integral of the written-out formula
        for scale in (0.5, 3.0):
            assert rnn.gain(NAME, scale=scale) == pytest.approx(gain_by_integral(scale), rel=1e-12)

        # the monitor: the module is recognised, and dead units are counted as a direct computation finds them
        model = planted_model(cls)
        xs = [torch.randn(64, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(k)) for k in range(3)]
        with Monitor(model) as mon:
            for batch in xs:
                model(batch).pow(2).mean().backward()
        layer = mon.report()["1"]
        assert layer.kind == NAME and layer.dead_possible
        pre = torch.cat([model[0](batch) for batch in xs]).detach().numpy()
        assert layer.dead_units == [int(u) for u in np.flatnonzero((pre <= 0).all(axis=0))] == [1, 6]
        # revive re-initialises exactly the dead units' rows (the bias it sets makes them live again)
        before = model[0].weight.detach().clone()
        assert rl.revive(model, mon.report(), generator=torch.Generator().manual_seed(0)) == 2
        changed = (model[0].weight.detach() != before).any(dim=1)
        assert torch.equal(torch.nonzero(changed).flatten(), torch.tensor([1, 6]))
        assert (model[0](xs[0])[:, [1, 6]] > 0).any()
        # init_ takes the gain from the spec; swap puts the member in
        plan = rnn.init_(model)
        assert plan["2"] == (NAME, pytest.approx(gain_by_integral(0.5), rel=1e-12))
        plain = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU())
        assert rnn.swap(plain, "relu", NAME, scale=2.0) == 1 and type(plain[1]) is cls

        # relulab explain
        code, out, _ = explain(capsys, NAME)
        assert code == 0 and out.startswith(f"{NAME}: Scaled cubed ReLU") and r"s \max(0, x)^3" in out
        assert f"relulab.nn.{CLASS}" in out

        # the docs table
        rows = [line for line in rl.family.docs_table().splitlines() if line.startswith(f"| `{NAME}`")]
        assert len(rows) == 1 and r"$s \max(0, x)^3$" in rows[0] and f"`{CLASS}`" in rows[0]
    finally:
        rl.unregister(NAME)

    # ... and every room forgets it
    assert NAME not in rl.names()
    for lookup in (lambda: rnn.module_for(NAME), lambda: rnn.make(NAME), lambda: RF.function_for(NAME),
                   lambda: rnn.gain(NAME), lambda: RF.activation(torch.zeros(1), NAME)):
        with pytest.raises(UnknownActivationError):
            lookup()
    for module, attribute in ((rnn, CLASS), (RF, NAME)):
        with pytest.raises(AttributeError):
            getattr(module, attribute)
    code, out, err = explain(capsys, NAME)
    assert code == 2 and f"unknown activation {NAME!r}" in err and not out
    assert NAME not in rl.family.docs_table()


def test_docs_members_md_is_the_generated_table():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "members.md"
    assert path.read_text(encoding="utf-8") == rl.family.docs_table(), (
        "docs/members.md is out of date: regenerate it with relulab.family.docs_table() (see its docstring)")


def test_spec_defaults_keep_activation_backwards_compatible():
    member = _member()  # built with none of the spec's newer arguments
    assert member.nn_class == CLASS and member.torch_class is None and member.torch_function is None
    assert not member.inplace and member.nn_example is None
    assert [p.name for p in member.torch_params] == ["scale"]
    assert rl.get("rrelu").torch_params == tuple(p for p in rl.get("rrelu").params if p.name in ("lower", "upper"))
    with pytest.raises(ValueError, match="nn_class must be a Python identifier \\(a class name\\); got 'Bad-Name'"):
        Activation("bad_name_test", forward=_forward, derivative=_derivative, formula="", derivative_formula="",
                   summary="", properties=member.properties, nn_class="Bad-Name")


def test_a_keyword_only_param_is_keyword_only_in_relulab_nn_and_not_a_torch_attribute():
    # Param(keyword_only=True): after inplace in the module's and the function's signatures, in .params and repr
    # only where given a value other than its default (relu's Keras max_value and threshold use it).
    spec = _member()
    offset = Param("offset", 0.0, "Added to the result (a test parameter).", low=-math.inf, high=math.inf,
                   keyword_only=True)
    keyed = Activation(NAME, forward=lambda x, out, scale, offset: _forward(x, out, scale) + offset,
                       derivative=lambda x, out, scale, offset: _derivative(x, out, scale),
                       formula=spec.formula, derivative_formula=spec.derivative_formula, summary=spec.summary,
                       params=(*spec.params, offset), properties=spec.properties, elementwise=True, inplace=False)
    rl.register(keyed)
    try:
        cls = rnn.module_for(NAME)
        kinds = {name: p.kind for name, p in inspect.signature(cls).parameters.items()}
        assert kinds == {"scale": inspect.Parameter.POSITIONAL_OR_KEYWORD, "offset": inspect.Parameter.KEYWORD_ONLY,
                         "lean": inspect.Parameter.KEYWORD_ONLY}
        function_kinds = {name: p.kind for name, p in inspect.signature(getattr(RF, NAME)).parameters.items()}
        assert function_kinds["offset"] == inspect.Parameter.KEYWORD_ONLY
        with pytest.raises(TypeError):
            cls(2.0, 1.0)  # offset only by keyword
        assert cls(2.0).params == {"scale": 2.0} and "offset" not in repr(cls(2.0))
        assert cls(2.0, offset=1.0).params == {"scale": 2.0, "offset": 1.0} and "offset=1.0" in repr(cls(offset=1.0))
        x = np.array([-1.0, 0.5, 2.0])
        expected = direct(x, 2.0)[0] + 1.0
        for y in (cls(2.0, offset=1.0)(torch.tensor(x)), getattr(RF, NAME)(torch.tensor(x), 2.0, offset=1.0)):
            np.testing.assert_allclose(y.numpy(), expected, rtol=1e-15, atol=0)
    finally:
        rl.unregister(NAME)
    # relu's: torch.nn.ReLU(True) keeps its meaning; torch.nn.ReLU's instances are identified without them
    assert rnn.ReLU(True).inplace and rnn.ReLU(True).params == {}
    assert rnn.ReLU(max_value=6.0).params == {"max_value": 6.0}
    assert inspect.signature(RF.relu).parameters["threshold"].kind == inspect.Parameter.KEYWORD_ONLY
    assert rnn.identify(torch.nn.ReLU()).params == {}
