"""Weight constraints (``gdcore.constraints``): Keras 3's names and configs, applied after every update as Keras does.

Keras's optimizer projects each trainable weight that has a constraint after
the step's update (``variable.assign(variable.constraint(variable))``), so the
weights after every step, and therefore history and evaluate, follow the
projection. Checked here by hand on one step, op by op against Keras's own
constraint objects, and against live Keras at every epoch (weights and history
bit for bit) in float32 and float64, both engines.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402
from conftest import assert_same_run as _assert_same_run, regression_data as _data  # noqa: E402
from gdcore import constraints  # noqa: E402

X = np.array([[1.0], [2.0]])


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


# --- names, configs, errors -----------------------------------------------------------------------------


IDENTIFIERS = ["non_neg", "max_norm", "unit_norm", "min_max_norm", "NonNeg", "MaxNorm", "UnitNorm", "MinMaxNorm"]


@pytest.mark.tensorflow
@pytest.mark.parametrize("identifier", IDENTIFIERS)
def test_names_build_what_keras_builds(keras, identifier):
    mine, theirs = constraints.get(identifier), keras.constraints.get(identifier)
    assert constraints.serialize(mine) == keras.constraints.serialize(theirs)


MAKERS = {"NonNeg()": lambda m: m.NonNeg(), "MaxNorm()": lambda m: m.MaxNorm(),
          "MaxNorm(1.5,axis=1)": lambda m: m.MaxNorm(1.5, axis=1), "UnitNorm()": lambda m: m.UnitNorm(),
          "UnitNorm(axis=None)": lambda m: m.UnitNorm(axis=None), "MinMaxNorm()": lambda m: m.MinMaxNorm(),
          "MinMaxNorm(0.5,0.8,0.3)": lambda m: m.MinMaxNorm(0.5, 0.8, rate=0.3),
          "MinMaxNorm(axis=-2)": lambda m: m.MinMaxNorm(0.2, 2, axis=-2)}


@pytest.mark.tensorflow
@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
def test_configs_are_keras_configs(keras, make):
    mine, theirs = make(constraints), make(keras.constraints)
    assert constraints.serialize(mine) == keras.constraints.serialize(theirs)
    assert constraints.deserialize(keras.constraints.serialize(theirs)) == mine
    assert keras.constraints.deserialize(constraints.serialize(mine)).get_config() == theirs.get_config()


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(7, 1), (1, 5), (20, 3), (3, 20), (6,), (40, 9)])
@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
def test_calling_a_constraint_gives_keras_bits(keras, make, shape, dtype):
    if len(shape) == 1 and make(constraints).axis not in (0, -1, None):
        pytest.skip("a bias has one axis")
    w = np.random.default_rng(0).normal(0, 1.2, shape).astype(dtype)
    w.flat[0] = -0.0
    mine = make(constraints)(w, numerics="tensorflow")
    theirs = keras.ops.convert_to_numpy(make(keras.constraints)(keras.ops.convert_to_tensor(w)))
    assert mine.dtype == theirs.dtype and mine.tobytes() == theirs.tobytes(), \
        f"{make(constraints)} on {shape}: gdcore {mine.ravel()[:4]} vs Keras {theirs.ravel()[:4]}"


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"kernel_constraint: unknown constraint 'maxnorm'; known: NonNeg, MaxNorm, "
                                         r"UnitNorm, MinMaxNorm, non_neg, max_norm, unit_norm, min_max_norm"):
        gdcore.layers.Dense(1, kernel_constraint="maxnorm")


@pytest.mark.parametrize("make, message", [
    (lambda: constraints.MaxNorm(-1), "max_value must be a finite number >= 0, got -1"),
    (lambda: constraints.MaxNorm("2"), "max_value must be a finite number >= 0, got '2'"),
    (lambda: constraints.MaxNorm(float("inf")), "max_value must be a finite number >= 0, got inf"),
    (lambda: constraints.MinMaxNorm(min_value=-0.5), "min_value must be a finite number >= 0, got -0.5"),
    (lambda: constraints.MinMaxNorm(0.5, 0.2), "max_value must be >= min_value, got min_value=0.5, max_value=0.2"),
    (lambda: constraints.MinMaxNorm(rate=float("nan")), "rate must be a finite number >= 0, got nan"),
    (lambda: constraints.UnitNorm(axis=2), r"axis must be 0, 1 \(-2, -1\) or None .* got 2"),
    (lambda: gdcore.layers.Dense(2, bias_constraint=constraints.MaxNorm(axis=1)), r"MaxNorm\(axis=1\) on a bias"),
    (lambda: gdcore.layers.Dense(1, bias_constraint=2.0), "bias_constraint must be None, one of NonNeg, .* got 2.0"),
    (lambda: constraints.deserialize({"class_name": "UnitNorm", "config": {"max_value": 1}}),
     r"UnitNorm has no settings \['max_value'\]"),
    (lambda: constraints.deserialize({"class_name": "Clip", "config": {}}), "unknown constraint class 'Clip'"),
])
def test_bad_constraints_are_value_errors_naming_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_dense_config_holds_its_constraints():
    layer = gdcore.layers.Dense(2, kernel_constraint="max_norm", bias_constraint=constraints.NonNeg())
    assert layer.get_config()["kernel_constraint"] == constraints.MaxNorm(2, axis=0)
    assert layer.get_config()["bias_constraint"] == constraints.NonNeg()
    assert gdcore.layers.Dense(2).kernel_constraint is None


# --- one step by hand ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_one_step_by_hand(engine, dtype):
    # Two units, W = [[3, -1]], b = [0, 0], x = [1, 2], y = [[3, -1], [6, -2]]: the data gradient is 0 (y = x W), so
    # SGD leaves W and b, and the constraints alone move them. MaxNorm(2) over axis 0: column norms |3| = 3 and
    # |-1| = 1, so W = [3 * (2 / (3 + 1e-7)), -1 * (1 / (1 + 1e-7))]: 2 (just under in float64) and just under 1 in
    # magnitude (the norm 1 is below max_value, yet epsilon shrinks it). The bias: NonNeg keeps 0.
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(2, kernel_constraint=constraints.MaxNorm(2),
                                                                       bias_constraint="non_neg")],
                              dtype=dtype, engine=engine)
    model.set_weights([np.array([[3.0, -1.0]]), np.array([0.0, 0.0])])
    model.compile(gdcore.optimizers.SGD(learning_rate=1.0), "mse")
    history = model.fit(X, X @ np.array([[3.0, -1.0]]), batch_size=2, epochs=1, verbose=0, shuffle=False).history
    assert history == {"loss": [0.0]}
    t = np.dtype(dtype).type
    kernel, bias = model.get_weights()
    assert kernel.tolist() == [[t(3) * (t(2) / (t(1e-7) + t(3))), t(-1) * (t(1) / (t(1e-7) + t(1)))]]
    assert kernel[0, 0] <= 2 and -1 < kernel[0, 1] < -0.99 and bias.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_non_neg_clips_after_the_update(engine):
    # W = 0.5, b = 0, y = 0 on x = [1, 2]: e = 0.5 x, dL/dW = mean(2 e x) = (1 + 4) / 2 = 2.5, dL/db = mean(2 e) = 1.5.
    # SGD at learning rate 1: W = -2, b = -1.5; NonNeg on both makes them 0. The loss (pre-update) is 0.625.
    model = gdcore.Sequential([gdcore.Input((1,)), gdcore.layers.Dense(1, kernel_constraint="non_neg",
                                                                       bias_constraint="non_neg")],
                              dtype="float64", engine=engine)
    model.set_weights([np.array([[0.5]]), np.array([0.0])])
    model.compile(gdcore.optimizers.SGD(learning_rate=1.0), "mse")
    history = model.fit(X, np.zeros((2, 1)), batch_size=2, epochs=1, verbose=0, shuffle=False).history
    assert history == {"loss": [0.625]}
    assert [w.ravel().tolist() for w in model.get_weights()] == [[0.0], [0.0]]


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_a_frozen_layer_is_not_constrained(engine):
    # Keras constrains the variables it updates: a frozen layer keeps its weights, whatever its constraint says.
    frozen = gdcore.layers.Dense(1, kernel_constraint=constraints.UnitNorm(), trainable=False)
    model = gdcore.Sequential([gdcore.Input((1,)), frozen, gdcore.layers.Dense(1)], dtype="float64", engine=engine)
    model.set_weights([np.array([[5.0]]), np.zeros(1), np.ones((1, 1)), np.zeros(1)])
    model.compile(gdcore.optimizers.SGD(learning_rate=0.01), "mse")
    model.fit(X, X, batch_size=2, epochs=1, verbose=0)
    assert frozen.get_weights()[0].tolist() == [[5.0]]


# --- both engines, live Keras at every epoch -------------------------------------------------------------


@pytest.mark.parametrize("numerics", ["plain", "tensorflow"])
def test_engines_agree_with_constraints(numerics):
    x, y = _data()
    results = []
    for engine in ("numba", "numpy"):
        model = gdcore.Sequential([gdcore.Input((2,)),
                                   gdcore.layers.Dense(9, activation="tanh", kernel_constraint=constraints.MaxNorm(0.8),
                                                       bias_constraint=constraints.MinMaxNorm(0.1, 0.3, rate=0.5)),
                                   gdcore.layers.Dense(3, activation="sigmoid", kernel_constraint=constraints.UnitNorm(1)),
                                   gdcore.layers.Dense(1, kernel_constraint="non_neg",
                                                       bias_constraint=constraints.UnitNorm(None))],
                                  numerics=numerics, engine=engine, seed=4)
        model.compile(gdcore.optimizers.Adam(learning_rate=0.05), "mse", metrics=["mae"])
        history = model.fit(x[:40], y[:40], batch_size=16, epochs=2, verbose=0, shuffle=False,
                            validation_data=(x[40:], y[40:])).history
        results.append((history, [w.tobytes() for w in model.get_weights()], model.evaluate(x, y, verbose=0)))
    assert results[0] == results[1]


def _keras_run(dtype, layers, optimizer, engine="numba", epochs=3):
    """gdcore and its live Keras twin (``reference.keras_driver.to_keras``) trained alike."""
    from reference.keras_driver import _keras_optimizer, keras_dtype, to_keras

    x, y = _data()
    model = gdcore.Sequential([gdcore.Input((2,)), *layers], dtype=dtype, numerics="tensorflow", seed=5, engine=engine)
    model.compile(optimizer, "mse", metrics=["mae"])
    arguments = dict(batch_size=16, epochs=epochs, verbose=0, shuffle=False, validation_data=(x[40:], y[40:]))
    with keras_dtype(dtype) as keras:
        twin = to_keras(model, compile=False)
        twin.compile(optimizer=_keras_optimizer(keras, optimizer), loss="mse", metrics=["mae"], jit_compile=False)
        theirs = twin.fit(x[:40], y[:40], **arguments).history
        their_evaluation = twin.evaluate(x, y, verbose=0)
        their_weights = twin.get_weights()
    mine = model.fit(x[:40], y[:40], **arguments).history
    return mine, theirs, model.get_weights(), their_weights, model.evaluate(x, y, verbose=0), their_evaluation


CASES = {  # name: (hidden layer's kernel and bias constraints, output's, optimizer)
    "max_norm-sgd": ((constraints.MaxNorm(0.7), None), ("max_norm", None),
                     lambda: gdcore.optimizers.SGD(learning_rate=0.1, momentum=0.9)),
    "unit_norm-adam": ((constraints.UnitNorm(), constraints.UnitNorm()), (constraints.UnitNorm(axis=1), None),
                       lambda: gdcore.optimizers.Adam(learning_rate=0.05)),
    "min_max_norm-adam": ((constraints.MinMaxNorm(0.3, 0.9, rate=0.6), constraints.MaxNorm(0.2)),
                          (constraints.MinMaxNorm(axis=None), "non_neg"),
                          lambda: gdcore.optimizers.Adam(learning_rate=0.05, global_clipnorm=0.5)),
    "non_neg-sgd": (("non_neg", "non_neg"), (constraints.MaxNorm(0.5, axis=1), "min_max_norm"),
                    lambda: gdcore.optimizers.SGD(learning_rate=0.05)),
}


@pytest.mark.tensorflow
@pytest.mark.parametrize("engine", ["numba", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES))
def test_constrained_training_bit_identical_to_keras(dtype, case, engine):
    pytest.importorskip("tensorflow")
    if engine == "numpy" and case != "min_max_norm-adam":
        pytest.skip("the NumPy engine is checked on one case (the engines agree bit for bit above)")
    (hidden_kernel, hidden_bias), (out_kernel, out_bias), optimizer = CASES[case]
    layers = [gdcore.layers.Dense(20, activation="tanh", kernel_constraint=hidden_kernel, bias_constraint=hidden_bias),
              gdcore.layers.Dense(1, kernel_constraint=out_kernel, bias_constraint=out_bias)]
    _assert_same_run(*_keras_run(dtype, layers, optimizer(), engine))


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_constraints_with_layer_options_bit_identical_to_keras(dtype):
    # No bias: the bias constraint has nothing to project; frozen: the constraint never runs; with a regularizer.
    pytest.importorskip("tensorflow")
    layers = [gdcore.layers.Dense(8, activation="elu", use_bias=False, kernel_constraint="unit_norm",
                                  bias_constraint="non_neg", kernel_regularizer="l2"),
              gdcore.layers.Dense(4, activation="sigmoid", kernel_constraint=constraints.MaxNorm(0.1), trainable=False),
              gdcore.layers.Dense(1, kernel_constraint=constraints.MaxNorm(0.5), bias_regularizer="l1")]
    _assert_same_run(*_keras_run(dtype, layers, gdcore.optimizers.Adam(learning_rate=0.05, weight_decay=0.01)))


# --- files ------------------------------------------------------------------------------------------------


@pytest.mark.tensorflow
def test_keras_files_both_ways(keras, tmp_path):
    x, y = _data()
    model = gdcore.Sequential([gdcore.Input((2,)),
                               gdcore.layers.Dense(4, activation="relu", kernel_constraint=constraints.MaxNorm(1.5),
                                                   bias_constraint="non_neg"),
                               gdcore.layers.Dense(1, kernel_constraint=constraints.MinMaxNorm(0.1, 0.9, 0.5, axis=1))],
                              numerics="tensorflow", seed=2)
    model.compile(gdcore.optimizers.Adam(0.05), "mse")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "mine.keras")
    theirs = keras.models.load_model(tmp_path / "mine.keras")
    for layer, twin in zip(model.layers, theirs.layers):
        for setting in ("kernel_constraint", "bias_constraint"):
            assert keras.constraints.serialize(getattr(twin, setting)) == \
                constraints.serialize(getattr(layer, setting))
    theirs.save(tmp_path / "theirs.keras")
    back = gdcore.models.load_model(tmp_path / "theirs.keras", numerics="tensorflow")
    assert [(layer.kernel_constraint, layer.bias_constraint) for layer in back.layers] == \
        [(layer.kernel_constraint, layer.bias_constraint) for layer in model.layers]
    # Training goes on the same way on each side of the file.
    arguments = dict(batch_size=16, epochs=2, verbose=0, shuffle=False)
    mine = back.fit(x, y, **arguments).history
    theirs_history = theirs.fit(x, y, **arguments).history
    assert mine["loss"] == theirs_history["loss"]
    for a, b in zip(back.get_weights(), theirs.get_weights()):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_explain_step_projects_as_fit_does(engine):
    """The explained step's weights after are fit's to the bit; ``updated`` holds them before the projection."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    model = gdcore.Sequential([gdcore.Input((2,)),
                               gdcore.layers.Dense(3, activation="tanh", kernel_constraint=gdcore.constraints.MaxNorm(0.3),
                                                   bias_constraint="non_neg"),
                               gdcore.layers.Dense(1, kernel_constraint=gdcore.constraints.UnitNorm(), name="c")],
                              seed=1, dtype="float32", engine=engine, numerics="tensorflow")
    model.compile(gdcore.optimizers.Adam(0.1), "mse")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    step = gdcore.explain.explain_step(model, x, y)
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(step.weights_after, model.get_weights()))
    output = step.parameters[(step.parameters["layer"] == "c") & (step.parameters["tensor"] == "kernel")]
    assert np.linalg.norm(output["after"]) == pytest.approx(1, rel=1e-6)  # UnitNorm's projection ...
    assert np.linalg.norm(output["updated"]) != pytest.approx(1, rel=1e-3)  # ... of a step that left the sphere
    assert "before the constraint" in step.to_markdown()
