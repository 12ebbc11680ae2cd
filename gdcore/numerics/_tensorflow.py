r"""The ``"tensorflow"`` numerics profile: every reduction in the order Keras 3 on TensorFlow's CPU kernels uses.

Measured with tensorflow-cpu 2.21.0 and keras 3.15.1 on an x86-64 CPU with
AVX-512 and FMA, 2 intra-op threads, oneDNN enabled (TensorFlow's default on
x86 Linux). Run :func:`gdcore.numerics.verify.verify_tensorflow_profile` to
re-measure on another machine: the rules depend on the TensorFlow build, the
CPU (oneDNN picks its kernels at run time, Eigen reads the cache sizes) and,
for large tensors, the number of threads.

Two libraries do the work, and they round differently:

* **oneDNN** (every float32 ``MatMul``, :mod:`gdcore.numerics.onednn`):
  run-time generated kernels that accumulate with fused multiply-adds,
  :math:`\mathrm{fma}(a, b, c) = \mathrm{fl}(ab + c)`.
* **Eigen** (every float64 ``MatMul``, all reductions, the elementwise ops;
  :mod:`gdcore.numerics.eigen_products`, :mod:`gdcore.numerics.eigen`):
  compiled with AVX *without* FMA, packets of 8 float32 / 4 float64, every
  product rounded before it is added.

Keras trains inside a ``tf.function``, where TensorFlow's graph optimizer
rewrites some ops (see the activations below); eager calls such as
``model(x)`` can therefore differ from ``fit``/``predict``/``evaluate``. This
profile reproduces the compiled step.

Notation: :math:`p_k` is a rounded product, "sequential" is
:math:`(\dots((p_0 + p_1) + p_2) \dots)`, "FMA-sequential" is
:math:`\mathrm{fma}(a_{d-1}, w_{d-1}, \dots \mathrm{fma}(a_1, w_1, p_0))`.
B = batch rows, K = input features of the layer, N = its units. Each rule is
verified bit for bit against the live op on random inputs spanning
:math:`2^{-8}..2^{8}` (``tests/test_numerics_tensorflow.py``) on the ranges given.

``matmul`` (forward ``inputs @ kernel``, sum over K)
    float32, N >= 2 or B == 1: FMA-sequential (B <= 1000, K <= 64, N <= 64).
    float32, N == 1, B >= 2: oneDNN's matrix-vector tree (eight FMA lanes over
    blocks of 16 terms, then blocks of 8, 4, 2, 1 rounded products reduced as
    trees; :mod:`gdcore.numerics.onednn`) (B <= 1000, K <= 64).
    float64: Eigen, dispatched by ``LaunchBatchMatMul``: if min(B, K, N) > 1,
    the tensor contraction (GEBP: sequential for rows in whole blocks of 8
    units, even/odd-k accumulators for a 4- or 2-unit remainder, four k mod 4
    accumulators for a last odd unit, batch rows in groups of 4;
    :mod:`gdcore.numerics.eigen_products`); otherwise Eigen's Matrix product:
    if K + B + N < 20 the coefficient-based product (sequential), else with
    N == 1 the row-major GEMV (rows by 8, 4, 2, 1; 4-lane packets over K
    reduced :math:`(l_0 + l_2) + (l_1 + l_3)`, then the tail), with B == 1 the
    column-major GEMV (sequential for K < 128). (B <= 5000, K, N <= 64.)
``matmul_grad_input`` (``delta @ kernel.T``, sum over N)
    float32: B == 1: the matrix-vector tree over the kernel's rows; 2 <= B <= 15:
    sixteen FMA lanes over N (lane k mod 16) reduced by halving; B >= 16: with
    K == 1 the matrix-vector tree, else FMA-sequential (B <= 3000, K <= 64,
    N <= 200). float64: as ``matmul`` with the kernel transposed, where the
    coefficient-based product and the 1 x 1 dot, whose operands are then both
    contiguous, use Eigen's vectorised redux / inner product (B <= 5000, K, N <= 64).
``matmul_grad_kernel`` (``inputs.T @ delta``, sum over B)
    float32: K == 1 or N == 1: FMA-sequential (B <= 10000); otherwise
    FMA-sequential within depth blocks of 384 (blocks of 384 while more than
    768 remain, then two halves), block sums added in order (B <= 10000,
    K, N <= 64). float64: as ``matmul``; the contraction sums B in blocks of
    ``kc`` (336 for a 32 KiB L1, balanced; :func:`eigen_products.depth_block_size`),
    the column-major GEMV in blocks of 16 when B >= 128 (B <= 4000).
``sum_vector`` (``tf.reduce_sum`` of the per-sample losses)
    Eigen's inner-most vectorised reduction, P = 8 (float32) / 4 (float64):
    if n >= 4P, four packet accumulators over blocks of 4P combined
    ``((a0 + a1) + a2) + a3``, the remaining whole packets into a0, the scalar
    tail summed separately from 0, result ``tail + hsum(a0)`` (halving). Above
    1024 packets the range is split in two at a packet boundary
    (:math:`P \lceil (first + \lceil n/2 \rceil) / P \rceil`) and the halves
    are reduced recursively and added to 0 in order (n <= 200,000).
``sum_columns`` (a Dense layer's bias gradient)
    Keras 3 adds the bias with ``tf.nn.bias_add`` when it has more than one
    unit (``keras.src.backend.tensorflow.numpy.add``), so N >= 2 is
    ``BiasAddGrad``: rows added in order into a zeroed buffer (one row:
    copied) (B·N up to ~10^5). N == 1 is a broadcasting ``AddV2``, whose
    gradient is ``tf.reduce_sum`` of the column: the ``sum_vector`` rule.
    (``tf.reduce_sum(x, axis=0)`` with N >= 2, not used by Keras, is also
    solved: :func:`reduce_sum_rows`: columns in whole packets of P with
    B >= 16 use four accumulators over rows mod 4, combined
    ``((a0 + a1) + a2) + a3``, then the remaining rows; other columns
    sequential (B <= 5000, N <= 100).)
Activations (``ACTIVATIONS``)
    float32 sigmoid and tanh: the graph optimizer fuses
    ``MatMul + BiasAdd/AddV2 + Sigmoid/Tanh`` into one oneDNN product whose
    output goes through oneDNN's own elementwise kernels
    (:func:`onednn.logistic`, :func:`onednn.tanh`); the product itself keeps
    the rules above. float64 (not fused): Eigen's packet formulas on whole
    packets of the flattened tensor, scalar formulas on the last n mod P
    (:mod:`gdcore.numerics.eigen`). Gradients: Eigen's ``SigmoidGrad`` and
    ``TanhGrad`` in both dtypes. relu needs no override (exact).

Not reproduced (the rules above are used; :mod:`gdcore.numerics.verify` reports the match rate):

* float64 ``matmul_grad_kernel`` when the contraction is large enough for
  Eigen's thread pool to split it (e.g. B = 385, K = N = 64; B = 1000 with
  K·N >= 256, 2 threads): different blocking per thread. With one intra-op
  thread every rule above holds on all the shapes tested.
* ``BiasAddGrad`` when B·N exceeds ~1.2·10^5 (float32) / ~0.9·10^5 (float64):
  TensorFlow splits the rows between threads.
* ``sum_vector`` beyond ~1.3·10^5 (float64) / ~2.6·10^5 (float32) elements,
  where Eigen's full reducer may split between threads (it coincides with the
  recursive halving for 2 threads and even n).

TensorFlow also runs its kernels with denormals flushed to zero (FTZ/DAZ);
the elementwise kernels emulate it, the reductions do not (training values are
normal numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from numba import njit, types
from numba.extending import overload

from gdcore._dtype import cast
from gdcore.numerics import eigen, eigen_products, onednn
from gdcore.numerics.machine import FLOAT32_PATHS as BACKENDS, Caches, cpu_info

_jit = njit(cache=True, error_model="numpy", nogil=True)



def _resolve(caches: Caches | None, backend: str | None) -> tuple[Caches, str]:
    """This machine's cache sizes and float32 path where the caller gave none."""
    info = cpu_info() if caches is None or backend is None else None
    return (info.caches if caches is None else caches), (info.float32_products if backend is None else backend)


