"""lean=True: the same values and bit-identical gradients as the default path, with less saved for the backward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import relulab.nn as rnn
import relulab.nn.functional  # noqa: F401
from relulab.family import fused as family_fused
from relulab.nn._ops import pack_mask, unpack_mask
from nn_cases import CASE_IDS, CASES, PIECEWISE, points

INT_OF = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
          torch.float64: torch.int64}


def identical(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit (so NaN == NaN and -0.0 != +0.0)."""
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(INT_OF[a.dtype]), b.view(INT_OF[b.dtype]))


def forward_backward(m, x, upstream):
    tensor = x.clone().requires_grad_(True)
    y = m(tensor * 1)
    y.backward(upstream)
    return y.detach(), tensor.grad


def saved_by(fn, *args):
    """Every tensor autograd saves while ``fn(*args)`` runs forward."""
    saved = []

    def pack(tensor):
        saved.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = fn(*args)
    return saved, out


# -- the bit packing -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (8,), (9,), (17,), (3, 5, 7), (64, 33)])
@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_pack_mask_has_the_family_layout_and_unpacks(shape, fraction):
    # One layout for every relulab mask: the family's fused kernels and this port write the same bytes (issue 10:
    # nn packed big-endian while family/fused.py packed little-endian).
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(0)) < fraction
    packed = pack_mask(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-mask.numel() // 8)
    np.testing.assert_array_equal(packed.numpy(), family_fused.pack_mask(mask.numpy()))
    np.testing.assert_array_equal(packed.numpy(), np.packbits(mask.numpy().reshape(-1), bitorder="little"))
    assert torch.equal(unpack_mask(packed, mask.shape), mask)
    assert torch.equal(unpack_mask(packed, mask.shape, torch.float32), mask.float())
    # and the family reads what this port writes
    np.testing.assert_array_equal(family_fused.unpack_mask(packed.numpy(), tuple(shape)), mask.numpy())
    x = torch.where(mask, 1.0, -1.0).double()
    np.testing.assert_array_equal(family_fused.relu_mask(x.numpy())[1], packed.numpy())


def test_relu_lean_in_place_on_empty_views_of_any_stride():
    # Was: pack_mask failed on an empty view with stride 0 ("self.stride(-1) must be 1 to view Byte as Long").
    base = torch.randn(16, requires_grad=True)
    for shape, strides in [((0,), (0,)), ((0, 3), (0, 0)), ((2, 0), (1, 0)), ((0,), (5,))]:
        view = (base * 1).as_strided(shape, strides)
        out = rnn.functional.relu(view, inplace=True, lean=True)
        assert out.shape == shape
        out.sum().backward()
    assert torch.equal(base.grad, torch.zeros(16))


# -- identical gradients -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_lean_gradients_are_identical_to_the_default(case, dtype):
    _, member, params = case
    x = torch.tensor(np.concatenate([points(member, params, seed=7), [np.nan]])).to(dtype)
    upstream = torch.rand(x.shape, generator=torch.Generator().manual_seed(1)).to(dtype) + 0.5
    default = rnn.make(member, **params).to(dtype).eval()
    lean = rnn.make(member, lean=True, **params).to(dtype).eval()
    y_default, g_default = forward_backward(default, x, upstream)
    y_lean, g_lean = forward_backward(lean, x, upstream)
    assert identical(y_lean, y_default)
    assert identical(g_lean, g_default)


@pytest.mark.parametrize("member, at_zero", [("relu", 1.0), ("relu", 0.5), ("leaky_relu", 1.0), ("leaky_relu", 0.3),
                                             ("relu6", 1.0), ("relu6", 0.5), ("elu", 1.0), ("selu", 1.5),
                                             ("rrelu", 0.5)])
def test_lean_is_identical_with_a_chosen_subgradient(member, at_zero):
    x = torch.tensor(np.concatenate([points(member, {}, seed=8), [np.nan]]))
    upstream = torch.rand(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.5
    default = rnn.make(member, at_zero=at_zero).double().eval()
    lean = rnn.make(member, at_zero=at_zero, lean=True).double().eval()
    (y_default, g_default), (y_lean, g_lean) = (forward_backward(m, x, upstream) for m in (default, lean))
    assert identical(y_lean, y_default) and identical(g_lean, g_default)
    assert (g_lean[x == 0] == upstream[x == 0] * at_zero).all()


@pytest.mark.parametrize("member", ["relu", "leaky_relu", "relu6", "rrelu"])
def test_lean_in_place_is_identical_to_the_default_in_place(member):
    x = torch.tensor(points(member, {}, seed=9))
    upstream = torch.rand(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) + 0.5
    default = rnn.make(member, inplace=True).double().eval()
    lean = rnn.make(member, inplace=True, lean=True).double().eval()
    (y_default, g_default), (y_lean, g_lean) = (forward_backward(m, x, upstream) for m in (default, lean))
    assert identical(y_lean, y_default) and identical(g_lean, g_default)


@pytest.mark.parametrize("frozen", [False, True], ids=["learnable", "frozen"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lean_prelu_is_identical_for_input_and_slopes(dtype, frozen):
    x = torch.randn(6, 4, 5, dtype=dtype, generator=torch.Generator().manual_seed(4))
    x[0, :, :2] = 0.0
    upstream = torch.rand(x.shape, dtype=dtype, generator=torch.Generator().manual_seed(5)) + 0.5
    results = []
    for lean in (False, True):
        m = rnn.PReLU(4, lean=lean).to(dtype)
        with torch.no_grad():
            m.weight.copy_(torch.tensor([0.25, -0.5, 0.0, 2.0]))
        m.weight.requires_grad_(not frozen)
        y, g = forward_backward(m, x, upstream)
        results.append((y, g, m.weight.grad))
    (y0, g0, w0), (y1, g1, w1) = results
    assert identical(y1, y0) and identical(g1, g0)
    assert (w0 is None and w1 is None) if frozen else identical(w1, w0)


# -- what is saved ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("member", PIECEWISE)
@pytest.mark.parametrize("shape", [(64, 100), (3, 5, 7)])
def test_piecewise_lean_saves_one_bit_per_element(member, shape):
    x = torch.randn(shape, requires_grad=True) * 1.0
    m = rnn.make(member, lean=True).eval()
    if member == "prelu":
        m.weight.requires_grad_(False)
    saved, _ = saved_by(m, x)
    weights = {p.untyped_storage().data_ptr() for p in m.parameters()}
    activations = [t for t in saved if t.untyped_storage().data_ptr() not in weights]
    assert [(t.dtype, t.numel()) for t in activations] == [(torch.uint8, -(-x.numel() // 8))]
    default = rnn.make(member).eval()
    default_saved, _ = saved_by(default, x)
    weights = {p.untyped_storage().data_ptr() for p in default.parameters()}
    assert [(t.dtype, t.numel()) for t in default_saved if t.untyped_storage().data_ptr() not in weights][:1] == [
        (torch.float32, x.numel())]


def test_lean_prelu_with_learnable_slopes_saves_the_input_as_torch_does():
    x = torch.randn(8, 3, requires_grad=True) * 1.0
    saved, _ = saved_by(rnn.PReLU(3, lean=True), x)
    assert [t.data_ptr() for t in saved if not isinstance(t, torch.nn.Parameter)] == [x.data_ptr()]


def test_lean_rrelu_in_training_saves_only_the_slopes():
    x = torch.randn(64, 10, requires_grad=True) * 1.0
    saved, y = saved_by(rnn.RReLU(lean=True), x)
    assert len(saved) == 1 and saved[0].shape == x.shape and saved[0].data_ptr() != x.data_ptr()
    negative = x < 0
    assert torch.allclose(saved[0][negative], (y / x)[negative])
    torch_saved, _ = saved_by(torch.nn.RReLU(), x)
    assert len(torch_saved) == 2  # torch keeps the input and the slopes


@pytest.mark.parametrize("case", [c for c in CASES if c[1] not in PIECEWISE], ids=lambda c: c[0])
def test_smooth_members_save_a_single_tensor_never_input_and_output(case):
    _, member, params = case
    x = torch.randn(32, 16, requires_grad=True) * 1.0
    saved, y = saved_by(rnn.make(member, lean=True, **params), x)
    storages = {t.untyped_storage().data_ptr() for t in saved}
    if member == "identity":
        assert storages == set()
        return
    assert len(storages) == 1 and saved[0].shape == x.shape
    expected = {"sigmoid": y, "tanh": y}.get(member, x)  # sigmoid' and tanh' come from the output
    if member != "squared_relu":  # squared_relu keeps relu(x), its only intermediate
        assert storages == {expected.untyped_storage().data_ptr()}


def activation_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct tensors a forward pass saves for the backward, parameters excluded."""
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved, _ = saved_by(model, x)
    storages = {}
    for t in saved:
        pointer = t.untyped_storage().data_ptr()
        if pointer not in parameters:
            storages[pointer] = t.untyped_storage().nbytes()
    return sum(storages.values())


@pytest.mark.parametrize("member", ["relu", "leaky_relu", "relu6", "hard_tanh", "hard_sigmoid"])
def test_lean_saves_the_float_tensor_in_a_linear_dropout_model(member):
    torch.manual_seed(0)
    batch, width = 32, 64

    def model(act):
        return torch.nn.Sequential(torch.nn.Linear(16, width), act, torch.nn.Dropout(0.1), torch.nn.Linear(width, 4))

    torch_act = rnn.MODULES[member].torch_counterpart()
    x = torch.randn(batch, 16)
    saved_torch = activation_bytes(model(torch_act), x)
    saved_lean = activation_bytes(model(rnn.make(member, lean=True)), x)
    # The activation's float32 tensor (4 bytes per element) becomes 1 bit per element; nothing else changes.
    assert saved_torch - saved_lean == batch * width * 4 - batch * width // 8
