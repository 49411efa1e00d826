"""The compiled kernels of the smooth members (family/_vector.py) against mpmath, the conventions, and NumPy.

Small arrays run the NumPy kernels (family/_compiled.py's MIN_ELEMENTS), so the mpmath and convention tests of
test_reference.py and test_conventions.py, whose inputs are small, check the NumPy kernels. Here the same tests
run again with that threshold at 1, so every call they make takes the compiled kernel where a member has one; and
the exponential the kernels are built on is checked against mpmath over its whole range, subnormals included.
"""

from __future__ import annotations

import os
import subprocess
import sys

import mpmath
import numpy as np
import pytest

import relulab as rl
from relulab.family import _compiled, _parallel

from .test_conventions import (  # noqa: F401  (collected again here, with the compiled kernels)
    test_float16_large_inputs_all_members_no_warnings,
    test_infinity_limits,
    test_members_without_a_kink_have_continuous_derivatives_at_zero,
    test_nan_in_nan_out,
    test_subnormals_gelu_and_silu_near_zero_are_half_x,
    test_subnormals_other_smooth_members_are_linear_near_zero,
    test_values_and_derivatives_at_kinks,
    test_values_and_derivatives_at_signed_zeros,
)
from .test_fast import assert_exact, edge_input
from .test_reference import (  # noqa: F401
    test_derivative_at_its_own_root_is_within_ulps_of_the_terms,
    test_derivative_matches_central_differences_at_random_points,
    test_derivative_matches_mpmath_away_from_kinks,
    test_float16_is_correctly_rounded_within_one_ulp,
    test_float32_is_accurate_to_its_condition_number,
    test_value_matches_mpmath,
)

# Every call with a compiled twin: (name, parameters).
TWINS = [("sigmoid", {}), ("silu", {}), ("quick_gelu", {}), ("gelu", {"approximate": "tanh"}), ("gelu", {}),
         ("tanh", {}), ("elu", {}), ("elu", {"alpha": 0.5}), ("selu", {}), ("mish", {}), ("hardswish", {}),
         ("relu6", {}), ("hard_sigmoid", {}), ("hard_tanh", {}), ("hard_tanh", {"min_val": -0.5, "max_val": 2.0}),
         ("squared_relu", {}), ("softplus", {}), ("softplus", {"beta": 2.0, "threshold": 10.0}),
         ("softplus", {"beta": 0.7, "threshold": float("inf")}), ("celu", {}), ("celu", {"alpha": 0.3}),
         ("celu", {"alpha": 49.0}), ("squareplus", {}), ("squareplus", {"b": 1e-6}), ("squareplus", {"b": 0.0}),
         ("sparse_plus", {}), ("rrelu", {}), ("rrelu", {"lower": 0.0, "upper": 0.0}),
         ("rrelu", {"lower": 0.25, "upper": 0.5})]
TWIN_IDS = [name + "".join(f"-{k}={v}" for k, v in params.items()) for name, params in TWINS]


@pytest.fixture(autouse=True)
def compiled_everywhere(monkeypatch):
    if _parallel.stream_kernels() is None:
        pytest.skip(f"no compiled kernels: {_parallel.stream_status()}")
    monkeypatch.setattr(_compiled, "MIN_ELEMENTS", 1)


def numpy_kernels(call, *args, **kwargs):
    """The same call on the NumPy kernels (as without numba)."""
    saved = _parallel.stream_kernels
    _parallel.stream_kernels = lambda: None
    try:
        return call(*args, **kwargs)
    finally:
        _parallel.stream_kernels = saved


