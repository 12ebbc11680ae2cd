"""The plain profile: NumPy functions and their Numba ``*_loop`` twins give the same bits."""

import numpy as np
import pytest

from gdcore.numerics import _plain

SHAPES = [(1, 1, 1), (2, 3, 1), (3, 5, 2), (5, 1, 6), (13, 6, 1), (7, 1, 8), (11, 8, 1), (20, 8, 3), (33, 3, 16), (100, 8, 64),
          (257, 1, 8)]


def _spread(rng, shape, dtype):
    # Magnitudes over 2^-8..2^8 so that a different summation order would round differently.
    return (rng.standard_normal(shape) * 2.0 ** rng.integers(-8, 8, shape)).astype(dtype)


def _assert_same_bits(mine, theirs, what):
    mine, theirs = np.asarray(mine), np.asarray(theirs, dtype=np.asarray(mine).dtype)
    assert mine.dtype == theirs.dtype, f"{what}: dtype {mine.dtype} vs {theirs.dtype}"
    assert mine.tobytes() == theirs.tobytes(), f"{what}: numpy {mine.ravel()[:4]} vs numba {theirs.ravel()[:4]}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size, n_in, n_out", SHAPES)
def test_numpy_and_loop_agree(dtype, batch_size, n_in, n_out):
    rng = np.random.default_rng(batch_size * 100 + n_in * 10 + n_out)
    inputs = _spread(rng, (batch_size, n_in), dtype)
    kernel = _spread(rng, (n_in, n_out), dtype)
    delta = _spread(rng, (batch_size, n_out), dtype)

    out = np.empty((batch_size, n_out), dtype)
    _plain.matmul_loop(inputs, kernel, out)
    _assert_same_bits(_plain.matmul(inputs, kernel), out, "matmul")

    bias = _spread(rng, (n_out,), dtype)
    _plain.dense_loop(inputs, kernel, bias, out := np.empty((batch_size, n_out), dtype))
    _assert_same_bits(_plain.matmul(inputs, kernel) + bias, out, "dense")

    out = np.empty((batch_size, n_in), dtype)
    _plain.matmul_grad_input_loop(delta, kernel, out)
    _assert_same_bits(_plain.matmul_grad_input(delta, kernel), out, "matmul_grad_input")

    out = np.empty((n_in, n_out), dtype)
    _plain.matmul_grad_kernel_loop(inputs, delta, out)
    _assert_same_bits(_plain.matmul_grad_kernel(inputs, delta), out, "matmul_grad_kernel")

    column = np.ascontiguousarray(delta[:, 0])
    _assert_same_bits(_plain.sum_vector(column), _plain.sum_vector_loop(column), "sum_vector")

    out = np.empty(n_out, dtype)
    _plain.sum_columns_loop(delta, out)
    _assert_same_bits(_plain.sum_columns(delta), out, "sum_columns")


def test_sum_vector_is_front_to_back():
    # 1 + 2^-24 + 2^-24 in float32: front to back both halves are lost (ties to even),
    # a pairwise sum would keep them.
    values = np.array([1.0, 2.0**-24, 2.0**-24], dtype=np.float32)
    assert _plain.sum_vector(values) == np.float32(1.0)
    assert _plain.sum_vector_loop(values) == np.float32(1.0)
