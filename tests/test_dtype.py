"""The dtype-exact building blocks: the same bits from NumPy and from compiled code."""

import numba
import numpy as np
import pytest

from gdcore import activations
from gdcore._dtype import pow2
from gdcore.numerics import _plain

RANGES = {np.float32: (-126, 127), np.float64: (-1022, 1023)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pow2_is_exact_over_the_normal_range(dtype):
    low, high = RANGES[dtype]
    m = np.arange(low, high + 1).astype(dtype)
    expected = np.ldexp(dtype(1.0), np.arange(low, high + 1)).astype(dtype)
    assert pow2(m).dtype == dtype
    assert pow2(m).tobytes() == expected.tobytes()
    compiled = numba.njit(lambda value: pow2(value))
    assert np.array([compiled(v) for v in m], dtype=dtype).tobytes() == expected.tobytes()
    assert pow2(m[0]) == expected[0] and np.ndim(pow2(m[0])) == 0


def _edge_values(dtype, rng):
    special = [0.0, -0.0, np.nan, np.inf, -np.inf, -104.0, -103.99, 16.6355324, 17.0, -745.5, 709.79, 1e30, -1e30,
               1e-40, -1e-40]
    values = np.concatenate([special, rng.uniform(-120, 120, 500), rng.standard_normal(500)]).astype(dtype)
    return values


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (20, 8), (64, 33)])
def test_plain_activation_loops_match_numpy_on_edge_values(dtype, shape):
    """The vectorised flat loops keep NaN, infinities, signed zeros and denormals as the NumPy functions do."""
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    size = shape[0] * shape[1]
    values = _edge_values(dtype, rng)
    z = np.resize(rng.permutation(values), size).reshape(shape)
    dy = rng.standard_normal(shape).astype(dtype)
    with np.errstate(all="ignore"):
        cases = [(activations.SIGMOID.loops[0], (z,), activations.sigmoid(z)),  # (loop, arguments: the last is overwritten, expected)
                 (activations.TANH.loops[0], (z,), activations.tanh(z))]
        y = activations.sigmoid(z)
        cases.append((activations.SIGMOID.loops[1], (y, dy), activations.sigmoid_grad(y, dy)))
        y = activations.tanh(z)
        cases.append((activations.TANH.loops[1], (y, dy), activations.tanh_grad(y, dy)))
    for loop, args, expected in cases:
        *read, overwritten = args
        out = overwritten.copy()
        loop(*read, out)
        assert out.tobytes() == np.asarray(expected, dtype).tobytes(), loop.__name__


def test_pow2_refuses_other_dtypes():
    with pytest.raises(TypeError, match="float32 or float64"):
        pow2(np.int64(3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_keeps_nan_and_saturates(dtype):
    """NaN stays NaN (a diverged layer must not look finite); far below zero the result is exactly 0."""
    z = np.array([[np.nan, -np.inf, -1e4, -95.0, -87.4, 0.0, 1e4, np.inf]], dtype)
    compiled = z.copy()
    activations.SIGMOID.loops[0](compiled)
    with np.errstate(all="ignore"):
        expected = activations.sigmoid(z)
    assert compiled.tobytes() == expected.tobytes()
    assert np.isnan(expected[0, 0])
    assert np.array_equal(expected[0, 1:3], np.zeros(2, dtype))
    assert (expected[0, 3] == 0) == (dtype == np.float32)  # exp(-95) is a float32 denormal, flushed
    assert np.array_equal(expected[0, 5:], np.array([0.5, 1.0, 1.0], dtype))
