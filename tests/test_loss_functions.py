"""Keras's loss functions on arrays: ``gdcore.losses.binary_crossentropy(y_true, y_pred, from_logits=...,
label_smoothing=..., axis=...)``, ``categorical_crossentropy``, ``sparse_categorical_crossentropy``,
``mean_squared_error``, ``mean_absolute_error``, ``mean_absolute_percentage_error``,
``mean_squared_logarithmic_error``.

Each returns one loss per sample, the last axis (or ``axis``) reduced as
Keras's ``ops.mean(..., axis=-1)`` reduces it: under ``numerics="tensorflow"``
``tf.reduce_mean``'s order (Eigen's inner-most sum), bit-identical to
``keras.losses.<name>`` called eagerly (live, float32 and float64, rows shorter
and longer than a SIMD packet; the MSLE's logs at each element's position); in the plain profile close to it.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gdcore import config, losses  # noqa: E402
from gdcore._dtype import ulp_distance  # noqa: E402

SHAPES = [(13, 1), (9, 4), (5,), (3, 4, 9)]  # 4 and 9 outputs: a whole float64 / float32 packet per row


def _cases(rng, shape, dtype):
    p = rng.uniform(0.001, 0.999, shape).astype(dtype)
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    k = shape[-1]
    labels = rng.integers(0, k, shape[:-1])
    one_hot = np.eye(k, dtype=dtype)[labels]
    probabilities = p / p.sum(-1, keepdims=True)
    binary, soft = rng.integers(0, 2, shape).astype(dtype), rng.uniform(0, 1, shape).astype(dtype)
    positive = rng.uniform(0.01, 2, shape).astype(dtype)
    return [("binary_crossentropy", binary, p, {}), ("binary_crossentropy", soft, p, {}),
            ("binary_crossentropy", binary, z, {"from_logits": True}),
            ("binary_crossentropy", binary, p, {"label_smoothing": 0.1}),
            ("categorical_crossentropy", one_hot, probabilities, {}),
            ("categorical_crossentropy", one_hot, z, {"from_logits": True}),
            ("categorical_crossentropy", one_hot, p, {"label_smoothing": 0.2}),
            ("sparse_categorical_crossentropy", labels, probabilities, {}),
            ("sparse_categorical_crossentropy", labels, z, {"from_logits": True}),
            ("mean_squared_error", positive, z, {}), ("mean_absolute_error", positive, z, {}),
            ("mean_absolute_percentage_error", positive, z, {}),
            ("mean_squared_logarithmic_error", positive, p, {})]


@pytest.fixture
def numerics():
    before = config.numerics()
    yield config.set_numerics
    config.set_numerics(before)


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_functions_are_bit_identical_to_keras_under_tensorflow_numerics(shape, dtype, numerics):
    keras = pytest.importorskip("keras")
    numerics("tensorflow")
    rng = np.random.default_rng(len(shape) * 10 + shape[-1])
    for name, y_true, y_pred, options in _cases(rng, shape, dtype):
        if name.startswith("categorical") and shape[-1] == 1:
            continue  # Keras warns: one class
        theirs = keras.ops.convert_to_numpy(getattr(keras.losses, name)(y_true, y_pred, **options))
        ours = np.asarray(getattr(losses, name)(y_true, y_pred, **options))
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (name, options)
        assert ours.tobytes() == theirs.tobytes(), (name, options, int(ulp_distance(ours, theirs).max()))


@pytest.mark.tensorflow
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_plain_numerics_are_close_to_keras(shape, numerics):
    keras = pytest.importorskip("keras")
    numerics("plain")
    rng = np.random.default_rng(5)
    for name, y_true, y_pred, options in _cases(rng, shape, np.float64):
        if name.startswith("categorical") and shape[-1] == 1:
            continue
        theirs = keras.ops.convert_to_numpy(getattr(keras.losses, name)(y_true, y_pred, **options))
        np.testing.assert_allclose(getattr(losses, name)(y_true, y_pred, **options), theirs, rtol=1e-13, atol=1e-15)


def test_values_by_hand():
    # -(y log p + (1 - y) log(1 - p)) averaged over the two outputs of each sample
    y, p = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0.1, 0.9], [0.8, 0.2]])
    np.testing.assert_allclose(losses.binary_crossentropy(y, p), [-np.log(0.9), -np.log(0.8)], rtol=1e-15)
    np.testing.assert_allclose(losses.categorical_crossentropy(y, p), [-np.log(0.9), -np.log(0.8)], rtol=1e-15)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(np.array([1, 0]), p),
                               [-np.log(0.9), -np.log(0.8)], rtol=1e-15)
    assert np.ndim(losses.mean_squared_error([1.0, 2.0], [1.0, 3.0])) == 0  # a 1-D y_pred is one sample
    assert losses.mean_squared_error([1.0, 2.0], [1.0, 3.0]) == 0.5
    assert losses.binary_crossentropy([[0.0, 1.0]], [[0.3, 0.6]]).dtype == np.float32  # lists: floatx
    assert losses.categorical_crossentropy(y.T, p.T, axis=0).tolist() == losses.categorical_crossentropy(y, p).tolist()


def test_targets_of_one_rank_less_are_matched_as_keras_matches_them():
    from gdcore import metrics

    y, p = np.array([0.0, 1.0, 1.0]), np.array([[0.2], [0.9], [0.4]])  # model.predict's (n, 1) against labels (n,)
    for function in (losses.mean_squared_error, losses.mean_absolute_error, losses.binary_crossentropy):
        assert function(y, p).tolist() == function(y[:, None], p).tolist()
    assert metrics.binary_accuracy(y, p).tolist() == [[1.0], [1.0], [0.0]]


@pytest.mark.parametrize("call, error, message", [
    (lambda: losses.sparse_categorical_crossentropy([1], [[0.2, 0.8]], ignore_class=0), NotImplementedError,
     "ignore_class"),
    (lambda: losses.binary_crossentropy([[1.0]], [[0.5]], from_logits="yes"), ValueError, "from_logits"),
    (lambda: losses.binary_crossentropy([[1.0]], [[0.5]], axis=2), ValueError, "axis"),
    (lambda: losses.binary_crossentropy([[1.0, 0.0]], [[0.5]]), ValueError, "shape"),
    (lambda: losses.categorical_crossentropy([[1.0, 0.0]], [[np.nan, 0.5]]), ValueError, "finite"),
    (lambda: losses.sparse_categorical_crossentropy([2], [[0.2, 0.8]]), ValueError, r"in \[0, 2\)"),
    (lambda: losses.binary_crossentropy([[1.0]], [[0.5]], label_smoothing=2), ValueError, "label_smoothing"),
    (lambda: losses.mean_squared_error([1.0], 1.0), ValueError, "at least one axis"),
    (lambda: losses.mean_squared_error(None, [1.0, 2.0]), TypeError, "y_true must be numbers"),
    (lambda: losses.binary_crossentropy(None, [[0.5]]), TypeError, "y_true must be numbers"),
    (lambda: losses.mean_absolute_error(np.zeros((2, 2)), np.ones((2, 3))), ValueError, "y_true has shape"),
])
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_unknown_metrics_are_attribute_errors_too():
    from gdcore import metrics

    assert not hasattr(metrics, "AUC")
    with pytest.raises(NotImplementedError, match="not supported yet"):
        metrics.AUC
