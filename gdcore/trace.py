r"""Training traces: every weight, loss and prediction of a run, per epoch or per step, as tidy DataFrames.

One training run is recorded once, while it happens; nothing is retrained.

``fit_trace(model, x, y, ...)`` trains ``model`` exactly as ``model.fit`` would
(same batches, same permutations from the model's generator, same bits) and
returns a :class:`Trace`. ``TraceCallback`` records the same per-epoch data
from inside any ``fit`` call.

Epoch 0 is the state before training. Two training losses are recorded, and
they are different numbers:

``loss_history``
    Keras's ``history["loss"][e - 1]``: the batch-size-weighted running mean of
    the batch losses, each computed with the weights *before* that batch's
    update. It mixes weights from the whole epoch.
``loss_end_of_epoch``
    The loss of the weights at the end of epoch ``e`` on all training samples at
    once, :math:`L(w_e) = \frac1n \sum_i \ell(y_i, \hat y_i(w_e))`. Defined for
    epoch 0 too.
``val_loss``
    Keras's ``history["val_loss"]``: the loss on the validation data with the
    end-of-epoch weights, evaluated in batches of ``batch_size``.

With ``per_step=True`` each optimizer step is also recorded (``Trace.steps``):
the batch loss, the gradient of every parameter and the weights before and
after the step. ``fit``'s own epoch driver runs the training then, on the NumPy
engine, which hands every step it takes to the trace (the same bits as the
compiled engine; nothing is computed twice).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gdcore import losses
from gdcore._validation import as_features, as_targets, positive_int, unit_interval
from gdcore.callbacks import Callback, History

__all__ = ["Trace", "TraceCallback", "confusion_matrix", "fit_trace", "parameter_table"]


def parameter_table(model) -> pd.DataFrame:
    """One row per scalar parameter, in the order of ``model.params``.

    Columns: ``position`` (index into ``model.params``), ``layer`` (layer name),
    ``tensor`` (``"kernel"`` or ``"bias"``), ``index`` (``"k,j"`` for a kernel
    entry :math:`W_{kj}`, ``"j"`` for a bias entry; a layer with ``use_bias=False`` has none) and ``parameter``, a unique
    label such as ``"dense/kernel[0,0]"``.
    """
    if not model.built:
        raise ValueError("parameter_table: the model is not built yet; give it an Input(shape=...) or fit it first")
    rows = []
    for layer, row in zip(model.dense_layers, model.layout):
        n_in, n_out, kernel_offset, bias_offset = int(row.n_in), int(row.n_out), int(row.kernel), int(row.bias)
        for k in range(n_in):
            for j in range(n_out):
                rows.append((kernel_offset + k * n_out + j, layer.name, "kernel", f"{k},{j}"))
        for j in range(n_out if row.use_bias else 0):
            rows.append((bias_offset + j, layer.name, "bias", f"{j}"))
    table = pd.DataFrame(rows, columns=["position", "layer", "tensor", "index"]).sort_values("position", ignore_index=True)
    table["parameter"] = table["layer"] + "/" + table["tensor"] + "[" + table["index"] + "]"
    return table


def _feature_names(x, n_features: int) -> list[str]:
    if hasattr(x, "columns"):
        return [str(name) for name in x.columns]
    if hasattr(x, "name") and n_features == 1 and x.name is not None:
        return [str(x.name)]
    return ["x"] if n_features == 1 else [f"x{k}" for k in range(n_features)]


def _output_names(n_outputs: int, prefix: str) -> list[str]:
    return [prefix] if n_outputs == 1 else [f"{prefix}_{j}" for j in range(n_outputs)]


def _long(values: np.ndarray, meta: pd.DataFrame, info: pd.DataFrame, value_columns: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Records x parameters, long: ``meta`` (one row per record) repeated over ``info`` (one row per parameter)."""
    n_records, n_params = values.shape
    frame = meta.loc[meta.index.repeat(n_params)].reset_index(drop=True)
    tiled = info.loc[np.tile(np.arange(n_params), n_records), ["layer", "tensor", "index", "parameter"]].reset_index(drop=True)
    frame = pd.concat([frame, tiled], axis=1)
    for name, array in (value_columns or {"value": values}).items():
        frame[name] = np.asarray(array, dtype=np.float64).reshape(-1)
    return frame


