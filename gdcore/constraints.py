r"""Weight constraints with Keras 3's names: ``NonNeg``, ``MaxNorm``, ``UnitNorm``, ``MinMaxNorm``.

A constraint on a weight tensor :math:`w` (``Dense(kernel_constraint=...,
bias_constraint=...)``) projects it after every update. With the norms
:math:`n = \sqrt{\sum_{axis} w^2}` (kept as a row or column, broadcast back)
and :math:`\varepsilon = 10^{-7}` (``keras.config.epsilon()``):

.. math::

    \mathrm{NonNeg}: \max(w, 0) \qquad
    \mathrm{UnitNorm}: \frac{w}{\varepsilon + n} \qquad
    \mathrm{MaxNorm}: w \cdot \frac{\mathrm{clip}(n, 0, m)}{\varepsilon + n} \qquad
    \mathrm{MinMaxNorm}: w \cdot \frac{r\,\mathrm{clip}(n, a, m) + (1 - r)\,n}{\varepsilon + n}

Keras 3's defaults (``keras/src/constraints/constraints.py``):
``MaxNorm(max_value=2, axis=0)``, ``UnitNorm(axis=0)``,
``MinMaxNorm(min_value=0.0, max_value=1.0, rate=1.0, axis=0)``; the names
``"non_neg"``, ``"max_norm"``, ``"unit_norm"``, ``"min_max_norm"`` and the
class names build them with their defaults, as ``keras.constraints.get`` does.
For a Dense kernel of shape (n_in, units), ``axis=0`` gives one norm per
unit (its incoming weights), ``axis=1`` one per input, ``axis=None`` one
for the whole tensor; a bias has the one axis 0.

Where and how Keras applies them, kept bit for bit
(``keras/src/optimizers/base_optimizer.py``, ``apply``):

* after the optimizer has updated every trainable weight of the step,
  ``variable.assign(variable.constraint(variable))`` for each trainable
  weight that has one (a frozen layer's weights are not trainable variables:
  their constraints never run); nothing at build time or in ``set_weights``;
* the squares are ``ops.square``, the sums ``ops.sum(axis, keepdims=True)``:
  TensorFlow's ``reduce_sum``, whose order the profile gives
  (:func:`gdcore.numerics.eigen_reductions.reduce_sum_rows` over the rows,
  Eigen's inner-most vectorised sum over a row, a column of one unit or the
  whole tensor; front to back under ``"plain"``);
* ``ops.sqrt``, then ``ops.clip`` as ``tf.clip_by_value`` (``minimum`` with the
  upper bound, then ``maximum`` with the lower one), the bounds, the rate,
  :math:`1 - r` (computed in Python) and :math:`\varepsilon` cast to the
  weight's dtype; ``desired / (epsilon + norms)`` before the product with
  :math:`w`; ``UnitNorm`` divides :math:`w` by :math:`\varepsilon + n`;
* ``NonNeg`` is ``ops.maximum(w, 0)``, whose result for :math:`-0` depends
  on the element's position, as measured: Eigen's packet ``pmax`` (whole
  packets of 8 float32 or 4 float64 from the start of the tensor) gives
  :math:`+0`, its scalar ``max`` on the last ``n % P`` elements keeps
  :math:`-0`; ``"plain"`` keeps :math:`-0` everywhere.
"""

from __future__ import annotations

import math

import numpy as np

from gdcore._dtype import cast, jitable, where

__all__ = ["Constraint", "NonNeg", "MaxNorm", "UnitNorm", "MinMaxNorm", "get", "serialize", "deserialize"]

#: Keras's ``backend.epsilon()``, a Python float cast to the weight's dtype.
EPSILON = 1e-7

# The constraint kinds of the layout (gdcore._contract.LAYOUT); 0: none.
NONE, NON_NEG, MAX_NORM, UNIT_NORM, MIN_MAX_NORM = 0, 1, 2, 3, 4
# The layout's axis codes: the sums run over the rows (one norm per column), over each row, or over everything.
OVER_ROWS, OVER_COLUMNS, OVER_ALL = 0, 1, -1


def _number(value, name: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum:g}, got {value!r}")
    return value


