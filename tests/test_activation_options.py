"""Keras's activation layers: ``ReLU``, ``LeakyReLU``, ``ELU`` and ``Activation``.

An activation layer has no weights; a model folds it into the linear Dense
layer before it, whose layout entry then runs the layer's activation. Keras's
fit runs the same ops either way: TensorFlow's graph optimizer sees
``MatMul, BiasAdd, <activation>`` whether the activation is Dense's own or the
next layer's, so the bits are those of ``Dense(activation=...)``, which the
live tests below check at every epoch. A layer's options select the table
entry Keras's ops amount to (``ReLU(max_value=6)`` runs ``tf.nn.relu6``,
``ReLU(negative_slope=s)`` ``tf.nn.leaky_relu`` with that slope, the
``leaky_relu`` entry with the layer's parameter); other options, and
placements that cannot be folded, are NotImplementedError.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402
import zipfile  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402
from gdcore import activations  # noqa: E402
from tests.conftest import assert_same_run, regression_data  # noqa: E402

L = gdcore.layers
X = np.array([[1.0], [2.0], [3.0], [4.0]])
Y = np.array([[0.0], [1.0], [-1.0], [2.0]])


# --- folding -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer, entry", [
    (lambda: L.ReLU(), activations.RELU),
    (lambda: L.ReLU(max_value=6), activations.RELU6),
    (lambda: L.ReLU(max_value=6.0), activations.RELU6),
    (lambda: L.ReLU(negative_slope=0.2), activations.LEAKY_RELU),
    (lambda: L.LeakyReLU(negative_slope=0.2), activations.LEAKY_RELU),
    (lambda: L.ELU(), activations.ELU),
    (lambda: L.Activation("tanh"), activations.TANH),
    (lambda: L.Activation(activations.SIGMOID), activations.SIGMOID),
    (lambda: L.Activation(activations.relu), activations.RELU),  # a table function, found by identity
])
def test_an_activation_layer_runs_its_entry_in_the_dense_layer_before_it(layer, entry):
    layer = layer()
    model = gdcore.Sequential([gdcore.Input((2,)), L.Dense(3), layer, L.Dense(1)])
    assert layer.entry() is entry
    assert model.layout.activation.tolist() == [entry.id, activations.LINEAR.id]
    assert model.layers[1] is layer and model.dense_layers[0].folded is layer
    assert model.dense_layers[0].activation is activations.LINEAR  # its own config still says linear
    assert layer.count_params() == 0 and layer.weights == [] and model.count_params() == 13


def test_names_layers_and_functional_chains_as_keras():
    model = gdcore.Sequential([gdcore.Input((2,)), L.Dense(3), L.ReLU(), L.Dense(2), L.LeakyReLU(0.2), L.Dense(2),
                               L.ELU(), L.Dense(2), L.Activation("tanh"), L.Dense(1)])
    assert [layer.name for layer in model.layers] == ["dense", "re_lu", "dense_1", "leaky_re_lu", "dense_2", "elu",
                                                      "dense_3", "activation", "dense_4"]
    inputs = gdcore.Input((2,))
    outputs = L.Dense(1)(L.Activation("sigmoid")(L.Dense(4)(inputs)))
    functional = gdcore.Model(inputs, outputs)
    assert [type(layer).__name__ for layer in functional.layers] == ["InputLayer", "Dense", "Activation", "Dense"]
    assert functional.layout.activation.tolist() == [activations.SIGMOID.id, activations.LINEAR.id]


def test_add_and_pop_fold_and_unfold_without_touching_the_weights():
    model = gdcore.Sequential([gdcore.Input((2,)), L.Dense(3)], seed=0)
    before = model.get_weights()
    model.add(L.ReLU())
    assert model.layout.activation.tolist() == [activations.RELU.id]
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    model.pop()
    assert model.layout.activation.tolist() == [activations.LINEAR.id] and len(model.layers) == 1
    assert model.dense_layers[0].folded is None


def test_called_on_an_array_the_layer_applies_its_activation():
    assert L.ReLU()(np.array([[-1.0, 0.0, 2.5]])).tolist() == [[0.0, 0.0, 2.5]]
    assert L.ReLU(max_value=6)(np.array([[-1.0, 7.0, 2.5]])).tolist() == [[0.0, 6.0, 2.5]]
    # The slope enters as TensorFlow's float32 attribute: fl32(0.3) * -2 in float64 is not -0.6.
    assert L.LeakyReLU()(np.array([[-2.0, 0.0, 2.5]])).tolist() == [[-2 * float(np.float32(0.3)), 0.0, 2.5]]
    assert L.ReLU(negative_slope=0.5)(np.array([[-2.0, 3.0]], np.float32)).tolist() == [[-1.0, 3.0]]


@pytest.mark.parametrize("make, slope", [(lambda: L.LeakyReLU(), 0.3), (lambda: L.LeakyReLU(0.05), 0.05),
                                         (lambda: L.ReLU(negative_slope=0.7), 0.7),
                                         (lambda: L.LeakyReLU(negative_slope=0.2), 0.2)])
def test_the_layer_keeps_its_slope_in_the_layout_rounded_to_float32(make, slope):
    model = gdcore.Sequential([gdcore.Input((2,)), L.Dense(3), make(), L.Dense(1)])
    assert model.layout.activation.tolist() == [activations.LEAKY_RELU.id, activations.LINEAR.id]
    assert model.layout.activation_p0.tolist() == [float(np.float32(slope)), 0.0]
    model.pop()  # the last Dense layer
    assert model.layout.activation_p0.tolist() == [float(np.float32(slope))]
    model.pop()  # the activation layer: unfolded, linear again
    assert model.layout.activation_p0.tolist() == [0.0]
    model.add(make())
    assert model.layout.activation_p0.tolist() == [float(np.float32(slope))]
    string = gdcore.Sequential([gdcore.Input((2,)), L.Dense(3, activation="leaky_relu"), L.Dense(1)])
    assert string.layout.activation_p0.tolist() == [float(np.float32(0.2)), 0.0]  # the function's default
    assert string.layout.activation_p1.tolist() == string.layout.activation_p2.tolist() == [0.0, 0.0]


# --- one step by hand --------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["numba", "numpy"])
@pytest.mark.parametrize("layer", [lambda: L.ReLU(), lambda: L.ReLU(max_value=6), lambda: L.Activation("relu")])
def test_one_step_through_a_relu_layer_by_hand(engine, layer):
    # W = 1, b = -2.5: z = [-1.5, -0.5, 0.5, 1.5], a = relu(z) = [0, 0, 0.5, 1.5] (all below 6); e = a - y =
    # [0, -1, 1.5, -0.5], L = (0 + 1 + 2.25 + 0.25) / 4 = 0.875. dL/da = 2e/4 = [0, -0.5, 0.75, -0.25], the mask
    # [a > 0] keeps the last two: dL/dW = 3 (0.75) + 4 (-0.25) = 1.25, dL/db = 0.5. SGD at rate 1: W = -0.25, b = -3.
    model = gdcore.Sequential([gdcore.Input((1,)), L.Dense(1), layer()], dtype="float64", engine=engine)
    model.set_weights([np.ones((1, 1)), np.array([-2.5])])
    model.compile(gdcore.optimizers.SGD(learning_rate=1.0), "mse")
    assert model.predict(X, verbose=0).ravel().tolist() == [0.0, 0.0, 0.5, 1.5]
    history = model.fit(X, Y, batch_size=4, epochs=1, verbose=0, shuffle=False).history
    assert history == {"loss": [0.875]}
    assert [w.tolist() for w in model.get_weights()] == [[[-0.25]], [-3.0]]


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_one_step_through_a_leaky_relu_layer_by_hand(engine):
    # Slope s = 0.5 (exact in float32), W = 1, b = -2.5: z = [-1.5, -0.5, 0.5, 1.5], a = [-0.75, -0.25, 0.5, 1.5];
    # e = a - y = [-0.75, -1.25, 1.5, -0.5], L = (0.5625 + 1.5625 + 2.25 + 0.25) / 4 = 1.15625.
    # dL/da = 2e/4 = [-0.375, -0.625, 0.75, -0.25]; dL/dz = [s dL/da for z <= 0, dL/da above] =
    # [-0.1875, -0.3125, 0.75, -0.25]. dL/dW = 1 (-0.1875) + 2 (-0.3125) + 3 (0.75) + 4 (-0.25) = 0.4375,
    # dL/db = 0. SGD at rate 1: W = 0.5625, b = -2.5.
    model = gdcore.Sequential([gdcore.Input((1,)), L.Dense(1), L.LeakyReLU(negative_slope=0.5)], dtype="float64",
                              engine=engine)
    model.set_weights([np.ones((1, 1)), np.array([-2.5])])
    model.compile(gdcore.optimizers.SGD(learning_rate=1.0), "mse")
    assert model.predict(X, verbose=0).ravel().tolist() == [-0.75, -0.25, 0.5, 1.5]
    history = model.fit(X, Y, batch_size=4, epochs=1, verbose=0, shuffle=False).history
    assert history == {"loss": [1.15625]}
    assert [w.tolist() for w in model.get_weights()] == [[[0.5625]], [-2.5]]


# --- engines -----------------------------------------------------------------------------------------------

LAYERS = {  # the layer, and the Dense activation Keras's ops amount to
    "ReLU()": (lambda: L.ReLU(), "relu"),
    "ReLU(max_value=6)": (lambda: L.ReLU(max_value=6), "relu6"),
    "ReLU(negative_slope=0.2)": (lambda: L.ReLU(negative_slope=0.2), "leaky_relu"),
    "LeakyReLU(0.2)": (lambda: L.LeakyReLU(negative_slope=0.2), "leaky_relu"),
    "LeakyReLU()": (lambda: L.LeakyReLU(), "leaky_relu"),  # Keras's layer default, 0.3
    "ReLU(negative_slope=0.7)": (lambda: L.ReLU(negative_slope=0.7), "leaky_relu"),
    # The combinations no single op takes: relu_options, Keras's composition.
    "ReLU(max_value=1.5)": (lambda: L.ReLU(max_value=1.5), "relu_options"),
    "ReLU(threshold=0.3)": (lambda: L.ReLU(threshold=0.3), "relu_options"),
    "ReLU(max_value=1.1, negative_slope=0.2, threshold=0.3)": (lambda: L.ReLU(max_value=1.1, negative_slope=0.2, threshold=0.3), "relu_options"),
    "ReLU(max_value=6, negative_slope=0.1)": (lambda: L.ReLU(max_value=6, negative_slope=0.1), "relu_options"),
    "ELU()": (lambda: L.ELU(), "elu"),
    "Activation('tanh')": (lambda: L.Activation("tanh"), "tanh"),
    "Activation('sigmoid')": (lambda: L.Activation("sigmoid"), "sigmoid"),
}


def _layered(layer, dtype, engine, numerics="tensorflow"):
    init = gdcore.initializers.RandomNormal(0, 1.0, seed=3)
    return gdcore.Sequential([gdcore.Input((2,)), L.Dense(8, kernel_initializer=init, bias_initializer=init), layer,
                              L.Dense(1)], dtype=dtype, engine=engine, numerics=numerics, seed=5)


@pytest.mark.parametrize("case", list(LAYERS))
def test_engines_agree_to_the_bit(case):
    x, y = regression_data(n=40)
    runs = []
    for engine in ("numpy", "numba"):
        model = _layered(LAYERS[case][0](), "float32", engine)
        model.compile(gdcore.optimizers.Adam(learning_rate=0.05), "mse", metrics=["mae"])
        history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False).history
        runs.append((history, model.get_weights()))
    assert runs[0][0] == runs[1][0]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(runs[0][1], runs[1][1]))


# --- live Keras --------------------------------------------------------------------------------------------

KERAS_CASES = [(case, dtype, optimizer) for case in LAYERS for dtype, optimizer in
               (("float32", "sgd"), ("float64", "adam"))] + [
    ("ReLU()", "float32", "adam"), ("ELU()", "float64", "sgd"), ("LeakyReLU(0.2)", "float32", "adam"),
    ("LeakyReLU()", "float32", "adam"), ("LeakyReLU()", "float64", "sgd"),
    ("ReLU(max_value=1.1, negative_slope=0.2, threshold=0.3)", "float32", "adam")]


def _optimizer(name):
    return gdcore.optimizers.SGD(learning_rate=0.05) if name == "sgd" else gdcore.optimizers.Adam(learning_rate=0.05)


@pytest.mark.tensorflow
@pytest.mark.parametrize("case, dtype, optimizer", KERAS_CASES)
def test_activation_layers_bit_identical_to_keras(case, dtype, optimizer):
    pytest.importorskip("tensorflow")
    model = _layered(LAYERS[case][0](), dtype, "numba")
    _assert_trains_as_keras(model, dtype, optimizer,
                            lambda twin: [type(layer).__name__ for layer in twin.layers][1] == case.split("(")[0])


def _assert_trains_as_keras(model, dtype, optimizer, twin_check):
    """``model`` and its Keras twin (``twin_check(twin)`` true) trained alike: history, weights, evaluate, predict."""
    from reference.keras_driver import _keras_optimizer, keras_dtype, to_keras

    x, y = regression_data(n=50)
    model.compile(_optimizer(optimizer), "mse", metrics=["mae"])
    arguments = dict(batch_size=16, epochs=3, verbose=0, shuffle=False, validation_data=(x[40:], y[40:]))
    with keras_dtype(dtype) as keras:
        twin = to_keras(model, compile=False)
        assert twin_check(twin)
        twin.compile(optimizer=_keras_optimizer(keras, _optimizer(optimizer)), loss="mse", metrics=["mae"],
                     jit_compile=False)
        theirs = twin.fit(x[:40], y[:40], **arguments).history
        their_weights = twin.get_weights()
        their_evaluation = twin.evaluate(x[40:], y[40:], verbose=0)
        their_predictions = twin.predict(x[40:], verbose=0)
    mine = model.fit(x[:40], y[:40], **arguments).history
    assert_same_run(mine, theirs, model.get_weights(), their_weights, model.evaluate(x[40:], y[40:], verbose=0),
                    their_evaluation)
    assert model.predict(x[40:], verbose=0).tobytes() == their_predictions.tobytes()


@pytest.mark.tensorflow
def test_summary_prints_what_keras_prints():
    import keras as real

    texts = []
    for library in (real, gdcore):
        library.backend.clear_session()
        model = library.Sequential([library.Input((2,)), library.layers.Dense(3), library.layers.ReLU(),
                                    library.layers.Dense(2), library.layers.Activation("tanh"),
                                    library.layers.Dense(1)])
        lines = []
        model.summary(print_fn=lines.append, line_length=80)
        texts.append("\n".join(lines))
    assert texts[1] == texts[0]


def _config(path):
    def strip(value):  # Keras's shared_object_id is an object's id() in the writing process
        if isinstance(value, dict):
            return {key: strip(item) for key, item in value.items() if key != "shared_object_id"}
        return [strip(item) for item in value] if isinstance(value, list) else value

    return strip(json.loads(zipfile.ZipFile(path).read("config.json")))


@pytest.mark.tensorflow
@pytest.mark.parametrize("kind", ["Sequential", "Model"])
def test_keras_files_both_ways(kind, tmp_path):
    import keras as real

    x = regression_data(n=12)[0].astype("float32")

    def build(library):
        library.backend.clear_session()
        hidden = [library.layers.Dense(3), library.layers.ReLU(), library.layers.Dense(4),
                  library.layers.LeakyReLU(negative_slope=0.2), library.layers.Dense(8), library.layers.ELU(),
                  library.layers.Dense(2), library.layers.Activation("tanh"), library.layers.Dense(1)]
        if kind == "Sequential":
            return library.Sequential([library.Input((2,)), *hidden])
        tensor = inputs = library.Input((2,))
        for layer in hidden:
            tensor = layer(tensor)
        return library.Model(inputs, tensor)

    real.utils.set_random_seed(0)
    theirs = build(real)
    theirs.save(tmp_path / "keras.keras")
    mine = gdcore.saving.load_model(tmp_path / "keras.keras", numerics="tensorflow")
    assert [(layer.name, type(layer).__name__) for layer in mine.layers] == \
        [(layer.name, type(layer).__name__) for layer in theirs.layers]
    assert mine.get_layer("leaky_re_lu").get_config()["negative_slope"] == 0.2
    assert mine.predict(x, verbose=0).tobytes() == theirs.predict(x, verbose=0).tobytes()
    mine.save(tmp_path / "gdcore.keras")
    assert _config(tmp_path / "gdcore.keras") == _config(tmp_path / "keras.keras")
    again = real.saving.load_model(tmp_path / "gdcore.keras")
    assert again.predict(x, verbose=0).tobytes() == theirs.predict(x, verbose=0).tobytes()
    built = build(gdcore)  # written by gdcore from scratch, as Keras writes the same model
    built.set_weights(theirs.get_weights())
    built.save(tmp_path / "built.keras")
    assert _config(tmp_path / "built.keras") == _config(tmp_path / "keras.keras")


# --- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make, message", [
    (lambda: L.ReLU(max_value=-1.0), "max_value of a ReLU layer cannot be a negative value. Received: max_value=-1.0"),
    (lambda: L.ReLU(negative_slope=-0.1), "negative_slope of a ReLU layer cannot be None or a negative value"),
    (lambda: L.ReLU(negative_slope=None), "negative_slope of a ReLU layer cannot be None"),
    (lambda: L.ReLU(threshold=-1.0), "threshold of a ReLU layer cannot be None or a negative value"),
    (lambda: L.LeakyReLU(negative_slope=-0.3), "negative_slope value of a Leaky ReLU layer cannot be None or negative"),
])
def test_bad_options_are_value_errors_as_keras_raises_them(make, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        make()


@pytest.mark.tensorflow
def test_keras_refuses_the_same_options():
    import keras as real

    for make in (lambda: real.layers.ReLU(max_value=-1.0), lambda: real.layers.ReLU(negative_slope=-0.1),
                 lambda: real.layers.ReLU(threshold=-1.0), lambda: real.layers.LeakyReLU(negative_slope=-0.3)):
        with pytest.raises(ValueError):
            make()
    real.layers.ELU(alpha=-1.0)  # Keras's ELU checks nothing
    real.activations.relu(np.array([1.0]), negative_slope=-1.0)  # nor does the function


def test_unknown_activation_names_list_the_known_ones():
    with pytest.raises(ValueError, match="unknown activation 'rectifier'; known: .*relu.*sigmoid"):
        L.Activation("rectifier")
    with pytest.raises(ValueError, match="Activation\\(activation=None\\)"):
        L.Activation(None)
    with pytest.raises(TypeError, match=r"ReLU\(max_value=...\) must be a number or None, got 'big'"):
        L.ReLU(max_value="big")
    with pytest.raises(TypeError, match=r"ReLU got unexpected arguments \['maxvalue'\]"):
        L.ReLU(maxvalue=3)


@pytest.mark.parametrize("make, message", [
    (lambda: L.ELU(alpha=0.5), r"ELU\(alpha=0.5\) is not supported yet"),
    (lambda: L.Activation(np.tanh), "other functions are not supported"),
])
def test_options_outside_the_table_are_not_implemented_errors(make, message):
    with pytest.raises(NotImplementedError, match=message):
        make()


@pytest.mark.parametrize("layers, message", [
    (lambda: [L.ReLU(), L.Dense(1)], "first in the model"),
    (lambda: [L.Dense(2, activation="tanh"), L.ReLU(), L.Dense(1)], "whose activation is 'tanh'"),
    (lambda: [L.Dense(2), L.ReLU(), L.Activation("tanh"), L.Dense(1)], "two activation layers in a row"),
])
def test_placements_that_cannot_fold_are_not_implemented_errors(layers, message):
    with pytest.raises(NotImplementedError, match=message):
        gdcore.Sequential([gdcore.Input((2,)), *layers()])
    if message == "first in the model":
        inputs = gdcore.Input((2,))
        with pytest.raises(NotImplementedError, match=message):
            gdcore.Model(inputs, L.Dense(1)(L.ReLU()(inputs)))


def test_a_softmax_layer_on_one_unit_is_a_value_error():
    with pytest.raises(ValueError, match="always outputs 1"):
        gdcore.Sequential([gdcore.Input((2,)), L.Dense(1), L.Activation("softmax")])


def test_explain_step_shows_the_layers_slope_and_uses_it():
    model = gdcore.Sequential([gdcore.Input((1,)), L.Dense(2), L.LeakyReLU(negative_slope=0.5), L.Dense(1)],
                              dtype="float64", seed=0)
    model.set_weights([np.array([[1.0, -1.0]]), np.zeros(2), np.ones((2, 1)), np.zeros(1)])
    model.compile(gdcore.optimizers.SGD(learning_rate=0.1), "mse")
    step = gdcore.explain.explain_step(model, np.array([[1.0], [-2.0]]), np.array([[0.5], [1.0]]))
    assert "s = 0.5" in str(step)
    hidden = step.activations[step.activations["layer"] == "dense"]
    # z = x W: [[1, -1], [-2, 2]]; f'(z) is 1 above 0 and the slope at or below.
    assert hidden["z"].tolist() == [1.0, -1.0, -2.0, 2.0]
    assert hidden["activation_grad"].tolist() == [1.0, 0.5, 0.5, 1.0]
    assert hidden["a"].tolist() == [1.0, -0.5, -1.0, 2.0]


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_leaky_relu_and_its_gradient_are_tensorflows_for_any_slope(dtype):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(7)
    z = (rng.standard_normal(203) * 2.0 ** rng.integers(-8, 8, 203)).astype(dtype)
    z[:3] = [0.0, -0.0, -1e-30]
    dy = rng.standard_normal(203).astype(dtype)
    for slope in (0.3, 0.05, 0.7, 1.7):
        tensor = tf.constant(z)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            out = tf.nn.leaky_relu(tensor, alpha=slope)
        grad = tape.gradient(out, tensor, output_gradients=tf.constant(dy)).numpy()
        assert activations.leaky_relu(z, slope).tobytes() == out.numpy().tobytes()
        assert activations.leaky_relu_grad(z, dy, slope).tobytes() == grad.tobytes()
        value = activations.LEAKY_RELU.parameter_values((slope,))[0]  # what a layer keeps: the functions' rounding
        assert activations.leaky_relu(z, value).tobytes() == out.numpy().tobytes()


RELU_OPTIONS = [dict(max_value=1.5), dict(threshold=0.3), dict(max_value=6, negative_slope=0.1),
                dict(max_value=1.1, negative_slope=0.2, threshold=0.3), dict(negative_slope=0.3, threshold=0.25),
                dict(max_value=0.0), dict(max_value=2.0, threshold=0.5)]


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_options_and_their_gradient_are_kerass_ops(dtype):
    # Keras's relu (its TensorFlow ops: ReLU.static_call) on values that hit every edge: below, at and above the
    # threshold and the cap, signed zeros.
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(11)
    z = (rng.standard_normal(301) * 2.0 ** rng.integers(-6, 3, 301)).astype(dtype)
    z[:8] = [0.0, -0.0, 0.3, 0.25, 0.5, 1.1, 1.5, 6.0]
    dy = rng.standard_normal(301).astype(dtype)
    for options in RELU_OPTIONS:
        tensor = tf.constant(z)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            out = keras.activations.relu(tensor, **options)
        grad = tape.gradient(out, tensor, output_gradients=tf.constant(dy)).numpy()
        layer = L.ReLU(**options)
        assert layer.entry() is activations.RELU_OPTIONS, options
        values = layer.parameters()
        assert activations.relu_options(z, *values).tobytes() == out.numpy().tobytes(), options
        assert activations.relu_options_grad(z, dy, *values).tobytes() == grad.tobytes(), options
        assert layer(z[None, :]).ravel().tobytes() == out.numpy().tobytes(), options


@pytest.mark.parametrize("options", RELU_OPTIONS)
def test_relu_options_gradient_is_the_derivative(options):
    values = L.ReLU(**options).parameters()
    z = np.random.default_rng(3).uniform(-3, 7, 400)
    kinks = [0.0, values[2], values[1]]
    z = z[np.min([np.abs(z - kink) for kink in kinks], axis=0) > 1e-3]  # away from the kinks
    step = 1e-6
    numeric = (activations.relu_options(z + step, *values) - activations.relu_options(z - step, *values)) / (2 * step)
    np.testing.assert_allclose(activations.relu_options_grad(z, np.ones_like(z), *values), numeric, rtol=1e-6,
                               atol=1e-8)


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_one_step_through_relu_options_by_hand(engine):
    # ReLU(max_value=1, negative_slope=0.5, threshold=0.5), W = 1, b = 0, x = [0.25, 0.75, 1.5, 2]: z = x.
    # where(z > t, z, 0) = [0, 0.75, 1.5, 2], clipped to [0, 1]: [0, 0.75, 1, 1]; relu(t - z) = [0.25, 0, 0, 0];
    # a = [0, 0.75, 1, 1] - 0.5 [0.25, 0, 0, 0] = [-0.125, 0.75, 1, 1]. y = [0, 1, 0, 2]: e = a - y =
    # [-0.125, -0.25, 1, -1], L = (0.015625 + 0.0625 + 1 + 1) / 4 = 0.51953125. dL/da = 2e/4 =
    # [-0.0625, -0.125, 0.5, -0.5]; f'(z) = [s (z < t), 1 (t < z < m), 0 (z > m), 0] = [0.5, 1, 0, 0]:
    # dL/dz = [-0.03125, -0.125, 0, 0]. dL/dW = 0.25 (-0.03125) + 0.75 (-0.125) = -0.1015625, dL/db = -0.15625.
    # SGD at rate 1: W = 1.1015625, b = 0.15625.
    x, y = np.array([[0.25], [0.75], [1.5], [2.0]]), np.array([[0.0], [1.0], [0.0], [2.0]])
    model = gdcore.Sequential([gdcore.Input((1,)), L.Dense(1), L.ReLU(max_value=1, negative_slope=0.5, threshold=0.5)],
                              dtype="float64", engine=engine)
    model.set_weights([np.ones((1, 1)), np.zeros(1)])
    model.compile(gdcore.optimizers.SGD(learning_rate=1.0), "mse")
    assert model.predict(x, verbose=0).ravel().tolist() == [-0.125, 0.75, 1.0, 1.0]
    assert model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False).history == {"loss": [0.51953125]}
    assert [w.tolist() for w in model.get_weights()] == [[[1.1015625]], [0.15625]]


@pytest.mark.parametrize("make, argument", [
    (lambda: L.ReLU(max_value=float("nan")), "max_value"), (lambda: L.ReLU(threshold=float("nan")), "threshold"),
    (lambda: L.ReLU(negative_slope=float("inf")), "negative_slope"),
    (lambda: L.LeakyReLU(negative_slope=float("nan")), "negative_slope"),
    (lambda: L.LeakyReLU(negative_slope=float("inf")), "negative_slope"), (lambda: L.ELU(alpha=float("nan")), "alpha"),
])
def test_a_non_finite_option_is_a_value_error_naming_it(make, argument):
    # Keras accepts these; a NaN cap then zeroes the layer's output and an infinite slope diverges at once.
    with pytest.raises(ValueError, match=rf"\({argument}=...\) must be a finite number"):
        make()
    assert L.ReLU(max_value=float("inf")).entry() is activations.RELU_OPTIONS  # no cap, Keras's clip to inf


def test_relu_options_is_reached_through_the_layer_only():
    with pytest.raises(ValueError, match="unknown activation 'relu_options'"):
        L.Dense(2, activation="relu_options")
    with pytest.raises(ValueError, match="is ReLU's options"):
        L.Dense(2, activation=activations.RELU_OPTIONS)


def test_explain_step_shows_relu_options():
    model = gdcore.Sequential([gdcore.Input((1,)), L.Dense(2), L.ReLU(max_value=1.5, threshold=0.25), L.Dense(1)],
                              dtype="float64", seed=0)
    model.compile(gdcore.optimizers.SGD(learning_rate=0.1), "mse")
    text = str(gdcore.explain.explain_step(model, np.array([[1.0], [-2.0]]), np.array([[0.5], [1.0]])))
    assert "s = 0" in text and "m = 1.5" in text and "t = 0.25" in text


# --- an activation layer given as Dense's activation ------------------------------------------------------------

AS_ACTIVATION = {"LeakyReLU(0.1)": lambda: L.LeakyReLU(0.1),
                 "ReLU(max_value=1.5, threshold=0.2)": lambda: L.ReLU(max_value=1.5, threshold=0.2),
                 "ReLU(max_value=6)": lambda: L.ReLU(max_value=6)}


def _as_activation(layer, dtype, engine):
    init = gdcore.initializers.RandomNormal(0, 1.0, seed=3)
    return gdcore.Sequential([gdcore.Input((2,)), L.Dense(8, activation=layer, kernel_initializer=init,
                                                          bias_initializer=init), L.Dense(1)],
                             dtype=dtype, engine=engine, numerics="tensorflow", seed=5)


@pytest.mark.parametrize("case", list(AS_ACTIVATION))
def test_a_layer_as_dense_activation_trains_as_the_layer_after_dense(case):
    """``Dense(8, activation=LeakyReLU(0.1))`` is ``Dense(8), LeakyReLU(0.1)``: the same layout, the same bits, in
    both engines; ``get_config`` keeps the layer object, the layer called on an array applies it."""
    x, y = regression_data(n=40)
    runs = []
    for engine in ("numpy", "numba"):
        for model in (_as_activation(AS_ACTIVATION[case](), "float32", engine),
                      _layered(AS_ACTIVATION[case](), "float32", engine)):
            model.compile(gdcore.optimizers.Adam(learning_rate=0.05), "mse")
            history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False).history
            runs.append((history, [w.tobytes() for w in model.get_weights()]))
    assert all(run == runs[0] for run in runs[1:])
    dense = _as_activation(AS_ACTIVATION[case](), "float32", "numba").dense_layers[0]
    assert dense.get_config()["activation"] is dense.activation_layer
    z = np.array([[-1.0, 0.1, 0.3, 7.0]], np.float32)
    layer = dense.activation_layer
    assert dense.activation.name == layer.entry().name and layer(z).tobytes() == layer(z).tobytes()


def test_a_layer_as_dense_activation_is_not_written_to_keras_files_silently(tmp_path):
    model = _as_activation(L.LeakyReLU(0.1), "float32", "numba")
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="has activation=LeakyReLU.*put the activation layer after the Dense"):
        model.save(tmp_path / "model.keras")


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(AS_ACTIVATION))
def test_a_layer_as_dense_activation_bit_identical_to_keras(case, dtype):
    pytest.importorskip("tensorflow")
    model = _as_activation(AS_ACTIVATION[case](), dtype, "numba")
    # Keras's Dense holds the layer object as its activation
    _assert_trains_as_keras(model, dtype, "adam",
                            lambda twin: type(twin.layers[0].activation).__name__ == case.split("(")[0])
