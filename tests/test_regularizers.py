"""Weight regularizers (``gdcore.regularizers``): Keras 3's names and configs, the penalty in the loss and the gradient.

Keras adds each penalty to every batch's loss after the data loss
(``ops.sum([data_loss, *model.losses])``) and differentiates the total, so
history ``loss``, ``val_loss`` and ``evaluate`` include the penalties and the
optimizer sees one gradient per weight: the data gradient plus the penalty's
(:mod:`gdcore.regularizers` says in which order). Checked here by hand on one
step, against TensorFlow's own gradient, and against live Keras at every
epoch (weights and history bit for bit) in float32 and float64, both engines.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402
from conftest import assert_same_run as _assert_same_run, regression_data as _data  # noqa: E402
from gdcore import regularizers  # noqa: E402

X = np.array([[1.0], [2.0]])


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


# --- names, configs, errors -----------------------------------------------------------------------------


IDENTIFIERS = ["l1", "l2", "l1l2", "L1", "L2", "L1L2"]


@pytest.mark.tensorflow
@pytest.mark.parametrize("identifier", IDENTIFIERS)
def test_names_build_what_keras_builds(keras, identifier):
    mine, theirs = regularizers.get(identifier), keras.regularizers.get(identifier)
    assert regularizers.serialize(mine) == keras.regularizers.serialize(theirs)


@pytest.mark.tensorflow
@pytest.mark.parametrize("make", [lambda m: m.L1(), lambda m: m.L1(0.3), lambda m: m.L2(), lambda m: m.L2(0.1),
                                  lambda m: m.L1L2(), lambda m: m.L1L2(l1=0.01), lambda m: m.L1L2(0.01, 0.02),
                                  lambda m: m.L2(1), lambda m: m.L1(None), lambda m: m.L1L2(None, 0.5)],
                         ids=["L1()", "L1(0.3)", "L2()", "L2(0.1)", "L1L2()", "L1L2(l1)", "L1L2(l1,l2)", "L2(1)",
                              "L1(None)", "L1L2(None,l2)"])
def test_configs_are_keras_configs(keras, make):
    # L1 keeps its factor as a float32 tensor: its config reads 0.30000001192092896 for 0.3; L2 and L1L2 keep floats.
    mine, theirs = make(regularizers), make(keras.regularizers)
    assert regularizers.serialize(mine) == keras.regularizers.serialize(theirs)
    assert regularizers.deserialize(keras.regularizers.serialize(theirs)) == mine
    assert keras.regularizers.deserialize(regularizers.serialize(mine)).get_config() == theirs.get_config()


@pytest.mark.tensorflow
def test_keras_refuses_l1_l2_and_so_does_gdcore(keras):
    with pytest.raises(ValueError, match="l1_l2"):
        keras.regularizers.get("l1_l2")
    with pytest.raises(ValueError, match=r"unknown regularizer 'l1_l2' \(Keras 3 refuses it too; .*L1L2\(l1=0.01"):
        regularizers.get("l1_l2")


@pytest.mark.parametrize("make, message", [
    (lambda: regularizers.L2(-1), "l2 must be a finite number >= 0, got -1"),
    (lambda: regularizers.L2("a"), "l2 must be a finite number >= 0, got 'a'"),
    (lambda: regularizers.L1(float("nan")), "l1 must be a finite number >= 0, got nan"),
    (lambda: regularizers.L1L2(l1=0.1, l2=float("inf")), "l2 must be a finite number >= 0, got inf"),
    (lambda: gdcore.layers.Dense(1, kernel_regularizer="l3"), "kernel_regularizer: unknown regularizer 'l3'; known: L1"),
    (lambda: gdcore.layers.Dense(1, bias_regularizer=0.01), "bias_regularizer must be None, one of L1, .* got 0.01"),
    (lambda: regularizers.deserialize({"class_name": "L2", "config": {"l1": 0.1}}), r"L2 has no settings \['l1'\]"),
])
def test_bad_regularizers_are_value_errors_naming_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_calling_a_regularizer_gives_keras_penalty(keras, dtype):
    # Keras's docstring example: L2(2.0) of a 5x5 tensor of ones is 50.
    assert regularizers.L2(2.0)(np.ones((5, 5), dtype)) == 50.0
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(dtype)
    for make in (lambda m: m.L1(0.01), lambda m: m.L2(0.03), lambda m: m.L1L2(0.01, 0.03)):
        mine = make(regularizers)(x, numerics="tensorflow")
        theirs = keras.ops.convert_to_numpy(make(keras.regularizers)(keras.ops.convert_to_tensor(x)))
        assert mine.dtype == theirs.dtype and mine == theirs, f"{make(regularizers)}: gdcore {mine!r} vs Keras {theirs!r}"


def test_dense_config_holds_its_regularizers():
    layer = gdcore.layers.Dense(2, kernel_regularizer="l2", bias_regularizer=regularizers.L1(0.5))
    assert layer.get_config()["kernel_regularizer"] == regularizers.L2(0.01)
    assert layer.get_config()["bias_regularizer"] == regularizers.L1(0.5)
    assert gdcore.layers.Dense(2).kernel_regularizer is None


# --- one step by hand ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_one_step_by_hand(engine, dtype):
    # W = 1, b = 0.5 and y = x + 0.5: the data loss and its gradient are 0, only the penalties count.
    # kernel L2(0.5): 0.5 * W^2 = 0.5, gradient 0.5 * 2W = 1. bias L1(0.25): 0.25 |b| = 0.125, gradient 0.25 sign(b).
    # Loss (history, pre-update) 0 + 0.5 + 0.125 = 0.625. SGD at learning rate 1: W = 1 - 1 = 0, b = 0.5 - 0.25 = 0.25.
    # Then evaluate: predictions 0.25, errors -1.25 and -2.25, mse (1.5625 + 5.0625) / 2 = 3.3125, plus the penalties
    # 0.5 * 0 + 0.25 * 0.25 = 0.0625: 3.375. Every number is exact in binary.
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1, kernel_regularizer=regularizers.L2(0.5),
                                                                       bias_regularizer=regularizers.L1(0.25))],
                              dtype=dtype, engine=engine)
    model.set_weights([np.ones((1, 1)), np.array([0.5])])
    model.compile(gdcore.optimizers.SGD(learning_rate=1.0), "mse")
    history = model.fit(X, X + 0.5, batch_size=2, epochs=1, verbose=0, shuffle=False).history
    assert history == {"loss": [0.625]}
    assert [w.ravel().tolist() for w in model.get_weights()] == [[0.0], [0.25]]
    assert model.evaluate(X, X + 0.5, verbose=0) == 3.375


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_a_frozen_layer_adds_no_penalty(engine):
    # Keras adds the penalties of model.trainable_weights only: frozen, the layer's L2 is neither loss nor gradient.
    frozen = gdcore.layers.Dense(1, kernel_regularizer=regularizers.L2(0.5), trainable=False)
    model = gdcore.Sequential([gdcore.Input((1,)), frozen, gdcore.layers.Dense(1, kernel_regularizer="l1")],
                              dtype="float64", engine=engine)
    model.set_weights([np.ones((1, 1)), np.zeros(1), np.ones((1, 1)), np.array([0.5])])
    model.compile(gdcore.optimizers.SGD(learning_rate=1.0), "mse")
    # y_pred = x + 0.5 = y: the loss is the second layer's L1 alone, 0.01 * |1|, its gradient 0.01 * sign(1).
    history = model.fit(X, X + 0.5, batch_size=2, epochs=1, verbose=0, shuffle=False).history
    assert history["loss"] == [np.float64(np.float32(0.01))]
    assert [w.ravel().tolist() for w in model.get_weights()] == [[1.0], [0.0], [1.0 - np.float64(np.float32(0.01))],
                                                                 [0.5]]


def test_changes_between_fits_reach_the_penalty():
    """A regularizer set or changed in place after a fit: the next fit's loss follows each change."""
    layer = gdcore.layers.Dense(1)
    model = gdcore.Sequential([gdcore.Input((1,)), layer], dtype="float64", engine="numpy")
    model.set_weights([np.ones((1, 1)), np.array([0.5])])
    model.compile(gdcore.optimizers.SGD(learning_rate=1e-30), "mse")  # the weights stay: the loss is the penalty alone

    def loss():
        return model.fit(X, X + 0.5, batch_size=2, epochs=1, verbose=0, shuffle=False).history["loss"][0]

    assert loss() == 0.0
    layer.kernel_regularizer = regularizers.L2(0.5)
    assert loss() == 0.5
    layer.kernel_regularizer.l2 = 0.25
    assert loss() == 0.25
    layer.kernel_regularizer = None
    assert loss() == 0.0