def ulps_apart(got: np.ndarray, want: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """|got - want| in ulps of max(|want|, scale) (subnormals: in units of the smallest subnormal)."""
    size = np.abs(want) if scale is None else np.maximum(np.abs(want), scale)
    spacing = np.spacing(np.maximum(size, np.finfo(want.dtype).tiny).astype(want.dtype))
    return np.abs(got.astype(np.float64) - want.astype(np.float64)) / spacing.astype(np.float64)


def terms(name: str, params: dict, x: np.ndarray) -> np.ndarray:
    """|A| + |x A'| for the derivatives f' = A + x A' of the x * A(x) members (float64, from NumPy directly): near
    a root of f' any evaluation carries rounding of a few ulps of that (see test_reference.py); 0 for the others."""
    scale = {"silu": 1.0, "quick_gelu": 1.702}.get(name)
    v = np.clip(x.astype(np.float64), -1e5, 1e5)
    with np.errstate(all="ignore"):
        if name == "gelu":
            u2 = 2 * 0.7978845608028654 * (v + 0.044715 * v**3)
            du2 = 2 * 0.7978845608028654 * (1 + 3 * 0.044715 * v**2)
            s = 1 / (1 + np.exp(-u2))
            return np.nan_to_num(np.abs(s) + np.abs(v * du2 * s * (1 - s)))
        if name == "mish":
            t = np.tanh(np.logaddexp(0.0, v))
            return np.nan_to_num(np.abs(t) + np.abs(v * (1 - t * t) / (1 + np.exp(-v))))
        if scale is None:
            return np.zeros_like(v)
        s = 1 / (1 + np.exp(-scale * v))
        return np.nan_to_num(np.abs(s) + np.abs(scale * v * s * (1 - s)))


def condition(name: str, x: np.ndarray) -> np.ndarray:
    """How rounding of a(x) is amplified in the x * sigmoid(a(x)) members (float64): their value's condition
    number |x f'/f|, or |a(x)| where that is larger (the derivative, ~ exp(-|a|) in the tail, amplifies the rounding
    of a by |a|): up to hundreds in gelu's far negative tail (f ~ exp(-2u), u ~ 0.036 x^3); 0 for the others."""
    v = np.clip(x.astype(np.float64), -1e5, 1e5)
    with np.errstate(all="ignore"):
        if name == "gelu":
            a, da = 2 * 0.7978845608028654 * (v + 0.044715 * v**3), 2 * 0.7978845608028654 * (1 + 3 * 0.044715 * v**2)
        elif name in ("silu", "quick_gelu"):
            scale = 1.0 if name == "silu" else 1.702
            a, da = scale * v, np.full_like(v, scale)
        else:
            return np.zeros_like(v)
        return np.nan_to_num(np.maximum(np.abs(1 + v * da / (1 + np.exp(a))), np.abs(a)))


def assert_close(got: np.ndarray, want: np.ndarray, scale: np.ndarray, what: str, cond=None) -> None:
    """The same NaN, infinities and signs of zero; the rest within 8 ulps (of the terms, near a root of f'), times
    1 + the condition number ``cond`` where given."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    both_zero = finite & (want == 0) & (got == 0)
    assert (np.signbit(got[both_zero]) == np.signbit(want[both_zero])).all(), f"{what}: sign of zero"
    far = ulps_apart(got[finite], want[finite], scale[finite])
    if cond is not None:
        far = far / (1 + cond[finite])
    assert far.max() <= 8, f"{what}: {far.max()} ulps at x = {np.flatnonzero(finite)[np.argmax(far)]}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_and_expm1_are_within_an_ulp_and_two_of_mpmath_over_the_whole_range(dtype):
    from relulab.family import _vector

    info = np.finfo(dtype)
    lowest = -746.0 if dtype == np.float64 else -104.0
    rng = np.random.default_rng(7)
    x = np.concatenate([
        -np.abs(rng.standard_normal(2000)) * 10.0 ** rng.uniform(-8, 2.5, 2000),
        np.linspace(lowest - 5, 0.0, 3001),
        -np.logspace(np.log10(float(info.smallest_subnormal)), 0, 400),  # tiny z: expm1(z) = z
        [0.0, -0.0, -np.inf, float(np.log(info.tiny)), float(np.log(info.smallest_subnormal))],
    ]).astype(dtype)
    e, m = np.empty_like(x), np.empty_like(x)
    _vector.exp_and_expm1(x, e, m)
    ctx = mpmath.MPContext()
    ctx.dps = 40
    with np.errstate(under="ignore"):
        want_e = np.array([float(ctx.exp(ctx.mpf(float(v)))) for v in x]).astype(dtype)
        want_m = np.array([float(ctx.expm1(ctx.mpf(float(v)))) for v in x]).astype(dtype)
    # Subnormal results: an ulp is the smallest subnormal, the spacing there.
    spacing = np.maximum(np.spacing(np.abs(want_e)), info.smallest_subnormal).astype(np.float64)
    assert np.max(np.abs(e.astype(np.float64) - want_e) / spacing) <= 1.0
    assert np.max(ulps_apart(m, want_m)) <= 2.0
    assert e[x == -np.inf].tolist() == [0.0] and m[x == -np.inf].tolist() == [-1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "params"), TWINS, ids=TWIN_IDS)
def test_compiled_kernels_agree_with_the_numpy_kernels_to_a_few_ulps(name, params, dtype):
    act = rl.get(name)
    x = edge_input(5003, dtype, seed=11)
    for call, scale, what in ((act, np.zeros(x.shape), "value"), (act.grad, terms(name, params, x), "derivative")):
        got, want = call(x, **params), numpy_kernels(call, x, **params)
        assert got.dtype == want.dtype == dtype
        assert_close(got, want, scale, f"{name} {what}", condition(name, x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "params"), TWINS, ids=TWIN_IDS)
def test_out_in_place_views_and_shapes_give_the_same_bits(name, params, dtype):
    act = rl.get(name)
    x = edge_input(4099, dtype, seed=12)
    for call, scale in ((act, np.zeros(x.shape)), (act.grad, terms(name, params, x))):
        want = call(x, **params)
        y = np.full_like(x, 7)
        assert call(x, out=y, **params) is y
        assert_exact(y, want)
        in_place = x.copy()
        assert call(in_place, out=in_place, **params) is in_place
        assert_exact(in_place, want)
        assert_exact(call(x[1:], **params), want[1:])  # unaligned
        assert_exact(call(x[::3], **params), want[::3])  # strided: copied, then compiled
        strided_out = np.zeros(2 * x.size, dtype)[::2]
        call(x, out=strided_out, **params)
        assert_exact(strided_out, want)
        assert_exact(call(x[:4096].reshape(64, 64), **params), want[:4096].reshape(64, 64))
        assert_exact(call(x[:4096].reshape(64, 64).T, **params), want[:4096].reshape(64, 64).T)
        read_only = x.copy()
        read_only.flags.writeable = False  # another array type for numba's dispatcher; the short way skips it
        assert_exact(call(read_only, **params), want)
        assert_exact(call(read_only.reshape(-1, 1), **params), want.reshape(-1, 1))
        overlapping = np.concatenate([x, np.zeros(8, dtype)])
        call(overlapping[:-8], out=overlapping[8:], **params)  # a partial overlap: the NumPy kernel, buffered
        assert_close(overlapping[8:], want, scale, f"{name} with a partially overlapping out",
                     condition(name, x))


@pytest.mark.parametrize("size", [3000, 1 << 17])
def test_the_short_way_still_refuses_a_bad_out_naming_it(size):
    x = np.linspace(-3, 3, size, dtype=np.float32)
    with pytest.raises(ValueError, match="out has dtype float64"):
        rl.sigmoid(x, out=np.empty(size, np.float64))
    with pytest.raises(ValueError, match="out has shape"):
        rl.silu(x, out=np.empty(size + 1, np.float32))
    read_only = np.empty(size, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        rl.tanh.grad(x, out=read_only)
    with pytest.raises(ValueError, match="approximate must be one of"):
        rl.gelu(x, approximate="fast")
    with pytest.raises(TypeError, match="unexpected keyword argument 'alpha'"):
        rl.sigmoid(x, alpha=1.0)
    with pytest.raises(TypeError, match="x has dtype >f4"):
        rl.sigmoid(x.astype(">f4"))


def test_parameters_change_the_result_on_the_short_way():
    x = np.linspace(-3, 3, 4096)
    np.testing.assert_allclose(rl.elu(x, alpha=0.5)[x < 0], 0.5 * np.expm1(x[x < 0]), rtol=1e-15)
    np.testing.assert_allclose(rl.elu(x)[x < 0], np.expm1(x[x < 0]), rtol=1e-15)
    np.testing.assert_allclose(rl.elu.grad(x, at_zero=0.75, alpha=0.5)[x < 0], 0.5 * np.exp(x[x < 0]), rtol=1e-15)
    zero = np.zeros(4096)
    assert (rl.elu.grad(zero, alpha=0.5) == 0.5).all() and (rl.elu.grad(zero, at_zero=0.75, alpha=0.5) == 0.75).all()


def test_an_error_state_that_watches_underflow_gets_the_numpy_kernels():
    x = np.full(5000, -200.0, np.float32)  # exp(-200) underflows float32
    with np.errstate(under="raise"):
        with pytest.raises(FloatingPointError):
            rl.sigmoid(x)
        with pytest.raises(FloatingPointError):
            rl.silu.grad(x[:3000])
    assert (rl.sigmoid(x) == 0).all()  # and the compiled kernel again outside it


@pytest.mark.parametrize("size", [3000, 1 << 17])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_away_from_its_defaults_takes_no_compiled_kernel(size, dtype):
    x = np.linspace(-4, 4, size, dtype=dtype)
    for params in ({"max_value": 2.5}, {"threshold": 0.5}, {"max_value": 2.5, "threshold": 0.5}):
        bound = rl.relu.bind(params)
        assert _parallel.stream_function(rl.relu.forward_kernel, bound, np.dtype(dtype)) is None
        assert _parallel.stream_function(rl.relu.derivative_kernel, dict(bound, at_zero=0.0), np.dtype(dtype)) is None
        top, threshold = params.get("max_value", np.inf), params.get("threshold", 0.0)
        want = np.where(x > threshold, np.minimum(x, top), 0).astype(dtype)  # Keras: 0 up to t, x, then max_value
        np.testing.assert_array_equal(rl.relu(x, **params), want)
        y = np.full_like(x, 7)
        assert rl.relu(x, out=y, **params) is y
        np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(rl.relu(x), np.maximum(x, 0))  # and the defaults compiled again
    assert _parallel.stream_function(rl.relu.forward_kernel, rl.relu.bind({}), np.dtype(dtype)) is not None


# -- softplus, celu, squareplus, sparse_plus (and the log1p softplus is built on) against mpmath -----------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log1p_is_within_an_ulp_of_mpmath_on_zero_to_one(dtype):
    from relulab.family import _vector

    info = np.finfo(dtype)
    rng = np.random.default_rng(8)
    half = float(dtype(0.5))
    t = np.concatenate([
        rng.random(20000),
        np.logspace(np.log10(float(info.smallest_subnormal)), 0, 2000),  # tiny t: log1p(t) = t
        half + (rng.random(2000) - 0.5) * 1e-3,  # where the reduction switches
        [0.0, 1.0, half, float(np.nextafter(dtype(half), dtype(0))), float(info.tiny), float(info.smallest_subnormal)],
    ]).astype(dtype)
    y = np.empty_like(t)
    _vector.log1p_unit(t, y)
    ctx = mpmath.MPContext()
    ctx.dps = 40
    with np.errstate(under="ignore"):
        want = np.array([float(ctx.log1p(ctx.mpf(float(v)))) for v in t]).astype(dtype)
    spacing = np.maximum(np.spacing(np.abs(want)), info.smallest_subnormal).astype(np.float64)
    assert np.max(np.abs(y.astype(np.float64) - want) / spacing) <= 1.0
    minus_zero = np.array([-0.0], dtype)
    _vector.log1p_unit(minus_zero, minus_zero)
    assert minus_zero[0] == 0 and np.signbit(minus_zero[0])


def whole_range(dtype) -> np.ndarray:
    """Both signs from the smallest subnormal to the largest finite value, a fine grid where the members bend,
    and the specials."""
    info = np.finfo(dtype)
    exponents = np.linspace(np.log10(float(info.smallest_subnormal)), np.log10(float(info.max)), 600)[:-1]
    magnitudes = np.append(10.0 ** exponents, float(info.max))
    rng = np.random.default_rng(9)
    with np.errstate(over="ignore"):
        return np.concatenate([-magnitudes, magnitudes, np.linspace(-60, 60, 1201), rng.uniform(-3, 3, 300),
                               [0.0, -0.0, 1.0, -1.0, 5.0, 10.0, 20.0, np.inf, -np.inf, np.nan]]).astype(dtype)


def _smooth_relus():
    from . import reference as ref

    return [("softplus", {}, ref.softplus(1.0, 20.0)),
            ("softplus", {"beta": 2.0, "threshold": 10.0}, ref.softplus(2.0, 10.0)),
            ("softplus", {"beta": 0.7, "threshold": float("inf")}, ref.softplus(0.7, float("inf"))),
            ("celu", {}, ref.celu(1.0)), ("celu", {"alpha": 0.3}, ref.celu(0.3)),
            ("celu", {"alpha": 2.0}, ref.celu(2.0)),
            ("squareplus", {}, ref.squareplus(4.0)), ("squareplus", {"b": 1e-6}, ref.squareplus(1e-6)),
            ("squareplus", {"b": 1e30}, ref.squareplus(1e30)),
            ("sparse_plus", {}, (ref.sparse_plus, ref.sparse_plus_grad))]


SMOOTH_RELUS = _smooth_relus()


def rounding_of_the_argument(name: str, params: dict, x: np.ndarray) -> np.ndarray:
    """|z| where a rounded argument z (softplus's beta x, celu's x / alpha; exact for powers of two) feeds an
    exponential in the left tail (softplus's value and slope ~ exp(z), celu's slope exp(z)): its rounding, a
    relative half ulp, becomes a relative error |z| times that in the result, up to |z| ulps of it, in any
    evaluation that forms z in the dtype (NumPy's and PyTorch's too); 0 elsewhere."""
    factor = params.get({"softplus": "beta", "celu": "alpha"}.get(name, ""), 1.0)
    if np.frexp(factor)[0] == 0.5:
        return np.zeros(x.shape)
    v = np.nan_to_num(x.astype(np.float64))
    with np.errstate(over="ignore"):
        z = v * factor if name == "softplus" else v / factor
    return np.where(z < 0, -z, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "params", "formulas"), SMOOTH_RELUS,
                         ids=[n + "".join(f"-{k}={v}" for k, v in p.items()) for n, p, _ in SMOOTH_RELUS])
def test_softplus_celu_squareplus_sparse_plus_are_within_a_few_ulps_of_mpmath(name, params, formulas, dtype):
    # Measured: at most 2 ulps for the values and 4 for the derivatives (squareplus's, float32: b itself is rounded),
    # 1 for celu in both; beyond that only the rounding of the argument (see rounding_of_the_argument).
    from . import reference as ref

    act = rl.get(name)
    x = whole_range(dtype)
    finite = np.isfinite(x)
    for (call, formula, bound) in ((act, formulas[0], 3), (act.grad, formulas[1], 4)):
        got = call(x, **params)
        with np.errstate(under="ignore", over="ignore"):
            want = np.array([float(formula(ref.mpf(float(v)))) if np.isfinite(v) else np.nan for v in x]).astype(dtype)
        assert np.isnan(got[np.isnan(x)]).all()
        np.testing.assert_array_equal(np.isinf(got[finite]), np.isinf(want[finite]))
        ok = finite & np.isfinite(want)
        info = np.finfo(dtype)  # an ulp of want (2^(e - 1 - mantissa bits); the largest value's too)
        spacing = np.maximum(np.ldexp(1.0, np.frexp(want[ok].astype(np.float64))[1] - 1 - info.nmant),
                             float(info.smallest_subnormal))
        far = np.abs(got[ok].astype(np.float64) - want[ok]) / spacing
        far = far / (1 + rounding_of_the_argument(name, params, x[ok]))
        worst = int(np.argmax(far))
        assert far[worst] <= bound, f"{name} {call}: {far[worst]} ulps at x = {x[ok][worst]!r}"
    # The limits at +-inf and the signed zeros (f(-0.0) = f(+0.0) = f(0) for these smooth members; celu keeps x).
    inf_value, minus_inf_value = act(np.array([np.inf, -np.inf], dtype), **params)
    assert inf_value == np.inf and minus_inf_value == (-params.get("alpha", 1.0) if name == "celu" else 0.0)
    np.testing.assert_array_equal(act.grad(np.array([np.inf, -np.inf], dtype), **params), [1.0, 0.0])
    zeros = act(np.array([0.0, -0.0], dtype), **params)
    if name == "celu":
        assert zeros.tolist() == [0.0, 0.0] and np.signbit(zeros).tolist() == [False, True]
    else:
        assert zeros[0] == zeros[1] and not np.signbit(zeros).any()


def test_one_slope_prelu_and_eval_rrelu_take_leaky_relus_compiled_kernels():
    x = edge_input(5003, np.float64, seed=13)
    for dtype in (np.float32, np.float64):
        xs = x.astype(dtype)
        for slope in (0.25, 0.0, -0.5, 2.0):
            with np.errstate(invalid="ignore"):  # (inf * 0: relu's limit 0 below)
                direct = np.maximum(xs, 0) if slope == 0 else np.where(xs > 0, xs, xs * dtype(slope))
            np.testing.assert_array_equal(rl.prelu(xs, slope), np.where(np.isnan(xs), xs, direct))
            grad = np.where(xs > 0, 1.0, slope).astype(dtype)
            np.testing.assert_array_equal(rl.prelu.grad(xs, slope), np.where(np.isnan(xs), xs, grad))
            np.testing.assert_array_equal(rl.prelu.grad(xs, slope, at_zero=1.0)[xs == 0], 1.0)
        mean = (1 / 8 + 1 / 3) / 2
        np.testing.assert_array_equal(rl.rrelu(xs), np.where(xs > 0, xs, xs * dtype(mean)))
    # The twins are chosen (and none for rrelu in training, which is not elementwise).
    assert _parallel.stream_function(rl.prelu.forward_kernel, {"channel_axis": 1, "weight": np.array(0.25)},
                                     np.dtype(np.float32)) is not None
    bound = rl.rrelu.bind({})
    assert _parallel.stream_function(rl.rrelu.forward_kernel, bound, np.dtype(np.float32)) is not None
    assert _parallel.stream_function(rl.rrelu.forward_kernel, dict(bound, training=True),
                                     np.dtype(np.float32)) is None


_NUMBA_OFF_SCRIPT = """
import sys
from math import inf
import numpy as np
import relulab as rl
from relulab.family import _parallel
assert _parallel.stream_kernels() is None, _parallel.stream_status()
x = np.load(sys.argv[1])
calls = [(name, params) for name, params in {calls!r}]
np.savez(sys.argv[2], **{{f"{{i}}-{{g}}-{{d}}": (rl.get(n).grad if g else rl.get(n))(x.astype(d), **p)
                          for i, (n, p) in enumerate(calls) for g in (0, 1) for d in ("float32", "float64")}})
"""


def test_the_compiled_kernels_agree_with_relulab_numba_0_to_a_few_ulps(tmp_path):
    # The member calls as users make them (the parallel path at 2^17 elements, the short way below it), with numba
    # and in a process started with RELULAB_NUMBA=0.
    calls = [(name, params) for name, params, _ in SMOOTH_RELUS] + [("rrelu", {})]
    x = np.concatenate([edge_input(1 << 17, np.float64, seed=14), edge_input(3001, np.float64, seed=15)])
    np.save(tmp_path / "x.npy", x)
    env = dict(os.environ, RELULAB_NUMBA="0")
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(rl.__file__))] +
                                        [p for p in [env.get("PYTHONPATH")] if p])
    subprocess.run([sys.executable, "-c", _NUMBA_OFF_SCRIPT.format(calls=calls), str(tmp_path / "x.npy"),
                    str(tmp_path / "off.npz")], check=True, env=env)
    off = np.load(tmp_path / "off.npz")
    for i, (name, params) in enumerate(calls):
        act = rl.get(name)
        for g, call in ((0, act), (1, act.grad)):
            for dtype in ("float32", "float64"):
                with np.errstate(over="ignore"):
                    xs = x.astype(dtype)
                got, want = call(xs, **params), off[f"{i}-{g}-{dtype}"]
                assert got.dtype == want.dtype == np.dtype(dtype)
                assert_close(got, want, np.zeros(x.shape), f"{name} {params} {'derivative' if g else 'value'} "
                             f"{dtype}", condition(name, xs))


@pytest.mark.parametrize("size", [3000, 1 << 19])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prelu_with_one_float_slope_takes_the_short_way_and_matches_the_definition(size, dtype):
    # One slope as a Python float is elementwise: the short way (leaky_relu's kernels) where the weight as an
    # array takes the full path; both must equal the definition computed here, signed zeros and NaN included.
    x = np.linspace(-3, 3, size).astype(dtype)
    x[:4] = [0.0, -0.0, np.nan, -np.inf]
    for slope in (0.25, 1.5, 0.0, -0.5):
        s = dtype(slope)
        with np.errstate(invalid="ignore"):  # 0 * -inf, discarded by the where
            want = np.where(x > 0, x, np.where(s == 0, np.zeros_like(x), s * x))
        want = np.where(np.isnan(x), x, want).astype(dtype)
        want_grad = np.where(np.isnan(x), x, np.where(x > 0, dtype(1), s)).astype(dtype)
        assert_exact(rl.prelu(x, slope), want)
        compiled = [f for key, f in _compiled._quick.items() if key[:2] == (rl.prelu.forward_kernel, np.dtype(dtype))
                    and any(v == slope for _, _, v, _ in key[2])]
        assert compiled and compiled[0] is not None  # the short way was taken, with a compiled kernel
        assert_exact(rl.prelu(x, np.array([slope])), want)
        out = np.empty_like(x)
        assert rl.prelu(x, slope, out=out) is out
        assert_exact(out, want)
        assert_exact(rl.prelu.grad(x, slope), want_grad)
        assert_exact(rl.prelu.grad(x, np.array([slope])), want_grad)
    with pytest.raises(ValueError, match="weight must be finite"):
        rl.prelu(x, float("nan"))
    with pytest.raises(TypeError, match="relu takes x as positional arguments; got 2"):
        rl.relu(x, 0.5)
    with pytest.raises(TypeError, match="prelu takes x and weight as positional arguments; got 1"):
        rl.prelu(x, weight=0.5)  # as on small arrays: the weight is positional
    with pytest.raises(TypeError, match="prelu takes x and weight as positional arguments; got 1"):
        rl.prelu.grad(x, weight=0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_zero_slope_keeps_its_sign_on_the_short_way(dtype):
    # -0.0 == 0.0 and both hash alike: a cache keyed by the value alone gave the second zero the first one's kernel
    x = np.array([-1.0, -0.0, 0.0, 2.0] * 1024, dtype)
    for first, second in ((-0.0, 0.0), (0.0, -0.0)):
        _compiled._quick.clear()
        rl.prelu.grad(x, first)
        for slope in (first, second):
            want = np.where(x > 0, dtype(1), dtype(slope)).astype(dtype)
            assert_exact(rl.prelu.grad(x, slope), want)
            assert_exact(rl.leaky_relu.grad(x, negative_slope=slope), want)
            assert_exact(rl.prelu.grad(x, np.array([slope])), want)
