r"""Losses, with Keras's names, reduction and gradient: one table of elementwise and row functions.

With :math:`e = y - \hat y` (``y_true - y_pred``), a batch of :math:`B`
samples (the last batch of an epoch may be partial, and :math:`B` is then its
actual size) and :math:`N` outputs per sample:

=====================  ==================================  ===========================================================
name                   batch loss :math:`L`                :math:`\partial L / \partial \hat y_{bj}`
=====================  ==================================  ===========================================================
mean_squared_error     :math:`\frac1B\sum_b \frac1N\sum_j e_{bj}^2`   :math:`-\big(\mathrm{fl}(\tfrac1B / N)\cdot 2e_{bj}\big)`
mean_absolute_error    :math:`\frac1B\sum_b \frac1N\sum_j |e_{bj}|`   :math:`-\big(\mathrm{fl}(\tfrac1B / N)\cdot \operatorname{sign} e_{bj}\big)`
=====================  ==================================  ===========================================================

The cross-entropies (Keras 3, TensorFlow backend; :math:`\bar p = \mathrm{clip}(\hat y, \epsilon, 1 - \epsilon)`,
:math:`\epsilon = 10^{-7}`, and the gradient is 0 where the clip is active):

==================================  ============================================================  ===========================================
name                                per-sample loss :math:`\ell_b`                                :math:`\partial L/\partial` output
==================================  ============================================================  ===========================================
binary_crossentropy                 :math:`\frac1N\sum_j -(y\log\bar p + (1-y)\log(1-\bar p))`    :math:`\frac{1}{BN}(\frac{1-y}{1-\bar p} - \frac{y}{\bar p})`
binary_crossentropy (logits z)      :math:`\frac1N\sum_j \max(z,0) - zy + \log(1+e^{-|z|})`       :math:`\frac{1}{BN}(\sigma(z) - y)`
categorical_crossentropy            :math:`-\sum_j y_j \log \mathrm{clip}(\hat y_j / \sum_k \hat y_k)`   through the normalisation (``categorical_crossentropy``)
categorical_crossentropy (logits)   :math:`\log\sum_k e^{z_k} - \sum_j y_j z_j`                     :math:`\frac1B(\mathrm{softmax}(z) - y)`
sparse_categorical_crossentropy     the logits formula on :math:`\log \bar p` (labels one-hot)      through the log and the clip
==================================  ============================================================  ===========================================

A sigmoid (softmax) output feeding binary (categorical or sparse) cross-entropy
is trained on its logits: :func:`training_loss`.

Each entry of :data:`LOSSES` gives ``value(y_true, y_pred)`` (one element)
and ``grad(y_true, y_pred, scale)`` with ``scale = fl(1/B) / N``; the same
functions run on NumPy arrays and, compiled, on scalars. An entry's id is its
position in the table.

Keras convention, kept exactly: the per-sample value is the mean over the
last axis (summed front to back); the batch value is ``sum(per_sample) / B``
(``sum_over_batch_size``) with the profile's summation order; the gradient is
formed as TensorFlow's autodiff forms it, the scale :math:`\mathrm{fl}(1/B)`
first, then times ``2 * e`` (``SquareGrad``) or ``sign(e)`` (``AbsGrad``, with
sign(0) = 0). scikit-learn's ``squared_error`` is half of this MSE; see
:mod:`reference`. The other reductions of Keras 3 (``reduction="sum"``,
``"none"``/None, ``"mean_with_sample_weight"``) replace :math:`\mathrm{fl}(1/B)`
by :func:`gradient_scale` and the batch value by :func:`reduce_batch`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable

import numpy as np

from gdcore._dtype import cast, jitable, keras_float, libm_exp, libm_log, where
from gdcore._validation import lookup
from gdcore.numerics import eigen
from gdcore.numerics.eigen_reductions import inner_sum, mean_over_outputs
from gdcore.numerics.lanes import PACKET, PLAIN, TAIL, elementwise, lane_of  # noqa: F401 (the engines read the lanes here)
from gdcore.numerics.lanes import exp_at as _exp, log1p_at as _log1p, log_at as _log, reciprocal_at as _reciprocal
# Keras exports the per-sample functions as losses and as metrics: one definition, in gdcore.metrics,
# and so are the elementwise errors both tables use.
from gdcore.metrics import (absolute_error, mean_absolute_error, mean_absolute_percentage_error,  # noqa: F401
                            mean_squared_error, mean_squared_logarithmic_error, squared_error)


@jitable
def squared_error_grad(y_true, y_pred, scale):
    """:math:`\\partial L/\\partial \\hat y` for one element, ``scale = fl(1/B)/N``."""
    error = y_true - y_pred
    return -(scale * (cast(2, error) * error))


@jitable
def absolute_error_grad(y_true, y_pred, scale):
    return -(scale * np.sign(y_true - y_pred))


EPSILON = 1e-7

# --- how TensorFlow evaluates a transcendental op at an element: its lane (gdcore.numerics.lanes) ------
#
# Every op of a cross-entropy's graph acts on the (B, N) output tensor, so an
# element's lane is its position there (:func:`fill_lanes`); only the softmax
# kernels' log of the row sums acts on a (B,) vector.


@jitable
def fill_lanes(lanes, row, rows, packet):
    """The lanes of row ``row`` of a (``rows``, k) tensor: ``lanes[j]`` for its element j, ``lanes[k]`` for its entry in a (rows,) vector.

    ``packet`` is the SIMD width P (0: the plain profile, every lane PLAIN).
    """
    k = lanes.shape[0] - 1
    if packet == 0:
        for j in range(k + 1):
            lanes[j] = PLAIN
        return
    size = rows * k
    end = size - size % packet
    for j in range(k):
        lanes[j] = lane_of(row * k + j, end, packet)
    lanes[k] = lane_of(row, rows - rows % packet, packet)


@jitable
def _row_sum(values, b, packet):
    """``tf.reduce_sum`` over row ``b`` in Eigen's inner-most order (the tensorflow profile, ``packet`` > 0), or front to back."""
    if packet:
        return inner_sum(values[b])
    total = cast(0, values[b, 0])
    for j in range(values.shape[1]):
        total = total + values[b, j]
    return total


