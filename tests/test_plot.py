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
