r"""TensorFlow's reductions on Eigen: ``tf.reduce_sum`` of a vector, ``BiasAddGrad`` and column sums.

The rules (stated in :mod:`gdcore.numerics._tensorflow`'s docstring, where the
profile lists every operation) as NumPy functions and Numba ``*_loop`` twins,
tested bit-identical to each other and to TensorFlow
(``tests/test_numerics_tensorflow.py``).
"""

import numpy as np
from numba import njit
from numba.extending import overload

from gdcore._dtype import cast

_jit = njit(cache=True, error_model="numpy", nogil=True)


# Eigen splits a long inner-most reduction in two halves (at a packet boundary) above this many packets.
_TREE_LEAF_PACKETS = 1024


def _eigen_sum(values, first=0):
    """Eigen's inner-most vectorised sum of a 1-D float32/float64 array (rule in the module docstring).

    ``first`` is the absolute index of ``values[0]`` in the reduced tensor: the
    tree split points are aligned on packets of the whole tensor.
    """
    lanes = 8 if values.dtype == np.float32 else 4
    n = values.shape[0]
    if n > lanes * _TREE_LEAF_PACKETS:
        split = lanes * -(-(first + -(-n // 2)) // lanes)
        left = min(split - first, n)
        total = np.zeros((), values.dtype)[()] + _eigen_sum(values[:left], first)
        if left < n:
            total = total + _eigen_sum(values[left:], split)
        return total
    n_packets = n // lanes
    tail = np.zeros((), values.dtype)[()]
    for v in values[n_packets * lanes :]:
        tail = tail + v
    if n_packets == 0:
        return tail
    packets = values[: n_packets * lanes].reshape(n_packets, lanes)
    if n >= 4 * lanes:
        n_blocks = n_packets // 4
        acc = packets[0:4].copy()
        for i in range(1, n_blocks):
            acc = acc + packets[4 * i : 4 * i + 4]
        a0 = ((acc[0] + acc[1]) + acc[2]) + acc[3]
        start = 4 * n_blocks
    else:
        a0 = packets[0].copy()
        start = 1
    for i in range(start, n_packets):
        a0 = a0 + packets[i]
    while a0.shape[0] > 1:
        half = a0.shape[0] // 2
        a0 = a0[:half] + a0[half:]
    return tail + a0[0]


def reduce_sum_rows(values: np.ndarray) -> np.ndarray:
    """``tf.reduce_sum(values, axis=0)`` of a (B, N) array, N >= 2, in Eigen's order (module docstring)."""
    rows, cols = values.shape
    lanes = 8 if values.dtype == np.float32 else 4
    packed = cols - cols % lanes
    out = np.zeros(cols, values.dtype)
    for b in range(rows):
        out = out + values[b]
    if rows >= 16 and packed:
        whole = rows // 4 * 4
        acc = [np.zeros(packed, values.dtype) for _ in range(4)]
        for b in range(0, whole, 4):
            for r in range(4):
                acc[r] = acc[r] + values[b + r, :packed]
        total = ((acc[0] + acc[1]) + acc[2]) + acc[3]
        for b in range(whole, rows):
            total = total + values[b, :packed]
        out[:packed] = total
    return out


def mean_over_outputs(values: np.ndarray, packet: int) -> np.ndarray:
    """Each row's mean of a (B, N) array: Keras's ``ops.mean(..., axis=-1)`` of per-element losses and metrics.

    ``tf.reduce_mean`` sums a row in Eigen's inner-most order and divides by
    N (``packet`` > 0, the tensorflow profile); the plain profile sums front
    to back. The two differ once a row holds a whole packet (8 float32, 4 float64).
    """
    if packet and values.shape[1] >= packet:
        totals = np.array([_eigen_sum(np.ascontiguousarray(row)) for row in values], dtype=values.dtype)
    else:
        totals = np.cumsum(values, axis=1)[:, -1]
    return totals / cast(values.shape[1], values)


def sum_vector(values: np.ndarray):
    """``tf.reduce_sum`` of a 1-D array: Eigen's inner-most vectorised reduction."""
    return _eigen_sum(values)


def sum_columns(values: np.ndarray) -> np.ndarray:
    """A Dense layer's bias gradient as Keras computes it (module docstring).

    One unit: Keras adds the bias with ``AddV2``, whose gradient is
    ``tf.reduce_sum`` of the column. Several units: ``BiasAdd``, whose gradient
    ``BiasAddGrad`` adds the rows in order into a zeroed buffer (one row: a copy).
    """
    if values.shape[1] == 1:
        return np.array([_eigen_sum(np.ascontiguousarray(values[:, 0]))], dtype=values.dtype)
    if values.shape[0] == 1:
        return values[0].copy()
    out = np.zeros(values.shape[1], values.dtype)
    for row in values:
        out = out + row
    return out


# --- Numba twins ---------------------------------------------------------------------


@_jit
def _eigen_leaf_sum_loop(values, start, n):
    lanes = 32 // values.itemsize
    n_packets = n // lanes
    tail = cast(0, values)
    for i in range(start + n_packets * lanes, start + n):
        tail = tail + values[i]
    if n_packets == 0:
        return tail
    acc = np.empty((4, lanes), values.dtype)
    if n >= 4 * lanes:
        for r in range(4):
            for l in range(lanes):
                acc[r, l] = values[start + r * lanes + l]
        n_blocks = n_packets // 4
        for i in range(1, n_blocks):
            for r in range(4):
                for l in range(lanes):
                    acc[r, l] = acc[r, l] + values[start + (4 * i + r) * lanes + l]
        for l in range(lanes):
            acc[0, l] = ((acc[0, l] + acc[1, l]) + acc[2, l]) + acc[3, l]
        first_packet = 4 * n_blocks
    else:
        for l in range(lanes):
            acc[0, l] = values[start + l]
        first_packet = 1
    for i in range(first_packet, n_packets):
        for l in range(lanes):
            acc[0, l] = acc[0, l] + values[start + i * lanes + l]
    half = lanes // 2
    while half >= 1:
        for l in range(half):
            acc[0, l] = acc[0, l] + acc[0, l + half]
        half = half // 2
    return tail + acc[0, 0]


@_jit
def _eigen_sum_loop(values):
    """Numba twin of :func:`_eigen_sum`: the halving tree walked in post-order with an explicit stack.

    (A recursive function would be simpler, but Numba cannot load recursive functions from its cache.)
    """
    lanes = 32 // values.itemsize
    limit = lanes * _TREE_LEAF_PACKETS
    n = values.shape[0]
    if n <= limit:
        return _eigen_leaf_sum_loop(values, 0, n)
    firsts = np.empty(64, np.int64)
    counts = np.empty(64, np.int64)
    visited = np.zeros(64, np.int64)  # 0: nothing summed, 1: left half summed
    partial = np.empty(64, values.dtype)
    top = 0
    firsts[0], counts[0] = 0, n
    while True:
        first, count = firsts[top], counts[top]
        split = lanes * ((first + (count + 1) // 2 + lanes - 1) // lanes)
        left = min(split - first, count)
        if visited[top] == 0:
            visited[top] = 1
            if left > limit:
                top += 1
                firsts[top], counts[top], visited[top] = first, left, 0
                continue
            partial[top] = cast(0, values) + _eigen_leaf_sum_loop(values, first, left)
        if visited[top] == 1:
            visited[top] = 2
            if left < count:
                if count - left > limit:
                    top += 1
                    firsts[top], counts[top], visited[top] = split, count - left, 0
                    continue
                partial[top] = partial[top] + _eigen_leaf_sum_loop(values, split, count - left)
        if top == 0:
            return partial[0]
        top -= 1
        if visited[top] == 1:
            partial[top] = cast(0, values) + partial[top + 1]
        else:
            partial[top] = partial[top] + partial[top + 1]


@_jit
def sum_vector_loop(values):
    return _eigen_sum_loop(values)


@_jit
def sum_columns_loop(values, out):
    rows, cols = values.shape
    if cols == 1:
        out[0] = _eigen_sum_loop(np.ascontiguousarray(values[:, 0]))
        return
    for j in range(cols):
        if rows == 1:
            out[j] = values[0, j]
            continue
        acc = cast(0, values)
        for b in range(rows):
            acc = acc + values[b, j]
        out[j] = acc


@_jit
def reduce_sum_rows_loop(values, out):
    """Numba twin of :func:`reduce_sum_rows`, into ``out``."""
    rows, cols = values.shape
    lanes = 32 // values.itemsize
    packed = cols - cols % lanes
    zero = cast(0, values)
    for j in range(cols):
        if rows >= 16 and j < packed:
            whole = rows // 4 * 4
            a0 = zero
            a1 = zero
            a2 = zero
            a3 = zero
            for b in range(0, whole, 4):
                a0 = a0 + values[b, j]
                a1 = a1 + values[b + 1, j]
                a2 = a2 + values[b + 2, j]
                a3 = a3 + values[b + 3, j]
            acc = ((a0 + a1) + a2) + a3
            for b in range(whole, rows):
                acc = acc + values[b, j]
        else:
            acc = zero
            for b in range(rows):
                acc = acc + values[b, j]
        out[j] = acc




def inner_sum(values):
    """Eigen's inner-most sum of a 1-D array, callable from NumPy code and from compiled code (:func:`sum_vector_loop`)."""
    return _eigen_sum(np.ascontiguousarray(values))


@overload(inner_sum, jit_options={"cache": True})
def _inner_sum_numba(values):
    return lambda values: _eigen_sum_loop(values)
