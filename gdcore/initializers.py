r"""Weight initializers with Keras 3's names, arguments and draws.

Every initializer is called as ``initializer(shape, dtype=None, rng=None)``
and returns a NumPy array of that shape and dtype. Where its values come from
depends on ``rng``:

* ``rng`` is a :class:`numpy.random.Generator` (what ``Sequential`` passes
  today) and the initializer is **unseeded**: the values are drawn from that
  generator, in float64, and rounded to ``dtype``. Same model seed, same bits,
  but not Keras's values.
* otherwise (a **seeded** initializer, ``rng=None``, or ``rng=gdcore.random.KERAS``):
  Keras 3's own values with the TensorFlow backend, bit for bit, computed
  without TensorFlow by :mod:`gdcore.random`. A seeded initializer returns
  the same values at every call, as Keras's does. An unseeded one uses the
  seed it took at construction, as Keras does: ``random.randint(1, 10**9)``
  from Python's global :mod:`random` (:func:`gdcore.random.make_default_seed`),
  so after ``gdcore.random.set_random_seed(s)`` layers built in Keras's order
  get Keras's weights. A :class:`gdcore.random.SeedGenerator` as ``seed``
  gives new values at every call.

A model that wants Keras's initial weights passes ``gdcore.random.KERAS`` as
``rng`` instead of its generator (e.g. behind ``Sequential(random="keras")``);
nothing else changes, since the seeds were taken when the layers' initializers
were constructed.

Keras's conversions are kept: the draws are made in ``dtype`` itself (float64
draws two Philox words per uniform, it is not a float32 draw cast), a
uniform's bounds and a ``Constant``'s value pass through float32 when they
are Python floats (``tf.cast``), ``mean``, ``stddev`` and ``gain`` do not.

=======================  =========================================================================================
name                     values
=======================  =========================================================================================
zeros / ones             constant 0 / 1
constant                 ``Constant(value)``
identity                 ``gain`` times the identity matrix (2-D shapes, not necessarily square)
random_normal            :math:`N(\text{mean}, \text{stddev}^2)`, defaults 0, 0.05
random_uniform           :math:`U(\text{minval}, \text{maxval})`, defaults -0.05, 0.05
truncated_normal         :math:`N(\text{mean}, \text{stddev}^2)` redrawn outside :math:`\text{mean} \pm 2\,\text{stddev}`
variance_scaling         :math:`n` = fan_in, fan_out or their mean (``mode``): truncated normal with
                         :math:`\sigma = \sqrt{\text{scale}/n} / 0.87962566103423978`, untruncated normal with
                         :math:`\sigma = \sqrt{\text{scale}/n}`, or :math:`U(-\sqrt{3\,\text{scale}/n}, \sqrt{3\,\text{scale}/n})`
glorot_uniform / normal  variance scaling, scale 1, ``fan_avg`` (``glorot_uniform`` is Dense's kernel default)
he_uniform / normal      variance scaling, scale 2, ``fan_in``
lecun_uniform / normal   variance scaling, scale 1, ``fan_in``
orthogonal               ``gain`` times Q of the QR factorization of a standard normal matrix, signs fixed by R's diagonal
=======================  =========================================================================================

Fans (Keras's ``compute_fans``): a 2-D shape ``(n_in, n_out)`` has fan_in
``n_in`` and fan_out ``n_out``; a 1-D shape ``(n,)`` has both ``n``; a 0-D
shape has both 1; higher ranks multiply both by the product of the leading
(receptive-field) dimensions.

Orthogonal's Keras values need TensorFlow's QR (Eigen's Householder QR); see
:class:`Orthogonal` for how close the NumPy version here comes.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from numba import njit

from gdcore import random as keras_random

_jit = njit(cache=True, error_model="numpy", nogil=True)
_inline = njit(cache=True, error_model="numpy", nogil=True, inline="always")

_NORMAL_STDDEV_OF_TRUNCATED = 0.87962566103423978  # stddev of a standard normal truncated to (-2, 2)


def _check_seed(seed):
    if seed is None or isinstance(seed, keras_random.SeedGenerator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seed must be an int, a gdcore.random.SeedGenerator or None, got {seed!r}")
    return int(seed)


def _check_real(value, name: str):
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


class Initializer:
    """Base class: ``initializer(shape, dtype=None, rng=None) -> array`` (see the module docstring).

    ``dtype`` None means ``gdcore.config.floatx()`` (float32 unless set), as in Keras.
    """

    #: Whether a NumPy generator passed as ``rng`` is drawn from (only by unseeded random initializers).
    _draws_from_numpy = False

    def __call__(self, shape, dtype=None, rng=None) -> np.ndarray:
        shape = keras_random._shape(shape)
        if dtype is None:
            from gdcore.config import floatx

            dtype = floatx()
        dtype = keras_random._float_dtype(dtype)
        if isinstance(rng, np.random.Generator):
            if self._draws_from_numpy:
                return np.asarray(self.sample(shape, rng), dtype=np.float64).astype(dtype)
        elif rng is not None and rng is not keras_random.KERAS:
            raise TypeError(f"rng must be a numpy.random.Generator, gdcore.random.KERAS or None, got {rng!r}")
        return np.asarray(self.keras(shape, dtype), dtype=dtype)

    def keras(self, shape: tuple, dtype: np.dtype) -> np.ndarray:
        """Keras 3's values (TensorFlow backend) for ``shape`` and ``dtype``."""
        raise NotImplementedError

    def sample(self, shape: tuple, rng: np.random.Generator) -> np.ndarray:
        """Values drawn from a NumPy generator, in float64 (random initializers only)."""
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "Initializer":
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