# --- reductions: Eigen's TensorReduction ----------------------------------------------


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


# --- Eigen's products, as TensorFlow dispatches them (eigen_products.launch_matmul) -------


def _eigen_matmul(lhs, rhs, lhs_row_major, rhs_row_major, caches):
    """``lhs @ rhs`` (float64) through TensorFlow's ``LaunchBatchMatMul`` and Eigen.

    ``lhs``/``rhs`` are the operands as multiplied; ``*_row_major`` tells
    whether each is the stored (row-major) tensor or the transpose of one.
    """
    return eigen_products.launch_matmul(lhs, rhs, lhs_row_major, rhs_row_major, caches.l1, caches.l2, caches.l3)


@_jit
def _eigen_matmul_loop(lhs, rhs, lhs_row_major, rhs_row_major, out, caches):
    eigen_products.launch_matmul_loop(lhs, rhs, lhs_row_major, rhs_row_major, out, caches.l1, caches.l2, caches.l3)


# --- NumPy functions -------------------------------------------------------------------


# --- float32 on oneDNN with AVX-512 --------------------------------------------------


def _avx512_matmul(inputs, kernel, caches):
    if kernel.shape[1] == 1 and inputs.shape[0] >= 2:
        return onednn.gemv_tree(inputs, kernel[:, 0])[:, None]
    return onednn.dot_fma(inputs, kernel)


