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
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import animation as mpl_animation
from matplotlib import ticker
from matplotlib.colors import LogNorm

__all__ = ["animate_predictions", "loss_surface", "plot_fit", "plot_loss_surface", "plot_losses", "plot_residuals", "plot_weights"]

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
            raise ValueError(f"the loss surface needs a linear neuron (one kernel entry w, one bias b); the trace has {run.parameter_names}")
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


def loss_surface(x, y, w, b, loss: str = "mse") -> np.ndarray:
    """:math:`L(w, b)` of the linear neuron on all samples, float64, for arrays ``w`` and ``b`` of one shape."""
    xs, ys = _column(x, "x"), _column(y, "y")
    w, b = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if loss in ("mse", "mean_squared_error"):
        # Expanded square: the moments of the data replace a pass over the samples per grid point.
        return (np.mean(ys**2) - 2 * w * np.mean(xs * ys) - 2 * b * np.mean(ys) + w**2 * np.mean(xs**2)
                + 2 * w * b * np.mean(xs) + b**2)
    if loss in ("mae", "mean_absolute_error"):
        errors = ys - w[..., None] * xs - b[..., None]
        return np.mean(np.abs(errors), axis=-1)
    raise ValueError(f"loss must be 'mse' or 'mae' (or their long names), got {loss!r}")


def plot_loss_surface(x, y, paths=None, *, loss: str = "mse", w_range=None, b_range=None, resolution: int = 160,
                      levels: int = 25, ax=None, title: str | None = None, colorbar: bool = True):
    """Contour plot of the linear neuron's loss over :math:`(w, b)`, with gradient-descent paths on it.

    Parameters
    ----------
    x, y : array-like, the one feature and the target (all training samples).
    paths : Trace, array or dict ``label -> Trace | DataFrame | (n, 2) array of (w, b)``
        A trace recorded with ``per_step=True`` draws one point per step (batch by
        batch); otherwise one per epoch. Start marked with a circle, end with a square.
    loss : {"mse", "mae"}
    w_range, b_range : (low, high), optional
        Default: the paths and the optimum with a margin.
    levels : int
        Number of contour levels, spaced geometrically between the minimum and the maximum.
    """
    from gdcore.trace import Trace

    ax = _axes(ax, figsize=(7, 5.5))
    named = {} if paths is None else _named(paths, (Trace, np.ndarray, list), "paths")
    lines = {label: _linear_path(run, label) for label, run in named.items()}
    xs, ys = _column(x, "x"), _column(y, "y")
    if loss in ("mse", "mean_squared_error"):
        from gdcore.linear import least_squares

        solution = least_squares(xs[:, None], ys)
        optimum = (float(solution.kernel[0, 0]), solution.intercept_)
        optimum_label = "least squares"
    else:
        optimum = _least_absolute_deviations(xs, ys)
        optimum_label = "least absolute deviations"
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
        bar.set_label(f"{'MSE' if loss in ('mse', 'mean_squared_error') else 'MAE'} on all samples (log scale)")
    for color, (label, (w, b, unit)) in zip(_FIT_COLORS, lines.items()):
        name = "path" if label is None else str(label)
        ax.plot(w, b, "-", color=color, linewidth=1.5, marker="." if len(w) <= 400 else None, markersize=4,
                label=f"{name} ({len(w) - 1} {unit})")
        ax.plot(w[0], b[0], "o", color=color, markeredgecolor="black", markersize=8)
        ax.plot(w[-1], b[-1], "s", color=color, markeredgecolor="black", markersize=8)
    ax.plot(*optimum, "*", color="gold", markeredgecolor="black", markersize=16, label=f"{optimum_label} optimum")
    ax.set_xlim(w_range)
    ax.set_ylim(b_range)
    ax.set_xlabel("w (kernel)")
    ax.set_ylabel("b (bias)")
    ax.set_title(title or f"{'MSE' if loss in ('mse', 'mean_squared_error') else 'MAE'} loss surface of "
                          r"$\hat y = w x + b$ (circle: start, square: end)")
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


def _padded_range(values: np.ndarray, pad: float = 0.25) -> tuple[float, float]:
    low, high = float(np.min(values)), float(np.max(values))
    span = max(high - low, 1e-3)
    return low - pad * span, high + pad * span
