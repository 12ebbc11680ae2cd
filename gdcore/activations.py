r"""Activation functions: one table of pure, elementwise functions.

Each entry of :data:`ACTIVATIONS` pairs the activation with its derivative
written in terms of the activation's *output* :math:`y` and the upstream
gradient :math:`dy`, the form TensorFlow's gradient kernels use
(``SigmoidGrad``, ``TanhGrad``, ``ReluGrad``). The same functions run on
NumPy arrays in the NumPy engine and on scalars inside the compiled Numba
loop; an entry's id is its position in the table.

=========  ==================================  ===================================
name       :math:`y = f(z)`                    :math:`\partial L/\partial z`
=========  ==================================  ===================================
linear     :math:`z`                           :math:`dy`
sigmoid    :math:`1 / (1 + e^{-z})`            :math:`dy \cdot (y (1 - y))`
tanh       :math:`\tanh z`                     :math:`dy \cdot (1 - y^2)`
relu       :math:`\max(z, 0)`                  :math:`dy \cdot [y > 0]`
=========  ==================================  ===================================

The sigmoid and the tanh are evaluated as Eigen's vectorised kernels (what
TensorFlow runs on CPU on whole packets, :mod:`gdcore.numerics.eigen`): the
logistic's polynomial exponential and tanh's rational approximation (degree
[9/8] in float32, [19/18] in float64, within a few ulp of the true tanh). Both
use only ``+ - * /`` and comparisons, so the NumPy and Numba engines produce
the same bits (``np.tanh`` would not: NumPy's SIMD tanh and the C library's,
which Numba calls, differ in the last bit). The gradients are the formulas of
the table, in that order; TensorFlow's gradient kernels also flush denormal
operands and results to zero, which only the ``"tensorflow"`` numerics
profile reproduces (a profile may evaluate an activation its own way:
``ACTIVATIONS`` of :mod:`gdcore.numerics._tensorflow`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numba import njit
from numba.extending import register_jitable

from gdcore._dtype import cast, libm_exp, where
from gdcore._validation import lookup
from gdcore.numerics import eigen
from gdcore.numerics._in_place import activation_loop, gradient_loop

_jit = njit(cache=True, error_model="numpy", nogil=True)
_inline_jit = njit(cache=True, error_model="numpy", nogil=True, inline="always")

logistic = register_jitable(eigen.logistic)
_eigen_tanh = register_jitable(eigen.tanh)


@register_jitable
def linear(z):
    return z


@register_jitable
def linear_grad(y, dy):
    return dy


@register_jitable
def sigmoid(z):
    return logistic(z)


@register_jitable
def sigmoid_grad(y, dy):
    return dy * (y * (cast(1, y) - y))


@register_jitable
def tanh(z):
    return _eigen_tanh(z)


@register_jitable
def tanh_grad(y, dy):
    return dy * (cast(1, y) - y * y)


@register_jitable
def relu(z):
    return where(z > cast(0, z), z, cast(0, z))


@register_jitable
def relu_grad(y, dy):
    return dy * where(y > cast(0, y), cast(1, dy), cast(0, dy))  # TensorFlow's ReluGrad multiplies by the mask


@register_jitable
def _softmax_in_place(z):
    for b in range(z.shape[0]):
        row = z[b]
        largest = row[0]
        for j in range(1, row.shape[0]):
            largest = max(largest, row[j])
        total = cast(0, largest)
        for j in range(row.shape[0]):
            row[j] = libm_exp(row[j] - largest)
            total = total + row[j]
        for j in range(row.shape[0]):
            row[j] = row[j] / total


@register_jitable
def _softmax_grad_in_place(y, delta):
    for b in range(y.shape[0]):
        weighted = cast(0, y[b, 0])
        for j in range(y.shape[1]):
            weighted = weighted + delta[b, j] * y[b, j]
        for j in range(y.shape[1]):
            delta[b, j] = (delta[b, j] - weighted) * y[b, j]


def softmax(z):
    r"""Over the last axis of a (batch, units) array: :math:`a_j = e^{z_j - m} / \sum_k e^{z_k - m}`, :math:`m = \max_k z_k`.

    Subtracting the row's maximum first keeps every exponential in (0, 1], as
    TensorFlow's ``Softmax`` kernel does; the sums run front to back.
    """
    out = np.array(z, copy=True, order="C")
    _softmax_in_place(out)
    return out


def softmax_grad(y, dy):
    r"""TensorFlow's ``SoftmaxGrad``: :math:`\partial L/\partial z_j = (dy_j - \sum_k dy_k a_k)\, a_j`."""
    out = np.array(dy, copy=True, order="C")
    _softmax_grad_in_place(np.ascontiguousarray(y), out)
    return out