def _avx512_matmul_grad_input(delta, kernel, caches):
    rows, n_in = delta.shape[0], kernel.shape[0]
    if rows == 1:
        return onednn.gemv_tree(kernel, delta[0])[None, :]
    if rows < 16:
        return onednn.dot_lanes16(delta, kernel.T)
    if n_in == 1:
        return onednn.gemv_tree(delta, kernel[0])[:, None]
    return onednn.dot_fma(delta, kernel.T)


def _avx512_matmul_grad_kernel(inputs, delta, caches):
    if inputs.shape[1] == 1 or delta.shape[1] == 1:
        return onednn.dot_fma(inputs.T, delta)
    return onednn.dot_fma_blocked(inputs.T, delta)


# The loops pass any-layout views (``[:, :]``), so that the three products share one compiled
# specialization of each kernel: a third of the compile time, the same speed.


@_jit
def _avx512_matmul_loop(inputs, kernel, out, caches):
    if kernel.shape[1] == 1 and inputs.shape[0] >= 2:
        onednn.gemv_tree_loop(inputs[:, :], kernel[:, 0], out[:, 0])
    else:
        onednn.dot_fma_loop(inputs[:, :], kernel[:, :], out[:, :])


@_jit
def _avx512_matmul_grad_input_loop(delta, kernel, out, caches):
    if delta.shape[0] == 1:
        onednn.gemv_tree_loop(kernel[:, :], delta[:, :][0], out[:, :][0])
    elif delta.shape[0] < 16:
        onednn.dot_lanes16_loop(delta[:, :], kernel.T[:, :], out[:, :])
    elif kernel.shape[0] == 1:
        onednn.gemv_tree_loop(delta[:, :], kernel[:, :][0], out[:, 0])
    else:
        onednn.dot_fma_loop(delta[:, :], kernel.T[:, :], out[:, :])


@_jit
def _avx512_matmul_grad_kernel_loop(inputs, delta, out, caches):
    if inputs.shape[1] == 1 or delta.shape[1] == 1:
        onednn.dot_fma_loop(inputs.T[:, :], delta[:, :], out[:, :])
    else:
        onednn.dot_fma_blocked_loop(inputs.T[:, :], delta[:, :], out[:, :])


# --- float32 on Eigen (oneDNN's ops off) -----------------------------------------------------
# Eigen dispatches each product as for float64; a contraction runs TensorFlow's custom
# contraction kernel, oneDNN's sgemm on Eigen's blocks, whose order depends on the vector
# family oneDNN generates for ("avx512", "avx2"), or Eigen's own GEBP when that kernel is
# disabled (family ""). In a tf.function Keras's Dense layer with two or more units runs
# as _FusedMatMul (always the contraction, bias added once): eigen_products.fused_matmul.


