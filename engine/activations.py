"""darknet's activation functions by name: the code each kernel takes (an int; an unknown name
is an error at the cfg's line). The functions themselves are in kernels/compiled.py (`activate`,
one scalar Numba function) and kernels/portable.py (`activate_array`).
"""

from __future__ import annotations

ACTIVATIONS = {
    "linear": 0,
    "leaky": 1,
    "relu": 2,
    "logistic": 3,
    "tanh": 4,
    "elu": 5,
    "relie": 6,
    "ramp": 7,
    "hardtan": 8,
    "lhtan": 9,
    "loggy": 10,
    "selu": 11,
    "plse": 12,
    "stair": 13,
}
LINEAR = ACTIVATIONS["linear"]


def activation_code(name: str, section) -> int:
    """Code of an activation name; an unknown name is an error at the option's line."""
    try:
        return ACTIVATIONS[name.lower()]
    except KeyError:
        known = ", ".join(ACTIVATIONS)
        raise section.error(f"unknown activation '{name}' (known: {known})", "activation") from None


def is_monotonic(code: int) -> bool:
    """max(f(a), f(b)) == f(max(a, b)): lets a fused max pool activate once per window."""
    return code not in (ACTIVATIONS["stair"],)
