"""Classification: a logistic neuron and a softmax layer, trained as Keras 3 trains them.

What is checked here: a logistic step worked by hand; Keras 3's logits
recovery (a sigmoid/softmax output feeding a cross-entropy is trained on its
pre-activation); the engines' equality; live Keras at every epoch; the labels
each loss accepts; the classification data sets.

Under ``numerics="tensorflow"`` training is bit-identical to Keras's ``fit``
at every epoch: TensorFlow's ``Exp``, ``Log``, ``Log1p`` and float32
``Reciprocal`` kernels run Eigen's packet formulas on whole SIMD packets and
the C library on the last ``n % P`` elements, and gdcore evaluates each
element of the loss in the same lane (:func:`gdcore.losses.fill_lanes`;
op-by-op checks in tests/test_cross_entropy_kernels.py).
"""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gdcore  # noqa: E402
from gdcore import activations, losses  # noqa: E402
from gdcore.datasets import make_classification_dataset, make_regression_dataset, make_three_class_dataset  # noqa: E402


def _model(hidden, activation, units, output, optimizer, learning_rate, loss, dtype="float64", engine="numba",
           numerics="tensorflow", features=2):
    layers = [gdcore.Input(shape=(features,))]
    layers += [gdcore.layers.Dense(n, activation=activation) for n in hidden]
    layers.append(gdcore.layers.Dense(units, activation=output))
    model = gdcore.Sequential(layers, dtype=dtype, numerics=numerics, engine=engine, seed=3)
    model.compile(optimizer=gdcore.optimizers.OPTIMIZERS[optimizer](learning_rate=learning_rate), loss=loss)
    return model


@pytest.fixture(scope="module")
def data():
    three = make_three_class_dataset(50, random_state=1)
    x = three[["X1", "X2"]].to_numpy()
    binary = (x[:, 0] + 0.5 * x[:, 1] + np.random.default_rng(0).normal(0, 1, len(x)) > 0).astype(np.float64)
    return x, binary, three["y"].to_numpy()


# --- one step by hand ---------------------------------------------------------------


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_logistic_step_by_hand(engine):
    # Dense(1, "sigmoid") + binary_crossentropy, W = 0.5, b = 0, SGD(0.1), one batch of two samples, float64.
    # x = [1, -2], y = [1, 0]
    # z = xW + b = [0.5, -1.0]  (Keras reads these logits back from the sigmoid: no clipping)
    # per sample, max(z, 0) - z y + log1p(exp(-|z|)):
    #   0.5 - 0.5 + log1p(exp(-0.5)) = log1p(0.6065306597) = 0.4740769842
    #   0.0 + 0.0 + log1p(exp(-1.0)) = log1p(0.3678794412) = 0.3132616875
    # L = (0.4740769842 + 0.3132616875) / 2 = 0.3936693359
    # dL/dz = (sigmoid(z) - y) / B = ([0.6224593312, 0.2689414214] - [1, 0]) / 2 = [-0.1887703344, 0.1344707107]
    #   (as TensorFlow forms it: z >= 0: (-g y - g e/(1+e)) + g; z < 0: -g y + g e/(1+e); g = 1/2, e = exp(-|z|))
    # dL/dW = 1 * -0.1887703344 + (-2) * 0.1344707107 = -0.4577117558
    # dL/db = -0.1887703344 + 0.1344707107 = -0.0542996237
    # W = 0.5 - 0.1 * -0.4577117558 = 0.5457711756;  b = 0 - 0.1 * -0.0542996237 = 0.0054299624
    g = 1 / 2
    e0, e1 = math.exp(-0.5), math.exp(-1.0)
    dz0 = (-g * 1.0 + -((g * (1 / (1 + e0))) * e0)) + g
    dz1 = -g * 0.0 + (g * (1 / (1 + e1))) * e1
    loss = (math.log1p(e0) + math.log1p(e1)) / 2
    model = _model([], None, 1, "sigmoid", "sgd", 0.1, "binary_crossentropy", engine=engine, numerics="plain",
                   features=1)
    model.set_weights([np.array([[0.5]]), np.array([0.0])])
    history = model.fit(np.array([[1.0], [-2.0]]), np.array([1, 0]), batch_size=2, epochs=1, shuffle=False, verbose=0)
    kernel, bias = model.get_weights()
    assert history.history["loss"] == [loss]
    assert kernel[0, 0] == 0.5 - 0.1 * (1.0 * dz0 + -2.0 * dz1)
    assert bias[0] == 0.0 - 0.1 * (dz0 + dz1)
    assert (loss, kernel[0, 0], bias[0]) == pytest.approx((0.3936693359, 0.5457711756, 0.0054299624), abs=1e-10)
    assert model.predict(np.array([[1.0]]), verbose=0)[0, 0] == pytest.approx(1 / (1 + math.exp(-kernel[0, 0] - bias[0])))


