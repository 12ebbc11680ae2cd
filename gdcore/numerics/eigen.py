r"""Eigen's logistic (sigmoid) and its gradient, exactly as TensorFlow's CPU kernels compute them.

TensorFlow's ``Sigmoid`` op evaluates Eigen's ``scalar_logistic_op`` and
``SigmoidGrad`` evaluates ``scalar_sigmoid_gradient_op``
(``tensorflow/core/kernels/cwise_ops_gradients.h``). Both functors have **two
implementations**, and TensorFlow uses both on the same tensor:

* ``packetOp``, used on whole SIMD packets of :math:`P` lanes (:math:`P = 8`
  for float32, :math:`P = 4` for float64: the wheel uses 256-bit AVX, without
  FMA, so every ``pmadd(a, b, c)`` rounds twice, :math:`fl(fl(a b) + c)`);
* ``operator()``, the scalar version, used on the last ``n % P`` elements of
  the flattened (C-order) tensor of ``n`` elements. Eigen's ``EvalRange``
  walks packets from index 0 and finishes with a scalar loop; thread blocks
  are aligned to multiples of ``P``, so only the global tail is scalar.

Formulas (the docstrings of the functions below point here):

.. math::

    \sigma(x) = \frac{e^x}{1 + e^x}, \qquad
    \sigma'(x)\,\delta = \delta \cdot (y (1 - y))\ \text{(packet)}, \quad
    (\delta y)(1 - y)\ \text{(scalar tail)}, \qquad y = \sigma(x).

**float32, packet path** (``scalar_logistic_op<float>::packetOp`` in
``Eigen/src/Core/functors/UnaryFunctors.h``): clamp :math:`x \le 16.6355324`,
halve it, :math:`m = \lfloor x/2 \cdot \log_2 e + 1/2 \rfloor`, Cephes
two-part reduction :math:`r = (x/2 + m C_1) + m C_2`, a degree-5 polynomial
for :math:`e^r` evaluated as even/odd halves, :math:`e = (p \cdot 2^m)^2`,
result :math:`e / (1 + e)`, and exactly 0 for :math:`x < -104`.

**float32, scalar path** (``scalar_logistic_op<float>::operator()``):
:math:`e = \mathrm{expf}(\min(x, 16.6355324))`, result :math:`e/(1+e)`, with
the C library's ``expf`` (glibc; Numba's ``math.exp`` on a float32 calls the
same function).

**float64, packet path** (generic ``scalar_logistic_op_impl::packetOp`` with
``pexp_double`` from ``Eigen/src/Core/arch/Default/GenericPacketMathFunctions.h``):
Cephes exp, i.e. :math:`n = \lfloor x \log_2 e + 1/2 \rfloor`,
:math:`g = (x - n C_1) - n C_2`, rational
:math:`g P(g^2) / (Q(g^2) - g P(g^2))`, times 2, plus 1, scaled by
:math:`2^n` in four exact steps (``pldexp_generic``); 0 below
:math:`-745.519`; then :math:`1` if the exponential is infinite, else
:math:`e / (1 + e)`.

**float64, scalar path**: the same functor called on a scalar, where ``pexp``
is ``std::exp`` (glibc ``exp``, which is also what Python's ``math.exp`` and
Numba's ``math.exp`` call).

Each function body uses only arithmetic, comparisons, ``np.minimum``,
``np.maximum``, ``np.floor`` and :func:`gdcore._dtype.pow2` (:math:`2^m` from
exponent bits, as ``pldexp`` builds it), so the
same Python source runs vectorised on NumPy arrays and, via ``numba.njit``,
on scalars inside compiled loops, with the same bits. Constants are typed
(``np.float32(c)``) so float32 never promotes to float64. ``np.exp`` is never
used: NumPy's SIMD exp differs from the C library's in the last bit.

Public functions
----------------
``logistic(z)``, ``logistic_grad(y, dy)``
    Packet path (what TF applies to all but the last ``n % P`` elements).
``logistic_scalar(z)``, ``logistic_grad_scalar(y, dy)``
    Scalar path (the last ``n % P`` elements).
``logistic_tensorflow(z)``, ``logistic_grad_tensorflow(y, dy)``
    Whole arrays, bit-identical to ``tf.math.sigmoid`` / ``tf.raw_ops.SigmoidGrad``.
``logistic_tensorflow_loop(z)``, ``logistic_grad_tensorflow_loop(y, dy)``
    Numba twins of the two above, for 2-D arrays (flattened in C order), in place (``z``, ``dy``).
``packet_size(dtype)``
    8 for float32, 4 for float64.

Hyperbolic tangent
------------------
TensorFlow's ``Tanh`` evaluates Eigen's ``scalar_tanh_op``: ``ptanh`` on whole
packets and ``numext::tanh`` on the scalar tail, and ``TanhGrad`` evaluates
:math:`dy \cdot (1 - y y)` on both paths (``scalar_tanh_gradient_op``).

**Packet path** (``ptanh_float`` / ``ptanh_double`` in
``GenericPacketMathFunctions.h``), without FMA: clamp :math:`x` to
:math:`\pm 7.90738964080810547` (float32) or :math:`\pm 17.714196154005176`
(float64), the smallest arguments at which the approximation is exactly 1;
:math:`x_2 = x x`, :math:`x_3 = x_2 x`; odd/even rational approximation
:math:`p = \mathrm{horner}(\alpha, x_2)`, :math:`q = \mathrm{horner}(\beta,
x_2)` (Horner from the highest coefficient, each step
:math:`\mathrm{fl}(\mathrm{fl}(p x_2) + c)`), :math:`p \leftarrow
\mathrm{fl}(\mathrm{fl}(x_3 p) + x)`, result :math:`p / q`. Degree [9/8]
for float32, [19/18] for float64.

**Scalar path**: float32 uses the same ``ptanh_float`` (Eigen is built with
``EIGEN_FAST_MATH``), so a float32 tanh does not depend on the element's
position; float64 calls the C library's ``tanh``.

``tanh(z)``, ``tanh_scalar(z)``, ``tanh_grad(y, dy)``, ``tanh_tensorflow(z)``,
``tanh_tensorflow_loop(z)``
    As for the logistic. ``tanh`` uses only arithmetic, so it is also the
    ``"plain"`` profile's tanh (NumPy and Numba give the same bits).
"""

