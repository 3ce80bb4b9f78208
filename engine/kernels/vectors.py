"""Eight-float AVX vectors for Numba kernels: a type (`vec8`) and the few operations direct.py's
register tile needs, each one LLVM instruction.

Numba has no vector type: the tile used to be written as 64 scalar sums that LLVM's SLP
vectorizer had to find vectors in again. Written with these, the tile needs no vectorizer:
measured on this project's machine (2026-11-30, one thread, the 4x16 tile alone on a 16x24
map): 92-96 GFLOP/s at 32 and 64 input channels against 80-85 for the scalar sums, and it
compiles in ~1 s instead of ~10.

Indices are element offsets into a float32 array, unchecked (as the kernels' unsigned
indices are). Under NUMBA_DISABLE_JIT the same operations run as plain numpy, so the kernels'
Python source can still be tested line by line.
"""
from __future__ import annotations

import numpy as np
from numba.core import config

LANES = 8

if config.DISABLE_JIT:
    def vzero():
        return np.zeros(LANES, np.float32)

    def vload(arr, i):
        return arr[int(i):int(i) + LANES].copy()

    def vsplat(arr, i):
        return np.full(LANES, arr[int(i)], np.float32)

    def vfill(value):
        return np.full(LANES, value, np.float32)

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
        arr[int(i):int(i) + LANES] = v
else:
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.core.extending import intrinsic, models, register_model

    class Vec8(types.Type):
        def __init__(self):
            super().__init__(name="vec8")

    vec8 = Vec8()
    _V8 = ir.VectorType(ir.FloatType(), LANES)

    @register_model(Vec8)
    class _Vec8Model(models.PrimitiveModel):
        def __init__(self, dmm, fe_type):
            super().__init__(dmm, fe_type, _V8)

    def _address(context, builder, array_type, array, index):
        data = context.make_array(array_type)(context, builder, array).data
        return builder.gep(data, [index], inbounds=True)

    def _splat(builder, scalar):
        one = builder.insert_element(ir.Constant(_V8, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(one, ir.Constant(_V8, ir.Undefined),
                                      ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))

    @intrinsic
    def vzero(typingctx):
        def codegen(context, builder, sig, args):
            return ir.Constant(_V8, [0.0] * LANES)
        return vec8(), codegen

    @intrinsic
    def vload(typingctx, arr, i):
        """arr[i:i+8] (unaligned)."""
        def codegen(context, builder, sig, args):
            address = _address(context, builder, sig.args[0], args[0], args[1])
            return builder.load(builder.bitcast(address, _V8.as_pointer()), align=4)
        return vec8(arr, i), codegen

    @intrinsic
    def vsplat(typingctx, arr, i):
        """arr[i] in all 8 lanes (one vbroadcastss from memory)."""
        def codegen(context, builder, sig, args):
            return _splat(builder, builder.load(_address(context, builder, sig.args[0], args[0], args[1]), align=4))
        return vec8(arr, i), codegen

    @intrinsic
    def vfill(typingctx, value):
        """A float32 in all 8 lanes."""
        def codegen(context, builder, sig, args):
            return _splat(builder, args[0])
        return vec8(types.float32), codegen

    @intrinsic
    def vfma(typingctx, a, b, c):
        """a*b + c, rounded once."""
        def codegen(context, builder, sig, args):
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V8, [_V8] * 3), "llvm.fma.v8f32")
            return builder.call(fma, args)
        return vec8(vec8, vec8, vec8), codegen

    @intrinsic
    def vadd(typingctx, a, b):
        def codegen(context, builder, sig, args):
            return builder.fadd(*args)
        return vec8(vec8, vec8), codegen

    @intrinsic
    def vmul(typingctx, a, b):
        def codegen(context, builder, sig, args):
            return builder.fmul(*args)
        return vec8(vec8, vec8), codegen

    @intrinsic
    def vmax(typingctx, a, b):
        """Python's max(a, b) per lane: b where b > a, else a (so max(-1, -0.0) is -0.0, as darknet's)."""
        def codegen(context, builder, sig, args):
            a, b = args
            return builder.select(builder.fcmp_ordered(">", b, a), b, a)
        return vec8(vec8, vec8), codegen

    @intrinsic
    def vget(typingctx, v, lane):
        """Lane `lane` of v, as a float32."""
        def codegen(context, builder, sig, args):
            return builder.extract_element(args[0], args[1])
        return types.float32(vec8, lane), codegen

    @intrinsic
    def vstore(typingctx, arr, i, v):
        """arr[i:i+8] = v (unaligned)."""
        def codegen(context, builder, sig, args):
            address = _address(context, builder, sig.args[0], args[0], args[1])
            builder.store(args[2], builder.bitcast(address, _V8.as_pointer()), align=4)
            return context.get_dummy_value()
        return types.none(arr, i, vec8), codegen
