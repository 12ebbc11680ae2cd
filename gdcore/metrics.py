r"""Metrics, with Keras 3's names and accumulation: one table of per-sample functions and their accumulation rules.

With :math:`e = y - \hat y` and :math:`N` outputs per sample, each metric is
a per-sample value :math:`m_b` (the mean over the outputs of an elementwise
term, summed front to back, as Keras's metric functions take ``ops.mean(...,
axis=-1)``) accumulated over an epoch's batches as Keras's ``Mean`` metric
accumulates it:

.. math::

    \text{total} \leftarrow \text{total} + \mathrm{fl}\Big(\sum_b m_b\Big), \qquad
    \text{count} \leftarrow \text{count} + B, \qquad
    \text{result} = r(\text{total} / \text{count})

in the model's dtype, the batch sum in the profile's summation order (the
order of the loss sum), :math:`\text{total}/\text{count}` a ``divide_no_nan``
(0 when nothing was counted), :math:`r` the identity, or the square root for
RMSE (``RootMeanSquaredError`` takes the root of the accumulated mean, not a
mean of roots). The predictions are those of the forward pass of each batch,
before its update; validation and ``evaluate`` use the weights they are given.

=================================  ===============================================  ============
name (``aliases``)                 per-sample value :math:`m_b`                     result
=================================  ===============================================  ============
mean_squared_error (mse)           :math:`\frac1N\sum_j e_{bj}^2`                   mean
mean_absolute_error (mae)          :math:`\frac1N\sum_j |e_{bj}|`                   mean
mean_absolute_percentage_error     :math:`100\cdot\frac1N\sum_j |e_{bj} / \max(|y_{bj}|, \epsilon)|`  mean
(mape)
mean_squared_logarithmic_error     :math:`\frac1N\sum_j (\log(\max(\hat y_{bj},\epsilon)+1) - \log(\max(y_{bj},\epsilon)+1))^2`  mean
(msle)
root_mean_squared_error            :math:`\frac1N\sum_j e_{bj}^2`                   :math:`\sqrt{\cdot}`
accuracy (the ``Accuracy`` class)  :math:`\frac1N\sum_j [y_{bj} = \hat y_{bj}]`        mean
binary_accuracy                    :math:`\frac1N\sum_j [\,[\hat y_{bj} > t] = y_{bj}\,]`  mean
categorical_accuracy               :math:`[\arg\max_j y_{bj} = \arg\max_j \hat y_{bj}]`  mean
sparse_categorical_accuracy        :math:`[y_b = \arg\max_j \hat y_{bj}]`             mean
=================================  ===============================================  ============

The accuracies follow Keras 3's functions (``keras/src/metrics/accuracy_metrics.py``):
the threshold :math:`t` (``BinaryAccuracy(threshold=0.5)``) is a float32
number whatever the model's dtype, as Keras converts it; ``argmax`` takes the
first maximum, as TensorFlow's ``ArgMax`` does on ties. The string
``"accuracy"`` (or ``"acc"``) is not ``Accuracy``: ``compile`` picks the
binary accuracy for a one-unit output, the sparse categorical one for class
indices and the categorical one otherwise (Keras's ``get_metric``), and the
history key is the string as given. When the loss reads the logits of a
sigmoid/softmax output (:func:`gdcore.losses.training_loss`), the metrics
read the probabilities, as Keras's metrics read the layer's output. Labels a
metric cannot read as Keras means them (a categorical accuracy, or an MSE,
against class indices; smoothed labels) are refused.

:math:`\epsilon` is Keras's ``backend.epsilon()``, 1e-7, in the model's
dtype. Metrics see no ``sample_weight``: Keras's ``compile(metrics=...)``
metrics are unweighted (``weighted_metrics`` are the weighted ones).

Each entry of :data:`METRICS` gives ``value(y_true, y_pred)`` (one element),
``sample(mean)`` (the per-sample value from the mean over the outputs) and
``result(total, count)``; the same functions run on NumPy arrays and,
compiled, on scalars. An entry's id is its position in the table; a new metric
is one more entry. ``compile(metrics=[...])`` takes Keras's
strings (``"mae"``, ``"mean_absolute_error"``, ``"MeanAbsoluteError"``), the
classes below (``name=`` sets the history key) and the per-sample functions
(``gdcore.losses.mean_absolute_error``); the history key is the string as
given, or the object's name, as Keras 3 forms it.

The MSLE's logarithm is TensorFlow's ``Log`` at the element's position
under ``numerics="tensorflow"`` (Eigen's packet ``plog`` or the C library's
``log``, :mod:`gdcore.numerics.lanes`), the C library's in the plain profile:
the same function in both engines, so that they agree to the bit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Callable

import numpy as np

from gdcore._dtype import cast, jitable, keras_float
from gdcore.numerics.eigen_reductions import mean_over_outputs
from gdcore.numerics.lanes import elementwise, log1p_at, log_at

#: Keras's ``backend.epsilon()``.
EPSILON = 1e-7


@jitable
def squared_error(y_true, y_pred):
    error = y_true - y_pred
    return error * error


@jitable
def absolute_error(y_true, y_pred):
    return np.abs(y_true - y_pred)


@jitable
def absolute_percentage_error(y_true, y_pred):
    return np.abs((y_true - y_pred) / np.maximum(np.abs(y_true), cast(EPSILON, y_true)))


@jitable
def squared_logarithmic_error(y_true, y_pred, lane):
    # Keras: log(maximum(y, epsilon) + 1) with epsilon a float32 tensor (fl32(1e-7) in float64 too). In fit's graph
    # TensorFlow's optimizer rewrites Log(x + 1) as Log1p(x), evaluated at the element's position in the (B, N)
    # tensor (gdcore.numerics.lanes); called eagerly, Keras's function runs Log(x + 1) (eager_squared_logarithmic_error).
    epsilon = cast(np.float32(EPSILON), y_pred)
    error = log1p_at(np.maximum(y_pred, epsilon), lane) - log1p_at(np.maximum(y_true, epsilon), lane)
    return error * error


def eager_squared_logarithmic_error(y_true, y_pred, lane):
    """Keras's ``mean_squared_logarithmic_error`` called on arrays: its ``Log(x + 1)``, no graph to rewrite it."""
    one, epsilon = cast(1, y_pred), cast(np.float32(EPSILON), y_pred)
    error = log_at(np.maximum(y_pred, epsilon) + one, lane) - log_at(np.maximum(y_true, epsilon) + one, lane)
    return error * error


