"""gdcore.plot: each function draws the expected artists, labelled, and returns them without showing."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402

import gdcore  # noqa: E402
from gdcore import plot  # noqa: E402
from gdcore.trace import fit_trace  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def train():
    return gdcore.datasets.make_regression_dataset(100, noise=1.25, random_state=42)


def linear_neuron(optimizer):
    model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(1, kernel_initializer=gdcore.initializers.RandomNormal(0, 0.25, seed=123))], seed=0)
    model.compile(optimizer=optimizer, loss="mse")
    return model


@pytest.fixture(scope="module")
def traces(train):
    gdcore.backend.clear_session()  # each model's layer is "dense", as in a fresh Keras session
    sgd = fit_trace(linear_neuron(gdcore.optimizers.SGD(0.01)), train[["X"]], train["y"], epochs=8, batch_size=20, per_step=True)
    gdcore.backend.clear_session()
    adam = fit_trace(linear_neuron(gdcore.optimizers.Adam(0.1)), train[["X"]], train["y"], epochs=8, batch_size=20, per_step=True)
    return {"SGD": sgd, "Adam": adam}


def legend_texts(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_plot_fit(train, traces):
    model = traces["SGD"].model
    fits = {"least squares": gdcore.linear.least_squares(train[["X"]], train["y"]), "neuron": model,
            "at the data": model.predict(train[["X"]])[:, 0]}
    ax = plot.plot_fit(train["X"], train["y"], fits)
    assert isinstance(ax, plt.Axes)
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(points) == 1 and len(points[0].get_offsets()) == 100
    assert len(ax.lines) == 3
    assert legend_texts(ax) == ["data", "least squares", "neuron", "at the data"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("X", "y")
    # The model line is the model's prediction on the grid.
    line_x, line_y = ax.lines[1].get_data()
    np.testing.assert_allclose(line_y, model.predict(line_x[:, None])[:, 0], rtol=1e-6)
    # Predictions at the data are drawn in order of x.
    assert np.all(np.diff(ax.lines[2].get_xdata()) >= 0)


def test_plot_losses_overlays_runs(traces):
    ax = plot.plot_losses(traces, log_scale=True)
    assert ax.get_yscale() == "log"
    assert len(ax.lines) == 4  # 2 runs x (history loss, end-of-epoch loss)
    assert legend_texts(ax) == ["SGD: loss (Keras history)", "SGD: loss at end of epoch",
                                "Adam: loss (Keras history)", "Adam: loss at end of epoch"]
    assert ax.get_xlabel() == "epoch" and "loss" in ax.get_ylabel()
    history_line = ax.lines[0]
    np.testing.assert_array_equal(history_line.get_xdata(), np.arange(1, 9))
    np.testing.assert_array_equal(history_line.get_ydata(), traces["SGD"].history.history["loss"])

    ax = plot.plot_losses({"a": traces["SGD"].history, "b": [3.0, 2.0, 1.0]})
    assert legend_texts(ax) == ["a", "b"]
    with pytest.raises(ValueError, match="val_loss"):
        plot.plot_losses(traces["SGD"], metrics=["val_loss"])


def test_plot_residuals(train):
    ls = gdcore.linear.least_squares(train[["X"]], train["y"])
    ax = plot.plot_residuals(train["X"], train["y"], ls.predict(train[["X"]]))
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 1], train["y"] - ls.predict(train[["X"]])[:, 0])
    assert ax.get_xlabel() == "X" and "residual" in ax.get_ylabel()
    assert legend_texts(ax) == ["zero", "residuals"]


def test_plot_weights(traces):
    trace = traces["SGD"]
    ax = plot.plot_weights(trace, reference={"dense/kernel[0,0]": 1.03}, labels={"dense/kernel[0,0]": "w", "dense/bias[0]": "b"})
    assert len(ax.lines) == 3
    assert legend_texts(ax) == ["w", "b", "w = 1.03 (reference)"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(9))
    ax = plot.plot_weights(traces, parameters=["dense/bias[0]"], per="step")
    assert legend_texts(ax) == ["SGD", "Adam"] and ax.get_xlabel() == "step"
    assert len(ax.lines[0].get_xdata()) == 1 + 8 * 5


def test_animate_predictions_advances(tmp_path, traces):
    trace = traces["SGD"]
    anim = plot.animate_predictions(trace, max_frames=4)
    assert isinstance(anim, FuncAnimation)
    frames = list(anim.new_frame_seq())
    assert frames[0] == 0 and frames[-1] == 8 and len(frames) <= 4
    line = anim._fig.axes[0].lines[0]
    anim._func(frames[0])
    first = np.array(line.get_ydata())
    anim._func(frames[-1])
    last = np.array(line.get_ydata())
    assert not np.allclose(first, last)
    final = trace.predictions.query("epoch == 8").sort_values("X")["y_pred"].to_numpy()
    np.testing.assert_array_equal(last, final)
    assert "epoch 8" in anim._fig.axes[0].texts[0].get_text()
    anim.save(tmp_path / "fit.gif", writer="pillow", fps=2)
    from PIL import Image

    with Image.open(tmp_path / "fit.gif") as gif:
        assert gif.n_frames == len(frames)
    assert "<script" in anim.to_jshtml()


def test_loss_surface_and_paths(train, traces):
    ax = plot.plot_loss_surface(train["X"], train["y"], traces)
    assert any(isinstance(artist, ContourSet) for artist in ax.get_children() + ax.collections)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("w (kernel)", "b (bias)")
    texts = legend_texts(ax)
    assert texts == ["SGD (40 steps)", "Adam (40 steps)", "least squares optimum"]
    path_w, path_b = ax.lines[0].get_data()
    assert len(path_w) == 41
    # The path descends: the full-data loss at its end is well below the start.
    start = plot.loss_surface(train["X"], train["y"], path_w[0], path_b[0])
    end = plot.loss_surface(train["X"], train["y"], path_w[-1], path_b[-1])
    assert end < 0.75 * start
    # The surface formula is the MSE.
    w, b = 0.7, 0.3
    assert plot.loss_surface(train["X"], train["y"], w, b) == pytest.approx(np.mean((train["y"] - w * train["X"] - b) ** 2))

    ax = plot.plot_loss_surface(train["X"], train["y"], {"path": np.array([[0.0, 0.0], [0.5, 0.5]])}, loss="mae", colorbar=False)
    assert legend_texts(ax)[-1] == "least absolute deviations optimum"
    star = ax.lines[-1].get_data()
    optimum = plot.loss_surface(train["X"], train["y"], star[0][0], star[1][0], loss="mae")
    for dw, db in [(0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)]:
        assert optimum <= plot.loss_surface(train["X"], train["y"], star[0][0] + dw, star[1][0] + db, loss="mae")


def test_loss_surface_needs_a_linear_neuron(train):
    model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(2), gdcore.layers.Dense(1)], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    trace = fit_trace(model, train[["X"]], train["y"], epochs=1)
    with pytest.raises(ValueError, match="linear neuron"):
        plot.plot_loss_surface(train["X"], train["y"], trace)


# --- classification -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_class():
    return gdcore.datasets.make_classification_dataset()


@pytest.fixture(scope="module")
def three_class():
    return gdcore.datasets.make_three_class_dataset()


def classifier(n_features, classes, loss, optimizer=None, seed=0):
    gdcore.backend.clear_session()
    model = gdcore.Sequential([gdcore.Input(shape=(n_features,)),
                               gdcore.layers.Dense(classes, activation="sigmoid" if classes == 1 else "softmax")],
                              seed=seed, engine="numpy")
    model.compile(optimizer=optimizer or gdcore.optimizers.Adam(0.1), loss=loss)
    return model


@pytest.mark.tensorflow
def test_cross_entropy_surface_is_what_keras_computes(two_class):
    """Keras's evaluate reads the sigmoid's logits (no clip); keras.losses.binary_crossentropy on bare p clips."""
    import keras

    x, y = two_class[["X"]].to_numpy(), two_class["y"].to_numpy()
    # float32, Keras's floatx: the loss then gets the sigmoid's own output tensor, which carries its logits.
    neuron = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, activation="sigmoid")])
    neuron.compile(loss="binary_crossentropy")
    for w, b in [(0.9, -0.2), (-1.5, 0.5), (6.0, 2.0)]:   # the last saturates: |z| reaches 26, beyond the clip
        neuron.set_weights([np.array([[w]]), np.array([b])])
        evaluated = neuron.evaluate(x, y, batch_size=len(x), verbose=0)
        assert plot.loss_surface(x, y, w, b, "binary_crossentropy") == pytest.approx(evaluated, rel=1e-6)
        p = 1 / (1 + np.exp(-(w * x[:, 0] + b)))
        clipped = float(keras.ops.mean(keras.losses.binary_crossentropy(y[:, None].astype(np.float64), p[:, None])))
        assert plot.loss_surface(x, y, w, b, "binary_crossentropy", clip=True) == pytest.approx(clipped, rel=1e-12)
    # Only the saturated point tells the two apart.
    unclipped, clipped = (plot.loss_surface(x, y, 6.0, 2.0, "binary_crossentropy", clip=c) for c in (False, True))
    assert abs(unclipped - clipped) > 1e-3 * unclipped
    assert plot.loss_surface(x, y, 0.9, -0.2, "bce", clip=True) == pytest.approx(plot.loss_surface(x, y, 0.9, -0.2, "bce"), rel=1e-12)


@pytest.mark.sklearn
def test_cross_entropy_surface_and_the_logistic_regression_optimum(two_class):
    from sklearn.linear_model import LogisticRegression

    model = classifier(1, 1, "binary_crossentropy", gdcore.optimizers.SGD(0.5))
    trace = fit_trace(model, two_class[["X"]], two_class["y"], epochs=10, batch_size=20, per_step=True)
    ax = plot.plot_loss_surface(two_class["X"], two_class["y"], {"SGD": trace}, loss="binary_crossentropy")
    assert legend_texts(ax) == ["SGD (50 steps)", "logistic regression optimum"]
    assert "binary cross-entropy" in ax.get_title() and r"\sigma" in ax.get_title()
    star_w, star_b = (values[0] for values in ax.lines[-1].get_data())
    # No penalty: C = inf (scikit-learn 1.8 deprecates penalty=None for it).
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(two_class[["X"]], two_class["y"])
    np.testing.assert_allclose([star_w, star_b], [reference.coef_[0, 0], reference.intercept_[0]], rtol=1e-5)
    # The star is the surface's minimum, and the path descends towards it.
    surface = lambda w, b: plot.loss_surface(two_class["X"], two_class["y"], w, b, "binary_crossentropy")  # noqa: E731
    for dw, db in [(0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)]:
        assert surface(star_w, star_b) < surface(star_w + dw, star_b + db)
    path_w, path_b = ax.lines[0].get_data()
    assert surface(path_w[-1], path_b[-1]) < surface(path_w[0], path_b[0])
    # The surface at the trained weights is the loss fit's evaluate reports (float32 there).
    assert surface(path_w[-1], path_b[-1]) == pytest.approx(
        model.evaluate(two_class[["X"]], two_class["y"], batch_size=100, verbose=0), rel=1e-5)
    with pytest.raises(ValueError, match="0/1 labels"):
        plot.loss_surface(two_class["X"], two_class["X"], 1.0, 0.0, "binary_crossentropy")
    with pytest.raises(ValueError, match="loss must be"):
        plot.loss_surface(two_class["X"], two_class["y"], 1.0, 0.0, "hinge")


def test_decision_boundary_one_feature(two_class):
    model = classifier(1, 1, "binary_crossentropy")
    model.set_weights([np.array([[2.0]]), np.array([-1.0])])   # p = 0.5 at x = 0.5
    ax = plot.plot_decision_boundary(model, two_class[["X"]], two_class["y"])
    boundaries = [line for line in ax.lines if line.get_label() == "decision boundary"]
    assert len(boundaries) == 1
    assert boundaries[0].get_xdata()[0] == pytest.approx(0.5, abs=0.05)   # within a grid step
    curve = next(line for line in ax.lines if line.get_label() == "P(class 1 | x)")
    grid, probability = curve.get_data()
    np.testing.assert_allclose(probability, 1 / (1 + np.exp(-(2 * grid - 1))), rtol=1e-6)
    accuracy = np.mean(((2 * two_class["X"] - 1) > 0) == two_class["y"])
    assert f"accuracy {accuracy:.1%}" in ax.get_title()
    assert {"class 0", "class 1", "decision boundary"} <= set(legend_texts(ax))
    assert ax.get_xlabel() == "X"


def test_decision_boundary_two_features_three_classes(three_class):
    model = classifier(2, 3, "sparse_categorical_crossentropy")
    fit_trace(model, three_class[["X1", "X2"]], three_class["y"], epochs=10, batch_size=30)
    ax = plot.plot_decision_boundary(model, three_class[["X1", "X2"]], three_class["y"], class_names=["a", "b", "c"])
    predicted = np.argmax(model.predict(three_class[["X1", "X2"]], verbose=0), axis=1)
    wrong = int(np.sum(predicted != three_class["y"]))
    texts = legend_texts(ax)
    assert texts[:4] == ["decision boundary", "a", "b", "c"]
    assert (f"misclassified ({wrong})" in texts) == (wrong > 0)
    assert f"accuracy {np.mean(predicted == three_class['y']):.1%}" in ax.get_title()
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("X1", "X2")
    assert sum(isinstance(artist, ContourSet) for artist in ax.get_children() + ax.collections) >= 3  # regions + boundaries
    # One-hot labels and a scikit-learn classifier draw the same way.
    from sklearn.linear_model import LogisticRegression

    sklearn_model = LogisticRegression().fit(three_class[["X1", "X2"]].to_numpy(), three_class["y"])
    ax = plot.plot_decision_boundary(sklearn_model, three_class[["X1", "X2"]].to_numpy(), np.eye(3)[three_class["y"]])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x0", "x1")
    with pytest.raises(ValueError, match="one or two features"):
        plot.plot_decision_boundary(lambda points: np.full((len(points), 1), 0.5), np.zeros((4, 3)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="same number of samples"):
        plot.plot_decision_boundary(model, three_class[["X1", "X2"]], three_class["y"][:10])
    with pytest.raises(ValueError, match="threshold must be a number in"):
        plot.plot_decision_boundary(model, three_class[["X1", "X2"]], three_class["y"], threshold=1.5)
    with pytest.raises(ValueError, match="resolution must be an integer >= 2"):
        plot.plot_decision_boundary(model, three_class[["X1", "X2"]], three_class["y"], resolution=1)
    with pytest.raises(TypeError, match="model must be a gdcore model"):
        plot.plot_decision_boundary("model", three_class[["X1", "X2"]], three_class["y"])


def test_animate_decision_boundary_advances(tmp_path, three_class):
    model = classifier(2, 3, "sparse_categorical_crossentropy", gdcore.optimizers.SGD(0.05))
    trace = fit_trace(model, three_class[["X1", "X2"]], three_class["y"], epochs=6, batch_size=50)
    anim = plot.animate_decision_boundary(trace, max_frames=3, resolution=40)
    assert isinstance(anim, FuncAnimation)
    frames = list(anim.new_frame_seq())
    assert frames[0] == 0 and frames[-1] == 6
    ax = anim._fig.axes[0]
    anim._func(frames[-1])
    final = np.mean(np.argmax(model.predict(three_class[["X1", "X2"]], verbose=0), axis=1) == three_class["y"])
    assert ax.get_title().startswith("epoch 6") and f"accuracy {final:.1%}" in ax.get_title()
    end_loss = trace.losses.query("metric == 'loss_end_of_epoch' and epoch == 6")["value"].iloc[0]
    assert f"{end_loss:.4g}" in ax.get_title()
    anim._func(frames[0])
    assert ax.get_title().startswith("epoch 0")
    anim.save(tmp_path / "boundary.gif", writer="pillow", fps=2)
    from PIL import Image

    with Image.open(tmp_path / "boundary.gif") as gif:
        assert gif.n_frames == len(frames)


def test_plot_confusion_matrix(three_class):
    from gdcore.trace import confusion_matrix

    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0])
    ax = plot.plot_confusion_matrix(matrix, normalize=True)
    cells = [text.get_text() for text in ax.texts]
    assert cells[:3] == ["1\n50%", "1\n50%", "0\n0%"] and cells[-1] == "2\n67%"
    assert "accuracy 66.7% of 6 samples" in ax.get_title()
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")
    with pytest.raises(TypeError, match="confusion_matrix"):
        plot.plot_confusion_matrix(np.eye(3))
