r"""Losses, with Keras's names, reduction and gradient.

With :math:`e = y - \hat y` (``y_true - y_pred``), a batch of :math:`B`
samples (the last batch of an epoch may be partial, and :math:`B` is then its
actual size) and :math:`N` outputs per sample:

=====================  ==================================  ===========================================================
name                   batch loss :math:`L`                :math:`\partial L / \partial \hat y_{bj}`
=====================  ==================================  ===========================================================
mean_squared_error     :math:`\frac1B\sum_b \frac1N\sum_j e_{bj}^2`   :math:`-\big(\mathrm{fl}(\tfrac1B / N)\cdot 2e_{bj}\big)`
mean_absolute_error    :math:`\frac1B\sum_b \frac1N\sum_j |e_{bj}|`   :math:`-\big(\mathrm{fl}(\tfrac1B / N)\cdot \operatorname{sign} e_{bj}\big)`
=====================  ==================================  ===========================================================

Keras convention, kept exactly: the per-sample value is the mean over the
last axis; the batch value is ``sum(per_sample) / B`` (``sum_over_batch_size``);
the gradient is formed as TensorFlow's autodiff forms it, the scale
:math:`\mathrm{fl}(1/B)` first, then times ``2 * e`` (``SquareGrad``) or
``sign(e)`` (``AbsGrad``, with sign(0) = 0). scikit-learn's ``squared_error``
is half of this MSE; see :mod:`reference`.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numba.extending import register_jitable

from gdcore._dtype import cast
from gdcore.numerics import _plain


@register_jitable
def squared_error(error):
    return error * error


@register_jitable
def squared_error_grad(error, scale):
    """:math:`\\partial L/\\partial \\hat y` for one element, ``scale = fl(1/B)/N``."""
    return -(scale * (cast(2, error) * error))


@register_jitable
def absolute_error(error):
    return np.abs(error)


@register_jitable
def absolute_error_grad(error, scale):
    return -(scale * np.sign(error))


@dataclass(frozen=True)
class Loss:
    """A named loss: elementwise ``value(e)`` and ``grad(e, scale)``, and its id in the compiled loop."""

    name: str
    id: int
    value: Callable
    grad: Callable

    def __call__(self, y_true, y_pred):
        """Keras-style call: the batch loss of ``y_pred`` against ``y_true`` (plain order)."""
        from gdcore.numerics import get_profile
        y_pred = np.asarray(y_pred)
        y_true = np.asarray(y_true, dtype=y_pred.dtype).reshape(y_pred.shape)
        return batch_loss(self, get_profile("plain"), y_true, y_pred)

    def __repr__(self) -> str:
        return f"Loss({self.name!r})"


def per_sample(loss: Loss, profile, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-sample loss, the mean over the last axis (a plain division when there is one output)."""
    values = loss.value(y_true - y_pred)
    n_outputs = values.shape[1]
    if n_outputs == 1:
        return values[:, 0] / cast(1, values)
    # Several outputs: summed front to back in every profile (no bit-exact claim for TensorFlow here).
    return _plain.sum_columns(values.T) / cast(n_outputs, values)


def batch_loss(loss: Loss, profile, y_true: np.ndarray, y_pred: np.ndarray):
    """:math:`L = \\mathrm{fl}(\\sum_b \\ell_b / B)` with the profile's summation order."""
    values = per_sample(loss, profile, y_true, y_pred)
    return profile.sum_vector(values) / cast(values.shape[0], values)


def output_grad(loss: Loss, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """:math:`\\partial L/\\partial \\hat y`, shape (B, N)."""
    batch, n_outputs = y_pred.shape
    scale = cast(1, y_pred) / cast(batch, y_pred) / cast(n_outputs, y_pred)
    return loss.grad(y_true - y_pred, scale)


MEAN_SQUARED_ERROR = Loss("mean_squared_error", 0, squared_error, squared_error_grad)
MEAN_ABSOLUTE_ERROR = Loss("mean_absolute_error", 1, absolute_error, absolute_error_grad)

LOSSES = {
    "mean_squared_error": MEAN_SQUARED_ERROR,
    "mse": MEAN_SQUARED_ERROR,
    "meansquarederror": MEAN_SQUARED_ERROR,
    "mean_absolute_error": MEAN_ABSOLUTE_ERROR,
    "mae": MEAN_ABSOLUTE_ERROR,
    "meanabsoluteerror": MEAN_ABSOLUTE_ERROR,
}
BY_ID = {MEAN_SQUARED_ERROR.id: MEAN_SQUARED_ERROR, MEAN_ABSOLUTE_ERROR.id: MEAN_ABSOLUTE_ERROR}


def MeanSquaredError() -> Loss:
    """Keras-style constructor: ``gdcore.losses.MeanSquaredError()``."""
    return MEAN_SQUARED_ERROR


def MeanAbsoluteError() -> Loss:
    """Keras-style constructor: ``gdcore.losses.MeanAbsoluteError()``."""
    return MEAN_ABSOLUTE_ERROR


def get(identifier) -> Loss:
    """Look up a loss by Keras name or alias (``"mse"``, ``"mean_absolute_error"``, ...)."""
    from gdcore._validation import lookup

    if isinstance(identifier, Loss):
        return identifier
    if identifier is None:
        raise ValueError("loss is required: pass e.g. loss='mse' to compile()")
    return lookup(LOSSES, identifier, "loss")
