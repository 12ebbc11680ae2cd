r"""Matplotlib views of a training run: data and fits, losses, residuals, weights, animations, loss surfaces.

Every function draws on the ``ax`` it is given (or a new figure) and returns
the ``Axes`` (``animate_predictions`` returns a
``matplotlib.animation.FuncAnimation``); none calls ``plt.show()``.
Traces come from :func:`gdcore.trace.fit_trace`.

The loss surface of the linear neuron :math:`\hat y = w x + b` is computed
in float64 from its definition,

.. math::

    L_{\text{MSE}}(w, b) = \frac1n\sum_i (y_i - w x_i - b)^2, \qquad
    L_{\text{MAE}}(w, b) = \frac1n\sum_i |y_i - w x_i - b|,

on all ``n`` samples: the surface a full-batch step would descend. A
minibatch step follows the gradient of its own batch's surface, which is why
its path zigzags across this one.

The logistic neuron :math:`p = \sigma(w x + b)` (``Dense(1, "sigmoid")``)
with ``loss="binary_crossentropy"`` has, as Keras evaluates it in ``fit`` and
``evaluate`` (on the logits :math:`z = w x + b`, :func:`gdcore.losses.training_loss`),

.. math::

    L_{\text{BCE}}(w, b) = \frac1n\sum_i \max(z_i, 0) - z_i y_i + \log(1 + e^{-|z_i|})
    = -\frac1n\sum_i y_i \log p_i + (1 - y_i)\log(1 - p_i),

with no clipping. ``clip=True`` gives instead what Keras's
``binary_crossentropy(y, p)`` returns for probabilities that do not carry
their logits (a ``predict`` output, or any tensor cast on its way to the
loss): :math:`p` clipped to
:math:`[10^{-7}, 1 - 10^{-7}]` first, so no sample contributes more than
:math:`-\log 10^{-7} \approx 16.1`. The two differ only where some
:math:`|z_i| > 16`.

Classifiers: :func:`plot_decision_boundary` shades the input space by the
predicted class (one feature: the probability curves; two: the plane), and
:func:`animate_decision_boundary` redraws it for the weights of each recorded
epoch of a trace; :func:`plot_confusion_matrix` draws
:func:`gdcore.trace.confusion_matrix`.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import animation as mpl_animation
from matplotlib import ticker
from matplotlib.colors import LogNorm

from gdcore._validation import positive_int, unit_interval

__all__ = ["animate_decision_boundary", "animate_predictions", "loss_surface", "plot_confusion_matrix",
           "plot_decision_boundary", "plot_fit", "plot_loss_surface", "plot_losses", "plot_residuals", "plot_weights"]

DATA_COLOR = "#3d5a80"
FIT_COLOR = "#ff6700"
# Fits and paths: the seed's orange first, then colours distinct from it and from the data's blue.
_FIT_COLORS = [FIT_COLOR, "#2a9d8f", "#c1121f", "#7b2cbf", "#6a994e", "#8d6e63", "#1d3557", "#e9c46a"]
_METRIC_STYLES = {"loss_history": "-", "loss": "-", "loss_end_of_epoch": "--", "val_loss": ":"}
_METRIC_LABELS = {
    "loss_history": "loss (Keras history)",
    "loss": "loss (Keras history)",
    "loss_end_of_epoch": "loss at end of epoch",
    "val_loss": "validation loss",
}


def _axes(ax, figsize=(7, 4.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _column(values, name: str) -> np.ndarray:
    array = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one feature or one output), got shape {array.shape}")
    return array


def _named(runs, kinds: tuple, what: str) -> dict:
    if isinstance(runs, kinds):
        return {None: runs}
    if isinstance(runs, Mapping):
        return dict(runs)
    raise TypeError(f"{what} must be a {' or '.join(k.__name__ for k in kinds)} or a dict of them, got {type(runs).__name__}")


def _run_colors(n: int) -> list:
    return [plt.get_cmap("tab10")(i % 10) for i in range(n)]


def plot_fit(x, y, fits=None, *, ax=None, xlabel: str | None = None, ylabel: str | None = None,
             title: str | None = None, n_points: int = 200):
    """The data as points and each fitted model as a line.

    Parameters
    ----------
    x, y : array-like, one feature and the target.
    fits : dict, optional
        ``label -> model``, where a model is anything with ``predict`` (a
        gdcore model, :func:`gdcore.linear.least_squares`'s result, a
        scikit-learn estimator on one feature), evaluated on ``n_points``
        evenly spaced values of ``x``; a callable ``f(x_grid) -> y``; or an
        array of predictions at the data's ``x`` (for models of several
        features, e.g. :math:`x, \\sin x, x^2`), drawn in order of ``x``.
    xlabel, ylabel : default to the names of ``x`` and ``y`` when they are pandas objects.
    """
    ax = _axes(ax)
    xs, ys = _column(x, "x"), _column(y, "y")
    ax.scatter(xs, ys, s=18, color=DATA_COLOR, alpha=0.8, label="data")
    grid = np.linspace(xs.min(), xs.max(), n_points)
    for index, (label, fit) in enumerate((fits or {}).items()):
        color = _FIT_COLORS[index % len(_FIT_COLORS)]
        if hasattr(fit, "predict"):
            from gdcore.models import Model

            quiet = {"verbose": 0} if isinstance(fit, Model) else {}  # no progress bar for a curve
            line_x, line_y = grid, _column(np.asarray(fit.predict(grid[:, None], **quiet)), f"fits[{label!r}].predict")
        elif callable(fit):
            line_x, line_y = grid, _column(fit(grid), f"fits[{label!r}]")
        else:
            order = np.argsort(xs, kind="stable")
            line_x, line_y = xs[order], _column(fit, f"fits[{label!r}]")[order]
        ax.plot(line_x, line_y, color=color, linewidth=2, label=str(label))
    ax.set_xlabel(xlabel or getattr(x, "name", None) or "x")
    ax.set_ylabel(ylabel or getattr(y, "name", None) or "y")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def _loss_series(run, metrics):
    """(metric, epochs, values) for a Trace, a History or a plain list of per-epoch values."""
    from gdcore.callbacks import History
    from gdcore.trace import Trace

    if isinstance(run, Trace):
        frame = run.losses
        available = list(dict.fromkeys(frame["metric"]))
        for metric in metrics or [m for m in ("loss_history", "loss_end_of_epoch", "val_loss") if m in available]:
            rows = frame[frame["metric"] == metric]
            if rows.empty:
                raise ValueError(f"metric {metric!r} is not in this trace; it has {available}")
            yield metric, rows["epoch"].to_numpy(), rows["value"].to_numpy()
    elif isinstance(run, History):
        available = list(run.history)
        for metric in metrics or [m for m in ("loss", "val_loss") if m in available]:
            key = "loss" if metric == "loss_history" else metric
            if key not in run.history:
                raise ValueError(f"metric {metric!r} is not in this History; it has {available}")
            values = np.asarray(run.history[key], dtype=np.float64)
            yield metric, np.arange(1, len(values) + 1), values
    elif isinstance(run, pd.Series):
        yield "loss", run.index.to_numpy(), run.to_numpy(np.float64)
    else:
        values = np.asarray(run, dtype=np.float64)
        yield "loss", np.arange(1, len(values) + 1), values


def plot_losses(runs, *, metrics=None, log_scale: bool = False, ax=None, title: str | None = None, ylabel: str = "loss"):
    """Loss per epoch, for one run or several overlaid (one colour per run, one line style per metric).

    Parameters
    ----------
    runs : Trace, History, pandas Series (index: epoch), list of floats (epochs 1..E), or a dict ``label -> any of these``
    metrics : list of str, optional
        For a Trace: ``"loss_history"``, ``"loss_end_of_epoch"``, ``"val_loss"``
        (default: those recorded); for a History: ``"loss"``, ``"val_loss"``.
        History values are plotted at epochs 1..E, trace values at the epoch
        they were recorded (0 is before training).
    log_scale : bool
        Logarithmic loss axis.
    """
    ax = _axes(ax)
    from gdcore.callbacks import History
    from gdcore.trace import Trace

    named = _named(runs, (Trace, History, pd.Series, list, tuple, np.ndarray), "runs")
    series = {label: list(_loss_series(run, metrics)) for label, run in named.items()}
    # Name the metric in the legend whenever the runs show more than one.
    several_metrics = len({metric for lines in series.values() for metric, _, _ in lines}) > 1
    for color, (label, lines) in zip(_run_colors(len(named)), series.items()):
        for metric, epochs, values in lines:
            parts = [str(label)] if label is not None else []
            if several_metrics or label is None:
                parts.append(_METRIC_LABELS.get(metric, metric))
            ax.plot(epochs, values, _METRIC_STYLES.get(metric, "-"), color=color, marker="o", markersize=3, label=": ".join(parts))
    if log_scale:
        ax.set_yscale("log")
        # Plain numbers on every labelled tick: loss ranges here rarely span more than two decades.
        for axis_ticks in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            axis_ticks(ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(3, 1.2)))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel + (" (log scale)" if log_scale else ""))
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def plot_residuals(x, y, y_pred, *, ax=None, xlabel: str | None = None, title: str | None = None, label: str = "residuals"):
    """Residuals :math:`e_i = y_i - \\hat y_i` against a feature, with the zero line.

    A pattern left in the residuals (a wave, a parabola) is structure the model missed.
    """
    ax = _axes(ax)
    xs, residuals = _column(x, "x"), _column(y, "y") - _column(y_pred, "y_pred")
    ax.axhline(0, color="0.4", linewidth=1, linestyle="--", label="zero")
    ax.scatter(xs, residuals, s=18, color=DATA_COLOR, alpha=0.8, label=label)
    ax.set_xlabel(xlabel or getattr(x, "name", None) or "x")
    ax.set_ylabel(r"residual $y - \hat y$")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def plot_weights(runs, *, parameters=None, per: str = "epoch", reference: Mapping | None = None, ax=None,
                 labels: Mapping | None = None, title: str | None = None):
    """Each parameter's value over epochs (or steps), for one trace or several overlaid.

    Parameters
    ----------
    runs : Trace or dict ``label -> Trace``
    parameters : list of str, optional
        Parameter names as in ``trace.parameter_names`` (default: all).
    per : {"epoch", "step"}
        ``"step"`` needs traces recorded with ``per_step=True``.
    reference : dict, optional
        ``parameter -> value`` drawn as dashed horizontal lines (e.g. the least-squares optimum).
    labels : dict, optional
        Display names for parameters, e.g. ``{"dense/kernel[0,0]": "w"}``.
    """
    from gdcore.trace import Trace

    ax = _axes(ax)
    named = _named(runs, (Trace,), "runs")
    labels = dict(labels or {})
    first = next(iter(named.values()))
    parameters = list(parameters or first.parameter_names)
    several_runs = len(named) > 1
    colors = _run_colors(max(len(named), len(parameters)))
    styles = ["-", "--", "-.", ":"]
    for run_index, (run_label, trace) in enumerate(named.items()):
        path = trace.path(per)
        for parameter_index, parameter in enumerate(parameters):
            if parameter not in path:
                raise ValueError(f"parameter {parameter!r} is not in the trace; it has {trace.parameter_names}")
            name = labels.get(parameter, parameter)
            color = colors[run_index] if several_runs else colors[parameter_index]
            style = styles[parameter_index % len(styles)] if several_runs else "-"
            text = f"{run_label}: {name}" if several_runs and len(parameters) > 1 else (str(run_label) if several_runs else name)
            ax.plot(path[per], path[parameter], style, color=color, marker="o" if len(path) <= 60 else None,
                    markersize=3, label=text)
    for index, (parameter, value) in enumerate((reference or {}).items()):
        ax.axhline(value, color="0.3", linestyle="--", linewidth=1,
                   label=f"{labels.get(parameter, parameter)} = {value:.4g} (reference)")
    ax.set_xlabel(per)
    ax.set_ylabel("weight value")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def _frame_epochs(epochs: list[int], frames, max_frames: int) -> list[int]:
    if frames is not None:
        missing = sorted(set(frames) - set(epochs))
        if missing:
            raise ValueError(f"frames {missing} were not recorded; recorded epochs are {epochs[0]}..{epochs[-1]}")
        return list(frames)
    if max_frames < 2:
        raise ValueError(f"max_frames must be >= 2, got {max_frames!r}")
    if len(epochs) <= max_frames:
        return list(epochs)
    # Evenly spaced on a square-root scale: early epochs, where the fit moves most, get more frames.
    positions = np.unique(np.round(np.linspace(0, 1, max_frames) ** 2 * (len(epochs) - 1)).astype(int))
    return [epochs[i] for i in positions]


def animate_predictions(trace, *, frames=None, max_frames: int = 10, interval: int = 500, feature: str | None = None,
                        title: str | None = None, figsize=(7, 4.5)):
    """The model's predictions epoch by epoch, over the training data, as a ``FuncAnimation``.

    Display inline in Jupyter with ``IPython.display.HTML(anim.to_jshtml())``;
    save with ``anim.save("fit.gif", writer="pillow")``. The figure is closed
    (so Jupyter does not also show it as a still image); the animation keeps it.

    Parameters
    ----------
    trace : Trace
    frames : list of int, optional
        The epochs to show; default: at most ``max_frames`` of them, denser
        early on, always including the first and the last.
    interval : int
        Milliseconds between frames.
    feature : str, optional
        The feature on the horizontal axis (default: the first).
    """
    predictions = trace.predictions
    epochs = list(dict.fromkeys(predictions["epoch"]))
    shown = _frame_epochs(epochs, frames, max_frames)
    feature = feature or trace.feature_names[0]
    if feature not in trace.feature_names:
        raise ValueError(f"feature {feature!r} is not in the trace; it has {trace.feature_names}")
    prediction_column = "y_pred" if "y_pred" in predictions else "y_pred_0"
    xs, ys = trace.x[:, trace.feature_names.index(feature)], trace.y[:, 0]
    losses = trace.losses
    end_loss = dict(losses.loc[losses["metric"] == "loss_end_of_epoch", ["epoch", "value"]].itertuples(index=False))

    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    ax.scatter(xs, ys, s=18, color=DATA_COLOR, alpha=0.8, label="data")
    (line,) = ax.plot([], [], color=FIT_COLOR, linewidth=2, label="prediction")
    text = ax.text(0.02, 0.95, "", transform=ax.transAxes, va="top")
    all_predictions = predictions.loc[predictions["epoch"].isin(shown), prediction_column].to_numpy()
    low, high = min(ys.min(), all_predictions.min()), max(ys.max(), all_predictions.max())
    margin = 0.05 * (high - low)
    ax.set_ylim(low - margin, high + margin)
    ax.set_xlabel(feature)
    ax.set_ylabel(trace.target_names[0])
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    by_epoch = {epoch: frame for epoch, frame in predictions.groupby("epoch")}

    def draw(epoch):
        frame = by_epoch[epoch].sort_values(feature, kind="stable")
        line.set_data(frame[feature].to_numpy(), frame[prediction_column].to_numpy())
        text.set_text(f"epoch {epoch}" + (f"   loss on all samples {end_loss[epoch]:.4g}" if epoch in end_loss else ""))
        return line, text

    anim = mpl_animation.FuncAnimation(fig, draw, frames=shown, init_func=lambda: draw(shown[0]), interval=interval,
                                       blit=False, repeat=True)
    plt.close(fig)
    return anim


def _linear_path(run, names) -> tuple[np.ndarray, np.ndarray, str]:
    """(w, b, unit) of a path given as a Trace, a wide DataFrame or an (n, 2) array; unit names its points."""
    from gdcore.trace import Trace

    if isinstance(run, Trace):
        kernels = [p for p in run.parameter_names if "/kernel[" in p]
        biases = [p for p in run.parameter_names if "/bias[" in p]
        if len(kernels) != 1 or len(biases) != 1:
            raise ValueError("the loss surface needs a single neuron, a linear neuron or a logistic one (one kernel "
                             f"entry w, one bias b); the trace has {run.parameter_names}")
        path = run.path()
        return path[kernels[0]].to_numpy(), path[biases[0]].to_numpy(), "steps" if run.per_step else "epochs"
    if hasattr(run, "columns"):
        kernel = [c for c in run.columns if "kernel" in str(c)]
        bias = [c for c in run.columns if "bias" in str(c)]
        if len(kernel) != 1 or len(bias) != 1:
            raise ValueError(f"path {names!r}: a DataFrame path needs one 'kernel' column and one 'bias' column, got {list(run.columns)}")
        return run[kernel[0]].to_numpy(np.float64), run[bias[0]].to_numpy(np.float64), "steps"
    array = np.asarray(run, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"a path must be a Trace, a DataFrame or an (n, 2) array of (w, b), got shape {array.shape} for {names!r}")
    return array[:, 0], array[:, 1], "steps"


_SURFACE_LOSSES = {"mse": "mse", "mean_squared_error": "mse", "mae": "mae", "mean_absolute_error": "mae",
                   "binary_crossentropy": "bce", "bce": "bce"}
_SURFACE_NAMES = {"mse": "MSE", "mae": "MAE", "bce": "binary cross-entropy"}


def _surface_loss(loss) -> str:
    if not isinstance(loss, str) or loss.lower() not in _SURFACE_LOSSES:
        raise ValueError(f"loss must be 'mse', 'mae' or 'binary_crossentropy' (or their long names), got {loss!r}")
    return _SURFACE_LOSSES[loss.lower()]


def loss_surface(x, y, w, b, loss: str = "mse", clip: bool = False) -> np.ndarray:
    """:math:`L(w, b)` on all samples, float64, for arrays ``w`` and ``b`` of one shape.

    ``loss="mse"`` or ``"mae"``: the linear neuron :math:`\\hat y = w x + b`;
    ``"binary_crossentropy"``: the logistic neuron :math:`p = \\sigma(w x + b)`
    as Keras's ``fit`` evaluates it (on the logits), or with ``clip=True`` as
    ``keras.losses.binary_crossentropy`` does on bare probabilities (module docstring).
    """
    kind = _surface_loss(loss)
    xs, ys = _column(x, "x"), _column(y, "y")
    w, b = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if kind == "bce":
        if ((ys != 0) & (ys != 1)).any():
            raise ValueError(f"y must hold 0/1 labels for loss={loss!r}, got {ys[(ys != 0) & (ys != 1)][0]!r}")
        z = w[..., None] * xs + b[..., None]
        if not clip:
            return np.mean(np.maximum(z, 0) - z * ys + np.log1p(np.exp(-np.abs(z))), axis=-1)
        p = np.clip(1 / (1 + np.exp(-z)), 1e-7, 1 - 1e-7)
        return np.mean(-(ys * np.log(p) + (1 - ys) * np.log(1 - p)), axis=-1)
    if kind == "mse":
        # Expanded square: the moments of the data replace a pass over the samples per grid point.
        return (np.mean(ys**2) - 2 * w * np.mean(xs * ys) - 2 * b * np.mean(ys) + w**2 * np.mean(xs**2)
                + 2 * w * b * np.mean(xs) + b**2)
    errors = ys - w[..., None] * xs - b[..., None]
    return np.mean(np.abs(errors), axis=-1)


def plot_loss_surface(x, y, paths=None, *, loss: str = "mse", w_range=None, b_range=None, resolution: int = 160,
                      levels: int = 25, ax=None, title: str | None = None, colorbar: bool = True):
    """Contour plot of a one-input neuron's loss over :math:`(w, b)`, with gradient-descent paths on it.

    Parameters
    ----------
    x, y : array-like, the one feature and the target (all training samples).
    paths : Trace, array or dict ``label -> Trace | DataFrame | (n, 2) array of (w, b)``
        A trace recorded with ``per_step=True`` draws one point per step (batch by
        batch); otherwise one per epoch. Start marked with a circle, end with a square.
    loss : {"mse", "mae", "binary_crossentropy"}
        The linear neuron's MSE or MAE, or the logistic neuron's cross-entropy
        (as ``fit`` evaluates it; its optimum is logistic regression's,
        scikit-learn's unpenalized ``LogisticRegression(C=np.inf)``).
    w_range, b_range : (low, high), optional
        Default: the paths and the optimum with a margin.
    levels : int
        Number of contour levels, spaced geometrically between the minimum and the maximum.
    """
    from gdcore.trace import Trace

    kind = _surface_loss(loss)
    ax = _axes(ax, figsize=(7, 5.5))
    named = {} if paths is None else _named(paths, (Trace, np.ndarray, list), "paths")
    lines = {label: _linear_path(run, label) for label, run in named.items()}
    xs, ys = _column(x, "x"), _column(y, "y")
    if kind == "mse":
        from gdcore.linear import least_squares

        solution = least_squares(xs[:, None], ys)
        optimum = (float(solution.kernel[0, 0]), solution.intercept_)
        optimum_label = "least squares"
    elif kind == "mae":
        optimum = _least_absolute_deviations(xs, ys)
        optimum_label = "least absolute deviations"
    else:
        loss_surface(xs, ys, 0.0, 0.0, loss)  # the labels' check
        optimum = _logistic_regression(xs, ys)  # None when the classes are separable: no finite optimum
        optimum_label = "logistic regression"
    points_w = [w for w, _, _ in lines.values()] + ([np.array([optimum[0]])] if optimum else [])
    points_b = [b for _, b, _ in lines.values()] + ([np.array([optimum[1]])] if optimum else [])
    w_range = w_range or _padded_range(np.concatenate(points_w) if points_w else np.array([-1.0, 1.0]))
    b_range = b_range or _padded_range(np.concatenate(points_b) if points_b else np.array([-1.0, 1.0]))
    w_grid, b_grid = np.meshgrid(np.linspace(*w_range, resolution), np.linspace(*b_range, resolution))
    surface = loss_surface(xs, ys, w_grid, b_grid, loss)
    low, high = surface.min(), surface.max()
    bounds = np.geomspace(max(low, 1e-12), high, levels)
    filled = ax.contourf(w_grid, b_grid, surface, levels=bounds, norm=LogNorm(bounds[0], bounds[-1]), cmap="Blues_r", alpha=0.85)
    ax.contour(w_grid, b_grid, surface, levels=bounds, colors="white", linewidths=0.5, alpha=0.6)
    if colorbar:
        bar = ax.figure.colorbar(filled, ax=ax, ticks=bounds[::4])
        bar.ax.minorticks_off()
        bar.ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:.3g}"))
        bar.set_label(f"{_SURFACE_NAMES[kind]} on all samples (log scale)")
    for color, (label, (w, b, unit)) in zip(_FIT_COLORS, lines.items()):
        name = "path" if label is None else str(label)
        ax.plot(w, b, "-", color=color, linewidth=1.5, marker="." if len(w) <= 400 else None, markersize=4,
                label=f"{name} ({len(w) - 1} {unit})")
        ax.plot(w[0], b[0], "o", color=color, markeredgecolor="black", markersize=8)
        ax.plot(w[-1], b[-1], "s", color=color, markeredgecolor="black", markersize=8)
    if optimum:
        ax.plot(*optimum, "*", color="gold", markeredgecolor="black", markersize=16, label=f"{optimum_label} optimum")
    ax.set_xlim(w_range)
    ax.set_ylim(b_range)
    ax.set_xlabel("w (kernel)")
    ax.set_ylabel("b (bias)")
    model = r"$p = \sigma(w x + b)$" if kind == "bce" else r"$\hat y = w x + b$"
    ax.set_title(title or f"{_SURFACE_NAMES[kind]} loss surface of {model} (circle: start, square: end)")
    ax.legend(loc="best")
    return ax


def _least_absolute_deviations(xs: np.ndarray, ys: np.ndarray, iterations: int = 200) -> tuple[float, float]:
    """The (w, b) minimising the MAE, by iteratively reweighted least squares (weights 1/|residual|)."""
    design = np.column_stack([xs, np.ones_like(xs)])
    coefficients = np.linalg.lstsq(design, ys, rcond=None)[0]
    for _ in range(iterations):
        weights = 1.0 / np.maximum(np.abs(ys - design @ coefficients), 1e-9)
        updated = np.linalg.solve(design.T @ (design * weights[:, None]), design.T @ (weights * ys))
        if np.allclose(updated, coefficients, rtol=0, atol=1e-12):
            break
        coefficients = updated
    return float(coefficients[0]), float(coefficients[1])


def _logistic_regression(xs: np.ndarray, ys: np.ndarray, iterations: int = 100) -> tuple[float, float] | None:
    """The (w, b) minimising the mean cross-entropy, by Newton's method; None if it does not converge (separable classes)."""
    design = np.column_stack([xs, np.ones_like(xs)])
    coefficients = np.zeros(2)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(design @ coefficients)))
        hessian = design.T @ (design * (p * (1 - p))[:, None])
        try:
            step = np.linalg.solve(hessian, design.T @ (p - ys))
        except np.linalg.LinAlgError:
            return None
        coefficients = coefficients - step
        if np.max(np.abs(step)) <= 1e-12 * (1 + np.max(np.abs(coefficients))):
            return float(coefficients[0]), float(coefficients[1])
    return None