def _axis(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value not in (0, 1, -1, -2):
        raise ValueError(f"axis must be 0, 1 (-2, -1) or None for a Dense layer's (n_in, units) kernel, got {value!r}")
    return int(value)


class Constraint:
    """A projection of one weight tensor, applied after every update (module docstring)."""

    kind = NONE
    min_value = 0.0
    max_value = 0.0
    rate = 1.0
    axis = 0

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "Constraint":
        return cls(**config)

    def bounds(self) -> tuple[float, float, float]:
        """``(min_value, max_value, rate)`` as Python floats (the layout's fields)."""
        return float(self.min_value), float(self.max_value), float(self.rate)

    def axis_code(self, ndim: int) -> int:
        """The layout's axis code for a tensor of ``ndim`` dimensions (2: a kernel, 1: a bias)."""
        if self.axis is None:
            return OVER_ALL
        if ndim == 1:
            if self.axis not in (0, -1):
                raise ValueError(f"{type(self).__name__}(axis={self.axis}) on a bias: a bias has the one axis 0")
            return OVER_ALL
        return OVER_ROWS if self.axis in (0, -2) else OVER_COLUMNS

    def __call__(self, w, numerics: str | None = None) -> np.ndarray:
        """The projected copy of the array ``w`` (1-D or 2-D), in its dtype (float32 for other dtypes).

        ``numerics``: the profile whose sums are used (default
        :func:`gdcore.config.numerics`; ``"tensorflow"`` gives Keras's bits).
        """
        from gdcore import config
        from gdcore.numerics import get_profile

        w = np.array(w, copy=True)
        if w.dtype not in (np.float32, np.float64):
            w = w.astype(np.float32)
        if w.ndim not in (1, 2):
            raise ValueError(f"{type(self).__name__} projects a kernel (2-D) or a bias (1-D), got shape {w.shape}")
        matrix = w.reshape(1, -1) if w.ndim == 1 else w
        project(get_profile(numerics or config.numerics()), matrix, self.kind, self.axis_code(w.ndim), *self.bounds())
        return w

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({options})"


class NonNeg(Constraint):
    r""":math:`\max(w, 0)` (``keras.constraints.NonNeg``)."""

    kind = NON_NEG
    axis = None


class MaxNorm(Constraint):
    r""":math:`w \cdot \mathrm{clip}(n, 0, m) / (\varepsilon + n)`: norms above ``max_value`` scaled down to it."""

    kind = MAX_NORM

    def __init__(self, max_value=2, axis=0):
        self.max_value = _number(max_value, "max_value")
        self.axis = _axis(axis)

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}


class UnitNorm(Constraint):
    r""":math:`w / (\varepsilon + n)`: every norm scaled to (about) one."""

    kind = UNIT_NORM

    def __init__(self, axis=0):
        self.axis = _axis(axis)

    def get_config(self) -> dict:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    r""":math:`w \cdot (r\,\mathrm{clip}(n, a, m) + (1 - r)\,n) / (\varepsilon + n)`: norms moved into [a, m] at rate r."""

    kind = MIN_MAX_NORM

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = _number(min_value, "min_value")
        self.max_value = _number(max_value, "max_value")
        if self.max_value < self.min_value:
            raise ValueError(f"max_value must be >= min_value, got min_value={min_value!r}, max_value={max_value!r}")
        self.rate = _number(rate, "rate")
        self.axis = _axis(axis)

    def get_config(self) -> dict:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


CLASSES = {"NonNeg": NonNeg, "MaxNorm": MaxNorm, "UnitNorm": UnitNorm, "MinMaxNorm": MinMaxNorm}
# Keras's names (keras/src/constraints/__init__.py, ALL_OBJECTS_DICT): each class's name and its snake case.
ALIASES = {**CLASSES, "non_neg": NonNeg, "max_norm": MaxNorm, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm}


def get(identifier, name: str = "constraint") -> Constraint | None:
    """A constraint from None, a name (``"non_neg"``, ``"max_norm"``, ...), an instance or Keras's config dict.

    ``name`` is the argument the value was given as, for the error message.
    """
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str):
        if identifier not in ALIASES:
            raise ValueError(f"{name}: unknown constraint {identifier!r}; known: {', '.join(ALIASES)}")
        return ALIASES[identifier]()
    if isinstance(identifier, dict) and "class_name" in identifier:
        return deserialize(identifier, name)
    raise ValueError(f"{name} must be None, one of {', '.join(ALIASES)} or a gdcore.constraints object, "
                     f"got {identifier!r}")


def serialize(constraint: Constraint | None) -> dict | None:
    """Keras's config entry of a constraint (``keras.constraints.serialize``)."""
    if constraint is None:
        return None
    return {"module": "keras.constraints", "class_name": type(constraint).__name__,
            "config": constraint.get_config(), "registered_name": None}