@jitable
def equal(y_true, y_pred):
    return cast(y_true == y_pred, y_pred)


@jitable
def above_threshold_matches(y_true, y_pred, threshold):
    return cast(cast(y_pred > threshold, y_true) == y_true, y_pred)


@jitable
def first_argmax(row):
    """The index of the row's first maximum (NumPy's ``argmax``, and TensorFlow's ``ArgMax`` on ties)."""
    best = 0
    for j in range(1, row.shape[0]):
        if row[j] > row[best]:
            best = j
    return best


@jitable
def argmax_matches_row(y_true_row, y_pred_row):
    return cast(first_argmax(y_true_row) == first_argmax(y_pred_row), y_pred_row)


def argmax_matches(y_true, y_pred):
    """Per sample, 1 where the rows' first maxima agree (:func:`argmax_matches_row` over a batch, in NumPy)."""
    return (np.argmax(y_true, axis=1) == np.argmax(y_pred, axis=1)).astype(y_pred.dtype)


@jitable
def identity(mean):
    return mean


@jitable
def percent(mean):
    return cast(100, mean) * mean


def divide_no_nan(total, count):
    """``total / count``, 0 where ``count`` is 0 (Keras's ``ops.divide_no_nan``)."""
    total, count = np.asarray(total), np.asarray(count)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count == 0, np.zeros_like(total), total / count)


def root_of_mean(total, count):
    """:math:`\\sqrt{\\text{total}/\\text{count}}` (``RootMeanSquaredError.result``)."""
    return np.sqrt(divide_no_nan(total, count))