def _padded_range(values: np.ndarray, pad: float = 0.25) -> tuple[float, float]:
    low, high = float(np.min(values)), float(np.max(values))
    span = max(high - low, 1e-3)
    return low - pad * span, high + pad * span


# --- classifiers ----------------------------------------------------------------------

# One colour per class: the data's blue, the fit's orange, then the path colours.
_CLASS_COLORS = [DATA_COLOR, FIT_COLOR, "#2a9d8f", "#c1121f", "#7b2cbf", "#6a994e", "#8d6e63", "#e9c46a"]


def _predictor(model):
    """``points -> (n, outputs)`` probabilities of a gdcore model, a scikit-learn classifier or a callable."""
    from gdcore.models import Model

    if isinstance(model, Model):
        return lambda points: np.asarray(model.predict(points, batch_size=len(points), verbose=0), dtype=np.float64)
    if hasattr(model, "predict_proba"):
        return lambda points: np.asarray(model.predict_proba(points), dtype=np.float64)
    if callable(model):
        return lambda points: np.asarray(model(points), dtype=np.float64)
    raise TypeError(f"model must be a gdcore model, a scikit-learn classifier (predict_proba) or a callable "
                    f"points -> probabilities, got {type(model).__name__}")


def _as_probabilities(values: np.ndarray, n_points: int, what: str) -> np.ndarray:
    values = values[:, None] if values.ndim == 1 else values
    if values.ndim != 2 or values.shape[0] != n_points:
        raise ValueError(f"{what} must return one row of probabilities per point, shape ({n_points}, n_outputs); "
                         f"got {values.shape}")
    return values