def _eigen32_path(family: str):
    custom = bool(family)
    tag = family or "gebp"
    family = family or "avx512"  # not read without the custom kernel

    def matmul(inputs, kernel, caches):
        return eigen_products.launch_matmul(inputs, kernel, True, True, caches.l1, caches.l2, caches.l3, custom,
                                            family)

    def matmul_grad_input(delta, kernel, caches):
        return eigen_products.launch_matmul(delta, kernel.T, True, False, caches.l1, caches.l2, caches.l3, custom,
                                            family)

    def matmul_grad_kernel(inputs, delta, caches):
        return eigen_products.launch_matmul(inputs.T, delta, False, True, caches.l1, caches.l2, caches.l3, custom,
                                            family)

    def dense(inputs, kernel, bias, caches):
        if kernel.shape[1] == 1:  # Keras adds a one-unit bias with AddV2: not fused
            return matmul(inputs, kernel, caches) + bias
        return eigen_products.fused_matmul(inputs, kernel, bias, caches.l1, caches.l2, caches.l3, custom, family)

    def matmul_loop(inputs, kernel, out, caches):
        eigen_products.launch_matmul_loop(inputs[:, :], kernel[:, :], True, True, out[:, :], caches.l1, caches.l2,
                                          caches.l3, custom, family)

    def matmul_grad_input_loop(delta, kernel, out, caches):
        eigen_products.launch_matmul_loop(delta[:, :], kernel.T[:, :], True, False, out[:, :], caches.l1, caches.l2,
                                          caches.l3, custom, family)

    def matmul_grad_kernel_loop(inputs, delta, out, caches):
        eigen_products.launch_matmul_loop(inputs.T[:, :], delta[:, :], False, True, out[:, :], caches.l1, caches.l2,
                                          caches.l3, custom, family)

    def dense_loop(inputs, kernel, bias, out, caches):
        if kernel.shape[1] == 1:
            eigen_products.launch_matmul_loop(inputs[:, :], kernel[:, :], True, True, out[:, :], caches.l1,
                                              caches.l2, caches.l3, custom, family)
            for b in range(out.shape[0]):
                out[b, 0] = out[b, 0] + bias[0]
        else:
            eigen_products.fused_matmul_loop(inputs[:, :], kernel[:, :], bias, out[:, :], caches.l1, caches.l2,
                                             caches.l3, custom, family)

    loops = []
    for loop in (matmul_loop, matmul_grad_input_loop, matmul_grad_kernel_loop, dense_loop):
        loop.__name__ = loop.__qualname__ = f"_eigen32_{tag}_{loop.__name__}"
        loops.append(_jit(loop))
    return Float32Path(f"eigen-{tag}", matmul, matmul_grad_input, matmul_grad_kernel, eigen.logistic_tensorflow,
                       eigen.tanh_tensorflow, *loops[:3], eigen.logistic_tensorflow_loop, eigen.tanh_tensorflow_loop,
                       dense=dense, dense_loop=loops[3])


@dataclass(frozen=True)
class Float32Path:
    """The float32 kernels of one of TensorFlow's code paths: NumPy functions and their Numba twins.

    Products take ``(a, b, caches)`` (NumPy) and ``(a, b, out, caches)``
    (Numba); activations are the layer's forward activation as the compiled
    Keras step evaluates it, ``f(z)`` and in place ``f_loop(z)``.
    """

    name: str
    matmul: Callable
    matmul_grad_input: Callable
    matmul_grad_kernel: Callable
    sigmoid: Callable
    tanh: Callable
    matmul_loop: Callable
    matmul_grad_input_loop: Callable
    matmul_grad_kernel_loop: Callable
    sigmoid_loop: Callable
    tanh_loop: Callable
    dense: Callable | None = None  # (inputs, kernel, bias, caches) when the layer's product is not matmul + bias
    dense_loop: Callable | None = None  # (inputs, kernel, bias, out, caches)


FLOAT32_PATHS = {
    "onednn-avx512": Float32Path(
        "onednn-avx512", _avx512_matmul, _avx512_matmul_grad_input, _avx512_matmul_grad_kernel, onednn.logistic,
        onednn.tanh, _avx512_matmul_loop, _avx512_matmul_grad_input_loop, _avx512_matmul_grad_kernel_loop,
        onednn.logistic_loop, onednn.tanh_loop),
    **{path.name: path for path in (_eigen32_path("avx512"), _eigen32_path("avx2"), _eigen32_path(""))},
}