def test_explain_step_shows_the_penalties_and_their_gradients():
    """The loss is the data loss plus each tensor's penalty, the gradient the data's plus the penalty's, as in fit."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(5, 1))
    model = gdcore.Sequential([gdcore.Input((2,)),
                               gdcore.layers.Dense(3, activation="sigmoid", kernel_regularizer=gdcore.regularizers.L2(0.05)),
                               gdcore.layers.Dense(1, kernel_regularizer="l1", bias_regularizer=gdcore.regularizers.L1L2(0.01, 0.02))],
                              seed=0, dtype="float64", engine="numpy")
    model.compile(gdcore.optimizers.SGD(0.1, momentum=0.5), "mse")
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    params = model.params.copy()
    step = gdcore.explain.explain_step(model, x, y)
    # By hand: L2's 0.05 * sum(W1^2), L1's 0.01 * sum|W2|, L1L2's 0.01 * |b2| + 0.02 * b2^2, in model.losses order
    # (to 1e-6: Keras rounds the factors through float32)
    w1, b1, w2, b2 = model.get_weights()
    assert step.penalties == pytest.approx([0.05 * np.sum(w1**2), 0.01 * np.sum(np.abs(w2)),
                                            0.01 * np.abs(b2).sum() + 0.02 * np.sum(b2**2)], rel=1e-6)
    assert step.loss == pytest.approx(step.data_loss + sum(step.penalties), rel=1e-12)
    table = step.parameters
    np.testing.assert_array_equal(table["gradient"], table["data_gradient"] + table["penalty_gradient"])
    first = table[table["layer"] == model.dense_layers[0].name]
    np.testing.assert_allclose(first.loc[first["tensor"] == "kernel", "penalty_gradient"], 0.05 * 2 * w1.ravel(), rtol=1e-6)
    assert (first.loc[first["tensor"] == "kernel", "penalty_gradient"] != 0).all()
    np.testing.assert_array_equal(first.loc[first["tensor"] == "bias", "penalty_gradient"], 0)
    assert "penalties" in step.to_markdown()
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    assert model.history.history["loss"][0] == step.loss
    assert all(a.tobytes() == b.tobytes() for a, b in zip(step.weights_after, model.get_weights()))
    assert step.weights_before[0].tobytes() == params[: w1.size].tobytes()


def test_explain_step_refuses_an_activity_regularizer_by_name():
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1, activity_regularizer="l2", name="reg")])
    model.compile("sgd", "mse")
    with pytest.raises(NotImplementedError, match=r"activity penalties yet \(layers \['reg'\]\)"):
        gdcore.explain.explain_step(model, X, X)


def test_the_gradient_is_tensorflows():
    # TensorFlow's tape forms a penalty's gradient first, L1L2's two terms summed, then adds it to the data gradient:
    # g = d + (l1 sign(x) + l2 (2x)); (d + l1 sign(x)) + l2 (2x) differs in float32 (checked live below).
    x = np.array([0.3, -1.7, 0.0], np.float32)
    expected = np.float32(np.float32(0.01) * np.sign(x)) + np.float32(np.float32(0.03) * (x * np.float32(2)))
    np.testing.assert_array_equal(regularizers.penalty_gradient(x, *regularizers.L1L2(0.01, 0.03).factors()), expected)
    assert regularizers.penalty_gradient(x, 0.0, 0.0) is None


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tape_gradient_is_data_gradient_plus_penalty_gradient(keras, dtype):
    import tensorflow as tf

    from reference.keras_driver import keras_dtype

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 3)).astype(dtype), rng.normal(size=(16, 1)).astype(dtype)
    with keras_dtype(dtype):
        def build(regularizer):
            keras.utils.set_random_seed(1)
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
                5, activation="tanh", kernel_regularizer=regularizer, bias_regularizer=regularizer,
                bias_initializer=keras.initializers.RandomNormal(seed=3)), keras.layers.Dense(1)])
            model.compile(loss="mse")
            return model

        def tape_gradients(model):
            @tf.function
            def step(x, y):
                with tf.GradientTape() as tape:
                    loss = model.compute_loss(x, y, model(x, training=True), training=True)
                return tape.gradient(loss, model.trainable_weights)
            return [np.asarray(g) for g in step(x, y)]

        regularized, plain = build(keras.regularizers.L1L2(0.01, 0.03)), build(None)
        plain.set_weights(regularized.get_weights())
        theirs, data = tape_gradients(regularized), tape_gradients(plain)
    factors = regularizers.L1L2(0.01, 0.03).factors()
    for index in (0, 1):
        weight = regularized.get_weights()[index]
        mine = data[index] + regularizers.penalty_gradient(weight, *factors)
        np.testing.assert_array_equal(mine, theirs[index])


# --- both engines, live Keras at every epoch -------------------------------------------------------------


@pytest.mark.parametrize("numerics", ["plain", "tensorflow"])
def test_engines_agree_with_regularizers(numerics):
    x, y = _data()
    results = []
    for engine in ("numba", "numpy"):
        model = gdcore.Sequential([gdcore.Input((2,)),
                                   gdcore.layers.Dense(8, activation="tanh", kernel_regularizer=regularizers.L1L2(0.01, 0.02),
                                                       bias_regularizer="l1"),
                                   gdcore.layers.Dense(3, activation="sigmoid", kernel_regularizer="l2", trainable=False),
                                   gdcore.layers.Dense(1, bias_regularizer=regularizers.L2(0.1))],
                                  numerics=numerics, engine=engine, seed=4)
        model.compile(gdcore.optimizers.Adam(learning_rate=0.05, global_clipnorm=1.0), "mse", metrics=["mae"])
        history = model.fit(x[:40], y[:40], batch_size=16, epochs=2, verbose=0, shuffle=False,
                            validation_data=(x[40:], y[40:])).history
        results.append((history, [w.tobytes() for w in model.get_weights()], model.evaluate(x, y, verbose=0)))
    assert results[0] == results[1]


def _keras_run(dtype, layers, optimizer, epochs=3):
    """gdcore and its live Keras twin (``reference.keras_driver.to_keras``) trained alike."""
    from reference.keras_driver import _keras_optimizer, keras_dtype, to_keras

    x, y = _data()
    model = gdcore.Sequential([gdcore.Input((2,)), *layers], dtype=dtype, numerics="tensorflow", seed=5)
    model.compile(optimizer, "mse", metrics=["mae"])
    arguments = dict(batch_size=16, epochs=epochs, verbose=0, shuffle=False, validation_data=(x[40:], y[40:]))
    with keras_dtype(dtype) as keras:
        twin = to_keras(model, compile=False)
        twin.compile(optimizer=_keras_optimizer(keras, optimizer), loss="mse", metrics=["mae"], jit_compile=False)
        theirs = twin.fit(x[:40], y[:40], **arguments).history
        their_evaluation = twin.evaluate(x, y, verbose=0)
        their_weights = twin.get_weights()
    plain = gdcore.Sequential([gdcore.Input((2,)), *(gdcore.layers.Dense(layer.units, activation=layer.activation.name,
                                                                         use_bias=layer.use_bias) for layer in layers)],
                              dtype=dtype, numerics="tensorflow")
    plain.set_weights(model.get_weights())
    plain.compile("sgd", "mse")
    unregularized = plain.evaluate(x, y, verbose=0)
    mine = model.fit(x[:40], y[:40], **arguments).history
    return mine, theirs, model.get_weights(), their_weights, model.evaluate(x, y, verbose=0), their_evaluation, \
        unregularized


CASES = {  # name: (hidden layer's kernel and bias regularizers, output's, optimizer)
    "l2-kernel": (("l2", None), (regularizers.L2(0.05), None), lambda: gdcore.optimizers.Adam(learning_rate=0.05)),
    "l1-both": ((regularizers.L1(0.02), "l1"), ("l1", regularizers.L1(0.03)),
                lambda: gdcore.optimizers.SGD(learning_rate=0.1, momentum=0.9)),
    "l1l2-both": ((regularizers.L1L2(0.01, 0.03), regularizers.L1L2(l2=0.02)), (regularizers.L1L2(0.02, 0.01), "l2"),
                  lambda: gdcore.optimizers.Adam(learning_rate=0.05, global_clipnorm=0.5)),
    "l1l2-rmsprop": ((regularizers.L1L2(0.05, 0.05), None), (None, regularizers.L1L2(0.01)),
                     lambda: gdcore.optimizers.RMSprop(learning_rate=0.01, clipnorm=0.5)),
}


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES))
def test_regularized_training_bit_identical_to_keras(dtype, case):
    pytest.importorskip("tensorflow")
    (hidden_kernel, hidden_bias), (out_kernel, out_bias), optimizer = CASES[case]
    layers = [gdcore.layers.Dense(8, activation="tanh", kernel_regularizer=hidden_kernel, bias_regularizer=hidden_bias),
              gdcore.layers.Dense(1, kernel_regularizer=out_kernel, bias_regularizer=out_bias)]
    *run, unregularized = _keras_run(dtype, layers, optimizer())
    _assert_same_run(*run)
    assert run[4] != unregularized  # the penalties are in the loss


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_regularizers_with_layer_options_bit_identical_to_keras(dtype):
    # A bias_regularizer on a layer without a bias adds nothing (Keras makes no bias); a frozen layer's adds nothing.
    pytest.importorskip("tensorflow")
    layers = [gdcore.layers.Dense(8, activation="elu", use_bias=False, kernel_regularizer="l1l2", bias_regularizer="l2"),
              gdcore.layers.Dense(4, activation="sigmoid", kernel_regularizer=regularizers.L2(0.1), trainable=False),
              gdcore.layers.Dense(1, kernel_regularizer=regularizers.L1(0.01), bias_regularizer="l1")]
    *run, _ = _keras_run(dtype, layers, gdcore.optimizers.Adam(learning_rate=0.05, weight_decay=0.01))
    _assert_same_run(*run)


def test_a_regularizer_set_after_the_model_is_built_counts_from_the_next_fit():
    x = np.linspace(-1, 1, 30, dtype=np.float32)[:, None]
    y = (3 * x - 1).astype(np.float32)

    def model(regularizer=None):
        net = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(2, kernel_regularizer=regularizer),
                                 gdcore.layers.Dense(1)], dtype="float32", seed=5)
        net.compile(optimizer="sgd", loss="mse")
        return net

    built_with = model(gdcore.regularizers.L2(0.1))
    built_with.fit(x, y, batch_size=10, epochs=2, verbose=0, shuffle=False)
    set_later = model()
    set_later.layers[0].kernel_regularizer = gdcore.regularizers.L2(0.1)
    set_later.fit(x, y, batch_size=10, epochs=2, verbose=0, shuffle=False)
    for got, expected in zip(set_later.get_weights(), built_with.get_weights()):
        np.testing.assert_array_equal(got, expected)
    assert set_later.history.history["loss"] == built_with.history.history["loss"]
