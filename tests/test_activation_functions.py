"""Keras's activation functions on arrays: ``gdcore.activations.relu(x, negative_slope=..., max_value=..., threshold=...)``,
``leaky_relu``, ``elu(x, alpha=...)``, ``softmax(x, axis=...)``, ``log_softmax``, ``gelu(x, approximate=...)``,
``hard_silu``, ``mish`` and the others.

Each is the table entry a layer given that activation runs, evaluated by the
profile of ``gdcore.config.numerics()``: under ``"tensorflow"`` the bits of
``keras.activations.<name>`` called eagerly (checked live, float32 and float64,
shapes whose size leaves a partial SIMD packet); under ``"plain"`` the same
formulas elementwise. A function of this module given as a layer's activation
runs its entry (``Dense(activation=activations.relu)``).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402
from gdcore import activations, config  # noqa: E402

CASES = [  # (name, options) as both libraries take them
    ("relu", {}), ("relu", {"max_value": 6.0}), ("relu", {"negative_slope": 0.1}),
    ("relu", {"negative_slope": 0.2, "max_value": 1.5, "threshold": 0.3}), ("relu", {"threshold": 0.5}),
    ("relu", {"negative_slope": -1.0}), ("relu", {"max_value": -1.0}),  # the function takes these as they are
    ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.05}), ("relu6", {}),
    ("elu", {}), ("elu", {"alpha": 0.5}), ("elu", {"alpha": 2.0}), ("selu", {}), ("softplus", {}),
    ("softsign", {}), ("silu", {}), ("swish", {}), ("hard_sigmoid", {}), ("exponential", {}), ("linear", {}),
    ("sigmoid", {}), ("tanh", {}), ("gelu", {}), ("gelu", {"approximate": True}), ("softmax", {}),
    ("softmax", {"axis": 0}), ("softmax", {"axis": (1, 0)}), ("softmax", {"axis": None}), ("log_softmax", {}),
    ("log_softmax", {"axis": 0}), ("log_softmax", {"axis": (0, 1)}), ("hard_silu", {}), ("mish", {}),
]


# The longest softmax row reproduced bit for bit on oneDNN's float32 paths (measured; the README's Exactness section).
ONEDNN_SOFTMAX_ROWS = {"onednn-avx512": 40, "onednn-avx2": 17}


@pytest.fixture
def tensorflow_numerics():
    before = config.numerics()
    config.set_numerics("tensorflow")
    yield
    config.set_numerics(before)


def _inputs(dtype):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((5, 7)) * 3).astype(dtype)  # 35 elements: 4 packets of 8 float32 and a tail of 3
    x[0, :4] = [0.0, -0.0, 6.0, 0.3]  # at relu's kinks: zero, the cap, the threshold
    return x


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, options", CASES)
def test_functions_are_bit_identical_to_keras_under_tensorflow_numerics(name, options, dtype, tensorflow_numerics):
    keras = pytest.importorskip("keras")
    x = _inputs(dtype)
    theirs = keras.ops.convert_to_numpy(getattr(keras.activations, name)(x, **options))
    ours = getattr(activations, name)(x, **options)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    if name == "gelu" and options.get("approximate"):  # eager Pow's cube (see gelu's docstring)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)
        return
    axis = options.get("axis", -1)
    row = x.size if axis is None else int(np.prod([x.shape[a] for a in (axis if isinstance(axis, tuple) else (axis,))]))
    if name == "softmax" and dtype == np.float32 and row > ONEDNN_SOFTMAX_ROWS.get(
            gdcore.numerics.cpu_info().float32_products, row):
        # oneDNN's float32 softmax primitive, reproduced for rows up to this many classes (README, Exactness)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
        return
    assert ours.tobytes() == theirs.tobytes(), np.max(np.abs(ours.astype(np.float64) - theirs))


@pytest.mark.tensorflow
@pytest.mark.parametrize("name, options", CASES)
def test_plain_numerics_are_close_to_keras(name, options):
    keras = pytest.importorskip("keras")
    x = _inputs(np.float64)
    theirs = keras.ops.convert_to_numpy(getattr(keras.activations, name)(x, **options))
    np.testing.assert_allclose(getattr(activations, name)(x, **options), theirs, rtol=1e-13, atol=1e-15)


def test_options_select_the_entry_a_relu_layer_runs():
    x = np.array([-3.0, -1.0, -0.2, 0.0, 0.3, 1.0, 5.0, 7.0])
    layer = lambda **options: gdcore.layers.ReLU(**options)(x[None, :])[0]  # noqa: E731
    for options in ({}, {"max_value": 6}, {"negative_slope": 0.1}, {"threshold": 0.5, "max_value": 2.0}):
        assert activations.relu(x, **options).tobytes() == layer(**options).tobytes()
    # by hand: s (x - t) below t = 0.5, x above, capped at 2
    expected = np.where(x > 0.5, np.minimum(x, 2.0), 0.0) - 0.1 * np.maximum(0.5 - x, 0.0)
    np.testing.assert_array_equal(activations.relu(x, negative_slope=0.1, max_value=2.0, threshold=0.5), expected)
    np.testing.assert_allclose(expected, [-0.35, -0.15, -0.07, -0.05, -0.02, 1.0, 2.0, 2.0], rtol=1e-15)
    np.testing.assert_array_equal(activations.elu(np.array([-1.0, 2.0]), alpha=0.5), [0.5 * np.expm1(-1.0), 2.0])


def test_inputs_take_keras_dtypes():
    assert activations.relu([-1.0, 2.0]).dtype == np.float32  # a list of Python floats: floatx
    assert activations.sigmoid(0.5).dtype == np.float32 and np.ndim(activations.sigmoid(0.5)) == 0
    assert activations.tanh(np.arange(3)).dtype == np.float32  # integers: floatx
    assert activations.sigmoid(np.float64(0.5)).dtype == np.float64
    assert activations.softmax(np.ones((2, 3, 4)), axis=1).shape == (2, 3, 4)
    np.testing.assert_allclose(activations.softmax(np.ones((2, 3, 4)), axis=1).sum(axis=1), 1.0)


def test_softmax_over_several_axes_normalises_them_together():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    for axis in ((2, 3), (1, 3), (-1, 1, 2)):
        out, log_out = activations.softmax(x, axis=axis), activations.log_softmax(x, axis=axis)
        np.testing.assert_allclose(out.sum(axis=tuple(a % 4 for a in axis)), 1.0, rtol=1e-14)
        np.testing.assert_allclose(np.exp(log_out), out, rtol=1e-13)
    by_hand = np.exp(x[0, 1] - x[0, 1].max()) / np.exp(x[0, 1] - x[0, 1].max()).sum()  # one (4, 5) block
    np.testing.assert_allclose(activations.softmax(x, axis=(2, 3))[0, 1], by_hand, rtol=1e-14)


def test_get_returns_what_keras_get_returns():
    assert activations.get("relu") == activations.relu and activations.get(None) == activations.linear
    assert activations.get("relu") != activations.sigmoid
    with pytest.raises(ValueError, match="unknown activation 'typo'"):
        activations.get("typo")


def test_an_entry_called_on_an_array_is_keras_function(tensorflow_numerics):
    x = _inputs(np.float32)
    for name in ("relu", "sigmoid", "selu", "softmax", "silu", "hard_sigmoid", "gelu"):
        assert activations.get(name)(x).tobytes() == getattr(activations, name)(x).tobytes(), name
    assert activations.get("relu")([0.5, -1.0]).tolist() == [0.5, 0.0]  # a list, as the function takes it


def test_functions_as_layer_activations_run_their_entries():
    assert gdcore.layers.Dense(3, activation=activations.relu).activation is activations.RELU
    assert gdcore.layers.Dense(3, activation=activations.swish).activation is activations.SILU
    assert gdcore.layers.Activation(activations.sigmoid).activation is activations.SIGMOID
    assert activations.get(activations.gelu) is activations.GELU


@pytest.mark.parametrize("call, error, message", [
    (lambda: activations.relu(["a"]), TypeError, "x must be numbers"),
    (lambda: activations.relu(np.ones(2), max_value="6"), TypeError, r"relu\(max_value=...\) must be a number"),
    (lambda: activations.relu(np.ones(2), threshold=float("nan")), ValueError, "must not be NaN"),
    (lambda: activations.leaky_relu(np.ones(2), negative_slope=None), TypeError, "negative_slope"),
    (lambda: activations.elu(np.ones(2), alpha=True), TypeError, "alpha"),
    (lambda: activations.softmax(np.ones((2, 3)), axis=2), ValueError, "axis"),
    (lambda: activations.softmax(1.0), ValueError, "at least one axis"),
    (lambda: activations.log_softmax(np.ones((2, 3)), axis=(1, 1)), ValueError, "repeats an axis"),
    (lambda: activations.softmax(np.ones((2, 3)), axis=1.0), ValueError, "axis"),
    (lambda: activations.gelu(np.ones(2), approximate="yes"), ValueError, "approximate"),
    (lambda: gdcore.layers.Dense(2, activation=activations.mish), NotImplementedError, "mish has no entry"),
])
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