def _predicted_classes(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    if probabilities.shape[1] == 1:
        return (probabilities[:, 0] > threshold).astype(np.int64)
    return np.argmax(probabilities, axis=1)


def _class_margins(probabilities: np.ndarray, threshold: float) -> list[np.ndarray]:
    """Per class, how far it is ahead of the best other class; the decision boundary is where one is 0."""
    if probabilities.shape[1] == 1:
        return [probabilities[:, 0] - threshold]
    margins = []
    for k in range(probabilities.shape[1]):
        others = np.delete(probabilities, k, axis=1).max(axis=1)
        margins.append(probabilities[:, k] - others)
    return margins


def _draw_decision(ax, predict, xs: np.ndarray, labels: np.ndarray, threshold: float, resolution: int,
                   feature_names: list[str], class_names: list[str] | None, what: str = "model") -> float:
    """Draw a classifier's regions, boundary and the data on ``ax``; returns the accuracy on the data."""
    from matplotlib.colors import ListedColormap

    data_probabilities = _as_probabilities(predict(xs), len(xs), what)
    n_outputs = data_probabilities.shape[1]
    n_classes = max(2 if n_outputs == 1 else n_outputs, int(labels.max()) + 1)
    names = list(class_names) if class_names is not None else [f"class {k}" for k in range(n_classes)]
    if len(names) < n_classes:
        raise ValueError(f"class_names has {len(names)} names for {n_classes} classes")
    colors = [_CLASS_COLORS[k % len(_CLASS_COLORS)] for k in range(n_classes)]
    accuracy = float(np.mean(_predicted_classes(data_probabilities, threshold) == labels))
    padding = [0.05 * max(np.ptp(xs[:, k]), 1e-3) for k in range(xs.shape[1])]

    if xs.shape[1] == 1:
        grid = np.linspace(xs[:, 0].min() - padding[0], xs[:, 0].max() + padding[0], resolution)
        probabilities = _as_probabilities(predict(grid[:, None]), resolution, what)
        predicted = _predicted_classes(probabilities, threshold)
        # Shade each run of grid points predicted as one class; the boundaries are where the class changes.
        edges = np.concatenate([[grid[0]], (grid[1:][predicted[1:] != predicted[:-1]]
                                            + grid[:-1][predicted[1:] != predicted[:-1]]) / 2, [grid[-1]]])
        runs = np.concatenate([[predicted[0]], predicted[1:][predicted[1:] != predicted[:-1]]])
        for left, right, k in zip(edges[:-1], edges[1:], runs):
            ax.axvspan(left, right, color=colors[k], alpha=0.12, linewidth=0)
        for index, boundary in enumerate(edges[1:-1]):
            ax.axvline(boundary, color="black", linestyle=":", linewidth=1.2,
                       label=f"decision boundary" if index == 0 else None)
        if n_outputs == 1:
            ax.plot(grid, probabilities[:, 0], color=FIT_COLOR, linewidth=2, label=f"P({names[1]} | x)")
            ax.axhline(threshold, color="0.4", linestyle="--", linewidth=1)
            heights = labels.astype(np.float64)
        else:
            for k in range(n_outputs):
                ax.plot(grid, probabilities[:, k], color=colors[k], linewidth=2, label=f"P({names[k]} | x)")
            heights = np.full(len(labels), -0.06)
        for k in range(n_classes):
            rows = labels == k
            ax.scatter(xs[rows, 0], heights[rows], s=18 if n_outputs == 1 else 12, color=colors[k], alpha=0.8,
                       edgecolor="white", linewidth=0.4, label=names[k])
        ax.set_ylim(-0.12, 1.08)
        ax.set_xlim(grid[0], grid[-1])
        ax.set_xlabel(feature_names[0])
        ax.set_ylabel("probability" if n_outputs > 1 else f"P({names[1]} | x), data at its class")
        return accuracy

    if xs.shape[1] != 2:
        raise ValueError(f"decision boundaries are drawn for one or two features; x has {xs.shape[1]}")
    first = np.linspace(xs[:, 0].min() - padding[0], xs[:, 0].max() + padding[0], resolution)
    second = np.linspace(xs[:, 1].min() - padding[1], xs[:, 1].max() + padding[1], resolution)
    mesh_first, mesh_second = np.meshgrid(first, second)
    points = np.column_stack([mesh_first.ravel(), mesh_second.ravel()])
    probabilities = _as_probabilities(predict(points), len(points), what)
    predicted = _predicted_classes(probabilities, threshold).reshape(mesh_first.shape)
    ax.contourf(mesh_first, mesh_second, predicted, levels=np.arange(n_classes + 1) - 0.5,
                cmap=ListedColormap(colors), alpha=0.18)
    for margin in _class_margins(probabilities, threshold):
        if margin.min() < 0 < margin.max():
            ax.contour(mesh_first, mesh_second, margin.reshape(mesh_first.shape), levels=[0], colors="black",
                       linewidths=1.2)
    ax.plot([], [], color="black", linewidth=1.2, label="decision boundary")
    data_predicted = _predicted_classes(data_probabilities, threshold)
    for k in range(n_classes):
        rows = labels == k
        ax.scatter(xs[rows, 0], xs[rows, 1], s=20, color=colors[k], edgecolor="white", linewidth=0.4, label=names[k])
    wrong = data_predicted != labels
    if wrong.any():
        ax.scatter(xs[wrong, 0], xs[wrong, 1], s=40, marker="x", color="black", linewidth=1,
                   label=f"misclassified ({int(wrong.sum())})")
    ax.set_xlim(first[0], first[-1])
    ax.set_ylim(second[0], second[-1])
    ax.set_xlabel(feature_names[0])
    ax.set_ylabel(feature_names[1])
    return accuracy


def _feature_labels(x, n_features: int) -> list[str]:
    if hasattr(x, "columns"):
        return [str(column) for column in x.columns]
    if n_features == 1 and getattr(x, "name", None) is not None:
        return [str(x.name)]
    return ["x"] if n_features == 1 else [f"x{k}" for k in range(n_features)]


def plot_decision_boundary(model, x, y, *, threshold: float = 0.5, resolution: int = 200, class_names=None, ax=None,
                           title: str | None = None):
    """A classifier's predicted class over the input space, its decision boundary, and the data coloured by class.

    With one feature: the probability curve of class 1 (a sigmoid output,
    class 1 where :math:`p >` ``threshold``) or every class's curve (a
    softmax output, the largest wins), the regions shaded by predicted class,
    the boundaries as dotted vertical lines. With two features: the plane
    shaded by predicted class, the boundary as black lines, misclassified
    samples crossed.

    Parameters
    ----------
    model : gdcore model, scikit-learn classifier (``predict_proba``) or callable ``points -> probabilities``
    x : array-like, (n, 1) or (n, 2)
    y : array-like
        Class labels (n,), or one-hot rows (n, k).
    class_names : list of str, optional
        Legend names of the classes (default ``"class 0"``, ...).

    The title gives the accuracy on ``(x, y)`` unless ``title`` is given.
    """
    from gdcore.trace import class_labels

    ax = _axes(ax, figsize=(7, 5.5) if np.ndim(x) == 2 and np.shape(x)[1] == 2 else (7, 4.5))
    xs = np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x, dtype=np.float64)
    xs = xs[:, None] if xs.ndim == 1 else xs
    labels = class_labels(y, "y")
    if len(labels) != len(xs):
        raise ValueError(f"x and y must have the same number of samples, got {len(xs)} and {len(labels)}")
    resolution = positive_int(resolution, "resolution", minimum=2)
    unit_interval(threshold, "threshold", closed_right=True)
    accuracy = _draw_decision(ax, _predictor(model), xs, labels, threshold, resolution,
                              _feature_labels(x, xs.shape[1]), class_names)
    ax.set_title(title or f"Decision boundary (accuracy {accuracy:.1%} on these samples)")
    ax.legend(loc="best", fontsize="small")
    return ax


