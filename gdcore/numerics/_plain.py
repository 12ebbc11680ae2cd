"""The ``"plain"`` numerics profile: every reduction summed front to back.

This is the order a textbook loop uses, ``acc = 0; for i: acc += x[i]``,
with each product rounded before it is added (no fused multiply-add). It is
the easiest order to reproduce with pencil, NumPy or any compiled language,
which makes it the reference for explaining a training step.

Each reduction exists twice, as the profile interface requires:

* a NumPy function returning a new array, vectorised over the axes that are
  not summed (this is what the NumPy engine calls and what students read);
* an ``*_loop`` loop that writes into a preallocated buffer, compiled by
  Numba inside the fused training loop.

``tests/test_numerics_plain.py`` asserts that both give the same bits.

Why these NumPy spellings are sequential: ``np.cumsum`` is a running sum, so
its last entry is the front-to-back sum. ``np.sum`` (and ``np.add.reduce``)
would use pairwise summation whenever the summed axis is, or collapses to,
a contiguous run, for example a (B, 1) column.
"""

import numpy as np
from numba import njit


def activation_functions(activation, backend: str = "", fused: bool = True):
    """(forward, gradient) NumPy functions of an entry of :data:`gdcore.activations.ACTIVATIONS`: its own.

    Every element is computed by the activation's own elementwise functions
    (Eigen's packet formulas where it needs an exponential), whatever its position
    and whether the product before it had a bias (``fused``).
    """
    return activation.forward, activation.grad

_jit = njit(cache=True, error_model="numpy", nogil=True)


# --- NumPy reference -------------------------------------------------------