def test_gradient_of_the_logits_path_is_p_minus_y():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(40, 1)) * 6
    y = (rng.random((40, 1)) > 0.5).astype(float)
    grad = losses.output_grad(losses.BINARY_CROSSENTROPY_FROM_LOGITS, y, z)
    # p - y cancels where p is close to y: an ulp of 1/40 (3.5e-18) absolute
    np.testing.assert_allclose(grad, (1 / (1 + np.exp(-z)) - y) / 40, rtol=1e-12, atol=1e-17)
    z3, labels = rng.normal(size=(40, 3)) * 4, np.eye(3)[rng.integers(0, 3, 40)]
    softmax = np.exp(z3) / np.exp(z3).sum(axis=1, keepdims=True)
    grad = losses.output_grad(losses.CATEGORICAL_CROSSENTROPY_FROM_LOGITS, labels, z3)
    np.testing.assert_allclose(grad, (softmax - labels) / 40, rtol=1e-12, atol=1e-17)


def test_clipping_stops_the_gradient_outside_epsilon():
    y_true = np.array([[0.0], [1.0], [1.0], [0.0]])
    y_pred = np.array([[1.0], [0.0], [1e-7], [0.5]])  # beyond both clips, on the lower clip, inside
    grad = losses.output_grad(losses.BINARY_CROSSENTROPY, y_true, y_pred)
    assert grad[0, 0] == 0 and grad[1, 0] == 0 and grad[2, 0] != 0 and grad[3, 0] == pytest.approx(0.5)
    # Called, a loss computes in floatx() as Keras's does: in float32 the upper clip 1 - 1e-7 rounds to 1 - 2**-23.
    assert losses.BINARY_CROSSENTROPY(y_true[:1], y_pred[:1]) == np.float32(-math.log(2.0 ** -23))
    gdcore.config.set_floatx("float64")
    try:
        assert losses.BINARY_CROSSENTROPY(y_true[:1], y_pred[:1]) == pytest.approx(-math.log(1e-7), rel=1e-6)
    finally:
        gdcore.config.set_floatx("float32")


def test_a_sigmoid_or_softmax_output_trains_on_its_logits():
    # With a logit of 30 and label 0 the clipped loss would be -log(1e-7) = 16.1; Keras's fit reports 30.
    for units, output, loss, y in [(1, "sigmoid", "binary_crossentropy", [0]),
                                   (3, "softmax", "categorical_crossentropy", [[0, 1, 0]]),
                                   (3, "softmax", "sparse_categorical_crossentropy", [1])]:
        model = _model([], None, units, output, "sgd", 0.0 + 1e-9, loss, features=1)
        kernel = np.zeros((1, units))
        kernel[0, 0] = 30.0
        model.set_weights([kernel, np.zeros(units)])
        assert model.evaluate(np.ones((1, 1)), np.array(y), verbose=0) == pytest.approx(30.0, rel=1e-12)
    linear = _model([], None, 1, "linear", "sgd", 0.1, "binary_crossentropy", features=1)
    linear.set_weights([np.array([[30.0]]), np.zeros(1)])  # a linear output is taken as probabilities: clipped
    assert linear.evaluate(np.ones((1, 1)), np.array([0]), verbose=0) == pytest.approx(-math.log(1e-7), rel=1e-6)


# --- engines and Keras ----------------------------------------------------------------

# id: (hidden, hidden activation, output units, output activation, optimizer, learning rate, loss, labels)
CASES = {
    "logistic-sgd-bce": ([], None, 1, "sigmoid", "sgd", 0.1, "binary_crossentropy", "binary"),
    "tanh4-sigmoid-adam-bce": ([4], "tanh", 1, "sigmoid", "adam", 0.05, "binary_crossentropy", "binary"),
    "softmax-sgd-sparse": ([], None, 3, "softmax", "sgd", 0.1, "sparse_categorical_crossentropy", "sparse"),
    "sigmoid4-softmax-adam-onehot": ([4], "sigmoid", 3, "softmax", "adam", 0.05, "categorical_crossentropy", "one_hot"),
    "control-sigmoid4-sigmoid-sgd-mse": ([4], "sigmoid", 1, "sigmoid", "sgd", 0.1, "mse", "binary"),
}


def _labels(data, kind):
    x, binary, classes = data
    return {"binary": binary, "sparse": classes, "one_hot": np.eye(3)[classes]}[kind]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["logistic-sgd-bce", "softmax-sgd-sparse"])