@jitable(inline=True)
def _row_max(values, b):
    largest = values[b, 0]
    for j in range(1, values.shape[1]):
        largest = max(largest, values[b, j])
    return largest


@jitable
def _clip(p):
    return np.maximum(np.minimum(p, cast(1.0 - EPSILON, p)), cast(EPSILON, p))


@jitable
def _inside_clip(p):
    return (p >= cast(EPSILON, p)) & (p <= cast(1.0 - EPSILON, p))


@jitable
def binary_crossentropy(y_true, y_pred, lane):
    p = _clip(y_pred)
    one = cast(1, p)
    return -(y_true * _log(p, lane) + (one - y_true) * _log(one - p, lane))


@jitable
def binary_crossentropy_grad(y_true, y_pred, scale, lane):
    p = _clip(y_pred)
    one = cast(1, p)
    upstream = -scale
    grad = (y_true * upstream) * _reciprocal(p, lane) - ((one - y_true) * upstream) * _reciprocal(one - p, lane)
    return where(_inside_clip(y_pred), grad, cast(0, p))


@jitable
def sigmoid_cross_entropy_with_logits(y_true, y_pred, lane):
    """TensorFlow's ``sigmoid_cross_entropy_with_logits`` (``y_pred`` are logits z)."""
    z = y_pred
    zero = cast(0, z)
    relu = where(z >= zero, z, zero)
    neg_abs = where(z >= zero, -z, z)
    return (relu - z * y_true) + _log1p(_exp(neg_abs, lane), lane)


@jitable
def sigmoid_cross_entropy_with_logits_grad(y_true, y_pred, scale, lane):
    z = y_pred
    zero, one = cast(0, z), cast(1, z)
    neg_abs = where(z >= zero, -z, z)
    exp_neg_abs = _exp(neg_abs, lane)
    through_exp = (scale * _reciprocal(one + exp_neg_abs, lane)) * exp_neg_abs  # Log1pGrad, then ExpGrad
    # TensorFlow's AddN adds the paths into z as (relu + exponential) + product (a zero path adds nothing),
    # measured against tf.GradientTape in a tf.function, float32 and float64.
    return where(z >= zero, (scale + -through_exp) + -scale * y_true, -scale * y_true + through_exp)


@jitable(inline=True)
def _softmax_cross_entropy_row(labels, logits, delta, b, scale, with_gradient, lanes, packet, log_lane):
    """TensorFlow's ``(Sparse)SoftmaxCrossEntropyWithLogits`` kernel on row ``b``: the loss, and ``scale * (softmax - labels)``.

    The kernel (``xent_op.h``, ``sparse_xent_op.h``): m = max z; s = z - m;
    the row sum of exp(s), reduced along the row (its whole packets of P
    elements in packet lanes, the rest in the C library); the log of that sum
    (``log_lane``: positioned in the (B,) vector for dense labels, the C
    library for sparse ones); the loss summed along the row; the backprop
    exp(s) / sum - labels, exp positioned in the (B, k) tensor (``lanes``).
    Row ``b`` of ``delta`` is scratch until the gradient is written.
    """
    n = logits.shape[1]
    largest = _row_max(logits, b)
    if packet == 0:
        # Every exp is the C library's: the gradient reuses the sum's exps, and the loss is summed as it is formed
        # (front to back, as _row_sum sums a plain row), so the C library is called n + 1 times instead of 2n + 1.
        total = cast(0, largest)
        for j in range(n):
            delta[b, j] = libm_exp(logits[b, j] - largest)
            total = total + delta[b, j]
        log_total = libm_log(total)
        loss = cast(0, largest)
        for j in range(n):
            loss = loss + labels[b, j] * (log_total - (logits[b, j] - largest))
            if with_gradient:
                delta[b, j] = scale * (delta[b, j] / total - labels[b, j])
    else:
        whole = n - n % (32 // logits.itemsize)  # the reduction reads whole packets from the row's start
        for j in range(n):
            delta[b, j] = _exp(logits[b, j] - largest, PACKET if j < whole else TAIL)
        total = _row_sum(delta, b, packet)
        log_total = _log(total, log_lane)
        for j in range(n):
            delta[b, j] = labels[b, j] * (log_total - (logits[b, j] - largest))
        loss = _row_sum(delta, b, packet)
        if with_gradient:
            for j in range(n):
                delta[b, j] = scale * (_exp(logits[b, j] - largest, lanes[j]) / total - labels[b, j])
    return loss


@jitable(inline=True)
def softmax_cross_entropy_with_logits(y_true, y_pred, delta, b, scale, with_gradient, lanes, packet):
    """Row b: :math:`\\ell = \\sum_j t_j(\\log\\sum_k e^{z_k - m} - (z_j - m))`, :math:`m = \\max_k z_k`."""
    return _softmax_cross_entropy_row(y_true, y_pred, delta, b, scale, with_gradient, lanes, packet, lanes[-1])


@jitable(inline=True)
def sparse_softmax_cross_entropy_with_logits(y_true, y_pred, delta, b, scale, with_gradient, lanes, packet):
    """:func:`softmax_cross_entropy_with_logits` with the sparse kernel's log (always the C library's)."""
    return _softmax_cross_entropy_row(y_true, y_pred, delta, b, scale, with_gradient, lanes, packet, PLAIN)


@jitable
def categorical_crossentropy(y_true, y_pred, delta, b, scale, with_gradient, lanes, packet):
    """Row b of probabilities: normalised by their sum, clipped, :math:`\\ell = -\\sum_j t_j \\log p_j`."""
    n = y_pred.shape[1]
    total = _row_sum(y_pred, b, packet)
    for j in range(n):
        delta[b, j] = y_true[b, j] * _log(_clip(y_pred[b, j] / total), lanes[j])
    loss = _row_sum(delta, b, packet)
    if with_gradient:
        # RealDivGrad: d/dp_j = q_j / s + sum_k q_k * ((-p_k / s) / s), q = dL/d(p / s) through the clip and log.
        through = np.empty((1, n), delta.dtype)
        for j in range(n):
            normalised = y_pred[b, j] / total
            q = (y_true[b, j] * -scale) * _reciprocal(_clip(normalised), lanes[j]) if _inside_clip(normalised) \
                else cast(0, total)
            delta[b, j] = q
            through[0, j] = q * ((-y_pred[b, j] / total) / total)
        through_total = _row_sum(through, 0, packet)
        for j in range(n):
            delta[b, j] = delta[b, j] / total + through_total
    return -loss


@jitable
def sparse_categorical_crossentropy(y_true, y_pred, delta, b, scale, with_gradient, lanes, packet):
    """Row b of probabilities, labels one-hot: clipped, logged, then :func:`sparse_softmax_cross_entropy_with_logits`."""
    n = y_pred.shape[1]
    logits = np.empty((1, n), y_pred.dtype)
    labels = np.empty((1, n), y_true.dtype)
    gradient = np.empty((1, n), delta.dtype)
    for j in range(n):
        logits[0, j] = _log(_clip(y_pred[b, j]), lanes[j])
        labels[0, j] = y_true[b, j]
    loss = _softmax_cross_entropy_row(labels, logits, gradient, 0, scale, with_gradient, lanes, packet, PLAIN)
    if with_gradient:
        for j in range(n):
            delta[b, j] = gradient[0, j] * _reciprocal(_clip(y_pred[b, j]), lanes[j]) if _inside_clip(y_pred[b, j]) \
                else cast(0, loss)
    return loss


# --- the batch reduction (Keras 3's ``reduce_values``, and what ``fit`` does with it) -------------
#
# Keras reduces the weighted per-sample losses v_b = fl(l_b w_b) of a batch of B:
# "sum_over_batch_size" (= "mean") to divide_no_nan(sum v, B), "sum" to sum v,
# "mean_with_sample_weight" to divide_no_nan(sum v, sum w) (sum v / B when no
# weights are given), "none"/None not at all. ``fit`` then differentiates that
# value (an unreduced vector as its sum: TensorFlow's tape seeds it with ones),
# so the gradient of v_b is fl(1/B), 1, 1 or div_no_nan(1, sum w); and its loss
# tracker (a Mean weighted by B) reads a vector as its mean, so "none" reports
# fl(sum v / B) as the default does while training at B times its gradient.

SUM_OVER_BATCH_SIZE, SUM, NONE, MEAN_WITH_SAMPLE_WEIGHT = 0, 1, 2, 3
#: Keras 3's loss reductions (``standardize_reduction``), and the engines' code of each.
REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "none", None, "mean_with_sample_weight")
REDUCTION_IDS = {"sum_over_batch_size": SUM_OVER_BATCH_SIZE, "mean": SUM_OVER_BATCH_SIZE, "sum": SUM, "none": NONE,
                 None: NONE, "mean_with_sample_weight": MEAN_WITH_SAMPLE_WEIGHT}