import ctypes
import ctypes.util
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from gdcore._dtype import bitcast, cast, jitable, libm_log1p, pow2, where
from gdcore.numerics._in_place import activation_loop, gradient_loop

_jit = njit(cache=True, error_model="numpy", nogil=True)

_F32 = np.float32
_F64 = np.float64
_FLT_MIN = float(np.finfo(np.float32).tiny)
_SQRT_FLT_MIN = 2.0**-63  # the smallest float32 whose square is a normal number
_DBL_MIN = float(np.finfo(np.float64).tiny)

PACKET_SIZE = {np.dtype(np.float32): 8, np.dtype(np.float64): 4}


def packet_size(dtype) -> int:
    """Number of SIMD lanes Eigen uses for ``dtype`` in this TensorFlow build (AVX, 256 bits)."""
    dtype = np.dtype(dtype)
    if dtype not in PACKET_SIZE:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return PACKET_SIZE[dtype]


# --- float32 packet path: scalar_logistic_op<float>::packetOp --------------------


def _logistic_packet_float32(x):
    # Outside the masked range the value is replaced by an exact 0; clamping
    # from below only keeps the discarded lanes finite (no inf - inf).
    keep = x >= _F32(-104.0)
    x = np.maximum(np.minimum(x, _F32(16.6355324)), _F32(-104.0))
    x = x * _F32(0.5)
    m = np.floor(x * _F32(1.44269504088896341) + _F32(0.5))
    r = m * _F32(-0.693359375) + x
    r = m * _F32(2.12194440e-4) + r
    r2 = r * r
    p_even = r2 * _F32(4.1898667812347412109375e-2) + _F32(0.49999141693115234375)
    p_odd = r2 * _F32(8.33471305668354034423828125e-3) + _F32(0.16666877269744873046875)
    p_low = r + _F32(1.0)
    p = r * p_odd + p_even
    p = r2 * p + p_low
    # m is in [-75, 12] here, so 2^m is a normal float32 and the scaling is exact.
    e = p * pow2(m)
    # TensorFlow runs its kernels with denormals flushed to zero (FTZ/DAZ): e * e is
    # flushed exactly when e < 2^-63 (the largest such e squares to FLT_MIN - 2^-149).
    # Squaring max(e, 2^-63) and zeroing those lanes gives the same bits without ever
    # computing a denormal, which costs the CPU a slow path per element.
    normal = e >= _F32(_SQRT_FLT_MIN)
    e = np.maximum(e, _F32(_SQRT_FLT_MIN))
    e = where(normal, e * e, e * _F32(0.0))  # e * 0, not 0: a NaN stays NaN
    return (e / (_F32(1.0) + e)) * keep


# --- float64 packet path: scalar_logistic_op_impl<double>::packetOp + pexp_double --


def _logistic_packet_float64(x):
    keep = x >= _F64(-745.519)
    x = np.maximum(np.minimum(x, _F64(709.784)), _F64(-746.0))
    fx = np.floor(_F64(1.4426950408889634073599) * x + _F64(0.5))
    g = x - fx * _F64(0.693145751953125)
    g = g - fx * _F64(1.42860682030941723212e-6)
    g2 = g * g
    px = _F64(1.26177193074810590878e-4) * g2 + _F64(3.02994407707441961300e-2)
    px = px * g2 + _F64(9.99999999999999999910e-1)
    px = px * g
    qx = _F64(3.00198505138664455042e-6) * g2 + _F64(2.52448340349684104192e-3)
    qx = qx * g2 + _F64(2.27265548208155028766e-1)
    qx = qx * g2 + _F64(2.00000000000000000009e0)
    y = px / (qx - px)
    y = _F64(2.0) * y + _F64(1.0)
    # pldexp_generic: y * 2^b * 2^b * 2^b * 2^(n - 3b), b = floor(n / 4). Every
    # factor is a normal double and the first three products stay normal, so
    # only the last product can leave the normal range (flushed, as TF runs
    # with denormals flushed to zero).
    quarter = np.floor(fx * _F64(0.25))
    scale = pow2(quarter)
    y = ((y * scale) * scale) * scale
    e = y * pow2(fx - _F64(3.0) * quarter)
    e = e * (e >= _F64(_DBL_MIN)) * keep
    # Eigen selects 1 where e is inf; any e >= 2^53 already gives e/(1+e) == 1.
    e = np.minimum(e, _F64(1.0e300))
    return e / (_F64(1.0) + e)


# --- scalar paths: operator() ----------------------------------------------------


_libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
_libm.expf.restype = ctypes.c_float
_libm.expf.argtypes = [ctypes.c_float]
_libm.exp.restype = ctypes.c_double
_libm.exp.argtypes = [ctypes.c_double]


def _libm_exp(x):
    """The C library's ``exp``/``expf`` elementwise (Python side: one call per element)."""
    x = np.asarray(x)
    fn = _libm.expf if x.dtype == np.float32 else _libm.exp  # math.exp raises on overflow
    out = np.array([fn(float(v)) for v in x.ravel()], dtype=x.dtype).reshape(x.shape)
    return out if out.ndim else out[()]


@overload(_libm_exp, jit_options={"cache": True})
def _libm_exp_numba(x):
    if isinstance(x, types.Float):
        return lambda x: math.exp(x)
    return None


def _logistic_scalar_float32(x):
    e = _libm_exp(np.minimum(x, _F32(16.6355324)))
    e = e * (e >= _F32(_FLT_MIN))
    return e / (_F32(1.0) + e)