class Trace:
    """What a traced run recorded. Build it with :func:`fit_trace` or :class:`TraceCallback`.

    Attributes
    ----------
    model : Sequential
        The model that was trained (now in its final state).
    history : History or None
        The ``History`` of the run (``fit``'s return value).
    x, y : ndarray
        The training data as float64 arrays, shapes (n, d) and (n, outputs);
        (n, 1), the class indices, for a sparse categorical cross-entropy.
    feature_names, parameter_names : list of str
    per_step : bool
        Whether :attr:`steps` was recorded.

    The DataFrames (long format, built on access) are :attr:`weights`,
    :attr:`losses`, :attr:`predictions` and, with ``per_step``, :attr:`steps`;
    :meth:`path` gives the trajectory in weight space in wide format.
    """

    def __init__(self, model, x, y, grid=None, per_step: bool = False):
        self.model = model
        features = as_features(x, "x")
        self.x = features
        n_outputs = model.dense_layers[-1].units
        if model.loss is not None and model.loss.targets == "sparse":
            # Class indices, one column (what evaluate takes back), checked as fit checks them.
            self.y = as_targets(y, "y", n_rows=features.shape[0])
            losses.prepare_targets(model.loss, self.y, n_outputs, np.float64, "y")
        else:
            self.y = as_targets(y, "y", n_rows=features.shape[0], n_outputs=n_outputs)
        self.feature_names = _feature_names(x, features.shape[1])
        self.target_names = _output_names(self.y.shape[1], str(getattr(y, "name", None) or "y"))
        self.grid = None if grid is None else self._make_grid(grid)
        self.per_step = bool(per_step)
        self.history: History | None = None
        self._info: pd.DataFrame | None = None
        self._epochs: list[int] = []
        self._params: list[np.ndarray] = []
        self._predictions: list[np.ndarray] = []
        self._losses: list[tuple[int, str, float]] = []
        self._step_meta: list[tuple[int, int, int, int, float]] = []
        self._step_before: list[np.ndarray] = []
        self._step_grads: list[np.ndarray] = []
        self._step_after: list[np.ndarray] = []

    def _make_grid(self, grid) -> np.ndarray:
        if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
            if self.x.shape[1] != 1:
                raise ValueError(f"grid={grid!r} (a number of points) needs one feature; x has {self.x.shape[1]}: pass the grid points instead")
            low, high = self.x[:, 0].min(), self.x[:, 0].max()
            return np.linspace(low, high, positive_int(int(grid), "grid", minimum=2))[:, None]
        return as_features(grid, "grid", self.x.shape[1])

    # --- recording (used by TraceCallback and fit_trace) -------------------------------

    @property
    def n_epochs(self) -> int:
        """Number of completed epochs recorded (epoch 0, the initial state, not counted)."""
        return self._epochs[-1] if self._epochs else 0

    def _record_epoch(self, model, logs: dict | None, validation=None, batch_size: int = 32) -> None:
        """Record the state at the end of an epoch (``logs is None``: the initial state, epoch 0)."""
        if self._info is None:
            self._info = parameter_table(model)
        epoch = 0 if logs is None else self.n_epochs + 1
        self._epochs.append(epoch)
        self._params.append(model.params.copy())
        inputs = self.x if self.grid is None else self.grid
        self._predictions.append(np.asarray(model.predict(inputs, batch_size=len(inputs), verbose=0), dtype=np.float64))
        if logs is not None:
            self._losses.append((epoch, "loss_history", float(logs["loss"])))
        self._losses.append((epoch, "loss_end_of_epoch", float(model.evaluate(self.x, self.y, batch_size=len(self.x), verbose=0))))
        if logs is not None and "val_loss" in logs:
            self._losses.append((epoch, "val_loss", float(logs["val_loss"])))
        elif logs is None and validation is not None:
            self._losses.append((0, "val_loss", float(model.evaluate(validation[0], validation[1], batch_size=batch_size, verbose=0))))

    def _record_step(self, epoch: int, batch: int, step: int, batch_size: int, batch_loss, before, grads, after) -> None:
        self._step_meta.append((epoch, batch, step, batch_size, float(batch_loss)))
        self._step_before.append(before)
        self._step_grads.append(grads)
        self._step_after.append(after)

    # --- tidy views -----------------------------------------------------------------------

    @property
    def parameter_names(self) -> list[str]:
        return [] if self._info is None else list(self._info["parameter"])

    @property
    def weights(self) -> pd.DataFrame:
        """Long DataFrame, one row per (epoch, parameter): ``epoch, layer, tensor, index, parameter, value``.

        ``value`` is the parameter (exactly, as float64) at the end of ``epoch``;
        epoch 0 is the initial state.
        """
        meta = pd.DataFrame({"epoch": self._epochs})
        return _long(np.array(self._params), meta, self._info)

    @property
    def losses(self) -> pd.DataFrame:
        """Long DataFrame ``epoch, metric, value`` with ``metric`` in
        ``loss_history`` (epochs >= 1), ``loss_end_of_epoch`` and ``val_loss``
        (when validation data was given). Definitions: module docstring.
        """
        return pd.DataFrame(self._losses, columns=["epoch", "metric", "value"])

    @property
    def predictions(self) -> pd.DataFrame:
        """Long DataFrame, one row per (epoch, point): ``epoch, point``, the feature columns, ``y_pred``.

        Points are the training inputs (then the target column is there too) or
        the ``grid`` given to the trace, in the order given; each epoch's
        predictions are made in one batch.
        """
        inputs = self.x if self.grid is None else self.grid
        n_points, n_epochs = len(inputs), len(self._epochs)
        frame = pd.DataFrame({"epoch": np.repeat(self._epochs, n_points), "point": np.tile(np.arange(n_points), n_epochs)})
        for k, name in enumerate(self.feature_names):
            frame[name] = np.tile(inputs[:, k], n_epochs)
        if self.grid is None:
            for j, name in enumerate(self.target_names):
                frame[name] = np.tile(self.y[:, j], n_epochs)
        predictions = np.array(self._predictions).reshape(n_epochs * n_points, -1)
        for j, name in enumerate(_output_names(predictions.shape[1], "y_pred")):
            frame[name] = predictions[:, j]
        return frame

    @property
    def steps(self) -> pd.DataFrame | None:
        """Per-step mode only (else ``None``): one row per (step, parameter).

        Columns ``epoch`` (1-based), ``batch`` (0-based within the epoch),
        ``step`` (1-based count of optimizer updates in this trace),
        ``batch_size``, ``batch_loss`` (the loss of the batch before the
        update), ``layer, tensor, index, parameter``, ``weight_before``,
        ``gradient`` (:math:`\\partial L/\\partial w` at ``weight_before``)
        and ``weight_after``.
        """
        if not self.per_step:
            return None
        meta = pd.DataFrame(self._step_meta, columns=["epoch", "batch", "step", "batch_size", "batch_loss"])
        if meta.empty:
            return meta
        values = {"weight_before": np.array(self._step_before), "gradient": np.array(self._step_grads),
                  "weight_after": np.array(self._step_after)}
        return _long(values["weight_before"], meta, self._info, values)

    def path(self, per: str | None = None) -> pd.DataFrame:
        """The trajectory in weight space, wide: one row per recorded state, one column per parameter.

        ``per="epoch"``: rows are epochs 0..E (column ``epoch``). ``per="step"``
        (the default in per-step mode): row 0 is the initial state, row ``s``
        the weights after step ``s`` (columns ``epoch, batch, step,
        batch_loss``, the loss of the batch *before* that step; NaN for row 0).
        """
        per = per or ("step" if self.per_step else "epoch")
        names = self.parameter_names
        if per == "epoch":
            frame = pd.DataFrame(np.array(self._params, dtype=np.float64), columns=names)
            frame.insert(0, "epoch", self._epochs)
            return frame
        if per != "step":
            raise ValueError(f"per must be 'epoch' or 'step', got {per!r}")
        if not self.per_step:
            raise ValueError("path(per='step') needs a trace recorded with per_step=True")
        initial = np.array(self._params[0], dtype=np.float64)[None]
        values = np.concatenate([initial, np.array(self._step_after, dtype=np.float64).reshape(-1, len(names))])
        frame = pd.DataFrame(values, columns=names)
        meta = pd.DataFrame([(0, 0, 0, np.nan)] + [(e, b, s, loss) for e, b, s, _, loss in self._step_meta],
                            columns=["epoch", "batch", "step", "batch_loss"])
        return pd.concat([meta, frame], axis=1)

    def __repr__(self) -> str:
        steps = f", steps={len(self._step_meta)}" if self.per_step else ""
        return f"Trace(epochs={self.n_epochs}{steps}, parameters={len(self.parameter_names)})"