def animate_decision_boundary(trace, *, frames=None, max_frames: int = 10, interval: int = 500, threshold: float = 0.5,
                              resolution: int = 120, class_names=None, title: str | None = None, figsize=None):
    """The decision boundary epoch by epoch, over the training data, as a ``FuncAnimation``.

    Each frame is :func:`plot_decision_boundary` with the weights the trace
    recorded at the end of that epoch (epoch 0: the initial weights), evaluated
    by the NumPy engine's forward pass (the bits ``predict`` gives). Display and
    save as :func:`animate_predictions`; ``frames`` and ``max_frames`` choose
    the epochs as there.
    """
    from gdcore import _numpy_engine
    from gdcore.trace import class_labels

    model = trace.model
    epochs = list(trace._epochs)
    shown = _frame_epochs(epochs, frames, max_frames)
    params = dict(zip(epochs, trace._params))
    labels = class_labels(trace.y, "trace.y")
    resolution = positive_int(resolution, "resolution", minimum=2)
    unit_interval(threshold, "threshold", closed_right=True)
    losses = trace.losses
    end_loss = dict(losses.loc[losses["metric"] == "loss_end_of_epoch", ["epoch", "value"]].itertuples(index=False))
    two_features = trace.x.shape[1] == 2
    fig, ax = plt.subplots(figsize=figsize or ((7, 5.5) if two_features else (7, 4.5)), layout="constrained")

    def predict_at(epoch):
        def predict(points):
            inputs = np.ascontiguousarray(points, dtype=model.dtype)
            return _numpy_engine.forward(model.profile, inputs, params[epoch], model.layout)[-1].astype(np.float64)
        return predict

    def draw(epoch):
        ax.clear()
        accuracy = _draw_decision(ax, predict_at(epoch), trace.x, labels, threshold, resolution, trace.feature_names,
                                  class_names, "the trace's model")
        ax.legend(loc="lower right", fontsize="small")
        loss = f"   loss on all samples {end_loss[epoch]:.4g}" if epoch in end_loss else ""
        ax.set_title((f"{title}\n" if title else "") + f"epoch {epoch}{loss}   accuracy {accuracy:.1%}")
        return ax.get_children()

    anim = mpl_animation.FuncAnimation(fig, draw, frames=shown, init_func=lambda: draw(shown[0]), interval=interval,
                                       blit=False, repeat=True)
    plt.close(fig)
    return anim