@jitable
def divide_no_nan(x, y):
    """TensorFlow's ``DivNoNan``: x / y, and 0 where y is 0."""
    return cast(0, x) if y == cast(0, y) else x / y


@jitable
def reduce_batch(total, rows, weight_total, reduction):
    """The batch loss fit reports, from ``total`` = :math:`\\sum_b w_b\\ell_b`, ``rows`` = B, ``weight_total`` = :math:`\\sum_b w_b`.

    ``weight_total`` is read by ``mean_with_sample_weight`` only (B there when no weights are given).
    """
    if reduction == SUM:
        return total
    if reduction == MEAN_WITH_SAMPLE_WEIGHT:
        return divide_no_nan(total, weight_total)
    return total / rows  # sum_over_batch_size, mean (B > 0: divide_no_nan's division); none: the tracker's mean


@jitable
def gradient_scale(rows, weight_total, reduction):
    """:math:`\\partial L/\\partial (w_b\\ell_b)` in ``fit``: fl(1/B); 1 for "sum" and "none"; div_no_nan(1, sum w)."""
    one = cast(1, rows)
    if reduction == SUM or reduction == NONE:
        return one
    if reduction == MEAN_WITH_SAMPLE_WEIGHT:
        return divide_no_nan(one, weight_total)
    return one / rows