def float32_path(backend: str) -> Float32Path:
    """The kernels of ``backend`` (one of :data:`BACKENDS`); a path not reproduced is an error naming it."""
    if backend not in FLOAT32_PATHS:
        known = ", ".join(FLOAT32_PATHS)
        raise NotImplementedError(f"the 'tensorflow' profile does not reproduce TensorFlow's float32 path {backend!r} "
                                  f"(reproduced: {known}); see gdcore.numerics.cpu_info()")
    return FLOAT32_PATHS[backend]


# --- NumPy functions -------------------------------------------------------------------
# ``caches`` and ``backend`` default to this machine's (gdcore.numerics.cpu_info()).


def matmul(inputs: np.ndarray, kernel: np.ndarray, caches: Caches | None = None, backend: str | None = None) -> np.ndarray:
    r"""Forward product :math:`z_{bj} = \sum_k a_{bk} W_{kj}` in TensorFlow's order (module docstring)."""
    caches, backend = _resolve(caches, backend)
    if inputs.dtype == np.float64:
        return _eigen_matmul(inputs, kernel, True, True, caches)
    return float32_path(backend).matmul(inputs, kernel, caches)


def matmul_grad_input(delta: np.ndarray, kernel: np.ndarray, caches: Caches | None = None,
                      backend: str | None = None) -> np.ndarray:
    r"""Backward product :math:`g_{bk} = \sum_j \delta_{bj} W_{kj}` in TensorFlow's order (module docstring)."""
    caches, backend = _resolve(caches, backend)
    if delta.dtype == np.float64:
        return _eigen_matmul(delta, kernel.T, True, False, caches)
    return float32_path(backend).matmul_grad_input(delta, kernel, caches)


def matmul_grad_kernel(inputs: np.ndarray, delta: np.ndarray, caches: Caches | None = None,
                       backend: str | None = None) -> np.ndarray:
    r"""Kernel gradient :math:`g_{kj} = \sum_b a_{bk}\delta_{bj}` in TensorFlow's order (module docstring)."""
    caches, backend = _resolve(caches, backend)
    if inputs.dtype == np.float64:
        return _eigen_matmul(inputs.T, delta, False, True, caches)
    return float32_path(backend).matmul_grad_kernel(inputs, delta, caches)


def dense(inputs: np.ndarray, kernel: np.ndarray, bias: np.ndarray, caches: Caches | None = None,
          backend: str | None = None) -> np.ndarray:
    """A Dense layer's pre-activation ``inputs @ kernel + bias`` as Keras's compiled step computes it."""
    caches, backend = _resolve(caches, backend)
    path = float32_path(backend) if inputs.dtype == np.float32 else None
    if path is not None and path.dense is not None:
        return path.dense(inputs, kernel, bias, caches)
    return matmul(inputs, kernel, caches, backend) + bias


def sigmoid(z: np.ndarray, backend: str | None = None) -> np.ndarray:
    """A Dense layer's sigmoid as Keras's compiled step computes it (module docstring)."""
    if z.dtype == np.float64:
        return eigen.logistic_tensorflow(z)
    return float32_path(_resolve(None, backend)[1]).sigmoid(z)


def tanh(z: np.ndarray, backend: str | None = None) -> np.ndarray:
    """A Dense layer's tanh as Keras's compiled step computes it (module docstring)."""
    if z.dtype == np.float64:
        return eigen.tanh_tensorflow(z)
    return float32_path(_resolve(None, backend)[1]).tanh(z)


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


# --- Numba loops (same order, into preallocated buffers) --------------------------------


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


# --- float64 products (Eigen, whatever the float32 path) ---------------------------------


@_jit
def _matmul64_loop(inputs, kernel, out, caches):
    _eigen_matmul_loop(inputs[:, :], kernel[:, :], True, True, out[:, :], caches)


@_jit
def _matmul_grad_input64_loop(delta, kernel, out, caches):
    _eigen_matmul_loop(delta[:, :], kernel.T[:, :], True, False, out[:, :], caches)


