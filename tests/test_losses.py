"""gdcore.losses: the table, each entry's gradient, the batch reduction, and Keras's values live.

As in ``tests/test_activations.py``, a new entry of ``LOSSES`` is checked with
no edit here: gradient against central differences (float64), the batch loss
as Keras reduces it (mean over outputs, then over the batch), every name and
alias, and, with TensorFlow, the value of Keras's loss of the same name.
"""

import numpy as np
import pytest

import gdcore
from gdcore import losses
from gdcore.numerics import get_profile

ENTRIES = [pytest.param(loss, id=loss.name) for loss in losses.LOSSES]


def test_ids_are_positions_and_names_are_unique():
    assert [loss.id for loss in losses.LOSSES] == list(range(len(losses.LOSSES)))
    for loss in losses.LOSSES:
        # A from_logits entry is Keras's class with from_logits=True: found by its own name only.
        for name in (loss.name,) if loss.from_logits else (loss.name, loss.keras, *loss.aliases):
            assert losses.get(name) is loss
    with pytest.raises(ValueError, match="unknown loss 'huberish'; known: .*mse"):
        losses.get("huberish")


def _sample(loss, rng, rows=6):
    """(y_true as the engines take it, y_pred) in the loss's domain: any reals, 0/1 labels, one-hot rows, probabilities."""
    columns = 1 if loss.targets == "binary" else 3 if loss.targets in ("one_hot", "sparse") else 2
    y_pred = rng.normal(size=(rows, columns))
    if loss.targets == "values":
        return rng.normal(size=(rows, columns)), y_pred
    if loss.targets == "binary":
        y_true = (rng.random((rows, 1)) > 0.5).astype(float)
        return y_true, y_pred if loss.from_logits else 1 / (1 + np.exp(-y_pred))
    y_true = np.eye(columns)[rng.integers(0, columns, rows)]
    return y_true, y_pred if loss.from_logits else np.exp(y_pred) / np.exp(y_pred).sum(axis=1, keepdims=True)


@pytest.mark.parametrize("loss", ENTRIES)
def test_output_gradient_is_the_derivative_of_the_batch_loss(loss):
    rng = np.random.default_rng(loss.id)
    y_true, y_pred = _sample(loss, rng)
    profile = get_profile("plain")
    analytic = losses.output_grad(loss, y_true, y_pred)
    step = 1e-6
    numeric = np.empty_like(y_pred)
    for index in np.ndindex(y_pred.shape):
        plus, minus = y_pred.copy(), y_pred.copy()
        plus[index] += step
        minus[index] -= step
        numeric[index] = (losses.batch_loss(loss, profile, y_true, plus) - losses.batch_loss(loss, profile, y_true, minus)) / (2 * step)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("loss", ENTRIES)
def test_batch_loss_is_the_mean_over_outputs_then_samples(loss):
    if loss.targets != "values":
        pytest.skip("labels, not values: tests/test_classification.py")
    y_true, y_pred = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]]), np.array([[0.0, 2.5], [1.0, 1.0], [0.0, 0.0]])
    per_element = loss.value(y_true, y_pred)
    assert losses.batch_loss(loss, get_profile("plain"), y_true, y_pred) == pytest.approx(per_element.mean(), rel=1e-15)
    assert loss(y_true, y_pred) == pytest.approx(per_element.mean(), rel=1e-6)  # called: in floatx(), as Keras


@pytest.mark.tensorflow
@pytest.mark.parametrize("loss", ENTRIES)
def test_values_follow_keras(loss):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(3)
    y_true, y_pred = _sample(loss, rng, rows=20)
    labels = y_true.argmax(axis=1) if loss.targets == "sparse" else y_true
    options = {"from_logits": True} if loss.from_logits else {}
    theirs = float(keras.ops.convert_to_numpy(getattr(keras.losses, loss.keras)(**options)(labels, y_pred)))
    assert float(loss(labels, y_pred)) == pytest.approx(theirs, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["categorical_crossentropy_from_logits", "sparse_categorical_crossentropy_from_logits"])
def test_plain_softmax_cross_entropy_row_is_its_formula(name, dtype):
    """The plain profile's softmax cross-entropy, one row, to the bit: with m = max z, e_j = exp(z_j - m) and
    s = e_1 + ... + e_k (front to back, the C library's exp and log), loss = sum_j t_j (log s - (z_j - m)) front
    to back, gradient scale * (e_j / s - t_j)."""
    from gdcore._dtype import libm_exp, libm_log

    entry = losses.get(name)
    rng = np.random.default_rng(3)
    lanes = np.zeros(6, np.int8)  # PLAIN
    for _ in range(20):
        z = (rng.standard_normal(5) * 4).astype(dtype)
        t = rng.dirichlet(np.ones(5)).astype(dtype) if name.startswith("categorical") else np.eye(5, dtype=dtype)[2]
        scale = dtype(1) / dtype(7)
        delta = np.zeros((2, 5), dtype)
        loss = entry.row(np.stack([t, t]), np.stack([z, -z]), delta, 1, scale, True, lanes, 0)  # row 1 of two
        z = -z
        s = z - z.max()
        e = libm_exp(s)
        total = dtype(0)
        for value in e:
            total = total + value
        expected = dtype(0)
        for tj, sj in zip(t, s):
            expected = expected + tj * (libm_log(total) - sj)
        assert loss.tobytes() == expected.tobytes()
        assert delta[1].tobytes() == (scale * (e / total - t)).tobytes()
        assert not delta[0].any()


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_one_target_per_sample_is_broadcast_over_the_outputs_as_keras_does(engine):
    """Keras's ``y_pred - y_true`` broadcasts a (n, 1) target against (n, 3) predictions: the same run as the target
    repeated over the outputs; a target of another width is still an error naming y."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(12, 2)), rng.normal(size=(12, 1))
    runs = []
    for target in (y, y[:, 0], np.repeat(y, 3, axis=1)):
        model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(3)], engine=engine, seed=1)
        model.compile(gdcore.optimizers.SGD(0.1), "mae", metrics=["mse"])
        history = model.fit(x, target, batch_size=5, epochs=2, verbose=0).history
        runs.append((history, [w.tobytes() for w in model.get_weights()]))
    assert runs[0] == runs[1] == runs[2]
    with pytest.raises(ValueError, match=r"y must have shape \(n_samples, 3\)"):
        model.fit(x, np.ones((12, 2)), verbose=0)


@pytest.mark.tensorflow
def test_one_target_per_sample_against_several_outputs_bit_identical_to_keras():
    pytest.importorskip("tensorflow")
    from reference.keras_driver import _keras_optimizer, keras_dtype, to_keras

    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(12, 2)), rng.normal(size=(12, 1))
    model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(3, activation="tanh")], dtype="float32",
                              numerics="tensorflow", seed=1)
    model.compile(gdcore.optimizers.SGD(0.1), "mse", metrics=["mae"])
    with keras_dtype("float32") as keras:
        twin = to_keras(model, compile=False)
        twin.compile(optimizer=_keras_optimizer(keras, model.optimizer), loss="mse", metrics=["mae"])
        theirs = twin.fit(x, y, batch_size=5, epochs=3, shuffle=False, verbose=0).history
    assert model.fit(x, y, batch_size=5, epochs=3, shuffle=False, verbose=0).history == theirs
    for a, b in zip(model.get_weights(), twin.get_weights()):
        assert a.tobytes() == np.asarray(b).tobytes()