@dataclass(frozen=True)
class Loss:
    r"""A named loss: elementwise ``value(y_true, y_pred)`` and ``grad(y_true, y_pred, scale)``, or a ``row`` function.

    ``formula``/``grad_formula`` are LaTeX for one sample's term and the
    gradient (rendered by :mod:`gdcore.explain`), ``keras`` the Keras class
    name, ``aliases`` the other names Keras accepts, ``sklearn`` scikit-learn's
    name of the same loss where one exists; ``id`` is its position in :data:`LOSSES`.

    ``lanes``: ``value`` and ``grad`` take the element's lane (:data:`PLAIN`,
    :data:`PACKET`, :data:`TAIL`) as a last argument, because TensorFlow
    evaluates their transcendental ops by position (the binary cross-entropies).

    A loss over a whole row of outputs (the categorical cross-entropies) has
    ``row(y_true, y_pred, delta, b, scale, with_gradient, lanes, packet) -> value``
    instead: sample ``b``'s loss (summed over the classes, not averaged) and,
    with ``with_gradient``, row ``b`` of ``delta`` = :math:`\partial L/\partial \hat y`
    with ``scale = fl(1/B)``; ``lanes`` from :func:`fill_lanes` and ``packet``
    the SIMD width they were filled for (0: the plain profile). A row reads
    the batch's (B, k) arrays at ``[b, j]`` and decides its profile on
    ``packet``: a view per row, or a branch on ``lanes[0]``, each made the
    compiled pass several times slower than the arithmetic. ``targets`` says what ``y`` holds: ``"values"``,
    ``"binary"`` (0/1), ``"one_hot"`` or ``"sparse"`` (class indices, given to
    the engines one-hot). ``logits`` names the entry Keras uses instead when
    the output layer's activation is ``recovers`` (Keras 3 reads the logits
    back from a sigmoid or softmax output, :func:`training_loss`).
    ``from_logits``, ``label_smoothing`` and ``reduction`` (one of
    :data:`REDUCTIONS`) are the Keras options of the configured object (they
    do not change the entry's identity), and so are ``config_name`` (the
    Keras object's ``name=``, None for Keras's default :attr:`keras_name`:
    it names the object in its config, not the ``"loss"`` key of the logs,
    as in Keras 3) and ``dtype`` (``dtype=``: the dtype a call computes in,
    None for ``floatx()``; in ``fit``/``evaluate`` it must be the model's).
    """

    name: str
    keras: str
    value: Callable | None
    grad: Callable | None
    formula: str
    grad_formula: str
    aliases: tuple[str, ...] = ()
    sklearn: str | None = None
    row: Callable | None = None
    lanes: bool = False
    targets: str = "values"
    logits: str | None = None
    recovers: str | None = None
    from_logits: bool = field(default=False, compare=False)
    label_smoothing: float = field(default=0.0, compare=False)
    reduction: str | None = field(default="sum_over_batch_size", compare=False)
    config_name: str | None = field(default=None, compare=False)
    dtype: str | None = field(default=None, compare=False)

    @cached_property  # a position in an immutable table: looked up once (== compares every field)
    def id(self) -> int:
        return LOSSES.index(self)

    @property
    def keras_name(self) -> str:
        """The Keras object's ``name``: the one given, else Keras's default (the class's, from_logits or not)."""
        return self.config_name or BY_NAME[self.keras.lower()].name

    @property
    def reduction_id(self) -> int:
        """The engines' code of :attr:`reduction` (:data:`REDUCTION_IDS`)."""
        return REDUCTION_IDS[self.reduction]

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Keras-style call: ``reduction`` of the (weighted) per-sample losses, in the loss's dtype.

        As Keras's ``Loss.__call__``: both arrays are cast to the loss's dtype
        (``dtype=``; Keras's default, ``floatx()``), each per-sample loss is times its
        weight (``sample_weight``: a number or one per sample), then reduced
        (:func:`reduce_batch`); ``"none"``/None return the (B,) vector. A 1-D
        ``y_pred`` is one sample (Keras averages over the last axis): its loss,
        a scalar, unreduced. The profile of ``gdcore.config.numerics()`` sums
        and evaluates.
        """
        from gdcore import config
        from gdcore.numerics import get_profile

        dtype = np.dtype(self.dtype or config.floatx())
        y_pred = np.asarray(y_pred, dtype=dtype)
        one_sample = y_pred.ndim == 1  # Keras: one sample, its outputs along the only axis
        if one_sample:
            if sample_weight is not None and np.ndim(sample_weight) != 0:
                raise ValueError("sample_weight must be a number for a 1-D y_pred (one sample), got shape "
                                 f"{np.shape(sample_weight)}")
            y_pred = y_pred[None, :]
            y_true = np.asarray(y_true)[None, ...]
        if y_pred.ndim != 2:
            raise ValueError(f"y_pred must have shape (samples,) or (samples, outputs), got shape {y_pred.shape}")
        y_true = prepare_targets(self, y_true, y_pred.shape[1], dtype, "y_true")
        if y_true.shape != y_pred.shape:
            raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
        profile = get_profile(config.numerics())
        if np.ndim(sample_weight) == 2 and np.shape(sample_weight)[1:] == (1,) and self.reduction_id == NONE:
            # Keras expands the losses to the weights' (B, 1) before an unreduced return
            return per_sample(self, profile, y_true, y_pred, _call_weights(sample_weight, len(y_pred), dtype))[:, None]
        weights = None if sample_weight is None else _call_weights(sample_weight, y_pred.shape[0], dtype)
        values = per_sample(self, profile, y_true, y_pred, weights)
        if one_sample or self.reduction_id == NONE:  # Keras returns a scalar loss as it is, whatever the reduction
            return values[0] if one_sample else values
        rows = cast(len(values), values)
        if sample_weight is None:
            weight_total = rows
        elif np.ndim(sample_weight) == 0:
            weight_total = dtype.type(sample_weight)  # Keras sums the weight it was given: one number
        else:
            weight_total = profile.sum_vector(weights)
        return reduce_batch(profile.sum_vector(values), rows, weight_total, self.reduction_id)

    def __repr__(self) -> str:
        options = (f", from_logits=True" if self.from_logits else "") + \
                  (f", label_smoothing={self.label_smoothing!r}" if self.label_smoothing else "") + \
                  (f", reduction={self.reduction!r}" if self.reduction != "sum_over_batch_size" else "") + \
                  (f", name={self.config_name!r}" if self.config_name else "") + \
                  (f", dtype={self.dtype!r}" if self.dtype else "")
        return f"Loss({self.name!r}{options})"


def _call_weights(sample_weight, rows: int, dtype) -> np.ndarray:
    """A call's ``sample_weight`` as one weight per sample: a number (broadcast), shape (B,) or (B, 1)."""
    weights = np.asarray(sample_weight, dtype=dtype)
    if weights.ndim == 2 and weights.shape[1] == 1:
        weights = weights[:, 0]
    if weights.ndim == 0:
        return np.full(rows, weights, dtype=dtype)
    if weights.shape != (rows,):
        raise ValueError(f"sample_weight must be a number or have shape ({rows},) or ({rows}, 1), one weight per "
                         f"sample; got shape {np.shape(sample_weight)}")
    return np.ascontiguousarray(weights)


def packet_width(profile, dtype) -> int:
    """The SIMD width whose packets the profile's transcendental ops follow (0: plain, no positions)."""
    return eigen.packet_size(dtype) if profile is not None and profile.name == "tensorflow" else 0


def _rows(loss: Loss, profile, y_true, y_pred, delta, scales, with_gradient) -> np.ndarray:
    """A row loss over a batch: each row's value, and its gradient into ``delta`` (each row ``scales[b]``)."""
    rows, k = y_pred.shape
    lanes = np.empty(k + 1, np.int8)
    values = np.empty(rows, y_pred.dtype)
    packet = packet_width(profile, y_pred.dtype)
    for b in range(rows):
        fill_lanes(lanes, b, rows, packet)
        values[b] = loss.row(y_true, y_pred, delta, b, scales[b], with_gradient, lanes, packet)
    return values


def _elementwise(function, profile, *arrays):
    """``function(*arrays, lane)`` of an entry with ``lanes``, each element in its lane (:func:`gdcore.numerics.lanes.elementwise`)."""
    return elementwise(function, packet_width(profile, arrays[1].dtype), *arrays)


def per_sample(loss: Loss, profile, y_true: np.ndarray, y_pred: np.ndarray, sample_weight=None) -> np.ndarray:
    """Per-sample loss: the mean over the last axis (:func:`~gdcore.numerics.eigen_reductions.mean_over_outputs`); a row loss's value.

    With ``sample_weight`` (shape (B,)), each times its weight, :math:`\\mathrm{fl}(\\ell_b w_b)`, as Keras weighs it.
    ``profile`` decides how the transcendental ops are evaluated (:func:`fill_lanes`).
    """
    if loss.row is not None:
        values = _rows(loss, profile, y_true, y_pred, np.empty_like(y_pred), np.ones(len(y_pred), y_pred.dtype), False)
    else:
        values = _elementwise(loss.value, profile, y_true, y_pred) if loss.lanes else loss.value(y_true, y_pred)
        values = mean_over_outputs(values, packet_width(profile, values.dtype))
    return values if sample_weight is None else values * sample_weight


def _weight_total(profile, y_pred, sample_weight, reduction: int):
    """:math:`\\sum_b w_b` (the profile's order) where the reduction divides by it, else B (read by no other reduction)."""
    if reduction == MEAN_WITH_SAMPLE_WEIGHT and sample_weight is not None:
        return profile.sum_vector(sample_weight)
    return cast(y_pred.shape[0], y_pred)


def batch_loss(loss: Loss, profile, y_true: np.ndarray, y_pred: np.ndarray, sample_weight=None, reduction=None):
    """The batch loss ``fit`` reports (:func:`reduce_batch`), default :math:`\\mathrm{fl}(\\sum_b w_b \\ell_b / B)`.

    The profile's summation order; :math:`w_b = 1` by default; ``reduction`` a code of :data:`REDUCTION_IDS`
    (default: the loss's own).
    """
    reduction = loss.reduction_id if reduction is None else reduction
    values = per_sample(loss, profile, y_true, y_pred, sample_weight)
    rows = cast(values.shape[0], values)
    return reduce_batch(profile.sum_vector(values), rows, _weight_total(profile, y_pred, sample_weight, reduction),
                        reduction)


def output_grad(loss: Loss, y_true: np.ndarray, y_pred: np.ndarray, sample_weight=None, profile=None,
                reduction=None) -> np.ndarray:
    """:math:`\\partial L/\\partial \\hat y`, shape (B, N); the scale is :math:`\\mathrm{fl}(c\\, w_b) / N` (TensorFlow's order).

    :math:`c` is :func:`gradient_scale` (:math:`\\mathrm{fl}(1/B)` for the default reduction); ``profile``
    (default: plain) decides how the transcendental ops are evaluated and sums the weights.
    """
    from gdcore.numerics import get_profile

    reduction = loss.reduction_id if reduction is None else reduction
    batch, n_outputs = y_pred.shape
    total = _weight_total(profile or get_profile("plain"), y_pred, sample_weight, reduction)
    scale = gradient_scale(cast(batch, y_pred), total, reduction)
    if loss.row is not None:
        weights = np.ones(batch, dtype=y_pred.dtype) if sample_weight is None else sample_weight
        delta = np.empty_like(y_pred)
        _rows(loss, profile, y_true, y_pred, delta, scale * weights, True)  # a weight of 1 changes no bit
        return delta
    if sample_weight is not None:
        scale = (scale * sample_weight)[:, None]
    scale = scale / cast(n_outputs, y_pred)
    if loss.lanes:
        return _elementwise(loss.grad, profile, y_true, y_pred, scale)
    return loss.grad(y_true, y_pred, scale)


MEAN_SQUARED_ERROR = Loss("mean_squared_error", "MeanSquaredError", squared_error, squared_error_grad,
                          r"\ell_i = e_i^2", r"\frac{\partial L}{\partial \hat y_i} = -\frac{2}{B} e_i", ("mse",),
                          "squared_error")
MEAN_ABSOLUTE_ERROR = Loss("mean_absolute_error", "MeanAbsoluteError", absolute_error, absolute_error_grad,
                           r"\ell_i = |e_i|", r"\frac{\partial L}{\partial \hat y_i} = -\frac{1}{B}\operatorname{sign}(e_i)",
                           ("mae",), "absolute_error")
BINARY_CROSSENTROPY = Loss(
    "binary_crossentropy", "BinaryCrossentropy", binary_crossentropy, binary_crossentropy_grad,
    r"\ell_i = -\big(y_i \log \bar p_i + (1 - y_i)\log(1 - \bar p_i)\big),\ \bar p = \mathrm{clip}(\hat y, \epsilon, 1-\epsilon)",
    r"\frac{\partial L}{\partial \hat y_i} = \frac{1}{B}\Big(\frac{1-y_i}{1-\bar p_i} - \frac{y_i}{\bar p_i}\Big)"
    r"\ [\epsilon \le \hat y_i \le 1-\epsilon]",
    ("bce",), "log_loss", lanes=True, targets="binary", logits="binary_crossentropy_from_logits", recovers="sigmoid")
BINARY_CROSSENTROPY_FROM_LOGITS = Loss(
    "binary_crossentropy_from_logits", "BinaryCrossentropy", sigmoid_cross_entropy_with_logits,
    sigmoid_cross_entropy_with_logits_grad,
    r"\ell_i = \max(z_i, 0) - z_i y_i + \log(1 + e^{-|z_i|})",
    r"\frac{\partial L}{\partial z_i} = \frac{1}{B}(\sigma(z_i) - y_i)", (), "log_loss", lanes=True, targets="binary",
    logits="binary_crossentropy_from_logits", recovers="sigmoid", from_logits=True)
CATEGORICAL_CROSSENTROPY = Loss(
    "categorical_crossentropy", "CategoricalCrossentropy", None, None,
    r"\ell_b = -\sum_j y_{bj} \log \mathrm{clip}(\hat y_{bj} / \textstyle\sum_k \hat y_{bk}, \epsilon, 1-\epsilon)",
    r"\frac{\partial L}{\partial \hat y_{bj}} = \frac{1}{B}\Big(\frac{q_{bj}}{s_b} - \sum_k \frac{q_{bk}\hat y_{bk}}{s_b^2}\Big),"
    r"\ q_{bj} = -\frac{y_{bj}}{\bar p_{bj}}", ("cce",), "log_loss", row=categorical_crossentropy,
    targets="one_hot", logits="categorical_crossentropy_from_logits", recovers="softmax")
CATEGORICAL_CROSSENTROPY_FROM_LOGITS = Loss(
    "categorical_crossentropy_from_logits", "CategoricalCrossentropy", None, None,
    r"\ell_b = \log \textstyle\sum_k e^{z_{bk}} - \sum_j y_{bj} z_{bj}",
    r"\frac{\partial L}{\partial z_{bj}} = \frac{1}{B}(\mathrm{softmax}(z_b)_j - y_{bj})", (), "log_loss",
    row=softmax_cross_entropy_with_logits, targets="one_hot", logits="categorical_crossentropy_from_logits",
    recovers="softmax", from_logits=True)
SPARSE_CATEGORICAL_CROSSENTROPY = Loss(
    "sparse_categorical_crossentropy", "SparseCategoricalCrossentropy", None, None,
    r"\ell_b = -\log \mathrm{softmax}(\log \mathrm{clip}(\hat y_b, \epsilon, 1-\epsilon))_{y_b}",
    r"\frac{\partial L}{\partial \hat y_{bj}} = \frac{1}{B}\,\frac{\mathrm{softmax}(\log \bar p_b)_j - [j = y_b]}{\bar p_{bj}}",
    ("scce",), "log_loss", row=sparse_categorical_crossentropy, targets="sparse",
    logits="sparse_categorical_crossentropy_from_logits", recovers="softmax")
SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS = Loss(
    "sparse_categorical_crossentropy_from_logits", "SparseCategoricalCrossentropy", None, None,
    r"\ell_b = \log \textstyle\sum_k e^{z_{bk}} - z_{b y_b}",
    r"\frac{\partial L}{\partial z_{bj}} = \frac{1}{B}(\mathrm{softmax}(z_b)_j - [j = y_b])", (), "log_loss",
    row=sparse_softmax_cross_entropy_with_logits, targets="sparse",
    logits="sparse_categorical_crossentropy_from_logits",
    recovers="softmax", from_logits=True)

#: Every loss, in id order.
LOSSES: tuple[Loss, ...] = (MEAN_SQUARED_ERROR, MEAN_ABSOLUTE_ERROR, BINARY_CROSSENTROPY,
                            BINARY_CROSSENTROPY_FROM_LOGITS, CATEGORICAL_CROSSENTROPY,
                            CATEGORICAL_CROSSENTROPY_FROM_LOGITS, SPARSE_CATEGORICAL_CROSSENTROPY,
                            SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS)
BY_NAME = {key: loss for loss in reversed(LOSSES) for key in (loss.name, loss.keras.lower(), *loss.aliases)}
BY_ID = dict(enumerate(LOSSES))


def _check_reduction(reduction, loss: Loss, name=None, dtype=None) -> Loss:
    """``loss`` with Keras's ``reduction``, ``name`` and ``dtype`` options, each checked (the entry itself if none)."""
    if not (reduction is None or isinstance(reduction, str)) or reduction not in REDUCTION_IDS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string, got {name!r}")
    options = {"reduction": reduction, "config_name": None if name == loss.keras_name else name,
               "dtype": _loss_dtype(dtype)}
    changed = {key: value for key, value in options.items() if value != getattr(loss, key)}
    return replace(loss, **changed) if changed else loss


def _loss_dtype(dtype) -> str | None:
    """A loss's ``dtype=``: None (Keras: ``floatx()``), ``"float32"`` or ``"float64"``."""
    if dtype is None:
        return None
    name = getattr(dtype, "name", dtype)  # a NumPy dtype or a Keras DTypePolicy
    if isinstance(name, type) and issubclass(name, np.generic):
        name = np.dtype(name).name
    if name in ("float32", "float64"):
        return name
    if name in ("float16", "bfloat16", "mixed_float16", "mixed_bfloat16"):
        raise NotImplementedError(f"a loss with dtype={name!r} is not supported: gdcore computes in float32 or float64")
    raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")


def MeanSquaredError(reduction="sum_over_batch_size", name: str | None = None, dtype=None) -> Loss:
    """Keras-style constructor: ``gdcore.losses.MeanSquaredError()``; ``reduction`` as :data:`REDUCTIONS`, ``name`` and
    ``dtype`` as Keras's (:class:`Loss`)."""
    return _check_reduction(reduction, MEAN_SQUARED_ERROR, name, dtype)


def MeanAbsoluteError(reduction="sum_over_batch_size", name: str | None = None, dtype=None) -> Loss:
    """Keras-style constructor: ``gdcore.losses.MeanAbsoluteError()``; ``reduction``, ``name``, ``dtype`` as
    :func:`MeanSquaredError`."""
    return _check_reduction(reduction, MEAN_ABSOLUTE_ERROR, name, dtype)


def _smoothing(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def BinaryCrossentropy(from_logits: bool = False, label_smoothing: float = 0.0, *,
                       reduction="sum_over_batch_size", name: str | None = None, dtype=None) -> Loss:
    r"""Keras's ``BinaryCrossentropy``: targets 0/1, outputs probabilities (or logits with ``from_logits``).

    ``label_smoothing`` :math:`s` replaces the targets by :math:`y(1 - s) + s/2`; ``reduction`` as :data:`REDUCTIONS`;
    ``name``, ``dtype`` as :func:`MeanSquaredError`.
    """
    entry = BINARY_CROSSENTROPY_FROM_LOGITS if from_logits else BINARY_CROSSENTROPY
    return _check_reduction(reduction, replace(entry, label_smoothing=_smoothing(label_smoothing, "label_smoothing")),
                            name, dtype)


def CategoricalCrossentropy(from_logits: bool = False, label_smoothing: float = 0.0, *,
                            reduction="sum_over_batch_size", name: str | None = None, dtype=None) -> Loss:
    r"""Keras's ``CategoricalCrossentropy``: one-hot targets; ``label_smoothing`` :math:`s` gives :math:`y(1-s) + s/K`."""
    entry = CATEGORICAL_CROSSENTROPY_FROM_LOGITS if from_logits else CATEGORICAL_CROSSENTROPY
    return _check_reduction(reduction, replace(entry, label_smoothing=_smoothing(label_smoothing, "label_smoothing")),
                            name, dtype)


def SparseCategoricalCrossentropy(from_logits: bool = False, *, reduction="sum_over_batch_size",
                                  name: str | None = None, dtype=None) -> Loss:
    """Keras's ``SparseCategoricalCrossentropy``: targets are class indices 0..K-1."""
    return _check_reduction(reduction, SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS if from_logits
                            else SPARSE_CATEGORICAL_CROSSENTROPY, name, dtype)


def training_loss(loss: Loss, output_activation: str) -> Loss:
    """The entry Keras 3 evaluates in ``fit``/``evaluate`` for ``loss`` after an output layer with ``output_activation``.

    Keras's TensorFlow backend tags the tensors its ``sigmoid`` and ``softmax``
    return with their input (``_keras_logits``) and its cross-entropies use
    that input with the logits formula (``_get_logits`` in
    ``keras/src/backend/tensorflow/nn.py``), whatever ``from_logits`` says
    (with ``from_logits=True`` it warns). So ``Dense(1, "sigmoid")`` with
    ``binary_crossentropy`` trains on ``sigmoid_cross_entropy_with_logits`` of
    the pre-activation: no clipping, loss and gradient exact for any logit.
    The engines then run the output layer as linear and this entry as the loss;
    ``predict`` still applies the activation.
    """
    if loss.recovers is not None and loss.recovers == output_activation:
        return replace(BY_NAME[loss.logits], label_smoothing=loss.label_smoothing, reduction=loss.reduction)
    return loss


def prepare_targets(loss: Loss, y: np.ndarray, n_outputs: int, dtype, name: str = "y",
                    labels: bool = True) -> np.ndarray:
    """``y`` as the engines take it for ``loss``, shape (n, n_outputs), checked; label smoothing applied as Keras does.

    Binary targets must be 0 or 1, one-hot rows must sum to 1 (within 1e-6),
    sparse targets must be integers in ``[0, n_outputs)`` and are expanded to
    one-hot rows. Keras itself accepts any of these and returns a number; a
    classifier's labels outside those sets are a mistake, refused here.
    ``labels=False`` (Keras's loss functions on arrays) takes any finite binary
    or categorical targets, soft labels included, as Keras computes with them.
    """
    dtype = np.dtype(dtype)
    raw = np.asarray(y)
    if loss.targets == "sparse":
        if raw.ndim == 2 and raw.shape[1] == 1:
            raw = raw[:, 0]
        if raw.ndim != 1:
            raise ValueError(f"{name} must hold class indices, shape (n_samples,) or (n_samples, 1), for "
                             f"{loss.keras}; got shape {raw.shape}")
        if raw.dtype.kind not in "iuf" or (raw.dtype.kind == "f" and not np.all(np.isfinite(raw))):
            raise ValueError(f"{name} must hold integer class indices for {loss.keras}, got dtype {raw.dtype}")
        bad = (raw != np.round(raw)) | (raw < 0) | (raw >= n_outputs)
        if bad.any():
            raise ValueError(f"{name} must hold integer class indices in [0, {n_outputs}) for {loss.keras} (the "
                             f"output layer has {n_outputs} units); got {raw[bad][0].item()!r} at index {np.flatnonzero(bad)[0]}")
        return np.eye(n_outputs, dtype=dtype)[raw.astype(np.int64)]
    array = np.asarray(raw, dtype=dtype)
    if array.ndim == 1 and n_outputs == 1:
        array = array[:, None]
    if not labels and loss.targets in ("binary", "one_hot"):
        if array.shape != (array.shape[0], n_outputs):
            raise ValueError(f"{name} has shape {array.shape} but y_pred has {n_outputs} outputs per sample")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} must be finite, got {array[~np.isfinite(array)][0].item()!r}")
    elif loss.targets == "one_hot":
        if array.ndim != 2 or array.shape[1] != n_outputs:
            raise ValueError(f"{name} must be one-hot, shape (n_samples, {n_outputs}), for {loss.keras}; got shape "
                             f"{array.shape} (for class indices use sparse_categorical_crossentropy)")
        sums = array.sum(axis=1)
        bad = ~(np.abs(sums - 1) <= 1e-6) | (array < 0).any(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name} rows must be one-hot (or probabilities summing to 1) for {loss.keras}; row "
                             f"{row} is {array[row].tolist()} (sum {sums[row].item()!r})")
    if loss.targets == "binary" and labels:
        bad = (array != 0) & (array != 1)
        if bad.any():
            raise ValueError(f"{name} must hold 0/1 labels for {loss.keras}; got {array[bad][0].item()!r} (at index "
                             f"{np.flatnonzero(bad.ravel())[0]}); for several classes use a softmax output with "
                             "(sparse_)categorical_crossentropy")
    if loss.label_smoothing and loss.targets in ("binary", "one_hot"):
        # Keras: y * (1.0 - s) + 0.5 * s (binary) or + s / K (categorical), each Python float cast to the dtype.
        s = loss.label_smoothing
        offset = dtype.type(0.5 * s) if loss.targets == "binary" else dtype.type(s) / dtype.type(n_outputs)
        array = array * dtype.type(1.0 - s) + offset
    return array