def test_engines_give_the_same_bits(case, dtype, data):
    *config, kind = CASES[case]
    y = _labels(data, kind)
    runs = []
    for engine in ("numpy", "numba"):
        model = _model(*config, dtype=dtype, engine=engine)
        history = model.fit(data[0], y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        runs.append((history.history["loss"], [w.tobytes() for w in model.get_weights()],
                     model.predict(data[0], verbose=0).tobytes()))
    assert runs[0] == runs[1]


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES))
def test_training_follows_keras_at_every_epoch(case, dtype, data):
    from reference.compare import ulp_distance
    from reference.configs import epoch_orders
    from reference.gdcore_driver import run_gdcore
    from reference.keras_driver import run_keras

    *config, kind = CASES[case]
    x, y = data[0], _labels(data, kind)
    model = _model(*config, dtype=dtype)
    arguments = {"orders": epoch_orders(len(x), 5, seed=0), "batch_size": 16}  # 50 = 3 * 16 + 2: a partial batch
    mine, theirs = run_gdcore(model, x, y, **arguments), run_keras(model, x, y, feed="numpy", **arguments)
    assert mine.epochs == theirs.epochs == 5
    for epoch in range(1, 6):
        ours = mine.quantities(epoch)
        for name, value in theirs.quantities(epoch).items():
            a, b = np.asarray(ours[name]), np.asarray(value, dtype=dtype)
            assert a.tobytes() == b.tobytes(), f"epoch {epoch}: {name} is {ulp_distance(a, b).max()} ulp from Keras"


# --- labels each loss accepts -----------------------------------------------------------


@pytest.mark.parametrize("units, output, loss, y, message", [
    (1, "sigmoid", "binary_crossentropy", [0, 1, 2, 1], r"y must hold 0/1 labels for BinaryCrossentropy; got 2\.0"),
    (3, "softmax", "sparse_categorical_crossentropy", [0, 1, 3, 1],
     r"y must hold integer class indices in \[0, 3\) .*got 3 at index 2"),
    (3, "softmax", "sparse_categorical_crossentropy", [0, 1.5, 2, 1], r"integer class indices .*got 1\.5 at index 1"),
    (3, "softmax", "categorical_crossentropy", [[1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 0, 0]],
     r"y rows must be one-hot .*row 1 is \[0\.0, 1\.0, 1\.0\] \(sum 2\.0\)"),
    (3, "softmax", "categorical_crossentropy", [0, 1, 2, 1], r"y must have shape \(n_samples, 3\)"),
])
def test_bad_labels_are_refused_by_name(units, output, loss, y, message):
    model = _model([], None, units, output, "sgd", 0.1, loss, features=1)
    with pytest.raises(ValueError, match=message):
        model.fit(np.zeros((4, 1)), np.array(y), verbose=0)


def test_softmax_on_one_unit_is_refused():
    with pytest.raises(ValueError, match=r"activation='softmax' on a Dense layer of units=1"):
        gdcore.layers.Dense(1, activation="softmax")


def test_keras_style_constructors():
    smoothed = losses.BinaryCrossentropy(label_smoothing=0.2)
    assert smoothed.id == losses.BINARY_CROSSENTROPY.id and smoothed.label_smoothing == 0.2
    assert losses.CategoricalCrossentropy(from_logits=True) is not None
    assert losses.SparseCategoricalCrossentropy(from_logits=True) is losses.SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS
    assert losses.get("bce") is losses.BINARY_CROSSENTROPY and losses.get("SCCE").targets == "sparse"
    assert activations.get("softmax").row_wise
    # label smoothing moves the targets to y (1 - s) + s / 2, as Keras does, before the loss (float32 constants)
    smoothed_targets = np.float32([[0.0], [1.0]]) * np.float32(0.8) + np.float32(0.1)
    assert losses.prepare_targets(smoothed, np.array([0.0, 1.0]), 1, np.float32).tobytes() == smoothed_targets.tobytes()
    with pytest.raises(ValueError, match=r"label_smoothing must be a number in \[0, 1\], got 1\.5"):
        losses.BinaryCrossentropy(label_smoothing=1.5)


# --- data --------------------------------------------------------------------------------