@_jit
def _matmul_grad_kernel64_loop(inputs, delta, out, caches):
    _eigen_matmul_loop(inputs.T[:, :], delta[:, :], False, True, out[:, :], caches)


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


@_jit
def sigmoid_grad_loop(y, delta):
    """``SigmoidGrad`` over a 2-D array (flattened in C order; Eigen's packet/tail rule): ``delta`` is overwritten."""
    eigen.logistic_grad_tensorflow_loop(y, delta)


@_jit
def tanh_grad_loop(y, delta):
    """``TanhGrad`` over a 2-D array (flattened in C order; Eigen's packet/tail rule): ``delta`` is overwritten."""
    eigen.tanh_grad_tensorflow_loop(y, delta)


# --- the compiled kernels of one float32 path ----------------------------------------------


def _by_dtype(float32_function, float64_function, arity: int):
    """An overload typer picking a kernel by the first argument's dtype while typing (the other would not type)."""
    if arity == 1:
        def typer(z):
            function = float32_function if z.dtype == types.float32 else float64_function
            return lambda z: function(z)
    elif arity == 5:
        def typer(inputs, kernel, bias, out, caches):
            function = float32_function if inputs.dtype == types.float32 else float64_function
            return lambda inputs, kernel, bias, out, caches: function(inputs, kernel, bias, out, caches)
    else:
        def typer(first, second, out, caches):
            function = float32_function if first.dtype == types.float32 else float64_function
            return lambda first, second, out, caches: function(first, second, out, caches)
    return typer


def _dispatcher(name: str, float32_function, float64_function, arity: int = 4):
    """A Python stub, named ``name``, that compiled code calls and that resolves by dtype (:func:`_by_dtype`)."""

    def stub(*args):
        raise TypeError(f"{name} is called from compiled code only")

    stub.__name__ = stub.__qualname__ = name
    overload(stub, jit_options={"cache": True})(_by_dtype(float32_function, float64_function, arity))
    return stub


class Kernels:
    """The compiled loops of the ``"tensorflow"`` profile for one float32 path (:func:`kernels`).

    Attributes follow the profile interface of :mod:`gdcore.numerics`:
    ``dense_loop(inputs, kernel, bias, out, caches)``, ``matmul_loop``,
    ``matmul_grad_input_loop``, ``matmul_grad_kernel_loop`` (``(a, b, out,
    caches)``), ``sum_vector_loop``, ``sum_columns_loop``, ``sigmoid_loop(z)``,
    ``tanh_loop(z)``, ``sigmoid_grad_loop(y, delta)``, ``tanh_grad_loop(y, delta)``.
    Each dispatches on the dtype while typing, so a model compiles only its own
    library's kernels.
    """

    takes_caches = True

    def __init__(self, backend: str):
        path = float32_path(backend)
        tag = backend.replace("-", "_")
        self.backend = backend
        self.matmul_loop = _dispatcher(f"tf_{tag}_matmul_loop", path.matmul_loop, _matmul64_loop)
        self.matmul_grad_input_loop = _dispatcher(f"tf_{tag}_matmul_grad_input_loop", path.matmul_grad_input_loop,
                                                  _matmul_grad_input64_loop)
        self.matmul_grad_kernel_loop = _dispatcher(f"tf_{tag}_matmul_grad_kernel_loop", path.matmul_grad_kernel_loop,
                                                   _matmul_grad_kernel64_loop)
        self.sigmoid_loop = _dispatcher(f"tf_{tag}_sigmoid_loop", path.sigmoid_loop, eigen.logistic_tensorflow_loop, 1)
        self.tanh_loop = _dispatcher(f"tf_{tag}_tanh_loop", path.tanh_loop, eigen.tanh_tensorflow_loop, 1)
        if path.dense_loop is not None:
            self.dense_loop = _dispatcher(f"tf_{tag}_dense_loop", path.dense_loop, _dense_loop_for(
                _matmul64_loop, f"tf_{tag}_dense64_loop"), arity=5)
        else:
            self.dense_loop = _dense_loop_for(self.matmul_loop, f"tf_{tag}_dense_loop")
        self.sum_vector_loop = sum_vector_loop
        self.sum_columns_loop = sum_columns_loop
        self.reduce_sum_rows_loop = reduce_sum_rows_loop
        self.sigmoid_grad_loop = sigmoid_grad_loop
        self.tanh_grad_loop = tanh_grad_loop
        # Activations TensorFlow evaluates its own way, by name: (forward loop, gradient loop).
        self.ACTIVATION_LOOPS = {"sigmoid": (self.sigmoid_loop, sigmoid_grad_loop),
                                 "tanh": (self.tanh_loop, tanh_grad_loop)}

    def __repr__(self) -> str:
        return f"Kernels({self.backend!r})"


