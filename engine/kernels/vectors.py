"""Float vectors for Numba kernels: a type per width and the few operations direct.py's register
tiles (and the FMA peak probe, peak.py) need, each one LLVM instruction.

Numba has no vector type: a tile written as scalar sums leaves LLVM's SLP vectorizer to find the
vectors again. Written with these, the tile needs no vectorizer: measured on this project's
machine (one thread, the 4x16 tile alone on a 16x24 map): 92-96 GFLOP/s at 32 and 64 input
channels against 80-85 for the scalar sums, and it compiles in about 1 s instead of about 10.

`ops(lanes)` gives the operations for 8 floats (AVX2) or 16 (AVX-512). A function holding 16-float
vectors is marked "min-legal-vector-width"="512": LLVM splits 512-bit vectors into 256-bit halves
on CPUs whose tuning prefers 256-bit operations (Intel's Skylake-X to Ice Lake tunings) unless
the function asks for them whole; on CPUs without AVX-512 it always runs them as two halves.

Indices are element offsets into a float32 array, unchecked (as the kernels' unsigned indices
are). Under NUMBA_DISABLE_JIT the same operations run as plain numpy, so the kernels' Python
source can still be tested line by line.
"""

from __future__ import annotations

import numpy as np
from numba.core import config

WIDTHS = (8, 16)  # the vector widths there are operations for
WIDE_ATTRIBUTE = '"min-legal-vector-width"="512"'
OPERATIONS = ("vzero", "vload", "vsplat", "vfill", "vfma", "vadd", "vmul", "vmax", "vget", "vstore")


def _numpy_ops(lanes: int) -> dict:
    def vzero():
        return np.zeros(lanes, np.float32)

    def vload(arr, i):
        return arr[int(i) : int(i) + lanes].copy()

    def vsplat(arr, i):
        return np.full(lanes, arr[int(i)], np.float32)

    def vfill(value):
        return np.full(lanes, value, np.float32)

    def vfma(a, b, c):
        # a*b+c rounded once, as the compiled FMA: exact in float64, then one rounding
        return (a.astype(np.float64) * b + c).astype(np.float32)

    def vadd(a, b):
        return (a + b).astype(np.float32)

    def vmul(a, b):
        return (a * b).astype(np.float32)

    def vmax(a, b):
        return np.where(b > a, b, a)

    def vget(v, lane):
        return v[lane]

    def vstore(arr, i, v):
        arr[int(i) : int(i) + lanes] = v

    defined = locals()
    return {name: defined[name] for name in OPERATIONS}


def _compiled_ops(lanes: int) -> dict:
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.core.extending import intrinsic, models, register_model

    class Vec(types.Type):
        def __init__(self):
            super().__init__(name=f"vec{lanes}")

    vec = Vec()
    vector = ir.VectorType(ir.FloatType(), lanes)

    @register_model(Vec)
    class _VecModel(models.PrimitiveModel):
        def __init__(self, dmm, fe_type):
            super().__init__(dmm, fe_type, vector)

    def address(context, builder, array_type, array, index):
        if lanes > 8:
            # the function holding these vectors keeps them whole (see the module's docstring)
            set.add(builder.function.attributes, WIDE_ATTRIBUTE)
        data = context.make_array(array_type)(context, builder, array).data
        return builder.gep(data, [index], inbounds=True)

    def splat(builder, scalar):
        one = builder.insert_element(ir.Constant(vector, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(
            one, ir.Constant(vector, ir.Undefined), ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
        )

    @intrinsic
    def vzero(typingctx):
        def codegen(context, builder, sig, args):
            return ir.Constant(vector, [0.0] * lanes)

        return vec(), codegen

    @intrinsic
    def vload(typingctx, arr, i):
        """arr[i:i+lanes] (unaligned)."""

        def codegen(context, builder, sig, args):
            at = address(context, builder, sig.args[0], args[0], args[1])
            return builder.load(builder.bitcast(at, vector.as_pointer()), align=4)

        return vec(arr, i), codegen

    @intrinsic
    def vsplat(typingctx, arr, i):
        """arr[i] in every lane (one broadcast from memory)."""

        def codegen(context, builder, sig, args):
            return splat(builder, builder.load(address(context, builder, sig.args[0], args[0], args[1]), align=4))

        return vec(arr, i), codegen

    @intrinsic
    def vfill(typingctx, value):
        """A float32 in every lane."""

        def codegen(context, builder, sig, args):
            return splat(builder, args[0])

        return vec(types.float32), codegen

    @intrinsic
    def vfma(typingctx, a, b, c):
        """a*b + c, rounded once."""

        def codegen(context, builder, sig, args):
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vector, [vector] * 3), f"llvm.fma.v{lanes}f32"
            )
            return builder.call(fma, args)

        return vec(vec, vec, vec), codegen

    @intrinsic
    def vadd(typingctx, a, b):
        def codegen(context, builder, sig, args):
            return builder.fadd(*args)

        return vec(vec, vec), codegen

    @intrinsic
    def vmul(typingctx, a, b):
        def codegen(context, builder, sig, args):
            return builder.fmul(*args)

        return vec(vec, vec), codegen

    @intrinsic
    def vmax(typingctx, a, b):
        """Python's max(a, b) per lane: b where b > a, else a (so max(-1, -0.0) is -0.0, as darknet's)."""

        def codegen(context, builder, sig, args):
            a, b = args
            return builder.select(builder.fcmp_ordered(">", b, a), b, a)

        return vec(vec, vec), codegen

    @intrinsic
    def vget(typingctx, v, lane):
        """Lane `lane` of v, as a float32."""

        def codegen(context, builder, sig, args):
            return builder.extract_element(args[0], args[1])

        return types.float32(vec, lane), codegen

    @intrinsic
    def vstore(typingctx, arr, i, v):
        """arr[i:i+lanes] = v (unaligned)."""

        def codegen(context, builder, sig, args):
            at = address(context, builder, sig.args[0], args[0], args[1])
            builder.store(args[2], builder.bitcast(at, vector.as_pointer()), align=4)
            return context.get_dummy_value()

        return types.none(arr, i, vec), codegen

    defined = locals()
    return {name: defined[name] for name in OPERATIONS}


_made: dict[int, dict] = {}


def ops(lanes: int) -> dict:
    """{name: operation} for vectors of `lanes` floats (one of WIDTHS), made once."""
    if lanes not in WIDTHS:
        raise ValueError(f"no vector operations for {lanes} lanes (there are {WIDTHS})")
    if lanes not in _made:
        _made[lanes] = _numpy_ops(lanes) if config.DISABLE_JIT else _compiled_ops(lanes)
    return _made[lanes]