def test_classification_data_is_the_regression_data_thresholded():
    regression, classes = make_regression_dataset(), make_classification_dataset()
    np.testing.assert_array_equal(classes["X"], regression["X"])
    np.testing.assert_array_equal(classes["y"], (regression["y"] > 2.5).astype(np.int64))
    assert classes["y"].dtype == np.int64 and 0 < classes["y"].mean() < 1
    three = make_three_class_dataset()
    assert list(three.columns) == ["X1", "X2", "y"] and three["y"].value_counts().to_dict() == {0: 50, 1: 50, 2: 50}
    assert three.equals(make_three_class_dataset()) and not three.equals(make_three_class_dataset(random_state=1))
    with pytest.raises(ValueError, match="n_samples must be an integer >= 3"):
        make_three_class_dataset(2)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        make_classification_dataset(threshold=float("nan"))


# --- scikit-learn ---------------------------------------------------------------------------


@pytest.mark.sklearn
def test_batch_size_one_is_sgdclassifier_per_epoch():
    # SGDClassifier's log loss with labels in {-1, 1}: dloss/dz = -y / (exp(y z) + 1) = sigmoid(z) - [y = 1], the
    # logistic neuron's gradient at B = 1; its update w -= eta0 * dloss * x is SGD's.
    from sklearn.linear_model import SGDClassifier

    data = make_classification_dataset(40, random_state=7)
    x, y = data[["X"]].to_numpy() / 4, data["y"].to_numpy()
    model = _model([], None, 1, "sigmoid", "sgd", 0.1, "binary_crossentropy", numerics="plain", features=1)
    model.set_weights([np.array([[0.2]]), np.array([-0.1])])
    theirs = SGDClassifier(loss="log_loss", penalty=None, learning_rate="constant", eta0=0.1, shuffle=False,
                           average=False, tol=None, max_iter=1)
    theirs.partial_fit(x[:1], y[:1], classes=[0, 1])  # creates the attributes; then started from our weights
    theirs.coef_[:], theirs.intercept_[:], theirs.t_ = 0.2, -0.1, 1.0
    for epoch in range(5):
        model.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0)
        theirs.partial_fit(x, y)
        kernel, bias = model.get_weights()
        np.testing.assert_allclose([kernel[0, 0], bias[0]], [theirs.coef_[0, 0], theirs.intercept_[0]], rtol=1e-13,
                                   err_msg=f"epoch {epoch + 1}")


@pytest.mark.sklearn
def test_a_long_run_reaches_logisticregressions_optimum():
    from sklearn.linear_model import LogisticRegression

    data = make_classification_dataset()
    x, y = data[["X"]].to_numpy() / 4, data["y"].to_numpy()
    # LogisticRegression(penalty=None), the "Gauss's answer" of classification (C=inf is its current spelling).
    optimum = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(x, y)
    target = np.array([optimum.coef_[0, 0], optimum.intercept_[0]])
    model = _model([], None, 1, "sigmoid", "sgd", 2.0, "binary_crossentropy", numerics="plain", features=1)
    model.set_weights([np.zeros((1, 1)), np.zeros(1)])
    distances = []
    for _ in range(4):  # measured: 1.3e-2, 9.9e-5, 7.8e-7, 7.9e-9 (then the optimiser's own tolerance, ~7e-9)
        model.fit(x, y, batch_size=len(x), epochs=100, shuffle=False, verbose=0)
        kernel, bias = model.get_weights()
        distances.append(float(np.linalg.norm([kernel[0, 0] - target[0], bias[0] - target[1]])))
    assert all(later < earlier for earlier, later in zip(distances, distances[1:])), distances
    assert distances[-1] < 5e-8, distances


def test_explain_step_shows_the_logistic_step_as_it_runs():
    model = _model([], None, 1, "sigmoid", "sgd", 0.1, "binary_crossentropy", engine="numpy", numerics="plain",
                   features=1)
    model.set_weights([np.array([[0.5]]), np.array([0.0])])
    x, y = np.array([[1.0], [-2.0]]), np.array([1, 0])
    explained = gdcore.explain.explain_step(model, x, y)
    # The loss reads the logits z = [0.5, -1]; dL/dz = (sigmoid(z) - y) / B, the output layer's delta.
    assert explained.loss_name == "binary_crossentropy"
    assert explained.training_loss_name == "binary_crossentropy_from_logits" and explained.logits_recovered
    np.testing.assert_allclose(explained.samples["logit"], [0.5, -1.0])
    np.testing.assert_allclose(explained.samples["probability"], 1 / (1 + np.exp(-np.array([0.5, -1.0]))), rtol=1e-15)
    np.testing.assert_allclose(explained.activations["delta"], (1 / (1 + np.exp(-np.array([0.5, -1.0]))) - [1, 0]) / 2,
                               rtol=1e-15)
    assert r"\sigma(z_i) - y_i" in explained.to_markdown()
    model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_array_equal(explained.parameters["after"], np.concatenate([w.ravel() for w in model.get_weights()]))


