"""Dtype-exact building blocks that read the same in NumPy and in Numba.

``cast(value, like)`` is a constant in the floating dtype of ``like``. Every
constant in a kernel goes through it. In NumPy, ``float32_array * 2.0`` stays
float32; in Numba, a Python float literal is float64 and would silently
promote a float32 computation. One spelling keeps both paths in the model's
dtype.

``pow2(m)`` is :math:`2^m` assembled from exponent bits, ``libm_pow`` the C
library's power and ``where`` a select that stays a branch on scalars.

``jitable`` registers a Python function for compiled callers (Numba's
``register_jitable``) under the project's error model.
"""

import ctypes
import ctypes.util
import math

import numpy as np
from numba import types
from numba.extending import intrinsic, overload, register_jitable


def jitable(function=None, *, inline: bool = False):
    """``function`` callable from compiled code, compiled with NumPy's error model as every kernel here is.

    Numba's ``register_jitable`` alone compiles with Python's: every division
    then tests its divisor for zero to raise ``ZeroDivisionError``, a branch
    that also keeps the loops around it from vectorising (a softmax
    cross-entropy row cost twice as long). The results are the same bits
    wherever the divisor is not zero; a zero divisor gives inf or NaN, as in
    NumPy, and the divergence checks see it. ``inline=True`` inlines it into
    its callers' Numba IR (a row loss's helpers: called per row, a call with
    array arguments cost more than a softmax row's arithmetic).
    """
    if function is None:
        return lambda function: jitable(function, inline=inline)
    return register_jitable(error_model="numpy", inline="always" if inline else "never")(function)


def keras_float(x, name: str = "x") -> np.ndarray:
    """``x`` as Keras's functions take it: a float32/float64 array (or NumPy scalar) in its own dtype, anything else
    numeric (a list, a Python float, integers) in ``floatx()``, as ``convert_to_tensor`` makes it; else a TypeError."""
    from gdcore import config

    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numbers, got an array of dtype {array.dtype}")
    if array.dtype not in (np.float32, np.float64) or not isinstance(x, (np.ndarray, np.generic)):
        array = array.astype(config.floatx())
    return array


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


@intrinsic
def bitcast(typingctx, value, target):
    """Compiled code only: ``value``'s bits reinterpreted as the same-width type ``target`` (a free move)."""
    to = target.instance_type if isinstance(target, types.NumberClass) else None
    if to is None or value.bitwidth != to.bitwidth:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(to))

    return to(value, target), codegen


def pow2(m):
    r"""Exactly :math:`2^m`, in ``m``'s float dtype, for integer-valued ``m`` in the normal exponent range.

    The float whose exponent field is :math:`m` plus the bias (127 for
    float32, 1023 for float64) and whose mantissa is zero, written as integer
    bits, as Eigen's ``pldexp`` and oneDNN's exp do. ``m`` must lie in
    [-126, 127] (float32) or [-1022, 1023] (float64); callers clamp. A NaN
    ``m`` gives an unspecified value (the callers' results are NaN anyway).
    Arrays or scalars; the compiled version is two integer instructions,
    so loops around it vectorise (a table lookup would not).
    """
    m = np.asarray(m)
    if m.dtype == np.float32:
        bits = (m.astype(np.int32) + np.int32(127)) << np.int32(23)
    elif m.dtype == np.float64:
        bits = (m.astype(np.int64) + np.int64(1023)) << np.int64(52)
    else:
        raise TypeError(f"m must be float32 or float64, got dtype {m.dtype}")
    value = bits.view(m.dtype)
    return value if value.ndim else value[()]


@overload(pow2, jit_options={"cache": True})
def _pow2_numba(m):
    # Numba widens int32 arithmetic to int64: keep the low 32 bits, as the CPU's integer lanes do.
    if m == types.float32:
        return lambda m: bitcast(np.int32((np.int32(m) + np.int32(127)) << np.int32(23)), np.float32)
    if m == types.float64:
        return lambda m: bitcast((np.int64(m) + np.int64(1023)) << np.int64(52), np.float64)
    return None


#: The distance :func:`ulp_distance` reports when either value is NaN (the largest uint64).
ULP_NAN = np.iinfo(np.uint64).max
_UINT = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}
_SIGN = {np.dtype(np.float32): np.uint32(1 << 31), np.dtype(np.float64): np.uint64(1 << 63)}


def ulp_distance(a, b) -> np.ndarray:
    """Elementwise distance in units in the last place, as uint64: how many representable values lie between.

    Both arrays must have the same floating dtype, float32 or float64; +0 and
    -0 are 0 apart (their bits differ: compare bytes to see them), a NaN on
    either side gives :data:`ULP_NAN`.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    if a.dtype != b.dtype or a.dtype not in _UINT:
        raise ValueError(f"ulp_distance needs two float32 or two float64 arrays, got {a.dtype} and {b.dtype}")
    uint, sign = _UINT[a.dtype], _SIGN[a.dtype]
    bits_a, bits_b = np.ascontiguousarray(a).view(uint), np.ascontiguousarray(b).view(uint)
    magnitude_a = (bits_a & ~sign).astype(np.uint64)
    magnitude_b = (bits_b & ~sign).astype(np.uint64)
    same_sign = (bits_a & sign) == (bits_b & sign)
    larger, smaller = np.maximum(magnitude_a, magnitude_b), np.minimum(magnitude_a, magnitude_b)
    distance = np.where(same_sign, larger - smaller, magnitude_a + magnitude_b)
    return np.where(np.isnan(a) | np.isnan(b), ULP_NAN, distance).astype(np.uint64)


def _libm_unary(name: str):
    """The C library's ``name``/``namef`` elementwise, in the input's dtype (arrays or scalars).

    TensorFlow's scalar kernels call the C library; NumPy's SIMD ``exp``/``log``
    differ from it in the last bit for some arguments, so the NumPy engine calls
    the same functions the compiled engine does (Numba's ``math.*`` is the C
    library's).
    """
    single, double = getattr(_libm, name + "f"), getattr(_libm, name)
    single.restype, single.argtypes = ctypes.c_float, [ctypes.c_float]
    double.restype, double.argtypes = ctypes.c_double, [ctypes.c_double]

    def function(x):
        x = np.asarray(x)
        c_function = single if x.dtype == np.float32 else double
        out = np.array([c_function(float(v)) for v in x.ravel()], dtype=x.dtype).reshape(x.shape)
        return out if out.ndim else out[()]

    function.__name__ = function.__qualname__ = f"libm_{name}"
    return function


libm_exp = _libm_unary("exp")
libm_log = _libm_unary("log")
libm_log1p = _libm_unary("log1p")


@overload(libm_exp, jit_options={"cache": True})
def _libm_exp_numba(x):
    return lambda x: math.exp(x)


@overload(libm_log, jit_options={"cache": True})
def _libm_log_numba(x):
    return lambda x: math.log(x)


@overload(libm_log1p, jit_options={"cache": True})
def _libm_log1p_numba(x):
    return lambda x: math.log1p(x)
