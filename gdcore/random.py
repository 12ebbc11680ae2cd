r"""Keras 3's random streams with the TensorFlow backend, bit for bit, in NumPy and Numba.

Everything Keras 3 (TensorFlow backend, TensorFlow 2.21 on a Linux CPU) draws
at random while building and fitting a Dense network, reproduced without
TensorFlow: the stateless Philox generator behind every initializer, Keras's
seed handling (integer seeds, ``SeedGenerator``, the global seed and
``clear_session``), and the per-epoch sample orders of ``fit(shuffle=...)``.
Each rule below names the source it follows; ``tests/test_random.py`` checks
it against live Keras with ``np.array_equal``.

The layers, bottom to top
-------------------------
1. **Philox-4x32-10** (Salmon et al. 2011; TensorFlow's
   ``tensorflow/core/lib/random/philox_random.h``): :func:`philox_4x32`.
2. **Stateless key and counter** from a seed pair
   (``StatelessRandomGetKeyCounter``, ``GenerateKey`` in
   ``tensorflow/core/kernels/stateless_random_ops.cc``): :func:`stateless_key_counter`.
3. **Distributions**, as TensorFlow's CPU kernels fill a tensor
   (``random_distributions.h``, ``random_distributions_utils.h``,
   ``random_op_cpu.h``): :func:`stateless_uniform`, :func:`stateless_normal`,
   :func:`stateless_truncated_normal`, the mirrors of
   ``tf.random.stateless_*``.
4. **Keras's seeds** (``keras/src/random/seed_generator.py``,
   ``keras/src/backend/tensorflow/random.py``, ``keras/src/utils/rng_utils.py``):
   :func:`keras_seed`, :class:`SeedGenerator`, :func:`make_default_seed`,
   :func:`set_random_seed`, :func:`clear_session`, and the Keras-level draws
   :func:`uniform`, :func:`normal`, :func:`truncated_normal`.
5. **Shuffles** (``RandomShuffle`` in ``tensorflow/core/kernels/random_shuffle_op.cc``,
   ``GuardedPhiloxRandom``, ``tf.random.get_seed`` in
   ``tensorflow/python/framework/random_seed.py``, Keras's
   ``ArrayDataAdapter``): :class:`ShuffleKernel`, :func:`op_seeds`,
   :func:`shuffle_orders`, :func:`validation_split_at`.

Conventions that are easy to get wrong (each checked by a live test)
--------------------------------------------------------------------
* **The C library's maths, not NumPy's.** Box-Muller calls glibc's ``logf``,
  ``sqrtf`` and ``sincosf`` (``log``, ``sqrt``, ``sincos`` in float64).
  NumPy's own float32 ``log``/``sin``/``cos`` are SIMD implementations that
  differ from glibc by one ulp on 12 to 22 % of the 2**23 possible inputs
  (228,194 of the first 2**20 normals of seed 123 would differ; in float64,
  1,785), so the kernels here are compiled by Numba, whose ``math.log`` etc.
  lower to the same libm calls (a test compares them with ``ctypes`` over
  every input).
* **2 pi is a double.** ``2.0f * M_PI * u`` is evaluated in double and rounded
  once to float.
* **float64 is drawn in float64** (two 32-bit words per uniform, four per
  Box-Muller pair), never drawn in float32 and cast.
* **Keras rounds ``minval``/``maxval`` through float32**: its TensorFlow
  backend calls ``tf.cast(minval, dtype)``, which first converts a Python
  float to a float32 tensor. A float64 ``RandomUniform(-0.05, 0.05)`` is
  therefore bounded by ``float64(float32(0.05))``. ``mean`` and ``stddev`` go
  straight to the dtype.
* **Unseeded initializers are seeded at construction**, by
  ``random.randint(1, 10**9)`` from Python's global :mod:`random` (which
  ``set_random_seed`` seeds). The global :class:`SeedGenerator` is *not*
  involved; it serves only unseeded ``keras.random`` calls.
* **Keras 3 shuffles every epoch the same way.** ``fit`` makes a new dataset
  iterator per epoch, which re-creates the ``RandomShuffle`` kernel from the
  same seeds; tf.keras 2 repeated one iterator, whose Philox stream advanced
  ``ceil((n - 1) / 4)`` blocks per epoch (``keras_version=2``).

How a model uses it
-------------------
An initializer called with ``rng=KERAS`` draws Keras's values
(:mod:`gdcore.initializers`); ``shuffle_orders(n, epochs, shuffle, batch_size)``
gives the rows of every epoch. The process-wide state mirrors Keras's and
TensorFlow's: :func:`set_random_seed` (``keras.utils.set_random_seed``),
:func:`set_tensorflow_seed` (``tf.random.set_seed``), :func:`clear_session`
(the random part of ``keras.backend.clear_session``).
"""

from __future__ import annotations

import math
import random as _python_random
import sys
from numbers import Integral

import numpy as np
from numba import njit

_jit = njit(cache=True, error_model="numpy", nogil=True)
_inline = njit(cache=True, error_model="numpy", nogil=True, inline="always")

# --- 1. Philox-4x32-10 ----------------------------------------------------------------

_M0 = np.uint64(0xD2511F53)  # kPhiloxM4x32A
_M1 = np.uint64(0xCD9E8D57)  # kPhiloxM4x32B
_W0 = np.uint64(0x9E3779B9)  # kPhiloxW32A (golden ratio)
_W1 = np.uint64(0xBB67AE85)  # kPhiloxW32B (sqrt(3) - 1)
_MASK = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)