@dataclass(frozen=True)
class MetricRule:
    """A table entry: elementwise ``value``, per-sample ``sample(mean)``, ``result(total, count)``.

    ``name`` is Keras's default metric name (the snake case of ``keras``, the
    class name), ``aliases`` the other strings Keras accepts, ``formula`` LaTeX
    of the per-sample value; ``id`` is the position in :data:`METRICS`.
    ``thresholded`` entries take a third argument, ``value(y_true, y_pred,
    threshold)``. A ``row`` entry compares whole rows: ``row(y_true_row,
    y_pred_row)`` is the per-sample value (compiled), ``value`` the same over a
    batch in NumPy. ``targets`` are the loss target kinds
    (:class:`gdcore.losses.Loss`) whose labels the metric reads as Keras does;
    ``direction`` is whether larger is better (``"up"``, Keras's ``_direction``).
    ``lanes``: ``value(y_true, y_pred, lane)`` evaluates a transcendental op
    by the element's position, as TensorFlow does (:mod:`gdcore.numerics.lanes`).
    ``eager_value``: what Keras's function computes when called on arrays, where
    ``value`` (fit's graph, after TensorFlow's rewrites) differs from it.
    """

    name: str
    keras: str
    value: Callable
    formula: str
    sample: Callable = identity
    result: Callable = divide_no_nan
    aliases: tuple[str, ...] = ()
    thresholded: bool = False
    row: Callable | None = None
    targets: tuple[str, ...] = ("values", "binary", "one_hot")
    direction: str = "down"
    lanes: bool = False
    eager_value: Callable | None = None

    @cached_property  # a position in an immutable table: looked up once (== compares every field)
    def id(self) -> int:
        return METRICS.index(self)

    def __repr__(self) -> str:
        return f"MetricRule({self.name!r})"


def per_sample(rule: MetricRule, y_true: np.ndarray, y_pred: np.ndarray, threshold=0.5, packet: int = 0) -> np.ndarray:
    """:math:`m_b`, shape (B,): the mean over the last axis, then ``rule.sample``.

    ``packet``: 0 sums each row front to back (plain), the SIMD width sums it in
    ``tf.reduce_mean``'s order (the tensorflow profile, :func:`mean_over_outputs`).
    """
    if rule.row is not None:
        return rule.value(y_true, y_pred)
    if rule.lanes:
        values = elementwise(rule.value, packet, y_true, y_pred)
    elif rule.thresholded:
        values = rule.value(y_true, y_pred, cast(threshold, y_pred))
    else:
        values = rule.value(y_true, y_pred)
    return rule.sample(mean_over_outputs(values, packet))


MEAN_SQUARED_ERROR = MetricRule("mean_squared_error", "MeanSquaredError", squared_error, r"m_b = e_b^2",
                                aliases=("mse",))
MEAN_ABSOLUTE_ERROR = MetricRule("mean_absolute_error", "MeanAbsoluteError", absolute_error, r"m_b = |e_b|",
                                 aliases=("mae",))
MEAN_ABSOLUTE_PERCENTAGE_ERROR = MetricRule(
    "mean_absolute_percentage_error", "MeanAbsolutePercentageError", absolute_percentage_error,
    r"m_b = 100\,|e_b / \max(|y_b|, \epsilon)|", sample=percent, aliases=("mape",))
MEAN_SQUARED_LOGARITHMIC_ERROR = MetricRule(
    "mean_squared_logarithmic_error", "MeanSquaredLogarithmicError", squared_logarithmic_error,
    r"m_b = (\log(\max(\hat y_b, \epsilon) + 1) - \log(\max(y_b, \epsilon) + 1))^2", aliases=("msle",), lanes=True,
    eager_value=eager_squared_logarithmic_error)
ROOT_MEAN_SQUARED_ERROR = MetricRule("root_mean_squared_error", "RootMeanSquaredError", squared_error,
                                     r"m_b = e_b^2,\ \text{result} = \sqrt{\text{total}/\text{count}}",
                                     result=root_of_mean)

ACCURACY = MetricRule("accuracy", "Accuracy", equal, r"m_b = [y_b = \hat y_b]", direction="up")
BINARY_ACCURACY = MetricRule("binary_accuracy", "BinaryAccuracy", above_threshold_matches,
                             r"m_b = [\,[\hat y_b > t] = y_b\,]", thresholded=True, direction="up")
CATEGORICAL_ACCURACY = MetricRule("categorical_accuracy", "CategoricalAccuracy", argmax_matches,
                                  r"m_b = [\arg\max_j y_{bj} = \arg\max_j \hat y_{bj}]", row=argmax_matches_row,
                                  direction="up")
# Sparse labels reach the engines as one-hot rows (gdcore.losses.prepare_targets): the same row comparison.
SPARSE_CATEGORICAL_ACCURACY = MetricRule("sparse_categorical_accuracy", "SparseCategoricalAccuracy", argmax_matches,
                                         r"m_b = [y_b = \arg\max_j \hat y_{bj}]", row=argmax_matches_row,
                                         targets=("sparse",), direction="up")

