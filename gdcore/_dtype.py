"""``cast(value, like)``: a constant in the floating dtype of ``like``, in NumPy and in Numba.

Every constant in a kernel goes through it. In NumPy, ``float32_array * 2.0``
stays float32; in Numba, a Python float literal is float64 and would silently
promote a float32 computation. One spelling keeps both paths in the model's
dtype.
"""

import ctypes
import ctypes.util
import math

import numpy as np
from numba import types
from numba.extending import overload


def cast(value, like):
    """``value`` as a scalar of ``like``'s floating dtype (``like``: array or scalar)."""
    return np.result_type(like).type(value)


@overload(cast, jit_options={"cache": True})
def _cast_numba(value, like):
    dtype = like.dtype if isinstance(like, types.Array) else like
    if dtype == types.float32:
        return lambda value, like: np.float32(value)
    return lambda value, like: np.float64(value)


_libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
_libm.powf.restype, _libm.powf.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]


def libm_pow(base, exponent):
    """``base ** exponent`` by the C library's ``pow``/``powf``, in ``base``'s dtype (scalars).

    TensorFlow's scalar ``Pow`` calls the C library; ``np.power`` uses its own
    algorithm and differs in the last bit for some arguments (e.g. float32
    0.9 ** t for 69 of t = 1..300), so Adam's bias corrections go through here.
    """
    if np.result_type(base) == np.float32:
        return np.float32(_libm.powf(float(base), float(exponent)))
    return np.float64(math.pow(float(base), float(exponent)))


@overload(libm_pow, jit_options={"cache": True})
def _libm_pow_numba(base, exponent):
    if base == types.float32:
        return lambda base, exponent: math.pow(base, np.float32(exponent))
    return lambda base, exponent: math.pow(base, np.float64(exponent))


def where(condition, a, b):
    """``np.where`` that Numba compiles to a plain branch on scalars (its ``np.where`` allocates)."""
    return np.where(condition, a, b)


@overload(where, jit_options={"cache": True})
def _where_numba(condition, a, b):
    if isinstance(a, types.Float) and isinstance(b, types.Float):
        return lambda condition, a, b: a if condition else b
    return lambda condition, a, b: np.where(condition, a, b)