@dataclass(frozen=True)
class Activation:
    """A named activation: ``forward(z)`` and ``grad(y, dy)`` (module docstring), with its formulas.

    ``formula`` and ``grad_formula`` are LaTeX (:math:`a` the output, :math:`z`
    the input), rendered by :mod:`gdcore.explain`; ``sklearn`` is
    scikit-learn's name for it (``MLPRegressor(activation=...)``), if any;
    ``id`` is its position in :data:`ACTIVATIONS`.
    """

    name: str
    forward: Callable
    grad: Callable
    formula: str
    grad_formula: str
    sklearn: str | None = None
    aliases: tuple[str, ...] = ()
    row_wise: bool = False  # over the last axis (softmax): its own in-place loops, ``forward_loop``/``grad_loop``
    forward_loop: Callable | None = field(default=None, compare=False, repr=False)
    grad_loop: Callable | None = field(default=None, compare=False, repr=False)
    _loops: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def id(self) -> int:
        return ACTIVATIONS.index(self)

    def __call__(self, z):
        return self.forward(z)

    @property
    def loops(self) -> tuple[Callable, Callable]:
        """Compiled in-place loops over a (batch, units) buffer: ``forward_loop(z)``, ``grad_loop(y, delta)``."""
        if not self._loops and self.row_wise:
            self._loops["forward"], self._loops["grad"] = _inline_jit(self.forward_loop), _inline_jit(self.grad_loop)
        if not self._loops:
            self._loops["forward"] = activation_loop(_jit(self.forward), f"{self.name}_loop", inline=True)
            self._loops["grad"] = gradient_loop(_jit(self.grad), f"{self.name}_grad_loop", inline=True)
        return self._loops["forward"], self._loops["grad"]

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


LINEAR = Activation("linear", linear, linear_grad, r"a = z", r"f'(z) = 1", "identity")
SIGMOID = Activation("sigmoid", sigmoid, sigmoid_grad, r"a = \sigma(z) = 1/(1+e^{-z})", r"f'(z) = a(1-a)", "logistic")
TANH = Activation("tanh", tanh, tanh_grad, r"a = \tanh z", r"f'(z) = 1-a^2", "tanh")
RELU = Activation("relu", relu, relu_grad, r"a = \max(z, 0)", r"f'(z) = [a > 0]", "relu")

SOFTMAX = Activation("softmax", softmax, softmax_grad, r"a_j = e^{z_j} / \textstyle\sum_k e^{z_k}",
                     r"\partial L/\partial z_j = (dy_j - \textstyle\sum_k dy_k a_k)\,a_j", "softmax", row_wise=True,
                     forward_loop=_softmax_in_place, grad_loop=_softmax_grad_in_place)

#: Every activation, in id order.
ACTIVATIONS: tuple[Activation, ...] = (LINEAR, SIGMOID, TANH, RELU, SOFTMAX)
BY_NAME = {name: activation for activation in ACTIVATIONS for name in (activation.name, *activation.aliases)}
BY_ID = dict(enumerate(ACTIVATIONS))


def get(identifier) -> Activation:
    """Look up an activation by Keras name (``None`` means linear)."""
    if identifier is None:
        return LINEAR
    if isinstance(identifier, Activation):
        return identifier
    return lookup(BY_NAME, identifier, "activation")