def plot_confusion_matrix(matrix, *, normalize: bool = False, ax=None, title: str | None = None, cmap: str = "Blues"):
    """Draw a :func:`gdcore.trace.confusion_matrix` table: rows the true class, columns the predicted one.

    ``normalize=True`` shows each row as fractions of its true class (the
    recall of each class on the diagonal); the counts stay in the cells' text.
    The title gives the accuracy (the diagonal's share) unless ``title`` is given.
    """
    if not isinstance(matrix, pd.DataFrame) or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise TypeError(f"matrix must be the square DataFrame gdcore.trace.confusion_matrix returns, got "
                        f"{type(matrix).__name__}{getattr(matrix, 'shape', '')}")
    ax = _axes(ax, figsize=(1.2 * matrix.shape[1] + 2.5, 1.2 * matrix.shape[0] + 1.5))
    counts = matrix.to_numpy()
    totals = counts.sum(axis=1, keepdims=True)
    shown = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0) if normalize else counts
    image = ax.imshow(shown, cmap=cmap, vmin=0, vmax=1 if normalize else max(int(counts.max()), 1))
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            text = f"{counts[i, j]}" + (f"\n{shown[i, j]:.0%}" if normalize else "")
            dark = shown[i, j] > 0.6 * (1 if normalize else max(int(counts.max()), 1))
            ax.text(j, i, text, ha="center", va="center", color="white" if dark else "black")
    ax.set_xticks(range(counts.shape[1]), [str(c) for c in matrix.columns])
    ax.set_yticks(range(counts.shape[0]), [str(c) for c in matrix.index])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.figure.colorbar(image, ax=ax, label="fraction of the true class" if normalize else "samples")
    total = counts.sum()
    ax.set_title(title or (f"Confusion matrix (accuracy {np.trace(counts) / total:.1%} of {total} samples)" if total
                           else "Confusion matrix"))
    return ax
