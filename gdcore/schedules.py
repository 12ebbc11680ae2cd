r"""Learning-rate schedules (``keras.optimizers.schedules``), with Keras 3's float32 arithmetic.

A schedule maps the optimizer's ``iterations`` before an update (0 for the
first) to that update's learning rate. Keras evaluates it in the dtype of
``initial_learning_rate`` as a tensor, float32 for a Python float, whatever the
model's dtype; the optimizer then casts the float32 result to the weights'
dtype. gdcore evaluates each formula in NumPy float32 scalars in Keras's operation
order, with TensorFlow's graph rewrite of a division by a constant (the step
count ``decay_steps``, ``warmup_steps``) into a multiplication by its float32
reciprocal; ``+ - * /``, ``floor``, ``ceil`` and ``minimum`` are exact in IEEE
arithmetic, and ``pow`` calls the C library's ``powf``, as TensorFlow's scalar
kernel does. ``cos`` calls ``cosf``, which TensorFlow's ``Cos`` is not:
:class:`CosineDecay` is the one schedule within a few ulp rather than exact. Before a ``fit`` call the optimizer tabulates
the rates of the updates it may run (:meth:`LearningRateSchedule.rates`), so
the compiled loop reads a rate per update and stays one compiled call.

=====================  ======================================================================
schedule               learning rate at step :math:`s`
=====================  ======================================================================
ExponentialDecay       :math:`\eta_0\,r^{s/S}` (staircase: :math:`r^{\lfloor s/S\rfloor}`)
InverseTimeDecay       :math:`\eta_0 / (1 + r\,s/S)` (staircase: :math:`\lfloor s/S\rfloor`)
PiecewiseConstantDecay :math:`v_i` for :math:`b_{i-1} < s \le b_i` (:math:`v_0` up to :math:`b_0`)
PolynomialDecay        :math:`(\eta_0-\eta_e)(1 - \min(s,S)/S)^p + \eta_e` (cycle: :math:`S\lceil s/S\rceil`)
CosineDecay            :math:`\eta_0((1-\alpha)\tfrac12(1+\cos(\pi\min(s,S)/S))+\alpha)`, after a linear
                       warm-up from :math:`\eta_0` to ``warmup_target`` over ``warmup_steps``
=====================  ======================================================================
"""

from __future__ import annotations

import ctypes
import math
from numbers import Integral, Real

import numpy as np

from gdcore._dtype import _libm, libm_pow

_libm.cosf.restype, _libm.cosf.argtypes = ctypes.c_float, [ctypes.c_float]
_f32 = np.float32


def _cosf(x) -> np.float32:
    return _f32(_libm.cosf(float(x)))


def _over(x, constant) -> np.float32:
    """``x / constant`` as TensorFlow runs it: its graph optimizer turns a division by a constant into a
    multiplication by the constant's float32 reciprocal (``21 / 7`` is then 3.0000002)."""
    return x * (_f32(1) / _f32(constant))


