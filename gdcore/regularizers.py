r"""Weight regularizers with Keras 3's names: ``L1``, ``L2``, ``L1L2`` and the strings ``"l1"``, ``"l2"``, ``"l1l2"``.

A regularizer on a weight tensor :math:`x` (``Dense(kernel_regularizer=...,
bias_regularizer=...)``) adds a penalty to the loss that Keras reports and
differentiates:

.. math::

    \mathrm{L1}: \; \ell_1 \sum_i |x_i| \qquad
    \mathrm{L2}: \; \ell_2 \sum_i x_i^2 \qquad
    \mathrm{L1L2}: \; (0 + \ell_1 \sum_i |x_i|) + \ell_2 \sum_i x_i^2

and to the gradient of :math:`x`: :math:`\ell_1\,\mathrm{sign}(x)` and
:math:`\ell_2 \cdot 2x` (in ``L1L2`` a term whose factor is 0 is left out,
as Keras leaves it out). Keras 3's defaults (``keras/src/regularizers/regularizers.py``):
``L1(l1=0.01)``, ``L2(l2=0.01)``, ``L1L2(l1=0.0, l2=0.0)``; a factor of
None is the default, anything else must be a finite number >= 0. A name
builds the class with its defaults, as ``keras.regularizers.get`` does:
``"l1"``, ``"l2"``, ``"l1l2"`` and the class names. Keras 3.15 refuses
``"l1_l2"`` (its docstring still promises Keras 2's 0.01 each), so gdcore
does too, naming ``L1L2(l1=0.01, l2=0.01)``. ``L1`` keeps its factor as a
float32 tensor, so its config reads ``0.009999999776482582`` for 0.01;
``L2`` and ``L1L2`` keep the Python float (``0.01``), as Keras's do.

Keras's order of operations, kept bit for bit (verified against TensorFlow's
graph in ``tests/test_regularizers.py``):

* the factor meets the tensor as ``ops.cast(factor, x.dtype)``: through a
  float32 tensor in both dtypes (in float64, 0.01 becomes 0.009999999776482582);
* each sum is a ``reduce_sum`` over the whole tensor (the profile's
  ``sum_vector`` over the elements in row-major order) of :math:`|x|` or of
  :math:`x \cdot x`, and the term is ``factor * sum``;
* ``Trainer.compute_loss`` adds the penalties to every batch's loss, after
  the data loss: ``ops.sum([data_loss, p_1, ..., p_k])``, one ``reduce_sum``
  over the stacked scalars, the penalties in ``model.losses`` order (the
  model's trainable weights in order: layer by layer, kernel then bias; a
  frozen layer's regularizers add nothing). History ``loss``, ``val_loss``
  and ``evaluate`` therefore include them;
* TensorFlow's gradient of a penalty is formed first, both of ``L1L2``'s
  terms summed (:math:`\ell_1\,\mathrm{sign}(x) + \ell_2 (x \cdot 2)`), and
  then added to the data gradient of the same weight (before clipping and
  the update, as the optimizer sees one gradient).

One detail is not reproduced: ``L1(0)`` or ``L2(0)`` add a gradient of
:math:`\pm 0` in Keras, which turns a data gradient of -0.0 into +0.0; gdcore
adds nothing for a zero factor (no value changes).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Regularizer", "L1", "L2", "L1L2", "get", "serialize", "deserialize"]


def _factor(value, name: str, default: float) -> float:
    """Keras's ``validate_float_arg``: None is the default, else a finite number >= 0, as a Python float."""
    if value is None:
        return default
    if not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class Regularizer:
    r"""A penalty on one weight tensor: the factors ``l1`` and ``l2`` of :math:`\sum|x|` and :math:`\sum x^2`."""

    l1: float = 0.0
    l2: float = 0.0

    def factors(self) -> tuple[float, float]:
        """``(l1, l2)`` as Keras's ``ops.cast`` meets the tensor: through float32 (exact in either dtype), 0 for a term left out."""
        return float(np.float32(self.l1)), float(np.float32(self.l2))

    def __call__(self, x, numerics: str | None = None) -> np.generic:
        """The penalty of the array ``x``, in its dtype (float32 for other dtypes).

        ``numerics``: the profile whose sums are used (default
        :func:`gdcore.config.numerics`; ``"tensorflow"`` gives Keras's value
        bit for bit); in training a layer's penalty uses the model's profile.
        """
        from gdcore import config
        from gdcore.numerics import get_profile

        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float32)
        return penalty(get_profile(numerics or config.numerics()), x.reshape(-1), *self.factors())

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> "Regularizer":
        return cls(**config)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({options})"


