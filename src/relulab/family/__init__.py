"""The ReLU family as exact NumPy functions: every member defined once, in ``members.py``.

NumPy is this room's only dependency; it imports nothing else from relulab.
"""

from ._core import (
    Activation,
    Kink,
    Param,
    Properties,
    UnknownActivationError,
    get,
    names,
    normalize_name,
    register,
    unregister,
)
from ._gain import leaky_gain, numeric_gain, second_moment
from ._parallel import get_num_threads, set_num_threads
from .members import (
    SELU_ALPHA,
    SELU_SCALE,
    celu,
    elu,
    gelu,
    hard_sigmoid,
    hard_tanh,
    hardswish,
    identity,
    leaky_relu,
    mish,
    prelu,
    quick_gelu,
    relu,
    relu6,
    rrelu,
    selu,
    sigmoid,
    silu,
    softplus,
    squared_relu,
    tanh,
)

from ._docs import docs_table

swish = silu  # alias, the same object

__all__ = [
    "Activation", "Kink", "Param", "Properties", "UnknownActivationError", "get", "names", "normalize_name",
    "register", "unregister", "SELU_ALPHA", "SELU_SCALE", "get_num_threads", "set_num_threads", "second_moment",
    "numeric_gain", "leaky_gain", "docs_table",
    "relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "relu6", "hardswish", "hard_sigmoid", "hard_tanh",
    "squared_relu", "gelu", "silu", "swish", "quick_gelu", "mish", "softplus", "sigmoid", "tanh", "identity",
]