def matmul(inputs: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    r"""Forward product :math:`z_{bj} = \sum_k a_{bk} W_{kj}`, summed over k in order."""
    out = inputs[:, 0, None] * kernel[0]
    for k in range(1, kernel.shape[0]):
        out = out + inputs[:, k, None] * kernel[k]
    return out


def dense(inputs: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A Dense layer's pre-activation: :func:`matmul`, then the bias added to each sum."""
    return matmul(inputs, kernel) + bias


def matmul_grad_input(delta: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    r"""Backward product :math:`\delta W^T`: :math:`g_{bk} = \sum_j \delta_{bj} W_{kj}`, over j in order."""
    out = delta[:, 0, None] * kernel[:, 0]
    for j in range(1, kernel.shape[1]):
        out = out + delta[:, j, None] * kernel[:, j]
    return out


def matmul_grad_kernel(inputs: np.ndarray, delta: np.ndarray) -> np.ndarray:
    r"""Kernel gradient :math:`a^T \delta`: :math:`g_{kj} = \sum_b a_{bk}\delta_{bj}`, over b in order."""
    return np.cumsum(inputs[:, :, None] * delta[:, None, :], axis=0)[-1]


def sum_vector(values: np.ndarray):
    """Sum of a 1-D array, front to back (the batch loss)."""
    return np.cumsum(values)[-1]


def sum_columns(values: np.ndarray) -> np.ndarray:
    """Column sums of a (batch, units) array, row after row (the bias gradient)."""
    return np.cumsum(values, axis=0)[-1]


def reduce_sum_rows(values: np.ndarray) -> np.ndarray:
    """Column sums of a 2-D array, row after row (a norm over a kernel's rows, :mod:`gdcore.constraints`)."""
    return sum_columns(values)


# --- Numba loops (same order, into preallocated buffers) --------------------


def _product_sums(add_bias: bool):
    """The forward product, compiled once without the bias and once with it added to each finished sum.

    ``add_bias`` is a constant of the compiled code, so neither version tests it per element.
    """

    def product_sums(inputs, kernel, bias, out):
        # Each out[b, j] is summed over k in order whatever the loop nest (the bias, if
        # any, added last); the nest is chosen by shape so that the innermost loop is the
        # long, independent one.
        n_rows, n_in = inputs.shape
        n_out = kernel.shape[1]
        if n_out < 4:
            # Few outputs: four rows at a time, four independent sums in flight (register blocking).
            whole = n_rows - n_rows % 4
            for j in range(n_out):
                for b in range(0, whole, 4):
                    w = kernel[0, j]
                    acc0, acc1, acc2, acc3 = inputs[b, 0] * w, inputs[b + 1, 0] * w, inputs[b + 2, 0] * w, inputs[b + 3, 0] * w
                    for k in range(1, n_in):
                        w = kernel[k, j]
                        acc0 = acc0 + inputs[b, k] * w
                        acc1 = acc1 + inputs[b + 1, k] * w
                        acc2 = acc2 + inputs[b + 2, k] * w
                        acc3 = acc3 + inputs[b + 3, k] * w
                    if add_bias:
                        acc0, acc1, acc2, acc3 = acc0 + bias[j], acc1 + bias[j], acc2 + bias[j], acc3 + bias[j]
                    out[b, j], out[b + 1, j], out[b + 2, j], out[b + 3, j] = acc0, acc1, acc2, acc3
                for b in range(whole, n_rows):
                    acc = inputs[b, 0] * kernel[0, j]
                    for k in range(1, n_in):
                        acc = acc + inputs[b, k] * kernel[k, j]
                    out[b, j] = acc + bias[j] if add_bias else acc
            return
        # Many outputs: row by row, the loop over j innermost; the bias joins the last term's pass.
        last = n_in - 1
        if add_bias and last == 0:
            for b in range(n_rows):
                for j in range(n_out):
                    out[b, j] = inputs[b, 0] * kernel[0, j] + bias[j]
            return
        for b in range(n_rows):
            for j in range(n_out):
                out[b, j] = inputs[b, 0] * kernel[0, j]
        for k in range(1, last if add_bias else n_in):
            for b in range(n_rows):
                a = inputs[b, k]
                for j in range(n_out):
                    out[b, j] = out[b, j] + a * kernel[k, j]
        if add_bias:
            for b in range(n_rows):
                a = inputs[b, last]
                for j in range(n_out):
                    out[b, j] = (out[b, j] + a * kernel[last, j]) + bias[j]

    product_sums.__name__ = product_sums.__qualname__ = "dense_loop" if add_bias else "_matmul_sums"
    return _jit(product_sums)


_matmul_sums = _product_sums(False)
dense_loop = _product_sums(True)
dense_loop.__doc__ = "out <- inputs @ kernel + bias: each sum over k in order, then the bias added to it."


@_jit
def matmul_loop(inputs, kernel, out):
    _matmul_sums(inputs, kernel, kernel[0], out)  # the bias argument is not read


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
    # out[k, j] is summed over b in order; the innermost loop runs over the longer of k and j,
    # unless that is too short to fill a vector (see _column_products_sums).
    n_rows, n_in = inputs.shape
    n_out = delta.shape[1]
    if n_in == 1 and n_out < 16:
        _column_products_sums(inputs, delta, out.flat)
        return
    if n_out == 1 and n_in < 16:
        _column_products_sums(delta, inputs, out.flat)
        return
    for k in range(n_in):
        for j in range(n_out):
            out[k, j] = inputs[0, k] * delta[0, j]
    if n_out >= n_in:
        for b in range(1, n_rows):
            for k in range(n_in):
                a = inputs[b, k]
                for j in range(n_out):
                    out[k, j] = out[k, j] + a * delta[b, j]
    else:
        for b in range(1, n_rows):
            for j in range(n_out):
                d = delta[b, j]
                for k in range(n_in):
                    out[k, j] = out[k, j] + inputs[b, k] * d


@_jit
def _column_products_sums(column, wide, out):
    """out[l] = sum over b, in order, of column[b, 0] * wide[b, l]: four sums at a time, b innermost.

    The kernel gradient of a layer with one input or one unit (products commute
    exactly, so which operand is the column does not change a bit). Four
    independent sums in flight keep the CPU busy where a vector loop over a
    handful of l would run scalar.
    """
    n_rows, width = wide.shape
    whole = width - width % 4
    for l in range(0, whole, 4):
        c = column[0, 0]
        acc0, acc1, acc2, acc3 = c * wide[0, l], c * wide[0, l + 1], c * wide[0, l + 2], c * wide[0, l + 3]
        for b in range(1, n_rows):
            c = column[b, 0]
            acc0 = acc0 + c * wide[b, l]
            acc1 = acc1 + c * wide[b, l + 1]
            acc2 = acc2 + c * wide[b, l + 2]
            acc3 = acc3 + c * wide[b, l + 3]
        out[l], out[l + 1], out[l + 2], out[l + 3] = acc0, acc1, acc2, acc3
    for l in range(whole, width):
        acc = column[0, 0] * wide[0, l]
        for b in range(1, n_rows):
            acc = acc + column[b, 0] * wide[b, l]
        out[l] = acc


@_jit
def sum_vector_loop(values):
    acc = values[0]
    for i in range(1, values.shape[0]):
        acc = acc + values[i]
    return acc


@_jit
def sum_columns_loop(values, out):
    # Each out[j] is summed over b in order whatever the nest: fewer than 16 columns are
    # summed four at a time (register blocking), many columns row by row (the loop over j
    # vectorises).
    rows, cols = values.shape
    if cols < 16:
        whole = cols - cols % 4
        for j in range(0, whole, 4):
            acc0, acc1, acc2, acc3 = values[0, j], values[0, j + 1], values[0, j + 2], values[0, j + 3]
            for b in range(1, rows):
                acc0 = acc0 + values[b, j]
                acc1 = acc1 + values[b, j + 1]
                acc2 = acc2 + values[b, j + 2]
                acc3 = acc3 + values[b, j + 3]
            out[j], out[j + 1], out[j + 2], out[j + 3] = acc0, acc1, acc2, acc3
        for j in range(whole, cols):
            acc = values[0, j]
            for b in range(1, rows):
                acc = acc + values[b, j]
            out[j] = acc
        return
    for j in range(cols):
        out[j] = values[0, j]
    for b in range(1, rows):
        for j in range(cols):
            out[j] = out[j] + values[b, j]


reduce_sum_rows_loop = sum_columns_loop


def activation_loops(activation, fused: bool = True):
    """(forward loop, gradient loop) of an activation entry: its own compiled loops (``activation.loops``), ``fused`` or not."""
    return activation.loops