class L1(Regularizer):
    r""":math:`\ell_1 \sum_i |x_i|` (``keras.regularizers.L1``; default ``l1=0.01``)."""

    def __init__(self, l1: float | None = 0.01):
        self.l1 = float(np.float32(_factor(l1, "l1", 0.01)))  # Keras: ops.convert_to_tensor(l1), a float32 tensor

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(Regularizer):
    r""":math:`\ell_2 \sum_i x_i^2` (``keras.regularizers.L2``; default ``l2=0.01``)."""

    def __init__(self, l2: float | None = 0.01):
        self.l2 = _factor(l2, "l2", 0.01)

    def get_config(self) -> dict:
        return {"l2": self.l2}


class L1L2(Regularizer):
    r""":math:`(0 + \ell_1 \sum_i |x_i|) + \ell_2 \sum_i x_i^2` (``keras.regularizers.L1L2``; both default to 0)."""

    def __init__(self, l1: float | None = 0.0, l2: float | None = 0.0):
        self.l1, self.l2 = _factor(l1, "l1", 0.0), _factor(l2, "l2", 0.0)

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
# Keras's names (keras/src/regularizers/__init__.py, ALL_OBJECTS_DICT): each class's name and its snake case.
ALIASES = {**CLASSES, "l1": L1, "l2": L2, "l1l2": L1L2}


def get(identifier, name: str = "regularizer") -> Regularizer | None:
    """A regularizer from None, a name (``"l1"``, ``"l2"``, ``"l1l2"``), an instance or Keras's config dict.

    ``name`` is the argument the value was given as, for the error message.
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        if identifier not in ALIASES:
            hint = (" (Keras 3 refuses it too; for Keras 2's alias write L1L2(l1=0.01, l2=0.01))"
                    if identifier == "l1_l2" else "")
            raise ValueError(f"{name}: unknown regularizer {identifier!r}{hint}; known: {', '.join(ALIASES)}")
        return ALIASES[identifier]()
    if isinstance(identifier, dict) and "class_name" in identifier:
        return deserialize(identifier, name)
    raise ValueError(f"{name} must be None, one of {', '.join(ALIASES)} or a gdcore.regularizers object, "
                     f"got {identifier!r}")


def serialize(regularizer: Regularizer | None) -> dict | None:
    """Keras's config entry of a regularizer (``keras.regularizers.serialize``)."""
    if regularizer is None:
        return None
    return {"module": "keras.regularizers", "class_name": type(regularizer).__name__,
            "config": regularizer.get_config(), "registered_name": None}


def deserialize(config: dict | None, name: str = "regularizer") -> Regularizer | None:
    """The regularizer of Keras's config entry (what :func:`serialize` and Keras's ``.keras`` files write)."""
    if config is None:
        return None
    class_name = config.get("class_name")
    if class_name not in CLASSES:
        raise ValueError(f"{name}: unknown regularizer class {class_name!r}; gdcore has {', '.join(CLASSES)}")
    options = dict(config.get("config") or {})
    unknown = sorted(set(options) - set(CLASSES[class_name]().get_config()))
    if unknown:
        raise ValueError(f"{name}: {class_name} has no settings {unknown}")
    return CLASSES[class_name](**options)


# --- the penalty and its gradient (NumPy engine; the compiled loop has the same steps) -----------------


def penalty(profile, x: np.ndarray, l1: float, l2: float):
    r"""``(0 + l1 * sum|x|) + l2 * sum(x*x)`` of the flat tensor ``x``, a term only where its factor is not 0.

    The factors are Python floats holding float32 values, cast to ``x``'s
    dtype; ``profile.sum_vector`` is the reduction (TensorFlow's order under ``"tensorflow"``).
    """
    dtype = x.dtype.type
    total = dtype(0)
    if l1 != 0:
        total = total + dtype(l1) * profile.sum_vector(np.abs(x))
    if l2 != 0:
        total = total + dtype(l2) * profile.sum_vector(x * x)
    return total


