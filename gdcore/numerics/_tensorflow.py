"""The ``"tensorflow"`` numerics profile: reductions summed in TensorFlow's CPU order.

Measured with tensorflow-cpu 2.21.0 on an x86-64 CPU with AVX-512 and FMA,
default threading, oneDNN enabled (TF's default on x86 Linux). Run
``gdcore.numerics.verify.verify_tensorflow_profile()`` to re-measure on
another machine: the rules below depend on the TF build *and* on the CPU.

Two libraries do the work, and they round differently:

* **oneDNN** (``_MklMatMul``, float32 only) dispatches at run time on the
  CPU's instruction set. On an FMA-capable CPU its GEMM accumulates with fused
  multiply-adds: ``acc = fma(x_i, y_i, acc)``, one rounding per term, not two.
  (The notes' "no FMA" holds for Eigen code compiled into the wheel, not for
  oneDNN's JIT kernels.)
* **Eigen** (float64 everything, float32 reductions): compiled with AVX and
  without FMA, 4 float64 / 8 float32 lanes, every product rounded before it
  is added.

Rules (each verified bit for bit on the shapes listed; elsewhere the rule is
the best candidate found, and ``verify_tensorflow_profile`` reports the
measured match rate):

``matmul`` (forward ``inputs @ kernel``)
    float32, units N >= 2: oneDNN, ``z = fma(a_k, W_kj, z)`` over k in order,
    starting from ``a_0 W_0j`` (verified B <= 1000, K <= 64, N in 3, 8, 64).
    float64, N >= 8: Eigen GEBP, sequential sum of rounded products over k
    (verified B <= 1000, K <= 64). float64, N == 1, K == 8: sequential for
    B <= 10, and for B >= 11 Eigen's 4-lane GEMV tree
    ``((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7))`` (verified B <= 1000).
    Not solved: float32 N == 1 with K >= 5 (neither sequential, FMA-sequential
    nor the float64 tree), float64 N in 1..7 with K >= 5. These fall back to
    the sequential sum; K <= 3 with N == 1 is sequential in both dtypes.
``matmul_grad_input`` (``delta @ kernel.T``, sum over units N)
    N == 1 is a single product (exact in any order). float32 N == 3: sequential
    rounded products for most batch sizes. Not solved: N >= 8 in both dtypes
    (oneDNN / Eigen blocking over N). Fallback: sequential.
``matmul_grad_kernel`` (``inputs.T @ delta``, sum over the batch B)
    float32: oneDNN FMA, ``g = fma(a_bk, d_bj, g)`` over b in order (verified
    B <= 100 for K <= 8, any N; B = 1000 with K = 1). float64: Eigen,
    sequential sum of rounded products over b (verified B <= 100 except
    K = 8, N = 3). Not solved: large B (>= ~1000) with K >= 3, where the batch
    is split into blocks.
``sum_vector`` (``tf.reduce_sum`` of a 1-D array)
    Eigen's inner-most vectorised reduction (``InnerMostDimReducer`` in
    ``TensorReduction.h``) with P = 8 (float32) / 4 (float64) lanes: if
    n >= 4P, four packet accumulators over blocks of 4P, combined
    ``((a0 + a1) + a2) + a3``; the remaining whole packets into a0; the scalar
    tail summed separately from 0; result ``tail + hsum(a0)`` where the
    horizontal sum adds the upper half of the lanes onto the lower half until
    one lane is left. Verified n <= 1000; not at n = 10000 (the thread pool
    splits the reduction).
``sum_columns`` (``tf.reduce_sum(values, axis=0)``, the bias gradient of
    Keras 3 ``Dense``, which adds the bias with a broadcasting ``Add``)
    N == 1: same as ``sum_vector`` on the column (verified B <= 5000 float32,
    B <= 1000 float64). Not solved: N >= 2 (neither sequential nor the
    inner-most reduction per column). Fallback: sequential. Note that
    ``tf.raw_ops.BiasAddGrad`` is a plain sequential row sum for every N up to
    B = 1000; Keras 3 does not use it.

TensorFlow also runs its kernels with denormals flushed to zero (FTZ/DAZ);
this profile does not emulate that for the reductions (training values are
normal numbers); :mod:`gdcore.numerics.eigen` does for the logistic.
"""