@_inline
def _philox_block(c0, c1, c2, c3, k0, k1):
    """One Philox-4x32-10 output: the formula is :func:`philox_4x32`'s (uint64 lanes holding 32-bit words)."""
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = ((p1 >> _32) ^ c1 ^ k0) & _MASK, p1 & _MASK, ((p0 >> _32) ^ c3 ^ k1) & _MASK, p0 & _MASK
        k0 = (k0 + _W0) & _MASK
        k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


@_inline
def _block_at(key, counter, index):
    """Block ``index`` of the stream starting at ``counter``: Philox of ``counter + index`` (128-bit add)."""
    low = np.uint64(index) & _MASK
    c0 = counter[0] + low
    carry = c0 >> _32
    c1 = counter[1] + (np.uint64(index) >> _32) + carry
    carry = c1 >> _32
    c2 = counter[2] + carry
    carry = c2 >> _32
    c3 = (counter[3] + carry) & _MASK
    return _philox_block(c0 & _MASK, c1 & _MASK, c2 & _MASK, c3, key[0], key[1])


@_jit
def _philox_many(counters, keys):
    out = np.empty(counters.shape, dtype=np.uint32)
    for i in range(counters.shape[0]):
        c = counters[i]
        k = keys[i]
        w = _philox_block(c[0], c[1], c[2], c[3], k[0], k[1])
        for j in range(4):
            out[i, j] = w[j]
    return out


@_jit
def _stream(key, counter, start, n_blocks):
    out = np.empty((n_blocks, 4), dtype=np.uint32)
    for i in range(n_blocks):
        w = _block_at(key, counter, start + i)  # start is an int64, so the index stays an integer
        for j in range(4):
            out[i, j] = w[j]
    return out


def philox_4x32(counter, key) -> np.ndarray:
    r"""Philox-4x32-10 (Salmon, Moraes, Dror and Shaw, SC 2011), as TensorFlow's ``PhiloxRandom``.

    Ten rounds on a 128-bit counter :math:`(c_0, c_1, c_2, c_3)` under a
    64-bit key :math:`(k_0, k_1)`, all 32-bit words:

    .. math::

        (h_0, l_0) = M_0 c_0,\quad (h_1, l_1) = M_1 c_2 \quad\text{(high and low words of the 64-bit products)}

        (c_0, c_1, c_2, c_3) \leftarrow (h_1 \oplus c_1 \oplus k_0,\ l_1,\ h_0 \oplus c_3 \oplus k_1,\ l_0),
        \qquad (k_0, k_1) \leftarrow (k_0 + W_0, k_1 + W_1) \bmod 2^{32}

    with :math:`M_0 = \text{D2511F53}_{16}`, :math:`M_1 = \text{CD9E8D57}_{16}`,
    :math:`W_0 = \text{9E3779B9}_{16}`, :math:`W_1 = \text{BB67AE85}_{16}`
    (``philox_random.h``). The generator's ``operator()`` returns this block
    and then increments the counter by one (``SkipOne``); ``Skip(n)`` adds n.

    Parameters
    ----------
    counter : array of uint32, shape (..., 4)
    key : array of uint32, shape (..., 2), broadcast against ``counter``

    Returns
    -------
    uint32 array of shape (..., 4), the four output words in order.
    """
    counter = np.asarray(counter, dtype=np.uint32)
    key = np.asarray(key, dtype=np.uint32)
    if counter.shape[-1:] != (4,) or key.shape[-1:] != (2,):
        raise ValueError(f"counter must have shape (..., 4) and key (..., 2), got {counter.shape} and {key.shape}")
    batch = np.broadcast_shapes(counter.shape[:-1], key.shape[:-1])
    counters = np.broadcast_to(counter, (*batch, 4)).reshape(-1, 4).astype(np.uint64)
    keys = np.broadcast_to(key, (*batch, 2)).reshape(-1, 2).astype(np.uint64)
    return _philox_many(counters, keys).reshape(*batch, 4)


def philox_stream(key, counter, n_blocks: int, start: int = 0) -> np.ndarray:
    """``n_blocks`` consecutive Philox outputs, shape (n_blocks, 4): blocks ``start, start + 1, ...`` after ``counter``.

    What a ``PhiloxRandom(counter, key)`` returns from its ``start``-th call on
    (equivalently after ``Skip(start)``); the counter is a 128-bit integer,
    word 0 least significant.
    """
    key = np.asarray(key, dtype=np.uint64)
    counter = np.asarray(counter, dtype=np.uint64)
    return _stream(key, counter, np.int64(start), int(n_blocks))


# --- 2. stateless key and counter -------------------------------------------------------

_SCRAMBLE_KEY = np.array([0x3EC8F720, 0x02461E29], dtype=np.uint32)


def _seed_pair(seed) -> tuple[int, int]:
    values = np.asarray(seed)
    if values.shape != (2,) or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"seed must be a pair of integers (a shape-[2] seed tensor), got {seed!r}")
    return int(values[0]), int(values[1])