def _dense_loop_for(matmul_loop, name: str):
    def dense_loop(inputs, kernel, bias, out, caches):
        """out <- inputs @ kernel + bias: the product, then ``BiasAdd`` (one rounding per element)."""
        matmul_loop(inputs, kernel, out, caches)
        rows, cols = out.shape
        if cols < 4:  # the innermost loop runs along the longer side
            for j in range(cols):
                for b in range(rows):
                    out[b, j] = out[b, j] + bias[j]
        else:
            for b in range(rows):
                for j in range(cols):
                    out[b, j] = out[b, j] + bias[j]

    dense_loop.__name__ = dense_loop.__qualname__ = name
    return _jit(dense_loop)


@lru_cache(maxsize=None)
def kernels(backend: str | None = None) -> Kernels:
    """The compiled kernels for ``backend`` (default: this machine's float32 path)."""
    return Kernels(_resolve(Caches(0, 0, 0, 0, 0), backend)[1])


# --- Python entry points to the loops (tests, verify) ------------------------------------


def matmul_loop(inputs, kernel, out, caches: Caches | None = None, backend: str | None = None):
    """Numba twin of :func:`matmul`, into ``out``."""
    caches, backend = _resolve(caches, backend)
    (float32_path(backend).matmul_loop if inputs.dtype == np.float32 else _matmul64_loop)(inputs, kernel, out, caches)


def matmul_grad_input_loop(delta, kernel, out, caches: Caches | None = None, backend: str | None = None):
    """Numba twin of :func:`matmul_grad_input`, into ``out``."""
    caches, backend = _resolve(caches, backend)
    loop = float32_path(backend).matmul_grad_input_loop if delta.dtype == np.float32 else _matmul_grad_input64_loop
    loop(delta, kernel, out, caches)


def matmul_grad_kernel_loop(inputs, delta, out, caches: Caches | None = None, backend: str | None = None):
    """Numba twin of :func:`matmul_grad_kernel`, into ``out``."""
    caches, backend = _resolve(caches, backend)
    loop = float32_path(backend).matmul_grad_kernel_loop if inputs.dtype == np.float32 else _matmul_grad_kernel64_loop
    loop(inputs, delta, out, caches)


def dense_loop(inputs, kernel, bias, out, caches: Caches | None = None, backend: str | None = None):
    """out <- inputs @ kernel + bias, compiled: :func:`matmul_loop`, then ``BiasAdd``."""
    caches, backend = _resolve(caches, backend)
    kernels(backend).dense_loop(inputs, kernel, bias, out, caches)


def sigmoid_loop(z, backend: str | None = None):
    """Numba twin of :func:`sigmoid` on a 2-D array (flattened in C order), in place."""
    (float32_path(_resolve(None, backend)[1]).sigmoid_loop if z.dtype == np.float32 else eigen.logistic_tensorflow_loop)(z)


def tanh_loop(z, backend: str | None = None):
    """Numba twin of :func:`tanh` on a 2-D array (flattened in C order), in place."""
    (float32_path(_resolve(None, backend)[1]).tanh_loop if z.dtype == np.float32 else eigen.tanh_tensorflow_loop)(z)


# Activations whose TensorFlow kernel differs from the elementwise formula of
# gdcore.activations: (forward, gradient from the output).
ACTIVATIONS = {
    "sigmoid": (sigmoid, eigen.logistic_grad_tensorflow),
    "tanh": (tanh, eigen.tanh_grad_tensorflow),
}