class TraceCallback(Callback):
    """Record a :class:`Trace` from inside ``model.fit``: pass it in ``callbacks``.

    Parameters
    ----------
    x, y : array-like
        The training data given to ``fit`` (for the end-of-epoch loss and the predictions).
    validation_data : tuple or None
        The ``validation_data`` given to ``fit``: only used for ``val_loss`` at
        epoch 0; later epochs take it from ``fit``'s logs.
    grid : None, int or array-like
        Where to record predictions: ``None`` for the training inputs, an array
        of inputs, or a number of evenly spaced points over the range of a single feature.
    batch_size : int
        ``fit``'s batch size; the epoch-0 ``val_loss`` is evaluated in batches of it, as ``fit`` does later.

    After ``fit``, ``callback.trace`` holds the record (``trace.history`` is
    set by :func:`fit_trace`; with a bare callback, it is the model's last
    ``History``). A second ``fit`` with the same callback continues the epoch count.
    """

    def __init__(self, x, y, validation_data=None, grid=None, batch_size: int = 32, per_step: bool = False):
        super().__init__()
        self._data = (x, y, grid)
        self.validation_data = validation_data
        self.batch_size = positive_int(batch_size, "batch_size")
        self.per_step = bool(per_step)
        self.trace: Trace | None = None

    def on_train_begin(self, logs=None):
        if self.trace is None:
            x, y, grid = self._data
            self.trace = Trace(self.model, x, y, grid=grid, per_step=self.per_step)
            self.trace._record_epoch(self.model, None, self.validation_data, self.batch_size)

    def record_step(self, epoch: int, step) -> None:
        """The epoch driver's ``on_step`` hook: one update (a :class:`gdcore._contract.Step`) of epoch ``epoch``."""
        trace = self.trace
        trace._record_step(trace.n_epochs + 1, step.batch, len(trace._step_meta) + 1, len(step.rows), step.loss,
                           step.before, step.grads, step.after)

    def on_epoch_end(self, epoch, logs=None):
        self.trace._record_epoch(self.model, dict(logs or {}))

    def on_train_end(self, logs=None):
        self.trace.history = self.model.history