#: Every metric rule, in id order.
METRICS: tuple[MetricRule, ...] = (MEAN_SQUARED_ERROR, MEAN_ABSOLUTE_ERROR, MEAN_ABSOLUTE_PERCENTAGE_ERROR,
                                   MEAN_SQUARED_LOGARITHMIC_ERROR, ROOT_MEAN_SQUARED_ERROR, ACCURACY, BINARY_ACCURACY,
                                   CATEGORICAL_ACCURACY, SPARSE_CATEGORICAL_ACCURACY)
BY_ID = dict(enumerate(METRICS))
# Keras 3's metric strings (keras.metrics.get): the class name, its snake case, and the upper/lower short aliases.
# "accuracy"/"acc" are not Accuracy's: compile picks an accuracy from the loss and the shapes (ACCURACY_STRINGS).
BY_NAME = {key: rule for rule in METRICS if rule is not ACCURACY
           for key in (rule.name, rule.keras, *rule.aliases, *(alias.upper() for alias in rule.aliases))}
BY_NAME["Accuracy"] = ACCURACY
#: The strings Keras's ``compile`` resolves by the targets and outputs (``get_metric`` in ``trainers/compile_utils.py``).
ACCURACY_STRINGS = ("accuracy", "acc")


class Metric:
    """A compiled metric: a rule of :data:`METRICS` and the name its values carry in ``History`` and logs."""

    rule: MetricRule | None
    threshold: float = 0.5

    def __init__(self, name: str | None = None, dtype=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}(name=...) must be a string, got {type(name).__name__}")
        if dtype is not None:
            raise NotImplementedError(f"{type(self).__name__}(dtype=...) is not supported: metrics are accumulated "
                                      "in the model's dtype")
        self.name = self.rule.name if name is None else name

    def resolve(self, targets: str, n_outputs: int) -> MetricRule:
        """The rule this metric runs for a loss with ``targets`` labels and ``n_outputs`` outputs (checked)."""
        if targets not in self.rule.targets:
            reads = "class indices (sparse_categorical_crossentropy)" if self.rule.targets == ("sparse",) else \
                "labels of the output's shape"
            raise ValueError(f"metrics: {self.name!r} reads {reads}, but the loss takes {targets} labels: "
                             f"Keras would broadcast them into a meaningless number. Use 'accuracy', which picks "
                             "the accuracy for the loss and the output")
        return self.rule

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": None}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class _PickedAccuracy(Metric):
    """``"accuracy"``/``"acc"`` in ``compile``: Keras's choice, made once the targets and outputs are known.

    Keras's ``is_binary_or_sparse_categorical``: one output unit → binary
    accuracy; labels of lower rank than the output, or of width 1 against a
    wider output → sparse categorical; otherwise categorical. Class-index
    labels are what the sparse cross-entropy takes, so the choice follows the
    loss's target kind.
    """

    rule = None

    def __init__(self, name: str):
        super().__init__(name=name)

    def resolve(self, targets: str, n_outputs: int) -> MetricRule:
        if n_outputs == 1:
            return BINARY_ACCURACY
        return SPARSE_CATEGORICAL_ACCURACY if targets == "sparse" else CATEGORICAL_ACCURACY


def _metric_class(rule: MetricRule) -> type:
    cls = type(rule.keras, (Metric,), {"rule": rule, "__module__": __name__,
                                       "__doc__": f"Keras's ``keras.metrics.{rule.keras}``: {rule.name}, "
                                                  ":mod:`gdcore.metrics` (``name=`` sets its history key)."})
    return cls


class BinaryAccuracy(Metric):
    """Keras's ``keras.metrics.BinaryAccuracy``: how often :math:`[\\hat y > t]` equals the 0/1 label.

    ``threshold`` is converted as Keras converts it, to a float32 tensor that
    meets a float64 prediction as float32's nearest value (0.7 compares as
    0.699999988079071); any finite number is accepted (0 for logits).
    """

    rule = None  # set below, once the table exists

    def __init__(self, name: str = "binary_accuracy", dtype=None, threshold: float = 0.5):
        super().__init__(name=name, dtype=dtype)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)) or \
                not np.isfinite(threshold):
            raise ValueError(f"BinaryAccuracy(threshold=...) must be a finite number, got {threshold!r}")
        self.threshold = float(threshold)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": None, "threshold": self.threshold}

    def __repr__(self) -> str:
        return f"BinaryAccuracy(name={self.name!r}, threshold={self.threshold!r})"