@pytest.mark.tensorflow
def test_a_classifier_saves_and_loads_both_ways(tmp_path):
    keras = pytest.importorskip("keras")
    model = _model([], None, 3, "softmax", "adam", 0.05, losses.CategoricalCrossentropy(label_smoothing=0.1),
                   dtype="float32")
    model.fit(np.zeros((4, 2)), np.eye(3)[[0, 1, 2, 1]], verbose=0)  # optimizer state to save
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    theirs = keras.saving.load_model(path)
    assert isinstance(theirs.loss, keras.losses.CategoricalCrossentropy) and theirs.loss.label_smoothing == 0.1
    x = np.linspace(-1, 1, 10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_allclose(theirs.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    theirs.save(str(tmp_path / "back.keras"))
    back = gdcore.models.load_model(str(tmp_path / "back.keras"))
    assert back.loss.name == "categorical_crossentropy" and back.loss.label_smoothing == 0.1
    assert back.dense_layers[-1].activation is activations.SOFTMAX


@pytest.mark.parametrize("loss_name", ["categorical_crossentropy", "categorical_crossentropy_from_logits",
                                       "sparse_categorical_crossentropy", "binary_crossentropy"])
def test_softmax_network_gradients_match_central_differences(loss_name):
    # 2-3-3 with a softmax hidden layer and output (as written: the softmax's own gradient, no logits recovery).
    from gdcore import _numpy_engine

    loss = losses.get(loss_name)
    units = 1 if loss.targets == "binary" else 3
    output = "sigmoid" if units == 1 else ("linear" if loss.from_logits else "softmax")
    model = _model([3], "softmax", units, output, "sgd", 0.1, loss, numerics="plain", engine="numpy")
    rng = np.random.default_rng(11)
    x = rng.normal(size=(7, 2))
    y = losses.prepare_targets(loss, rng.integers(0, units + (units == 1), 7) if units == 1 or loss.targets == "sparse"
                               else np.eye(3)[rng.integers(0, 3, 7)], units, np.float64)
    profile, params, layout = model.profile, model.params, model.layout

    def loss_at(values):
        return losses.batch_loss(loss, profile, y, _numpy_engine.forward(profile, x, values, layout)[-1])

    outputs = _numpy_engine.forward(profile, x, params, layout)
    analytic = _numpy_engine.backward(profile, outputs, params, layout, losses.output_grad(loss, y, outputs[-1]))
    numeric = np.empty_like(params)
    for index in range(params.size):
        plus, minus = params.copy(), params.copy()
        plus[index] += 1e-6
        minus[index] -= 1e-6
        numeric[index] = (loss_at(plus) - loss_at(minus)) / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


# --- sample and class weights ---------------------------------------------------------------


@pytest.mark.tensorflow
@pytest.mark.parametrize("case, dtype", [("logistic-sgd-bce", "float32"), ("logistic-sgd-bce", "float64"),
                                         ("softmax-sgd-sparse", "float64"), ("sigmoid4-softmax-adam-onehot", "float32")])
def test_weighted_cross_entropies_follow_keras(case, dtype, data):
    """sample_weight (fit, validation, evaluate) and class_weight, as Keras 3 weighs a cross-entropy."""
    from reference.keras_driver import _keras_optimizer, keras_dtype, to_keras

    *config, kind = CASES[case]
    x, y = data[0], _labels(data, kind)
    weights = np.random.default_rng(2).uniform(0, 2, len(x))
    weights[::7] = 0.0  # zero weights count in the batch size, as Keras counts them
    model = _model(*config, dtype=dtype)
    model.compile(model.optimizer, config[-1], metrics=["accuracy"])
    weighting = {"class_weight": {0: 0.5, 2: 3.0}} if "onehot" in case or "sparse" in case else \
        {"sample_weight": weights[:40]}
    arguments = dict(batch_size=16, epochs=3, verbose=0, shuffle=False,
                     validation_data=(x[40:], y[40:], weights[40:]), **weighting)
    with keras_dtype(dtype) as keras:
        twin = to_keras(model, compile=False)
        twin.compile(optimizer=_keras_optimizer(keras, model.optimizer), loss=config[-1], metrics=["accuracy"],
                     jit_compile=False)
        theirs = twin.fit(x[:40], y[:40], **arguments).history
        their_weights = twin.get_weights()
        their_eval = twin.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
    mine = model.fit(x[:40], y[:40], **arguments).history
    my_eval = model.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
    assert list(mine) == list(theirs)
    for key in theirs:
        assert mine[key] == theirs[key], key
    for a, b in zip(model.get_weights(), their_weights):
        assert a.tobytes() == b.tobytes()
    assert my_eval == their_eval