def _real(value, name: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{name} must be a finite {'positive ' if positive else ''}number, got {value!r}")
    return float(value)


def _steps(value, name: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, (Integral, Real)) or value != value or \
            value < (0 if allow_zero else 1) or (isinstance(value, Real) and not float(value).is_integer()):
        raise ValueError(f"{name} must be a{' non-negative' if allow_zero else ' positive'} whole number of steps, "
                         f"got {value!r}")
    return int(value)


class LearningRateSchedule:
    """Base class: ``schedule(step)`` is the learning rate (float32) of the update after ``step`` updates."""

    def __call__(self, step) -> np.float32:
        raise NotImplementedError

    def rates(self, first: int, count: int, dtype) -> np.ndarray:
        """The rates of updates ``first + 1`` to ``first + count``, cast to ``dtype`` as Keras casts them."""
        return np.array([self(step) for step in range(first, first + count)], dtype=np.float32).astype(dtype)

    def get_config(self) -> dict:
        return dict(vars(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class _RateDecay(LearningRateSchedule):
    """The arguments Keras's exponential and inverse-time decays share."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False):
        self.initial_learning_rate = _real(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _steps(decay_steps, "decay_steps")
        self.decay_rate = _real(decay_rate, "decay_rate")
        self.staircase = bool(staircase)


class ExponentialDecay(_RateDecay):
    """:math:`\\eta_0 r^{s/S}`; ``staircase=True`` floors the exponent (``keras.optimizers.schedules.ExponentialDecay``)."""

    def __call__(self, step) -> np.float32:
        p = _over(_f32(step), self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return _f32(self.initial_learning_rate) * libm_pow(_f32(self.decay_rate), p)


class InverseTimeDecay(_RateDecay):
    """:math:`\\eta_0 / (1 + r s/S)` (``keras.optimizers.schedules.InverseTimeDecay``)."""

    def __call__(self, step) -> np.float32:
        if not self.staircase:  # the graph optimizer also folds decay_rate * (step * (1 / decay_steps)) into one constant
            return _f32(self.initial_learning_rate) / (_f32(1) + _f32(step) * (_f32(self.decay_rate) *
                                                                              (_f32(1) / _f32(self.decay_steps))))
        p = np.floor(_over(_f32(step), self.decay_steps))
        return _f32(self.initial_learning_rate) / (_f32(1) + _f32(self.decay_rate) * p)


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` while ``boundaries[i-1] < step <= boundaries[i]`` (``keras.optimizers.schedules.PiecewiseConstantDecay``).

    Keras sums mask * value over the intervals in float32; exactly one mask is 1.
    """

    def __init__(self, boundaries, values):
        if len(boundaries) + 1 != len(values):
            raise ValueError(f"values must have one more element than boundaries: got {len(boundaries)} boundaries "
                             f"and {len(values)} values")
        self.boundaries = [_steps(b, "boundaries", allow_zero=True) for b in boundaries]
        self.values = [_real(v, "values") for v in values]

    def __call__(self, step) -> np.float32:
        b, v = self.boundaries, [_f32(value) for value in self.values]
        result = _f32(0) + _f32(step <= b[0]) * v[0]
        result = result + _f32(step > b[-1]) * v[-1]
        for low, high, value in zip(b[:-1], b[1:], v[1:-1]):
            result = result + _f32(low < step <= high) * value
        return result


class PolynomialDecay(LearningRateSchedule):
    """:math:`(\\eta_0-\\eta_e)(1-s/S)^p+\\eta_e` (``keras.optimizers.schedules.PolynomialDecay``)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, end_learning_rate: float = 0.0001,
                 power: float = 1.0, cycle: bool = False):
        self.initial_learning_rate = _real(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _steps(decay_steps, "decay_steps")
        self.end_learning_rate = _real(end_learning_rate, "end_learning_rate")
        self.power = _real(power, "power")
        self.cycle = bool(cycle)

    def __call__(self, step) -> np.float32:
        initial, end, power = _f32(self.initial_learning_rate), _f32(self.end_learning_rate), _f32(self.power)
        s, decay_steps = _f32(step), _f32(self.decay_steps)
        if self.cycle:  # the decay steps vary: a true division
            decay_steps = decay_steps * (_f32(1) if s == 0 else np.ceil(_over(s, self.decay_steps)))
            p = s / decay_steps
        else:
            p = _over(min(s, decay_steps), self.decay_steps)
        return (initial - end) * libm_pow(_f32(1) - p, power) + end


class CosineDecay(LearningRateSchedule):
    """Cosine decay with optional linear warm-up (``keras.optimizers.schedules.CosineDecay``).

    Not bit-identical to Keras: TensorFlow's CPU ``Cos`` is not the C
    library's ``cosf`` (nor NumPy's); the rates differ from Keras's by at most
    a few ulp at some steps (measured in ``tests/test_optimizers.py``). The
    divisions here stay divisions (TensorFlow keeps them inside the warm-up's
    ``cond``, and so, measured, in the decay).

    With ``warmup_target``: from :math:`\\eta_0` to the target over
    ``warmup_steps`` (:math:`(\\eta_w-\\eta_0)s/W+\\eta_0`), then cosine decay
    from the target over ``decay_steps``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 warmup_target: float | None = None, warmup_steps: int = 0):
        self.initial_learning_rate = _real(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _steps(decay_steps, "decay_steps")
        self.alpha = _real(alpha, "alpha")
        self.warmup_target = None if warmup_target is None else _real(warmup_target, "warmup_target")
        self.warmup_steps = _steps(warmup_steps, "warmup_steps", allow_zero=True)

    def _decay(self, s, decay_steps, decay_from):
        completed = s / decay_steps
        cosine = _f32(0.5) * (_f32(1) + _cosf(_f32(math.pi) * completed))
        # (1 - alpha) and alpha are Python floats: converted to float32 where they meet the tensor.
        return decay_from * (_f32(1 - self.alpha) * cosine + _f32(self.alpha))

    def __call__(self, step) -> np.float32:
        initial, decay_steps, s = _f32(self.initial_learning_rate), _f32(self.decay_steps), _f32(step)
        if self.warmup_target is None:
            return self._decay(min(s, decay_steps), decay_steps, initial)
        target, warmup_steps = _f32(self.warmup_target), _f32(self.warmup_steps)
        s = min(s, decay_steps + warmup_steps)
        if s < warmup_steps:
            return (target - initial) * (s / warmup_steps) + initial
        return self._decay(s - warmup_steps, decay_steps, target)


SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay,
                                           PolynomialDecay, CosineDecay)}