def stateless_key_counter(seed) -> tuple[np.ndarray, np.ndarray]:
    r"""The Philox key and counter of a stateless op with seed ``(s_0, s_1)``.

    TensorFlow's ``StatelessRandomGetKeyCounter`` (what
    ``tf.random.stateless_*`` with ``alg="auto_select"`` runs on a CPU, which
    then selects Philox) calls ``GenerateKey``: each seed is widened to 64
    bits (an int32 seed sign-extended), the pair is scrambled by one Philox
    block under a fixed key, and the block becomes key and counter:

    .. math::

        m = \text{Philox}\big((s_0 \bmod 2^{32}, \lfloor s_0 / 2^{32} \rfloor, s_1 \bmod 2^{32}, \lfloor s_1 / 2^{32} \rfloor),\
        (\text{3EC8F720}_{16}, \text{02461E29}_{16})\big)

        \text{key} = (m_0, m_1), \qquad \text{counter} = (0, 0, m_2, m_3)

    Returns
    -------
    (key, counter) : uint32 arrays of shapes (2,) and (4,)
    """
    s0, s1 = (value % (1 << 64) for value in _seed_pair(seed))
    block = philox_4x32([s0 & 0xFFFFFFFF, s0 >> 32, s1 & 0xFFFFFFFF, s1 >> 32], _SCRAMBLE_KEY)
    return block[:2].copy(), np.array([0, 0, block[2], block[3]], dtype=np.uint32)


# --- 3. conversions and distributions -----------------------------------------------------

_TWO_PI = 2.0 * math.pi  # 2.0f * M_PI: the float 2 promotes to double, so this is the double 2 pi
_EPSILON_FLOAT = np.float32(1.0e-7)
_EPSILON_DOUBLE = 1.0e-7
_TWO_TO_MINUS_23 = np.float32(2.0**-23)
_TWO_TO_MINUS_52 = 2.0**-52
_MANTISSA_FLOAT = np.uint64(0x7FFFFF)
_MANTISSA_DOUBLE_HIGH = np.uint64(0xFFFFF)
_TRUNCATE = 2.0
_SKIP_PER_GROUP = 256  # kReservedSamplesPerOutput in random_op_cpu.h


@_inline
def _uint32_to_float(x):
    """:func:`uint32_to_float` for one word."""
    return np.float32(x & _MANTISSA_FLOAT) * _TWO_TO_MINUS_23


@_inline
def _uint64_to_double(x0, x1):
    """:func:`uint64_to_double` for one pair of words."""
    return np.float64(((x0 & _MANTISSA_DOUBLE_HIGH) << _32) | x1) * _TWO_TO_MINUS_52


@_inline
def _box_muller_float(x0, x1):
    """``BoxMullerFloat``: the formula is :func:`box_muller_float`'s."""
    u1 = _uint32_to_float(x0)
    if u1 < _EPSILON_FLOAT:
        u1 = _EPSILON_FLOAT
    v1 = np.float32(_TWO_PI * np.float64(_uint32_to_float(x1)))
    u2 = math.sqrt(np.float32(-2.0) * math.log(u1))  # float32 in, float32 out: glibc's logf and sqrtf
    return math.sin(v1) * u2, math.cos(v1) * u2      # sinf, cosf: glibc's sincosf computes both the same way


@_inline
def _box_muller_double(x0, x1, x2, x3):
    """``BoxMullerDouble``: the formula is :func:`box_muller_double`'s."""
    u1 = _uint64_to_double(x0, x1)
    if u1 < _EPSILON_DOUBLE:
        u1 = _EPSILON_DOUBLE
    v1 = _TWO_PI * _uint64_to_double(x2, x3)
    u2 = math.sqrt(-2.0 * math.log(u1))
    return math.sin(v1) * u2, math.cos(v1) * u2


@_jit
def _box_muller_float_many(x0, x1):
    f0 = np.empty(x0.shape[0], dtype=np.float32)
    f1 = np.empty(x0.shape[0], dtype=np.float32)
    for i in range(x0.shape[0]):
        f0[i], f1[i] = _box_muller_float(x0[i], x1[i])
    return f0, f1


@_jit
def _box_muller_double_many(x0, x1, x2, x3):
    d0 = np.empty(x0.shape[0], dtype=np.float64)
    d1 = np.empty(x0.shape[0], dtype=np.float64)
    for i in range(x0.shape[0]):
        d0[i], d1[i] = _box_muller_double(x0[i], x1[i], x2[i], x3[i])
    return d0, d1


def uint32_to_float(bits) -> np.ndarray:
    r"""TensorFlow's ``Uint32ToFloat``: a uniform float32 in [0, 1) from the low 23 bits of a word.

    The bits ``x & 0x7FFFFF`` become the mantissa of a float in [1, 2)
    (exponent 127) and 1 is subtracted; both steps are exact, so

    .. math:: u = (x \bmod 2^{23}) \cdot 2^{-23}.
    """
    bits = np.asarray(bits, dtype=np.uint64)
    return (bits & _MANTISSA_FLOAT).astype(np.float32) * _TWO_TO_MINUS_23


def uint64_to_double(x0, x1) -> np.ndarray:
    r"""TensorFlow's ``Uint64ToDouble``: a uniform float64 in [0, 1) from two words.

    The low 20 bits of ``x0`` and all of ``x1`` form a 52-bit mantissa:

    .. math:: u = \big((x_0 \bmod 2^{20}) \cdot 2^{32} + x_1\big) \cdot 2^{-52}.
    """
    x0 = np.asarray(x0, dtype=np.uint64)
    x1 = np.asarray(x1, dtype=np.uint64)
    return (((x0 & _MANTISSA_DOUBLE_HIGH) << _32) | x1).astype(np.float64) * _TWO_TO_MINUS_52