# --- constants --------------------------------------------------------------------------


class Zeros(Initializer):
    """All zeros."""

    def keras(self, shape, dtype):
        return np.zeros(shape, dtype=dtype)


class Ones(Initializer):
    """All ones."""

    def keras(self, shape, dtype):
        return np.ones(shape, dtype=dtype)


class Constant(Initializer):
    """Every entry ``value``, cast as Keras does (``ops.cast(value, dtype) * ones``: a Python float through float32)."""

    def __init__(self, value=0.0):
        self.value = _check_real(value, "value")

    def keras(self, shape, dtype):
        return np.full(shape, keras_random.tensorflow_cast(self.value, dtype), dtype=dtype)

    def get_config(self):
        return {"value": self.value}


class Identity(Initializer):
    """``gain`` times the identity matrix of a 2-D shape (``gain * ops.eye(rows, cols)``: gain rounded to the dtype)."""

    def __init__(self, gain=1.0):
        self.gain = _check_real(gain, "gain")

    def keras(self, shape, dtype):
        if len(shape) != 2:
            raise ValueError(f"Identity needs a 2-D shape, got shape={shape} of rank {len(shape)}")
        return dtype.type(self.gain) * np.eye(*shape, dtype=dtype)

    def get_config(self):
        return {"gain": self.gain}


# --- random ---------------------------------------------------------------------------------


class RandomInitializer(Initializer):
    """A random initializer: ``seed`` an int, a :class:`gdcore.random.SeedGenerator`, or None.

    An unseeded instance takes :func:`gdcore.random.make_default_seed` at
    construction (Keras's ``RandomInitializer.__init__``), which is what its
    Keras draws use.
    """

    def __init__(self, seed=None):
        self.seed = _check_seed(seed)
        self._keras_seed = keras_random.make_default_seed() if self.seed is None else self.seed

    @property
    def _draws_from_numpy(self) -> bool:
        return self.seed is None

    def get_config(self):
        return {"seed": None if isinstance(self.seed, keras_random.SeedGenerator) else self.seed}


