"""Layer options as Keras 3 has them: ``Dense(use_bias=False)``, ``trainable=False``.

``use_bias=False`` gives a layer no bias at all (Keras's ``Dense.build``
creates none): its weights are ``[kernel]``, it counts ``n_in * units``
parameters, Keras's files hold one variable for it and the optimizer makes
no slot for a bias. The forward pass is the product alone, as Keras runs
``ops.matmul`` without the ``BiasAdd``/``AddV2``.

``trainable=False`` (or ``layer.trainable = False`` before ``compile``)
freezes a layer: Keras differentiates and updates ``model.trainable_weights``
only, so the frozen weights get no update, no optimizer variables, no weight
decay and no part in ``global_clipnorm``'s norm, while the gradient still
flows through the layer to those below.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402

X = np.array([[1.0], [2.0], [3.0], [4.0]])
Y = np.array([[0.0], [1.0], [-1.0], [2.0]])


def _data(n=50, features=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, (n, features))
    return x, np.sin(x.sum(axis=1, keepdims=True)) + rng.normal(0, 0.1, (n, 1))


# --- use_bias=False ---------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_one_step_without_bias_by_hand(engine):
    # y_pred = W x with W = 0, so e = y_pred - y = -y. dL/dW = 2/B sum_b x_b e_b = -(2/4)(0 + 2 - 3 + 8) = -3.5:
    # one SGD step at learning rate 1 gives W = 3.5, and no bias exists to move. L = (0 + 1 + 1 + 4) / 4 = 1.5.
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1, use_bias=False)], dtype="float64",
                              engine=engine)
    model.set_weights([np.zeros((1, 1))])
    model.compile(gdcore.optimizers.SGD(learning_rate=1.0), "mse")
    history = model.fit(X, Y, batch_size=4, epochs=1, verbose=0, shuffle=False).history
    assert history == {"loss": [1.5]}
    assert [w.tolist() for w in model.get_weights()] == [[[3.5]]]
    assert model.predict(X, verbose=0).ravel().tolist() == [3.5, 7.0, 10.5, 14.0]


def test_a_layer_without_bias_has_only_its_kernel():
    layer = gdcore.layers.Dense(3, use_bias=False, activation="tanh")
    model = gdcore.Sequential([gdcore.Input((2,)), layer, gdcore.layers.Dense(1)], seed=0)
    assert [w.shape for w in model.get_weights()] == [(2, 3), (3, 1), (1,)]
    assert layer.bias is None and [w.shape for w in layer.get_weights()] == [(2, 3)]
    assert layer.count_params() == 6 and model.count_params() == 10 and model.params.size == 10
    assert layer.get_config()["use_bias"] is False
    layer.set_weights([np.full((2, 3), 0.5)])
    np.testing.assert_array_equal(model.get_weights()[0], np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="expected 1"):
        layer.set_weights([np.zeros((2, 3)), np.zeros(3)])
    table = gdcore.trace.parameter_table(model)
    assert list(table["tensor"]) == ["kernel"] * 9 + ["bias"]
    np.testing.assert_array_equal(layer(np.ones((1, 2))), np.tanh(np.full((1, 3), 1.0, np.float32)))


def test_bad_use_bias_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="use_bias must be True or False, got 'no'"):
        gdcore.layers.Dense(1, use_bias="no")
    with pytest.raises(ValueError, match="use_bias must be True or False, got 0"):
        gdcore.layers.Dense(1, use_bias=0)


@pytest.mark.parametrize("activation", ["sigmoid", "elu", "silu", "gelu"])
@pytest.mark.parametrize("numerics", ["plain", "tensorflow"])
def test_engines_agree_without_bias(numerics, activation):
    # 8 then 3 units: the unfused activations on whole packets and on a scalar tail.
    x, y = _data()
    results = []
    for engine in ("numba", "numpy"):
        model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(8, activation=activation, use_bias=False),
                                   gdcore.layers.Dense(3, activation=activation, use_bias=False),
                                   gdcore.layers.Dense(1, use_bias=False)], numerics=numerics, engine=engine, seed=4)
        model.compile(gdcore.optimizers.Adam(learning_rate=0.05, global_clipnorm=1.0), "mse", metrics=["mae"])
        history = model.fit(x[:40], y[:40], batch_size=16, epochs=2, verbose=0, shuffle=False,
                            validation_data=(x[40:], y[40:])).history
        results.append((history, [w.tobytes() for w in model.get_weights()], model.predict(x, verbose=0).tobytes()))
    assert results[0] == results[1]


@pytest.mark.parametrize("numerics", ["plain", "tensorflow"])
def test_engines_agree_on_a_bias_free_sigmoid_output_read_by_accuracy(numerics):
    # The loss reads the logits; the accuracy reads the output layer's sigmoid, unfused without a bias.
    x, y = _data()
    labels = (y > 0).astype(np.float32)
    results = []
    for engine in ("numba", "numpy"):
        model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(4, activation="tanh"),
                                   gdcore.layers.Dense(1, activation="sigmoid", use_bias=False)],
                                  numerics=numerics, engine=engine, seed=4)
        model.compile(gdcore.optimizers.Adam(learning_rate=0.05), "binary_crossentropy", metrics=["accuracy", "mse"])
        history = model.fit(x[:40], labels[:40], batch_size=16, epochs=2, verbose=0, shuffle=False,
                            validation_data=(x[40:], labels[40:])).history
        results.append((history, [w.tobytes() for w in model.get_weights()], model.predict(x, verbose=0).tobytes()))
    assert results[0] == results[1]


def test_explain_step_shows_no_bias():
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1, use_bias=False)], dtype="float64",
                              engine="numpy")
    model.set_weights([np.zeros((1, 1))])
    model.compile(gdcore.optimizers.SGD(learning_rate=1.0), "mse")
    step = gdcore.explain.explain_step(model, X, Y)
    assert list(step.parameters["parameter"]) == ["dense/kernel[0,0]"]
    assert step.parameters["gradient"].tolist() == [-3.5] and step.parameters["after"].tolist() == [3.5]
    assert [w.shape for w in step.weights_after] == [(1, 1)]


def _keras_parity(dtype, hidden, output_bias, optimizer, epochs=3, freeze=None, output_activation=None,
                  loss="mse", metrics=("mae",)):
    """gdcore and its live Keras twin trained alike: (gdcore's history, Keras's, gdcore's weights, Keras's).

    ``freeze``: the index of a layer set ``trainable = False`` before compile (and so in the twin).
    A ``binary_crossentropy`` loss trains on the labels ``y > 0``."""
    from reference.keras_driver import _keras_optimizer, keras_dtype, to_keras

    x, y = _data(seed=1)
    if loss == "binary_crossentropy":
        y = (y > 0).astype(dtype)
    model = gdcore.Sequential([gdcore.Input((2,)), *hidden,
                               gdcore.layers.Dense(1, activation=output_activation, use_bias=output_bias)],
                              dtype=dtype, numerics="tensorflow", seed=5)
    if freeze is not None:
        model.layers[freeze].trainable = False
    model.compile(optimizer, loss, metrics=list(metrics))
    arguments = dict(batch_size=16, epochs=epochs, verbose=0, shuffle=False, validation_data=(x[40:], y[40:]))
    with keras_dtype(dtype) as keras:
        twin = to_keras(model, compile=False)
        twin.compile(optimizer=_keras_optimizer(keras, optimizer), loss=loss, metrics=list(metrics), jit_compile=False)
        theirs = twin.fit(x[:40], y[:40], **arguments).history
        their_weights = twin.get_weights()
    mine = model.fit(x[:40], y[:40], **arguments).history
    return mine, theirs, model.get_weights(), their_weights


def _assert_same_run(mine, theirs, my_weights, their_weights):
    assert list(mine) == list(theirs)
    for key in theirs:
        for epoch, (a, b) in enumerate(zip(mine[key], theirs[key])):
            assert a == b, f"{key} epoch {epoch + 1}: gdcore {a!r} vs Keras {b!r}"
    assert [w.shape for w in my_weights] == [w.shape for w in their_weights]
    for index, (a, b) in enumerate(zip(my_weights, their_weights)):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f"weight {index}: gdcore {a.ravel()[:3]} vs Keras " \
                                                                  f"{b.ravel()[:3]}"


NO_BIAS_CASES = [  # (dtype, hidden layer's use_bias, output's use_bias, optimizer)
    ("float32", False, True, lambda: gdcore.optimizers.Adam(learning_rate=0.05)),
    ("float64", False, True, lambda: gdcore.optimizers.Adam(learning_rate=0.05)),
    ("float32", False, False, lambda: gdcore.optimizers.Adam(learning_rate=0.05, global_clipnorm=0.5)),
    ("float64", True, False, lambda: gdcore.optimizers.SGD(learning_rate=0.1, momentum=0.9)),
]


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype, hidden_bias, output_bias, optimizer", NO_BIAS_CASES)
def test_no_bias_bit_identical_to_keras(dtype, hidden_bias, output_bias, optimizer):
    pytest.importorskip("tensorflow")
    hidden = [gdcore.layers.Dense(8, activation="sigmoid", use_bias=hidden_bias)]
    _assert_same_run(*_keras_parity(dtype, hidden, output_bias, optimizer()))


# Without a bias TensorFlow's graph optimizer fuses no activation into the product: sigmoid and tanh are Eigen's
# standalone ops (oneDNN's fused ones after a bias), elu is Eigen's Elu (oneDNN's, or _FusedMatMul's on Eigen's paths,
# after a bias), silu stays oneDNN's _MklSwish where oneDNN's ops are on. 8 then 3 units: packets and a scalar tail.
UNFUSED_CASES = [("float32", name) for name in ("sigmoid", "tanh", "relu", "elu", "gelu", "silu")] + [
    ("float64", name) for name in ("tanh", "elu", "silu")]


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype, activation", UNFUSED_CASES)
def test_activations_without_bias_bit_identical_to_keras(dtype, activation):
    pytest.importorskip("tensorflow")
    hidden = [gdcore.layers.Dense(8, activation=activation, use_bias=False),
              gdcore.layers.Dense(3, activation=activation, use_bias=False)]
    _assert_same_run(*_keras_parity(dtype, hidden, True, gdcore.optimizers.Adam(learning_rate=0.05)))


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["mse", "binary_crossentropy"])
def test_bias_free_sigmoid_output_bit_identical_to_keras(dtype, loss):
    # A sigmoid output without a bias: Eigen's standalone sigmoid in the forward pass (MSE) and in what the metrics
    # read; with binary_crossentropy the loss reads the bare product's logits.
    pytest.importorskip("tensorflow")
    hidden = [gdcore.layers.Dense(8, activation="tanh")]
    _assert_same_run(*_keras_parity(dtype, hidden, False, gdcore.optimizers.Adam(learning_rate=0.05),
                                    output_activation="sigmoid", loss=loss, metrics=("mae", "binary_accuracy")))


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_metrics_under_a_cross_entropy_read_the_unfused_sigmoid(engine):
    # With binary_crossentropy the loss reads the logits and the metrics apply the output's sigmoid to them, as the
    # layer computes it: without a bias, unfused (Eigen's); oneDNN's fused sigmoid would differ in the last bits.
    x, y = _data()
    labels = (y > 0).astype(np.float32)
    results = []
    for loss in ("binary_crossentropy", "mse"):  # mse reads the layer's own output: the reference
        model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(8, activation="tanh"),
                                   gdcore.layers.Dense(1, activation="sigmoid", use_bias=False)],
                                  numerics="tensorflow", engine=engine, seed=4)
        model.compile(gdcore.optimizers.SGD(learning_rate=0.1), loss, metrics=["mse"])
        results.append(model.evaluate(x, labels, batch_size=50, verbose=0)[1])
    assert results[0] == results[1]


# --- trainable=False ---------------------------------------------------------------------------------


def _frozen_first(engine="numba", optimizer=None):
    frozen = gdcore.layers.Dense(1, trainable=False)
    model = gdcore.Sequential([gdcore.Input((1,)), frozen, gdcore.layers.Dense(1)], dtype="float64", engine=engine)
    model.set_weights([np.array([[2.0]]), np.zeros(1), np.zeros((1, 1)), np.zeros(1)])
    model.compile(optimizer or gdcore.optimizers.SGD(learning_rate=1.0), "mse")
    return model


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_one_step_with_a_frozen_layer_by_hand(engine):
    # h = 2x (frozen), y_pred = W h + b = 0, e = -y. dL/dW = 2/B sum_b h_b e_b = -(2/4) 2 (0 + 2 - 3 + 8) = -7,
    # dL/db = -(2/4)(0 + 1 - 1 + 2) = -1: at learning rate 1, W = 7 and b = 1; the frozen layer keeps W = 2, b = 0
    # although its gradient is not zero (dL/dW_1 = W e x summed is 0 here only because W = 0: it is never applied).
    model = _frozen_first(engine)
    model.fit(X, Y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    assert [w.ravel().tolist() for w in model.get_weights()] == [[2.0], [0.0], [7.0], [1.0]]
    model.fit(X, Y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    assert [w.ravel().tolist() for w in model.get_weights()][:2] == [[2.0], [0.0]]  # dL/dW_1 = 7 e x != 0 now


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_a_frozen_layer_gets_no_weight_decay_and_no_optimizer_state(engine):
    model = _frozen_first(engine, gdcore.optimizers.Adam(learning_rate=0.1, weight_decay=0.5, global_clipnorm=0.1))
    model.fit(X, Y, batch_size=2, epochs=2, verbose=0, shuffle=False)
    assert [w.ravel().tolist() for w in model.get_weights()][:2] == [[2.0], [0.0]]
    assert not model.optimizer.slots[:, :2].any() and model.optimizer.slots[:2, 2:].all()  # m and v (no amsgrad)


def test_trainable_weights_are_listed_as_keras_lists_them():
    model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(3, name="a"), gdcore.layers.Dense(1, name="b")])
    model.layers[0].trainable = False  # as Keras users freeze a layer: the attribute, before compile
    assert [w.shape for w in model.trainable_weights] == [(3, 1), (1,)]
    assert [w.shape for w in model.non_trainable_weights] == [(2, 3), (3,)]
    assert [w.shape for w in model.weights] == [(2, 3), (3,), (3, 1), (1,)]
    assert model.layers[0].get_config()["trainable"] is False
    with pytest.raises(ValueError, match="trainable must be True or False, got 'no'"):
        gdcore.layers.Dense(1, trainable="no")
    with pytest.raises(ValueError, match="trainable must be True or False, got 1"):
        model.layers[1].trainable = 1


@pytest.mark.tensorflow
def test_summary_with_a_frozen_layer_prints_what_keras_prints():
    import keras as real

    texts = []
    x = np.ones((4, 2))
    for library in (real, gdcore):
        library.backend.clear_session()
        model = library.Sequential([library.Input((2,)), library.layers.Dense(3, name="a", trainable=False),
                                    library.layers.Dense(1, name="b", use_bias=False)])
        lines = []
        model.compile(optimizer=library.optimizers.Adam(0.1), loss="mse")
        model.fit(x, x[:, :1], epochs=1, verbose=0)
        model.summary(print_fn=lines.append, line_length=80)
        texts.append("\n".join(lines))
    assert texts[1] == texts[0]


@pytest.mark.parametrize("numerics", ["plain", "tensorflow"])
def test_engines_agree_with_a_frozen_layer(numerics):
    x, y = _data()
    results = []
    for engine in ("numba", "numpy"):
        model = gdcore.Sequential([gdcore.Input((2,)), gdcore.layers.Dense(8, activation="sigmoid", trainable=False),
                                   gdcore.layers.Dense(1)], numerics=numerics, engine=engine, seed=4)
        model.compile(gdcore.optimizers.Adam(learning_rate=0.05, weight_decay=0.1, global_clipnorm=1.0), "mse")
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False).history
        results.append((history, [w.tobytes() for w in model.get_weights()], model.optimizer.slots.tobytes()))
    assert results[0] == results[1]


FROZEN_CASES = [  # (dtype, which layer is frozen, optimizer)
    ("float32", 0, lambda: gdcore.optimizers.Adam(learning_rate=0.05, weight_decay=0.1, global_clipnorm=0.5)),
    ("float64", 0, lambda: gdcore.optimizers.Adam(learning_rate=0.05, weight_decay=0.1, global_clipnorm=0.5)),
    ("float32", 1, lambda: gdcore.optimizers.SGD(learning_rate=0.1, momentum=0.9)),
    ("float64", 1, lambda: gdcore.optimizers.RMSprop(learning_rate=0.01, clipnorm=0.5)),
]


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype, frozen, optimizer", FROZEN_CASES)
def test_frozen_layer_bit_identical_to_keras(dtype, frozen, optimizer):
    pytest.importorskip("tensorflow")
    hidden = gdcore.layers.Dense(8, activation="sigmoid")
    run = _keras_parity(dtype, [hidden], True, optimizer(), freeze=frozen)
    _assert_same_run(*run)


# --- Input(batch_size=...) -------------------------------------------------------------------------


@pytest.mark.tensorflow
@pytest.mark.parametrize("kind", ["Sequential", "Model"])
def test_input_batch_size_is_shown_as_keras_shows_it_and_fits_any_batch(kind, tmp_path):
    # Keras keeps the batch size in the shapes (summary, configs) and fits arrays in batches of another size.
    import keras as real

    texts, histories = [], []
    x, y = np.linspace(-1, 1, 20).reshape(10, 2), np.linspace(0, 1, 10).reshape(10, 1)
    for library in (real, gdcore):
        library.backend.clear_session()
        inputs = library.Input(shape=(2,), batch_size=4)
        assert inputs.shape == (4, 2)
        # Keras's bits are the tensorflow profile's claim (the plain profile rounds each product on its own).
        options = {"numerics": "tensorflow"} if library is gdcore else {}
        if kind == "Sequential":
            model = library.Sequential([inputs, library.layers.Dense(3, name="a"), library.layers.Dense(1, name="b")],
                                       **options)
        else:
            model = library.Model(inputs, library.layers.Dense(1, name="b")(library.layers.Dense(3, name="a")(inputs)),
                                  **options)
        model.set_weights([np.full((2, 3), 0.5), np.zeros(3), np.full((3, 1), 0.25), np.zeros(1)])
        lines = []
        model.summary(print_fn=lines.append, line_length=80)
        texts.append("\n".join(lines))
        model.compile(optimizer=library.optimizers.SGD(0.1), loss="mse")
        histories.append(model.fit(x, y, batch_size=3, epochs=2, verbose=0, shuffle=False).history["loss"])
        assert model.predict(x[:7], batch_size=5, verbose=0).shape == (7, 1)
        model.save(tmp_path / f"{library.__name__}.keras")
    assert texts[1] == texts[0] and "(4, 3)" in texts[0]
    assert histories[1] == histories[0]
    # Each library opens the other's file with the batch size in place.
    theirs = gdcore.models.load_model(tmp_path / "keras.keras")
    mine = real.models.load_model(tmp_path / "gdcore.keras")
    assert mine.layers[-1].output.shape == (4, 1) and theirs._batch_dim == 4
    mine_config = gdcore.saving.model_config(theirs)
    keras_config = real.models.load_model(tmp_path / "keras.keras").get_config()
    assert mine_config["layers"][0] == keras_config["layers"][0]
    assert mine_config["layers"][0]["config"]["batch_shape"] == (4, 2)
    assert mine_config.get("build_input_shape") == keras_config.get("build_input_shape")


@pytest.mark.parametrize("batch_size", [0, -2, 2.5, "4", True])
def test_a_bad_input_batch_size_is_a_value_error_naming_it(batch_size):
    with pytest.raises((ValueError, TypeError), match="batch_size"):
        gdcore.Input(shape=(2,), batch_size=batch_size)