def box_muller_float(x0, x1) -> tuple[np.ndarray, np.ndarray]:
    r"""TensorFlow's ``BoxMullerFloat``: two float32 standard normals from two words.

    .. math::

        u_1 = \max(\text{Uint32ToFloat}(x_0), 10^{-7}), \qquad
        v_1 = \mathrm{fl}_{32}\big(2\pi_{64} \cdot \text{Uint32ToFloat}(x_1)\big)

        r = \text{sqrtf}(-2 \cdot \text{logf}(u_1)), \qquad
        (f_0, f_1) = (\text{sinf}(v_1) \cdot r,\ \text{cosf}(v_1) \cdot r)

    every operation in float32 except :math:`v_1`, whose product is a double
    (``2.0f * M_PI``) rounded once. The C library's functions, not NumPy's.
    """
    x0 = np.ascontiguousarray(x0, dtype=np.uint64).ravel()
    x1 = np.ascontiguousarray(x1, dtype=np.uint64).ravel()
    return _box_muller_float_many(x0, x1)


def box_muller_double(x0, x1, x2, x3) -> tuple[np.ndarray, np.ndarray]:
    r"""TensorFlow's ``BoxMullerDouble``: two float64 standard normals from four words.

    .. math::

        u_1 = \max(\text{Uint64ToDouble}(x_0, x_1), 10^{-7}), \qquad v_1 = 2\pi \cdot \text{Uint64ToDouble}(x_2, x_3)

        r = \sqrt{-2 \log u_1}, \qquad (d_0, d_1) = (\sin(v_1) \cdot r,\ \cos(v_1) \cdot r)

    with glibc's ``log``, ``sqrt`` and ``sincos``.
    """
    words = [np.ascontiguousarray(x, dtype=np.uint64).ravel() for x in (x0, x1, x2, x3)]
    return _box_muller_double_many(*words)