class RandomNormal(RandomInitializer):
    r""":math:`N(\text{mean}, \text{stddev}^2)`: :func:`gdcore.random.normal`."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean = _check_real(mean, "mean")
        if not (_check_real(stddev, "stddev") >= 0):
            raise ValueError(f"stddev must be a finite number >= 0, got {stddev!r}")
        self.stddev = stddev
        super().__init__(seed)

    def keras(self, shape, dtype):
        return keras_random.normal(shape, self.mean, self.stddev, dtype, self._keras_seed)

    def sample(self, shape, rng):
        return rng.normal(self.mean, self.stddev, shape)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class RandomUniform(RandomInitializer):
    r""":math:`U(\text{minval}, \text{maxval})`: :func:`gdcore.random.uniform` (bounds rounded through float32)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval = _check_real(minval, "minval"), _check_real(maxval, "maxval")
        if not maxval >= minval:
            raise ValueError(f"maxval must be >= minval, got minval={minval!r}, maxval={maxval!r}")
        super().__init__(seed)

    def keras(self, shape, dtype):
        return keras_random.uniform(shape, self.minval, self.maxval, dtype, self._keras_seed)

    def sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self):
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


def _numpy_truncated_normal(shape, rng, stddev):
    values = rng.standard_normal(shape)
    outside = np.abs(values) >= 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) >= 2.0
    return values * stddev


class TruncatedNormal(RandomInitializer):
    r""":math:`N(\text{mean}, \text{stddev}^2)` conditioned on :math:`|x - \text{mean}| < 2\,\text{stddev}`:
    :func:`gdcore.random.truncated_normal`."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean = _check_real(mean, "mean")
        if not (_check_real(stddev, "stddev") >= 0):
            raise ValueError(f"stddev must be a finite number >= 0, got {stddev!r}")
        self.stddev = stddev
        super().__init__(seed)

    def keras(self, shape, dtype):
        return keras_random.truncated_normal(shape, self.mean, self.stddev, dtype, self._keras_seed)

    def sample(self, shape, rng):
        return self.mean + _numpy_truncated_normal(shape, rng, self.stddev)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


def compute_fans(shape, input_axes=None, output_axes=None) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shape, Keras's ``compute_fans`` (see the module docstring)."""
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return (int(math.prod(shape[axis] for axis in input_axes)),
                int(math.prod(shape[axis] for axis in output_axes)))
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    receptive_field = math.prod(shape[:-2])
    return int(shape[-2] * receptive_field), int(shape[-1] * receptive_field)


class VarianceScaling(RandomInitializer):
    r"""Scale adapted to the fans, Keras's ``VarianceScaling`` (formulas in the module docstring).

    The scale is computed in Python floats exactly as Keras does
    (``scale / max(1.0, n)``, then ``math.sqrt``), then the draw is
    :func:`gdcore.random.truncated_normal`, :func:`~gdcore.random.normal` or
    :func:`~gdcore.random.uniform`.
    """

    MODES = ("fan_in", "fan_out", "fan_avg")
    DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                 input_axes=None, output_axes=None):
        if not (_check_real(scale, "scale") > 0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        distribution = str(distribution).lower()
        distribution = "truncated_normal" if distribution == "normal" else distribution
        if distribution not in self.DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {self.DISTRIBUTIONS} (or 'normal'), got {distribution!r}")
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self.input_axes, self.output_axes = input_axes, output_axes
        super().__init__(seed)

    def _scale(self, shape) -> float:
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        scale = self.scale
        if self.mode == "fan_in":
            scale /= max(1.0, fan_in)
        elif self.mode == "fan_out":
            scale /= max(1.0, fan_out)
        else:
            scale /= max(1.0, (fan_in + fan_out) / 2.0)
        return scale

    def keras(self, shape, dtype):
        scale = self._scale(shape)
        if self.distribution == "truncated_normal":
            stddev = math.sqrt(scale) / _NORMAL_STDDEV_OF_TRUNCATED
            return keras_random.truncated_normal(shape, 0.0, stddev, dtype, self._keras_seed)
        if self.distribution == "untruncated_normal":
            return keras_random.normal(shape, 0.0, math.sqrt(scale), dtype, self._keras_seed)
        limit = math.sqrt(3.0 * scale)
        return keras_random.uniform(shape, -limit, limit, dtype, self._keras_seed)

    def sample(self, shape, rng):
        scale = self._scale(shape)
        if self.distribution == "truncated_normal":
            return _numpy_truncated_normal(shape, rng, math.sqrt(scale) / _NORMAL_STDDEV_OF_TRUNCATED)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(scale), shape)
        limit = math.sqrt(3.0 * scale)
        return rng.uniform(-limit, limit, shape)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "input_axes": self.input_axes, "output_axes": self.output_axes}