def penalty_gradient(x: np.ndarray, l1: float, l2: float) -> np.ndarray | None:
    r""":math:`\ell_1\,\mathrm{sign}(x) + \ell_2 (x \cdot 2)` (the terms present), as TensorFlow forms it; None without a term."""
    dtype = x.dtype.type
    l1_term = dtype(l1) * np.sign(x) if l1 != 0 else None
    l2_term = dtype(l2) * (x * dtype(2)) if l2 != 0 else None
    if l1_term is not None and l2_term is not None:
        return l1_term + l2_term
    return l1_term if l1_term is not None else l2_term


def activity_penalty(profile, outputs: np.ndarray, l1: float, l2: float):
    """Keras 3's activity penalty of a layer's (batch, units) output: ``divide_no_nan(penalty(outputs), B)``."""
    rows = outputs.shape[0]
    total = penalty(profile, outputs.reshape(-1), l1, l2)
    return total / outputs.dtype.type(rows) if rows else outputs.dtype.type(0)


def activity_gradient(outputs: np.ndarray, l1: float, l2: float):
    r"""The activity penalty's gradient on the output: :math:`\mathrm{fl}(\mathrm{fl}(1/B)\,\ell_1)\,\mathrm{sign}(y)`
    and :math:`\mathrm{fl}(\mathrm{fl}(1/B)\,\ell_2) (y \cdot 2)` (None for a term whose factor is 0).

    TensorFlow's chain: ``DivNoNan``'s gradient :math:`\mathrm{fl}(1/B)`, times the factor, broadcast, times
    ``Abs``'s or ``Square``'s local gradient.
    """
    dtype = outputs.dtype.type
    scale = dtype(1) / dtype(outputs.shape[0])
    l1_term = (scale * dtype(l1)) * np.sign(outputs) if l1 != 0 else None
    l2_term = (scale * dtype(l2)) * (outputs * dtype(2)) if l2 != 0 else None
    return l1_term, l2_term


def _activities(layout):
    """``(layer, l1, l2)`` of each layer with an activity regularizer, ``model.losses`` order."""
    for index, row in enumerate(layout):
        if row.activity_regularized:
            yield index, float(row.activity_l1), float(row.activity_l2)


def _tensors(layout):
    """``(start, size, l1, l2)`` of each regularized weight tensor, ``model.losses`` order."""
    for row in layout:
        size = int(row.n_in * row.n_out)
        if row.kernel_regularized:
            yield int(row.kernel), size, float(row.kernel_l1), float(row.kernel_l2)
        if row.use_bias and row.bias_regularized:
            yield int(row.bias), int(row.n_out), float(row.bias_l1), float(row.bias_l2)


def total_loss(profile, data_loss, params: np.ndarray, layout, outputs=None):
    """Keras's ``compute_loss``: ``sum([data_loss, p_1, ..., p_k])`` (``data_loss`` alone without a regularizer).

    ``model.losses`` lists the layers' activity penalties first (of ``outputs``, the forward pass's
    ``[x, a_1, ..., y_pred]``), then the weight penalties.
    """
    penalties = [activity_penalty(profile, outputs[index + 1], l1, l2) for index, l1, l2 in _activities(layout)]
    penalties += [penalty(profile, params[start : start + size], l1, l2) for start, size, l1, l2 in _tensors(layout)]
    if not penalties:
        return data_loss
    return profile.sum_vector(np.array([data_loss, *penalties], dtype=params.dtype))


def add_activity_gradient(delta: np.ndarray, outputs: np.ndarray, l1: float, l2: float, output_layer: bool
                          ) -> np.ndarray:
    """``delta`` (dL/d(output) from the layers above or the loss) plus the activity penalty's gradient, a new array.

    With both terms, TensorFlow's ``AddN`` adds them in the order measured against its tape: on a hidden layer
    ``delta + (l1 term + l2 term)``, on the output layer (where ``delta`` is the loss's gradient)
    ``(delta + l1 term) + l2 term``.
    """
    l1_term, l2_term = activity_gradient(outputs, l1, l2)
    if l1_term is not None and l2_term is not None:
        return (delta + l1_term) + l2_term if output_layer else delta + (l1_term + l2_term)
    return delta + (l1_term if l1_term is not None else l2_term)


def add_gradients(grads: np.ndarray, params: np.ndarray, layout) -> None:
    """``grads += penalty_gradient`` for every regularized tensor, in place (the data gradient first, then the penalty's)."""
    for start, size, l1, l2 in _tensors(layout):
        term = penalty_gradient(params[start : start + size], l1, l2)
        if term is not None:
            grads[start : start + size] = grads[start : start + size] + term