@_jit
def _fill_uniform_float(key, counter, n):
    out = np.empty(n, dtype=np.float32)
    for group in range((n + 3) // 4):
        w = _block_at(key, counter, group)
        for lane in range(min(4, n - 4 * group)):
            out[4 * group + lane] = _uint32_to_float(w[lane])
    return out


@_jit
def _fill_uniform_double(key, counter, n):
    out = np.empty(n, dtype=np.float64)
    for group in range((n + 1) // 2):
        w = _block_at(key, counter, group)
        out[2 * group] = _uint64_to_double(w[0], w[1])
        if 2 * group + 1 < n:
            out[2 * group + 1] = _uint64_to_double(w[2], w[3])
    return out


@_jit
def _fill_normal_float(key, counter, n):
    out = np.empty(n, dtype=np.float32)
    for group in range((n + 3) // 4):
        w = _block_at(key, counter, group)
        values = _box_muller_float(w[0], w[1]) + _box_muller_float(w[2], w[3])
        for lane in range(min(4, n - 4 * group)):
            out[4 * group + lane] = values[lane]
    return out


@_jit
def _fill_normal_double(key, counter, n):
    out = np.empty(n, dtype=np.float64)
    for group in range((n + 1) // 2):
        w = _block_at(key, counter, group)
        d0, d1 = _box_muller_double(w[0], w[1], w[2], w[3])
        out[2 * group] = d0
        if 2 * group + 1 < n:
            out[2 * group + 1] = d1
    return out


@_jit
def _fill_truncated_float(key, counter, n):
    out = np.empty(n, dtype=np.float32)
    limit = np.float32(_TRUNCATE)
    for group in range((n + 3) // 4):
        # Each group of 4 outputs reads its own region of the stream, 4 * 256 / 4 = 256 blocks long.
        # A pair takes two words, so it never straddles two blocks.
        block = group * _SKIP_PER_GROUP
        filled = 0
        wanted = min(4, n - 4 * group)
        while filled < wanted:
            w = _block_at(key, counter, block)
            block += 1
            for half in range(2):
                f0, f1 = _box_muller_float(w[2 * half], w[2 * half + 1])
                if abs(f0) < limit:
                    out[4 * group + filled] = f0
                    filled += 1
                    if filled == wanted:
                        break
                if abs(f1) < limit:
                    out[4 * group + filled] = f1
                    filled += 1
                    if filled == wanted:
                        break
    return out


@_jit
def _fill_truncated_double(key, counter, n):
    out = np.empty(n, dtype=np.float64)
    for group in range((n + 1) // 2):
        # Groups of 2 outputs, each reading its own region of 2 * 256 / 4 = 128 blocks.
        block = group * (2 * _SKIP_PER_GROUP // 4)
        filled = 0
        wanted = min(2, n - 2 * group)
        while filled < wanted:
            w = _block_at(key, counter, block)  # four words per Box-Muller pair: exactly one block
            block += 1
            d0, d1 = _box_muller_double(w[0], w[1], w[2], w[3])
            if abs(d0) < _TRUNCATE:
                out[2 * group + filled] = d0
                filled += 1
                if filled == wanted:
                    break
            if abs(d1) < _TRUNCATE:
                out[2 * group + filled] = d1
                filled += 1
    return out


_FILLS = {
    ("uniform", "float32"): _fill_uniform_float, ("uniform", "float64"): _fill_uniform_double,
    ("normal", "float32"): _fill_normal_float, ("normal", "float64"): _fill_normal_double,
    ("truncated_normal", "float32"): _fill_truncated_float, ("truncated_normal", "float64"): _fill_truncated_double,
}
DTYPES = ("float32", "float64")


def _float_dtype(dtype) -> np.dtype:
    name = np.dtype(dtype).name if dtype is not None else "float32"
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return np.dtype(name)


def _shape(shape) -> tuple[int, ...]:
    if isinstance(shape, Integral):
        shape = (shape,)
    shape = tuple(shape)
    if any(isinstance(d, bool) or not isinstance(d, Integral) or d < 0 for d in shape):
        raise ValueError(f"shape must be a tuple of non-negative integers, got {shape!r}")
    return tuple(int(d) for d in shape)


def _raw(distribution: str, shape, seed, dtype) -> np.ndarray:
    """The unit draws of a stateless op (``StatelessRandom*V2`` before the affine map), in C order."""
    shape, dtype = _shape(shape), _float_dtype(dtype)
    key, counter = stateless_key_counter(seed)
    n = math.prod(shape)
    values = _FILLS[distribution, dtype.name](key.astype(np.uint64), counter.astype(np.uint64), n)
    return values.reshape(shape)


def stateless_uniform(shape, seed, minval=0.0, maxval=1.0, dtype="float32") -> np.ndarray:
    r"""``tf.random.stateless_uniform(shape, seed, minval, maxval, dtype)`` for a float dtype, bit for bit.

    The output, in C order, is filled by groups: group :math:`g` takes Philox
    block :math:`g` of the stream at :func:`stateless_key_counter` (one
    ``Skip`` per group, so the split among CPU threads does not matter).

    * float32: 4 values per block, :math:`u_i = \text{Uint32ToFloat}(w_{i \bmod 4})` of block :math:`\lfloor i/4 \rfloor`;
    * float64: 2 values per block, :math:`u_i = \text{Uint64ToDouble}(w_{2j}, w_{2j+1})`, :math:`j = i \bmod 2`.

    Then, in ``dtype`` with one rounding per operation,
    :math:`x = u \cdot (\text{maxval} - \text{minval}) + \text{minval}`, where
    ``minval`` and ``maxval`` are converted to ``dtype`` directly (the Keras
    level, :func:`uniform`, rounds them through float32 first).
    """
    dtype = _float_dtype(dtype)
    unit = _raw("uniform", shape, seed, dtype)
    low, high = dtype.type(minval), dtype.type(maxval)
    return unit * (high - low) + low


def stateless_normal(shape, seed, mean=0.0, stddev=1.0, dtype="float32") -> np.ndarray:
    r"""``tf.random.stateless_normal(shape, seed, mean, stddev, dtype)``, bit for bit.

    * float32: block :math:`g` gives values :math:`4g \dots 4g+3` as
      :func:`box_muller_float` of words (0, 1) and (2, 3);
    * float64: block :math:`g` gives values :math:`2g, 2g+1` as
      :func:`box_muller_double` of its four words.

    Then :math:`x = z \cdot \text{stddev} + \text{mean}` in ``dtype``, two roundings.
    """
    dtype = _float_dtype(dtype)
    return _raw("normal", shape, seed, dtype) * dtype.type(stddev) + dtype.type(mean)


def stateless_truncated_normal(shape, seed, mean=0.0, stddev=1.0, dtype="float32") -> np.ndarray:
    r"""``tf.random.stateless_truncated_normal(shape, seed, mean, stddev, dtype)``, bit for bit.

    Rejection on Box-Muller pairs: a candidate :math:`z` is kept when
    :math:`|z| < 2` (strict), :math:`f_0` before :math:`f_1`. The output is
    cut into groups (4 values for float32, 2 for float64); group :math:`g`
    draws words one at a time from its own region of the Philox stream,
    starting at block :math:`g \cdot 256 \cdot k / 4` for a group of
    :math:`k` values (``kReservedSamplesPerOutput = 256`` in
    ``random_op_cpu.h``), so every group is independent of the others. A
    float32 pair takes two words, a float64 pair four (one block). Then
    :math:`x = z \cdot \text{stddev} + \text{mean}` in ``dtype``.
    """
    dtype = _float_dtype(dtype)
    return _raw("truncated_normal", shape, seed, dtype) * dtype.type(stddev) + dtype.type(mean)


# --- 4. Keras's seeds ----------------------------------------------------------------------

_INT32_MAX = 2**31 - 1
_KERAS_SEED_MODULUS = _INT32_MAX - 1  # _cast_seed's floormod(seed, tf.int32.max - 1)


class SeedGenerator:
    r"""Keras's ``keras.random.SeedGenerator``: a seed state that advances at every draw.

    The state is the int64 pair :math:`(s, 0)`, where :math:`s` is the given
    seed or, when ``seed`` is None, :func:`make_default_seed` at construction.
    :meth:`next` returns the current state and advances it:

    .. math::

        \text{ordered: } (a, b) \mapsto (a, b + 1), \qquad
        \text{unordered: } (a, b) \mapsto \big((a + 1) \cdot 5387 \bmod 933199,\ (b + 1) \cdot 5387 \bmod 933199\big)

    (``keras/src/random/seed_generator.py``). The global generator of
    :func:`global_seed_generator` draws unordered.
    """

    def __init__(self, seed: int | None = None, name: str | None = None):
        self._initial_seed = seed
        if seed is None:
            seed = make_default_seed()
        if isinstance(seed, bool) or not isinstance(seed, Integral):
            raise ValueError(f"seed must be an integer or None, got {seed!r}")
        self.name = name or "seed_generator"
        self.state = np.array([int(seed), 0], dtype=np.int64)

    def next(self, ordered: bool = True) -> np.ndarray:
        """The current state (a copy), after which the state advances (see the class formula)."""
        current = self.state.copy()
        if ordered:
            self.state = self.state + np.array([0, 1], dtype=np.int64)
        else:
            self.state = (self.state + 1) * 5387 % 933199
        return current

    def get_config(self) -> dict:
        return {"seed": self._initial_seed, "name": self.name}

    def __repr__(self) -> str:
        return f"SeedGenerator(state={self.state.tolist()})"


def make_default_seed() -> int:
    """``random.randint(1, 10**9)`` from Python's global :mod:`random`, Keras's ``make_default_seed``.

    Keras calls it whenever something that needs a seed is built without one:
    an unseeded initializer (``GlorotUniform()``, so every ``Dense`` with the
    default kernel initializer), a ``SeedGenerator(None)``, the global seed
    generator on first use. After ``set_random_seed(s)`` (which runs
    ``random.seed(s)``) the seeds therefore follow the construction order.
    """
    return _python_random.randint(1, int(1e9))


def keras_seed(seed) -> tuple[int, int]:
    r"""The int32 seed pair Keras's TensorFlow backend passes to ``tf.random.stateless_*``.

    ``draw_seed`` then ``_cast_seed`` (``keras/src/backend/tensorflow/random.py``):

    * an integer :math:`s` gives :math:`(s \bmod 2147483646,\ 0)` (``floormod`` by ``tf.int32.max - 1``);
    * a :class:`SeedGenerator` gives its :meth:`~SeedGenerator.next` pair, each entry :math:`\bmod 2147483646`;
    * ``None`` draws from :func:`global_seed_generator` with ``next(ordered=False)``.
    """
    if isinstance(seed, SeedGenerator):
        pair = seed.next()
    elif seed is None:
        pair = global_seed_generator().next(ordered=False)
    elif isinstance(seed, Integral) and not isinstance(seed, bool):
        pair = (int(seed), 0)
    else:
        raise ValueError(f"seed must be an integer, a gdcore.random.SeedGenerator or None, got {seed!r}")
    return int(pair[0]) % _KERAS_SEED_MODULUS, int(pair[1]) % _KERAS_SEED_MODULUS


class _GlobalState:
    """Keras's and TensorFlow's process-wide random settings, as far as this module mirrors them."""

    def __init__(self):
        self.random_seed: int | None = None          # keras.utils.get_random_seed()
        self.seed_generator: SeedGenerator | None = None  # Keras's global SeedGenerator
        self.tensorflow_seed: int | None = None      # tf.random.set_seed's global seed


_STATE = _GlobalState()


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)``: seed Python, NumPy and TensorFlow, reset the global generator.

    As Keras (``keras/src/utils/rng_utils.py``): records ``seed`` for
    :func:`get_random_seed`, drops the global :class:`SeedGenerator` (it is
    recreated from Python's ``random`` on next use), runs ``random.seed(seed)``
    and ``np.random.seed(seed)``, and sets TensorFlow's global seed
    (:func:`set_tensorflow_seed`), which decides ``fit``'s shuffles.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r} (of type {type(seed).__name__})")
    _STATE.random_seed = seed
    _STATE.seed_generator = None
    _python_random.seed(seed)
    np.random.seed(seed)
    set_tensorflow_seed(seed)


def set_tensorflow_seed(seed: int | None) -> None:
    """``tf.random.set_seed(seed)``: the global seed that seeds ops created without an op seed (here: the shuffles)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    _STATE.tensorflow_seed = None if seed is None else int(seed)
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "random"):  # one global seed, as in Keras: TensorFlow's, when it is loaded
        tf.random.set_seed(_STATE.tensorflow_seed)


def tensorflow_seed() -> int | None:
    """The global seed that decides ``fit``'s shuffles, or None.

    The one last given to :func:`set_tensorflow_seed` (or
    :func:`set_random_seed`); when TensorFlow is loaded, its own global seed
    takes precedence, so a notebook cell that calls ``tf.random.set_seed(123)``
    before a gdcore ``fit`` shuffles as the Keras cell did.
    """
    tf_seed = _tensorflow_global_seed()
    return tf_seed if tf_seed is not None else _STATE.tensorflow_seed


def _tensorflow_global_seed() -> int | None:
    """TensorFlow's global seed if TensorFlow is loaded (read without drawing from its op-seed counter)."""
    if "tensorflow" not in sys.modules:
        return None
    try:
        from tensorflow.python.eager import context
    except ImportError:  # pragma: no cover - a TensorFlow without the eager context module
        return None
    seed = context.global_seed()
    return None if seed is None else int(seed)


def get_random_seed() -> int | None:
    """``keras.utils.get_random_seed()``: the seed of the last :func:`set_random_seed`, None after :func:`clear_session`."""
    return _STATE.random_seed


def clear_session() -> None:
    """The random part of ``keras.backend.clear_session()``.

    Keras replaces its whole global state, so the recorded random seed and
    the global :class:`SeedGenerator` are gone (the next unseeded
    ``keras.random`` call makes a new generator from Python's ``random``).
    It does *not* reseed Python's ``random``, NumPy, or TensorFlow's global
    seed: initializers built afterwards continue the Python stream, and
    ``fit``'s shuffles keep their seed.
    """
    _STATE.random_seed = None
    _STATE.seed_generator = None


def global_seed_generator() -> SeedGenerator:
    """Keras's global :class:`SeedGenerator`, created on first use with :func:`make_default_seed`."""
    if _STATE.seed_generator is None:
        _STATE.seed_generator = SeedGenerator()
    return _STATE.seed_generator


def tensorflow_cast(value, dtype):
    """``tf.cast(value, dtype)`` of a scalar, as a NumPy scalar of ``dtype``.

    ``tf.cast`` first converts a non-tensor with ``convert_to_tensor`` and no
    dtype, which makes a Python float a **float32** tensor: ``tf.cast(0.1,
    tf.float64)`` is ``float64(float32(0.1))``. NumPy scalars keep their own
    dtype, Python ints are exact. Keras's TensorFlow backend casts a uniform's
    bounds this way, and ``Constant``'s value (``ops.cast``).
    """
    dtype = np.dtype(dtype)
    if isinstance(value, (np.generic, np.ndarray)):
        return dtype.type(value)
    if isinstance(value, float):
        return dtype.type(np.float32(value))
    return dtype.type(value)


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None) -> np.ndarray:
    """``keras.random.uniform`` (TensorFlow backend): :func:`stateless_uniform` at :func:`keras_seed`,
    with ``minval`` and ``maxval`` cast as ``tf.cast`` does (a Python float through float32)."""
    dtype = _float_dtype(dtype)
    return stateless_uniform(shape, keras_seed(seed), tensorflow_cast(minval, dtype), tensorflow_cast(maxval, dtype),
                             dtype)


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> np.ndarray:
    """``keras.random.normal`` (TensorFlow backend): :func:`stateless_normal` at :func:`keras_seed`."""
    return stateless_normal(shape, keras_seed(seed), mean, stddev, _float_dtype(dtype))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> np.ndarray:
    """``keras.random.truncated_normal`` (TensorFlow backend): :func:`stateless_truncated_normal` at :func:`keras_seed`."""
    return stateless_truncated_normal(shape, keras_seed(seed), mean, stddev, _float_dtype(dtype))


class KerasStream:
    """The marker a model passes as an initializer's ``rng`` to get Keras's draws instead of NumPy's.

    ``initializer(shape, dtype, KERAS)`` draws what Keras would: a seeded
    initializer from its seed, an unseeded one from the seed it took from
    :func:`make_default_seed` when it was constructed.
    """

    def __repr__(self) -> str:
        return "gdcore.random.KERAS"


KERAS = KerasStream()


# --- 5. shuffles -----------------------------------------------------------------------------


def op_seeds(op_seed: int | None = None, global_seed: int | None = None) -> tuple[int, int]:
    r"""``tf.random.get_seed(op_seed)`` for the first random op of a new graph (a ``tf.data`` function).

    With a global seed :math:`G` (``tf.random.set_seed``): an op without its
    own seed takes the graph's op counter, which is 0 for the first random op
    of a freshly traced function, and the pair is
    :math:`(G \bmod (2^{31}-1),\ \text{op} \bmod (2^{31}-1))`, except that
    :math:`(0, 0)` becomes :math:`(0, 2^{31}-1)` (the kernels read
    :math:`(0, 0)` as "random"). Without a global seed an op seed gives
    :math:`(87654321, \text{op})`. ``global_seed=None`` means the one set by
    :func:`set_tensorflow_seed`; with neither seed this raises ValueError,
    since TensorFlow would then draw nondeterministic seeds.
    """
    if global_seed is None:
        global_seed = tensorflow_seed()
    if global_seed is not None:
        seeds = (global_seed % _INT32_MAX, (0 if op_seed is None else op_seed) % _INT32_MAX)
    elif op_seed is not None:
        seeds = (87654321, op_seed % _INT32_MAX)
    else:
        raise ValueError("no global seed and no op seed: TensorFlow would shuffle nondeterministically; "
                         "call gdcore.random.set_random_seed(seed) (keras.utils.set_random_seed) first")
    return (0, _INT32_MAX) if seeds == (0, 0) else seeds


@_jit
def _fisher_yates(order, words):
    n = order.shape[0]
    for i in range(n - 1):
        j = i + np.int64(np.uint32(words[i]) % np.uint32(n - i))
        order[i], order[j] = order[j], order[i]


class ShuffleKernel:
    r"""One ``RandomShuffle`` op kernel: a ``GuardedPhiloxRandom`` whose stream persists across calls.

    Seeded with ``(seed, seed2)`` (the op's attributes, from :func:`op_seeds`),
    the generator is ``PhiloxRandom(seed, seed2)``: key
    :math:`(\text{seed} \bmod 2^{32}, \lfloor \text{seed}/2^{32} \rfloor)`, counter
    :math:`(0, 0, \text{seed2} \bmod 2^{32}, \lfloor \text{seed2}/2^{32} \rfloor)`.
    Shuffling :math:`n > 1` rows reserves :math:`\lceil (n-1)/4 \rceil` blocks
    (``ReserveSamples32(n - 1)``: the kernel's stream jumps that far) and reads
    their words one by one, :math:`w_0, w_1, \dots`; the Fisher-Yates pass is

    .. math:: \text{for } i = 0, \dots, n-2: \quad \text{swap}(v_i,\ v_{i + (w_i \bmod (n - i))}).

    :math:`n \le 1` returns the input and reserves nothing.
    """

    def __init__(self, seed: int, seed2: int):
        if (seed, seed2) == (0, 0):
            raise ValueError("seeds (0, 0) mean a random seed in TensorFlow; pass the pair from op_seeds()")
        seed, seed2 = seed % (1 << 64), seed2 % (1 << 64)
        self.key = np.array([seed & 0xFFFFFFFF, seed >> 32], dtype=np.uint64)
        self.counter = np.array([0, 0, seed2 & 0xFFFFFFFF, seed2 >> 32], dtype=np.uint64)
        self.position = 0  # blocks reserved so far

    def __call__(self, values) -> np.ndarray:
        """The shuffled copy of ``values`` (an int gives a permutation of ``range(values)``), along axis 0."""
        values = np.arange(values, dtype=np.int64) if isinstance(values, Integral) else np.asarray(values)
        n = values.shape[0] if values.ndim else 0
        if n <= 1:
            return values.copy()
        if n >= _INT32_MAX:
            raise ValueError(f"shuffling {n} rows is not reproduced (TensorFlow draws 64-bit indices from 2**31 on)")
        blocks = (n - 1 + 3) // 4
        words = philox_stream(self.key, self.counter, blocks, self.position).ravel()
        self.position += blocks
        order = np.arange(n, dtype=np.int64)
        _fisher_yates(order, words)
        return values[order]


def shuffle_orders(n_samples: int, epochs: int, shuffle=True, batch_size: int | None = 32,
                   seed: int | None = None, keras_version: int = 3) -> np.ndarray:
    r"""The sample order of every epoch of ``fit(x, y, batch_size, epochs, shuffle)`` on arrays, shape (epochs, n).

    ``n_samples`` is the number of training rows (after ``validation_split``,
    see :func:`validation_split_at`); ``seed`` is TensorFlow's global seed at
    the time of ``fit`` (default: the one set by :func:`set_random_seed` or
    :func:`set_tensorflow_seed`). Keras 3.15's ``ArrayDataAdapter`` (TensorFlow
    backend) builds a ``tf.data`` pipeline per ``fit``:

    * ``shuffle=True``: ``Dataset.range(1).map(permutation)``, where
      ``permutation`` is ``tf.random.shuffle(tf.range(n))``, a ``RandomShuffle``
      op with seeds :func:`op_seeds` (the global seed and op seed 0). Every
      epoch iterates a new iterator, which instantiates a new kernel from the
      same seeds, so **every epoch, and every ``fit`` call, visits the same
      permutation** :math:`\pi = \text{ShuffleKernel}(\text{seeds})(n)`.
    * ``shuffle="batch"``: the rows stay in order, cut into batches of
      ``batch_size`` (the last one partial), and ``map(tf.random.shuffle)``
      shuffles each batch by successive calls of one kernel (so batch
      :math:`b` starts where batch :math:`b - 1`'s blocks end); again the
      same for every epoch.
    * ``shuffle=False``: ``range(n)`` every epoch.

    ``keras_version=2`` gives tf.keras 2.x's orders (``TensorLikeDataAdapter``,
    ``shuffle=True`` only): there ``Dataset.range(1).repeat(epochs)`` runs one
    iterator, one kernel, for the whole fit, and epoch :math:`e` starts
    :math:`e \lceil (n-1)/4 \rceil` blocks into its stream.
    """
    n_samples, epochs = int(n_samples), int(epochs)
    if n_samples < 1 or epochs < 0:
        raise ValueError(f"n_samples must be >= 1 and epochs >= 0, got {n_samples} and {epochs}")
    if keras_version not in (2, 3):
        raise ValueError(f"keras_version must be 2 or 3, got {keras_version!r}")
    if shuffle not in (True, False, "batch"):
        raise ValueError(f"shuffle must be True, False or 'batch', got {shuffle!r}")
    if not shuffle:
        return np.tile(np.arange(n_samples, dtype=np.int64), (epochs, 1))
    seeds = op_seeds(None, seed)
    if keras_version == 2:
        if shuffle == "batch":
            raise ValueError("shuffle='batch' is reproduced for Keras 3 only")
        kernel = ShuffleKernel(*seeds)
        return np.stack([kernel(n_samples) for _ in range(epochs)]) if epochs else np.empty((0, n_samples), np.int64)
    if shuffle == "batch":
        batch_size = 32 if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        kernel = ShuffleKernel(*seeds)
        order = np.concatenate([kernel(np.arange(start, min(start + batch_size, n_samples), dtype=np.int64))
                                for start in range(0, n_samples, batch_size)])
    else:
        order = ShuffleKernel(*seeds)(n_samples)
    return np.tile(order, (epochs, 1))


def validation_split_at(n_samples: int, validation_split: float) -> int:
    r"""The first validation row of ``fit(validation_split=...)``: :math:`\lfloor n (1 - \text{split}) \rfloor`.

    Keras (``train_validation_split`` in ``array_slicing.py``) holds out the
    *last* rows, before any shuffling, and shuffles only the rows before this
    index. Raises, as Keras does, when either part would be empty.
    """
    split_at = int(math.floor(n_samples * (1.0 - validation_split)))
    if split_at == 0 or split_at == n_samples:
        raise ValueError(f"validation_split={validation_split} leaves no training or no validation samples "
                         f"out of {n_samples}")
    return split_at