BinaryAccuracy.rule = BINARY_ACCURACY
MeanSquaredError = _metric_class(MEAN_SQUARED_ERROR)
MeanAbsoluteError = _metric_class(MEAN_ABSOLUTE_ERROR)
MeanAbsolutePercentageError = _metric_class(MEAN_ABSOLUTE_PERCENTAGE_ERROR)
MeanSquaredLogarithmicError = _metric_class(MEAN_SQUARED_LOGARITHMIC_ERROR)
RootMeanSquaredError = _metric_class(ROOT_MEAN_SQUARED_ERROR)
Accuracy = _metric_class(ACCURACY)
CategoricalAccuracy = _metric_class(CATEGORICAL_ACCURACY)
SparseCategoricalAccuracy = _metric_class(SPARSE_CATEGORICAL_ACCURACY)
_CLASSES = {cls.rule: cls for cls in (MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
                                      MeanSquaredLogarithmicError, RootMeanSquaredError, Accuracy, BinaryAccuracy,
                                      CategoricalAccuracy, SparseCategoricalAccuracy)}


def _per_sample_function(rule: MetricRule) -> Callable:
    def function(y_true, y_pred, **options):
        from gdcore import config
        from gdcore.losses import packet_width  # losses imports this module
        from gdcore.numerics import get_profile

        predictions = keras_float(y_pred, "y_pred")
        dtype = predictions.dtype
        if predictions.ndim == 0:
            raise ValueError(f"{rule.name}: y_pred must have at least one axis (a sample's outputs), got a number")
        leading = predictions.shape[:-1]  # Keras reduces the last axis: a 1-D y_pred is one sample
        predictions = predictions.astype(dtype).reshape(-1, predictions.shape[-1])
        targets = np.asarray(y_true)
        if targets.dtype.kind not in "biuf":
            raise TypeError(f"{rule.name}: y_true must be numbers, got {y_true!r:.60}")
        if rule.targets == ("sparse",):
            if targets.size != len(predictions):
                raise ValueError(f"{rule.name}: y_true must hold one class index per sample ({len(predictions)}), "
                                 f"got shape {targets.shape}")
            y_true = np.eye(predictions.shape[1], dtype=dtype)[targets.reshape(-1).astype(np.int64)]
        else:
            if targets.ndim == len(leading) and leading == targets.shape[:len(leading)] and np.shape(y_pred)[-1] == 1:
                targets = targets[..., None]  # Keras's squeeze_or_expand_to_same_rank: (n,) against (n, 1)
            if targets.shape != np.shape(y_pred) and targets.ndim != 0:
                raise ValueError(f"{rule.name}: y_true has shape {targets.shape} but y_pred has shape "
                                 f"{np.shape(y_pred)}")
            y_true = np.broadcast_to(targets.astype(dtype), np.shape(y_pred)).reshape(predictions.shape)
        threshold = BinaryAccuracy(threshold=options.pop("threshold", 0.5)).threshold if rule.thresholded else 0.5
        if options:
            raise TypeError(f"{rule.name}() got unexpected keyword arguments {sorted(options)}")
        if rule.row is None and rule.direction == "up":
            # Keras's accuracy and binary_accuracy return each element's match, unreduced, in floatx (its Mean
            # metric averages them per sample in fit)
            matches = rule.value(y_true, predictions, cast(np.float32(threshold), predictions)) if rule.thresholded \
                else rule.value(y_true, predictions)
            return matches.astype(config.floatx()).reshape(np.shape(y_pred))
        packet = packet_width(get_profile(config.numerics()), dtype)
        values = per_sample(rule if rule.eager_value is None else replace(rule, value=rule.eager_value), np.ascontiguousarray(y_true), np.ascontiguousarray(predictions), np.float32(threshold),
                            packet)
        if rule.row is not None:
            values = values.astype(config.floatx())  # Keras casts its argmax matches to floatx
        return values.reshape(leading) if leading else values[0]

    function.__name__ = function.__qualname__ = rule.name
    function.__doc__ = f"Keras's ``keras.metrics.{rule.name}``: the per-sample value, ${rule.formula}$ (mean over the last axis)."
    function.rule = rule
    return function