class _FixedVarianceScaling(VarianceScaling):
    """A named variance scaling: only ``seed`` (and the fan axes) can be chosen."""

    _SCALE, _MODE, _DISTRIBUTION = 1.0, "fan_in", "truncated_normal"

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(self._SCALE, self._MODE, self._DISTRIBUTION, seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": RandomInitializer.get_config(self)["seed"], "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class GlorotUniform(_FixedVarianceScaling):
    r""":math:`U(-l, l)`, :math:`l = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}` (Glorot and Bengio 2010)."""
    _SCALE, _MODE, _DISTRIBUTION = 1.0, "fan_avg", "uniform"


class GlorotNormal(_FixedVarianceScaling):
    r"""Truncated normal, :math:`\sigma = \sqrt{2 / (\text{fan\_in} + \text{fan\_out})}` before truncation correction."""
    _SCALE, _MODE, _DISTRIBUTION = 1.0, "fan_avg", "truncated_normal"


class HeNormal(_FixedVarianceScaling):
    r"""Truncated normal, :math:`\sigma = \sqrt{2 / \text{fan\_in}}` (He et al. 2015)."""
    _SCALE, _MODE, _DISTRIBUTION = 2.0, "fan_in", "truncated_normal"


class HeUniform(_FixedVarianceScaling):
    r""":math:`U(-l, l)`, :math:`l = \sqrt{6 / \text{fan\_in}}`."""
    _SCALE, _MODE, _DISTRIBUTION = 2.0, "fan_in", "uniform"


class LecunNormal(_FixedVarianceScaling):
    r"""Truncated normal, :math:`\sigma = \sqrt{1 / \text{fan\_in}}` (Klambauer et al. 2017)."""
    _SCALE, _MODE, _DISTRIBUTION = 1.0, "fan_in", "truncated_normal"


class LecunUniform(_FixedVarianceScaling):
    r""":math:`U(-l, l)`, :math:`l = \sqrt{3 / \text{fan\_in}}`."""
    _SCALE, _MODE, _DISTRIBUTION = 1.0, "fan_in", "uniform"


# --- TensorFlow's QR (Eigen's Householder QR), transcribed ------------------------------------

# Eigen switches to blocked (matrix-matrix) algorithms from this many reflectors on
# (householder_qr_inplace_blocked's maxBlockSize and HouseholderSequence's BlockSize).
EIGEN_QR_BLOCK_SIZE = 48


@_jit
def _apply_householder_on_the_left(m, row0, col0, n_cols, essential_col, tau, stride, zero, one):
    """Eigen's ``applyHouseholderOnTheLeft`` on ``m[row0:, col0:col0 + n_cols]``, the reflector
    ``I - tau v v^T`` with ``v = (1, m[row0 + 1:, essential_col])`` (see :func:`householder_qr`)."""
    n_rows = m.shape[0] - row0
    if n_rows == 1:
        factor = one - tau
        for j in range(n_cols):
            m[row0, col0 + j] = m[row0, col0 + j] * factor
        return
    if tau == zero:
        return
    length = n_rows - 1
    # tmp = essential^T * bottom: a dot product for one column, else a column-major GEMV whose
    # sum runs over all rows at once below 128 rows, else in blocks of 16 (or 4) rows.
    block = length
    if n_cols > 1 and length >= 128:
        block = 16 if stride * m.itemsize < 32000 else 4
    tmp = np.empty(n_cols, dtype=m.dtype)
    for j in range(n_cols):
        total = zero
        for start in range(0, length, block):
            partial = zero
            for i in range(start, min(start + block, length)):
                partial = partial + m[row0 + 1 + i, essential_col] * m[row0 + 1 + i, col0 + j]
            total = total + partial
        tmp[j] = total
    for j in range(n_cols):
        tmp[j] = tmp[j] + m[row0, col0 + j]
        m[row0, col0 + j] = m[row0, col0 + j] - tau * tmp[j]
    for i in range(length):
        scaled = tau * m[row0 + 1 + i, essential_col]
        for j in range(n_cols):
            m[row0 + 1 + i, col0 + j] = m[row0 + 1 + i, col0 + j] - scaled * tmp[j]


@_inline
def _predux(lanes, count, zero):
    """Eigen's horizontal sum of an AVX/SSE packet of ``count`` lanes: halves added lane-wise, then again."""
    if count == 8:  # Packet8f: (lo + hi) as a Packet4f, then (a0 + a2) + (a1 + a3)
        return ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
    if count == 4:  # Packet4f: (a0 + a2) + (a1 + a3); Packet4d: (lo + hi) as a Packet2d, then a0 + a1: the same
        return (lanes[0] + lanes[2]) + (lanes[1] + lanes[3])
    if count == 2:  # Packet2d
        return lanes[0] + lanes[1]
    return zero


@_inline
def _row_major_gemv_sum(qr, dst, row0, j, length, lanes, single, zero):
    """One output of Eigen's row-major GEMV kernel: sum over i of ``qr[row0+1+i, row0] * dst[row0+1+i, j]``.

    Lane l of a packet of ``lanes`` sums the terms i = l (mod lanes) of the whole packets in order, the
    lanes are reduced by :func:`_predux`; an output processed alone (``single``) then does the same
    with half packets, and the remaining terms are added one by one.
    """
    acc = np.zeros(8, dtype=dst.dtype)
    full_end = lanes * (length // lanes)
    for start in range(0, full_end, lanes):
        for lane in range(lanes):
            i = start + lane
            acc[lane] = acc[lane] + qr[row0 + 1 + i, row0] * dst[row0 + 1 + i, j]
    total = _predux(acc, lanes, zero)
    tail = full_end
    if single:
        half = lanes // 2
        half_end = half * (length // half)
        for lane in range(8):
            acc[lane] = zero
        for start in range(full_end, half_end, half):
            for lane in range(half):
                i = start + lane
                acc[lane] = acc[lane] + qr[row0 + 1 + i, row0] * dst[row0 + 1 + i, j]
        total = total + _predux(acc, half, zero)
        tail = half_end
    for i in range(tail, length):
        total = total + qr[row0 + 1 + i, row0] * dst[row0 + 1 + i, j]
    return total


@_jit
def _apply_householder_to(dst, qr, row0, tau, zero, one):
    """The reflector stored in column ``row0`` of ``qr`` applied to ``dst[row0:, :]``, where ``dst`` is the
    column-major matrix ``householderQ() * Identity`` evaluates into (same formulas as above; only the
    order of the GEMV's sums differs, see :func:`householder_qr`)."""
    n_rows = dst.shape[0] - row0
    n_cols = dst.shape[1]
    if n_rows == 1:
        factor = one - tau
        for j in range(n_cols):
            dst[row0, j] = dst[row0, j] * factor
        return
    if tau == zero:
        return
    length = n_rows - 1
    tmp = np.empty(n_cols, dtype=dst.dtype)
    if n_cols == 1:  # a dot product of a strided and a contiguous vector: sequential
        total = zero
        for i in range(length):
            total = total + qr[row0 + 1 + i, row0] * dst[row0 + 1 + i, 0]
        tmp[0] = total
    else:
        lanes = 8 if dst.itemsize == 4 else 4  # AVX packets: 8 floats or 4 doubles
        # Outputs go in groups of 8 (none when a column is longer than 32000 bytes), 4, 2, then one alone.
        i = 0
        if dst.shape[0] * dst.itemsize <= 32000:
            while i < n_cols - 7:
                i += 8
        while i < n_cols - 3:
            i += 4
        while i < n_cols - 1:
            i += 2
        for j in range(n_cols):
            tmp[j] = _row_major_gemv_sum(qr, dst, row0, j, length, lanes, j >= i, zero)
    for j in range(n_cols):
        tmp[j] = tmp[j] + dst[row0, j]
        dst[row0, j] = dst[row0, j] - tau * tmp[j]
    for i in range(length):
        scaled = tau * qr[row0 + 1 + i, row0]
        for j in range(n_cols):
            dst[row0 + 1 + i, j] = dst[row0 + 1 + i, j] - scaled * tmp[j]


@_jit
def _householder_qr(a, zero, one, tiny):
    m, n = a.shape
    qr = a.copy()
    h = np.zeros(n, dtype=a.dtype)
    for k in range(n):
        # makeHouseholderInPlace on qr[k:, k]
        tail_sq = zero
        for i in range(k + 1, m):
            tail_sq = tail_sq + qr[i, k] * qr[i, k]
        c0 = qr[k, k]
        if tail_sq <= tiny:
            tau = zero
            beta = c0
            for i in range(k + 1, m):
                qr[i, k] = zero
        else:
            beta = math.sqrt(c0 * c0 + tail_sq)
            if c0 >= zero:
                beta = -beta
            denominator = c0 - beta
            for i in range(k + 1, m):
                qr[i, k] = qr[i, k] / denominator
            tau = (beta - c0) / beta
        h[k] = tau
        qr[k, k] = beta
        _apply_householder_on_the_left(qr, k, k + 1, n - k - 1, k, tau, n, zero, one)
    q = np.zeros((m, n), dtype=a.dtype)
    for i in range(n):
        q[i, i] = one
    for k in range(n - 1, -1, -1):
        _apply_householder_to(q, qr, k, h[k], zero, one)
    r = np.zeros((n, n), dtype=a.dtype)
    for i in range(n):
        for j in range(i, n):
            r[i, j] = qr[i, j]
    return q, r


def householder_qr(a) -> tuple[np.ndarray, np.ndarray]:
    r"""The reduced QR factorization ``tf.linalg.qr(a)`` computes on a CPU, for ``a`` of shape (m, n), m >= n.

    TensorFlow's ``QrOp`` copies ``a`` into a row-major Eigen matrix, runs
    ``Eigen::HouseholderQR`` and forms ``Q = householderQ() * Identity(m, n)``.
    For :math:`k = 0, \dots, n-1`, column :math:`k` becomes a reflector
    (``makeHouseholder``): with :math:`c_0 = a_{kk}` and the tail
    :math:`x = a_{k+1:, k}`,

    .. math::

        s = \textstyle\sum_i x_i^2, \qquad
        \beta = -\operatorname{sign}(c_0)\sqrt{c_0^2 + s}, \qquad
        v = (1,\ x / (c_0 - \beta)), \qquad \tau = (\beta - c_0) / \beta

    (:math:`\tau = 0, \beta = c_0` when :math:`s` is at most the smallest
    normal number), and :math:`I - \tau v v^T` is applied to the columns on its
    right (``applyHouseholderOnTheLeft``):
    :math:`t = v_{1:}^T B + b_0`, :math:`b_0 \leftarrow b_0 - \tau t`,
    :math:`B \leftarrow B - (\tau v_{1:})\, t^T`. Q applies the reflectors in
    reverse order to the identity. Every sum runs sequentially, one rounding
    per multiplication and per addition (TensorFlow's wheel is compiled
    without FMA, and Eigen vectorizes neither strided columns nor these
    sums); Eigen's GEMV sums 128 or more terms in blocks of 16 (4 for very
    wide rows) and adds the block sums, which is reproduced.

    **Bit for bit below 48 columns.** From ``EIGEN_QR_BLOCK_SIZE`` = 48
    reflectors on, Eigen factors in panels and applies them with matrix
    products (``apply_block_householder_on_the_left``), whose summation order
    this unblocked version does not follow: the results then agree to a few
    ulps, not bit for bit.

    Returns
    -------
    (q, r) of shapes (m, n) and (n, n), in ``a``'s dtype.
    """
    a = np.ascontiguousarray(a)
    if a.ndim != 2 or a.shape[0] < a.shape[1]:
        raise ValueError(f"householder_qr needs a 2-D array with at least as many rows as columns, got {a.shape}")
    dtype = keras_random._float_dtype(a.dtype)
    return _householder_qr(a.astype(dtype), dtype.type(0), dtype.type(1), dtype.type(np.finfo(dtype).tiny))


class Orthogonal(RandomInitializer):
    r"""``gain`` times an orthogonal matrix, Keras's ``Orthogonal`` (Saxe et al. 2014).

    For a shape with :math:`r = \prod \text{shape}[:-1]` rows and
    :math:`c = \text{shape}[-1]` columns, Keras draws
    :math:`A \sim N(0, 1)` of shape :math:`(\max(r, c), \min(r, c))` with
    :func:`gdcore.random.normal` (bit for bit), factors :math:`A = QR`
    (``tf.linalg.qr``, reduced), multiplies column :math:`j` of :math:`Q` by
    :math:`\operatorname{sign}(R_{jj})`, transposes when :math:`r < c`, and
    reshapes.

    The QR here is :func:`householder_qr`, a transcription of
    the Householder QR TensorFlow's CPU kernel runs (Eigen's ``HouseholderQR``
    and ``householderQ()``), see there for where its bits agree and where
    they can differ.
    """

    def __init__(self, gain=1.0, seed=None):
        self.gain = _check_real(gain, "gain")
        super().__init__(seed)

    def _flat_shape(self, shape):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape of rank >= 2, got shape={shape} of rank {len(shape)}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        return rows, cols, (max(rows, cols), min(rows, cols))

    def _finish(self, q, r, rows, cols, shape, dtype):
        q = q * np.sign(np.diag(r)).astype(dtype)
        if rows < cols:
            q = q.T
        return dtype.type(self.gain) * q.reshape(shape)

    def keras(self, shape, dtype):
        rows, cols, flat = self._flat_shape(shape)
        a = keras_random.normal(flat, 0.0, 1.0, dtype, self._keras_seed)
        q, r = householder_qr(a)
        return self._finish(q, r, rows, cols, shape, dtype)

    def sample(self, shape, rng):
        rows, cols, flat = self._flat_shape(shape)
        q, r = np.linalg.qr(rng.standard_normal(flat))
        return self._finish(q, r, rows, cols, shape, np.dtype("float64"))

    def get_config(self):
        return {**super().get_config(), "gain": self.gain}


INITIALIZERS = {
    cls.__name__.lower(): cls
    for cls in (Zeros, Ones, Constant, Identity, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
                GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform, Orthogonal)
}
INITIALIZERS.update({
    "zeros": Zeros, "ones": Ones, "constant": Constant, "identity": Identity,
    "random_normal": RandomNormal, "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "he_normal": HeNormal, "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal,
    # Keras's aliases
    "normal": RandomNormal, "uniform": RandomUniform, "one": Ones, "zero": Zeros,
    "identityinitializer": Identity, "orthogonalinitializer": Orthogonal,
})


def get(identifier):
    """An initializer from a Keras name (``"glorot_uniform"``, ``"he_normal"``, ``"GlorotUniform"``, ...),
    a ``{"class_name": ..., "config": ...}`` dict, a class (instantiated with its defaults) or an instance.

    Every call with a name builds a new instance, so an unseeded one draws its
    own Keras seed, as ``keras.initializers.get`` does. (Keras returns None
    for None and lets the layer pick its default; here None is an error
    naming the argument, as for any other non-name.)
    """
    from gdcore._validation import lookup

    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"an initializer dict needs 'class_name' (and optionally 'config'), got {identifier!r}")
        return lookup(INITIALIZERS, identifier["class_name"], "initializer").from_config(identifier.get("config") or {})
    return lookup(INITIALIZERS, identifier, "initializer")()
