"""Compiled kernels for the single-pass members, by numba (the optional ``relulab[fast]`` extra).

Why these exist: relu, leaky_relu, the clamps (relu6, hard_tanh, hard_sigmoid) and their derivatives do a comparison
or two per element, so their speed is the memory's. NumPy gets well under it: ``np.maximum(x, 0, out=y)`` runs at
~10 GB/s even in cache (its NaN-aware loop), np.heaviside and np.where branch on every element, and any ufunc
writing ``out`` makes the core read each output cache line before overwriting it (read-for-ownership), three bytes
moved for every two a copy moves. These kernels do the comparisons on a whole 64-byte line at a time and, for arrays
larger than the cache (``streaming``), write it with a non-temporal store, as ``memcpy`` does for large copies: copy
speed.

Each kernel handles elements ``[start, stop)`` of flat C-contiguous arrays, is compiled with ``nogil=True`` (the
thread pool in ``_parallel.py`` hands each thread its chunks) and ``cache=True`` (compiled once per machine, then
loaded from ``__pycache__`` in ~0.1 s). The vector part is LLVM IR (:func:`_block`): 64 bytes of x loaded, the
member's comparisons and selects, 64 bytes stored to a 64-byte aligned address; a scalar loop does the unaligned
head and the tail with the same comparisons. The results equal the NumPy kernels in ``members.py`` bit for bit
(tests/family/test_fast.py); each ``*_lanes`` function below names the NumPy expression it reproduces.

Importing this module imports numba; ``import relulab`` never does (``_parallel.py`` imports it on first need).
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, errors, njit, types
from numba.extending import intrinsic
from numba.np.unsafe.ndarray import to_fixed_tuple

__all__ = ["relu_forward", "relu_derivative", "leaky_forward", "leaky_derivative", "clip_forward", "clip_derivative",
           "relu_forward_mask", "mask_backward", "LINE_BYTES", "publish", "wait_for_count", "work", "gang", "entry"]

LINE_BYTES = 64  # one cache line, and one 512-bit vector: a block of 16 float32 or 8 float64
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _splat(builder, value, vector_type):
    """A vector with every lane equal to the scalar ``value``."""
    i32 = ir.IntType(32)
    lanes = vector_type.count
    one = builder.insert_element(ir.Constant(vector_type, ir.Undefined), value, ir.Constant(i32, 0))
    return builder.shuffle_vector(one, ir.Constant(vector_type, ir.Undefined), ir.Constant(ir.VectorType(i32, lanes),
                                                                                           [0] * lanes))


def _block(compute, scalars, streaming):
    """An intrinsic ``block(x, y, i, *scalars) -> bits`` for one 64-byte vector of lanes starting at element i.

    ``compute(builder, v, scalars, vector_type) -> (result, bits)`` maps the loaded vector to the stored one; bits
    is an ``<lanes x i1>`` returned as an int64 bit mask (lane k in bit k) or None (then 0 is returned). With
    ``streaming`` the store is non-temporal. The store assumes y + i is 64-byte aligned (the caller's loop
    guarantees it). ``scalars`` is how many scalar arguments follow i (0, 1, 2 or 4: numba's intrinsics take no
    *args); they are cast to x's dtype.
    """

    def codegen(context, builder, signature, args):
        dtype = signature.args[0].dtype
        xa = context.make_array(signature.args[0])(context, builder, args[0])
        ya = context.make_array(signature.args[1])(context, builder, args[1])
        vector_type = ir.VectorType(context.get_data_type(dtype), LINE_BYTES * 8 // dtype.bitwidth)
        source = builder.bitcast(builder.gep(xa.data, [args[2]]), vector_type.as_pointer())
        target = builder.bitcast(builder.gep(ya.data, [args[2]]), vector_type.as_pointer())
        v = builder.load(source, align=dtype.bitwidth // 8)
        scalar_args = [context.cast(builder, a, t, dtype) for a, t in zip(args[3:], signature.args[3:])]
        result, bits = compute(builder, v, scalar_args, vector_type)
        store = builder.store(result, target, align=LINE_BYTES)
        if streaming:
            store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
        if bits is None:
            return ir.Constant(ir.IntType(64), 0)
        return builder.zext(builder.bitcast(bits, ir.IntType(vector_type.count)), ir.IntType(64))

    if scalars == 0:
        def typer(typingctx, x, y, i):
            return types.int64(x, y, i), codegen
    elif scalars == 1:
        def typer(typingctx, x, y, i, a):
            return types.int64(x, y, i, a), codegen
    elif scalars == 2:
        def typer(typingctx, x, y, i, a, b):
            return types.int64(x, y, i, a, b), codegen
    else:
        def typer(typingctx, x, y, i, a, b, c, d):
            return types.int64(x, y, i, a, b, c, d), codegen
    return intrinsic(typer)


def _relu_lanes(builder, v, scalars, vt):
    # np.maximum(x, 0): x where x > 0 or x is NaN ("ugt": unordered or greater), else +0.0 (so relu(-0.0) = +0.0).
    keep = builder.fcmp_unordered(">", v, ir.Constant(vt, None))
    return builder.select(keep, v, ir.Constant(vt, None)), keep


def _relu_derivative_lanes(builder, v, scalars, vt):
    # np.heaviside(x, at_zero): 1 for x > 0, at_zero for x == 0, 0 for x < 0, NaN (NumPy's canonical NaN) for NaN.
    (at_zero,) = scalars
    zero = ir.Constant(vt, None)
    grad = builder.select(builder.fcmp_ordered(">", v, zero), ir.Constant(vt, [1.0] * vt.count), zero)
    grad = builder.select(builder.fcmp_ordered("==", v, zero), _splat(builder, at_zero, vt), grad)
    grad = builder.select(builder.fcmp_unordered("uno", v, v), ir.Constant(vt, [float("nan")] * vt.count), grad)
    return grad, None


def _leaky_lanes(builder, v, scalars, vt):
    # np.where(x > 0, x, x * slope): NaN takes the product branch, which keeps the NaN.
    (slope,) = scalars
    product = builder.fmul(v, _splat(builder, slope, vt))
    return builder.select(builder.fcmp_ordered(">", v, ir.Constant(vt, None)), v, product), None


def _leaky_derivative_lanes(builder, v, scalars, vt):
    # where(x > 0, 1, slope), then where(x == 0, at_zero, .), then x itself where x is NaN (_nan_where_nan).
    slope, at_zero = scalars
    zero = ir.Constant(vt, None)
    grad = builder.select(builder.fcmp_ordered(">", v, zero), ir.Constant(vt, [1.0] * vt.count),
                          _splat(builder, slope, vt))
    grad = builder.select(builder.fcmp_ordered("==", v, zero), _splat(builder, at_zero, vt), grad)
    return builder.select(builder.fcmp_unordered("uno", v, v), v, grad), None


def _mask_select_lanes(builder, v, scalars, vt):
    # np.where(bit, g, 0): the bits arrive as an integer, lane k in bit k.
    (bits,) = scalars
    lanes = builder.bitcast(builder.trunc(bits, ir.IntType(vt.count)), ir.VectorType(ir.IntType(1), vt.count))
    return builder.select(lanes, v, ir.Constant(vt, None)), None


def _clip_lanes(builder, v, scalars, vt):
    # low where x <= low, high where x >= high, else x itself (-0.0 stays -0.0 inside): relu6, hard_tanh. NaN fails
    # both ordered comparisons, so it is kept as it is.
    _, _, low, high = scalars
    low, high = _splat(builder, low, vt), _splat(builder, high, vt)
    return builder.select(builder.fcmp_ordered("<=", v, low), low,
                          builder.select(builder.fcmp_ordered(">=", v, high), high, v)), None


def _clip_affine_lanes(builder, v, scalars, vt):
    # min(max(x + offset, low), high) / divisor (hard_sigmoid: offset 3, divisor 6), the offset added only where it
    # is not 0 (so -0.0 inside the range stays -0.0), NaN kept.
    offset, divisor, low, high = scalars
    added = builder.fcmp_ordered("!=", offset, ir.Constant(offset.type, 0.0))
    u = builder.select(added, builder.fadd(v, _splat(builder, offset, vt)), v)
    low, high = _splat(builder, low, vt), _splat(builder, high, vt)
    r = builder.select(builder.fcmp_ordered("<=", u, low), low,
                       builder.select(builder.fcmp_ordered(">=", u, high), high, u))
    r = builder.fdiv(r, _splat(builder, divisor, vt))
    return builder.select(builder.fcmp_unordered("uno", v, v), v, r), None


def _clip_slope_lanes(builder, v, scalars, vt):
    # inside where low < x < high, at_low where x == low, 0 elsewhere (also at high), NaN kept.
    low, high, inside, at_low = scalars
    within = builder.and_(builder.fcmp_ordered(">", v, _splat(builder, low, vt)),
                          builder.fcmp_ordered("<", v, _splat(builder, high, vt)))
    r = builder.select(within, _splat(builder, inside, vt),
                       builder.select(builder.fcmp_ordered("==", v, _splat(builder, low, vt)),
                                      _splat(builder, at_low, vt), ir.Constant(vt, None)))
    return builder.select(builder.fcmp_unordered("uno", v, v), v, r), None


_relu_block = _block(_relu_lanes, 0, False)
_relu_derivative_block = _block(_relu_derivative_lanes, 1, False)
_leaky_block = _block(_leaky_lanes, 1, False)
_leaky_derivative_block = _block(_leaky_derivative_lanes, 2, False)
_relu_stream_block = _block(_relu_lanes, 0, True)
_relu_derivative_stream_block = _block(_relu_derivative_lanes, 1, True)
_leaky_stream_block = _block(_leaky_lanes, 1, True)
_leaky_derivative_stream_block = _block(_leaky_derivative_lanes, 2, True)
_clip_block = _block(_clip_lanes, 4, False)
_clip_stream_block = _block(_clip_lanes, 4, True)
_clip_affine_block = _block(_clip_affine_lanes, 4, False)
_clip_affine_stream_block = _block(_clip_affine_lanes, 4, True)
_clip_slope_block = _block(_clip_slope_lanes, 4, False)
_clip_slope_stream_block = _block(_clip_slope_lanes, 4, True)


def _either(plain, streaming_block):
    """``blocks(x, y, i, streaming, scalars)``: one line by ``streaming_block`` (non-temporal store) or ``plain``."""
    @njit(inline="always")
    def blocks(x, y, i, streaming, scalars):
        if streaming:
            streaming_block(x, y, i, *scalars)
        else:
            plain(x, y, i, *scalars)

    return blocks


_relu_blocks = _either(_relu_block, _relu_stream_block)
_relu_slope_blocks = _either(_relu_derivative_block, _relu_derivative_stream_block)
_leaky_blocks = _either(_leaky_block, _leaky_stream_block)
_leaky_slope_blocks = _either(_leaky_derivative_block, _leaky_derivative_stream_block)
_clip_blocks = _either(_clip_block, _clip_stream_block)
_clip_affine_blocks = _either(_clip_affine_block, _clip_affine_stream_block)
_clip_slope_blocks = _either(_clip_slope_block, _clip_slope_stream_block)


@intrinsic
def _mask_select_block(typingctx, g, y, i, bits, streaming):
    # The bits are an int64, not the vector's dtype, so this block skips _block's scalar casts.
    def codegen(context, builder, signature, args):
        ga = context.make_array(signature.args[0])(context, builder, args[0])
        ya = context.make_array(signature.args[1])(context, builder, args[1])
        element = context.get_data_type(signature.args[0].dtype)
        vector_type = ir.VectorType(element, LINE_BYTES * 8 // signature.args[0].dtype.bitwidth)
        source = builder.bitcast(builder.gep(ga.data, [args[2]]), vector_type.as_pointer())
        target = builder.bitcast(builder.gep(ya.data, [args[2]]), vector_type.as_pointer())
        v = builder.load(source, align=signature.args[0].dtype.bitwidth // 8)
        result, _ = _mask_select_lanes(builder, v, [args[3]], vector_type)
        store = builder.store(result, target, align=LINE_BYTES)
        if streaming.literal_value:
            store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))

    if not isinstance(streaming, types.BooleanLiteral):
        raise errors.RequireLiteralValue("streaming must be a literal True or False")
    return types.void(g, y, i, bits, streaming), codegen


def _x86(builder, name: str) -> None:
    """Call the x86 instruction ``name`` (an LLVM intrinsic without arguments or result)."""
    builder.call(builder.module.declare_intrinsic(name, fnty=ir.FunctionType(ir.VoidType(), [])), [])


@intrinsic
def _store_fence(typingctx):
    # Streaming stores are weakly ordered: fence them before another thread may read the output.
    def codegen(context, builder, signature, args):
        if _X86:
            _x86(builder, "llvm.x86.sse.sfence")
        else:
            builder.fence("seq_cst")

    return types.void(), codegen


@njit(inline="always")
def _aligned_start(y, start, stop):
    """The first index >= start at which y's element lies on a 64-byte boundary (or stop)."""
    lanes = LINE_BYTES // y.itemsize
    offset = (y.ctypes.data // y.itemsize + start) % lanes
    return min(stop, start + (lanes - offset) % lanes)


# -- the kernels: y[start:stop] = f(x[start:stop]); scalar head and tail, streaming blocks in between ----------------
@njit(inline="always")
def _lines(x, y, start, stop, streaming, element, blocks, scalars):
    """y[i] = element(x[i], scalars) for i in [start, stop): one element at a time up to the first 64-byte boundary
    of y and after the last whole line, ``blocks(x, y, i, streaming, scalars)`` (a line's lanes at once) between."""
    lanes = LINE_BYTES // y.itemsize
    i, head = start, _aligned_start(y, start, stop)
    while i < stop:
        if i < head or i > stop - lanes:
            y[i] = element(x[i], scalars)
            i += 1
        else:
            while i <= stop - lanes:
                blocks(x, y, i, streaming, scalars)
                i += lanes
    if streaming:
        _store_fence()


@njit(inline="always")
def _relu(v, scalars):
    return v if (v > 0 or v != v) else 0.0


@njit(nogil=True, cache=True)
def relu_forward(x, y, start, stop, streaming):
    _lines(x, y, start, stop, streaming, _relu, _relu_blocks, ())


@njit(nogil=True, cache=True)
def bias_relu_forward(x, y, start, stop, streaming, bias, flagged):
    """y[i] = relu(x[i] + bias[i % bias.size]) on [start, stop): x is rows of bias.size elements, each sum formed
    in a register (``fused.bias_activation``). Sets ``flagged[0]`` when a sum is NaN or infinite (the caller then
    redoes the sum with NumPy, which warns or raises about invalid values and overflow as its error state says).
    Plain stores: ``streaming`` is taken for the gang's signature."""
    row = bias.size
    zero = y.dtype.type(0)
    unusual = 0
    i = start
    j = start % row
    while i < stop:
        m = min(stop - i, row - j)
        xs, ys, bs = x[i:i + m], y[i:i + m], bias[j:j + m]
        for k in range(m):
            v = xs[k] + bs[k]
            ys[k] = zero if v <= zero else v  # one compare, so the loop vectorises: NaN is kept, -0.0 becomes +0.0
            unusual += 1 if v - v != zero else 0  # NaN or +-inf (for finite v, v - v is 0 exactly)
        i += m
        j = 0
    if unusual:
        flagged[0] = 1


@njit(inline="always")
def _relu_slope(v, scalars):
    (at_zero,) = scalars
    return 1.0 if v > 0 else (at_zero if v == 0 else (np.nan if v != v else 0.0))


@njit(nogil=True, cache=True)
def relu_derivative(x, y, start, stop, streaming, at_zero):
    _lines(x, y, start, stop, streaming, _relu_slope, _relu_slope_blocks, (at_zero,))


@njit(inline="always")
def _leaky(v, scalars):
    (slope,) = scalars
    return v if v > 0 else v * slope


@njit(nogil=True, cache=True)
def leaky_forward(x, y, start, stop, streaming, slope):
    _lines(x, y, start, stop, streaming, _leaky, _leaky_blocks, (slope,))


@njit(inline="always")
def _leaky_slope(v, scalars):
    slope, at_zero = scalars
    return 1.0 if v > 0 else (at_zero if v == 0 else (v if v != v else slope))


@njit(nogil=True, cache=True)
def leaky_derivative(x, y, start, stop, streaming, slope, at_zero):
    _lines(x, y, start, stop, streaming, _leaky_slope, _leaky_slope_blocks, (slope, at_zero))


@njit(inline="always")
def _clip(v, scalars):
    offset, divisor, low, high = scalars
    u = v + offset if offset != 0 else v
    r = low if u <= low else (high if u >= high else u)
    return (r if divisor == 1 else r / divisor) if v == v else v


@njit(nogil=True, cache=True)
def clip_forward(x, y, start, stop, streaming, offset, divisor, low, high):
    """y = min(max(x + offset, low), high) / divisor: relu6 (0, 1, 0, 6), hard_tanh (0, 1, min_val, max_val),
    hard_sigmoid (3, 6, 0, 6). The offset is added only where it is not 0 and the division made only where the
    divisor is not 1, so -0.0 inside the range stays -0.0 and relu6(-0.0) is +0.0 (the range's end); NaN stays."""
    scalars = (offset, divisor, low, high)
    if offset != 0 or divisor != 1:
        _lines(x, y, start, stop, streaming, _clip, _clip_affine_blocks, scalars)
    else:
        _lines(x, y, start, stop, streaming, _clip, _clip_blocks, scalars)


@njit(inline="always")
def _clip_slope(v, scalars):
    low, high, inside, at_low = scalars
    r = inside if (v > low and v < high) else (at_low if v == low else 0.0)
    return r if v == v else v


@njit(nogil=True, cache=True)
def clip_derivative(x, y, start, stop, streaming, low, high, inside, at_low):
    """y = inside where low < x < high, at_low where x == low (relu6's at_zero), 0 elsewhere; NaN stays."""
    _lines(x, y, start, stop, streaming, _clip_slope, _clip_slope_blocks, (low, high, inside, at_low))


@njit(nogil=True, cache=True)
def relu_forward_mask(x, y, mask, start, stop, streaming):
    """relu into y[start:stop] and bit i of the packed mask = not (x[i] <= 0); start must be a multiple of 8."""
    lanes = LINE_BYTES // y.itemsize
    i, head = start, _aligned_start(y, start, stop)
    byte = start // 8
    pending = 0  # mask bits computed but not yet written, lowest first
    count = 0
    while i < stop:
        if i < head or i > stop - lanes:
            v = x[i]
            keep = v > 0 or v != v
            y[i] = v if keep else 0.0
            pending |= np.int64(keep) << count
            count += 1
            i += 1
        else:
            bits = _relu_stream_block(x, y, i) if streaming else _relu_block(x, y, i)
            pending |= bits << count
            count += lanes
            i += lanes
        while count >= 8:
            mask[byte] = pending & 0xFF
            pending >>= 8
            count -= 8
            byte += 1
    if count > 0:
        mask[byte] = pending & 0xFF
    if streaming:
        _store_fence()


@njit(nogil=True, cache=True)
def mask_backward(g, mask, y, start, stop, streaming):
    """y[i] = g[i] where bit i of the packed mask is set, else +0.0."""
    lanes = LINE_BYTES // y.itemsize
    i, head = start, _aligned_start(y, start, stop)
    while i < stop:
        byte, shift = i // 8, i % 8
        if i < head or i > stop - lanes:
            y[i] = g[i] if (mask[byte] >> shift) & 1 else 0.0
            i += 1
        else:
            bits = np.int64(mask[byte])
            if lanes == 16:
                bits |= np.int64(mask[byte + 1]) << 8
            if shift > 0:  # the block's last bits lie in the next byte, which exists since i + lanes <= stop
                bits |= np.int64(mask[byte + lanes // 8]) << (lanes // 8 * 8)
            if streaming:
                _mask_select_block(g, y, i, bits >> shift, True)
            else:
                _mask_select_block(g, y, i, bits >> shift, False)
            i += lanes
    if streaming:
        _store_fence()


# -- the thread pool's compiled side (family/_parallel.py): no worker needs the GIL between back-to-back jobs --------
# A worker watches its cell of ``slots`` in compiled code that holds no GIL. A gang call (:func:`gang`) puts the
# address of its *descriptor* (an int64 array, fields below) there; the worker claims it by swapping the cell back
# to 0 and runs the call's kernel on chunks through the kernel's C entry (:func:`entry`), then watches again, all
# without returning to Python. A worker that went through Python between jobs needed the GIL, and on a virtual
# machine the OS hands the GIL over in tens of microseconds: more than a whole call on an array that fits the cache.
@intrinsic
def _load_acquire(typingctx, cells, i):
    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.load_atomic(builder.gep(array.data, [args[1]]), "acquire", 8)

    return types.int64(cells, i), codegen


@intrinsic
def _fetch_add(typingctx, cells, i, value):
    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", builder.gep(array.data, [args[1]]), args[2], "acq_rel")

    return types.int64(cells, i, value), codegen


@intrinsic
def _compare_exchange(typingctx, cells, i, expected, new):
    # cells[i] = new if cells[i] == expected; the value cells[i] had.
    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        pair = builder.cmpxchg(builder.gep(array.data, [args[1]]), args[2], args[3], "acq_rel", "acquire")
        return builder.extract_value(pair, 0)

    return types.int64(cells, i, expected, new), codegen


@intrinsic
def _pause(typingctx):
    # The spin-wait hint (x86's pause): the core slows the loop down and gives way to its sibling hyperthread.
    def codegen(context, builder, signature, args):
        if _X86:
            _x86(builder, "llvm.x86.sse2.pause")
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def _address(typingctx, array):
    """The address of ``array``'s first element, as an int64."""
    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.ptrtoint(data, ir.IntType(64))

    return types.int64(array), codegen


@intrinsic
def _pointer(typingctx, address, like):
    """The int64 ``address`` as a pointer to elements of ``like``'s dtype (for ``numba.carray``)."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return types.CPointer(like.dtype)(address, like), codegen


_I64 = ir.IntType(64)
_ENTRY_TYPE = ir.FunctionType(ir.VoidType(), [_I64] * 6)


@intrinsic
def _call_entry(typingctx, function, x, y, start, stop, streaming, scalars):
    """Call the C function at address ``function`` (an :func:`entry`) with the six int64s after it."""
    def codegen(context, builder, signature, args):
        builder.call(builder.inttoptr(args[0], _ENTRY_TYPE.as_pointer()), list(args[1:]))
        return context.get_dummy_value()

    return types.none(function, x, y, start, stop, streaming, scalars), codegen


#: The fields of a gang call's descriptor (an int64 array of DESCRIPTOR cells). ENTRY: the kernel's C entry;
#: SOURCE, TARGET: the arrays' addresses; SIZE, CHUNK: the elements and the chunk; STREAMING: 0 or 1; SCALARS: the
#: address of the kernel's scalar cells; TAKEN: the chunks not yet taken, front + back << 32 (the caller takes from
#: the front, the helpers from the back); JOINED: helpers that claimed the call; DONE: helpers done with it.
ENTRY, SOURCE, TARGET, SIZE, CHUNK, STREAMING, SCALARS = range(7)
TAKEN, JOINED, DONE = 8, 9, 10
DESCRIPTOR = 16
_HALF = np.int64(1) << 32
#: What :func:`work` returns: no job came for ``spins`` rounds; a Python job was claimed; the pool is closed.
IDLE, PYTHON, STOP = 0, 1, 2
#: A slot's value for a Python job (``_parallel._Job``; a descriptor's address is never this small).
PYTHON_JOB = 1
#: The most helpers a gang call offers work to (its bit set of offers is one int64).
MAX_HELPERS = 62


@njit(inline="always")
def _take(cells, from_front):
    """The index of the next chunk (from the front or the back), or -1 when none is left."""
    while True:
        state = _load_acquire(cells, TAKEN)
        front, back = state & (_HALF - 1), state >> 32
        if front >= back:
            return -1
        new = state + 1 if from_front else state - _HALF
        if _compare_exchange(cells, TAKEN, state, new) == state:
            return front if from_front else back - 1


@njit(inline="always")
def _run_chunks(d, from_front):
    function, x, y, n, chunk, streaming, scalars = d[ENTRY], d[SOURCE], d[TARGET], d[SIZE], d[CHUNK], d[STREAMING], \
        d[SCALARS]
    while True:
        index = _take(d, from_front)
        if index < 0:
            return
        start = index * chunk
        _call_entry(function, x, y, start, min(n, start + chunk), streaming, scalars)


@njit(inline="always")
def _wait_count(cells, i, count, spins):
    for _ in range(spins):
        if _load_acquire(cells, i) >= count:
            return True
        _pause()
    return _load_acquire(cells, i) >= count


@njit(nogil=True, cache=True)
def publish(cells, i, expected, new):
    """``cells[i] = new`` if it is ``expected`` (atomically); whether it was."""
    return _compare_exchange(cells, i, expected, new) == expected


@njit(nogil=True, cache=True)
def wait_for_count(cells, i, count, spins):
    """Wait up to ``spins`` rounds for ``cells[i] >= count``; whether it is."""
    return _wait_count(cells, i, count, spins)


@njit(nogil=True, cache=True)
def work(slots, k, spins, done, j):
    """Worker ``k``'s loop: first ``done[j] += 1`` (atomically, without the GIL: whoever waits for it may take the
    GIL at once), then run every gang call put in ``slots[k]`` until none comes for ``spins`` rounds (IDLE), a Python
    job is put there (PYTHON, claimed: the caller runs it) or ``slots[-1]`` is set (STOP)."""
    _fetch_add(done, j, 1)
    stop = slots.size - 1
    like = slots[:1]
    while True:
        found = 0
        for _ in range(spins):
            found = _load_acquire(slots, k)
            if found != 0 or _load_acquire(slots, stop) != 0:
                break
            _pause()
        if _load_acquire(slots, stop) != 0:
            return STOP
        if found == 0:
            return IDLE
        if _compare_exchange(slots, k, found, 0) != found:
            continue  # the caller took its offer back (it had no chunk left)
        if found == PYTHON_JOB:
            return PYTHON
        d = carray(_pointer(found, like), DESCRIPTOR)
        _run_chunks(d, False)
        _fetch_add(d, DONE, 1)  # the last touch of the call: after it the caller may free d, x and y


@njit(nogil=True, cache=True)
def gang(x, y, n, chunk, streaming, function, scalars, slots, helpers, spins, descriptor):
    """The caller's part of a gang call: ``function`` (a kernel's :func:`entry`) over ``[0, n)`` of ``x`` into
    ``y`` in chunks of ``chunk``, offered to workers ``0 .. helpers - 1`` (at most :data:`MAX_HELPERS`) through
    their ``slots`` and the ``descriptor`` (those two and ``scalars`` are int64 arrays given by their addresses,
    which stay the same from call to call). The caller takes chunks from the front, takes back the offers no
    worker claimed, then waits up to ``spins`` rounds for the helpers that did; it returns whether they are done
    (if not, wait with ``wait_for_count(descriptor, DONE, descriptor[JOINED], ...)``: until then the descriptor,
    x, y and the scalars are in use)."""
    like = np.zeros(0, np.int64)
    d, offers = carray(_pointer(descriptor, like), DESCRIPTOR), carray(_pointer(slots, like), helpers)
    d[ENTRY], d[SOURCE], d[TARGET], d[SIZE], d[CHUNK] = function, _address(x), _address(y), n, chunk
    d[STREAMING], d[SCALARS], d[JOINED], d[DONE] = 1 if streaming else 0, scalars, 0, 0
    d[TAKEN] = ((n + chunk - 1) // chunk) << 32
    offered = 0
    for k in range(min(helpers, MAX_HELPERS)):  # (the exchange publishes d's fields to the worker that claims it)
        if _compare_exchange(offers, k, 0, descriptor) == 0:
            offered |= np.int64(1) << k
    _run_chunks(d, True)
    joined = 0
    for k in range(min(helpers, MAX_HELPERS)):
        if offered >> k & 1 and _compare_exchange(offers, k, descriptor, 0) != descriptor:
            joined += 1  # claimed: that worker works on d until it adds to DONE
    d[JOINED] = joined
    return _wait_count(d, DONE, joined, spins)


_ENTRY = types.void(types.int64, types.int64, types.int64, types.int64, types.int64, types.int64)


@njit(inline="always")
def _flat(address, like, size):
    return carray(_pointer(address, like), size)


def entry(kernel, dtype, kinds: str):
    """A C function ``f(x, y, start, stop, streaming, scalars)`` (int64s: addresses, indices, 0 or 1) that calls
    ``kernel(x, y, start, stop, streaming, *scalars)`` on the flat arrays of ``dtype`` at those addresses, for
    :func:`gang` and :func:`work`. ``kinds`` says what the kernel's scalars are, in order: ``"f" * n``, n of
    ``dtype`` (their cells: n values of ``dtype``), or ``"aa"``, two arrays (cells: the first's
    address and size, of ``dtype``; the second's, of int64). The kernel is compiled into it, per process
    (~0.1-0.2 s): numba cannot cache a function made here."""
    like, ints = np.zeros(1, dtype), np.zeros(1, np.int64)
    count = len(kinds)
    if kinds == "f" * count:
        def call(x, y, start, stop, streaming, cells):
            kernel(_flat(x, like, stop), _flat(y, like, stop), start, stop, streaming != 0,
                   *to_fixed_tuple(_flat(cells, like, count), count))
    elif kinds == "aa":
        def call(x, y, start, stop, streaming, cells):
            s = _flat(cells, ints, 4)
            kernel(_flat(x, like, stop), _flat(y, like, stop), start, stop, streaming != 0, _flat(s[0], like, s[1]),
                   _flat(s[2], ints, s[3]))
    else:
        raise ValueError(f"entry: kinds must be 'f' repeated (or '') or 'aa'; got {kinds!r}")
    return cfunc(_ENTRY, nopython=True)(call)