def fit_trace(model, x, y, epochs: int = 1, batch_size: int = 32, shuffle: bool = True, validation_data=None,
              grid=None, per_step: bool = False, callbacks=None, verbose: int = 0) -> Trace:
    """Train ``model`` as ``model.fit`` would, recording a :class:`Trace`.

    Parameters
    ----------
    model : Sequential
        A compiled model. It is trained in place; its optimizer state persists, as with ``fit``.
    x, y, epochs, batch_size, shuffle, validation_data, callbacks, verbose
        As in ``Sequential.fit``. With ``shuffle=True`` each epoch's order is
        drawn from the model's generator exactly as ``fit`` draws it, so a
        traced run and an untraced run from the same seed give the same bits.
    grid : None, int or array-like
        Where to record predictions each epoch (see :class:`TraceCallback`).
    per_step : bool
        Also record every optimizer step (:attr:`Trace.steps`): batch loss,
        gradients, weights before and after.

    Returns
    -------
    Trace
        ``trace.history`` is the run's ``History`` (also left in ``model.history``).
    """
    epochs = positive_int(epochs, "epochs", minimum=0)
    batch_size = positive_int(batch_size, "batch_size")
    recorder = TraceCallback(x, y, validation_data=validation_data, grid=grid, batch_size=batch_size, per_step=per_step)
    on_step = recorder.record_step if per_step else None
    history = model._train(x, y, batch_size, epochs, verbose, [recorder, *(callbacks or [])], 0.0, validation_data,
                           shuffle, 0, on_step=on_step)
    recorder.trace.history = history
    return recorder.trace




