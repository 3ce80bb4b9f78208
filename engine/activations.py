"""darknet's activation functions: a name → code registry and one scalar Numba function.

Kernels take the code as an int and call `activate` per element; LLVM hoists the branch out
of the inner loops, so a fused epilogue costs the same as a specialised one.
"""
from __future__ import annotations

import math

from numba import njit

ACTIVATIONS = {
    "linear": 0, "leaky": 1, "relu": 2, "logistic": 3, "tanh": 4, "elu": 5, "relie": 6,
    "ramp": 7, "hardtan": 8, "lhtan": 9, "loggy": 10, "selu": 11, "plse": 12, "stair": 13,
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


@njit(cache=True, nogil=True, inline="always")
def activate(x, code):
    if code == 0:
        return x
    if code == 1:                       # leaky
        return x if x > 0 else x * 0.1
    if code == 2:                       # relu
        return x if x > 0 else x * 0
    if code == 3:                       # logistic
        return 1 / (1 + math.exp(-x))
    if code == 4:                       # tanh
        return math.tanh(x)
    if code == 5:                       # elu
        return x if x >= 0 else math.exp(x) - 1
    if code == 6:                       # relie
        return x if x > 0 else x * 0.01
    if code == 7:                       # ramp
        return (x if x > 0 else x * 0) + 0.1 * x
    if code == 8:                       # hardtan
        return -1.0 if x < -1 else (1.0 if x > 1 else x)
    if code == 9:                       # lhtan
        return 0.001 * x if x < 0 else (0.001 * (x - 1) + 1 if x > 1 else x)
    if code == 10:                      # loggy
        return 2 / (1 + math.exp(-x)) - 1
    if code == 11:                      # selu
        return 1.0507 * x if x >= 0 else 1.0507 * 1.6732 * (math.exp(x) - 1)
    if code == 12:                      # plse
        if x < -4:
            return 0.01 * (x + 4)
        if x > 4:
            return 0.01 * (x - 4) + 1
        return 0.125 * x + 0.5
    # stair
    n = math.floor(x)
    if n % 2 == 0:
        return math.floor(x / 2)
    return (x - n) + math.floor(x / 2)