import numpy as np
from numba import njit

from gdcore.numerics import eigen

# TensorFlow's Sigmoid/SigmoidGrad use Eigen's packet formula on whole packets of
# the flattened tensor and the scalar formula on its last n % P elements.
ACTIVATIONS = {"sigmoid": (eigen.logistic_tensorflow, eigen.logistic_grad_tensorflow)}

_jit = njit(cache=True, error_model="numpy", nogil=True)


# --- shared scalar/array building blocks (one body for NumPy and Numba) ----------


def _fma_float32(x, y, acc):
    """Correctly rounded float32 ``x * y + acc`` (what an FMA instruction returns).

    ``x * y`` is exact in float64 (24 + 24 bits), the float64 sum is corrected
    with its exact TwoSum error where the float32 rounding of the sum is a tie.
    """
    product = np.float64(x) * np.float64(y)
    addend = np.float64(acc)
    total = product + addend
    virtual = total - product
    error = (product - (total - virtual)) + (addend - virtual)
    rounded = np.float32(total)
    offset = total - np.float64(rounded)
    beyond = np.float32(total + offset)
    is_tie = (np.float64(beyond) - total == offset) & (offset != np.float64(0.0))
    push = is_tie & (error * offset > np.float64(0.0))
    return rounded + (beyond - rounded) * np.float32(push)


_fma_float32_jit = _jit(_fma_float32)


def _eigen_sum(values):
    """Eigen's inner-most vectorised sum of a 1-D float32/float64 array (rule in the module docstring)."""
    lanes = 8 if values.dtype == np.float32 else 4
    n = values.shape[0]
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


@_jit
def _eigen_sum_loop(values):
    lanes = 32 // values.itemsize
    n = values.shape[0]
    n_packets = n // lanes
    tail = np.zeros(1, values.dtype)[0]
    for i in range(n_packets * lanes, n):
        tail = tail + values[i]
    if n_packets == 0:
        return tail
    acc = np.empty((4, lanes), values.dtype)
    if n >= 4 * lanes:
        for r in range(4):
            for l in range(lanes):
                acc[r, l] = values[r * lanes + l]
        n_blocks = n_packets // 4
        for i in range(1, n_blocks):
            for r in range(4):
                for l in range(lanes):
                    acc[r, l] = acc[r, l] + values[(4 * i + r) * lanes + l]
        for l in range(lanes):
            acc[0, l] = ((acc[0, l] + acc[1, l]) + acc[2, l]) + acc[3, l]
        start = 4 * n_blocks
    else:
        for l in range(lanes):
            acc[0, l] = values[l]
        start = 1
    for i in range(start, n_packets):
        for l in range(lanes):
            acc[0, l] = acc[0, l] + values[i * lanes + l]
    half = lanes // 2
    while half >= 1:
        for l in range(half):
            acc[0, l] = acc[0, l] + acc[0, l + half]
        half = half // 2
    return tail + acc[0, 0]


def _tree8(p):
    return ((p[..., 0] + p[..., 4]) + (p[..., 2] + p[..., 6])) + ((p[..., 1] + p[..., 5]) + (p[..., 3] + p[..., 7]))


# --- NumPy functions -------------------------------------------------------------


def _sequential_over_k(inputs, kernel):
    out = inputs[:, 0, None] * kernel[0]
    for k in range(1, kernel.shape[0]):
        out = out + inputs[:, k, None] * kernel[k]
    return out


def _fma_over_k(inputs, kernel):
    out = inputs[:, 0, None] * kernel[0]
    for k in range(1, kernel.shape[0]):
        out = _fma_float32(inputs[:, k, None], kernel[k], out)
    return out