mean_squared_error = _per_sample_function(MEAN_SQUARED_ERROR)
mean_absolute_error = _per_sample_function(MEAN_ABSOLUTE_ERROR)
mean_absolute_percentage_error = _per_sample_function(MEAN_ABSOLUTE_PERCENTAGE_ERROR)
mean_squared_logarithmic_error = _per_sample_function(MEAN_SQUARED_LOGARITHMIC_ERROR)
binary_accuracy = _per_sample_function(BINARY_ACCURACY)
categorical_accuracy = _per_sample_function(CATEGORICAL_ACCURACY)
sparse_categorical_accuracy = _per_sample_function(SPARSE_CATEGORICAL_ACCURACY)


def get(identifier) -> Metric:
    """A :class:`Metric` from a Keras identifier: a string, a :class:`Metric`, its class, or a per-sample function.

    The metric's name is the string as given (``"mae"`` stays ``"mae"``), else
    the object's name, as Keras 3's ``compile`` names it.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric) and identifier is not Metric:
        return identifier()
    if isinstance(identifier, str):
        if identifier.lower() in ACCURACY_STRINGS:
            metric = _PickedAccuracy(name=identifier)
        elif identifier not in BY_NAME:
            hint = " (Keras 3 has no 'rmse' string: use 'root_mean_squared_error' or RootMeanSquaredError())" \
                if identifier.lower() == "rmse" else ""
            raise ValueError(f"unknown metric {identifier!r}{hint}; known: {', '.join(sorted(BY_NAME))}")
        else:
            metric = _CLASSES[BY_NAME[identifier]](name=identifier)
        metric._given_as = "string"
        return metric
    rule = getattr(identifier, "rule", None)
    if callable(identifier) and isinstance(rule, MetricRule):
        metric = _CLASSES[rule](name=identifier.__name__)
        metric._given_as = "function"
        return metric
    from gdcore import losses

    if isinstance(identifier, losses.Loss):
        raise TypeError(f"metrics: {identifier!r} is a loss object; Keras would average its batch values per batch, "
                        f"not per sample. Pass the metric {identifier.name!r} (a string), "
                        f"gdcore.metrics.{identifier.keras}() or gdcore.losses.{identifier.name}")
    raise TypeError(f"metrics: cannot interpret {identifier!r} as a metric; give a name "
                    f"({', '.join(sorted(BY_NAME))}), a gdcore.metrics class or object, or a per-sample function "
                    "such as gdcore.losses.mean_absolute_error")


def compile_metrics(metrics, weighted_metrics=None) -> tuple[list[tuple[str, Metric]], list[bool]]:
    """``(key, metric)`` per metric of ``compile(metrics=..., weighted_metrics=...)``, keys made unique as Keras 3
    makes them, and per entry whether it is a weighted metric.

    Each argument is a list or tuple, or a dict; for a single-output model
    Keras flattens either (nested lists in order, dicts by sorted key,
    whatever the keys). The metrics come first, then the weighted metrics.
    A repeated name among the
    metrics gets the key ``name_1``, ``name_2``, ...; a weighted metric whose
    name is taken gets ``weighted_name`` (then ``weighted_name_1``, ...), as
    ``CompileMetrics.result`` names them (the metric keeps its name, which is
    what ``evaluate``'s list follows).
    """
    result, weighted, seen = [], [], {}
    for argument, given in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
        for metric in _flatten_metrics(given, argument):
            key = metric.name
            if key in seen and argument == "weighted_metrics":
                key = f"weighted_{metric.name}"
            if key in seen:
                seen[key] += 1
                key = f"{key}_{seen[key] - 1}"
            else:
                seen[key] = 1
            result.append((key, metric))
            weighted.append(argument == "weighted_metrics")
    return result, weighted


def _flatten_metrics(metrics, argument: str):
    if metrics is None:
        return
    if not isinstance(metrics, (list, tuple, dict)):
        raise ValueError(f"{argument} must be a list, tuple or dict, got {metrics!r} of type "
                         f"{type(metrics).__name__}: pass e.g. {argument}=[{metrics!r}]")

    def flatten(items):
        if isinstance(items, dict):
            items = [items[key] for key in sorted(items)]
        for item in items:
            if isinstance(item, (list, tuple, dict)):
                yield from flatten(item)
            else:
                yield item

    for item in flatten(metrics):
        metric = get(item)
        if metric.name == "loss" or metric.name.startswith("val_"):
            raise ValueError(f"{argument}: a metric named {metric.name!r} would overwrite the loss or a validation "
                             "value in the logs (Keras overwrites it silently); give it another name=")
        yield metric


def keras_config(metric: Metric, dtype) -> str | dict:
    """``metric`` as Keras 3 writes it in a ``compile_config``: the string given, a function's name, or the object.

    (``keras.saving.serialize_keras_object``: a string stays a string, a
    function becomes ``{"module": "builtins", "class_name": "function", ...}``,
    a metric object its class and ``get_config()``, the dtype the model's.)
    """
    given_as = getattr(metric, "_given_as", "object")
    if given_as == "string":
        return metric.name
    if given_as == "function":
        return {"module": "builtins", "class_name": "function", "config": metric.name, "registered_name": "function"}
    return {"module": "keras.metrics", "class_name": type(metric).__name__,
            "config": {**metric.get_config(), "dtype": np.dtype(dtype).name}, "registered_name": None}


def from_keras_config(entry) -> Metric:
    """The metric a ``compile_config`` entry names (:func:`keras_config`'s inverse; Keras's own files included)."""
    if isinstance(entry, str):
        return get(entry)
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise ValueError(f"metric {entry!r} is not a Keras metric entry")
    if entry.get("class_name") == "function" and isinstance(entry.get("config"), str):
        function = globals().get(entry["config"])
        if not callable(function) or not isinstance(getattr(function, "rule", None), MetricRule):
            raise ValueError(f"metric function {entry['config']!r} is not supported; supported: "
                             f"{', '.join(sorted(rule.name for rule in _CLASSES if rule.name in globals()))}")
        return get(function)
    cls = next((cls for cls in _CLASSES.values() if cls.__name__ == entry["class_name"]), None)
    if cls is None or entry.get("module", "keras.metrics") != "keras.metrics":
        raise ValueError(f"metric class {entry.get('module')}.{entry['class_name']} is not supported; supported: "
                         f"{', '.join(sorted(cls.__name__ for cls in _CLASSES.values()))}")
    options = dict(entry.get("config") or {})
    options.pop("dtype", None)  # metrics accumulate in the model's dtype, as Keras's do in a float64 model
    try:
        return cls(**options)
    except TypeError as error:
        raise ValueError(f"metric {entry['class_name']}: {error}") from None


def for_run(pairs, weighted, loss, n_outputs: int, dtype, output_activation: int, logits_recovered: bool):
    """The :class:`gdcore._contract.Metrics` the engines run for ``pairs`` (``compile_metrics``) with ``loss``.

    Each metric's rule is chosen for the loss's target kind and the output's
    width (``"accuracy"``) and checked against them; with the logits recovered
    the metrics read ``output_activation`` of them, the predictions Keras's
    metrics see.
    """
    from gdcore import activations
    from gdcore._contract import Metrics

    if pairs and loss.label_smoothing:
        raise NotImplementedError(f"metrics with label_smoothing={loss.label_smoothing} are not supported: Keras's "
                                  "metrics read the unsmoothed labels, which the engines do not keep")
    rules = [metric.resolve(loss.targets, n_outputs) for _, metric in pairs]
    dtype = np.dtype(dtype)
    thresholds = np.array([np.float32(metric.threshold) for _, metric in pairs], dtype=dtype)
    return Metrics(np.array([rule.id for rule in rules], dtype=np.int64), thresholds, np.array(weighted, dtype=bool),
                   output_activation if logits_recovered else activations.LINEAR.id)


def results(pairs, sums: np.ndarray) -> dict[str, list | float]:
    """``{key: value}`` from ``sums[..., k, :]`` = metric k's ``[total, count]`` (the rule's ``result``)."""
    return {key: (metric.rule or ACCURACY).result(sums[..., k, 0], sums[..., k, 1]) for k, (key, metric) in enumerate(pairs)}


class _Unsupported(NotImplementedError, AttributeError):
    """A Keras metric gdcore lacks: NotImplementedError with the list of what it has, and an AttributeError (``hasattr``)."""


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise _Unsupported(f"keras.metrics.{name} is not supported yet by gdcore; supported: "
                              f"{', '.join(sorted(cls.__name__ for cls in _CLASSES.values()))} and the strings "
                              f"{', '.join(sorted(BY_NAME))}")