def _logistic_scalar_float64(x):
    e = _libm_exp(x)
    e = e * (e >= _F64(_DBL_MIN))
    e = np.minimum(e, _F64(1.0e300))
    return e / (_F64(1.0) + e)


# --- dtype dispatch usable from both Python and Numba ----------------------------


def _float_dtype(z) -> np.dtype:
    dtype = np.asarray(z).dtype
    if dtype not in PACKET_SIZE:
        raise TypeError(f"z must be float32 or float64, got dtype {dtype}")
    return dtype


def _by_dtype(float32_function, float64_function):
    """One function of ``z`` that runs the version for ``z``'s dtype, in Python and in compiled code.

    Python: NumPy arrays or scalars, with the warnings of NaN/inf lanes silenced
    (they are masked as Eigen masks them). Compiled: float32/float64 scalars,
    the dtype chosen while typing.
    """
    compiled32, compiled64 = _jit(float32_function), _jit(float64_function)

    def dispatch(z):
        function = float32_function if _float_dtype(z) == np.float32 else float64_function
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            return function(z)

    @overload(dispatch, jit_options={"cache": True})
    def dispatch_numba(z):
        if z == types.float32:
            return lambda z: compiled32(z)
        if z == types.float64:
            return lambda z: compiled64(z)
        return None

    return dispatch


_logistic_dispatch = _by_dtype(_logistic_packet_float32, _logistic_packet_float64)
_logistic_scalar_dispatch = _by_dtype(_logistic_scalar_float32, _logistic_scalar_float64)


# --- public API -------------------------------------------------------------------


def logistic(z):
    r"""Eigen's vectorised (packet) logistic :math:`\sigma(z) = e^z / (1 + e^z)`.

    The algorithm for each dtype is described in the module docstring. Works
    on float32/float64 NumPy arrays (vectorised) and, compiled with
    ``numba.njit``, on float32/float64 scalars, returning the input's dtype.
    TensorFlow uses this path for all but the last ``n % P`` elements of a
    tensor; see :func:`logistic_tensorflow` for whole tensors.
    """
    return _logistic_dispatch(z)


def logistic_scalar(z):
    r"""Eigen's scalar logistic (``operator()``), used by TF on the last ``n % P`` elements.

    float32: :math:`e = \mathrm{expf}(\min(z, 16.6355324))`, :math:`e / (1 + e)`;
    float64: :math:`e = \exp(z)`, 1 if :math:`e = \infty` else :math:`e / (1 + e)`.
    The NumPy side calls the C library once per element (slow on big arrays;
    TensorFlow only needs it on at most 7 elements per tensor).
    """
    return _logistic_scalar_dispatch(z)


def logistic_grad(y, dy):
    r"""Packet ``SigmoidGrad``: :math:`dy \cdot (y (1 - y))`, with :math:`y = \sigma(z)`.

    Denormal operands and results are flushed to zero, as TensorFlow's kernels run.
    """
    y, dy = _flush(y), _flush(dy)
    return _flush(dy * _flush(y * (_one_like(y) - y)))


def logistic_grad_scalar(y, dy):
    r"""Scalar-tail ``SigmoidGrad``: :math:`(dy \cdot y)(1 - y)`, denormals flushed."""
    y, dy = _flush(y), _flush(dy)
    return _flush(_flush(dy * y) * (_one_like(y) - y))


def _flush(values):
    """Flush-to-zero: denormals become (signed) zero, like TF's FTZ/DAZ mode."""
    if np.asarray(values).dtype == np.float32:
        return values * (np.abs(values) >= _F32(_FLT_MIN))
    return values * (np.abs(values) >= _F64(_DBL_MIN))


@overload(_flush, jit_options={"cache": True})
def _flush_numba(values):
    if values == types.float32:
        return lambda values: values * (np.abs(values) >= np.float32(_FLT_MIN))
    return lambda values: values * (np.abs(values) >= np.float64(_DBL_MIN))


def _one_like(y):
    if np.asarray(y).dtype == np.float32:
        return _F32(1.0)
    return _F64(1.0)


@overload(_one_like, jit_options={"cache": True})
def _one_like_numba(y):
    if y == types.float32:
        return lambda y: np.float32(1.0)
    return lambda y: np.float64(1.0)


def _packet_end(n: int, dtype) -> int:
    return n - n % packet_size(dtype)


def logistic_tensorflow(z: np.ndarray) -> np.ndarray:
    """``tf.math.sigmoid(z)`` bit for bit: packet path, then scalar path on the flat tail."""
    z = np.ascontiguousarray(z)
    flat = z.reshape(-1)
    end = _packet_end(flat.size, z.dtype)
    out = np.empty_like(flat)
    out[:end] = logistic(flat[:end])
    if end < flat.size:
        out[end:] = logistic_scalar(flat[end:])
    return out.reshape(z.shape)