def deserialize(config: dict | None, name: str = "constraint") -> Constraint | None:
    """The constraint of Keras's config entry (what :func:`serialize` and Keras's ``.keras`` files write)."""
    if config is None:
        return None
    class_name = config.get("class_name")
    if class_name not in CLASSES:
        raise ValueError(f"{name}: unknown constraint class {class_name!r}; gdcore has {', '.join(CLASSES)}")
    options = dict(config.get("config") or {})
    unknown = sorted(set(options) - set(CLASSES[class_name]().get_config()))
    if unknown:
        raise ValueError(f"{name}: {class_name} has no settings {unknown}")
    return CLASSES[class_name](**options)


# --- the projection (NumPy engine; the compiled loop runs the same elementwise function) ----------------


@jitable
def projected(kind, w, norm, min_value, max_value, rate, in_packet):
    """The projection of ``w`` (an element or an array) whose slice has the norm ``norm`` (module docstring's order).

    ``in_packet``: the element is in one of the tensor's whole SIMD packets (NonNeg's :math:`-0`, module docstring).
    Selects stand for ``minimum``/``maximum`` (the norms are never NaN while the weights are finite).
    """
    zero = cast(0, w)
    if kind == NON_NEG:
        return where(in_packet, where(w > zero, w, zero), where(w < zero, zero, w))
    epsilon = cast(EPSILON, w)
    if kind == UNIT_NORM:
        return w / (epsilon + norm)
    upper = cast(max_value, w)
    if kind == MAX_NORM:
        clipped = where(norm > zero, where(norm < upper, norm, upper), zero)
        return w * (clipped / (epsilon + norm))
    lower = cast(min_value, w)
    clipped = where(norm < upper, norm, upper)
    clipped = where(clipped > lower, clipped, lower)
    desired = cast(rate, w) * clipped + cast(1 - rate, w) * norm
    return w * (desired / (epsilon + norm))


def norms(profile, w: np.ndarray, axis: int) -> np.ndarray:
    """``sqrt(reduce_sum(square(w), axis, keepdims=True))`` of a 2-D ``w``, broadcastable against it."""
    squares = w * w
    rows, cols = w.shape
    if axis == OVER_ALL:
        sums = np.array([[profile.sum_vector(squares.reshape(-1))]], w.dtype)
    elif axis == OVER_ROWS:
        # One unit: the column is a vector (TensorFlow drops the axis of size 1); several: reduce over the rows.
        sums = (np.array([[profile.sum_vector(np.ascontiguousarray(squares[:, 0]))]], w.dtype) if cols == 1
                else profile.reduce_sum_rows(squares).reshape(1, cols))
    else:
        sums = np.array([[profile.sum_vector(row)] for row in squares], w.dtype).reshape(rows, 1)
    return np.sqrt(sums)


def packet_width(profile, dtype) -> int:
    """The SIMD width whose packets TensorFlow's elementwise kernels run (0: ``"plain"``, no packets)."""
    return 32 // np.dtype(dtype).itemsize if profile.backend else 0


def project(profile, w: np.ndarray, kind: int, axis: int, min_value: float, max_value: float, rate: float) -> None:
    """``w <- constraint(w)`` in place, for a 2-D view ``w`` (a bias as one row)."""
    norm = np.zeros((1, 1), w.dtype) if kind == NON_NEG else norms(profile, w, axis)
    packet = packet_width(profile, w.dtype)
    in_packet = (np.arange(w.size) < w.size - w.size % packet).reshape(w.shape) if packet else np.zeros(w.shape, bool)
    w[:] = projected(kind, w, norm, min_value, max_value, rate, in_packet)


def _tensors(layout):
    """``(start, rows, cols, kind, axis, min, max, rate)`` of each constrained weight tensor, Keras's order."""
    for row in layout:
        if row.kernel_constraint:
            yield (int(row.kernel), int(row.n_in), int(row.n_out), int(row.kernel_constraint),
                   int(row.kernel_constraint_axis), float(row.kernel_min), float(row.kernel_max), float(row.kernel_rate))
        if row.use_bias and row.bias_constraint:
            yield (int(row.bias), 1, int(row.n_out), int(row.bias_constraint), OVER_ALL, float(row.bias_min),
                   float(row.bias_max), float(row.bias_rate))


def apply(profile, params: np.ndarray, layout) -> None:
    """Every constrained tensor of the layout projected in place (after the optimizer's update of a step)."""
    for start, rows, cols, kind, axis, min_value, max_value, rate in _tensors(layout):
        project(profile, params[start : start + rows * cols].reshape(rows, cols), kind, axis, min_value, max_value,
                rate)
