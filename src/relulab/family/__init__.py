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
from ._docs import docs_table
from ._gain import leaky_gain, numeric_gain, second_moment
from ._parallel import cores, get_num_threads, parallel_for, set_num_threads, stream_status, streaming_threshold_bytes
from .members import SELU_ALPHA, SELU_SCALE  # importing members registers every built-in member

# Every built-in member is an attribute here (relulab.family.relu, and so relulab.relu), read from the registry: a
# member added in members.py needs no line in this file. (Members registered later are reached with get(name).)
_BUILT_IN = names()
globals().update({_name: get(_name) for _name in _BUILT_IN})
swish = get("silu")  # alias, the same object

__all__ = [
    "Activation", "Kink", "Param", "Properties", "UnknownActivationError", "get", "names", "normalize_name",
    "register", "unregister", "SELU_ALPHA", "SELU_SCALE", "get_num_threads", "set_num_threads", "second_moment",
    *_BUILT_IN, "swish",
]
# Public in relulab.family but not re-exported as relulab.*: the gain helpers and docs table (read by relulab.nn, the
# docs test) and the thread pool's tools (read by relulab bench): numeric_gain, leaky_gain, docs_table, cores,
# parallel_for, stream_status, streaming_threshold_bytes.