def class_labels(values, name: str, threshold: float = 0.5) -> np.ndarray:
    """Class labels from labels (n,), one column (n, 1) or one row per sample (n, k), as :func:`confusion_matrix` reads them.

    A 1-D array (or ``y_true`` with one column) holds the labels themselves:
    integers, integer-valued floats or strings. For ``y_pred``, one column
    holds the probabilities of class 1 (a sigmoid output), thresholded as
    Keras's ``BinaryAccuracy`` does (:math:`p > 0.5` is class 1); several
    columns are one-hot rows or class probabilities, and the label is the
    column of the largest (``argmax``, as ``CategoricalAccuracy``).
    """
    array = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
    if array.ndim == 2 and array.shape[1] == 1 and name != "y_pred":
        array = array[:, 0]
    if array.ndim == 2:
        if array.shape[0] == 0 or not np.isfinite(array.astype(np.float64)).all():
            raise ValueError(f"{name} must be a non-empty array of finite numbers, got shape {array.shape}")
        if array.shape[1] == 1:
            return (array[:, 0] > threshold).astype(np.int64)
        return np.argmax(array, axis=1).astype(np.int64)
    if array.ndim != 1 or array.shape[0] == 0:
        raise ValueError(f"{name} must hold class labels, shape (n_samples,), or one row per sample, shape "
                         f"(n_samples, n_classes); got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or (array != np.round(array)).any():
            raise ValueError(f"{name} holds values that are not class labels (first {array[array != np.round(array)][:1]}); "
                             "probabilities of class 1 go in shape (n_samples, 1), as predict returns them")
        return array.astype(np.int64)
    if array.dtype.kind == "b":
        return array.astype(np.int64)
    return array


def confusion_matrix(y_true, y_pred, x=None, labels=None, threshold: float = 0.5) -> pd.DataFrame:
    """Counts of (true class, predicted class): rows true, columns predicted, as ``sklearn.metrics.confusion_matrix``.

    Parameters
    ----------
    y_true : array-like
        Class labels, shape (n,) or (n, 1), or one-hot rows (n, k).
    y_pred : array-like or model
        Class labels (n,); probabilities of class 1, shape (n, 1) (a sigmoid
        output: class 1 when :math:`p > ` ``threshold``); class probabilities
        (n, k) (a softmax output: the largest). Or a model with ``predict``
        (gdcore or scikit-learn): then ``x`` is required and its predictions are used.
    labels : list, optional
        The classes, in the order of the rows and columns. Default: every
        class in ``y_true`` or the predictions, sorted. A sample whose true or
        predicted class is not listed is not counted (as in scikit-learn).

    Returns
    -------
    DataFrame of int64 counts, index named ``"true"``, columns ``"predicted"``;
    the diagonal holds the correct predictions, so the accuracy is
    ``np.trace(matrix) / matrix.to_numpy().sum()`` when every class is listed.
    """
    unit_interval(threshold, "threshold", closed_right=True)
    if hasattr(y_pred, "predict"):
        if x is None:
            raise ValueError("confusion_matrix: x is required when y_pred is a model (its predictions on x are used)")
        from gdcore.models import Model

        y_pred = y_pred.predict(x, verbose=0) if isinstance(y_pred, Model) else y_pred.predict(x)
    elif x is not None:
        raise ValueError("confusion_matrix: x is only used with a model as y_pred; got predictions and x")
    truth, predicted = class_labels(y_true, "y_true"), class_labels(y_pred, "y_pred", threshold)
    if truth.shape[0] != predicted.shape[0]:
        raise ValueError(f"y_true and y_pred must have the same number of samples, got {truth.shape[0]} and "
                         f"{predicted.shape[0]}")
    if labels is None:
        classes = np.unique(np.concatenate([truth, predicted]))
    else:
        classes = np.asarray(labels)
        if classes.ndim != 1 or classes.size == 0 or np.unique(classes).size != classes.size:
            raise ValueError(f"labels must be a non-empty list of distinct classes, got {labels!r}")
    position = {label: index for index, label in enumerate(classes.tolist())}
    counts = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for true_label, predicted_label in zip(truth.tolist(), predicted.tolist()):
        if true_label in position and predicted_label in position:
            counts[position[true_label], position[predicted_label]] += 1
    return pd.DataFrame(counts, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))