def get(identifier) -> Loss:
    """Look up a loss by Keras name or alias (``"mse"``, ``"mean_absolute_error"``, ...)."""
    if isinstance(identifier, Loss):
        return identifier
    if identifier is None:
        raise ValueError("loss is required: pass e.g. loss='mse' to compile()")
    return lookup(BY_NAME, identifier, "loss")


# --- Keras's loss functions on arrays: keras.losses.binary_crossentropy(y_true, y_pred, ...) and the others -------


def _per_sample_along(loss: Loss, y_true, y_pred, axis) -> np.ndarray:
    """Keras's function form: each sample's loss, ``loss``'s mean (or row value) along ``axis`` of ``y_pred``.

    ``y_pred`` keeps a float32/float64 array's dtype, anything else becomes
    ``floatx()``; the result has ``y_pred``'s shape without ``axis`` (a
    number for a 1-D ``y_pred``: one sample). The profile of
    ``gdcore.config.numerics()`` evaluates it.
    """
    from gdcore import config
    from gdcore.numerics import get_profile

    predictions = keras_float(y_pred, "y_pred")
    dtype = predictions.dtype
    if predictions.ndim == 0:
        raise ValueError("y_pred must have at least one axis (the outputs of a sample), got a number")
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)) or \
            not -predictions.ndim <= axis < predictions.ndim:
        raise ValueError(f"axis must be an axis of y_pred (ndim {predictions.ndim}), got {axis!r}")
    predictions = np.moveaxis(predictions, axis, -1)
    targets = np.asarray(y_true)
    if targets.dtype.kind not in "biuf":
        raise TypeError(f"y_true must be numbers, got {y_true!r:.60}")
    if loss.targets != "sparse" and targets.ndim == np.ndim(y_pred) - 1 and np.shape(y_pred)[-1] == 1:
        targets = targets[..., None]  # Keras's squeeze_or_expand_to_same_rank: (n,) against (n, 1)
    if loss.targets != "sparse":
        targets = np.moveaxis(np.broadcast_to(targets, np.shape(np.moveaxis(np.asarray(y_pred), axis, -1))) if
                              targets.ndim == 0 else targets, axis if targets.ndim == np.ndim(y_pred) else -1, -1)
    if not np.all(np.isfinite(predictions)):
        raise ValueError("y_pred must be finite (no NaN or infinity)")
    leading, k = predictions.shape[:-1], predictions.shape[-1]
    rows = np.ascontiguousarray(predictions.reshape(-1, k))
    if loss.targets == "sparse":
        if targets.shape != leading and targets.shape != (*leading, 1):
            raise ValueError(f"y_true must hold one class index per sample, shape {leading}, got {targets.shape}")
        targets = targets.reshape(-1)
    else:
        if targets.shape != predictions.shape:
            raise ValueError(f"y_true has shape {np.shape(y_true)} but y_pred has shape {np.shape(y_pred)}")
        targets = targets.reshape(-1, k)
    targets = prepare_targets(loss, targets, k, dtype, "y_true", labels=loss.targets == "sparse")
    values = per_sample(loss, get_profile(config.numerics()), np.ascontiguousarray(targets), rows)
    return values.reshape(leading) if leading else values[0]