def matmul(inputs: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    r"""Forward product :math:`z_{bj} = \sum_k a_{bk} W_{kj}` in TensorFlow's order (module docstring)."""
    n_rows, n_in = inputs.shape
    n_out = kernel.shape[1]
    if inputs.dtype == np.float32 and n_out >= 2:
        return _fma_over_k(inputs, kernel)
    if inputs.dtype == np.float64 and n_out == 1 and n_in == 8 and n_rows >= 11:
        return _tree8(inputs * kernel[:, 0])[:, None]
    return _sequential_over_k(inputs, kernel)


def matmul_grad_input(delta: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    r"""Backward product :math:`g_{bk} = \sum_j \delta_{bj} W_{kj}`, summed over j in order."""
    out = delta[:, 0, None] * kernel[:, 0]
    for j in range(1, kernel.shape[1]):
        out = out + delta[:, j, None] * kernel[:, j]
    return out


def matmul_grad_kernel(inputs: np.ndarray, delta: np.ndarray) -> np.ndarray:
    r"""Kernel gradient :math:`g_{kj} = \sum_b a_{bk}\delta_{bj}`, over b in order (FMA in float32)."""
    out = inputs[0, :, None] * delta[0]
    if inputs.dtype == np.float32:
        for b in range(1, inputs.shape[0]):
            out = _fma_float32(inputs[b, :, None], delta[b], out)
        return out
    for b in range(1, inputs.shape[0]):
        out = out + inputs[b, :, None] * delta[b]
    return out


def sum_vector(values: np.ndarray):
    """``tf.reduce_sum`` of a 1-D array: Eigen's inner-most vectorised reduction."""
    return _eigen_sum(values)


def sum_columns(values: np.ndarray) -> np.ndarray:
    """``tf.reduce_sum(values, axis=0)``: Eigen's reduction for one column, rows in order otherwise."""
    if values.shape[1] == 1:
        return np.array([_eigen_sum(np.ascontiguousarray(values[:, 0]))], dtype=values.dtype)
    return np.add.reduce(values, axis=0)


# --- Numba loops (same order, into preallocated buffers) --------------------------


@_jit
def matmul_loop(inputs, kernel, out):
    n_rows, n_in = inputs.shape
    n_out = kernel.shape[1]
    use_fma = inputs.itemsize == 4 and n_out >= 2
    use_tree = inputs.itemsize == 8 and n_out == 1 and n_in == 8 and n_rows >= 11
    for b in range(n_rows):
        for j in range(n_out):
            if use_tree:
                p0 = inputs[b, 0] * kernel[0, j]
                p1 = inputs[b, 1] * kernel[1, j]
                p2 = inputs[b, 2] * kernel[2, j]
                p3 = inputs[b, 3] * kernel[3, j]
                p4 = inputs[b, 4] * kernel[4, j]
                p5 = inputs[b, 5] * kernel[5, j]
                p6 = inputs[b, 6] * kernel[6, j]
                p7 = inputs[b, 7] * kernel[7, j]
                out[b, j] = ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7))
                continue
            acc = inputs[b, 0] * kernel[0, j]
            for k in range(1, n_in):
                if use_fma:
                    acc = _fma_float32_jit(inputs[b, k], kernel[k, j], acc)
                else:
                    acc = acc + inputs[b, k] * kernel[k, j]
            out[b, j] = acc


@_jit
def matmul_grad_input_loop(delta, kernel, out):
    n_rows, n_out = delta.shape
    n_in = kernel.shape[0]
    for b in range(n_rows):
        for k in range(n_in):
            acc = delta[b, 0] * kernel[k, 0]
            for j in range(1, n_out):
                acc = acc + delta[b, j] * kernel[k, j]
            out[b, k] = acc


@_jit
def matmul_grad_kernel_loop(inputs, delta, out):
    n_rows, n_in = inputs.shape
    n_out = delta.shape[1]
    use_fma = inputs.itemsize == 4
    for k in range(n_in):
        for j in range(n_out):
            out[k, j] = inputs[0, k] * delta[0, j]
    for b in range(1, n_rows):
        for k in range(n_in):
            for j in range(n_out):
                if use_fma:
                    out[k, j] = _fma_float32_jit(inputs[b, k], delta[b, j], out[k, j])
                else:
                    out[k, j] = out[k, j] + inputs[b, k] * delta[b, j]


@_jit
def sum_vector_loop(values):
    return _eigen_sum_loop(values)


@_jit
def sum_columns_loop(values, out):
    if values.shape[1] == 1:
        out[0] = _eigen_sum_loop(np.ascontiguousarray(values[:, 0]))
        return
    out[:] = values[0]
    for b in range(1, values.shape[0]):
        for j in range(values.shape[1]):
            out[j] = out[j] + values[b, j]
