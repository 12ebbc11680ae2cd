r"""Losses, with Keras's names, reduction and gradient: one table of elementwise functions.

With :math:`e = y - \hat y` (``y_true - y_pred``), a batch of :math:`B`
samples (the last batch of an epoch may be partial, and :math:`B` is then its
actual size) and :math:`N` outputs per sample:

=====================  ==================================  ===========================================================
name                   batch loss :math:`L`                :math:`\partial L / \partial \hat y_{bj}`
=====================  ==================================  ===========================================================
mean_squared_error     :math:`\frac1B\sum_b \frac1N\sum_j e_{bj}^2`   :math:`-\big(\mathrm{fl}(\tfrac1B / N)\cdot 2e_{bj}\big)`
mean_absolute_error    :math:`\frac1B\sum_b \frac1N\sum_j |e_{bj}|`   :math:`-\big(\mathrm{fl}(\tfrac1B / N)\cdot \operatorname{sign} e_{bj}\big)`
=====================  ==================================  ===========================================================

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
:mod:`reference`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numba.extending import register_jitable

from gdcore._dtype import cast
from gdcore._validation import lookup
# Keras exports the per-sample functions as losses and as metrics: one definition, in gdcore.metrics.
from gdcore.metrics import mean_absolute_error, mean_squared_error  # noqa: F401


@register_jitable
def squared_error(y_true, y_pred):
    error = y_true - y_pred
    return error * error


@register_jitable
def squared_error_grad(y_true, y_pred, scale):
    """:math:`\\partial L/\\partial \\hat y` for one element, ``scale = fl(1/B)/N``."""
    error = y_true - y_pred
    return -(scale * (cast(2, error) * error))


@register_jitable
def absolute_error(y_true, y_pred):
    return np.abs(y_true - y_pred)


@register_jitable
def absolute_error_grad(y_true, y_pred, scale):
    return -(scale * np.sign(y_true - y_pred))


@dataclass(frozen=True)
class Loss:
    """A named loss: elementwise ``value(y_true, y_pred)`` and ``grad(y_true, y_pred, scale)``.

    ``formula``/``grad_formula`` are LaTeX for one sample's term and the
    gradient (rendered by :mod:`gdcore.explain`), ``keras`` the Keras class
    name, ``aliases`` the other names Keras accepts, ``sklearn`` scikit-learn's
    name of the same loss where one exists; ``id`` is its position in :data:`LOSSES`.
    """

    name: str
    keras: str
    value: Callable
    grad: Callable
    formula: str
    grad_formula: str
    aliases: tuple[str, ...] = ()
    sklearn: str | None = None

    @property
    def id(self) -> int:
        return LOSSES.index(self)

    def __call__(self, y_true, y_pred):
        """Keras-style call: the batch loss of ``y_pred`` against ``y_true`` (plain summation order)."""
        from gdcore.numerics import get_profile

        y_pred = np.asarray(y_pred)
        y_true = np.asarray(y_true, dtype=y_pred.dtype).reshape(y_pred.shape)
        return batch_loss(self, get_profile("plain"), y_true, y_pred)

    def __repr__(self) -> str:
        return f"Loss({self.name!r})"


def per_sample(loss: Loss, profile, y_true: np.ndarray, y_pred: np.ndarray, sample_weight=None) -> np.ndarray:
    """Per-sample loss, the mean over the last axis, summed front to back (a plain division for one output).

    With ``sample_weight`` (shape (B,)), each times its weight, :math:`\\mathrm{fl}(\\ell_b w_b)`, as Keras weighs it.
    """
    values = loss.value(y_true, y_pred)
    values = np.cumsum(values, axis=1)[:, -1] / cast(values.shape[1], values)
    return values if sample_weight is None else values * sample_weight


def batch_loss(loss: Loss, profile, y_true: np.ndarray, y_pred: np.ndarray, sample_weight=None):
    """:math:`L = \\mathrm{fl}(\\sum_b w_b \\ell_b / B)` with the profile's summation order (:math:`w_b = 1` by default)."""
    values = per_sample(loss, profile, y_true, y_pred, sample_weight)
    return profile.sum_vector(values) / cast(values.shape[0], values)


def output_grad(loss: Loss, y_true: np.ndarray, y_pred: np.ndarray, sample_weight=None) -> np.ndarray:
    """:math:`\\partial L/\\partial \\hat y`, shape (B, N); the scale is :math:`\\mathrm{fl}(\\mathrm{fl}(1/B) w_b) / N` (TensorFlow's order)."""
    batch, n_outputs = y_pred.shape
    scale = cast(1, y_pred) / cast(batch, y_pred)
    if sample_weight is not None:
        scale = (scale * sample_weight)[:, None]
    return loss.grad(y_true, y_pred, scale / cast(n_outputs, y_pred))


MEAN_SQUARED_ERROR = Loss("mean_squared_error", "MeanSquaredError", squared_error, squared_error_grad,
                          r"\ell_i = e_i^2", r"\frac{\partial L}{\partial \hat y_i} = -\frac{2}{B} e_i", ("mse",),
                          "squared_error")
MEAN_ABSOLUTE_ERROR = Loss("mean_absolute_error", "MeanAbsoluteError", absolute_error, absolute_error_grad,
                           r"\ell_i = |e_i|", r"\frac{\partial L}{\partial \hat y_i} = -\frac{1}{B}\operatorname{sign}(e_i)",
                           ("mae",), "absolute_error")

#: Every loss, in id order.
LOSSES: tuple[Loss, ...] = (MEAN_SQUARED_ERROR, MEAN_ABSOLUTE_ERROR)
BY_NAME = {key: loss for loss in LOSSES for key in (loss.name, loss.keras.lower(), *loss.aliases)}
BY_ID = dict(enumerate(LOSSES))


#: Keras 3's loss reductions; gdcore trains with the first two (the same reduction in Keras 3).
REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "none", "mean_with_sample_weight")


def _check_reduction(reduction, loss: Loss) -> Loss:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")
    if reduction not in ("sum_over_batch_size", "mean"):
        raise NotImplementedError(f"{loss.keras}(reduction={reduction!r}) is not supported yet: gdcore reduces a batch "
                                  "as 'sum_over_batch_size' (Keras's default; 'mean' is the same in Keras 3)")
    return loss


def MeanSquaredError(reduction="sum_over_batch_size") -> Loss:
    """Keras-style constructor: ``gdcore.losses.MeanSquaredError()``."""
    return _check_reduction(reduction, MEAN_SQUARED_ERROR)


def MeanAbsoluteError(reduction="sum_over_batch_size") -> Loss:
    """Keras-style constructor: ``gdcore.losses.MeanAbsoluteError()``."""
    return _check_reduction(reduction, MEAN_ABSOLUTE_ERROR)


def get(identifier) -> Loss:
    """Look up a loss by Keras name or alias (``"mse"``, ``"mean_absolute_error"``, ...)."""
    if isinstance(identifier, Loss):
        return identifier
    if identifier is None:
        raise ValueError("loss is required: pass e.g. loss='mse' to compile()")
    return lookup(BY_NAME, identifier, "loss")