def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    r"""Keras's ``keras.losses.binary_crossentropy``: each sample's mean over ``axis`` of :math:`-(y\log\bar p + (1-y)\log(1-\bar p))`.

    Probabilities are clipped to :math:`[\epsilon, 1-\epsilon]`; with
    ``from_logits`` the logits formula. Soft targets are taken as Keras takes
    them (the loss classes in ``fit`` refuse anything but 0/1).
    """
    loss = BinaryCrossentropy(_flag(from_logits, "from_logits"), label_smoothing, reduction="none")
    return _per_sample_along(loss, y_true, y_pred, axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    r"""Keras's ``keras.losses.categorical_crossentropy``: each sample's :math:`-\sum_j y_j \log p_j` along ``axis``.

    Probabilities are normalised by their sum and clipped; with ``from_logits``
    TensorFlow's softmax cross-entropy kernel. Soft targets as Keras takes them.
    """
    loss = CategoricalCrossentropy(_flag(from_logits, "from_logits"), label_smoothing, reduction="none")
    return _per_sample_along(loss, y_true, y_pred, axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    r"""Keras's ``keras.losses.sparse_categorical_crossentropy``: class indices ``y_true``, each sample's loss.

    ``ignore_class`` (Keras's masking of one label) is not supported: give None.
    """
    if ignore_class is not None:
        raise NotImplementedError("sparse_categorical_crossentropy(ignore_class=...) is not supported: give None")
    loss = SparseCategoricalCrossentropy(_flag(from_logits, "from_logits"), reduction="none")
    return _per_sample_along(loss, y_true, y_pred, axis)