def logistic_grad_tensorflow(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``tf.raw_ops.SigmoidGrad(y=y, dy=dy)`` bit for bit (same-shape operands)."""
    y = np.ascontiguousarray(y)
    dy = np.ascontiguousarray(dy)
    if y.shape != dy.shape:
        raise ValueError(f"y and dy must have the same shape, got {y.shape} and {dy.shape}")
    flat_y, flat_dy = y.reshape(-1), dy.reshape(-1)
    end = _packet_end(flat_y.size, y.dtype)
    out = np.empty_like(flat_y)
    out[:end] = logistic_grad(flat_y[:end], flat_dy[:end])
    out[end:] = logistic_grad_scalar(flat_y[end:], flat_dy[end:])
    return out.reshape(y.shape)


logistic_tensorflow_loop = activation_loop(_jit(logistic), "logistic_tensorflow_loop", tail=_jit(logistic_scalar))
logistic_tensorflow_loop.__doc__ = "Numba twin of :func:`logistic_tensorflow` for a 2-D ``z``, in place."
logistic_grad_tensorflow_loop = gradient_loop(_jit(logistic_grad), "logistic_grad_tensorflow_loop",
                                              tail=_jit(logistic_grad_scalar))
logistic_grad_tensorflow_loop.__doc__ = "Numba twin of :func:`logistic_grad_tensorflow` for 2-D arrays: ``dy`` is overwritten."


# --- hyperbolic tangent: scalar_tanh_op (ptanh_float / ptanh_double) ---------------

_TANH_CLAMP_F32 = _F32(7.90738964080810547)
_TANH_CLAMP_F64 = _F64(17.714196154005176)


def _tanh_packet_float32(x):
    x = np.maximum(np.minimum(_flush(x), _TANH_CLAMP_F32), -_TANH_CLAMP_F32)
    x2 = x * x
    x3 = x2 * x
    p = _F32(1.394553628e-8)
    p = p * x2 + _F32(2.102733560e-5)
    p = p * x2 + _F32(3.520756727e-3)
    p = p * x2 + _F32(1.340216100e-1)
    q = _F32(8.015776984e-7)
    q = q * x2 + _F32(3.326951409e-4)
    q = q * x2 + _F32(2.597254514e-2)
    q = q * x2 + _F32(4.673548340e-1)
    q = q * x2 + _F32(1.0)
    return _flush((x3 * p + x) / q)


def _tanh_packet_float64(x):
    x = np.maximum(np.minimum(_flush(x), _TANH_CLAMP_F64), -_TANH_CLAMP_F64)
    x2 = x * x
    x3 = x2 * x
    p = _F64(2.6158007860482230e-23)
    p = p * x2 + _F64(7.6534862268749319e-19)
    p = p * x2 + _F64(3.1309488231386680e-15)
    p = p * x2 + _F64(4.2303918148209176e-12)
    p = p * x2 + _F64(2.4618379131293676e-09)
    p = p * x2 + _F64(6.8644367682497074e-07)
    p = p * x2 + _F64(9.3839087674268880e-05)
    p = p * x2 + _F64(5.9809711724441161e-03)
    p = p * x2 + _F64(1.5184719640284322e-01)
    q = _F64(6.463747022670968018e-21)
    q = q * x2 + _F64(5.782506856739003571e-17)
    q = q * x2 + _F64(1.293019623712687916e-13)
    q = q * x2 + _F64(1.123643448069621992e-10)
    q = q * x2 + _F64(4.492975677839633985e-08)
    q = q * x2 + _F64(8.785185266237658698e-06)
    q = q * x2 + _F64(8.295161192716231542e-04)
    q = q * x2 + _F64(3.437448108450402717e-02)
    q = q * x2 + _F64(4.851805297361760360e-01)
    q = q * x2 + _F64(1.0)
    return _flush((x3 * p + x) / q)


_libm.tanh.restype = ctypes.c_double
_libm.tanh.argtypes = [ctypes.c_double]


def _libm_tanh(x):
    """The C library's ``tanh`` elementwise (float64; Python side: one call per element)."""
    x = np.asarray(x)
    out = np.array([_libm.tanh(float(v)) for v in x.ravel()], dtype=x.dtype).reshape(x.shape)
    return out if out.ndim else out[()]


@overload(_libm_tanh, jit_options={"cache": True})
def _libm_tanh_numba(x):
    if isinstance(x, types.Float):
        return lambda x: math.tanh(x)
    return None


def _tanh_scalar_float64(x):
    return _flush(_libm_tanh(_flush(x)))


# float32's scalar tanh is the packet formula (Eigen is built with EIGEN_FAST_MATH).
_tanh_dispatch = _by_dtype(_tanh_packet_float32, _tanh_packet_float64)
_tanh_scalar_dispatch = _by_dtype(_tanh_packet_float32, _tanh_scalar_float64)


def tanh(z):
    r"""Eigen's vectorised (packet) :math:`\tanh z`, a rational approximation (module docstring).

    Only arithmetic, ``np.minimum`` and ``np.maximum``: the same bits on NumPy
    arrays and, compiled with Numba, on float32/float64 scalars.
    """
    return _tanh_dispatch(z)


def tanh_scalar(z):
    """Eigen's scalar ``numext::tanh``: the packet formula in float32, the C library's ``tanh`` in float64."""
    return _tanh_scalar_dispatch(z)


def tanh_grad(y, dy):
    r"""``TanhGrad``: :math:`dy \cdot (1 - y y)` with :math:`y = \tanh z`, denormals flushed."""
    y, dy = _flush(y), _flush(dy)
    return _flush(dy * _flush(_one_like(y) - _flush(y * y)))


tanh_grad = jitable(tanh_grad)


def tanh_tensorflow(z: np.ndarray) -> np.ndarray:
    """``tf.math.tanh(z)`` bit for bit: packet path, then scalar path on the flat tail."""
    z = np.ascontiguousarray(z)
    flat = z.reshape(-1)
    end = _packet_end(flat.size, z.dtype)
    out = np.empty_like(flat)
    out[:end] = tanh(flat[:end])
    if end < flat.size:
        out[end:] = tanh_scalar(flat[end:])
    return out.reshape(z.shape)


def tanh_grad_tensorflow(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``tf.raw_ops.TanhGrad(y=y, dy=dy)`` bit for bit (one formula on both paths)."""
    return tanh_grad(np.asarray(y), np.asarray(dy))


tanh_tensorflow_loop = activation_loop(_jit(tanh), "tanh_tensorflow_loop", tail=_jit(tanh_scalar))
tanh_tensorflow_loop.__doc__ = "Numba twin of :func:`tanh_tensorflow` for a 2-D ``z``, in place."
tanh_grad_tensorflow_loop = gradient_loop(_jit(tanh_grad), "tanh_grad_tensorflow_loop")
tanh_grad_tensorflow_loop.__doc__ = "Numba twin of :func:`tanh_grad_tensorflow` for 2-D arrays: ``dy`` is overwritten."


# --- reciprocal square root: scalar_rsqrt_op --------------------------------------
#
# TensorFlow's graph optimizer rewrites ``x / sqrt(y)`` into ``x * rsqrt(y)``
# (grappler's arithmetic optimizer), so a ``tf.function`` step that divides by a
# square root, as RMSprop's update does, multiplies by Eigen's ``Rsqrt`` instead:
#
# * float32, packets: ``prsqrt<Packet8f>`` (``Eigen/src/Core/arch/AVX/MathFunctions.h``)
#   starts from the CPU's own estimate ``_mm256_rsqrt_ps`` (RSQRTPS, about 12
#   correct bits, its exact bits chosen by the processor's designer) and refines it
#   by one Newton-Raphson step (``generic_rsqrt_newton_step``, without FMA):
#   :math:`r = e - \tfrac12 e\,((y e) e - 1)` evaluated as
#   ``(e * -0.5) * ((y * e) * e + -1) + e``, and ``e`` itself where that is NaN;
# * float32 tail elements and all of float64: ``1 / sqrt(y)``, correctly rounded
#   (AVX has no double estimate; Eigen's generic ``prsqrt`` divides).
#
# The estimate comes from executing RSQRTPS itself (an LLVM intrinsic in compiled
# code; the same compiled kernel over an array for NumPy), so gdcore gets the bits
# TensorFlow gets on the same processor, whoever made it.


def _sse_estimate(llvm_name: str):
    """An intrinsic on one float32: the SSE estimate instruction ``llvm_name`` applied to lane 0 of a packet."""

    @intrinsic
    def estimate(typingctx, x):
        if x != types.float32:
            return None

        def codegen(context, builder, signature, args):
            vector = ir.VectorType(ir.FloatType(), 4)
            function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector]), llvm_name)
            lane = ir.Constant(ir.IntType(32), 0)
            packed = builder.insert_element(ir.Constant(vector, ir.Undefined), args[0], lane)
            return builder.extract_element(builder.call(function, [packed]), lane)

        return types.float32(x), codegen

    return estimate


_rsqrtps = _sse_estimate("llvm.x86.sse.rsqrt.ps")


@_jit
def _rsqrt_estimate_array(values, out):
    for i in range(values.size):
        out.flat[i] = _rsqrtps(values.flat[i])


def _on_float32(kernel, y):
    """``kernel(values, out)`` over ``y`` as a float32 array; an array back, or a scalar for a scalar."""
    values = np.asarray(y, dtype=np.float32)
    out = np.empty_like(values)
    kernel(values.reshape(-1), out.reshape(-1))
    return out if out.ndim else out[()]


def rsqrt_estimate(y):
    """The processor's RSQRTPS estimate of :math:`1/\\sqrt y` (float32, array or scalar)."""
    return _on_float32(_rsqrt_estimate_array, y)


@overload(rsqrt_estimate, jit_options={"cache": True})
def _rsqrt_estimate_numba(y):
    if y == types.float32:
        return lambda y: _rsqrtps(y)
    return None


def rsqrt_packet(y):
    """Eigen's ``prsqrt<Packet8f>``: RSQRTPS refined by one Newton-Raphson step (float32; comment above)."""
    estimate = rsqrt_estimate(y)
    refined = (estimate * _F32(-0.5)) * ((y * estimate) * estimate + _F32(-1.0)) + estimate
    return where(refined != refined, estimate, refined)  # NaN: the estimate (zero or infinite input)


rsqrt_packet = jitable(rsqrt_packet)


# --- exponential: scalar_exp_op (pexp_float / pexp_double) ----------------------------
#
# TensorFlow's ``Exp`` (and every ``.exp()`` inside its other functors: Elu, Selu,
# Softplus) evaluates Eigen's ``pexp`` on whole packets and ``std::exp`` on the
# scalar tail. Without FMA, every ``pmadd(a, b, c)`` is fl(fl(a b) + c).
#
# float32 (``pexp_float``): zero below -104, x <- min(x, 88.723),
# m = floor(x log2(e) + 1/2), r = (m C1 + x) + m C2 (Cephes' two-part ln 2),
# a degree-6 polynomial as even/odd halves in r^2, times 2^m. float64
# (``pexp_double``): the Cephes rational form of the logistic above (same
# constants), zero below -745.519, x <- min(x, 709.784). Both end with
# max(result, x), which only matters for NaN and +inf. 2^m is applied in two
# normal factors, exact wherever the result is a normal number; a result below
# the normal range is flushed (TensorFlow runs with denormals flushed to zero).


@jitable
def _ldexp_flushed(y, m, tiny):
    """y * 2^m, exact where the result is normal, flushed to zero below ``tiny``."""
    half = np.floor(m * _half_like(m))
    e = (y * pow2(half)) * pow2(m - half)
    return e * (np.abs(e) >= tiny)


def _half_like(m):
    return _F32(0.5) if np.asarray(m).dtype == np.float32 else _F64(0.5)


@overload(_half_like, jit_options={"cache": True})
def _half_like_numba(m):
    if m == types.float32:
        return lambda m: np.float32(0.5)
    return lambda m: np.float64(0.5)


def _exp_packet_float32(x):
    keep = x >= _F32(-104.0)
    clamped = np.maximum(np.minimum(x, _F32(88.723)), _F32(-104.0))  # from below only to keep lanes finite
    m = np.floor(clamped * _F32(1.44269504088896341) + _F32(0.5))
    r = m * _F32(-0.693359375) + clamped
    r = m * _F32(2.12194440e-4) + r
    r2 = r * r
    p_even = r2 * _F32(1.37449637986719608306884765625e-3) + _F32(4.166965186595916748046875e-2)
    p_odd = r2 * _F32(8.36894474923610687255859375e-3) + _F32(0.16666518151760101318359375)
    p_even = r2 * p_even + _F32(0.49999988079071044921875)
    p_low = r + _F32(1.0)
    y = r * p_odd + p_even
    y = r2 * y + p_low
    e = _ldexp_flushed(y, m, _F32(_FLT_MIN)) * keep
    return np.maximum(e, x)


def _exp_packet_float64(x):
    keep = x >= _F64(-745.519)
    clamped = np.maximum(np.minimum(x, _F64(709.784)), _F64(-746.0))
    fx = np.floor(_F64(1.4426950408889634073599) * clamped + _F64(0.5))
    g = clamped - fx * _F64(0.693145751953125)
    g = g - fx * _F64(1.42860682030941723212e-6)
    g2 = g * g
    px = _F64(1.26177193074810590878e-4) * g2 + _F64(3.02994407707441961300e-2)
    px = px * g2 + _F64(9.99999999999999999910e-1)
    px = px * g
    qx = _F64(3.00198505138664455042e-6) * g2 + _F64(2.52448340349684104192e-3)
    qx = qx * g2 + _F64(2.27265548208155028766e-1)
    qx = qx * g2 + _F64(2.00000000000000000009e0)
    y = px / (qx - px)
    y = _F64(2.0) * y + _F64(1.0)
    e = _ldexp_flushed(y, fx, _F64(_DBL_MIN)) * keep
    return np.maximum(e, x)


def _exp_scalar(x):
    return _flush(_libm_exp(x))


_exp_dispatch = _by_dtype(_exp_packet_float32, _exp_packet_float64)
_exp_scalar_dispatch = _by_dtype(_exp_scalar, _exp_scalar)


def exp(z):
    r"""Eigen's vectorised (packet) :math:`e^z` (comment above): arithmetic only, same bits in NumPy and Numba."""
    return _exp_dispatch(z)


def exp_scalar(z):
    """Eigen's scalar ``std::exp`` (the C library's), denormal results flushed: the last ``n % P`` elements."""
    return _exp_scalar_dispatch(z)


# --- logarithms: plog_float / plog_double, generic_log1p -----------------------------
#
# ``plog``: frexp (mantissa m in [1/2, 1), exponent e from the bits), then
# m < sqrt(1/2) ? (e - 1, 2m - 1) : (e, m - 1), a rational approximation of
# log(1 + x) on [sqrt(1/2) - 1, sqrt(2) - 1] (float32: x p(x) / q(x), degrees
# 2/3; float64: Cephes' x - x^2/2 + x^3 P(x)/Q(x), degrees 5/5), plus e ln 2.
# ``log1p`` (Kahan): u = 1 + x; x where u == 1, else x * (log(u) / (u - 1)).
# Written for the positive normal arguments the activations pass them (the
# logarithm of 1 + e^z, at least 1): Eigen's selects for zero, infinite and
# negative inputs are left out.


def _frexp(x):
    """(mantissa in [1/2, 1), exponent) of positive normal ``x``, from its bits (``pfrexp_generic``)."""
    if np.asarray(x).dtype == np.float32:
        bits = np.asarray(x).view(np.int32)
        exponent = ((bits >> np.int32(23)) & np.int32(0xFF)).astype(np.float32) - _F32(126.0)
        mantissa = ((bits & np.int32(-0x7F800001)) | np.int32(0x3F000000)).view(np.float32)
    else:
        bits = np.asarray(x).view(np.int64)
        exponent = ((bits >> np.int64(52)) & np.int64(0x7FF)).astype(np.float64) - _F64(1022.0)
        mantissa = ((bits & np.int64(-0x7FF0000000000001)) | np.int64(0x3FE0000000000000)).view(np.float64)
    if mantissa.ndim == 0:
        return mantissa[()], exponent[()]
    return mantissa, exponent


@overload(_frexp, jit_options={"cache": True})
def _frexp_numba(x):
    if x == types.float32:
        def frexp32(x):
            bits = bitcast(x, np.int32)
            exponent = np.float32((bits >> np.int32(23)) & np.int32(0xFF)) - np.float32(126.0)
            return bitcast(np.int32((bits & np.int32(-0x7F800001)) | np.int32(0x3F000000)), np.float32), exponent
        return frexp32
    if x == types.float64:
        def frexp64(x):
            bits = bitcast(x, np.int64)
            exponent = np.float64((bits >> np.int64(52)) & np.int64(0x7FF)) - np.float64(1022.0)
            return bitcast(np.int64((bits & np.int64(-0x7FF0000000000001)) | np.int64(0x3FE0000000000000)),
                           np.float64), exponent
        return frexp64
    return None


def _log_packet_float32(x):
    m, e = _frexp(x)
    small = m < _F32(0.707106781186547524)
    e = e - _F32(1.0) * small
    m = (m - _F32(1.0)) + m * small
    p = _F32(0.18256296349849254) * m + _F32(1.0000000190281063)
    p = p * m + _F32(1.0000000190281136)
    p = m * p
    q = _F32(0.049616247954120038) * m + _F32(0.59923249590823520)
    q = q * m + _F32(1.4999999999999927)
    q = q * m + _F32(1.0)
    return e * _F32(0.693147182) + p / q


def _log_packet_float64(x):
    m, e = _frexp(x)
    small = m < _F64(0.70710678118654752440)
    e = e - _F64(1.0) * small
    m = (m - _F64(1.0)) + m * small
    m2 = m * m
    m3 = m2 * m
    y = _F64(1.01875663804580931796e-4) * m + _F64(4.97494994976747001425e-1)
    y1 = _F64(1.44989225341610930846e1) * m + _F64(1.79368678507819816313e1)
    y = y * m + _F64(4.70579119878881725854e0)
    y1 = y1 * m + _F64(7.70838733755885391666e0)
    numerator = y * m3 + y1
    y = _F64(1.0) * m + _F64(1.12873587189167450590e1)
    y1 = _F64(8.29875266912776603211e1) * m + _F64(7.11544750618563894466e1)
    y = y * m + _F64(4.52279145837532221105e1)
    y1 = y1 * m + _F64(2.31251620126765340583e1)
    denominator = y * m3 + y1
    y = (numerator * m3) / denominator
    y = _F64(-0.5) * m2 + y
    m = m + y
    return e * _F64(0.693147180559945309417232121458) + m


@jitable
def _log_selects(x, y):
    """Eigen's selects after the approximation: -inf at 0, +inf at +inf, NaN for negative and NaN ``x``."""
    zero, inf = cast(0, x), cast(np.inf, x)
    y = where(x == zero, -inf, where(x == inf, inf, y))
    return where((x < zero) | (x != x), cast(np.nan, x), y)


_log_packet_float32 = jitable(_log_packet_float32)
_log_packet_float64 = jitable(_log_packet_float64)


def _log_float32(x):
    return _log_selects(x, _log_packet_float32(x))


def _log_float64(x):
    return _log_selects(x, _log_packet_float64(x))


_log_dispatch = _by_dtype(_log_float32, _log_float64)


def log(z):
    """Eigen's vectorised (packet) natural logarithm (comment above), with Eigen's selects for 0, +inf, negatives and NaN."""
    return _log_dispatch(z)


def _log1p_kahan(z):
    u = z + _one_like(z)
    return where((u == _one_like(z)) | (u == z), z, z * (_log_dispatch(u) / (u - _one_like(z))))


_log1p_dispatch = _by_dtype(_log1p_kahan, _log1p_kahan)


def log1p(z):
    r"""Eigen's ``generic_log1p`` (Kahan): :math:`u = 1 + z`; :math:`z` where :math:`u = 1`, else :math:`z \log(u)/(u - 1)`."""
    return _log1p_dispatch(z)


def _log1p_scalar(z):
    return _flush(libm_log1p(z))


_log1p_scalar_dispatch = _by_dtype(_log1p_scalar, _log1p_scalar)


def log1p_scalar(z):
    """Eigen's scalar ``numext::log1p`` (the C library's ``log1p``/``log1pf``), denormals flushed."""
    return _log1p_scalar_dispatch(z)


# --- complementary error function: generic_fast_erfc ----------------------------------
#
# TensorFlow's ``Erfc`` evaluates Eigen's ``generic_fast_erfc`` (in
# ``unsupported/Eigen/src/SpecialFunctions``) on packets and on the scalar tail
# alike; only its reciprocal differs: the float32 packet path multiplies by
# ``preciprocal<Packet8f>`` (the processor's RCPPS estimate refined by one
# Newton step, as Eigen is built with EIGEN_FAST_MATH), the scalar path and
# float64 divide. With x clamped to [-11, 11] (float32) or [-28, 28] (float64):
#
# * :math:`x^2 \le 1`: :math:`1 + x S(x^2)` (float32, degree 5 in x^2), or
#   :math:`1 - x\,P(x^2)/Q(x^2)` (float64, ``erf_over_x_double_small``);
# * :math:`x^2 > 1`: :math:`e^{-x^2}(1 - \ell)\,P(1/x^2) / (x\,Q(1/x^2))`, plus 2 for
#   negative x, where :math:`\ell` is the rounding error of :math:`x^2`
#   (``twoprod_low``, computed exactly) and :math:`e^{-x^2}` is :func:`exp`
#   (packets) or ``std::exp`` (scalars).

_ERFC_SMALL_F32 = (5.61802298761904239654541015625e-04, -4.91381669417023658752441406250e-03,
                   2.67075151205062866210937500000e-02, -1.12800106406211853027343750000e-01,
                   3.76122951507568359375000000000e-01, -1.12837910652160644531250000000e+00)
_ERFC_GAMMA_F32 = (1.0208116471767425537109375e-01, 4.2920666933059692382812500e-01,
                   3.2379078865051269531250000e-01, 5.3971976041793823242187500e-02)
_ERFC_DELTA_F32 = (1.7251677811145782470703125e-02, 3.9137163758277893066406250e-01,
                   1.0000000000000000000000000e+00, 6.2173241376876831054687500e-01,
                   9.5662862062454223632812500e-02)
_ERF_ALPHA_F64 = (1.9493725660006057018823477644531294572516344487667083740234375e-04,
                  1.8272566210022942682217328425053892715368419885635375976562500e-03,
                  4.5303363351690106863856044583371840417385101318359375000000000e-02,
                  1.4215015503619179981775744181504705920815467834472656250000000e-01,
                  1.1283791670955125585606992899556644260883331298828125000000000e+00)
_ERF_BETA_F64 = (2.0294484101083099089526257108317963684385176748037338256835938e-05,
                 6.8117805899186819641732970609382391558028757572174072265625000e-04,
                 1.0582026056098614921752165685120417037978768348693847656250000e-02,
                 9.3252603143757495374188692949246615171432495117187500000000000e-02,
                 4.5931062818368939559832142549566924571990966796875000000000000e-01,
                 1.0)
_ERFC_GAMMA_F64 = (1.5252844933226974316088642158462107545346952974796295166015625e-04,
                   1.0909912393738931124520519233556115068495273590087890625000000e-02,
                   1.0628604636755033252537572252549580298364162445068359375000000e-01,
                   3.3492472973137982217295416376146022230386734008789062500000000e-01,
                   4.5065776215933289750026347064704168587923049926757812500000000e-01,
                   2.9433039130294824659017649537418037652969360351562500000000000e-01,
                   9.8792676360600226170838311645638896152377128601074218750000000e-02,
                   1.7095935395503719655962981960328761488199234008789062500000000e-02,
                   1.4249109729504577659398023570247460156679153442382812500000000e-03,
                   4.4567378313647954771875570045835956989321857690811157226562500e-05)
_ERFC_DELTA_F64 = (2.041985103115789845773520028160419315099716186523437500000000e-03,
                   5.316030659946043707142493417450168635696172714233398437500000e-02,
                   3.426242193784684864077405563875799998641014099121093750000000e-01,
                   8.565637124308049799026321124983951449394226074218750000000000e-01,
                   1.000000000000000000000000000000000000000000000000000000000000e+00,
                   5.968805280570776972126623149961233139038085937500000000000000e-01,
                   1.890922854723317836356244470152887515723705291748046875000000e-01,
                   3.152505418656005586885981983868987299501895904541015625000000e-02,
                   2.565085751861882583380047861965067568235099315643310546875000e-03,
                   7.899362131678837697403017248376499992446042597293853759765625e-05)


@jitable
def _polevl(x, coefficients):
    """Horner from the highest coefficient, each step fl(fl(p x) + c) (``ppolevl`` without FMA)."""
    p = cast(coefficients[0], x)
    for c in coefficients[1:]:
        p = p * x + cast(c, x)
    return p


@jitable
def _square_low(x, x2):
    """The rounding error of x2 = fl(x x), exactly (Dekker's ``twoprod_low`` with Veltkamp's split)."""
    gamma = cast(_split_factor(x), x) * x
    x_high = (x - gamma) + gamma
    x_low = x - x_high
    low = x_high * x_high + -x2
    low = x_high * x_low + low
    low = x_low * x_high + low
    return x_low * x_low + low


def _split_factor(x):
    """Veltkamp's 2^s + 1 for half the significand of x's dtype: 2^12 + 1 (float32), 2^27 + 1 (float64)."""
    return 4097.0 if np.asarray(x).dtype == np.float32 else 134217729.0


@overload(_split_factor, jit_options={"cache": True})
def _split_factor_numba(x):
    factor = 4097.0 if x == types.float32 else 134217729.0
    return lambda x: factor


_rcpps = _sse_estimate("llvm.x86.sse.rcp.ps")


@_jit
def _rcp_estimate_array(values, out):
    for i in range(values.size):
        out.flat[i] = _rcpps(values.flat[i])


def rcp_estimate(y):
    """The processor's RCPPS estimate of :math:`1/y` (float32, array or scalar)."""
    return _on_float32(_rcp_estimate_array, y)


@overload(rcp_estimate, jit_options={"cache": True})
def _rcp_estimate_numba(y):
    if y == types.float32:
        return lambda y: _rcpps(y)
    return None


@jitable
def reciprocal_packet(y):
    """Eigen's ``preciprocal<Packet8f>``: RCPPS refined by one Newton step, :math:`x + x(1 - y x)` (float32)."""
    estimate = rcp_estimate(y)
    error = _F32(1.0) - y * estimate
    return where(error == error, estimate * error + estimate, estimate)


def _divide_one_float64(y):
    return _F64(1.0) / y


_reciprocal_dispatch = _by_dtype(reciprocal_packet, _divide_one_float64)


def reciprocal(y):
    """TensorFlow's packet ``Reciprocal`` (``preciprocal``): :func:`reciprocal_packet` in float32, a division in float64.

    Its scalar path (the last ``n % P`` elements) divides in both dtypes.
    """
    return _reciprocal_dispatch(y)


def _erfc_float32(x, exp, reciprocal):
    x = np.minimum(np.maximum(x, _F32(-11.0)), _F32(11.0))
    x2 = x * x
    small = x * _polevl(x2, _ERFC_SMALL_F32) + _F32(1.0)
    x2_low = _square_low(x, x2)
    e = exp(-x2)
    z = e - _flush(e * x2_low)  # denormal products are flushed (FTZ), as everywhere in TensorFlow's kernels
    q2 = reciprocal(x2)
    ratio = _polevl(q2, _ERFC_GAMMA_F32) / (x * _polevl(q2, _ERFC_DELTA_F32))
    large = _flush(_flush(z * ratio) + where(x < _F32(0.0), _F32(2.0), _F32(0.0)))
    return where(_F32(1.0) < x2, large, small)


def _erfc_float64(x, exp):
    x = np.minimum(np.maximum(x, _F64(-28.0)), _F64(28.0))
    x2 = x * x
    small = _F64(1.0) - x * (_polevl(x2, _ERF_ALPHA_F64) / _polevl(x2, _ERF_BETA_F64))
    x2_low = _square_low(x, x2)
    e = exp(-x2)
    z = e - _flush(e * x2_low)  # denormal products are flushed (FTZ), as everywhere in TensorFlow's kernels
    q2 = _F64(1.0) / x2
    ratio = _polevl(q2, _ERFC_GAMMA_F64) / (x * _polevl(q2, _ERFC_DELTA_F64))
    large = _flush(_flush(z * ratio) + where(x < _F64(0.0), _F64(2.0), _F64(0.0)))
    return where(_F64(1.0) < x2, large, small)


@jitable
def _divide_one(y):
    return _F32(1.0) / y


def _erfc_packet_float32(x):
    return _erfc_float32(x, _exp_dispatch, reciprocal_packet)


def _erfc_scalar_float32(x):
    return _erfc_float32(x, _exp_scalar_dispatch, _divide_one)


def _erfc_packet_float64(x):
    return _erfc_float64(x, _exp_dispatch)


def _erfc_scalar_float64(x):
    return _erfc_float64(x, _exp_scalar_dispatch)


_erfc_float32 = jitable(_erfc_float32)
_erfc_float64 = jitable(_erfc_float64)
_erfc_dispatch = _by_dtype(_erfc_packet_float32, _erfc_packet_float64)
_erfc_scalar_dispatch = _by_dtype(_erfc_scalar_float32, _erfc_scalar_float64)


def erfc(z):
    """Eigen's vectorised (packet) complementary error function (comment above)."""
    return _erfc_dispatch(z)


def erfc_scalar(z):
    """Eigen's scalar ``erfc``: the same formula with ``std::exp`` and a true division (the last ``n % P`` elements)."""
    return _erfc_scalar_dispatch(z)
